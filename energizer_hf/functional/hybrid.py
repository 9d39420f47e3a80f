"""Selectors that mix uncertainty and diversity (BADGE, Cluster-Margin, CAL, EGL).

``probs`` is the ``(N, C)`` predictive distribution of the pool (softmax outputs, not
logits) and ``embeddings`` the ``(N, d)`` penultimate-layer features ``h`` that feed the
final linear classifier. For a pseudo-label ``ŷ`` the cross-entropy gradient with respect
to the last layer's weights is the outer product ``(p − e_ŷ) ⊗ h``, so everything on
"gradient embeddings" can be computed from ``a = e_ŷ − p`` and ``h`` without backprop and
without materialising the ``(N, C·d)`` matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
from torch import Tensor

from ._validation import (
    ArrayLike,
    FunctionalInputError,
    ShapeError,
    as_float_tensor,
    as_probs,
    check_same_rows,
    make_generator,
    row_sq_norms,
    rows_per_chunk,
    trivial_selection,
)
from .diversity import _d2_seeding
from .hac import hac_clusters
from .neighbours import Metric, knn

__all__ = [
    "badge_gradient_embeddings",
    "badge_select",
    "cal_scores",
    "cluster_margin",
    "egl_scores",
    "iter_badge_gradient_embeddings",
]

_EPS = 1e-12


def _probs_and_embeddings(probs: ArrayLike, embeddings: ArrayLike) -> tuple[Tensor, Tensor]:
    p = as_probs(probs, "probs (N, C)", 2)
    h = as_float_tensor(embeddings, "embeddings (N, d)", 2)
    check_same_rows(p, h, "probs", "embeddings")
    return p, h


def _pseudo_label_residual(p: Tensor) -> Tensor:
    """``a = onehot(argmax p) − p`` (the negated last-layer logit gradient)."""
    a = -p.clone()
    a[torch.arange(p.shape[0]), p.argmax(1)] += 1.0
    return a


def badge_gradient_embeddings(probs: ArrayLike, embeddings: ArrayLike) -> Tensor:
    """BADGE gradient embeddings ``g_i = (onehot(argmax p_i) − p_i) ⊗ h_i``, flattened.

    Memory: the result is ``(N, C·d)`` float32, i.e. ``4·N·C·d`` bytes (768 MB for
    N=50,000, C=10, d=384). For large pools use :func:`iter_badge_gradient_embeddings`
    or :func:`badge_select`, which never builds it.

    Reference: Ash, Zhang, Krishnamurthy, Langford & Agarwal, "Deep Batch Active
    Learning by Diverse, Uncertain Gradient Lower Bounds", ICLR 2020.

    Complexity: O(N · C · d) time and memory.

    Args:
        probs: ``(N, C)`` predictive probabilities.
        embeddings: ``(N, d)`` penultimate-layer features.

    Returns:
        ``(N, C·d)`` tensor; row ``i`` reshaped to ``(C, d)`` is ``a_i h_iᵀ``.

    >>> import torch
    >>> g = badge_gradient_embeddings(torch.tensor([[0.75, 0.25]]), torch.tensor([[2.0, 0.0]]))
    >>> g.tolist()
    [[0.5, 0.0, -0.5, -0.0]]
    """
    p, h = _probs_and_embeddings(probs, embeddings)
    a = _pseudo_label_residual(p)
    return (a.unsqueeze(2) * h.unsqueeze(1)).reshape(p.shape[0], -1)


def iter_badge_gradient_embeddings(
    probs: ArrayLike, embeddings: ArrayLike, chunk_size: int = 4096
) -> Iterator[Tensor]:
    """Yield :func:`badge_gradient_embeddings` in consecutive row chunks.

    Reference: Ash et al., ICLR 2020 (see :func:`badge_gradient_embeddings`).

    Complexity: O(N · C · d) in total, memory O(chunk_size · C · d) per chunk.

    Args:
        probs: ``(N, C)`` predictive probabilities.
        embeddings: ``(N, d)`` penultimate-layer features.
        chunk_size: rows per yielded chunk.

    Returns:
        An iterator of ``(rows, C·d)`` tensors covering rows ``0..N-1`` in order.

    >>> import torch
    >>> chunks = list(iter_badge_gradient_embeddings(torch.full((5, 2), 0.5), torch.ones(5, 3), 2))
    >>> [tuple(c.shape) for c in chunks]
    [(2, 6), (2, 6), (1, 6)]
    """
    p, h = _probs_and_embeddings(probs, embeddings)
    if chunk_size < 1:
        raise FunctionalInputError(f"chunk_size must be >= 1, got {chunk_size}.")
    for start in range(0, p.shape[0], chunk_size):
        yield badge_gradient_embeddings(
            p[start : start + chunk_size], h[start : start + chunk_size]
        )


def badge_select(
    probs: ArrayLike,
    embeddings: ArrayLike,
    k: int,
    seed: int = 0,
    *,
    labelled: ArrayLike | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """BADGE: k-means++ seeding on the gradient embeddings, computed implicitly.

    The first pick is the candidate with the largest gradient norm (as the reference
    code), then D² sampling. Squared distances between gradient embeddings use
    ``‖g_i − g_j‖² = ‖a_i‖²‖h_i‖² + ‖a_j‖²‖h_j‖² − 2 (a_i·a_j)(h_i·h_j)`` with
    ``a = onehot − p``, so the ``(N, C·d)`` matrix is never built; the result equals
    :func:`~energizer_hf.functional.kmeans_pp_init` with ``first="max_norm"`` on
    :func:`badge_gradient_embeddings` (up to float round-off).

    Reference: Ash et al., "Deep Batch Active Learning by Diverse, Uncertain Gradient
    Lower Bounds", ICLR 2020.

    Complexity: O(N · k · (C + d)) time, O(N · C) extra memory.

    Args:
        probs: ``(N, C)`` predictive probabilities.
        embeddings: ``(N, d)`` penultimate-layer features.
        k: number of points to select.
        seed: seed of a fresh generator when ``generator`` is ``None``.
        labelled: mask or indices of points that are not candidates.
        generator: random generator (overrides ``seed``).

    Returns:
        ``(min(k, n_candidates),)`` int64 distinct indices in pick order.

    >>> import torch
    >>> probs = torch.tensor([[0.99, 0.01], [0.5, 0.5], [0.5, 0.5], [0.6, 0.4]])
    >>> emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> badge_select(probs, emb, 2).tolist()  # most uncertain, then the other direction
    [1, 3]
    """
    p, h = _probs_and_embeddings(probs, embeddings)
    n = p.shape[0]
    k, cand, done = trivial_selection(k, labelled, n)
    if done is not None:
        return done
    a = _pseudo_label_residual(p)
    a_sq = (a * a).sum(1)
    h_sq = row_sq_norms(h)
    norms = a_sq * h_sq
    first = int(torch.where(cand, norms, torch.tensor(-1.0)).argmax())

    def sq_dist_to(j: int) -> Tensor:
        return norms + norms[j] - 2.0 * (a @ a[j]) * (h @ h[j])

    return _d2_seeding(n, k, first, sq_dist_to, cand, make_generator(generator, seed))


def cluster_margin(
    probs: ArrayLike,
    embeddings: ArrayLike | None,
    k: int,
    *,
    labelled: ArrayLike | None = None,
    cluster_labels: ArrayLike | None = None,
    n_clusters: int | None = None,
    distance_threshold: float | None = None,
    margin_batch_size: int | None = None,
    n_micro_clusters: int = 512,
    generator: torch.Generator | None = None,
    seed: int = 0,
) -> Tensor:
    """Cluster-Margin: round-robin over clusters of the lowest-margin candidates.

    1. Clusters: ``cluster_labels`` if given (compute them once per pool with
       :func:`~energizer_hf.functional.hac_clusters` and reuse them across rounds, as the
       paper does), else average-linkage HAC of ``embeddings`` with ``n_clusters``
       (default ``min(k, n_micro_clusters)`` when no ``distance_threshold``) — exact up to
       ``n_micro_clusters`` points, micro-cluster approximation above (see
       :func:`~energizer_hf.functional.hac_clusters`).
    2. Take the ``margin_batch_size`` (default ``10·k``, at least ``k``) unlabelled
       points with the smallest margin ``p_(1) − p_(2)``.
    3. Sort their clusters by increasing number of such points; visit them round-robin,
       taking one random point from each, until ``k`` are chosen.

    Reference: Citovsky, DeSalvo, Gentile, Karydas, Rajagopalan, Rostamizadeh & Kumar,
    "Batch Active Learning at Scale", NeurIPS 2021.

    Complexity: O(N · C) for margins plus the clustering cost when ``cluster_labels`` is
    not given (O(N · m · d · iters + m³), m = n_micro_clusters); memory O(N + m²).

    Args:
        probs: ``(N, C)`` predictive probabilities.
        embeddings: ``(N, d)`` features to cluster (may be ``None`` with ``cluster_labels``).
        k: number of points to select.
        labelled: mask or indices of points that are not candidates.
        cluster_labels: optional precomputed ``(N,)`` cluster ids of the whole pool.
        n_clusters: number of HAC clusters when clustering here.
        distance_threshold: HAC distance threshold instead of ``n_clusters``.
        margin_batch_size: size k_m of the low-margin candidate set.
        n_micro_clusters: bound of the exact HAC / size of the k-means summary.
        generator: random generator (overrides ``seed``).
        seed: seed of a fresh generator when ``generator`` is ``None``.

    Returns:
        ``(min(k, n_candidates),)`` int64 distinct indices in pick order.

    >>> import torch
    >>> probs = torch.tensor([[0.5, 0.5], [0.51, 0.49], [0.52, 0.48], [0.55, 0.45], [0.9, 0.1]])
    >>> picks = cluster_margin(probs, None, 2, cluster_labels=[0, 0, 0, 1, 1], margin_batch_size=4)
    >>> int(picks[0]), int(picks[1]) in (0, 1, 2)  # smallest cluster first, then the other
    (3, True)
    """
    p = as_probs(probs, "probs (N, C)", 2)
    n = p.shape[0]
    if p.shape[1] < 2:
        raise ShapeError("cluster_margin needs at least 2 classes.")
    k, cand, done = trivial_selection(k, labelled, n)
    if done is not None:
        return done
    gen = make_generator(generator, seed)
    if cluster_labels is not None:
        clusters = torch.as_tensor(cluster_labels).long().cpu()
        if clusters.shape != (n,):
            raise ShapeError(f"cluster_labels must have shape ({n},), got {tuple(clusters.shape)}.")
    else:
        if embeddings is None:
            raise FunctionalInputError("pass embeddings or cluster_labels.")
        h = as_float_tensor(embeddings, "embeddings (N, d)", 2)
        check_same_rows(p, h, "probs", "embeddings")
        if n_clusters is None and distance_threshold is None:
            n_clusters = min(k, n_micro_clusters, n)
        clusters = hac_clusters(
            h,
            n_clusters,
            distance_threshold,
            n_micro_clusters=n_micro_clusters,
            generator=gen,
        )
    top2 = p.topk(2, dim=1).values
    margins = top2[:, 0] - top2[:, 1]
    km = min(int(cand.sum()), max(k, 10 * k if margin_batch_size is None else int(margin_batch_size)))
    cand_idx = cand.nonzero().squeeze(1)
    low = cand_idx[torch.argsort(margins[cand_idx], stable=True)[:km]]
    # group the low-margin points by cluster, shuffle inside each cluster.
    low = low[torch.randperm(low.numel(), generator=gen)]
    cl = clusters[low]
    uniq, inverse, counts = torch.unique(cl, return_inverse=True, return_counts=True)
    order = sorted(range(uniq.numel()), key=lambda i: (int(counts[i]), int(uniq[i])))
    members = [low[inverse == i].tolist() for i in order]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < k:
        for group in members:
            if depth < len(group):
                chosen.append(group[depth])
                if len(chosen) == k:
                    break
        depth += 1
    return torch.tensor(chosen, dtype=torch.long)


def cal_scores(
    probs_pool: ArrayLike,
    emb_pool: ArrayLike,
    probs_labelled: ArrayLike | None,
    emb_labelled: ArrayLike,
    labels_labelled: ArrayLike | None = None,
    n_neighbors: int = 10,
    *,
    target: Literal["predictions", "labels"] = "predictions",
    metric: Metric = "euclidean",
    chunk_size: int | None = None,
) -> Tensor:
    """CAL contrastive scores: divergence between a candidate and its labelled neighbours.

    For every pool point, find its ``n_neighbors`` nearest labelled points in embedding
    space and average ``KL(p(y|x_l) ‖ p(y|x_p))`` over them (``target="predictions"``, the
    paper's method, needs ``probs_labelled``). With ``target="labels"`` the neighbours'
    gold labels replace their predictions, i.e. the mean cross-entropy of the candidate's
    prediction against them (the paper's ablation; needs ``labels_labelled``). High
    score = the model predicts something different from what it predicts (or what is
    true) nearby: a contrastive example.

    Reference: Margatina, Vernikos, Barrault & Aletras, "Active Learning by Acquiring
    Contrastive Examples", EMNLP 2021.

    Complexity: O(N · L · d) for L labelled points (chunked kNN) plus
    O(N · n_neighbors · C); memory O(chunk · L + N · n_neighbors).

    Args:
        probs_pool: ``(N, C)`` predictions on the pool.
        emb_pool: ``(N, d)`` pool embeddings.
        probs_labelled: ``(L, C)`` predictions on the labelled set (``target="predictions"``).
        emb_labelled: ``(L, d)`` labelled embeddings.
        labels_labelled: ``(L,)`` gold labels (``target="labels"``).
        n_neighbors: labelled neighbours per candidate (paper: 10), capped at L.
        target: compare with the neighbours' ``"predictions"`` or gold ``"labels"``.
        metric: ``"euclidean"`` or ``"cosine"`` for the neighbour search.
        chunk_size: rows per chunk.

    Returns:
        ``(N,)`` float32 scores, higher = more contrastive.

    >>> import torch
    >>> emb_lab = torch.tensor([[0.0], [0.1]]); probs_lab = torch.tensor([[0.9, 0.1], [0.9, 0.1]])
    >>> s = cal_scores(torch.tensor([[0.9, 0.1], [0.1, 0.9]]), torch.tensor([[0.05], [0.05]]),
    ...                probs_lab, emb_lab, n_neighbors=2)
    >>> int(s.argmax())
    1
    """
    pp = as_probs(probs_pool, "probs_pool", 2)
    ep = as_float_tensor(emb_pool, "emb_pool", 2)
    el = as_float_tensor(emb_labelled, "emb_labelled", 2)
    check_same_rows(pp, ep, "probs_pool", "emb_pool")
    n_lab, c = el.shape[0], pp.shape[1]
    if n_lab == 0:
        raise ShapeError("cal_scores needs at least one labelled example.")
    if target == "predictions":
        if probs_labelled is None:
            raise FunctionalInputError("target='predictions' needs probs_labelled.")
        ref = as_probs(probs_labelled, "probs_labelled", 2)
        check_same_rows(ref, el, "probs_labelled", "emb_labelled")
    elif target == "labels":
        if labels_labelled is None:
            raise FunctionalInputError("target='labels' needs labels_labelled.")
        y = torch.as_tensor(labels_labelled).long().cpu()
        if y.shape != (n_lab,):
            raise ShapeError(f"labels_labelled must have shape ({n_lab},), got {tuple(y.shape)}.")
        if bool((y < 0).any()) or bool((y >= c).any()):
            raise FunctionalInputError(f"labels_labelled must lie in [0, {c}).")
        ref = torch.nn.functional.one_hot(y, c).float()
    else:
        raise FunctionalInputError(f"target must be 'predictions' or 'labels', got {target!r}.")
    if ref.shape[1] != c:
        raise ShapeError(f"labelled predictions have {ref.shape[1]} classes, pool has {c}.")
    kk = min(int(n_neighbors), n_lab)
    if kk < 1:
        raise FunctionalInputError(f"n_neighbors must be >= 1, got {n_neighbors}.")
    _, nn = knn(ep, el, kk, metric, chunk_size=chunk_size)
    log_ref = ref.clamp_min(_EPS).log()
    neg_ent_ref = (ref * log_ref).sum(1)  # Σ r log r per labelled point, (L,)
    log_pool = pp.clamp_min(_EPS).log()
    out = torch.empty(pp.shape[0])
    step = rows_per_chunk(kk * c, chunk_size)
    for start in range(0, pp.shape[0], step):
        stop = min(start + step, pp.shape[0])
        idx = nn[start:stop]  # (b, kk)
        cross = torch.einsum("bkc,bc->bk", ref[idx], log_pool[start:stop])  # Σ r log p
        out[start:stop] = (neg_ent_ref[idx] - cross).mean(1)
    return out


def egl_scores(probs: ArrayLike, embeddings: ArrayLike, *, include_bias: bool = False) -> Tensor:
    """Expected gradient length of the last linear layer, in closed form.

    ``EGL(x) = Σ_c p_c ‖∇_W CE(x, c)‖ = Σ_c p_c ‖(e_c − p) ⊗ h‖ = ‖h‖ Σ_c p_c ‖e_c − p‖``
    with ``‖e_c − p‖² = 1 − 2 p_c + ‖p‖²``. With ``include_bias`` the bias gradient is
    included (``‖h‖`` becomes ``sqrt(‖h‖² + 1)``). Zero for a one-hot prediction.

    Reference: Settles, Craven & Ray, "Multiple-Instance Active Learning", NeurIPS 2008;
    Huang et al., "Active Learning for Speech Recognition: the Power of Gradients", 2016.

    Complexity: O(N · (C + d)).

    Args:
        probs: ``(N, C)`` predictive probabilities.
        embeddings: ``(N, d)`` penultimate-layer features.
        include_bias: also count the gradient of the last layer's bias.

    Returns:
        ``(N,)`` float32 non-negative scores.

    >>> import torch
    >>> egl_scores(torch.tensor([[1.0, 0.0]]), torch.tensor([[3.0, 4.0]])).item()
    0.0
    >>> round(egl_scores(torch.tensor([[0.5, 0.5]]), torch.tensor([[3.0, 4.0]])).item(), 4)
    3.5355
    """
    p, h = _probs_and_embeddings(probs, embeddings)
    h_sq = row_sq_norms(h)
    h_norm = (h_sq + 1.0).sqrt() if include_bias else h_sq.sqrt()
    pd = p.double()  # 1 − 2p_c + ‖p‖² cancels badly in float32 for confident rows
    res = (1.0 - 2.0 * pd + (pd * pd).sum(1, keepdim=True)).clamp_min(0.0).sqrt()
    return h_norm * (pd * res).sum(1).float()
