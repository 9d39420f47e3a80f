"""Query strategies: one family, one registry (``get_strategy_class("entropy")``)."""

from energizer_hf.query_strategies.base import (
    AccumulatorStrategy,
    ScoringStrategy,
    Strategy,
    logits_from_output,
)
from energizer_hf.query_strategies.bayesian import (
    BALDStrategy,
    MCDropoutStrategy,
    MCMeanStdStrategy,
    MCPredictiveEntropyStrategy,
    MCVariationRatiosStrategy,
)
from energizer_hf.query_strategies.random import RandomStrategy
from energizer_hf.query_strategies.registry import (
    available_strategies,
    get_strategy_class,
    register_strategy,
)
from energizer_hf.query_strategies.uncertainty import (
    EntropyStrategy,
    LeastConfidenceStrategy,
    MarginStrategy,
    RatioOfConfidenceStrategy,
    UncertaintyStrategy,
)

__all__ = [
    "AccumulatorStrategy",
    "BALDStrategy",
    "EntropyStrategy",
    "LeastConfidenceStrategy",
    "MCDropoutStrategy",
    "MCMeanStdStrategy",
    "MCPredictiveEntropyStrategy",
    "MCVariationRatiosStrategy",
    "MarginStrategy",
    "RandomStrategy",
    "RatioOfConfidenceStrategy",
    "ScoringStrategy",
    "Strategy",
    "UncertaintyStrategy",
    "available_strategies",
    "get_strategy_class",
    "logits_from_output",
    "register_strategy",
]
