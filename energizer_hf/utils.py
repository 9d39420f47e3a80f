"""Small shared helpers: atomic file writes, seeding, fingerprints, JSON lines."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "append_jsonl",
    "atomic_write_bytes",
    "atomic_write_json",
    "dataset_fingerprint",
    "read_jsonl",
    "round_seed",
    "seed_everything",
]


def _fsync_dir(path: Path) -> None:
    # Make the rename itself durable; not every platform lets us open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _atomic_target(path: str | os.PathLike) -> Iterator[Any]:
    """Yield a temporary file object next to ``path``; on success rename it over ``path``.

    The rename is atomic on POSIX, so a reader (or a process resumed after a crash) sees
    either the old content or the new content, never a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    with _atomic_target(path) as fh:
        fh.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save ``array`` in ``.npy`` format atomically."""
    with _atomic_target(path) as fh:
        np.save(fh, array, allow_pickle=False)


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON record as a line and fsync it.

    A crash can at worst leave a truncated last line, which :func:`read_jsonl` drops.
    """
    line = json.dumps(record, sort_keys=True, default=_json_default) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read JSON lines, ignoring a truncated (unparsable) final line left by a crash."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break  # torn write of the last record
            raise
    return records


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serialisable")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) without Lightning's log line."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def round_seed(seed: int, round: int) -> int:
    """A 32-bit seed that depends on the run's seed and the round.

    >>> round_seed(0, 1) == round_seed(0, 1) != round_seed(0, 2)
    True
    """
    return int(np.random.SeedSequence([seed, round + 1]).generate_state(1)[0])


def _hash_update(h: Any, values: Iterable[Any]) -> None:
    for v in values:
        h.update(repr(v).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")


def dataset_fingerprint(dataset: Any, num_samples: int = 256) -> str:
    """A content fingerprint of a dataset that does not depend on where it was loaded from.

    Hashes the number of rows, the features (or type) and up to ``num_samples`` evenly
    spaced rows. Two loads of the same data give the same fingerprint; a different dataset,
    a different order or a different size gives another one. Cheap for any size.
    """
    n = len(dataset)
    h = hashlib.sha256()
    h.update(f"rows={n};".encode())
    positions = np.unique(np.linspace(0, max(n - 1, 0), num=min(n, num_samples)).astype(np.int64))
    features = getattr(dataset, "features", None)
    if features is not None and hasattr(dataset, "select"):
        h.update(repr(features).encode())
        if n:
            rows = dataset[positions.tolist()]  # one batched Arrow read
            for name in sorted(rows):
                h.update(name.encode())
                _hash_update(h, rows[name])
    else:
        h.update(type(dataset).__qualname__.encode())
        for p in positions.tolist() if n else []:
            _hash_update(h, [_torch_item_repr(dataset[p])])
    return h.hexdigest()[:16]


def _torch_item_repr(item: Any) -> Any:
    """Turn a torch dataset item into something with a stable ``repr``."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and isinstance(item, torch.Tensor):
        return item.detach().cpu().numpy().round(6).tolist()
    if isinstance(item, dict):
        return {k: _torch_item_repr(v) for k, v in sorted(item.items())}
    if isinstance(item, (list, tuple)):
        return [_torch_item_repr(v) for v in item]
    if isinstance(item, np.ndarray):
        return item.round(6).tolist() if item.dtype.kind == "f" else item.tolist()
    return item
