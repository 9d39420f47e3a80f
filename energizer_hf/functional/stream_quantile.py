"""Stream rule on the recent score distribution: the quantile (incremental top-share) filter.

Beside :mod:`energizer_hf.functional.stream`, whose budget engine, state and conventions
(higher scores are more informative; the exact sliding-window budget) it uses.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from energizer_hf.errors import StreamStateError
from energizer_hf.functional.stream import (
    StreamDecisions,
    StreamState,
    _check_scores,
    _finish,
    _run,
    budget_capacity,
)

__all__ = ["quantile_uncertainty_decisions"]


def quantile_uncertainty_decisions(scores: Any, state: StreamState, *, rate: float, window: int) -> StreamDecisions:
    """Quantile uncertainty: label an item whose score is among the top ``rate`` share of the recent scores.

    An incremental quantile filter (the budget managers of Kottke et al., 2015, follow the
    same idea): the item's score is compared with the ``k``-th largest score of the last
    ``window`` arrivals (itself included), with ``k = max(1, round(2 · rate · m - r))`` for
    ``m`` scores in that window and ``r`` labels already in it: ``rate · m`` when the window
    spends exactly its share, up to twice that when it has spent nothing. On a stationary
    stream the rule labels about a ``rate`` share of the items, spread over the window, and
    always the relatively most uncertain ones: unlike the variable-uncertainty threshold,
    which moves by ``step`` per item and spends the whole budget on the first items of a
    window while a weak model finds everything uncertain (BENCHMARKS.md, issue 17), it
    does not depend on the scale of the scores. The recent scores are kept in
    ``state.memory`` (an ``(m, 1)`` float32 column), so a resumed stream decides exactly as
    an uninterrupted one. No randomness. O(n · window) per mini-batch (a partial sort per
    item).

    Args:
        scores: ``(n,)`` scores in arrival order (higher = more informative).
        state: the state after the previous mini-batch.
        rate / window: the budget (see :func:`budget_capacity`); ``window`` is also the
            length of the score history.

    Returns:
        :class:`StreamDecisions`; ``thresholds`` holds the cut each score was compared with.

    >>> d = quantile_uncertainty_decisions(np.array([0.2, 0.9, 0.1, 0.5, 0.95, 0.3]), StreamState(),
    ...                                    rate=0.5, window=4)
    >>> d.labelled.tolist()
    [True, True, False, False, True, True]
    """
    s = _check_scores(scores).astype(np.float32).astype(np.float64)  # the history keeps float32
    budget_capacity(rate, window)
    w, b = int(window), float(rate)
    memory = state.memory
    if memory is not None and (memory.ndim != 2 or memory.shape[1] != 1):
        raise StreamStateError(
            f"The quantile rule keeps its score history as an (m, 1) column, but the state holds "
            f"a {memory.shape} memory: was the state made by another rule?"
        )
    past = [] if memory is None else memory[-(w - 1):, 0].astype(np.float64).tolist() if w > 1 else []
    history = deque(past, maxlen=max(w - 1, 0))
    recent = deque(state.recent)

    def rule(i: int, allowed: bool) -> tuple[bool, float]:
        t = state.seen + i
        while recent and recent[0] <= t - w:
            recent.popleft()
        win = np.fromiter(history, dtype=np.float64, count=len(history))
        win = np.append(win, s[i])
        k = min(win.size, max(1, round(2 * b * win.size - len(recent))))
        cut = float(np.partition(win, win.size - k)[win.size - k])
        history.append(s[i])
        take = allowed and s[i] >= cut
        if take:
            recent.append(t)
        return take, cut

    parts = _run(s.size, state, rate, window, rule)
    kept = np.asarray(history, dtype=np.float32).reshape(-1, 1) if w > 1 else np.zeros((0, 1), np.float32)
    return _finish(state, parts, s, threshold=state.threshold, rng=None, memory=kept)
