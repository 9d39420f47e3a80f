"""Small shared helpers: atomic file writes, seeding, fingerprints, JSON lines."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "JsonlScan",
    "append_jsonl",
    "atomic_write_bytes",
    "atomic_write_json",
    "cached_map",
    "dataset_fingerprint",
    "progress_enabled",
    "read_jsonl",
    "repair_jsonl_tail",
    "round_seed",
    "scan_jsonl",
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

    A crash can at worst leave a truncated last line: :func:`read_jsonl` ignores it, and
    the next append first cuts it off (:func:`repair_jsonl_tail`) instead of gluing the new
    record onto it.
    """
    line = json.dumps(record, sort_keys=True, default=_json_default) + "\n"
    repair_jsonl_tail(path)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def jsonl_line(record: dict) -> str:
    """The line :func:`append_jsonl` writes for ``record`` (sorted keys, NumPy values as numbers)."""
    return json.dumps(record, sort_keys=True, default=_json_default) + "\n"


def append_lines(path: str | os.PathLike, lines: Sequence[str]) -> int:
    """Append complete lines with one write and one fsync; return the file's new size in bytes.

    The batched form of :func:`append_jsonl` (lines from :func:`jsonl_line`), for logs that
    record their size elsewhere (a checkpoint) and cut anything past it on reopening.
    """
    with open(path, "ab") as fh:
        if lines:
            fh.write("".join(lines).encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        return fh.tell()


@dataclass
class JsonlScan:
    """What :func:`scan_jsonl` found in a JSON-lines file.

    Attributes:
        records: the parsed records (JSON objects), in order.
        lines: the 1-based line number of each record.
        good_bytes: length of the prefix made of complete, newline-terminated lines (plus a
            complete last record that only lacks its newline).
        size: the file's size in bytes.
        tail: ``None``; ``"torn"`` when the last line is not a JSON object (a torn write,
            dropped); ``"unterminated"`` when it is one but lacks its final newline.
        bad_lines: 1-based numbers of damaged lines that are *not* the last line.
    """

    records: list[dict] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    good_bytes: int = 0
    size: int = 0
    tail: str | None = None
    bad_lines: list[int] = field(default_factory=list)


def scan_jsonl(path: str | os.PathLike) -> JsonlScan:
    """Parse a JSON-lines file line by line (as bytes: a torn multi-byte character is a
    damaged line, not a decoding error of the whole file)."""
    path = Path(path)
    scan = JsonlScan()
    if not path.exists():
        return scan
    data = path.read_bytes()
    scan.size = len(data)
    chunks = data.split(b"\n")
    last = len(chunks) - 1  # the part after the final newline ("" when terminated)
    while last > 0 and not chunks[last].strip():
        last -= 1
    offset = 0
    for i, chunk in enumerate(chunks):
        terminated = i < len(chunks) - 1
        end = offset + len(chunk) + (1 if terminated else 0)
        if not chunk.strip():
            if terminated and not scan.tail:
                scan.good_bytes = end
            offset = end
            continue
        try:
            obj = json.loads(chunk.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            obj = None
        if not isinstance(obj, dict):
            if i == last:
                scan.tail = "torn"
            else:
                scan.bad_lines.append(i + 1)
            offset = end
            continue
        if not scan.bad_lines:
            scan.records.append(obj)
            scan.lines.append(i + 1)
            scan.good_bytes = end
            if not terminated:
                scan.tail = "unterminated"
        offset = end
    return scan


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read JSON lines, ignoring a truncated (unparsable) final line left by a crash.

    Raises:
        CorruptRecordsError: a damaged line that is not the last (named by its number).
    """
    scan = scan_jsonl(path)
    if scan.bad_lines:
        from energizer_hf.errors import CorruptRecordsError

        first = scan.bad_lines[0]
        raise CorruptRecordsError(
            f"Line {first} of '{path}' is not a JSON record, and it is not the last line (so not "
            "a torn write): the file was edited or damaged. Restore it from a backup, or delete "
            f"line {first} and the lines after it (for rounds.jsonl, those rounds are redone on "
            "the next run)."
        )
    return scan.records


def repair_jsonl_tail(path: str | os.PathLike) -> str | None:
    """Make a JSON-lines file end with a complete line: cut off a torn last line, or add
    the newline a complete last record lacks. Returns ``"torn"``, ``"unterminated"`` or
    ``None`` (nothing to do). Cheap: reads only the end of the file when it is fine."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return None
            size = fh.tell()
            fh.seek(max(size - (1 << 20), 0))
            tail = fh.read()  # the last MiB: enough for any record's line
            if tail.endswith(b"\n") and _last_line_is_a_record(tail, whole=size <= len(tail)):
                return None
    except FileNotFoundError:
        return None
    scan = scan_jsonl(path)
    if scan.bad_lines:  # damage before the end: not a torn write; read_jsonl names it
        return None
    if scan.tail == "unterminated":
        with open(path, "ab") as fh:
            fh.write(b"\n")
            fh.flush()
            os.fsync(fh.fileno())
    elif scan.tail == "torn" or scan.good_bytes < scan.size:
        with open(path, "r+b") as fh:
            fh.truncate(scan.good_bytes)
            fh.flush()
            os.fsync(fh.fileno())
        return "torn"
    return scan.tail


def _last_line_is_a_record(tail: bytes, whole: bool) -> bool:
    """Whether the last non-empty line of ``tail`` (the end of a file) is a JSON object; a
    line that may start before ``tail`` (not ``whole``) and holds no newline is checked by
    the full scan instead."""
    lines = [ln for ln in tail.split(b"\n") if ln.strip()]
    if not lines or (len(lines) == 1 and not whole):
        return False
    try:
        return isinstance(json.loads(lines[-1].decode("utf-8")), dict)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False


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

    A ``datasets.Dataset`` (anything Arrow-backed) is hashed whole: its number of rows, its
    features and every column's Arrow data, in fixed windows of rows, so that an edited
    label or text anywhere changes the fingerprint while the same data loaded again (from
    CSV, Parquet, ``save_to_disk`` or memory, in any chunking) gives the same one. It reads
    each buffer once (about a second for a million short texts). A map-style torch dataset
    (no Arrow data) is hashed on ``num_samples`` evenly spaced items.

    >>> import datasets
    >>> a = datasets.Dataset.from_dict({"text": ["x", "y"], "label": [0, 1]})
    >>> b = datasets.Dataset.from_dict({"text": ["x", "y"], "label": [0, 0]})
    >>> dataset_fingerprint(a) == dataset_fingerprint(a.select([0, 1])), dataset_fingerprint(a) == dataset_fingerprint(b)
    (True, False)
    """
    n = len(dataset)
    h = hashlib.sha256()
    h.update(f"rows={n};".encode())
    features = getattr(dataset, "features", None)
    if features is not None and hasattr(dataset, "with_format"):
        h.update(b"arrow-v2;")
        h.update(repr(features).encode())
        table = dataset.with_format("arrow")[:] if n else None
        for name in sorted(table.column_names) if table is not None else []:
            h.update(name.encode() + b"\x1f")
            _hash_arrow_column(h, table.column(name))
        return h.hexdigest()[:16]
    positions = np.unique(np.linspace(0, max(n - 1, 0), num=min(n, num_samples)).astype(np.int64))
    h.update(type(dataset).__qualname__.encode())
    for p in positions.tolist() if n else []:
        _hash_update(h, [_torch_item_repr(dataset[p])])
    return h.hexdigest()[:16]


_FINGERPRINT_WINDOW = 1 << 16  # rows per hashed window: bounded memory, chunking-independent


def _hash_arrow_column(h: Any, column: Any) -> None:
    """Hash an Arrow (chunked) array's content: each window of rows is made contiguous and
    written in the Arrow IPC format (zero-based offsets, no slack), then hashed."""
    import pyarrow as pa

    for start in range(0, len(column), _FINGERPRINT_WINDOW):
        part = column.slice(start, _FINGERPRINT_WINDOW)
        arr = part.combine_chunks() if isinstance(part, pa.ChunkedArray) else part
        sink = pa.BufferOutputStream()
        batch = pa.record_batch([arr], names=["c"])
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        h.update(memoryview(sink.getvalue()))


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


def progress_enabled(progress: bool | None, stream: Any = None) -> bool:
    """Whether to show progress bars: ``progress`` when given, else only when ``stream``
    (default ``sys.stderr``, where the bars go) is a terminal, so that logs and CI output
    are not filled with bar refreshes.

    >>> progress_enabled(True), progress_enabled(False)
    (True, False)
    """
    if progress is not None:
        return bool(progress)
    import sys

    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no stream, or a closed one
        return False


def cached_map(
    dataset: Any, fn: Any, features: dict[str, Any], *, cache_file: str | None, progress: bool, desc: str
) -> Any:
    """``dataset.map(fn)`` in batches of 1,000 into new columns only (``features``), cached in
    ``cache_file`` (its stem is the fingerprint, so a rerun reuses it), with the ``datasets``
    progress bar shown only when ``progress`` (and left as it was afterwards)."""
    import datasets

    bars = datasets.is_progress_bar_enabled()
    if not progress:
        datasets.disable_progress_bars()
    try:
        return dataset.map(
            fn,
            batched=True,
            batch_size=1000,
            remove_columns=dataset.column_names,
            features=datasets.Features(features),
            cache_file_name=cache_file,
            new_fingerprint=Path(cache_file).stem[:60] if cache_file else None,
            desc=desc,
        )
    finally:
        if bars:
            datasets.enable_progress_bars()
