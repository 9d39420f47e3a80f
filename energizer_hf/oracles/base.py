"""The oracle protocol: whoever gives labels to queried pool ids."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from energizer_hf.errors import EnergizerError

__all__ = ["CallableOracle", "Oracle", "SimulatedOracle"]


@runtime_checkable
class Oracle(Protocol):
    """Gives labels for pool ids.

    ``annotate`` returns one label id per queried id, or ``None`` when the dataset itself
    carries the labels (the seed API's torch datasets). A label of ``-1`` means the
    annotator gave none (skipped); such ids are not marked as labelled.
    """

    def annotate(self, ids: np.ndarray, *, round: int) -> np.ndarray | None: ...


class SimulatedOracle:
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

    def __init__(self, labels: np.ndarray | None) -> None:
        self._labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.num_revealed = 0

    def annotate(self, ids: np.ndarray, *, round: int) -> np.ndarray | None:
        self.num_revealed += len(ids)
        if self._labels is None:
            return None
        return self._labels[np.asarray(ids, dtype=np.int64)]


class CallableOracle:
    """Wrap a plain function ``fn(ids, round) -> labels`` as an oracle."""

    def __init__(self, fn) -> None:
        if not callable(fn):
            raise EnergizerError(f"CallableOracle needs a callable, got {type(fn).__name__}.")
        self.fn = fn

    def annotate(self, ids: np.ndarray, *, round: int) -> np.ndarray | None:
        out = self.fn(ids, round)
        return None if out is None else np.asarray(out, dtype=np.int64)
