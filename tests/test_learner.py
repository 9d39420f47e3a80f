"""The HF-native path end to end on a tiny BERT, and its bad-input errors."""

import copy
import json
import warnings

import datasets
import numpy as np
import pytest

from energizer_hf import (
    BudgetError,
    ColumnNotFoundError,
    ConfigMismatchError,
    DatasetMismatchError,
    EmptyPoolError,
    LabelMismatchError,
    PoolExhaustedWarning,
    UnknownStrategyError,
)
from energizer_hf.learner import ActiveLearner, RunConfig, encode_labels
from tests.conftest import learner_kwargs


def _learner(tmp_path, data, tok, cfg, **kw):
    return ActiveLearner(dataset=data, model=cfg, tokenizer=tok, **learner_kwargs(tmp_path, **kw))


def test_end_to_end_records_and_files(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    learner = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, strategy="entropy")
    res = learner.run()
    assert [r["num_labelled"] for r in res] == [10, 20, 30]
    for key in ("test/accuracy", "test/f1_macro", "time_fit", "time_score", "time_query", "label_distribution"):
        assert key in res[0], key
    assert set(res[0]["label_distribution"]) <= set(demo_data["train"].features["label"].names)
    assert res[0]["time_score"] > 0
    lines = (tmp_path / "run" / "rounds.jsonl").read_text().splitlines()
    assert [json.loads(line)["round"] for line in lines] == [0, 1, 2]
    # the model got the names of the classes
    assert learner.module.model.config.id2label[0] == "sports"
    # queried ids were never labelled before and are now labelled
    q = np.array(res[0]["queried_ids"])
    assert (learner.pool.rounds[q] == 1).all()


def test_same_seed_identical_results(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    runs = []
    for i in range(2):
        res = _learner(tmp_path / str(i), demo_data, demo_tokenizer, tiny_bert_config).run()
        runs.append([(r["queried_ids"], r["test/accuracy"]) for r in res])
    assert runs[0] == runs[1]


def test_string_labels_are_mapped_with_names(tmp_path, demo_tokenizer, tiny_bert_config, demo_data):
    names = demo_data["train"].features["label"].names
    to_str = lambda ds: datasets.Dataset.from_dict({"text": ds["text"][:], "label": [names[i] for i in ds["label"][:]]})  # noqa: E731
    data = datasets.DatasetDict(train=to_str(demo_data["train"]), test=to_str(demo_data["test"]))
    learner = _learner(tmp_path, data, demo_tokenizer, tiny_bert_config, rounds=1)
    learner.run()
    assert learner.label_names == sorted(names)
    assert learner.module.model.config.label2id["cooking"] == sorted(names).index("cooking")


def test_validation_split_and_model_selection(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    learner = _learner(
        tmp_path, demo_data, demo_tokenizer, tiny_bert_config, validation_perc=0.3, initial_size=20, max_epochs=2,
        min_validation_size=5,
    )
    res = learner.run()
    assert res[0]["num_validation"] == 6 and res[0]["num_train"] == 14
    assert "best_val/f1_macro" in res[0]
    assert learner.loop.backend.last_plan.select_best


def test_too_few_validation_rows_are_trained_on(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    # 6 held-out rows < max(20, 2 x 4 classes): no selection on noise; the rows are trained on
    learner = _learner(
        tmp_path, demo_data, demo_tokenizer, tiny_bert_config, validation_perc=0.3, initial_size=20, rounds=0,
        batch_size=4,
    )
    res = learner.run()
    plan = learner.loop.backend.last_plan
    assert res[0]["num_validation"] == 6 and res[0]["num_train"] == 14  # the label state keeps the split
    assert not plan.select_best and plan.train_on_validation and plan.num_train == 20
    assert "best_val/f1_macro" not in res[0] and res[0]["steps"] == 5  # 20 rows / batch 4, 1 epoch


def test_evaluate_module_from_a_local_script(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    evaluate = pytest.importorskip("evaluate")
    script = tmp_path / "exact_match_rate" / "exact_match_rate.py"
    script.parent.mkdir()
    script.write_text(
        "import datasets\nimport evaluate\n"
        "class ExactMatchRate(evaluate.Metric):\n"
        "    def _info(self):\n"
        "        return evaluate.MetricInfo(description='share of equal ids', citation='', inputs_description='',\n"
        "            features=datasets.Features({'predictions': datasets.Value('int64'), 'references': datasets.Value('int64')}))\n"
        "    def _compute(self, predictions, references):\n"
        "        return {'rate': sum(p == r for p, r in zip(predictions, references)) / len(references)}\n"
    )
    metric = evaluate.load(str(script))
    learner = ActiveLearner(
        dataset=demo_data, model=tiny_bert_config, tokenizer=demo_tokenizer, metrics=[metric], **learner_kwargs(tmp_path, rounds=0)
    )
    res = learner.run()
    key = [k for k in res[0] if k.startswith("test/exact_match_rate")]
    assert key, res[0].keys()
    assert res[0][key[0]] == pytest.approx(res[0]["test/accuracy"], abs=1e-6)


# ---------------------------------------------------------------------- bad input
def test_empty_pool(tmp_path, demo_tokenizer, tiny_bert_config, demo_data):
    empty = datasets.DatasetDict(train=demo_data["train"].select([]), test=demo_data["test"])
    with pytest.raises(EmptyPoolError, match="no rows"):
        _learner(tmp_path, empty, demo_tokenizer, tiny_bert_config).run()


def test_empty_test_split(tmp_path, demo_tokenizer, tiny_bert_config, demo_data):
    data = datasets.DatasetDict(train=demo_data["train"], test=demo_data["test"].select([]))
    with pytest.raises(EmptyPoolError, match="test split"):
        _learner(tmp_path, data, demo_tokenizer, tiny_bert_config).run()


def test_missing_column_names_existing_ones(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    with pytest.raises(ColumnNotFoundError, match="columns are: text, label"):
        _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, text_column="sentence").run()
    with pytest.raises(ColumnNotFoundError, match="'intent'"):
        _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, label_column="intent").run()


def test_model_with_wrong_num_labels(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    from transformers import AutoModelForSequenceClassification

    cfg = copy.deepcopy(tiny_bert_config)
    cfg.num_labels = 3
    model = AutoModelForSequenceClassification.from_config(cfg)
    with pytest.raises(LabelMismatchError, match="num_labels=3 but the data has 5"):
        ActiveLearner(dataset=demo_data, model=model, tokenizer=demo_tokenizer, **learner_kwargs(tmp_path)).run()


@pytest.mark.parametrize("bad", [{"query_size": 0}, {"query_size": -1}, {"batch_size": 0}])
def test_bad_sizes(bad):
    with pytest.raises(BudgetError):
        RunConfig(**bad)


def test_budget_smaller_than_initial_set(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    with pytest.raises(BudgetError, match="smaller than the initial"):
        _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, initial_size=20, total_budget=15).run()


def test_pool_runs_out_before_the_budget(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    pool = demo_data["train"].select(range(25))
    classes = set(pool["label"][:])  # a test class the pool lacks is refused (ClassNotInPoolError)
    test = demo_data["test"].filter(lambda row: row["label"] in classes)
    small = datasets.DatasetDict(train=pool, test=test)
    with pytest.warns(PoolExhaustedWarning, match="Only 5 unlabelled rows"):
        res = _learner(tmp_path, small, demo_tokenizer, tiny_bert_config, rounds=None, total_budget=100, initial_strategy="random").run()
    assert [r["num_labelled"] for r in res] == [10, 20, 25]
    assert res.stop_reason == "pool_exhausted"


def test_unknown_strategy(tmp_path, demo_data):
    with pytest.raises(UnknownStrategyError, match="Known strategies: .*entropy"):
        ActiveLearner(dataset=demo_data, strategy="entorpy")


def test_resume_with_another_dataset_is_refused(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=0).run()
    other = datasets.DatasetDict(train=demo_data["train"].select(range(1, 300)), test=demo_data["test"])
    with pytest.raises(DatasetMismatchError, match="another dataset"):
        _learner(tmp_path, other, demo_tokenizer, tiny_bert_config, rounds=0).run()


def test_run_dir_of_another_config_is_refused(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=0).run()
    with pytest.raises(ConfigMismatchError, match="strategy"):
        _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=0, strategy="margin").run()


def test_encode_labels_rejects_unseen_test_labels():
    with pytest.raises(LabelMismatchError, match="pool never has"):  # a ClassNotInPoolError
        encode_labels(np.array(["a", "b"]), np.array(["a", "c"]))


def test_completed_run_is_returned_not_redone(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    first = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=1).run()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=1).run()
    assert again.rows == first.rows


@pytest.mark.parametrize("kind", ["save_to_disk", "jsonl", "parquet", "csv"])
def test_load_data_from_local_sources(tmp_path, demo_data, kind):
    from energizer_hf.learner import load_data

    train = demo_data["train"]
    if kind == "save_to_disk":
        demo_data.save_to_disk(tmp_path / "dd")
        loaded = load_data(str(tmp_path / "dd"))
        assert set(loaded) == {"train", "test"}
    else:
        path = tmp_path / f"train.{kind}"
        {"jsonl": train.to_json, "parquet": train.to_parquet, "csv": train.to_csv}[kind](str(path))
        loaded = load_data(str(path))
        assert list(loaded) == ["train"]
    assert loaded["train"]["text"][:5] == train["text"][:5]


def test_load_data_rejects_unknown_file_types(tmp_path):
    from energizer_hf.errors import EnergizerError
    from energizer_hf.learner import load_data

    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(EnergizerError, match="csv"):
        load_data(str(tmp_path / "x.txt"))


def test_stopping_criteria_from_the_config(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    from energizer_hf.stopping import InvalidStoppingCriterionError

    res = _learner(
        tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=None,
        stopping=["classification_change", {"name": "max_rounds", "max_rounds": 1}],
    ).run()
    assert [r["round"] for r in res] == [0, 1] and res.stop_reason in ("max_rounds", "classification_change")
    with pytest.raises(InvalidStoppingCriterionError, match="known: .*kappa_average"):
        _learner(tmp_path / "b", demo_data, demo_tokenizer, tiny_bert_config, stopping=["kappa"]).run()


def test_strategy_arguments_from_the_config(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    learner = _learner(
        tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=1,
        strategy="random_subset", strategy_args={"base": "margin", "subpool_size": 40},
    )
    res = learner.run()
    assert res[0]["num_queried"] == 10
    assert learner.strategy.subpool_size == 40


def test_a_reused_tokenizer_object_can_resume(tmp_path, demo_data, tiny_bert_config):
    from energizer_hf.demo import train_wordpiece_tokenizer

    tok = train_wordpiece_tokenizer(demo_data["train"]["text"][:], vocab_size=200)
    _learner(tmp_path, demo_data, tok, tiny_bert_config, rounds=1).run()  # sets truncation on tok
    again = _learner(tmp_path, demo_data, tok, tiny_bert_config, rounds=2).run()  # same run dir
    assert [r["round"] for r in again] == [0, 1, 2]


def test_encode_with_names():
    from energizer_hf.learner import encode_with_names

    names = ["neg", "pos"]
    assert encode_with_names(["pos", "neg"], names).tolist() == [1, 0]
    assert encode_with_names([1, 0, 1], names).tolist() == [1, 0, 1]
    with pytest.raises(LabelMismatchError, match="not among the classes"):
        encode_with_names(["neutral"], names)
    with pytest.raises(LabelMismatchError, match="not in 0..1"):
        encode_with_names([2], names)


def test_remote_data_files_are_left_to_datasets(monkeypatch):
    """URLs (https://, hf://) are not local paths: they are not refused as missing files."""
    import datasets

    from energizer_hf.errors import PathNotFoundError
    from energizer_hf.learner import load_data

    seen = {}

    def fake_load_dataset(builder, data_files=None, **kwargs):
        seen.update(builder=builder, data_files=data_files)
        return "loaded"

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    files = {"train": "https://example.org/train.csv", "test": "hf://datasets/me/d/test.csv"}
    try:
        assert load_data(None, data_files=files) == "loaded"
    except PathNotFoundError as err:  # pragma: no cover - the regression this test guards
        pytest.fail(f"a URL was checked as a local path: {err}")
    assert seen == {"builder": "csv", "data_files": files}


def test_overwrite_checks_the_new_settings_before_deleting_the_old_run(tmp_path, demo_data, demo_tokenizer,
                                                                        tiny_bert_config):
    from energizer_hf.errors import ColumnNotFoundError

    _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=0).run()
    rounds = tmp_path / "run" / "rounds.jsonl"
    before = rounds.read_bytes()
    with pytest.raises(ColumnNotFoundError):  # a typo in the new settings
        _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=0, overwrite=True,
                 text_column="sentense").run()
    assert rounds.read_bytes() == before  # the previous run is still there
    res = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=1, overwrite=True).run()
    assert len(res) == 2  # a valid overwrite starts anew
