"""Contracts shared by every selector: k distinct in-range unlabelled ids, determinism,
k >= candidates, and named errors on bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from energizer_hf.functional import (
    FunctionalInputError,
    NonFiniteInputError,
    ShapeError,
    TooManyClustersError,
    badge_select,
    batchbald_greedy,
    bertkm_select,
    cardinality_stratified_random,
    cluster_margin,
    hac_clusters,
    kcenter_greedy,
    kmeans_closest_to_centers,
    probcover,
    typiclust,
)

N, D, C, T = 90, 6, 4, 5


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(5, D, generator=g) * 4
    emb = centers[torch.arange(N) % 5] + torch.randn(N, D, generator=g)
    probs = torch.softmax(torch.randn(N, C, generator=g) * 2, 1)
    mc = torch.softmax(torch.randn(N, T, C, generator=g) * 2, -1)
    return emb, probs, mc


SELECTORS = {
    "batchbald": lambda e, p, m, k, lab, **kw: batchbald_greedy(
        m, k, labelled=lab, num_samples=50, candidate_pool_size=30, **kw
    ),
    "kcenter": lambda e, p, m, k, lab, **kw: kcenter_greedy(e, k, lab, **kw),
    "bertkm": lambda e, p, m, k, lab, **kw: bertkm_select(e, k, labelled=lab, **kw),
    "typiclust": lambda e, p, m, k, lab, **kw: typiclust(e, k, lab, **kw),
    "probcover": lambda e, p, m, k, lab, **kw: probcover(e, k, lab, delta=2.0, **kw),
    "badge": lambda e, p, m, k, lab, **kw: badge_select(p, e, k, labelled=lab, **kw),
    "cluster_margin": lambda e, p, m, k, lab, **kw: cluster_margin(p, e, k, labelled=lab, **kw),
    "cardinality_random": lambda e, p, m, k, lab, **kw: cardinality_stratified_random(
        p, k, labelled=lab, **kw
    ),
}
RANDOMISED = [
    "batchbald",
    "bertkm",
    "typiclust",
    "probcover",
    "badge",
    "cluster_margin",
    "kcenter",
    "cardinality_random",
]


def _labelled():
    return torch.tensor([1, 5, 8, 13, 21, 34, 55, 89])


@pytest.mark.parametrize("name", SELECTORS)
@pytest.mark.parametrize("k", [1, 7, 25])
@pytest.mark.parametrize("form", ["indices", "mask", "none"])
def test_selectors_return_k_distinct_unlabelled_ids(data, name, k, form):
    emb, probs, mc = data
    lab = _labelled()
    arg = {"indices": lab, "mask": torch.isin(torch.arange(N), lab), "none": None}[form]
    picked = SELECTORS[name](emb, probs, mc, k, arg, seed=0)
    assert picked.dtype == torch.long and picked.ndim == 1
    assert picked.numel() == k
    assert len(set(picked.tolist())) == k
    assert bool(((picked >= 0) & (picked < N)).all())
    if arg is not None:
        assert not set(picked.tolist()) & set(lab.tolist())


@pytest.mark.parametrize("name", RANDOMISED)
def test_selectors_are_deterministic_for_a_seed(data, name):
    emb, probs, mc = data
    lab = _labelled()
    a = SELECTORS[name](emb, probs, mc, 10, lab, seed=3)
    b = SELECTORS[name](emb, probs, mc, 10, lab, seed=3)
    c = SELECTORS[name](emb, probs, mc, 10, lab, generator=torch.Generator().manual_seed(3))
    assert a.tolist() == b.tolist() == c.tolist()


@pytest.mark.parametrize("name", SELECTORS)
def test_selectors_handle_k_at_least_the_number_of_candidates(data, name):
    emb, probs, mc = data
    lab = torch.arange(0, N - 4)  # 4 candidates left
    for k in (4, 5, 1000):
        picked = SELECTORS[name](emb, probs, mc, k, lab, seed=0)
        assert picked.tolist() == list(range(N - 4, N))
    assert SELECTORS[name](emb, probs, mc, 0, lab, seed=0).numel() == 0
    all_lab = torch.ones(N, dtype=torch.bool)
    assert SELECTORS[name](emb, probs, mc, 3, all_lab, seed=0).numel() == 0


@pytest.mark.parametrize("name", SELECTORS)
def test_selectors_accept_numpy(data, name):
    emb, probs, mc = data
    lab = _labelled()
    a = SELECTORS[name](emb, probs, mc, 5, lab, seed=1)
    b = SELECTORS[name](emb.numpy(), probs.numpy(), mc.numpy(), 5, lab.numpy(), seed=1)
    assert a.tolist() == b.tolist()


@pytest.mark.parametrize("name", SELECTORS)
def test_selectors_raise_named_errors(data, name):
    emb, probs, mc = data
    bad_emb, bad_probs, bad_mc = emb.clone(), probs.clone(), mc.clone()
    bad_emb[3, 2] = float("nan")
    bad_probs[3, 1] = float("nan")
    bad_mc[3, 0, 1] = float("nan")
    call = SELECTORS[name]
    if name != "cluster_margin":  # cluster_margin reads probs before embeddings
        with pytest.raises(NonFiniteInputError):
            call(bad_emb, bad_probs, bad_mc, 3, None)
    with pytest.raises(NonFiniteInputError):
        call(bad_emb if name != "cluster_margin" else emb, bad_probs, bad_mc, 3, None)
    with pytest.raises(ShapeError):
        call(emb[:, 0], probs[:, 0], mc[:, 0], 3, None)  # one dimension short
    with pytest.raises(FunctionalInputError):
        call(emb, probs, mc, -1, None)
    with pytest.raises(FunctionalInputError):
        call(emb, probs, mc, 3, torch.tensor([0, N]))  # index out of range
    with pytest.raises(ShapeError):
        call(emb, probs, mc, 3, torch.zeros(N + 1, dtype=torch.bool))
    assert issubclass(FunctionalInputError, ValueError)


def test_mismatched_rows_and_too_many_clusters(data):
    emb, probs, _ = data
    with pytest.raises(ShapeError):
        badge_select(probs[:-1], emb, 3)
    with pytest.raises(ShapeError):
        cluster_margin(probs[:-1], emb, 3)
    with pytest.raises(TooManyClustersError):
        typiclust(emb, 3, n_clusters=N + 1)
    with pytest.raises(TooManyClustersError):
        hac_clusters(emb, n_clusters=N + 1)
    with pytest.raises(TooManyClustersError):
        kmeans_closest_to_centers(emb, emb[:5], labelled=np.arange(N - 3))
    with pytest.raises(ShapeError):
        kmeans_closest_to_centers(emb, emb[:5, :3])


def test_finiteness_check_survives_float32_overflow_of_the_sum():
    huge = torch.full((8, 2), 3e38)  # finite, but the sum overflows to inf
    assert kcenter_greedy(huge, 1, [0]).numel() == 1
    huge[5, 1] = float("inf")
    with pytest.raises(NonFiniteInputError):
        kcenter_greedy(huge, 1, [0])
