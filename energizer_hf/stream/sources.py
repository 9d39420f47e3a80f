"""Stream sources: rows that arrive one after the other, read in mini-batches.

A source yields :class:`StreamBatch` objects of at most ``batch_size`` rows, in arrival
order; each row has an arrival *position* (0, 1, 2, ... over the whole stream) and an
item *id* (the row index of a replayed dataset, a value of ``id_column``, or else the
position). Rows are scored together per mini-batch, and decided one by one in arrival
order by a :mod:`stream strategy <energizer_hf.stream.strategies>`. Nothing here holds
more than one mini-batch of rows; a replayed dataset is read through an index array.

Resuming: ``state_dict()`` describes the position after the last mini-batch yielded;
``load_state_dict(state)`` on a new source over the same data makes the next
:meth:`StreamSource.batches` start right after it.

======================================  ==========================================
source                                  resume
======================================  ==========================================
:class:`ReplaySource` (a ``Dataset``)   by position in its seeded order
:class:`IterableDatasetSource`          ``IterableDataset.state_dict()`` (datasets)
:class:`IterableSource` over a list     by position
:class:`IterableSource` over a function by calling it again and skipping the rows seen
  returning a fresh iterator
:class:`IterableSource` over a          not resumable: :class:`NotResumableError`
  generator or other one-pass iterable
======================================  ==========================================

An ``IterableDataset`` with a shuffle buffer (``.shuffle(buffer_size=...)``) cannot resume
exactly either: ``datasets`` does not save the buffer's content, so rows would be lost;
such a source raises :class:`NotResumableError` when asked to resume mid-stream.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from energizer_hf.errors import (
    ColumnNotFoundError,
    NotResumableError,
    StreamInputError,
    StreamStateError,
)

__all__ = [
    "IterableDatasetSource",
    "IterableSource",
    "ReplaySource",
    "StreamBatch",
    "StreamSource",
    "as_stream_source",
]


@dataclass(frozen=True)
class StreamBatch:
    """One mini-batch of arriving rows, in arrival order.

    Attributes:
        positions: ``(n,)`` int64 arrival positions.
        ids: the ``n`` item ids (ints or strings).
        columns: column name → list of ``n`` values (the rows, column-major).
        text_column: the column holding the text.
    """

    positions: np.ndarray
    ids: list[Any]
    columns: dict[str, list[Any]]
    text_column: str

    def __len__(self) -> int:
        return int(self.positions.size)

    @property
    def texts(self) -> list[Any]:
        """The text of every row."""
        return self.columns[self.text_column]

    def row(self, j: int) -> dict[str, Any]:
        """Row ``j`` of the batch as a dict."""
        return {name: values[j] for name, values in self.columns.items()}


class StreamSource:
    """Base class of the stream sources.

    Args:
        text_column: the column every row must have.
        id_column: a column of unique item ids; by default the id is the row index of a
            replayed dataset or the arrival position.

    Class attributes:
        kind: the source type recorded in its state.
    """

    kind: ClassVar[str] = "source"

    def __init__(self, text_column: str = "text", id_column: str | None = None) -> None:
        if not isinstance(text_column, str) or not text_column:
            raise StreamInputError(f"text_column must be a column name, got {text_column!r}.")
        self.text_column = text_column
        self.id_column = id_column
        self.position = 0

    # ------------------------------------------------------------------ the verb
    def batches(self, batch_size: int) -> Iterator[StreamBatch]:
        """Yield the rest of the stream in mini-batches of at most ``batch_size`` rows.

        Raises:
            StreamInputError: a bad batch size, or rows that are not mappings.
            ColumnNotFoundError: a row without the text (or id) column.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise StreamInputError(f"batch_size must be a positive int, got {batch_size!r}.")
        while True:
            got = self._read(int(batch_size))
            if got is None:
                return
            columns, ids = got
            n = len(columns[self.text_column]) if self.text_column in columns else 0
            if n == 0:
                return
            positions = np.arange(self.position, self.position + n, dtype=np.int64)
            if self.id_column is not None:
                if self.id_column not in columns:
                    raise ColumnNotFoundError(
                        f"The stream rows have no id column '{self.id_column}' (columns: "
                        f"{sorted(columns)}); set id_column to an existing column or to None."
                    )
                ids = list(columns[self.id_column])
            elif ids is None:
                ids = positions.tolist()
            self.position += n
            self._after_batch()
            yield StreamBatch(positions, ids, columns, self.text_column)

    def _read(self, n: int) -> tuple[dict[str, list[Any]], list[Any] | None] | None:
        """The next ``<= n`` rows as columns (and ids), or ``None`` at the end."""
        raise NotImplementedError

    def _after_batch(self) -> None:
        """Hook: record the position after a mini-batch (IterableDataset state)."""

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """A JSON-able description of the position after the last mini-batch."""
        return {"kind": self.kind, "position": int(self.position)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue after the position of ``state`` (before any :meth:`batches` call).

        Raises:
            StreamStateError: a state of another kind of source, or a damaged one.
            NotResumableError: a source that cannot restart mid-stream.
        """
        if not isinstance(state, Mapping) or state.get("kind") != self.kind:
            got = state.get("kind") if isinstance(state, Mapping) else type(state).__name__
            raise StreamStateError(
                f"The saved stream position belongs to a '{got}' source, not '{self.kind}': "
                "resume with the same kind of source."
            )
        position = state.get("position")
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise StreamStateError(f"A stream state needs a position >= 0, got {position!r}.")

    # ------------------------------------------------------------------ helpers
    def _columns_from_rows(self, rows: list[Any], first_position: int) -> dict[str, list[Any]]:
        names: dict[str, None] = {}
        for j, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise StreamInputError(
                    f"Stream row at position {first_position + j} is a {type(row).__name__}, "
                    "not a mapping of column name to value (e.g. {'text': ...})."
                )
            if self.text_column not in row:
                raise ColumnNotFoundError(
                    f"Stream row at position {first_position + j} has no text column "
                    f"'{self.text_column}' (it has {sorted(row)}): set text_column to the "
                    "column that holds the text, or drop rows without it."
                )
            names.update(dict.fromkeys(row))
        return {name: [row.get(name) for row in rows] for name in names}


class IterableSource(StreamSource):
    """Rows from any iterable of mappings.

    Args:
        rows: a sequence of rows (resumable by position), a function returning a fresh
            iterator over the same rows in the same order (resumable: it is called again
            and the rows seen are skipped), or any other iterable, e.g. a generator (not
            resumable).
        text_column / id_column: see :class:`StreamSource`.

    >>> src = IterableSource([{"text": "a"}, {"text": "b"}, {"text": "c"}])
    >>> [b.texts for b in src.batches(2)]
    [['a', 'b'], ['c']]
    """

    kind = "iterable"

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]] | Callable[[], Iterable[Mapping[str, Any]]] | Iterable[Mapping[str, Any]],
        text_column: str = "text",
        id_column: str | None = None,
    ) -> None:
        super().__init__(text_column, id_column)
        if isinstance(rows, (str, bytes, Mapping)):
            raise StreamInputError(
                f"IterableSource needs an iterable of rows (mappings), got a {type(rows).__name__}."
            )
        self._sequence = rows if isinstance(rows, Sequence) else None
        self._factory = rows if callable(rows) and self._sequence is None else None
        if self._sequence is None and self._factory is None and not isinstance(rows, Iterable):
            raise StreamInputError(f"IterableSource needs an iterable of rows, got {type(rows).__name__}.")
        self._iterable = rows
        self._iterator: Iterator[Any] | None = None
        self._skip = 0

    @property
    def resumable(self) -> bool:
        """Whether :meth:`load_state_dict` can restart mid-stream."""
        return self._sequence is not None or self._factory is not None

    def _read(self, n: int) -> tuple[dict[str, list[Any]], None] | None:
        if self._sequence is not None:
            rows = list(self._sequence[self.position : self.position + n])
        else:
            if self._iterator is None:
                it = iter(self._factory() if self._factory is not None else self._iterable)
                skipped = sum(1 for _ in itertools.islice(it, self._skip))
                if skipped < self._skip:
                    raise StreamStateError(
                        f"The stream was saved after {self._skip} rows but the iterator now "
                        f"yields only {skipped}: it does not give the same rows again."
                    )
                self._iterator = it
            rows = list(itertools.islice(self._iterator, n))
        if not rows:
            return None
        return self._columns_from_rows(rows, self.position), None

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        position = int(state["position"])
        if position == 0:
            self.position = 0
            return
        if not self.resumable:
            raise NotResumableError(
                f"Cannot resume this stream at row {position}: it reads a "
                f"{type(self._iterable).__name__}, which yields its rows once and cannot be "
                "restarted, so the rows before that point are gone. To make a stream "
                "resumable, pass a list of rows, a function that returns a fresh iterator over "
                "the same rows (a generator function, not a generator), a datasets."
                "IterableDataset (e.g. load_dataset('json', data_files=..., streaming=True), "
                "whose state_dict() records the position) or a finite datasets.Dataset "
                "through ReplaySource."
            )
        if self._sequence is not None and position > len(self._sequence):
            raise StreamStateError(
                f"The stream was saved after {position} rows but the list has only "
                f"{len(self._sequence)}: resume with the same rows."
            )
        self.position = position
        self._skip = position
        self._iterator = None


def _has_shuffle_buffer(dataset: Any) -> bool:
    """Whether an IterableDataset's pipeline holds a shuffle buffer (datasets internals)."""
    stack = [getattr(dataset, "_ex_iterable", None)]
    seen = 0
    while stack and seen < 1000:
        node = stack.pop()
        seen += 1
        if node is None:
            continue
        if type(node).__name__ == "BufferShuffledExamplesIterable":
            return True
        stack.append(getattr(node, "ex_iterable", None))
        stack.extend(getattr(node, "ex_iterables", None) or [])
    return False


class IterableDatasetSource(StreamSource):
    """Rows of a ``datasets.IterableDataset``, e.g. ``load_dataset(..., streaming=True)``.

    Resumes through ``IterableDataset.state_dict()`` / ``load_state_dict()`` (datasets'
    own record of shard and offset), so a resumed source yields exactly the rows after the
    saved position, without reading the ones before (except to skip inside a shard file).

    Args:
        dataset: the ``IterableDataset`` (its ``load_state_dict`` is called on resume).
        text_column / id_column: see :class:`StreamSource`.

    Raises:
        ColumnNotFoundError: the dataset's features lack the text column.
    """

    kind = "iterable_dataset"

    def __init__(self, dataset: Any, text_column: str = "text", id_column: str | None = None) -> None:
        super().__init__(text_column, id_column)
        features = getattr(dataset, "features", None)
        if features is not None and text_column not in features:
            raise ColumnNotFoundError(
                f"The streamed dataset has no text column '{text_column}' (columns: "
                f"{sorted(features)}): set text_column to the column that holds the text."
            )
        self.dataset = dataset
        self._iterator: Iterator[Any] | None = None
        self._datasets_state: dict[str, Any] | None = None

    def _read(self, n: int) -> tuple[dict[str, list[Any]], None] | None:
        if self._iterator is None:
            if self._datasets_state is not None:
                self.dataset.load_state_dict(self._datasets_state)
            self._iterator = iter(self.dataset)
        rows = list(itertools.islice(self._iterator, n))
        if not rows:
            return None
        return self._columns_from_rows(rows, self.position), None

    def _after_batch(self) -> None:
        if hasattr(self.dataset, "state_dict"):
            # the state at the latest row yielded, i.e. after this mini-batch
            self._datasets_state = self.dataset.state_dict()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "datasets_state": self._datasets_state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        position = int(state["position"])
        if position == 0:
            self.position, self._datasets_state, self._iterator = 0, None, None
            return
        if not hasattr(self.dataset, "state_dict") or state.get("datasets_state") is None:
            raise NotResumableError(
                "This IterableDataset cannot resume mid-stream: the installed datasets has no "
                "IterableDataset.state_dict() (datasets >= 2.18 has it) or the saved state lacks "
                "it. Upgrade datasets, or replay a finite Dataset with ReplaySource."
            )
        if _has_shuffle_buffer(self.dataset):
            raise NotResumableError(
                "This IterableDataset shuffles through a buffer (.shuffle(buffer_size=...)), "
                "whose content datasets does not save: a resumed stream would skip the rows "
                "that were in the buffer. Shuffle the files instead (or pre-shuffle the data), "
                "or replay a finite Dataset with ReplaySource(dataset, seed=...)."
            )
        self.position = position
        self._datasets_state = dict(state["datasets_state"])
        self._iterator = None


class ReplaySource(StreamSource):
    """A finite ``datasets.Dataset`` replayed as a stream, in a seeded order.

    Only the order (an int64 index array) is held; rows are read one mini-batch at a time
    with one Arrow read. Item ids are the dataset's row indices, so a labelled item maps
    back to its row.

    Args:
        dataset: the ``datasets.Dataset`` (anything with ``__len__``, ``column_names``
            and ``dataset[list_of_indices] -> dict of lists``).
        seed: seeds the permutation when ``shuffle``.
        shuffle: replay in a random order (else in row order).
        order: an explicit order (row indices, each at most once), e.g. from
            :mod:`energizer_hf.stream.drift`; overrides ``seed``/``shuffle``.
        text_column / id_column: see :class:`StreamSource`.

    >>> import datasets
    >>> ds = datasets.Dataset.from_dict({"text": list("abcde")})
    >>> [(b.ids, b.texts) for b in ReplaySource(ds, seed=0).batches(3)]
    [([2, 4, 3], ['c', 'e', 'd']), ([0, 1], ['a', 'b'])]
    """

    kind = "replay"

    def __init__(
        self,
        dataset: Any,
        *,
        seed: int = 0,
        shuffle: bool = True,
        order: Any = None,
        text_column: str = "text",
        id_column: str | None = None,
    ) -> None:
        super().__init__(text_column, id_column)
        columns = list(getattr(dataset, "column_names", None) or [])
        if text_column not in columns:
            raise ColumnNotFoundError(
                f"The dataset has no text column '{text_column}' (columns: {sorted(columns)}): "
                "set text_column to the column that holds the text."
            )
        n = len(dataset)
        if order is None:
            order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
        else:
            order = np.asarray(order)
            if order.ndim != 1 or (order.size and order.dtype.kind not in "iu"):
                raise StreamInputError(f"order must be a 1-D array of row indices, got {order.dtype} {order.shape}.")
            order = order.astype(np.int64)
            if order.size and (order.min() < 0 or order.max() >= n):
                raise StreamInputError(f"order holds row indices outside [0, {n}).")
            counts = np.bincount(order, minlength=n) if order.size else np.zeros(0)
            if order.size and counts.max() > 1:
                raise StreamInputError(
                    f"order repeats row {int(np.argmax(counts))}: a replayed stream shows each "
                    "row at most once (draw the order without replacement)."
                )
        self.dataset = dataset
        self.seed = seed
        self.order = np.ascontiguousarray(order, dtype=np.int64)
        self._digest = hashlib.sha256(self.order.tobytes()).hexdigest()[:16]
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return int(self.order.size)

    def _read(self, n: int) -> tuple[dict[str, list[Any]], list[Any]] | None:
        idx = self.order[self.position : self.position + n]
        if idx.size == 0:
            return None
        batch = self.dataset[idx.tolist()]
        return {k: list(v) for k, v in batch.items()}, idx.tolist()

    def fingerprint(self) -> str:
        """The dataset's content fingerprint (:func:`energizer_hf.utils.dataset_fingerprint`)."""
        if self._fingerprint is None:
            from energizer_hf.utils import dataset_fingerprint

            self._fingerprint = dataset_fingerprint(self.dataset)
        return self._fingerprint

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "num_items": len(self),
            "order_sha256": self._digest,
            "fingerprint": self.fingerprint(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        if state.get("order_sha256") != self._digest or state.get("num_items") != len(self):
            raise StreamStateError(
                "The saved stream replayed another order (another seed, shuffle or drift order, "
                "or another dataset size): resume with the same dataset and order."
            )
        if state.get("fingerprint") != self.fingerprint():
            raise StreamStateError(
                "The saved stream replayed a dataset with other content (its fingerprint "
                "differs): resume with the same dataset."
            )
        if int(state["position"]) > len(self):
            raise StreamStateError(f"The saved position {state['position']} is past the end ({len(self)}).")
        self.position = int(state["position"])


def as_stream_source(data: Any, *, text_column: str = "text", id_column: str | None = None, **kwargs: Any) -> StreamSource:
    """The right source for ``data``: a source as is, a ``Dataset`` replayed
    (``kwargs``: ``seed``, ``shuffle``, ``order``), an ``IterableDataset``, else any iterable."""
    if isinstance(data, StreamSource):
        return data
    try:
        import datasets
    except ImportError:  # pragma: no cover
        datasets = None
    if datasets is not None and isinstance(data, datasets.Dataset):
        return ReplaySource(data, text_column=text_column, id_column=id_column, **kwargs)
    if kwargs:
        raise StreamInputError(f"Options {sorted(kwargs)} apply to a replayed datasets.Dataset only.")
    if datasets is not None and isinstance(data, datasets.IterableDataset):
        return IterableDatasetSource(data, text_column=text_column, id_column=id_column)
    return IterableSource(data, text_column=text_column, id_column=id_column)
