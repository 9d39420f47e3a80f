"""What a Hugging Face user expects of labels, splits, initial sets and metrics (issue 15)."""

import json

import datasets
import numpy as np
import pytest

from energizer_hf import InvalidIdsError, LabelMismatchError
from energizer_hf.errors import UnlabelledSplitError
from energizer_hf.learner import ActiveLearner, RunConfig, encode_labels
from energizer_hf.metrics import MetricError, as_metrics, display_metrics, is_per_class_key
from tests.conftest import learner_kwargs


def _learner(tmp_path, data, tok, cfg, metrics=None, **kw):
    return ActiveLearner(dataset=data, model=cfg, tokenizer=tok, metrics=metrics, **learner_kwargs(tmp_path, **kw))


def _plain_ints(ds):
    """The split with its ClassLabel turned into a plain int64 column."""
    return ds.cast_column("label", datasets.Value("int64"))


# ---------------------------------------------------------------------- labels
def test_label_names_name_integer_labels(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    names = ["sport", "money", "lab", "state", "food"]
    data = datasets.DatasetDict(train=_plain_ints(demo_data["train"]), test=_plain_ints(demo_data["test"]))
    learner = _learner(tmp_path, data, demo_tokenizer, tiny_bert_config, rounds=0, label_names=names)
    res = learner.run()
    assert learner.label_names == names
    assert learner.module.model.config.id2label == dict(enumerate(names))
    assert set(res[0]["label_distribution"]) <= set(names)
    # the saved final model predicts names, not '0'/'1'
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(tmp_path / "run" / "final_model").id2label[4] == "food"


def test_label_names_of_the_wrong_length_is_a_named_error():
    with pytest.raises(LabelMismatchError, match="label_names has 3 names .* 0..1 \\(2 classes\\)"):
        encode_labels(np.array([0, 1, 1, 0]), names=["a", "b", "c"])
    with pytest.raises(LabelMismatchError, match="label_names has 1 names"):
        encode_labels(np.array([0, 1]), names=["a"])
    # string labels follow the order of the names given
    names, ids, _ = encode_labels(np.array(["pos", "neg", "pos"]), names=["pos", "neg"])
    assert names == ["pos", "neg"] and ids.tolist() == [0, 1, 0]
    with pytest.raises(LabelMismatchError, match="ClassLabel"):
        encode_labels(np.array([0, 1]), feature=datasets.ClassLabel(names=["x", "y"]), names=["y", "x"])


def test_the_datasets_validation_split_is_used(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    data = datasets.DatasetDict(
        train=demo_data["train"], test=demo_data["test"], validation=demo_data["test"].select(range(40))
    )
    kw = dict(rounds=0, max_epochs=2, min_validation_size=20)
    learner = _learner(tmp_path / "a", data, demo_tokenizer, tiny_bert_config, **kw)
    res = learner.run()
    plan = learner.loop.backend.last_plan
    assert plan.select_best and plan.num_validation == 40 and not plan.train_on_validation
    assert "best_val/f1_macro" in res[0] and res[0]["num_validation"] == 0  # no labelled row held out
    # validation_perc > 0 wins: held-out labelled rows, the split is not used
    learner = _learner(tmp_path / "b", data, demo_tokenizer, tiny_bert_config, validation_perc=0.3, initial_size=20, **kw)
    res = learner.run()
    assert learner.loop.backend.data.validation is None and res[0]["num_validation"] == 6
    # validation_split: '' turns it off
    learner = _learner(tmp_path / "c", data, demo_tokenizer, tiny_bert_config, validation_split="", **kw)
    learner.run()
    assert learner.loop.backend.data.validation is None and not learner.loop.backend.last_plan.select_best


@pytest.mark.parametrize("feature", ["int", "classlabel"])
def test_a_glue_style_test_split_is_refused_with_a_hint(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, feature):
    test = demo_data["test"].map(lambda r: {"label": -1})
    if feature == "int":
        test = _plain_ints(test)
    data = datasets.DatasetDict(train=demo_data["train"], test=test)
    with pytest.raises(UnlabelledSplitError, match="test_split: validation.*test_split: ''"):
        _learner(tmp_path, data, demo_tokenizer, tiny_bert_config, rounds=0).setup()
    # the hint works: no test split
    _learner(tmp_path, data, demo_tokenizer, tiny_bert_config, rounds=0, test_split="").setup()


def test_cold_start_initial_strategy_chosen_once_and_recorded(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    kw = dict(rounds=0, initial_strategy="cold_start_kmeans")
    first = _learner(tmp_path / "a", demo_data, demo_tokenizer, tiny_bert_config, **kw)
    res = first.run()
    ids = res[0]["initial_ids"]
    assert len(ids) == 10 and ids == first.pool.ids_of_round(0).tolist()
    run = json.loads((tmp_path / "a" / "run" / "run.json").read_text())
    assert run["config"]["settings"]["initial_strategy"] == "cold_start_kmeans"
    # the same seed picks the same set; it is not a random draw of the default
    again = _learner(tmp_path / "b", demo_data, demo_tokenizer, tiny_bert_config, **kw).run()
    assert again[0]["initial_ids"] == ids
    default = _learner(tmp_path / "c", demo_data, demo_tokenizer, tiny_bert_config, rounds=0).run()
    assert default[0]["initial_ids"] != ids
    # resumed with more rounds, the initial set is not chosen again
    more = _learner(tmp_path / "a", demo_data, demo_tokenizer, tiny_bert_config, **{**kw, "rounds": 1}).run()
    assert more[0]["initial_ids"] == ids and len(more) == 2


def test_unknown_initial_strategy_lists_the_cold_start_ones():
    from energizer_hf.errors import BudgetError
    from energizer_hf.loop import LoopSettings

    with pytest.raises(BudgetError, match="cold_start_kmeans"):
        LoopSettings(query_size=2, max_rounds=1, initial_strategy="entropy")


def test_initial_ids(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    ids = [3, 17, 42, 99, 150, 151, 200, 250]
    res = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=1, initial_ids=ids).run()
    assert res[0]["initial_ids"] == ids and res[0]["num_labelled"] == len(ids)
    assert res[1]["num_labelled"] == len(ids) + 10


@pytest.mark.parametrize(
    "bad, match",
    [([1, 1, 2], "duplicates"), ([-1, 2], ">= 0"), (["a"], "int"), ([], "empty"), ("1,2", "list")],
)
def test_bad_initial_ids_are_named_errors(bad, match):
    from energizer_hf.errors import ConfigError

    # values of the wrong type are refused by RunConfig's typed coercion, the others by the ids check
    with pytest.raises((InvalidIdsError, ConfigError), match=match):
        RunConfig(initial_ids=bad)


def test_initial_ids_out_of_range(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    with pytest.raises(InvalidIdsError, match="300 rows"):
        _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, initial_ids=[0, 300]).setup()


def test_seed_trainer_initial_ids(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset

    from energizer_hf import ActiveDataModule, Trainer
    from energizer_hf.query_strategies import RandomStrategy
    from tests.seed_models import UnpackingModel, make_blobs

    x, y = make_blobs(60)
    dm = ActiveDataModule(DataLoader(TensorDataset(x, y), batch_size=8), labels=y.numpy())
    trainer = Trainer(max_rounds=1, query_size=5, initial_ids=[1, 2, 3, 10], run_dir=tmp_path / "run",
                      max_epochs=1, progress=False, accelerator="cpu", enable_progress_bar=False,
                      enable_model_summary=False)
    res = trainer.active_fit(model=RandomStrategy(UnpackingModel()), datamodule=dm)
    assert res[0]["initial_ids"] == [1, 2, 3, 10]


# ---------------------------------------------------------------------- metrics
F1_SCRIPT = (
    "import datasets\nimport evaluate\nfrom sklearn.metrics import f1_score\n"
    "class F1(evaluate.Metric):\n"
    "    def _info(self):\n"
    "        return evaluate.MetricInfo(description='f1', citation='', inputs_description='',\n"
    "            features=datasets.Features({'predictions': datasets.Value('int64'), 'references': datasets.Value('int64')}))\n"
    "    def _compute(self, predictions, references, average='binary'):\n"
    "        out = f1_score(references, predictions, average=average)\n"
    "        return {'f1': out if average is None else float(out)}\n"
)


@pytest.fixture
def f1_module(tmp_path):
    evaluate = pytest.importorskip("evaluate")
    script = tmp_path / "scripts" / "f1" / "f1.py"
    script.parent.mkdir(parents=True)
    script.write_text(F1_SCRIPT)
    return evaluate.load(str(script))


def test_evaluate_metric_with_keyword_arguments_on_multiclass_data(tmp_path, demo_data, demo_tokenizer,
                                                                  tiny_bert_config, f1_module):
    data = datasets.DatasetDict(
        train=demo_data["train"], test=demo_data["test"], validation=demo_data["test"].select(range(40))
    )
    learner = _learner(tmp_path / "ok", data, demo_tokenizer, tiny_bert_config,
                       metrics=[(f1_module, {"average": "macro"})], rounds=0, min_validation_size=20)
    res = learner.run()
    assert res[0]["test/f1"] == pytest.approx(res[0]["test/f1_macro"], abs=1e-6)
    assert "val/f1" in res[0]  # metrics run on validation too
    # without its arguments, the binary default fails on 5 classes: a named error that says how
    bare = _learner(tmp_path / "bare", demo_data, demo_tokenizer, tiny_bert_config, metrics=[f1_module], rounds=0)
    with pytest.raises(MetricError, match="average"):
        bare.run()


def test_plain_callables_and_per_class_metrics_by_name(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    from sklearn.metrics import f1_score, matthews_corrcoef

    learner = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=0,
                       metrics=[matthews_corrcoef, (f1_score, {"average": None})])
    res = learner.run()
    rec = res[0]
    names = demo_data["train"].features["label"].names
    assert isinstance(rec["test/matthews_corrcoef"], float)
    assert {f"test/f1_score/{n}" for n in names} <= set(rec)
    # built-in per-class F1 by class name, not by id; the minority F1 still found
    assert {f"test/f1/{n}" for n in names} <= set(rec)
    assert not any(k.startswith("test/f1_class_") for k in rec)
    assert rec["test/minority_f1"] == rec["test/f1/cooking"]
    # out of the one-line displays, in one table in class order
    shown = display_metrics(rec)
    assert "test/accuracy" in shown and not any(is_per_class_key(k) for k in shown)
    assert not any(is_per_class_key(c) for c in res.to_pandas().columns)
    assert any(is_per_class_key(c) for c in res.to_pandas(per_class=True).columns)
    table = res.per_class_table().splitlines()
    assert table[0] == "| class | f1 | f1_score |"
    assert [row.split(" | ")[0].strip("| ") for row in table[2:]] == names


def test_per_class_ids_sort_as_numbers_not_strings():
    from energizer_hf.metrics import per_class_table

    rec = {f"test/f1/{i}": i / 20 for i in (10, 2, 1, 0)}
    _, rows = per_class_table(rec)
    assert [r[0] for r in rows] == ["0", "1", "2", "10"]


def test_bad_metrics_are_named_errors():
    with pytest.raises(MetricError, match="evaluate modules"):
        as_metrics([42])
    with pytest.raises(MetricError, match="pair"):
        as_metrics([(len, "macro")])

    def f1(y_true, y_pred, average="binary"):
        return 0.0

    named = [m.name for m in as_metrics([(f1, {"average": "macro"}), (f1, {"average": "micro"})])]
    assert named == ["f1_macro", "f1_micro"]
    with pytest.raises(MetricError, match="Two metrics"):
        as_metrics([f1, f1])


# ---------------------------------------------------------------------- scores
def test_margin_and_entropy_scores_reach_records_and_revisions(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    for strategy in ("margin", "entropy"):
        learner = _learner(tmp_path / strategy, demo_data, demo_tokenizer, tiny_bert_config, rounds=1, strategy=strategy)
        res = learner.run()
        scores = res[0]["queried_scores"]
        assert len(scores) == len(res[0]["queried_ids"]) and all(isinstance(s, float) for s in scores)
        ds = datasets.load_from_disk(str(tmp_path / strategy / "run" / "revisions" / "round-001"))
        new = np.asarray(ds["round"][:]) == 1
        got = np.asarray(ds["score"][:], dtype=object)
        assert all(v is not None for v in got[new]) and all(v is None for v in got[~new])
