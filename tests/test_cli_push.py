"""``energizer-hf push RUN_DIR REPO_ID``: a finished run's revisions, labelled set and model.

The CLI runs in a fresh interpreter whose environment points at the test Hub server
(``tests/hubsim``): ``HF_ENDPOINT`` is read when ``huggingface_hub`` is imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from energizer_hf.learner import ActiveLearner
from energizer_hf.run import front_matter as _front_matter
from tests.conftest import learner_kwargs
from tests.test_revisions import _SCRUBBED_ENV, SECRET, _git

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, demo_data, demo_tokenizer, tiny_bert_config):
    """A finished run (rounds 0, 1, 2): local revisions and final_model/ are kept by run()."""
    tmp = tmp_path_factory.mktemp("pushrun")
    learner = ActiveLearner(
        dataset=demo_data,
        model=tiny_bert_config,
        tokenizer=demo_tokenizer,
        strategy="entropy",
        **learner_kwargs(tmp, rounds=2),
    )
    records = list(learner.run())
    return Path(learner.config.run_dir), records


@pytest.fixture
def hub(tmp_path):
    from tests.hubsim.server import HubServer

    with HubServer(tmp_path / "hubdata", token=SECRET) as server:
        yield server


def cli(hub, tmp_path, *args, token=None, command="push"):
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(hub.client_env(hf_home=tmp_path / "hf_home"))
    if token is not None:
        env["HF_TOKEN"] = token
    env.update({"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO_ROOT)})
    return subprocess.run(
        [sys.executable, "-m", "energizer_hf", command, *map(str, args)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_push_rounds_labelled_set_and_model_then_nothing_new(hub, tmp_path, finished_run):
    run_dir, records = finished_run
    assert (run_dir / "final_model" / "config.json").is_file()
    assert sorted(p.name for p in (run_dir / "revisions").iterdir() if p.is_dir()) == [
        "round-000",
        "round-001",
        "round-002",
    ]
    proc = cli(hub, tmp_path, run_dir, "tester/cli-rounds", "--model-repo-id", "tester/cli-model")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "round-000, round-001, round-002" in proc.stdout
    assert SECRET not in proc.stdout + proc.stderr
    assert _git(hub, "tester/cli-rounds", "tag", "--list").split() == [
        "round-000",
        "round-001",
        "round-002",
    ]
    branch = r"^/api/datasets/tester/cli-rounds/commit/energizer-run$"
    main = r"^/api/datasets/tester/cli-rounds/commit/main$"
    assert hub.count_requests("POST", branch, 200) == 3
    assert hub.count_requests("POST", main, 200) == 1
    assert hub._get_repo("dataset", "tester/cli-rounds").private is True
    # the labelled set of the last round, with its card, on main
    files = _git(hub, "tester/cli-rounds", "ls-tree", "-r", "--name-only", "main").split()
    assert {"README.md", "data/train-00000-of-00001.parquet"} <= set(files)
    card = _git(hub, "tester/cli-rounds", "show", "main:README.md")
    assert _front_matter(card)["energizer_hf"]["round"] == 2
    # the final model, its tokenizer and a card linking the dataset commit
    model_git = hub.git_dir("tester/cli-model", "model")
    model_files = subprocess.run(
        ["git", f"--git-dir={model_git}", "ls-tree", "-r", "--name-only", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json"} <= set(model_files)
    model_card = subprocess.run(
        ["git", f"--git-dir={model_git}", "show", "main:README.md"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    meta = _front_matter(model_card)
    assert meta["datasets"] == ["tester/cli-rounds"]
    dataset_main = _git(hub, "tester/cli-rounds", "rev-parse", "main").strip()
    result = meta["model-index"][0]["results"][0]
    # the test split the metrics were measured on, not the pushed labelled set (linked in the body)
    assert result["dataset"] == {"type": "energizer_hf_demo", "name": "energizer_hf_demo", "split": "test"}
    assert dataset_main in model_card
    metrics = {m["type"]: m["value"] for m in result["metrics"]}
    assert metrics["accuracy"] == round(records[-1]["test/accuracy"], 6)
    assert "entropy" in model_card and "3 rounds" in model_card

    # again: every tag is there and main has this run's set: no new commit
    again = cli(hub, tmp_path, run_dir, "tester/cli-rounds")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "none (all there)" in again.stdout and dataset_main in again.stdout
    assert hub.count_requests("POST", branch, 200) == 3
    assert hub.count_requests("POST", main, 200) == 1
    assert hub.count_requests("POST", r"/tag/", 200) == 3


def test_push_public_without_model(hub, tmp_path, finished_run):
    run_dir, _ = finished_run
    proc = cli(hub, tmp_path, run_dir, "tester/cli-public", "--public", "--branch", "al-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert hub._get_repo("dataset", "tester/cli-public").private is False
    assert hub.count_requests("POST", r"^/api/datasets/tester/cli-public/commit/al-run$", 200) == 3
    assert hub.count_requests("POST", r"^/api/models/") == 0


def test_push_errors_exit_2_with_a_named_error(hub, tmp_path, finished_run, capsys):
    from energizer_hf.cli import main

    run_dir, _ = finished_run

    def push_here(*args):  # checks made before any Hub call: in this process
        code = main(["push", *map(str, args)])
        return code, capsys.readouterr().err

    # no final model in the run directory: a clear error before any Hub call
    no_model = tmp_path / "no-model-run"
    shutil.copytree(run_dir, no_model, ignore=shutil.ignore_patterns("final_model", "cache"))
    code, err = push_here(no_model, "tester/cli-x", "--model-repo-id", "tester/cli-m")
    assert code == 2 and err.startswith("energizer-hf: error: EnergizerError: ")
    assert "holds no trained model" in err and "final_model" in err
    # a malformed repo id, then not a run directory
    code, err = push_here(run_dir, "no-namespace")
    assert code == 2 and err.startswith("energizer-hf: error: InvalidRepoIdError: ")
    code, err = push_here(tmp_path, "tester/cli-x")
    assert code == 2 and "is not a run directory" in err
    # the last round without its local revision
    no_rev = tmp_path / "no-revision-run"
    shutil.copytree(run_dir, no_rev, ignore=shutil.ignore_patterns("round-002", "cache"))
    code, err = push_here(no_rev, "tester/cli-x")
    assert code == 2 and err.startswith("energizer-hf: error: RoundNotFoundError: ")
    assert "round-002" in err and "round-000, round-001" in err
    assert hub.count_requests(path_regex=r"/api/") == 0
    # a wrong token: refused without retries, and never printed
    proc = cli(hub, tmp_path, run_dir, "tester/cli-x", token="hf_WrongTokenValue0000")
    assert proc.returncode == 5, proc.stdout + proc.stderr  # EXIT_REMOTE: the Hub refused
    assert proc.stderr.startswith("energizer-hf: error: HubSyncError: ")
    assert "credentials" in proc.stderr
    assert "hf_WrongTokenValue0000" not in proc.stdout + proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    assert hub.count_requests(path_regex=r"/api/", status=401) == 1
    assert not hub.git_dir("tester/cli-x", "dataset").exists()


@pytest.mark.slow
def test_run_pushes_rounds_then_a_new_run_resumes_from_the_hub(
    hub, tmp_path, demo_data, demo_tokenizer, tiny_bert_config
):
    """``energizer-hf run --hub-repo-id`` pushes each round; ``--resume-from REPO
    --resume-revision round-001`` starts a new run dir from that revision with the same queries."""
    import json

    from transformers import BertModel

    demo_data.save_to_disk(str(tmp_path / "data"))
    BertModel(tiny_bert_config).save_pretrained(str(tmp_path / "model"))
    demo_tokenizer.save_pretrained(str(tmp_path / "model"))
    common = [
        "--dataset", tmp_path / "data", "--model", tmp_path / "model", "--rounds", "2",
        "--query-size", "10", "--initial-size", "10", "--max-epochs", "1", "--max-length", "32",
        "--learning-rate", "1e-3", "--progress", "false", "--seed", "0",
    ]
    first = cli(
        hub, tmp_path, *common, "--run-dir", tmp_path / "run-a", "--hub-repo-id", "tester/cli-run",
        command="run",
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert _git(hub, "tester/cli-run", "tag", "--list").split() == [
        "round-000",
        "round-001",
        "round-002",
    ]
    assert hub.count_requests("POST", r"^/api/datasets/tester/cli-run/commit/energizer-run$", 200) == 3
    assert (tmp_path / "run-a" / "final_model" / "model.safetensors").is_file()
    second = cli(
        hub, tmp_path, *common, "--run-dir", tmp_path / "run-b", "--resume-from", "tester/cli-run",
        "--resume-revision", "round-001", command="run",
    )
    assert second.returncode == 0, second.stdout + second.stderr

    def records(name):
        lines = (tmp_path / name / "rounds.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    a, b = records("run-a"), records("run-b")
    assert [r["round"] for r in b] == [1, 2]
    assert b[0]["queried_ids"] == a[1]["queried_ids"] and len(b[0]["queried_ids"]) == 10
    assert b[0]["num_labelled"] == a[1]["num_labelled"] == 20
    for name in ("run-a", "run-b"):
        for file in ("run.json", "config.yaml", "rounds.jsonl"):
            assert SECRET not in (tmp_path / name / file).read_text()
    # the run's rounds are all on the Hub already: push adds the labelled set and the model
    proc = cli(hub, tmp_path, tmp_path / "run-a", "tester/cli-run", "--model-repo-id", "tester/m")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "none (all there)" in proc.stdout
    assert hub.count_requests("POST", r"/commit/energizer-run$", 200) == 3
    assert hub.count_requests("POST", r"^/api/datasets/tester/cli-run/commit/main$", 200) == 1
    assert hub.count_requests("POST", r"^/api/models/tester/m/commit/main$", 200) == 1
