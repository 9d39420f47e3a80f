"""Known-answer tests for energizer_hf.functional.bayesian."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from energizer_hf.functional import (
    InvalidProbabilitiesError,
    NonFiniteInputError,
    ShapeError,
    bald,
    batchbald_greedy,
    expected_entropy,
    mean_std,
    predictive_entropy,
    variation_ratios,
)
from energizer_hf.functional.bayesian import _JointConfigs


def _random_mc(n: int, t: int, c: int, seed: int = 0, temp: float = 2.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(n, t, c, generator=g) * temp, dim=-1)


def test_predictive_entropy_is_log_c_on_uniform():
    probs = torch.full((3, 7, 5), 0.2)
    torch.testing.assert_close(predictive_entropy(probs), torch.full((3,), math.log(5)))
    torch.testing.assert_close(expected_entropy(probs), torch.full((3,), math.log(5)))
    torch.testing.assert_close(bald(probs), torch.zeros(3))


def test_bald_prefers_disagreeing_samples_over_uniform_uncertainty():
    disagree = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    uniform = torch.full((4, 2), 0.5)
    probs = torch.stack([uniform, disagree])
    # same predictive entropy (log 2) ...
    torch.testing.assert_close(predictive_entropy(probs), torch.full((2,), math.log(2)))
    # ... but only the disagreeing passes carry epistemic uncertainty.
    scores = bald(probs)
    assert scores.argmax().item() == 1
    torch.testing.assert_close(scores, torch.tensor([0.0, math.log(2)]))
    torch.testing.assert_close(expected_entropy(probs), torch.tensor([math.log(2), 0.0]))


def test_bald_matches_definition_and_is_nonnegative():
    probs = _random_mc(50, 6, 4)
    p = probs.double()
    mean = p.mean(1)
    expected = -(mean * mean.log()).sum(-1) + (p * p.log()).sum(-1).mean(1)
    torch.testing.assert_close(bald(probs).double(), expected, atol=1e-5, rtol=1e-4)
    assert bool((bald(probs) >= 0).all())


def test_variation_ratios_and_mean_std_known_values():
    p = torch.tensor(
        [
            [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]],  # votes 0,0,1,0
            [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]],
        ]
    )
    torch.testing.assert_close(variation_ratios(p), torch.tensor([0.25, 0.0]))
    row0 = np.array([0.9, 0.8, 0.3, 0.6])
    torch.testing.assert_close(mean_std(p), torch.tensor([row0.std(), 0.0], dtype=torch.float32))


def test_numpy_input_is_accepted():
    probs = _random_mc(10, 3, 3)
    torch.testing.assert_close(bald(probs.numpy()), bald(probs))
    torch.testing.assert_close(bald(probs.double()), bald(probs))


@pytest.mark.parametrize(
    "fn", [predictive_entropy, expected_entropy, bald, variation_ratios, mean_std]
)
def test_bayesian_scores_validate_inputs(fn):
    with pytest.raises(ShapeError):
        fn(torch.full((4, 2), 0.5))  # missing the pass dimension
    bad = torch.full((2, 3, 2), 0.5)
    bad[0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteInputError):
        fn(bad)
    with pytest.raises(InvalidProbabilitiesError):
        fn(torch.randn(2, 3, 4))  # logits, not probabilities
    with pytest.raises(ValueError):  # every error is a ValueError
        fn(torch.zeros(2, 3))


def _duplicate_case() -> torch.Tensor:
    a = torch.tensor([[0.99, 0.01], [0.99, 0.01], [0.01, 0.99], [0.01, 0.99]])
    b = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]])
    # 0 and 1 are duplicates with the highest BALD; 2 disagrees "the other way".
    return torch.stack([a, a, b, torch.full((4, 2), 0.5)])


@pytest.mark.parametrize("num_samples", [1000, 1])  # exact joint / sampled joint
def test_batchbald_does_not_pick_the_duplicate(num_samples):
    probs = _duplicate_case()
    assert set(torch.topk(bald(probs), 2).indices.tolist()) == {0, 1}  # top-k BALD would
    picked = batchbald_greedy(probs, 2, num_samples=num_samples, seed=0).tolist()
    assert picked[0] in (0, 1) and picked[1] == 2


def _exact_batch_mi(probs: torch.Tensor, batch: list[int]) -> float:
    """I[y_batch; ω] by brute-force enumeration of all label configurations."""
    p = probs.double()[batch]  # (n, T, C)
    n, t, c = p.shape
    joint_h = 0.0
    for ys in itertools.product(range(c), repeat=n):
        per_pass = torch.ones(t, dtype=torch.float64)
        for i, y in enumerate(ys):
            per_pass = per_pass * p[i, :, y]
        q = float(per_pass.mean())
        if q > 0:
            joint_h -= q * math.log(q)
    cond = float((-(p * p.clamp_min(1e-300).log()).sum(-1)).mean(1).sum())
    return joint_h - cond


def test_batchbald_matches_brute_force_greedy():
    probs = _random_mc(8, 5, 3, seed=3)
    k = 3
    expected: list[int] = []
    for _ in range(k):
        gains = {
            i: _exact_batch_mi(probs, [*expected, i])
            for i in range(probs.shape[0])
            if i not in expected
        }
        expected.append(max(gains, key=gains.get))
    assert batchbald_greedy(probs, k, num_samples=1000).tolist() == expected


def test_sampled_joint_approximates_exact_joint():
    probs = _random_mc(6, 8, 3, seed=5)
    log_p = probs.clamp_min(1e-12).log()
    cand = _random_mc(4, 8, 3, seed=6)
    flat = cand.permute(1, 0, 2).reshape(8, -1)

    def cond_entropy(num_samples):
        joint = _JointConfigs(8, 3, num_samples, torch.Generator().manual_seed(0))
        for member in log_p:
            joint.add(member)
        post, w = joint.posterior()
        pred = (post @ flat).view(-1, 4, 3)
        return post.shape[0], w @ -(pred * pred.clamp_min(1e-12).log()).sum(-1)

    n_exact, exact = cond_entropy(1000)  # 3**6 = 729 configurations, enumerated
    n_sampled, sampled = cond_entropy(700)  # switches to sampling
    assert n_exact == 729 and n_sampled == 696  # 87 per pass x 8 passes
    torch.testing.assert_close(sampled, exact, atol=0.03, rtol=0.0)
    # switching late (after 5 exact members) is also a valid sample of the joint
    n_late, late = cond_entropy(243)
    assert n_late == 240
    torch.testing.assert_close(late, exact, atol=0.04, rtol=0.0)


def test_batchbald_prefilter_restricts_to_top_bald():
    probs = _random_mc(40, 6, 4, seed=1)
    top = set(torch.topk(bald(probs), 5).indices.tolist())
    picked = batchbald_greedy(probs, 3, candidate_pool_size=5)
    assert set(picked.tolist()) <= top
    assert batchbald_greedy(probs, 0).numel() == 0


def test_lazy_greedy_matches_full_evaluation():
    probs = _random_mc(60, 6, 3, seed=8)
    lazy = batchbald_greedy(probs, 5, num_samples=1000, chunk_size=4)
    full = batchbald_greedy(probs, 5, num_samples=1000, lazy=False)
    assert lazy.tolist() == full.tolist()
