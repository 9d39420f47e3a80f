"""StreamLearner end to end on the tiny model: rounds, budget, revisions, resume, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from energizer_hf.errors import (
    BudgetRateError,
    ColumnNotFoundError,
    NotResumableError,
    StreamTooShortError,
    UnsentItemError,
)
from energizer_hf.functional.stream import sliding_window_counts
from energizer_hf.run import RunDir, RunInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from _learner_runner import learner as make_learner  # noqa: E402

TIME_KEYS = ("time_fit", "time_test", "time_stream_waited")


def decisions(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in RunDir(run_dir).stream_decisions.read_text().splitlines()]


def records(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIME_KEYS} for r in RunDir(run_dir).read_records()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("stream") / "run"
    learner = make_learner(str(run_dir), "replay")
    return learner, learner.run()


def test_rounds_swap_at_the_lag_and_every_decision_names_its_model(finished):
    learner, results = finished
    assert results.num_seen == 400 and results.stop_reason == "stream_end"
    recs = results.records
    assert [r["round"] for r in recs] == list(range(len(recs))) and len(recs) >= 4
    for r in recs[:-1]:  # retrains every 20 labels, swapped 64 items (two mini-batches) later
        assert r["num_labelled"] % 20 == 0
        assert r["swap_position"] == r["trigger_position"] + 64
        assert "test/accuracy" in r and r["num_train"] == r["num_labelled"]
    assert recs[-1]["num_labelled"] == results.num_labelled  # a last model on every label
    lines = decisions(results.run_dir)
    assert [d["position"] for d in lines] == list(range(400))
    swaps = {r["swap_position"]: r["round"] for r in recs}
    in_use = -1
    for d in lines:
        in_use = swaps.get(d["position"], in_use)
        assert d["round"] == in_use
        assert d["pred"] in range(5) and d["truth"] in range(5)


def test_budget_holds_over_every_window_and_progress_reports_it(finished):
    learner, results = finished
    sent = np.array([d["label"] for d in decisions(results.run_dir)])
    assert sent.sum() == results.num_sent
    assert sliding_window_counts(sent, 50).max() <= 10  # floor(0.2 * 50)
    progress = learner.progress()
    assert progress["seen"] == 400 and progress["labelled"] == results.num_labelled
    assert 0 < progress["rate"] <= 0.2 and progress["accuracy"] == results.last_accuracy


def test_revisions_run_info_labelled_set_and_plot(finished):
    learner, results = finished
    files = RunDir(results.run_dir)
    assert files.local_rounds() == [r["round"] for r in results.records]
    info = RunInfo.from_dir(files)
    assert info.strategy == "variable_uncertainty" and info.settings["mode"] == "stream"
    assert info.label_names == ("sports", "finance", "science", "politics", "cooking")
    from energizer_hf.revisions import load_round

    last = load_round(results.run_dir)
    assert len(last) == results.num_labelled and "stream_id" in last.column_names
    labelled = learner.labelled_dataset()
    assert len(labelled) == results.num_labelled
    # a replayed stream's ids are its rows: the simulated labels are the dataset's own
    source = learner.source.dataset
    assert labelled["label"][:] == [source[int(i)]["label"] for i in labelled["stream_id"][:]]
    assert labelled["text"][:] == [source[int(i)]["text"] for i in labelled["stream_id"][:]]
    assert files.stream_plot.stat().st_size > 1000
    assert files.stream_model(results.records[-1]["round"]).exists()
    assert (files.final_model / "config.json").exists()
    # a finished run returns its results without reading the stream again
    again = make_learner(str(results.run_dir), "replay").run()
    assert again.records == results.records


def _run(run_dir: Path, source: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT))
    env.pop("ENERGIZER_HF_FAULT", None)
    if fault:
        env["ENERGIZER_HF_FAULT"] = fault
    return subprocess.run([sys.executable, str(HERE / "_learner_runner.py"), str(run_dir), source],
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("source, batch", [("replay", 3), ("replay", 9), ("streaming", 5)])
def test_killed_run_resumes_at_the_same_position_with_the_same_decisions(tmp_path, source, batch):
    """Killed right after mini-batch ``batch`` is committed (3: while the first retrain runs in
    the background; 9: between retrains), then resumed: the same decisions, labels and rounds
    as an uninterrupted run."""
    whole = _run(tmp_path / "whole" / "run", source)
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = _run(tmp_path / "killed" / "run", source, fault=f"stream_commit:{batch}")
    assert killed.returncode == 77, killed.stderr[-3000:]
    partial = decisions(tmp_path / "killed" / "run")
    assert len(partial) == 32 * batch
    ckpt = json.loads(RunDir(tmp_path / "killed" / "run").stream_checkpoint.read_text())
    assert (ckpt["learner"]["inflight"] is not None) == (batch == 3)  # 3: killed while retraining
    resumed = _run(tmp_path / "killed" / "run", source)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = RunDir(tmp_path / "whole" / "run"), RunDir(tmp_path / "killed" / "run")
    assert a.stream_decisions.read_bytes() == b.stream_decisions.read_bytes()
    labels = lambda f: [(r["id"], r["label"]) for r in map(json.loads, f.stream_labels.read_text().splitlines())]  # noqa: E731
    assert labels(a) == labels(b)
    assert records(a.root) == records(b.root)


def test_load_dataset_streaming_source_over_local_files(tmp_path):
    import datasets

    rows = [{"text": f"{'good great' if i % 2 else 'bad awful'} item {i}", "label": ["neg", "pos"][i % 2]}
            for i in range(200)]
    (tmp_path / "data").mkdir()
    for name, part in (("train", rows), ("test", rows[:40])):
        with open(tmp_path / "data" / f"{name}.jsonl", "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in part)
    from energizer_hf.demo import build_tiny_bert, train_wordpiece_tokenizer
    from energizer_hf.stream import IterableDatasetSource
    from energizer_hf.stream_learner import StreamConfig, StreamLearner

    tok = train_wordpiece_tokenizer([r["text"] for r in rows], vocab_size=120)
    config = StreamConfig(
        data_files={"train": str(tmp_path / "data" / "train.jsonl"), "test": str(tmp_path / "data" / "test.jsonl")},
        streaming=True, label_names=["neg", "pos"], budget_rate=0.25, window=40, retrain_every=10,
        retrain_lag=0, stream_batch_size=16, max_epochs=1, min_steps=0, learning_rate=1e-3, max_length=16,
        run_dir=str(tmp_path / "run"), progress=False,
    )
    learner = StreamLearner(config, model=build_tiny_bert(len(tok), hidden=16, layers=1), tokenizer=tok)
    results = learner.run()
    assert isinstance(learner.source, IterableDatasetSource)
    assert isinstance(learner.source.dataset, datasets.IterableDataset)
    assert results.num_seen == 200 and results.num_labelled == results.num_sent > 0
    assert all(r["swap_position"] == r["trigger_position"] for r in results.records)  # lag 0: at once
    # a stream that cannot be read again keeps the sent rows: the labelled set is built from them
    labelled = learner.labelled_dataset()
    assert len(labelled) == results.num_labelled
    by_pos = {i: r for i, r in enumerate(rows)}
    assert all(by_pos[int(s)]["text"] == t for s, t in zip(labelled["stream_id"], labelled["text"]))
    assert [ ["neg", "pos"][y] for y in labelled["label"]] == [by_pos[int(s)]["label"] for s in labelled["stream_id"]]


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("rate", [0, -0.1, 1.5, float("nan")])
def test_budget_rate_outside_0_1_is_a_named_error(rate):
    from energizer_hf.stream_learner import StreamConfig

    with pytest.raises(BudgetRateError, match=r"in \(0, 1\]"):
        StreamConfig(budget_rate=rate)


def test_stream_that_ends_before_the_first_retrain(tmp_path):
    with pytest.raises(StreamTooShortError, match="before the first retrain.*retrain_every=50"):
        make_learner(str(tmp_path / "run"), "replay", retrain_every=50, max_items=96).run()


def test_rows_without_the_text_column(tmp_path):
    rows = [{"text": "a b", "label": 0}] * 10 + [{"body": "no text here", "label": 0}]
    with pytest.raises(ColumnNotFoundError, match="position 10 has no text column 'text'"):
        make_learner(str(tmp_path / "run"), "replay", stream=rows,
                     stream_batch_size=4).run()


def test_a_generator_cannot_resume_and_the_error_says_what_to_use(tmp_path):
    rows = [{"text": f"item {i}", "label": i % 5} for i in range(64)]
    with pytest.raises(StreamTooShortError):  # leaves a stream position in the run directory
        make_learner(str(tmp_path / "run"), "replay", stream=list(rows), retrain_every=50).run()
    with pytest.raises(NotResumableError, match="generator.*list of rows.*IterableDataset.*ReplaySource"):
        make_learner(str(tmp_path / "run"), "replay", stream=(r for r in rows),
                     retrain_every=50).run()


def test_labels_for_items_never_sent(tmp_path):
    from energizer_hf.stream.oracles import ColumnOracle

    class Confused(ColumnOracle):
        def poll(self):
            return [*super().poll(), (987654, 1)]

    with pytest.raises(UnsentItemError, match=r"\[987654\].*never sent"):
        make_learner(str(tmp_path / "run"), "replay", oracle=Confused("label")).run()


def test_a_second_process_on_the_run_directory_is_refused(tmp_path):
    """One writer per run directory, as for pool runs: the holder is named."""
    from energizer_hf.errors import RunLockedError
    from energizer_hf.runlock import RunLock

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from energizer_hf.runlock import RunLock\n"
         "with RunLock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)", str(RunDir(run_dir).lock)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
            make_learner(str(run_dir), "replay").run()
        assert not RunDir(run_dir).stream_decisions.exists()  # nothing was written
    finally:
        holder.kill()
        holder.wait()
    with RunLock(RunDir(run_dir).lock):  # released by the dead holder: free again
        pass


def test_a_label_column_with_several_labels_per_item_is_refused(tmp_path):
    from energizer_hf.errors import StreamInputError

    data = datasets_multi_label()
    with pytest.raises(StreamInputError, match="several labels per item.*ActiveLearner"):
        make_learner(str(tmp_path / "run"), "replay", stream=data, test=data).run()


def datasets_multi_label():
    import datasets

    return datasets.Dataset.from_dict(
        {"text": [f"item {i}" for i in range(40)], "label": [["a", "b"][: 1 + i % 2] for i in range(40)]}
    )
