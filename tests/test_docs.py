"""The docs site builds with warnings as errors, and the how-to page's code runs."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.mark.slow
@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("mkdocs", "mkdocstrings", "material")),
    reason="building the docs needs mkdocs-material and mkdocstrings[python] (pip install them)",
)
def test_mkdocs_build_strict(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--clean",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1", OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    site = tmp_path / "site"
    for page in (
        "index.html",
        "quickstart/index.html",
        "concepts/index.html",
        "strategies/index.html",
        "how_to_add_a_strategy/index.html",
        "architecture/index.html",
        "api/learner/index.html",
        "api/oracles/index.html",
    ):
        assert (site / page).is_file(), page
    # the API pages are generated from the docstrings
    assert "ActiveLearner" in (site / "api" / "learner" / "index.html").read_text()
    assert "WidgetOracle" in (site / "api" / "oracles" / "index.html").read_text()


def test_nav_pages_exist():
    yaml = pytest.importorskip("yaml")
    # mkdocs.yml has no custom tags: plain safe_load reads it
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(nav):
        for item in nav:
            for value in item.values():
                if isinstance(value, list):
                    yield from pages(value)
                else:
                    yield value

    for page in pages(config["nav"]):
        assert (DOCS / page).is_file(), page


def test_doctest_fence_extension():
    spec = importlib.util.spec_from_file_location("griffe_doctest", DOCS / "griffe_doctest.py")
    if importlib.util.find_spec("griffe") is None:
        pytest.skip("griffe (mkdocstrings[python]) is not installed")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = 'Intro.\n\n>>> r[0]["x"]\n10\n\nAfter.\n\nExample:\n    >>> f(1)\n    2\n'
    assert mod.fence_doctests(text) == (
        'Intro.\n\n```pycon\n>>> r[0]["x"]\n10\n```\n\nAfter.\n\n'
        "Example:\n    ```pycon\n    >>> f(1)\n    2\n    ```"
    )


@pytest.mark.slow
def test_how_to_add_a_strategy_code_runs(tmp_path):
    """Every python block of the how-to page, in order, as one script (tiny data).

    It runs in a subprocess so that the strategies it registers do not leak into the
    registry of the other tests.
    """
    text = (DOCS / "how_to_add_a_strategy.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 3
    script = tmp_path / "how_to.py"
    script.write_text(
        f"run_root = {str(tmp_path / 'runs')!r}\n"
        + "\n".join(blocks)
        + "\nprint('final', results[-1]['num_labelled'])\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(
            os.environ,
            OMP_NUM_THREADS="1",
            TOKENIZERS_PARALLELISM="false",
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        ),
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "final 24" in proc.stdout
