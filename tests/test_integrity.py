"""The run-directory integrity check on real run directories, damaged one way at a time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from energizer_hf.errors import (
    CorruptLabelStateError,
    CorruptRecordsError,
    RunIntegrityError,
    RunStateMismatchError,
)
from energizer_hf.integrity import RunFiles, check_run_files, read_label_state
from energizer_hf.utils import append_jsonl, read_jsonl
from tests.conftest import learner_kwargs


def _files(run_dir: Path) -> RunFiles:
    # the current layout (loop.py, pool.py, hub.py, learner.py); RunDir will provide these
    return RunFiles(
        root=run_dir,
        records=run_dir / "rounds.jsonl",
        label_state=run_dir / "pool" / "label_state.npy",
        pool_meta=run_dir / "pool" / "pool.json",
        run_info=run_dir / "run.json",
        revisions=run_dir / "revisions",
        final_model=run_dir / "final_model",
        cache=run_dir / "cache",
    )


def _learner(run_dir, demo_data, demo_tokenizer, tiny_bert_config, **kw):
    from energizer_hf.learner import ActiveLearner

    kwargs = learner_kwargs(run_dir.parent, **kw)
    kwargs["run_dir"] = str(run_dir)
    return ActiveLearner(
        dataset=demo_data, model=tiny_bert_config, tokenizer=demo_tokenizer, **kwargs
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, demo_data, demo_tokenizer, tiny_bert_config):
    """A finished run: 3 records (rounds 0..2), revisions round-000..002, final_model/."""
    run_dir = tmp_path_factory.mktemp("pristine") / "run"
    _learner(run_dir, demo_data, demo_tokenizer, tiny_bert_config).run()
    return run_dir


@pytest.fixture(scope="module")
def killed(tmp_path_factory, demo_data, demo_tokenizer, tiny_bert_config):
    """A run stopped right after labelling round 1's query (round 2's labels on disk),
    before recording round 1: the loop's own fault point."""
    import energizer_hf.loop as loop_mod

    run_dir = tmp_path_factory.mktemp("killed") / "run"
    original = loop_mod._maybe_fault

    def fault(point, round):
        if (point, round) == ("after_label", 1):
            raise SystemExit("killed")

    loop_mod._maybe_fault = fault
    try:
        with pytest.raises(SystemExit):
            _learner(run_dir, demo_data, demo_tokenizer, tiny_bert_config).run()
    finally:
        loop_mod._maybe_fault = original
    return run_dir


@pytest.fixture
def copy_of(tmp_path):
    def make(source: Path) -> Path:
        target = tmp_path / "run"
        shutil.copytree(source, target)
        return target

    return make


def test_a_finished_run_is_ok(pristine, copy_of):
    run_dir = copy_of(pristine)
    report = check_run_files(_files(run_dir))
    assert report.ok and report.problems == [], str(report)
    assert (report.num_records, report.last_round, report.complete) == (3, 2, True)
    assert "ok: records, label state, revisions and final model agree" in str(report)
    report.raise_for_errors()


def test_torn_last_record_is_dropped_and_the_round_redone(
    pristine, copy_of, demo_data, demo_tokenizer, tiny_bert_config
):
    run_dir = copy_of(pristine)
    rounds = run_dir / "rounds.jsonl"
    lines = rounds.read_bytes().splitlines(keepends=True)
    rounds.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # torn write
    report = check_run_files(_files(run_dir))
    assert report.codes() == ["records_torn_tail", "orphan_revision"] and report.ok
    assert report.num_records == 2
    repaired = check_run_files(_files(run_dir), repair=True)
    assert [p.code for p in repaired.repaired] == ["records_torn_tail", "orphan_revision"]
    assert rounds.read_bytes() == b"".join(lines[:-1])
    assert not (run_dir / "revisions" / "round-002").exists()
    # the round is redone: the same result as the uninterrupted run, and a clean directory
    _learner(run_dir, demo_data, demo_tokenizer, tiny_bert_config).run()
    again, before = read_jsonl(rounds), read_jsonl(pristine / "rounds.jsonl")
    assert [r["queried_ids"] for r in again] == [r["queried_ids"] for r in before]
    assert check_run_files(_files(run_dir)).problems == []


def test_appending_after_a_torn_line_no_longer_garbles_the_file(pristine, copy_of):
    """Issue 14: re-runs exited 0, then a later one failed with JSONDecodeError."""
    run_dir = copy_of(pristine)
    rounds = run_dir / "rounds.jsonl"
    good = rounds.read_bytes()
    rounds.write_bytes(good + b'{"round": 3, "num_lab')
    append_jsonl(rounds, {"round": 3})
    assert rounds.read_bytes() == good + b'{"round": 3}\n'
    rounds.write_bytes(good + b'{"round": 3}')  # complete, only the newline lost
    append_jsonl(rounds, {"round": 4})
    assert [r["round"] for r in read_jsonl(rounds)] == [0, 1, 2, 3, 4]


def test_a_damaged_last_line_that_ends_in_a_newline_is_dropped_too(pristine, copy_of):
    """A torn record followed by a newline (e.g. a partial line a later append terminated)
    must be cut off, not left to become a damaged middle line at the next append."""
    run_dir = copy_of(pristine)
    rounds = run_dir / "rounds.jsonl"
    good = rounds.read_bytes()
    rounds.write_bytes(good + b'{"round": 3, "num_lab\n')
    report = check_run_files(_files(run_dir), repair=True)
    assert "records_torn_tail" in [p.code for p in report.repaired]
    assert rounds.read_bytes() == good
    append_jsonl(rounds, {"round": 3})
    assert [r["round"] for r in read_jsonl(rounds)] == [0, 1, 2, 3]


def test_missing_newline_of_the_last_record(pristine, copy_of):
    run_dir = copy_of(pristine)
    rounds = run_dir / "rounds.jsonl"
    rounds.write_bytes(rounds.read_bytes().rstrip(b"\n"))
    report = check_run_files(_files(run_dir), repair=True)
    assert [p.code for p in report.repaired] == ["records_unterminated"]
    assert rounds.read_bytes().endswith(b"}\n") and report.num_records == 3


def test_garbled_middle_line_is_a_named_error_with_its_line(pristine, copy_of):
    run_dir = copy_of(pristine)
    rounds = run_dir / "rounds.jsonl"
    lines = rounds.read_text().splitlines(keepends=True)
    lines[1] = lines[1][:40] + "\x00\x00garbage\n"
    rounds.write_text("".join(lines))
    report = check_run_files(_files(run_dir), repair=True)
    assert report.codes() == ["records_garbled"] and not report.repaired
    with pytest.raises(CorruptRecordsError) as info:
        report.raise_for_errors()
    assert "Line 2 of" in str(info.value) and "delete line 2" in str(info.value)
    with pytest.raises(CorruptRecordsError, match="Line 2"):
        read_jsonl(rounds)  # the loop's reader names it too (was a bare JSONDecodeError)


def test_a_round_recorded_twice_by_two_writers(pristine, copy_of):
    run_dir = copy_of(pristine)
    rounds = run_dir / "rounds.jsonl"
    lines = rounds.read_text().splitlines(keepends=True)
    rounds.write_text(lines[0] + lines[0] + "".join(lines[1:]))
    with pytest.raises(
        CorruptRecordsError, match="Round 0 is recorded twice .*lines 1 and 2.*two processes"
    ):
        check_run_files(_files(run_dir)).raise_for_errors()


def test_label_state_deleted_while_records_kept(pristine, copy_of):
    """Issue 14: the re-run went on with records and an empty label state."""
    run_dir = copy_of(pristine)
    (run_dir / "pool" / "label_state.npy").unlink()
    report = check_run_files(_files(run_dir), repair=True)
    assert report.codes() == ["label_state_missing"]
    with pytest.raises(RunStateMismatchError) as info:
        report.raise_for_errors()
    text = str(info.value)
    assert (
        "records 3 round(s)" in text and f"resume_from: {run_dir / 'revisions'}/round-002" in text
    )


@pytest.mark.parametrize(
    "damage, words",
    [
        ("truncate", "is truncated"),
        ("garbage", "not a readable .npy file"),
        ("pickle", "not energizer_hf's label state"),
        ("other dtype", "not energizer_hf's label state"),
        ("longer", "longer than its header says"),
        ("empty", "not a readable .npy file"),
    ],
)
def test_truncated_or_overwritten_label_state(pristine, copy_of, damage, words):
    run_dir = copy_of(pristine)
    path = run_dir / "pool" / "label_state.npy"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) - 100])
    elif damage == "garbage":
        path.write_bytes(b"\x89PNG not a state at all" * 10)
    elif damage == "pickle":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif damage == "other dtype":
        np.save(path, np.zeros(300, dtype=np.int64))
    elif damage == "longer":
        path.write_bytes(data + b"\x00" * 16)
    else:
        path.write_bytes(b"")
    report = check_run_files(_files(run_dir))
    assert report.codes() == ["label_state_corrupt"]
    with pytest.raises(CorruptLabelStateError) as info:
        report.raise_for_errors()
    assert words in str(info.value) and "resume_from" in str(info.value)
    with pytest.raises(CorruptLabelStateError):
        read_label_state(path)


def test_what_the_pool_said_before(pristine, copy_of):
    """Without the check, a truncated state fails deep in numpy."""
    run_dir = copy_of(pristine)
    path = run_dir / "pool" / "label_state.npy"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="mmap length is greater than file size"):
        np.load(path, mmap_mode="r")


def test_lost_pool_description_is_rebuilt_from_run_json(pristine, copy_of):
    run_dir = copy_of(pristine)
    meta = run_dir / "pool" / "pool.json"
    before = json.loads(meta.read_text())
    meta.unlink()
    report = check_run_files(_files(run_dir), repair=True)
    assert [p.code for p in report.repaired] == ["pool_meta_missing"] and report.ok
    assert json.loads(meta.read_text()) == before
    meta.unlink()
    (run_dir / "run.json").unlink()
    report = check_run_files(_files(run_dir), repair=True)
    assert report.codes() == ["pool_meta_missing"] and not report.ok


def test_records_and_label_state_disagree(pristine, copy_of):
    run_dir = copy_of(pristine)
    path = run_dir / "pool" / "label_state.npy"
    state = np.array(np.load(path))
    first = np.flatnonzero(state["round"] == 0)[:3]
    state["round"][first] = -1  # as if restored from an older copy
    np.save(path, state)
    report = check_run_files(_files(run_dir), repair=True)
    assert report.codes()[0] == "records_state_mismatch"
    with pytest.raises(
        RunStateMismatchError,
        match="Round 0's record says num_labelled=10, but the label state has 7",
    ):
        report.raise_for_errors()


def test_queried_ids_not_labelled_in_the_next_round(pristine, copy_of):
    run_dir = copy_of(pristine)
    path = run_dir / "pool" / "label_state.npy"
    state = np.array(np.load(path))
    queried = read_jsonl(run_dir / "rounds.jsonl")[0]["queried_ids"]
    other = np.flatnonzero(state["round"] == -1)[:2]
    state["round"][queried[:2]] = -1
    state["round"][other] = 1  # same counts, other ids
    np.save(path, state)
    with pytest.raises(
        RunStateMismatchError, match="Round 0's record and the label state disagree: 8 of its 10"
    ):
        check_run_files(_files(run_dir)).raise_for_errors()


def test_killed_after_labelling_before_recording(
    killed, copy_of, demo_data, demo_tokenizer, tiny_bert_config, pristine
):
    run_dir = copy_of(killed)
    report = check_run_files(_files(run_dir))
    assert report.codes() == ["unrecorded_labels"] and report.ok
    assert report.num_records == 1 and not report.complete
    assert "of round(s) [2] have no record" in str(report)
    repaired = check_run_files(_files(run_dir), repair=True)
    assert [p.code for p in repaired.repaired] == ["unrecorded_labels"]
    state = read_label_state(run_dir / "pool" / "label_state.npy")
    assert state["round"].max() == 1
    _learner(run_dir, demo_data, demo_tokenizer, tiny_bert_config).run()
    assert [r["queried_ids"] for r in read_jsonl(run_dir / "rounds.jsonl")] == [
        r["queried_ids"] for r in read_jsonl(pristine / "rounds.jsonl")
    ]


def test_stale_temporary_files_are_removed(pristine, copy_of):
    run_dir = copy_of(pristine)
    stale = [
        run_dir / "pool" / ".label_state.npy.k2j3h4.tmp",
        run_dir / ".run.json.abcd.tmp",
        run_dir / "revisions" / ".round-003.x81k2",
        run_dir / "cache" / "tmp5x_9qzzz",
        run_dir / ".final_model.j2k3l4",
        run_dir / ".final_model.old",
        run_dir / "ann" / "index-flat.faiss.tmp4242",
    ]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name.startswith((".round-", ".final_model")):
            path.mkdir()
            (path / "model.safetensors").write_bytes(b"x" * 100)
        else:
            path.write_bytes(b"partial")
    keep = [run_dir / "cache" / "notes.txt", run_dir / "pool" / "pool.json"]
    keep[0].write_text("mine")
    report = check_run_files(_files(run_dir))
    assert report.codes() == ["stale_temporary"] and "7 temporary file(s)" in str(report)
    repaired = check_run_files(_files(run_dir), repair=True)
    assert [p.code for p in repaired.repaired] == ["stale_temporary"] and repaired.problems == []
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in keep)


def test_missing_revision_and_final_model_are_reported_for_the_next_run(pristine, copy_of):
    run_dir = copy_of(pristine)
    shutil.rmtree(run_dir / "revisions" / "round-002")
    shutil.rmtree(run_dir / "final_model")
    report = check_run_files(_files(run_dir), repair=True)
    assert sorted(report.codes()) == ["missing_final_model", "missing_revision"] and report.ok
    assert "[2]" in str(report) and "Run the same command again" in str(report)


def test_a_revision_that_is_not_this_runs(pristine, copy_of):
    run_dir = copy_of(pristine)
    path = run_dir / "pool" / "label_state.npy"
    state = np.array(np.load(path))
    # one label of round 1 moved to round 2, one unlabelled row labelled in round 1: the
    # counts per round stay, the ids do not
    state["round"][np.flatnonzero(state["round"] == 1)[0]] = 2
    state["round"][np.flatnonzero(state["round"] == -1)[0]] = 1
    np.save(path, state)
    report = check_run_files(_files(run_dir))
    assert {"records_state_mismatch", "revision_mismatch"} <= set(report.codes())
    mismatch = [p for p in report.problems if p.code == "revision_mismatch"]
    assert "round-001" in mismatch[0].message and "other pool ids" in mismatch[0].message


def test_no_records_yet_is_fine(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    report = check_run_files(_files(run_dir))
    assert report.ok and report.problems == [] and report.num_records == 0


def test_every_error_is_a_run_integrity_error(pristine, copy_of):
    run_dir = copy_of(pristine)
    (run_dir / "pool" / "label_state.npy").write_bytes(b"x")
    with pytest.raises(RunIntegrityError) as info:
        check_run_files(_files(run_dir)).raise_for_errors()
    assert info.value.problems and info.value.problems[0].code == "label_state_corrupt"
