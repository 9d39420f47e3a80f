"""People label a stream: each item sent becomes a Label Studio task; labels are polled back.

:class:`LabelStudioStreamOracle` is a stream oracle (:mod:`energizer_hf.stream.oracles`)
over the same :class:`~energizer_hf.oracles.label_studio.LabelStudioOracle` as pool runs
(project creation, labelling configuration, imports that are never repeated, skips,
conflicts, deleted or edited tasks, ``<run_dir>/label_studio/tasks.json``). The stream
never waits for people: ``send`` imports the chosen items as tasks at once (``data:
{text, pool_id: <arrival position>, round: 0}``, with the model in use's prediction as a
pre-annotation when there is one) and ``poll`` reads the project at most every
``poll_seconds``, handing back the labels given since. A restarted stream re-sends the
items still out; they are found by arrival position and not imported again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from energizer_hf.oracles.label_studio.annotations import LABELLED, RESOLVED, LabelStudioError
from energizer_hf.oracles.label_studio.oracle import LabelStudioOracle
from energizer_hf.run import RunInfo

__all__ = ["LabelStudioStreamOracle"]

_ROUND = 0  # a stream's tasks are one round, keyed by arrival position


class LabelStudioStreamOracle:
    """Stream items labelled by people in a Label Studio project.

    Args:
        url / token / project: as for :class:`LabelStudioOracle` (URL and token default to
            ``LABEL_STUDIO_URL`` / ``LABEL_STUDIO_API_KEY``; the token is never stored).
        poll_seconds: read the project at most this often (0: at every mini-batch).
        **oracle_kwargs: other :class:`LabelStudioOracle` arguments (``skipped``,
            ``conflict``, ``annotations_per_task``, ``label_names``, retries...).
    """

    label_source = "annotator"

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        project: int | str | None = None,
        *,
        poll_seconds: float = 5.0,
        **oracle_kwargs: Any,
    ) -> None:
        for name in ("wait", "texts", "predictions", "dataset"):
            if name in oracle_kwargs:
                raise LabelStudioError(f"LabelStudioStreamOracle sets {name} itself: leave it out.")
        if poll_seconds < 0:
            raise LabelStudioError(f"poll_seconds must be >= 0, got {poll_seconds!r}.")
        oracle_kwargs.setdefault("progress", False)
        self.oracle = LabelStudioOracle(url, token, project, wait="async", texts=self._texts_of,
                                        predictions=None, **oracle_kwargs)
        self.poll_seconds = float(poll_seconds)
        self.text_column = "text"
        self._items: dict[int, Any] = {}  # arrival position -> the item sent (until its label is read)
        self._last_poll = float("-inf")

    def __repr__(self) -> str:
        return f"LabelStudioStreamOracle({self.oracle!r}, poll_seconds={self.poll_seconds})"

    @property
    def project_url(self) -> str:
        return self.oracle.project_url

    def bind(self, run: RunInfo, label_names: Sequence[str]) -> None:
        """Take the run directory, class names and text column from the stream run."""
        self.oracle.bind(run, None, None)
        self.text_column = run.text_column or "text"

    def _texts_of(self, positions: np.ndarray) -> list[str]:
        return [str(self._items[int(p)].row.get(self.text_column, "")) for p in positions]

    def send(self, items: Sequence[Any]) -> None:
        """Import the items as tasks (those imported before, e.g. by a killed run, are found)."""
        if not items:
            return
        for item in items:
            self._items[int(item.position)] = item
        positions = np.array([int(i.position) for i in items], dtype=np.int64)
        if all(i.prediction is not None for i in items):
            labels = np.array([i.prediction for i in items])
            scores = np.array([float(i.confidence or 0.0) for i in items])
            lookup = {int(p): j for j, p in enumerate(positions)}
            self.oracle.predictions = lambda ids: (labels[[lookup[int(p)] for p in ids]],
                                                   scores[[lookup[int(p)] for p in ids]])
        else:  # no model yet: no pre-annotation
            self.oracle.predictions = None
        try:
            self.oracle.submit(positions, round=_ROUND)
        finally:
            self.oracle.predictions = None

    def poll(self) -> list[tuple[Any, int]]:
        """``(id, label)`` of the items resolved since the last call (``-1``: skipped or unresolved)."""
        now = time.monotonic()
        if not self._items or now - self._last_poll < self.poll_seconds:
            return []
        self._last_poll = now
        self.oracle.sync(_ROUND)
        out = []
        for key, entry in self.oracle.round_state(_ROUND).items():
            position = int(key)
            item = self._items.get(position)
            if item is None or entry.get("status") not in RESOLVED:
                continue
            label = int(entry.get("label", -1)) if entry.get("status") == LABELLED else -1
            out.append((item.id, label))
            del self._items[position]
        return out

    def finish(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        """Wait up to ``timeout`` seconds for the items still out; return the labels read."""
        deadline = time.monotonic() + float(timeout or 0.0)
        out = []
        while True:
            self._last_poll = float("-inf")
            out += self.poll()
            if not self._items or time.monotonic() >= deadline:
                return out
            time.sleep(min(max(self.poll_seconds, 0.2), max(deadline - time.monotonic(), 0.0)))
