"""Cold start: choose the first labelled set without a trained model.

Methods (``method=``):

- ``"random"``: uniform over the unlabelled rows; **stratified** by ``labels`` when they
  are given (largest-remainder allocation proportional to class frequency, rows with
  label ``-1`` form their own stratum);
- ``"kmeans"``: BERT-KM, the row nearest each of k k-means centroids (Yuan, Lin &
  Boyd-Graber, "Cold-start Active Learning through Self-supervised Language Modeling",
  EMNLP 2020; Chang et al., 2021);
- ``"typiclust"``: TypiClust (Hacohen et al., ICML 2022);
- ``"probcover"``: ProbCover (Yehuda et al., NeurIPS 2022), δ estimated unless given.

The embedding methods use *pretrained* embeddings: an ``(len(pool), d)`` array given as
``embeddings=`` (indexed by pool id, e.g. sentence-transformer vectors), or else the
model's ``embed`` hook (an untrained classifier on a pretrained encoder, e.g.
:class:`~energizer_hf.model.HFSequenceClassifier`). The function
:func:`cold_start_select` does the same on arrays, without a pool.

The loop labels its initial set itself (``LoopSettings.initial_strategy``), so to use a
cold-start method, label its picks before the run::

    from energizer_hf.query_strategies import ColdStartStrategy
    ctx = QueryContext(pool=pool, round=0, seed=0, scorer=PoolScorer(adapter, batch_size=64))
    ids = ColdStartStrategy(model, method="typiclust").query(ctx, k=100)
    pool.label(ids, oracle.annotate(ids, round=0))   # then run the loop as usual
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from energizer_hf import functional as F
from energizer_hf.errors import EnergizerError, InvalidScoresError
from energizer_hf.functional.primitives import allocate
from energizer_hf.query_strategies.diversity import (
    PoolOutputsStrategy,
    as_tensor32,
    probcover_delta,
)
from energizer_hf.query_strategies.registry import register_strategy
from energizer_hf.scoring import QueryContext

__all__ = [
    "COLD_START_METHODS",
    "ColdStartKMeans",
    "ColdStartProbCover",
    "ColdStartRandom",
    "ColdStartStrategy",
    "ColdStartTypiClust",
    "cold_start_select",
    "stratified_sample",
]

COLD_START_METHODS = ("random", "kmeans", "typiclust", "probcover")


def stratified_sample(
    candidates: np.ndarray, labels: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """``k`` of ``candidates`` drawn per label, proportionally to the label frequencies.

    ``labels[i]`` is the label of ``candidates[i]``. Returns distinct ids, sorted.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    # proportional shares, capped at the class sizes; what a small class cannot give goes
    # to the classes with the most room left
    q = allocate((counts / counts.sum()) * k, k, capacity=counts)
    picks = [
        rng.choice(candidates[labels == c], size=int(n), replace=False)
        for c, n in zip(classes, q)
        if n > 0
    ]
    return np.sort(np.concatenate(picks)) if picks else np.empty(0, dtype=np.int64)


def cold_start_select(
    k: int,
    *,
    method: str = "random",
    num_rows: int | None = None,
    embeddings: Any = None,
    labels: Any = None,
    seed: int = 0,
    **method_kwargs: Any,
) -> np.ndarray:
    """Row indices of a first labelled set, chosen without a model.

    Args:
        k: number of rows.
        method: one of :data:`COLD_START_METHODS`.
        num_rows: number of rows (needed for ``"random"`` without embeddings/labels).
        embeddings: ``(N, d)`` pretrained embeddings (needed by the other methods).
        labels: optional ``(N,)`` labels for stratified ``"random"`` (-1 = unknown).
        seed: the seed.
        **method_kwargs: passed to the functional selector (``n_iter``, ``delta``, ...).

    Returns:
        ``min(k, N)`` distinct int64 row indices.

    >>> cold_start_select(3, num_rows=10, labels=[0] * 5 + [1] * 5).size
    3
    """
    if method not in COLD_START_METHODS:
        raise EnergizerError(f"Unknown cold-start method {method!r}; choose from {COLD_START_METHODS}.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise EnergizerError(f"k must be a non-negative integer, got {k!r}.")
    if embeddings is not None:
        x = as_tensor32(embeddings)
        if x.ndim != 2:
            raise EnergizerError(f"embeddings must be (N, d), got shape {tuple(x.shape)}.")
        n = x.shape[0]
    elif labels is not None:
        n = len(labels)
    elif num_rows is not None:
        n = int(num_rows)
    else:
        raise EnergizerError("cold_start_select needs num_rows, labels or embeddings.")
    rng = np.random.default_rng([seed, 0xC01D])
    rows = np.arange(n, dtype=np.int64)
    if k >= n:
        return rows
    if method == "random":
        if labels is not None:
            lab = np.asarray(labels)
            if lab.shape != (n,):
                raise EnergizerError(f"labels must have shape ({n},), got {lab.shape}.")
            return stratified_sample(rows, lab, int(k), rng)
        return np.sort(rng.choice(rows, size=int(k), replace=False))
    if embeddings is None:
        raise EnergizerError(f"cold-start method {method!r} needs embeddings (pretrained vectors).")
    s = int(rng.integers(2**31 - 1))
    try:
        if method == "kmeans":
            picks = F.bertkm_select(x, int(k), seed=s, **method_kwargs)
        elif method == "typiclust":
            picks = F.typiclust(x, int(k), seed=s, **method_kwargs)
        else:
            kw = dict(method_kwargs)
            xn = torch.nn.functional.normalize(x, dim=1) if kw.pop("normalize", True) else x
            delta = kw.pop("delta", None)
            if delta is None:
                n_cl = kw.pop("n_delta_clusters", None) or 10
                clusters = F.kmeans(xn, min(n_cl, n), seed=s).labels
                delta = F.estimate_probcover_delta(xn, clusters, alpha=kw.pop("alpha", 0.95))
                if not np.isfinite(delta) or delta <= 0:
                    delta = 1.0
            picks = F.probcover(xn, int(k), delta=delta, seed=s, **kw)
    except F.FunctionalInputError as err:
        raise InvalidScoresError(f"cold start ({method}): {err}") from err
    return picks.numpy().astype(np.int64)


class ColdStartStrategy(PoolOutputsStrategy):
    """First-round selection without a trained model (see the module docstring).

    Args:
        model: a model with an ``embed`` hook (pretrained encoder), or ``None`` for
            ``"random"`` or when ``embeddings`` are given.
        method: ``"random"`` (stratified by ``labels`` when given), ``"kmeans"``,
            ``"typiclust"`` or ``"probcover"``.
        embeddings: optional ``(len(pool), d)`` pretrained embeddings indexed by pool id.
        labels: optional ``(len(pool),)`` labels for stratification (-1 = unknown).
        **method_kwargs: passed to the selector.

    Time/memory: random O(N); kmeans O(n_iter · N · k · d); typiclust
    O(n_iter · N · K · d); probcover O(N² · d) time, O(E) memory — plus one embedding
    pass over the pool when the model's hook is used.

    >>> ids = ColdStartStrategy(None, method="random", labels=weak_labels).query(ctx, 50)  # doctest: +SKIP
    """

    tasks: ClassVar[tuple[str, ...]] = ("text_classification", "multi_label", "token_classification")

    requires_model: ClassVar[bool] = False
    method: ClassVar[str] = "random"
    salt = 21

    def __init__(
        self,
        model: Any = None,
        method: str | None = None,
        embeddings: Any = None,
        labels: Any = None,
        **method_kwargs: Any,
    ) -> None:
        super().__init__(model)
        method = method or type(self).method
        if method not in COLD_START_METHODS:
            raise EnergizerError(f"Unknown cold-start method {method!r}; choose from {COLD_START_METHODS}.")
        self.method = method  # type: ignore[misc]
        self.embeddings = None if embeddings is None else np.asarray(embeddings, dtype=np.float32)
        self.labels = None if labels is None else np.asarray(labels)
        self.method_kwargs = method_kwargs
        self.requires_embeddings = method != "random" and self.embeddings is None  # type: ignore[misc]
        if self.requires_embeddings and model is None:
            raise EnergizerError(
                f"Cold-start method {method!r} needs embeddings: pass embeddings=(len(pool), d) "
                "array or a model with an `embed(inputs)` hook."
            )

    def select(self, context: QueryContext, candidates: np.ndarray, k: int) -> np.ndarray:
        n = len(context.pool)
        seed = self.seed_for(context)
        if self.method == "random":
            labels = None
            if self.labels is not None:
                if self.labels.shape != (n,):
                    raise EnergizerError(f"labels must have shape ({n},), got {self.labels.shape}.")
                labels = self.labels[candidates]
            rows = cold_start_select(k, num_rows=candidates.size, labels=labels, seed=seed)
            return candidates[rows]
        if self.embeddings is not None:
            if self.embeddings.shape[0] != n:
                raise EnergizerError(
                    f"embeddings have {self.embeddings.shape[0]} rows but the pool has {n}."
                )
            emb = self.embeddings[candidates]
        else:
            emb = self.outputs(context, candidates, ("embeddings",))["embeddings"]
        if self.method == "probcover" and "delta" not in self.method_kwargs:
            x = torch.nn.functional.normalize(as_tensor32(emb), dim=1)
            kw = dict(self.method_kwargs)
            delta = probcover_delta(x, context, kw.pop("alpha", 0.95), kw.pop("n_delta_clusters", None), seed)
            rows = self.timed(
                context,
                lambda: cold_start_select(k, method="probcover", embeddings=emb, seed=seed, delta=delta, **kw),
            )
        else:
            rows = self.timed(
                context,
                lambda: cold_start_select(
                    k, method=self.method, embeddings=emb, seed=seed, **self.method_kwargs
                ),
            )
        return candidates[rows]


@register_strategy("cold_start_random", "cold_start")
class ColdStartRandom(ColdStartStrategy):
    """Cold start, uniform random (stratified when ``labels=`` are given). O(N); no model."""

    method = "random"


@register_strategy("cold_start_kmeans", "cold_start_bertkm")
class ColdStartKMeans(ColdStartStrategy):
    """Cold start with BERT-KM on pretrained embeddings (Yuan et al., EMNLP 2020).
    O(n_iter · N · k · d)."""

    method = "kmeans"
    requires_embeddings = True


@register_strategy("cold_start_typiclust")
class ColdStartTypiClust(ColdStartStrategy):
    """Cold start with TypiClust on pretrained embeddings (Hacohen et al., ICML 2022)."""

    method = "typiclust"
    requires_embeddings = True


@register_strategy("cold_start_probcover")
class ColdStartProbCover(ColdStartStrategy):
    """Cold start with ProbCover on pretrained embeddings (Yehuda et al., NeurIPS 2022).
    O(N² · d) time."""

    method = "probcover"
    requires_embeddings = True
