"""The configuration and the results of a stream run: :class:`StreamConfig`, :class:`StreamResults`.

:class:`StreamConfig` mirrors the YAML of ``energizer-hf stream``; its training fields are
a :class:`~energizer_hf.learner.RunConfig`'s (:meth:`StreamConfig.run_config`), so each
retrain is fitted exactly like a pool round.

>>> StreamConfig(budget_rate=0.1, retrain_every=20).strategy
'variable_uncertainty'
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energizer_hf.errors import BudgetError, BudgetRateError, EnergizerError, StreamInputError
from energizer_hf.learner import RunConfig

__all__ = ["StreamConfig", "StreamResults"]

SCORES = ("least_confidence", "entropy", "margin")
ORACLES = ("simulated", "label_studio")
# fields that do not change what a stream computes: they may differ when resuming
_NON_SEMANTIC = {
    "run_dir", "progress", "hub_repo_id", "hub_branch", "hub_private", "max_items", "final_wait",
    "label_studio", "eval_batch_size", "scoring_precision", "dataset", "data_files", "dataset_config",
}
_TRAINING_FIELDS = (
    "model", "tokenizer", "max_length", "min_steps", "max_epochs", "batch_size", "eval_batch_size",
    "learning_rate", "weight_decay", "warmup_ratio", "trainer_kwargs", "accelerator", "precision",
    "scoring_precision", "seed", "run_dir", "progress", "text_column", "label_column", "label_names",
)


@dataclass
class StreamConfig:
    """Everything that defines a stream run; mirrors the YAML of ``energizer-hf stream``."""

    dataset: str | None = field(
        default=None,
        metadata={"help": "Hub dataset name, a local CSV/JSON/JSONL/parquet file or a save_to_disk directory."},
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Hub dataset configuration name."})
    data_files: dict[str, Any] | None = field(
        default=None, metadata={"help": "Split name → local file(s), e.g. {train: a.jsonl, test: b.jsonl}."}
    )
    split: str = field(default="train", metadata={"help": "Split read as the stream."})
    streaming: bool = field(
        default=False,
        metadata={"help": "Read the stream with load_dataset(..., streaming=True) (an IterableDataset, never "
                  "loaded whole); otherwise the split is loaded and replayed in a seeded order."},
    )
    shuffle: bool = field(default=True, metadata={"help": "Replay a loaded split in a seeded random order."})
    test_split: str | None = field(
        default="test", metadata={"help": "Split the retrained models are tested on (empty: none)."}
    )
    text_column: str = field(default="text", metadata={"help": "Column with the text."})
    label_column: str = field(
        default="label", metadata={"help": "Column with the label (the simulated oracle reads it)."}
    )
    label_names: list[str] | None = field(
        default=None, metadata={"help": "Class names, when neither the stream nor the test split has a ClassLabel."}
    )
    id_column: str | None = field(
        default=None,
        metadata={"help": "Column of unique item ids (default: the row index of a replayed split, else the "
                  "arrival position)."},
    )
    max_items: int | None = field(default=None, metadata={"help": "Stop after this many items (None: the stream's end)."})
    model: str | None = field(default=None, metadata={"help": "Hub id or local directory of the model."})
    tokenizer: str | None = field(default=None, metadata={"help": "Tokenizer hub id or directory (default: model)."})
    max_length: int = field(default=128, metadata={"help": "Truncate texts to this many tokens."})
    strategy: str = field(
        default="variable_uncertainty",
        metadata={"help": "Stream strategy: fixed_uncertainty, variable_uncertainty, randomized_variable_uncertainty, "
                  "split, novelty_uncertainty, density_uncertainty or random."},
    )
    strategy_args: dict[str, Any] | None = field(
        default=None, metadata={"help": "Arguments of the stream strategy, e.g. {step: 0.02} or {threshold: 0.4}."}
    )
    budget_rate: float = field(
        default=0.05, metadata={"help": "Fraction of arriving items that may be labelled, in (0, 1]."}
    )
    window: int = field(
        default=1000,
        metadata={"help": "Budget window in arrivals: any `window` consecutive items hold at most "
                  "floor(budget_rate x window) labels."},
    )
    score: str = field(
        default="least_confidence",
        metadata={"help": "Uncertainty score of the model's probabilities: least_confidence, entropy or margin."},
    )
    stream_batch_size: int = field(
        default=64, metadata={"help": "Items read and scored together (decided one by one, in order)."}
    )
    retrain_every: int = field(
        default=50, metadata={"help": "Retrain from the initial weights after this many new labels."}
    )
    retrain_seconds: float | None = field(
        default=None, metadata={"help": "Also retrain when this many seconds passed since the last one (and labels came)."}
    )
    retrain_lag: int | None = field(
        default=None,
        metadata={"help": "Items after a retrain starts at which its model replaces the one in use (the stream "
                  "waits there if training is not done: reproducible); None: as soon as training ends."},
    )
    oracle: str = field(
        default="simulated",
        metadata={"help": "simulated (labels from label_column) or label_studio (people; see label_studio)."},
    )
    label_studio: dict[str, Any] | None = field(
        default=None,
        metadata={"help": "LabelStudioStreamOracle arguments, e.g. {project: tickets, poll_seconds: 10}; URL and "
                  "token from LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY."},
    )
    final_wait: float = field(
        default=0.0, metadata={"help": "Seconds to wait at the stream's end for labels still out."}
    )
    min_steps: int = field(
        default=200, metadata={"help": "At least this many optimizer steps per retrain (0: exactly max_epochs)."}
    )
    max_epochs: int = field(default=10, metadata={"help": "Training epochs per retrain (more while min_steps needs them)."})
    batch_size: int = field(default=16, metadata={"help": "Training batch size."})
    eval_batch_size: int = field(default=64, metadata={"help": "Batch size for scoring and testing."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak AdamW learning rate."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Fraction of steps of linear warm-up."})
    trainer_kwargs: dict[str, Any] | None = field(
        default=None, metadata={"help": "Any pytorch_lightning.Trainer argument for every retrain."}
    )
    accelerator: str = field(default="auto", metadata={"help": "Lightning accelerator (cpu, gpu, auto)."})
    precision: str = field(default="32-true", metadata={"help": "Lightning precision, e.g. bf16-mixed."})
    scoring_precision: str = field(
        default="auto", metadata={"help": "Scoring precision: auto (bf16/fp16 autocast on GPU), bf16, fp16, fp32."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of everything (replay order, strategy, training)."})
    run_dir: str = field(default="runs/energizer-stream", metadata={"help": "Run directory (resumed if it exists)."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar over the stream."})
    hub_repo_id: str | None = field(
        default=None,
        metadata={"help": "Hub dataset repo (user/name) that gets each retrain's labelled set as a commit + tag "
                  "round-NNN. Local revisions are always kept."},
    )
    hub_branch: str = field(default="energizer-run", metadata={"help": "Branch of hub_repo_id for the round commits."})
    hub_private: bool = field(default=True, metadata={"help": "Create hub_repo_id as a private repository."})

    def __post_init__(self) -> None:
        if self.test_split == "":
            self.test_split = None
        rate = self.budget_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 < float(rate) <= 1.0:
            raise BudgetRateError(
                f"budget_rate must be a fraction in (0, 1] of the arriving items, got {rate!r}: e.g. 0.05 "
                "labels one item in twenty."
            )
        for name in ("window", "stream_batch_size", "retrain_every", "max_length", "batch_size", "eval_batch_size",
                     "max_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise BudgetError(f"{name} must be a positive integer, got {value!r}.")
        if self.retrain_lag is not None and (isinstance(self.retrain_lag, bool) or not isinstance(self.retrain_lag, int)
                                             or self.retrain_lag < 0):
            raise BudgetError(f"retrain_lag must be an integer >= 0 (items) or None, got {self.retrain_lag!r}.")
        if self.retrain_seconds is not None and not float(self.retrain_seconds) > 0:
            raise BudgetError(f"retrain_seconds must be > 0 or None, got {self.retrain_seconds!r}.")
        if self.max_items is not None and (not isinstance(self.max_items, int) or self.max_items <= 0):
            raise BudgetError(f"max_items must be a positive integer or None, got {self.max_items!r}.")
        if self.score not in SCORES:
            raise StreamInputError(f"score must be one of {SCORES}, got {self.score!r}.")
        if self.oracle not in ORACLES:
            raise StreamInputError(f"oracle must be one of {ORACLES}, got {self.oracle!r}.")
        if self.final_wait < 0:
            raise BudgetError(f"final_wait must be >= 0 seconds, got {self.final_wait!r}.")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise EnergizerError(
                f"Unknown stream configuration fields: {', '.join(unknown)}. Known fields: {', '.join(sorted(known))}."
            )
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> StreamConfig:
        import yaml

        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise EnergizerError(f"{path} must hold a mapping of stream configuration fields.")
        return cls.from_dict(data)

    def run_config(self) -> RunConfig:
        """The :class:`~energizer_hf.learner.RunConfig` of the training settings: each retrain is
        fitted exactly like a pool round (schedule, Trainer arguments, precision)."""
        return RunConfig(**{name: getattr(self, name) for name in _TRAINING_FIELDS}, test_split=self.test_split)


@dataclass
class StreamResults:
    """What a stream run did.

    Attributes:
        records: one record per retrain (``rounds.jsonl``).
        num_seen / num_sent / num_labelled: items decided, sent for labelling, labelled.
        stop_reason: ``stream_end`` or ``max_items``.
        run_dir: the run directory.
    """

    records: list[dict[str, Any]]
    num_seen: int
    num_sent: int
    num_labelled: int
    stop_reason: str | None
    run_dir: Path

    @property
    def last_accuracy(self) -> float | None:
        """Test accuracy of the last retrained model (``None`` without a test split)."""
        for rec in reversed(self.records):
            if "test/accuracy" in rec:
                return float(rec["test/accuracy"])
        return None

    def to_table(self) -> str:
        """The records as a markdown table (round, labels, swap position, accuracy)."""
        lines = ["| round | labels | trained from position | used from position | test accuracy |",
                 "|---|---|---|---|---|"]
        for r in self.records:
            acc = r.get("test/accuracy")
            lines.append(f"| {r['round']} | {r['num_labelled']} | {r['trigger_position']} | "
                         f"{r.get('swap_position', '')} | {'' if acc is None else f'{acc:.4f}'} |")
        return "\n".join(lines)
