"""Diversity strategies: choose a batch that covers or represents the pool in embedding space.

Each strategy is a thin layer over :mod:`energizer_hf.functional.diversity`: it asks the
model for embeddings (its ``embed(inputs)`` hook, e.g.
:meth:`energizer_hf.model.HFSequenceClassifier.embed`) of the unlabelled pool (and of the
labelled training rows where the method uses them), runs the selector seeded by
``(seed, round)``, and maps the chosen rows back to pool ids.

Shared behaviour (:class:`PoolOutputsStrategy`):

- ``k >= unlabelled`` returns every unlabelled id without running the model;
- an empty pool raises :class:`~energizer_hf.errors.EmptyPoolError`;
- a model without ``embed`` raises :class:`~energizer_hf.errors.EnergizerError` naming
  the hook;
- NaN/inf model outputs raise :class:`~energizer_hf.errors.InvalidScoresError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch

from energizer_hf import functional as F
from energizer_hf.errors import EnergizerError, InvalidScoresError
from energizer_hf.query_strategies.base import Strategy, trivial_query
from energizer_hf.query_strategies.registry import register_strategy
from energizer_hf.scoring import QueryContext

__all__ = [
    "CoresetStrategy",
    "KMeansStrategy",
    "PoolOutputsStrategy",
    "ProbCoverStrategy",
    "TypiClustStrategy",
]


class PoolOutputsStrategy(Strategy):
    """Base of the strategies that select from whole-pool outputs (not a running top-k).

    Subclasses implement :meth:`select` on the unlabelled ids; this class handles the
    trivial cases, timing, seeding and error translation.

    Class attributes:
        requires_embeddings: the strategy needs the model's ``embed(inputs)`` hook.
        needs_mc_samples: the strategy runs MC-dropout passes.
    """

    requires_embeddings: ClassVar[bool] = False
    needs_mc_samples: ClassVar[bool] = False
    salt: ClassVar[int] = 0

    def query(self, context: QueryContext, k: int) -> np.ndarray:
        candidates, done = trivial_query(context, k)
        if done is not None:
            return done
        self._check_embed_hook()
        self.on_pool_start(context)
        try:
            ids = np.asarray(self.select(context, candidates, int(k)), dtype=np.int64)
        except F.FunctionalInputError as err:
            raise InvalidScoresError(f"{type(self).__name__}: {err}") from err
        self.on_pool_end(context, ids)
        return ids

    def select(self, context: QueryContext, candidates: np.ndarray, k: int) -> np.ndarray:
        """Return ``k`` distinct ids from ``candidates`` (``0 < k < len(candidates)``)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- helpers
    def _check_embed_hook(self) -> None:
        if not self.requires_embeddings or self.model is None:
            return
        if not callable(getattr(self.model, "embed", None)):
            raise EnergizerError(
                f"{type(self).__name__} needs embeddings but {type(self.model).__name__} has no "
                "`embed(inputs)` hook: define `embed` on the model to return (batch, dim) "
                "embeddings (energizer_hf.model.HFSequenceClassifier has one)."
            )

    def seed_for(self, context: QueryContext, salt: int = 0) -> int:
        """An int seed that depends only on ``(seed, round, class salt, salt)``."""
        return int(context.rng(salt=(self.salt << 8) + salt).integers(2**31 - 1))

    def outputs(
        self, context: QueryContext, ids: np.ndarray, what: tuple[str, ...], **kwargs: Any
    ) -> dict[str, np.ndarray]:
        """:meth:`Strategy.pool_outputs`, checked for NaN/inf."""
        out = self.pool_outputs(context, what=what, ids=ids, **kwargs)
        for key, value in out.items():
            if not np.isfinite(np.asarray(value)).all():
                raise InvalidScoresError(
                    f"{type(self).__name__}: the model produced NaN/inf {key} for some pool "
                    "rows; check the model (e.g. a diverged fit)."
                )
        return out

    def timed(self, context: QueryContext, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            context.add_time("select", start)


def as_tensor32(x: Any) -> torch.Tensor:
    """A float32 CPU tensor of ``x``; copies read-only arrays (e.g. memory-mapped outputs)."""
    arr = np.asarray(x, dtype=np.float32)
    if not arr.flags.writeable:
        arr = arr.copy()
    return torch.from_numpy(arr)


def _labelled_train(context: QueryContext) -> np.ndarray:
    return np.asarray(context.pool.train_ids, dtype=np.int64)


def _with_labelled(
    strategy: PoolOutputsStrategy, context: QueryContext, candidates: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings of ``candidates`` then of the labelled train ids, and the labelled mask."""
    train = _labelled_train(context)
    ids = np.concatenate([candidates, train])
    emb = strategy.outputs(context, ids, ("embeddings",))["embeddings"]
    mask = torch.zeros(ids.size, dtype=torch.bool)
    mask[candidates.size :] = True
    return as_tensor32(emb), mask


def _map_back(ids: np.ndarray, picks: torch.Tensor) -> np.ndarray:
    return ids[picks.numpy().astype(np.int64)]


@register_strategy("coreset", "core_set", "kcenter", "k_center_greedy")
class CoresetStrategy(PoolOutputsStrategy):
    """Core-Set: greedy k-center on embeddings (Sener & Savarese, ICLR 2018).

    Centers start at the labelled training rows; each pick is the unlabelled row farthest
    from every center. Needs embeddings (``embed`` hook) of the unlabelled and labelled
    training rows. Time O((N + L) · (L + k) · d), memory O(N + L) beyond the embeddings.

    >>> strategy = CoresetStrategy(model)           # doctest: +SKIP
    >>> ids = strategy.query(context, k=100)        # doctest: +SKIP
    """

    tasks: ClassVar[tuple[str, ...]] = ("text_classification", "multi_label", "token_classification")

    requires_embeddings = True
    salt = 1

    def select(self, context: QueryContext, candidates: np.ndarray, k: int) -> np.ndarray:
        emb, mask = _with_labelled(self, context, candidates)
        ids = np.concatenate([candidates, _labelled_train(context)])
        picks = self.timed(
            context, lambda: F.kcenter_greedy(emb, k, labelled=mask, seed=self.seed_for(context))
        )
        return _map_back(ids, picks)


@register_strategy("kmeans", "bertkm", "bert_km")
class KMeansStrategy(PoolOutputsStrategy):
    """BERT-KM: k-means (k clusters) on the unlabelled embeddings, then the row nearest each
    centroid (Yuan, Lin & Boyd-Graber, EMNLP 2020; Chang et al., 2021).

    Needs embeddings. Time O(n_iter · N · k · d), memory O(N + chunk · k).

    Args:
        model: the model (needs ``embed``).
        n_iter: Lloyd iterations.

    >>> ids = KMeansStrategy(model, n_iter=20).query(context, k=50)  # doctest: +SKIP
    """

    tasks: ClassVar[tuple[str, ...]] = ("text_classification", "multi_label", "token_classification")

    requires_embeddings = True
    salt = 2

    def __init__(self, model: Any = None, n_iter: int = 50) -> None:
        super().__init__(model)
        if n_iter < 1:
            raise EnergizerError(f"n_iter must be >= 1, got {n_iter}.")
        self.n_iter = n_iter

    def select(self, context: QueryContext, candidates: np.ndarray, k: int) -> np.ndarray:
        emb = self.outputs(context, candidates, ("embeddings",))["embeddings"]
        picks = self.timed(
            context,
            lambda: F.bertkm_select(
                as_tensor32(emb), k, n_iter=self.n_iter, seed=self.seed_for(context)
            ),
        )
        return _map_back(candidates, picks)


@register_strategy("typiclust", "tpc_rp")
class TypiClustStrategy(PoolOutputsStrategy):
    """TypiClust: the most typical row of each least-covered k-means cluster
    (Hacohen, Dekel & Weinshall, ICML 2022). A low-budget / cold-start strategy.

    Needs embeddings of the unlabelled and labelled training rows. Time
    O(n_iter · N · K · d) for K = min(L + k, max_clusters) clusters plus the in-cluster
    kNN; memory O(N + chunk · n_cluster).

    Args:
        model: the model (needs ``embed``).
        n_neighbors: neighbours in the typicality estimate (paper: 20).
        max_clusters: cap on the number of clusters (paper code: 500).
        n_clusters: fixed number of clusters (must not exceed the rows clustered).

    >>> ids = TypiClustStrategy(model).query(context, k=10)  # doctest: +SKIP
    """

    tasks: ClassVar[tuple[str, ...]] = ("text_classification", "multi_label", "token_classification")

    requires_embeddings = True
    salt = 3

    def __init__(
        self,
        model: Any = None,
        n_neighbors: int = 20,
        max_clusters: int = 500,
        n_clusters: int | None = None,
    ) -> None:
        super().__init__(model)
        if n_neighbors < 1 or max_clusters < 1 or (n_clusters is not None and n_clusters < 1):
            raise EnergizerError("n_neighbors, max_clusters and n_clusters must be >= 1.")
        self.n_neighbors, self.max_clusters, self.n_clusters = n_neighbors, max_clusters, n_clusters

    def select(self, context: QueryContext, candidates: np.ndarray, k: int) -> np.ndarray:
        emb, mask = _with_labelled(self, context, candidates)
        if self.n_clusters is not None and self.n_clusters > emb.shape[0]:
            raise EnergizerError(
                f"TypiClustStrategy: n_clusters={self.n_clusters} is more than the "
                f"{emb.shape[0]} rows to cluster; use n_clusters <= {emb.shape[0]}."
            )
        ids = np.concatenate([candidates, _labelled_train(context)])
        picks = self.timed(
            context,
            lambda: F.typiclust(
                emb,
                k,
                labelled=mask,
                n_neighbors=self.n_neighbors,
                n_clusters=self.n_clusters,
                max_clusters=self.max_clusters,
                seed=self.seed_for(context),
            ),
        )
        return _map_back(ids, picks)


@register_strategy("probcover", "prob_cover")
class ProbCoverStrategy(PoolOutputsStrategy):
    """ProbCover: greedy max coverage by δ-balls (Yehuda et al., NeurIPS 2022). Low budget.

    δ is ``delta`` when given, else estimated each query as the largest radius whose
    balls are ``alpha``-pure w.r.t. a k-means clustering into ``n_delta_clusters``
    clusters (the paper uses the number of classes; default: the number of distinct
    known labels, or 10). Embeddings are L2-normalised first (``normalize=True``, as the
    paper).

    Needs embeddings of the unlabelled and labelled training rows. Time O(N² · d) to build
    the ball graph and estimate δ (chunked, never an (N, N) matrix), memory
    O(E + chunk · N) for E ball edges (``max_neighbors`` caps it). Use it on pools up to a
    few tens of thousands of rows, or wrap it in ``random_subset``.

    >>> ids = ProbCoverStrategy(model, delta=0.6).query(context, k=10)  # doctest: +SKIP
    """

    tasks: ClassVar[tuple[str, ...]] = ("text_classification", "multi_label", "token_classification")

    requires_embeddings = True
    salt = 4

    def __init__(
        self,
        model: Any = None,
        delta: float | None = None,
        alpha: float = 0.95,
        n_delta_clusters: int | None = None,
        normalize: bool = True,
        max_neighbors: int | None = None,
    ) -> None:
        super().__init__(model)
        if delta is not None and not delta > 0:
            raise EnergizerError(f"delta must be > 0, got {delta}.")
        if not 0.0 < alpha <= 1.0:
            raise EnergizerError(f"alpha must be in (0, 1], got {alpha}.")
        if n_delta_clusters is not None and n_delta_clusters < 2:
            raise EnergizerError(f"n_delta_clusters must be >= 2, got {n_delta_clusters}.")
        self.delta, self.alpha, self.n_delta_clusters = delta, alpha, n_delta_clusters
        self.normalize, self.max_neighbors = normalize, max_neighbors
        self.last_delta: float | None = None

    def select(self, context: QueryContext, candidates: np.ndarray, k: int) -> np.ndarray:
        emb, mask = _with_labelled(self, context, candidates)
        ids = np.concatenate([candidates, _labelled_train(context)])
        seed = self.seed_for(context)

        def run() -> torch.Tensor:
            x = torch.nn.functional.normalize(emb, dim=1) if self.normalize else emb
            delta = self.delta
            if delta is None:
                delta = probcover_delta(x, context, self.alpha, self.n_delta_clusters, seed)
            self.last_delta = float(delta)
            return F.probcover(
                x, k, labelled=mask, delta=delta, max_neighbors=self.max_neighbors, seed=seed
            )

        return _map_back(ids, self.timed(context, run))


def probcover_delta(
    x: torch.Tensor, context: QueryContext, alpha: float, n_clusters: int | None, seed: int
) -> float:
    """ProbCover's δ for embeddings ``x``: alpha-purity w.r.t. k-means clusters."""
    if n_clusters is None:
        labels = np.asarray(context.pool.labels)
        known = np.unique(labels[labels >= 0])
        n_clusters = int(known.size) if known.size >= 2 else 10
    n_clusters = min(n_clusters, x.shape[0])
    clusters = F.kmeans(x, n_clusters, seed=seed).labels
    delta = F.estimate_probcover_delta(x, clusters, alpha=alpha)
    if not np.isfinite(delta) or delta <= 0:
        delta = float(torch.cdist(x[:1], x).max()) or 1.0
    return float(delta)
