"""Free functions of the round loop (:mod:`energizer_hf.loop` re-exports them): the
initial-set checks, the records of rounds awaiting annotations, config diffs."""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from energizer_hf.distributed import env_rank
from energizer_hf.errors import EnergizerError, InvalidIdsError
from energizer_hf.oracles.base import AWAITING_ANNOTATIONS, AwaitingAnnotations

# the messages keep the name of the module they came from
log = logging.getLogger("energizer_hf.loop")

INITIAL_STRATEGIES = ("random", "stratified")
BUDGET_UNITS = ("examples", "tokens")


def cold_start_class(name: str) -> type | None:
    """The cold-start strategy class registered as ``name`` (``None``: not one).

    >>> cold_start_class("cold_start_kmeans").__name__
    'ColdStartKMeans'
    >>> cold_start_class("entropy") is None
    True
    """
    from energizer_hf.query_strategies.cold_start import ColdStartStrategy
    from energizer_hf.query_strategies.registry import get_strategy_class

    try:
        cls = get_strategy_class(name)
    except EnergizerError:
        return None
    return cls if issubclass(cls, ColdStartStrategy) else None



def check_initial_ids(ids: Any) -> list[int]:
    """``initial_ids`` as a list of distinct non-negative ints (the pool's size is checked
    when the pool is known).

    Raises:
        InvalidIdsError: not integers, negative, duplicated or empty.

    >>> check_initial_ids([3, 1, 2])
    [3, 1, 2]
    """
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise InvalidIdsError(f"initial_ids must be a list of pool ids (row indices), got {ids!r}.")
    values = list(ids)
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, np.integer))]
    if bad:
        raise InvalidIdsError(f"initial_ids must be integers (row indices of the pool), got {bad[:5]!r}.")
    out = [int(v) for v in values]
    if not out:
        raise InvalidIdsError("initial_ids is empty: give the pool ids of the initial set, or leave it out.")
    negative = [v for v in out if v < 0]
    if negative:
        raise InvalidIdsError(f"initial_ids must be row indices >= 0, got {negative[:10]}.")
    uniq, counts = np.unique(out, return_counts=True)
    if uniq.size != len(out):
        raise InvalidIdsError(f"initial_ids has duplicates: {uniq[counts > 1][:10].tolist()}. Give each id once.")
    return out



def round_float(value: float) -> float:
    """Seconds rounded to microseconds for the round records."""
    return float(f"{value:.6f}")



def _say(message: str) -> None:
    """A line for the person running the loop (stderr, shown at the default level)."""
    import sys

    log.info(message)
    if env_rank() == 0:
        print(f"energizer_hf: {message}", file=sys.stderr, flush=True)



def _awaiting_record(
    round: int, wait: AwaitingAnnotations, queried: np.ndarray, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The (unrecorded) record of a round that waits for annotations; an oracle's error
    that keeps the round (e.g. a blocking oracle's timeout, ``reraise``) is raised here,
    after ``pending.json`` was written."""
    if wait.reraise:
        raise wait
    return {
        **(base or {}),
        "round": round,
        "num_queried": int(queried.size),
        "queried_ids": queried.tolist(),
        "awaiting": {"round": wait.round, "done": wait.done, "total": wait.total, "where": wait.where},
        "stop_reason": AWAITING_ANNOTATIONS,
    }



def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: repr(o), sort_keys=True))



def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [prefix.rstrip(".")] if a != b else []
