"""Named exceptions raised on bad input. Each message says what was wrong and how to fix it."""

from __future__ import annotations

__all__ = [
    "BudgetError",
    "ColumnNotFoundError",
    "CompareError",
    "ConfigMismatchError",
    "CorruptIndexError",
    "DatasetMismatchError",
    "EmptyPoolError",
    "EnergizerError",
    "IndexMismatchError",
    "InvalidIdsError",
    "InvalidScoresError",
    "LabelMismatchError",
    "PeftConfigError",
    "PoolExhaustedWarning",
    "TrainerArgumentError",
    "UnknownStrategyError",
]


class EnergizerError(ValueError):
    """Base class of every energizer_hf input error (a ``ValueError``)."""


class EmptyPoolError(EnergizerError):
    """A dataset, split or pool view has no rows where rows are needed."""


class ColumnNotFoundError(EnergizerError, KeyError):
    """A column named in the configuration is not in the dataset."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class LabelMismatchError(EnergizerError):
    """The model's number of labels does not match the classes in the data."""


class InvalidIdsError(EnergizerError):
    """Pool ids that are out of range, duplicated or already labelled."""


class InvalidScoresError(EnergizerError):
    """A strategy produced NaN or infinite scores, or scores of the wrong shape."""


class UnknownStrategyError(EnergizerError, KeyError):
    """A strategy name that is not in the registry."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class BudgetError(EnergizerError):
    """Inconsistent query size, number of rounds or labelling budget."""


class DatasetMismatchError(EnergizerError):
    """Saved label state belongs to a different dataset than the one given."""


class ConfigMismatchError(EnergizerError):
    """A run directory belongs to a run with another configuration."""


class PoolExhaustedWarning(UserWarning):
    """The unlabelled pool ran out before the budget was spent."""


class IndexMismatchError(EnergizerError):
    """Stored embeddings or an ANN index were built for another dataset or encoder."""


class CorruptIndexError(EnergizerError):
    """A stored embedding matrix or ANN index file is truncated or damaged."""


class TrainerArgumentError(EnergizerError):
    """A ``pl.Trainer`` argument that does not exist, or that conflicts with the loop."""


class PeftConfigError(EnergizerError):
    """A PEFT model or config that cannot be fine-tuned as a sequence classifier."""


class CompareError(EnergizerError):
    """Run directories that cannot be compared (no rounds, no such metric or key)."""
