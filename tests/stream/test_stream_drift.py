"""Drifting streams: class priors change as specified; two datasets one after the other."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from energizer_hf.errors import StreamInputError
from energizer_hf.stream import (
    ReplaySource,
    concatenate_for_drift,
    concatenation_order,
    prior_at,
    prior_drift_order,
)

LABELS = np.repeat(np.arange(4), 3000)  # 12,000 rows, balanced
PRIORS = np.array(
    [
        [0.7, 0.1, 0.1, 0.1],
        [0.25, 0.25, 0.25, 0.25],
        [0.05, 0.05, 0.1, 0.8],
    ]
)


def _within(freq, prior, n, sigmas=4.5):
    return np.all(np.abs(freq - prior) <= sigmas * np.sqrt(prior * (1 - prior) / n) + 1e-12)


def test_prior_at_known_values():
    np.testing.assert_allclose(prior_at([0, 3, 4, 8, 11], PRIORS, 12), PRIORS[[0, 0, 1, 2, 2]])
    g = prior_at([0, 5, 10], [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], 11, "gradual")
    np.testing.assert_allclose(g, [[1, 0], [0, 1], [1, 0]])
    np.testing.assert_allclose(prior_at([1], [[1.0, 0.0], [0.0, 1.0]], 5, "gradual"), [[0.75, 0.25]])


def test_piecewise_prior_drift_follows_each_segment():
    n = 6000
    order = prior_drift_order(LABELS, PRIORS, n, seed=0)
    assert order.dtype == np.int64 and order.shape == (n,)
    assert np.unique(order).size == n  # each row at most once
    y = LABELS[order]
    for s, seg in enumerate(np.array_split(np.arange(n), 3)):
        freq = np.bincount(y[seg], minlength=4) / seg.size
        assert _within(freq, PRIORS[s], seg.size), (s, freq)
    np.testing.assert_array_equal(order, prior_drift_order(LABELS, PRIORS, n, seed=0))
    assert (order != prior_drift_order(LABELS, PRIORS, n, seed=1)).any()


def test_gradual_prior_drift_follows_the_interpolation():
    n = 8000
    order = prior_drift_order(LABELS, PRIORS, n, mode="gradual", seed=2)
    y = LABELS[order]
    for block in np.array_split(np.arange(n), 16):
        expected = prior_at(block, PRIORS, n, "gradual").mean(0)
        freq = np.bincount(y[block], minlength=4) / block.size
        assert _within(freq, expected, block.size), (block[0], freq, expected)
    # the share of class 3 rises steadily through the second half
    share = [np.mean(y[b] == 3) for b in np.array_split(np.arange(n // 2, n), 4)]
    assert share == sorted(share)


def test_prior_drift_errors():
    with pytest.raises(StreamInputError, match="needs .* rows of class 0 but the dataset has 3000"):
        prior_drift_order(LABELS, [[1.0, 0, 0, 0]], 4000, seed=0)
    with pytest.raises(StreamInputError, match="distribution"):
        prior_drift_order(LABELS, [[0.5, 0.6, 0, 0]], 10)
    with pytest.raises(StreamInputError, match=r"\[0, 2\)"):
        prior_drift_order(LABELS, [[0.5, 0.5]], 10)
    with pytest.raises(StreamInputError, match="exceeds"):
        prior_drift_order(LABELS, PRIORS, 20000)
    with pytest.raises(StreamInputError, match="two priors"):
        prior_drift_order(LABELS, PRIORS[:1], 10, mode="gradual")
    with pytest.raises(StreamInputError, match="mode"):
        prior_drift_order(LABELS, PRIORS, 10, mode="sudden")


def test_concatenation_abrupt_and_gradual():
    order = concatenation_order(300, 200, seed=0)
    assert sorted(order.tolist()) == list(range(500))
    assert (order[:300] < 300).all() and (order[300:] >= 300).all()
    order = concatenation_order(300, 200, transition=100, seed=1)
    assert sorted(order.tolist()) == list(range(500))
    second = order >= 300
    assert not second[:250].any() and second[350:].all()
    window = second[250:350]
    assert window[:50].mean() < window[50:].mean()  # the second's share rises through the window
    assert 0 < window.sum() < 100
    np.testing.assert_array_equal(order, concatenation_order(300, 200, transition=100, seed=1))
    # a window wider than the data still uses every row once
    wide = concatenation_order(30, 10, transition=500, seed=3)
    assert sorted(wide.tolist()) == list(range(40))


def test_two_datasets_replayed_one_after_the_other():
    first = datasets.Dataset.from_dict({"text": [f"a{i}" for i in range(20)], "label": [0] * 20})
    second = datasets.Dataset.from_dict({"text": [f"b{i}" for i in range(10)], "label": [1] * 10})
    both = concatenate_for_drift(first, second)
    src = ReplaySource(both, order=concatenation_order(len(first), len(second), seed=0))
    texts = [t for b in src.batches(8) for t in b.texts]
    assert all(t.startswith("a") for t in texts[:20]) and all(t.startswith("b") for t in texts[20:])
    with pytest.raises(StreamInputError, match="cast"):
        concatenate_for_drift(first, second.cast_column("label", datasets.Value("int32")))
