"""energizer_hf: active learning for the Hugging Face ecosystem.

Every public class (``ActiveLearner``, ``RunConfig``, the seed API's ``Trainer``, the pool,
the strategy and oracle bases, ``RoundStore``) is imported on first use (PEP 562), so that
``import energizer_hf`` (and ``energizer-hf --help``) loads neither torch nor Lightning,
the Hub client or Label Studio's; only the named errors are imported eagerly.
"""

from typing import Any

from energizer_hf.errors import (
    BudgetError,
    ColumnNotFoundError,
    ConfigMismatchError,
    DatasetMismatchError,
    EmptyPoolError,
    EnergizerError,
    InvalidIdsError,
    InvalidScoresError,
    LabelMismatchError,
    PoolExhaustedWarning,
    UnknownStrategyError,
    UnlabelledSplitError,
)

__version__ = "0.1.0"

# name -> module that defines it, imported on first attribute access
_LAZY = {
    "AccumulatorStrategy": "energizer_hf.query_strategies",
    "ActiveDataModule": "energizer_hf.trainer",
    "ActiveLearner": "energizer_hf.learner",
    "ActiveLoop": "energizer_hf.loop",
    "ActivePool": "energizer_hf.pool",
    "CallableOracle": "energizer_hf.oracles",
    "LabelStudioOracle": "energizer_hf.oracles",
    "LoopSettings": "energizer_hf.loop",
    "Oracle": "energizer_hf.oracles",
    "PoolScorer": "energizer_hf.scoring",
    "QueryContext": "energizer_hf.scoring",
    "RoundResults": "energizer_hf.results",
    "RoundStore": "energizer_hf.revisions",
    "RunConfig": "energizer_hf.learner",
    "RunningTopK": "energizer_hf.scoring",
    "SimulatedOracle": "energizer_hf.oracles",
    "Strategy": "energizer_hf.query_strategies",
    "StreamConfig": "energizer_hf.stream_config",
    "StreamLearner": "energizer_hf.stream_learner",
    "Trainer": "energizer_hf.trainer",
    "WidgetOracle": "energizer_hf.oracles",
    "available_strategies": "energizer_hf.query_strategies",
    "plot_learning_curves": "energizer_hf.results",
    "register_strategy": "energizer_hf.query_strategies",
    "score_pool": "energizer_hf.pool_outputs",
}

__all__ = [
    "AccumulatorStrategy",
    "ActiveDataModule",
    "ActiveLearner",
    "ActiveLoop",
    "ActivePool",
    "BudgetError",
    "CallableOracle",
    "ColumnNotFoundError",
    "ConfigMismatchError",
    "DatasetMismatchError",
    "EmptyPoolError",
    "EnergizerError",
    "InvalidIdsError",
    "InvalidScoresError",
    "LabelMismatchError",
    "LabelStudioOracle",
    "LoopSettings",
    "Oracle",
    "PoolExhaustedWarning",
    "PoolScorer",
    "QueryContext",
    "RoundResults",
    "RoundStore",
    "RunConfig",
    "RunningTopK",
    "SimulatedOracle",
    "Strategy",
    "StreamConfig",
    "StreamLearner",
    "Trainer",
    "UnknownStrategyError",
    "UnlabelledSplitError",
    "WidgetOracle",
    "__version__",
    "available_strategies",
    "plot_learning_curves",
    "register_strategy",
    "score_pool",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
