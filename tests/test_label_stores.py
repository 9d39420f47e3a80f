"""energizer_hf.label_stores: ragged tag store and multi-hot store, their file format,
named errors, and crash safety (a writer killed with SIGKILL mid-write)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from energizer_hf.errors import (
    CorruptLabelStateError,
    DatasetMismatchError,
    EmptyLabelSetError,
    EmptySentenceError,
    InvalidIdsError,
    TagLengthMismatchError,
    UnknownLabelError,
)
from energizer_hf.label_stores import MultiHotStore, RaggedTagStore

WRITER = Path(__file__).parent / "scripts" / "label_store_writer.py"
sys.path.insert(0, str(WRITER.parent))
from label_store_writer import NUM_LABELS, NUM_TAGS, multihot_step, ragged_step  # noqa: E402


# ---------------------------------------------------------------------------- ragged store
def test_ragged_append_update_and_read(tmp_path):
    store = RaggedTagStore(tmp_path, num_rows=6, num_tags=5, fingerprint="fp")
    assert store.labelled_ids.size == 0 and store.offsets.tolist() == [0] * 7
    store.set([4, 1], [[1, 2, 2], [0]])
    store.set([2], [[3, 4]])
    store.set([4], [[0, 0, 1, 2]])  # replace, with another length
    assert store.labelled_ids.tolist() == [1, 2, 4]
    assert store.lengths.tolist() == [0, 1, 2, 0, 4, 0]
    assert store.values.tolist() == [0, 3, 4, 0, 0, 1, 2]  # pool-id order
    assert store.get(4).tolist() == [0, 0, 1, 2] and store.get(0).size == 0
    flat, lengths = store.gather([4, 2, 0])
    assert flat.tolist() == [0, 0, 1, 2, 3, 4] and lengths.tolist() == [4, 2, 0]
    assert store.padded([2, 1]).tolist() == [[3, 4], [0, -100]]
    assert store.num_tokens == 7 and store.values.dtype == np.int16
    assert not store.values.flags.writeable  # memory-mapped read-only
    # the files are the documented ones, and a reopened store sees the same state
    names = sorted(p.name for p in tmp_path.iterdir())
    g = store.generation
    assert names == [f"token_tags.{g}.offsets.npy", f"token_tags.{g}.values.npy", "token_tags.json"]
    meta = json.loads((tmp_path / "token_tags.json").read_text())
    assert meta["num_values"] == 7 and meta["dtype"] == "int16" and meta["generation"] == g
    again = RaggedTagStore(tmp_path, num_rows=6, num_tags=5, fingerprint="fp")
    assert again.values.tolist() == store.values.tolist()
    assert again.offsets.tolist() == store.offsets.tolist()
    assert RaggedTagStore(None, 3, 40000).values.dtype == np.int32


def test_ragged_bad_input_is_named(tmp_path):
    store = RaggedTagStore(tmp_path, num_rows=3, num_tags=4, sentence_lengths=[2, 1, 3])
    with pytest.raises(InvalidIdsError, match="out of range"):
        store.set([3], [[0]])
    with pytest.raises(InvalidIdsError, match="twice"):
        store.set([1, 1], [[0], [0]])
    with pytest.raises(TagLengthMismatchError, match="Pool id 0 has 2 words but 1 tags"):
        store.set([0], [[1]])
    with pytest.raises(TagLengthMismatchError, match="2 pool ids but 1 tag"):
        store.set([0, 1], [[1, 1]])
    with pytest.raises(EmptySentenceError):
        RaggedTagStore(None, 3, 4).set([0], [[]])
    with pytest.raises(UnknownLabelError, match="Tag id 4 is outside"):
        store.set([1], [[4]])
    with pytest.raises(UnknownLabelError):
        store.set([1], [[-1]])
    assert store.labelled_ids.size == 0  # nothing was written by the refused updates
    with pytest.raises(DatasetMismatchError, match="num_rows"):
        RaggedTagStore(tmp_path, num_rows=4, num_tags=4)


def test_ragged_uncommitted_generation_is_ignored_and_removed(tmp_path):
    store = RaggedTagStore(tmp_path, num_rows=3, num_tags=4)
    store.set([0], [[1, 2]])
    g = store.generation
    # a writer that died after writing the next generation's files but before the
    # manifest, and one that died inside a temporary file
    (tmp_path / f"token_tags.{g + 1}.values.npy").write_bytes(b"garbage")
    np.save(tmp_path / f"token_tags.{g + 1}.offsets.npy", np.zeros(4, dtype=np.int64))
    (tmp_path / ".token_tags.json.abc123.tmp").write_text("{")
    reader = RaggedTagStore(tmp_path, num_rows=3, num_tags=4, read_only=True)
    assert reader.get(0).tolist() == [1, 2]
    assert (tmp_path / ".token_tags.json.abc123.tmp").exists()  # a reader never deletes
    reader.set([1], [[3]])  # read-only: kept in memory only
    assert RaggedTagStore(tmp_path, 3, 4).labelled_ids.tolist() == [0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"token_tags.{g}.offsets.npy",
        f"token_tags.{g}.values.npy",
        "token_tags.json",
    ]


def test_ragged_corruption_is_detected(tmp_path):
    store = RaggedTagStore(tmp_path, num_rows=3, num_tags=4)
    store.set([0, 2], [[1, 2], [3]])
    off_path = tmp_path / f"token_tags.{store.generation}.offsets.npy"
    np.save(off_path, np.array([0, 2, 1, 3], dtype=np.int64))  # decreasing
    with pytest.raises(CorruptLabelStateError, match="inconsistent"):
        RaggedTagStore(tmp_path, 3, 4)
    off_path.unlink()
    with pytest.raises(CorruptLabelStateError, match="cannot be read"):
        RaggedTagStore(tmp_path, 3, 4)
    (tmp_path / "token_tags.json").write_text("{not json")
    with pytest.raises(CorruptLabelStateError):
        RaggedTagStore(tmp_path, 3, 4)


# ---------------------------------------------------------------------------- multi-hot store
def test_multihot_store_roundtrip_and_errors(tmp_path):
    store = MultiHotStore(tmp_path, num_rows=4, num_labels=3, label_names=["a", "b", "c"])
    store.set([2, 0], [[1, 0, 1], [0, 1, 0]])
    store.set([2], [0, 0, 1])
    assert store.labelled_ids.tolist() == [0, 2]
    assert store.matrix.tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0]]
    assert store.get([2, 1]).tolist() == [[0, 0, 1], [0, 0, 0]]
    again = MultiHotStore(tmp_path, num_rows=4, num_labels=3)
    assert again.label_names == ["a", "b", "c"] and again.known.tolist() == [
        True,
        False,
        True,
        False,
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi_hot.json", "multi_hot.npy"]
    with pytest.raises(EmptyLabelSetError, match="Pool id 1 was given no label"):
        store.set([1], [[0, 0, 0]])
    none_ok = MultiHotStore(None, 4, 3, allow_empty=True)
    none_ok.set([1], [[0, 0, 0]])
    assert none_ok.labelled_ids.tolist() == [1]
    with pytest.raises(TagLengthMismatchError):
        store.set([1], [[1, 0]])
    with pytest.raises(UnknownLabelError):
        store.set([1], [[2, 0, 0]])
    with pytest.raises(InvalidIdsError):
        store.set([9], [[1, 0, 0]])
    with pytest.raises(DatasetMismatchError, match="label_names"):
        MultiHotStore(tmp_path, 4, 3, label_names=["a", "b", "x"])
    np.save(tmp_path / "multi_hot.npy", np.zeros((4, 3), dtype=np.uint8))
    with pytest.raises(CorruptLabelStateError):
        MultiHotStore(tmp_path, 4, 3)


# ---------------------------------------------------------------------------- crash safety
def _writer_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
    )
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run_and_kill(kind: str, state_dir: Path, n: int, fraction: float) -> tuple[int, list[str]]:
    """Start a writer, wait for two acknowledged updates, then SIGKILL it ``fraction`` of
    an update's duration after the next acknowledgement (sweeping ``fraction`` over
    [0, 1) lands kills in the computation, the data files, the manifest and the clean-up).

    Returns the last acknowledged update and the directory listing right after the kill.
    """
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), kind, str(state_dir), str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_writer_env(),
    )
    last = 0
    try:
        stamps = []
        while len(stamps) < 3:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"writer exited early: {proc.stderr.read()}")
            last = int(line.split()[1])
            stamps.append(time.perf_counter())
        period = (stamps[2] - stamps[0]) / 2
        time.sleep(fraction * period)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    for line in out.splitlines():
        if line.startswith("ACK"):
            last = int(line.split()[1])
    assert proc.returncode == -signal.SIGKILL
    return last, sorted(p.name for p in state_dir.iterdir())


KILL_FRACTIONS = [(i + 0.5) / 8 for i in range(8)]


@pytest.mark.slow
def test_ragged_store_survives_sigkill_mid_write(tmp_path):
    n = 150_000  # ~600k tags: each update takes ~0.1-0.3 s, files written in its last third
    for attempt, fraction in enumerate(KILL_FRACTIONS):
        last, _ = _run_and_kill("ragged", tmp_path, n, fraction)
        store = RaggedTagStore(tmp_path, n, NUM_TAGS, fingerprint="crash-test")
        k = store.generation
        # the committed state is exactly update k: the last acknowledged one or the one
        # that was being written when the writer died (committed, not yet acknowledged)
        assert k in (last, last + 1), (attempt, k, last)
        values, lengths = ragged_step(n, k)
        np.testing.assert_array_equal(store.lengths, lengths)
        np.testing.assert_array_equal(store.values, values)
        files = sorted(p.name for p in tmp_path.iterdir())
        assert files == [
            f"token_tags.{k}.offsets.npy",
            f"token_tags.{k}.values.npy",
            "token_tags.json",
        ]


@pytest.mark.slow
def test_multihot_store_survives_sigkill_mid_write(tmp_path):
    n = 100_000
    for attempt, fraction in enumerate(KILL_FRACTIONS):
        last, _ = _run_and_kill("multihot", tmp_path, n, fraction)
        store = MultiHotStore(tmp_path, n, NUM_LABELS, fingerprint="crash-test")
        assert store.known.all()
        k = int(np.argmax(store.matrix[0]))  # k mod L
        assert k in (last % NUM_LABELS, (last + 1) % NUM_LABELS), (attempt, k, last)
        np.testing.assert_array_equal(store.matrix, multihot_step(n, k))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["multi_hot.json", "multi_hot.npy"]
