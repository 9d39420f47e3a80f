"""Stream-based active learning: label or let go of each item as it arrives.

Items arrive one after the other (in practice in mini-batches that are scored together);
each is decided once, on arrival, in arrival order, and never reconsidered. Every rule
here runs item by item over a mini-batch and takes and returns an explicit
:class:`StreamState` (items seen, the labels inside the budget window, the adaptive
threshold, the random generator's state, an embedding memory), so that a stream that is
stopped, saved and resumed makes exactly the decisions of an uninterrupted one.

**Budget.** A budget rate ``b`` in (0, 1] over a window of ``w`` arrivals allows at most
``cap = floor(b * w)`` labels among ANY ``w`` consecutive arrivals: at every point of the
stream the labelled fraction of the last ``w`` arrivals (arrivals before the first count
as let go) is at most ``b``. The guarantee is exact: an item is let go, whatever its rule
says, when ``cap`` labels are already among the previous ``w - 1`` arrivals (the item is
then *blocked*). Žliobaitė et al. (2014) gate instead on an estimate of the spending,
``b̂_t = u_t / w`` with ``u_t = u_{t-1} (w - 1) / w + label_t``, which holds the rate on
average only; :func:`estimated_spending` reports that estimate and :func:`window_spending`
the exact fraction. Large windows leave rules room to label bursts of informative items;
a window of ``1 / b`` arrivals forces labels to be evenly spaced.

**Scores** follow the house convention: higher means more informative (least confidence
``1 - max p``, ``1 -`` margin, entropy, ...). A rule compares a score with a threshold on
the same scale and labels when ``score > threshold``. Žliobaitė et al. write their
variable-uncertainty rules on the maximum posterior ``c``: label when ``c < θ``, then
``θ ← θ (1 - s)`` after a label and ``θ ← θ (1 + s)`` after an item let go, starting from
``θ = 1``, and only while the budget allows. Here the threshold is ``τ = max_score - θ``:
with least-confidence scores and ``max_score = 1`` the decisions are exactly the paper's;
for another score ``max_score`` is its largest value (``log C`` for the entropy over
``C`` classes).

**Randomness.** Each rule draws a fixed number of random numbers per item whether or not
the budget lets it label (none for fixed and variable uncertainty, one for randomized
variable uncertainty and random, two for split), from a PCG64 generator whose state is part
of the :class:`StreamState`. The decisions of the rules on scores alone therefore do not
depend on how the stream is cut into mini-batches; the embedding rules compute
similarities with one matrix product per mini-batch and are bit-identical when a stream is
resumed at the same mini-batch boundaries (which is how streams are resumed).

**Complexity.** O(n) per mini-batch of n items, plus O(cap) to copy the window's label
positions in and out of the state; the embedding rules add O(n (m + l) d) for a memory of
``m`` embeddings of dimension ``d`` and ``l`` labels inside the mini-batch.

References:
    - I. Žliobaitė, A. Bifet, B. Pfahringer, G. Holmes. Active learning with drifting
      streaming data. IEEE Transactions on Neural Networks and Learning Systems 25(1),
      27-39, 2014 (fixed, variable, randomized variable uncertainty, split, random; the
      budget manager).
    - B. Settles, M. Craven. An analysis of active learning strategies for sequence
      labeling tasks. EMNLP 2008 (information density: uncertainty times mean similarity).
    - D. Ienco, B. Pfahringer, I. Žliobaitė. High density-focused uncertainty sampling for
      active learning over evolving stream data. BigMine 2014, PMLR 36 (density over a
      sliding window of recent arrivals in a stream).
    - K. Brinker. Incorporating diversity in active learning with support vector machines.
      ICML 2003 (diversity as the angle to the closest labelled example).
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from energizer_hf.errors import (
    BudgetRateError,
    InvalidScoresError,
    StreamInputError,
    StreamStateError,
)

__all__ = [
    "STREAM_SALT",
    "StreamDecisions",
    "StreamState",
    "budget_capacity",
    "density_weighted_decisions",
    "estimated_spending",
    "fixed_uncertainty_decisions",
    "initial_stream_state",
    "local_density",
    "novelty",
    "novelty_weighted_decisions",
    "random_decisions",
    "randomized_variable_uncertainty_decisions",
    "sliding_window_counts",
    "split_decisions",
    "variable_uncertainty_decisions",
    "window_spending",
]

# rate * window is computed in floating point: 0.29 * 100 = 28.999999999999996
_EPS = 1e-9
# rows of one similarity block of the density rule
_CHUNK = 512


# --------------------------------------------------------------------------- state
@dataclass(frozen=True, eq=False)
class StreamState:
    """Everything a stream rule carries from one mini-batch to the next.

    Attributes:
        seen: items decided so far (the arrival position of the next item).
        labelled: items labelled so far.
        recent: arrival positions of the labels still inside the budget window
            (ascending; at most ``floor(rate * window)``).
        spending: Žliobaitė's exponentially forgotten label count ``u``; the estimated
            spending is ``u / window``.
        threshold: the adaptive threshold of the variable-uncertainty rules on the score
            scale (``None`` before their first item).
        rng: the PCG64 bit generator state (a JSON-able dict), ``None`` for rules without
            randomness.
        memory: ``(m, d)`` float32 unit-norm embeddings, oldest first: the recent labels
            (novelty rule) or the recent arrivals (density rule); ``None`` when unused.
    """

    seen: int = 0
    labelled: int = 0
    recent: tuple[int, ...] = ()
    spending: float = 0.0
    threshold: float | None = None
    rng: Mapping[str, Any] | None = None
    memory: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("seen", "labelled"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise StreamStateError(f"StreamState.{name} must be an int >= 0, got {value!r}.")
        if self.labelled > self.seen:
            raise StreamStateError(
                f"StreamState has more labels ({self.labelled}) than items seen ({self.seen})."
            )
        recent = tuple(int(p) for p in self.recent)
        if any(b <= a for a, b in zip(recent, recent[1:])) or (
            recent and (recent[0] < 0 or recent[-1] >= self.seen)
        ):
            raise StreamStateError(
                "StreamState.recent must hold strictly increasing arrival positions in "
                f"[0, seen={self.seen}); got {list(recent)[:10]}..."
            )
        if len(recent) > self.labelled:
            raise StreamStateError("StreamState.recent holds more positions than there are labels.")
        object.__setattr__(self, "recent", recent)
        if not (math.isfinite(self.spending) and self.spending >= 0):
            raise StreamStateError(f"StreamState.spending must be finite and >= 0, got {self.spending!r}.")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise StreamStateError(f"StreamState.threshold must be finite or None, got {self.threshold!r}.")
        if self.memory is not None:
            mem = np.asarray(self.memory, dtype=np.float32)
            if mem.ndim != 2 or not np.isfinite(mem).all():
                raise StreamStateError("StreamState.memory must be a finite (m, d) array or None.")
            object.__setattr__(self, "memory", mem)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict, except ``memory`` which stays an array (or ``None``)."""
        return {
            "seen": int(self.seen),
            "labelled": int(self.labelled),
            "recent": list(self.recent),
            "spending": float(self.spending),
            "threshold": None if self.threshold is None else float(self.threshold),
            "rng": copy.deepcopy(dict(self.rng)) if self.rng is not None else None,
            "memory": self.memory,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> StreamState:
        """Rebuild a state from :meth:`to_dict` output (e.g. after a JSON round trip)."""
        unknown = set(state) - {"seen", "labelled", "recent", "spending", "threshold", "rng", "memory"}
        if unknown:
            raise StreamStateError(f"Unknown StreamState fields {sorted(unknown)}.")
        memory = state.get("memory")
        return cls(
            seen=int(state.get("seen", 0)),
            labelled=int(state.get("labelled", 0)),
            recent=tuple(state.get("recent", ())),
            spending=float(state.get("spending", 0.0)),
            threshold=None if state.get("threshold") is None else float(state["threshold"]),
            rng=copy.deepcopy(dict(state["rng"])) if state.get("rng") is not None else None,
            memory=None if memory is None else np.asarray(memory, dtype=np.float32),
        )


class StreamDecisions(NamedTuple):
    """What a rule decided for one mini-batch, item by item, and the state after it."""

    labelled: np.ndarray
    """``(n,)`` bool: the item is sent for labelling."""
    blocked: np.ndarray
    """``(n,)`` bool: the budget window was full, so the item was let go unconsulted."""
    scores: np.ndarray
    """``(n,)`` float64: the score each item was judged on (after any weighting; NaN for
    rules that ignore scores)."""
    thresholds: np.ndarray
    """``(n,)`` float64: the threshold each score was compared with (NaN where a random
    draw decided)."""
    state: StreamState
    """The state after the last item."""


STREAM_SALT = 0x5EED57
"""Mixed into every stream strategy's seed (see :func:`initial_stream_state`)."""


def initial_stream_state(seed: int | None = None, threshold: float | None = None) -> StreamState:
    """A fresh state; ``seed`` seeds the PCG64 generator of the randomized rules.

    The generator is seeded from ``(seed, STREAM_SALT)``, not ``seed`` alone: a replay
    order or a drift order drawn with ``default_rng(seed)`` would otherwise make the same
    uniform draws at the same positions, and a random rule at rate ``b`` would label
    exactly the items whose arrival draw was below ``b`` (e.g. one class of a drift).

    >>> initial_stream_state(seed=0).rng["bit_generator"]
    'PCG64'
    """
    if seed is None:
        return StreamState(threshold=threshold)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise StreamInputError(f"seed must be an int >= 0 or None, got {seed!r}.")
    return StreamState(threshold=threshold, rng=np.random.PCG64(np.random.SeedSequence([int(seed), STREAM_SALT])).state)


# --------------------------------------------------------------------------- budget
def budget_capacity(rate: float, window: int) -> int:
    """The most labels allowed among any ``window`` consecutive arrivals: ``floor(rate * window)``.

    Args:
        rate: the budget rate, in (0, 1].
        window: the window length in arrivals (>= 1).

    Returns:
        ``floor(rate * window)`` (at least 1).

    Raises:
        BudgetRateError: rate outside (0, 1], a window that is not a positive integer, or
            ``rate * window < 1`` (no label could ever be made).

    >>> budget_capacity(0.1, 100)
    10
    >>> budget_capacity(0.29, 100)  # not 28: rate * window is rounded up by 1e-9 first
    29
    """
    if (
        isinstance(rate, bool)
        or not isinstance(rate, (int, float, np.integer, np.floating))
        or not math.isfinite(float(rate))
        or not 0.0 < float(rate) <= 1.0
    ):
        raise BudgetRateError(
            f"The budget rate must be a number in (0, 1] (the fraction of arriving items that "
            f"may be labelled, e.g. 0.05), got {rate!r}."
        )
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise BudgetRateError(
            f"The budget window must be a positive integer number of arrivals, got {window!r}."
        )
    cap = int(math.floor(float(rate) * int(window) + _EPS))
    if cap < 1:
        raise BudgetRateError(
            f"A budget rate of {rate} over a window of {window} arrivals allows no label at all "
            f"(rate * window < 1): use a window of at least {math.ceil(1 / float(rate))} arrivals."
        )
    return cap


def estimated_spending(state: StreamState, window: int) -> float:
    """Žliobaitė et al.'s estimated spending ``b̂ = u / window`` (a forgetting average).

    >>> estimated_spending(StreamState(seen=1, labelled=1, recent=(0,), spending=1.0), 10)
    0.1
    """
    budget_capacity(1.0, window)
    return float(state.spending) / int(window)


def window_spending(state: StreamState, window: int) -> float:
    """The exact labelled fraction of the last ``window`` arrivals (earlier ones count as let go).

    >>> window_spending(StreamState(seen=5, labelled=2, recent=(0, 4)), 4)  # arrivals 1..4
    0.25
    """
    budget_capacity(1.0, window)
    inside = sum(1 for p in state.recent if p > state.seen - 1 - int(window))
    return inside / int(window)


def sliding_window_counts(labelled: np.ndarray, window: int) -> np.ndarray:
    """Labels among the last ``window`` arrivals at every position of a decision log.

    ``out[t] = labelled[max(0, t - window + 1) : t + 1].sum()``; the budget guarantee is
    ``out.max() <= budget_capacity(rate, window)``. O(n) time and memory.

    Args:
        labelled: ``(n,)`` bool decisions in arrival order.
        window: the window length (>= 1).

    Returns:
        ``(n,)`` int64 counts.

    >>> sliding_window_counts(np.array([1, 0, 1, 1, 0], dtype=bool), 2).tolist()
    [1, 1, 1, 2, 1]
    """
    budget_capacity(1.0, window)
    lab = np.asarray(labelled)
    if lab.ndim != 1:
        raise StreamInputError(f"labelled must be a 1-D array, got shape {lab.shape}.")
    csum = np.concatenate([[0], np.cumsum(lab.astype(np.int64))])
    t = np.arange(lab.size)
    return csum[t + 1] - csum[np.maximum(0, t + 1 - int(window))]


# --------------------------------------------------------------------------- validation
def _check_scores(scores: Any) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise InvalidScoresError(f"Stream scores must be a 1-D array (one per item), got shape {s.shape}.")
    if not np.isfinite(s).all():
        raise InvalidScoresError(
            f"Stream scores contain NaN or infinite values (items {np.flatnonzero(~np.isfinite(s))[:5].tolist()}); "
            "check the model's outputs."
        )
    return s


def _check_number(value: Any, name: str, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    v = float(value) if ok else math.nan
    if not ok or not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        raise StreamInputError(f"{name} must be a number in {interval}, got {value!r}.")
    return v


def _unit_rows(x: Any, name: str, rows: int, dim: int | None) -> np.ndarray:
    e = np.asarray(x, dtype=np.float32)
    if e.ndim != 2 or e.shape[0] != rows:
        raise StreamInputError(f"{name} must have shape ({rows}, dim) (one row per item), got {e.shape}.")
    if dim is not None and e.shape[1] != dim:
        raise StreamInputError(
            f"{name} have dimension {e.shape[1]} but the stream's memory holds dimension {dim}: "
            "use the same encoder for the whole stream."
        )
    if not np.isfinite(e).all():
        raise StreamInputError(f"{name} contain NaN or infinite values.")
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    # zero vectors stay zero: orthogonal to everything
    return np.divide(e, norms, out=np.zeros_like(e), where=norms > 0)


def _generator(state: StreamState) -> np.random.Generator:
    if state.rng is None:
        raise StreamInputError(
            "This rule draws random numbers but the state has no generator: start from "
            "initial_stream_state(seed=...)."
        )
    if state.rng.get("bit_generator") != "PCG64":
        raise StreamStateError(f"Expected a PCG64 generator state, got {state.rng.get('bit_generator')!r}.")
    bit = np.random.PCG64()
    bit.state = copy.deepcopy(dict(state.rng))
    return np.random.Generator(bit)


# --------------------------------------------------------------------------- engine
Rule = Callable[[int, bool], "tuple[bool, float]"]


def _run(
    n: int,
    state: StreamState,
    rate: float,
    window: int,
    rule: Rule,
    on_label: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Apply ``rule(i, allowed) -> (label, threshold)`` item by item under the exact window budget."""
    cap = budget_capacity(rate, window)
    window = int(window)
    forget = (window - 1) / window
    recent = deque(state.recent)
    labelled = np.zeros(n, dtype=bool)
    blocked = np.zeros(n, dtype=bool)
    thresholds = np.full(n, np.nan)
    spending, count = float(state.spending), int(state.labelled)
    for i in range(n):
        t = state.seen + i
        while recent and recent[0] <= t - window:
            recent.popleft()
        allowed = len(recent) < cap
        take, thresholds[i] = rule(i, allowed)
        take = bool(take) and allowed
        if take:
            recent.append(t)
            count += 1
            labelled[i] = True
            if on_label is not None:
                on_label(i)
        elif not allowed:
            blocked[i] = True
        spending = spending * forget + take
    seen = state.seen + n
    while recent and recent[0] < seen - window:  # keep the last `window` arrivals' labels
        recent.popleft()
    fields = {"seen": seen, "labelled": count, "recent": tuple(recent), "spending": spending}
    return labelled, blocked, thresholds, fields


class _VariableThreshold:
    """Žliobaitė's (randomized) variable uncertainty on the score scale ``τ = max_score - θ``."""

    def __init__(self, tau: float, step: float, max_score: float, eta: np.ndarray | None) -> None:
        self.tau, self.step, self.max_score, self.eta = tau, step, max_score, eta

    def __call__(self, score: float, i: int, allowed: bool) -> tuple[bool, float]:
        theta = self.max_score - self.tau
        thr = self.tau if self.eta is None else self.max_score - theta * float(self.eta[i])
        if not allowed:  # the paper consults (and adapts) the rule only within budget
            return False, thr
        if score > thr:
            self.tau = self.max_score - theta * (1.0 - self.step)
            return True, thr
        self.tau = self.max_score - theta * (1.0 + self.step)
        return False, thr


def _vu_params(state: StreamState, step: float, max_score: float, initial_threshold: float) -> float:
    _check_number(step, "step", 0.0, 1.0, lo_open=True, hi_open=True)
    _check_number(max_score, "max_score", -math.inf, math.inf)
    tau = initial_threshold if state.threshold is None else state.threshold
    _check_number(tau, "threshold", -math.inf, math.inf)
    if tau >= max_score:
        raise StreamInputError(
            f"The variable-uncertainty threshold ({tau}) must be below max_score ({max_score}): "
            "max_score is the largest score the rule can see (1 for least confidence)."
        )
    return float(tau)


def _finish(
    state: StreamState,
    parts: tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]],
    scores: np.ndarray,
    *,
    threshold: float | None,
    rng: np.random.Generator | None,
    memory: np.ndarray | None = None,
) -> StreamDecisions:
    labelled, blocked, thresholds, fields = parts
    new_state = StreamState(
        **fields,
        threshold=threshold,
        rng=rng.bit_generator.state if rng is not None else state.rng,
        memory=memory if memory is not None else state.memory,
    )
    return StreamDecisions(labelled, blocked, scores, thresholds, new_state)


# --------------------------------------------------------------------------- rules
def fixed_uncertainty_decisions(
    scores: Any, state: StreamState, *, threshold: float, rate: float, window: int
) -> StreamDecisions:
    """Fixed uncertainty: label an item when its score exceeds a fixed threshold.

    Žliobaitė et al. (2014), Algorithm 1 (``max p < θ`` there, ``score > threshold`` here).
    Labels nothing when the scores stay below the threshold, and spends the budget on the
    first uncertain items of a window otherwise. O(n).

    Args:
        scores: ``(n,)`` scores in arrival order (higher = more informative).
        state: the state after the previous mini-batch.
        threshold: the fixed threshold on the score scale.
        rate / window: the budget (see :func:`budget_capacity`).

    Returns:
        :class:`StreamDecisions`.

    >>> d = fixed_uncertainty_decisions(np.array([0.9, 0.2, 0.8, 0.7]), StreamState(),
    ...                                 threshold=0.5, rate=0.5, window=2)
    >>> d.labelled.tolist(), d.blocked.tolist()
    ([True, False, True, False], [False, True, False, True])
    """
    s = _check_scores(scores)
    thr = _check_number(threshold, "threshold", -math.inf, math.inf)
    parts = _run(s.size, state, rate, window, lambda i, allowed: (s[i] > thr, thr))
    return _finish(state, parts, s, threshold=state.threshold, rng=None)


def variable_uncertainty_decisions(
    scores: Any,
    state: StreamState,
    *,
    rate: float,
    window: int,
    step: float = 0.01,
    max_score: float = 1.0,
    initial_threshold: float = 0.0,
) -> StreamDecisions:
    """Variable uncertainty: a threshold that tightens after each label and relaxes after each item let go.

    Žliobaitė et al. (2014), Algorithm 3: with ``θ = max_score - τ``, an item within budget
    is labelled when ``score > τ`` and then ``θ ← θ (1 - step)``, otherwise
    ``θ ← θ (1 + step)``; blocked items leave ``θ`` unchanged. The threshold follows the
    score distribution, so the rule labels the most uncertain items of any period, also
    after a drift. O(n).

    Args:
        scores: ``(n,)`` scores in arrival order (higher = more informative).
        state: the state after the previous mini-batch (its ``threshold`` is used when set).
        rate / window: the budget.
        step: the adjustment step ``s`` in (0, 1) (the paper uses 0.01).
        max_score: the largest possible score (``θ = max_score - τ``).
        initial_threshold: ``τ`` before the first item (0 = the paper's ``θ = 1``).

    Returns:
        :class:`StreamDecisions`; ``state.threshold`` is the updated ``τ``.

    >>> d = variable_uncertainty_decisions(np.array([0.3, 0.3, 0.3]), StreamState(),
    ...                                    rate=1.0, window=1, step=0.5)
    >>> d.labelled.tolist(), d.thresholds.tolist(), d.state.threshold
    ([True, False, True], [0.0, 0.5, 0.25], 0.625)
    """
    s = _check_scores(scores)
    vt = _VariableThreshold(_vu_params(state, step, max_score, initial_threshold), float(step), float(max_score), None)
    parts = _run(s.size, state, rate, window, lambda i, allowed: vt(s[i], i, allowed))
    return _finish(state, parts, s, threshold=vt.tau, rng=None)


def randomized_variable_uncertainty_decisions(
    scores: Any,
    state: StreamState,
    *,
    rate: float,
    window: int,
    step: float = 0.01,
    delta: float = 1.0,
    max_score: float = 1.0,
    initial_threshold: float = 0.0,
) -> StreamDecisions:
    """Randomized variable uncertainty: variable uncertainty against a randomly scaled threshold.

    Žliobaitė et al. (2014), Algorithm 4: each item is compared with
    ``τ_rand = max_score - θ η``, ``η ~ N(1, delta)`` (standard deviation ``delta``; the
    paper uses 1), so that items far from the decision boundary are labelled now and then
    too, which lets the model notice a drift anywhere in the input space. One normal draw
    per item. O(n).

    Args:
        scores / state / rate / window / step / max_score / initial_threshold: as in
            :func:`variable_uncertainty_decisions`; ``state`` must carry a generator
            (:func:`initial_stream_state` with a seed).
        delta: standard deviation of the multiplier ``η`` (>= 0; 0 gives plain variable
            uncertainty).

    Returns:
        :class:`StreamDecisions`; ``thresholds`` holds each item's ``τ_rand``.

    >>> st = initial_stream_state(seed=0)
    >>> a = randomized_variable_uncertainty_decisions(np.full(5, 0.4), st, rate=0.5, window=4)
    >>> b = randomized_variable_uncertainty_decisions(np.full(5, 0.4), st, rate=0.5, window=4)
    >>> a.labelled.tolist() == b.labelled.tolist()  # same state, same decisions
    True
    """
    s = _check_scores(scores)
    tau = _vu_params(state, step, max_score, initial_threshold)
    _check_number(delta, "delta", 0.0, math.inf)
    g = _generator(state)
    eta = g.normal(1.0, float(delta), size=s.size)
    vt = _VariableThreshold(tau, float(step), float(max_score), eta)
    parts = _run(s.size, state, rate, window, lambda i, allowed: vt(s[i], i, allowed))
    return _finish(state, parts, s, threshold=vt.tau, rng=g)


def split_decisions(
    scores: Any,
    state: StreamState,
    *,
    rate: float,
    window: int,
    fraction: float = 0.2,
    step: float = 0.01,
    max_score: float = 1.0,
    initial_threshold: float = 0.0,
) -> StreamDecisions:
    """Split: a random ``fraction`` of the items is decided at random, the rest by variable uncertainty.

    Žliobaitė et al. (2014), Algorithm 5 (``ν = 0.2`` there): an item goes to the random
    branch with probability ``fraction`` and is then labelled with probability ``rate``
    (the threshold is left alone); otherwise variable uncertainty decides it. The random
    labels are an unbiased sample of the current distribution, which uncertainty sampling
    alone never gives after a drift. Two uniform draws per item. O(n).

    Args:
        scores / state / rate / window / step / max_score / initial_threshold: as in
            :func:`variable_uncertainty_decisions`; ``state`` must carry a generator.
        fraction: the share ``ν`` of items decided at random, in [0, 1].

    Returns:
        :class:`StreamDecisions`; ``thresholds`` is NaN for the random branch.

    >>> d = split_decisions(np.full(6, 0.5), initial_stream_state(seed=1), rate=1.0,
    ...                     window=1, fraction=1.0)
    >>> bool(np.isnan(d.thresholds).all()), bool(d.labelled.all())  # all random, rate 1
    (True, True)
    """
    s = _check_scores(scores)
    tau = _vu_params(state, step, max_score, initial_threshold)
    nu = _check_number(fraction, "fraction", 0.0, 1.0)
    g = _generator(state)
    # one (n, 2) draw: item i always gets draws 2i and 2i + 1, whatever the batching
    branch, coin = g.random((s.size, 2)).T
    vt = _VariableThreshold(tau, float(step), float(max_score), None)
    b = float(rate)

    def rule(i: int, allowed: bool) -> tuple[bool, float]:
        if branch[i] < nu:
            return coin[i] < b, math.nan
        return vt(s[i], i, allowed)

    parts = _run(s.size, state, rate, window, rule)
    return _finish(state, parts, s, threshold=vt.tau, rng=g)


def random_decisions(num_items: int, state: StreamState, *, rate: float, window: int) -> StreamDecisions:
    """Random: label each item with probability ``rate``, under the same window budget.

    The baseline of Žliobaitė et al. (2014); it needs no model. Because the window caps
    bursts, the realised rate is slightly below ``rate`` unless the window is long. One
    uniform draw per item. O(n).

    Args:
        num_items: items in the mini-batch.
        state: the state (with a generator, see :func:`initial_stream_state`).
        rate / window: the budget.

    Returns:
        :class:`StreamDecisions` (``scores`` and ``thresholds`` are NaN).

    >>> d = random_decisions(1000, initial_stream_state(seed=0), rate=0.1, window=1000)
    >>> 50 < int(d.labelled.sum()) <= 100
    True
    """
    if isinstance(num_items, bool) or not isinstance(num_items, (int, np.integer)) or num_items < 0:
        raise StreamInputError(f"num_items must be an int >= 0, got {num_items!r}.")
    budget_capacity(rate, window)
    g = _generator(state)
    coin = g.random(int(num_items))
    b = float(rate)
    parts = _run(int(num_items), state, rate, window, lambda i, allowed: (coin[i] < b, math.nan))
    return _finish(state, parts, np.full(int(num_items), np.nan), threshold=state.threshold, rng=g)


# --------------------------------------------------------------------------- embeddings
def novelty(embeddings: Any, reference: Any) -> np.ndarray:
    """Novelty of each item with respect to reference items: ``1 - max(0, max_j cos(e, r_j))``.

    In [0, 1]; 1 when there is no reference or the item is orthogonal (or opposite) to all
    of them; zero vectors count as orthogonal. The diversity term of Brinker (2003), used
    here against the recently labelled items. O(n m d).

    Args:
        embeddings: ``(n, d)`` items.
        reference: ``(m, d)`` reference items (``m`` may be 0).

    Returns:
        ``(n,)`` float64.

    >>> novelty(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[1.0, 0.0]])).tolist()
    [0.0, 1.0]
    """
    e = _unit_rows(embeddings, "embeddings", np.asarray(embeddings).shape[0], None)
    r = np.asarray(reference, dtype=np.float32).reshape(-1, e.shape[1]) if np.size(reference) else None
    if r is None:
        return np.ones(e.shape[0])
    r = _unit_rows(r, "reference", r.shape[0], e.shape[1])
    return 1.0 - np.maximum(0.0, (e @ r.T).max(axis=1)).astype(np.float64)


def local_density(embeddings: Any, reference: Any) -> np.ndarray:
    """Local density of each item among reference items: ``mean_j max(0, cos(e, r_j))``.

    In [0, 1]; 1 when there is no reference. The information-density weight of Settles &
    Craven (2008), taken over a window of recent arrivals as in Ienco et al. (2014) since a
    stream has no pool. O(n m d).

    Args:
        embeddings: ``(n, d)`` items.
        reference: ``(m, d)`` reference items (``m`` may be 0).

    Returns:
        ``(n,)`` float64.

    >>> local_density(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])).tolist()
    [0.5]
    """
    e = _unit_rows(embeddings, "embeddings", np.asarray(embeddings).shape[0], None)
    r = np.asarray(reference, dtype=np.float32).reshape(-1, e.shape[1]) if np.size(reference) else None
    if r is None:
        return np.ones(e.shape[0])
    r = _unit_rows(r, "reference", r.shape[0], e.shape[1])
    return np.maximum(0.0, e @ r.T).mean(axis=1).astype(np.float64)


def _weighted_setup(
    scores: Any, embeddings: Any, state: StreamState, memory_size: int, power: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = _check_scores(scores)
    if isinstance(memory_size, bool) or not isinstance(memory_size, (int, np.integer)) or memory_size < 1:
        raise StreamInputError(f"memory_size must be a positive int, got {memory_size!r}.")
    _check_number(power, "power", 0.0, math.inf)
    if embeddings is None:
        raise StreamInputError(
            "This stream rule weighs scores by embeddings: pass embeddings of shape (n, dim)."
        )
    mem = state.memory
    e = _unit_rows(embeddings, "embeddings", s.size, None if mem is None or mem.size == 0 else mem.shape[1])
    if mem is None:
        mem = np.zeros((0, e.shape[1]), dtype=np.float32)
    return s, e, mem


def novelty_weighted_decisions(
    scores: Any,
    embeddings: Any,
    state: StreamState,
    *,
    rate: float,
    window: int,
    memory_size: int = 256,
    power: float = 1.0,
    step: float = 0.01,
    max_score: float = 1.0,
    initial_threshold: float = 0.0,
    delta: float | None = None,
) -> StreamDecisions:
    """Novelty-weighted uncertainty: ``score × novelty^power``, decided by variable uncertainty.

    ``novelty = 1 - max(0, max cos(e, m))`` over the last ``memory_size`` labelled items
    (Brinker, 2003; 1 before the first label), updated item by item, so an item close to
    one labelled a moment earlier in the same mini-batch is discounted: the budget is not
    spent on near-duplicates, and items of a new region (a drift) keep their full score.
    The weighted score goes through variable uncertainty (randomized with ``delta``), whose
    threshold adapts to the weighted scale. O(n (m + l) d) for ``l`` labels in the batch.

    Args:
        scores: ``(n,)`` scores in arrival order.
        embeddings: ``(n, d)`` embeddings of the same items (any encoder; cosine).
        state: the state (its ``memory`` holds the recent labelled embeddings).
        rate / window / step / max_score / initial_threshold: as in
            :func:`variable_uncertainty_decisions`.
        memory_size: labelled embeddings remembered (FIFO).
        power: exponent of the novelty weight (0 = plain uncertainty).
        delta: ``None`` for variable uncertainty, else the ``η`` spread of the randomized
            variant (then ``state`` needs a generator).

    Returns:
        :class:`StreamDecisions` with the weighted ``scores``.

    >>> e = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> d = novelty_weighted_decisions(np.full(3, 0.9), e, StreamState(), rate=1.0, window=1)
    >>> d.labelled.tolist(), d.scores.tolist()  # the duplicate gets weight 0
    ([True, False, True], [0.9, 0.0, 0.9])
    """
    s, e, mem = _weighted_setup(scores, embeddings, state, memory_size, power)
    tau = _vu_params(state, step, max_score, initial_threshold)
    g = None
    eta = None
    if delta is not None:
        _check_number(delta, "delta", 0.0, math.inf)
        g = _generator(state)
        eta = g.normal(1.0, float(delta), size=s.size)
    vt = _VariableThreshold(tau, float(step), float(max_score), eta)
    sim_mem = e @ mem.T  # (n, m) float32
    k = mem.shape[0]
    evicted = 0  # oldest memory rows pushed out by labels of this batch
    batch_labels: deque[int] = deque()
    weighted = np.empty(s.size)
    p = float(power)

    def rule(i: int, allowed: bool) -> tuple[bool, float]:
        best = -math.inf
        if evicted < k:
            best = float(sim_mem[i, evicted:].max())
        if batch_labels:
            idx = np.fromiter(batch_labels, dtype=np.int64, count=len(batch_labels))
            best = max(best, float((e[idx] @ e[i]).max()))
        nov = 1.0 if best == -math.inf else 1.0 - max(0.0, best)
        weighted[i] = s[i] * nov**p
        return vt(weighted[i], i, allowed)

    def on_label(i: int) -> None:
        nonlocal evicted
        batch_labels.append(i)
        if (k - evicted) + len(batch_labels) > memory_size:
            if evicted < k:
                evicted += 1
            else:
                batch_labels.popleft()

    parts = _run(s.size, state, rate, window, rule, on_label)
    new_mem = np.concatenate([mem[evicted:], e[list(batch_labels)]])[-int(memory_size):]
    return _finish(state, parts, weighted, threshold=vt.tau, rng=g, memory=new_mem)


def density_weighted_decisions(
    scores: Any,
    embeddings: Any,
    state: StreamState,
    *,
    rate: float,
    window: int,
    memory_size: int = 256,
    power: float = 1.0,
    step: float = 0.01,
    max_score: float = 1.0,
    initial_threshold: float = 0.0,
    delta: float | None = None,
) -> StreamDecisions:
    """Density-weighted uncertainty: ``score × density^power``, decided by variable uncertainty.

    ``density = mean max(0, cos(e, a))`` over the ``memory_size`` arrivals just before the
    item (labelled or not; 1 for the very first item): the information density of Settles
    & Craven (2008) over a sliding window of the stream (Ienco et al., 2014), so the budget
    goes to uncertain items of dense, current regions rather than to outliers. The
    weighted score goes through (randomized) variable uncertainty. O(n (m + n) d) with
    blocks of 512 rows.

    Args:
        scores: ``(n,)`` scores in arrival order.
        embeddings: ``(n, d)`` embeddings of the same items.
        state: the state (its ``memory`` holds the recent arrivals' embeddings).
        rate / window / step / max_score / initial_threshold / delta / power: as in
            :func:`novelty_weighted_decisions`.
        memory_size: arrivals in the density window.

    Returns:
        :class:`StreamDecisions` with the weighted ``scores``.

    >>> e = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> d = density_weighted_decisions(np.full(3, 0.8), e, StreamState(), rate=1.0, window=1)
    >>> d.scores.tolist()  # first: no history; second: like the first; third: orthogonal
    [0.8, 0.8, 0.0]
    """
    s, e, mem = _weighted_setup(scores, embeddings, state, memory_size, power)
    tau = _vu_params(state, step, max_score, initial_threshold)
    g = None
    eta = None
    if delta is not None:
        _check_number(delta, "delta", 0.0, math.inf)
        g = _generator(state)
        eta = g.normal(1.0, float(delta), size=s.size)
    m, k, n = int(memory_size), mem.shape[0], s.size
    arrivals = np.concatenate([mem, e])  # (k + n, d), oldest first
    density = np.ones(n)
    for a in range(0, n, _CHUNK):
        b = min(n, a + _CHUNK)
        lo = max(0, k + a - m)
        block = np.maximum(0.0, e[a:b] @ arrivals[lo : k + b - 1].T) if k + b - 1 > lo else None
        for i in range(a, b):
            start, stop = max(0, k + i - m), k + i
            if stop > start and block is not None:
                density[i] = float(block[i - a, start - lo : stop - lo].mean())
    weighted = s * density ** float(power)
    vt = _VariableThreshold(tau, float(step), float(max_score), eta)
    parts = _run(n, state, rate, window, lambda i, allowed: vt(weighted[i], i, allowed))
    return _finish(state, parts, weighted, threshold=vt.tau, rng=g, memory=arrivals[-m:])
