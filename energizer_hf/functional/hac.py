"""Approximate average-linkage hierarchical clustering (HAC) for pools of any size.

:func:`hac_clusters` summarises the pool by k-means into ``n_micro_clusters`` (default
512) weighted micro-clusters when it is larger than that, and runs exact weighted
average-linkage (UPGMA) on them: the only ``(m, m)`` matrix is over at most
``n_micro_clusters`` items, whatever N is. Used by Cluster-Margin
(:func:`energizer_hf.functional.hybrid.cluster_margin`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._validation import (
    ArrayLike,
    FunctionalInputError,
    TooManyClustersError,
    make_generator,
    sq_euclidean,
)
from .diversity import _check_n_clusters, _embeddings, kmeans, kmeans_pp_init
from .neighbours import Metric

__all__ = ["hac_clusters"]


def _average_linkage(
    points: Tensor, weights: Tensor, n_clusters: int | None, threshold: float | None, metric: str
) -> Tensor:
    """Weighted average-linkage (UPGMA) on a small set; returns a label per point."""
    m = points.shape[0]
    if metric == "cosine":
        z = F.normalize(points, dim=1)
        dist = (1.0 - z @ z.T).clamp_(0.0, 2.0).double()
    else:
        dist = sq_euclidean(points, points).sqrt().double()
    dist.fill_diagonal_(float("inf"))
    w = weights.double().clone()
    labels = torch.arange(m)
    alive = m
    target = n_clusters if n_clusters is not None else 1
    while alive > target:
        flat = int(torch.argmin(dist))
        i, j = divmod(flat, m)
        if threshold is not None and float(dist[i, j]) >= threshold:
            break
        i, j = min(i, j), max(i, j)
        new = (w[i] * dist[i] + w[j] * dist[j]) / (w[i] + w[j])
        dist[i] = new
        dist[:, i] = new
        dist[i, i] = float("inf")
        dist[j] = float("inf")
        dist[:, j] = float("inf")
        w[i] += w[j]
        labels[labels == j] = i
        alive -= 1
    return torch.unique(labels, return_inverse=True)[1]


def hac_clusters(
    embeddings: ArrayLike,
    n_clusters: int | None = None,
    distance_threshold: float | None = None,
    *,
    metric: Metric = "euclidean",
    n_micro_clusters: int = 512,
    n_iter: int = 20,
    generator: torch.Generator | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
) -> Tensor:
    """Average-linkage agglomerative clustering, approximated for large pools.

    Exactly one of ``n_clusters`` (merge until that many clusters remain) and
    ``distance_threshold`` (stop when the closest pair is at least that far apart, as
    scikit-learn) must be given. When ``N <= n_micro_clusters`` this is exact
    average-linkage (UPGMA) on the points. Otherwise the pool is first summarised by
    k-means into ``n_micro_clusters`` micro-clusters, and weighted average-linkage runs on
    their centroids (weights = sizes); points inherit their micro-cluster's cluster. The
    approximation replaces the mean pairwise distance between two clusters by the
    size-weighted mean distance between their micro-centroids (it ignores the spread
    inside micro-clusters), and caps the number of clusters at ``n_micro_clusters``.

    Reference: Citovsky et al., "Batch Active Learning at Scale", NeurIPS 2021 (HAC for
    Cluster-Margin); Sokal & Michener, 1958 (UPGMA).

    Complexity: O(n_iter · N · m · d) for the k-means summary (seeded by k-means++ on a
    random subsample of 16·m points) plus O(m³) for the linkage, m = min(N,
    n_micro_clusters); memory O(m² + chunk · m + N).

    Args:
        embeddings: ``(N, d)`` points.
        n_clusters: number of clusters to stop at.
        distance_threshold: linkage distance at or above which clusters are not merged.
        metric: ``"euclidean"`` or ``"cosine"``.
        n_micro_clusters: exact below this many points, else size m of the k-means summary.
        n_iter: Lloyd iterations of the k-means summary.
        generator: random generator of the summary (overrides ``seed``).
        seed: seed of a fresh generator when ``generator`` is ``None``.
        chunk_size: rows per distance chunk.

    Returns:
        ``(N,)`` int64 cluster ids in ``[0, n_found)``.

    >>> import torch
    >>> x = torch.tensor([[0.0], [0.1], [5.0], [5.2], [9.0]])
    >>> hac_clusters(x, n_clusters=3).tolist()
    [0, 0, 1, 1, 2]
    """
    x = _embeddings(embeddings)
    n = x.shape[0]
    if (n_clusters is None) == (distance_threshold is None):
        raise FunctionalInputError("give exactly one of n_clusters and distance_threshold.")
    if n_clusters is not None:
        n_clusters = _check_n_clusters(n_clusters, n)
    if n_micro_clusters < 2:
        raise FunctionalInputError(f"n_micro_clusters must be >= 2, got {n_micro_clusters}.")
    if n_clusters is not None and n_clusters > n_micro_clusters and n > n_micro_clusters:
        raise TooManyClustersError(
            f"n_clusters={n_clusters} exceeds n_micro_clusters={n_micro_clusters}; raise the latter."
        )
    if n <= n_micro_clusters:
        return _average_linkage(x, torch.ones(n), n_clusters, distance_threshold, metric)
    xm = F.normalize(x, dim=1) if metric == "cosine" else x
    gen = make_generator(generator, seed)
    # k-means++ seeding on a random subsample (16 points per micro-cluster) keeps the
    # sequential seeding cheap; Lloyd iterations then run on the whole pool.
    sub = torch.randperm(n, generator=gen)[: min(n, 16 * n_micro_clusters)]
    init = xm[sub[kmeans_pp_init(xm[sub], n_micro_clusters, generator=gen)]]
    res = kmeans(xm, n_micro_clusters, n_iter=n_iter, init=init, chunk_size=chunk_size)
    sizes = torch.bincount(res.labels, minlength=n_micro_clusters)
    used = (sizes > 0).nonzero().squeeze(1)
    remap = torch.full((n_micro_clusters,), -1, dtype=torch.long)
    remap[used] = torch.arange(used.numel())
    if n_clusters is not None and n_clusters > used.numel():
        raise TooManyClustersError(
            f"only {used.numel()} non-empty micro-clusters for {n_clusters} clusters."
        )
    micro_labels = _average_linkage(
        res.centers[used], sizes[used].float(), n_clusters, distance_threshold, metric
    )
    return micro_labels[remap[res.labels]]
