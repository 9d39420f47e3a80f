"""Uncertainty sampling: score each unlabelled example by the model's uncertainty."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from torch import Tensor

from energizer_hf import acquisition_functions as af
from energizer_hf.model_outputs import logits_from_output
from energizer_hf.query_strategies.base import AccumulatorStrategy
from energizer_hf.query_strategies.registry import register_strategy

__all__ = [
    "EntropyStrategy",
    "LeastConfidenceStrategy",
    "MarginStrategy",
    "RatioOfConfidenceStrategy",
    "UncertaintyStrategy",
]


class UncertaintyStrategy(AccumulatorStrategy):
    """Score = ``acquisition_fn(logits)`` for each example; subclasses set the function."""

    acquisition_fn: ClassVar[Callable[[Tensor], Tensor]]

    def pool_step(self, batch: Any, batch_idx: int, *args: Any, **kwargs: Any) -> Tensor:
        logits = logits_from_output(self(self.get_inputs_from_batch(batch)), self.model)
        return type(self).acquisition_fn(logits)


@register_strategy("entropy", "max_entropy")
class EntropyStrategy(UncertaintyStrategy):
    """Maximum entropy of the predictive distribution (Shannon, 1948; Settles, 2009).

    Needs: logits. Time O(N·C) for N pool rows and C classes; memory O(k).
    """

    acquisition_fn = staticmethod(af.entropy)


@register_strategy("least_confidence", "least_confident")
class LeastConfidenceStrategy(UncertaintyStrategy):
    """Least confidence, ``1 - max p`` (Lewis & Gale, 1994). Needs logits; O(N·C)."""

    acquisition_fn = staticmethod(af.least_confidence)


@register_strategy("margin", "breaking_ties", "smallest_margin")
class MarginStrategy(UncertaintyStrategy):
    """Breaking ties: the smallest gap between the two most likely classes.

    Scheffer et al. (2001); Luo et al. (2005). Needs logits; O(N·C).
    """

    acquisition_fn = staticmethod(af.margin)


@register_strategy("ratio_of_confidence", "ratio")
class RatioOfConfidenceStrategy(UncertaintyStrategy):
    """Ratio of the two most likely class probabilities, ``p2 / p1``. Needs logits; O(N·C)."""

    acquisition_fn = staticmethod(af.ratio_of_confidence)
