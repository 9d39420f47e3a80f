"""Round results: one row per labelling round, as a table."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from energizer_hf.metrics import is_per_class_key, per_class_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["RoundResults", "plot_learning_curves"]

# Columns shown by default in the printed table, when present.
_SUMMARY_COLUMNS = (
    "round",
    "num_labelled",
    "num_queried",
    "test/accuracy",
    "test/entity_f1",
    "test/f1_micro",
    "test/f1_macro",
    "val/f1_macro",
    "time_fit",
    "time_score",
    "time_query",
    "stop_reason",
)


class RoundResults:
    """The records of a run, one per round (the same rows as ``<run_dir>/rounds.jsonl``).

    Per-class metrics (``test/f1/<class>``) stay in the rows; :meth:`to_pandas` and
    :meth:`to_table` leave them out unless asked, :meth:`per_class_table` shows them as one
    table (classes in ``label_names`` order).

    >>> r = RoundResults([{"round": 0, "num_labelled": 10, "test/accuracy": 0.5}])
    >>> r[0]["num_labelled"]
    10
    """

    def __init__(self, rows: Iterable[dict[str, Any]] = (), label_names: Sequence[str] | None = None) -> None:
        self.rows: list[dict[str, Any]] = [dict(r) for r in rows]
        self.label_names = list(label_names) if label_names is not None else None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]

    def __iter__(self):
        return iter(self.rows)

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for row in self.rows:
            cols.extend(k for k in row if k not in cols)
        return cols

    def column(self, name: str) -> list[Any]:
        return [row.get(name) for row in self.rows]

    @property
    def stop_reason(self) -> str | None:
        return self.rows[-1].get("stop_reason") if self.rows else None

    def to_pandas(self, per_class: bool = False):
        """A ``pandas.DataFrame`` with one row per round (``per_class``: with one column per
        class and per-class metric; :meth:`per_class_table` shows them compactly)."""
        import pandas as pd

        columns = [c for c in self.columns if per_class or not is_per_class_key(c)]
        return pd.DataFrame(self.rows, columns=columns)

    def per_class_table(self, round: int = -1, prefix: str = "test/", floatfmt: str = ".4f") -> str:
        """The per-class metrics of one round (default: the last) as a markdown table: one
        row per class, one column per metric.

        >>> r = RoundResults([{"round": 0, "test/f1/b": 0.5, "test/f1/a": 1.0}], label_names=["b", "a"])
        >>> print(r.per_class_table())
        | class | f1 |
        |---|---|
        | b | 0.5000 |
        | a | 1.0000 |
        """
        if not self.rows:
            return ""
        header, rows = per_class_table(self.rows[round], self.label_names, prefix, floatfmt)
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)

    def to_table(self, columns: Sequence[str] | None = None, floatfmt: str = ".4f") -> str:
        """A plain-text table (GitHub markdown) of the chosen columns."""
        if columns is None:
            present = set(self.columns)
            columns = [c for c in _SUMMARY_COLUMNS if c in present]
        header = "| " + " | ".join(columns) + " |"
        sep = "|" + "|".join("---" for _ in columns) + "|"
        lines = [header, sep]
        for row in self.rows:
            cells = []
            for c in columns:
                v = row.get(c)
                if isinstance(v, float):
                    cells.append("nan" if math.isnan(v) else format(v, floatfmt))
                elif v is None:
                    cells.append("")
                else:
                    cells.append(str(v))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_table()

    def __repr__(self) -> str:
        return f"RoundResults(rounds={len(self)}, stop_reason={self.stop_reason!r})"

    def area_under_curve(self, metric: str = "test/accuracy") -> float:
        """Normalised area under the learning curve (trapezoid over labelled counts)."""
        pts = [
            (r["num_labelled"], r[metric])
            for r in self.rows
            if r.get(metric) is not None and r.get("num_labelled") is not None
        ]
        if len(pts) < 2:
            return float(pts[0][1]) if pts else float("nan")
        xs, ys = zip(*pts)
        area = sum((xs[i + 1] - xs[i]) * (ys[i + 1] + ys[i]) / 2 for i in range(len(xs) - 1))
        return area / (xs[-1] - xs[0]) if xs[-1] != xs[0] else float(ys[-1])


def plot_learning_curves(
    curves: dict[str, RoundResults],
    path: str | Path | None = None,
    metric: str = "test/accuracy",
    title: str | None = None,
    show: bool = False,
) -> Path | Figure:
    """Plot ``metric`` against the number of labelled examples, one line per run.

    The user's matplotlib backend is never changed: the figure is drawn on its own Agg
    canvas, outside ``pyplot``, unless ``show=True`` asks ``pyplot`` to display it (inline
    in a notebook, in a window elsewhere).

    Args:
        curves: run name -> its results.
        path: save a PNG there (parent folders are created).
        metric: the record key on the y axis.
        title: figure title.
        show: also show the figure with ``pyplot.show()``.

    Returns:
        The ``Path`` written when ``path`` is given, else the ``matplotlib.figure.Figure``
        (which a notebook displays when it is a cell's last value).
    """
    if show:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(6, 4), dpi=120)
    else:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 4), dpi=120)
        FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, res in curves.items():
        pts = [(r["num_labelled"], r[metric]) for r in res if r.get(metric) is not None]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel("labelled examples")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    if show:
        plt.show()
    return path if path is not None else fig
