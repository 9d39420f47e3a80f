"""One writer per run directory: real processes racing for the lock, killed holders,
other hosts, ranks of a job, read-only directories."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from energizer_hf.errors import RunDirError, RunLockedError
from energizer_hf.runlock import RunLock, break_lock, holder_path, launcher_ranks, read_holder
from tests._readonly import read_only

ROOT = Path(__file__).resolve().parents[1]
HOLD = [sys.executable, "-m", "tests.scripts.hold_lock"]
_RANK_VARS = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "NODE_RANK",
    "GROUP_RANK",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_LOCALID",
    "LOCAL_WORLD_SIZE",
)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in _RANK_VARS}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **extra)
    return env


def _spawn(lock, *args, env=None, **kw):
    return subprocess.Popen(
        HOLD + [str(lock), *map(str, args)],
        cwd=ROOT,
        env=env or _env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _wait_line(proc, timeout=120):
    """First line a child prints (PROCEED/REFUSED), without waiting for it to exit."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line:
            return line.strip()
        if proc.poll() is not None:
            break
    raise AssertionError(f"no output; stderr: {proc.stderr.read()[-3000:]}")


@pytest.fixture(autouse=True)
def _plain_process(monkeypatch):
    for key in _RANK_VARS:
        monkeypatch.delenv(key, raising=False)


def test_two_real_processes_exactly_one_proceeds(tmp_path):
    lock = tmp_path / "run" / ".lock"
    go, stop = tmp_path / "go", tmp_path / "stop"
    procs = [_spawn(lock, "--go", go, "--stop", stop) for _ in range(2)]
    time.sleep(0.2)
    go.touch()  # both try at once
    first = [_wait_line(p) for p in procs]
    stop.touch()
    codes = [p.wait(timeout=60) for p in procs]
    assert sorted(line.split()[0] for line in first) == ["PROCEED", "REFUSED"], first
    assert sorted(codes) == [0, 4]
    winner = procs[next(i for i, line in enumerate(first) if line.startswith("PROCEED"))]
    refused = next(line for line in first if line.startswith("REFUSED"))
    # the refusal names the holder and how to break a stale lock
    assert f"pid {winner.pid} on host {socket.gethostname()!r}" in refused, refused
    assert "is in use by" in refused and "energizer-hf unlock" in refused and "since" in refused
    assert read_holder(lock) is None  # released cleanly


def test_a_waiting_process_proceeds_once_the_holder_releases(tmp_path):
    lock, stop = tmp_path / ".lock", tmp_path / "stop"
    holder = _spawn(lock, "--stop", stop)
    assert _wait_line(holder).startswith("PROCEED")
    waiter = _spawn(lock, "--timeout", 60)
    time.sleep(1.0)
    assert waiter.poll() is None  # still waiting
    stop.touch()
    assert _wait_line(waiter).startswith("PROCEED")
    assert holder.wait(timeout=60) == 0 and waiter.wait(timeout=60) == 0


def test_a_sigkilled_holder_leaves_a_stale_lock_that_is_taken_over(tmp_path, caplog):
    lock = tmp_path / ".lock"
    holder = _spawn(lock, "--stop", tmp_path / "never")
    assert _wait_line(holder).startswith("PROCEED")
    assert read_holder(lock)["pid"] == holder.pid
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    left = read_holder(lock)
    assert left is not None and left["pid"] == holder.pid  # the description stays behind
    with caplog.at_level(logging.WARNING, logger="energizer_hf.runlock"), RunLock(lock) as mine:
        assert mine.held and read_holder(lock)["pid"] == os.getpid()
    assert f"pid {holder.pid}" in caplog.text and "taking the lock over" in caplog.text


def test_a_description_from_another_host_is_refused_until_broken(tmp_path):
    lock = tmp_path / ".lock"
    lock.touch()
    other = {
        "pid": 4242,
        "host": "gpu-node-7",
        "user": "ana",
        "started": "2024-01-01 10:00:00 UTC",
        "command": "energizer-hf run cfg.yaml",
        "world_size": 1,
    }
    holder_path(lock).write_text(json.dumps(other))
    with pytest.raises(RunLockedError) as info:
        RunLock(lock).acquire()
    text = str(info.value)
    assert "'gpu-node-7'" in text and "pid 4242" in text and "energizer-hf run cfg.yaml" in text
    assert f"energizer-hf unlock {tmp_path}" in text
    assert info.value.holder["host"] == "gpu-node-7"
    assert break_lock(lock)["host"] == "gpu-node-7"
    with RunLock(lock) as mine:
        assert mine.held


def test_a_live_holder_is_refused_even_where_file_locks_are_not_enforced(tmp_path):
    """The OS lock is free (a file system that does not enforce it), but the described
    process is alive on this host: refused; a reused pid (another start time) is stale."""
    import psutil

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = tmp_path / ".lock"
        desc = {
            "pid": sleeper.pid,
            "host": socket.gethostname(),
            "process_start": psutil.Process(sleeper.pid).create_time(),
            "user": "x",
        }
        from energizer_hf.runlock import _boot_id

        desc["boot_id"] = _boot_id()
        holder_path(lock).write_text(json.dumps(desc))
        with pytest.raises(RunLockedError, match="does not enforce the lock"):
            RunLock(lock).acquire()
        with pytest.raises(RunLockedError, match="stop it first"):
            break_lock(lock)
        holder_path(lock).write_text(
            json.dumps(dict(desc, process_start=desc["process_start"] - 999))
        )
        with RunLock(lock) as mine:  # same pid, other start time: the pid was reused
            assert mine.held
        holder_path(lock).write_text(json.dumps(desc))
        assert break_lock(lock, force=True)["pid"] == sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()


def test_break_lock_refuses_a_lock_held_by_a_live_process(tmp_path):
    lock, stop = tmp_path / ".lock", tmp_path / "stop"
    holder = _spawn(lock, "--stop", stop)
    assert _wait_line(holder).startswith("PROCEED")
    try:
        with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
            break_lock(lock)
        assert read_holder(lock)["pid"] == holder.pid
    finally:
        stop.touch()
        holder.wait(timeout=60)
    assert break_lock(lock) is None  # nothing left to break


def test_reentrant_within_a_process(tmp_path):
    lock = tmp_path / ".lock"
    with RunLock(lock) as outer:
        with RunLock(lock) as inner:  # e.g. collect() calling run()
            assert inner.held is False and outer.held
        assert outer.held and read_holder(lock)["pid"] == os.getpid()
        proc = _spawn(lock)
        assert _wait_line(proc).startswith("REFUSED")  # still held after the inner release
        proc.wait(timeout=60)
    assert read_holder(lock) is None
    assert not outer.held


def test_a_forked_child_does_not_release_the_parents_lock(tmp_path):
    lock = tmp_path / ".lock"
    with RunLock(lock) as held:
        # a forked child (a DataLoader worker, say) that releases and exits
        ctx = multiprocessing.get_context("fork")
        child = ctx.Process(target=lambda: (held.release(), os._exit(0)))
        child.start()
        child.join(30)
        proc = _spawn(lock)
        assert _wait_line(proc).startswith("REFUSED")
        proc.wait(timeout=60)


def test_other_ranks_of_a_job_do_not_take_it(tmp_path):
    lock, stop = tmp_path / ".lock", tmp_path / "stop"
    job = dict(WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT="29512")
    rank0 = _spawn(lock, "--stop", stop, env=_env(RANK="0", LOCAL_RANK="0", **job))
    assert _wait_line(rank0) == "PROCEED 0 True False"
    rank1 = _spawn(lock, "--stop", stop, env=_env(RANK="1", LOCAL_RANK="1", **job))
    assert _wait_line(rank1) == "PROCEED 1 False False"  # does not block, takes nothing
    outsider = _spawn(lock)
    refused = _wait_line(outsider)
    assert refused.startswith("REFUSED") and "rank 0 of a 2-process job" in refused
    stop.touch()
    assert [p.wait(timeout=60) for p in (rank0, rank1, outsider)] == [0, 0, 4]


@pytest.mark.distributed
def test_torchrun_job_takes_the_lock_once(tmp_path):
    lock, stop = tmp_path / ".lock", tmp_path / "stop"
    env = _env()
    job = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node=2",
            "--master-port=29533",
            "-m",
            "tests.scripts.hold_lock",
            str(lock),
            "--stop",
            str(stop),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = [_wait_line(job, timeout=180), _wait_line(job, timeout=180)]
    assert sorted(lines) == ["PROCEED 0 True False", "PROCEED 1 False False"], lines
    desc = read_holder(lock)
    assert desc["world_size"] == 2 and desc["rank"] == 0 and desc["job_id"]
    outsider = _spawn(lock)
    assert _wait_line(outsider).startswith("REFUSED")
    stop.touch()
    assert job.wait(timeout=120) == 0, job.stderr.read()[-3000:]
    assert outsider.wait(timeout=60) == 4


def test_launcher_ranks():
    assert launcher_ranks({})["rank"] == 0
    assert launcher_ranks({"LOCAL_RANK": "1"})["rank"] == 1  # Lightning's own launcher
    assert launcher_ranks({"SLURM_PROCID": "3", "SLURM_NTASKS": "4"})["world_size"] == 4
    assert (
        launcher_ranks(
            {"LOCAL_RANK": "0", "NODE_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"}
        )["rank"]
        == 2
    )
    assert launcher_ranks({"TORCHELASTIC_RUN_ID": "abc"})["job_id"] == "abc"


def test_holder_description_is_scrubbed_and_complete(tmp_path, monkeypatch):
    lock = tmp_path / ".lock"
    monkeypatch.setattr(
        sys, "argv", ["energizer-hf", "run", "--hub-repo-id", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345"]
    )
    with RunLock(lock):
        desc = read_holder(lock)
    assert "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345" not in json.dumps(desc)
    for key in ("pid", "host", "user", "started", "command", "rank", "world_size", "token"):
        assert key in desc
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_run_dir_that_is_a_file(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.write_text("not a directory")
    with pytest.raises(RunDirError, match="is a file"):
        RunLock(run_dir / ".lock").acquire()


@pytest.fixture
def read_only_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "rounds.jsonl").write_text("")
    with read_only(run_dir):
        yield run_dir


def test_read_only_run_directory(read_only_run_dir):
    lock = read_only_run_dir / ".lock"
    with pytest.raises(RunDirError) as info:
        RunLock(lock).acquire()
    assert "cannot be written" in str(info.value) and "chmod" in str(info.value)
    with RunLock(lock, allow_read_only=True) as reader:  # e.g. showing a finished run
        assert reader.read_only and not reader.held
    assert not lock.exists() and not holder_path(lock).exists()
    with pytest.raises(RunDirError):
        break_lock(lock)
