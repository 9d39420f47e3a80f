"""The few primitives every selector shares: a tie-broken top-k, an entropy, an allocation.

Each has one home here, so that "the best k ids", "how uncertain is this distribution"
and "how many per class" mean the same thing in every strategy, stopping criterion and
sampler of the package.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

__all__ = ["allocate", "entropy", "select_topk"]

_EPS = 1e-12


def select_topk(scores: Any, ids: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` highest ``scores`` with their ``ids``, best first; ties go to the smaller id.

    NaN scores rank below every number. Deterministic whatever the input order, so the
    same scores always give the same selection (on one process or many).

    Complexity: O(N) to cut the candidates to about ``k`` (a partition) plus
    O(k log k) to order them.

    Args:
        scores: ``(N,)`` scores, higher is better.
        ids: ``(N,)`` integer ids of the scores.
        k: how many to keep.

    Returns:
        ``(scores, ids)`` of the ``min(k, N)`` best, best first (float64, int64).

    >>> s, i = select_topk([0.5, 0.9, 0.9, 0.1], [7, 3, 1, 0], 2)
    >>> i.tolist(), s.tolist()
    ([1, 3], [0.9, 0.9])
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if k <= 0 or scores.size == 0:
        return scores[:0], ids[:0]
    if scores.size > 4 * k:
        # cheap pre-cut: everything strictly below the k-th largest value cannot win
        ranked = np.where(np.isnan(scores), -np.inf, scores)
        kth = np.partition(ranked, scores.size - k)[scores.size - k]
        keep = ranked >= kth
        scores, ids = scores[keep], ids[keep]
    order = np.lexsort((ids, -scores))[:k]  # primary: score desc, secondary: id asc
    return scores[order], ids[order]


def entropy(probs: Tensor | np.ndarray, dim: int = -1) -> Tensor | np.ndarray:
    """Shannon entropy (nats) of probability vectors along ``dim``.

    ``p log p`` is taken as 0 for ``p = 0`` (probabilities are clamped at 1e-12 inside the
    logarithm). A tensor gives a tensor (its dtype), a NumPy array an array.

    Complexity: O(size of ``probs``).

    Args:
        probs: probabilities, summing to 1 along ``dim``.
        dim: the class axis.

    Returns:
        The entropies, ``probs`` without ``dim``.

    >>> import torch
    >>> round(float(entropy(torch.full((1, 4), 0.25))[0]), 4)  # log(4)
    1.3863
    >>> entropy(np.array([[0.5, 0.5]])).round(4).tolist()
    [0.6931]
    """
    if isinstance(probs, np.ndarray):
        return -(probs * np.log(np.clip(probs, _EPS, 1.0))).sum(axis=dim)
    return -(probs * probs.clamp_min(_EPS).log()).sum(dim)


def allocate(
    targets: Any,
    total: int,
    *,
    minimum: int = 0,
    capacity: Any = None,
    refill: bool = True,
) -> np.ndarray:
    """Integer counts near real ``targets`` that add up to ``total`` (largest remainders).

    Each entry gets ``floor(target)`` (at least ``minimum``); the rest of ``total`` goes
    to the largest fractional parts (ties to the smaller index), and while the counts add
    up to more than ``total`` the largest count gives one back. With ``capacity`` no entry
    exceeds its capacity; with ``refill`` what the caps took is given to the entries with
    the most room left (largest first, ties to the smaller index).

    This is the allocation of stratified sampling (targets proportional to class sizes),
    of class-balanced queries and of validation splits.

    Complexity: O(C log C) for C entries.

    Args:
        targets: ``(C,)`` non-negative real targets (e.g. ``weights * total``).
        total: the number to allocate.
        minimum: the least count of every entry.
        capacity: ``(C,)`` upper bounds (e.g. class sizes), or ``None``.
        refill: give what ``capacity`` cut to the entries with room left.

    Returns:
        ``(C,)`` int64 counts.

    >>> allocate([1.5, 1.5, 0.0], 3).tolist()
    [2, 1, 0]
    >>> allocate([2.4, 0.6], 3, capacity=[1, 5]).tolist()
    [1, 2]
    """
    raw = np.asarray(targets, dtype=np.float64).reshape(-1)
    floors = np.floor(raw)
    counts = np.maximum(floors.astype(np.int64), minimum)
    rest = int(total) - int(counts.sum())
    if rest > 0:
        order = np.lexsort((np.arange(raw.size), -(raw - floors)))
        counts[order[:rest]] += 1
    while counts.sum() > total:
        counts[int(np.argmax(counts))] -= 1
    if capacity is not None:
        cap = np.asarray(capacity, dtype=np.int64).reshape(-1)
        capped = np.minimum(counts, cap)
        short = int(counts.sum() - capped.sum())
        counts = capped
        if refill and short > 0:
            room = cap - counts
            for i in np.argsort(-room, kind="stable"):
                add = min(short, int(room[i]))
                counts[i] += add
                short -= add
    return counts
