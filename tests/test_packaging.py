"""The built distributions: the wheel carries the card templates, and twine accepts both files.

The wheel is installed in a fresh virtual environment outside the checkout (it sees the
system's torch, transformers, ... so nothing is downloaded) and renders both cards from the
templates it ships: a wheel without them fails here, as a pip-installed user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

RENDER = r"""
import json, sys
import energizer_hf
from energizer_hf.revisions import cards
from energizer_hf.run import RunDir, RunInfo

here = energizer_hf.__file__
assert here.startswith(sys.argv[1]), f"imported {here}, not the installed wheel"
records = ({"round": 0, "num_labelled": 10, "test/accuracy": 0.5, "test/f1_macro": 0.4,
            "label_distribution": {"neg": 6, "pos": 4}, "stop_reason": "max_rounds"},)
run = RunInfo(files=RunDir("run"), settings={"seed": 0, "query_size": 10}, strategy="entropy",
              strategy_params={"subpool_size": 50}, label_source="dataset",
              label_names=("neg", "pos"), records=records, pool_fingerprint="f" * 16, pool_rows=99,
              card={"eval": {"type": "imdb", "name": "imdb", "split": "test"}, "license": "apache-2.0"})

class Rows:  # what the dataset card reads of a round dataset
    column_names = ["pool_id", "label", "round"]
    def __len__(self): return 10
    def __getitem__(self, name): return {"round": [0] * 10}[name]

meta = {"round": 0, "pool_fingerprint": "f" * 16, "pool_rows": 99, "label_source": "dataset"}
dataset_card = cards.dataset_card(run, 0, Rows(), meta)
model_card = cards.model_card(run, "me/al-model", dataset_repo_id="me/al-data", dataset_commit="a" * 40)
print(json.dumps({"file": here, "dataset": cards.front_matter(dataset_card), "model": cards.front_matter(model_card),
                  "dataset_body": dataset_card, "model_body": model_card}))
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    src = tmp_path_factory.mktemp("src") / "energizer_hf"
    # build from a copy of the tracked sources, so the checkout gets no build/ or *.egg-info
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],  # sdist, then the wheel from it
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_the_wheel_ships_the_card_templates(dist):
    wheel, _ = dist
    names = zipfile.ZipFile(wheel).namelist()
    for template in ("dataset_card.md.j2", "model_card.md.j2"):
        assert f"energizer_hf/revisions/templates/{template}" in names, names
    assert "energizer_hf/py.typed" in names


def test_twine_accepts_the_distributions(dist):
    proc = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dist)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def test_the_installed_wheel_renders_both_cards_outside_the_checkout(dist, tmp_path):
    wheel, _ = dist
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    proc = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=True).stdout.strip()
    proc = subprocess.run([str(python), "-c", RENDER, site], capture_output=True, text=True, timeout=600,
                          env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["file"].startswith(site) and not got["file"].startswith(str(ROOT))
    dataset, model = got["dataset"], got["model"]
    assert dataset["size_categories"] == ["n<1K"] and dataset["energizer_hf"]["round"] == 0
    assert model["library_name"] == "transformers" and model["datasets"] == ["me/al-data"]
    assert model["model-index"][0]["results"][0]["dataset"] == {"type": "imdb", "name": "imdb", "split": "test"}
    assert model["license"] == "apache-2.0" and "a" * 12 in got["model_body"]  # the short commit id
    # the bodies come from the packaged templates (their sections), not from a fallback
    assert "## Label distribution per round" in got["dataset_body"]
    assert "| Strategy: subpool_size | 50 |" in got["dataset_body"]
    assert "## Metrics per round" in got["model_body"] and "pipeline(" in got["model_body"]
