"""The run as a type: RunDir names every file, RunInfo is the same from a loop or a directory."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from energizer_hf.errors import EnergizerError
from energizer_hf.learner import ActiveLearner, RunConfig
from energizer_hf.run import LEGACY_CONFIG_NAMES, RunDir, RunInfo, round_tag
from tests.conftest import learner_kwargs

ROOT = Path(__file__).resolve().parents[1]


def test_the_architecture_page_shows_the_run_directory_table_of_rundir():
    text = (ROOT / "docs" / "architecture.md").read_text()
    assert RunDir.markdown_table() in text, (
        "docs/architecture.md's run-directory table differs from RunDir: paste the output of "
        "python -c 'from energizer_hf.run import RunDir; print(RunDir.markdown_table())'"
    )


def test_no_other_module_spells_a_run_directory_file_name():
    # as quoted literals; ".lock" is also a rule of git ref names (the Hub client checks it)
    names = {path.rstrip("/") for _, path, _ in RunDir.table()} - {".lock"}
    offenders = []
    for py in (ROOT / "energizer_hf").rglob("*.py"):
        if py.name == "run.py" and py.parent.name == "energizer_hf":
            continue
        code = py.read_text()
        for name in names:
            # a file name anywhere in quotes; a bare folder name ("pool") only in a path join
            pattern = rf"[\"']{re.escape(name)}[\"']" if "." in name or "/" in name else rf"/ *[\"']{name}/?[\"']"
            if re.search(pattern, code):
                offenders.append(f"{py.relative_to(ROOT)}: {name!r}")
    assert not offenders, offenders


def test_run_dir_paths():
    files = RunDir("/tmp/some-run")
    assert files.rounds == Path("/tmp/some-run/rounds.jsonl")
    assert files.label_state == Path("/tmp/some-run/pool/label_state.npy")
    assert files.revision(12) == Path("/tmp/some-run/revisions/round-012")
    assert RunDir.containing("/tmp/some-run/revisions") == files
    assert files.lock.name == ".lock" and files.read_records() == [] and files.run_id() is None
    with pytest.raises(EnergizerError, match="not a run directory"):
        RunInfo.from_dir(files)
    with pytest.raises(EnergizerError, match="round must be >= 0"):
        round_tag(-1)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, demo_data, demo_tokenizer, tiny_bert_config):
    tmp = tmp_path_factory.mktemp("runinfo")
    learner = ActiveLearner(
        dataset=demo_data,
        model=tiny_bert_config,
        tokenizer=demo_tokenizer,
        strategy="random_subset",
        strategy_args={"base": "margin", "subpool_size": 50},
        **learner_kwargs(tmp, rounds=1),
    )
    learner.run()
    return learner


def test_run_info_from_the_loop_equals_the_one_read_back(finished):
    live = finished.run_info()
    back = RunInfo.from_dir(finished.config.run_dir)
    for name in ("files", "settings", "config", "strategy", "strategy_class", "strategy_params",
                 "label_source", "pool_fingerprint", "pool_rows", "source_dataset", "text_column",
                 "label_names", "run_id"):
        assert getattr(back, name) == getattr(live, name), name
    assert json.dumps(back.records, sort_keys=True) == json.dumps(live.records, sort_keys=True)
    assert live.settings["initial_strategy"] == "stratified" and live.config["max_length"] == 32
    assert live.strategy == "random_subset"
    assert live.strategy_params == {"base": "margin", "subpool_size": 50}
    assert live.label_source == "dataset" and live.text_column == "text"
    assert live.label_names == tuple(finished.label_names)
    assert [r["round"] for r in live.records] == [0, 1] and live.last_round == 1
    assert live.run_id and len(live.run_id) == 16
    assert [r["round"] for r in live.up_to(0).records] == [0]


def test_strategy_parameters_are_recorded_and_on_the_card(finished):
    files = RunDir(finished.config.run_dir)
    saved = json.loads(files.run_file.read_text())
    assert saved["info"]["strategy_params"] == {"base": "margin", "subpool_size": 50}
    card = files.revision_card(1).read_text()
    assert "| Strategy: subpool_size | 50 |" in card and "| Strategy: base | margin |" in card
    assert "training" not in card.split("## Run")[1].split("##")[0]  # no Lightning internals


def test_a_run_directory_with_the_old_names_resumes(finished, tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    """``run.json`` of a run made when ``stopping_criteria`` was called ``stopping``."""
    files = RunDir(finished.config.run_dir)
    saved = json.loads(files.run_file.read_text())
    run = saved["config"]["run"]
    run["stopping"] = run.pop("stopping_criteria")
    files.run_file.write_text(json.dumps(saved))
    again = ActiveLearner(
        dataset=demo_data, model=tiny_bert_config, tokenizer=demo_tokenizer, strategy="random_subset",
        strategy_args={"base": "margin", "subpool_size": 50}, **learner_kwargs(Path(finished.config.run_dir).parent, rounds=1),
    )
    assert [r["round"] for r in again.run()] == [0, 1]  # the finished run, not a mismatch


def test_one_name_per_setting_and_the_old_names_still_work(tmp_path, capsys):
    assert LEGACY_CONFIG_NAMES == {"rounds": "max_rounds", "stopping": "stopping_criteria"}
    assert RunConfig(rounds=3).max_rounds == 3 and RunConfig(rounds=None).max_rounds is None
    assert RunConfig(stopping=["budget"]).stopping_criteria == ["budget"]
    assert RunConfig().max_rounds == 5 and "rounds" not in RunConfig().to_dict()
    config = RunConfig.from_dict({"rounds": 2, "stopping": [{"name": "budget", "max_labels": 9}]})
    assert config.max_rounds == 2 and config.stopping_criteria == [{"name": "budget", "max_labels": 9}]
    with pytest.raises(EnergizerError, match="once"):
        RunConfig.from_dict({"rounds": 2, "max_rounds": 3})
    path = tmp_path / "c.yaml"
    path.write_text("rounds: 4\nquery_size: 7\n")
    assert RunConfig.from_yaml(path).max_rounds == 4
    from energizer_hf.cli import _build_parser
    from energizer_hf.config_types import coerce_fields

    for flag in ("--rounds", "--max-rounds"):
        args = _build_parser().parse_args(["run", flag, "6", "--stopping", "[budget]"])
        flags = {k: v for k, v in vars(args).items() if k not in ("command", "config", "debug")}
        flags = coerce_fields(RunConfig, flags, source="the command line")  # as `energizer-hf run` does
        assert flags == {"max_rounds": 6, "stopping_criteria": ["budget"]}
    # the seed face: max_rounds, with max_labelling_epochs as its seed-API name
    from energizer_hf import BudgetError, Trainer

    assert Trainer(max_rounds=4, enable_progress_bar=False).max_labelling_epochs == 4
    assert Trainer(max_labelling_epochs=-1, total_budget=40, enable_progress_bar=False).max_rounds is None
    with pytest.raises(BudgetError, match="not both"):
        Trainer(max_rounds=4, max_labelling_epochs=3)
