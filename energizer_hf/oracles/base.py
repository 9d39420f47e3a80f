"""The oracle protocol: whoever gives labels to queried pool ids, and what the loop must know of it.

An oracle answers ``annotate(ids, round=r)`` with one label id per id (``-1``: skipped).
Besides that the loop reads three things, declared here rather than guessed:

* ``label_source``: ``"dataset"`` when the labels are the data's own (a simulation) or
  ``"annotator"`` when someone gives them; it is written to every round's revision.
* ``keeps_round``: people label; a queried round is kept in ``pending.json`` before they
  are asked, so that it is never fitted or queried again (after a crash or a pause).
* :class:`AwaitingAnnotations`: the signal of an asynchronous oracle (people have not
  finished yet); the loop stops with ``stop_reason == "awaiting_annotations"``.

And one optional hook, :meth:`OracleBase.bind`: at the start of a run the loop hands the
oracle the run (:class:`~energizer_hf.run.RunInfo`: run directory, class names, text
column), the pool's dataset and the model's predictions, so that an oracle never has to be
told them a second time.

>>> oracle = as_oracle(lambda ids, round: [0] * len(ids))
>>> oracle.label_source, oracle.keeps_round
('annotator', False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from energizer_hf.errors import EnergizerError
from energizer_hf.run import RunInfo

__all__ = [
    "AWAITING_ANNOTATIONS",
    "AwaitingAnnotations",
    "CallableOracle",
    "Oracle",
    "OracleBase",
    "Predict",
    "SimulatedOracle",
    "as_oracle",
]

AWAITING_ANNOTATIONS = "awaiting_annotations"

Predict = Callable[[np.ndarray], np.ndarray]
"""``predict(ids) -> (len(ids), C)`` class probabilities of the run's current model."""


class AwaitingAnnotations(Exception):  # noqa: N818 - a signal, not an error
    """Raised by an asynchronous oracle when a round's annotations are not all in yet.

    The loop catches it, keeps the queried round in ``pending.json`` (it is not fitted or
    queried again) and stops with ``stop_reason == "awaiting_annotations"``.

    Attributes:
        round / done / total: the waiting round and how many of its examples are resolved.
        where: where people label (a project URL, "the notebook widget").
        reraise: the loop keeps the round, then raises this exception (e.g. a blocking
            oracle's timeout).
    """

    stop_reason = AWAITING_ANNOTATIONS
    reraise = False

    def __init__(self, round: int, done: int, total: int, where: str = "", message: str = "") -> None:
        self.round, self.done, self.total, self.where = round, done, total, where
        super().__init__(
            message
            or f"Round {round}: {done}/{total} tasks resolved{(' in ' + where) if where else ''}; "
            "collect the rest later (learner.collect() or `energizer-hf annotate RUN_DIR`)."
        )


@runtime_checkable
class Oracle(Protocol):
    """Gives labels for pool ids (see the module docstring).

    ``annotate`` returns one label id per queried id, or ``None`` when the dataset itself
    carries the labels (the seed API's torch datasets). A label of ``-1`` means the
    annotator gave none (skipped); such ids are not marked as labelled.
    """

    label_source: str
    keeps_round: bool

    def annotate(self, ids: np.ndarray, *, round: int) -> np.ndarray | None: ...

    def bind(self, run: RunInfo, dataset: Any, predict: Predict | None) -> None: ...


class OracleBase:
    """Defaults of the protocol: people label (``"annotator"``), rounds are not kept, and
    :meth:`bind` takes nothing. Subclass it and implement :meth:`annotate`."""

    label_source: ClassVar[str] = "annotator"
    keeps_round: ClassVar[bool] = False

    def annotate(self, ids: np.ndarray, *, round: int) -> np.ndarray | None:
        raise NotImplementedError

    def close_round(self) -> None:
        """Ask an asynchronous oracle to close its waiting round with what is labelled now
        (the rest goes back to the pool) the next time it is asked; a no-op by default."""

    def bind(self, run: RunInfo, dataset: Any, predict: Predict | None) -> None:
        """Called by the loop before the first round.

        Args:
            run: the run (directory, class names, text column, configuration).
            dataset: the pool's dataset (pool ids are its row indices).
            predict: ``ids -> (len(ids), C)`` probabilities of the current model, computed
                on this process alone; ``None`` when the strategy has no model.
        """


class SimulatedOracle(OracleBase):
    """Reveals the dataset's own labels, and only for the queried ids.

    The label array is held here, never in the views the model scores, so a strategy
    cannot peek at labels of unlabelled rows.

    >>> import numpy as np
    >>> oracle = SimulatedOracle(np.array([2, 0, 1]))
    >>> oracle.annotate(np.array([2, 0]), round=1).tolist()
    [1, 2]
    >>> oracle.num_revealed
    2
    """

    label_source = "dataset"

    def __init__(self, labels: np.ndarray | None) -> None:
        if labels is not None and hasattr(labels, "offsets"):  # per-sentence tags (RaggedTags)
            self._labels = labels
        else:
            self._labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.num_revealed = 0

    def annotate(self, ids: np.ndarray, *, round: int) -> np.ndarray | None:
        self.num_revealed += len(ids)
        if self._labels is None:
            return None
        return self._labels[np.asarray(ids, dtype=np.int64)]


class CallableOracle(OracleBase):
    """Wrap a plain function ``fn(ids, round) -> labels`` as an oracle."""

    def __init__(self, fn: Callable[[np.ndarray, int], Any]) -> None:
        if not callable(fn):
            raise EnergizerError(f"CallableOracle needs a callable, got {type(fn).__name__}.")
        self.fn = fn

    def annotate(self, ids: np.ndarray, *, round: int) -> np.ndarray | None:
        out = self.fn(ids, round)
        return None if out is None else np.asarray(out, dtype=np.int64)


class _Annotating(OracleBase):
    """An object with only an ``annotate`` method, given the protocol's defaults."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def annotate(self, ids: np.ndarray, *, round: int) -> np.ndarray | None:
        return self.inner.annotate(ids, round=round)


def as_oracle(obj: Any) -> Oracle:
    """``obj`` as an :class:`Oracle`: itself when it is one, a function as a
    :class:`CallableOracle`, an object with only ``annotate`` with the protocol's defaults.

    Raises:
        EnergizerError: ``obj`` cannot give labels.
    """
    if isinstance(obj, Oracle):
        return obj
    if callable(getattr(obj, "annotate", None)):
        return _Annotating(obj)
    if callable(obj):
        return CallableOracle(obj)
    raise EnergizerError(
        f"An oracle needs an annotate(ids, *, round) method (or is a function (ids, round) -> "
        f"labels), got {type(obj).__name__}."
    )
