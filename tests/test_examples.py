import os
import re
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


def _offline_env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1",
                HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


@pytest.fixture
def tiny_local_setup(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    """A tiny BERT + tokenizer saved to a directory and the demo data as train/test CSVs."""
    from transformers import AutoModel

    AutoModel.from_config(tiny_bert_config).save_pretrained(tmp_path / "model")
    demo_tokenizer.save_pretrained(tmp_path / "model")
    demo_data["train"].select(range(200)).to_csv(tmp_path / "train.csv", index=False)
    demo_data["test"].select(range(60)).to_csv(tmp_path / "test.csv", index=False)
    return tmp_path


def _curve_rows(stdout: str) -> list[str]:
    return [ln for ln in stdout.splitlines() if ln.startswith("| ") and ln[2].isdigit()]


def test_hf_native_example_runs_offline(tiny_local_setup):
    import json

    tmp = tiny_local_setup
    run_dir = tmp / "run"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "hf_native.py"),
         "--data-files", str(tmp / "train.csv"), str(tmp / "test.csv"), "--model", str(tmp / "model"),
         "--strategy", "entropy", "--rounds", "2", "--query-size", "10", "--initial", "10",
         "--epochs", "1", "--learning-rate", "1e-3", "--max-length", "32", "--run-dir", str(run_dir)],
        cwd=tmp, env=_offline_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _curve_rows(proc.stdout)
    assert [r.split("|")[1].strip() for r in rows] == ["0", "1", "2"]
    assert [r.split("|")[2].strip() for r in rows] == ["10", "20", "30"]
    assert "Area under the learning curve" in proc.stdout
    assert str(run_dir / "rounds.jsonl") in proc.stdout
    records = [json.loads(ln) for ln in (run_dir / "rounds.jsonl").read_text().splitlines() if ln.strip()]
    assert [r["round"] for r in records] == [0, 1, 2]
    assert all(0.0 <= r["test/accuracy"] <= 1.0 for r in records)


def test_config_yaml_example_runs_through_cli(tiny_local_setup):
    """examples/config.yaml through `python -m energizer_hf run`, reduced with CLI overrides."""
    import json

    import yaml

    tmp = tiny_local_setup
    config = ROOT / "examples" / "config.yaml"
    fields = yaml.safe_load(config.read_text())
    assert fields["strategy"] == "margin" and fields["initial_strategy"] == "stratified"
    run_dir = tmp / "cli-run"
    data_files = f"{{train: {tmp / 'train.csv'}, test: {tmp / 'test.csv'}}}"
    proc = subprocess.run(
        [sys.executable, "-m", "energizer_hf", "run", str(config),
         "--data-files", data_files, "--model", str(tmp / "model"), "--rounds", "2",
         "--query-size", "10", "--initial-size", "10", "--max-epochs", "1", "--learning-rate", "1e-3",
         "--max-length", "32", "--run-dir", str(run_dir), "--progress", "false"],
        cwd=tmp, env=_offline_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(_curve_rows(proc.stdout)) == 3
    assert f"Rounds recorded in {run_dir / 'rounds.jsonl'}" in proc.stdout
    records = [json.loads(ln) for ln in (run_dir / "rounds.jsonl").read_text().splitlines() if ln.strip()]
    assert [r["round"] for r in records] == [0, 1, 2]
    assert [r["num_labelled"] for r in records] == [10, 20, 30]
    assert (run_dir / "pool" / "label_state.npy").exists()
    assert sorted(p.name for p in (run_dir / "revisions").iterdir() if p.is_dir()) == ["round-000", "round-001", "round-002"]
    run = json.loads((run_dir / "run.json").read_text())["config"]["run"]
    # the YAML's fields, with the command line's overrides on top
    assert run["strategy"] == "margin" and run["initial_strategy"] == "stratified"
    assert run["learning_rate"] == 1e-3 and run["max_length"] == 32
    assert "batch_size" not in run  # how a run runs (may change on resume) is not its identity
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["batch_size"] == fields["batch_size"]
    assert run["model"] == str(tmp / "model")


def test_anchoral_yaml_example_runs_through_cli(tiny_local_setup):
    """examples/huge_pool_anchoral.yaml through the CLI, with a local encoder and reduced sizes."""
    import json

    import yaml

    tmp = tiny_local_setup
    config = ROOT / "examples" / "huge_pool_anchoral.yaml"
    fields = yaml.safe_load(config.read_text())
    assert fields["strategy"] == "anchoral" and fields["strategy_args"]["subpool_size"] == 1000
    run_dir = tmp / "anchoral-run"
    data_files = f"{{train: {tmp / 'train.csv'}, test: {tmp / 'test.csv'}}}"
    strategy_args = (f"{{base: entropy, encoder: {tmp / 'model'}, cache_dir: {tmp / 'ann-cache'}, "
                     "num_anchors: 3, num_neighbours: 20, subpool_size: 40}")
    proc = subprocess.run(
        [sys.executable, "-m", "energizer_hf", "run", str(config),
         "--data-files", data_files, "--model", str(tmp / "model"), "--strategy-args", strategy_args,
         "--minority-class", "0", "--rounds", "2", "--query-size", "10", "--initial-size", "10",
         "--max-epochs", "1", "--max-length", "32", "--run-dir", str(run_dir), "--progress", "false"],
        cwd=tmp, env=_offline_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(ln) for ln in (run_dir / "rounds.jsonl").read_text().splitlines() if ln.strip()]
    assert [r["num_labelled"] for r in records] == [10, 20, 30]
    assert records[0]["query_info"]["subpool"]["method"] == "AnchorAL"
    assert records[0]["query_info"]["subpool"]["size"] == 40
    assert "test/minority_f1" in records[0] and "queried_minority_share" in records[0]
    stores = list((tmp / "ann-cache").iterdir())
    assert len(stores) == 1 and (stores[0] / "embeddings.npy").exists() and (stores[0] / "index-flat.faiss").exists()


AG_NEWS_NAMES = ["World", "Sports", "Business", "Sci/Tech"]


@pytest.mark.integration
def test_config_yaml_dataset_loads_from_a_hub_repo(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    """The config's `dataset`, `text_column` and `label_column`, with no data override.

    A Hub-compatible server (tests/hubsim) holds a dataset repo under the config's name laid
    out as the Hub holds `fancyzhx/ag_news` (Parquet under data/, a `text` string column and
    a `label` ClassLabel with the four AG News names; the rows are the demo data's). The real
    `datasets` client loads it by name, as it would from the Hub; a script dataset or a
    missing column fails here.
    """
    import json

    import datasets
    import yaml
    from transformers import AutoModel

    from tests.hubsim.server import SCRUBBED_ENV, HubServer

    fields = yaml.safe_load((ROOT / "examples" / "config.yaml").read_text())
    repo = fields["dataset"]
    features = datasets.Features(
        {fields["text_column"]: datasets.Value("string"), fields["label_column"]: datasets.ClassLabel(names=AG_NEWS_NAMES)}
    )
    folder = tmp_path / "repo"
    (folder / "data").mkdir(parents=True)
    for split, n in (("train", 200), ("test", 60)):
        part = demo_data[split].filter(lambda y: y < 4, input_columns="label").select(range(n))
        table = {fields["text_column"]: part["text"][:], fields["label_column"]: part["label"][:]}
        datasets.Dataset.from_dict(table, features=features).to_parquet(
            folder / "data" / f"{split}-00000-of-00001.parquet"
        )
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n"
        "  - split: test\n    path: data/test-*\n---\n# AG News (test copy)\n"
    )
    AutoModel.from_config(tiny_bert_config).save_pretrained(tmp_path / "model")
    demo_tokenizer.save_pretrained(tmp_path / "model")
    with HubServer(tmp_path / "hub") as hub:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        env.update(hub.client_env(hf_home=tmp_path / "hf_home"))
        env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), TOKENIZERS_PARALLELISM="false")
        upload = (
            "import sys\nfrom huggingface_hub import HfApi\napi = HfApi()\n"
            "api.create_repo(sys.argv[1], repo_type='dataset')\n"
            "api.upload_folder(repo_id=sys.argv[1], folder_path=sys.argv[2], repo_type='dataset')\n"
        )
        proc = subprocess.run([sys.executable, "-c", upload, repo, str(folder)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        run_dir = tmp_path / "cli-run"
        proc = subprocess.run(
            [sys.executable, "-m", "energizer_hf", "run", str(ROOT / "examples" / "config.yaml"),
             "--model", str(tmp_path / "model"), "--rounds", "1", "--query-size", "10",
             "--initial-size", "10", "--max-epochs", "1", "--max-length", "32",
             "--run-dir", str(run_dir), "--progress", "false"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(ln) for ln in (run_dir / "rounds.jsonl").read_text().splitlines() if ln.strip()]
    assert [r["num_labelled"] for r in records] == [10, 20]
    run = json.loads((run_dir / "run.json").read_text())["config"]["run"]
    assert run["dataset"] == repo and run["data_files"] is None


def _write_conll(path, split) -> None:
    names = split.features["ner_tags"].feature.names
    path.write_text("".join(
        "".join(f"{w}\t{names[t]}\n" for w, t in zip(row["tokens"], row["ner_tags"])) + "\n" for row in split
    ))


def test_ner_conll_example_runs_offline(tmp_path):
    """examples/ner_conll.py on small generated CoNLL files, a tiny local model, word budgets."""
    import json

    from transformers import AutoModel

    from energizer_hf.demo import build_tiny_bert, make_ner_dataset, train_wordpiece_tokenizer

    data = make_ner_dataset(num_train=150, num_test=40, seed=0)
    _write_conll(tmp_path / "train.conll", data["train"])
    _write_conll(tmp_path / "test.conll", data["test"])
    tokenizer = train_wordpiece_tokenizer([" ".join(t) for t in data["train"]["tokens"][:]], vocab_size=200)
    AutoModel.from_config(build_tiny_bert(len(tokenizer), hidden=16, layers=1)).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ner_conll.py"), str(tmp_path / "train.conll"),
         str(tmp_path / "test.conll"), "--model", str(tmp_path / "model"), "--strategy", "mnlp",
         "--budget-unit", "tokens", "--initial", "60", "--query-size", "60", "--rounds", "2", "--epochs", "1",
         "--learning-rate", "1e-3", "--max-length", "32", "--run-dir", str(run_dir)],
        cwd=tmp_path, env=_offline_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pool 150 sentences" in proc.stdout and "entity types: LOC, ORG, PER" in proc.stdout
    rows = _curve_rows(proc.stdout)
    assert [r.split("|")[1].strip() for r in rows] == ["0", "1", "2"]
    words = [int(r.split("|")[3]) for r in rows]  # num_labelled_tokens: at most 60 more each round
    assert 0 < words[0] <= 60 and all(0 < b - a <= 60 for a, b in zip(words, words[1:])), words
    for t in ("LOC", "ORG", "PER"):
        assert re.search(rf"^ +{t}: [01]\.\d{{4}}$", proc.stdout, re.M), t
    assert str(run_dir / "rounds.jsonl") in proc.stdout
    records = [json.loads(ln) for ln in (run_dir / "rounds.jsonl").read_text().splitlines() if ln.strip()]
    assert [r["num_labelled_tokens"] for r in records] == words
    assert all(0.0 <= r["test/entity_f1"] <= 1.0 for r in records)
    # two files are needed, not one
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "ner_conll.py"), str(tmp_path / "train.conll")],
                          cwd=tmp_path, env=_offline_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "give two files" in proc.stderr
