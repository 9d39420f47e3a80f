"""ALPS: cold-start selection from the surprisal of a masked language model.

Yuan, Lin & Boyd-Graber, "Cold-start Active Learning through Self-supervised Language
Modeling", EMNLP 2020. Each example's *surprisal embedding* is the masked-LM
cross-entropy of a fixed subset (15%) of its tokens, one coordinate per token position
(zero elsewhere), L2-normalised; k-means on these embeddings, then the example nearest each
centroid. No classifier and no labels are needed, so it suits the first round.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from energizer_hf import functional as F
from energizer_hf.errors import EnergizerError
from energizer_hf.query_strategies.diversity import PoolOutputsStrategy, _map_back, as_tensor32
from energizer_hf.query_strategies.registry import register_strategy
from energizer_hf.scoring import QueryContext

__all__ = ["ALPSStrategy", "surprisal_embeddings"]


def _token_selection(input_ids: Tensor, attention_mask: Tensor, fraction: float, seed: int) -> Tensor:
    """A deterministic ~``fraction`` of the real tokens of each row.

    The choice depends only on the token, its position and the seed, never on how the
    pool was batched, so every process and batch size picks the same tokens.
    """
    positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    mixed = (input_ids.long() * 1_000_003 + positions * 7_919 + seed * 104_729) % 2_147_483_647
    mixed = (mixed * 48_271) % 2_147_483_647
    chosen = (mixed % 10_000) < int(fraction * 10_000)
    return chosen & attention_mask.bool()


def surprisal_embeddings(
    mlm: Any,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    *,
    dim: int = 128,
    fraction: float = 0.15,
    seed: int = 0,
    special_ids: tuple[int, ...] = (),
) -> Tensor:
    """``(batch, dim)`` ALPS surprisal embeddings from a masked-LM's logits.

    The input is not masked (as in the paper): the loss of the chosen tokens measures how
    surprising the pretrained model finds them. Positions beyond ``dim`` are dropped.
    """
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    logits = mlm(input_ids=input_ids, attention_mask=attention_mask).logits
    ce = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), input_ids.long(), reduction="none")
    chosen = _token_selection(input_ids, attention_mask, fraction, seed)
    for sid in special_ids:
        chosen &= input_ids != sid
    surprisal = ce * chosen
    out = torch.zeros(input_ids.shape[0], dim, dtype=torch.float32, device=input_ids.device)
    width = min(dim, surprisal.shape[1])
    out[:, :width] = surprisal[:, :width]
    return torch.nn.functional.normalize(out, dim=1)


@register_strategy("alps")
class ALPSStrategy(PoolOutputsStrategy):
    """ALPS (Yuan, Lin & Boyd-Graber, EMNLP 2020): k-means on masked-LM surprisal embeddings.

    Needs a masked language model with the classifier's tokenizer: ``mlm`` is a hub id or
    directory (``AutoModelForMaskedLM``), a model instance, or ``None`` to load the
    classifier's own checkpoint (``config._name_or_path``) with its MLM head. Time: one MLM
    forward per pool row plus O(n_iter · N · k · dim) for k-means; memory O(N · dim).

    Args:
        model: the classifier being trained (only its checkpoint name is used).
        mlm: the masked language model (see above).
        dim: surprisal embedding size (token positions kept).
        fraction: share of tokens whose surprisal is used.
        n_iter: k-means iterations.

    >>> strategy = ALPSStrategy(model, mlm="bert-base-uncased")  # doctest: +SKIP
    >>> first_round = strategy.query(context, k=100)  # doctest: +SKIP
    """

    salt = 11
    requires_mlm: ClassVar[bool] = True

    def __init__(
        self, model: Any = None, mlm: Any = None, dim: int = 128, fraction: float = 0.15, n_iter: int = 50
    ) -> None:
        super().__init__(model)
        if not 0.0 < fraction <= 1.0:
            raise EnergizerError(f"fraction must be in (0, 1], got {fraction}.")
        if dim < 1 or n_iter < 1:
            raise EnergizerError(f"dim and n_iter must be >= 1, got {dim} and {n_iter}.")
        self.mlm_spec, self.dim, self.fraction, self.n_iter = mlm, dim, fraction, n_iter
        self._mlm: Any = None

    def masked_lm(self) -> Any:
        if self._mlm is not None:
            return self._mlm
        spec = self.mlm_spec
        if spec is None:
            inner = getattr(self.model, "model", self.model)
            spec = getattr(getattr(inner, "config", None), "_name_or_path", None)
            if not spec:
                raise EnergizerError(
                    "ALPSStrategy needs a masked language model: pass mlm=<hub id, directory or "
                    "AutoModelForMaskedLM instance> (the classifier was not loaded from a checkpoint)."
                )
        if isinstance(spec, str):
            from transformers import AutoModelForMaskedLM

            spec = AutoModelForMaskedLM.from_pretrained(spec)
        if not callable(spec):
            raise EnergizerError(f"mlm must be a masked language model, got {type(spec).__name__}.")
        self._mlm = spec.eval()
        return self._mlm

    def select(self, context: QueryContext, candidates: np.ndarray, k: int) -> np.ndarray:
        scorer = context.require_scorer(type(self).__name__)
        mlm = self.masked_lm().to(scorer.device)
        seed = int(hashlib.sha256(f"{context.seed}".encode()).hexdigest()[:6], 16)

        def embed(batch: Any) -> Tensor:
            return surprisal_embeddings(
                mlm, batch["input_ids"], batch.get("attention_mask"), dim=self.dim,
                fraction=self.fraction, seed=seed,
            )

        emb = scorer.outputs(
            lambda batch: None, candidates, ("embeddings",), model=mlm, embed=embed,
            tag=f"r{context.round:04d}-alps",
        )["embeddings"]
        picks = self.timed(
            context, lambda: F.bertkm_select(as_tensor32(emb), k, n_iter=self.n_iter, seed=self.seed_for(context))
        )
        return _map_back(candidates, picks)
