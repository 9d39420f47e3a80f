"""Bayesian strategies on Monte-Carlo dropout samples (Gal, Islam & Ghahramani, 2017)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from torch import Tensor

from energizer_hf.functional import bayesian as fb
from energizer_hf.model_outputs import check_mc_samples, mc_probabilities
from energizer_hf.query_strategies.base import AccumulatorStrategy
from energizer_hf.query_strategies.registry import register_strategy

__all__ = [
    "BALDStrategy",
    "MCDropoutStrategy",
    "MCExpectedEntropyStrategy",
    "MCMeanStdStrategy",
    "MCPredictiveEntropyStrategy",
    "MCVariationRatiosStrategy",
]


class MCDropoutStrategy(AccumulatorStrategy):
    """Score from ``num_mc_samples`` stochastic forward passes with dropout on.

    Args:
        model: the model to wrap; it must contain dropout layers.
        num_mc_samples: number of stochastic passes T (default 10).
    """

    needs_mc_samples: ClassVar[bool] = True
    mc_fn: ClassVar[Callable[[Tensor], Tensor]]

    def __init__(self, model: Any = None, num_mc_samples: int = 10) -> None:
        super().__init__(model)
        self.num_mc_samples = check_mc_samples(num_mc_samples)

    def mc_probabilities(self, batch: Any) -> Tensor:
        """``(B, T, C)`` class probabilities of T dropout passes over one batch."""
        return mc_probabilities(
            self, self.get_inputs_from_batch(batch), self.model, self.num_mc_samples,
            who=type(self).__name__,
        )

    def pool_step(self, batch: Any, batch_idx: int, *args: Any, **kwargs: Any) -> Tensor:
        return type(self).mc_fn(self.mc_probabilities(batch))


@register_strategy("bald")
class BALDStrategy(MCDropoutStrategy):
    """BALD: mutual information between predictions and weights (Houlsby et al., 2011).

    Needs MC-dropout samples. Time O(N·T·C) and T forward passes per pool row.
    """

    mc_fn = staticmethod(fb.bald)


@register_strategy("mc_entropy", "predictive_entropy")
class MCPredictiveEntropyStrategy(MCDropoutStrategy):
    """Entropy of the MC-averaged prediction (Gal et al., 2017). Needs MC samples."""

    mc_fn = staticmethod(fb.predictive_entropy)


@register_strategy("expected_entropy")
class MCExpectedEntropyStrategy(MCDropoutStrategy):
    """Mean entropy of the individual MC passes (the aleatoric term of BALD; Houlsby et
    al., 2011). Needs MC samples. Time O(N·T·C)."""

    mc_fn = staticmethod(fb.expected_entropy)


@register_strategy("variation_ratios")
class MCVariationRatiosStrategy(MCDropoutStrategy):
    """Variation ratios, ``1 - mode frequency`` over passes (Freeman, 1965). Needs MC samples."""

    mc_fn = staticmethod(fb.variation_ratios)


@register_strategy("mean_std")
class MCMeanStdStrategy(MCDropoutStrategy):
    """Mean over classes of the std of the passes (Kampffmeyer et al., 2016). Needs MC samples."""

    mc_fn = staticmethod(fb.mean_std)
