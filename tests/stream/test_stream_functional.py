"""The pure stream decision rules: known answers, the exact window budget, determinism."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from energizer_hf.errors import (
    BudgetRateError,
    InvalidScoresError,
    StreamInputError,
    StreamStateError,
)
from energizer_hf.functional import stream as F
from energizer_hf.functional.stream_quantile import quantile_uncertainty_decisions

RULES = {
    "fixed": lambda s, e, st, **b: F.fixed_uncertainty_decisions(s, st, threshold=0.5, **b),
    "vu": lambda s, e, st, **b: F.variable_uncertainty_decisions(s, st, **b),
    "rvu": lambda s, e, st, **b: F.randomized_variable_uncertainty_decisions(s, st, **b),
    "split": lambda s, e, st, **b: F.split_decisions(s, st, **b),
    "random": lambda s, e, st, **b: F.random_decisions(s.size, st, **b),
    "quantile": lambda s, e, st, **b: quantile_uncertainty_decisions(s, st, **b),
    "novelty": lambda s, e, st, **b: F.novelty_weighted_decisions(s, e, st, memory_size=16, **b),
    "density": lambda s, e, st, **b: F.density_weighted_decisions(s, e, st, memory_size=16, **b),
    "novelty_rvu": lambda s, e, st, **b: F.novelty_weighted_decisions(s, e, st, memory_size=8, delta=0.5, **b),
}
SCORE_ONLY = ["fixed", "vu", "rvu", "split", "random", "quantile"]


def _stream(n, seed, d=8):
    rng = np.random.default_rng(seed)
    scores = rng.random(n) ** rng.uniform(0.3, 3)  # skewed, different per seed
    emb = rng.normal(size=(n, d)) + rng.normal(size=(1, d)) * 2
    return scores, emb


def _run(rule, scores, emb, cuts, rate, window, seed=0, state=None):
    """Decide the stream in mini-batches cut at ``cuts``; return the decisions and state."""
    state = state if state is not None else F.initial_stream_state(seed)
    out = []
    bounds = [0, *cuts, scores.size]
    for a, b in zip(bounds, bounds[1:]):
        d = RULES[rule](scores[a:b], emb[a:b], state, rate=rate, window=window)
        state = d.state
        out.append(d)
    cat = lambda f: np.concatenate([getattr(d, f) for d in out])  # noqa: E731
    return cat("labelled"), cat("thresholds"), cat("scores"), cat("blocked"), state


def _window_counts_bruteforce(mask, window):
    c = np.concatenate([[0], np.cumsum(mask)])
    return np.array([c[t + 1] - c[max(0, t + 1 - window)] for t in range(mask.size)])


# ----------------------------------------------------------------------------- budget
def test_budget_capacity_values_and_errors():
    assert F.budget_capacity(0.1, 100) == 10
    assert F.budget_capacity(0.29, 100) == 29
    assert F.budget_capacity(1, 7) == 7
    for rate in (0, 0.0, -0.1, 1.0001, math.nan, math.inf, "0.5", True, None):
        with pytest.raises(BudgetRateError, match=r"\(0, 1\]"):
            F.budget_capacity(rate, 100)
    for window in (0, -3, 1.5, True, None):
        with pytest.raises(BudgetRateError, match="window"):
            F.budget_capacity(0.5, window)
    with pytest.raises(BudgetRateError, match="at least 20 arrivals"):
        F.budget_capacity(0.05, 19)


def test_sliding_window_counts_matches_bruteforce(rng):
    mask = rng.random(500) < 0.3
    for w in (1, 2, 7, 100, 1000):
        np.testing.assert_array_equal(F.sliding_window_counts(mask, w), _window_counts_bruteforce(mask, w))


@pytest.mark.parametrize("rule", list(RULES))
def test_budget_holds_over_every_window(rule):
    """Property: at every position, labels among the last w arrivals <= floor(b w)."""
    n = 2500
    for rate, window in [(0.01, 100), (0.05, 20), (0.1, 333), (0.3, 50), (0.5, 2), (1.0, 5)]:
        cap = F.budget_capacity(rate, window)
        reached = False
        for seed in range(3):
            scores, emb = _stream(n, seed)
            rng = np.random.default_rng(100 + seed)
            cuts = np.sort(rng.choice(np.arange(1, n), size=20, replace=False)).tolist()
            mask, _, _, _, state = _run(rule, scores, emb, cuts, rate, window, seed=seed)
            counts = _window_counts_bruteforce(mask.astype(np.int64), window)
            assert counts.max() <= cap, (rule, rate, window, seed)
            assert cap <= rate * window + 1e-6
            reached |= counts.max() == cap
            assert state.seen == n and state.labelled == int(mask.sum())
            assert F.window_spending(state, window) == counts[-1] / window <= rate + 1e-9
        if rule != "fixed":
            assert reached, (rule, rate, window)  # the budget is spent, not just respected


def test_estimated_spending_is_zliobaites_forgetting_average():
    scores = np.linspace(0, 1, 200)
    d = F.variable_uncertainty_decisions(scores, F.StreamState(), rate=0.2, window=30)
    u = 0.0
    for lab in d.labelled:
        u = u * (29 / 30) + lab
    assert F.estimated_spending(d.state, 30) == pytest.approx(u / 30, rel=1e-12)


# ----------------------------------------------------------------------------- known answers
def test_fixed_threshold_known_positions():
    # every score is above the threshold: with cap 2 per 10 arrivals the labels are
    # exactly the first two arrivals of every 10
    d = F.fixed_uncertainty_decisions(np.ones(35), F.StreamState(), threshold=0.5, rate=0.2, window=10)
    assert np.flatnonzero(d.labelled).tolist() == [0, 1, 10, 11, 20, 21, 30, 31]
    assert d.blocked.sum() == 35 - 8
    d = F.fixed_uncertainty_decisions(np.full(10, 0.5), F.StreamState(), threshold=0.5, rate=1.0, window=1)
    assert not d.labelled.any()  # strictly greater than the threshold
    assert np.all(d.thresholds == 0.5)


def _paper_variable_uncertainty(confidence, rate, window, step, eta=None):
    """Žliobaitė et al. (2014), Alg. 3/4, on the maximum posterior, with the exact window."""
    cap = math.floor(rate * window + 1e-9)
    theta, recent, out = 1.0, [], []
    for t, c in enumerate(confidence):
        recent = [p for p in recent if p > t - window]
        label = False
        if len(recent) < cap:
            th = theta if eta is None else theta * eta[t]
            if c < th:
                label = True
                recent.append(t)
                theta *= 1 - step
            else:
                theta *= 1 + step
        out.append(label)
    return np.array(out)


@pytest.mark.parametrize("rate,window,step", [(0.1, 100, 0.01), (0.3, 10, 0.05), (1.0, 1, 0.1)])
def test_variable_uncertainty_is_the_papers_rule_on_least_confidence(rate, window, step):
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3) * 0.7, size=3000)
    confidence = probs.max(1)
    d = F.variable_uncertainty_decisions(1 - confidence, F.StreamState(), rate=rate, window=window, step=step)
    np.testing.assert_array_equal(d.labelled, _paper_variable_uncertainty(confidence, rate, window, step))


def test_randomized_variable_uncertainty_is_the_papers_rule():
    rng = np.random.default_rng(2)
    confidence = rng.uniform(0.4, 1.0, size=2000)
    state = F.initial_stream_state(seed=5)
    d = F.randomized_variable_uncertainty_decisions(1 - confidence, state, rate=0.2, window=50, delta=1.0)
    eta = np.random.Generator(np.random.PCG64(np.random.SeedSequence([5, F.STREAM_SALT]))).normal(1.0, 1.0, size=2000)
    np.testing.assert_array_equal(d.labelled, _paper_variable_uncertainty(confidence, 0.2, 50, 0.01, eta))
    # delta = 0 is plain variable uncertainty
    d0 = F.randomized_variable_uncertainty_decisions(1 - confidence, state, rate=0.2, window=50, delta=0.0)
    vu = F.variable_uncertainty_decisions(1 - confidence, state, rate=0.2, window=50)
    np.testing.assert_array_equal(d0.labelled, vu.labelled)


def test_variable_threshold_follows_the_scores_and_freezes_when_blocked():
    # constant score: the threshold settles around it and about half the items are labelled
    d = F.variable_uncertainty_decisions(np.full(4000, 0.6), F.StreamState(), rate=1.0, window=1, step=0.05)
    assert abs(d.state.threshold - 0.6) < 0.05
    assert 0.45 < d.labelled[1000:].mean() < 0.55
    # blocked items leave the threshold unchanged
    d = F.variable_uncertainty_decisions(np.full(100, 0.9), F.StreamState(), rate=0.1, window=20)
    blocked_runs = np.flatnonzero(d.blocked[1:] & d.blocked[:-1]) + 1
    assert blocked_runs.size > 50
    np.testing.assert_array_equal(d.thresholds[blocked_runs], d.thresholds[blocked_runs - 1])
    # max_score rescales: entropy-like scores in [0, log 4] decide like scores / log 4
    s = np.random.default_rng(3).uniform(0, math.log(4), 500)
    a = F.variable_uncertainty_decisions(s, F.StreamState(), rate=0.3, window=40, max_score=math.log(4))
    b = F.variable_uncertainty_decisions(s / math.log(4), F.StreamState(), rate=0.3, window=40)
    np.testing.assert_array_equal(a.labelled, b.labelled)


def test_split_branches():
    s = np.random.default_rng(4).random(20000)
    st = F.initial_stream_state(seed=9)
    d = F.split_decisions(s, st, rate=1.0, window=1, fraction=0.2)
    random_branch = np.isnan(d.thresholds)
    assert abs(random_branch.mean() - 0.2) < 4 * math.sqrt(0.2 * 0.8 / s.size)
    # fraction 0 is variable uncertainty; fraction 1 never moves the threshold
    d0 = F.split_decisions(s, st, rate=0.1, window=100, fraction=0.0)
    vu = F.variable_uncertainty_decisions(s, st, rate=0.1, window=100)
    np.testing.assert_array_equal(d0.labelled, vu.labelled)
    d1 = F.split_decisions(s, st, rate=0.3, window=10000, fraction=1.0, initial_threshold=0.25)
    assert d1.state.threshold == 0.25
    assert abs(d1.labelled.mean() - 0.3) < 0.02  # random at the budget rate


def _quantile_bruteforce(scores, rate, window):
    """The quantile rule written out item by item from its definition."""
    cap = F.budget_capacity(rate, window)
    s = scores.astype(np.float32).astype(np.float64)
    labelled = np.zeros(s.size, dtype=bool)
    for t in range(s.size):
        lo = max(0, t + 1 - window)
        in_window = int(labelled[lo:t].sum())
        win = np.sort(s[lo : t + 1])[::-1]
        k = min(win.size, max(1, round(2 * rate * win.size - in_window)))
        labelled[t] = in_window < cap and s[t] >= win[k - 1]
    return labelled


@pytest.mark.parametrize("rate,window", [(0.05, 200), (0.2, 30), (0.5, 4), (1.0, 1)])
def test_quantile_rule_equals_its_definition(rate, window):
    scores, emb = _stream(900, 5)
    got = _run("quantile", scores, emb, [7, 64, 65, 400], rate, window)
    np.testing.assert_array_equal(got[0], _quantile_bruteforce(scores, rate, window))


def test_quantile_rule_spreads_the_budget_and_picks_the_uncertain():
    """A weak model finds every item uncertain (all scores far above any fixed or slowly
    adapting threshold): variable uncertainty then spends each window's budget on its first
    items, the quantile rule on the most uncertain ones, spread over the window."""
    rng = np.random.default_rng(0)
    scores = 0.7 + 0.05 * rng.random(1600)  # the length of the benchmark stream
    rate, window = 0.05, 200
    vu = _run("vu", scores, scores[:, None], [], rate, window)[0]
    q = _run("quantile", scores, scores[:, None], [], rate, window)[0]
    # VU labels in bursts (the next item as soon as the window frees a label), quantile not
    assert (np.diff(np.flatnonzero(vu)) == 1).mean() > 0.8
    assert (np.diff(np.flatnonzero(q)) == 1).mean() < 0.2
    assert 0.8 * rate < q.mean() <= rate
    # the chosen items are the uncertain ones: mean rank of a chosen score in the top 10 %
    ranks = scores.argsort().argsort() / scores.size
    assert ranks[q].mean() > 0.85 and abs(ranks[vu].mean() - 0.5) < 0.1


def test_random_rate_and_reproducibility():
    st = F.initial_stream_state(seed=0)
    assert F.random_decisions(50, st, rate=1.0, window=1).labelled.all()
    d = F.random_decisions(50000, st, rate=0.3, window=10000)
    assert 0.28 < d.labelled.mean() <= 0.3
    again = F.random_decisions(50000, st, rate=0.3, window=10000)
    np.testing.assert_array_equal(d.labelled, again.labelled)
    other = F.random_decisions(50000, F.initial_stream_state(seed=1), rate=0.3, window=10000)
    assert (d.labelled != other.labelled).any()
    assert np.isnan(d.scores).all() and np.isnan(d.thresholds).all()


def test_novelty_and_density_known_answers():
    a, b = [1.0, 0.0], [0.0, 1.0]
    assert F.novelty(np.array([a, b]), np.zeros((0, 2))).tolist() == [1.0, 1.0]
    assert F.novelty(np.array([[1.0, 1.0]]), np.array([a])).tolist() == pytest.approx([1 - 1 / math.sqrt(2)])
    assert F.novelty(np.array([a]), np.array([[-1.0, 0.0]])).tolist() == [1.0]  # opposite: novel
    assert F.local_density(np.array([a]), np.array([a, b, [-1.0, 0.0]])).tolist() == pytest.approx([1 / 3])
    # memory of one label: a, b labelled; a again is novel w.r.t. b only -> labelled
    e = np.array([a, b, a, a])
    d = F.novelty_weighted_decisions(np.full(4, 0.9), e, F.StreamState(), rate=1.0, window=1, memory_size=1)
    assert d.labelled.tolist() == [True, True, True, False]
    np.testing.assert_allclose(d.state.memory, [a])
    # density over the previous arrival only
    e = np.array([a, a, b, [1.0, 1.0]])
    d = F.density_weighted_decisions(np.ones(4), e, F.StreamState(), rate=1.0, window=1, memory_size=1)
    np.testing.assert_allclose(d.scores, [1.0, 1.0, 0.0, 1 / math.sqrt(2)], rtol=1e-6)
    assert d.state.memory.shape == (1, 2)
    # power 0 is plain variable uncertainty
    e = np.random.default_rng(0).normal(size=(300, 4))
    s = np.random.default_rng(1).random(300)
    d = F.novelty_weighted_decisions(s, e, F.StreamState(), rate=0.2, window=30, power=0.0)
    np.testing.assert_array_equal(d.labelled, F.variable_uncertainty_decisions(s, F.StreamState(), rate=0.2, window=30).labelled)


def test_novelty_within_a_batch_equals_item_by_item():
    """Labels earlier in the same mini-batch count for the novelty of later items."""
    scores, emb = _stream(400, 7, d=3)
    one_batch = _run("novelty", scores, emb, [], 0.2, 40)
    singles = _run("novelty", scores, emb, list(range(1, 400)), 0.2, 40)
    np.testing.assert_array_equal(one_batch[0], singles[0])
    np.testing.assert_allclose(one_batch[2], singles[2], rtol=1e-5)


# ----------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("rule", SCORE_ONLY)
def test_decisions_do_not_depend_on_mini_batching(rule):
    scores, emb = _stream(1500, 11)
    ref = _run(rule, scores, emb, [], 0.1, 60, seed=3)
    for cuts in ([1, 2, 3], [64, 128, 999], list(range(7, 1500, 7))):
        got = _run(rule, scores, emb, cuts, 0.1, 60, seed=3)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])


@pytest.mark.parametrize("rule", list(RULES))
def test_state_saved_mid_stream_resumes_the_same_decisions(rule):
    scores, emb = _stream(1200, 12)
    cuts = list(range(64, 1200, 64))
    ref = _run(rule, scores, emb, cuts, 0.1, 80, seed=4)
    # stop after 9 batches, round-trip the state through JSON (+ the memory array), resume
    head = _run(rule, scores[:576], emb[:576], cuts[:8], 0.1, 80, seed=4)
    saved = head[4].to_dict()
    memory = saved.pop("memory")
    restored = F.StreamState.from_dict({**json.loads(json.dumps(saved)), "memory": memory})
    tail = _run(rule, scores[576:], emb[576:], [c - 576 for c in cuts[9:]], 0.1, 80, state=restored)
    np.testing.assert_array_equal(np.concatenate([head[0], tail[0]]), ref[0])
    np.testing.assert_array_equal(np.concatenate([head[1], tail[1]]), ref[1])
    assert tail[4].to_dict()["rng"] == ref[4].to_dict()["rng"]


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_named_errors():
    st = F.initial_stream_state(0)
    with pytest.raises(InvalidScoresError, match="NaN"):
        F.variable_uncertainty_decisions([0.1, np.nan], st, rate=0.5, window=4)
    with pytest.raises(InvalidScoresError, match="1-D"):
        F.fixed_uncertainty_decisions(np.ones((2, 2)), st, threshold=0.1, rate=0.5, window=4)
    with pytest.raises(BudgetRateError):
        F.variable_uncertainty_decisions([0.1], st, rate=0.0, window=4)
    with pytest.raises(BudgetRateError):
        F.random_decisions(3, st, rate=2, window=4)
    for kwargs in ({"step": 0.0}, {"step": 1.0}, {"initial_threshold": 1.0}, {"max_score": math.nan}):
        with pytest.raises(StreamInputError):
            F.variable_uncertainty_decisions([0.1], F.StreamState(), rate=0.5, window=4, **kwargs)
    with pytest.raises(StreamInputError, match="delta"):
        F.randomized_variable_uncertainty_decisions([0.1], st, rate=0.5, window=4, delta=-1)
    with pytest.raises(StreamInputError, match="fraction"):
        F.split_decisions([0.1], st, rate=0.5, window=4, fraction=1.5)
    with pytest.raises(StreamInputError, match="generator"):
        F.random_decisions(3, F.StreamState(), rate=0.5, window=4)
    with pytest.raises(StreamInputError, match="memory_size"):
        F.novelty_weighted_decisions([0.1], [[1.0, 0.0]], st, rate=0.5, window=4, memory_size=0)
    with pytest.raises(StreamInputError, match="shape"):
        F.density_weighted_decisions([0.1, 0.2], [[1.0, 0.0]], st, rate=0.5, window=4)
    with pytest.raises(StreamInputError, match="embeddings"):
        F.density_weighted_decisions([0.1], None, st, rate=0.5, window=4)
    d = F.novelty_weighted_decisions([0.9], [[1.0, 0.0]], st, rate=0.5, window=4)
    with pytest.raises(StreamInputError, match="dimension 3"):
        F.novelty_weighted_decisions([0.9], [[1.0, 0.0, 0.0]], d.state, rate=0.5, window=4)
    with pytest.raises(StreamInputError, match="NaN"):
        F.novelty_weighted_decisions([0.9], [[np.nan, 0.0]], st, rate=0.5, window=4)
    with pytest.raises(StreamInputError, match="seed"):
        F.initial_stream_state(seed=-1)
    with pytest.raises(StreamStateError):
        F.StreamState(seen=2, labelled=3)
    with pytest.raises(StreamStateError):
        F.StreamState(seen=5, labelled=2, recent=(3, 1))
    with pytest.raises(StreamStateError):
        F.StreamState(seen=5, labelled=1, recent=(5,))
    with pytest.raises(StreamStateError):
        F.StreamState.from_dict({"seen": 1, "bogus": 2})
    with pytest.raises(StreamStateError, match="PCG64"):
        F.random_decisions(1, F.StreamState(rng={"bit_generator": "MT19937"}), rate=0.5, window=4)


def test_random_rule_is_independent_of_a_drift_order_drawn_with_the_same_seed():
    """A drift order and a random rule seeded alike must not draw the same uniforms: the
    rule would label exactly the arrivals whose class draw was below the rate."""
    from energizer_hf.stream import prior_drift_order

    labels = np.repeat(np.arange(4), 1000)
    order = prior_drift_order(labels, [[0.05, 0.05, 0.45, 0.45]], 2000, seed=0)
    d = F.random_decisions(2000, F.initial_stream_state(seed=0), rate=0.1, window=2000)
    chosen = labels[order[d.labelled]]
    assert set(np.unique(chosen)) == {0, 1, 2, 3}
    assert (chosen >= 2).mean() > 0.6  # the labelled items follow the stream's classes
