"""The stream's state and decision log in one directory, written crash-safely.

Files (all in the directory given, e.g. ``<run_dir>/stream``):

==========================  ==================================================================
``stream.json``             the stream's configuration, written once; reopening the directory
                            with another configuration raises ``ConfigMismatchError``
``checkpoint.json``         the last committed mini-batch: ``position`` (items decided),
                            ``batches``, ``num_sent``, the source's and the strategy's state,
                            the byte sizes of ``decisions.jsonl`` and ``sent.jsonl`` at that
                            point, and the name of the strategy's array file; replaced
                            atomically (temporary file, fsync, rename)
``strategy-NNNNNNNN.npz``   arrays of the strategy's state (an embedding memory), written
                            atomically before the checkpoint that names it
``decisions.jsonl``         one line per decided item, in arrival order: ``position``, ``id``,
                            ``label`` (true = sent for labelling, false = let go), ``score``
                            and ``threshold`` (null where none), ``blocked`` (the budget
                            window was full), plus the caller's ``extra`` fields
``sent.jsonl``              one line per item sent for labelling: ``position``, ``id`` and
                            ``row`` (its columns, when ``keep_rows``): the labelled items of a
                            stream that cannot be read again
``labels.jsonl``            one line per label received: ``id``, ``label``, ``time``
==========================  ==================================================================

**Commit protocol.** :meth:`StreamStore.commit` appends the mini-batch's decision lines
and sent lines (one write and one fsync per file), writes the array file, then replaces
``checkpoint.json``. A crash before the rename leaves lines past the sizes recorded in the
checkpoint; reopening truncates them, so the directory always reads as "every mini-batch
up to the checkpoint, nothing after". The resumed stream then re-decides that mini-batch
and, with the same source state, strategy state and scores, makes the same decisions.
Labels arrive asynchronously and are appended to ``labels.jsonl`` as they come (a torn last
line is dropped on reopening); a label is accepted only for an item sent in a committed
mini-batch, so the caller commits a batch *before* sending its items to annotators.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from energizer_hf.errors import (
    ConfigMismatchError,
    InvalidIdsError,
    StreamInputError,
    StreamStateError,
    UnsentItemError,
)
from energizer_hf.functional.stream import StreamDecisions
from energizer_hf.run import RunDir
from energizer_hf.stream.sources import StreamBatch
from energizer_hf.utils import (
    append_lines,
    atomic_write_bytes,
    atomic_write_json,
    jsonl_line,
    read_jsonl,
)

__all__ = ["StreamCheckpoint", "StreamStore"]

FORMAT_VERSION = 1
# the file names are RunDir's (``<run_dir>/stream/...``); a bare directory holds the same names
_NAMES = RunDir("")
CONFIG_FILE = _NAMES.stream_config.name
CHECKPOINT_FILE = _NAMES.stream_checkpoint.name
DECISIONS_FILE = _NAMES.stream_decisions.name
SENT_FILE = _NAMES.stream_sent.name
LABELS_FILE = _NAMES.stream_labels.name
_ARRAY_REF = "__array__"


@dataclass(frozen=True)
class StreamCheckpoint:
    """The last committed mini-batch, as reloaded from the directory.

    Attributes:
        position: items decided (the arrival position of the next item).
        batches: mini-batches committed.
        num_sent: items sent for labelling.
        source: the source's ``state_dict()`` (for ``load_state_dict``).
        strategy: the strategy's ``state_dict()``, arrays restored.
        learner: the caller's own state after the batch (JSON; e.g. the model round in use
            and a retrain in flight), ``{}`` when none was given.
    """

    position: int
    batches: int
    num_sent: int
    source: dict[str, Any]
    strategy: dict[str, Any]
    learner: dict[str, Any] = dataclasses.field(default_factory=dict)


_dumps = jsonl_line
_append_lines = append_lines


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(size)
        fh.flush()
        os.fsync(fh.fileno())


def _drop_torn_tail(path: Path) -> None:
    """Cut a file back to its last complete line (a crash may tear the last append)."""
    if not path.exists():
        return
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end != len(data):
        _truncate(path, end)


def _plain_id(value: Any) -> int | str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise StreamInputError(
            f"Stream item ids must be ints or strings, got {type(value).__name__} {value!r}."
        )
    return value


def _float_or_none(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _split_arrays(obj: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    """Replace arrays inside nested dicts by references; collect them in ``arrays``."""
    if isinstance(obj, np.ndarray):
        arrays[path] = obj
        return {_ARRAY_REF: path}
    if isinstance(obj, Mapping):
        return {k: _split_arrays(v, f"{path}.{k}" if path else str(k), arrays) for k, v in obj.items()}
    return obj


def _join_arrays(obj: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(obj, Mapping):
        if set(obj) == {_ARRAY_REF}:
            try:
                return np.asarray(arrays[obj[_ARRAY_REF]])
            except KeyError:
                raise StreamStateError(
                    f"The stream checkpoint names array '{obj[_ARRAY_REF]}' but its array file lacks it."
                ) from None
        return {k: _join_arrays(v, arrays) for k, v in obj.items()}
    return obj


class StreamStore:
    """A stream's decisions, sent items, labels and resume state in ``directory``.

    Opening a directory that already holds a stream reloads it (cutting off what an
    interrupted commit left behind); :attr:`checkpoint` is then what to resume from.

    Args:
        directory: where the files live (created if needed).
        config: the stream's configuration (JSON-able: strategy, budget, source, seed...);
            stored on first use and compared on every reopening.
        keep_rows: store the columns of every item sent for labelling in ``sent.jsonl``
            (needed to train on items of a stream that cannot be read again).

    Raises:
        ConfigMismatchError: the directory holds a stream with another configuration.
        StreamStateError: damaged or inconsistent files.

    >>> import tempfile
    >>> from energizer_hf.stream import IterableSource, VariableUncertaintyStream
    >>> src = IterableSource([{"text": t} for t in "abcd"])
    >>> strategy = VariableUncertaintyStream(0.5, window=2)
    >>> store = StreamStore(tempfile.mkdtemp(), config={"strategy": "vu"})
    >>> for batch in src.batches(2):
    ...     _ = strategy.decide(np.array([0.9, 0.1]))
    ...     sent = store.commit(batch, strategy.last, source_state=src.state_dict(),
    ...                         strategy_state=strategy.state_dict())
    >>> store.position, store.sent_ids()
    (4, [0, 2])
    >>> store.record_labels([2], [1]); store.pending_ids()
    [0]
    """

    def __init__(
        self,
        directory: str | os.PathLike | RunDir,
        config: Mapping[str, Any] | None = None,
        *,
        keep_rows: bool = True,
    ) -> None:
        # a run directory keeps its stream under RunDir.stream; any other path is the stream folder
        self.directory = directory.stream if isinstance(directory, RunDir) else Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.keep_rows = keep_rows
        self._lock = threading.Lock()
        self.config = self._check_config(config)
        self._sent: dict[int | str, int] = {}
        self._labels: dict[int | str, Any] = {}
        self._ckpt_raw: dict[str, Any] | None = None
        self.checkpoint: StreamCheckpoint | None = None
        self._reload()

    # ------------------------------------------------------------------ opening
    def _check_config(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        path = self.directory / CONFIG_FILE
        wanted = None if config is None else json.loads(jsonl_line(dict(config)))
        if path.exists():
            stored = json.loads(path.read_text(encoding="utf-8"))
            if stored.get("version") != FORMAT_VERSION:
                raise StreamStateError(
                    f"{path} has format version {stored.get('version')!r}; this energizer_hf "
                    f"reads version {FORMAT_VERSION}."
                )
            if wanted is not None and stored.get("config") != wanted:
                raise ConfigMismatchError(
                    f"{self.directory} holds a stream with configuration {stored.get('config')}, "
                    f"not {wanted}: resume with the same configuration, or use a new directory."
                )
            return stored.get("config") or {}
        atomic_write_json(path, {"version": FORMAT_VERSION, "config": wanted or {}})
        return wanted or {}

    def _reload(self) -> None:
        ckpt_path = self.directory / CHECKPOINT_FILE
        decisions, sent = self.directory / DECISIONS_FILE, self.directory / SENT_FILE
        raw = json.loads(ckpt_path.read_text(encoding="utf-8")) if ckpt_path.exists() else None
        sizes = {DECISIONS_FILE: 0, SENT_FILE: 0}
        if raw is not None:
            sizes = {DECISIONS_FILE: int(raw["decisions_bytes"]), SENT_FILE: int(raw["sent_bytes"])}
        for path in (decisions, sent):
            size = sizes[path.name]
            actual = path.stat().st_size if path.exists() else 0
            if actual < size:
                raise StreamStateError(
                    f"{path} has {actual} bytes but the checkpoint recorded {size}: the log was "
                    "truncated or replaced outside energizer_hf; the stream cannot resume."
                )
            if actual > size:  # lines of a commit that never reached its checkpoint
                _truncate(path, size)
        _drop_torn_tail(self.directory / LABELS_FILE)
        self._sent = {}
        for rec in read_jsonl(sent):
            self._sent[rec["id"]] = int(rec["position"])
        self._labels = {}
        for rec in read_jsonl(self.directory / LABELS_FILE):
            if rec["id"] not in self._sent:
                raise StreamStateError(
                    f"{LABELS_FILE} holds a label for item {rec['id']!r}, which no committed "
                    "decision sent: the files are inconsistent."
                )
            self._labels[rec["id"]] = rec["label"]
        self._ckpt_raw = raw
        self.checkpoint = None
        if raw is not None:
            if raw.get("num_sent") != len(self._sent):
                raise StreamStateError(
                    f"The checkpoint counts {raw.get('num_sent')} sent items but {SENT_FILE} holds "
                    f"{len(self._sent)}."
                )
            arrays: dict[str, np.ndarray] = {}
            if raw.get("arrays"):
                try:
                    with np.load(self.directory / raw["arrays"], allow_pickle=False) as npz:
                        arrays = {k: npz[k] for k in npz.files}
                except (OSError, ValueError) as err:
                    raise StreamStateError(f"Cannot read the strategy arrays {raw['arrays']}: {err}") from err
            self.checkpoint = StreamCheckpoint(
                position=int(raw["position"]),
                batches=int(raw["batches"]),
                num_sent=int(raw["num_sent"]),
                source=raw["source"],
                strategy=_join_arrays(raw["strategy"], arrays),
                learner=dict(raw.get("learner") or {}),
            )
        keep = raw.get("arrays") if raw else None
        for stale in self.directory.glob("strategy-*.npz"):
            if stale.name != keep:
                stale.unlink(missing_ok=True)

    # ------------------------------------------------------------------ writing
    @property
    def position(self) -> int:
        """Items decided in committed mini-batches."""
        return self.checkpoint.position if self.checkpoint is not None else 0

    def commit(
        self,
        batch: StreamBatch,
        decisions: StreamDecisions,
        *,
        source_state: Mapping[str, Any],
        strategy_state: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
        item_extra: Mapping[str, Sequence[Any]] | None = None,
        learner_state: Mapping[str, Any] | None = None,
    ) -> list[int | str]:
        """Record a decided mini-batch and the states to resume after it; return the ids to send.

        Args:
            batch: the mini-batch, which must start at :attr:`position`.
            decisions: the strategy's decisions for it (``strategy.last``).
            source_state / strategy_state: their ``state_dict()`` after the batch.
            extra: JSON-able fields added to each decision line (e.g. the model round).
            item_extra: per-item fields, name → ``n`` JSON-able values (e.g. the model's
                predicted class of each item).
            learner_state: the caller's state after the batch (JSON-able), given back as
                :attr:`StreamCheckpoint.learner` on reopening.

        Raises:
            StreamStateError: a batch out of order or of the wrong size.
            InvalidIdsError: an item id sent before.
        """
        n = len(batch)
        if decisions.labelled.shape != (n,):
            raise StreamStateError(f"{decisions.labelled.shape[0]} decisions for a mini-batch of {n} items.")
        with self._lock:
            if n and int(batch.positions[0]) != self.position:
                raise StreamStateError(
                    f"The mini-batch starts at position {int(batch.positions[0])} but the stream "
                    f"is at {self.position}: commit each mini-batch once, in order."
                )
            ids = [_plain_id(v) for v in batch.ids]
            chosen = np.flatnonzero(decisions.labelled)
            sent_ids = [ids[j] for j in chosen]
            again = [i for i in sent_ids if i in self._sent]
            if again or len(set(sent_ids)) != len(sent_ids):
                raise InvalidIdsError(
                    f"Item ids {again or sent_ids} were sent for labelling before: stream item ids "
                    "must be unique (pick an id_column with unique values, or leave it None to "
                    "use arrival positions)."
                )
            extra = dict(extra or {})
            per_item = {k: list(v) for k, v in (item_extra or {}).items()}
            bad = {k: len(v) for k, v in per_item.items() if len(v) != n}
            if bad:
                raise StreamStateError(f"item_extra needs {n} values per field, got {bad}.")
            lines = [
                _dumps(
                    {
                        **extra,
                        **{k: v[j] for k, v in per_item.items()},
                        "position": int(batch.positions[j]),
                        "id": ids[j],
                        "label": bool(decisions.labelled[j]),
                        "score": _float_or_none(decisions.scores[j]),
                        "threshold": _float_or_none(decisions.thresholds[j]),
                        "blocked": bool(decisions.blocked[j]),
                    }
                )
                for j in range(n)
            ]
            sent_lines = [
                _dumps(
                    {"position": int(batch.positions[j]), "id": ids[j]}
                    | ({"row": batch.row(int(j))} if self.keep_rows else {})
                )
                for j in chosen
            ]
            decisions_bytes = _append_lines(self.directory / DECISIONS_FILE, lines)
            sent_bytes = _append_lines(self.directory / SENT_FILE, sent_lines)
            batches = (self.checkpoint.batches if self.checkpoint else 0) + 1
            arrays: dict[str, np.ndarray] = {}
            strategy_json = _split_arrays(dict(strategy_state), "", arrays)
            array_file = None
            if arrays:
                array_file = f"strategy-{batches:08d}.npz"
                buf = io.BytesIO()
                np.savez(buf, **arrays)
                atomic_write_bytes(self.directory / array_file, buf.getvalue())
            raw = {
                "version": FORMAT_VERSION,
                "position": self.position + n,
                "batches": batches,
                "num_sent": len(self._sent) + len(sent_ids),
                "decisions_bytes": decisions_bytes,
                "sent_bytes": sent_bytes,
                "source": json.loads(jsonl_line(dict(source_state))),
                "strategy": json.loads(jsonl_line(strategy_json)),
                "arrays": array_file,
                "learner": json.loads(jsonl_line(dict(learner_state or {}))),
            }
            atomic_write_json(self.directory / CHECKPOINT_FILE, raw)
            previous = self._ckpt_raw.get("arrays") if self._ckpt_raw else None
            if previous and previous != array_file:
                (self.directory / previous).unlink(missing_ok=True)
            for j, item in zip(chosen, sent_ids):
                self._sent[item] = int(batch.positions[j])
            self._ckpt_raw = raw
            self.checkpoint = StreamCheckpoint(
                position=raw["position"],
                batches=batches,
                num_sent=raw["num_sent"],
                source=raw["source"],
                strategy=_join_arrays(raw["strategy"], arrays),
                learner=raw["learner"],
            )
            return sent_ids

    def record_labels(self, ids: Sequence[Any], labels: Sequence[Any]) -> None:
        """Record labels received for sent items (all or none of them).

        Raises:
            UnsentItemError: an id that no committed decision sent for labelling.
            InvalidIdsError: an item labelled before, or twice in this call.
            StreamInputError: ``ids`` and ``labels`` of different lengths.
        """
        ids = [_plain_id(v) for v in (ids.tolist() if isinstance(ids, np.ndarray) else ids)]
        labels = labels.tolist() if isinstance(labels, np.ndarray) else list(labels)
        if len(ids) != len(labels):
            raise StreamInputError(f"Got {len(labels)} labels for {len(ids)} item ids.")
        with self._lock:
            unsent = [i for i in ids if i not in self._sent]
            if unsent:
                raise UnsentItemError(
                    f"Labels arrived for items {unsent[:5]}{'...' if len(unsent) > 5 else ''} that "
                    "were never sent for labelling (or whose mini-batch was never committed): "
                    "check the annotation project belongs to this stream."
                )
            twice = sorted({i for i in ids if i in self._labels or ids.count(i) > 1}, key=str)
            if twice:
                raise InvalidIdsError(f"Items {twice[:5]} are labelled already (or twice in this call).")
            now = time.time()
            _append_lines(
                self.directory / LABELS_FILE,
                [_dumps({"id": i, "label": y, "time": now}) for i, y in zip(ids, labels)],
            )
            for i, y in zip(ids, labels):
                self._labels[i] = y

    # ------------------------------------------------------------------ reading
    @property
    def num_sent(self) -> int:
        return len(self._sent)

    @property
    def num_labelled(self) -> int:
        return len(self._labels)

    def sent_ids(self) -> list[int | str]:
        """Ids sent for labelling, in arrival order."""
        return sorted(self._sent, key=self._sent.__getitem__)

    def pending_ids(self) -> list[int | str]:
        """Ids sent but not labelled yet, in arrival order (to re-send after a restart)."""
        return [i for i in self.sent_ids() if i not in self._labels]

    def labels(self) -> dict[int | str, Any]:
        """Id → label received, in arrival order of the labels."""
        return dict(self._labels)

    def is_sent(self, item_id: Any) -> bool:
        """Whether ``item_id`` was sent for labelling in a committed mini-batch."""
        return _plain_id(item_id) in self._sent

    def position_of(self, item_id: Any) -> int:
        """The arrival position of a sent item.

        Raises:
            UnsentItemError: an id that was never sent.
        """
        item = _plain_id(item_id)
        if item not in self._sent:
            raise UnsentItemError(f"Item {item!r} was never sent for labelling.")
        return self._sent[item]

    def iter_decisions(self) -> Iterator[dict[str, Any]]:
        """The committed decision lines, one dict per item, in arrival order (streamed)."""
        path = self.directory / DECISIONS_FILE
        if not path.exists():
            return
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)

    def decision_arrays(self) -> dict[str, np.ndarray]:
        """The decision log as arrays: ``position``, ``label`` (bool), ``score``, ``threshold``
        (NaN where none) and ``blocked``."""
        cols: dict[str, list[Any]] = {k: [] for k in ("position", "label", "score", "threshold", "blocked")}
        for rec in self.iter_decisions():
            for k in cols:
                v = rec[k]
                cols[k].append(np.nan if v is None else v)
        return {
            "position": np.asarray(cols["position"], dtype=np.int64),
            "label": np.asarray(cols["label"], dtype=bool),
            "score": np.asarray(cols["score"], dtype=np.float64),
            "threshold": np.asarray(cols["threshold"], dtype=np.float64),
            "blocked": np.asarray(cols["blocked"], dtype=bool),
        }

    def sent_records(self) -> list[dict[str, Any]]:
        """The ``sent.jsonl`` records (``position``, ``id``, ``row`` when kept), in arrival order:
        what an oracle needs to (re-)send items, e.g. :meth:`pending_ids` after a restart."""
        return read_jsonl(self.directory / SENT_FILE)

    def labelled_rows(self, label_column: str = "label") -> list[dict[str, Any]]:
        """The labelled items' rows (from ``sent.jsonl``) with their label, in arrival order.

        Raises:
            StreamStateError: the store does not keep rows (``keep_rows=False``).
        """
        rows = []
        for rec in self.sent_records():
            if rec["id"] not in self._labels:
                continue
            if "row" not in rec:
                raise StreamStateError(
                    "This stream store does not keep the rows of sent items (keep_rows=False): "
                    "read the labelled rows from the replayed dataset by id instead."
                )
            rows.append({**rec["row"], label_column: self._labels[rec["id"]], "stream_id": rec["id"]})
        return rows

    def labelled_dataset(self, label_column: str = "label") -> Any:
        """The labelled items as a ``datasets.Dataset`` (the stream itself is never materialised)."""
        import datasets

        rows = self.labelled_rows(label_column)
        if not rows:
            return datasets.Dataset.from_dict({label_column: [], "stream_id": []})
        return datasets.Dataset.from_list(rows)
