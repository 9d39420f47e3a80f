"""Known-answer tests for energizer_hf.functional.diversity and .neighbours."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors

from energizer_hf.functional import (
    TooManyClustersError,
    bertkm_select,
    estimate_probcover_delta,
    hac_clusters,
    kcenter_greedy,
    kmeans,
    kmeans_closest_to_centers,
    kmeans_pp_init,
    knn,
    min_distances,
    probcover,
    radius_neighbors,
    typiclust,
)


def blobs(sizes, dim=8, spread=0.1, sep=10.0, seed=0):
    """Well-separated Gaussian blobs; returns (x, y, centers)."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(len(sizes), dim, generator=g) * sep
    xs, ys = [], []
    for i, s in enumerate(sizes):
        xs.append(centers[i] + spread * torch.randn(s, dim, generator=g))
        ys.append(torch.full((s,), i))
    return torch.cat(xs), torch.cat(ys), centers


# ---------------------------------------------------------------- neighbours
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_knn_matches_sklearn(metric):
    g = torch.Generator().manual_seed(0)
    q, keys = torch.randn(37, 5, generator=g), torch.randn(53, 5, generator=g)
    d, i = knn(q, keys, 4, metric, chunk_size=7)
    ref = NearestNeighbors(n_neighbors=4, metric=metric, algorithm="brute").fit(keys.numpy())
    rd, ri = ref.kneighbors(q.numpy())
    np.testing.assert_array_equal(i.numpy(), ri)
    np.testing.assert_allclose(d.numpy(), rd, atol=1e-4)


def test_knn_exclude_self_and_min_distances():
    x = torch.tensor([[0.0], [1.0], [3.0]])
    d, i = knn(x, x, 1, exclude_self=True, chunk_size=2)
    assert i.squeeze(1).tolist() == [1, 0, 1]
    assert d.squeeze(1).tolist() == [1.0, 1.0, 2.0]
    md, mi = min_distances(x, torch.tensor([[2.5]]), squared=True)
    assert mi.tolist() == [0, 0, 0] and md.tolist() == [6.25, 2.25, 0.25]
    with pytest.raises(ValueError):
        knn(x, x, 3, exclude_self=True)


@pytest.mark.parametrize("max_neighbors", [None, 3])
def test_radius_neighbors_matches_brute_force(max_neighbors):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(60, 3, generator=g)
    r, c, d = radius_neighbors(x, x, 0.8, max_neighbors=max_neighbors, chunk_size=11)
    full = torch.cdist(x, x)
    if max_neighbors is None:
        expected = set(map(tuple, (full <= 0.8).nonzero().tolist()))
    else:
        top = torch.topk(full, max_neighbors, largest=False).indices
        expected = {(i, j) for i in range(60) for j in top[i].tolist() if full[i, j] <= 0.8}
    assert set(zip(r.tolist(), c.tolist())) == expected
    torch.testing.assert_close(d, full[r, c], atol=1e-4, rtol=0)
    assert bool((r[1:] >= r[:-1]).all())


# ---------------------------------------------------------------- k-center
def test_kcenter_picks_farthest_point_from_labelled_set():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0], [-3.0, 0.0], [9.0, 9.0]])
    assert kcenter_greedy(x, 1, labelled=[0]).tolist() == [5]
    # then farthest from {0, 5}: (5,5) is 7.07 from 5 and 7.07 from 0; (-3,0) is 3 from 0.
    picked = kcenter_greedy(x, 3, labelled=torch.tensor([True, False, False, False, False, False]))
    assert picked.tolist() == [5, 3, 4]


def test_kcenter_matches_brute_force_greedy_and_initial_centers():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(200, 6, generator=g)
    lab = [3, 17, 50]
    cur = torch.cdist(x, x[lab]).min(1).values
    cur[lab] = -1
    expected = []
    for _ in range(10):
        j = int(cur.argmax())
        expected.append(j)
        cur = torch.minimum(cur, torch.cdist(x, x[j : j + 1]).squeeze(1))
        cur[lab + expected] = -1
    assert kcenter_greedy(x, 10, labelled=lab, chunk_size=16).tolist() == expected
    # the same centers passed as external embeddings give the same picks (among the pool).
    picked = kcenter_greedy(x, 10, initial_centers=x[lab])
    assert picked.tolist() == expected


# ---------------------------------------------------------------- k-means
def test_kmeans_recovers_well_separated_blobs():
    x, y, _ = blobs([40, 60, 30, 70], seed=3)
    res = kmeans(x, 4, seed=0)
    assert adjusted_rand_score(y.numpy(), res.labels.numpy()) == 1.0
    ref = KMeans(4, n_init=3, random_state=0).fit(x.numpy())
    assert res.inertia == pytest.approx(ref.inertia_, rel=1e-3)
    assert res.centers.shape == (4, 8) and res.n_iter >= 1
    # labels are consistent with the returned centers
    torch.testing.assert_close(res.labels, torch.cdist(x, res.centers).argmin(1))


def test_kmeans_is_deterministic_and_errors():
    x, _, _ = blobs([20, 20, 20], seed=4)
    a, b = kmeans(x, 5, seed=7), kmeans(x, 5, seed=7)
    torch.testing.assert_close(a.centers, b.centers)
    with pytest.raises(TooManyClustersError):
        kmeans(x, 61)
    with pytest.raises(ValueError):
        kmeans(x, 3, init=torch.zeros(2, 8))


def test_kmeans_pp_init_never_repeats_and_respects_labelled():
    x = torch.cat([torch.zeros(10, 2), torch.ones(10, 2) * 5])  # two groups of duplicates
    seeds = kmeans_pp_init(x, 2, seed=0)
    assert {int(s) // 10 for s in seeds} == {0, 1}  # D² = 0 for duplicates of a seed
    seeds = kmeans_pp_init(x, 5, seed=0)
    assert len(set(seeds.tolist())) == 5
    lab = torch.arange(10)
    assert set(kmeans_pp_init(x, 4, labelled=lab, seed=1).tolist()) <= set(range(10, 20))
    with pytest.raises(TooManyClustersError):
        kmeans_pp_init(x, 11, labelled=lab)


# ---------------------------------------------------------------- BERT-KM
def test_kmeans_closest_to_centers_returns_nearest_points():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(100, 4, generator=g)
    centers = torch.randn(6, 4, generator=g) * 3
    got = kmeans_closest_to_centers(x, centers)
    expected = torch.cdist(centers, x).argmin(1)
    if len(set(expected.tolist())) == 6:
        assert got.tolist() == expected.tolist()
    # two identical centers cannot share a point: the second gets the next nearest.
    dup = torch.stack([centers[0], centers[0]])
    order = torch.cdist(dup[:1], x).argsort(1)[0]
    assert kmeans_closest_to_centers(x, dup).tolist() == order[:2].tolist()
    # labelled points are skipped
    got = kmeans_closest_to_centers(x, centers, labelled=expected)
    assert not set(got.tolist()) & set(expected.tolist())


def test_bertkm_returns_the_point_nearest_each_blob_center():
    x, y, _ = blobs([30, 30, 30], seed=6)
    picked = bertkm_select(x, 3, seed=0)
    assert sorted(y[picked].tolist()) == [0, 1, 2]
    for j in picked.tolist():
        members = (y == y[j]).nonzero().squeeze(1)
        mean = x[members].mean(0)
        assert j == int(members[torch.cdist(mean[None], x[members]).argmin()])


# ---------------------------------------------------------------- TypiClust
def _dense_blobs_with_outliers():
    x, y, centers = blobs([50, 50, 50], dim=4, spread=0.3, sep=10.0, seed=7)
    g = torch.Generator().manual_seed(8)
    # outliers: each attached to a blob (same cluster) but far out on its edge.
    outliers = centers.repeat_interleave(3, 0) + 2.5 * torch.randn(9, 4, generator=g)
    return torch.cat([x, outliers]), torch.cat([y, torch.arange(3).repeat_interleave(3)])


def test_typiclust_picks_dense_points_not_outliers():
    x, y = _dense_blobs_with_outliers()
    picked = typiclust(x, 3, n_clusters=3, seed=0)
    assert sorted(y[picked].tolist()) == [0, 1, 2]  # one per cluster
    assert all(j < 150 for j in picked.tolist())  # never an outlier
    # the picked point is the most typical of its blob (highest inverse mean 20-NN distance)
    for j in picked.tolist():
        members = ((y == y[j]).nonzero().squeeze(1)).tolist()
        d = torch.cdist(x[members], x[members])
        typ = 1 / (d.sort(1).values[:, 1:21].mean(1) + 1e-5)
        assert j == members[int(typ.argmax())]


def test_typiclust_goes_to_uncovered_clusters_first():
    x, y = _dense_blobs_with_outliers()
    labelled = (y == 0).nonzero().squeeze(1)[:5]
    picked = typiclust(x, 2, labelled, n_clusters=3, seed=0)
    assert sorted(y[picked].tolist()) == [1, 2]
    # more picks than clusters: round-robin, never twice the same point
    picked = typiclust(x, 7, labelled, n_clusters=3, seed=0)
    assert len(set(picked.tolist())) == 7


# ---------------------------------------------------------------- ProbCover
def test_probcover_covers_distinct_clusters_first():
    x, y, _ = blobs([60, 30, 10], dim=4, spread=0.1, seed=9)
    picked = probcover(x, 3, delta=1.5)
    assert y[picked].tolist() == [0, 1, 2]  # biggest uncovered ball first
    labelled = (y == 0).nonzero().squeeze(1)[:1]
    picked = probcover(x, 2, labelled, delta=1.5)
    assert y[picked].tolist() == [1, 2]


def test_probcover_matches_brute_force_max_coverage():
    g = torch.Generator().manual_seed(10)
    x = torch.rand(80, 2, generator=g)
    delta = 0.15
    adj = torch.cdist(x, x) <= delta
    covered = adj[[0, 1]].any(0)
    expected = []
    for _ in range(6):
        gain = (adj & ~covered).sum(1)
        gain[[0, 1, *expected]] = -1
        j = int(gain.argmax())
        expected.append(j)
        covered |= adj[j]
    assert probcover(x, 6, [0, 1], delta=delta, chunk_size=13).tolist() == expected


def test_probcover_fills_randomly_once_everything_is_covered():
    x = torch.tensor([[0.0], [0.1], [0.2], [0.3]])
    picked = probcover(x, 3, delta=10.0, seed=0)
    assert len(set(picked.tolist())) == 3
    assert picked.tolist() == probcover(x, 3, delta=10.0, seed=0).tolist()
    assert probcover(x, 2, None, 0.05).tolist() == probcover(x, 2, delta=0.05).tolist()
    with pytest.raises(ValueError, match="estimate_probcover_delta"):
        probcover(x, 2)


def test_estimate_probcover_delta_purity():
    x, y, _ = blobs([40, 40], dim=2, spread=1.0, sep=2.0, seed=11)
    labels = kmeans(x, 2, seed=0).labels
    delta = estimate_probcover_delta(x, labels, alpha=0.9)
    d = torch.cdist(x, x)
    other = labels[None, :] != labels[:, None]

    def purity(r):
        return float((~(other & (d <= r)).any(1)).double().mean())

    assert purity(delta) >= 0.9
    assert purity(delta * 1.001) < 0.9  # and it is the largest such radius
    assert estimate_probcover_delta(x, labels, alpha=1.0) < float(d[other].min())


# ---------------------------------------------------------------- HAC
def test_hac_exact_matches_sklearn_average_linkage():
    g = torch.Generator().manual_seed(12)
    x = torch.randn(70, 3, generator=g)
    ours = hac_clusters(x, n_clusters=6)
    ref = AgglomerativeClustering(n_clusters=6, linkage="average").fit_predict(x.numpy())
    assert adjusted_rand_score(ref, ours.numpy()) == 1.0
    ours = hac_clusters(x, distance_threshold=2.0)
    ref = AgglomerativeClustering(
        n_clusters=None, distance_threshold=2.0, linkage="average"
    ).fit_predict(x.numpy())
    assert adjusted_rand_score(ref, ours.numpy()) == 1.0


def test_hac_micro_cluster_approximation_recovers_blobs():
    x, y, _ = blobs([300, 200, 100, 150], dim=8, seed=13)
    labels = hac_clusters(x, n_clusters=4, n_micro_clusters=32)
    assert adjusted_rand_score(y.numpy(), labels.numpy()) == 1.0
    with pytest.raises(ValueError):
        hac_clusters(x)  # neither n_clusters nor distance_threshold


def test_sparse_nonzero_helper_matches_nonzero():
    from energizer_hf.functional.neighbours import _nonzero_2d

    g = torch.Generator().manual_seed(14)
    for shape in [(3, 8), (5, 13), (7, 40)]:  # word-aligned and not
        mask = torch.rand(shape, generator=g) < 0.1
        r, c = _nonzero_2d(mask)
        assert torch.equal(torch.stack([r, c], 1), mask.nonzero())
