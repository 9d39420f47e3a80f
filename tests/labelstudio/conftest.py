"""Fixtures for tests against a real Label Studio server.

``label_studio`` (session): runs ``.ci/install_labelstudio.sh`` (idempotent; installs the
server into its own venv and ``label-studio-sdk`` into this python), starts
``LabelStudioServer`` on a free 127.0.0.1 port with a fresh data dir, yields it, stops it.
Skips (with the reason) when ``ENERGIZER_HF_SKIP_LABELSTUDIO=1`` or when the install fails.

``ls_client`` (session): a ``label_studio_sdk.LabelStudio`` client using the legacy token.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .server import INSTALL_SCRIPT, LabelStudioError, LabelStudioServer, venv_dir_from_env

INSTALL_TIMEOUT_S = 1200
# First start on an empty data dir runs all Django migrations: ~60 s idle, ~85 s on a busy
# 2-core machine. Restarts on an existing data dir take ~10 s.
START_TIMEOUT_S = float(os.environ.get("ENERGIZER_HF_LS_START_TIMEOUT", "300"))


def _install_or_skip() -> None:
    if os.environ.get("ENERGIZER_HF_SKIP_LABELSTUDIO") == "1":
        pytest.skip("ENERGIZER_HF_SKIP_LABELSTUDIO=1")
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"Label Studio install could not run: {exc!r}")
    out = "\n".join(
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if "is ignored: it is neither a file nor a directory" not in line
    )
    if proc.returncode != 0:
        pytest.skip(f"Label Studio install failed (rc={proc.returncode}): {out[-1500:]}")
    print(out)  # visible with -s / in the captured setup output
    reason = LabelStudioServer.unavailable_reason(venv_dir_from_env())
    if reason is not None:
        pytest.skip(reason)
    try:
        import label_studio_sdk  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"label-studio-sdk not importable in {sys.executable}: {exc}")


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """A running real Label Studio server (``LabelStudioServer``), shared by the session."""
    _install_or_skip()
    server = LabelStudioServer(venv_dir_from_env(), tmp_path_factory.mktemp("label-studio"))
    try:
        server.start(timeout=START_TIMEOUT_S)
    except LabelStudioError as exc:
        server.stop()
        pytest.fail(f"Label Studio installed but did not start: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ls_client(label_studio):
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=label_studio.url, api_key=label_studio.token, timeout=60)
