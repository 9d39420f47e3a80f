"""A persistent approximate-nearest-neighbour index over pool embeddings (faiss).

:class:`AnnIndex` wraps a faiss index over a :class:`~energizer_hf.embeddings.PoolEmbeddings`
store (inner product on L2-normalised rows = cosine similarity). It is built once, saved
atomically next to the embeddings (``index-<kind>.faiss`` + ``index-<kind>.json`` with the
fingerprints, the build parameters, the file size and its SHA-256), and loaded again on
resume. Labelled ids are excluded *at search time* with a bitmap selector, so the index
is never rebuilt as labels arrive.

Kinds (``kind="auto"`` picks by pool size; see ``docs/huge_pools.md`` for the
measurements behind the thresholds):

- ``"flat"`` — exact search, no build cost; the default up to :data:`FLAT_MAX_ROWS` rows.
- ``"hnsw"`` — ``IndexHNSWFlat`` (Malkov & Yashunin, 2018), ``M=32``,
  ``efConstruction=80``, ``efSearch=max(128, k)``: the default up to
  :data:`HNSW_MAX_ROWS` rows. Keeps a float32 copy of the vectors plus the graph
  (~``N·(4d + 2·4M)`` bytes).
- ``"ivf"`` — ``IndexIVFScalarQuantizer`` with 8-bit codes, ``nlist = 2·sqrt(N)``
  (faiss's guidelines suggest 4-16·sqrt(N); fewer lists train faster on a CPU and
  ``nprobe`` follows them; at most N/39, faiss's minimum of training rows per list),
  trained on ``min(N, 40·nlist)`` sampled rows, ``nprobe = max(16, nlist/64)``: the
  default above that. ``N·d`` bytes of codes, so a 1M × 384 pool needs ~0.4 GB where
  HNSW would need ~1.8 GB.

Build memory is bounded: rows are streamed from the memory map in chunks.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from energizer_hf.errors import CorruptIndexError, EnergizerError, IndexMismatchError
from energizer_hf.utils import atomic_write_json

__all__ = ["FLAT_MAX_ROWS", "HNSW_MAX_ROWS", "INDEX_KINDS", "AnnIndex", "choose_index_kind", "open_or_build_index"]

INDEX_KINDS = ("auto", "flat", "hnsw", "ivf")
FLAT_MAX_ROWS = 20_000
HNSW_MAX_ROWS = 200_000
CHUNK_ROWS = 65_536


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as err:  # pragma: no cover - faiss-cpu is a dependency
        raise ImportError(
            "The ANN index needs faiss: pip install faiss-cpu (or faiss-gpu)."
        ) from err
    return faiss


def choose_index_kind(num_rows: int) -> str:
    """The kind ``"auto"`` resolves to for a pool of ``num_rows``."""
    if num_rows <= FLAT_MAX_ROWS:
        return "flat"
    if num_rows <= HNSW_MAX_ROWS:
        return "hnsw"
    return "ivf"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _default_params(kind: str, n: int, params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if kind == "hnsw":
        out = {"m": 32, "ef_construction": 80, "ef_search": 128}
    elif kind == "ivf":
        # 2·sqrt(N) lists, but at least 39 training rows per list (faiss's minimum)
        nlist = int(params.get("nlist") or max(1, min(65_536, round(2 * math.sqrt(n)), n // 39)))
        nlist = min(nlist, max(1, n))
        out = {"nlist": nlist, "nprobe": max(16, nlist // 64), "train_rows": min(n, 40 * nlist)}
    unknown = set(params) - set(out)
    if unknown:
        raise EnergizerError(
            f"Unknown index parameters {sorted(unknown)} for a '{kind}' index; it takes {sorted(out) or 'none'}."
        )
    out.update({k: v for k, v in params.items() if v is not None})
    for k, v in out.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise EnergizerError(f"Index parameter {k} must be a positive integer, got {v!r}.")
    return out


class AnnIndex:
    """A faiss index over pool embeddings, with its provenance (see the module docstring).

    Build with :meth:`build`, persist with :meth:`save`, reopen with :meth:`load`, or do
    all three with :func:`open_or_build_index`.
    """

    def __init__(self, index: Any, meta: dict[str, Any]) -> None:
        self.index = index
        self.meta = meta

    # ------------------------------------------------------------------ properties
    @property
    def kind(self) -> str:
        return str(self.meta["kind"])

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, embeddings: Any, kind: str = "auto", seed: int = 0, **params: Any) -> AnnIndex:
        """Index every row of ``embeddings`` (a :class:`PoolEmbeddings` or an ``(N, d)`` array
        of L2-normalised float32 rows; pool id = row number)."""
        faiss = _faiss()
        array = getattr(embeddings, "array", embeddings)
        n, d = int(array.shape[0]), int(array.shape[1])
        if n == 0:
            raise EnergizerError("Cannot build an index over zero embeddings.")
        if kind not in INDEX_KINDS:
            raise EnergizerError(f"Unknown index kind {kind!r}; choose from {INDEX_KINDS}.")
        resolved = choose_index_kind(n) if kind == "auto" else kind
        p = _default_params(resolved, n, params)
        start = time.perf_counter()
        train_seconds = 0.0
        if resolved == "flat":
            index = faiss.IndexFlatIP(d)
        elif resolved == "hnsw":
            index = faiss.IndexHNSWFlat(d, p["m"], faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = p["ef_construction"]
            index.hnsw.efSearch = p["ef_search"]
        else:
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFScalarQuantizer(
                quantizer, d, p["nlist"], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
            index.referenced_objects = [quantizer]  # keep the quantizer alive with the index
            rng = np.random.default_rng(seed)
            rows = np.sort(rng.choice(n, size=p["train_rows"], replace=False)) if p["train_rows"] < n else np.arange(n)
            sample = np.ascontiguousarray(array[rows], dtype=np.float32)
            index.cp.seed = int(seed)
            t = time.perf_counter()
            index.train(sample)
            train_seconds = time.perf_counter() - t
            del sample
            index.nprobe = p["nprobe"]
        for lo in range(0, n, CHUNK_ROWS):
            index.add(np.ascontiguousarray(array[lo : lo + CHUNK_ROWS], dtype=np.float32))
        meta = {
            "kind": resolved,
            "params": p,
            "ntotal": n,
            "dim": d,
            "metric": "inner_product",
            "dataset_fingerprint": getattr(embeddings, "meta", {}).get("dataset_fingerprint"),
            "encoder_fingerprint": getattr(embeddings, "meta", {}).get("encoder_fingerprint"),
            "build_seconds": round(time.perf_counter() - start, 3),
            "train_seconds": round(train_seconds, 3),
            "faiss_version": faiss.__version__,
        }
        return cls(index, meta)

    # ------------------------------------------------------------------ persistence
    @staticmethod
    def files(directory: str | os.PathLike, kind: str) -> tuple[Path, Path]:
        d = Path(directory)
        return d / f"index-{kind}.faiss", d / f"index-{kind}.json"

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the index atomically (temporary file, fsync, rename; metadata last)."""
        faiss = _faiss()
        path, meta_path = self.files(directory, self.kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta_path.unlink(missing_ok=True)  # an index without metadata is never trusted
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        self.meta = dict(self.meta, file_bytes=path.stat().st_size, sha256=_sha256(path))
        atomic_write_json(meta_path, self.meta)
        return path

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        kind: str,
        *,
        dataset_fingerprint: str | None = None,
        encoder_fingerprint: str | None = None,
        verify: bool = True,
    ) -> AnnIndex:
        """Reopen a saved index, refusing one made for other data or damaged on disk.

        Raises:
            FileNotFoundError: no saved index of that kind in ``directory``.
            IndexMismatchError: built for another dataset or encoder (both shown).
            CorruptIndexError: the file is truncated, altered or unreadable.
        """
        faiss = _faiss()
        path, meta_path = cls.files(directory, kind)
        if not meta_path.exists() or not path.exists():
            raise FileNotFoundError(f"No saved '{kind}' index in '{directory}'.")
        meta = json.loads(meta_path.read_text())
        problems = []
        if dataset_fingerprint is not None and meta.get("dataset_fingerprint") != dataset_fingerprint:
            problems.append(f"dataset fingerprint {meta.get('dataset_fingerprint')} (this pool: {dataset_fingerprint})")
        if encoder_fingerprint is not None and meta.get("encoder_fingerprint") != encoder_fingerprint:
            problems.append(f"encoder fingerprint {meta.get('encoder_fingerprint')} (these embeddings: {encoder_fingerprint})")
        if problems:
            raise IndexMismatchError(
                f"The index '{path}' was built for another dataset or encoder: " + "; ".join(problems)
                + ". Pass rebuild_index=True to build a new one in its place, or use another directory."
            )
        size = path.stat().st_size
        hint = "Pass rebuild_index=True (or delete the file) to build it again from the stored embeddings."
        if size != meta.get("file_bytes"):
            raise CorruptIndexError(
                f"The index file '{path}' has {size} bytes but was saved with {meta.get('file_bytes')}: it is "
                f"truncated or damaged. {hint}"
            )
        if verify and meta.get("sha256") and _sha256(path) != meta["sha256"]:
            raise CorruptIndexError(f"The index file '{path}' does not match its saved SHA-256: it was altered. {hint}")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as err:
            raise CorruptIndexError(f"faiss could not read '{path}': {str(err).splitlines()[-1][:200]}. {hint}") from err
        p = meta.get("params", {})
        if meta["kind"] == "hnsw":
            index.hnsw.efSearch = int(p.get("ef_search", 128))
        elif meta["kind"] == "ivf":
            index.nprobe = int(p.get("nprobe", 16))
        return cls(index, meta)

    # ------------------------------------------------------------------ search
    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar rows to each query: ``(similarities, ids)``, both ``(q, k)``.

        ``allowed`` is a boolean mask over pool ids (``False`` = never returned, e.g. the
        labelled rows); missing results (fewer than ``k`` allowed neighbours found) are
        ``-1`` ids with ``-inf`` similarity.
        """
        faiss = _faiss()
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if q.shape[1] != self.dim:
            raise EnergizerError(f"Queries have dimension {q.shape[1]}; the index has {self.dim}.")
        k = int(k)
        if k < 1:
            raise EnergizerError(f"k must be >= 1, got {k}.")
        k = min(k, self.ntotal)
        bitmap = sel = None
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            if allowed.shape != (self.ntotal,):
                raise EnergizerError(f"allowed has shape {allowed.shape}; the index holds {self.ntotal} rows.")
            bitmap = np.packbits(allowed, bitorder="little")
            sel = faiss.IDSelectorBitmap(bitmap)
        p = self.meta.get("params", {})
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(int(p.get("ef_search", 128)), k))
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF(sel=sel, nprobe=int(self.index.nprobe))
        else:
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
        sims, ids = self.index.search(q, k, params=params)
        del bitmap  # kept alive until here: faiss reads it during the search
        ids = ids.astype(np.int64, copy=False)
        sims = np.where(ids >= 0, sims, -np.inf).astype(np.float32)
        return sims, ids

    def __repr__(self) -> str:
        return f"AnnIndex(kind={self.kind!r}, ntotal={self.ntotal}, dim={self.dim}, params={self.meta.get('params')})"


def open_or_build_index(
    embeddings: Any,
    directory: str | os.PathLike | None = None,
    kind: str = "auto",
    *,
    rebuild: bool = False,
    seed: int = 0,
    **params: Any,
) -> AnnIndex:
    """Load the saved index of ``embeddings`` (in ``directory``, default its store's), or
    build and save it. A mismatched or damaged index raises unless ``rebuild=True``, which
    builds a new one in its place."""
    directory = Path(directory) if directory is not None else Path(embeddings.directory)
    resolved = choose_index_kind(int(embeddings.array.shape[0])) if kind == "auto" else kind
    if kind not in INDEX_KINDS:
        raise EnergizerError(f"Unknown index kind {kind!r}; choose from {INDEX_KINDS}.")
    if not rebuild:
        try:
            index = AnnIndex.load(
                directory, resolved,
                dataset_fingerprint=embeddings.meta.get("dataset_fingerprint"),
                encoder_fingerprint=embeddings.meta.get("encoder_fingerprint"),
            )
        except FileNotFoundError:
            pass
        else:
            wanted = _default_params(resolved, int(embeddings.array.shape[0]), params)
            if index.ntotal == embeddings.array.shape[0] and index.meta.get("params") == wanted:
                return index
            if index.ntotal != embeddings.array.shape[0]:
                raise IndexMismatchError(
                    f"The index in '{directory}' holds {index.ntotal} rows; the embeddings have "
                    f"{embeddings.array.shape[0]}. Pass rebuild_index=True to build it again."
                )
            # other build parameters requested: build anew (the old file is replaced)
    index = AnnIndex.build(embeddings, resolved, seed=seed, **params)
    index.save(directory)
    return index
