"""The HF-native entry point: a ``datasets`` dataset, a model name, a strategy name.

>>> from energizer_hf.learner import RunConfig
>>> RunConfig(dataset="ag_news", model="bert-base-uncased", strategy="margin").query_size
25
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from energizer_hf.errors import (
    ColumnNotFoundError,
    EmptyPoolError,
    EnergizerError,
    LabelMismatchError,
)
from energizer_hf.run import LEGACY_CONFIG_NAMES, RunDir, RunInfo, check_one_name_each

if TYPE_CHECKING:  # imported where used: `import energizer_hf.learner` (RunConfig, the CLI)
    # must not load torch or Lightning
    from energizer_hf.loop import ActiveLoop
    from energizer_hf.oracles.base import Oracle
    from energizer_hf.query_strategies.base import Strategy
    from energizer_hf.results import RoundResults
    from energizer_hf.revisions import HubRevisions, PushResult

__all__ = ["ActiveLearner", "RunConfig", "check_split_labelled", "encode_labels", "encode_with_names", "load_data"]


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()

log = logging.getLogger(__name__)

# The settings that only change how a run runs, not what it computes (or how far it goes):
# they may change when a run is resumed. Every other field defines the experiment and is
# compared with run.json on resume (see docs/run_directories.md).
EXECUTION_FIELDS = frozenset({
    "run_dir", "overwrite", "progress", "num_workers", "batch_size", "eval_batch_size",
    "pool_max_tokens", "scoring_precision", "precision", "accelerator", "devices",
    "lightning_strategy", "gradient_checkpointing", "save_final_model", "hub_repo_id",
    "hub_branch", "hub_private", "encoding", "card_license", "card_language",
})
# How far a run goes: more rounds or a larger budget extend a finished run.
EXTENT_FIELDS = frozenset({"max_rounds", "total_budget"})
_NON_SEMANTIC = EXECUTION_FIELDS | EXTENT_FIELDS
# The fit before the size-dependent schedule (energizer_hf <= 0.1.0): pass these to
# ActiveLearner / RunConfig to get it back.
OLD_FIT_DEFAULTS = {
    "min_steps": 0,
    "max_epochs": 3,
    "learning_rate": 5e-5,
    "batch_size": 16,
    "warmup_ratio": 0.1,
    "group_by_length": False,
    "min_validation_size": 1,
}


@dataclass
class RunConfig:
    """Everything that defines an active-learning run; mirrors the YAML of ``energizer-hf run``."""

    dataset: str | None = field(
        default=None,
        metadata={"help": "Hub dataset name, a local CSV/JSON/JSONL/parquet file or a save_to_disk directory."},
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Hub dataset configuration name."})
    data_files: dict[str, str] | None = field(
        default=None, metadata={"help": "Split name → local file, e.g. {train: a.csv, test: b.csv}."}
    )
    train_split: str = field(default="train", metadata={"help": "Split used as the pool."})
    test_split: str | None = field(
        default="test",
        metadata={"help": "Split used for testing (empty: none). A split without labels (all -1, GLUE-style) "
                  "is refused: use e.g. test_split: validation."},
    )
    validation_split: str | None = field(
        default="validation",
        metadata={"help": "The dataset's own split used for validation (model selection) when it has it and "
                  "validation_perc is 0; validation_perc > 0 wins (held-out labelled rows instead). "
                  "Empty: never. Not used when it is the test split."},
    )
    text_column: str = field(default="text", metadata={"help": "Column with the text."})
    text_pair_column: str | None = field(default=None, metadata={"help": "Second text column for pairs."})
    label_column: str = field(default="label", metadata={"help": "Column with the label (int, string or ClassLabel)."})
    label_names: list[str] | None = field(
        default=None,
        metadata={"help": "Class names in id order: they name integer labels (0/1 -> [neg, pos]), order string "
                  "labels, or give the classes when the pool has no label column."},
    )
    task: str | None = field(
        default=None,
        metadata={"help": "text_classification, multi_label or token_classification (ner); default: "
                  "inferred from the dataset's features (Sequence(ClassLabel) tags on a tokens column: "
                  "token_classification; a list/Sequence label on a text column: multi_label)."},
    )
    tokens_column: str = field(
        default="tokens", metadata={"help": "Token classification: the column of words (lists of strings)."}
    )
    label_separator: str = field(
        default=";", metadata={"help": "Multi-label: separator of label names joined in one string (a;b)."}
    )
    allow_empty_labels: bool = field(
        default=False, metadata={"help": "Multi-label: a row may have no label (the label set permits 'none')."}
    )
    threshold: float = field(default=0.5, metadata={"help": "Multi-label: decision threshold of each label's sigmoid."})
    tune_threshold: bool = field(
        default=False, metadata={"help": "Multi-label: tune the threshold on the validation rows at each validation pass."}
    )
    budget_unit: str = field(
        default="examples",
        metadata={"help": "What query_size, initial_size and total_budget count: examples, or tokens (words; "
                  "token classification)."},
    )
    model: str | None = field(default=None, metadata={"help": "Hub id or local directory of the model."})
    tokenizer: str | None = field(default=None, metadata={"help": "Tokenizer hub id or directory (default: model)."})
    max_length: int = field(default=128, metadata={"help": "Truncate texts to this many tokens."})
    strategy: str = field(default="entropy", metadata={"help": "Query strategy name (see energizer-hf strategies)."})
    strategy_args: dict[str, Any] | None = field(
        default=None,
        metadata={"help": "Arguments of the strategy, e.g. {base: badge, subpool_size: 10000} for random_subset."},
    )
    query_size: int = field(default=25, metadata={"help": "Examples labelled per round."})
    initial_size: int = field(default=25, metadata={"help": "Size of the initial labelled set."})
    initial_strategy: str = field(
        default="stratified",
        metadata={"help": "'stratified' (per class when the pool's labels are known, else random), 'random', or a "
                  "cold-start strategy (cold_start_kmeans, cold_start_typiclust, cold_start_probcover, "
                  "cold_start_random) on the pretrained model's embeddings."},
    )
    initial_ids: list[int] | None = field(
        default=None,
        metadata={"help": "Pool ids (row indices of the pool split) of the initial labelled set, e.g. the seed "
                  "set of another tool; replaces initial_size and initial_strategy."},
    )
    max_rounds: int | None = field(
        default=5, metadata={"help": "Number of query rounds (records = max_rounds + 1); alias: rounds."}
    )
    total_budget: int = field(default=-1, metadata={"help": "Stop at this many labels (-1: no budget)."})
    validation_perc: float = field(default=0.0, metadata={"help": "Fraction of new labels held out for validation."})
    early_stopping_patience: int = field(
        default=0, metadata={"help": "Validation passes without gain before stopping, when selecting on validation (0: off)."}
    )
    min_steps: int = field(
        default=200,
        metadata={"help": "At least this many optimizer steps per fit: epochs are added while the labelled set "
                  "is small (0: exactly max_epochs epochs)."},
    )
    max_epochs: int = field(default=10, metadata={"help": "Training epochs per round (more while min_steps needs them)."})
    min_validation_size: int | None = field(
        default=None,
        metadata={"help": "Held-out rows needed to select the best checkpoint (default max(20, 2 x classes)); "
                  "fewer are trained on."},
    )
    batch_size: int = field(default=16, metadata={"help": "Training batch size."})
    eval_batch_size: int = field(default=64, metadata={"help": "Batch size for test and pool scoring."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak AdamW learning rate."})
    head_learning_rate: float | None = field(
        default=None, metadata={"help": "Peak learning rate of the classification head (default: learning_rate)."}
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Fraction of steps of linear warm-up."})
    group_by_length: bool = field(
        default=True, metadata={"help": "Training batches of similar lengths (less padding), in random order."}
    )
    freeze_embeddings: bool = field(default=False, metadata={"help": "Do not train the word-embedding matrix."})
    class_weights: Any = field(
        default=None,
        metadata={"help": "Class-weighted loss: 'balanced' (inverse frequency in each fit's labelled rows) "
                  "or a list of per-class weights."},
    )
    peft: dict[str, Any] | None = field(
        default=None,
        metadata={"help": "A PEFT adapter, e.g. {peft_type: LORA, r: 8, lora_alpha: 16} (task type SEQ_CLS)."},
    )
    gradient_checkpointing: bool = field(default=False, metadata={"help": "Recompute activations in backward (less memory)."})
    trainer_kwargs: dict[str, Any] | None = field(
        default=None,
        metadata={"help": "Any pytorch_lightning.Trainer argument for every fit, e.g. {accumulate_grad_batches: 2, "
                  "gradient_clip_val: 1.0, logger: csv}."},
    )
    reset_weights: bool = field(default=True, metadata={"help": "Reset to the initial weights each round."})
    seed: int = field(default=0, metadata={"help": "Seed of everything."})
    accelerator: str = field(default="auto", metadata={"help": "Lightning accelerator (cpu, gpu, auto)."})
    precision: str = field(default="32-true", metadata={"help": "Lightning precision, e.g. bf16-mixed."})
    num_workers: int = field(default=0, metadata={"help": "DataLoader workers."})
    run_dir: str = field(default="runs/energizer", metadata={"help": "Run directory (resumed if it exists)."})
    progress: bool | None = field(
        default=None,
        metadata={"help": "Show progress bars (default: only when the output is a terminal, not in logs)."},
    )
    stopping_criteria: list[Any] | None = field(
        default=None,
        metadata={"help": "Stopping criteria: names or {name: ..., params}, e.g. [{name: kappa_average, "
                  "threshold: 0.99}]; alias: stopping."},
    )
    minority_class: Any = field(
        default=None,
        metadata={"help": "Class (id or name) whose test F1 and selected share are recorded; default: the rarest."},
    )
    devices: int = field(default=1, metadata={"help": "Lightning devices (processes) for fitting."})
    lightning_strategy: str = field(
        default="auto", metadata={"help": "Lightning strategy for fitting, e.g. ddp (2+ devices)."}
    )
    pool_max_tokens: int | None = field(
        default=None, metadata={"help": "Cap pool-scoring batches at this many padded tokens (rows x length)."}
    )
    scoring_precision: str = field(
        default="auto", metadata={"help": "Pool scoring precision: auto (bf16/fp16 autocast on GPU), bf16, fp16, fp32."}
    )
    card_license: str | None = field(
        default=None,
        metadata={"help": "License of the cards (Hub identifier, e.g. apache-2.0, cc-by-4.0); default: the source "
                  "dataset's license when it declares one, else 'other' with a note."},
    )
    card_language: list[str] | None = field(
        default=None, metadata={"help": "Language codes of the data for the cards, e.g. [en]."}
    )
    hub_repo_id: str | None = field(
        default=None,
        metadata={"help": "Hub dataset repo (user/name) that gets each round as a commit + tag round-NNN "
                  "(token: HF_TOKEN or `hf auth login`). Local revisions are always kept."},
    )
    hub_branch: str = field(default="energizer-run", metadata={"help": "Branch of hub_repo_id for the round commits."})
    hub_private: bool = field(default=True, metadata={"help": "Create hub_repo_id as a private repository."})
    on_missing: Literal["error", "drop"] = field(
        default="error",
        metadata={"help": "Rows with a missing (None, NaN, empty) text or label: 'error' refuses the data, "
                  "'drop' drops them and says how many."},
    )
    encoding: str = field(default="utf-8", metadata={"help": "Text encoding of local CSV/TSV/JSON data files."})
    save_final_model: bool = field(
        default=True, metadata={"help": "Save the model trained on the final labelled set in run_dir/final_model."}
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "Delete what run_dir holds and start the run anew (default: resume it)."},
    )
    resume_from: str | None = field(
        default=None,
        metadata={"help": "Start from a stored round: a run dir, its revisions/ or a round dir, or a Hub "
                  "dataset repo id (with resume_revision). Used when run_dir has no rounds yet."},
    )
    resume_revision: str | None = field(
        default=None,
        metadata={"help": "Round of resume_from: round-NNN, a round number, a branch or a commit (default: latest)."},
    )
    # ---- self-supervised help from the pool (energizer_hf.selfsup; docs/self_supervised.md)
    tapt_steps: int = field(
        default=0,
        metadata={"help": "Task-adaptive pre-training: masked-LM steps on the pool's texts before round 0 "
                  "(0: off). The adapted encoder is cached by fingerprint and reused by later runs."},
    )
    tapt_args: dict[str, Any] | None = field(
        default=None,
        metadata={"help": "TAPT settings: mlm_probability, learning_rate, batch_size, warmup_ratio, weight_decay, "
                  "head_warmup_steps, head_learning_rate, seed, cache_dir, path."},
    )
    self_training: dict[str, Any] | bool | None = field(
        default=None,
        metadata={"help": "Self-training with pseudo-labels: true for the defaults, or "
                  "{threshold: null, top_k_per_class: 25, mc_dropout: 0} (null: off)."},
    )

    # the names these settings had before (every face now uses one name per concept)
    rounds: InitVar[int | None] = _UNSET
    stopping: InitVar[list[Any] | None] = _UNSET

    def __post_init__(self, rounds: Any = _UNSET, stopping: Any = _UNSET) -> None:
        from energizer_hf.config_types import coerce_dataclass, single_split_files

        if rounds is not _UNSET:
            self.max_rounds = rounds
        if stopping is not _UNSET:
            self.stopping_criteria = stopping
        # every value is checked and coerced once, however it came (YAML, the command line,
        # Python): numbers from numeric strings, booleans from the usual spellings
        coerce_dataclass(self, source="RunConfig", hooks={"data_files": single_split_files})
        if self.test_split == "":
            self.test_split = None
        for name in ("query_size", "max_epochs", "batch_size", "eval_batch_size", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                from energizer_hf.errors import BudgetError

                raise BudgetError(f"{name} must be a positive integer, got {value!r}.")
        if self.initial_size < 0:
            from energizer_hf.errors import BudgetError

            raise BudgetError(f"initial_size must be >= 0, got {self.initial_size}.")
        if self.initial_ids is not None:
            from energizer_hf.loop import check_initial_ids

            self.initial_ids = check_initial_ids(self.initial_ids)
        if self.validation_split == "":
            self.validation_split = None
        self.fit_schedule()  # validates min_steps and min_validation_size
        if self.class_weights is not None and not (
            self.class_weights == "balanced" or isinstance(self.class_weights, (list, tuple))
        ):
            raise EnergizerError(
                f"class_weights must be 'balanced' or a list of per-class weights, got {self.class_weights!r}."
            )
        if self.trainer_kwargs is not None and not isinstance(self.trainer_kwargs, dict):
            raise EnergizerError(
                f"trainer_kwargs must be a mapping of pytorch_lightning.Trainer arguments, got "
                f"{type(self.trainer_kwargs).__name__}."
            )

        from energizer_hf.selfsup import validate_settings  # self-supervised options

        validate_settings(self.tapt_steps, self.tapt_args, self.self_training)

    def fit_schedule(self) -> Any:
        """The :class:`~energizer_hf.schedule.FitSchedule` of these settings."""
        from energizer_hf.schedule import FitSchedule

        return FitSchedule(
            min_steps=self.min_steps, max_epochs=self.max_epochs, min_validation_size=self.min_validation_size
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (YAML/JSON); Lightning objects in ``trainer_kwargs`` (loggers and
        callbacks given as objects, not as specs) are left out."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "trainer_kwargs" and value is not None:
                value = {k: v for k, v in value.items() if _is_plain(v)}
            out[f.name] = copy.deepcopy(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | None = None) -> RunConfig:
        """A configuration from a mapping (the old names ``rounds`` and ``stopping`` are
        read as ``max_rounds`` and ``stopping_criteria``).

        Raises:
            ConfigError: unknown fields (with the closest name) and values of the wrong
                type, every one named in one message.
        """
        from energizer_hf.config_types import coerce_fields, single_split_files

        check_one_name_each(data)
        data = {LEGACY_CONFIG_NAMES.get(k, k): v for k, v in data.items()}
        values = coerce_fields(
            cls, data, source=source or "RunConfig", hooks={"data_files": single_split_files}
        )
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> RunConfig:
        """A configuration from a YAML file of ``field: value`` lines.

        Raises:
            ConfigFileError: the file is missing, not UTF-8 or not valid YAML (line and
                column named), or holds a key twice.
            ConfigError: unknown fields or values of the wrong type.
        """
        from energizer_hf.config_types import load_yaml_mapping

        return cls.from_dict(load_yaml_mapping(path), source=str(path))

    def experiment(self) -> dict[str, Any]:
        """The fields that define the experiment (compared with ``run.json`` on resume);
        the others (:data:`EXECUTION_FIELDS`, ``max_rounds``, ``total_budget``) may change."""
        return {k: v for k, v in self.to_dict().items() if k not in _NON_SEMANTIC}

    def to_yaml(self, path: str | os.PathLike) -> None:
        import yaml

        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


# ---------------------------------------------------------------------- data loading
_CONLL_EXTS = {".conll", ".conllu", ".bio", ".iob", ".iob2"}
_FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def _file_kwargs(ext: str, encoding: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"delimiter": "\t"} if ext == ".tsv" else {}
    if ext in (".csv", ".tsv", ".json", ".jsonl"):
        kwargs["encoding"] = encoding
    return kwargs


def _check_local_file(path: str | os.PathLike, encoding: str) -> None:
    """A local data file must exist and (text formats) be readable in ``encoding``; a URL
    (``https://``, ``hf://``, ``s3://``...) is left to ``datasets``."""
    from energizer_hf.checks import check_path_exists, check_text_encoding

    if "://" in os.fspath(path):
        return
    check_path_exists(path, "data file")
    if Path(path).suffix.lower() in (".csv", ".tsv", ".json", ".jsonl"):
        check_text_encoding(path, encoding)


def load_data(
    dataset: str | None,
    dataset_config: str | None = None,
    data_files: dict[str, str] | None = None,
    *,
    encoding: str = "utf-8",
) -> Any:
    """Load a ``DatasetDict`` from a hub name, a local file, a split→file mapping or a
    ``save_to_disk`` directory.

    Raises:
        PathNotFoundError: a local file that does not exist (not a malformed Hub id).
        DataEncodingError: a text file with bytes that are not ``encoding`` (line and
            column named).
    """
    import datasets

    if data_files and {Path(f).suffix.lower() for f in data_files.values()} <= _CONLL_EXTS:
        from energizer_hf.formats.conll import load_conll

        return load_conll(dict(data_files))
    if data_files:
        exts = {Path(f).suffix.lower() for f in data_files.values()}
        if len(exts) != 1 or next(iter(exts)) not in _FILE_BUILDERS:
            raise EnergizerError(
                f"data_files must all be CSV, TSV, JSON(L) or parquet files of one kind, got {sorted(exts)}."
            )
        for f in data_files.values():
            _check_local_file(f, encoding)
        ext = next(iter(exts))
        return datasets.load_dataset(
            _FILE_BUILDERS[ext], data_files=dict(data_files), **_file_kwargs(ext, encoding)
        )
    if not dataset:
        raise EnergizerError("No dataset given: set `dataset` (a hub name or a local path) or `data_files`.")
    path = Path(dataset)
    if path.is_dir() and (
        (path / "dataset_dict.json").exists() or (path / "state.json").exists() or (path / "dataset_info.json").exists()
    ):
        return datasets.load_from_disk(str(path))
    if path.is_file() and path.suffix.lower() in _CONLL_EXTS:
        from energizer_hf.formats.conll import load_conll

        return load_conll({"train": str(path)})
    if path.is_file():
        ext = path.suffix.lower()
        if ext not in _FILE_BUILDERS:
            raise EnergizerError(
                f"Cannot read '{path}': use a .csv, .tsv, .json, .jsonl or .parquet file, or a save_to_disk directory."
            )
        _check_local_file(path, encoding)
        return datasets.load_dataset(
            _FILE_BUILDERS[ext], data_files={"train": str(path)}, **_file_kwargs(ext, encoding)
        )
    from energizer_hf.checks import _looks_like_path, check_path_exists

    if _looks_like_path(dataset):  # a local path with a typo, not a Hub id
        check_path_exists(dataset, "dataset")
    try:
        return datasets.load_dataset(dataset, dataset_config)
    except Exception as err:
        from energizer_hf.scrub import scrub

        text = f"{err}"
        if scrub(text) != text or scrub(dataset) != dataset:  # a token pasted into the name/URL
            raise EnergizerError(
                f"Could not load the dataset {scrub(dataset)!r}: {type(err).__name__}: {scrub(text)} "
                "(credentials masked: give tokens through HF_TOKEN or `hf auth login`, not in the name)."
            ) from None
        raise


def _semantic_defaults() -> dict[str, Any]:
    """Each RunConfig field's default and ``task``'s (for run directories made before a
    setting existed: see ``ActiveLoop(config_defaults=)``)."""
    out = {
        f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())  # type: ignore[misc]
        for f in dataclasses.fields(RunConfig)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING  # type: ignore[misc]
    }
    out["task"] = "text_classification"
    return out


def encode_labels(
    pool_labels: Any, test_labels: Any = None, feature: Any = None, names: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Map raw labels (ints, strings or a ``ClassLabel``) to ids ``0..C-1`` with names.

    ``names`` (the ``label_names`` setting) names the classes: integer labels are class ids
    into it (``names=["neg", "pos"]`` on 0/1 labels), string labels must be among them (ids
    follow their order). Without ``names``, a ``ClassLabel`` gives its names, ids
    ``0..C-1`` are named ``"0"...``, and other values are sorted.

    Returns ``(names, pool_ids, test_ids)``.

    Raises:
        ClassNotInPoolError: a test class that never occurs in the pool (a
            :class:`~energizer_hf.errors.LabelMismatchError`).
        LabelMismatchError: missing labels, ``names`` that differ from a ``ClassLabel``'s,
            or ``names`` whose length does not match the integer ids.

    >>> encode_labels([0, 1, 1], names=["neg", "pos"])[0]
    ['neg', 'pos']
    """
    names_from_feature = getattr(feature, "names", None)
    pool = np.asarray(pool_labels)
    test = None if test_labels is None else np.asarray(test_labels)
    if test is not None and not (pool.dtype == object and any(v is None for v in pool.tolist())):
        from energizer_hf.checks import check_test_classes

        check_test_classes(pool, test, names=names_from_feature)
    for arr, where in ((pool, "pool"), (test, "test split")):
        if arr is not None and arr.dtype == object and any(v is None for v in arr.tolist()):
            raise LabelMismatchError(
                f"The {where} has rows without a label; drop them or fill the label column."
            )
    if names is not None:
        return _encode_named(pool, test, names_from_feature, [str(n) for n in names])
    if names_from_feature is not None:
        names = list(names_from_feature)
        return names, pool.astype(np.int64), None if test is None else test.astype(np.int64)
    values = pool if test is None else np.concatenate([pool, test])
    classes = np.unique(values)
    if np.issubdtype(classes.dtype, np.integer) and classes.min() >= 0 and np.array_equal(
        classes, np.arange(classes.max() + 1)
    ):
        names = [str(c) for c in classes.tolist()]
        return names, pool.astype(np.int64), None if test is None else test.astype(np.int64)
    pool_classes = np.unique(pool)
    if test is not None:
        unseen = np.setdiff1d(np.unique(test), pool_classes)
        if unseen.size:
            raise LabelMismatchError(
                f"The test split has labels that never occur in the pool: {unseen[:10].tolist()}."
            )
    names = [str(c) for c in pool_classes.tolist()]
    pool_ids = np.searchsorted(pool_classes, pool).astype(np.int64)
    test_ids = None if test is None else np.searchsorted(pool_classes, test).astype(np.int64)
    return names, pool_ids, test_ids


def _encode_named(
    pool: np.ndarray, test: np.ndarray | None, feature_names: Sequence[str] | None, names: list[str]
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """:func:`encode_labels` with the class names given (``label_names``)."""
    if len(set(names)) != len(names):
        raise LabelMismatchError(f"label_names has duplicated names: {names}. Give each class once.")
    if feature_names is not None:
        if list(feature_names) != names:
            raise LabelMismatchError(
                f"label_names {names} do not match the dataset's ClassLabel names {list(feature_names)}: "
                "leave label_names out (the ClassLabel names are used) or give the same names in the same order."
            )
        return names, pool.astype(np.int64), None if test is None else test.astype(np.int64)
    values = pool if test is None else np.concatenate([pool, test])
    if values.dtype.kind in "iu" or (values.dtype.kind == "f" and np.all(np.mod(values, 1) == 0)):
        top = int(values.max()) if values.size else -1
        if values.size and int(values.min()) < 0:
            raise LabelMismatchError(f"Label ids must be >= 0 to be named by label_names; got {int(values.min())}.")
        if top + 1 != len(names):
            raise LabelMismatchError(
                f"label_names has {len(names)} names ({', '.join(names[:10])}) but the labels are class ids "
                f"0..{top} ({top + 1} classes): give one name per class id, in id order."
            )
        return names, pool.astype(np.int64), None if test is None else test.astype(np.int64)
    pool_ids = encode_with_names(pool, names)
    test_ids = None if test is None else encode_with_names(test, names)
    return names, pool_ids, test_ids


def check_split_labelled(values: Any, split: str, feature: Any = None) -> None:
    """Refuse a split whose labels are all ``-1`` (a GLUE-style test split: the labels are
    withheld), or with some ``-1`` rows in a ``ClassLabel`` column.

    Raises:
        UnlabelledSplitError: saying which split to use instead.

    >>> check_split_labelled(np.array([0, 1]), "test")
    """
    from energizer_hf.errors import UnlabelledSplitError

    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        return
    missing = arr < 0
    if missing.all():
        raise UnlabelledSplitError(
            f"The '{split}' split has no labels (every label is {int(arr.flat[0])}, as in GLUE-style test "
            f"splits whose labels are withheld): it cannot measure anything. Test on a split with labels "
            f"(test_split: validation) or on none (test_split: '')."
        )
    if missing.any() and getattr(feature, "names", None) is not None:
        raise UnlabelledSplitError(
            f"{int(missing.sum())} of {arr.size} rows of the '{split}' split have no label (-1): drop them "
            f"(dataset['{split}'].filter(lambda r: r['label'] >= 0)) or use another split."
        )


def encode_with_names(values: Any, names: list[str], feature: Any = None) -> np.ndarray:
    """Label ids of ``values`` for the given class ``names`` (strings by name, ints or a
    ``ClassLabel`` as ids).

    Raises:
        LabelMismatchError: a name that is not a class, an id out of range, or a
            ``ClassLabel`` with other names.
    """
    feature_names = getattr(feature, "names", None)
    if feature_names is not None and list(feature_names) != list(names):
        raise LabelMismatchError(
            f"The split's ClassLabel names {list(feature_names)} differ from the classes {list(names)}."
        )
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        bad = arr[(arr < 0) | (arr >= len(names))]
        if bad.size:
            raise LabelMismatchError(f"Label ids {sorted(set(bad.tolist()))[:10]} are not in 0..{len(names) - 1}.")
        return arr.astype(np.int64)
    index = {str(n): i for i, n in enumerate(names)}
    unknown = sorted({str(v) for v in arr.tolist()} - set(index))
    if unknown:
        raise LabelMismatchError(f"Labels {unknown[:10]} are not among the classes {list(names)}.")
    return np.fromiter((index[str(v)] for v in arr.tolist()), dtype=np.int64, count=arr.size)


def _tokenizer_identity(tokenizer: Any) -> str:
    h = hashlib.sha256()
    h.update(type(tokenizer).__name__.encode())
    h.update(str(getattr(tokenizer, "name_or_path", "")).encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # calling a tokenizer stores its truncation/padding settings in the backend: they
        # are not part of what it is, so a reused tokenizer object keeps its identity
        state = json.loads(backend.to_str())
        state.pop("truncation", None)
        state.pop("padding", None)
        h.update(json.dumps(state, sort_keys=True).encode())
    else:
        h.update(str(getattr(tokenizer, "vocab_size", "")).encode())
    return h.hexdigest()[:16]


class ActiveLearner:
    """Run active learning on a ``datasets`` dataset with a ``transformers`` model.

    Everything in :class:`RunConfig` can be given as keyword overrides; objects (a loaded
    dataset, a model instance or config, a tokenizer, an oracle, ``evaluate`` metrics)
    are passed directly. Any other ``pytorch_lightning.Trainer`` argument is a keyword
    argument too (``logger=CSVLogger(...)``, ``accumulate_grad_batches=2``,
    ``gradient_clip_val=1.0``, ``deterministic=True``, ...): it goes to
    ``trainer_kwargs`` and every round's fit. ``peft`` takes a ``peft`` config object
    (``LoraConfig(...)``) as well as a mapping; ``model`` takes a ``peft.PeftModel``.

    Args:
        config: a :class:`RunConfig` (default: all defaults).
        dataset / model / tokenizer / strategy: objects or names (see :class:`RunConfig`).
        oracle: who labels (default: the dataset's labels, a simulation).
        metrics: ``evaluate`` modules computed on the test set.
        callbacks: Lightning callbacks (given to every fit's Trainer) and loop callbacks
            (objects with ``on_round_start(loop, round)`` / ``on_round_end(loop, record)``).
        **overrides: RunConfig fields and ``pl.Trainer`` arguments.

    Raises:
        TrainerArgumentError: a keyword that is neither (with the closest name), or a
            Trainer argument the loop sets itself (``max_steps``, ...).

    Example:
        >>> learner = ActiveLearner(dataset=my_dataset_dict, model="prajjwal1/bert-tiny",
        ...                         strategy="entropy", query_size=25, rounds=5)  # doctest: +SKIP
        >>> results = learner.run()  # doctest: +SKIP
        >>> results.to_pandas()  # doctest: +SKIP
    """

    def __init__(
        self,
        config: RunConfig | None = None,
        *,
        dataset: Any = None,
        model: Any = None,
        tokenizer: Any = None,
        strategy: str | type[Strategy] | None = None,
        oracle: Oracle | None = None,
        metrics: list[Any] | None = None,
        callbacks: list[Any] | None = None,
        **overrides: Any,
    ) -> None:
        from energizer_hf.controls import closest, split_callbacks, trainer_argument_names
        from energizer_hf.query_strategies.base import Strategy
        from energizer_hf.query_strategies.registry import get_strategy_class

        config = config or RunConfig()
        check_one_name_each(overrides)
        fields = {f.name for f in dataclasses.fields(RunConfig)} | set(LEGACY_CONFIG_NAMES)
        trainer_names = set(trainer_argument_names())
        extra_trainer: dict[str, Any] = {}
        for key in list(overrides):
            if key in fields:
                continue
            if key in trainer_names:
                extra_trainer[key] = overrides.pop(key)
                continue
            from energizer_hf.errors import TrainerArgumentError

            hint = closest(key, sorted(fields | trainer_names))
            raise TrainerArgumentError(
                f"ActiveLearner got an unknown argument {key!r}: it is neither a RunConfig field nor a "
                "pytorch_lightning.Trainer argument" + (f"; did you mean {hint!r}?" if hint else ".")
            )
        self._peft = None
        peft_value = overrides.get("peft")
        if peft_value is not None and not isinstance(peft_value, dict):
            self._peft = overrides.pop("peft")  # a peft.PeftConfig object
        if extra_trainer:
            merged = dict(overrides.get("trainer_kwargs") or config.trainer_kwargs or {})
            twice = sorted(set(merged) & set(extra_trainer))
            if twice:
                from energizer_hf.errors import TrainerArgumentError

                raise TrainerArgumentError(
                    f"{', '.join(twice)} given twice: as keyword argument and in trainer_kwargs. Give it once."
                )
            overrides["trainer_kwargs"] = {**merged, **extra_trainer}
        lightning_callbacks, callbacks = split_callbacks(callbacks)
        self.lightning_callbacks = lightning_callbacks
        if isinstance(dataset, (str, os.PathLike)):
            overrides["dataset"] = str(dataset)
            dataset = None
        if isinstance(model, (str, os.PathLike)):
            overrides["model"] = str(model)
            model = None
        if isinstance(tokenizer, (str, os.PathLike)):
            overrides["tokenizer"] = str(tokenizer)
            tokenizer = None
        strategy_class = None
        if isinstance(strategy, str):
            overrides["strategy"] = strategy
        elif isinstance(strategy, type) and issubclass(strategy, Strategy):
            strategy_class = strategy
            overrides["strategy"] = getattr(strategy, "name", strategy.__name__)
        elif strategy is not None:
            raise EnergizerError(
                f"strategy must be a registered name or a Strategy subclass, got {type(strategy).__name__}."
            )
        self.config = dataclasses.replace(config, **overrides) if overrides else config
        if strategy_class is None and self.config.strategy_args:
            from energizer_hf.query_strategies.wrappers import configure_strategy

            strategy_class = configure_strategy(self.config.strategy, **dict(self.config.strategy_args))
        self.strategy_class = strategy_class or get_strategy_class(self.config.strategy)
        self._dataset = dataset
        self._model = model
        self._tokenizer = tokenizer
        self.oracle = oracle
        self.metrics = metrics
        self.callbacks = callbacks
        self.loop: ActiveLoop | None = None
        self._checked: tuple[Any, tuple[Any, Any, Any]] | None = None  # _preflight()

    # ------------------------------------------------------------------ set-up
    def _preflight(self) -> tuple[Any, tuple[Any, Any, Any]]:
        """The checks before any work (the machine can run these settings, the model and
        tokenizer exist, the data loads and is valid), done once: ``(model_dir, splits)``.
        ``run`` calls it before ``overwrite`` clears the run directory, so a mistake never
        costs the previous run."""
        if self._checked is not None:
            return self._checked
        from energizer_hf.checks import check_model_source, check_tokenizer_files
        from energizer_hf.config_types import check_runtime

        cfg = self.config
        user_kwargs = cfg.trainer_kwargs or {}
        check_runtime(
            user_kwargs.get("precision", cfg.precision),
            user_kwargs.get("accelerator", cfg.accelerator),
            user_kwargs.get("devices", cfg.devices),
        )
        model_dir = check_model_source(cfg.model) if self._model is None else None
        if cfg.tokenizer:
            check_model_source(cfg.tokenizer, "tokenizer")
        elif self._tokenizer is None and model_dir is not None:
            check_tokenizer_files(model_dir)
        self._checked = (model_dir, self._splits())
        return self._checked

    def _splits(self) -> tuple[Any, Any, Any]:
        """``(pool, test, validation)`` splits (test and validation may be ``None``)."""
        import datasets

        cfg = self.config
        data = self._dataset
        if data is None:
            data = load_data(cfg.dataset, cfg.dataset_config, cfg.data_files, encoding=cfg.encoding)
        val_ds = None
        if isinstance(data, datasets.Dataset):
            pool_ds, test_ds = data, None
        elif isinstance(data, (datasets.DatasetDict, dict)):
            if cfg.train_split not in data:
                raise EnergizerError(
                    f"The dataset has no split '{cfg.train_split}' (splits: {', '.join(data)}): set train_split."
                )
            pool_ds = data[cfg.train_split]
            test_ds = data.get(cfg.test_split) if cfg.test_split else None
            if cfg.test_split and test_ds is None:
                log.warning(
                    "No '%s' split (splits: %s): rounds are not tested.", cfg.test_split, ", ".join(data)
                )
            val_ds = self._validation_split(data)
        else:
            raise EnergizerError(
                f"dataset must be a datasets.Dataset or DatasetDict, got {type(data).__name__}."
            )
        if len(pool_ds) == 0:
            raise EmptyPoolError(f"The pool split '{cfg.train_split}' has no rows.")
        if test_ds is not None and len(test_ds) == 0:
            raise EmptyPoolError(
                f"The test split '{cfg.test_split}' has no rows: give a non-empty test split or set test_split to ''."
            )
        needed = [cfg.text_column] + ([cfg.text_pair_column] if cfg.text_pair_column else [])
        from energizer_hf.errors import UnknownTaskError

        try:
            task_name = self._resolve_task(pool_ds).name
        except UnknownTaskError:
            if cfg.text_column in pool_ds.column_names or cfg.tokens_column in pool_ds.column_names:
                raise
            task_name = "text_classification"  # no text at all: the column check below names it
        ner = task_name == "token_classification"
        if ner:
            needed = [cfg.tokens_column]
        if task_name != "text_classification" and val_ds is not None:
            log.info("The '%s' split is not used for validation in %s runs (validation_perc is).",
                     cfg.validation_split, task_name)
            val_ds = None
        for name, ds in (("pool", pool_ds), ("test", test_ds), ("validation", val_ds)):
            if ds is None:
                continue
            cols = ds.column_names
            label = self._tags_column(ds) if ner else cfg.label_column
            want = needed + ([label] if (name != "pool" or self.oracle is None) else [])
            missing = [c for c in want if c not in cols]
            if missing:
                raise ColumnNotFoundError(
                    f"The {name} split has no column {', '.join(repr(m) for m in missing)}; its columns "
                    f"are: {', '.join(cols)}. Set text_column / label_column accordingly."
                )
        if task_name != "text_classification":  # the task's readers check list labels and tags
            return pool_ds, test_ds, val_ds
        # unlabelled evaluation splits (a GLUE-style test split with -1) first, with a hint
        for split, ds in ((cfg.test_split, test_ds), (cfg.validation_split, val_ds)):
            if ds is not None:
                check_split_labelled(ds[cfg.label_column][:], split, ds.features.get(cfg.label_column))
        pool_ds = self._checked_split(pool_ds, f"the pool split '{cfg.train_split}'", labels=self.oracle is None)
        if test_ds is not None:
            test_ds = self._checked_split(test_ds, f"the test split '{cfg.test_split}'", labels=True)
        if val_ds is not None:
            val_ds = self._checked_split(val_ds, f"the validation split '{cfg.validation_split}'", labels=True)
        return pool_ds, test_ds, val_ds

    def _validation_split(self, data: Any) -> Any:
        """The dataset's own validation split, when it is used (see ``validation_split``)."""
        cfg = self.config
        name = cfg.validation_split
        if not name or name not in data or name == cfg.train_split:
            return None
        if name == cfg.test_split:
            log.info("The '%s' split is the test split: it is not used for validation too.", name)
            return None
        if cfg.validation_perc > 0:
            log.info(
                "validation_perc=%s holds out labelled rows for validation: the dataset's '%s' split is not "
                "used (set validation_perc: 0 to validate on it).", cfg.validation_perc, name,
            )
            return None
        if len(data[name]) == 0:
            return None
        return data[name]

    def _checked_split(self, ds: Any, where: str, *, labels: bool) -> Any:
        """Missing texts/labels refused or dropped (``on_missing``), label values that
        cannot be classes refused, integral float labels (an integer column with NaN read
        by pandas) cast to integers."""
        from energizer_hf.checks import check_label_values, check_missing

        cfg = self.config
        names = [cfg.text_column] + ([cfg.text_pair_column] if cfg.text_pair_column else [])
        has_labels = labels and cfg.label_column in ds.column_names
        if has_labels:
            names.append(cfg.label_column)
        table = ds.with_format("arrow")[:]
        report = check_missing({n: table.column(n) for n in names}, on_missing=cfg.on_missing, where=where)
        if report.keep is not None:
            ds = ds.select(report.keep)
            table = ds.with_format("arrow")[:]
        if has_labels:
            check_label_values(table.column(cfg.label_column), where=where, column=cfg.label_column)
            import pyarrow as pa

            if pa.types.is_floating(table.column(cfg.label_column).type):
                ds = ds.cast_column(cfg.label_column, datasets_value("int64"))
        return ds

    def _text_labels(
        self, pool_ds: Any, test_ds: Any, val_ds: Any
    ) -> tuple[list[str], np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """Class names, pool label ids (``None`` without a label column), test and
        validation label ids."""
        cfg = self.config
        has_pool_labels = cfg.label_column in pool_ds.column_names
        feature = pool_ds.features.get(cfg.label_column) if has_pool_labels else None
        if has_pool_labels:
            names, pool_labels, test_labels = encode_labels(
                pool_ds[cfg.label_column][:],
                test_ds[cfg.label_column][:] if test_ds is not None else None,
                feature,
                names=cfg.label_names,
            )
        else:
            if not cfg.label_names:
                raise ColumnNotFoundError(
                    f"The pool has no label column '{cfg.label_column}': give label_names for your oracle."
                )
            names, pool_labels = list(cfg.label_names), None
            test_labels = None
            if test_ds is not None:
                test_labels = encode_with_names(
                    test_ds[cfg.label_column][:], names, test_ds.features.get(cfg.label_column)
                )
        if len(names) < 2:
            raise LabelMismatchError(
                f"The data has {len(names)} class ({', '.join(names)}): classification needs at least 2."
            )
        val_labels = None
        if val_ds is not None:
            val_labels = encode_with_names(val_ds[cfg.label_column][:], names, val_ds.features.get(cfg.label_column))
        return names, pool_labels, test_labels, val_labels

    def _resolve_task(self, pool_ds: Any) -> Any:
        """The run's task: ``task`` when set, else what the pool's features say."""
        from energizer_hf.tasks import get_task, infer_task

        cfg = self.config
        if cfg.task:
            return get_task(cfg.task)()
        return get_task(
            infer_task(
                pool_ds.features, text_column=cfg.text_column, label_column=cfg.label_column,
                tokens_column=cfg.tokens_column,
            )
        )()

    def _tags_column(self, ds: Any) -> str:
        cfg = self.config
        if cfg.label_column in ds.column_names:
            return cfg.label_column
        for name in ("ner_tags", "tags"):
            if name in ds.column_names:
                return name
        return cfg.label_column

    def _task_labels(self, task: Any, pool_ds: Any, test_ds: Any) -> tuple[list[str], Any, Any, Any]:
        """Names, the pool's gold labels (a simulation; ``None`` otherwise), the test
        labels and the pool's label store of a task whose labels are not one int per row."""
        from energizer_hf.tasks import MultiLabelStore, TagStore, read_tags

        cfg = self.config
        if task.name == "token_classification":
            from energizer_hf.formats.conll import check_token_columns

            tags_col = self._tags_column(pool_ds)
            names = list(cfg.label_names) if cfg.label_names else None
            gold = None
            if tags_col in pool_ds.column_names:
                names, gold = read_tags(pool_ds, tags_col, names, tokens_column=cfg.tokens_column)
            if names is None:
                raise ColumnNotFoundError(
                    f"The pool has no tags column '{tags_col}': give label_names (the tag names) for your oracle."
                )
            test_labels = None
            if test_ds is not None:
                _, test_tags = read_tags(test_ds, self._tags_column(test_ds), names, tokens_column=cfg.tokens_column)
                test_labels = test_tags[np.arange(len(test_tags))]
            num_words = check_token_columns(pool_ds, cfg.tokens_column, None)
            return names, gold, test_labels, TagStore(names, num_words)
        from energizer_hf.formats.multilabel import multilabel_column

        names = list(cfg.label_names) if cfg.label_names else None
        gold = None
        if cfg.label_column in pool_ds.column_names:
            gold, names = multilabel_column(
                pool_ds, cfg.label_column, label_names=names, sep=cfg.label_separator,
                allow_empty=cfg.allow_empty_labels,
            )
        if names is None:
            raise ColumnNotFoundError(
                f"The pool has no label column '{cfg.label_column}': give label_names (the label set) for your oracle."
            )
        test_labels = None
        if test_ds is not None:
            test_matrix, _ = multilabel_column(
                test_ds, cfg.label_column, label_names=names, sep=cfg.label_separator, allow_empty=True
            )
            test_labels = test_matrix.astype(np.float32)
        return names, gold, test_labels, MultiLabelStore(names, len(pool_ds), allow_empty=cfg.allow_empty_labels)

    def setup(self) -> ActiveLoop:
        """Load data, model and tokenizer, tokenize (cached), and build the loop."""
        from transformers import AutoTokenizer

        from energizer_hf.checks import check_vocab_fits
        from energizer_hf.controls import NON_SEMANTIC_TRAINER_KWARGS
        from energizer_hf.data import HFDataAdapter
        from energizer_hf.fitting import LightningBackend
        from energizer_hf.loop import ActiveLoop, LoopSettings
        from energizer_hf.oracles.base import SimulatedOracle
        from energizer_hf.pool import ActivePool
        from energizer_hf.revisions import ensure_round_stores, restore_from_revision, split_stores
        from energizer_hf.stopping import criteria_from_config
        from energizer_hf.utils import progress_enabled, seed_everything

        cfg = self.config
        files = RunDir(cfg.run_dir)
        progress = progress_enabled(cfg.progress)
        model_dir, (pool_ds, test_ds, val_ds) = self._preflight()


        # labels: the task's (text classification keeps its label encoding in _text_labels)
        task = self.task = self._resolve_task(pool_ds)
        label_store = None
        val_labels = None
        if task.name == "text_classification":
            names, pool_labels, test_labels, val_labels = self._text_labels(pool_ds, test_ds, val_ds)
        else:
            if cfg.tapt_steps or cfg.self_training:
                from energizer_hf.errors import ConfigError

                raise ConfigError(
                    f"tapt_steps and self_training serve text classification only, not {task.name}: "
                    "leave them out for this task."
                )
            names, pool_labels, test_labels, label_store = self._task_labels(task, pool_ds, test_ds)
        if cfg.initial_ids is not None:
            _check_ids_in_pool(cfg.initial_ids, len(pool_ds))
        self.label_names = names
        id2label = dict(enumerate(names))

        # tokenizer and model
        tokenizer = self._tokenizer
        if tokenizer is None:
            source = cfg.tokenizer or cfg.model
            if not source:
                raise EnergizerError("Give a tokenizer (object or name) or a model name to load one from.")
            tokenizer = AutoTokenizer.from_pretrained(source)
        self.tokenizer = tokenizer
        model_spec = self._model if self._model is not None else cfg.model
        if model_spec is None:
            raise EnergizerError("No model given: set `model` to a hub id or a local directory.")
        head_source = _model_config(model_spec, model_dir) if task.name == "text_classification" else None
        if task.name == "text_classification":
            _check_pretrained_num_labels(model_spec, len(names))
        if head_source is not None:  # a model type without a sequence-classification head
            from energizer_hf.checks import check_sequence_classification

            check_sequence_classification(head_source, source=model_spec if isinstance(model_spec, str) else None)
        # ---- task-adaptive pre-training (energizer_hf.selfsup.tapt): the run starts from
        # the adapted encoder; its head is still fresh, as without TAPT
        self.tapt = None
        if cfg.tapt_steps:
            from energizer_hf.selfsup.tapt import TAPTConfig, adapt_encoder, adapted_model_spec

            self.tapt = adapt_encoder(
                model_spec, tokenizer, pool_ds, TAPTConfig.from_settings(cfg.tapt_steps, cfg.tapt_args),
                run_cache=files.cache, tokenizer_identity=_tokenizer_identity(tokenizer),
                text_column=cfg.text_column, text_pair_column=cfg.text_pair_column,
                max_length=cfg.max_length, accelerator=cfg.accelerator, progress=progress,
            )
            model_spec = adapted_model_spec(model_spec, self.tapt.path)
        # ----
        seed_everything(cfg.seed)
        module_class, task_kwargs = self._module_class(task)
        module = module_class(
            model_spec,
            num_labels=len(names),
            id2label=id2label,
            learning_rate=cfg.learning_rate,
            head_learning_rate=cfg.head_learning_rate,
            weight_decay=cfg.weight_decay,
            warmup_ratio=cfg.warmup_ratio,
            metrics=self.metrics,
            peft=self._peft if self._peft is not None else cfg.peft,
            gradient_checkpointing=cfg.gradient_checkpointing,
            freeze_embeddings=cfg.freeze_embeddings,
            **task_kwargs,
        )
        check_vocab_fits(tokenizer, module.model)

        trainer_kwargs = self._trainer_kwargs(files)
        devices = trainer_kwargs.get("devices", 1)
        single_process = devices in (1, "1", [0]) and trainer_kwargs.get("num_nodes", 1) == 1

        # tokenization, cached next to the run
        pool = ActivePool(pool_ds, label_store=label_store)
        tok_id = _tokenizer_identity(tokenizer)
        cache_dir = files.cache
        cache_dir.mkdir(parents=True, exist_ok=True)
        tokenized = self._tokenize(pool_ds, tokenizer, cache_dir / f"pool-v2-{pool.fingerprint}-{tok_id}-{cfg.max_length}.arrow")
        from energizer_hf.data import column_as_numpy

        lengths = column_as_numpy(tokenized, "length").astype(np.int64)
        test, test_lengths = None, None
        if test_ds is not None:
            from energizer_hf.utils import dataset_fingerprint

            test_tok = self._tokenize(
                test_ds, tokenizer, cache_dir / f"test-v2-{dataset_fingerprint(test_ds)}-{tok_id}-{cfg.max_length}.arrow"
            )
            test = (test_tok, test_labels)
            test_lengths = column_as_numpy(test_tok, "length").astype(np.int64)
        validation, val_lengths = None, None
        if val_ds is not None:
            from energizer_hf.utils import dataset_fingerprint

            val_tok = self._tokenize(
                val_ds, tokenizer, cache_dir / f"val-v2-{dataset_fingerprint(val_ds)}-{tok_id}-{cfg.max_length}.arrow"
            )
            validation = (val_tok, val_labels)
            val_lengths = column_as_numpy(val_tok, "length").astype(np.int64)
        model_columns = [c for c in tokenized.column_names if c not in ("length", "num_words")]
        adapter = HFDataAdapter(
            tokenized,
            self._collator(task, tokenizer),
            batch_size=cfg.batch_size,
            eval_batch_size=cfg.eval_batch_size,
            test=test,
            lengths=lengths,
            model_columns=model_columns,
            num_workers=cfg.num_workers,
            # custom batch samplers are single-process: Lightning cannot shard them
            group_by_length=cfg.group_by_length and single_process,
            test_lengths=test_lengths if single_process else None,
            validation=validation,
            validation_lengths=val_lengths if single_process else None,
        )

        # strategy, oracle, backend, loop
        strategy = self.strategy_class(module)
        oracle = self.oracle if self.oracle is not None else SimulatedOracle(pool_labels)
        if pool_labels is None and self.oracle is None:
            raise EnergizerError("The pool has no labels to simulate an oracle with: pass oracle=...")

        backend = LightningBackend(
            strategy.model,
            adapter,
            trainer_kwargs,
            reset_weights=cfg.reset_weights,
            seed=cfg.seed,
            quiet=True,
            pool_max_tokens=cfg.pool_max_tokens,
            scoring_precision=cfg.scoring_precision,
            num_classes=len(names),
            monitor=task.monitor,
            schedule=cfg.fit_schedule(),
            early_stopping_patience=cfg.early_stopping_patience,
            class_weights=cfg.class_weights,
            fit_progress=progress and not trainer_kwargs.get("enable_progress_bar", False),
        )
        settings = LoopSettings(
            query_size=cfg.query_size,
            max_rounds=cfg.max_rounds,
            total_budget=cfg.total_budget,
            initial_size=cfg.initial_size,
            initial_strategy=cfg.initial_strategy,
            initial_ids=cfg.initial_ids,
            validation_perc=cfg.validation_perc,
            test_after_labelling=test is not None,
            reset_weights=cfg.reset_weights,
            seed=cfg.seed,
            stopping_criteria=criteria_from_config(cfg.stopping_criteria),
            minority_class=_class_id(cfg.minority_class, names) if task.name == "text_classification" else None,
            budget_unit=cfg.budget_unit,
        )
        needs_predictions = [type(c).__name__ for c in settings.stopping_criteria or () if c.needs_predictions]
        if needs_predictions and task.name != "text_classification":
            from energizer_hf.stopping import InvalidStoppingCriterionError

            raise InvalidStoppingCriterionError(
                f"{', '.join(needs_predictions)} compare(s) predicted classes, one per row: they serve "
                f"text classification, not {task.name}. Stop {task.name} runs on the budget or max_rounds."
            )
        if cfg.budget_unit not in task.budget_units:
            from energizer_hf.errors import BudgetError

            raise BudgetError(
                f"budget_unit '{cfg.budget_unit}' does not apply to {task.name} (use one of "
                f"{', '.join(task.budget_units)}); tokens are counted for token classification."
            )
        semantic = {k: v for k, v in cfg.to_dict().items() if k not in _NON_SEMANTIC}
        semantic["model"] = cfg.model if self._model is None else _describe_model(self._model)
        semantic["tokenizer"] = tok_id
        semantic["task"] = task.name
        semantic["trainer_kwargs"] = {
            k: v for k, v in (semantic.get("trainer_kwargs") or {}).items() if k not in NON_SEMANTIC_TRAINER_KWARGS
        } or None
        if self._peft is not None:
            semantic["peft"] = json.loads(json.dumps(self._peft.to_dict(), default=str))
        if cfg.resume_from:  # a no-op once run_dir has records of its own
            restore_from_revision(
                pool, cfg.resume_from, cfg.resume_revision, run_dir=files.root, run_branch=cfg.hub_branch
            )
        loop_callbacks = list(self.callbacks)
        if backend.round_loggers:
            from energizer_hf.controls import RoundSeriesLogger

            loop_callbacks.append(RoundSeriesLogger(backend.round_loggers))
        callbacks, stores = split_stores(loop_callbacks)
        stores = ensure_round_stores(
            stores, repo_id=cfg.hub_repo_id, run_branch=cfg.hub_branch, private=cfg.hub_private
        )
        # ---- self-training (energizer_hf.selfsup.self_training): pseudo-labels reach the
        # fits through the data adapter only, never the label state
        from energizer_hf.selfsup.self_training import SelfTraining, SelfTrainingConfig

        st_config = SelfTrainingConfig.from_setting(cfg.self_training)
        self_training = None
        if st_config is not None:
            self_training = SelfTraining(
                st_config, adapter, strategy.model, label_names=names,
                true_labels=pool_labels if self.oracle is None else None,
            )
        # options that are off stay out of run.json (run dirs made before them still resume);
        # where the adapted encoder is cached does not change what the run computes
        semantic.pop("self_training")
        if st_config is not None:
            semantic["self_training"] = dataclasses.asdict(st_config)  # `true` == `{}`
        semantic.pop("tapt_args")
        if semantic.pop("tapt_steps"):
            from energizer_hf.selfsup.tapt import TAPTConfig

            semantic["tapt"] = TAPTConfig.from_settings(cfg.tapt_steps, cfg.tapt_args).fingerprint()
        # ----
        self.loop = ActiveLoop(
            pool,
            strategy,
            backend,
            oracle,
            settings,
            files.root,
            config=semantic,
            config_defaults=_semantic_defaults(),
            label_names=names,
            stratify_labels=pool_labels if task.name != "token_classification" else None,
            callbacks=callbacks,
            stores=stores,
            progress=progress,
            start_from_labels=bool(cfg.resume_from),
            self_training=self_training,
            save_final_model=self._save_final_model if cfg.save_final_model else None,
            card=self._card_info(pool_ds, test is not None),
        )
        self.module = strategy.model
        self.strategy = strategy
        self.pool = pool
        return self.loop

    def _card_info(self, pool_ds: Any, has_test: bool) -> dict[str, Any]:
        """What the cards say of the data and the model (``RunInfo.card``)."""
        from energizer_hf.revisions import card_info

        cfg = self.config
        return card_info(
            dataset=cfg.dataset if self._dataset is None else None,
            dataset_config=cfg.dataset_config,
            data_files=cfg.data_files if self._dataset is None else None,
            pool=pool_ds,
            train_split=cfg.train_split,
            test_split=cfg.test_split,
            has_test=has_test,
            model=self._model if self._model is not None else cfg.model,
            license=cfg.card_license,
            language=cfg.card_language,
            task=self.task.name if getattr(self, "task", None) is not None else "text_classification",
        )

    def _trainer_kwargs(self, files: RunDir) -> dict[str, Any]:
        """The per-round ``pl.Trainer`` arguments: the loop's, RunConfig's, then
        ``trainer_kwargs`` (validated; logger/callback specs built) and the Lightning
        callbacks given to ``callbacks``."""
        import torch

        from energizer_hf.controls import build_from_spec, check_trainer_kwargs

        cfg = self.config
        user = check_trainer_kwargs(dict(cfg.trainer_kwargs or {}), cfg, RunConfig())
        accelerator = user.pop("accelerator", cfg.accelerator)
        if accelerator == "auto" and not torch.cuda.is_available():
            accelerator = "cpu"
        kwargs: dict[str, Any] = {
            "accelerator": accelerator,
            "devices": user.pop("devices", cfg.devices),
            "strategy": user.pop("strategy", cfg.lightning_strategy),
            "precision": user.pop("precision", cfg.precision),
            "enable_checkpointing": False,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 1,
        }
        logs = files.logs
        if "logger" in user:
            user["logger"] = build_from_spec(user["logger"], save_dir=logs)
        callbacks = list(build_from_spec(list(user.pop("callbacks", None) or [])))
        kwargs.update(user)
        kwargs["callbacks"] = callbacks + list(self.lightning_callbacks)
        if kwargs.get("logger") not in (None, False) and "default_root_dir" not in kwargs:
            kwargs["default_root_dir"] = str(logs)
        return kwargs

    def _module_class(self, task: Any) -> tuple[type, dict[str, Any]]:
        """The LightningModule class of the task and its extra arguments."""
        from energizer_hf.model import HFSequenceClassifier

        if task.name == "token_classification":
            from energizer_hf.tasks import HFTokenClassifier

            return HFTokenClassifier, {}
        if task.name == "multi_label":
            from energizer_hf.tasks import HFMultiLabelClassifier

            return HFMultiLabelClassifier, {
                "threshold": self.config.threshold, "tune_threshold": self.config.tune_threshold,
            }
        return HFSequenceClassifier, {}

    def _collator(self, task: Any, tokenizer: Any) -> Any:
        from transformers import DataCollatorWithPadding

        if task.name == "token_classification":
            from energizer_hf.tasks import TokenLabelCollator

            return TokenLabelCollator(tokenizer)
        if task.name == "multi_label":
            from energizer_hf.tasks import MultiHotCollator

            return MultiHotCollator(DataCollatorWithPadding(tokenizer, return_tensors="pt"))
        return DataCollatorWithPadding(tokenizer, return_tensors="pt")

    def _tokenize(self, ds: Any, tokenizer: Any, cache_file: Path) -> Any:
        from energizer_hf.data import tokenize_dataset
        from energizer_hf.utils import progress_enabled

        cfg = self.config
        if getattr(self, "task", None) is not None and self.task.name == "token_classification":
            from energizer_hf.token_alignment import tokenize_and_align

            return tokenize_and_align(
                ds, tokenizer, tokens_column=cfg.tokens_column, tags_column=None,
                max_length=cfg.max_length, cache_file=str(cache_file), progress=progress_enabled(cfg.progress),
            )
        return tokenize_dataset(
            ds,
            tokenizer,
            cfg.text_column,
            text_pair_column=cfg.text_pair_column,
            max_length=cfg.max_length,
            cache_file=str(cache_file),
            progress=progress_enabled(cfg.progress),
        )

    def run(self) -> RoundResults:
        """Run (or resume) the rounds and return their results.

        The run holds its directory's lock from set-up to the final model; the directory is
        checked (and safely repaired) first. A finished run is shown from a read-only
        directory without writing anything.

        Raises:
            RunLockedError: another process runs on ``run_dir`` (it is named).
            RunDirError: ``run_dir`` is a file, or cannot be written (and the run is not
                finished), or ``overwrite`` names a folder that is not a run directory.
            RunIntegrityError: the run directory's files disagree (what and how to repair).
        """
        from energizer_hf.checks import check_run_dir
        from energizer_hf.runlock import RunLock
        from energizer_hf.utils import atomic_write_bytes

        files = RunDir(self.config.run_dir)
        check_run_dir(files.root, write=False)
        with RunLock(files.lock, allow_read_only=True) as lock:
            if lock.read_only:
                return _show_read_only(files, self.config)
            writer = lock.rank == 0  # the other ranks of a multi-process job only read
            if self.config.overwrite and self.loop is None and writer:
                self._preflight()  # a wrong setting or bad data fails before anything is deleted
                clear_run_dir(files)
            from energizer_hf.utils import progress_enabled

            with _hf_progress_bars(progress_enabled(self.config.progress)):  # "Loading weights"
                loop = self.loop or self.setup()
            if writer:  # `energizer-hf annotate RUN_DIR` and `check` read it, even after a crash
                # (never `overwrite: true`: rebuilding the run from it must not wipe it)
                kept = {**self.config.to_dict(), "overwrite": False}
                atomic_write_bytes(files.config_yaml, _yaml_dump(kept).encode())
            return loop.run()

    def _save_final_model(self) -> None:
        """Keep the model trained on the final labelled set (``final_model/``)."""
        from energizer_hf.revisions import save_final_model

        save_final_model(
            RunDir(self.config.run_dir).root, self.module.model, self.tokenizer, run=self.loop.run_info()
        )

    def run_info(self) -> RunInfo:
        """The run as it stands (:class:`~energizer_hf.run.RunInfo`): cards, pushes and
        people's tools take it."""
        return self.loop.run_info() if self.loop is not None else RunInfo.from_dir(self.config.run_dir)

    def push_to_hub(
        self,
        model_repo_id: str,
        *,
        dataset_repo_id: str | None = None,
        store: HubRevisions | None = None,
        **push_kwargs: Any,
    ) -> PushResult:
        """Push the final labelled set and the trained model (with its card) after ``run()``.

        ``store``: the :class:`~energizer_hf.revisions.HubRevisions` that pushed the rounds
        (default: a new one for ``dataset_repo_id``, or ``hub_repo_id``). ``push_kwargs``: see
        :meth:`~energizer_hf.revisions.HubRevisions.push_final`.
        """
        if self.loop is None:
            raise EnergizerError("push_to_hub pushes a finished run: call run() first.")
        if store is None:
            store = HubRevisions(dataset_repo_id or self.config.hub_repo_id, run_dir=self.loop.files.root,
                                 run_branch=self.config.hub_branch, private=self.config.hub_private)
        return store.push_final(
            self.run_info(), model_repo_id, model=self.module.model, tokenizer=self.tokenizer,
            pool=self.pool, dataset_repo_id=dataset_repo_id, **push_kwargs,
        )

    def collect(self, partial: bool = False) -> RoundResults:
        """Continue a run that stopped with ``stop_reason == "awaiting_annotations"``.

        An asynchronous oracle (``LabelStudioOracle(wait="async")``) ends the run after it
        imported a round's tasks; ``collect()`` reads the annotations given since, labels
        them and goes on with the loop (it stops again at the next round's import, or
        again at once when the round is not fully annotated yet). ``partial=True`` closes
        the waiting round with what is annotated now (the rest goes back to the pool).
        """
        from energizer_hf.oracles.base import OracleBase

        if partial and isinstance(self.oracle, OracleBase):
            self.oracle.close_round()  # one-shot: used by the first round it asks for
        return self.run()


@contextlib.contextmanager
def _hf_progress_bars(show: bool) -> Any:
    """transformers' own progress bars follow ``progress`` while the model loads."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    if enabled and not show:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled and not show:
            hf_logging.enable_progress_bar()


def clear_run_dir(files: RunDir) -> None:
    """Delete what a run directory holds (``overwrite``), its lock files excepted.

    Raises:
        RunDirError: the folder holds files but is not a run directory (no ``run.json``,
            ``rounds.jsonl`` or ``pool/``): nothing is deleted.
    """
    import shutil

    from energizer_hf.errors import RunDirError

    root = files.root
    if not root.is_dir():
        return
    keep = {files.lock.name, files.lock.name + ".json"}
    entries = [p for p in root.iterdir() if p.name not in keep]
    if not entries:
        return
    if not (files.run_file.exists() or files.rounds.exists() or files.pool.exists()):
        raise RunDirError(
            f"overwrite: '{root}' is not a run directory (it has no run.json, rounds.jsonl or pool/), "
            "so nothing was deleted: choose an empty or new run_dir."
        )
    _say(f"{root}: overwrite: deleting the previous run.")
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _show_read_only(files: RunDir, config: RunConfig) -> Any:
    """A finished run on a read-only directory: its records, nothing written.

    Raises:
        RunDirError: the run is not finished, or ``config`` asks for more rounds or labels
            than it stopped at (it cannot go on without writing).
    """
    from energizer_hf.errors import RunDirError
    from energizer_hf.integrity import RunFiles, check_run_files
    from energizer_hf.results import RoundResults

    report = check_run_files(RunFiles.of(files))
    report.raise_for_errors()
    if not report.complete:
        raise RunDirError(
            f"run_dir '{files.root}' is read-only and its run is not finished: it cannot go on. "
            "Make it writable (e.g. chmod -R u+w), or copy it to a folder you can write to."
        )
    records = files.read_records()
    last = records[-1] if records else {}
    more_rounds = last.get("stop_reason") == "max_rounds" and (
        config.max_rounds is None or config.max_rounds > int(last.get("round", 0))
    )
    more_budget = last.get("stop_reason") == "budget_exhausted" and (
        config.total_budget == -1 or config.total_budget > int(last.get("num_labelled", 0))
    )
    if more_rounds or more_budget:
        raise RunDirError(
            f"run_dir '{files.root}' is read-only and this configuration extends its finished run "
            f"(max_rounds {config.max_rounds}, total_budget {config.total_budget}): it cannot go on. Make it "
            "writable (e.g. chmod -R u+w), or copy it to a folder you can write to."
        )
    _say(f"{files.root}: already complete ({len(records)} rounds recorded; read-only directory).")
    return RoundResults(records)


def _say(message: str) -> None:
    import sys

    log.info(message)
    print(f"energizer_hf: {message}", file=sys.stderr, flush=True)


def datasets_value(dtype: str) -> Any:
    """A ``datasets.Value`` feature (imported when needed)."""
    import datasets

    return datasets.Value(dtype)


def _is_plain(value: Any) -> bool:
    """Data that YAML/JSON hold as is (no Python objects)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def _yaml_dump(data: dict) -> str:
    import yaml

    return yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False)


def _describe_model(model: Any) -> str:
    cfg = getattr(model, "config", model)
    to_dict = getattr(cfg, "to_dict", None)
    payload = json.dumps(to_dict() if callable(to_dict) else repr(cfg), sort_keys=True, default=str)
    return f"{type(model).__name__}:{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def _model_config(spec: Any, local_dir: Path | None) -> Any:
    """What tells a model's type: its local directory, its Hub config (``None`` when it
    cannot be fetched: ``from_pretrained`` reports that), or a config object."""
    if local_dir is not None:
        return local_dir
    if isinstance(spec, str):
        try:
            from transformers import AutoConfig

            return AutoConfig.from_pretrained(spec)
        except Exception:  # noqa: BLE001 - from_pretrained raises its own error later
            return None
    from transformers import PretrainedConfig

    return spec if isinstance(spec, PretrainedConfig) else None


def _check_pretrained_num_labels(model: Any, num_labels: int) -> None:
    """A fine-tuned classifier checkpoint with another number of classes is an error."""
    if not isinstance(model, str):
        return
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model)
    except Exception:  # noqa: BLE001 - let from_pretrained raise its own error later
        return
    archs = getattr(config, "architectures", None) or []
    if any("ForSequenceClassification" in a for a in archs) and config.num_labels != num_labels:
        raise LabelMismatchError(
            f"The checkpoint '{model}' is a classifier with num_labels={config.num_labels}, but the "
            f"data has {num_labels} classes: use a base model, or data with the same classes."
        )


def _check_ids_in_pool(ids: Sequence[int], size: int) -> None:
    """``initial_ids`` must be rows of the pool split.

    Raises:
        InvalidIdsError: ids at or beyond the pool's size.
    """
    from energizer_hf.errors import InvalidIdsError

    bad = [int(i) for i in ids if int(i) >= size]
    if bad:
        raise InvalidIdsError(
            f"initial_ids {bad[:10]} are not rows of the pool split ({size} rows, ids 0..{size - 1}): give row "
            "indices of the pool split."
        )


def _class_id(value: Any, names: Sequence[str]) -> int | None:
    """A class given by id or by name, as an id (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= int(value) < len(names):
        return int(value)
    if isinstance(value, str) and value in names:
        return list(names).index(value)
    raise LabelMismatchError(
        f"minority_class={value!r} is neither a class id in [0, {len(names) - 1}] nor one of the class "
        f"names {list(names)}."
    )
