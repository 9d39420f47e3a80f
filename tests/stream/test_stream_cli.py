"""``energizer-hf stream config.yaml``: a stream run from YAML, its rounds pushed to the local
Hub-compatible server (``tests/hubsim``), and bad input as one line with exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def assets(tmp_path_factory, demo_data, demo_tokenizer, tiny_bert_config):
    from transformers import BertModel

    tmp = tmp_path_factory.mktemp("stream-cli")
    demo_data.save_to_disk(str(tmp / "data"))
    BertModel(tiny_bert_config).save_pretrained(str(tmp / "model"))
    demo_tokenizer.save_pretrained(str(tmp / "model"))
    config = {
        "dataset": str(tmp / "data"), "model": str(tmp / "model"), "budget_rate": 0.2, "window": 50,
        "retrain_every": 15, "retrain_lag": 32, "stream_batch_size": 32, "max_items": 160, "max_epochs": 1,
        "min_steps": 0, "learning_rate": 1e-3, "max_length": 32, "progress": False, "seed": 0,
    }
    (tmp / "stream.yaml").write_text(yaml.safe_dump(config))
    return tmp


def cli(tmp_path, *args, env_extra=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT))
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "energizer_hf", "stream", *map(str, args)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)


@pytest.mark.integration
def test_stream_command_runs_a_yaml_config_and_pushes_its_rounds(assets, tmp_path):
    from tests.hubsim.server import HubServer
    from tests.test_revisions import _SCRUBBED_ENV, SECRET, _git

    with HubServer(tmp_path / "hubdata", token=SECRET) as hub:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        env.update(hub.client_env(hf_home=tmp_path / "hf_home"))
        env.update({"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)})
        proc = subprocess.run(
            [sys.executable, "-m", "energizer_hf", "stream", str(assets / "stream.yaml"), "--run-dir",
             str(tmp_path / "run"), "--hub-repo-id", "tester/stream-run", "--strategy", "split"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        assert "| round | labels |" in proc.stdout and "160 items seen" in proc.stdout
        records = [json.loads(line) for line in (tmp_path / "run" / "rounds.jsonl").read_text().splitlines()]
        tags = [f"round-{r['round']:03d}" for r in records]
        assert len(tags) >= 2
        assert _git(hub, "tester/stream-run", "tag", "--list").split() == tags
        run = json.loads((tmp_path / "run" / "run.json").read_text())
        assert run["config"]["strategy"] == "split" and run["config"]["settings"]["mode"] == "stream"


def test_bad_budget_rate_is_one_line_with_exit_status_2(assets, tmp_path):
    proc = cli(tmp_path, assets / "stream.yaml", "--budget-rate", "1.5", "--run-dir", tmp_path / "run")
    assert proc.returncode == 2
    assert "BudgetRateError" in proc.stderr and "(0, 1]" in proc.stderr
    assert "Traceback" not in proc.stderr
