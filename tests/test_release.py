"""`.ci/release`: sdist + wheel built from a clean tree, checked, installed outside the checkout."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("build", "twine")),
    reason="the release check needs `build` and `twine` (pip install -e '.[dev]')",
)
def test_release_script_builds_checks_and_installs(tmp_path):
    # a copy of the checkout, so that the build's egg-info never lands in this tree
    src = tmp_path / "src"
    shutil.copytree(
        ROOT, src,
        ignore=shutil.ignore_patterns(".git", "build", "dist", "site", "*.egg-info", "__pycache__",
                                      "runs", ".venv*", ".pytest_cache", ".ruff_cache"),
    )
    out = tmp_path / "dist"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(ENERGIZER_HF_NO_ISOLATION="1", OMP_NUM_THREADS="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.run(
        ["bash", str(src / ".ci" / "release"), str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "energizer-hf --help: ok" in proc.stdout
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("energizer_hf ") and " imported from " in ln)
    imported = Path(line.split(" imported from ")[1])
    assert "venv" in imported.parts and not imported.is_relative_to(src) and not imported.is_relative_to(ROOT)
    (sdist,) = out.glob("energizer_hf-*.tar.gz")
    (wheel,) = out.glob("energizer_hf-*-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "energizer_hf/py.typed" in names and not any(n.startswith("tests/") for n in names)
    with tarfile.open(sdist) as tar:
        members = tar.getnames()
    assert any(m.endswith("/pyproject.toml") for m in members)
    assert not (src / "energizer_hf.egg-info").exists() and not (src / "build").exists()
