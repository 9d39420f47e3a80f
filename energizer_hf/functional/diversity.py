"""Diversity- and representativeness-based selection on embeddings.

Clustering (k-means with k-means++ seeding; average-linkage HAC is in
:mod:`energizer_hf.functional.hac`) and the selectors built on it or on distances alone
(k-center / Core-Set, BERT-KM, TypiClust, ProbCover). Inputs are ``(N, d)`` embedding matrices of the pool; labelled examples are
passed as a boolean mask of shape ``(N,)`` or as an index array, and are never selected.

No function materialises an ``(N, N)`` matrix: distances are computed in chunks of at
most 4096 rows against centers, candidates or keys (see
:mod:`energizer_hf.functional.neighbours`).

Every selector returns ``min(k, n_candidates)`` distinct int64 indices; when ``k`` is at
least the number of unlabelled candidates all of them are returned in ascending order.
Randomness comes only from an explicit ``generator`` (or a fresh one seeded by ``seed``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from ._validation import (
    ArrayLike,
    FunctionalInputError,
    ShapeError,
    TooManyClustersError,
    as_float_tensor,
    check_k,
    labelled_to_mask,
    make_generator,
    row_sq_norms,
    trivial_selection,
)
from .neighbours import Metric, _Keys, _min_distances, knn, min_distances, radius_neighbors

__all__ = [
    "KMeansResult",
    "bertkm_select",
    "estimate_probcover_delta",
    "kcenter_greedy",
    "kmeans",
    "kmeans_closest_to_centers",
    "kmeans_pp_init",
    "probcover",
    "typiclust",
]


class KMeansResult(NamedTuple):
    """Output of :func:`kmeans`."""

    centers: Tensor
    """``(n_clusters, d)`` float32 centroids."""
    labels: Tensor
    """``(N,)`` int64 cluster id of every point."""
    inertia: float
    """Sum of squared distances of the points to their centroid."""
    n_iter: int
    """Number of Lloyd iterations run."""


def _embeddings(x: ArrayLike, name: str = "embeddings") -> Tensor:
    t = as_float_tensor(x, name, 2)
    if t.shape[0] == 0:
        raise ShapeError(f"{name} must contain at least one row.")
    return t


def _check_n_clusters(n_clusters: int, n: int, what: str = "points") -> int:
    n_clusters = check_k(n_clusters, "n_clusters")
    if n_clusters < 1:
        raise FunctionalInputError("n_clusters must be >= 1.")
    if n_clusters > n:
        raise TooManyClustersError(f"n_clusters={n_clusters} exceeds the number of {what} ({n}).")
    return n_clusters


def _d2_seeding(
    n: int,
    n_seeds: int,
    first: int,
    sq_dist_to: Callable[[int], Tensor],
    candidates: Tensor,
    generator: torch.Generator,
) -> Tensor:
    """Generic k-means++ (D²) seeding on an implicit geometry.

    ``sq_dist_to(j)`` must return the ``(n,)`` squared distances from every point to point
    ``j``; it is called once per seed, so no pairwise matrix is ever formed. Only points
    with ``candidates[i]`` set are eligible and contribute. When every remaining
    candidate is at distance 0 from the seeds (duplicates), the next seed is uniform
    over the remaining candidates. Time O(n_seeds · cost(sq_dist_to)), memory O(n).
    """
    chosen = [first]
    eligible = candidates.clone()
    eligible[first] = False
    min_d = sq_dist_to(first).double().clamp_min(0.0)
    for _ in range(n_seeds - 1):
        w = torch.where(eligible, min_d, torch.zeros((), dtype=torch.float64))
        total = float(w.sum())
        if total > 0.0:
            cum = torch.cumsum(w, 0)
            u = torch.rand(1, generator=generator, dtype=torch.float64) * cum[-1]
            j = int(torch.searchsorted(cum, u, right=True).clamp_max(n - 1))
            if not bool(eligible[j]):  # only reachable by round-off at the upper end
                j = int(torch.nonzero(w).max())
        else:
            rest = eligible.nonzero().squeeze(1)
            j = int(rest[torch.randint(rest.numel(), (1,), generator=generator)])
        chosen.append(j)
        eligible[j] = False
        min_d = torch.minimum(min_d, sq_dist_to(j).double().clamp_min(0.0))
    return torch.tensor(chosen, dtype=torch.long)


def kmeans_pp_init(
    embeddings: ArrayLike,
    n_clusters: int,
    *,
    first: Literal["random", "max_norm"] = "random",
    labelled: ArrayLike | None = None,
    generator: torch.Generator | None = None,
    seed: int = 0,
) -> Tensor:
    """k-means++ seeding: indices of ``n_clusters`` points chosen by D² sampling.

    The first seed is uniform (``first="random"``, Arthur & Vassilvitskii) or the point of
    largest norm (``first="max_norm"``, as in BADGE); every next seed is drawn with
    probability proportional to its squared distance to the closest seed so far. Points
    in ``labelled`` are never chosen and do not take part.

    Reference: Arthur & Vassilvitskii, "k-means++: The Advantages of Careful Seeding",
    SODA 2007.

    Complexity: O(N · n_clusters · d) time, O(N) extra memory.

    Args:
        embeddings: ``(N, d)`` points.
        n_clusters: number of seeds, at most the number of eligible points.
        first: how to pick the first seed.
        labelled: mask or indices of points excluded from seeding.
        generator: random generator (overrides ``seed``).
        seed: seed of a fresh generator when ``generator`` is ``None``.

    Returns:
        ``(n_clusters,)`` int64 distinct indices, in the order they were picked.

    Raises:
        TooManyClustersError: when ``n_clusters`` exceeds the number of eligible points.

    >>> import torch
    >>> x = torch.tensor([[0.0, 0.0], [10.0, 10.0], [10.0, 10.0]])
    >>> kmeans_pp_init(x, 2, first="max_norm").tolist()  # the duplicate has D² = 0
    [1, 0]
    """
    x = _embeddings(embeddings)
    n = x.shape[0]
    cand = ~labelled_to_mask(labelled, n)
    n_clusters = _check_n_clusters(n_clusters, int(cand.sum()), "eligible points")
    gen = make_generator(generator, seed)
    x_sq = row_sq_norms(x)
    if first == "max_norm":
        j0 = int(torch.where(cand, x_sq, torch.tensor(-1.0)).argmax())
    elif first == "random":
        idx = cand.nonzero().squeeze(1)
        j0 = int(idx[torch.randint(idx.numel(), (1,), generator=gen)])
    else:
        raise FunctionalInputError(f"first must be 'random' or 'max_norm', got {first!r}.")

    def sq_dist_to(j: int) -> Tensor:
        return x_sq + x_sq[j] - 2.0 * (x @ x[j])

    return _d2_seeding(n, n_clusters, j0, sq_dist_to, cand, gen)


def kmeans(
    embeddings: ArrayLike,
    n_clusters: int,
    n_iter: int = 50,
    seed: int = 0,
    *,
    tol: float = 1e-4,
    init: ArrayLike | None = None,
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
) -> KMeansResult:
    """Lloyd's k-means with k-means++ seeding and chunked assignment.

    Stops after ``n_iter`` iterations, when no assignment changes, or when the squared
    centroid shift is below ``tol`` times the mean per-feature variance (as scikit-learn).
    Empty clusters are re-seeded at the points farthest from their centroid.

    Reference: Lloyd, "Least squares quantization in PCM", 1982; Arthur &
    Vassilvitskii, 2007 (seeding).

    Complexity: O(n_iter · N · n_clusters · d) time, O(chunk · n_clusters + N) extra
    memory.

    Args:
        embeddings: ``(N, d)`` points.
        n_clusters: number of clusters, ``1 <= n_clusters <= N``.
        n_iter: maximum number of Lloyd iterations.
        seed: seed of a fresh generator when ``generator`` is ``None``.
        tol: relative tolerance on the centroid shift.
        init: optional ``(n_clusters, d)`` initial centroids (skips k-means++).
        generator: random generator for the seeding (overrides ``seed``).
        chunk_size: rows per assignment chunk.

    Returns:
        A :class:`KMeansResult` ``(centers, labels, inertia, n_iter)``.

    Raises:
        TooManyClustersError: when ``n_clusters > N``.

    >>> import torch
    >>> x = torch.tensor([[0.0], [0.2], [10.0], [10.2]])
    >>> res = kmeans(x, 2, seed=0)
    >>> sorted(round(c, 1) for c in res.centers.squeeze(1).tolist())
    [0.1, 10.1]
    """
    x = _embeddings(embeddings)
    n, d = x.shape
    n_clusters = _check_n_clusters(n_clusters, n)
    if n_iter < 1:
        raise FunctionalInputError(f"n_iter must be >= 1, got {n_iter}.")
    if init is None:
        centers = x[kmeans_pp_init(x, n_clusters, generator=generator, seed=seed)].clone()
    else:
        centers = as_float_tensor(init, "init", 2).clone()
        if centers.shape != (n_clusters, d):
            raise ShapeError(
                f"init must have shape ({n_clusters}, {d}), got {tuple(centers.shape)}."
            )
    # tol is relative to the mean per-feature variance (no (N, d) temporary).
    flat = x.reshape(-1)
    mean = x.mean(0)
    variance = (float(torch.dot(flat, flat)) / n - float(torch.dot(mean, mean))) / d
    threshold = tol * max(variance, 0.0)
    labels = torch.full((n,), -1, dtype=torch.long)
    n_done = 0
    converged = False
    for _ in range(n_iter):
        n_done += 1
        min_d, new_labels = _min_distances(x, _Keys(centers, "euclidean"), chunk_size)
        converged = not bool((new_labels != labels).any())
        labels = new_labels
        if converged:
            break
        counts = torch.bincount(labels, minlength=n_clusters)
        sums = torch.zeros(n_clusters, d).index_add_(0, labels, x)
        new_centers = sums / counts.clamp_min(1).unsqueeze(1).float()
        empty = (counts == 0).nonzero().squeeze(1)
        if empty.numel():
            far = torch.topk(min_d, empty.numel()).indices
            new_centers[empty] = x[far]
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if shift <= threshold:
            break
    if not converged:  # final assignment so that labels match the returned centers
        min_d, labels = _min_distances(x, _Keys(centers, "euclidean"), chunk_size)
    return KMeansResult(centers, labels, float(min_d.double().sum()), n_done)


def kmeans_closest_to_centers(
    embeddings: ArrayLike,
    centers: ArrayLike,
    *,
    labelled: ArrayLike | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    """For every center, the nearest unlabelled point, all distinct (BERT-KM's pick).

    When two centers share their nearest point, the center closer to it keeps it and the
    other falls back to its next nearest free point.

    Reference: Chang, Shen, Zhu, Demberg & Su, "On Training Instance Selection for
    Few-Shot Neural Text Generation", ACL 2021 (k-means on BERT embeddings, pick the
    example nearest each centroid).

    Complexity: O(N · K · d) for K centers (more only when many centers compete for the
    same points), memory O(chunk · N_candidates + K · m).

    Args:
        embeddings: ``(N, d)`` points.
        centers: ``(K, d)`` centroids, ``K <= number of unlabelled points``.
        labelled: mask or indices of points that must not be returned.
        chunk_size: center rows per distance chunk.

    Returns:
        ``(K,)`` int64 distinct indices into ``embeddings``; entry i serves center i.

    >>> import torch
    >>> x = torch.tensor([[0.0], [1.0], [9.0], [10.0]])
    >>> kmeans_closest_to_centers(x, torch.tensor([[0.2], [9.9]])).tolist()
    [0, 3]
    """
    x = _embeddings(embeddings)
    c = as_float_tensor(centers, "centers", 2)
    if c.shape[1] != x.shape[1]:
        raise ShapeError(f"centers must have {x.shape[1]} columns, got {c.shape[1]}.")
    cand = (~labelled_to_mask(labelled, x.shape[0])).nonzero().squeeze(1)
    n_k = c.shape[0]
    _check_n_clusters(n_k, cand.numel(), "unlabelled points")
    xc = x if cand.numel() == x.shape[0] else x[cand]
    result = torch.full((n_k,), -1, dtype=torch.long)
    taken = torch.zeros(cand.numel(), dtype=torch.bool)
    pending = torch.arange(n_k)
    m = 1
    while pending.numel():
        free = (~taken).nonzero().squeeze(1)
        mm = min(m, free.numel())
        keys = xc if free.numel() == xc.shape[0] else xc[free]
        dist, nn = knn(c[pending], keys, mm, chunk_size=chunk_size)
        nn = free[nn]
        order = torch.argsort(dist[:, 0], stable=True)
        unresolved = []
        for r in order.tolist():
            for j in nn[r].tolist():
                if not bool(taken[j]):
                    taken[j] = True
                    result[pending[r]] = cand[j]
                    break
            else:
                unresolved.append(int(pending[r]))
        pending = torch.tensor(sorted(unresolved), dtype=torch.long)
        m *= 4
    return result


def bertkm_select(
    embeddings: ArrayLike,
    k: int,
    *,
    labelled: ArrayLike | None = None,
    n_iter: int = 50,
    generator: torch.Generator | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
) -> Tensor:
    """BERT-KM: k-means on the unlabelled embeddings, then the point nearest each centroid.

    Reference: Chang et al., ACL 2021; used as a cold-start baseline by Yuan, Lin &
    Boyd-Graber, "Cold-start Active Learning through Self-supervised Language
    Modeling", EMNLP 2020.

    Complexity: O(n_iter · N · k · d) time, O(chunk · k + N) memory.

    Args:
        embeddings: ``(N, d)`` pool embeddings.
        k: number of points to select.
        labelled: mask or indices of points that are not candidates.
        n_iter: maximum k-means iterations.
        generator: random generator (overrides ``seed``).
        seed: seed of a fresh generator when ``generator`` is ``None``.
        chunk_size: rows per distance chunk.

    Returns:
        ``(min(k, n_candidates),)`` int64 distinct indices.

    >>> import torch
    >>> x = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    >>> sorted(bertkm_select(x, 2).tolist())
    [1, 4]
    """
    x = _embeddings(embeddings)
    k, free, done = trivial_selection(k, labelled, x.shape[0])
    if done is not None:
        return done
    cand = free.nonzero().squeeze(1)
    xc = x if cand.numel() == x.shape[0] else x[cand]
    res = kmeans(xc, k, n_iter=n_iter, generator=generator, seed=seed, chunk_size=chunk_size)
    return cand[kmeans_closest_to_centers(xc, res.centers, chunk_size=chunk_size)]


def kcenter_greedy(
    embeddings: ArrayLike,
    k: int,
    labelled: ArrayLike | None = None,
    *,
    initial_centers: ArrayLike | None = None,
    generator: torch.Generator | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
) -> Tensor:
    """Greedy k-center (Core-Set): repeatedly take the point farthest from all centers.

    Centers are the labelled points plus ``initial_centers`` (e.g. embeddings of labelled
    data that is not in the pool). A vector of each point's squared distance to its
    nearest center is kept and updated with one O(N·d) pass per pick. With no center at
    all, the first pick is uniform over the candidates.

    Reference: Sener & Savarese, "Active Learning for Convolutional Neural Networks: A
    Core-Set Approach", ICLR 2018 (greedy 2-approximation of k-center).

    Complexity: O(N · (L + k) · d) time for L initial centers, O(chunk · L + N) memory.

    Args:
        embeddings: ``(N, d)`` pool embeddings.
        k: number of points to select.
        labelled: mask or indices of labelled pool points (centers, never selected).
        initial_centers: optional ``(M, d)`` extra centers.
        generator: random generator for the first pick (overrides ``seed``).
        seed: seed of a fresh generator when ``generator`` is ``None``.
        chunk_size: rows per distance chunk.

    Returns:
        ``(min(k, n_candidates),)`` int64 distinct indices in pick order.

    >>> import torch
    >>> x = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    >>> kcenter_greedy(x, 2, labelled=[0]).tolist()
    [3, 2]
    """
    x = _embeddings(embeddings)
    n, d = x.shape
    k, cand, done = trivial_selection(k, labelled, n)
    if done is not None:
        return done
    lab = ~cand
    centers = x[lab]
    if initial_centers is not None:
        extra = as_float_tensor(initial_centers, "initial_centers", 2)
        if extra.shape[1] != d:
            raise ShapeError(f"initial_centers must have {d} columns, got {extra.shape[1]}.")
        centers = torch.cat([centers, extra])
    x_sq = row_sq_norms(x)
    chosen: list[int] = []
    if centers.shape[0]:
        min_d, _ = min_distances(x, centers, squared=True, chunk_size=chunk_size)
    else:
        gen = make_generator(generator, seed)
        idx = cand.nonzero().squeeze(1)
        first = int(idx[torch.randint(idx.numel(), (1,), generator=gen)])
        chosen.append(first)
        cand[first] = False
        min_d = (x_sq + x_sq[first] - 2.0 * (x @ x[first])).clamp_min(0.0)
    neg = torch.tensor(-1.0)
    while len(chosen) < k:
        j = int(torch.where(cand, min_d, neg).argmax())
        chosen.append(j)
        cand[j] = False
        min_d = torch.minimum(min_d, (x_sq + x_sq[j] - 2.0 * (x @ x[j])).clamp_min(0.0))
    return torch.tensor(chosen, dtype=torch.long)


def _typicality(points: Tensor, n_neighbors: int, chunk_size: int | None) -> Tensor:
    m = points.shape[0]
    kk = min(n_neighbors, m - 1)
    if kk < 1:
        return torch.ones(m)
    dist, _ = knn(points, points, kk, exclude_self=True, chunk_size=chunk_size)
    return 1.0 / (dist.mean(1) + 1e-5)


def typiclust(
    embeddings: ArrayLike,
    k: int,
    labelled: ArrayLike | None = None,
    *,
    n_neighbors: int = 20,
    n_clusters: int | None = None,
    max_clusters: int = 500,
    min_cluster_size: int = 5,
    cluster_labels: ArrayLike | None = None,
    n_iter: int = 50,
    generator: torch.Generator | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
) -> Tensor:
    """TypiClust: the most typical point of each least-covered cluster.

    The whole pool (labelled and unlabelled) is clustered with k-means into
    ``min(|L| + k, max_clusters)`` clusters (or ``n_clusters``, or the given
    ``cluster_labels``). Then k times: take the cluster with the fewest labelled (or
    already selected) points, ties broken by larger size, clusters of at most
    ``min_cluster_size`` points last; inside it pick the unlabelled point of highest
    typicality ``1 / mean distance to its min(n_neighbors, n_c // 2)`` nearest unlabelled
    neighbours in the cluster (as the reference implementation).

    Reference: Hacohen, Dekel & Weinshall, "Active Learning on a Budget: Opposite
    Strategies Suit High and Low Budgets", ICML 2022 (TPC_RP).

    Complexity: O(n_iter · N · K · d) for k-means with K clusters plus
    O(Σ_visited n_c² · d) for the in-cluster kNN (chunked); memory O(chunk · n_c + N).

    Args:
        embeddings: ``(N, d)`` pool embeddings.
        k: number of points to select.
        labelled: mask or indices of labelled pool points.
        n_neighbors: neighbours in the typicality estimate (paper: 20).
        n_clusters: number of clusters (default ``min(|L| + k, max_clusters)``).
        max_clusters: cap on the default number of clusters (paper code: 500).
        min_cluster_size: clusters this small or smaller are used only as a last resort.
        cluster_labels: optional precomputed ``(N,)`` cluster ids (skips k-means).
        n_iter: maximum k-means iterations.
        generator: random generator for k-means (overrides ``seed``).
        seed: seed of a fresh generator when ``generator`` is ``None``.
        chunk_size: rows per distance chunk.

    Returns:
        ``(min(k, n_candidates),)`` int64 distinct indices in pick order.

    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> blob = torch.randn(30, 2, generator=g) * 0.1
    >>> x = torch.cat([blob, torch.tensor([[3.0, 3.0]])])  # 30 dense points + an outlier
    >>> int(typiclust(x, 1, n_clusters=1)[0]) != 30
    True
    """
    x = _embeddings(embeddings)
    n = x.shape[0]
    k, free, done = trivial_selection(k, labelled, n)
    if done is not None:
        return done
    lab = ~free
    if n_neighbors < 1:
        raise FunctionalInputError(f"n_neighbors must be >= 1, got {n_neighbors}.")
    if cluster_labels is not None:
        labels = torch.as_tensor(cluster_labels).long().cpu()
        if labels.shape != (n,):
            raise ShapeError(f"cluster_labels must have shape ({n},), got {tuple(labels.shape)}.")
        _, labels = torch.unique(labels, return_inverse=True)
    else:
        n_cl = n_clusters if n_clusters is not None else min(int(lab.sum()) + k, max_clusters, n)
        n_cl = _check_n_clusters(n_cl, n)
        labels = kmeans(
            x, n_cl, n_iter=n_iter, generator=generator, seed=seed, chunk_size=chunk_size
        ).labels
    n_cl = int(labels.max()) + 1
    sizes = torch.bincount(labels, minlength=n_cl)
    covered = torch.bincount(labels[lab], minlength=n_cl)
    remaining = torch.bincount(labels[free], minlength=n_cl)
    small = (sizes <= min_cluster_size).long()
    chosen: list[int] = []
    for _ in range(k):
        # lexicographic priority: big clusters first, then fewest labelled, then largest.
        key = torch.stack([small, covered, -sizes, torch.arange(n_cl)], 1)
        key[remaining == 0, 0] = 2  # nothing left to pick there
        c = int(sorted(range(n_cl), key=lambda i: tuple(key[i].tolist()))[0])
        members = ((labels == c) & free).nonzero().squeeze(1)
        n_nb = max(1, min(n_neighbors, members.numel() // 2))
        typ = _typicality(x[members], n_nb, chunk_size)
        j = int(members[int(typ.argmax())])
        chosen.append(j)
        free[j] = False
        covered[c] += 1
        remaining[c] -= 1
    return torch.tensor(chosen, dtype=torch.long)


def estimate_probcover_delta(
    embeddings: ArrayLike,
    cluster_labels: ArrayLike,
    alpha: float = 0.95,
    metric: Metric = "euclidean",
    *,
    chunk_size: int | None = None,
) -> float:
    """Largest ball radius δ whose purity is at least ``alpha`` (ProbCover's δ rule).

    A ball ``B_δ(x)`` is pure when every point in it shares ``x``'s cluster label, i.e.
    when δ is smaller than the distance from ``x`` to the nearest point of another
    cluster. Purity(δ) is the fraction of pure balls; this returns the largest δ with
    purity ≥ ``alpha`` (up to a 1e-5 relative margin against round-off), computed from
    those nearest-other-cluster distances instead of the paper's grid search.

    Reference: Yehuda, Dekel, Hacohen & Weinshall, "Active Learning Through a Covering
    Lens", NeurIPS 2022.

    Complexity: O(N² · d) time (chunked, one cluster against the rest), O(chunk · N + N)
    memory.

    Args:
        embeddings: ``(N, d)`` pool embeddings (as given to :func:`probcover`).
        cluster_labels: ``(N,)`` cluster ids, e.g. ``kmeans(embeddings, K).labels``.
        alpha: required purity, in ``(0, 1]`` (paper: 0.95).
        metric: ``"euclidean"`` or ``"cosine"``.
        chunk_size: rows per distance chunk.

    Returns:
        δ as a float (``inf`` when there is a single cluster).

    >>> import torch
    >>> x = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    >>> estimate_probcover_delta(x, [0, 0, 1, 1], alpha=1.0) < 9.0
    True
    """
    x = _embeddings(embeddings)
    n = x.shape[0]
    labels = torch.as_tensor(cluster_labels).long().cpu()
    if labels.shape != (n,):
        raise ShapeError(f"cluster_labels must have shape ({n},), got {tuple(labels.shape)}.")
    if not 0.0 < alpha <= 1.0:
        raise FunctionalInputError(f"alpha must be in (0, 1], got {alpha}.")
    if metric not in ("euclidean", "cosine"):
        raise FunctionalInputError(f"metric must be 'euclidean' or 'cosine', got {metric!r}.")
    # Sort by cluster so that "every other cluster" is two contiguous slices of keys.
    order = torch.argsort(labels, stable=True)
    xs = x[order]
    ends = torch.cumsum(torch.bincount(labels[order] - labels.min()), 0).tolist()
    d_sorted = torch.full((n,), float("inf"))
    begin = 0
    for end in ends:
        if end == begin:
            continue
        for lo, hi in ((0, begin), (end, n)):
            if hi > lo:
                d, _ = _min_distances(xs[begin:end], _Keys(xs[lo:hi], metric), chunk_size, False)
                d_sorted[begin:end] = torch.minimum(d_sorted[begin:end], d)
        begin = end
    d_other = torch.empty(n)
    d_other[order] = d_sorted
    srt = torch.sort(d_other).values
    j = int((1.0 - alpha) * n + 1e-9)  # at most j impure balls are allowed
    finite = srt[torch.isfinite(srt)]
    if j >= finite.numel():  # every ball with another cluster in reach may be impure
        return float(finite.max()) if finite.numel() else float("inf")
    # just below the (j+1)-th smallest distance, with a margin above float round-off
    below = float(srt[j]) * (1.0 - 1e-5)
    return max(below, float(srt[j - 1])) if j > 0 else below


def probcover(
    embeddings: ArrayLike,
    k: int,
    labelled: ArrayLike | None = None,
    delta: float | None = None,
    *,
    metric: Metric = "euclidean",
    max_neighbors: int | None = None,
    generator: torch.Generator | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
) -> Tensor:
    """ProbCover: greedy maximum coverage of the pool by δ-balls around selected points.

    Builds the δ-ball graph (edge x→y when ``dist(x, y) <= delta``, self loops included)
    as a sparse edge list, removes the points already covered by labelled balls, and k
    times selects the unlabelled point covering most uncovered points. Once everything is
    covered the rest of the budget is filled uniformly at random, as in the paper.

    Reference: Yehuda, Dekel, Hacohen & Weinshall, "Active Learning Through a Covering
    Lens", NeurIPS 2022. See :func:`estimate_probcover_delta` for choosing δ.

    Complexity: O(N² · d) time to build the graph (chunked) plus O(k · E) for the greedy
    cover, memory O(chunk · N + E) for E edges (``E <= N · max_neighbors`` when set,
    which truncates the balls of points with more neighbours).

    Args:
        embeddings: ``(N, d)`` pool embeddings (the paper L2-normalises self-supervised
            features first).
        k: number of points to select.
        labelled: mask or indices of labelled pool points.
        delta: ball radius (required; see :func:`estimate_probcover_delta`).
        metric: ``"euclidean"`` or ``"cosine"``.
        max_neighbors: optional cap on edges per point (memory bound).
        generator: random generator for the fill-in picks (overrides ``seed``).
        seed: seed of a fresh generator when ``generator`` is ``None``.
        chunk_size: rows per distance chunk.

    Returns:
        ``(min(k, n_candidates),)`` int64 distinct indices in pick order.

    >>> import torch
    >>> x = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.1]])
    >>> probcover(x, 2, delta=0.5).tolist()  # centre of the big group, then the other group
    [0, 3]
    """
    x = _embeddings(embeddings)
    n = x.shape[0]
    k = check_k(k)
    if delta is None:
        raise FunctionalInputError(
            "probcover needs the ball radius delta; estimate it with "
            "estimate_probcover_delta(embeddings, kmeans(embeddings, K).labels, alpha=0.95)."
        )
    k, cand, done = trivial_selection(k, labelled, n)
    if done is not None:
        return done
    lab = ~cand
    rows, cols, _ = radius_neighbors(
        x, x, float(delta), metric, max_neighbors=max_neighbors, chunk_size=chunk_size
    )
    covered = torch.zeros(n, dtype=torch.bool)
    if bool(lab.any()):
        covered[cols[lab[rows]]] = True
    keep = ~covered[cols]
    rows, cols = rows[keep], cols[keep]
    gen = make_generator(generator, seed)
    chosen: list[int] = []
    for _ in range(k):
        deg = torch.bincount(rows, minlength=n)
        deg[~cand] = -1
        j = int(deg.argmax())
        if int(deg[j]) <= 0:
            rest = cand.nonzero().squeeze(1)
            j = int(rest[torch.randint(rest.numel(), (1,), generator=gen)])
        chosen.append(j)
        cand[j] = False
        newly = cols[rows == j]
        if newly.numel():
            covered[newly] = True
            keep = ~covered[cols]
            rows, cols = rows[keep], cols[keep]
    return torch.tensor(chosen, dtype=torch.long)
