"""Scoring the unlabelled pool: the running top-k and the query context.

The running top-k keeps at most ``2 * k`` candidate scores in memory whatever the pool
size: new scores are appended to a buffer which is cut back to the best ``k`` whenever it
grows past ``2 * k`` (amortised O(N log k) for a pool of N rows). Ties are broken
deterministically in favour of the smaller pool id, so the same scores always give the
same query, whatever the batch order or the number of processes that produced them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["QueryContext", "RunningTopK", "select_topk"]


def select_topk(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` highest ``scores`` with their ``ids``, ties broken by the smaller id.

    Returns ``(scores, ids)`` sorted from best to worst.
    """
    scores = np.asarray(scores, dtype=np.float64)
    ids = np.asarray(ids, dtype=np.int64)
    if k <= 0 or scores.size == 0:
        return scores[:0], ids[:0]
    if scores.size > 4 * k:
        # cheap pre-cut: everything strictly below the k-th largest value cannot win
        kth = np.partition(scores, scores.size - k)[scores.size - k]
        keep = scores >= kth
        scores, ids = scores[keep], ids[keep]
    order = np.lexsort((ids, -scores))[:k]  # primary: score desc, secondary: id asc
    return scores[order], ids[order]


class RunningTopK:
    """Keep the ``k`` best (score, id) pairs of a stream of batches.

    >>> import numpy as np
    >>> acc = RunningTopK(2)
    >>> acc.update(np.array([0.1, 0.9, 0.5]), np.array([10, 11, 12]))
    >>> acc.update(np.array([0.9, 0.2]), np.array([3, 4]))
    >>> acc.ids().tolist()  # the tie at 0.9 goes to the smaller id first
    [3, 11]
    """

    def __init__(self, k: int) -> None:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}.")
        self.k = k
        self._scores: list[np.ndarray] = []
        self._ids: list[np.ndarray] = []
        self._size = 0
        self.num_seen = 0

    def update(self, scores: np.ndarray | torch.Tensor, ids: np.ndarray | torch.Tensor) -> None:
        if isinstance(scores, torch.Tensor):
            scores = scores.detach().float().cpu().numpy()
        if isinstance(ids, torch.Tensor):
            ids = ids.detach().cpu().numpy()
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if scores.shape != ids.shape:
            raise ValueError(f"Got {scores.size} scores for {ids.size} ids.")
        self._scores.append(scores)
        self._ids.append(ids)
        self._size += scores.size
        self.num_seen += scores.size
        if self._size > 2 * self.k:
            self._compact()

    def _compact(self) -> None:
        s, i = select_topk(np.concatenate(self._scores), np.concatenate(self._ids), self.k)
        self._scores, self._ids, self._size = [s], [i], s.size

    def merge(self, other: RunningTopK) -> None:
        """Fold another accumulator in (e.g. one from another process)."""
        s, i = other.topk()
        self.update(s, i)

    def topk(self) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)`` of the best ``k`` seen so far, best first."""
        if not self._scores:
            return np.empty(0), np.empty(0, dtype=np.int64)
        self._compact()
        return self._scores[0], self._ids[0]

    def ids(self) -> np.ndarray:
        return self.topk()[1]

    def __len__(self) -> int:
        return min(self._size, self.k)


@dataclass
class QueryContext:
    """Everything a strategy may use to choose ids, and nothing it should not see.

    Attributes:
        pool: the :class:`~energizer_hf.pool.ActivePool`.
        round: the current round (the queried ids will be labelled as ``round + 1``).
        seed: the run's seed; strategies derive their randomness from ``(seed, round)``.
        pool_batches: a callable returning an iterator of ``(batch, pool_ids)`` over the
            unlabelled rows (inputs only: labels are never passed to the model).
        device: where the model runs while scoring.
        timings: strategies add the seconds they spend (``score``, ``select``).
    """

    pool: Any
    round: int
    seed: int
    pool_batches: Callable[[], Iterator[tuple[Any, np.ndarray]]] | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    progress: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def rng(self, salt: int = 0) -> np.random.Generator:
        """A generator that depends only on the seed, the round and ``salt``."""
        return np.random.default_rng([self.seed, self.round, salt])

    def add_time(self, key: str, start: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + (time.perf_counter() - start)
