"""Stopping criteria: when to stop asking for labels.

A criterion is an object with ``name`` and ``check(state) -> str | None``: it returns a
stop reason (its ``name``) or ``None`` to go on. Its ``repr`` is saved in the run's
configuration and compared on resume, so a custom criterion should define a stable
``__repr__`` (the built-in ones print their arguments only). Give them to the loop with
``LoopSettings(stopping_criteria=[...])``; before each query the loop calls
:func:`check_stopping`, which asks every criterion in order, and the first reason is
recorded as the round's ``stop_reason`` (see :class:`~energizer_hf.results.RoundResults`).
The loop's own ``max_rounds`` / ``total_budget`` keep working; :class:`Budget` and
:class:`MaxRounds` are the same rules as criteria (handy to combine with the others).

Criteria that look at the model's predictions (``needs_predictions = True``) get them
from ``state.predict(ids) -> (len(ids), C) probabilities``, which the loop builds from
the strategy's model (the one just trained), on one or many processes. Their history
(previous rounds' predictions) is kept in memory: after a resume it starts again, so
such a criterion may fire a few rounds later than in an uninterrupted run.

>>> from energizer_hf.loop import LoopSettings
>>> settings = LoopSettings(query_size=50, total_budget=2000,
...                         stopping_criteria=[KappaAverage(threshold=0.99, window=3)])

Criteria (references in each class):

=======================  ======================================  =========================
name                     rule                                    needs
=======================  ======================================  =========================
``budget``               labelled >= max_labels                  nothing
``max_rounds``           round >= max_rounds                     nothing
``kappa_average``        mean Cohen's κ of consecutive models'   predictions on a stop set
                         predictions >= threshold over a window
``delta_f1``             1 − F1(agreement of consecutive          predictions on a stop set
                         models) <= threshold, window rounds
``overall_uncertainty``  mean normalised entropy (or least       predictions on the
                         confidence) of the unlabelled pool      unlabelled pool
                         <= threshold
``classification_change`` share of unlabelled rows whose          predictions on the
                         predicted class changed <= threshold    unlabelled pool
=======================  ======================================  =========================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from energizer_hf.errors import EnergizerError
from energizer_hf.functional.primitives import entropy

__all__ = [
    "Budget",
    "ClassificationChange",
    "DeltaF1",
    "InvalidStoppingCriterionError",
    "KappaAverage",
    "MaxRounds",
    "OverallUncertainty",
    "StopState",
    "StoppingCriterion",
    "check_stopping",
    "cohen_kappa",
    "criteria_from_config",
    "validate_criteria",
]

log = logging.getLogger(__name__)


class InvalidStoppingCriterionError(EnergizerError):
    """A stopping criterion got an impossible argument (or is not a criterion)."""


@dataclass
class StopState:
    """What a criterion sees before a query.

    Attributes:
        round: the round about to query (its model is trained).
        num_labelled: labelled pool rows so far.
        pool: the :class:`~energizer_hf.pool.ActivePool`.
        records: the records of the previous rounds.
        seed: the run's seed.
        predict: ``ids -> (len(ids), C)`` probabilities of the current model, or ``None``
            when no model is available.
    """

    round: int
    num_labelled: int
    pool: Any = None
    records: Sequence[dict[str, Any]] = ()
    seed: int = 0
    predict: Callable[[np.ndarray], np.ndarray] | None = None
    _cache: dict[bytes, np.ndarray] = field(default_factory=dict, repr=False)

    def probs(self, ids: np.ndarray, who: str) -> np.ndarray:
        """Probabilities of ``ids`` (memoised within the round)."""
        ids = np.asarray(ids, dtype=np.int64)
        key = ids.tobytes()
        if key not in self._cache:
            if self.predict is None:
                raise EnergizerError(
                    f"{who} needs the model's predictions, but the loop has none to give (the "
                    "strategy has no model)."
                )
            out = np.asarray(self.predict(ids), dtype=np.float64)
            if out.ndim != 2 or out.shape[0] != ids.size:
                raise EnergizerError(f"predict returned shape {out.shape} for {ids.size} ids.")
            if not np.isfinite(out).all():
                raise EnergizerError(f"{who}: the model produced NaN/inf probabilities.")
            self._cache[key] = out
        return self._cache[key]


class StoppingCriterion:
    """Base class: subclasses set ``name`` and implement :meth:`check`."""

    name: ClassVar[str] = "criterion"
    needs_predictions: ClassVar[bool] = False

    def check(self, state: StopState) -> str | None:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget any history (called never by the loop; for reuse across runs)."""

    def _params(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:  # stable: it is part of the run's saved configuration
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


def _int_at_least(value: Any, low: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidStoppingCriterionError(f"{what} must be an integer >= {low}, got {value!r}.")
    return int(value)


def _in_range(value: Any, low: float, high: float, what: str, low_open: bool = False, high_open: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidStoppingCriterionError(f"{what} must be a number, got {value!r}.") from None
    ok = np.isfinite(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise InvalidStoppingCriterionError(f"{what} must be in {lo}{low}, {high}{hi}, got {value!r}.")
    return v


class Budget(StoppingCriterion):
    """Stop once ``max_labels`` pool rows are labelled (initial set included)."""

    name = "budget"

    def __init__(self, max_labels: int) -> None:
        self.max_labels = _int_at_least(max_labels, 1, "Budget max_labels")

    def check(self, state: StopState) -> str | None:
        return self.name if state.num_labelled >= self.max_labels else None

    def _params(self) -> dict[str, Any]:
        return {"max_labels": self.max_labels}


class MaxRounds(StoppingCriterion):
    """Stop at round ``max_rounds`` (``max_rounds`` query rounds were made)."""

    name = "max_rounds"

    def __init__(self, max_rounds: int) -> None:
        self.max_rounds = _int_at_least(max_rounds, 0, "MaxRounds max_rounds")

    def check(self, state: StopState) -> str | None:
        return self.name if state.round >= self.max_rounds else None

    def _params(self) -> dict[str, Any]:
        return {"max_rounds": self.max_rounds}


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's κ between two label vectors (1.0 when they agree everywhere)."""
    a, b = np.asarray(a), np.asarray(b)
    po = float(np.mean(a == b))
    classes = np.union1d(a, b)
    pa = np.array([np.mean(a == c) for c in classes])
    pb = np.array([np.mean(b == c) for c in classes])
    pe = float(pa @ pb)
    if pe >= 1.0:
        return 1.0 if po >= 1.0 else 0.0
    return (po - pe) / (1.0 - pe)


def _agreement_f1(prev: np.ndarray, cur: np.ndarray) -> float:
    """Macro F1 of ``cur`` against ``prev`` over the classes either predicts."""
    f1s = []
    for c in np.union1d(prev, cur):
        tp = np.sum((cur == c) & (prev == c))
        denom = np.sum(cur == c) + np.sum(prev == c)
        f1s.append(2.0 * tp / denom if denom else 1.0)
    return float(np.mean(f1s)) if f1s else 1.0


class _StopSetCriterion(StoppingCriterion):
    """Compares consecutive models' predicted classes on a fixed stop set."""

    needs_predictions = True

    def __init__(self, threshold: float, window: int, stop_set_size: int, stop_ids: Any) -> None:
        self.window = _int_at_least(window, 1, f"{type(self).__name__} window")
        self.stop_set_size = _int_at_least(stop_set_size, 1, f"{type(self).__name__} stop_set_size")
        self.stop_ids = None if stop_ids is None else np.asarray(stop_ids, dtype=np.int64)
        if self.stop_ids is not None and (self.stop_ids.ndim != 1 or self.stop_ids.size == 0):
            raise InvalidStoppingCriterionError("stop_ids must be a non-empty 1-d array of pool ids.")
        self.threshold = threshold
        self.reset()

    def reset(self) -> None:
        self._ids: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._prev_round: int | None = None
        self.history: list[float] = []

    def stop_set(self, state: StopState) -> np.ndarray:
        if self._ids is None:
            n = len(state.pool)
            if self.stop_ids is not None:
                if self.stop_ids.min() < 0 or self.stop_ids.max() >= n:
                    raise InvalidStoppingCriterionError(f"stop_ids must lie in [0, {n}).")
                self._ids = np.unique(self.stop_ids)
            else:
                rng = np.random.default_rng([state.seed, 0x5709])
                size = min(self.stop_set_size, n)
                self._ids = np.sort(rng.choice(n, size=size, replace=False)).astype(np.int64)
        return self._ids

    def agreement(self, prev: np.ndarray, cur: np.ndarray) -> float:
        raise NotImplementedError

    def fires(self) -> bool:
        raise NotImplementedError

    def check(self, state: StopState) -> str | None:
        if self._prev_round is not None and state.round == self._prev_round:
            return self.name if self.fires() else None  # asked twice in a round
        ids = self.stop_set(state)
        cur = state.probs(ids, type(self).__name__).argmax(1)
        if self._prev is not None:
            self.history.append(self.agreement(self._prev, cur))
        self._prev, self._prev_round = cur, state.round
        if self.fires():
            log.info("%s fires at round %d (last values %s).", self.name, state.round, self.history[-self.window :])
            return self.name
        return None

    def _params(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "window": self.window,
            "stop_set_size": self.stop_set_size,
            "stop_ids": None if self.stop_ids is None else f"<{self.stop_ids.size} ids>",
        }


class KappaAverage(_StopSetCriterion):
    """Stabilising predictions: stop when the mean Cohen's κ between consecutive models'
    predictions on a fixed stop set, over the last ``window`` pairs, is >= ``threshold``.

    Reference: Bloodgood & Vijay-Shanker, "A Method for Stopping Active Learning Based on
    Stabilizing Predictions and the Need for User-Adjustable Stopping", CoNLL 2009
    (κ threshold 0.99, window 3). The stop set needs no labels; by default
    ``stop_set_size`` pool ids drawn once with the run's seed (or ``stop_ids``).
    Cost: one prediction pass over the stop set per round.

    Args:
        threshold: κ level in (0, 1] (paper: 0.99).
        window: number of consecutive κ values averaged (paper: 3).
        stop_set_size: size of the random stop set (>= 1).
        stop_ids: explicit stop-set pool ids.
    """

    name = "kappa_average"

    def __init__(
        self, threshold: float = 0.99, window: int = 3, stop_set_size: int = 2000, stop_ids: Any = None
    ) -> None:
        t = _in_range(threshold, 0.0, 1.0, "KappaAverage threshold", low_open=True)
        super().__init__(t, window, stop_set_size, stop_ids)

    def agreement(self, prev: np.ndarray, cur: np.ndarray) -> float:
        return cohen_kappa(prev, cur)

    def fires(self) -> bool:
        return len(self.history) >= self.window and float(np.mean(self.history[-self.window :])) >= self.threshold


class DeltaF1(_StopSetCriterion):
    """Predicted change of F: stop when ``ΔF = 1 − F1(cur vs prev)`` on the stop set is
    <= ``threshold`` for ``window`` consecutive rounds (macro F1 of the current model's
    predictions against the previous model's, which needs no labels).

    Reference: Altschuler & Bloodgood, "Stopping Active Learning Based on Predicted Change
    of F Measure for Text Classification", IEEE ICSC 2019.

    Args:
        threshold: ΔF level in [0, 1) (default 0.005).
        window: consecutive rounds below the threshold (default 3).
        stop_set_size / stop_ids: the stop set, as :class:`KappaAverage`.
    """

    name = "delta_f1"

    def __init__(
        self, threshold: float = 0.005, window: int = 3, stop_set_size: int = 2000, stop_ids: Any = None
    ) -> None:
        t = _in_range(threshold, 0.0, 1.0, "DeltaF1 threshold", high_open=True)
        super().__init__(t, window, stop_set_size, stop_ids)

    def agreement(self, prev: np.ndarray, cur: np.ndarray) -> float:
        return 1.0 - _agreement_f1(prev, cur)

    def fires(self) -> bool:
        last = self.history[-self.window :]
        return len(self.history) >= self.window and all(d <= self.threshold for d in last)


def _sample_unlabelled(state: StopState, max_examples: int | None, salt: int) -> np.ndarray:
    ids = np.asarray(state.pool.unlabelled_ids, dtype=np.int64)
    if max_examples is not None and ids.size > max_examples:
        rng = np.random.default_rng([state.seed, state.round, salt])
        ids = np.sort(rng.choice(ids, size=max_examples, replace=False))
    return ids


class OverallUncertainty(StoppingCriterion):
    """Stop when the model is confident on the unlabelled pool: the mean uncertainty
    (entropy normalised by log C, or least confidence normalised by 1 − 1/C) of the
    unlabelled rows is <= ``threshold``.

    Reference: Zhu, Wang & Hovy, "Multi-Criteria-Based Strategy to Stop Active Learning
    for Data Annotation", COLING 2008 (overall uncertainty). Cost: one prediction pass
    over the unlabelled pool (or ``max_examples`` of it, seeded) per round.

    Args:
        threshold: in (0, 1).
        measure: ``"entropy"`` or ``"least_confidence"``.
        max_examples: score at most this many unlabelled rows (``None``: all).
    """

    name = "overall_uncertainty"
    needs_predictions = True

    def __init__(self, threshold: float = 0.1, measure: str = "entropy", max_examples: int | None = 10_000) -> None:
        self.threshold = _in_range(threshold, 0.0, 1.0, "OverallUncertainty threshold", True, True)
        if measure not in ("entropy", "least_confidence"):
            raise InvalidStoppingCriterionError(
                f"OverallUncertainty measure must be 'entropy' or 'least_confidence', got {measure!r}."
            )
        self.measure = measure
        self.max_examples = None if max_examples is None else _int_at_least(max_examples, 1, "max_examples")
        self.last_value: float | None = None

    def uncertainty(self, probs: np.ndarray) -> np.ndarray:
        c = probs.shape[1]
        if c < 2:
            return np.zeros(probs.shape[0])
        if self.measure == "entropy":
            return entropy(probs, dim=1) / np.log(c)
        return (1.0 - probs.max(1)) / (1.0 - 1.0 / c)

    def check(self, state: StopState) -> str | None:
        ids = _sample_unlabelled(state, self.max_examples, 0x0C)
        if ids.size == 0:
            return None
        self.last_value = float(self.uncertainty(state.probs(ids, "OverallUncertainty")).mean())
        return self.name if self.last_value <= self.threshold else None

    def _params(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "measure": self.measure, "max_examples": self.max_examples}


class ClassificationChange(StoppingCriterion):
    """Stop when (almost) no unlabelled row changes its predicted class between two
    consecutive rounds: the share of changed rows among those unlabelled in both rounds
    is <= ``threshold`` (0: none changed, the paper's rule).

    Reference: Zhu, Wang & Hovy, COLING 2008 (classification change). Cost: one
    prediction pass over the unlabelled pool (or ``max_examples`` of it) per round.

    Args:
        threshold: in [0, 1).
        max_examples: compare at most this many rows (a fixed seeded sample of the pool).
    """

    name = "classification_change"
    needs_predictions = True

    def __init__(self, threshold: float = 0.0, max_examples: int | None = 10_000) -> None:
        self.threshold = _in_range(threshold, 0.0, 1.0, "ClassificationChange threshold", high_open=True)
        self.max_examples = None if max_examples is None else _int_at_least(max_examples, 1, "max_examples")
        self.reset()

    def reset(self) -> None:
        self._prev: dict[int, int] | None = None
        self._prev_round: int | None = None
        self.last_value: float | None = None

    def check(self, state: StopState) -> str | None:
        if self._prev_round is not None and state.round == self._prev_round:
            return self.name if self.last_value is not None and self.last_value <= self.threshold else None
        ids = np.asarray(state.pool.unlabelled_ids, dtype=np.int64)
        if self.max_examples is not None and ids.size > self.max_examples:
            # a fixed sample of the pool (same rows every round), restricted to unlabelled
            rng = np.random.default_rng([state.seed, 0xC4A6])
            keep = rng.permutation(len(state.pool))[: self.max_examples]
            ids = np.intersect1d(ids, keep)
        if ids.size == 0:
            return None
        pred = state.probs(ids, "ClassificationChange").argmax(1)
        cur = dict(zip(ids.tolist(), pred.tolist()))
        prev, self._prev, self._prev_round = self._prev, cur, state.round
        if prev is None:
            return None
        common = [i for i in cur if i in prev]
        if not common:
            return None
        self.last_value = float(np.mean([cur[i] != prev[i] for i in common]))
        return self.name if self.last_value <= self.threshold else None

    def _params(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "max_examples": self.max_examples}


def criteria_from_config(spec: Any) -> tuple[StoppingCriterion, ...]:
    """Build criteria from a configuration: a list of names or ``{name: ..., **params}``.

    >>> criteria_from_config([{"name": "kappa_average", "threshold": 0.95}])
    (KappaAverage(threshold=0.95, window=3, stop_set_size=2000, stop_ids=None),)
    """
    if not spec:
        return ()
    classes = {c.name: c for c in StoppingCriterion.__subclasses__() if not c.__name__.startswith("_")}
    classes.update({c.name: c for c in _StopSetCriterion.__subclasses__()})
    out = []
    for item in spec if isinstance(spec, (list, tuple)) else [spec]:
        params = dict(item) if isinstance(item, dict) else {"name": item}
        name = str(params.pop("name", ""))
        if name not in classes:
            raise InvalidStoppingCriterionError(
                f"Unknown stopping criterion {name!r}; known: {', '.join(sorted(classes))}."
            )
        try:
            out.append(classes[name](**params))
        except TypeError as err:
            raise InvalidStoppingCriterionError(f"Bad parameters for {name!r}: {err}") from None
    return tuple(out)


def validate_criteria(criteria: Any) -> tuple[Any, ...]:
    """``criteria`` as a tuple, each with a callable ``check``; raises otherwise."""
    if criteria is None:
        return ()
    if isinstance(criteria, StoppingCriterion) or callable(getattr(criteria, "check", None)):
        criteria = [criteria]
    try:
        items = tuple(criteria)
    except TypeError:
        raise InvalidStoppingCriterionError(
            f"stopping_criteria must be a list of criteria, got {type(criteria).__name__}."
        ) from None
    for c in items:
        if not callable(getattr(c, "check", None)):
            raise InvalidStoppingCriterionError(
                f"{c!r} is not a stopping criterion: it needs a check(state) method "
                "(see energizer_hf.stopping)."
            )
    return items


def check_stopping(criteria: Any, state: StopState) -> str | None:
    """Ask ``criteria`` in order (before a query); return the first stop reason, else ``None``.

    The loop builds ``state`` (its ``predict`` runs the strategy's model over pool ids).

    >>> check_stopping([MaxRounds(3), Budget(10)], StopState(round=1, num_labelled=12))
    'budget'
    """
    for criterion in validate_criteria(criteria):
        reason = criterion.check(state)
        if reason:
            return str(reason)
    return None
