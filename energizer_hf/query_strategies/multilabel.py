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
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from energizer_hf.errors import EnergizerError
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


@register_strategy("max_margin", "multilabel_max_margin")
class MultiLabelMaxMarginStrategy(_SigmoidStrategy):
    """One minus the separation margin at ``threshold`` (Li & Guo, 2013). O(N·L log L)."""

    def __init__(self, model: Any = None, threshold: float = 0.5) -> None:
        super().__init__(model)
        self.threshold = float(threshold)

    def pool_step(self, batch: Any, batch_idx: int, *args: Any, **kwargs: Any) -> Tensor:
        return multilabel_max_margin(self.probs(batch), self.threshold)


def _labelled_multi_hot(context: QueryContext, ids: np.ndarray) -> np.ndarray | None:
    store = getattr(context.pool, "label_store", None)
    if store is None or not hasattr(store, "multi_hot"):
        return None
    return np.asarray(store.multi_hot(ids))


@register_strategy("mmc")
class MMCStrategy(Strategy):
    """MMC (Yang et al., KDD 2009): expected number of wrong label decisions under the most
    confident label vector; its cardinality from a logistic regression on the labelled
    rows' sorted probabilities (refitted each query). Scores the unlabelled and labelled
    training rows once (sigmoid outputs). Time O(N·L log L) + the fit; memory O(N·L)."""

    tasks: ClassVar[tuple[str, ...]] = _ML

    def query(self, context: QueryContext, k: int) -> np.ndarray:
        candidates, done = trivial_query(context, k)
        if done is not None:
            return done
        ids = np.asarray(context.pool.train_ids, dtype=np.int64)
        y = _labelled_multi_hot(context, ids)
        labelled_probs = labelled_card = None
        if y is not None and ids.size:
            logits = self.pool_outputs(context, ("logits",), ids=ids)["logits"]
            labelled_probs = torch.sigmoid(torch.as_tensor(np.asarray(logits)))
            labelled_card = torch.as_tensor(y.sum(1).astype(np.int64))
        logits = self.pool_outputs(context, ("logits",), ids=candidates)["logits"]
        start = time.perf_counter()
        with torch.enable_grad():  # the cardinality model is fitted by L-BFGS
            scores = mmc_scores(torch.sigmoid(torch.as_tensor(np.asarray(logits))), labelled_probs, labelled_card)
        _, chosen = select_topk(scores.numpy().astype(np.float64), candidates, k)
        context.add_time("select", start)
        return np.asarray(chosen, dtype=np.int64)


@register_strategy("cardinality_random", "cardinality_stratified_random")
class CardinalityRandomStrategy(Strategy):
    """Random, stratified by predicted label cardinality (same expected mix as random,
    less variance in it). Scores the pool once for the cardinalities. Time O(N·L + N log N)."""

    tasks: ClassVar[tuple[str, ...]] = _ML

    def __init__(self, model: Any = None, threshold: float = 0.5) -> None:
        super().__init__(model)
        self.threshold = float(threshold)

    def query(self, context: QueryContext, k: int) -> np.ndarray:
        candidates, done = trivial_query(context, k)
        if done is not None:
            return done
        logits = self.pool_outputs(context, ("logits",), ids=candidates)["logits"]
        start = time.perf_counter()
        probs = torch.sigmoid(torch.as_tensor(np.asarray(logits)))
        seed = int(context.rng(salt=0xCA4D).integers(2**31))
        picked = cardinality_stratified_random(probs, k, threshold=self.threshold, seed=seed)
        context.add_time("select", start)
        return candidates[picked.numpy()]
