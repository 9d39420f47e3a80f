"""Cards that follow the Hub's conventions (issue 15): what the metrics were measured on,
base model, license, language, the data's own description, dataset_info, per-class tables,
a card in final_model/ — parsed with huggingface_hub's card classes."""

import json
from pathlib import Path

import datasets
import pytest
from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData

from energizer_hf.learner import ActiveLearner
from energizer_hf.revisions.cards import with_configs
from energizer_hf.revisions.sources import card_info, hub_model_id
from tests.conftest import learner_kwargs


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory, demo_data, demo_tokenizer, tiny_bert_config):
    tmp = tmp_path_factory.mktemp("csvrun")
    files = {}
    for split in ("train", "test"):
        names = demo_data[split].features["label"].names
        ds = demo_data[split].map(lambda r, names=names: {"label": names[r["label"]]}, features=datasets.Features(
            {"text": datasets.Value("string"), "label": datasets.Value("string")}))
        files[split] = str(tmp / f"{split}.csv")
        ds.to_csv(files[split], index=False)
    learner = ActiveLearner(
        data_files=files, model=tiny_bert_config, tokenizer=demo_tokenizer, strategy="margin",
        card_license="apache-2.0", card_language=["en"], **learner_kwargs(tmp, rounds=1),
    )
    return learner, Path(learner.config.run_dir), list(learner.run())


def test_round_card_of_a_csv_run(csv_run):
    learner, run_dir, records = csv_run
    card = DatasetCard.load(run_dir / "revisions" / "round-001" / "README.md")
    assert isinstance(card.data, DatasetCardData)
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0" and data["language"] == ["en"]
    assert data["task_categories"] == ["text-classification"]
    assert data["task_ids"] == ["multi-class-classification"]
    assert "source_datasets" not in data  # local files: no Hub dataset to name
    info = data["dataset_info"]
    assert info["splits"][0]["num_examples"] == records[1]["num_labelled"]
    label = next(f for f in info["features"] if f["name"] == "label")
    assert label["dtype"]["class_label"]["names"] == {str(i): n for i, n in enumerate(learner.label_names)}
    # the data is described by its files, not as an in-memory dataset
    assert "local CSV files: train.csv (train), test.csv (test)" in card.text
    assert "in-memory dataset" not in card.text
    # per-class metrics in one compact table, not as columns of the learning curve
    curve_header = next(line for line in card.text.splitlines() if line.startswith("| Round | Labelled | test/"))
    assert "test/f1/" not in curve_header and "f1_class" not in curve_header
    assert "## Per-class test metrics" in card.text
    for name in learner.label_names:
        assert f"| {name} | {records[1][f'test/f1/{name}']:.4f} |" in card.text


def test_final_model_gets_a_card_that_names_the_evaluation_split(csv_run):
    learner, run_dir, records = csv_run
    path = run_dir / "final_model" / "README.md"
    card = ModelCard.load(path)
    assert isinstance(card.data, ModelCardData)
    assert card.data.license == "apache-2.0" and card.data.pipeline_tag == "text-classification"
    (result, *_) = card.data.eval_results
    assert isinstance(result, EvalResult)
    assert (result.dataset_type, result.dataset_name, result.dataset_split) == ("csv", "test.csv", "test")
    assert result.metric_value == pytest.approx(round(records[-1]["test/accuracy"], 6))
    assert card.data.base_model is None  # built from a config: no pretrained model to name
    assert str(run_dir / "final_model") in card.text  # the usage snippet loads this folder
    # the folder works as a pipeline with the names of the classes
    from transformers import pipeline

    clf = pipeline("text-classification", model=str(run_dir / "final_model"), tokenizer=learner.tokenizer)
    assert clf("the striker scored a goal")[0]["label"] in learner.label_names


def test_hub_commit_cards_get_the_hub_layout_configs(csv_run):
    _, run_dir, _ = csv_run
    local = (run_dir / "revisions" / "round-000" / "README.md").read_text()
    pushed = DatasetCard(with_configs(local, [{"config_name": "default", "data_files": "data/train-*"}]))
    assert pushed.data.configs == [{"config_name": "default", "data_files": "data/train-*"}]
    assert DatasetCard(with_configs(str(pushed), None)).data.to_dict().get("configs") is None


def test_license_comes_from_the_dataset_when_it_declares_one(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    info = lambda ds: datasets.DatasetInfo(license="cc-by-4.0", dataset_name="licensed", features=ds.features)  # noqa: E731
    data = datasets.DatasetDict({
        k: datasets.Dataset.from_dict(ds.to_dict(), features=ds.features, info=info(ds)) for k, ds in demo_data.items()
    })
    learner = ActiveLearner(dataset=data, model=tiny_bert_config, tokenizer=demo_tokenizer,
                            **learner_kwargs(tmp_path, rounds=0))
    learner.run()
    run_dir = Path(learner.config.run_dir)
    card = DatasetCard.load(run_dir / "revisions" / "round-000" / "README.md")
    assert card.data.license == "cc-by-4.0" and "not known" not in card.text
    model = ModelCard.load(run_dir / "final_model" / "README.md")
    assert model.data.license == "cc-by-4.0"
    assert model.data.eval_results[0].dataset_name == "licensed"
    saved = json.loads((run_dir / "run.json").read_text())["info"]["card"]
    assert saved["license"] == "cc-by-4.0" and saved["source"] == "licensed"


def test_card_info_names_hub_data_and_base_models(tmp_path):
    info = card_info(dataset="glue", dataset_config="sst2", test_split="validation", model="bert-base-uncased")
    assert info["eval"] == {"type": "glue", "name": "glue", "config": "sst2", "split": "validation"}
    assert info["source_datasets"] == ["extended|glue"] and info["base_model"] == "bert-base-uncased"
    assert "license_note" in info and info["license"] == "other"
    # no test split: nothing to name
    assert "eval" not in card_info(dataset="glue", test_split="test", has_test=False)
    # a local model directory names the Hub model it was saved from, when its config says so
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"_name_or_path": "prajjwal1/bert-tiny"}))
    assert hub_model_id(str(model_dir)) == "prajjwal1/bert-tiny"
    (model_dir / "config.json").write_text(json.dumps({"_name_or_path": str(tmp_path / "elsewhere")}))
    assert hub_model_id(str(model_dir)) is None
