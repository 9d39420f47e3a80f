"""What :class:`~energizer_hf.learner.ActiveLearner` reads from a task: class names and label
ids of each split, the task itself, the model class, the collator and the tokenization."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from energizer_hf.errors import ColumnNotFoundError, LabelMismatchError
from energizer_hf.learner_data import encode_labels, encode_with_names


class TaskReadersMixin:
    """The task-dependent readers of :class:`~energizer_hf.learner.ActiveLearner` (a mixin:
    it uses the learner's ``config`` and ``task``)."""

    config: Any

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
                "at_least_one": not self.config.allow_empty_labels,  # every row has a label
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
