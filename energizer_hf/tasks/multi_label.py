"""Multi-label classification: a set of labels per text, a sigmoid per label.

* **Data**: a text column and a label column holding lists of names or ids, a
  ``Sequence(ClassLabel)``, names joined by ``label_separator`` (``"joy;anger"``, as in the
  GoEmotions CSV) or multi-hot rows (:func:`energizer_hf.formats.multilabel_column`). A
  row with no label is refused unless ``allow_empty_labels`` says the label set permits
  "none".
* **Label state**: what the oracle says goes to a :class:`~energizer_hf.label_stores.MultiHotStore`
  next to the pool's state (``pool/multi_hot.npy``: ``known`` + multi-hot rows,
  memory-mapped, replaced atomically).
* **Model**: :class:`HFMultiLabelClassifier`: ``AutoModelForSequenceClassification`` with
  ``problem_type="multi_label_classification"``, binary cross-entropy, a decision
  threshold (0.5, or tuned on the validation rows with ``tune_threshold``).
* **Metrics**: micro/macro F1, micro precision/recall, subset accuracy and Hamming loss
  (:func:`energizer_hf.functional.multilabel.multilabel_scores`, equal to torchmetrics').
* **Initial set**: class-balanced for rare labels in a simulation
  (:func:`energizer_hf.functional.multilabel.stratified_initial_set`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from energizer_hf.errors import EmptyLabelSetError, InvalidIdsError, UnknownLabelError
from energizer_hf.label_stores import MultiHotStore
from energizer_hf.model import HFSequenceClassifier, load_sequence_classifier
from energizer_hf.tasks.base import Task, register_task

__all__ = ["HFMultiLabelClassifier", "MultiHotCollator", "MultiLabelTask", "MultiLabelStore", "as_multi_hot"]


@register_task
class MultiLabelTask(Task):
    """Several labels per text."""

    name = "multi_label"
    task_categories = ("text-classification",)
    task_ids = ("multi-label-classification",)
    label_studio_config = "multi_label"
    monitor = "val/f1_macro"
    test_metric = "test/f1_micro"


def as_multi_hot(labels: Any, names: Sequence[str], *, allow_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """An oracle's answers as ``(given, multi_hot)``: ``given`` is False for a skipped row
    (``None``, or a multi-hot row of -1), ``multi_hot`` is ``(n, L)`` uint8.

    Answers may be a ``(n, L)`` multi-hot array or a list of label sets (names or ids).

    Raises:
        UnknownLabelError: a name or id outside the label set.
        EmptyLabelSetError: an empty set, unless ``allow_empty``.

    >>> g, m = as_multi_hot([["b"], None, [0, 1]], ["a", "b"])
    >>> g.tolist(), m.tolist()
    ([True, False, True], [[0, 1], [0, 0], [1, 1]])
    """
    L = len(names)
    index = {str(n): i for i, n in enumerate(names)}
    if isinstance(labels, np.ndarray) and labels.ndim == 2 or (
        isinstance(labels, torch.Tensor) and labels.ndim == 2
    ):
        arr = np.asarray(labels)
        if arr.shape[1] != L:
            raise UnknownLabelError(f"Multi-hot answers have {arr.shape[1]} columns for {L} labels.")
        given = ~(arr < 0).any(1)
        out = np.where(given[:, None], arr, 0)
        if not ((out == 0) | (out == 1)).all():
            raise UnknownLabelError("Multi-hot answers must hold 0 or 1 (or -1 for a skipped row).")
        out = out.astype(np.uint8)
    else:
        rows = list(labels)
        out = np.zeros((len(rows), L), dtype=np.uint8)
        given = np.ones(len(rows), dtype=bool)
        for j, row in enumerate(rows):
            if row is None or (isinstance(row, (int, np.integer)) and int(row) < 0):
                given[j] = False
                continue
            if isinstance(row, str):
                row = [row]
            for v in row:
                if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                    if not 0 <= int(v) < L:
                        raise UnknownLabelError(f"Label id {v} is outside the label set 0..{L - 1}.")
                    out[j, int(v)] = 1
                elif str(v) in index:
                    out[j, index[str(v)]] = 1
                else:
                    raise UnknownLabelError(f"Label {v!r} is not in the label set {list(names)}.")
    empty = given & (out.sum(1) == 0)
    if empty.any() and not allow_empty:
        raise EmptyLabelSetError(
            f"{int(empty.sum())} answers have no label (first at position {int(np.flatnonzero(empty)[0])}); "
            "give at least one label, or set allow_empty_labels when 'none' is a valid answer."
        )
    return given, out


class MultiLabelStore:
    """The pool's store of label sets given by the oracle (a
    :class:`~energizer_hf.label_stores.MultiHotStore` under ``<run_dir>/pool``)."""

    def __init__(self, label_names: Sequence[str], num_rows: int, *, allow_empty: bool = False) -> None:
        self.label_names = [str(n) for n in label_names]
        self.num_rows = int(num_rows)
        self.allow_empty = allow_empty
        self.store = MultiHotStore(None, self.num_rows, len(self.label_names), label_names=self.label_names,
                                   allow_empty=allow_empty)

    def open(self, state_dir: Any, *, fingerprint: str | None = None, read_only: bool = False) -> None:
        if state_dir is None:
            return
        old = self.store
        self.store = MultiHotStore(
            state_dir, self.num_rows, len(self.label_names), label_names=self.label_names,
            allow_empty=self.allow_empty, fingerprint=fingerprint, read_only=read_only,
        )
        if old.state_dir is None and old.labelled_ids.size and not self.store.labelled_ids.size:
            self.store.set(old.labelled_ids, old.get(old.labelled_ids))

    def given(self, labels: Any, n: int) -> np.ndarray:
        """Which answers carry a label set: ``None`` / -1 rows are skipped, and so is an
        empty set unless the label set permits "none" (``allow_empty``), with a warning:
        the row goes back to the pool."""
        import warnings

        given, out = as_multi_hot(labels, self.label_names, allow_empty=True)
        if given.size != n:
            raise InvalidIdsError(f"The oracle returned {given.size} label sets for {n} ids.")
        empty = given & (out.sum(1) == 0)
        if empty.any() and not self.allow_empty:
            warnings.warn(
                f"{int(empty.sum())} answers have no label and the label set does not permit 'none' "
                "(allow_empty_labels): those rows stay unlabelled.",
                stacklevel=3,
            )
            given = given & ~empty
        return given

    def subset(self, labels: Any, mask: np.ndarray) -> np.ndarray:
        _, out = as_multi_hot(labels, self.label_names, allow_empty=True)
        return out[mask]

    def accept(self, labels: Any, ids: np.ndarray) -> np.ndarray:
        given, out = as_multi_hot(labels, self.label_names, allow_empty=self.allow_empty)
        if given.size != ids.size or not given.all():
            raise InvalidIdsError("Label every id given to pool.label (a skipped row has no label set).")
        return out

    def set(self, ids: np.ndarray, multi_hot: np.ndarray) -> None:
        self.store.set(ids, multi_hot)

    def multi_hot(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(self.store.get(np.asarray(ids, dtype=np.int64)))

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Float multi-hot rows of ``ids`` (training targets)."""
        return self.multi_hot(ids).astype(np.float32)

    def distribution(self, ids: np.ndarray) -> dict[int, int]:
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return {}
        counts = self.multi_hot(ids).sum(0)
        return {i: int(c) for i, c in enumerate(counts.tolist()) if c}

    task = "multi_label"
    column = "labels"

    def round_columns(self, ids: np.ndarray) -> tuple[dict[str, list], dict[str, Any]]:
        """The label sets of ``ids`` as a ``labels`` column (``Sequence(ClassLabel)``)."""
        import datasets

        m = self.multi_hot(ids)
        sets = [np.flatnonzero(row).tolist() for row in m]
        return {self.column: sets}, {self.column: datasets.Sequence(datasets.ClassLabel(names=self.label_names))}

    def from_round_columns(self, ds: Any) -> np.ndarray | None:
        if self.column not in ds.column_names:
            return None
        _, out = as_multi_hot(ds[self.column][:], self.label_names, allow_empty=True)
        return out

    def card_meta(self) -> dict[str, Any]:
        return {
            "task": self.task, "task_categories": list(MultiLabelTask.task_categories),
            "task_ids": list(MultiLabelTask.task_ids), "label_set": list(self.label_names),
        }

    def describe(self, ids: np.ndarray) -> dict[str, int]:
        ids = np.asarray(ids, dtype=np.int64)
        return {"label_assignments": int(self.multi_hot(ids).sum()) if ids.size else 0}


class MultiHotCollator:
    """Pads inputs with a Hugging Face collator and stacks ``labels`` as float multi-hot rows."""

    def __init__(self, collator: Any) -> None:
        self.collator = collator

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        labels = [f["labels"] for f in features] if features and "labels" in features[0] else None
        batch = self.collator([{k: v for k, v in f.items() if k != "labels"} for f in features])
        if labels is not None:
            batch["labels"] = torch.as_tensor(np.stack([np.asarray(x, dtype=np.float32) for x in labels]))
        return batch


class HFMultiLabelClassifier(HFSequenceClassifier):
    """Fine-tune a ``transformers`` classifier with one sigmoid per label.

    Binary cross-entropy loss; a label is predicted when its probability reaches
    ``threshold`` (0.5), or a threshold tuned at each validation pass on the validation
    rows (``tune_threshold=True``: the micro-F1-optimal global cut,
    :func:`~energizer_hf.functional.multilabel.tune_threshold`); with ``at_least_one`` (what
    an ``ActiveLearner`` sets unless ``allow_empty_labels``) a row with no label above it
    gets its most probable one (:func:`~energizer_hf.functional.multilabel.decide_labels`).
    Validation and test log
    ``f1_micro``, ``f1_macro``, ``precision_micro``, ``recall_micro``, ``subset_accuracy``
    and ``hamming_loss``.

    Example:
        >>> from transformers import BertConfig
        >>> cfg = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
        ...                  num_attention_heads=2, intermediate_size=16)
        >>> m = HFMultiLabelClassifier(cfg, num_labels=4)
        >>> m.model.config.problem_type
        'multi_label_classification'
    """

    task = "multi_label"
    output_activation = "sigmoid"

    def __init__(
        self,
        model: Any,
        num_labels: int,
        id2label: dict[int, str] | None = None,
        *args: Any,
        threshold: float = 0.5,
        tune_threshold: bool = False,
        at_least_one: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, num_labels, id2label, *args, **kwargs)
        self.threshold = float(threshold)
        self.tune_threshold = tune_threshold
        self.at_least_one = at_least_one
        # model selection restores the threshold tuned with the weights it keeps
        self.selected_with_weights = ("threshold",) if tune_threshold else ()
        self._probs: dict[str, list[np.ndarray]] = {"val": [], "test": []}
        self._gold: dict[str, list[np.ndarray]] = {"val": [], "test": []}

    def load_model(self, model: Any, num_labels: int, id2label: dict[int, str] | None) -> Any:
        from transformers import PretrainedConfig

        if isinstance(model, PretrainedConfig):
            import copy

            model = copy.deepcopy(model)
            model.problem_type = "multi_label_classification"
        loaded = load_sequence_classifier(model, num_labels, id2label, noun="labels")
        base = loaded.get_base_model() if hasattr(loaded, "peft_config") else loaded
        base.config.problem_type = "multi_label_classification"
        return loaded

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self(batch)
        weight = None if self.class_weights is None else self.class_weights.to(logits.device, torch.float32)
        loss = F.binary_cross_entropy_with_logits(logits.float(), batch["labels"].float(), pos_weight=weight)
        self.log("train/loss", loss, prog_bar=True, batch_size=logits.shape[0])
        return loss

    def _eval_step(self, batch: dict[str, Tensor], stage: str) -> None:
        logits = self(batch).float()
        loss = F.binary_cross_entropy_with_logits(logits, batch["labels"].float())
        self.log(f"{stage}/loss", loss, batch_size=logits.shape[0])
        self._probs[stage].append(torch.sigmoid(logits).cpu().numpy())
        self._gold[stage].append(batch["labels"].cpu().numpy())

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _scores(self, stage: str) -> dict[str, float]:
        from energizer_hf.functional.multilabel import (
            decide_labels,
            multilabel_scores,
            tune_threshold,
        )

        if not self._probs[stage]:
            return {}
        probs, gold = np.concatenate(self._probs[stage]), np.concatenate(self._gold[stage]).astype(np.uint8)
        self._probs[stage], self._gold[stage] = [], []
        if stage == "val" and self.tune_threshold:
            self.threshold = float(tune_threshold(probs, gold))
        decided = decide_labels(probs, self.threshold, at_least_one=self.at_least_one)
        s = multilabel_scores(gold, decided)
        out = {
            f"{stage}/f1_micro": s["micro_f1"],
            f"{stage}/f1_macro": s["macro_f1"],
            f"{stage}/precision_micro": s["micro_precision"],
            f"{stage}/recall_micro": s["micro_recall"],
            f"{stage}/subset_accuracy": s["subset_accuracy"],
            f"{stage}/hamming_loss": s["hamming_loss"],
        }
        if stage == "val":
            out["val/threshold"] = self.threshold
        return {k: float(v) for k, v in out.items()}

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self._scores("val"))

    def on_test_epoch_end(self) -> None:
        self.log_dict(self._scores("test"))
