"""Random sampling: the baseline every strategy must beat."""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np
import pytorch_lightning as pl
import torch

from energizer_hf.query_strategies.base import Strategy, unlabelled_ids
from energizer_hf.query_strategies.registry import register_strategy
from energizer_hf.scoring import QueryContext

__all__ = ["RandomStrategy"]


@register_strategy("random")
class RandomStrategy(Strategy):
    """Uniformly random unlabelled ids, seeded by ``(seed, round)``; never runs the model.

    Time O(N) to list the unlabelled ids; no model forward passes.
    """

    tasks: ClassVar[tuple[str, ...]] = ("text_classification", "multi_label", "token_classification")

    requires_model = False

    def __init__(self, model: pl.LightningModule | torch.nn.Module | None = None) -> None:
        super().__init__(model)

    def query(self, context: QueryContext, k: int) -> np.ndarray:
        start = time.perf_counter()
        candidates = unlabelled_ids(context)
        k = min(k, candidates.size)
        chosen = context.rng(salt=0x5EED).choice(candidates, size=k, replace=False)
        context.add_time("select", start)
        return np.asarray(chosen, dtype=np.int64)
