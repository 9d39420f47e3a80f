"""Who labels the items a stream sends: the stream oracle protocol and the simulated oracle.

A stream sends items one mini-batch at a time and never waits for their labels: labels come
back when they come back, and the model retrains on what has come back so far. A stream
oracle therefore has two verbs instead of the pool oracle's blocking ``annotate``:

* ``send(items)``: the items chosen in a committed mini-batch (each a :class:`SentItem`:
  id, arrival position, its columns, the current model's prediction);
* ``poll()``: the ``(id, label)`` pairs that came back since the last call (label ``-1``:
  the annotator skipped the item; it is never trained on).

And ``bind(run, label_names)``, called once before the stream starts, and
``finish(timeout)``, called when the stream ends (wait up to ``timeout`` seconds for the
labels still out, return the ones that came back). ``label_source`` is ``"dataset"`` (a
simulation) or ``"annotator"``, as for the pool oracles (:mod:`energizer_hf.oracles.base`).

:class:`ColumnOracle` is the simulation: an item's label is the value of the stream's own
label column, available at once. The Label Studio oracle for streams is
``energizer_hf.oracles.label_studio.LabelStudioStreamOracle``.

>>> oracle = ColumnOracle("label", ["neg", "pos"])
>>> oracle.send([SentItem(id=7, position=0, row={"text": "good", "label": "pos"})])
>>> oracle.poll(), oracle.poll()
([(7, 1)], [])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from energizer_hf.errors import ColumnNotFoundError, LabelMismatchError, StreamInputError
from energizer_hf.run import RunInfo

__all__ = ["ColumnOracle", "SentItem", "StreamOracle", "label_id"]


@dataclass(frozen=True)
class SentItem:
    """One item sent for labelling.

    Attributes:
        id: the stream item id.
        position: its arrival position.
        row: its columns.
        prediction: the current model's class id for it (``None``: no model yet).
        confidence: that class's probability.
    """

    id: Any
    position: int
    row: Mapping[str, Any] = field(default_factory=dict)
    prediction: int | None = None
    confidence: float | None = None


@runtime_checkable
class StreamOracle(Protocol):
    """What a stream needs from whoever labels its items (see the module docstring)."""

    label_source: str

    def bind(self, run: RunInfo, label_names: Sequence[str]) -> None: ...

    def send(self, items: Sequence[SentItem]) -> None: ...

    def poll(self) -> list[tuple[Any, int]]: ...

    def finish(self, timeout: float | None = None) -> list[tuple[Any, int]]: ...


def label_id(value: Any, names: Sequence[str]) -> int:
    """The class id of a label value: an id in range (a ``ClassLabel`` value) or a class name.

    >>> label_id("pos", ["neg", "pos"]), label_id(0, ["neg", "pos"])
    (1, 0)

    Raises:
        LabelMismatchError: a name that is not a class, or an id out of range.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(names):
            return value
        raise LabelMismatchError(f"Label id {value} is not in 0..{len(names) - 1} (classes {list(names)}).")
    text = str(value)
    for j, name in enumerate(names):
        if str(name) == text:
            return j
    raise LabelMismatchError(
        f"Label {value!r} is not one of the classes {list(names)}: give label_names with every class."
    )


class ColumnOracle:
    """Labels from the stream's own label column, at once: the simulation.

    Args:
        label_column: the column holding each item's label.
        label_names: the class names, in id order (default: the run's, at :meth:`bind`).
    """

    label_source = "dataset"

    def __init__(self, label_column: str = "label", label_names: Sequence[str] | None = None) -> None:
        if not isinstance(label_column, str) or not label_column:
            raise StreamInputError(f"label_column must be a column name, got {label_column!r}.")
        self.label_column = label_column
        self.label_names = list(label_names) if label_names is not None else None
        self._out: list[tuple[Any, int]] = []

    def __repr__(self) -> str:
        return f"ColumnOracle(label_column={self.label_column!r})"

    def bind(self, run: RunInfo, label_names: Sequence[str]) -> None:
        if self.label_names is None:
            self.label_names = list(label_names)

    def send(self, items: Sequence[SentItem]) -> None:
        if self.label_names is None:
            raise StreamInputError("ColumnOracle has no class names: bind it to a run or give label_names.")
        for item in items:
            if self.label_column not in item.row:
                raise ColumnNotFoundError(
                    f"Stream item {item.id!r} (position {item.position}) has no label column "
                    f"'{self.label_column}' to simulate its annotator with: set label_column, or use "
                    "an oracle of people (Label Studio)."
                )
            value = item.row[self.label_column]
            self._out.append((item.id, -1 if value is None else label_id(value, self.label_names)))

    def poll(self) -> list[tuple[Any, int]]:
        out, self._out = self._out, []
        return out

    def finish(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        return self.poll()
