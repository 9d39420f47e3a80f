"""Pool embeddings, computed once and stored memory-mapped next to the run.

A :class:`PoolEmbeddings` store is a directory holding ``embeddings.npy`` (an
``(N, d)`` float32 matrix, row ``i`` = pool id ``i``, L2-normalised so that inner product
is cosine similarity) and ``embeddings.json`` (its fingerprints). It is opened with
``np.load(mmap_mode="r")``: reading it costs page cache, not process memory.

The fingerprint pair ``(dataset, encoder)`` decides reuse: a store made for the same
dataset content (:func:`~energizer_hf.utils.dataset_fingerprint`) and the same encoder
weights (:func:`module_fingerprint`) is reused by any run, e.g. through a shared
``cache_dir``; anything else is refused with :class:`~energizer_hf.errors.IndexMismatchError`
showing both fingerprints. A store is written to ``embeddings.npy.partial`` and renamed
only when complete, so an interrupted computation never looks finished.

Two ways to fill a store:

- :func:`embed_pool_with_model`: the model being trained, through its ``embed`` hook and
  the run's :class:`~energizer_hf.scoring.PoolScorer` (all processes of a distributed
  run share the work);
- :func:`embed_pool_with_encoder`: a separate sentence encoder given by Hub name or local
  directory (mean pooling over tokens, as sentence-transformers' MiniLM models do), run
  over the raw text column; each process of a distributed run embeds its share of rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from energizer_hf.data import column_as_numpy
from energizer_hf.distributed import barrier, distributed_rank_world, rank
from energizer_hf.errors import (
    ColumnNotFoundError,
    CorruptIndexError,
    EnergizerError,
    IndexMismatchError,
)
from energizer_hf.utils import atomic_write_json

__all__ = [
    "PoolEmbeddings",
    "embed_pool_with_encoder",
    "embed_pool_with_model",
    "encoder_fingerprint",
    "module_fingerprint",
]

ARRAY_FILE = "embeddings.npy"
META_FILE = "embeddings.json"
FORMAT_VERSION = 1


def module_fingerprint(module: torch.nn.Module) -> str:
    """A content hash of a module's parameters and buffers (names, shapes, bytes)."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def encoder_fingerprint(encoder: str | os.PathLike, max_length: int, pooling: str = "mean") -> str:
    """Fingerprint of a sentence encoder directory or Hub id: its config and weights files."""
    path = Path(encoder)
    h = hashlib.sha256(f"pooling={pooling};max_length={max_length};".encode())
    if path.is_dir():
        for f in sorted(path.iterdir()):
            if f.suffix in (".json", ".txt", ".model") or f.name.endswith((".safetensors", ".bin")):
                h.update(f.name.encode())
                size = f.stat().st_size
                h.update(str(size).encode())
                with open(f, "rb") as fh:  # head and tail: cheap for multi-GB weights
                    h.update(fh.read(1 << 20))
                    if size > 2 << 20:
                        fh.seek(-(1 << 20), os.SEEK_END)
                        h.update(fh.read())
    else:
        h.update(f"hub:{encoder}".encode())
    return h.hexdigest()[:16]


def _file_is_complete(path: Path, rows: int, dim: int) -> tuple[bool, int, int]:
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        header = fh.tell()
    if tuple(shape) != (rows, dim) or np.dtype(dtype) != np.float32:
        raise ValueError(f"it holds a {shape} {dtype} array, not ({rows}, {dim}) float32")
    expected = header + rows * dim * 4
    actual = path.stat().st_size
    return actual == expected, actual, expected


class PoolEmbeddings:
    """A finished, read-only embedding store (see the module docstring).

    Attributes:
        directory: where ``embeddings.npy`` and ``embeddings.json`` live.
        array: the ``(N, d)`` float32 memory map.
        meta: the fingerprints and provenance (``dataset_fingerprint``,
            ``encoder_fingerprint``, ``encoder``, ``num_rows``, ``dim``, ``seconds``).
    """

    def __init__(self, directory: str | os.PathLike, array: np.ndarray, meta: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.array = array
        self.meta = meta

    @property
    def num_rows(self) -> int:
        return int(self.array.shape[0])

    @property
    def dim(self) -> int:
        return int(self.array.shape[1])

    @property
    def dataset_fingerprint(self) -> str:
        return str(self.meta["dataset_fingerprint"])

    @property
    def encoder_fingerprint(self) -> str:
        return str(self.meta["encoder_fingerprint"])

    @staticmethod
    def exists(directory: str | os.PathLike) -> bool:
        d = Path(directory)
        return (d / META_FILE).exists() and (d / ARRAY_FILE).exists()

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike,
        *,
        dataset_fingerprint: str | None = None,
        encoder_fingerprint: str | None = None,
        num_rows: int | None = None,
    ) -> PoolEmbeddings:
        """Open a finished store, checking what the caller expects of it.

        Raises:
            FileNotFoundError: there is no finished store in ``directory``.
            IndexMismatchError: it was made for another dataset or encoder.
            CorruptIndexError: the matrix file is truncated or unreadable.
        """
        d = Path(directory)
        if not cls.exists(d):
            raise FileNotFoundError(f"No finished embedding store in '{d}'.")
        meta = json.loads((d / META_FILE).read_text())
        problems = []
        if dataset_fingerprint is not None and meta.get("dataset_fingerprint") != dataset_fingerprint:
            problems.append(
                f"dataset fingerprint {meta.get('dataset_fingerprint')} (this pool: {dataset_fingerprint})"
            )
        if encoder_fingerprint is not None and meta.get("encoder_fingerprint") != encoder_fingerprint:
            problems.append(
                f"encoder fingerprint {meta.get('encoder_fingerprint')} [{meta.get('encoder')}] "
                f"(requested: {encoder_fingerprint})"
            )
        if num_rows is not None and meta.get("num_rows") != num_rows:
            problems.append(f"{meta.get('num_rows')} rows (this pool: {num_rows})")
        if problems:
            raise IndexMismatchError(
                f"The embeddings in '{d}' were made for another dataset or encoder: "
                + "; ".join(problems)
                + ". Use another directory (or cache_dir) for this pool, or delete that one."
            )
        path = d / ARRAY_FILE
        rows, dim = int(meta["num_rows"]), int(meta["dim"])
        try:
            ok, actual, expected = _file_is_complete(path, rows, dim)
        except (ValueError, OSError) as err:
            raise CorruptIndexError(
                f"'{path}' is not a readable .npy file ({err}). Delete '{d}' (or pass "
                "rebuild_index=True) to compute the embeddings again."
            ) from err
        if not ok:
            raise CorruptIndexError(
                f"'{path}' has {actual} bytes where {rows} x {dim} float32 rows need {expected}: "
                f"the file is truncated or damaged. Delete '{d}' (or pass rebuild_index=True) to "
                "compute the embeddings again."
            )
        array = np.load(path, mmap_mode="r")
        return cls(d, array, meta)

    def __repr__(self) -> str:
        return (
            f"PoolEmbeddings(rows={self.num_rows}, dim={self.dim}, encoder={self.meta.get('encoder')!r}, "
            f"dir='{self.directory}')"
        )


class EmbeddingWriter:
    """Writes a store: rows go into ``embeddings.npy.partial``; :meth:`finish` publishes it."""

    def __init__(
        self,
        directory: str | os.PathLike,
        num_rows: int,
        dim: int,
        *,
        dataset_fingerprint: str,
        encoder_fingerprint: str,
        encoder: str,
        create: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.partial = self.directory / (ARRAY_FILE + ".partial")
        self.meta = {
            "format": FORMAT_VERSION,
            "dataset_fingerprint": dataset_fingerprint,
            "encoder_fingerprint": encoder_fingerprint,
            "encoder": encoder,
            "num_rows": int(num_rows),
            "dim": int(dim),
            "normalized": True,
            "dtype": "float32",
        }
        self._start = time.perf_counter()
        if create:
            for stale in (self.directory / META_FILE, self.directory / ARRAY_FILE):
                stale.unlink(missing_ok=True)
            np.lib.format.open_memmap(self.partial, mode="w+", dtype=np.float32, shape=(num_rows, dim)).flush()
        self.array = np.lib.format.open_memmap(self.partial, mode="r+")

    def write(self, ids: np.ndarray, rows: np.ndarray | torch.Tensor) -> None:
        """Write L2-normalised ``rows`` at pool ``ids``."""
        if isinstance(rows, torch.Tensor):
            rows = rows.detach().float().cpu().numpy()
        rows = np.asarray(rows, dtype=np.float32)
        if not np.isfinite(rows).all():
            raise EnergizerError("The encoder produced NaN/inf embeddings; check the encoder's weights.")
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        self.array[np.asarray(ids, dtype=np.int64)] = rows / np.maximum(norms, 1e-12)

    def finish(self, extra: dict[str, Any] | None = None) -> PoolEmbeddings:
        self.array.flush()
        del self.array
        with open(self.partial, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self.partial, self.directory / ARRAY_FILE)
        meta = dict(self.meta, seconds=round(time.perf_counter() - self._start, 3), **(extra or {}))
        atomic_write_json(self.directory / META_FILE, meta)  # last: marks the store finished
        return PoolEmbeddings.open(self.directory)


# ---------------------------------------------------------------------------- computing
def embed_pool_with_model(
    embed: Callable[[np.ndarray], np.ndarray],
    pool: Any,
    directory: str | os.PathLike,
    *,
    fingerprint: str,
    encoder: str = "model",
) -> PoolEmbeddings:
    """Embed every pool row with ``embed(ids) -> (len(ids), d)`` and store the result.

    ``embed`` is usually the strategy's model through the run's scorer (its ``embed`` hook):
    collective in a distributed run, every rank calls this; rank 0 writes. ``fingerprint``
    identifies the encoder (e.g. :func:`module_fingerprint` of the model at this moment);
    ``encoder`` names it in the store's metadata.
    """
    n = len(pool)
    ids = np.arange(n, dtype=np.int64)
    start = time.perf_counter()
    emb = embed(ids)
    if rank() == 0:
        writer = EmbeddingWriter(
            directory, n, int(emb.shape[1]), dataset_fingerprint=pool.fingerprint,
            encoder_fingerprint=fingerprint, encoder=encoder,
        )
        step = 65_536
        for lo in range(0, n, step):
            writer.write(ids[lo : lo + step], np.asarray(emb[lo : lo + step]))
        writer.finish({"compute_seconds": round(time.perf_counter() - start, 3)})
    barrier()
    return PoolEmbeddings.open(directory)


def embed_pool_with_encoder(
    dataset: Any,
    encoder: str | os.PathLike,
    directory: str | os.PathLike,
    *,
    dataset_fingerprint: str,
    text_column: str = "text",
    max_length: int = 128,
    batch_size: int = 128,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> PoolEmbeddings:
    """Embed the ``text_column`` of ``dataset`` with a separate sentence encoder.

    ``encoder`` is a local directory or a Hub id loadable by
    ``transformers.AutoModel``/``AutoTokenizer``; embeddings are the attention-masked mean
    of the last hidden states, L2-normalised. Rows are processed in length-sorted batches;
    in a distributed run each rank embeds every ``world``-th batch and writes it into the
    shared file (rank 0 creates and publishes it).
    """
    from transformers import AutoModel, AutoTokenizer

    if text_column not in dataset.column_names:
        raise ColumnNotFoundError(
            f"The pool has no text column '{text_column}' to embed with {encoder} (columns: "
            f"{dataset.column_names}); pass text_column=..."
        )
    rank, world = distributed_rank_world()
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(str(encoder))
    model = AutoModel.from_pretrained(str(encoder)).to(dev).eval()
    fp = encoder_fingerprint(encoder, max_length)
    n = len(dataset)
    dim = int(model.config.hidden_size)
    def make_writer(create: bool) -> EmbeddingWriter:
        return EmbeddingWriter(directory, n, dim, dataset_fingerprint=dataset_fingerprint,
                               encoder_fingerprint=fp, encoder=str(encoder), create=create)

    if rank == 0:
        writer = make_writer(create=True)
    barrier()  # the file exists before the other ranks open it
    if rank != 0:
        writer = make_writer(create=False)
    # length-sorted batches (character length is a good proxy) keep padding small
    lengths = np.fromiter(
        (len(t) if isinstance(t, str) else 0 for t in column_as_numpy(dataset, text_column)), dtype=np.int64, count=n
    )
    order = np.argsort(lengths, kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    start = time.perf_counter()
    iterator = batches[rank::world]
    if progress and rank == 0:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="Embedding pool", unit="batch")
    with torch.inference_mode():
        for batch_ids in iterator:
            idx = np.sort(batch_ids)
            batch_texts = [t if isinstance(t, str) else "" for t in dataset[idx.tolist()][text_column]]
            enc = tokenizer(batch_texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt").to(dev)
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            writer.write(idx, pooled)
    writer.array.flush()
    barrier()
    if rank == 0:
        writer.finish({"compute_seconds": round(time.perf_counter() - start, 3), "max_length": max_length,
                       "pooling": "mean", "processes": world})
    barrier()
    return PoolEmbeddings.open(directory)
