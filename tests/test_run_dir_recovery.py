"""Run directories under attack (issue 14): SIGKILL at seeded instants over a whole run
(last revision and final model included), kills at exact points, two processes on one
directory, a read-only directory, a full disk. Every interrupted run, re-run, ends with
the uninterrupted run's labelled set, every revision and the final model, and no
temporary file."""

from __future__ import annotations

import ast
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._readonly import read_only

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = [sys.executable, "-m", "tests._resume_script"]
ROUNDS = 5  # records of the script's run (max_rounds=4)


def _env(fault: str | None = None) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    env.pop("ENERGIZER_HF_FAULT", None)
    if fault:
        env["ENERGIZER_HF_FAULT"] = fault
    return env


def _run(run_dir: Path, *, fault: str | None = None, cli: bool = True, timeout: float = 300):
    return subprocess.run(
        SCRIPT + [str(run_dir), "entropy"] + (["cli"] if cli else []),
        cwd=ROOT, env=_env(fault), capture_output=True, text=True, timeout=timeout,
    )


def _result(proc) -> tuple:
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return ast.literal_eval("(" + line[len("RESULT "):].replace("] [", "], [") + ")")


def _temporaries(run_dir: Path) -> list[Path]:
    out = []
    for p in run_dir.rglob("*"):
        name = p.name
        if (
            ".tmp" in name
            or name.startswith((".final_model.", ".round-"))
            or (p.parent.name == "cache" and name.startswith("tmp"))
        ):
            out.append(p)
    return out


def _assert_whole(run_dir: Path, uninterrupted: tuple, resumed: tuple) -> None:
    from energizer_hf.integrity import RunFiles, check_run_files

    assert resumed[0] == uninterrupted[0]  # the same final labelled set
    assert resumed[1] == uninterrupted[1]  # labelled in the same rounds
    assert resumed[2] == uninterrupted[2]  # the same queries
    assert len((run_dir / "rounds.jsonl").read_text().splitlines()) == ROUNDS
    revisions = sorted(p.name for p in (run_dir / "revisions").iterdir() if p.is_dir())
    assert revisions == [f"round-{r:03d}" for r in range(ROUNDS)], revisions
    assert all((run_dir / "revisions" / r / "README.md").is_file() for r in revisions)
    assert (run_dir / "final_model" / "config.json").is_file()
    assert not _temporaries(run_dir), _temporaries(run_dir)
    report = check_run_files(RunFiles.of(run_dir))
    assert report.ok and report.complete and not report.problems, str(report)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("full") / "run"
    t = time.perf_counter()
    result = _result(_run(run_dir))
    return result, time.perf_counter() - t


def _kill_at(run_dir: Path, delay: float) -> int | None:
    """Start the run and SIGKILL it after ``delay`` seconds; its status if it ended first."""
    proc = subprocess.Popen(
        SCRIPT + [str(run_dir), "entropy", "cli"], cwd=ROOT, env=_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        proc.wait(timeout=delay)
        return proc.returncode
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        return None


def _kill_sweep(tmp_path: Path, uninterrupted, seeds: range, kills_per_run: int) -> tuple[int, int]:
    """Seeded SIGKILL instants over the whole run (start-up to the final model); returns
    (kills survived, kills)."""
    result, duration = uninterrupted
    kills = survived = 0
    for seed in seeds:
        rng = random.Random(seed)
        run_dir = tmp_path / f"run-{seed}"
        for _ in range(kills_per_run):
            # from just after start-up (imports) to past the end, so the last record, the
            # last revision and the final model are reached by some instants
            status = _kill_at(run_dir, rng.uniform(0.25, 1.1) * duration)
            if status is None:
                kills += 1
        resumed = _result(_run(run_dir))
        _assert_whole(run_dir, result, resumed)
        survived = kills
    return survived, kills


def test_seeded_kills_then_resume(tmp_path, uninterrupted):
    survived, kills = _kill_sweep(tmp_path, uninterrupted, range(2), kills_per_run=2)
    print(f"kills survived: {survived}/{kills}")


@pytest.mark.slow
def test_seeded_kills_sweep(tmp_path, uninterrupted):
    survived, kills = _kill_sweep(tmp_path, uninterrupted, range(100, 112), kills_per_run=2)
    assert kills >= 12
    print(f"kills survived: {survived}/{kills}")


@pytest.mark.parametrize(
    "fault",
    [
        "after_record:4",  # the last record written, its revision and the final model not
        "before_final_model:4",  # every revision written, the final model not
        "after_record:0",  # run.json still provisional-then-confirmed, revision 0 missing
    ],
)
def test_kill_at_an_exact_point_then_resume(tmp_path, uninterrupted, fault):
    run_dir = tmp_path / "run"
    crashed = _run(run_dir, fault=fault)
    assert crashed.returncode == 77, crashed.stderr[-2000:]
    again = _run(run_dir)
    _assert_whole(run_dir, uninterrupted[0], _result(again))
    if fault.startswith(("after_record:4", "before_final_model")):
        assert "final model is missing" in again.stderr


def test_two_processes_on_one_run_dir(tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    procs = [
        subprocess.Popen(SCRIPT + [str(run_dir), "entropy", "cli"], cwd=ROOT, env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 4], [o[1][-2000:] for o in outs]
    loser = next(i for i, p in enumerate(procs) if p.returncode == 4)
    winner = 1 - loser
    line = outs[loser][1].strip().splitlines()[-1]
    assert line.startswith("energizer-hf: error: RunLockedError: ")
    assert f"pid {procs[winner].pid}" in line and "energizer-hf unlock" in line
    _assert_whole(run_dir, uninterrupted[0], _result(subprocess.CompletedProcess(
        procs[winner].args, 0, outs[winner][0], outs[winner][1])))


def test_a_failed_first_fit_does_not_lock_the_configuration(tmp_path, world_yaml):
    """run.json stays provisional until the first round is recorded: after a crash at the
    first fit, a corrected experiment setting starts the run afresh."""
    import json

    config, run_dir = world_yaml(tmp_path)
    env = _env("after_fit:0")
    proc = subprocess.run([sys.executable, "-m", "energizer_hf", "run", str(config)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 77, proc.stderr[-2000:]
    assert json.loads((run_dir / "run.json").read_text())["provisional"] is True
    from energizer_hf.cli import main

    assert main(["run", str(config), "--learning-rate", "3e-3", "--max-rounds", "0"]) == 0
    saved = json.loads((run_dir / "run.json").read_text())
    assert "provisional" not in saved and saved["config"]["run"]["learning_rate"] == 3e-3


def test_execution_settings_may_change_on_resume(tmp_path, world_yaml, capsys):
    from energizer_hf.cli import main

    config, run_dir = world_yaml(tmp_path)
    assert main(["run", str(config), "--max-rounds", "0"]) == 0
    capsys.readouterr()
    # batch sizes, precision, progress may change; more rounds extend the run
    assert main(["run", str(config), "--max-rounds", "1", "--eval-batch-size", "7", "--batch-size", "8",
                 "--precision", "32", "--progress", "false", "--save-final-model"]) == 0
    err = capsys.readouterr().err
    assert "resuming at round 0 of 1" in err or "resuming at round 1 of 1" in err, err
    assert main(["run", str(config), "--max-rounds", "1"]) == 0
    assert "already complete" in capsys.readouterr().err
    # --overwrite starts anew
    assert main(["run", str(config), "--max-rounds", "0", "--overwrite"]) == 0
    assert len((run_dir / "rounds.jsonl").read_text().splitlines()) == 1
    import yaml

    assert yaml.safe_load((run_dir / "config.yaml").read_text())["overwrite"] is False  # annotate keeps it


def test_without_final_model(tmp_path, world_yaml, capsys):
    from energizer_hf.cli import main
    from energizer_hf.integrity import RunFiles, check_run_files

    config, run_dir = world_yaml(tmp_path)
    assert main(["run", str(config), "--max-rounds", "0", "--save-final-model", "false"]) == 0
    assert not (run_dir / "final_model").exists()
    report = check_run_files(RunFiles.of(run_dir))
    assert report.ok and not report.problems, str(report)
    capsys.readouterr()
    assert main(["check", str(run_dir)]) == 0
    code = main(["push", str(run_dir), "user/data", "--model-repo-id", "user/model"])
    err = capsys.readouterr().err
    assert code == 2 and "save_final_model: false" in err and "push without --model-repo-id" in err


def test_read_only_run_directory(tmp_path, world_yaml, capsys):
    from energizer_hf.cli import main

    config, run_dir = world_yaml(tmp_path)
    assert main(["run", str(config), "--max-rounds", "0"]) == 0
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    capsys.readouterr()
    with read_only(run_dir):
        assert main(["run", str(config), "--max-rounds", "0"]) == 0  # shown, nothing written
        assert "already complete" in capsys.readouterr().err
        assert main(["check", str(run_dir)]) == 0
        code = main(["run", str(config), "--max-rounds", "1"])  # cannot go on
        err = capsys.readouterr().err
        assert code == 4 and "RunDirError" in err and "read-only" in err
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before


def test_full_disk_then_resume(tmp_path, uninterrupted):
    """A real ENOSPC from a small tmpfs mid-run: one line, status 4; freed, the same
    command completes the run."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip() or proc.stdout.strip()}")
    try:
        filler = mount / "filler"
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        filler.write_bytes(b"\0" * (free - 120 * 1024))  # room for part of the run only
        run_dir = mount / "run"
        full = _run(run_dir)
        assert full.returncode == 4, full.stderr[-2000:]
        line = full.stderr.strip().splitlines()[-1]
        assert line.startswith("energizer-hf: error: ") and "no space left" in line, line
        filler.unlink()
        _assert_whole(run_dir, uninterrupted[0], _result(_run(run_dir)))
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


@pytest.fixture
def world_yaml(demo_data, demo_tokenizer, tiny_bert_config):
    """A YAML configuration of a small CLI run on CSV files and a local model."""
    import yaml
    from transformers import AutoModel

    def make(tmp: Path) -> tuple[Path, Path]:
        demo_data["train"].to_pandas().to_csv(tmp / "train.csv", index=False)
        demo_data["test"].to_pandas().to_csv(tmp / "test.csv", index=False)
        AutoModel.from_config(tiny_bert_config).save_pretrained(tmp / "model")
        demo_tokenizer.save_pretrained(tmp / "model")
        run_dir = tmp / "run"
        config = {
            "data_files": {"train": str(tmp / "train.csv"), "test": str(tmp / "test.csv")},
            "model": str(tmp / "model"), "query_size": 10, "initial_size": 10, "max_rounds": 1,
            "max_epochs": 1, "min_steps": 0, "max_length": 32, "progress": False, "run_dir": str(run_dir),
        }
        path = tmp / "c.yaml"
        path.write_text(yaml.safe_dump(config))
        return path, run_dir

    return make


def test_ctrl_c_during_a_fit_says_where_and_exits_130(tmp_path, world_yaml):
    """Lightning turns Ctrl-C into exit(1) with no word; the CLI says where it stopped."""
    config, run_dir = world_yaml(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "energizer_hf", "run", str(config), "--max-epochs", "400"],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # not an inherited SIG_IGN
    )
    deadline = time.time() + 240
    state = run_dir / "pool" / "label_state.npy"
    while time.time() < deadline and proc.poll() is None and not state.exists():
        time.sleep(0.05)
    time.sleep(2.0)  # inside round 0's fit (400 epochs)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(  # the round that was running when Ctrl-C came (0 or 1 on a fast box)
        r"energizer-hf: error: Interrupted: stopped at round \d+; re-run the same command to resume\.", last
    ), err[-3000:]
    assert "Traceback" not in err


def test_commands_on_a_locked_or_damaged_directory(tmp_path, world_yaml, capsys):
    """`push` and `repair` wait for no one: refused while another process holds the lock
    (exit 4, the holder named); `check` exits 4 on a damaged directory and `repair` fixes it;
    `unlock` breaks a lock left by a dead process, from the command line."""
    from energizer_hf.cli import main
    from energizer_hf.run import RunDir

    config, run_dir = world_yaml(tmp_path)
    assert main(["run", str(config), "--max-rounds", "1"]) == 0
    files = RunDir(run_dir)
    stop = tmp_path / "stop"
    holder = subprocess.Popen([sys.executable, "-m", "tests.scripts.hold_lock", str(files.lock), "--stop", str(stop)],
                              cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().startswith("PROCEED"), holder.stderr.read()[-2000:]
        capsys.readouterr()
        for argv in (["push", str(run_dir), "me/data"], ["repair", str(run_dir)]):
            assert main(argv) == 4, argv
            line = capsys.readouterr().err.strip().splitlines()[-1]
            assert line.startswith("energizer-hf: error: RunLockedError: ") and f"pid {holder.pid}" in line, line
    finally:
        stop.touch()
        holder.wait(timeout=60)
    # a torn last record: check lists it (a safe repair: exit 0), repair makes it, check is clean
    rounds = files.rounds
    good = rounds.read_bytes()
    rounds.write_bytes(good + b'{"round": 9, "num_lab')
    capsys.readouterr()
    assert main(["check", str(run_dir)]) == 0
    assert "records_torn_tail" in capsys.readouterr().out
    assert main(["repair", str(run_dir)]) == 0
    assert rounds.read_bytes() == good
    assert main(["check", str(run_dir)]) == 0
    # a lost label state with its records kept: an error (exit 4) that repair cannot guess
    state = files.label_state.read_bytes()
    files.label_state.unlink()
    assert main(["check", str(run_dir)]) == 4
    assert main(["repair", str(run_dir)]) == 4
    files.label_state.write_bytes(state)
    # a lock left by a process that is gone: unlock says whose it was
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    files.lock.write_text("")
    import json as _json

    from energizer_hf.runlock import holder_path

    holder_path(files.lock).write_text(_json.dumps({"pid": int(dead.stdout), "host": "elsewhere", "started": "x"}))
    capsys.readouterr()
    assert main(["unlock", str(run_dir), "--force"]) == 0
    assert f"held by pid {int(dead.stdout)} on elsewhere" in capsys.readouterr().out
