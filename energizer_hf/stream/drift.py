"""Drifting streams for simulation: the order in which a labelled dataset's rows arrive.

Every helper returns an int64 index array (the arrival order), deterministic by seed, to
replay with :class:`~energizer_hf.stream.sources.ReplaySource` (``order=...``); no rows
are read or copied. Two kinds of drift:

- **Class-prior drift** (:func:`prior_drift_order`): the class distribution of the
  arriving items moves through a sequence of priors, either in steps (``"piecewise"``:
  the stream is cut into equal segments, one prior each) or smoothly (``"gradual"``: the
  priors are knots at evenly spaced positions, linearly interpolated in between). Each
  arrival's class is drawn from the prior at its position, then the next unused row of
  that class (in a seeded shuffle) arrives. Rows are used at most once.
- **Source drift** (:func:`concatenation_order`): all rows of a first dataset, then all rows
  of a second (``datasets.concatenate_datasets([first, second])``, see
  :func:`concatenate_for_drift`), with an optional transition window over which the chance
  that the next item comes from the second rises linearly from 0 to 1.

Complexity: O(N C) time for N arrivals and C classes, in blocks of 65,536 positions; memory
O(N) for the index arrays.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from energizer_hf.errors import StreamInputError

__all__ = [
    "concatenate_for_drift",
    "concatenation_order",
    "prior_at",
    "prior_drift_order",
]

_BLOCK = 1 << 16
Mode = Literal["piecewise", "gradual"]


def _check_priors(priors: Any) -> np.ndarray:
    p = np.asarray(priors, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1:
        raise StreamInputError(
            f"priors must be a (segments, classes) array, one class distribution per row; got shape {p.shape}."
        )
    if not np.isfinite(p).all() or (p < 0).any() or not np.allclose(p.sum(1), 1.0, atol=1e-6):
        raise StreamInputError("Each row of priors must be a class distribution: non-negative, summing to 1.")
    return p / p.sum(1, keepdims=True)


def _check_count(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise StreamInputError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return int(value)


def prior_at(positions: Any, priors: Any, num_items: int, mode: Mode = "piecewise") -> np.ndarray:
    """The class prior of the stream at each of ``positions``.

    Args:
        positions: arrival positions in ``[0, num_items)``.
        priors: ``(S, C)`` class distributions.
        num_items: stream length.
        mode: ``"piecewise"`` (segment ``floor(t S / num_items)`` uses row ``t``'s segment)
            or ``"gradual"`` (row ``s`` is the prior at position ``s (num_items - 1) / (S - 1)``,
            linear in between; needs ``S >= 2``).

    Returns:
        ``(len(positions), C)`` float64.

    >>> prior_at([0, 5, 9], [[1.0, 0.0], [0.0, 1.0]], 10, "gradual").round(2).tolist()
    [[1.0, 0.0], [0.44, 0.56], [0.0, 1.0]]
    """
    p = _check_priors(priors)
    n = _check_count(num_items, "num_items")
    t = np.asarray(positions, dtype=np.float64).reshape(-1)
    if t.size and (t.min() < 0 or t.max() >= n):
        raise StreamInputError(f"positions must lie in [0, {n}).")
    s = p.shape[0]
    if mode == "piecewise":
        seg = np.minimum((t * s // n).astype(np.int64), s - 1)
        return p[seg]
    if mode == "gradual":
        if s < 2:
            raise StreamInputError("A gradual drift needs at least two priors (start and end).")
        x = t * (s - 1) / max(n - 1, 1)
        lo = np.minimum(np.floor(x).astype(np.int64), s - 2)
        w = (x - lo)[:, None]
        return p[lo] * (1 - w) + p[lo + 1] * w
    raise StreamInputError(f"mode must be 'piecewise' or 'gradual', got {mode!r}.")


def prior_drift_order(
    labels: Any,
    priors: Any,
    num_items: int,
    *,
    mode: Mode = "piecewise",
    seed: int = 0,
) -> np.ndarray:
    """An arrival order whose class distribution follows ``priors`` over time.

    Args:
        labels: ``(N,)`` class ids of the dataset's rows (``dataset["label"][:]``), in
            ``[0, C)``.
        priors: ``(S, C)`` class distributions (see :func:`prior_at`).
        num_items: length of the stream (<= N).
        mode: ``"piecewise"`` or ``"gradual"``.
        seed: seeds the class draws and the order of rows within each class.

    Returns:
        ``(num_items,)`` int64 row indices, each at most once.

    Raises:
        StreamInputError: bad priors, or a class that runs out of rows (the message says
            how many it needs).

    >>> labels = np.array([0, 1] * 50)
    >>> order = prior_drift_order(labels, [[1.0, 0.0], [0.0, 1.0]], 40, seed=0)
    >>> labels[order[:20]].tolist() == [0] * 20, labels[order[20:]].tolist() == [1] * 20
    (True, True)
    """
    p = _check_priors(priors)
    y = np.asarray(labels)
    if y.ndim != 1 or (y.size and y.dtype.kind not in "iu"):
        raise StreamInputError(f"labels must be a 1-D array of class ids, got {y.dtype} {y.shape}.")
    y = y.astype(np.int64)
    c = p.shape[1]
    if y.size and (y.min() < 0 or y.max() >= c):
        raise StreamInputError(f"labels must lie in [0, {c}) for priors over {c} classes.")
    n = _check_count(num_items, "num_items")
    if n > y.size:
        raise StreamInputError(f"num_items ({n}) exceeds the dataset's {y.size} rows.")
    rng = np.random.default_rng(seed)
    classes = np.empty(n, dtype=np.int64)
    for a in range(0, n, _BLOCK):
        b = min(n, a + _BLOCK)
        cdf = np.cumsum(prior_at(np.arange(a, b), p, n, mode), axis=1)
        u = rng.random(b - a)[:, None]
        classes[a:b] = np.minimum((u >= cdf).sum(1), c - 1)
    order = np.empty(n, dtype=np.int64)
    for k in range(c):
        slots = np.flatnonzero(classes == k)
        rows = np.flatnonzero(y == k)
        if slots.size > rows.size:
            raise StreamInputError(
                f"The drift needs {slots.size} rows of class {k} but the dataset has {rows.size}: "
                f"shorten the stream (num_items) or lower class {k}'s prior."
            )
        order[slots] = rng.permutation(rows)[: slots.size]
    return order


def concatenation_order(
    num_first: int, num_second: int, *, transition: int = 0, seed: int = 0, shuffle: bool = True
) -> np.ndarray:
    """Arrival order over ``concatenate_datasets([first, second])``: first's rows, then second's.

    Args:
        num_first / num_second: the two datasets' sizes (rows ``[0, num_first)`` and
            ``[num_first, num_first + num_second)`` of the concatenation).
        transition: length of the window, centred on the switch, over which the chance
            that an arrival comes from the second rises linearly from 0 to 1 (0 = abrupt).
        seed: seeds the shuffles and the transition draws.
        shuffle: shuffle the rows within each dataset.

    Returns:
        ``(num_first + num_second,)`` int64 row indices of the concatenation.

    >>> concatenation_order(3, 2, shuffle=False).tolist()
    [0, 1, 2, 3, 4]
    """
    n1 = _check_count(num_first, "num_first", 0)
    n2 = _check_count(num_second, "num_second", 0)
    width = _check_count(transition, "transition", 0)
    n = n1 + n2
    rng = np.random.default_rng(seed)
    first = rng.permutation(n1) if shuffle else np.arange(n1)
    second = n1 + (rng.permutation(n2) if shuffle else np.arange(n2))
    from_second = np.zeros(n, dtype=bool)
    start = max(0, n1 - width // 2)
    stop = min(n, start + width)
    from_second[stop:] = True
    if stop > start:
        ramp = (np.arange(start, stop) - start + 0.5) / (stop - start)
        from_second[start:stop] = rng.random(stop - start) < ramp
    # exact counts (each dataset contributes all its rows): a surplus of draws from the
    # second turns its earliest window draws (the least likely ones) into first, and a
    # deficit turns the latest first draws into second; the window always has enough.
    surplus = int(from_second.sum()) - n2
    if surplus > 0:
        from_second[np.flatnonzero(from_second[start:stop])[:surplus] + start] = False
    elif surplus < 0:
        from_second[np.flatnonzero(~from_second[start:stop])[surplus:] + start] = True
    order = np.empty(n, dtype=np.int64)
    order[~from_second] = first
    order[from_second] = second
    return order


def concatenate_for_drift(first: Any, second: Any) -> Any:
    """``datasets.concatenate_datasets([first, second])`` (no copy of the Arrow data).

    Raises:
        StreamInputError: the two datasets' features differ (cast one to the other's
            features first, e.g. ``second.cast(first.features)``).
    """
    import datasets

    if first.features != second.features:
        raise StreamInputError(
            f"The two datasets have different features ({first.features} vs {second.features}): "
            "cast one to the other first, e.g. second = second.cast(first.features)."
        )
    return datasets.concatenate_datasets([first, second])
