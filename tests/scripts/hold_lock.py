"""Take a run directory's lock in a separate process (driven by tests/test_runlock.py).

Usage: ``python -m tests.scripts.hold_lock LOCK_PATH [--go FILE] [--stop FILE] [--timeout S]``

Waits for ``--go`` to exist (so that several processes start together), takes the lock,
prints ``PROCEED <rank> <held>`` and holds it until ``--stop`` exists (at most 60 s); or
prints ``REFUSED <message>`` and exits with status 4 when the lock is taken.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _import_lightly() -> None:
    """Import ``energizer_hf``'s modules without running its ``__init__`` (which imports
    torch and Lightning: many seconds per process on a busy machine). The lock needs none
    of that; the modules imported are the package's own files."""
    import types

    if "energizer_hf" not in sys.modules:
        package = types.ModuleType("energizer_hf")
        package.__path__ = [str(Path(__file__).resolve().parents[2] / "energizer_hf")]
        sys.modules["energizer_hf"] = package


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("lock_path")
    parser.add_argument("--go", default=None)
    parser.add_argument("--stop", default=None)
    parser.add_argument("--timeout", type=float, default=0.0)
    parser.add_argument("--allow-read-only", action="store_true")
    args = parser.parse_args()

    _import_lightly()
    from energizer_hf.errors import RunDirError, RunLockedError
    from energizer_hf.runlock import RunLock

    deadline = time.time() + 60
    if args.go:
        while not os.path.exists(args.go) and time.time() < deadline:
            time.sleep(0.005)
    lock = RunLock(args.lock_path, timeout=args.timeout, allow_read_only=args.allow_read_only)
    try:
        lock.acquire()
    except RunLockedError as err:
        print(f"REFUSED {err}", flush=True)
        return 4
    except RunDirError as err:
        print(f"RUNDIR {err}", flush=True)
        return 5
    print(f"PROCEED {lock.rank} {lock.held} {lock.read_only}", flush=True)
    if args.stop:
        while not Path(args.stop).exists() and time.time() < deadline:
            time.sleep(0.01)
    lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
