"""Strategy base classes.

A strategy wraps a model (any ``LightningModule``; it is deep-copied, so ``strategy.model``
is the one that gets trained) and has one public verb, :meth:`Strategy.query`, which
returns pool ids. Scoring strategies implement one small step, :meth:`AccumulatorStrategy.pool_step`,
that maps a batch to per-example scores; the running top-k does the rest.
"""

from __future__ import annotations

import copy
import functools
import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from energizer_hf.errors import EmptyPoolError, EnergizerError, InvalidScoresError
from energizer_hf.model_outputs import logits_from_output
from energizer_hf.scoring import QueryContext

__all__ = [
    "AccumulatorStrategy",
    "ScoringStrategy",
    "Strategy",
    "logits_from_output",
    "trivial_query",
    "unlabelled_ids",
]


def unlabelled_ids(context: QueryContext) -> np.ndarray:
    """The context's unlabelled pool ids (int64); :class:`EmptyPoolError` when there are none."""
    ids = np.asarray(context.pool.unlabelled_ids, dtype=np.int64)
    if ids.size == 0:
        raise EmptyPoolError("The unlabelled pool is empty: there is nothing to query.")
    return ids


def trivial_query(context: QueryContext, k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The preamble every selecting strategy shares: ``(unlabelled ids, early answer)``.

    The early answer is every unlabelled id (ascending) when ``k`` covers them all, no id
    when ``k <= 0``, and ``None`` when the strategy has to choose.

    Raises:
        EmptyPoolError: nothing is unlabelled.
    """
    candidates = unlabelled_ids(context)
    if k >= candidates.size:
        return candidates, np.sort(candidates)
    if k <= 0:
        return candidates, np.empty(0, dtype=np.int64)
    return candidates, None


def _as_param(value: Any) -> Any:
    """A JSON-able, readable form of a constructor argument (for run records and cards)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Strategy) or (isinstance(value, type) and issubclass(value, Strategy)):
        return value.name
    if isinstance(value, (list, tuple)) and all(
        v is None or isinstance(v, (bool, int, float, str)) for v in value
    ):
        return list(value)
    if isinstance(value, dict) and all(
        isinstance(k, (str, int)) and (v is None or isinstance(v, (bool, int, float, str)))
        for k, v in value.items()
    ):
        return {str(k): v for k, v in value.items()}
    return f"<{type(value).__name__}>"


def _recording_init(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a strategy's ``__init__`` so that the arguments it is called with are kept.

    Every ``__init__`` of the class chain records its bound arguments (defaults included,
    ``**kwargs`` flattened); an inner (parent) ``__init__`` sees the values actually passed
    down, so it has the last word on a name.
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: Strategy, *args: Any, **kwargs: Any) -> None:
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:
            bound = None  # the call itself is wrong: let __init__ raise its own error
        if bound is not None:
            bound.apply_defaults()
            params = self.__dict__.setdefault("_init_params", {})
            for name, param in list(signature.parameters.items())[1:]:
                if param.kind is inspect.Parameter.VAR_KEYWORD:
                    params.update(bound.arguments.get(name, {}))
                elif param.kind is not inspect.Parameter.VAR_POSITIONAL:
                    params[name] = bound.arguments[name]
        init(self, *args, **kwargs)

    __init__._records_params = True  # type: ignore[attr-defined]
    return __init__


class Strategy(pl.LightningModule):
    """Base class of every query strategy.

    Args:
        model: the ``LightningModule`` to train and query with; it is deep-copied.
            Strategies that do not need a model (random) accept ``None``.

    Class attributes the engine reads:
        requires_model: whether :meth:`query` runs the model over the pool.
        tasks: the tasks it serves (``text_classification``, ``multi_label``,
            ``token_classification``); a model with a ``task`` attribute outside them is
            refused at construction (:class:`~energizer_hf.errors.StrategyTaskError`).

    A strategy's parameters are the arguments it was built with (:meth:`get_params`):
    they are recorded in ``run.json`` and listed on the dataset cards.
    """

    name: ClassVar[str] = "strategy"
    requires_model: ClassVar[bool] = True
    tasks: ClassVar[tuple[str, ...]] = ("text_classification",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_records_params", False):
            cls.__init__ = _recording_init(init)  # type: ignore[method-assign]

    def get_params(self) -> dict[str, Any]:
        """The arguments this strategy was built with (but the model), as JSON-able values.

        >>> from energizer_hf.query_strategies import RandomSubset
        >>> RandomSubset(torch.nn.Linear(2, 2), base="margin", subpool_size=100).get_params()
        {'base': 'margin', 'subpool_size': 100}
        """
        raw = self.__dict__.get("_init_params", {})
        return {k: _as_param(v) for k, v in sorted(raw.items()) if k != "model"}

    def __init__(self, model: pl.LightningModule | torch.nn.Module | None = None) -> None:
        super().__init__()
        if model is None and self.requires_model:
            raise EnergizerError(
                f"{type(self).__name__} scores the pool with a model: pass one, e.g. "
                f"{type(self).__name__}(model)."
            )
        from energizer_hf.query_strategies.registry import check_strategy_task

        check_strategy_task(type(self), getattr(model, "task", None))
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
                who=type(self).__name__,
                activation=getattr(model, "output_activation", "softmax"),
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

    ``pool_step`` may also return per-token scores with their mask, ``(scores, mask)``
    of shape ``(batch, tokens)`` each (e.g. a token classifier's per-token entropy and the
    first-sub-word mask): they are reduced to one score per example by
    ``token_reduction`` (``"sum"``, ``"mean"`` or ``"max"``; see
    :func:`energizer_hf.functional.sequence.reduce_tokens`).
    """

    token_reduction: str = "sum"

    def pool_step(self, batch: Any, batch_idx: int, *args: Any, **kwargs: Any) -> Tensor:
        """Return a ``(batch_size,)`` tensor of scores for one pool batch."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement pool_step(batch, batch_idx) returning "
            "one score per example."
        )

    def _check_scores(self, scores: Any, expected: int) -> Tensor:
        if isinstance(scores, (tuple, list)) and len(scores) == 2:
            from energizer_hf.functional.sequence import reduce_tokens

            per_token, mask = scores
            if not isinstance(per_token, Tensor) or per_token.ndim != 2 or per_token.shape[0] != expected:
                raise InvalidScoresError(
                    f"{type(self).__name__}.pool_step returned a (scores, mask) pair whose scores "
                    f"have shape {tuple(getattr(per_token, 'shape', ()))}; per-token scores must be "
                    f"(batch={expected}, tokens), with a mask of the same shape."
                )
            scores = reduce_tokens(per_token, mask, self.token_reduction)  # type: ignore[arg-type]
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
            scores, ids = scorer.topk(
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
        context.report_scores(ids, scores)
        self.on_pool_end(context, ids)
        return ids


# The name the design document also uses for per-example scoring strategies.
ScoringStrategy = AccumulatorStrategy
