"""NER and multi-label runs with Hub revisions, against the local Hub-compatible server.

Each task runs a short ActiveLearner run (tiny model built from a config, generated data) with
``hub_repo_id`` set, in a fresh interpreter whose environment points at ``tests/hubsim``
(``HF_ENDPOINT`` is read when ``huggingface_hub`` is imported). The same interpreter then reads
the repository back with the real clients (``huggingface_hub.HfApi``, ``datasets.load_dataset``,
``DatasetCard``) and restores a new run from a round (``resume_from`` + ``resume_revision``);
it prints one JSON line that the test checks against the run's label state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hubsim.server import SCRUBBED_ENV

ROOT = Path(__file__).resolve().parents[1]
SECRET = "hf_TaskRevisionsToken77"

SCRIPT = r"""
import json, os, sys
import numpy as np
import torch
torch.set_num_threads(1)
import datasets
datasets.disable_progress_bars()
from huggingface_hub import DatasetCard, HfApi, constants
assert constants.ENDPOINT == os.environ["HF_ENDPOINT"], constants.ENDPOINT
from energizer_hf.demo import build_tiny_bert, make_multilabel_dataset, make_ner_dataset, train_wordpiece_tokenizer
from energizer_hf.learner import ActiveLearner

task, strategy, repo, tmp = sys.argv[1:5]
if task == "ner":
    data = make_ner_dataset(200, 60, seed=0)
    tok = train_wordpiece_tokenizer([" ".join(t) for t in data["train"]["tokens"][:]], vocab_size=200)
    extra = {"initial_strategy": "random"}
    column = "ner_tags"
else:
    data = make_multilabel_dataset(200, 60, seed=0)
    tok = train_wordpiece_tokenizer(data["train"]["text"][:], vocab_size=200)
    extra = {"label_column": "labels"}
    column = "labels"
kw = dict(query_size=10, initial_size=10, max_epochs=1, min_steps=0, batch_size=16, eval_batch_size=64,
          learning_rate=1e-3, max_length=32, progress=False, seed=0, **extra)


def learner(run_dir, **more):
    return ActiveLearner(dataset=data, model=build_tiny_bert(len(tok), hidden=16, layers=1), tokenizer=tok,
                         strategy=strategy, run_dir=os.path.join(tmp, run_dir), **{**kw, **more})


def label_rows(pool, ids):
    store = pool.label_store
    if task == "ner":
        return [t.tolist() for t in store.word_tags(ids)]
    return [np.flatnonzero(r).tolist() for r in store.multi_hot(ids)]


def feature_of(ds):
    f = ds.features[column]
    inner = getattr(f, "feature", None)
    names = list(getattr(inner, "names", None) or [])
    # Sequence(ClassLabel) (a List feature in datasets >= 4), as the round store declares it
    return {"is_sequence_of_classlabel": f == datasets.Sequence(datasets.ClassLabel(names=names)),
            "inner": type(inner).__name__ if inner is not None else None, "names": names}


first = learner("run", rounds=1, hub_repo_id=repo)
records = list(first.run())
pool = first.pool
rounds = np.asarray(pool.rounds)
state = {}
for r in (0, 1):
    ids = np.flatnonzero((rounds >= 0) & (rounds <= r)).astype(np.int64)
    state[r] = {"ids": ids.tolist(), "labels": label_rows(pool, ids), "rounds": rounds[ids].tolist()}
gold_col = data["train"][column][:]

api = HfApi()
refs = api.list_repo_refs(repo, repo_type="dataset")
commits = api.list_repo_commits(repo, repo_type="dataset", revision=first.config.hub_branch)
loaded, cards = {}, {}
for r in (0, 1):
    tag = f"round-{r:03d}"
    ds = datasets.load_dataset(repo, revision=tag, split="train")
    loaded[r] = {"ids": ds["pool_id"][:], "labels": ds[column][:], "rounds": ds["round"][:], "feature": feature_of(ds),
                 "columns": ds.column_names, "nrows": ds.num_rows}
    card = DatasetCard(open(api.hf_hub_download(repo, "README.md", repo_type="dataset", revision=tag)).read())
    cards[r] = {"data": card.data.to_dict(), "text": card.text}

# a new run restored from the Hub's round 1
second = learner("run2", rounds=2, resume_from=repo, resume_revision="round-001")
second.setup()
p2 = second.pool
ids2 = p2.labelled_ids.astype(np.int64)
resumed = {"ids": sorted(ids2.tolist()), "rounds": np.asarray(p2.rounds)[np.sort(ids2)].tolist(),
           "labels": label_rows(p2, np.sort(ids2))}

print("RESULT " + json.dumps({
    "records": [r["round"] for r in records],
    "branch": first.config.hub_branch,
    "tags": {t.name: t.target_commit for t in refs.tags},
    "branches": {b.name: b.target_commit for b in refs.branches},
    "commits": [c.commit_id for c in commits],
    "state": state, "loaded": loaded, "cards": cards, "resumed": resumed,
    "gold": {str(i): gold_col[i] for i in state[1]["ids"]},
    "tag_names": list(data["train"].features[column].feature.names),
}), flush=True)
"""


@pytest.fixture
def hub(tmp_path):
    from tests.hubsim.server import HubServer

    with HubServer(tmp_path / "hubdata", token=SECRET) as server:
        yield server


def run_task(hub, tmp_path, task, strategy, repo):
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(hub.client_env(hf_home=tmp_path / "hf_home"))
    env.update({"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(ROOT)})
    proc = subprocess.run([sys.executable, "-c", SCRIPT, task, strategy, repo, str(tmp_path)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        pytest.fail(f"task run failed (rc={proc.returncode})\n--- stdout\n{proc.stdout[-4000:]}\n"
                    f"--- stderr\n{proc.stderr[-8000:]}")
    assert SECRET not in proc.stdout + proc.stderr
    return json.loads(lines[-1][len("RESULT "):])


def check_rounds_on_hub(got, column):
    assert got["records"] == [0, 1]
    # one commit per round on the run branch, each tagged round-NNN
    assert set(got["tags"]) == {"round-000", "round-001"}, got["tags"]
    assert got["tags"]["round-000"] != got["tags"]["round-001"]
    assert set(got["tags"].values()) <= set(got["commits"])
    assert got["branches"][got["branch"]] == got["tags"]["round-001"]
    for r in ("0", "1"):
        mine, hub_round = got["state"][r], got["loaded"][r]
        # the round's labelled set: the same rows, with the run's tags / label sets
        assert hub_round["nrows"] == len(mine["ids"])
        pairs = dict(zip(hub_round["ids"], hub_round["labels"]))
        assert sorted(pairs) == sorted(mine["ids"])
        assert [pairs[i] for i in mine["ids"]] == mine["labels"]
        assert dict(zip(hub_round["ids"], hub_round["rounds"])) == dict(zip(mine["ids"], mine["rounds"]))
        assert hub_round["feature"] == {
            "is_sequence_of_classlabel": True, "inner": "ClassLabel", "names": got["tag_names"]}
        assert "label" not in hub_round["columns"] and column in hub_round["columns"]
    # the oracle is the dataset's own labels
    for i, labels in zip(got["state"]["1"]["ids"], got["state"]["1"]["labels"]):
        gold = got["gold"][str(i)]
        assert (sorted(gold) if column == "labels" else gold) == labels
    assert len(got["state"]["0"]["ids"]) == 10 and len(got["state"]["1"]["ids"]) == 20


def check_resumed(got):
    mine = got["state"]["1"]
    order = sorted(range(len(mine["ids"])), key=lambda k: mine["ids"][k])
    assert got["resumed"]["ids"] == sorted(mine["ids"])
    assert got["resumed"]["labels"] == [mine["labels"][k] for k in order]
    assert got["resumed"]["rounds"] == [mine["rounds"][k] for k in order]


@pytest.mark.integration
def test_ner_rounds_on_the_hub_load_with_tags_and_restore(hub, tmp_path):
    got = run_task(hub, tmp_path, "ner", "mnlp", "tester/ner-rounds")
    check_rounds_on_hub(got, "ner_tags")
    for r in ("0", "1"):
        meta = got["cards"][r]["data"]
        assert meta["task_categories"] == ["token-classification"], meta
        assert meta["task_ids"] == ["named-entity-recognition"], meta
        assert meta["energizer_hf"]["task"] == "token_classification"
        assert meta["energizer_hf"]["strategy"] == "mnlp"
        assert meta["energizer_hf"]["entity_types"] == ["LOC", "ORG", "PER"]
        assert meta["energizer_hf"]["tag_names"] == got["tag_names"]
        assert "| Entity types | LOC, ORG, PER |" in got["cards"][r]["text"]
    check_resumed(got)


@pytest.mark.integration
def test_multilabel_rounds_on_the_hub_load_with_label_sets_and_restore(hub, tmp_path):
    got = run_task(hub, tmp_path, "multi_label", "binary_entropy", "tester/ml-rounds")
    check_rounds_on_hub(got, "labels")
    for r in ("0", "1"):
        meta = got["cards"][r]["data"]
        assert meta["task_categories"] == ["text-classification"], meta
        assert meta["task_ids"] == ["multi-label-classification"], meta
        assert meta["energizer_hf"]["task"] == "multi_label"
        assert meta["energizer_hf"]["strategy"] == "binary_entropy"
        assert meta["energizer_hf"]["label_set"] == got["tag_names"]
        assert f"| Label set | {', '.join(got['tag_names'])} |" in got["cards"][r]["text"]
    check_resumed(got)
