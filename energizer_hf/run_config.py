"""The settings of an active-learning run: :class:`RunConfig`, which fields define the
experiment and which only change how it runs (re-exported by :mod:`energizer_hf.learner`).

>>> from energizer_hf.run_config import RunConfig
>>> RunConfig(dataset="ag_news", model="bert-base-uncased", strategy="margin").query_size
25
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any, Literal

from energizer_hf.errors import EnergizerError
from energizer_hf.run import LEGACY_CONFIG_NAMES, check_one_name_each

__all__ = ["EXECUTION_FIELDS", "EXTENT_FIELDS", "OLD_FIT_DEFAULTS", "RunConfig"]


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"



_UNSET: Any = _Unset()



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
        default=None,
        metadata={"help": "Peak learning rate of the classification head (default: learning_rate; for multi-label "
                  "runs 10 x learning_rate)."},
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Fraction of steps of linear warm-up."})
    group_by_length: bool = field(
        default=True, metadata={"help": "Training batches of similar lengths (less padding), in random order."}
    )
    freeze_embeddings: bool = field(default=False, metadata={"help": "Do not train the word-embedding matrix."})
    class_weights: Any = field(
        default=None,
        metadata={"help": "Class-weighted loss: 'balanced' (inverse frequency in each fit's labelled rows; "
                  "multi-label: per-label positive weights), 'sqrt_balanced' (their square root), a list of per-class "
                  "weights, or 'none'. Default "
                  "(null): none for single-label, 'balanced' for multi-label, 'sqrt_balanced' for token classification."},
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
            self.class_weights in ("balanced", "sqrt_balanced", "none") or isinstance(self.class_weights, (list, tuple))
        ):
            raise EnergizerError(
                f"class_weights must be 'balanced', 'sqrt_balanced', 'none' or a list of per-class weights, got "
                f"{self.class_weights!r}."
            )
        if self.trainer_kwargs is not None and not isinstance(self.trainer_kwargs, dict):
            raise EnergizerError(
                f"trainer_kwargs must be a mapping of pytorch_lightning.Trainer arguments, got "
                f"{type(self.trainer_kwargs).__name__}."
            )

        from energizer_hf.selfsup import validate_settings  # self-supervised options

        validate_settings(self.tapt_steps, self.tapt_args, self.self_training)

    def task_class_weights(self, task: str) -> Any:
        """``class_weights`` as the fit uses it for ``task``: the setting, or by default (null)
        per-label positive weights for multi-label runs (without them a sigmoid head fitted on
        a few hundred rows predicts the majority label only), the square root of the inverse
        tag frequencies for token classification (without them a token head fitted on a few
        dozen sentences often predicts ``O`` for every word), and none for single-label text
        classification (BENCHMARKS.md); ``'none'`` turns weights off.

        >>> RunConfig(model="m", dataset="d").task_class_weights("multi_label")
        'balanced'
        >>> RunConfig(model="m", dataset="d").task_class_weights("token_classification")
        'sqrt_balanced'
        >>> RunConfig(model="m", dataset="d", class_weights="none").task_class_weights("multi_label") is None
        True
        """
        if self.class_weights == "none":
            return None
        if self.class_weights is None:
            return {"multi_label": "balanced", "token_classification": "sqrt_balanced"}.get(task)
        return self.class_weights

    def task_head_learning_rate(self, task: str) -> float | None:
        """``head_learning_rate`` as the fit uses it for ``task``: the setting, or by default
        (null) 10 x ``learning_rate`` for multi-label runs (one sigmoid per label learns slowly
        from few rows at the body's rate) and ``learning_rate`` otherwise (None).

        >>> RunConfig(model="m", dataset="d").task_head_learning_rate("multi_label")
        0.001
        >>> RunConfig(model="m", dataset="d").task_head_learning_rate("text_classification") is None
        True
        """
        if self.head_learning_rate is None and task == "multi_label":
            return 10 * self.learning_rate
        return self.head_learning_rate

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



def _is_plain(value: Any) -> bool:
    """Data that YAML/JSON hold as is (no Python objects)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False
