"""Stream sources: mini-batches in arrival order, resume exactly where the data allows."""

from __future__ import annotations

import csv
import json

import datasets
import numpy as np
import pytest

from energizer_hf.errors import (
    ColumnNotFoundError,
    NotResumableError,
    StreamInputError,
    StreamStateError,
)
from energizer_hf.stream import (
    IterableDatasetSource,
    IterableSource,
    ReplaySource,
    as_stream_source,
)

ROWS = [{"text": f"row {i}", "label": i % 3, "uid": f"u{i}"} for i in range(53)]


def _texts(source, batch_size):
    return [t for b in source.batches(batch_size) for t in b.texts]


def _json_round_trip(state):
    return json.loads(json.dumps(state))


@pytest.fixture(scope="module")
def local_files(tmp_path_factory):
    """The rows split over two CSV files and two JSONL files (two shards each)."""
    root = tmp_path_factory.mktemp("stream_files")
    paths = {"csv": [], "json": []}
    for k, chunk in enumerate((ROWS[:30], ROWS[30:])):
        p = root / f"part{k}.csv"
        with open(p, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["text", "label", "uid"])
            w.writeheader()
            w.writerows(chunk)
        paths["csv"].append(str(p))
        p = root / f"part{k}.jsonl"
        p.write_text("".join(json.dumps(r) + "\n" for r in chunk))
        paths["json"].append(str(p))
    return paths


def _streamed(fmt, files):
    return datasets.load_dataset(fmt, data_files=files, split="train", streaming=True)


# ----------------------------------------------------------------------------- IterableDataset
@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("batches_before", [1, 3, 6, 10])
def test_streaming_dataset_resumes_with_exactly_the_remaining_rows(local_files, fmt, batches_before):
    batch_size = 5  # 6 batches = 30 rows: the resume point falls on the file boundary
    src = IterableDatasetSource(_streamed(fmt, local_files[fmt]))
    seen = []
    for k, batch in enumerate(src.batches(batch_size)):
        seen += batch.texts
        assert batch.positions.tolist() == list(range(k * batch_size, k * batch_size + len(batch)))
        if k + 1 == batches_before:
            break
    state = _json_round_trip(src.state_dict())
    assert state["position"] == len(seen)
    resumed = IterableDatasetSource(_streamed(fmt, local_files[fmt]))  # a fresh process's objects
    resumed.load_state_dict(state)
    rest = []
    for batch in resumed.batches(batch_size):
        assert int(batch.positions[0]) == len(seen) + len(rest)
        rest += batch.texts
    assert seen + rest == [r["text"] for r in ROWS]
    assert batch.ids == batch.positions.tolist()  # default ids are arrival positions


def test_streaming_dataset_ids_columns_and_errors(local_files):
    src = IterableDatasetSource(_streamed("json", local_files["json"]), id_column="uid")
    batch = next(src.batches(4))
    assert batch.ids == ["u0", "u1", "u2", "u3"]
    assert batch.columns["label"] == [0, 1, 2, 0] and batch.row(1)["uid"] == "u1"
    with pytest.raises(ColumnNotFoundError, match="no text column 'body'"):
        IterableDatasetSource(_streamed("json", local_files["json"]), text_column="body")
    shuffled = _streamed("json", local_files["json"]).shuffle(seed=0, buffer_size=10)
    src = IterableDatasetSource(shuffled)
    next(src.batches(4))
    state = src.state_dict()
    fresh = IterableDatasetSource(_streamed("json", local_files["json"]).shuffle(seed=0, buffer_size=10))
    with pytest.raises(NotResumableError, match="shuffle buffer|buffer"):
        fresh.load_state_dict(state)
    fresh.load_state_dict({"kind": "iterable_dataset", "position": 0, "datasets_state": None})  # start: fine
    with pytest.raises(StreamStateError, match="'replay' source"):
        fresh.load_state_dict({"kind": "replay", "position": 3})


def test_streaming_dataset_without_features_checks_rows(tmp_path):
    def gen():
        yield {"text": "a"}
        yield {"body": "b"}

    ds = datasets.IterableDataset.from_generator(gen)
    assert ds.features is None  # nothing to check up front: rows are checked as they come
    src = as_stream_source(ds)
    assert isinstance(src, IterableDatasetSource)
    with pytest.raises(ColumnNotFoundError, match="position 1 has no text column 'text'"):
        list(src.batches(2))


# ----------------------------------------------------------------------------- plain iterables
def test_list_source_resumes_by_position():
    src = IterableSource(ROWS)
    it = src.batches(8)
    head = next(it).texts + next(it).texts
    state = _json_round_trip(src.state_dict())
    resumed = IterableSource(ROWS)
    resumed.load_state_dict(state)
    assert head + _texts(resumed, 8) == [r["text"] for r in ROWS]
    with pytest.raises(StreamStateError, match="only 3"):
        IterableSource(ROWS[:3]).load_state_dict(state)


def test_generator_is_not_resumable_but_a_generator_function_is():
    def gen():
        yield from ROWS

    src = IterableSource(gen())
    assert not src.resumable
    next(src.batches(10))
    state = src.state_dict()
    again = IterableSource(gen())
    with pytest.raises(NotResumableError) as info:
        again.load_state_dict(state)
    msg = str(info.value)
    assert "generator" in msg and "IterableDataset" in msg and "ReplaySource" in msg and "row 10" in msg
    again.load_state_dict({"kind": "iterable", "position": 0})  # nothing consumed yet: fine
    assert len(_texts(again, 10)) == len(ROWS)
    # a function returning a fresh iterator resumes by skipping what was seen
    by_function = IterableSource(gen)
    assert by_function.resumable
    by_function.load_state_dict(state)
    assert _texts(by_function, 7) == [r["text"] for r in ROWS[10:]]
    short = IterableSource(lambda: iter(ROWS[:4]))
    short.load_state_dict(state)
    with pytest.raises(StreamStateError, match="only 4"):
        list(short.batches(3))


def test_rows_without_the_text_column_and_bad_rows():
    rows = [{"text": "a"}, {"text": "b"}, {"body": "c"}]
    with pytest.raises(ColumnNotFoundError, match="position 2 has no text column 'text'"):
        list(IterableSource(rows).batches(2))
    with pytest.raises(StreamInputError, match="mapping"):
        list(IterableSource(["just text"]).batches(2))
    with pytest.raises(StreamInputError, match="iterable of rows"):
        IterableSource("abc")
    with pytest.raises(StreamInputError, match="batch_size"):
        list(IterableSource(ROWS).batches(0))
    with pytest.raises(ColumnNotFoundError, match="id column 'uid'"):
        list(IterableSource([{"text": "a"}], id_column="uid").batches(1))
    # rows with extra or missing optional columns are filled with None
    batch = next(IterableSource([{"text": "a", "x": 1}, {"text": "b"}]).batches(2))
    assert batch.columns == {"text": ["a", "b"], "x": [1, None]}


# ----------------------------------------------------------------------------- replay
@pytest.fixture(scope="module")
def table():
    return datasets.Dataset.from_list(ROWS)


def test_replay_order_is_seeded(table):
    def ids(**kw):
        return [i for b in ReplaySource(table, **kw).batches(7) for i in b.ids]

    a, b, c = ids(seed=0), ids(seed=0), ids(seed=1)
    assert a == b != c
    assert sorted(a) == list(range(len(ROWS)))
    assert a == np.random.default_rng(0).permutation(len(ROWS)).tolist()
    assert ids(shuffle=False) == list(range(len(ROWS)))
    src = ReplaySource(table, seed=0)
    batch = next(src.batches(4))
    assert batch.texts == [ROWS[i]["text"] for i in batch.ids]  # ids are row indices
    assert isinstance(src.order, np.ndarray) and src.order.dtype == np.int64


def test_replay_resumes_by_position_and_checks_the_data(table):
    src = ReplaySource(table, seed=3)
    it = src.batches(10)
    head = next(it).ids + next(it).ids
    state = _json_round_trip(src.state_dict())
    resumed = ReplaySource(table, seed=3)
    resumed.load_state_dict(state)
    tail = [i for b in resumed.batches(10) for i in b.ids]
    assert head + tail == ReplaySource(table, seed=3).order.tolist()
    with pytest.raises(StreamStateError, match="another order"):
        ReplaySource(table, seed=4).load_state_dict(state)
    other = table.map(lambda r: {"text": r["text"].upper()})
    with pytest.raises(StreamStateError, match="fingerprint"):
        ReplaySource(other, seed=3).load_state_dict(state)


def test_replay_order_validation(table):
    n = len(ROWS)
    src = ReplaySource(table, order=[5, 2, 9])
    assert [i for b in src.batches(2) for i in b.ids] == [5, 2, 9]
    with pytest.raises(StreamInputError, match="repeats row 2"):
        ReplaySource(table, order=[2, 2])
    with pytest.raises(StreamInputError, match="outside"):
        ReplaySource(table, order=[n])
    with pytest.raises(StreamInputError, match="1-D"):
        ReplaySource(table, order=[[1]])
    with pytest.raises(ColumnNotFoundError, match="no text column 'body'"):
        ReplaySource(table, text_column="body")
    with pytest.raises(StreamInputError, match="replayed"):
        as_stream_source(ROWS, seed=1)
    assert isinstance(as_stream_source(table, seed=1), ReplaySource)
    assert isinstance(as_stream_source(ROWS), IterableSource)
