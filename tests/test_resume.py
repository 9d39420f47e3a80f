"""Kill a run at any point of a round, resume it, and get the uninterrupted result."""

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = [sys.executable, "-m", "tests._resume_script"]


def _run(run_dir, strategy="entropy", fault=None, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("ENERGIZER_HF_FAULT", None)
    if fault:
        env["ENERGIZER_HF_FAULT"] = fault
    return subprocess.run(SCRIPT + [str(run_dir), strategy], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _result(proc):
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    ids, rounds, queries = line[len("RESULT ") :].split("] [", 2)[0] + "]", None, None
    parts = ast.literal_eval("(" + line[len("RESULT ") :].replace("] [", "], [") + ")")
    del ids, rounds, queries
    return parts


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return _result(_run(tmp_path_factory.mktemp("full") / "run"))


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["after_label:1", "after_fit:2", "after_label:0"])
def test_crash_at_a_fault_point_then_resume(tmp_path, uninterrupted, fault):
    run_dir = tmp_path / "run"
    crashed = _run(run_dir, fault=fault)
    assert crashed.returncode == 77, crashed.stderr[-2000:]
    resumed = _result(_run(run_dir))
    assert resumed[0] == uninterrupted[0]  # same final labelled set
    assert resumed[1] == uninterrupted[1]  # labelled in the same rounds
    lines = (run_dir / "rounds.jsonl").read_text().splitlines()
    assert len(lines) == 5  # no round recorded twice


@pytest.mark.slow
def test_sigkill_mid_round_then_resume(tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(SCRIPT + [str(run_dir), "entropy"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rounds = run_dir / "rounds.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if rounds.exists() and rounds.read_text().count("\n") >= 2:
            break
        time.sleep(0.02)
    time.sleep(0.3)  # land somewhere inside the next round
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    resumed = _result(_run(run_dir))
    assert resumed[0] == uninterrupted[0]
    assert resumed[1] == uninterrupted[1]
    assert len(rounds.read_text().splitlines()) == 5
