"""A directory that cannot be written, for the run-directory tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[Path]:
    """Make ``directory`` unwritable for this process: chmod for a normal user; for root
    (who writes anywhere) a read-only bind mount, skipped where mounting is not allowed."""
    if os.geteuid() != 0:
        os.chmod(directory, 0o555)
        try:
            yield directory
        finally:
            os.chmod(directory, 0o755)
        return
    cmds = [
        ["mount", "--bind", str(directory), str(directory)],
        ["mount", "-o", "remount,ro,bind", str(directory)],
    ]
    for i, cmd in enumerate(cmds):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            if i:
                subprocess.run(["umount", str(directory)], capture_output=True)
            pytest.skip(f"cannot make a read-only directory as root here: {proc.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], capture_output=True)
