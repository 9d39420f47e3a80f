"""Every stream strategy through the same invariants; the registry; named errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from energizer_hf.errors import (
    BudgetRateError,
    ConfigMismatchError,
    EnergizerError,
    InvalidScoresError,
    StreamInputError,
    StreamStateError,
    UnknownStrategyError,
)
from energizer_hf.functional import sliding_window_counts
from energizer_hf.stream import (
    FixedUncertaintyStream,
    RandomStream,
    StreamStrategy,
    VariableUncertaintyStream,
    available_stream_strategies,
    get_stream_strategy_class,
    make_stream_strategy,
    register_stream_strategy,
)

# one line per strategy: a new strategy is one added line
CASES = {
    "fixed_uncertainty": {"threshold": 0.4},
    "variable_uncertainty": {},
    "randomized_variable_uncertainty": {"delta": 0.5},
    "split": {"fraction": 0.3},
    "novelty_uncertainty": {"memory_size": 32},
    "density_uncertainty": {"memory_size": 32, "delta": 1.0},
    "random": {},
    "quantile_uncertainty": {},
}


def _data(n=1500, d=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random(n), rng.normal(size=(n, d))


def _decide_all(strategy, scores, emb, batch=50):
    out = []
    for a in range(0, scores.size, batch):
        out.append(strategy.decide(scores[a : a + batch], emb[a : a + batch] if strategy.requires_embeddings else None))
    return np.concatenate(out)


def test_registry_lists_every_strategy():
    names = available_stream_strategies()
    assert set(CASES) <= set(names)
    assert {"vu", "rvu", "novelty", "density", "fixed"} <= set(names)
    assert get_stream_strategy_class("Variable-Uncertainty") is VariableUncertaintyStream
    with pytest.raises(UnknownStrategyError, match="Known stream strategies"):
        get_stream_strategy_class("entropy")
    with pytest.raises(EnergizerError, match="already registered"):
        register_stream_strategy("split")(type("Other", (StreamStrategy,), {}))


def test_make_stream_strategy_checks_parameters():
    s = make_stream_strategy("rvu", 0.1, delta=0.3, window=200, step=0.02, seed=4)
    assert s.params() == {
        "budget_rate": 0.1, "window": 200, "seed": 4, "step": 0.02, "max_score": 1.0,
        "initial_threshold": 0.0, "delta": 0.3,
    }
    with pytest.raises(StreamInputError, match="no parameter"):
        make_stream_strategy("vu", 0.1, delta=0.3)


@pytest.mark.parametrize("name", list(CASES))
def test_budget_and_decisions(name):
    cls = get_stream_strategy_class(name)
    strategy = cls(0.1, window=100, seed=1, **CASES[name])
    scores, emb = _data()
    mask = _decide_all(strategy, scores, emb)
    assert mask.dtype == bool and mask.shape == scores.shape
    assert sliding_window_counts(mask, 100).max() <= strategy.capacity == 10
    assert strategy.seen == scores.size and strategy.num_labelled == int(mask.sum()) > 0
    assert 0 <= strategy.window_spending <= 0.1
    assert strategy.estimated_spending >= 0
    last = strategy.last
    assert last.labelled.shape == last.scores.shape == last.thresholds.shape == last.blocked.shape == (50,)


@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_round_trip_resumes_identically(name):
    cls = get_stream_strategy_class(name)
    scores, emb = _data(seed=2)
    ref = cls(0.2, window=50, seed=3, **CASES[name])
    ref_mask = _decide_all(ref, scores, emb)
    first = cls(0.2, window=50, seed=3, **CASES[name])
    head = _decide_all(first, scores[:700], emb[:700])
    saved = first.state_dict()
    memory = saved["state"].pop("memory")
    saved = json.loads(json.dumps(saved))  # everything else is JSON-able
    saved["state"]["memory"] = memory
    second = cls(0.2, window=50, seed=3, **CASES[name])
    second.load_state_dict(saved)
    tail = _decide_all(second, scores[700:], emb[700:])
    np.testing.assert_array_equal(np.concatenate([head, tail]), ref_mask)
    assert second.threshold == ref.threshold
    # another parameter, or another strategy, cannot resume this state
    other = cls(0.25, window=50, seed=3, **CASES[name])
    with pytest.raises(ConfigMismatchError, match="same strategy and parameters"):
        other.load_state_dict(saved)
    with pytest.raises(StreamStateError):
        other.load_state_dict({"name": name})


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name):
    cls = get_stream_strategy_class(name)
    for rate in (0, -0.5, 1.5, float("nan")):
        with pytest.raises(BudgetRateError):
            cls(rate, **CASES[name])
    with pytest.raises(BudgetRateError, match="window of at least"):
        cls(0.01, window=50, **CASES[name])
    s = cls(0.5, window=10, **CASES[name])
    if cls.requires_scores:
        with pytest.raises(StreamInputError, match="scores"):
            s.decide(None, np.ones((3, 2)))
        with pytest.raises(InvalidScoresError):
            s.decide(np.array([0.1, np.inf]), np.ones((2, 2)))
    if cls.requires_embeddings:
        with pytest.raises(StreamInputError, match="embeddings"):
            s.decide(np.ones(3))
    with pytest.raises(StreamInputError, match="Inconsistent"):
        s.decide(np.ones(3), np.ones((4, 2)))
    with pytest.raises(StreamInputError, match="batch size"):
        s.decide()


def test_parameter_errors_at_construction():
    with pytest.raises(StreamInputError, match="step"):
        VariableUncertaintyStream(0.1, step=2.0)
    with pytest.raises(StreamInputError, match="fraction"):
        make_stream_strategy("split", 0.1, fraction=-0.1)
    with pytest.raises(StreamInputError, match="memory_size"):
        make_stream_strategy("novelty", 0.1, memory_size=0)
    with pytest.raises(TypeError):
        FixedUncertaintyStream(0.1)  # the threshold has no sensible default


def test_known_answers_through_the_classes():
    s = FixedUncertaintyStream(0.2, threshold=0.5, window=10)
    mask = np.concatenate([s.decide(np.ones(7)) for _ in range(5)])
    assert np.flatnonzero(mask).tolist() == [0, 1, 10, 11, 20, 21, 30, 31]
    r = RandomStream(1.0, window=1)
    assert r.decide(num_items=5).all() and r.requires_scores is False
    # random ignores scores but accepts them (for the batch size)
    assert RandomStream(0.5, window=2, seed=0).decide(np.full(4, np.nan)).shape == (4,)
