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

Multi-label runs (task ``"multi_label"``, found at :meth:`WidgetOracle.bind` unless
``multi_label=`` says so) get one toggle per label (several may be on), a "done" and a
"skip" button per text; ``annotate`` then returns one label set per id, a sorted list of
label ids (``None``: skipped), what the run's ``MultiLabelStore`` reads, and ``answer``
gives lists of names or ids (``None`` or ``-1`` skips).

>>> oracle = WidgetOracle(["a text", "another"], ["neg", "pos"], answer=lambda ids, r: [1] * len(ids))
>>> oracle.annotate(np.array([1, 0]), round=1).tolist()
[1, 1]
>>> oracle.history[1]
{'ids': [1, 0], 'labels': [1, 1]}
>>> ml = WidgetOracle(["a", "b"], ["x", "y", "z"], multi_label=True,
...                   answer=lambda ids, r: [["z", "x"], None][: len(ids)])
>>> ml.annotate(np.array([1, 0]), round=1)
[[0, 2], None]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from energizer_hf.errors import EmptyLabelSetError, EnergizerError, UnknownLabelError
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
        multi_label: several labels per text (toggles + "done"); ``None``: as the run's
            task says (``run.config["task"] == "multi_label"``, read at :meth:`bind`;
            single-label until then).
        allow_empty: a multi-label text may be confirmed with no label on; ``None``: as the
            run says (``allow_empty_labels``), refused when the run does not say.
    """

    keeps_round = True  # people label: the loop never re-queries a round it asked for

    def __init__(
        self,
        texts: Sequence[str],
        label_names: Sequence[str],
        answer: Callable[[np.ndarray, int], Any] | None = None,
        show_skip: bool = True,
        multi_label: bool | None = None,
        allow_empty: bool | None = None,
    ) -> None:
        if len(label_names) < 2:
            raise EnergizerError("WidgetOracle needs at least two label names.")
        if answer is not None and not callable(answer):
            raise EnergizerError(f"answer must be a callable, got {type(answer).__name__}.")
        self.texts = texts
        self.label_names = list(label_names)
        self.answer = answer
        self.show_skip = show_skip
        self._multi_label_given = multi_label
        self.multi_label = bool(multi_label)
        self._allow_empty_given = allow_empty
        self.allow_empty = bool(allow_empty)
        self.history: dict[int, dict[str, list[Any]]] = {}
        self._round: int | None = None
        self._ids: np.ndarray = np.empty(0, dtype=np.int64)
        self._given: dict[int, Any] = {}  # pool id -> label id (-1) / label-id list (None)
        self.widget: Any = None
        # pool id -> its ToggleButtons (single-label), or {label name: ToggleButton}
        # (multi-label, with "done"/"skip" Buttons and a status line in self.controls)
        self.buttons: dict[int, Any] = {}
        self.controls: dict[int, dict[str, Any]] = {}

    def bind(self, run: Any, dataset: Any, predict: Any) -> None:
        """Take single- or multi-label (and whether an empty label set is allowed) from the run.

        Raises:
            EnergizerError: ``multi_label=`` contradicts the run's task.
        """
        config = getattr(run, "config", None) or {}
        task = config.get("task")
        if task is not None:
            run_multi = str(task) == "multi_label"
            if self._multi_label_given is not None and bool(self._multi_label_given) != run_multi:
                raise EnergizerError(
                    f"WidgetOracle was given multi_label={self._multi_label_given} but the run's task is "
                    f"{task!r}: leave multi_label out."
                )
            self.multi_label = run_multi
        if self._allow_empty_given is None and "allow_empty_labels" in config:
            self.allow_empty = bool(config.get("allow_empty_labels"))

    # ------------------------------------------------------------------ oracle protocol
    def annotate(self, ids: np.ndarray, *, round: int) -> Any:
        """One label id per id (``-1``: skipped); multi-label: one sorted label-id list per
        id (``None``: skipped). Raises AwaitingAnnotations while the widget waits."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.answer is not None and self.multi_label:
            out = self.answer(ids, round)
            if out is None:
                raise EnergizerError(f"answer gave no label sets for {len(ids)} ids (round {round}).")
            rows = out.tolist() if isinstance(out, np.ndarray) else list(out)
            if len(rows) != len(ids):
                raise EnergizerError(
                    f"answer gave {len(rows)} label sets for {len(ids)} ids (round {round})."
                )
            sets = [self._label_set(r, multi_hot=isinstance(out, np.ndarray) and out.ndim == 2) for r in rows]
            return self._done(ids, sets, round)
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
            if self.multi_label:
                return self._done(ids, [self._given[int(i)] for i in ids], round)
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

    def set_label(self, pool_id: int, label: Any) -> None:
        """Answer for one queried text (what a button does); a name or an id, -1 skips.

        Multi-label: a list of names or ids (an empty list only where the run allows rows
        with no label), ``"skip"`` / ``-1`` / ``None`` skips.

        Raises:
            EnergizerError: ``pool_id`` is not queried in this round, or a label out of range
                (multi-label: ``UnknownLabelError``; an empty set refused: ``EmptyLabelSetError``).
        """
        if self.multi_label:
            if int(pool_id) not in set(self._ids.tolist()):
                raise EnergizerError(f"Pool id {pool_id} is not queried in this round.")
            self._given[int(pool_id)] = self._label_set(label)
            return
        if isinstance(label, str):
            label = SKIP if label == "skip" else self.label_names.index(label)
        if int(pool_id) not in set(self._ids.tolist()):
            raise EnergizerError(f"Pool id {pool_id} is not queried in this round.")
        if not (label == SKIP or 0 <= int(label) < len(self.label_names)):
            raise EnergizerError(f"Label {label} is out of range.")
        self._given[int(pool_id)] = int(label)

    def _label_set(self, labels: Any, *, multi_hot: bool = False) -> list[int] | None:
        """A multi-label answer as a sorted list of label ids, ``None`` for a skip."""
        if labels is None or (isinstance(labels, str) and labels == "skip"):
            return None
        if isinstance(labels, (int, np.integer)) and not isinstance(labels, bool):
            if int(labels) == SKIP:
                return None
            labels = [labels]
        elif isinstance(labels, str):
            labels = [labels]
        names = self.label_names
        if multi_hot:  # a row of a (n, L) 0/1 array; a row of -1 skips
            row = np.asarray(labels).reshape(-1)
            if row.size != len(names):
                raise UnknownLabelError(f"A multi-hot answer has {row.size} columns for {len(names)} labels.")
            if (row < 0).any():
                return None
            if not ((row == 0) | (row == 1)).all():
                raise UnknownLabelError("Multi-hot answers must hold 0 or 1 (or -1 for a skipped row).")
            labels = np.flatnonzero(row).tolist()
        out: set[int] = set()
        for v in labels:
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                if not 0 <= int(v) < len(names):
                    raise UnknownLabelError(f"Label id {v} is outside the label set 0..{len(names) - 1}.")
                out.add(int(v))
            elif isinstance(v, str) and v in names:
                out.add(names.index(v))
            else:
                raise UnknownLabelError(f"Label {v!r} is not in the label set {names}.")
        if not out and not self.allow_empty:
            raise EmptyLabelSetError(
                "An empty label set: this run does not allow rows with no label (allow_empty_labels); "
                "give at least one label, or skip the text."
            )
        return sorted(out)

    def _done(self, ids: np.ndarray, labels: Any, round: int) -> Any:
        self.history[round] = {"ids": ids.tolist(), "labels": labels if isinstance(labels, list) else labels.tolist()}
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

        if self.multi_label:
            return self._build_multi_label_widget(ids, round, w, status, refresh)
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

    def _build_multi_label_widget(self, ids: np.ndarray, round: int, w: Any, status: Any, refresh: Any) -> Any:
        """Per text: a ToggleButton per label, "done" (confirms the labels on) and "skip".

        A toggle changed after "done" takes the text's answer back until "done" again."""
        rows = []
        self.buttons, self.controls = {}, {}
        for pool_id in ids.tolist():
            text = w.HTML(f"<div style='max-width:60em'>{_escape(str(self.texts[pool_id]))}</div>")
            toggles = {name: w.ToggleButton(value=False, description=name) for name in self.label_names}
            done = w.Button(description="done", button_style="success")
            skip = w.Button(description="skip") if self.show_skip else None
            note = w.HTML()

            def on_toggle(change: dict, pool_id: int = pool_id, note: Any = note) -> None:
                if pool_id in self._given:  # changed after "done" / "skip": answer again
                    del self._given[pool_id]
                    note.value = ""
                    refresh()

            def on_done(_: Any, pool_id: int = pool_id, toggles: dict = toggles, note: Any = note) -> None:
                chosen = [n for n, t in toggles.items() if t.value]
                try:
                    self.set_label(pool_id, chosen)
                except EnergizerError as e:
                    note.value = f"<span style='color:#b00'>{_escape(str(e))}</span>"
                    return
                note.value = "✓ " + _escape(", ".join(chosen) or "(no label)")
                refresh()

            def on_skip(_: Any, pool_id: int = pool_id, note: Any = note) -> None:
                self.set_label(pool_id, "skip")
                note.value = "skipped"
                refresh()

            for t in toggles.values():
                t.observe(on_toggle, names="value")
            done.on_click(on_done)
            if skip is not None:
                skip.on_click(on_skip)
            self.buttons[pool_id] = toggles
            self.controls[pool_id] = {"done": done, "skip": skip, "note": note}
            controls = [*toggles.values(), done, *([skip] if skip is not None else []), note]
            rows.append(w.VBox([text, w.HBox(controls)], layout=w.Layout(margin="0 0 8px 0")))
        refresh()
        return w.VBox([status, *rows])


def _escape(text: str) -> str:
    import html

    return html.escape(text)
