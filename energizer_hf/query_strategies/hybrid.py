"""Hybrid strategies: uncertainty and diversity together (BADGE, Cluster-Margin, CAL, EGL),
DAL (a labelled-vs-unlabelled discriminator) and BatchBALD (joint mutual information of
the batch on MC-dropout samples).

Thin layers over :mod:`energizer_hf.functional.hybrid` and
:func:`energizer_hf.functional.batchbald_greedy`; see
:class:`~energizer_hf.query_strategies.diversity.PoolOutputsStrategy` for the shared
behaviour (trivial cases, seeding by ``(seed, round)``, error messages).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from energizer_hf import functional as F
from energizer_hf.errors import EnergizerError
from energizer_hf.model_outputs import check_mc_samples
from energizer_hf.query_strategies.diversity import PoolOutputsStrategy, _map_back, _with_labelled
from energizer_hf.query_strategies.diversity import as_tensor32 as _f32
from energizer_hf.query_strategies.registry import register_strategy
from energizer_hf.scoring import QueryContext

__all__ = [
    "BADGEStrategy",
    "BatchBALDStrategy",
    "CALStrategy",
    "ClusterMarginStrategy",
    "DALStrategy",
    "EGLStrategy",
    "dal_scores",
]


@register_strategy("badge")
class BADGEStrategy(PoolOutputsStrategy):
    """BADGE: k-means++ seeding on last-layer gradient embeddings
    (Ash et al., "Deep Batch Active Learning by Diverse, Uncertain Gradient Lower
    Bounds", ICLR 2020).

    Gradient embeddings ``(onehot(ŷ) − p) ⊗ h`` are used in closed form, never built.
    Needs probabilities and embeddings (``embed`` hook; one pass with
    ``logits_and_embeddings``). Time O(N · k · (C + d)), memory O(N · (C + d)).

    >>> ids = BADGEStrategy(model).query(context, k=100)  # doctest: +SKIP
    """

    requires_embeddings = True
    salt = 11

    def select(self, context: QueryContext, candidates: np.ndarray, k: int) -> np.ndarray:
        out = self.outputs(context, candidates, ("probs", "embeddings"))
        picks = self.timed(
            context,
            lambda: F.badge_select(
                _f32(out["probs"]), _f32(out["embeddings"]), k, seed=self.seed_for(context)
            ),
        )
        return _map_back(candidates, picks)


@register_strategy("cluster_margin")
class ClusterMarginStrategy(PoolOutputsStrategy):
    """Cluster-Margin: round-robin over HAC clusters of the lowest-margin rows
    (Citovsky et al., "Batch Active Learning at Scale", NeurIPS 2021).

    Needs probabilities and embeddings. With ``reuse_clusters=True`` (the paper) the
    whole pool is clustered once, at the first query, and the clusters are kept for
    later rounds; otherwise the unlabelled rows are clustered at each query into
    ``n_clusters`` (default ``min(k, n_micro_clusters)``) clusters. Time O(N · C) for
    margins plus O(N · m · d · iters + m³) for the clustering (m = n_micro_clusters,
    default 512); memory O(N + m²).

    Args:
        model: the model (needs ``embed``).
        margin_batch_size: size of the low-margin candidate set (default ``10 · k``).
        n_clusters: number of HAC clusters.
        reuse_clusters: cluster the whole pool once and reuse it.
        n_micro_clusters: exact HAC below this many rows, k-means summary above.

    >>> ids = ClusterMarginStrategy(model, reuse_clusters=True).query(context, k=100)  # doctest: +SKIP
    """

    requires_embeddings = True
    salt = 12

    def __init__(
        self,
        model: Any = None,
        margin_batch_size: int | None = None,
        n_clusters: int | None = None,
        reuse_clusters: bool = False,
        n_micro_clusters: int = 512,
    ) -> None:
        super().__init__(model)
        for name, value in (("margin_batch_size", margin_batch_size), ("n_clusters", n_clusters)):
            if value is not None and value < 1:
                raise EnergizerError(f"{name} must be >= 1, got {value}.")
        if n_micro_clusters < 2:
            raise EnergizerError(f"n_micro_clusters must be >= 2, got {n_micro_clusters}.")
        self.margin_batch_size, self.n_clusters = margin_batch_size, n_clusters
        self.reuse_clusters, self.n_micro_clusters = reuse_clusters, n_micro_clusters
        self.pool_clusters: np.ndarray | None = None

    def select(self, context: QueryContext, candidates: np.ndarray, k: int) -> np.ndarray:
        seed = self.seed_for(context)
        if self.reuse_clusters:
            if self.pool_clusters is None or self.pool_clusters.size != len(context.pool):
                all_ids = np.arange(len(context.pool), dtype=np.int64)
                emb = _f32(self.outputs(context, all_ids, ("embeddings",))["embeddings"])
                n_cl = min(self.n_clusters or self.n_micro_clusters, emb.shape[0])
                self.pool_clusters = self.timed(
                    context,
                    lambda: F.hac_clusters(
                        emb, n_cl, n_micro_clusters=self.n_micro_clusters, seed=seed
                    ).numpy(),
                )
            probs = self.outputs(context, candidates, ("probs",))["probs"]
            picks = self.timed(
                context,
                lambda: F.cluster_margin(
                    _f32(probs),
                    None,
                    k,
                    cluster_labels=self.pool_clusters[candidates],
                    margin_batch_size=self.margin_batch_size,
                    seed=seed,
                ),
            )
            return _map_back(candidates, picks)
        out = self.outputs(context, candidates, ("probs", "embeddings"))
        picks = self.timed(
            context,
            lambda: F.cluster_margin(
                _f32(out["probs"]),
                _f32(out["embeddings"]),
                k,
                n_clusters=self.n_clusters,
                margin_batch_size=self.margin_batch_size,
                n_micro_clusters=self.n_micro_clusters,
                seed=seed,
            ),
        )
        return _map_back(candidates, picks)


@register_strategy("cal", "contrastive")
class CALStrategy(PoolOutputsStrategy):
    """CAL: contrastive examples, whose prediction diverges from their labelled neighbours'
    (Margatina et al., "Active Learning by Acquiring Contrastive Examples", EMNLP 2021).

    Needs probabilities and embeddings of the unlabelled and the labelled training rows
    (at least one). ``target="labels"`` compares with the neighbours' gold labels
    instead of their predictions. Time O(N · L · d) (chunked kNN), memory
    O(N · n_neighbors + chunk · L).

    >>> ids = CALStrategy(model, n_neighbors=10).query(context, k=100)  # doctest: +SKIP
    """

    requires_embeddings = True

    def __init__(self, model: Any = None, n_neighbors: int = 10, target: str = "predictions") -> None:
        super().__init__(model)
        if n_neighbors < 1:
            raise EnergizerError(f"n_neighbors must be >= 1, got {n_neighbors}.")
        if target not in ("predictions", "labels"):
            raise EnergizerError(f"target must be 'predictions' or 'labels', got {target!r}.")
        self.n_neighbors, self.target = n_neighbors, target

    def select(self, context: QueryContext, candidates: np.ndarray, k: int) -> np.ndarray:
        train = np.asarray(context.pool.train_ids, dtype=np.int64)
        if train.size == 0:
            raise EnergizerError(
                "CALStrategy compares candidates with labelled neighbours but no training row "
                "is labelled yet: label an initial set first (or use a cold-start strategy)."
            )
        ids = np.concatenate([candidates, train])
        out = self.outputs(context, ids, ("probs", "embeddings"))
        probs, emb = _f32(out["probs"]), _f32(out["embeddings"])
        n = candidates.size
        labels = np.asarray(context.pool.labels)[train]
        scores = self.timed(
            context,
            lambda: F.cal_scores(
                probs[:n],
                emb[:n],
                probs[n:],
                emb[n:],
                labels,
                self.n_neighbors,
                target=self.target,
            ),
        )
        return F.select_topk(scores.numpy(), candidates, k)[1]


@register_strategy("egl", "expected_gradient_length")
class EGLStrategy(PoolOutputsStrategy):
    """Expected gradient length of the last linear layer, in closed form
    (Settles, Craven & Ray, NeurIPS 2008; Huang et al., 2016).

    Needs probabilities and embeddings. Time O(N · (C + d)), memory O(N · (C + d)).

    >>> ids = EGLStrategy(model).query(context, k=100)  # doctest: +SKIP
    """

    requires_embeddings = True

    def select(self, context: QueryContext, candidates: np.ndarray, k: int) -> np.ndarray:
        out = self.outputs(context, candidates, ("probs", "embeddings"))
        scores = self.timed(
            context, lambda: F.egl_scores(_f32(out["probs"]), _f32(out["embeddings"]))
        )
        return F.select_topk(scores.numpy(), candidates, k)[1]


@register_strategy("batchbald", "batch_bald")
class BatchBALDStrategy(PoolOutputsStrategy):
    """Greedy BatchBALD: the batch of maximal joint mutual information with the weights
    (Kirsch, van Amersfoort & Gal, NeurIPS 2019), on MC-dropout samples.

    Only the ``candidate_pool_size`` rows of highest BALD are considered (pre-filter),
    with lazy greedy evaluation. Needs MC-dropout samples (dropout layers). Time
    O(N · T · C) for the pre-filter plus O(k · M · (k · T + e · T · C)) for M joint
    configurations (``num_samples``) and e evaluated candidates per step; memory
    O(N · T · C + M · T).

    >>> ids = BatchBALDStrategy(model, num_mc_samples=20).query(context, k=10)  # doctest: +SKIP
    """

    needs_mc_samples = True
    salt = 13

    def __init__(
        self,
        model: Any = None,
        num_mc_samples: int = 10,
        num_samples: int = 1000,
        candidate_pool_size: int = 1000,
    ) -> None:
        super().__init__(model)
        check_mc_samples(num_mc_samples)
        if num_samples < 1 or candidate_pool_size < 1:
            raise EnergizerError("num_samples and candidate_pool_size must be >= 1.")
        self.num_mc_samples, self.num_samples = num_mc_samples, num_samples
        self.candidate_pool_size = candidate_pool_size

    def select(self, context: QueryContext, candidates: np.ndarray, k: int) -> np.ndarray:
        seed = self.seed_for(context)
        # MC dropout draws use torch's global generator: seed it for reproducibility.
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            mc = self.outputs(
                context, candidates, ("mc_probs",), num_mc_samples=self.num_mc_samples
            )["mc_probs"]
        picks = self.timed(
            context,
            lambda: F.batchbald_greedy(
                _f32(mc),
                k,
                num_samples=self.num_samples,
                candidate_pool_size=self.candidate_pool_size,
                seed=seed,
            ),
        )
        return _map_back(candidates, picks)


def dal_scores(
    embeddings: torch.Tensor,
    labelled: torch.Tensor,
    *,
    hidden: int = 0,
    steps: int = 100,
    lr: float = 0.05,
    seed: int = 0,
) -> torch.Tensor:
    """``p(unlabelled | x)`` of a discriminator trained to tell labelled from unlabelled.

    A logistic regression (``hidden=0``) or a one-hidden-layer MLP on standardised
    embeddings, full-batch Adam for ``steps`` steps, classes re-weighted to equal mass.
    Deterministic for a ``seed``. Time O(steps · N · d · max(1, hidden)), memory O(N · d).
    """
    x = embeddings.float()
    x = (x - x.mean(0)) / x.std(0, correction=0).clamp_min(1e-6)
    y = (~labelled).float()
    n_pos, n_neg = float(y.sum()), float((1 - y).sum())
    weight = torch.where(y > 0, 0.5 / max(n_pos, 1.0), 0.5 / max(n_neg, 1.0))
    gen = torch.Generator().manual_seed(seed)
    d = x.shape[1]
    if hidden > 0:
        w1 = (torch.randn(d, hidden, generator=gen) / d**0.5).requires_grad_()
        b1 = torch.zeros(hidden, requires_grad=True)
        w2 = (torch.randn(hidden, 1, generator=gen) / hidden**0.5).requires_grad_()
        params = [w1, b1, w2]

        def logits() -> torch.Tensor:
            return (torch.relu(x @ w1 + b1) @ w2).squeeze(1)
    else:
        w = torch.zeros(d, 1, requires_grad=True)
        params = [w]

        def logits() -> torch.Tensor:
            return (x @ w).squeeze(1)

    bias = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([*params, bias], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits() + bias, y, weight=weight, reduction="sum"
            )
            loss.backward()
            opt.step()
    with torch.no_grad():
        return torch.sigmoid(logits() + bias)


@register_strategy("dal", "discriminative")
class DALStrategy(PoolOutputsStrategy):
    """Discriminative Active Learning: pick the rows a labelled-vs-unlabelled
    discriminator is most sure are unlabelled, i.e. least like the labelled set
    (Gissin & Shalev-Shwartz, "Discriminative Active Learning", arXiv 1907.06347, 2019).

    The batch is chosen in ``sub_batches`` steps; after each, the chosen rows count as
    labelled and the discriminator is retrained (as the paper). The discriminator is a
    logistic regression (``hidden=0``, default) or an MLP on the model's embeddings,
    trained with full-batch Adam. Needs embeddings of the unlabelled and labelled
    training rows (at least one). Time O(sub_batches · steps · (N + L) · d ·
    max(1, hidden)), memory O((N + L) · d).

    >>> ids = DALStrategy(model, sub_batches=5).query(context, k=100)  # doctest: +SKIP
    """

    requires_embeddings = True
    salt = 14

    def __init__(
        self, model: Any = None, sub_batches: int = 5, hidden: int = 0, steps: int = 100, lr: float = 0.05
    ) -> None:
        super().__init__(model)
        if sub_batches < 1 or steps < 1 or hidden < 0 or not lr > 0:
            raise EnergizerError(
                "DALStrategy needs sub_batches >= 1, steps >= 1, hidden >= 0 and lr > 0, got "
                f"sub_batches={sub_batches}, steps={steps}, hidden={hidden}, lr={lr}."
            )
        self.sub_batches, self.hidden, self.steps, self.lr = sub_batches, hidden, steps, lr

    def select(self, context: QueryContext, candidates: np.ndarray, k: int) -> np.ndarray:
        if np.asarray(context.pool.train_ids).size == 0:
            raise EnergizerError(
                "DALStrategy contrasts the unlabelled rows with labelled ones but no training row "
                "is labelled yet: label an initial set first (or use a cold-start strategy)."
            )
        emb, mask = _with_labelled(self, context, candidates)
        seed = self.seed_for(context)

        def run() -> np.ndarray:
            taken = mask.clone()
            chosen: list[int] = []
            sizes = [len(a) for a in np.array_split(np.arange(k), min(self.sub_batches, k))]
            for step, size in enumerate(sizes):
                p = dal_scores(emb, taken, hidden=self.hidden, steps=self.steps, lr=self.lr, seed=seed + step)
                p = p.masked_fill(taken, -1.0).numpy().astype(np.float64)
                rows = np.arange(p.size)
                best = F.select_topk(p, rows, size)[1]
                taken[torch.from_numpy(best)] = True
                chosen.extend(best.tolist())
            return np.asarray(chosen, dtype=np.int64)

        rows = self.timed(context, run)
        return candidates[rows]
