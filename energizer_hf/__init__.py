"""energizer_hf: active learning for the Hugging Face ecosystem.

The headline classes of the HF-native path (``ActiveLearner``, ``RunConfig``, the strategy
and oracle bases, ``RoundStore``) are imported on first use (PEP 562), so that
``import energizer_hf`` does not load the learner, the Hub client code or Label Studio's.
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
)
from energizer_hf.loop import ActiveLoop, LoopSettings
from energizer_hf.oracles import CallableOracle, Oracle, SimulatedOracle
from energizer_hf.pool import ActivePool
from energizer_hf.results import RoundResults, plot_learning_curves
from energizer_hf.scoring import QueryContext, RunningTopK
from energizer_hf.trainer import ActiveDataModule, Trainer

__version__ = "0.1.0"

# name -> module that defines it, imported on first attribute access
_LAZY = {
    "AccumulatorStrategy": "energizer_hf.query_strategies",
    "ActiveLearner": "energizer_hf.learner",
    "LabelStudioOracle": "energizer_hf.oracles",
    "PoolScorer": "energizer_hf.scoring",
    "RoundStore": "energizer_hf.revisions",
    "RunConfig": "energizer_hf.learner",
    "Strategy": "energizer_hf.query_strategies",
    "StreamConfig": "energizer_hf.stream_config",
    "StreamLearner": "energizer_hf.stream_learner",
    "WidgetOracle": "energizer_hf.oracles",
    "available_strategies": "energizer_hf.query_strategies",
    "register_strategy": "energizer_hf.query_strategies",
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
    "WidgetOracle",
    "__version__",
    "available_strategies",
    "plot_learning_curves",
    "register_strategy",
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
