"""Query strategies: one family, one registry (``get_strategy_class("entropy")``)."""

from energizer_hf.query_strategies.alps import ALPSStrategy
from energizer_hf.query_strategies.base import (
    AccumulatorStrategy,
    ScoringStrategy,
    Strategy,
    logits_from_output,
)
from energizer_hf.query_strategies.bayesian import (
    BALDStrategy,
    MCDropoutStrategy,
    MCExpectedEntropyStrategy,
    MCMeanStdStrategy,
    MCPredictiveEntropyStrategy,
    MCVariationRatiosStrategy,
)
from energizer_hf.query_strategies.cold_start import (
    ColdStartKMeans,
    ColdStartProbCover,
    ColdStartRandom,
    ColdStartStrategy,
    ColdStartTypiClust,
    cold_start_select,
)
from energizer_hf.query_strategies.diversity import (
    CoresetStrategy,
    KMeansStrategy,
    PoolOutputsStrategy,
    ProbCoverStrategy,
    TypiClustStrategy,
)
from energizer_hf.query_strategies.hybrid import (
    BADGEStrategy,
    BatchBALDStrategy,
    CALStrategy,
    ClusterMarginStrategy,
    DALStrategy,
    EGLStrategy,
)
from energizer_hf.query_strategies.multilabel import (
    CardinalityRandomStrategy,
    MeanBinaryEntropyStrategy,
    MMCStrategy,
    MultiLabelLeastConfidenceStrategy,
    MultiLabelMaxMarginStrategy,
)
from energizer_hf.query_strategies.random import RandomStrategy
from energizer_hf.query_strategies.registry import (
    available_strategies,
    check_strategy_task,
    get_strategy_class,
    register_strategy,
    strategies_for_task,
)
from energizer_hf.query_strategies.sequence import (
    MNLPStrategy,
    TokenEntropyStrategy,
    TokenLeastConfidenceStrategy,
    TokenStrategy,
)
from energizer_hf.query_strategies.subpool import SEALS, AnchorAL, IndexedSubPool
from energizer_hf.query_strategies.uncertainty import (
    EntropyStrategy,
    LeastConfidenceStrategy,
    MarginStrategy,
    RatioOfConfidenceStrategy,
    UncertaintyStrategy,
)
from energizer_hf.query_strategies.wrappers import ClassBalanced, RandomSubset, configure_strategy

__all__ = [
    "ALPSStrategy",
    "AccumulatorStrategy",
    "AnchorAL",
    "BADGEStrategy",
    "BALDStrategy",
    "BatchBALDStrategy",
    "CALStrategy",
    "CardinalityRandomStrategy",
    "ClassBalanced",
    "ClusterMarginStrategy",
    "ColdStartKMeans",
    "ColdStartProbCover",
    "ColdStartRandom",
    "ColdStartStrategy",
    "ColdStartTypiClust",
    "CoresetStrategy",
    "DALStrategy",
    "EGLStrategy",
    "EntropyStrategy",
    "IndexedSubPool",
    "KMeansStrategy",
    "LeastConfidenceStrategy",
    "MCDropoutStrategy",
    "MCExpectedEntropyStrategy",
    "MCMeanStdStrategy",
    "MCPredictiveEntropyStrategy",
    "MCVariationRatiosStrategy",
    "MMCStrategy",
    "MNLPStrategy",
    "MarginStrategy",
    "MeanBinaryEntropyStrategy",
    "MultiLabelLeastConfidenceStrategy",
    "MultiLabelMaxMarginStrategy",
    "PoolOutputsStrategy",
    "ProbCoverStrategy",
    "RandomStrategy",
    "RandomSubset",
    "RatioOfConfidenceStrategy",
    "SEALS",
    "ScoringStrategy",
    "Strategy",
    "TokenEntropyStrategy",
    "TokenLeastConfidenceStrategy",
    "TokenStrategy",
    "TypiClustStrategy",
    "UncertaintyStrategy",
    "available_strategies",
    "check_strategy_task",
    "cold_start_select",
    "configure_strategy",
    "get_strategy_class",
    "logits_from_output",
    "register_strategy",
    "strategies_for_task",
]
