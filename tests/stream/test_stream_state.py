"""The stream store: commit, reload, crash mid-commit or SIGKILL, resume with the same decisions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pytest
from _stream_runner import main as run_stream  # tests/stream is on sys.path (rootdir conftest)
from _stream_runner import synthetic_outputs

import energizer_hf.stream.state as state_module
from energizer_hf.errors import (
    ConfigMismatchError,
    InvalidIdsError,
    StreamInputError,
    StreamStateError,
    UnsentItemError,
)
from energizer_hf.stream import (
    IterableSource,
    ReplaySource,
    StreamStore,
    make_stream_strategy,
)

ROOT = Path(__file__).resolve().parents[2]
N = 300


class SimulatedCrash(BaseException):
    """The process dies (not an exception any code would catch)."""


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    return datasets.Dataset.from_dict(
        {"text": [f"item {i} {rng.integers(1_000_000)}" for i in range(N)], "label": (np.arange(N) % 3).tolist()}
    )


def _run_replay(table, directory, *, strategy="split", stop_after=None, batch_size=20, crash_at=None, monkeypatch=None):
    """Decide the replayed table (resuming from ``directory``); optionally stop or crash mid-commit."""
    source = ReplaySource(table, seed=5)
    strat = make_stream_strategy(strategy, 0.15, window=40, seed=2, **({"memory_size": 8} if strategy == "novelty" else {}))
    store = StreamStore(directory, config={"strategy": strategy})
    if store.checkpoint is not None:
        source.load_state_dict(store.checkpoint.source)
        strat.load_state_dict(store.checkpoint.strategy)
    for k, batch in enumerate(source.batches(batch_size)):
        scores, emb = synthetic_outputs(batch.texts)
        strat.decide(scores, emb if strat.requires_embeddings else None)
        if crash_at is not None and k == crash_at:
            # the process dies after the log lines are written, before the checkpoint rename
            def die(*args, **kwargs):
                raise SimulatedCrash

            monkeypatch.setattr(state_module, "atomic_write_json", die)
        sent = store.commit(batch, strat.last, source_state=source.state_dict(), strategy_state=strat.state_dict())
        store.record_labels(sent, [batch.columns["label"][batch.ids.index(i)] for i in sent])
        if stop_after is not None and k + 1 == stop_after:
            break
    return store


def _logs(directory):
    d = Path(directory)
    return (d / "decisions.jsonl").read_bytes(), (d / "sent.jsonl").read_bytes()


@pytest.mark.parametrize("strategy", ["split", "novelty"])
def test_stop_and_resume_gives_the_uninterrupted_log(tmp_path, table, strategy):
    full = _run_replay(table, tmp_path / "full", strategy=strategy)
    assert full.position == N and full.checkpoint.batches == 15
    _run_replay(table, tmp_path / "cut", strategy=strategy, stop_after=6)
    resumed = _run_replay(table, tmp_path / "cut", strategy=strategy)
    assert _logs(tmp_path / "cut") == _logs(tmp_path / "full")
    assert resumed.labels() == full.labels()
    assert resumed.checkpoint.strategy["state"]["recent"] == full.checkpoint.strategy["state"]["recent"]
    if strategy == "novelty":  # the embedding memory goes through the array file
        np.testing.assert_array_equal(
            resumed.checkpoint.strategy["state"]["memory"], full.checkpoint.strategy["state"]["memory"]
        )
        assert [p.name for p in (tmp_path / "cut").glob("strategy-*.npz")] == ["strategy-00000015.npz"]


def test_crash_mid_commit_is_cut_off_and_redone(tmp_path, table, monkeypatch):
    full = _run_replay(table, tmp_path / "full")
    with pytest.raises(SimulatedCrash):
        _run_replay(table, tmp_path / "crash", crash_at=4, monkeypatch=monkeypatch)
    monkeypatch.undo()
    decisions = (tmp_path / "crash" / "decisions.jsonl").read_text().splitlines()
    assert len(decisions) == 5 * 20  # the fifth batch's lines were written, its checkpoint was not
    with open(tmp_path / "crash" / "labels.jsonl", "a") as fh:
        fh.write('{"id": 3, "lab')  # and a torn label line
    reopened = StreamStore(tmp_path / "crash", config={"strategy": "split"})
    assert reopened.position == 80
    assert len((tmp_path / "crash" / "decisions.jsonl").read_text().splitlines()) == 80
    assert (tmp_path / "crash" / "labels.jsonl").read_bytes().endswith(b"\n")
    _run_replay(table, tmp_path / "crash")
    assert _logs(tmp_path / "crash") == _logs(tmp_path / "full")
    assert StreamStore(tmp_path / "crash").labels() == full.labels()


def test_decision_log_content(tmp_path):
    rows = [{"text": f"t{i}", "label": i % 2} for i in range(12)]
    source = IterableSource(rows)
    strat = make_stream_strategy("fixed", 0.25, threshold=0.5, window=4)
    store = StreamStore(tmp_path, config={"s": "fixed"})
    scores = np.array([0.9, 0.1, 0.8, 0.7, 0.2, 0.95, 0.99, 0.3, 0.6, 0.6, 0.6, 0.6])
    for batch in source.batches(5):
        strat.decide(scores[batch.positions])
        store.commit(batch, strat.last, source_state=source.state_dict(), strategy_state=strat.state_dict(), extra={"round": 0})
    recs = list(store.iter_decisions())
    assert [r["position"] for r in recs] == list(range(12))
    # cap 1 per 4 arrivals: a label blocks the next three items
    assert [r["position"] for r in recs if r["label"]] == [0, 5, 9]
    assert [r["position"] for r in recs if r["blocked"]] == [1, 2, 3, 6, 7, 8, 10, 11]
    assert recs[0] == {"position": 0, "id": 0, "label": True, "score": 0.9, "threshold": 0.5, "blocked": False, "round": 0}
    assert recs[4] == {"position": 4, "id": 4, "label": False, "score": 0.2, "threshold": 0.5, "blocked": False, "round": 0}
    arrays = store.decision_arrays()
    np.testing.assert_array_equal(arrays["label"], [r["label"] for r in recs])
    np.testing.assert_allclose(arrays["score"], scores)
    assert store.sent_ids() == [0, 5, 9] and store.pending_ids() == [0, 5, 9]
    store.record_labels(np.array([5, 0]), np.array([1, 0]))
    assert store.pending_ids() == [9]
    ds = store.labelled_dataset()
    assert ds["text"][:] == ["t0", "t5"] and ds["label"][:] == [0, 1] and ds["stream_id"][:] == [0, 5]


def test_labels_and_commits_bad_input(tmp_path):
    rows = [{"text": f"t{i}", "uid": f"u{i % 3}"} for i in range(6)]
    source = IterableSource(rows, id_column="uid")
    strat = make_stream_strategy("random", 1.0, window=1)
    store = StreamStore(tmp_path, config={"a": 1})
    it = source.batches(3)
    batch = next(it)
    strat.decide(num_items=3)
    assert store.commit(batch, strat.last, source_state=source.state_dict(), strategy_state=strat.state_dict()) == ["u0", "u1", "u2"]
    with pytest.raises(UnsentItemError, match="never sent"):
        store.record_labels(["u0", "nope"], [1, 2])
    assert store.labels() == {}  # all or nothing
    store.record_labels(["u0"], [1])
    with pytest.raises(InvalidIdsError, match="labelled already"):
        store.record_labels(["u0"], [1])
    with pytest.raises(InvalidIdsError, match="twice"):
        store.record_labels(["u1", "u1"], [1, 1])
    with pytest.raises(StreamInputError, match="2 labels for 1"):
        store.record_labels(["u1"], [1, 2])
    with pytest.raises(StreamInputError, match="ints or strings"):
        store.record_labels([1.5], [1])
    # the next batch repeats the ids: sending an id twice is refused
    batch2 = next(it)
    strat.decide(num_items=3)
    with pytest.raises(InvalidIdsError, match="unique"):
        store.commit(batch2, strat.last, source_state=source.state_dict(), strategy_state=strat.state_dict())
    # out-of-order commits are refused
    with pytest.raises(StreamStateError, match="commit each mini-batch once, in order"):
        store.commit(batch, strat.last, source_state={}, strategy_state={})
    with pytest.raises(StreamStateError, match="decisions for a mini-batch"):
        store.commit(batch2, strat.last._replace(labelled=np.ones(2, bool)), source_state={}, strategy_state={})
    # reopening keeps labels; another configuration is refused
    assert StreamStore(tmp_path).labels() == {"u0": 1}
    with pytest.raises(ConfigMismatchError, match="another configuration|configuration"):
        StreamStore(tmp_path, config={"a": 2})


def test_damaged_files_are_named(tmp_path, table):
    _run_replay(table, tmp_path / "run", stop_after=3)
    log = tmp_path / "run" / "decisions.jsonl"
    data = log.read_bytes()
    log.write_bytes(data[: len(data) // 2])
    with pytest.raises(StreamStateError, match="truncated or replaced"):
        StreamStore(tmp_path / "run")
    log.write_bytes(data)
    labels = tmp_path / "run" / "labels.jsonl"
    with open(labels, "a") as fh:
        fh.write(json.dumps({"id": 10**9, "label": 1, "time": 0}) + "\n")
    with pytest.raises(StreamStateError, match="no committed decision sent"):
        StreamStore(tmp_path / "run")


@pytest.fixture(scope="module")
def jsonl_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream_jsonl")
    rng = np.random.default_rng(1)
    for part in range(2):
        lines = [
            json.dumps({"text": f"doc {part}-{i} {rng.integers(10**9)}", "label": int(rng.integers(3)), "uid": f"{part}-{i}"})
            for i in range(200)
        ]
        (root / f"part{part}.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.slow
def test_sigkill_mid_stream_then_resume(tmp_path, jsonl_dir):
    reference = tmp_path / "reference"
    expected = run_stream(str(jsonl_dir), str(reference))
    assert expected["position"] == 400 and expected["sent"] == expected["labelled"] > 40
    run_dir = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "tests.stream._stream_runner", str(jsonl_dir), str(run_dir)]
    proc = subprocess.Popen([*cmd, "0.05"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log = run_dir / "decisions.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and log.read_bytes().count(b"\n") >= 120:
            break
        time.sleep(0.005)
    time.sleep(float(np.random.default_rng().uniform(0, 0.1)))  # land anywhere in a batch
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = log.read_bytes().count(b"\n")
    assert 120 <= killed_at < 400
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"DONE {expected}" in done.stdout
    assert _logs(run_dir) == _logs(reference)
    assert StreamStore(run_dir).labels() == StreamStore(reference).labels()
