"""The CLI's failure framing: one scrubbed line and a documented exit status per class."""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from energizer_hf.cli_errors import (
    EXIT_STATUSES,
    CliFailure,
    error_line,
    exit_status,
    run_command,
)
from energizer_hf.errors import (
    BudgetError,
    ClassNotInPoolError,
    ColumnNotFoundError,
    ConfigError,
    ConfigFileError,
    ConfigMismatchError,
    CorruptRecordsError,
    DataEncodingError,
    EnergizerError,
    InvalidIdsError,
    MissingTokenizerError,
    PathNotFoundError,
    RunDirError,
    RunLockedError,
    UnknownStrategyError,
)

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345"


def _hub_errors():
    from huggingface_hub.errors import HfHubHTTPError

    from energizer_hf.revisions import HubSyncError, InvalidRepoIdError, RoundNotFoundError

    return HfHubHTTPError, HubSyncError, InvalidRepoIdError, RoundNotFoundError


def _ls_errors():
    from energizer_hf.oracles.label_studio import LabelStudioAuthError, LabelStudioConnectionError

    return LabelStudioAuthError, LabelStudioConnectionError


def _cases():
    HfHubHTTPError, HubSyncError, InvalidRepoIdError, RoundNotFoundError = _hub_errors()
    LabelStudioAuthError, LabelStudioConnectionError = _ls_errors()
    import httpx
    import requests
    import torch

    return [
        # (exception, status, fragments of the line)
        (ConfigError("rounds: got 'x'"), 2, ["ConfigError: rounds: got 'x'"]),
        (ConfigFileError("The configuration file 'c.yaml' does not exist"), 2, ["ConfigFileError"]),
        (BudgetError("query_size must be positive"), 2, ["BudgetError"]),
        (
            UnknownStrategyError("Unknown strategy 'entorpy'"),
            2,
            ["UnknownStrategyError: Unknown strategy"],
        ),
        (PathNotFoundError("The model directory './m' does not exist"), 2, ["PathNotFoundError"]),
        (InvalidRepoIdError("bad id"), 2, ["InvalidRepoIdError"]),
        (RoundNotFoundError("No revision 'round-009'"), 2, ["RoundNotFoundError"]),
        (EnergizerError("something else"), 2, ["EnergizerError: something else"]),
        (
            FileNotFoundError(2, "No such file or directory", "cfg.yaml"),
            2,
            ["('cfg.yaml')", "check the path"],
        ),
        (
            ColumnNotFoundError("The pool split has no column 'txt'"),
            3,
            ["ColumnNotFoundError: The pool"],
        ),
        (ClassNotInPoolError("The test split has 1 class"), 3, ["ClassNotInPoolError"]),
        (DataEncodingError("'a.csv' is not valid utf-8"), 3, ["DataEncodingError"]),
        (MissingTokenizerError("no tokenizer files"), 3, ["MissingTokenizerError"]),
        (RunLockedError("in use by pid 1"), 4, ["RunLockedError: in use by pid 1"]),
        (RunDirError("run_dir 'x' is a file"), 4, ["RunDirError"]),
        (CorruptRecordsError("line 3 of rounds.jsonl"), 4, ["CorruptRecordsError"]),
        (ConfigMismatchError("another configuration"), 4, ["ConfigMismatchError"]),
        (
            OSError(errno.ENOSPC, "No space left on device", "runs/x/pool/label_state.npy"),
            4,
            ["no space left", "re-run the same command to resume"],
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "runs/x"),
            4,
            ["Permission denied ('runs/x')"],
        ),
        (OSError(errno.EROFS, "Read-only file system", "/ro/run"), 4, ["Read-only file system"]),
        (HubSyncError("Could not push round 2"), 5, ["HubSyncError: Could not push round 2"]),
        (LabelStudioAuthError("refused the API token"), 5, ["LabelStudioAuthError"]),
        (
            LabelStudioConnectionError("Could not reach Label Studio"),
            5,
            ["LabelStudioConnectionError"],
        ),
        (
            HfHubHTTPError(
                "500 Server Error",
                response=httpx.Response(500, request=httpx.Request("GET", "https://hub.local/api")),
            ),
            5,
            ["HfHubHTTPError: 500 Server Error", "check the connection"],
        ),
        (requests.ConnectionError("Max retries exceeded"), 5, ["ConnectionError"]),
        (ConnectionResetError(104, "Connection reset by peer"), 5, ["ConnectionResetError"]),
        (MemoryError(), 6, ["MemoryError", "batch_size"]),
        (
            torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
            6,
            ["OutOfMemoryError: CUDA out of memory", "eval_batch_size", "resumes"],
        ),
        (InvalidIdsError("strategy returned invalid ids"), 1, ["--debug", "report it"]),
        (
            ZeroDivisionError("division by zero"),
            1,
            ["ZeroDivisionError: division by zero", "--debug"],
        ),
        (KeyError("x"), 1, ["KeyError: 'x'"]),
    ]


def test_every_class_gets_its_status_and_one_line():
    for err, status, fragments in _cases():
        assert exit_status(err) == status, (type(err).__name__, exit_status(err))
        assert status in EXIT_STATUSES
        line = error_line(err)
        assert line.startswith(f"energizer-hf: error: {type(err).__name__}: "), line
        assert "\n" not in line
        for fragment in fragments:
            assert fragment in line, (fragment, line)


def test_a_multi_line_config_error_becomes_one_line():
    from energizer_hf.config_types import coerce_fields
    from energizer_hf.learner import RunConfig

    with pytest.raises(ConfigError) as info:
        coerce_fields(
            RunConfig, {"learning_rate": "fast", "reset_weights": "nope"}, source="c.yaml"
        )
    line = error_line(info.value)
    assert "\n" not in line
    assert line.startswith(
        "energizer-hf: error: ConfigError: c.yaml: 2 configuration values are wrong:"
    )
    assert "learning_rate: got 'fast'" in line and "; reset_weights: got 'nope'" in line


def test_the_line_is_scrubbed(monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "ls-key-0123456789abcdef")
    err = EnergizerError(f"hub_repo_id '{TOKEN}' and key ls-key-0123456789abcdef")
    line = error_line(err)
    assert TOKEN not in line and "ls-key-0123456789abcdef" not in line
    assert error_line(ValueError("x"), secrets=["zebra-horse"]) == error_line(ValueError("x"))
    assert "zebra-horse" not in error_line(ValueError("zebra-horse"), secrets=["zebra-horse"])


def test_cli_failure_writes_the_line_and_keeps_the_status():
    stream = io.StringIO()
    with CliFailure(stream=stream) as frame:
        frame.round = 3
        raise RunLockedError("The run directory 'r' is in use by pid 7.")
    assert frame.status == 4 and isinstance(frame.error, RunLockedError)
    assert (
        stream.getvalue()
        == "energizer-hf: error: RunLockedError: The run directory 'r' is in use by pid 7.\n"
    )


def test_interrupted_says_where_and_how_to_resume():
    stream = io.StringIO()
    with CliFailure(stream=stream) as frame:
        frame.round = 2
        raise KeyboardInterrupt
    assert frame.status == 130
    assert stream.getvalue().strip() == (
        "energizer-hf: error: Interrupted: stopped at round 2; re-run the same command to resume."
    )


def test_debug_shows_the_scrubbed_traceback_then_the_line(monkeypatch):
    stream = io.StringIO()

    def deep():
        raise ValueError(f"bad {TOKEN}")

    with CliFailure(stream=stream, debug=True):
        deep()
    out = stream.getvalue()
    assert out.startswith("Traceback (most recent call last):") and "in deep" in out
    assert TOKEN not in out
    assert (
        out.rstrip("\n").splitlines()[-1].startswith("energizer-hf: error: ValueError: bad hf_***")
    )


def test_quiet_without_debug():
    stream = io.StringIO()
    with CliFailure(stream=stream):
        raise ValueError("x")
    assert "Traceback" not in stream.getvalue()


def test_system_exit_and_success_pass_through():
    with pytest.raises(SystemExit), CliFailure(stream=io.StringIO()):
        raise SystemExit(2)
    assert run_command(lambda frame: None) == 0
    assert run_command(lambda frame: 3) == 3
    stream = io.StringIO()
    assert run_command(lambda frame: 1 / 0, stream=stream) == 1
    assert "ZeroDivisionError" in stream.getvalue()


def test_broken_pipe_is_silent():
    stream = io.StringIO()
    with CliFailure(stream=stream) as frame:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")
    assert frame.status == 141 and stream.getvalue() == ""


CTRL_C = """
import sys, time, types
from pathlib import Path
pkg = types.ModuleType("energizer_hf"); pkg.__path__ = [str(Path("energizer_hf").resolve())]
sys.modules["energizer_hf"] = pkg  # the package's __init__ (torch, Lightning) is not needed
from energizer_hf.cli_errors import run_command

def command(frame):
    frame.round = 4
    print("READY", flush=True)
    time.sleep(60)

sys.exit(run_command(command))
"""


def test_a_real_ctrl_c_exits_130_with_one_line():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", CTRL_C],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a child inherits an ignored SIGINT (some earlier test or tool may leave it ignored
        # in this process), and Python then never raises KeyboardInterrupt: restore it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout.readline().strip() == "READY", proc.stderr.read()
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert (
        err.strip()
        == "energizer-hf: error: Interrupted: stopped at round 4; re-run the same command to resume."
    )


def test_a_real_full_disk(tmp_path):
    """A real ENOSPC from a 64 KiB tmpfs (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs here: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    try:
        stream = io.StringIO()
        with CliFailure(stream=stream) as frame:
            from energizer_hf.utils import atomic_write_bytes

            atomic_write_bytes(mount / "label_state.npy", b"x" * (1 << 20))
        assert frame.status == 4, stream.getvalue()
        line = stream.getvalue().strip()
        assert line.startswith("energizer-hf: error: OSError: no space left on the device")
        assert not any(mount.iterdir())  # the atomic writer left no temporary file
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
