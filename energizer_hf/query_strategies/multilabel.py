"""Acquisition for multi-label classification (a sigmoid per label).

The model's logits go through a sigmoid per label (never a softmax). Strategies:

* ``binary_entropy`` (``mean_binary_entropy``): mean over labels of each label's binary
  entropy (Esuli & Sebastiani, ECIR 2009).
* ``multilabel_least_confidence``: the least confident label decision (``reduction``
  ``"max"``, or ``"mean"`` over labels).
* ``max_margin``: one minus the separation margin between predicted-positive and
  -negative labels (Li & Guo, IJCAI 2013).
* ``mmc``: expected loss reduction with the most confident label vector (Yang et al.,
  KDD 2009), its label cardinality predicted by a logistic regression fitted on the
  labelled rows.
* ``cardinality_random``: the random baseline stratified by predicted label cardinality.

The strategies that decide which labels a row is predicted to carry (``max_margin``,
``cardinality_random``, the fallback cardinality of ``mmc``) use the model's decision
threshold (its ``threshold`` attribute: ``RunConfig.threshold``, or the one tuned on the
validation rows; 0.5 for a model without one) unless given ``threshold``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from energizer_hf.errors import EnergizerError, LabelMismatchError, MissingLabelSetsError
from energizer_hf.functional.multilabel import (
    cardinality_stratified_random,
    mean_binary_entropy,
    mmc_scores,
    multilabel_least_confidence,
    multilabel_max_margin,
)
from energizer_hf.functional.primitives import select_topk
from energizer_hf.model_outputs import logits_from_output
from energizer_hf.query_strategies.base import AccumulatorStrategy, Strategy, trivial_query
from energizer_hf.query_strategies.registry import register_strategy
from energizer_hf.scoring import QueryContext

__all__ = [
    "CardinalityRandomStrategy",
    "MMCStrategy",
    "MeanBinaryEntropyStrategy",
    "MultiLabelLeastConfidenceStrategy",
    "MultiLabelMaxMarginStrategy",
    "decision_threshold",
    "labelled_multi_hot",
]

_ML: tuple[str, ...] = ("multi_label",)


class _SigmoidStrategy(AccumulatorStrategy):
    tasks: ClassVar[tuple[str, ...]] = _ML

    def probs(self, batch: Any) -> Tensor:
        logits = logits_from_output(self(self.get_inputs_from_batch(batch)), self.model)
        return torch.sigmoid(logits.float())


@register_strategy("binary_entropy", "mean_binary_entropy")
class MeanBinaryEntropyStrategy(_SigmoidStrategy):
    """Mean binary entropy over labels. Time O(N·L); memory O(k)."""

    def pool_step(self, batch: Any, batch_idx: int, *args: Any, **kwargs: Any) -> Tensor:
        return mean_binary_entropy(self.probs(batch))


@register_strategy("multilabel_least_confidence", "multilabel_least_confident")
class MultiLabelLeastConfidenceStrategy(_SigmoidStrategy):
    """``min(p, 1 - p)`` per label, the largest (``reduction="max"``) or the mean."""

    def __init__(self, model: Any = None, reduction: str = "max") -> None:
        super().__init__(model)
        if reduction not in ("max", "mean"):
            raise EnergizerError(f"reduction must be 'max' or 'mean', got {reduction!r}.")
        self.reduction = reduction

    def pool_step(self, batch: Any, batch_idx: int, *args: Any, **kwargs: Any) -> Tensor:
        return multilabel_least_confidence(self.probs(batch), self.reduction)  # type: ignore[arg-type]


def decision_threshold(strategy: Any) -> float:
    """The threshold a strategy decides labels with: its own ``threshold`` when given, else
    the model's (``HFMultiLabelClassifier.threshold``: ``RunConfig.threshold`` or the tuned
    one), else 0.5."""
    own = getattr(strategy, "threshold", None)
    if own is not None:
        return float(own)
    model_threshold = getattr(strategy.model, "threshold", None)
    return 0.5 if model_threshold is None else float(model_threshold)


@register_strategy("max_margin", "multilabel_max_margin")
class MultiLabelMaxMarginStrategy(_SigmoidStrategy):
    """One minus the separation margin at ``threshold`` (Li & Guo, 2013). O(N·L log L).

    ``threshold`` defaults to the model's (:func:`decision_threshold`)."""

    def __init__(self, model: Any = None, threshold: float | None = None) -> None:
        super().__init__(model)
        self.threshold = None if threshold is None else float(threshold)

    def pool_step(self, batch: Any, batch_idx: int, *args: Any, **kwargs: Any) -> Tensor:
        return multilabel_max_margin(self.probs(batch), decision_threshold(self))


def _as_vector(value: Any) -> np.ndarray | None:
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        return None
    return arr if arr.ndim == 1 and arr.dtype.kind in "biuf" else None


def _item_label(item: Any, key: str | int | None) -> Any:
    """The label value of one pool item: ``item[key]``, else a mapping's ``labels`` /
    ``label``, else the last element of an ``(inputs, labels)`` tuple."""
    if key is not None:
        try:
            return item[key]
        except (KeyError, IndexError, TypeError):
            return None
    if isinstance(item, Mapping):
        return next((item[k] for k in ("labels", "label") if k in item), None)
    if isinstance(item, (tuple, list)) and len(item) >= 2:
        return item[-1]
    return None


def _class_sequence_names(dataset: Any, key: str | int | None) -> list[str] | None:
    """The label names of a ``datasets.Dataset`` column of label ids (``Sequence(ClassLabel)``)."""
    features = getattr(dataset, "features", None)
    feature = None
    if isinstance(features, dict):
        feature = features.get(key) if key is not None else next((features[k] for k in ("labels", "label") if k in features), None)
    inner = getattr(feature, "feature", None)
    return list(inner.names) if type(inner).__name__ == "ClassLabel" else None


def labelled_multi_hot(
    context: QueryContext, ids: np.ndarray, num_labels: int, label_key: str | int | None = None, who: str = "MMC"
) -> np.ndarray:
    """The ``(n, num_labels)`` multi-hot label sets of the labelled ``ids``: from the pool's
    label store (an ``ActiveLearner`` run, or an ``ActiveDataModule`` given ``(N, L)``
    labels), else read from the pool's items (``item[label_key]``; by default a mapping's
    ``labels``/``label``, or the last element of an ``(inputs, labels)`` tuple: a multi-hot
    vector, or the label ids of a ``Sequence(ClassLabel)`` column).

    Raises:
        MissingLabelSetsError: the items carry no multi-hot label set (the message says
            what to provide).
        LabelMismatchError: the label sets have another number of labels than the model.
    """
    store = getattr(context.pool, "label_store", None)
    if store is not None and hasattr(store, "multi_hot"):
        y = np.asarray(store.multi_hot(ids))
    else:
        dataset = context.pool.dataset
        names = _class_sequence_names(dataset, label_key)
        rows = []
        for i in np.asarray(ids, dtype=np.int64).tolist():
            value = _item_label(dataset[i], label_key)
            if names is not None and value is not None:
                out = np.zeros(len(names), dtype=np.uint8)
                out[np.asarray(value, dtype=np.int64)] = 1
                value = out
            row = _as_vector(value)
            if row is None or not np.isin(row, (0, 1)).all():
                raise MissingLabelSetsError(
                    f"{who} fits its label-cardinality model on the label sets of the labelled rows, and "
                    f"pool row {i} gives none ({type(value).__name__} "
                    f"{'under ' + repr(label_key) if label_key is not None else 'under labels/label or last in a tuple'}"
                    "): give ActiveDataModule(..., labels=<(N, L) multi-hot array>), make the pool's items carry "
                    "a multi-hot 'labels' vector (dict items, or (inputs, labels) tuples), or name where the "
                    f"items keep it with {who}Strategy(model, label_key=...)."
                )
            rows.append(row)
        y = np.stack(rows) if rows else np.zeros((0, num_labels))
    if y.ndim != 2 or (y.shape[0] and y.shape[1] != num_labels):
        raise LabelMismatchError(
            f"The labelled rows' label sets have {y.shape[-1]} labels but the model gives {num_labels} "
            "label scores: build its head with one output per label."
        )
    return y.astype(np.uint8)


@register_strategy("mmc")
class MMCStrategy(Strategy):
    """MMC (Yang et al., KDD 2009): expected number of wrong label decisions under the most
    confident label vector; its cardinality from a logistic regression on the labelled
    rows' sorted probabilities (refitted each query). Scores the unlabelled and labelled
    training rows once (sigmoid outputs). Time O(N·L log L) + the fit; memory O(N·L).

    The labelled rows' label sets come from the pool's label store (an ``ActiveLearner``
    run; an ``ActiveDataModule`` given ``(N, L)`` multi-hot ``labels``), else from the pool's
    items (``label_key``, see :func:`labelled_multi_hot`); with neither, the query raises
    :class:`~energizer_hf.errors.MissingLabelSetsError` rather than run without its
    cardinality model."""

    tasks: ClassVar[tuple[str, ...]] = _ML

    def __init__(self, model: Any = None, threshold: float | None = None, label_key: str | int | None = None) -> None:
        super().__init__(model)
        self.threshold = None if threshold is None else float(threshold)
        self.label_key = label_key

    def query(self, context: QueryContext, k: int) -> np.ndarray:
        candidates, done = trivial_query(context, k)
        if done is not None:
            return done
        ids = np.asarray(context.pool.train_ids, dtype=np.int64)
        labelled_probs = labelled_card = None
        if ids.size:  # the labelled rows' label sets are needed: an error says where they are missing
            logits = np.asarray(self.pool_outputs(context, ("logits",), ids=ids)["logits"])
            y = labelled_multi_hot(context, ids, logits.shape[-1], self.label_key)
            labelled_probs = torch.sigmoid(torch.as_tensor(logits))
            labelled_card = torch.as_tensor(y.sum(1).astype(np.int64))
        logits = self.pool_outputs(context, ("logits",), ids=candidates)["logits"]
        start = time.perf_counter()
        with torch.enable_grad():  # the cardinality model is fitted by L-BFGS
            scores = mmc_scores(torch.sigmoid(torch.as_tensor(np.asarray(logits))), labelled_probs, labelled_card,
                                threshold=decision_threshold(self))
        _, chosen = select_topk(scores.numpy().astype(np.float64), candidates, k)
        context.add_time("select", start)
        return np.asarray(chosen, dtype=np.int64)


@register_strategy("cardinality_random", "cardinality_stratified_random")
class CardinalityRandomStrategy(Strategy):
    """Random, stratified by predicted label cardinality (same expected mix as random,
    less variance in it). Scores the pool once for the cardinalities. Time O(N·L + N log N)."""

    tasks: ClassVar[tuple[str, ...]] = _ML

    def __init__(self, model: Any = None, threshold: float | None = None) -> None:
        super().__init__(model)
        self.threshold = None if threshold is None else float(threshold)

    def query(self, context: QueryContext, k: int) -> np.ndarray:
        candidates, done = trivial_query(context, k)
        if done is not None:
            return done
        logits = self.pool_outputs(context, ("logits",), ids=candidates)["logits"]
        start = time.perf_counter()
        probs = torch.sigmoid(torch.as_tensor(np.asarray(logits)))
        seed = int(context.rng(salt=0xCA4D).integers(2**31))
        picked = cardinality_stratified_random(probs, k, threshold=decision_threshold(self), seed=seed)
        context.add_time("select", start)
        return candidates[picked.numpy()]
