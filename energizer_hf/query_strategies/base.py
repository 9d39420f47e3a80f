"""Strategy base classes.

A strategy wraps a model (any ``LightningModule``; it is deep-copied, so ``strategy.model``
is the one that gets trained) and has one public verb, :meth:`Strategy.query`, which
returns pool ids. Scoring strategies implement one small step, :meth:`AccumulatorStrategy.pool_step`,
that maps a batch to per-example scores; the running top-k does the rest.
"""

from __future__ import annotations

import copy
import time
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from energizer_hf.errors import EmptyPoolError, EnergizerError, InvalidScoresError
from energizer_hf.scoring import QueryContext

__all__ = ["AccumulatorStrategy", "ScoringStrategy", "Strategy", "logits_from_output", "unlabelled_ids"]


def unlabelled_ids(context: QueryContext) -> np.ndarray:
    """The context's unlabelled pool ids (int64); :class:`EmptyPoolError` when there are none."""
    ids = np.asarray(context.pool.unlabelled_ids, dtype=np.int64)
    if ids.size == 0:
        raise EmptyPoolError("The unlabelled pool is empty: there is nothing to query.")
    return ids


def logits_from_output(output: Any, model: Any = None) -> Tensor:
    """Extract a ``(batch, num_classes)`` logits tensor from a model's forward output."""
    logits = output
    if not isinstance(output, Tensor):
        logits = getattr(output, "logits", None)
        if logits is None and isinstance(output, dict):
            logits = output.get("logits")
        if logits is None and isinstance(output, (tuple, list)) and output:
            logits = output[0]
    if not isinstance(logits, Tensor):
        name = type(model).__name__ if model is not None else "the model"
        raise InvalidScoresError(
            f"{name} returned {type(output).__name__} from forward; expected a logits tensor "
            "of shape (batch, num_classes) or an output with a `.logits` attribute."
        )
    if logits.ndim != 2:
        name = type(model).__name__ if model is not None else "the model"
        raise InvalidScoresError(
            f"{name} returned logits of shape {tuple(logits.shape)}; expected "
            "(batch, num_classes)."
        )
    return logits


class Strategy(pl.LightningModule):
    """Base class of every query strategy.

    Args:
        model: the ``LightningModule`` to train and query with; it is deep-copied.
            Strategies that do not need a model (random) accept ``None``.

    Class attributes the engine reads:
        requires_model: whether :meth:`query` runs the model over the pool.
    """

    name: ClassVar[str] = "strategy"
    requires_model: ClassVar[bool] = True

    def __init__(self, model: pl.LightningModule | torch.nn.Module | None = None) -> None:
        super().__init__()
        if model is None and self.requires_model:
            raise EnergizerError(
                f"{type(self).__name__} scores the pool with a model: pass one, e.g. "
                f"{type(self).__name__}(model)."
            )
        self.model = copy.deepcopy(model) if model is not None else None

    # ---------------------------------------------------------------- model plumbing
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.model is None:
            raise EnergizerError(f"{type(self).__name__} has no model to run.")
        return self.model(*args, **kwargs)

    def get_inputs_from_batch(self, batch: Any) -> Any:
        """Return what ``forward`` takes from a pool batch (hook).

        Override it (on the strategy or on the model) when batches carry labels or other
        things the model's ``forward`` should not see. By default the model's own
        ``get_inputs_from_batch`` is used when it defines one, else the batch itself.
        """
        hook = getattr(self.model, "get_inputs_from_batch", None)
        if callable(hook):
            return hook(batch)
        return batch

    # ---------------------------------------------------------------- the verb
    def query(self, context: QueryContext, k: int) -> np.ndarray:
        """Return ``min(k, unlabelled)`` distinct unlabelled pool ids."""
        raise NotImplementedError

    def pool_outputs(
        self,
        context: QueryContext,
        what: tuple[str, ...] = ("probs",),
        ids: np.ndarray | None = None,
        num_mc_samples: int = 10,
        mc_replicate: bool = False,
    ) -> dict[str, np.ndarray]:
        """Per-example model outputs over ``ids`` (default: the unlabelled pool), in that order.

        ``what`` holds any of ``logits``, ``probs``, ``embeddings`` (the model's
        ``embed(inputs)`` hook, e.g. :meth:`HFSequenceClassifier.embed`) and ``mc_probs``
        (``(N, T, C)`` MC-dropout probabilities). Computed by the context's
        :class:`~energizer_hf.scoring.PoolScorer`, on every process of a distributed run.
        """
        scorer = context.require_scorer(type(self).__name__)
        ids = context.pool.unlabelled_ids if ids is None else np.asarray(ids, dtype=np.int64)
        model = self.model
        if model is None:
            raise EnergizerError(f"{type(self).__name__} has no model to compute outputs with.")
        was_training = model.training
        model.to(scorer.device)
        model.eval()
        embed = getattr(model, "embed", None)
        both = getattr(model, "logits_and_embeddings", None)
        inputs = self.get_inputs_from_batch
        start = time.perf_counter()
        try:
            return scorer.outputs(
                lambda batch: self(inputs(batch)),
                ids,
                what,
                model=model,
                embed=(lambda batch: embed(inputs(batch))) if callable(embed) else None,
                forward_with_embeddings=(lambda batch: both(inputs(batch))) if callable(both) else None,
                num_mc_samples=num_mc_samples,
                mc_replicate=mc_replicate,
                tag=f"r{context.round:04d}-outputs",
            )
        finally:
            context.add_time("score", start)
            if was_training:
                model.train()

    # ---------------------------------------------------------------- hooks (no-ops)
    def on_round_start(self, loop: Any, round: int) -> None:
        """Called by the loop before each round's fit."""

    def on_round_end(self, loop: Any, record: dict[str, Any]) -> None:
        """Called by the loop after each round's record is written."""

    def on_pool_start(self, context: QueryContext) -> None:
        """Called before the pool is scored."""

    def on_pool_end(self, context: QueryContext, ids: np.ndarray) -> None:
        """Called after the pool is scored, with the chosen ids."""

    def __repr__(self) -> str:
        inner = type(self.model).__name__ if self.model is not None else None
        return f"{type(self).__name__}(model={inner})"


class AccumulatorStrategy(Strategy):
    """Score every unlabelled example and keep the ``k`` best in a running top-k.

    A new scoring strategy is one method:

    >>> from energizer_hf.acquisition_functions import entropy
    >>> class MyEntropy(AccumulatorStrategy):
    ...     def pool_step(self, batch, batch_idx, *args, **kwargs):
    ...         return entropy(self(batch))

    Higher scores are better; ties go to the smaller pool id.
    """

    def pool_step(self, batch: Any, batch_idx: int, *args: Any, **kwargs: Any) -> Tensor:
        """Return a ``(batch_size,)`` tensor of scores for one pool batch."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement pool_step(batch, batch_idx) returning "
            "one score per example."
        )

    def _check_scores(self, scores: Any, expected: int) -> Tensor:
        if not isinstance(scores, Tensor):
            scores = torch.as_tensor(np.asarray(scores))
        scores = scores.reshape(-1) if scores.ndim > 1 and scores.numel() == expected else scores
        if scores.ndim != 1 or scores.shape[0] != expected:
            raise InvalidScoresError(
                f"{type(self).__name__}.pool_step returned scores of shape "
                f"{tuple(scores.shape)} for a batch of {expected} examples; return one score "
                "per example."
            )
        if not torch.isfinite(scores).all():
            bad = int((~torch.isfinite(scores)).sum())
            raise InvalidScoresError(
                f"{type(self).__name__} produced {bad} NaN/inf scores out of {expected}: check "
                "the model's outputs (e.g. a diverged fit) or the strategy's pool_step."
            )
        return scores

    def query(self, context: QueryContext, k: int) -> np.ndarray:
        scorer = context.require_scorer(type(self).__name__)
        if context.pool.num_unlabelled == 0:
            raise EmptyPoolError("The unlabelled pool is empty: there is nothing to query.")
        k = min(k, context.pool.num_unlabelled)
        model = self.model
        was_training = model.training if model is not None else False
        if model is not None:
            model.to(scorer.device)
            model.eval()
        self.on_pool_start(context)
        start = time.perf_counter()
        try:
            _, ids = scorer.topk(
                lambda batch, batch_idx: self.pool_step(batch, batch_idx),
                context.pool.unlabelled_ids,
                k,
                check=self._check_scores,
                tag=f"r{context.round:04d}-topk",
            )
        finally:
            if model is not None and was_training:
                model.train()
        context.add_time("score", start)
        self.on_pool_end(context, ids)
        return ids


# The name the design document also uses for per-example scoring strategies.
ScoringStrategy = AccumulatorStrategy
