"""energizer_hf: active learning for the Hugging Face ecosystem."""

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

__all__ = [
    "ActiveDataModule",
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
    "LoopSettings",
    "Oracle",
    "PoolExhaustedWarning",
    "QueryContext",
    "RoundResults",
    "RunningTopK",
    "SimulatedOracle",
    "Trainer",
    "UnknownStrategyError",
    "__version__",
    "plot_learning_curves",
]
