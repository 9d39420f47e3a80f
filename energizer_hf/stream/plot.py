"""The plot of a stream run: accuracy and labels spent over the stream.

Top panel: the test accuracy of each retrained model, drawn from the position where the
stream started using it, and (when the stream's true labels are known, a simulation) the
prequential accuracy: the share of the last ``window`` arrivals that the model in use
classified correctly on arrival. Bottom panel: labels spent against items seen, with the
budget line ``budget_rate × items``. Drawn on its own Agg canvas: the caller's matplotlib
backend is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_stream", "rolling_mean"]


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` finite values at each position (NaN before the first).

    >>> rolling_mean(np.array([1.0, 0.0, np.nan, 1.0]), 2).tolist()
    [1.0, 0.5, 0.5, 0.5]
    """
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    csum = np.concatenate([[0.0], np.cumsum(finite)])
    seen = np.cumsum(np.isfinite(values))  # finite values up to each position
    first = np.maximum(seen - int(window), 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (csum[seen] - csum[first]) / (seen - first)
    return np.where(seen > 0, out, np.nan)


def plot_stream(
    path: str | os.PathLike,
    *,
    positions: np.ndarray,
    sent: np.ndarray,
    correct: np.ndarray | None = None,
    rounds: Sequence[Mapping[str, Any]] = (),
    budget_rate: float | None = None,
    window: int = 500,
    title: str = "",
) -> Path:
    """Write the stream plot to ``path`` (PNG) and return it.

    Args:
        positions: ``(N,)`` arrival positions.
        sent: ``(N,)`` bool, the item was sent for labelling.
        correct: ``(N,)`` 1/0 the model in use got the item right, NaN unknown (or ``None``).
        rounds: the stream's round records (``swap_position``, ``num_labelled``,
            ``test/accuracy`` when there is a test split).
        budget_rate: drawn as the budget line.
        window: arrivals in the prequential accuracy's window.
        title: the figure title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    positions = np.asarray(positions, dtype=np.int64)
    sent = np.asarray(sent, dtype=bool)
    fig = Figure(figsize=(8, 6))
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    end = int(positions[-1]) + 1 if positions.size else 1
    if correct is not None and np.isfinite(correct).any():
        top.plot(positions + 1, rolling_mean(correct, window), lw=1, label=f"prequential (last {window})")
    xs, ys = [], []
    for rec in rounds:
        acc = rec.get("test/accuracy")
        start = rec.get("swap_position")
        if acc is None or start is None:
            continue
        xs.append(int(start))
        ys.append(float(acc))
    if xs:
        top.step(xs + [end], ys + [ys[-1]], where="post", marker="o", label="test accuracy of the model in use")
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    if top.lines:
        top.legend(loc="lower right")
    bottom.plot(positions + 1, np.cumsum(sent), label="labels spent")
    if budget_rate is not None:
        bottom.plot([0, end], [0, budget_rate * end], ls="--", lw=1, label=f"budget rate {budget_rate:g}")
    for x in xs:
        bottom.axvline(x, color="grey", lw=0.5, alpha=0.5)
    bottom.set_xlabel("items seen")
    bottom.set_ylabel("labels")
    bottom.legend(loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
