import numpy as np
import pytest

from energizer_hf.scoring import RunningTopK, select_topk


def test_running_topk_matches_a_full_sort(rng):
    scores = rng.normal(size=10_000)
    ids = rng.permutation(10_000)
    acc = RunningTopK(37)
    for start in range(0, 10_000, 128):
        acc.update(scores[start : start + 128], ids[start : start + 128])
        assert acc._size <= 2 * 37 + 128  # bounded memory: about 2k scores
    expected = ids[np.argsort(-scores, kind="stable")][:37]
    assert acc.ids().tolist() == expected.tolist()


def test_ties_are_broken_by_smaller_id_whatever_the_order(rng):
    scores = np.array([1.0, 0.5, 1.0, 1.0, 0.2, 1.0])
    ids = np.array([9, 3, 4, 7, 1, 2])
    results = set()
    for _ in range(10):
        perm = rng.permutation(len(ids))
        acc = RunningTopK(3)
        for p in perm:
            acc.update(scores[[p]], ids[[p]])
        results.add(tuple(acc.ids().tolist()))
    assert results == {(2, 4, 7)}


def test_merge_equals_single_stream(rng):
    scores, ids = rng.normal(size=500), np.arange(500)
    a, b, whole = RunningTopK(10), RunningTopK(10), RunningTopK(10)
    a.update(scores[:250], ids[:250])
    b.update(scores[250:], ids[250:])
    whole.update(scores, ids)
    a.merge(b)
    assert a.ids().tolist() == whole.ids().tolist()


def test_select_topk_k_larger_than_input():
    s, i = select_topk(np.array([0.1, 0.3]), np.array([5, 6]), 10)
    assert i.tolist() == [6, 5]


def test_k_must_be_positive():
    with pytest.raises(ValueError):
        RunningTopK(0)
