"""One writer per run directory: an exclusive lock held for a whole run.

A run (and ``push``, ``annotate``, ``collect``) holds the lock of its run directory from
start to end; a second process on the same directory gets `RunLockedError` naming
the holder (pid, host, user, start time, command line) instead of silently writing every
round twice.

How it works:

* the lock itself is an OS file lock (``flock`` through `filelock`) on the run
  directory's lock file (``RunDir`` names it; conventionally ``<run_dir>/.lock``). The OS
  releases it when the holder dies, even on ``SIGKILL``.
* next to it, ``<lock file>.json`` (`holder_path`) describes the holder; it is
  written atomically after the lock is taken and removed before it is released. It names
  the holder in errors, and protects file systems where file locks do not reach every
  machine (some NFS set-ups): when the lock is free but the description names a process
  that did not release it,

  - on this host with that process gone (pid not alive, or alive with another start
    time): the lock was stale; it is taken over with a warning;
  - on this host with that process alive: the file system does not enforce the lock;
    refused;
  - on another host: whether it is alive cannot be known from here; refused, and
    ``energizer-hf unlock RUN_DIR`` (`break_lock`) breaks it once you know that
    run is gone.

* a multi-process job (``torchrun``, ``accelerate launch``, Lightning DDP, SLURM) takes it
  once: global rank 0 (``RANK``, else ``SLURM_PROCID``, else ``NODE_RANK``/``LOCAL_RANK``)
  holds it; the other ranks do not take it and do not block (a launcher stops them when
  rank 0 fails). Only rank 0 writes in a run directory anyway.
* within one process the lock is re-entrant: ``learner.collect()`` calling ``run()``, or
  ``push`` inside a locked run, does not lock itself out.
* a run directory that cannot be written (read-only) cannot be locked: with
  ``allow_read_only=True`` the lock is skipped and `RunLock.read_only` says so (for
  commands that only read, e.g. showing a finished run); otherwise `RunDirError`.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / ".lock"
>>> with RunLock(path) as lock:
...     read_holder(path)["pid"] == os.getpid()
True
>>> read_holder(path) is None
True
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import getpass
import json
import logging
import os
import shlex
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from energizer_hf.errors import RunDirError, RunLockedError
from energizer_hf.scrub import scrub

__all__ = [
    "BREAK_COMMAND",
    "RunLock",
    "break_lock",
    "holder_path",
    "launcher_ranks",
    "read_holder",
]

log = logging.getLogger(__name__)

#: How a user breaks a stale lock (``{run_dir}`` is filled in); the CLI command that
#: calls `break_lock`.
BREAK_COMMAND = "energizer-hf unlock {run_dir}"
_FORMAT = 1

_REGISTRY_GUARD = threading.Lock()
_HELD: dict[str, RunLock] = {}  # resolved lock path -> the lock object that holds it


def holder_path(lock_path: str | os.PathLike) -> Path:
    """The holder description next to the lock file: ``<lock file>.json``."""
    lock_path = Path(lock_path)
    return lock_path.with_name(lock_path.name + ".json")


def launcher_ranks(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """This process's place in a multi-process job, from the launcher's environment.

    Returns ``{"rank", "local_rank", "world_size", "job_id"}``: ``rank`` is the global rank
    (``RANK`` from torchrun/accelerate/Lightning, else ``SLURM_PROCID``, else derived from
    ``NODE_RANK``/``GROUP_RANK`` and ``LOCAL_RANK``; 0 for a plain process).

    >>> launcher_ranks({"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2"})["rank"]
    1
    >>> launcher_ranks({"LOCAL_RANK": "0", "NODE_RANK": "1"})["rank"] != 0
    True
    """
    env = os.environ if environ is None else environ

    def num(*keys: str) -> int | None:
        for key in keys:
            value = env.get(key, "").strip()
            if value.lstrip("-").isdigit():
                return int(value)
        return None

    local = num("LOCAL_RANK", "SLURM_LOCALID") or 0
    world = num("WORLD_SIZE", "SLURM_NTASKS") or 1
    rank = num("RANK", "SLURM_PROCID")
    if rank is None:
        node = num("NODE_RANK", "GROUP_RANK") or 0
        per_node = num("LOCAL_WORLD_SIZE") or max(world, local + 1)
        rank = node * per_node + local
    job = env.get("TORCHELASTIC_RUN_ID") or env.get("SLURM_JOB_ID")
    if not job and env.get("MASTER_ADDR"):
        job = f"{env.get('MASTER_ADDR')}:{env.get('MASTER_PORT', '')}"
    return {"rank": rank, "local_rank": local, "world_size": world, "job_id": job or None}


def read_holder(lock_path: str | os.PathLike) -> dict[str, Any] | None:
    """The description of the lock's holder, ``None`` when there is none (or it is
    unreadable: a description torn by a crash describes nobody)."""
    try:
        data = json.loads(holder_path(lock_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------------- process facts
def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _process_start(pid: int) -> float | None:
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:  # noqa: BLE001 - psutil missing, or no such process
        return None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:  # a zombie (killed, not yet reaped by its parent) holds nothing
        import psutil

        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except Exception:  # noqa: BLE001 - psutil missing or the process just went away
        return True


def _same_host(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname():
        return False
    boot = _boot_id()
    return not (boot and holder.get("boot_id") and holder["boot_id"] != boot)


def _holder_alive(holder: dict[str, Any]) -> bool:
    """On this host: whether the described process still runs (same pid, same start)."""
    pid = int(holder.get("pid") or -1)
    if not _pid_alive(pid):
        return False
    started, now = holder.get("process_start"), _process_start(pid)
    return not (started and now and abs(float(started) - now) > 1.0)  # pid reused


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "a process that has not described itself yet"
    when = holder.get("started", "?")
    ago = ""
    if isinstance(holder.get("started_unix"), (int, float)):
        ago = f" ({_ago(time.time() - float(holder['started_unix']))})"
    rank = ""
    if int(holder.get("world_size") or 1) > 1:
        rank = f", rank 0 of a {holder['world_size']}-process job"
    command = holder.get("command")
    return (
        f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')!r} (user "
        f"{holder.get('user', '?')}{rank}), since {when}{ago}"
        + (f", running `{command}`" if command else "")
    )


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if unit == 'day' and n > 1 else ''} ago"
    return f"{int(seconds)} s ago"


# ---------------------------------------------------------------------- the lock
class RunLock:
    """The exclusive lock of one run directory, as a context manager.

    Args:
        lock_path: the run directory's lock file (``RunDir`` provides it). Its parent (the
            run directory) is created when missing.
        timeout: seconds to wait for a busy lock (``0``: fail at once).
        allow_read_only: on a directory that cannot be written, go on without a lock
            (`read_only` is then true and nothing may be written) instead of raising.
        command: the command line to record (default: this process's ``sys.argv``,
            scrubbed of credentials).

    Raises (from `acquire` / ``with``):
        RunLockedError: another process holds the lock; the message names it and says how
            to break a stale lock.
        RunDirError: the directory cannot be written (and ``allow_read_only`` is false),
            or is a file.

    Attributes:
        held: this object holds the OS lock.
        read_only: the directory is read-only and no lock was taken.
        rank: this process's global rank; on ranks other than 0 nothing is locked.
        holder: the description written for this holder (``None`` when not held).
    """

    def __init__(
        self,
        lock_path: str | os.PathLike,
        *,
        timeout: float = 0.0,
        allow_read_only: bool = False,
        command: str | None = None,
    ) -> None:
        self.lock_path = Path(lock_path)
        self.timeout = float(timeout)
        self.allow_read_only = allow_read_only
        self.command = command
        self.ranks = launcher_ranks()
        self.rank = self.ranks["rank"]
        self.held = False
        self.read_only = False
        self.holder: dict[str, Any] | None = None
        self._lock: Any = None
        self._depth = 0  # nested acquisitions in this process (re-entrancy)
        self._delegate: RunLock | None = None
        self._pid = os.getpid()

    @property
    def run_dir(self) -> Path:
        return self.lock_path.parent

    # .................................................................. acquire
    def acquire(self) -> RunLock:
        """Take the lock (see the class docstring for what happens on each rank)."""
        if self.rank != 0:
            log.debug("rank %d: the run directory lock is held by rank 0", self.rank)
            return self
        key = self._key()
        with _REGISTRY_GUARD:
            owner = _HELD.get(key)
            if owner is not None and owner._pid == os.getpid() and owner.held:
                owner._depth += 1
                self._delegate = owner
                return self
        if not self._prepare_dir():
            return self
        self._take_os_lock()
        if self.read_only:
            return self
        try:
            self._check_previous_holder()
            self._write_holder()
        except BaseException:
            self._release_os_lock()
            raise
        self.held = True
        self._depth = 1
        with _REGISTRY_GUARD:
            _HELD[key] = self
        return self

    def _key(self) -> str:
        return str(self.lock_path.parent.resolve() / self.lock_path.name)

    def _prepare_dir(self) -> bool:
        """Make the run directory; ``False`` when it is read-only and that is allowed."""
        run_dir = self.run_dir
        if run_dir.exists() and not run_dir.is_dir():
            raise RunDirError(
                f"The run directory '{run_dir}' is a file, not a directory: choose another "
                "run_dir, or move that file away."
            )
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            return self._not_writable(err)
        if not os.access(run_dir, os.W_OK | os.X_OK):
            return self._not_writable(PermissionError(13, "Permission denied", str(run_dir)))
        return True

    def _not_writable(self, err: OSError) -> bool:
        if self.allow_read_only and self.run_dir.is_dir():
            self.read_only = True
            log.info("'%s' is read-only: reading it without a lock.", self.run_dir)
            return False
        raise RunDirError(
            f"The run directory '{self.run_dir}' cannot be written ({err.strerror or err}): "
            "choose a run_dir you can write to, or make it writable (e.g. chmod u+w). A "
            "finished run in a read-only directory can still be read (energizer-hf check)."
        ) from None

    def _take_os_lock(self) -> None:
        from filelock import FileLock, Timeout

        self._lock = FileLock(str(self.lock_path), timeout=self.timeout, thread_local=False)
        try:
            self._lock.acquire(timeout=self.timeout, poll_interval=0.05)
        except Timeout:
            self._lock = None
            raise self._locked_error(
                read_holder(self.lock_path) or self._wait_for_holder()
            ) from None
        except OSError as err:
            self._lock = None
            if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            if self.allow_read_only:
                self.read_only = True
                return
            raise RunDirError(
                f"Cannot open the lock file '{self.lock_path}' ({err.strerror}): it belongs to "
                "another user, or the run directory is read-only. Run as the user who owns "
                "the run directory, or choose another run_dir."
            ) from None

    def _wait_for_holder(self) -> dict[str, Any] | None:
        # the holder takes the lock first and describes itself just after: wait a moment
        for _ in range(20):
            time.sleep(0.05)
            holder = read_holder(self.lock_path)
            if holder:
                return holder
        return None

    def _check_previous_holder(self) -> None:
        """We have the OS lock; a description left by another holder is checked here."""
        previous = read_holder(self.lock_path)
        if not previous:
            return
        if previous.get("pid") == os.getpid() and _same_host(previous):
            return  # left by this very process (a lock never released in a notebook)
        if _same_host(previous):
            if _holder_alive(previous):
                raise self._locked_error(
                    previous,
                    extra=" The file system does not enforce the lock file here, but that "
                    "process is alive.",
                )
            log.warning(
                "The run directory '%s' was locked by %s, which ended without releasing it "
                "(killed?); taking the lock over.",
                self.run_dir,
                _describe(previous),
            )
            return
        raise self._locked_error(previous, other_host=True)

    def _locked_error(
        self, holder: dict[str, Any] | None, extra: str = "", other_host: bool = False
    ) -> RunLockedError:
        run_dir = str(self.run_dir)
        how = BREAK_COMMAND.format(run_dir=shlex.quote(run_dir))
        if other_host:
            what = (
                f"The run directory '{run_dir}' is locked by {_describe(holder)}: that host "
                "never released it, and whether that run still goes on cannot be checked "
                "from here."
            )
            todo = (
                f" If it is running, wait for it or stop it there. If it is gone (its machine "
                f"or job died), break the lock with `{how}` and run again."
            )
        else:
            what = f"The run directory '{run_dir}' is in use by {_describe(holder)}."
            todo = (
                " One run directory takes one writer at a time: wait for that process to "
                "finish or stop it, or use another run_dir. If that process no longer exists, "
                f"break the lock with `{how}`."
            )
        return RunLockedError(scrub(what + extra + todo), holder)

    def _write_holder(self) -> None:
        from energizer_hf.utils import atomic_write_json

        now = time.time()
        command = self.command if self.command is not None else shlex.join(sys.argv)
        try:
            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user name in some containers
            user = str(os.getuid()) if hasattr(os, "getuid") else "?"
        self.holder = {
            "format_version": _FORMAT,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "boot_id": _boot_id(),
            "user": user,
            "started": _dt.datetime.fromtimestamp(now, _dt.timezone.utc).strftime(
                "%Y-%m-%d %H:%M:%S UTC"
            ),
            "started_unix": now,
            "process_start": _process_start(os.getpid()),
            "command": scrub(command)[:500],
            "token": uuid.uuid4().hex,
            **self.ranks,
        }
        atomic_write_json(holder_path(self.lock_path), self.holder)

    # .................................................................. release
    def release(self) -> None:
        """Give the lock back (the outermost release of this process does)."""
        if self._delegate is not None:
            owner, self._delegate = self._delegate, None
            with _REGISTRY_GUARD:
                owner._depth -= 1
            return
        if not self.held or os.getpid() != self._pid:  # a forked child never releases
            return
        with _REGISTRY_GUARD:
            self._depth -= 1
            if self._depth > 0:
                return
            _HELD.pop(self._key(), None)
        current = read_holder(self.lock_path)
        if current and self.holder and current.get("token") == self.holder.get("token"):
            with contextlib.suppress(OSError):
                holder_path(self.lock_path).unlink()
        self._release_os_lock()
        self.held = False
        self.holder = None

    def _release_os_lock(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(Exception):
                self._lock.release(force=True)
            self._lock = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "held" if self.held or self._delegate else "read-only" if self.read_only else "free"
        return f"RunLock('{self.lock_path}', {state}, rank={self.rank})"


def break_lock(lock_path: str | os.PathLike, *, force: bool = False) -> dict[str, Any] | None:
    """Break a stale lock (``energizer-hf unlock RUN_DIR``); returns the former holder's
    description (``None`` when there was none).

    Only a lock nobody holds can be broken: a lock held by a live process on this host
    (through the OS lock, or alive per its description) is refused; stop that process
    first. A description left by another host is removed: call this only once you know
    that run is gone. ``force=True`` also removes the description of a process that is
    alive on this host although the OS lock is free (a file system that does not enforce
    file locks).

    Raises:
        RunLockedError: the lock is held by a live process.
        RunDirError: the run directory cannot be written.
    """
    lock = RunLock(lock_path, timeout=0.0)
    lock.rank = 0  # breaking is a user's decision on whichever process runs it
    if not lock._prepare_dir():  # pragma: no cover - allow_read_only is false here
        return None
    lock._take_os_lock()
    try:
        previous = read_holder(lock_path)
        if (
            previous
            and _same_host(previous)
            and previous.get("pid") != os.getpid()
            and _holder_alive(previous)
            and not force
        ):
            raise lock._locked_error(
                previous, extra=" It is alive: stop it first (or pass force=True)."
            )
        with contextlib.suppress(FileNotFoundError):
            holder_path(lock_path).unlink()
        if previous:
            log.warning("Broke the lock of '%s' held by %s.", lock.run_dir, _describe(previous))
        return previous
    finally:
        lock._release_os_lock()
