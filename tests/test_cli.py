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
    cap = capsys.readouterr()
    out = cap.out
    assert code == 0, cap.err[-3000:]
    assert "| round | num_labelled |" in out
    assert "| 0 | 12 | 8 |" in out.replace("  ", " ")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["query_size"] == 8 and saved["strategy"] == "margin"
    # the learning curve: its area, the final value and a plot next to the records
    import re

    auc = re.search(r"Area under the learning curve \(test/accuracy\): ([0-9.]+)\s+final: ([0-9.]+)", out)
    assert auc and 0.0 <= float(auc.group(1)) <= 1.0 and 0.0 <= float(auc.group(2)) <= 1.0, out
    plot = tmp_path / "run" / "learning_curve.png"
    assert f"Learning curve: {plot}" in out and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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


# ---------------------------------------------------------------------- quick paths (issue 15)
def test_strategy_catalog_matches_the_registry():
    """`energizer-hf strategies` reads a copy of the registry (no torch import); a new or
    changed strategy must be copied there."""
    import pprint

    from energizer_hf.query_strategies.registry import strategy_catalog
    from energizer_hf.strategy_catalog import CATALOG

    live = strategy_catalog()
    assert live == CATALOG, "update energizer_hf/strategy_catalog.py with:\n" + pprint.pformat(
        live, width=100, sort_dicts=False
    )


def test_strategies_lists_family_description_and_aliases(capsys):
    assert main(["strategies"]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_name = {ln.split()[0]: ln for ln in lines}
    assert "max_entropy" not in by_name  # an alias is not listed as a strategy
    entropy = by_name["entropy"]
    assert "uncertainty" in entropy and "Maximum entropy" in entropy and "(aliases: max_entropy)" in entropy
    assert " bayesian " in by_name["bald"] and " wrapper " in by_name["random_subset"]
    assert len(lines) == len(set(by_name))


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["run", "--help"], ["strategies"], ["run", "--query-size", "ten"], ["run", "--strategy", "nope"],
     ["check", "/nonexistent/run"]],
)
def test_quick_paths_do_not_import_torch(argv):
    code = (
        "import sys\n"
        "from energizer_hf.cli import main\n"
        f"status = main({argv!r})\n"
        "heavy = [m for m in ('torch', 'pytorch_lightning', 'transformers', 'datasets') if m in sys.modules]\n"
        "print('HEAVY', heavy, 'STATUS', status)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("HEAVY")][-1]
    assert line.startswith("HEAVY []"), (line, proc.stderr[-2000:])
    assert line.endswith("STATUS 0") or "energizer-hf: error:" in proc.stderr


def test_import_energizer_hf_is_light():
    code = "import sys, energizer_hf, energizer_hf.learner; print([m for m in ('torch', 'pytorch_lightning') if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_argument_errors_name_the_option(capsys):
    assert main(["run", "--max-rounds", "x"]) == 2
    err = capsys.readouterr().err
    assert "--max-rounds: got 'x'" in err and "<lambda>" not in err and err.count("\n") == 1
    assert main(["run", "--strategy-args", "{a: "]) == 2
    err = capsys.readouterr().err
    assert err.startswith("energizer-hf: error: ArgumentError: argument --strategy-args: not valid YAML")
    assert err.count("\n") == 1
    assert main(["run", "--max-rounds"]) == 2  # argparse's own errors: one line as well
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["run", "missing.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("energizer-hf: error: ConfigFileError: ") and "does not exist" in err


def test_debug_prints_the_traceback_then_the_line(capsys):
    assert main(["run", "missing.yaml", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("energizer-hf: error: ConfigFileError: ")


def test_progress_is_off_when_not_a_terminal():
    import io

    from energizer_hf.utils import progress_enabled

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert progress_enabled(None, io.StringIO()) is False
    assert progress_enabled(None, Tty()) is True
    assert progress_enabled(True, io.StringIO()) is True and progress_enabled(False, Tty()) is False


def test_offline_hub_is_not_retried_and_says_energizer_hf_push(tmp_path):
    from huggingface_hub.errors import OfflineModeIsEnabled

    from energizer_hf.revisions import HubRevisions
    from energizer_hf.revisions.hub_api import classify

    assert classify(OfflineModeIsEnabled("offline")) == "offline"
    assert classify(OSError("[Errno -3] Temporary failure in name resolution")) == "offline"
    assert classify(ConnectionError("Connection reset by peer")) == "retry"
    calls = []

    def offline():
        calls.append(1)
        raise OfflineModeIsEnabled("Cannot reach the Hub: offline mode is enabled.")

    store = HubRevisions("user/data", run_dir=tmp_path / "run")
    local = tmp_path / "run" / "revisions" / "round-002"
    from energizer_hf.errors import EnergizerError

    with pytest.raises(EnergizerError) as info:
        store._retrying("push round-002", offline, round=2, local=local)
    assert len(calls) == 1  # not retried as if it were a blip
    text = str(info.value)
    assert f"energizer-hf push {tmp_path / 'run'} user/data" in text and "RoundStore.sync(run_dir)" not in text
    assert "offline" in text
