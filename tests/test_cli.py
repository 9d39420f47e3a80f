"""The command line: the offline demo, and `run` with local files and a local model."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from energizer_hf.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")


@pytest.mark.slow
def test_demo_command_prints_table_and_writes_plot(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "energizer_hf", "demo", "--out-dir", str(out), "--rounds", "2", "--no-progress"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "== entropy" in proc.stdout and "== random" in proc.stdout
    assert "| round | num_labelled | test/accuracy |" in proc.stdout
    assert "Area under the learning curve" in proc.stdout
    png = out / "learning_curves.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in proc.stdout
    assert (out / "run-entropy" / "rounds.jsonl").read_text().count("\n") == 3


@pytest.fixture(scope="module")
def local_model_dir(tmp_path_factory, demo_tokenizer, tiny_bert_config):
    from transformers import AutoModel

    path = tmp_path_factory.mktemp("model")
    AutoModel.from_config(tiny_bert_config).save_pretrained(path)  # a base model, no head
    demo_tokenizer.save_pretrained(path)
    return path


@pytest.mark.slow
def test_run_command_with_csv_files_and_a_local_model(tmp_path, demo_data, local_model_dir, capsys):
    demo_data["train"].to_csv(tmp_path / "train.csv")
    demo_data["test"].to_csv(tmp_path / "test.csv")
    config = {
        "data_files": {"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv")},
        "model": str(local_model_dir),
        "strategy": "margin",
        "query_size": 50,
        "rounds": 3,
        "max_epochs": 1,
        "min_steps": 0,
        "max_length": 32,
        "run_dir": str(tmp_path / "run"),
        "progress": False,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    # overrides on the command line win over the file
    code = main(["run", str(path), "--query-size", "8", "--rounds", "1", "--initial-size", "12"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| round | num_labelled |" in out
    assert "| 0 | 12 | 8 |" in out.replace("  ", " ")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["query_size"] == 8 and saved["strategy"] == "margin"


def test_run_command_reports_bad_input_cleanly(tmp_path, capsys):
    code = main(["run", "--dataset", str(tmp_path / "missing.txt"), "--model", "x", "--strategy", "nope"])
    err = capsys.readouterr().err
    assert code == 2
    assert "UnknownStrategyError" in err and "Known strategies" in err


def test_unknown_config_field(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("querysize: 3\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "querysize: not a known field (did you mean 'query_size'?)" in err
    assert err.startswith("energizer-hf: error: ConfigError: ") and err.count("\n") == 1


def test_strategies_command(capsys):
    assert main(["strategies"]) == 0
    names = capsys.readouterr().out.split()
    assert {"entropy", "margin", "random", "least_confidence", "ratio_of_confidence", "bald"} <= set(names)
