"""Crash-safe, memory-mapped stores for labels that are not one integer per row: the
per-token tags of sentences (named-entity recognition) and multi-hot label sets
(multi-label classification). Rows are pool ids (row indices of the dataset), as in
:class:`~energizer_hf.pool.ActivePool`, whose label state these stores complement.

**RaggedTagStore** (``<name>`` defaults to ``token_tags``) keeps N sentences' tag ids as a
ragged array in two ``.npy`` files of one *generation* ``g``, plus a manifest:

* ``<name>.<g>.offsets.npy``: int64, shape ``(N + 1,)``; sentence ``i``'s tags are
  ``values[offsets[i]:offsets[i + 1]]``; ``offsets[0] == 0``, non-decreasing,
  ``offsets[N] == len(values)``. A sentence without tags has length 0 (sentences with no
  token are refused, so length 0 always means "not labelled").
* ``<name>.<g>.values.npy``: the tag ids, int16 when ``num_tags <= 32767`` else int32,
  each in ``[0, num_tags)``, sentence after sentence in pool-id order.
* ``<name>.json``: ``{"format_version": 1, "generation": g, "num_rows": N,
  "num_tags": T, "dtype": "int16", "num_values": M, "fingerprint": ...}``.

**MultiHotStore** (``<name>`` defaults to ``multi_hot``) keeps one ``.npy`` file:

* ``<name>.npy``: a structured array of shape ``(N,)`` with fields ``known`` (uint8: 1
  once the row's label set was given) and ``labels`` (uint8, ``(L,)``: the multi-hot
  row; all zero while unknown, or when "none" is the answer);
* ``<name>.json``: ``{"format_version": 1, "num_rows": N, "num_labels": L,
  "label_names": [...], "fingerprint": ...}``, written once.

**Crash safety.** Every file is written to a temporary file, fsynced, and renamed over its
name (atomic on POSIX); the directory is fsynced. The ragged store writes a new
generation's two data files first and commits them by replacing the manifest; the
previous generation's files are deleted afterwards. So a process killed at any instant
leaves either the previous or the new complete state: a reader follows the manifest,
never a half-written file, and files of an uncommitted or superseded generation (and
temporary files) are removed the next time a writer opens the store. Files are opened
memory-mapped and read-only; each update replaces them (O(labelled tokens) bytes written:
the store holds labelled sentences only).

**With the pool.** A store and the pool's ``label_state.npy`` are two commits. Write the
store first, then :meth:`ActivePool.label`: after a crash between the two, the store holds
tags for ids that the pool still calls unlabelled, which are harmless (they are
re-queried and overwritten); the reverse order could leave labelled ids without tags.

>>> store = RaggedTagStore(None, num_rows=4, num_tags=5)
>>> store.set([2, 0], [[1, 2, 0], [3]])
>>> store.labelled_ids.tolist(), store.get(2).tolist()
([0, 2], [1, 2, 0])
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from energizer_hf.errors import (
    CorruptLabelStateError,
    DatasetMismatchError,
    EmptyLabelSetError,
    EmptySentenceError,
    EnergizerError,
    InvalidIdsError,
    TagLengthMismatchError,
    UnknownLabelError,
)
from energizer_hf.utils import atomic_save_npy, atomic_write_json

__all__ = ["MultiHotStore", "RaggedTagStore"]

_FORMAT_VERSION = 1


def _check_ids(ids: Any, num_rows: int) -> np.ndarray:
    a = np.asarray(ids)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise InvalidIdsError(f"Pool ids must be integers, got dtype {a.dtype}.")
    a = a.astype(np.int64).reshape(-1)
    bad = (a < 0) | (a >= num_rows)
    if bad.any():
        raise InvalidIdsError(f"Pool id {int(a[bad][0])} is out of range [0, {num_rows}).")
    if np.unique(a).size != a.size:
        raise InvalidIdsError("The same pool id is given twice in one update.")
    return a


def _expand(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Flat positions of the elements of ``rows`` (in the order given) under ``offsets``."""
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return shift + np.arange(total, dtype=np.int64)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CorruptLabelStateError(f"'{path}' cannot be read ({err}).") from None


def _check_meta(meta: dict, expected: dict, where: Path) -> None:
    if meta.get("format_version") != _FORMAT_VERSION:
        raise CorruptLabelStateError(
            f"'{where}' has format version {meta.get('format_version')}, this version of "
            f"energizer_hf reads {_FORMAT_VERSION}."
        )
    diff = {k: (meta.get(k), v) for k, v in expected.items() if v is not None and meta.get(k) != v}
    if diff:
        detail = ", ".join(f"{k}: stored {a!r}, given {b!r}" for k, (a, b) in diff.items())
        raise DatasetMismatchError(
            f"The label store in '{where.parent}' was made for another dataset or label set "
            f"({detail}). Resume with the same data, or start a new run directory."
        )


class RaggedTagStore:
    """Per-sentence tag ids, memory-mapped and replaced atomically on every update.

    Args:
        state_dir: where the files live (see the module docstring); an existing store
            there is resumed after checking that it matches. ``None`` keeps the store in
            memory (nothing survives a crash).
        num_rows: number of sentences (the pool size).
        num_tags: number of tag names; tag ids lie in ``[0, num_tags)``.
        sentence_lengths: ``(N,)`` words per sentence; when given, every update must give
            exactly one tag per word.
        name: file name prefix.
        fingerprint: identifies the dataset (e.g. the pool's); checked on resume.
        read_only: never write (a non-zero rank of a distributed run): updates stay in
            memory.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike | None,
        num_rows: int,
        num_tags: int,
        *,
        sentence_lengths: Any = None,
        name: str = "token_tags",
        fingerprint: str | None = None,
        read_only: bool = False,
    ) -> None:
        if num_rows < 0 or num_tags < 1:
            raise EnergizerError(
                f"num_rows must be >= 0 and num_tags >= 1, got {num_rows}, {num_tags}."
            )
        self.num_rows, self.num_tags = int(num_rows), int(num_tags)
        self.dtype = np.dtype(np.int16 if num_tags <= np.iinfo(np.int16).max else np.int32)
        self.name, self.fingerprint, self.read_only = name, fingerprint, read_only
        self.sentence_lengths = None
        if sentence_lengths is not None:
            sl = np.asarray(sentence_lengths, dtype=np.int64).reshape(-1)
            if sl.shape != (self.num_rows,):
                raise TagLengthMismatchError(
                    f"sentence_lengths has {sl.size} entries for {self.num_rows} sentences."
                )
            self.sentence_lengths = sl
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.generation = 0
        self._offsets = np.zeros(self.num_rows + 1, dtype=np.int64)
        self._values = np.empty(0, dtype=self.dtype)
        if self.state_dir is not None and self._manifest.exists():
            self._load()
        if self.state_dir is not None and not self.read_only:
            self._remove_strays()
            if not self._manifest.exists():  # an empty store, so that a resume finds one
                self._commit(self._offsets, self._values)

    # ---------------------------------------------------------------- files
    @property
    def _manifest(self) -> Path:
        assert self.state_dir is not None
        return self.state_dir / f"{self.name}.json"

    def _data_files(self, generation: int) -> tuple[Path, Path]:
        assert self.state_dir is not None
        base = f"{self.name}.{generation}"
        return self.state_dir / f"{base}.offsets.npy", self.state_dir / f"{base}.values.npy"

    def _load(self) -> None:
        meta = _read_json(self._manifest)
        _check_meta(
            meta,
            {"num_rows": self.num_rows, "num_tags": self.num_tags, "fingerprint": self.fingerprint},
            self._manifest,
        )
        generation = int(meta["generation"])
        off_path, val_path = self._data_files(generation)
        try:
            offsets = np.load(off_path, mmap_mode="r")
            values = np.load(val_path, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise CorruptLabelStateError(
                f"The tag store in '{self.state_dir}' names generation {generation}, whose "
                f"files cannot be read ({err})."
            ) from None
        n_values = int(meta.get("num_values", -1))
        ok = (
            offsets.dtype == np.int64
            and offsets.shape == (self.num_rows + 1,)
            and values.dtype == self.dtype
            and values.ndim == 1
            and values.size == n_values
            and (offsets.size == 0 or (offsets[0] == 0 and offsets[-1] == values.size))
            and bool((np.diff(offsets) >= 0).all())
            and (values.size == 0 or (int(values.min()) >= 0 and int(values.max()) < self.num_tags))
        )
        if not ok:
            raise CorruptLabelStateError(
                f"The tag store files of generation {generation} in '{self.state_dir}' are "
                "inconsistent (offsets/values shapes, dtypes or ranges). They were not written "
                "by this version of energizer_hf, or were edited."
            )
        self.generation, self._offsets, self._values = generation, offsets, values

    def _remove_strays(self) -> None:
        """Delete data files of other generations and temporary files left by a crash."""
        assert self.state_dir is not None
        if not self.state_dir.is_dir():
            return
        pattern = re.compile(rf"^{re.escape(self.name)}\.(\d+)\.(offsets|values)\.npy$")
        committed = self._manifest.exists()
        for path in self.state_dir.iterdir():
            m = pattern.match(path.name)
            stray_data = m is not None and (not committed or int(m.group(1)) != self.generation)
            stray_tmp = path.name.startswith(f".{self.name}.") and path.name.endswith(".tmp")
            if stray_data or stray_tmp:
                path.unlink(missing_ok=True)

    def _commit(self, offsets: np.ndarray, values: np.ndarray) -> None:
        if self.state_dir is None or self.read_only:
            self._offsets, self._values = offsets, values
            return
        old = self.generation if self._manifest.exists() else None
        generation = self.generation + 1
        off_path, val_path = self._data_files(generation)
        atomic_save_npy(val_path, values)
        atomic_save_npy(off_path, offsets)
        atomic_write_json(
            self._manifest,
            {
                "format_version": _FORMAT_VERSION,
                "generation": generation,
                "num_rows": self.num_rows,
                "num_tags": self.num_tags,
                "dtype": self.dtype.name,
                "num_values": int(values.size),
                "fingerprint": self.fingerprint,
            },
        )
        self.generation = generation
        self._offsets = np.load(off_path, mmap_mode="r")
        self._values = np.load(val_path, mmap_mode="r")
        if old is not None:
            for path in self._data_files(old):
                path.unlink(missing_ok=True)

    # ---------------------------------------------------------------- reading
    def __len__(self) -> int:
        return self.num_rows

    @property
    def offsets(self) -> np.ndarray:
        """``(N + 1,)`` int64 (read-only) sentence offsets into :attr:`values`."""
        return self._offsets

    @property
    def values(self) -> np.ndarray:
        """All stored tag ids, sentence after sentence (read-only)."""
        return self._values

    @property
    def lengths(self) -> np.ndarray:
        """``(N,)`` number of stored tags per sentence (0: not labelled)."""
        return np.diff(self._offsets)

    @property
    def has_tags(self) -> np.ndarray:
        """``(N,)`` bool: the sentence's tags are stored."""
        return self.lengths > 0

    @property
    def labelled_ids(self) -> np.ndarray:
        """Pool ids with stored tags, ascending."""
        return np.flatnonzero(self.has_tags).astype(np.int64)

    @property
    def num_tokens(self) -> int:
        """Number of stored tags (labelled tokens)."""
        return int(self._values.size)

    def get(self, pool_id: int) -> np.ndarray:
        """The tags of one sentence (empty when not labelled), a copy."""
        i = int(_check_ids([pool_id], self.num_rows)[0])
        return np.array(self._values[self._offsets[i] : self._offsets[i + 1]])

    def gather(self, ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """Tags of several sentences: ``(flat tag ids, lengths)``, in the order of ``ids``."""
        a = np.asarray(ids, dtype=np.int64).reshape(-1)
        if a.size and (a.min() < 0 or a.max() >= self.num_rows):
            raise InvalidIdsError(f"Pool ids must lie in [0, {self.num_rows}).")
        offsets = np.asarray(self._offsets)
        return np.asarray(self._values[_expand(a, offsets)]), offsets[a + 1] - offsets[a]

    def padded(self, ids: Any, pad: int = -100) -> np.ndarray:
        """Tags of several sentences as a ``(len(ids), max length)`` int64 array."""
        flat, lengths = self.gather(ids)
        out = np.full((lengths.size, int(lengths.max(initial=0))), pad, dtype=np.int64)
        rows = np.repeat(np.arange(lengths.size), lengths)
        cols = np.arange(flat.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out[rows, cols] = flat
        return out

    # ---------------------------------------------------------------- writing
    def set(self, ids: Any, tags: Sequence[Any]) -> None:
        """Store (append or replace) the tags of sentences, atomically.

        Args:
            ids: pool ids, distinct.
            tags: one sequence of tag ids per id, in the same order.

        Raises:
            InvalidIdsError: an id out of range or repeated.
            EmptySentenceError: an empty tag sequence.
            TagLengthMismatchError: a tag count that differs from the sentence length.
            UnknownLabelError: a tag id out of ``[0, num_tags)``.
        """
        if len(tags) != np.asarray(ids).reshape(-1).size:
            raise TagLengthMismatchError(
                f"{np.asarray(ids).size} pool ids but {len(tags)} tag sequences were given."
            )
        lengths = np.fromiter((len(t) for t in tags), dtype=np.int64, count=len(tags))
        flat = (
            np.concatenate([np.asarray(t, dtype=np.int64).reshape(-1) for t in tags])
            if len(tags)
            else np.empty(0, dtype=np.int64)
        )
        self.set_flat(ids, flat, lengths)

    def set_flat(self, ids: Any, values: Any, lengths: Any) -> None:
        """:meth:`set` with the tags given flat: ``values`` of the sentences one after the
        other and their ``lengths`` (vectorised; no per-sentence Python object)."""
        a = _check_ids(ids, self.num_rows)
        lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        values = np.asarray(values).reshape(-1)
        if lengths.size != a.size or int(lengths.sum()) != values.size:
            raise TagLengthMismatchError(
                f"{a.size} pool ids, {lengths.size} lengths and {values.size} tag ids (lengths "
                f"sum to {int(lengths.sum())}) do not match."
            )
        if values.size and not np.issubdtype(values.dtype, np.integer):
            raise UnknownLabelError(f"Tag ids must be integers, got dtype {values.dtype}.")
        empty = np.flatnonzero(lengths == 0)
        if empty.size:
            raise EmptySentenceError(
                f"Pool id {int(a[empty[0]])} was given no tags: give one tag per word."
            )
        if self.sentence_lengths is not None:
            wrong = np.flatnonzero(self.sentence_lengths[a] != lengths)
            if wrong.size:
                i = int(wrong[0])
                raise TagLengthMismatchError(
                    f"Pool id {int(a[i])} has {int(self.sentence_lengths[a[i]])} words but "
                    f"{int(lengths[i])} tags were given: give one tag per word."
                )
        bad = (values < 0) | (values >= self.num_tags)
        if bad.any():
            raise UnknownLabelError(
                f"Tag id {int(values[bad][0])} is outside [0, {self.num_tags}) (the tag set)."
            )
        old_offsets = np.asarray(self._offsets)
        new_lengths = np.diff(old_offsets)
        replaced = np.zeros(self.num_rows, dtype=bool)
        replaced[a] = True
        new_lengths[a] = lengths
        new_offsets = np.concatenate([[0], np.cumsum(new_lengths)]).astype(np.int64)
        new_values = np.empty(int(new_offsets[-1]), dtype=self.dtype)
        kept = np.flatnonzero(~replaced & (np.diff(old_offsets) > 0))
        new_values[_expand(kept, new_offsets)] = self._values[_expand(kept, old_offsets)]
        new_values[_expand(a, new_offsets)] = values.astype(self.dtype)
        self._commit(new_offsets, new_values)


class MultiHotStore:
    """Per-row multi-hot label sets, memory-mapped and replaced atomically on update.

    Args:
        state_dir: where the files live (see the module docstring); an existing store
            there is resumed after checking that it matches. ``None``: in memory only.
        num_rows: number of rows (the pool size).
        num_labels: number of labels ``L``.
        label_names: the label names (stored, checked on resume).
        allow_empty: accept an empty label set (the label set permits "none").
        name: file name prefix.
        fingerprint: identifies the dataset; checked on resume.
        read_only: never write; updates stay in memory.

    >>> store = MultiHotStore(None, num_rows=3, num_labels=2)
    >>> store.set([1], [[1, 1]])
    >>> store.known.tolist(), store.matrix[1].tolist()
    ([False, True, False], [1, 1])
    """

    def __init__(
        self,
        state_dir: str | os.PathLike | None,
        num_rows: int,
        num_labels: int,
        *,
        label_names: Sequence[str] | None = None,
        allow_empty: bool = False,
        name: str = "multi_hot",
        fingerprint: str | None = None,
        read_only: bool = False,
    ) -> None:
        if num_rows < 0 or num_labels < 1:
            raise EnergizerError(
                f"num_rows must be >= 0 and num_labels >= 1, got {num_rows}, {num_labels}."
            )
        if label_names is not None and len(label_names) != num_labels:
            raise UnknownLabelError(f"{len(label_names)} label_names for {num_labels} labels.")
        self.num_rows, self.num_labels = int(num_rows), int(num_labels)
        self.label_names = None if label_names is None else [str(n) for n in label_names]
        self.allow_empty, self.name = allow_empty, name
        self.fingerprint, self.read_only = fingerprint, read_only
        self.dtype = np.dtype([("known", "u1"), ("labels", "u1", (self.num_labels,))])
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self._state = np.zeros(self.num_rows, dtype=self.dtype)
        if self.state_dir is not None and self._file.exists():
            self._load()
        elif self.state_dir is not None and not read_only:
            self._commit(self._state)
        if self.state_dir is not None and not read_only:
            for path in self.state_dir.iterdir():
                if path.name.startswith(f".{self.name}.") and path.name.endswith(".tmp"):
                    path.unlink(missing_ok=True)

    @property
    def _file(self) -> Path:
        assert self.state_dir is not None
        return self.state_dir / f"{self.name}.npy"

    @property
    def _meta_file(self) -> Path:
        assert self.state_dir is not None
        return self.state_dir / f"{self.name}.json"

    def _load(self) -> None:
        meta = _read_json(self._meta_file)
        _check_meta(
            meta,
            {
                "num_rows": self.num_rows,
                "num_labels": self.num_labels,
                "label_names": self.label_names,
                "fingerprint": self.fingerprint,
            },
            self._meta_file,
        )
        try:
            state = np.load(self._file, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise CorruptLabelStateError(f"'{self._file}' cannot be read ({err}).") from None
        if state.dtype != self.dtype or state.shape != (self.num_rows,):
            raise CorruptLabelStateError(
                f"'{self._file}' has dtype {state.dtype} and shape {state.shape}, expected "
                f"{self.dtype} and ({self.num_rows},)."
            )
        self._state = state
        if self.label_names is None:
            self.label_names = meta.get("label_names")

    def _commit(self, state: np.ndarray) -> None:
        if self.state_dir is None or self.read_only:
            self._state = state
            return
        if not self._meta_file.exists():
            atomic_write_json(
                self._meta_file,
                {
                    "format_version": _FORMAT_VERSION,
                    "num_rows": self.num_rows,
                    "num_labels": self.num_labels,
                    "label_names": self.label_names,
                    "fingerprint": self.fingerprint,
                },
            )
        atomic_save_npy(self._file, state)
        self._state = np.load(self._file, mmap_mode="r")

    def __len__(self) -> int:
        return self.num_rows

    @property
    def matrix(self) -> np.ndarray:
        """``(N, L)`` uint8 multi-hot rows (read-only; zero where unknown)."""
        return self._state["labels"]

    @property
    def known(self) -> np.ndarray:
        """``(N,)`` bool: the row's label set was given."""
        return self._state["known"].astype(bool)

    @property
    def labelled_ids(self) -> np.ndarray:
        """Pool ids whose label set is known, ascending."""
        return np.flatnonzero(self._state["known"]).astype(np.int64)

    def get(self, ids: Any) -> np.ndarray:
        """``(len(ids), L)`` uint8 rows, a copy."""
        a = np.asarray(ids, dtype=np.int64).reshape(-1)
        if a.size and (a.min() < 0 or a.max() >= self.num_rows):
            raise InvalidIdsError(f"Pool ids must lie in [0, {self.num_rows}).")
        return np.array(self._state["labels"][a])

    def set(self, ids: Any, multi_hot: Any) -> None:
        """Store (or replace) the label sets of rows, atomically.

        Args:
            ids: pool ids, distinct.
            multi_hot: ``(len(ids), L)`` 0/1 rows, in the order of ``ids``.

        Raises:
            InvalidIdsError: an id out of range or repeated.
            TagLengthMismatchError: a matrix of the wrong shape.
            UnknownLabelError: values other than 0 and 1.
            EmptyLabelSetError: an empty row, unless ``allow_empty``.
        """
        a = _check_ids(ids, self.num_rows)
        m = np.asarray(multi_hot)
        if m.ndim == 1 and a.size == 1:
            m = m[None, :]
        if m.shape != (a.size, self.num_labels):
            raise TagLengthMismatchError(
                f"multi_hot has shape {m.shape}, expected ({a.size}, {self.num_labels})."
            )
        if m.size and not np.isin(m, (0, 1)).all():
            raise UnknownLabelError("multi_hot must hold only 0 and 1.")
        if not self.allow_empty and m.size:
            empty = np.flatnonzero(~m.astype(bool).any(1))
            if empty.size:
                raise EmptyLabelSetError(
                    f"Pool id {int(a[empty[0]])} was given no label ({empty.size} such rows). "
                    "Give at least one label, or create the store with allow_empty=True if "
                    "'none' is a valid answer."
                )
        state = np.array(self._state, copy=True)
        state["labels"][a] = m.astype(np.uint8)
        state["known"][a] = 1
        self._commit(state)
