"""Tasks beyond one label per row: token classification (NER) and multi-label, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from energizer_hf.errors import (
    EmptyLabelSetError,
    EmptySentenceError,
    LabelMismatchError,
    StrategyTaskError,
    TagLengthMismatchError,
    TokenBudgetError,
    UnknownLabelError,
    UnknownTaskError,
)
from energizer_hf.learner import ActiveLearner
from energizer_hf.tasks import (
    HFMultiLabelClassifier,
    HFTokenClassifier,
    MultiLabelStore,
    TagStore,
    as_multi_hot,
    get_task,
    infer_task,
    read_tags,
)
from tests.conftest import learner_kwargs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ner_data():
    from energizer_hf.demo import make_ner_dataset

    return make_ner_dataset(200, 60, seed=0)


@pytest.fixture(scope="module")
def ner_tok(ner_data):
    from energizer_hf.demo import train_wordpiece_tokenizer

    return train_wordpiece_tokenizer([" ".join(t) for t in ner_data["train"]["tokens"][:]], vocab_size=200)


@pytest.fixture(scope="module")
def ml_data():
    from energizer_hf.demo import make_multilabel_dataset

    return make_multilabel_dataset(200, 60, seed=0)


@pytest.fixture(scope="module")
def ml_tok(ml_data):
    from energizer_hf.demo import train_wordpiece_tokenizer

    return train_wordpiece_tokenizer(ml_data["train"]["text"][:], vocab_size=200)


def tiny(tok):
    from energizer_hf.demo import build_tiny_bert

    return build_tiny_bert(len(tok), hidden=16, layers=1)


# ---------------------------------------------------------------------- task names
def test_infer_task_from_features(ner_data, ml_data, demo_data):
    assert infer_task(ner_data["train"].features) == "token_classification"
    assert infer_task(ml_data["train"].features, label_column="labels") == "multi_label"
    assert infer_task(demo_data["train"].features) == "text_classification"
    lists = datasets.Features({"text": datasets.Value("string"), "label": datasets.Sequence(datasets.Value("string"))})
    assert infer_task(lists) == "multi_label"
    with pytest.raises(UnknownTaskError, match="set task"):
        infer_task(datasets.Features({"a": datasets.Value("int64")}))
    assert get_task("ner").name == "token_classification"
    with pytest.raises(UnknownTaskError, match="text_classification, multi_label, token_classification"):
        get_task("summarisation")


# ---------------------------------------------------------------------- NER end to end
def test_ner_run_records_tokens_entities_and_entity_f1(tmp_path, ner_data, ner_tok):
    learner = ActiveLearner(dataset=ner_data, model=tiny(ner_tok), tokenizer=ner_tok, strategy="token_entropy",
                            **learner_kwargs(tmp_path, initial_strategy="random"))
    res = learner.run()
    assert learner.task.name == "token_classification"
    assert len(res) == 3
    first, last = res[0], res[-1]
    for key in ("test/entity_f1", "test/entity_precision", "test/entity_recall", "test/token_accuracy",
                "num_labelled_tokens", "num_labelled_entities", "num_labelled_sentences"):
        assert key in last
    assert first["num_labelled_sentences"] == 10 and last["num_labelled"] == 30
    pool = learner.pool
    lengths = np.asarray([len(t) for t in ner_data["train"]["tokens"][:]])
    assert last["num_labelled_tokens"] == int(lengths[pool.labelled_ids].sum())
    # the stored tags are the dataset's (a simulation; an I- after O repaired to B- by
    # read_tags' documented rule) and live in the run's label state
    names, repaired = read_tags(ner_data["train"], "ner_tags")
    gold = [t.tolist() for t in repaired[list(range(len(ner_data["train"])))]]
    for i in pool.labelled_ids:
        assert pool.label_store.word_tags([i])[0].tolist() == gold[int(i)]
    assert (Path(tmp_path) / "run" / "pool" / "token_tags.json").exists()
    # B- tags of the labelled words = entities recorded
    ents = sum(1 for i in pool.labelled_ids for t in gold[int(i)] if names[t].startswith("B-"))
    assert last["num_labelled_entities"] == ents
    # the round dataset holds ner_tags as Sequence(ClassLabel) and names the task
    from energizer_hf.revisions import load_round

    ds = load_round(str(tmp_path / "run"), 2)
    assert isinstance(ds.features["ner_tags"].feature, datasets.ClassLabel)
    assert "label" not in ds.column_names and "tokens" in ds.column_names
    card = (tmp_path / "run" / "revisions" / "round-002" / "README.md").read_text()
    assert "token-classification" in card and "named-entity-recognition" in card
    assert "Entity types | LOC, ORG, PER" in card


def test_ner_model_entity_metrics_equal_seqeval(ner_tok):
    from seqeval.metrics import f1_score, precision_score, recall_score

    names = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    torch.manual_seed(0)
    m = HFTokenClassifier(tiny(ner_tok), num_labels=5, id2label=dict(enumerate(names)))
    rng = np.random.default_rng(0)
    gold_rows, pred_rows = [], []
    for _ in range(40):
        n = int(rng.integers(1, 9))
        g = rng.integers(0, 5, size=n)
        p = np.where(rng.random(n) < 0.6, g, rng.integers(0, 5, size=n))
        gold_rows.append(g)
        pred_rows.append(p)
    m._gold["test"], m._pred["test"] = list(gold_rows), list(pred_rows)
    scores = m._scores("test")
    g_names = [[names[t] for t in r] for r in gold_rows]
    p_names = [[names[t] for t in r] for r in pred_rows]
    assert scores["test/entity_f1"] == pytest.approx(f1_score(g_names, p_names))
    assert scores["test/entity_precision"] == pytest.approx(precision_score(g_names, p_names))
    assert scores["test/entity_recall"] == pytest.approx(recall_score(g_names, p_names))


def test_token_budget_and_too_small_budget(tmp_path, ner_data, ner_tok):
    kw = learner_kwargs(tmp_path, initial_strategy="random", budget_unit="tokens", query_size=60, initial_size=60)
    res = ActiveLearner(dataset=ner_data, model=tiny(ner_tok), tokenizer=ner_tok, strategy="mnlp", **kw).run()
    assert res[0]["num_labelled_tokens"] <= 60
    for r in res[:-1]:
        assert 0 < r["queried_tokens"] <= 60
    assert res[-1]["num_labelled_tokens"] == res[0]["num_labelled_tokens"] + sum(r["queried_tokens"] for r in res[:-1])
    kw = learner_kwargs(tmp_path / "b", initial_strategy="random", budget_unit="tokens", query_size=2, initial_size=60)
    with pytest.raises(TokenBudgetError, match="shortest unlabelled sentence"):
        ActiveLearner(dataset=ner_data, model=tiny(ner_tok), tokenizer=ner_tok, strategy="mnlp", **kw).run()


def test_strategies_refuse_tasks_they_cannot_serve(tmp_path, ner_data, ner_tok, ml_data, ml_tok):
    with pytest.raises(StrategyTaskError, match="token_entropy") as err:
        ActiveLearner(dataset=ner_data, model=tiny(ner_tok), tokenizer=ner_tok, strategy="entropy",
                      **learner_kwargs(tmp_path)).setup()
    assert "mnlp" in str(err.value) and "random" in str(err.value)
    with pytest.raises(StrategyTaskError, match="binary_entropy"):
        ActiveLearner(dataset=ml_data, model=tiny(ml_tok), tokenizer=ml_tok, strategy="margin",
                      **learner_kwargs(tmp_path / "m", label_column="labels")).setup()
    from energizer_hf.query_strategies import EntropyStrategy, MNLPStrategy, RandomSubset

    with pytest.raises(StrategyTaskError):
        EntropyStrategy(HFTokenClassifier(tiny(ner_tok), num_labels=3))
    with pytest.raises(StrategyTaskError):
        MNLPStrategy(HFMultiLabelClassifier(tiny(ner_tok), num_labels=3))
    with pytest.raises(StrategyTaskError):
        RandomSubset(HFTokenClassifier(tiny(ner_tok), num_labels=3), base="margin")
    RandomSubset(HFTokenClassifier(tiny(ner_tok), num_labels=3), base="mnlp")  # a base that can


def test_prediction_based_stopping_criteria_refused_for_other_tasks(tmp_path, ner_data, ner_tok):
    from energizer_hf.stopping import InvalidStoppingCriterionError

    kw = learner_kwargs(tmp_path, stopping_criteria=[{"name": "kappa_average"}])
    with pytest.raises(InvalidStoppingCriterionError, match="KappaAverage.*not token_classification"):
        ActiveLearner(dataset=ner_data, model=tiny(ner_tok), tokenizer=ner_tok, strategy="mnlp", **kw).setup()


# ---------------------------------------------------------------------- multi-label end to end
def test_multilabel_run_metrics_and_round_dataset(tmp_path, ml_data, ml_tok):
    learner = ActiveLearner(dataset=ml_data, model=tiny(ml_tok), tokenizer=ml_tok, strategy="mmc",
                            **learner_kwargs(tmp_path, label_column="labels"))
    res = learner.run()
    assert learner.task.name == "multi_label"
    last = res[-1]
    for key in ("test/f1_micro", "test/f1_macro", "test/subset_accuracy", "test/hamming_loss"):
        assert 0.0 <= last[key] <= 1.0
    names = ml_data["train"].features["labels"].feature.names
    assert set(res[0]["label_distribution"]) <= set(names)
    # the class-balanced initial set covers the rare label ('cooking', 6% of the rows)
    assert res[0]["label_distribution"].get("cooking", 0) >= 1
    gold = ml_data["train"]["labels"][:]
    pool = learner.pool
    for i in pool.labelled_ids[:5]:
        assert np.flatnonzero(pool.label_store.multi_hot([i])[0]).tolist() == sorted(gold[int(i)])
    from energizer_hf.revisions import load_round

    ds = load_round(str(tmp_path / "run"), 1)
    assert isinstance(ds.features["labels"].feature, datasets.ClassLabel)
    card = (tmp_path / "run" / "revisions" / "round-001" / "README.md").read_text()
    assert "multi-label-classification" in card and "Label set |" in card


def test_multilabel_scores_equal_sklearn(ml_tok):
    from sklearn.metrics import f1_score, hamming_loss

    m = HFMultiLabelClassifier(tiny(ml_tok), num_labels=4)
    rng = np.random.default_rng(1)
    y = (rng.random((50, 4)) < 0.3).astype(np.uint8)
    p = rng.random((50, 4)).astype(np.float32)
    m._probs["test"], m._gold["test"] = [p], [y]
    s = m._scores("test")
    assert s["test/f1_micro"] == pytest.approx(f1_score(y, p >= 0.5, average="micro"))
    assert s["test/f1_macro"] == pytest.approx(f1_score(y, p >= 0.5, average="macro", zero_division=0))
    assert s["test/hamming_loss"] == pytest.approx(hamming_loss(y, p >= 0.5))


def test_tuned_threshold_on_validation(ml_tok):
    m = HFMultiLabelClassifier(tiny(ml_tok), num_labels=2, tune_threshold=True)
    m._probs["val"], m._gold["val"] = [np.array([[0.3, 0.2], [0.1, 0.35]])], [np.array([[1, 0], [0, 1]])]
    m._scores("val")
    assert m.threshold < 0.5  # 0.5 would predict nothing; the tuned cut finds the positives


def test_model_selection_restores_the_threshold_tuned_with_the_best_weights(ml_tok):
    from types import SimpleNamespace

    import torch

    from energizer_hf.fitting import KeepBestWeights

    m = HFMultiLabelClassifier(tiny(ml_tok), num_labels=2, tune_threshold=True)
    keep = KeepBestWeights(monitor="val/f1_macro")
    keep.on_fit_start(None, m)
    epochs = [(0.8, 0.31), (0.6, 0.47)]  # (validation F1, threshold tuned at that pass)
    for f1, threshold in epochs:
        m.threshold = threshold
        with torch.no_grad():
            next(m.parameters()).add_(1.0)  # the weights move every epoch
        trainer = SimpleNamespace(sanity_checking=False, callback_metrics={"val/f1_macro": torch.tensor(f1)})
        keep.on_validation_end(trainer, m)
        if f1 == 0.8:
            best_weight = next(m.parameters()).detach().clone()
    keep.on_fit_end(None, m)
    assert m.threshold == 0.31  # the best epoch's threshold, not the last one's
    assert torch.equal(next(m.parameters()), best_weight)


# ---------------------------------------------------------------------- bad input
def test_bad_token_data(tmp_path):
    feats = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                               "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-X", "I-X"]))})
    bad_len = datasets.Dataset.from_dict({"tokens": [["a", "b"]], "ner_tags": [[0]]}, features=feats)
    with pytest.raises(TagLengthMismatchError):
        read_tags(bad_len, "ner_tags")
    empty = datasets.Dataset.from_dict({"tokens": [["a"], []], "ner_tags": [[0], []]}, features=feats)
    with pytest.raises(EmptySentenceError):
        read_tags(empty, "ner_tags")
    # the documented rule: an I-X after O is read as B-X (strict: refused)
    after_o = datasets.Dataset.from_dict({"tokens": [["a", "b", "c"]], "ner_tags": [[0, 2, 2]]}, features=feats)
    names, tags = read_tags(after_o, "ner_tags")
    assert tags[[0]][0].tolist() == [0, 1, 2]
    from energizer_hf.errors import InvalidTagsError

    with pytest.raises(InvalidTagsError):
        read_tags(after_o, "ner_tags", repair=False)
    store = TagStore(names, np.array([3, 2]))
    with pytest.raises(UnknownLabelError, match="B-Y"):
        store.accept([["O", "B-Y", "O"]], np.array([0]))
    with pytest.raises(TagLengthMismatchError, match="one tag per word"):
        store.accept([["O", "O"]], np.array([0]))
    assert [t.tolist() for t in store.accept([["O", "I-X", "I-X"]], np.array([0]))] == [[0, 1, 2]]


def test_head_size_mismatch(ner_tok):
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_config(tiny(ner_tok).__class__(**{**tiny(ner_tok).to_dict(), "num_labels": 4}))
    with pytest.raises(LabelMismatchError, match="num_labels=7"):
        HFTokenClassifier(model, num_labels=7)


def test_multilabel_empty_rows(tmp_path, ml_tok):
    store = MultiLabelStore(["a", "b"], 3)
    with pytest.raises(EmptyLabelSetError, match="allow_empty_labels"):
        store.accept([[]], np.array([0]))
    assert MultiLabelStore(["a", "b"], 3, allow_empty=True).accept([[]], np.array([0])).tolist() == [[0, 0]]
    with pytest.raises(UnknownLabelError):
        as_multi_hot([["c"]], ["a", "b"])
    data = datasets.DatasetDict({"train": datasets.Dataset.from_dict(
        {"text": ["x y", "y z", "z"], "labels": ["a;b", "", "b"]})})
    with pytest.raises(EmptyLabelSetError):
        ActiveLearner(dataset=data, model=tiny(ml_tok), tokenizer=ml_tok, strategy="random", task="multi_label",
                      **learner_kwargs(tmp_path, label_column="labels", test_split="")).setup()


def test_budget_in_tokens_refused_for_classification(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    from energizer_hf.errors import BudgetError

    with pytest.raises(BudgetError, match="token classification"):
        ActiveLearner(dataset=demo_data, model=tiny_bert_config, tokenizer=demo_tokenizer, strategy="entropy",
                      **learner_kwargs(tmp_path, budget_unit="tokens")).setup()


# ---------------------------------------------------------------------- CoNLL files and the CLI
def test_cli_run_token_classification_on_conll_files(tmp_path, ner_data):
    names = ner_data["train"].features["ner_tags"].feature.names
    files = {}
    for split in ("train", "test"):
        lines = []
        for toks, tags in zip(ner_data[split]["tokens"][:80], ner_data[split]["ner_tags"][:80]):
            lines += [f"{w}\t{names[t]}" for w, t in zip(toks, tags)] + [""]
        path = tmp_path / f"{split}.conll"
        path.write_text("\n".join(lines))
        files[split] = str(path)
    from energizer_hf.demo import train_wordpiece_tokenizer

    tok = train_wordpiece_tokenizer([" ".join(t) for t in ner_data["train"]["tokens"][:]], vocab_size=200)
    tok.save_pretrained(tmp_path / "tok")
    from transformers import BertModel

    torch.manual_seed(0)
    BertModel(tiny(tok)).save_pretrained(tmp_path / "model")
    import yaml

    cfg = {"task": "token_classification", "data_files": files, "model": str(tmp_path / "model"),
           "tokenizer": str(tmp_path / "tok"), "strategy": "token_entropy_mean", "query_size": 8, "initial_size": 8,
           "max_rounds": 1, "max_epochs": 1, "min_steps": 0, "max_length": 32, "run_dir": str(tmp_path / "run"),
           "progress": False}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "energizer_hf", "run", str(tmp_path / "run.yaml")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(x) for x in (tmp_path / "run" / "rounds.jsonl").read_text().splitlines()]
    assert len(records) == 2 and "test/entity_f1" in records[-1]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["run"]["task"] == "token_classification"


# ---------------------------------------------------------------------- crash and resume
def _task_run(run_dir, task, strategy, fault=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("ENERGIZER_HF_FAULT", None)
    if fault:
        env["ENERGIZER_HF_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "tests._task_resume_script", str(run_dir), task, strategy],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _task_result(proc):
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1][len("RESULT "):])


@pytest.mark.slow
@pytest.mark.parametrize("task,strategy,fault", [
    ("ner", "token_entropy", "after_label:1"),
    ("ner", "mnlp", "after_fit:2"),
    ("multi_label", "binary_entropy", "after_label:1"),
])
def test_task_crash_then_resume_equals_uninterrupted(tmp_path, task, strategy, fault):
    full = _task_result(_task_run(tmp_path / "full", task, strategy))
    crashed = _task_run(tmp_path / "crash", task, strategy, fault=fault)
    assert crashed.returncode == 77, crashed.stderr[-2000:]
    resumed = _task_result(_task_run(tmp_path / "crash", task, strategy))
    assert resumed == full
    assert len((tmp_path / "crash" / "rounds.jsonl").read_text().splitlines()) == 4


# ---------------------------------------------------------------------- the seed API
class _TokenData(torch.utils.data.Dataset):
    """Sentences of ids 1..9 (padded with 0) whose tag is 1 for ids > 6, else 0."""

    def __init__(self, n: int = 120, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.lengths = torch.randint(2, 9, (n,), generator=g)
        self.ids = torch.randint(1, 10, (n, 8), generator=g)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i):
        n = int(self.lengths[i])
        ids = self.ids[i].clone()
        ids[n:] = 0
        mask = (ids > 0).long()
        labels = torch.where(mask.bool(), (ids > 6).long(), torch.full_like(ids, -100))
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class _TokenTagger(__import__("pytorch_lightning").LightningModule):
    task = "token_classification"

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(10, 8)
        self.out = torch.nn.Linear(8, 2)

    def get_inputs_from_batch(self, batch):
        return batch["input_ids"]

    def forward(self, input_ids):
        return self.out(self.emb(input_ids))

    def training_step(self, batch, batch_idx):
        logits = self(batch["input_ids"])
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 2), batch["labels"].reshape(-1), ignore_index=-100)

    def test_step(self, batch, batch_idx):
        keep = batch["labels"] != -100
        acc = (self(batch["input_ids"]).argmax(-1)[keep] == batch["labels"][keep]).float().mean()
        self.log("token_accuracy", acc)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


def test_seed_api_token_classifier_with_per_token_scores(tmp_path):
    from torch.utils.data import DataLoader

    from energizer_hf import Trainer
    from energizer_hf.functional.sequence import per_token_entropy
    from energizer_hf.query_strategies import (
        AccumulatorStrategy,
        EntropyStrategy,
        TokenEntropyStrategy,
    )

    class MeanTokenEntropy(AccumulatorStrategy):
        tasks = ("token_classification",)
        token_reduction = "mean"

        def pool_step(self, batch, batch_idx, *args, **kwargs):
            return per_token_entropy(self(self.get_inputs_from_batch(batch))), batch["attention_mask"]

    train_dl = DataLoader(_TokenData(), batch_size=16)
    test_dl = DataLoader(_TokenData(40, seed=1), batch_size=16)
    for strategy in (MeanTokenEntropy(_TokenTagger()), TokenEntropyStrategy(_TokenTagger(), reduction="max")):
        trainer = Trainer(max_labelling_epochs=2, query_size=10, max_epochs=2, enable_progress_bar=False,
                          enable_model_summary=False, progress=False, run_dir=tmp_path / type(strategy).__name__)
        res = trainer.active_fit(model=strategy, train_dataloaders=train_dl, test_dataloaders=test_dl)
        assert [r["num_labelled"] for r in res] == [10, 20, 30]
        assert all(0.0 <= r["test/token_accuracy"] <= 1.0 for r in res)
    with pytest.raises(StrategyTaskError):
        EntropyStrategy(_TokenTagger())


def test_per_token_scores_are_reduced_by_the_named_reduction():
    from energizer_hf.query_strategies import AccumulatorStrategy

    class S(AccumulatorStrategy):
        token_reduction = "max"

    s = S(torch.nn.Identity())
    scores = torch.tensor([[1.0, 5.0, 9.0], [2.0, 3.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    assert s._check_scores((scores, mask), 2).tolist() == [5.0, 3.0]
    from energizer_hf.errors import InvalidScoresError

    with pytest.raises(InvalidScoresError, match="per-token scores"):
        s._check_scores((torch.ones(3), mask), 2)


def test_every_row_gets_a_label_unless_empty_rows_are_allowed(ml_tok):
    """A label set without 'none': a row with no probability above the threshold gets its
    most probable label (the plain rule predicted nothing on GoEmotions with few labels)."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(3)
    y = np.zeros((40, 4), dtype=np.uint8)
    y[np.arange(40), rng.integers(0, 4, 40)] = 1  # one label per row
    p = (rng.random((40, 4)) * 0.4).astype(np.float32)  # nothing reaches 0.5
    p[np.arange(40), y.argmax(1)] = 0.45  # the true label is the most probable one
    plain = HFMultiLabelClassifier(tiny(ml_tok), num_labels=4)
    plain._probs["test"], plain._gold["test"] = [p], [y]
    assert plain._scores("test")["test/f1_micro"] == 0.0
    one = HFMultiLabelClassifier(tiny(ml_tok), num_labels=4, at_least_one=True)
    one._probs["test"], one._gold["test"] = [p], [y]
    decided = np.eye(4, dtype=np.uint8)[p.argmax(1)]
    assert one._scores("test")["test/f1_micro"] == pytest.approx(f1_score(y, decided, average="micro")) == 1.0


def test_balanced_class_weights_of_a_multi_label_run_are_per_label_pos_weights(tmp_path, ml_data, ml_tok):
    """`class_weights: balanced` on a multi-label run weighs each label's positives by its
    negatives / positives in the fit's labelled rows (they used to come from an unused
    single-label column)."""
    from energizer_hf.functional import balanced_pos_weights

    learner = ActiveLearner(dataset=ml_data, model=tiny(ml_tok), tokenizer=ml_tok, strategy="random",
                            class_weights="balanced", **learner_kwargs(tmp_path, label_column="labels", rounds=0))
    learner.run()
    pool = learner.pool
    ids = np.concatenate([pool.train_ids, pool.validation_ids])
    expected = balanced_pos_weights(pool.label_store.rows(ids))
    assert torch.equal(learner.module.class_weights, expected)
    assert expected.shape == (len(ml_data["train"].features["labels"].feature.names),) and (expected >= 1).all()
