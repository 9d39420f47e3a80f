"""The outside campaign's bad inputs (issue 14), one row each: every one ends in a named
error (one line ``energizer-hf: error: <Name>: ...`` and its documented exit status) or in
a documented repair/coercion, and none leaves a configuration locked in ``run.json``.

The table runs the real command line in-process (``energizer_hf.cli.main``) on small CSV
files and a tiny local model; cases about a run directory copy one finished run.
"""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from energizer_hf.cli import main

TOKEN = "hf_abcdefghijklmnopqrstuvwxyz012345"


@dataclass
class Ctx:
    """What the cases build on."""

    tmp: Path
    train: Path
    test: Path
    model: Path
    finished: Path  # a finished run of `base` (copied, never changed)
    base: dict

    def config(self, **over) -> dict:
        return {**self.base, "run_dir": str(self.tmp / "run"), **over}

    def yaml_args(self, **over) -> list[str]:
        path = self.tmp / "c.yaml"
        path.write_text(yaml.safe_dump(self.config(**over)))
        return ["run", str(path)]

    def copy_finished(self) -> Path:
        run = self.tmp / "run"
        shutil.copytree(self.finished, run)
        return run

    def csv(self, name: str, frame) -> str:
        path = self.tmp / name
        frame.to_csv(path, index=False)
        return str(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory, demo_data, demo_tokenizer, tiny_bert_config):
    from transformers import AutoModel

    root = tmp_path_factory.mktemp("world")
    train, test = root / "train.csv", root / "test.csv"
    demo_data["train"].to_pandas().to_csv(train, index=False)
    demo_data["test"].to_pandas().to_csv(test, index=False)
    model = root / "model"
    AutoModel.from_config(tiny_bert_config).save_pretrained(model)
    demo_tokenizer.save_pretrained(model)
    base = {
        "data_files": {"train": str(train), "test": str(test)},
        "model": str(model),
        "strategy": "entropy",
        "query_size": 10,
        "initial_size": 10,
        "max_rounds": 1,
        "max_epochs": 1,
        "min_steps": 0,
        "max_length": 32,
        "progress": False,
        "seed": 0,
    }
    finished = root / "finished"
    cfg = root / "finished.yaml"
    cfg.write_text(yaml.safe_dump({**base, "run_dir": str(finished)}))
    assert main(["run", str(cfg)]) == 0
    return {"train": train, "test": test, "model": model, "finished": finished, "base": base}


def _frames(ctx: Ctx):
    import pandas as pd

    return pd.read_csv(ctx.train), pd.read_csv(ctx.test)


# ---------------------------------------------------------------------- the cases
# each returns the command line; (name, status, fragment) below say what must come out


def nan_float_labels(ctx: Ctx) -> list[str]:
    train, _ = _frames(ctx)
    train["label"] = train["label"].astype(float)
    train.loc[7, "label"] = np.nan
    return ctx.yaml_args(data_files={"train": ctx.csv("t.csv", train), "test": str(ctx.test)})


def class_not_in_pool(ctx: Ctx) -> list[str]:
    train, _ = _frames(ctx)
    top = int(train["label"].max())
    train = train[train["label"] != top]
    return ctx.yaml_args(data_files={"train": ctx.csv("t.csv", train), "test": str(ctx.test)})


def label_state_deleted(ctx: Ctx) -> list[str]:
    run = ctx.copy_finished()
    (run / "pool" / "label_state.npy").unlink()
    return ctx.yaml_args()


def label_state_truncated(ctx: Ctx) -> list[str]:
    run = ctx.copy_finished()
    path = run / "pool" / "label_state.npy"
    path.write_bytes(path.read_bytes()[:200])
    return ctx.yaml_args()


def label_state_pickled(ctx: Ctx) -> list[str]:
    run = ctx.copy_finished()
    (run / "pool" / "label_state.npy").write_bytes(pickle.dumps({"round": [0, 1]}))
    return ctx.yaml_args()


def records_garbled(ctx: Ctx) -> list[str]:
    run = ctx.copy_finished()
    lines = (run / "rounds.jsonl").read_text().splitlines(keepends=True)
    lines[0] = '{"round": 0, "num_lab\n'
    (run / "rounds.jsonl").write_text("".join(lines))
    return ctx.yaml_args()


def records_torn_tail(ctx: Ctx) -> list[str]:
    run = ctx.copy_finished()
    text = (run / "rounds.jsonl").read_text()
    (run / "rounds.jsonl").write_text(text[: len(text) - 40])  # the last record cut in half
    return ctx.yaml_args()


def leftover_temporaries(ctx: Ctx) -> list[str]:
    run = ctx.copy_finished()
    (run / "pool" / ".label_state.npy.x1y2.tmp").write_bytes(b"partial")
    (run / "revisions" / ".round-001.abc").mkdir()
    (run / "cache" / "tmpq7w8e9").write_bytes(b"partial")
    (run / ".final_model.k3j4").mkdir()
    (run / ".final_model.k3j4" / "model.safetensors").write_bytes(b"\0" * 1024)
    return ctx.yaml_args()


def model_without_tokenizer(ctx: Ctx) -> list[str]:
    model = ctx.tmp / "model"
    shutil.copytree(ctx.model, model)
    for p in model.iterdir():
        if p.name != "config.json" and not p.name.endswith(".safetensors"):
            p.unlink()
    return ctx.yaml_args(model=str(model))


def model_type_without_head(ctx: Ctx) -> list[str]:
    import json

    model = ctx.tmp / "model"
    shutil.copytree(ctx.model, model)
    config = json.loads((model / "config.json").read_text())
    config["model_type"], config["architectures"] = "vit", ["ViTModel"]
    (model / "config.json").write_text(json.dumps(config))
    return ctx.yaml_args(model=str(model))


def vocab_larger_than_embeddings(ctx: Ctx) -> list[str]:
    from transformers import AutoModel, AutoTokenizer

    from energizer_hf.demo import build_tiny_bert

    model = ctx.tmp / "model"
    AutoModel.from_config(build_tiny_bert(50, hidden=16, layers=1)).save_pretrained(model)
    AutoTokenizer.from_pretrained(ctx.model).save_pretrained(model)
    return ctx.yaml_args(model=str(model))


def empty_text_cells(ctx: Ctx) -> list[str]:
    train, _ = _frames(ctx)
    train.loc[[3, 11], "text"] = ""
    return ctx.yaml_args(data_files={"train": ctx.csv("t.csv", train), "test": str(ctx.test)})


def non_utf8_csv(ctx: Ctx) -> list[str]:
    path = ctx.tmp / "latin.csv"
    path.write_bytes(ctx.train.read_bytes() + "un café noir,1\n".encode("latin-1"))
    return ctx.yaml_args(data_files={"train": str(path), "test": str(ctx.test)})


def yaml_syntax_error(ctx: Ctx) -> list[str]:
    path = ctx.tmp / "c.yaml"
    path.write_text("max_rounds: [1, 2\nseed: 0\n")
    return ["run", str(path)]


def yaml_tab_indentation(ctx: Ctx) -> list[str]:
    path = ctx.tmp / "c.yaml"
    path.write_text("strategy_args:\n\tbase: badge\n")
    return ["run", str(path)]


def word_where_a_number_belongs(ctx: Ctx) -> list[str]:
    return ctx.yaml_args(max_rounds="three")


def number_where_a_mapping_belongs(ctx: Ctx) -> list[str]:
    return ctx.yaml_args(data_files=5)


def bad_integer_flag(ctx: Ctx) -> list[str]:
    return [*ctx.yaml_args(), "--query-size", "ten"]


def missing_config_file(ctx: Ctx) -> list[str]:
    return ["run", str(ctx.tmp / "nothere.yaml")]


def missing_data_file(ctx: Ctx) -> list[str]:
    return ctx.yaml_args(data_files={"train": str(ctx.tmp / "nothere.csv")})


def missing_model_path(ctx: Ctx) -> list[str]:
    return ctx.yaml_args(model=str(ctx.tmp / "no" / "model"))


def run_dir_is_a_file(ctx: Ctx) -> list[str]:
    (ctx.tmp / "afile").write_text("x")
    return ctx.yaml_args(run_dir=str(ctx.tmp / "afile"))


def gpu_on_a_cpu_machine(ctx: Ctx) -> list[str]:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    return ctx.yaml_args(accelerator="gpu")


def precision_typo(ctx: Ctx) -> list[str]:
    return ctx.yaml_args(precision="bf16x")


def unknown_strategy_args(ctx: Ctx) -> list[str]:
    return ctx.yaml_args(strategy="random_subset", strategy_args={"base": "margin", "subpool_sise": 50})


def unknown_strategy(ctx: Ctx) -> list[str]:
    return ctx.yaml_args(strategy="entropi")


def unknown_field(ctx: Ctx) -> list[str]:
    return ctx.yaml_args(querysize=3)


def token_in_hub_repo_id(ctx: Ctx) -> list[str]:
    return ctx.yaml_args(hub_repo_id=TOKEN)


def token_in_dataset_url(ctx: Ctx) -> list[str]:
    config = ctx.config(dataset=f"https://user:{TOKEN}@example.invalid/data/train.csv")
    config.pop("data_files")
    path = ctx.tmp / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["run", str(path)]


def dataset_changed_under_a_run(ctx: Ctx) -> list[str]:
    ctx.copy_finished()
    train, _ = _frames(ctx)
    train.loc[250, "text"] = train.loc[250, "text"] + " edited"  # one text, deep in the pool
    return ctx.yaml_args(data_files={"train": ctx.csv("t.csv", train), "test": str(ctx.test)})


def experiment_changed_under_a_run(ctx: Ctx) -> list[str]:
    ctx.copy_finished()
    return ctx.yaml_args(learning_rate=3e-4)


def negative_test_labels(ctx: Ctx) -> list[str]:
    _, test = _frames(ctx)
    test["label"] = -1  # a GLUE-style test split
    return ctx.yaml_args(data_files={"train": str(ctx.train), "test": ctx.csv("t.csv", test)})


REPAIRED = "repaired"  # the run completes (status 0) and `check` finds nothing wrong

CASES: list[tuple[Callable[[Ctx], list[str]], str, int, str]] = [
    # silent acceptance before
    (nan_float_labels, "MissingValuesError", 3, "'label': 1 row"),
    (class_not_in_pool, "ClassNotInPoolError", 3, "that the pool never has"),
    (label_state_deleted, "RunStateMismatchError", 4, "is missing"),
    (records_torn_tail, REPAIRED, 0, ""),
    (model_without_tokenizer, "MissingTokenizerError", 3, "no tokenizer files"),
    (token_in_hub_repo_id, "InvalidRepoIdError", 2, "needs a namespace"),
    (token_in_dataset_url, "PathNotFoundError", 2, "does not exist"),
    (dataset_changed_under_a_run, "DatasetMismatchError", 4, "an edited label or text changes it"),
    # raw tracebacks before
    (yaml_syntax_error, "ConfigFileError", 2, "not valid YAML on line"),
    (yaml_tab_indentation, "ConfigFileError", 2, "indented with a tab on line 2"),
    (word_where_a_number_belongs, "ConfigError", 2, "max_rounds: got 'three'"),
    (number_where_a_mapping_belongs, "ConfigError", 2, "data_files: got 5"),
    (bad_integer_flag, "ConfigError", 2, "--query-size: got 'ten'"),
    (missing_config_file, "ConfigFileError", 2, "does not exist"),
    (missing_data_file, "PathNotFoundError", 2, "nothere.csv"),
    (missing_model_path, "PathNotFoundError", 2, "model directory"),
    (run_dir_is_a_file, "RunDirError", 4, "is a file"),
    (gpu_on_a_cpu_machine, "AcceleratorUnavailableError", 2, "no GPU"),
    (precision_typo, "ConfigError", 2, "not a Lightning precision"),
    (label_state_truncated, "CorruptLabelStateError", 4, "truncated"),
    (label_state_pickled, "CorruptLabelStateError", 4, "not a readable .npy"),
    (records_garbled, "CorruptRecordsError", 4, "Line 1"),
    (model_type_without_head, "UnsupportedModelError", 3, "'vit'"),
    (vocab_larger_than_embeddings, "VocabularyMismatchError", 3, "embedding matrix has 50 rows"),
    (empty_text_cells, "MissingValuesError", 3, "'text': 2 rows"),
    (non_utf8_csv, "DataEncodingError", 3, "byte 0xe9"),
    (unknown_strategy_args, "ConfigError", 2, "did you mean 'subpool_size'"),
    (leftover_temporaries, REPAIRED, 0, ""),
    # more of the same families
    (unknown_strategy, "UnknownStrategyError", 2, "energizer-hf strategies"),
    (unknown_field, "ConfigError", 2, "did you mean 'query_size'"),
    (experiment_changed_under_a_run, "ConfigMismatchError", 4, "learning_rate"),
    (negative_test_labels, "UnlabelledSplitError", 3, "GLUE-style"),
]


@pytest.mark.parametrize(("make", "name", "status", "fragment"), CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_input_gets_a_named_error_or_a_repair(make, name, status, fragment, world, tmp_path, capsys):
    ctx = Ctx(tmp=tmp_path, **world)
    argv = make(ctx)
    capsys.readouterr()
    got = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert TOKEN not in err + captured.out
    if name == REPAIRED:
        assert got == 0, err[-2000:]
        from energizer_hf.integrity import RunFiles, check_run_files

        report = check_run_files(RunFiles.of(tmp_path / "run"))
        assert report.ok and report.complete and not report.problems, str(report)
        assert len((tmp_path / "run" / "rounds.jsonl").read_text().splitlines()) == 2
        left = [p for p in (tmp_path / "run").rglob("*") if ".tmp" in p.name or p.name.startswith(
            (".final_model.", ".round-")) or (p.parent.name == "cache" and p.name.startswith("tmp"))]
        assert not left, left
        return
    lines = [ln for ln in err.splitlines() if ln.startswith("energizer-hf: error:")]
    assert len(lines) == 1 and err.rstrip().endswith(lines[0]), err[-3000:]
    assert lines[0].startswith(f"energizer-hf: error: {name}: "), lines[0]
    assert fragment in lines[0], lines[0]
    assert got == status, (got, lines[0])
    run_json = tmp_path / "run" / "run.json"
    if run_json.exists() and "provisional" in run_json.read_text():
        pytest.fail("a failed start left a provisional run.json that was not expected")


def test_every_case_named():
    """The closing note's count: every bad input of the table is named or repaired."""
    named = [c for c in CASES if c[1] != REPAIRED]
    assert len(CASES) >= 32 and len(named) >= 30


# ---------------------------------------------------------------------- values coerced, not refused
def test_yaml_strings_are_coerced_to_what_the_field_means(tmp_path):
    from energizer_hf.learner import RunConfig

    path = tmp_path / "c.yaml"
    path.write_text('reset_weights: "no"\nlearning_rate: 1e-3\nmax_rounds: "3"\ndata_files: train.csv\n')
    config = RunConfig.from_yaml(path)
    assert config.reset_weights is False  # a quoted "no" was true before
    assert config.learning_rate == 0.001 and isinstance(config.learning_rate, float)
    assert config.max_rounds == 3
    assert config.data_files == {"train": "train.csv"}


def test_active_pool_state_dir_that_is_a_file(tmp_path):
    import datasets

    from energizer_hf.errors import RunDirError
    from energizer_hf.pool import ActivePool

    (tmp_path / "f").write_text("x")
    with pytest.raises(RunDirError, match="is a file"):
        ActivePool(datasets.Dataset.from_dict({"text": ["a", "b"]}), state_dir=tmp_path / "f")


def test_on_missing_drop_says_how_many(world, tmp_path, caplog):
    import pandas as pd

    from energizer_hf.learner import ActiveLearner, RunConfig

    train = pd.read_csv(world["train"])
    train.loc[[5, 9], "text"] = None
    path = tmp_path / "t.csv"
    train.to_csv(path, index=False)
    config = RunConfig.from_dict({**world["base"], "data_files": {"train": str(path), "test": str(world["test"])},
                                  "run_dir": str(tmp_path / "run"), "on_missing": "drop"})
    with caplog.at_level("WARNING"):
        learner = ActiveLearner(config)
        learner.setup()
    assert len(learner.pool) == len(train) - 2
    assert "Dropped 2 row(s)" in caplog.text


def test_label_studio_error_body_is_scrubbed():
    pytest.importorskip("label_studio_sdk")
    from energizer_hf.oracles.label_studio.client import LabelStudioClient

    key = "ls-0123456789abcdef0123456789"

    class Echo(Exception):
        status_code = 400
        body = {"detail": f"bad request; headers: Authorization: Token {key}"}

    client = LabelStudioClient("http://localhost:1", key)
    err = client.map_error(Echo(), "import tasks")
    assert err is not None and key not in str(err) and "answered 400" in str(err)
