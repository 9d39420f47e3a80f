"""Sub-pool strategies on an approximate-nearest-neighbour index: SEALS and AnchorAL.

On pools of millions of rows, scoring everything every round dominates the cost of active
learning. These wrappers embed the pool once (memory-mapped, fingerprinted:
:mod:`energizer_hf.embeddings`), index it once (faiss: :mod:`energizer_hf.ann`), and each
round pass only a small *sub-pool* found through the index to any base strategy.
(:class:`~energizer_hf.query_strategies.RandomSubset` is the third option: a uniform
sub-pool, no index.)

- :class:`SEALS` — Coleman et al., "Similarity Search for Efficient Active Learning and
  Search of Rare Concepts", AAAI 2022: the sub-pool is the union of the
  ``num_neighbours`` nearest unlabelled neighbours of every labelled example.
- :class:`AnchorAL` — Lesci & Vlachos, "AnchorAL: Computationally Efficient Active
  Learning for Large and Imbalanced Datasets", NAACL 2024: per class, up to
  ``num_anchors`` labelled *anchors* (random, k-means++ over their embeddings, or the most
  uncertain under the current model); the ``num_neighbours`` nearest unlabelled rows of
  each anchor are retrieved; candidates are ranked by their mean cosine similarity to
  the anchors of the class that retrieved them (the best class when several did), and
  the top ``subpool_size`` go to the base strategy. Classes with fewer labelled rows than
  ``num_anchors`` use all of them, so minority classes always take part.

Where the index and embeddings live: ``index_dir`` if given; else, with ``cache_dir``,
``<cache_dir>/<dataset fingerprint>-<encoder fingerprint>/`` (shared by every run on the
same data and encoder); else ``<run_dir>/ann/`` (reloaded on resume). Labelled rows are
excluded at search time; the index is never rebuilt as labels arrive.

Rounds without any labelled row fall back to ``cold_start`` (a strategy name, default
``"random"``; e.g. ``"cold_start_kmeans"``).

Defaults (``num_neighbours``, ``num_anchors``, ``subpool_size``) are this library's
choices, sized so that a round scores at most a few thousand rows; the papers tune them
per dataset. Time per round: one embedding pass and one index build on first use, then
O(L) index searches for SEALS (L labelled rows) or O(C · num_anchors) for AnchorAL, plus
the base strategy on the sub-pool.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from energizer_hf.ann import INDEX_KINDS, AnnIndex, open_or_build_index
from energizer_hf.distributed import broadcast_from_rank0, rank
from energizer_hf.embeddings import (
    PoolEmbeddings,
    embed_pool_with_encoder,
    embed_pool_with_model,
    encoder_fingerprint,
    module_fingerprint,
)
from energizer_hf.errors import (
    CorruptIndexError,
    EnergizerError,
    IndexMismatchError,
)
from energizer_hf.functional.primitives import entropy, select_topk
from energizer_hf.query_strategies.base import Strategy, trivial_query
from energizer_hf.query_strategies.registry import register_strategy
from energizer_hf.query_strategies.wrappers import _build_sharing, _resolve, _SubPool, _Wrapper
from energizer_hf.run import RunDir
from energizer_hf.scoring import QueryContext

__all__ = ["ANCHOR_STRATEGIES", "AnchorAL", "IndexedSubPool", "SEALS"]

log = logging.getLogger(__name__)

ANCHOR_STRATEGIES = ("random", "kmeans++", "uncertainty")
SEARCH_CHUNK = 4096


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise EnergizerError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _root_pool(pool: Any) -> Any:
    return getattr(pool, "_pool", pool)


class IndexedSubPool(_Wrapper):
    """Base of the wrappers that find a sub-pool through the ANN index.

    Args:
        model: the model to train and query with.
        base: the strategy run on the sub-pool (name, class or instance; default ``entropy``).
        encoder: ``None`` to embed with the model's ``embed`` hook at the first query (the
            model being trained, as fitted at round 0), or a sentence-encoder directory /
            Hub id embedding the raw ``text_column`` (reusable across runs).
        text_column: the raw text column, for ``encoder``.
        encoder_max_length: token limit of ``encoder``.
        index: ``"auto"`` (flat / HNSW / IVF by pool size), ``"flat"``, ``"hnsw"`` or ``"ivf"``.
        index_params: build parameters (``m``, ``ef_construction``, ``ef_search`` for
            HNSW; ``nlist``, ``nprobe``, ``train_rows`` for IVF).
        index_dir: where to keep the embeddings and the index (see the module docstring).
        cache_dir: a directory shared between runs; stores are keyed by fingerprints.
        rebuild_index: build the index again at first use (e.g. after a
            :class:`~energizer_hf.errors.CorruptIndexError`); damaged embeddings are
            computed again too.
        cold_start: strategy used while nothing is labelled.
        embeddings: a finished :class:`~energizer_hf.embeddings.PoolEmbeddings` store (or
            its directory) to use as they are, e.g. vectors computed elsewhere; checked
            against the pool's fingerprint. The index is kept in ``index_dir`` or next to it.
        **base_kwargs: arguments of the base when given by name or class.
    """

    label: ClassVar[str] = "subpool"  # the method name written to the round records
    requires_model: ClassVar[bool] = True
    requires_embeddings: ClassVar[bool] = True  # the model's embed hook, unless encoder= is given
    salt: ClassVar[int] = 0x5EA15

    def __init__(
        self,
        model: Any = None,
        base: str | type[Strategy] | Strategy = "entropy",
        *,
        encoder: str | Path | None = None,
        text_column: str = "text",
        encoder_max_length: int = 128,
        index: str = "auto",
        index_params: dict[str, Any] | None = None,
        index_dir: str | Path | None = None,
        cache_dir: str | Path | None = None,
        rebuild_index: bool = False,
        cold_start: str | type[Strategy] = "random",
        embeddings: PoolEmbeddings | str | Path | None = None,
        **base_kwargs: Any,
    ) -> None:
        if index not in INDEX_KINDS:
            raise EnergizerError(f"index must be one of {INDEX_KINDS}, got {index!r}.")
        super().__init__(model, base, **base_kwargs)
        self.encoder = str(encoder) if encoder is not None else None
        self.requires_embeddings = bool(  # type: ignore[misc]
            getattr(self.base, "requires_embeddings", False) or (encoder is None and embeddings is None)
        )
        self.text_column = text_column
        self.encoder_max_length = _positive_int("encoder_max_length", encoder_max_length)
        self.index_kind = index
        self.index_params = dict(index_params or {})
        self.index_dir = Path(index_dir) if index_dir is not None else None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.rebuild_index = bool(rebuild_index)
        if embeddings is not None and encoder is not None:
            raise EnergizerError("Give either encoder= (to compute embeddings) or embeddings= (ready ones), not both.")
        self.embeddings = embeddings
        cold = _resolve(cold_start)
        object.__setattr__(
            self, "cold", cold if isinstance(cold, Strategy) else _build_sharing(cold, self.model, {})
        )
        self._embeddings: PoolEmbeddings | None = None
        self._index: AnnIndex | None = None
        self._rebuilt = False

    @classmethod
    def configured_flags(cls, inner: Any, kwargs: dict[str, Any]) -> dict[str, bool]:
        flags = super().configured_flags(inner, kwargs)
        flags["requires_embeddings"] = flags["requires_embeddings"] or (
            kwargs.get("encoder") is None and kwargs.get("embeddings") is None
        )
        return flags

    # ------------------------------------------------------------------ the index
    def _directory(self, context: QueryContext, encoder_fp: str | None) -> Path:
        pool = _root_pool(context.pool)
        if self.index_dir is not None:
            return self.index_dir
        if self.cache_dir is not None:
            return self.cache_dir / f"{pool.fingerprint}-{encoder_fp or 'model'}"
        if context.run_dir is not None:
            return RunDir(context.run_dir).ann
        raise EnergizerError(
            f"{type(self).__name__} keeps its embeddings and index on disk: pass index_dir= or "
            "cache_dir=, or run it inside a loop (which gives it the run directory)."
        )

    def prepare(self, context: QueryContext) -> tuple[PoolEmbeddings, AnnIndex | None]:
        """Open (or compute) the pool embeddings and the index; the index on rank 0 only."""
        pool = _root_pool(context.pool)
        if self._embeddings is not None and self._embeddings.meta.get("dataset_fingerprint") == pool.fingerprint:
            return self._embeddings, self._index
        start = time.perf_counter()
        rebuild = self.rebuild_index and not self._rebuilt
        if self.embeddings is not None:
            given = self.embeddings
            store = PoolEmbeddings.open(
                given.directory if isinstance(given, PoolEmbeddings) else given,
                dataset_fingerprint=pool.fingerprint, num_rows=len(pool),
            )
            directory = self.index_dir or store.directory
        elif self.encoder is not None:
            enc_fp = encoder_fingerprint(self.encoder, self.encoder_max_length)
            directory = self._directory(context, enc_fp)
            store = self._open_store(directory, pool, enc_fp, rebuild)
            if store is None:
                store = embed_pool_with_encoder(
                    pool.dataset, self.encoder, directory, dataset_fingerprint=pool.fingerprint,
                    text_column=self.text_column, max_length=self.encoder_max_length,
                    device=context.device, progress=context.progress,
                )
        else:
            model_fp = module_fingerprint(self.model) if self.cache_dir is not None else None
            directory = self._directory(context, model_fp)
            store = self._open_store(directory, pool, model_fp, rebuild)
            if store is not None and not str(store.meta.get("encoder", "")).startswith("model:"):
                raise IndexMismatchError(
                    f"The embeddings in '{directory}' were made with the encoder {store.meta.get('encoder')!r} "
                    f"(fingerprint {store.encoder_fingerprint}), but this {type(self).__name__} embeds with the "
                    f"model: pass encoder={store.meta.get('encoder')!r} or another index_dir."
                )
            if store is None:
                store = embed_pool_with_model(
                    lambda ids: self.pool_outputs(context, ("embeddings",), ids=ids)["embeddings"],
                    pool,
                    directory,
                    fingerprint=model_fp or module_fingerprint(self.model),
                    encoder=f"model:{type(self.model).__name__}",
                )
        context.add_time("embed", start)
        index = None
        if rank() == 0:
            t = time.perf_counter()
            try:
                index = open_or_build_index(
                    store, directory, self.index_kind, rebuild=rebuild, seed=context.seed, **self.index_params
                )
            except CorruptIndexError as err:
                raise CorruptIndexError(
                    f"{err} (e.g. {type(self).__name__}(..., rebuild_index=True))"
                ) from err
            context.add_time("index", t)
            context.extras["index"] = {
                "kind": index.kind, "rows": index.ntotal, "build_seconds": index.meta.get("build_seconds"),
                "dir": str(directory),
            }
        self._rebuilt = self._rebuilt or rebuild
        self._embeddings, self._index = store, index
        return store, index

    def _open_store(self, directory: Path, pool: Any, encoder_fp: str | None, rebuild: bool) -> PoolEmbeddings | None:
        if not PoolEmbeddings.exists(directory):
            return None
        try:
            return PoolEmbeddings.open(
                directory, dataset_fingerprint=pool.fingerprint, encoder_fingerprint=encoder_fp, num_rows=len(pool)
            )
        except CorruptIndexError:
            if rebuild:
                log.warning("The embeddings in %s are damaged; computing them again.", directory)
                return None
            raise

    # ------------------------------------------------------------------ the query
    def _candidates(
        self, context: QueryContext, store: PoolEmbeddings, index: AnnIndex, allowed: np.ndarray, k: int, pre: Any
    ) -> np.ndarray:
        """Sub-pool candidates (unlabelled ids), found through the index on rank 0."""
        raise NotImplementedError

    def _precompute(self, context: QueryContext) -> Any:
        """Collective work every rank does before rank 0 searches (e.g. model outputs)."""
        return None

    def query(self, context: QueryContext, k: int) -> np.ndarray:
        unl, done = trivial_query(context, k)
        if done is not None:
            return done
        if _root_pool(context.pool).num_labelled == 0:
            context.extras["subpool"] = {"method": "cold_start", "strategy": getattr(self.cold, "name", "")}
            return np.asarray(self.cold.query(context, k), dtype=np.int64)
        store, index = self.prepare(context)
        pre = self._precompute(context)
        sub = None
        if rank() == 0:
            assert index is not None
            t = time.perf_counter()
            allowed = np.zeros(index.ntotal, dtype=bool)
            allowed[unl] = True
            cand = self._candidates(context, store, index, allowed, int(k), pre)
            found = int(cand.size)
            if cand.size < k:  # too few neighbours: top up uniformly, seeded
                rest = np.setdiff1d(unl, cand, assume_unique=True)
                extra = context.rng(salt=self.salt).choice(rest, size=min(rest.size, int(k) - cand.size), replace=False)
                cand = np.concatenate([cand, extra])
            sub = np.sort(cand.astype(np.int64))
            context.add_time("search", t)
            context.extras["subpool"] = dict(
                context.extras.get("subpool", {}), method=self.label, size=int(sub.size),
                found=found, unlabelled=int(unl.size),
            )
        sub = np.asarray(broadcast_from_rank0(sub), dtype=np.int64)
        view = dataclasses.replace(context, pool=_SubPool(context.pool, sub))
        view.timings = context.timings
        view.extras = context.extras
        return np.asarray(self.base.query(view, k), dtype=np.int64)


def _search_all(index: AnnIndex, store: PoolEmbeddings, ids: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sims, nbrs = [], []
    for lo in range(0, ids.size, SEARCH_CHUNK):
        q = np.asarray(store.array[np.sort(ids[lo : lo + SEARCH_CHUNK])])
        s, n = index.search(q, k, allowed)
        sims.append(s)
        nbrs.append(n)
    if not sims:
        return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
    return np.concatenate(sims), np.concatenate(nbrs)


@register_strategy("seals")
class SEALS(IndexedSubPool):
    """SEALS: run ``base`` on the nearest unlabelled neighbours of the labelled set.

    Args:
        num_neighbours: neighbours retrieved per labelled row (``k`` of the paper, which
            uses 100).
        max_subpool_size: cap on the sub-pool (the candidates most similar to their
            labelled neighbour are kept); ``None``: no cap.
        Other arguments: see :class:`IndexedSubPool`.

    >>> SEALS(model, base="margin", encoder="sentence-transformers/all-MiniLM-L6-v2").query(ctx, 25)  # doctest: +SKIP
    """

    label = "SEALS"

    def __init__(
        self,
        model: Any = None,
        base: str | type[Strategy] | Strategy = "entropy",
        num_neighbours: int = 100,
        max_subpool_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, base, **kwargs)
        self.num_neighbours = _positive_int("num_neighbours", num_neighbours)
        self.max_subpool_size = None if max_subpool_size is None else _positive_int("max_subpool_size", max_subpool_size)

    def _candidates(self, context, store, index, allowed, k, pre=None):  # type: ignore[override]
        labelled = _root_pool(context.pool).labelled_ids
        sims, nbrs = _search_all(index, store, labelled, self.num_neighbours, allowed)
        flat_ids, flat_sims = nbrs.ravel(), sims.ravel()
        keep = flat_ids >= 0
        flat_ids, flat_sims = flat_ids[keep], flat_sims[keep]
        if flat_ids.size == 0:
            return np.empty(0, dtype=np.int64)
        # each candidate's best similarity to a labelled row
        uniq, where = np.unique(flat_ids, return_inverse=True)
        best = np.full(uniq.size, -np.inf)
        np.maximum.at(best, where, flat_sims.astype(np.float64))
        context.extras["subpool"] = {"queries": int(labelled.size)}
        if self.max_subpool_size is not None and uniq.size > self.max_subpool_size:
            uniq = select_topk(best, uniq, self.max_subpool_size)[1]
        return np.sort(uniq)


@register_strategy("anchoral", "anchor_al")
class AnchorAL(IndexedSubPool):
    """AnchorAL: a class-balanced sub-pool around per-class anchors (see the module docstring).

    Args:
        anchor_strategy: ``"random"``, ``"kmeans++"`` (D² seeding over the class's
            embeddings, spreading anchors) or ``"uncertainty"`` (the labelled rows the
            current model is least sure about, by predictive entropy).
        num_anchors: anchors per class (all labelled rows of a class with fewer).
        num_neighbours: neighbours retrieved per anchor.
        subpool_size: rows passed to the base strategy.
        Other arguments: see :class:`IndexedSubPool`.

    >>> AnchorAL(model, base="entropy", num_anchors=10, subpool_size=1000).query(ctx, 25)  # doctest: +SKIP
    """

    label = "AnchorAL"

    def __init__(
        self,
        model: Any = None,
        base: str | type[Strategy] | Strategy = "entropy",
        anchor_strategy: str = "kmeans++",
        num_anchors: int = 10,
        num_neighbours: int = 500,
        subpool_size: int = 1000,
        **kwargs: Any,
    ) -> None:
        if not isinstance(anchor_strategy, str) or anchor_strategy not in ANCHOR_STRATEGIES:
            raise EnergizerError(f"anchor_strategy must be one of {ANCHOR_STRATEGIES}, got {anchor_strategy!r}.")
        super().__init__(model, base, **kwargs)
        self.anchor_strategy = anchor_strategy
        self.num_anchors = _positive_int("num_anchors", num_anchors)
        self.num_neighbours = _positive_int("num_neighbours", num_neighbours)
        self.subpool_size = _positive_int("subpool_size", subpool_size)

    def query(self, context: QueryContext, k: int) -> np.ndarray:
        unl = context.pool.num_unlabelled
        if self.subpool_size >= unl and _root_pool(context.pool).num_labelled > 0:
            if not getattr(self, "_warned_size", False):
                log.warning(
                    "AnchorAL: subpool_size=%d is not smaller than the %d unlabelled rows: the base "
                    "strategy scores the whole pool (no index needed).", self.subpool_size, unl,
                )
                self._warned_size = True
            context.extras["subpool"] = {"method": "whole_pool", "size": int(unl)}
            return np.asarray(self.base.query(context, k), dtype=np.int64)
        return super().query(context, k)

    def _precompute(self, context: QueryContext) -> Any:
        if self.anchor_strategy != "uncertainty":
            return None
        labelled = _root_pool(context.pool).labelled_ids
        probs = np.asarray(self.pool_outputs(context, ("probs",), ids=labelled)["probs"], dtype=np.float64)
        ent = entropy(probs, dim=1)
        return dict(zip(labelled.tolist(), ent.tolist()))

    def anchors(self, context: QueryContext, store: PoolEmbeddings, pre: Any = None) -> dict[int, np.ndarray]:
        """Anchor pool ids per class (sorted), chosen from the labelled rows."""
        pool = _root_pool(context.pool)
        labelled = pool.labelled_ids
        labels = np.asarray(pool.labels)[labelled]
        rng = context.rng(salt=self.salt + 1)
        out: dict[int, np.ndarray] = {}
        for c in np.unique(labels[labels >= 0]).tolist():
            ids = np.sort(labelled[labels == c])
            if ids.size <= self.num_anchors:
                out[int(c)] = ids
                continue
            if self.anchor_strategy == "random":
                chosen = rng.choice(ids, size=self.num_anchors, replace=False)
            elif self.anchor_strategy == "uncertainty":
                ent = np.array([pre[int(i)] for i in ids])
                chosen = select_topk(ent, ids, self.num_anchors)[1]
            else:
                from energizer_hf.functional import kmeans_pp_init

                emb = np.asarray(store.array[ids], dtype=np.float32)
                seed = int(rng.integers(0, 2**31 - 1))
                chosen = ids[kmeans_pp_init(emb, self.num_anchors, seed=seed).numpy()]
            out[int(c)] = np.sort(np.asarray(chosen, dtype=np.int64))
        return out

    def _candidates(self, context, store, index, allowed, k, pre=None):  # type: ignore[override]
        anchors = self.anchors(context, store, pre)
        best: dict[int, float] = {}
        for a_ids in anchors.values():
            a_emb = np.asarray(store.array[a_ids], dtype=np.float32)
            _, nbrs = index.search(a_emb, self.num_neighbours, allowed)
            cand = np.unique(nbrs[nbrs >= 0])
            if cand.size == 0:
                continue
            c_emb = np.asarray(store.array[cand], dtype=np.float32)
            score = (c_emb @ a_emb.T).mean(1)  # mean cosine similarity to the class's anchors
            for i, s in zip(cand.tolist(), score.tolist()):
                if s > best.get(i, -np.inf):
                    best[i] = s
        context.extras["subpool"] = {"anchors": {str(c): int(a.size) for c, a in anchors.items()}}
        if not best:
            return np.empty(0, dtype=np.int64)
        ids = np.fromiter(best.keys(), dtype=np.int64, count=len(best))
        scores = np.fromiter(best.values(), dtype=np.float64, count=len(best))
        return np.sort(select_topk(scores, ids, self.subpool_size)[1])

