"""Stopping criteria: the rules on synthetic predictions, bad arguments, and the loop wiring."""

import dataclasses

import numpy as np
import pytest

from energizer_hf import BudgetError
from energizer_hf.loop import LoopSettings
from energizer_hf.stopping import (
    Budget,
    ClassificationChange,
    DeltaF1,
    InvalidStoppingCriterionError,
    KappaAverage,
    MaxRounds,
    OverallUncertainty,
    StopState,
    check_stopping,
    cohen_kappa,
    validate_criteria,
)


class FakePool:
    def __init__(self, n, labelled=()):
        self.n = n
        self.labelled = set(labelled)

    def __len__(self):
        return self.n

    @property
    def unlabelled_ids(self):
        return np.array([i for i in range(self.n) if i not in self.labelled], dtype=np.int64)


def _state(round, table, pool=None, num_labelled=0):
    """``table``: (N, C) probabilities of the current model for every pool id."""
    pool = pool or FakePool(len(table))
    return StopState(round=round, num_labelled=num_labelled, pool=pool, predict=lambda ids: table[ids])


def _onehot(pred, c=3):
    return np.eye(c)[np.asarray(pred)]


def test_budget_and_max_rounds():
    assert Budget(20).check(StopState(round=0, num_labelled=19)) is None
    assert Budget(20).check(StopState(round=0, num_labelled=20)) == "budget"
    assert MaxRounds(2).check(StopState(round=1, num_labelled=0)) is None
    assert MaxRounds(2).check(StopState(round=2, num_labelled=0)) == "max_rounds"


def test_cohen_kappa_known_values():
    assert cohen_kappa([0, 1, 0, 1], [0, 1, 0, 1]) == 1.0
    assert cohen_kappa([0, 0, 0], [0, 0, 0]) == 1.0  # degenerate but identical
    assert cohen_kappa([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)
    # 2x2 table [[20, 5], [10, 15]]: po=0.7, pe=0.5 -> 0.4
    a = [0] * 25 + [1] * 25
    b = [0] * 20 + [1] * 5 + [0] * 10 + [1] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_kappa_average_fires_after_a_stable_window():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 3, 200)
    crit = KappaAverage(threshold=0.99, window=2, stop_set_size=200)
    noisy = base.copy()
    noisy[:80] = (noisy[:80] + 1) % 3
    tables = [_onehot(noisy), _onehot(base), _onehot(base), _onehot(base)]
    reasons = [crit.check(_state(r, t)) for r, t in enumerate(tables)]
    # kappas: (noisy->base) low, then 1, 1 -> the mean of the last two reaches 1 at round 3
    assert reasons == [None, None, None, "kappa_average"]
    assert crit.history[0] < 0.5 and crit.history[1:] == [1.0, 1.0]


def test_delta_f1_needs_window_rounds_below_threshold():
    base = np.arange(90) % 3
    crit = DeltaF1(threshold=0.01, window=2, stop_set_size=90)
    changed = base.copy()
    changed[:30] = 0
    reasons = [crit.check(_state(r, _onehot(t))) for r, t in enumerate([changed, base, base, base])]
    assert reasons == [None, None, None, "delta_f1"]
    assert crit.history[0] > 0.1


def test_overall_uncertainty_uses_the_unlabelled_rows_only():
    table = np.tile([0.98, 0.01, 0.01], (10, 1))
    table[0] = [1 / 3, 1 / 3, 1 / 3]  # labelled below: ignored
    pool = FakePool(10, labelled=[0])
    crit = OverallUncertainty(threshold=0.15)
    assert crit.check(_state(0, table, pool)) == "overall_uncertainty"
    table[5] = [1 / 3, 1 / 3, 1 / 3]
    crit2 = OverallUncertainty(threshold=0.15, max_examples=None)
    assert crit2.check(_state(0, table, pool)) is None  # mean = (1 + 8 * 0.102) / 9 > 0.15
    assert crit2.last_value == pytest.approx(crit2.uncertainty(table[1:]).mean())


def test_classification_change_compares_rows_unlabelled_in_both_rounds():
    a = np.arange(20) % 2
    crit = ClassificationChange(threshold=0.0)
    assert crit.check(_state(0, _onehot(a, 2))) is None  # nothing to compare yet
    b = a.copy()
    b[3] = 1 - b[3]
    assert crit.check(_state(1, _onehot(b, 2))) is None
    assert crit.last_value == pytest.approx(1 / 20)
    # row 7 changes but got labelled: not compared
    c = b.copy()
    c[7] = 1 - c[7]
    assert crit.check(_state(2, _onehot(c, 2), FakePool(20, labelled=[7]))) == "classification_change"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Budget(0),
        lambda: Budget(2.5),
        lambda: MaxRounds(-1),
        lambda: KappaAverage(threshold=1.5),
        lambda: KappaAverage(threshold=0.0),
        lambda: KappaAverage(window=0),
        lambda: KappaAverage(stop_set_size=0),
        lambda: KappaAverage(stop_ids=[]),
        lambda: DeltaF1(threshold=-0.1),
        lambda: DeltaF1(threshold=1.0),
        lambda: OverallUncertainty(threshold=float("nan")),
        lambda: OverallUncertainty(measure="margin"),
        lambda: ClassificationChange(threshold=1.0),
        lambda: ClassificationChange(max_examples=0),
    ],
)
def test_impossible_values_raise_a_named_error(make):
    with pytest.raises(InvalidStoppingCriterionError):
        make()


def test_prediction_criterion_without_a_model_names_the_problem():
    with pytest.raises(Exception, match="needs the model's predictions"):
        KappaAverage().check(StopState(round=0, num_labelled=0, pool=FakePool(5)))


def test_settings_validate_and_relax_the_budget_rule():
    with pytest.raises(InvalidStoppingCriterionError, match="not a stopping criterion"):
        LoopSettings(query_size=5, max_rounds=2, stopping_criteria=["kappa"])
    with pytest.raises(BudgetError):
        LoopSettings(query_size=5)
    s = LoopSettings(query_size=5, stopping_criteria=[KappaAverage()])
    assert isinstance(s.stopping_criteria, tuple)
    assert len(validate_criteria(Budget(3))) == 1
    # the saved configuration is stable (no object addresses)
    assert repr(s.stopping_criteria[0]) == "KappaAverage(threshold=0.99, window=3, stop_set_size=2000, stop_ids=None)"


def test_check_stopping_returns_the_first_reason():
    state = StopState(round=0, num_labelled=4, pool=FakePool(10))
    assert check_stopping([MaxRounds(5), Budget(4)], state) == "budget"
    assert check_stopping([Budget(100)], state) is None
    assert check_stopping((), state) is None
    with pytest.raises(InvalidStoppingCriterionError, match="not a stopping criterion"):
        check_stopping(["budget"], state)


def test_the_seed_trainer_takes_criteria_by_name_or_object(tmp_path):
    from energizer_hf.query_strategies import RandomStrategy
    from tests.seed_models import UnpackingModel, loaders
    from tests.test_seed_api import _trainer

    train_dl, test_dl, _ = loaders()
    trainer = _trainer(tmp_path, max_labelling_epochs=-1, max_epochs=1,
                       stopping_criteria=[{"name": "budget", "max_labels": 30}])
    assert [repr(c) for c in trainer.settings.stopping_criteria] == ["Budget(max_labels=30)"]
    res = trainer.active_fit(model=RandomStrategy(UnpackingModel()), train_dataloaders=train_dl, test_dataloaders=test_dl)
    assert res.stop_reason == "budget" and [r["num_labelled"] for r in res] == [10, 20, 30]


class _Probe:
    """A custom criterion: checks the loop's predictions, fires at round 1."""

    name = "probe"

    def __init__(self):
        self.seen = []

    def check(self, state):
        ids = state.pool.unlabelled_ids[:5]
        probs = state.probs(ids, "probe")
        assert probs.shape == (5, 3) and np.allclose(probs.sum(1), 1.0, atol=1e-4)
        self.seen.append(state.round)
        return "probe" if state.round >= 1 else None


def test_loop_records_why_it_stopped(tmp_path):
    from energizer_hf.query_strategies import EntropyStrategy
    from tests.seed_models import UnpackingModel, loaders
    from tests.test_seed_api import _trainer

    train_dl, test_dl, _ = loaders()
    trainer = _trainer(tmp_path, max_labelling_epochs=6, max_epochs=1)
    probe = _Probe()
    kappa = KappaAverage(threshold=0.999, window=1, stop_set_size=50)
    trainer.settings = dataclasses.replace(trainer.settings, stopping_criteria=[kappa, probe])
    res = trainer.active_fit(model=EntropyStrategy(UnpackingModel()), train_dataloaders=train_dl, test_dataloaders=test_dl)
    assert res.stop_reason in ("probe", "kappa_average")
    assert res.rows[-1]["num_queried"] == 0 and res.rows[-1]["round"] == 1
    assert len(kappa.history) == 1 and -1.0 <= kappa.history[0] <= 1.0


def test_loop_stops_on_budget_criterion(tmp_path):
    from energizer_hf.query_strategies import RandomStrategy
    from tests.seed_models import UnpackingModel, loaders
    from tests.test_seed_api import _trainer

    train_dl, test_dl, _ = loaders()
    trainer = _trainer(tmp_path, max_labelling_epochs=6, max_epochs=1)
    trainer.settings = dataclasses.replace(trainer.settings, stopping_criteria=[Budget(30)])
    res = trainer.active_fit(model=RandomStrategy(UnpackingModel()), train_dataloaders=train_dl, test_dataloaders=test_dl)
    assert res.stop_reason == "budget"
    assert [r["num_labelled"] for r in res] == [10, 20, 30]
