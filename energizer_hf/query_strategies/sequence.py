"""Acquisition for sequence labelling (token classification, e.g. named-entity recognition).

Each strategy scores a sentence from its per-token tag distributions, over the words of
the sentence only: the first sub-word of each word when the batch carries ``word_ids``
(the HF-native path), else the attention mask. ``pool_step`` returns the per-token scores
and that mask; :class:`~energizer_hf.query_strategies.base.AccumulatorStrategy` reduces
them by ``reduction`` (:func:`~energizer_hf.functional.sequence.reduce_tokens`).

* ``token_entropy`` (sum; ``token_entropy_mean``, ``token_entropy_max``): Settles & Craven,
  EMNLP 2008 (total token entropy and its length-normalised form).
* ``token_least_confidence`` (sum; ``_mean``, ``_max``): ``1 - max_c p_c`` per token.
* ``mnlp``: maximum normalised log-probability of the best path (Shen et al., 2017).

Sum favours long sentences: compare strategies at equal annotation cost with
``budget_unit: tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from energizer_hf.errors import EnergizerError, InvalidScoresError
from energizer_hf.functional.sequence import (
    REDUCTIONS,
    per_token_entropy,
    per_token_least_confidence,
)
from energizer_hf.query_strategies.base import AccumulatorStrategy
from energizer_hf.query_strategies.registry import register_strategy

__all__ = [
    "MNLPStrategy",
    "TokenEntropyStrategy",
    "TokenLeastConfidenceStrategy",
    "TokenStrategy",
    "token_logits_and_mask",
]


def _first_subword(word_ids: Tensor) -> Tensor:
    prev = torch.cat([torch.full_like(word_ids[:, :1], -1), word_ids[:, :-1]], dim=1)
    return (word_ids >= 0) & (word_ids != prev)


def token_logits_and_mask(strategy: Any, batch: Any) -> tuple[Tensor, Tensor | None]:
    """``(B, T, C)`` logits of the strategy's model on ``batch`` and the ``(B, T)`` mask of
    the positions that stand for words: first sub-words (``word_ids``), else the attention
    mask, else ``None`` (every position).

    Raises:
        InvalidScoresError: the model does not return per-token logits.
    """
    out = strategy(strategy.get_inputs_from_batch(batch))
    logits = out if isinstance(out, Tensor) else getattr(out, "logits", None)
    if logits is None and isinstance(out, dict):
        logits = out.get("logits")
    if not isinstance(logits, Tensor) or logits.ndim != 3:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(out).__name__
        raise InvalidScoresError(
            f"{type(strategy).__name__} needs per-token logits (batch, tokens, tags) from "
            f"{type(strategy.model).__name__}, got {shape}: use a token-classification model."
        )
    mask = None
    if isinstance(batch, Mapping):  # a dict or a transformers BatchEncoding (a UserDict)
        if batch.get("word_ids") is not None:
            mask = _first_subword(batch["word_ids"].to(logits.device))
        elif batch.get("attention_mask") is not None:
            mask = batch["attention_mask"].to(logits.device).bool()
    return logits, mask


class TokenStrategy(AccumulatorStrategy):
    """Per-token scores of a token classifier, reduced per sentence by ``reduction``."""

    tasks: ClassVar[tuple[str, ...]] = ("token_classification",)
    default_reduction: ClassVar[str] = "sum"

    def __init__(self, model: Any = None, reduction: str | None = None) -> None:
        super().__init__(model)
        reduction = reduction or self.default_reduction
        if reduction not in REDUCTIONS:
            raise EnergizerError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}.")
        self.token_reduction = reduction

    def per_token(self, logits: Tensor) -> Tensor:
        raise NotImplementedError

    def pool_step(self, batch: Any, batch_idx: int, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor | None]:
        logits, mask = token_logits_and_mask(self, batch)
        return self.per_token(logits.float()), mask


@register_strategy("token_entropy", "token_entropy_sum", "total_token_entropy")
class TokenEntropyStrategy(TokenStrategy):
    """Token entropy summed over the sentence's words (Settles & Craven, EMNLP 2008).

    ``reduction``: ``"sum"`` (default), ``"mean"`` or ``"max"``. Time O(N·T·C); memory O(k).
    """

    def per_token(self, logits: Tensor) -> Tensor:
        return per_token_entropy(logits)


@register_strategy("token_entropy_mean")
class TokenEntropyMeanStrategy(TokenEntropyStrategy):
    """Token entropy averaged over the sentence's words (length-normalised)."""

    default_reduction = "mean"


@register_strategy("token_entropy_max")
class TokenEntropyMaxStrategy(TokenEntropyStrategy):
    """The largest token entropy of the sentence."""

    default_reduction = "max"


@register_strategy("token_least_confidence", "token_least_confidence_sum")
class TokenLeastConfidenceStrategy(TokenStrategy):
    """``1 - max_c p_c`` per word, summed (``reduction`` sum/mean/max). Time O(N·T·C)."""

    def per_token(self, logits: Tensor) -> Tensor:
        return per_token_least_confidence(logits)


@register_strategy("token_least_confidence_mean")
class TokenLeastConfidenceMeanStrategy(TokenLeastConfidenceStrategy):
    """Token least confidence averaged over the sentence's words."""

    default_reduction = "mean"


@register_strategy("token_least_confidence_max")
class TokenLeastConfidenceMaxStrategy(TokenLeastConfidenceStrategy):
    """The least confident word of the sentence."""

    default_reduction = "max"


@register_strategy("mnlp")
class MNLPStrategy(TokenStrategy):
    """Maximum normalised log-probability (Shen et al., ICLR 2018): the sentences whose
    best tag path has the lowest length-normalised log-probability, i.e. the highest
    ``-(1/n) Σ_i log max_c p_ic``. Time O(N·T·C); memory O(k)."""

    default_reduction = "mean"

    def __init__(self, model: Any = None) -> None:
        super().__init__(model, "mean")

    def per_token(self, logits: Tensor) -> Tensor:
        return -torch.log_softmax(logits, -1).max(-1).values
