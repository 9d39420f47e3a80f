import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_seed_api_example_runs(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "seed_api.py")],
        cwd=tmp_path, env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT)),
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert len(rows) == 6
    assert (tmp_path / "runs" / "seed-api-example" / "rounds.jsonl").exists()


@pytest.mark.distributed
def test_multi_process_scoring_example(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    import socket

    from transformers import AutoModel

    AutoModel.from_config(tiny_bert_config).save_pretrained(tmp_path / "model")
    demo_tokenizer.save_pretrained(tmp_path / "model")
    demo_data["train"].to_csv(tmp_path / "pool.csv")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
         str(ROOT / "examples" / "score_pool_multi_gpu.py"), "--data", str(tmp_path / "pool.csv"),
         "--model", str(tmp_path / "model"), "--num-labels", "5", "--k", "7", "--work-dir", str(tmp_path / "work")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es) scored 300 rows" in proc.stdout
