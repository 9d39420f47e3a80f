"""Named exceptions raised on bad input. Each message says what was wrong and how to fix it."""

from __future__ import annotations

__all__ = [
    "BudgetError",
    "BudgetRateError",
    "ColumnNotFoundError",
    "ConfigMismatchError",
    "CorruptIndexError",
    "CorruptLabelStateError",
    "DataFormatError",
    "DatasetMismatchError",
    "EmptyLabelSetError",
    "EmptyPoolError",
    "EmptySentenceError",
    "EnergizerError",
    "IndexMismatchError",
    "InvalidIdsError",
    "InvalidScoresError",
    "InvalidTagsError",
    "LabelMismatchError",
    "NotResumableError",
    "PoolExhaustedWarning",
    "StreamInputError",
    "StreamStateError",
    "TagLengthMismatchError",
    "UnknownLabelError",
    "UnknownStrategyError",
    "UnsentItemError",
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


class BudgetRateError(BudgetError):
    """A stream's labelling budget rate is outside (0, 1], or its window is too short to
    hold a single label (``floor(rate * window) < 1``)."""


class StreamInputError(EnergizerError):
    """Bad parameters or inputs of a stream strategy, stream source or drift helper."""


class StreamStateError(EnergizerError):
    """A saved stream state or decision log is damaged, inconsistent, or belongs to another
    stream (another source, strategy or configuration)."""


class NotResumableError(EnergizerError):
    """A stream source cannot restart at a saved position (a generator, a shuffle buffer)."""


class UnsentItemError(EnergizerError):
    """Labels arrived for stream items that were never sent for labelling."""


class InvalidTagsError(EnergizerError):
    """Token tags that are not in BIO/IOB2 form (``O``, ``B-TYPE``, ``I-TYPE``).

    ``sentence`` and ``position`` (0-based) locate the first offending tag when known.
    """

    def __init__(self, message: str, sentence: int | None = None, position: int | None = None):
        super().__init__(message)
        self.sentence = sentence
        self.position = position


class TagLengthMismatchError(EnergizerError):
    """A sentence has a different number of tags than tokens."""


class EmptySentenceError(EnergizerError):
    """A sentence with no tokens, where every row must have at least one."""


class UnknownLabelError(EnergizerError):
    """A label or tag name that is not in the label set, or a label id out of its range."""


class EmptyLabelSetError(EnergizerError):
    """A multi-label row with no label, where the label set does not permit "none"."""


class DataFormatError(EnergizerError):
    """A data file that cannot be parsed (malformed line, wrong encoding); the message
    names the file and line."""


class CorruptLabelStateError(EnergizerError):
    """A stored label state (tag or multi-hot store) is inconsistent or damaged."""
