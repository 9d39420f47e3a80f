"""Stream strategies: label or let go of each arriving item under a budget rate.

Each strategy is a thin class over one rule of :mod:`energizer_hf.functional.stream`; it
holds the rule's parameters and its :class:`~energizer_hf.functional.stream.StreamState`
(items seen, labels inside the budget window, adaptive threshold, generator, embedding
memory). The one public verb is :meth:`StreamStrategy.decide`, which takes a mini-batch of
scores (and embeddings for the embedding rules) in arrival order and returns a boolean
mask, decided item by item; :attr:`StreamStrategy.last` keeps the full decisions (the
score and threshold of each item, which items the budget blocked) for the decision log.

``state_dict()`` is JSON-able except for ``state.memory`` (an array, for the embedding
rules); :mod:`energizer_hf.stream.state` stores both. Loading a state saved by a
strategy with other parameters raises :class:`~energizer_hf.errors.ConfigMismatchError`.

Class attributes the engine reads:
    requires_scores: whether :meth:`~StreamStrategy.decide` needs model scores (random
        does not, so the engine can skip scoring).
    requires_embeddings: whether it needs embeddings too.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from energizer_hf.errors import ConfigMismatchError, StreamInputError, StreamStateError
from energizer_hf.functional.stream import (
    StreamDecisions,
    StreamState,
    budget_capacity,
    density_weighted_decisions,
    estimated_spending,
    fixed_uncertainty_decisions,
    initial_stream_state,
    novelty_weighted_decisions,
    random_decisions,
    randomized_variable_uncertainty_decisions,
    split_decisions,
    variable_uncertainty_decisions,
    window_spending,
)
from energizer_hf.functional.stream_quantile import quantile_uncertainty_decisions
from energizer_hf.stream.registry import register_stream_strategy

__all__ = [
    "DensityUncertaintyStream",
    "FixedUncertaintyStream",
    "NoveltyUncertaintyStream",
    "QuantileUncertaintyStream",
    "RandomStream",
    "RandomizedVariableUncertaintyStream",
    "SplitStream",
    "StreamStrategy",
    "VariableUncertaintyStream",
]


class StreamStrategy:
    """Base class of the stream strategies.

    Args:
        budget_rate: the fraction of arriving items that may be labelled, in (0, 1].
        window: the budget window in arrivals: at every point at most
            ``floor(budget_rate * window)`` of the last ``window`` arrivals are labelled.
        seed: seeds the strategy's random draws (same seed and state, same decisions).

    Subclasses implement :meth:`_decide` (one call of a rule of
    :mod:`energizer_hf.functional.stream`) and list their extra parameters in
    :meth:`params`.

    >>> s = VariableUncertaintyStream(0.5, window=4)
    >>> s.decide(np.array([0.9, 0.8, 0.1, 0.7])).tolist()
    [True, True, False, False]
    >>> s.seen, s.num_labelled, s.last.blocked.tolist()
    (4, 2, [False, False, True, True])
    """

    name: ClassVar[str] = "stream_strategy"
    requires_scores: ClassVar[bool] = True
    requires_embeddings: ClassVar[bool] = False

    def __init__(self, budget_rate: float, *, window: int = 1000, seed: int = 0) -> None:
        self.capacity = budget_capacity(budget_rate, window)
        self.budget_rate = float(budget_rate)
        self.window = int(window)
        self.seed = seed
        self.state: StreamState = initial_stream_state(seed)
        self.last: StreamDecisions | None = None

    # ------------------------------------------------------------------ the verb
    def decide(
        self, scores: Any = None, embeddings: Any = None, *, num_items: int | None = None
    ) -> np.ndarray:
        """Decide a mini-batch in arrival order; ``True`` = send the item for labelling.

        Args:
            scores: ``(n,)`` scores, higher = more informative (not needed by
                strategies with ``requires_scores = False``).
            embeddings: ``(n, d)`` embeddings (needed when ``requires_embeddings``).
            num_items: the batch size when neither scores nor embeddings are given.

        Returns:
            ``(n,)`` bool mask.

        Raises:
            StreamInputError: missing scores/embeddings, or inconsistent sizes.
            InvalidScoresError: NaN/infinite scores.
        """
        n = self._batch_size(scores, embeddings, num_items)
        if self.requires_scores and scores is None:
            raise StreamInputError(
                f"Stream strategy '{self.name}' decides on model scores: pass scores of shape (n,)."
            )
        if self.requires_embeddings and embeddings is None:
            raise StreamInputError(
                f"Stream strategy '{self.name}' weighs scores by embeddings: pass embeddings "
                "of shape (n, dim) (e.g. the model's `embed` outputs)."
            )
        decisions = self._decide(scores, embeddings, n, self.state)
        self.state = decisions.state
        self.last = decisions
        return decisions.labelled

    def _decide(self, scores: Any, embeddings: Any, n: int, state: StreamState) -> StreamDecisions:
        raise NotImplementedError

    @staticmethod
    def _batch_size(scores: Any, embeddings: Any, num_items: int | None) -> int:
        sizes = {}
        if scores is not None:
            sizes["scores"] = int(np.shape(scores)[0]) if np.ndim(scores) >= 1 else -1
        if embeddings is not None:
            sizes["embeddings"] = int(np.shape(embeddings)[0]) if np.ndim(embeddings) >= 1 else -1
        if num_items is not None:
            sizes["num_items"] = int(num_items)
        if not sizes:
            raise StreamInputError("decide() needs scores, embeddings or num_items to know the batch size.")
        if len(set(sizes.values())) > 1 or min(sizes.values()) < 0:
            raise StreamInputError(f"Inconsistent mini-batch sizes: {sizes}.")
        return next(iter(sizes.values()))

    # ------------------------------------------------------------------ introspection
    def params(self) -> dict[str, Any]:
        """The strategy's parameters (JSON-able); equal parameters give equal decisions."""
        return {"budget_rate": self.budget_rate, "window": self.window, "seed": self.seed}

    @property
    def seen(self) -> int:
        """Items decided so far."""
        return self.state.seen

    @property
    def num_labelled(self) -> int:
        """Items sent for labelling so far."""
        return self.state.labelled

    @property
    def threshold(self) -> float | None:
        """The adaptive threshold (variable-uncertainty strategies), else ``None``."""
        return self.state.threshold

    @property
    def window_spending(self) -> float:
        """The exact labelled fraction of the last ``window`` arrivals (<= ``budget_rate``)."""
        return window_spending(self.state, self.window)

    @property
    def estimated_spending(self) -> float:
        """Žliobaitė et al.'s forgetting estimate of the spending."""
        return estimated_spending(self.state, self.window)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """``{"name", "params", "state"}``; ``state["memory"]`` may be an array."""
        return {"name": self.name, "params": self.params(), "state": self.state.to_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by a strategy with the same name and parameters.

        Raises:
            ConfigMismatchError: another strategy or other parameters.
            StreamStateError: a damaged state.
        """
        if not isinstance(state_dict, dict) or not {"name", "params", "state"} <= set(state_dict):
            raise StreamStateError("A stream strategy state needs the keys 'name', 'params' and 'state'.")
        if state_dict["name"] != self.name or state_dict["params"] != self.params():
            raise ConfigMismatchError(
                f"The saved stream state belongs to strategy '{state_dict['name']}' with "
                f"{state_dict['params']}, not '{self.name}' with {self.params()}: resume with "
                "the same strategy and parameters, or start a new run directory."
            )
        self.state = StreamState.from_dict(state_dict["state"])
        self.last = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


class _VariableBase(StreamStrategy):
    """Shared parameters of the variable-uncertainty family."""

    def __init__(
        self,
        budget_rate: float,
        *,
        step: float = 0.01,
        max_score: float = 1.0,
        initial_threshold: float = 0.0,
        window: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__(budget_rate, window=window, seed=seed)
        self.step = float(step)
        self.max_score = float(max_score)
        self.initial_threshold = float(initial_threshold)
        # validate now rather than at the first mini-batch
        variable_uncertainty_decisions(np.empty(0), StreamState(), **self._vu_kwargs())

    def _vu_kwargs(self) -> dict[str, Any]:
        return {
            "rate": self.budget_rate,
            "window": self.window,
            "step": self.step,
            "max_score": self.max_score,
            "initial_threshold": self.initial_threshold,
        }

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "step": self.step,
            "max_score": self.max_score,
            "initial_threshold": self.initial_threshold,
        }


@register_stream_strategy("fixed_uncertainty", "fixed")
class FixedUncertaintyStream(StreamStrategy):
    """Label an item when its score exceeds a fixed ``threshold`` (Žliobaitė et al., 2014).

    >>> FixedUncertaintyStream(1.0, threshold=0.5, window=1).decide(np.array([0.6, 0.4])).tolist()
    [True, False]
    """

    def __init__(self, budget_rate: float, *, threshold: float, window: int = 1000, seed: int = 0) -> None:
        super().__init__(budget_rate, window=window, seed=seed)
        fixed_uncertainty_decisions(np.empty(0), StreamState(), threshold=threshold, rate=budget_rate, window=window)
        self.fixed_threshold = float(threshold)

    def _decide(self, scores: Any, embeddings: Any, n: int, state: StreamState) -> StreamDecisions:
        return fixed_uncertainty_decisions(
            scores, state, threshold=self.fixed_threshold, rate=self.budget_rate, window=self.window
        )

    def params(self) -> dict[str, Any]:
        return {**super().params(), "threshold": self.fixed_threshold}


@register_stream_strategy("quantile_uncertainty", "quantile")
class QuantileUncertaintyStream(StreamStrategy):
    """Label an item whose score is among the top ``budget_rate`` share of the last ``window`` scores.

    Spreads the budget over the window and needs no threshold on the score's scale; see
    :func:`~energizer_hf.functional.stream_quantile.quantile_uncertainty_decisions`.

    >>> QuantileUncertaintyStream(0.5, window=4).decide(np.array([0.2, 0.9, 0.1, 0.5])).tolist()
    [True, True, False, False]
    """

    def _decide(self, scores: Any, embeddings: Any, n: int, state: StreamState) -> StreamDecisions:
        return quantile_uncertainty_decisions(scores, state, rate=self.budget_rate, window=self.window)


@register_stream_strategy("variable_uncertainty", "vu")
class VariableUncertaintyStream(_VariableBase):
    """Variable uncertainty (Žliobaitė et al., 2014): an adaptive threshold on the scores.

    See :func:`~energizer_hf.functional.stream.variable_uncertainty_decisions`.
    """

    def _decide(self, scores: Any, embeddings: Any, n: int, state: StreamState) -> StreamDecisions:
        return variable_uncertainty_decisions(scores, state, **self._vu_kwargs())


@register_stream_strategy("randomized_variable_uncertainty", "rvu")
class RandomizedVariableUncertaintyStream(_VariableBase):
    """Variable uncertainty against a threshold scaled by ``η ~ N(1, delta)`` (Žliobaitė et al., 2014).

    See :func:`~energizer_hf.functional.stream.randomized_variable_uncertainty_decisions`.
    """

    def __init__(self, budget_rate: float, *, delta: float = 1.0, **kwargs: Any) -> None:
        super().__init__(budget_rate, **kwargs)
        randomized_variable_uncertainty_decisions(
            np.empty(0), initial_stream_state(0), delta=delta, **self._vu_kwargs()
        )
        self.delta = float(delta)

    def _decide(self, scores: Any, embeddings: Any, n: int, state: StreamState) -> StreamDecisions:
        return randomized_variable_uncertainty_decisions(scores, state, delta=self.delta, **self._vu_kwargs())

    def params(self) -> dict[str, Any]:
        return {**super().params(), "delta": self.delta}


@register_stream_strategy("split")
class SplitStream(_VariableBase):
    """A random ``fraction`` of items decided at the budget rate, the rest by variable uncertainty.

    Žliobaitė et al. (2014); see :func:`~energizer_hf.functional.stream.split_decisions`.
    """

    def __init__(self, budget_rate: float, *, fraction: float = 0.2, **kwargs: Any) -> None:
        super().__init__(budget_rate, **kwargs)
        split_decisions(np.empty(0), initial_stream_state(0), fraction=fraction, **self._vu_kwargs())
        self.fraction = float(fraction)

    def _decide(self, scores: Any, embeddings: Any, n: int, state: StreamState) -> StreamDecisions:
        return split_decisions(scores, state, fraction=self.fraction, **self._vu_kwargs())

    def params(self) -> dict[str, Any]:
        return {**super().params(), "fraction": self.fraction}


class _WeightedBase(_VariableBase):
    requires_embeddings = True

    def __init__(
        self,
        budget_rate: float,
        *,
        memory_size: int = 256,
        power: float = 1.0,
        delta: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(budget_rate, **kwargs)
        self.memory_size = memory_size
        self.power = float(power)
        self.delta = None if delta is None else float(delta)
        self._rule(np.empty(0), np.empty((0, 1)), initial_stream_state(0))

    def _rule(self, scores: Any, embeddings: Any, state: StreamState) -> StreamDecisions:
        raise NotImplementedError

    def _decide(self, scores: Any, embeddings: Any, n: int, state: StreamState) -> StreamDecisions:
        return self._rule(scores, embeddings, state)

    def _weighted_kwargs(self) -> dict[str, Any]:
        return {**self._vu_kwargs(), "memory_size": self.memory_size, "power": self.power, "delta": self.delta}

    def params(self) -> dict[str, Any]:
        return {**super().params(), "memory_size": self.memory_size, "power": self.power, "delta": self.delta}


@register_stream_strategy("novelty_uncertainty", "novelty")
class NoveltyUncertaintyStream(_WeightedBase):
    """Uncertainty × novelty with respect to the recently labelled items, by variable uncertainty.

    See :func:`~energizer_hf.functional.stream.novelty_weighted_decisions`.
    """

    def _rule(self, scores: Any, embeddings: Any, state: StreamState) -> StreamDecisions:
        return novelty_weighted_decisions(scores, embeddings, state, **self._weighted_kwargs())


@register_stream_strategy("density_uncertainty", "density")
class DensityUncertaintyStream(_WeightedBase):
    """Uncertainty × local density among the recent arrivals, by variable uncertainty.

    See :func:`~energizer_hf.functional.stream.density_weighted_decisions`.
    """

    def _rule(self, scores: Any, embeddings: Any, state: StreamState) -> StreamDecisions:
        return density_weighted_decisions(scores, embeddings, state, **self._weighted_kwargs())


@register_stream_strategy("random")
class RandomStream(StreamStrategy):
    """Label each item with probability ``budget_rate`` under the same window: the baseline.

    >>> s = RandomStream(0.1, window=1000, seed=0)
    >>> mask = s.decide(num_items=1000)
    >>> int(mask.sum()) <= s.capacity
    True
    """

    requires_scores = False

    def _decide(self, scores: Any, embeddings: Any, n: int, state: StreamState) -> StreamDecisions:
        return random_decisions(n, state, rate=self.budget_rate, window=self.window)
