"""Start/stop a real Label Studio server (installed by ``.ci/install_labelstudio.sh``).

The server runs from its own virtualenv (``ENERGIZER_HF_LS_VENV``, default
``~/.cache/energizer_hf/label-studio-1.23``) in its own process group, bound to
127.0.0.1 on a free port, with a fixed user and a fixed *legacy* API token so that
tests can talk to it with ``Authorization: Token <token>``.  See docs/dev/labelstudio.md.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_VENV = Path.home() / ".cache" / "energizer_hf" / "label-studio-1.23"
REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / ".ci" / "install_labelstudio.sh"

# Legacy (DRF) token: any string longer than 5 characters is accepted by
# `label-studio start --user-token`; 40 hex characters is what LS generates itself.
DEFAULT_TOKEN = "0123456789abcdef0123456789abcdef01234567"
DEFAULT_USERNAME = "tester@example.com"
DEFAULT_PASSWORD = "energizer-hf-test-pw"


def venv_dir_from_env() -> Path:
    return Path(os.environ.get("ENERGIZER_HF_LS_VENV", str(DEFAULT_VENV))).expanduser()


def unavailable_reason(venv_dir: str | os.PathLike | None = None) -> str | None:
    """Why ``venv_dir`` cannot run Label Studio, or ``None`` when it can (for ``pytest.skip``)."""
    venv = Path(venv_dir).expanduser() if venv_dir is not None else venv_dir_from_env()
    exe = venv / "bin" / "label-studio"
    if not exe.exists():
        return f"Label Studio is not installed ({exe} missing; run .ci/install_labelstudio.sh)"
    if not (venv / ".energizer_hf_installed").exists():
        return f"Label Studio install in {venv} is incomplete (no .energizer_hf_installed marker)"
    return None


def is_available(venv_dir: str | os.PathLike | None = None) -> bool:
    """Whether ``venv_dir`` (default: ``$ENERGIZER_HF_LS_VENV``) holds an installed label-studio."""
    return unavailable_reason(venv_dir) is None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LabelStudioError(RuntimeError):
    pass


class LabelStudioServer:
    """A real ``label-studio start`` process.

    >>> srv = LabelStudioServer(venv_dir, tmp_path / "ls")  # doctest: +SKIP
    >>> srv.start()            # blocks until GET /health answers 200  # doctest: +SKIP
    >>> srv.url, srv.token     # 'http://127.0.0.1:PORT', 40-hex legacy token  # doctest: +SKIP
    >>> srv.restart()          # stop + start on the same port and data dir  # doctest: +SKIP
    >>> srv.stop()  # doctest: +SKIP
    """

    host = "127.0.0.1"

    def __init__(
        self,
        venv_dir: str | os.PathLike,
        data_dir: str | os.PathLike,
        port: int | None = None,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        token: str = DEFAULT_TOKEN,
    ) -> None:
        self.venv_dir = Path(venv_dir).expanduser()
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.port = port or free_port(self.host)
        self.username = username
        self.password = password
        self.token = token
        self.log_path = self.data_dir / "label-studio.log"
        self.proc: subprocess.Popen | None = None
        self.start_seconds: float | None = None  # time of the last successful start()
        self._log_file = None

    # ------------------------------------------------------------------ info
    @classmethod
    def is_available(cls, venv_dir: str | os.PathLike | None = None) -> bool:
        return is_available(venv_dir)

    @classmethod
    def unavailable_reason(cls, venv_dir: str | os.PathLike | None = None) -> str | None:
        return unavailable_reason(venv_dir)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def executable(self) -> Path:
        return self.venv_dir / "bin" / "label-studio"

    def command(self) -> list[str]:
        return [
            str(self.executable),
            "start",
            "--no-browser",
            "--internal-host",
            self.host,
            "--port",
            str(self.port),
            "--username",
            self.username,
            "--password",
            self.password,
            "--user-token",
            self.token,
            "--enable-legacy-api-token",
            "--data-dir",
            str(self.data_dir),
        ]

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self, timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=timeout) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "<no log>"
        return "\n".join(lines[-n:])

    # ------------------------------------------------------------------ life cycle
    def start(self, timeout: float = 180) -> LabelStudioServer:
        if self.running():
            return self
        reason = unavailable_reason(self.venv_dir)
        if reason is not None:
            raise LabelStudioError(reason)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            LATEST_VERSION_CHECK="false",
            # keep everything (sqlite db, media, exports) inside data_dir, not ~/.local/share
            LABEL_STUDIO_BASE_DATA_DIR=str(self.data_dir),
            DJANGO_DEBUG="false",
            OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
            PYTHONUNBUFFERED="1",
        )
        # The project env's variables must not leak into the server's own venv.
        for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(var, None)
        env["PATH"] = f"{self.venv_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop())
        self._log_file.write(f"\n===== start {time.ctime()} port={self.port}\n".encode())
        self._log_file.flush()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(self.data_dir),
            start_new_session=True,  # own process group: stop() kills the whole tree
        )
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self._close_log()
                self.proc = None
                raise LabelStudioError(
                    f"label-studio exited with code {rc} during start-up; log tail:\n{self.log_tail()}"
                )
            if self.healthy():
                self.start_seconds = time.monotonic() - t0
                return self
            time.sleep(0.5)
        self.stop()
        raise LabelStudioError(
            f"label-studio did not answer {self.url}/health within {timeout:.0f} s; "
            f"log tail:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 30) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            self._signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=timeout)
        if proc is not None:
            # children left behind in the group (the server forks workers)
            self._signal_group(proc, signal.SIGKILL)
        self._close_log()

    def kill(self) -> None:
        """SIGKILL the whole group, like a crash (no graceful shutdown)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            self._signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=30)
        self._close_log()

    def restart(self, timeout: float = 180, crash: bool = False) -> LabelStudioServer:
        """Stop (or SIGKILL with ``crash=True``) and start again on the same port and data dir."""
        if crash:
            self.kill()
        else:
            self.stop()
        self._wait_port_free()
        return self.start(timeout=timeout)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _signal_group(proc: subprocess.Popen, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # pgid == pid thanks to start_new_session

    def _wait_port_free(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((self.host, self.port))
                    return
                except OSError:
                    time.sleep(0.5)

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> LabelStudioServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running() else "stopped"
        return f"LabelStudioServer({self.url}, data_dir={self.data_dir}, {state})"
