"""Named exceptions raised on bad input. Each message says what was wrong and how to fix it."""

from __future__ import annotations

__all__ = [
    "AcceleratorUnavailableError",
    "BudgetError",
    "BudgetRateError",
    "ClassNotInPoolError",
    "ColumnNotFoundError",
    "CompareError",
    "ConfigError",
    "ConfigFileError",
    "ConfigMismatchError",
    "CorruptIndexError",
    "CorruptLabelStateError",
    "CorruptRecordsError",
    "DataEncodingError",
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
    "MissingLabelSetsError",
    "MissingTokenizerError",
    "MissingValuesError",
    "NotResumableError",
    "PathNotFoundError",
    "PeftConfigError",
    "PoolExhaustedWarning",
    "RunDirError",
    "RunIntegrityError",
    "RunLockedError",
    "RunStateMismatchError",
    "StrategyTaskError",
    "StreamInputError",
    "StreamStateError",
    "StreamTooShortError",
    "TagLengthMismatchError",
    "TokenBudgetError",
    "TrainerArgumentError",
    "UnknownLabelError",
    "UnknownStrategyError",
    "UnknownTaskError",
    "UnlabelledSplitError",
    "UnsentItemError",
    "UnsupportedModelError",
    "VocabularyMismatchError",
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


class StreamTooShortError(StreamInputError):
    """A stream ended before its first retrain (fewer labels came back than ``retrain_every``)."""


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


class MissingLabelSetsError(EnergizerError):
    """A multi-label strategy needs the label sets of the labelled rows and finds none."""


class UnknownTaskError(EnergizerError):
    """A task name that is not one of the known tasks, or a task that cannot be inferred
    from the data's features (the message lists the known tasks and how to set one)."""


class StrategyTaskError(EnergizerError):
    """A query strategy that cannot serve the run's task (the message lists those that can)."""


class TokenBudgetError(BudgetError):
    """A budget in tokens smaller than the next (shortest unlabelled) sentence."""


class DataFormatError(EnergizerError):
    """A data file that cannot be parsed (malformed line, wrong encoding); the message
    names the file and line."""


# ---------------------------------------------------------------------- configuration
class ConfigError(EnergizerError):
    """Configuration values of the wrong type, unknown fields, or settings the machine
    cannot honour. Lists every bad field at once (``errors``: one line per field)."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = list(errors or [])


class ConfigFileError(ConfigError):
    """A configuration file that is missing, not valid YAML, or not a mapping of fields."""


class AcceleratorUnavailableError(ConfigError):
    """An accelerator or a number of devices that this machine does not have."""


# ---------------------------------------------------------------------- data and model
class PathNotFoundError(EnergizerError, FileNotFoundError):
    """A data, model or tokenizer path that does not exist."""

    def __str__(self) -> str:  # OSError would format (errno, strerror)
        return str(self.args[0]) if self.args else ""


class MissingValuesError(EnergizerError):
    """Labels or texts that are missing (None, NaN or empty) where a value is needed."""


class ClassNotInPoolError(LabelMismatchError):
    """The test split has a class that never occurs in the pool: it could never be learned."""


class UnlabelledSplitError(LabelMismatchError):
    """A test (or validation) split without labels, e.g. a GLUE test split whose labels
    are all -1: use another split."""


class DataEncodingError(DataFormatError):
    """A text file that is not in the expected encoding (UTF-8 unless told otherwise)."""


class MissingTokenizerError(EnergizerError):
    """A model directory without tokenizer files, and no tokenizer given."""


class VocabularyMismatchError(EnergizerError):
    """A tokenizer that produces ids beyond the model's embedding matrix."""


class UnsupportedModelError(EnergizerError):
    """A model type without the head the task needs (e.g. no sequence classification)."""


# ---------------------------------------------------------------------- run directory
class RunDirError(EnergizerError):
    """A run directory that cannot be used: a file, not writable, or in use."""


class RunLockedError(RunDirError):
    """Another process holds the run directory's lock; ``holder`` describes it."""

    def __init__(self, message: str, holder: dict | None = None) -> None:
        super().__init__(message)
        self.holder = dict(holder or {})


class RunIntegrityError(RunDirError):
    """The files of a run directory disagree or are damaged; ``problems`` lists them."""

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class CorruptRecordsError(RunIntegrityError):
    """``rounds.jsonl`` has a damaged line that is not the last (or rounds out of order)."""


class CorruptLabelStateError(RunIntegrityError):
    """A stored label state (``label_state.npy``, a tag or multi-hot store) is truncated,
    overwritten, inconsistent or of the wrong format."""


class RunStateMismatchError(RunIntegrityError):
    """Records, label state, revisions or final model of a run disagree."""
class TrainerArgumentError(EnergizerError):
    """A ``pl.Trainer`` argument that does not exist, or that conflicts with the loop."""


class PeftConfigError(EnergizerError):
    """A PEFT model or config that cannot be fine-tuned as a sequence classifier."""


class CompareError(EnergizerError):
    """Run directories that cannot be compared (no rounds, no such metric or key)."""
