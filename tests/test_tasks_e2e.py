"""Multi-label and NER end to end through the three faces: the CLI, the seed API
(``Trainer.active_fit``) and ``ActiveLearner`` with every strategy that serves them."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from energizer_hf.errors import LabelMismatchError, MissingLabelSetsError
from energizer_hf.learner import ActiveLearner
from tests.conftest import learner_kwargs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ml_data():
    from energizer_hf.demo import make_multilabel_dataset

    return make_multilabel_dataset(120, 40, seed=0)


@pytest.fixture(scope="module")
def ml_tok(ml_data):
    from energizer_hf.demo import train_wordpiece_tokenizer

    return train_wordpiece_tokenizer(ml_data["train"]["text"][:], vocab_size=200)


@pytest.fixture(scope="module")
def ner_data():
    from energizer_hf.demo import make_ner_dataset

    return make_ner_dataset(120, 40, seed=0)


@pytest.fixture(scope="module")
def ner_tok(ner_data):
    from energizer_hf.demo import train_wordpiece_tokenizer

    return train_wordpiece_tokenizer([" ".join(t) for t in ner_data["train"]["tokens"][:]], vocab_size=200)


def tiny(tok):
    from energizer_hf.demo import build_tiny_bert

    return build_tiny_bert(len(tok), hidden=16, layers=1)


# ---------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_cli_run_multi_label_on_joined_names_and_label_lists(tmp_path, ml_data, ml_tok, fmt):
    """A CSV whose labels are ';'-joined names (task set: a string column reads as
    single-label) and JSON lines with label lists (task inferred from the column)."""
    import yaml
    from transformers import BertModel

    names = ml_data["train"].features["labels"].feature.names
    files = {}
    for split in ("train", "test"):
        rows = [(t, [names[i] for i in ls]) for t, ls in zip(ml_data[split]["text"][:80], ml_data[split]["labels"][:80])]
        path = tmp_path / f"{split}.{fmt}"
        if fmt == "csv":
            with path.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["text", "labels"])
                w.writerows((t, ";".join(ls)) for t, ls in rows)
        else:
            path.write_text("".join(json.dumps({"text": t, "labels": ls}) + "\n" for t, ls in rows))
        files[split] = str(path)
    ml_tok.save_pretrained(tmp_path / "tok")
    torch.manual_seed(0)
    BertModel(tiny(ml_tok)).save_pretrained(tmp_path / "model")
    cfg = {"data_files": files, "model": str(tmp_path / "model"), "tokenizer": str(tmp_path / "tok"),
           "label_column": "labels", "strategy": "max_margin", "query_size": 8, "initial_size": 8, "max_rounds": 2,
           "max_epochs": 1, "min_steps": 0, "max_length": 32, "learning_rate": 1e-3, "run_dir": str(tmp_path / "run"),
           "progress": False}
    if fmt == "csv":
        cfg["task"] = "multi_label"
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "energizer_hf", "run", str(tmp_path / "run.yaml")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Area under the learning curve (test/f1_micro)" in proc.stdout
    header = next(line for line in proc.stdout.splitlines() if line.startswith("| round |"))
    assert "| test/f1_micro |" in header  # the round table shows the task's headline metric
    run = tmp_path / "run"
    records = [json.loads(x) for x in (run / "rounds.jsonl").read_text().splitlines()]
    assert len(records) == 3 and [r["num_labelled"] for r in records] == [8, 16, 24]
    assert all(0.0 <= r["test/f1_micro"] <= 1.0 for r in records) and "test/accuracy" not in records[-1]
    assert set(records[-1]["label_distribution"]) <= set(names)
    assert json.loads((run / "run.json").read_text())["config"]["run"]["task"] == "multi_label"
    from energizer_hf.revisions import load_round

    ds = load_round(str(run), 2)
    assert isinstance(ds.features["labels"], (datasets.Sequence, datasets.List))
    assert isinstance(ds.features["labels"].feature, datasets.ClassLabel)
    assert ds.features["labels"].feature.names == sorted(names) and len(ds) == 24
    gold = {t: sorted(ls) for t, ls in zip(ml_data["train"]["text"][:80],
                                           ([names[i] for i in ls] for ls in ml_data["train"]["labels"][:80]))}
    got = ds.features["labels"].feature.int2str
    for t, ls in zip(ds["text"][:], ds["labels"][:]):
        assert sorted(got(i) for i in ls) == gold[t]
    card = (run / "revisions" / "round-002" / "README.md").read_text()
    assert "multi-label-classification" in card and "task: multi_label" in card
    assert "Label set | " + ", ".join(sorted(names)) in card


# ---------------------------------------------------------------------- the seed API
class _MultiLabelData(torch.utils.data.Dataset):
    """6 features; label l (of 3) is on when feature l > 0.3, at least one label per row.
    ``key`` names where the items keep the multi-hot row (``None``: no labels at all)."""

    def __init__(self, n: int = 120, seed: int = 0, key: str | None = "labels") -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 6, generator=g)
        self.y = (self.x[:, :3] > 0.3).float()
        self.y[self.y.sum(1) == 0, 0] = 1.0
        self.key = key

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], self.key: self.y[i]} if self.key else {"x": self.x[i]}


class _SigmoidTagger(pl.LightningModule):
    task = "multi_label"

    def __init__(self, key: str = "labels", threshold: float | None = None) -> None:
        super().__init__()
        self.net = torch.nn.Linear(6, 3)
        self.key = key
        if threshold is not None:
            self.threshold = threshold

    def get_inputs_from_batch(self, batch):
        return batch["x"]

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return torch.nn.functional.binary_cross_entropy_with_logits(self(batch["x"]), batch[self.key])

    def test_step(self, batch, batch_idx):
        pred = (torch.sigmoid(self(batch["x"])) > 0.5).float()
        gold = batch[self.key]
        self.log("f1_micro", 2 * (pred * gold).sum() / (pred.sum() + gold.sum()).clamp_min(1))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


def _seed_fit(tmp_path, strategy, datamodule=None, key="labels"):
    """Two rounds of 10; returns (results, the run's pool)."""
    from energizer_hf import Trainer

    trainer = Trainer(max_labelling_epochs=2, query_size=10, max_epochs=2, enable_progress_bar=False,
                      enable_model_summary=False, progress=False, run_dir=tmp_path)
    if datamodule is not None:
        res = trainer.active_fit(model=strategy, datamodule=datamodule)
    else:
        res = trainer.active_fit(model=strategy, train_dataloaders=DataLoader(_MultiLabelData(key=key), batch_size=16),
                                 test_dataloaders=DataLoader(_MultiLabelData(40, seed=1, key=key), batch_size=16))
    return res, trainer.active_loop.pool


def _cardinalities_seen_are_true(seen, pool):
    """One MMC query per round, fitted on the true cardinality of every labelled row."""
    y = _MultiLabelData().y.numpy()
    expected = [pool.ids_of_round(0), np.concatenate([pool.ids_of_round(0), pool.ids_of_round(1)])]
    assert len(seen) == 2
    for (card, _), ids in zip(seen, expected):
        assert card is not None and sorted(card.tolist()) == sorted(y[ids].sum(1).astype(int).tolist())


@pytest.mark.parametrize("name", ["binary_entropy", "multilabel_least_confidence", "max_margin", "cardinality_random"])
def test_seed_api_multi_label_module_with_a_sigmoid_head(tmp_path, name):
    from energizer_hf.query_strategies import get_strategy_class

    torch.manual_seed(0)
    res, pool = _seed_fit(tmp_path, get_strategy_class(name)(_SigmoidTagger()))
    assert [r["num_labelled"] for r in res] == [10, 20, 30]
    assert all(0.0 <= r["test/f1_micro"] <= 1.0 for r in res)
    queried = [i for r in res for i in r["queried_ids"]]
    assert len(queried) == len(set(queried)) == 20
    assert not set(queried) & set(pool.ids_of_round(0).tolist())


def _spy_mmc(monkeypatch):
    import energizer_hf.query_strategies.multilabel as ml

    seen = []

    def spy(probs, labelled_probs=None, labelled_card=None, **kw):
        seen.append((None if labelled_card is None else np.asarray(labelled_card), kw.get("threshold")))
        return real(probs, labelled_probs, labelled_card, **kw)

    real = ml.mmc_scores
    monkeypatch.setattr(ml, "mmc_scores", spy)
    return seen


def test_seed_api_mmc_fits_its_cardinality_model_on_the_items_label_sets(tmp_path, monkeypatch):
    from energizer_hf.query_strategies import MMCStrategy

    seen = _spy_mmc(monkeypatch)
    torch.manual_seed(0)
    res, pool = _seed_fit(tmp_path, MMCStrategy(_SigmoidTagger(threshold=0.3)))
    assert [r["num_labelled"] for r in res] == [10, 20, 30]
    _cardinalities_seen_are_true(seen, pool)
    assert all(t == 0.3 for _, t in seen)  # the model's threshold, not 0.5


def test_seed_api_mmc_without_label_sets_names_what_to_give(tmp_path, monkeypatch):
    from energizer_hf import ActiveDataModule
    from energizer_hf.query_strategies import MMCStrategy

    # the items keep their labels under 'target': not found, and no silent fallback
    with pytest.raises(MissingLabelSetsError, match="label_key") as err:
        _seed_fit(tmp_path / "a", MMCStrategy(_SigmoidTagger(key="target")), key="target")
    assert "ActiveDataModule" in str(err.value) and "multi-hot" in str(err.value)
    # ... named with label_key, or given to the datamodule as an (N, L) array
    seen = _spy_mmc(monkeypatch)
    torch.manual_seed(0)
    res, pool = _seed_fit(tmp_path / "b", MMCStrategy(_SigmoidTagger(key="target"), label_key="target"), key="target")
    _cardinalities_seen_are_true(seen, pool)
    seen.clear()
    data = _MultiLabelData(key="target")
    dm = ActiveDataModule(DataLoader(data, batch_size=16),
                          test_dataloader=DataLoader(_MultiLabelData(40, seed=1, key="target"), batch_size=16),
                          labels=data.y.numpy().astype(int), label_names=["a", "b", "c"])
    res, pool = _seed_fit(tmp_path / "c", MMCStrategy(_SigmoidTagger(key="target")), datamodule=dm)
    assert pool is dm.pool
    _cardinalities_seen_are_true(seen, pool)
    labelled = dm.pool.labelled_ids
    assert np.array_equal(dm.pool.label_store.multi_hot(labelled), data.y.numpy()[labelled].astype(np.uint8))
    assert set(res[-1]["label_distribution"]) <= {"a", "b", "c"}
    # a head with another number of outputs than the label sets: named
    from types import SimpleNamespace

    from energizer_hf.query_strategies.multilabel import labelled_multi_hot

    with pytest.raises(LabelMismatchError, match="3 labels but the model gives 4"):
        labelled_multi_hot(SimpleNamespace(pool=dm.pool), labelled, 4)


def test_multi_label_strategies_decide_labels_at_the_model_threshold(tmp_path, ml_data, ml_tok):
    """max_margin, cardinality_random and mmc's fallback cardinality decide which labels a row
    carries: at RunConfig.threshold (the model's, tuned or not), not at a fixed 0.5."""
    from energizer_hf.query_strategies import (
        CardinalityRandomStrategy,
        MMCStrategy,
        MultiLabelMaxMarginStrategy,
    )
    from energizer_hf.query_strategies.multilabel import decision_threshold

    learner = ActiveLearner(dataset=ml_data, model=tiny(ml_tok), tokenizer=ml_tok, strategy="max_margin",
                            threshold=0.3, **learner_kwargs(tmp_path, label_column="labels", rounds=0))
    learner.run()
    module = learner.module
    assert module.threshold == 0.3
    for cls in (MultiLabelMaxMarginStrategy, CardinalityRandomStrategy, MMCStrategy):
        assert decision_threshold(cls(module)) == 0.3
        assert decision_threshold(cls(module, threshold=0.7)) == 0.7  # an explicit one wins
    module.threshold = 0.42  # tuned on the validation rows: read at query time
    assert decision_threshold(MultiLabelMaxMarginStrategy(module)) == 0.42
    assert decision_threshold(MultiLabelMaxMarginStrategy(_SigmoidTagger())) == 0.5  # a model without one


# ---------------------------------------------------------------------- head size
def test_multi_label_head_size_mismatch_is_named(tmp_path, ml_data, ml_tok):
    from transformers import BertConfig, BertForSequenceClassification

    n = len(ml_data["train"].features["labels"].feature.names)
    head3 = BertForSequenceClassification(BertConfig(**{**tiny(ml_tok).to_dict(), "num_labels": 3}))
    kw = learner_kwargs(tmp_path, label_column="labels")
    with pytest.raises(LabelMismatchError, match=f"num_labels=3.*{n} labels.*num_labels={n}"):
        ActiveLearner(dataset=ml_data, model=head3, tokenizer=ml_tok, strategy="random", **kw).setup()
    head3.save_pretrained(tmp_path / "head3")  # a saved classifier: its head is read, not silently replaced
    with pytest.raises(LabelMismatchError, match=f"head of 3 .*{n} labels"):
        ActiveLearner(dataset=ml_data, model=str(tmp_path / "head3"), tokenizer=ml_tok, strategy="random",
                      **learner_kwargs(tmp_path / "d", label_column="labels")).setup()


# ---------------------------------------------------------------------- strategies end to end
ML_STRATEGIES = [("max_margin", None), ("multilabel_least_confidence", None), ("cardinality_random", None)]
NER_STRATEGIES = [("token_least_confidence", None), ("token_least_confidence_mean", None),
                  ("token_least_confidence_max", None)]
# the embedding strategies, each with a cold-start initial set
EMBEDDING = [("kmeans", "cold_start_random"), ("coreset", "cold_start_kmeans"), ("typiclust", "cold_start_typiclust"),
             ("probcover", "cold_start_probcover")]
CASES = ([("multi_label", s, i) for s, i in ML_STRATEGIES + EMBEDDING]
         + [("ner", s, i) for s, i in NER_STRATEGIES + EMBEDDING])


@pytest.mark.parametrize("task,strategy,initial", CASES, ids=[f"{t}-{s}" for t, s, _ in CASES])
def test_strategy_runs_end_to_end_on_the_task(tmp_path, task, strategy, initial, ml_data, ml_tok, ner_data, ner_tok):
    data, tok = (ml_data, ml_tok) if task == "multi_label" else (ner_data, ner_tok)
    kw = learner_kwargs(tmp_path, rounds=1, initial_strategy=initial or "random",
                        **({"label_column": "labels"} if task == "multi_label" else {}))
    learner = ActiveLearner(dataset=data, model=tiny(tok), tokenizer=tok, strategy=strategy, **kw)
    res = learner.run()
    assert learner.task.name == ("multi_label" if task == "multi_label" else "token_classification")
    assert [r["num_labelled"] for r in res] == [10, 20]
    pool = learner.pool
    assert learner.loop.initial_strategy == (initial or "random")
    assert np.unique(pool.ids_of_round(0)).size == 10
    queried = np.asarray(res[0]["queried_ids"], dtype=np.int64)
    assert queried.size == 10 and np.unique(queried).size == 10  # the right count, distinct
    assert not set(queried.tolist()) & set(pool.ids_of_round(0).tolist())  # unlabelled when queried
    assert sorted(queried.tolist()) == sorted(pool.ids_of_round(1).tolist())  # and labelled in round 1
    if task == "multi_label":
        gold = data["train"]["labels"][:]
        for i in queried:
            assert np.flatnonzero(pool.label_store.multi_hot([i])[0]).tolist() == sorted(gold[int(i)])
        assert 0.0 <= res[-1]["test/f1_micro"] <= 1.0
    else:
        from energizer_hf.tasks import read_tags

        _, gold = read_tags(data["train"], "ner_tags")  # the dataset's tags, I-X after O read as B-X
        for i in queried:
            assert pool.label_store.word_tags([i])[0].tolist() == gold[[int(i)]][0].tolist()
        assert 0.0 <= res[-1]["test/entity_f1"] <= 1.0
