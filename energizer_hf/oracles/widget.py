"""An oracle that asks a person in the notebook: one button per class, per queried text.

A notebook cell cannot wait for a click while it runs (the kernel handles the click only
after the cell returns), so :class:`WidgetOracle` is asynchronous, like Label Studio's
``wait="async"``: the first time a round is asked for it shows the labelling widget and
raises :class:`~energizer_hf.oracles.base.AwaitingAnnotations`, the loop keeps the
queried round (``pending.json``) and stops with ``stop_reason == "awaiting_annotations"``;
once every text has a button pressed (or "skip"), ``learner.collect()`` in the next cell
reads the answers and goes on to the next round.

Without a live kernel (a script, a headless test run of the notebook) give ``answer=``, a
function ``answer(ids, round) -> labels`` (``-1`` = skipped), and the oracle answers at
once without showing anything.

>>> oracle = WidgetOracle(["a text", "another"], ["neg", "pos"], answer=lambda ids, r: [1] * len(ids))
>>> oracle.annotate(np.array([1, 0]), round=1).tolist()
[1, 1]
>>> oracle.history[1]
{'ids': [1, 0], 'labels': [1, 1]}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from energizer_hf.errors import EnergizerError
from energizer_hf.oracles.base import AwaitingAnnotations, OracleBase

__all__ = ["WidgetOracle", "in_notebook"]

SKIP = -1


def in_notebook() -> bool:
    """True inside a live Jupyter/Colab kernel that can show widgets."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class WidgetOracle(OracleBase):
    """Label queried texts with ipywidgets buttons (or with ``answer=`` when headless).

    Args:
        texts: the pool's texts, indexed by pool id (e.g. ``dataset["train"]["text"]``).
        label_names: class names, in label-id order; one button each.
        answer: ``answer(ids, round) -> labels`` used instead of the widget (headless runs,
            tests); ``-1`` marks a skipped text.
        show_skip: add a "skip" button (a skipped text goes back to the pool).
    """

    keeps_round = True  # people label: the loop never re-queries a round it asked for

    def __init__(
        self,
        texts: Sequence[str],
        label_names: Sequence[str],
        answer: Callable[[np.ndarray, int], Any] | None = None,
        show_skip: bool = True,
    ) -> None:
        if len(label_names) < 2:
            raise EnergizerError("WidgetOracle needs at least two label names.")
        if answer is not None and not callable(answer):
            raise EnergizerError(f"answer must be a callable, got {type(answer).__name__}.")
        self.texts = texts
        self.label_names = list(label_names)
        self.answer = answer
        self.show_skip = show_skip
        self.history: dict[int, dict[str, list[int]]] = {}
        self._round: int | None = None
        self._ids: np.ndarray = np.empty(0, dtype=np.int64)
        self._given: dict[int, int] = {}
        self.widget: Any = None
        self.buttons: dict[int, Any] = {}  # pool id -> its ToggleButtons, for the current round

    # ------------------------------------------------------------------ oracle protocol
    def annotate(self, ids: np.ndarray, *, round: int) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if self.answer is not None:
            labels = np.asarray(self.answer(ids, round), dtype=np.int64).reshape(-1)
            if len(labels) != len(ids):
                raise EnergizerError(
                    f"answer gave {len(labels)} labels for {len(ids)} ids (round {round})."
                )
            return self._done(ids, labels, round)
        if self._round != round or not np.array_equal(self._ids, ids):
            self._start(ids, round)
        if len(self._given) == len(ids):
            labels = np.array([self._given[int(i)] for i in ids], dtype=np.int64)
            return self._done(ids, labels, round)
        raise AwaitingAnnotations(
            round,
            len(self._given),
            len(ids),
            where="the notebook widget",
            message=f"Round {round}: label the {len(ids)} texts above "
            f"({len(self._given)} done), then run learner.collect().",
        )

    # ------------------------------------------------------------------ state
    @property
    def pending(self) -> int:
        """Texts of the current round still without an answer."""
        return len(self._ids) - len(self._given)

    def set_label(self, pool_id: int, label: int | str) -> None:
        """Answer for one queried text (what a button does); a name or an id, -1 skips."""
        if isinstance(label, str):
            label = SKIP if label == "skip" else self.label_names.index(label)
        if int(pool_id) not in set(self._ids.tolist()):
            raise EnergizerError(f"Pool id {pool_id} is not queried in this round.")
        if not (label == SKIP or 0 <= int(label) < len(self.label_names)):
            raise EnergizerError(f"Label {label} is out of range.")
        self._given[int(pool_id)] = int(label)

    def _done(self, ids: np.ndarray, labels: np.ndarray, round: int) -> np.ndarray:
        self.history[round] = {"ids": ids.tolist(), "labels": labels.tolist()}
        self._round, self._ids, self._given = None, np.empty(0, dtype=np.int64), {}
        return labels

    def _start(self, ids: np.ndarray, round: int) -> None:
        self._round, self._ids, self._given = round, ids, {}
        if not in_notebook():
            raise EnergizerError(
                "WidgetOracle needs a live notebook kernel to show its widget; "
                "outside one pass answer=(ids, round) -> labels."
            )
        self.widget = self._build_widget(ids, round)
        from IPython.display import display

        display(self.widget)

    def _build_widget(self, ids: np.ndarray, round: int) -> Any:
        import ipywidgets as w

        status = w.HTML()

        def refresh() -> None:
            status.value = f"<b>Round {round}</b>: {len(self._given)}/{len(ids)} labelled" + (
                " — now run <code>learner.collect()</code>" if self.pending == 0 else ""
            )

        rows = []
        self.buttons = {}
        options = list(self.label_names) + (["skip"] if self.show_skip else [])
        for pool_id in ids.tolist():
            text = w.HTML(f"<div style='max-width:60em'>{_escape(str(self.texts[pool_id]))}</div>")
            buttons = w.ToggleButtons(options=options, value=None, style={"button_width": "auto"})

            def on_change(change: dict, pool_id: int = pool_id) -> None:
                if change["new"] is not None:
                    self.set_label(pool_id, change["new"])
                    refresh()

            buttons.observe(on_change, names="value")
            self.buttons[pool_id] = buttons
            rows.append(w.VBox([text, buttons], layout=w.Layout(margin="0 0 8px 0")))
        refresh()
        return w.VBox([status, *rows])


def _escape(text: str) -> str:
    import html

    return html.escape(text)
