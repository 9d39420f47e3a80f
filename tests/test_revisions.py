"""Query rounds as dataset revisions: local snapshots, cards, and the Hub (``tests/hubsim``).

Client code that talks to the Hub runs in a fresh interpreter whose environment points at the
test server (``HF_ENDPOINT`` is read when ``huggingface_hub`` is imported). To keep those
interpreters fast, they load ``energizer_hf.revisions`` without running ``energizer_hf/__init__``
(which imports Lightning): the revisions package only needs ``datasets``/``huggingface_hub``.
Steps of one client script can hand control back to the test (``checkpoint(name)``), which
then changes the server's faults before the script goes on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import numpy as np
import pytest
import yaml

from energizer_hf import DatasetMismatchError, EnergizerError
from energizer_hf.learner import ActiveLearner
from energizer_hf.pool import ActivePool
from energizer_hf.revisions import (
    HubRevisions,
    HubSyncError,
    InvalidRepoIdError,
    LocalRevisions,
    RoundNotFoundError,
    load_round,
    rebuild_pool_state,
    render_model_card,
    round_tag,
)
from energizer_hf.revisions.hub_api import classify as _classify
from energizer_hf.revisions.hub_api import scrub as _scrub
from energizer_hf.run import front_matter as _front_matter
from tests.conftest import learner_kwargs
from tests.hubsim.server import SCRUBBED_ENV

REPO_ROOT = Path(__file__).resolve().parents[1]
SECRET = "hf_Secr3tTokenForHubTests42"


# ---------------------------------------------------------------------- a tiny run (3 rounds)
@pytest.fixture(scope="module")
def run3(tmp_path_factory, demo_data, demo_tokenizer, tiny_bert_config):
    """A finished 3-record run (rounds 0, 1, 2) with local revisions."""
    tmp = tmp_path_factory.mktemp("hubrun")
    store = LocalRevisions()
    learner = ActiveLearner(
        dataset=demo_data,
        model=tiny_bert_config,
        tokenizer=demo_tokenizer,
        strategy="entropy",
        callbacks=[store],
        **learner_kwargs(tmp, rounds=2),
    )
    results = learner.run()
    return learner, Path(learner.config.run_dir), list(results)


def _ids_up_to(pool, round):
    rounds = np.asarray(pool.rounds)
    return np.flatnonzero((rounds >= 0) & (rounds <= round))


# ---------------------------------------------------------------------- local revisions
def test_local_revisions_load_back_per_round(run3, demo_data):
    learner, run_dir, records = run3
    pool = learner.pool
    assert sorted(p.name for p in (run_dir / "revisions").iterdir() if p.is_dir()) == [
        "round-000",
        "round-001",
        "round-002",
    ]
    names = demo_data["train"].features["label"].names
    for rec in records:
        r = rec["round"]
        ds = load_round(run_dir, r)
        same = datasets.load_from_disk(str(run_dir / "revisions" / round_tag(r)))
        assert same["pool_id"][:] == ds["pool_id"][:]
        assert len(ds) == rec["num_labelled"] == 10 * (r + 1)
        ids = _ids_up_to(pool, r)
        assert ds["pool_id"][:] == ids.tolist()
        assert ds.column_names == [
            "pool_id",
            "text",
            "label",
            "label_name",
            "round",
            "split",
            "label_source",
            "score",
        ]
        assert ds["label"][:] == pool.labels[ids].tolist()
        # the simulated oracle revealed the dataset's own labels
        assert ds["label"][:] == demo_data["train"].select(ids)["label"][:]
        assert ds["label_name"][:] == [names[i] for i in ds["label"][:]]
        assert ds["text"][:] == demo_data["train"].select(ids)["text"][:]
        assert ds["round"][:] == pool.rounds[ids].tolist() and max(ds["round"][:]) == r
        assert set(ds["label_source"][:]) == {"dataset"} and set(ds["split"][:]) == {"train"}
        # the acquisition score of every queried row (entropy); none for the initial set
        got = dict(zip(ds["pool_id"][:], ds["score"][:]))
        assert all((got[i] is None) == (rnd == 0) for i, rnd in zip(ds["pool_id"][:], ds["round"][:]))
        assert ds.features["label"].names == names
    # revisions/README.md lists every round as a configuration that load_dataset reads
    for rec in records:
        tag = round_tag(rec["round"])
        loaded = datasets.load_dataset(str(run_dir / "revisions"), tag, split="train")
        assert loaded["pool_id"][:] == load_round(run_dir, rec["round"])["pool_id"][:]
        assert loaded.features["label"].names == names
    latest = datasets.load_dataset(str(run_dir / "revisions"), split="train")  # the default: the last round
    assert len(latest) == records[-1]["num_labelled"]
    # round r+1 adds exactly the ids queried in round r
    for rec in records[:-1]:
        new = load_round(run_dir, rec["round"] + 1).filter(
            lambda row, r=rec["round"]: row["round"] == r + 1
        )
        assert sorted(new["pool_id"][:]) == sorted(rec["queried_ids"])
    # the latest round by default, and a round directory directly
    assert len(load_round(run_dir)) == 30
    assert len(load_round(run_dir / "revisions" / "round-001")) == 20


def test_snapshots_are_immutable(run3):
    learner, run_dir, _ = run3
    target = run_dir / "revisions" / "round-001"
    before = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
    assert LocalRevisions().snapshot(learner.run_info(), learner.pool, 1) == target
    assert {p.name: p.stat().st_mtime_ns for p in target.iterdir()} == before
    assert not [p for p in (run_dir / "revisions").iterdir() if p.name.startswith(".")]


def test_dataset_card_front_matter_and_body(run3):
    learner, run_dir, records = run3
    for rec in records:
        r = rec["round"]
        card = (run_dir / "revisions" / round_tag(r) / "README.md").read_text()
        meta = _front_matter(card)
        assert meta["license"] == "other" and "license of the source data is not known" in card
        assert meta["task_categories"] == ["text-classification"]
        assert meta["task_ids"] == ["multi-class-classification"]
        assert meta["tags"] == ["active-learning", "energizer_hf"]
        assert meta["size_categories"] == ["n<1K"]
        # a local revision is a save_to_disk folder: no `configs` that load_dataset could not read
        assert "configs" not in meta and "datasets.load_from_disk" in card
        assert meta["dataset_info"]["splits"] == [
            {"name": "train", "num_examples": rec["num_labelled"], "num_bytes": meta["dataset_info"]["splits"][0]["num_bytes"]}
        ]
        assert [f["name"] for f in meta["dataset_info"]["features"]][:3] == ["pool_id", "text", "label"]
        info = meta["energizer_hf"]
        assert info["round"] == r and info["num_rows"] == rec["num_labelled"]
        assert info["pool_fingerprint"] == learner.pool.fingerprint and info["pool_rows"] == 300
        assert info["strategy"] == "entropy" and info["seed"] == 0
        assert f"| {r} | {rec['num_labelled']} | {rec['test/accuracy']:.4f} |" in card
        assert "| Query size | 10 |" in card and "| Seed | 0 |" in card
        assert learner.pool.fingerprint in card
        dist = rec["label_distribution"]
        row = f"| {r} | {rec['num_labelled']} | " + " | ".join(
            str(dist.get(n, 0)) for n in learner.label_names
        )
        assert row in card
        # later rounds are not in an earlier card
        assert f"| {r + 1} | {rec['num_labelled'] + 10} |" not in card
    assert "| Stopping reason | max_rounds |" in card


def test_a_templates_dir_without_the_templates_falls_back_to_the_packaged_ones(run3, tmp_path):
    learner, run_dir, records = run3
    out = tmp_path / "other-run"
    store = LocalRevisions(out, templates_dir=tmp_path / "no-templates")
    store.snapshot(learner.run_info(), learner.pool, 2)
    card = (out / "revisions" / "round-002" / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["energizer_hf"]["round"] == 2 and meta["size_categories"] == ["n<1K"]
    assert meta["task_categories"] == ["text-classification"]
    assert f"{records[2]['test/accuracy']:.4f}" in card


def test_model_card_renders_valid_metadata(run3):
    _, _, records = run3
    from energizer_hf.revisions.cards import curve, metric_names

    names = metric_names(records)
    context = {
        "license": "apache-2.0",
        "license_note": None,
        "language": ["en"],
        "task": "single_label",
        "model_name": "al-model",
        "repo_id": "me/al-model",
        "base_model": "prajjwal1/bert-tiny",
        "eval": {"type": "ag_news", "name": "ag_news", "split": "test"},
        "per_class_header": ["class", "f1"],
        "per_class": [["a", "0.5000"], ["b", "0.2500"]],
        "dataset_repo_id": "me/al-data",
        "dataset_name": "me/al-data (round-002)",
        "dataset_type": "me/al-data",
        "dataset_revision": "a" * 40,
        "dataset_url": "https://hub.example/datasets/me/al-data/tree/" + "a" * 40,
        "accuracy": records[-1]["test/accuracy"],
        "f1": records[-1]["test/f1_macro"],
        "metric_names": names,
        "curve": curve(records, names),
        "strategy": "entropy",
        "num_rounds": 3,
        "num_labelled": 30,
        "label_names": ["a", "b"],
        "seed": 0,
        "query_size": 10,
        "stop_reason": "max_rounds",
        "pool_fingerprint": "f" * 16,
        "source_dataset": "demo",
    }
    for templates_dir in (None, Path("/nonexistent")):
        card = render_model_card(context, templates_dir)
        meta = _front_matter(card)
        assert meta["library_name"] == "transformers"
        assert meta["pipeline_tag"] == "text-classification"
        assert meta["datasets"] == ["me/al-data"]
        assert meta["base_model"] == "prajjwal1/bert-tiny" and meta["language"] == ["en"]
        result = meta["model-index"][0]["results"][0]
        metrics = {m["type"]: m["value"] for m in result["metrics"]}
        assert metrics == {
            "accuracy": records[-1]["test/accuracy"],
            "f1": records[-1]["test/f1_macro"],
        }
        # the metrics were measured on the source's test split, not on the pushed labelled set
        assert result["dataset"] == {"type": "ag_news", "name": "ag_news", "split": "test"}
        assert context["dataset_url"] in card
        assert "| a | 0.5000 |" in card  # one compact per-class table
        for rec in records:
            assert (
                f"| {rec['round']} | {rec['num_labelled']} | {rec['test/accuracy']:.4f} |" in card
            )
    # without test metrics there is no model-index
    meta = _front_matter(render_model_card({**context, "accuracy": None, "f1": None}))
    assert "model-index" not in meta


# ---------------------------------------------------------------------- resuming from a revision
def test_rebuild_pool_state_from_a_revision(run3, demo_data):
    learner, run_dir, _ = run3
    revision = load_round(run_dir, 1)
    pool = ActivePool(demo_data["train"])
    ids = rebuild_pool_state(pool, revision)
    expected = _ids_up_to(learner.pool, 1)
    assert ids.tolist() == expected.tolist() == pool.labelled_ids.tolist()
    assert pool.labels[expected].tolist() == learner.pool.labels[expected].tolist()
    assert pool.rounds[expected].tolist() == learner.pool.rounds[expected].tolist()
    # again, and then a later round on top of it: only the new rows are added
    rebuild_pool_state(pool, revision)
    rebuild_pool_state(pool, load_round(run_dir, 2))
    assert pool.labelled_ids.tolist() == _ids_up_to(learner.pool, 2).tolist()
    # an earlier round on a pool with more labels conflicts
    with pytest.raises(DatasetMismatchError, match="already has labels"):
        rebuild_pool_state(pool, load_round(run_dir, 0))


@pytest.fixture(scope="module")
def run4(tmp_path_factory, demo_data, demo_tokenizer, tiny_bert_config):
    """A finished run with 3 query rounds (records 0..3); the learner adds the local store."""
    tmp = tmp_path_factory.mktemp("hubrun4")
    learner = ActiveLearner(
        dataset=demo_data,
        model=tiny_bert_config,
        tokenizer=demo_tokenizer,
        strategy="entropy",
        **learner_kwargs(tmp, rounds=3),
    )
    return learner, Path(learner.config.run_dir), list(learner.run())


def _resumed(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, **kwargs):
    return ActiveLearner(
        dataset=demo_data,
        model=tiny_bert_config,
        tokenizer=demo_tokenizer,
        strategy="entropy",
        **learner_kwargs(tmp_path, **kwargs),
    )


def test_learner_resumes_from_a_revision_with_the_same_queries(
    run4, tmp_path, demo_data, demo_tokenizer, tiny_bert_config
):
    first, first_dir, records = run4
    assert [r["round"] for r in records] == [0, 1, 2, 3]
    assert sorted(p.name for p in (first_dir / "revisions").iterdir() if p.is_dir()) == [
        "round-000",
        "round-001",
        "round-002",
        "round-003",
    ]
    assert (first_dir / "final_model" / "config.json").is_file()
    learner = _resumed(
        tmp_path,
        demo_data,
        demo_tokenizer,
        tiny_bert_config,
        rounds=3,
        resume_from=str(first_dir),
        resume_revision="round-001",
    )
    resumed = list(learner.run())
    # round 1 fits on the labels of rounds 0..1 and queries round 2: as the first run did
    assert [r["round"] for r in resumed] == [1, 2, 3]
    for mine, theirs in zip(resumed, records[1:]):
        assert mine["num_labelled"] == theirs["num_labelled"]
        assert mine["queried_ids"] == theirs["queried_ids"], mine["round"]
        assert mine["test/accuracy"] == pytest.approx(theirs["test/accuracy"], abs=1e-6)
    assert learner.pool.labelled_ids.tolist() == first.pool.labelled_ids.tolist()
    run_dir = Path(learner.config.run_dir)
    assert sorted(p.name for p in (run_dir / "revisions").iterdir() if p.is_dir()) == [
        "round-001",
        "round-002",
        "round-003",
    ]
    assert load_round(run_dir, 2)["pool_id"][:] == load_round(first_dir, 2)["pool_id"][:]
    # the configuration records where the run started; no token anywhere
    saved = json.loads((run_dir / "run.json").read_text())["config"]["run"]
    assert saved["resume_from"] == str(first_dir) and saved["resume_revision"] == "round-001"
    assert "hub_repo_id" not in saved and not {"token", "hf_token"} & set(saved)
    # the finished run again: nothing is redone, the saved model is kept
    model_file = run_dir / "final_model" / "model.safetensors"
    before = model_file.stat().st_mtime_ns
    again = _resumed(
        tmp_path,
        demo_data,
        demo_tokenizer,
        tiny_bert_config,
        rounds=3,
        resume_from=str(first_dir),
        resume_revision="round-001",
    )
    assert [r["round"] for r in again.run()] == [1, 2, 3]
    assert model_file.stat().st_mtime_ns == before


def test_learner_resume_revision_forms_and_errors(
    run4, tmp_path, demo_data, demo_tokenizer, tiny_bert_config
):
    first, first_dir, _ = run4
    expected = _ids_up_to(first.pool, 2).tolist()
    # a round number as a string (as given on the command line) and a round directory
    for source, revision in ((first_dir, "2"), (first_dir / "revisions" / "round-002", None)):
        learner = _resumed(
            tmp_path / str(revision),
            demo_data,
            demo_tokenizer,
            tiny_bert_config,
            resume_from=str(source),
            resume_revision=revision,
        )
        learner.setup()
        assert learner.pool.labelled_ids.tolist() == expected
        assert learner.loop.start_from_labels is True
    with pytest.raises(RoundNotFoundError, match="round-000, round-001, round-002, round-003"):
        _resumed(
            tmp_path / "bad",
            demo_data,
            demo_tokenizer,
            tiny_bert_config,
            resume_from=str(first_dir),
            resume_revision="round-009",
        ).setup()
    # another dataset: refused by its fingerprint
    other = datasets.DatasetDict(
        {"train": demo_data["train"].select(range(1, 300)), "test": demo_data["test"]}
    )
    with pytest.raises(DatasetMismatchError, match="another dataset"):
        _resumed(
            tmp_path / "other",
            other,
            demo_tokenizer,
            tiny_bert_config,
            resume_from=str(first_dir),
            resume_revision="round-001",
        ).setup()


def test_rebuild_pool_state_refuses_another_dataset(run3, demo_data):
    _, run_dir, _ = run3
    revision = load_round(run_dir, 1)
    other = ActivePool(demo_data["train"].select(range(1, 300)))
    with pytest.raises(DatasetMismatchError, match="another dataset"):
        rebuild_pool_state(other, revision)
    # same size, different content under a forced fingerprint: the row check catches it
    shuffled = ActivePool(demo_data["train"].shuffle(seed=1), fingerprint=other.fingerprint)
    with pytest.raises(DatasetMismatchError, match="do not match"):
        rebuild_pool_state(shuffled, revision, fingerprint=other.fingerprint)
    bare = datasets.Dataset.from_dict({"pool_id": [0], "label": [0], "round": [0]})
    with pytest.raises(DatasetMismatchError, match="no pool fingerprint"):
        rebuild_pool_state(ActivePool(demo_data["train"]), bare)


def test_torch_dataset_pool_round_trip():
    """The seed API's map-style torch datasets: no input columns, labels may be unknown."""
    import torch

    data = [(torch.zeros(2), i % 2) for i in range(12)]
    pool = ActivePool(data)
    pool.label([1, 2, 3], None, round=0)
    pool.label([5, 6], [1, 0], round=1, validation=[True, False])
    from energizer_hf.revisions import build_round_dataset

    ds = build_round_dataset(pool, 1, label_names=["a", "b"], label_source="annotator")
    assert ds.column_names == [
        "pool_id",
        "label",
        "label_name",
        "round",
        "split",
        "label_source",
        "score",
    ]
    assert ds["label"][:] == [-1, -1, -1, 1, 0] and ds["label_name"][:] == [
        None,
        None,
        None,
        "b",
        "a",
    ]
    assert ds["split"][:] == ["train"] * 3 + ["validation", "train"]
    assert len(build_round_dataset(pool, 0)) == 3
    fresh = ActivePool(data)
    assert rebuild_pool_state(fresh, ds).tolist() == [1, 2, 3, 5, 6]
    assert fresh.validation_ids.tolist() == [5] and fresh.labels[[5, 6]].tolist() == [1, 0]


def test_public_names():
    import energizer_hf.revisions as revisions

    assert list(revisions.__all__) == sorted(revisions.__all__)
    assert all(hasattr(revisions, name) for name in revisions.__all__)


# ---------------------------------------------------------------------- bad input, offline
def test_missing_local_revision_lists_the_existing_ones(run3):
    _, run_dir, _ = run3
    with pytest.raises(RoundNotFoundError, match="round-000, round-001, round-002"):
        load_round(run_dir, 7)
    with pytest.raises(RoundNotFoundError, match="round-000, round-001, round-002"):
        load_round(run_dir, "final")


@pytest.mark.parametrize("bad", ["no namespace", "user/na me", "a/b/c", "user/--x", "", "user/"])
def test_malformed_repo_id(bad):
    with pytest.raises(InvalidRepoIdError, match="repo"):
        HubRevisions(repo_id=bad)


def test_bad_branch_and_options():
    with pytest.raises(InvalidRepoIdError, match="run_branch"):
        HubRevisions(repo_id="me/data", run_branch="round-001")
    with pytest.raises(InvalidRepoIdError, match="run_branch"):
        HubRevisions(repo_id="me/data", run_branch="bad branch")
    with pytest.raises(EnergizerError, match="on_error"):
        HubRevisions(repo_id="me/data", on_error="ignore")
    assert issubclass(HubSyncError, EnergizerError)
    assert SECRET not in repr(HubRevisions(repo_id="me/data", token=SECRET))


def test_on_error_warn_keeps_the_run_going(run3, monkeypatch):
    learner, _, records = run3

    def failing_sync(self, run_dir=None, **kwargs):
        raise HubSyncError("Could not commit round-002 (HfHubHTTPError: 500).", round=2)

    monkeypatch.setattr(HubRevisions, "sync", failing_sync)
    run, pool = learner.run_info(), learner.pool
    with pytest.warns(UserWarning, match="missing rounds are pushed later"):
        HubRevisions(repo_id="me/data", on_error="warn").on_round_end(run, pool, records[-1])
    with pytest.raises(HubSyncError, match="round-002"):
        HubRevisions(repo_id="me/data").on_round_end(run, pool, records[-1])


def test_error_classification_and_scrubbing():
    assert _scrub(f"Bearer {SECRET} failed", [SECRET]) == "Bearer *** failed"
    assert "hf_abcdefghij" not in _scrub("token hf_abcdefghij in text", [])
    assert _classify(ConnectionResetError()) == "retry"
    assert _classify(ValueError("x")) == "fatal"


# ---------------------------------------------------------------------- the Hub (test server)
_SCRUBBED_ENV = SCRUBBED_ENV

PRELUDE = f"""
import os, sys, json, types
sys.path.insert(0, {str(REPO_ROOT)!r})
# energizer_hf.revisions without energizer_hf/__init__ (which imports Lightning): faster start
_pkg = types.ModuleType("energizer_hf")
_pkg.__path__ = [{str(REPO_ROOT / "energizer_hf")!r}]
sys.modules["energizer_hf"] = _pkg
import datasets
datasets.disable_progress_bars()
from huggingface_hub import HfApi, constants
assert constants.ENDPOINT == os.environ["HF_ENDPOINT"], constants.ENDPOINT
from energizer_hf.revisions import (
    HubRevisions, HubSyncError, RoundNotFoundError, load_round, round_tag,
)
from energizer_hf.run import front_matter as _front_matter
api = HfApi()

def checkpoint(name):
    print("@@checkpoint", name, flush=True)
    sys.stdin.readline()

def expect(exc_type, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_type as err:
        return err
    raise AssertionError(f"{{fn}} did not raise {{exc_type.__name__}}")
"""


def run_client(hub, tmp_path, script, *, checkpoints=None, timeout=240, prelude=PRELUDE):
    """Run ``prelude + script`` against ``hub``; ``checkpoint(name)`` calls ``checkpoints[name]()``."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(hub.client_env(hf_home=tmp_path / "hf_home"))
    env.update({"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"})
    stderr_path = tmp_path / f"client-{len(list(tmp_path.glob('client-*')))}.err"
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", prelude + textwrap.dedent(script)],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        lines = []
        try:
            for line in proc.stdout:
                if line.startswith("@@checkpoint "):
                    (checkpoints or {})[line.split()[1]]()
                    proc.stdin.write("\n")
                    proc.stdin.flush()
                else:
                    lines.append(line)
            proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
    out = "".join(lines)
    if proc.returncode != 0:
        pytest.fail(
            f"client failed (rc={proc.returncode})\n--- stdout\n{out}\n--- stderr\n{stderr_path.read_text()}"
        )
    return out


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture
def hub(tmp_path):
    from tests.hubsim.server import HubServer

    with HubServer(tmp_path / "hubdata", token=SECRET) as server:
        yield server


def _git(hub, repo_id, *args):
    git_dir = hub.git_dir(repo_id, "dataset")
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.integration
def test_rounds_pushed_with_retries_and_loaded_by_tag_branch_and_sha(
    hub, tmp_path, run3, demo_data
):
    learner, run_dir, records = run3
    repo = "tester/al-rounds"
    fault = hub.inject_fault(method="POST", path_regex=r"/commit/", kind="500", times=2)
    out = run_client(
        hub,
        tmp_path,
        f"""
        store = HubRevisions({repo!r}, retries=3, backoff=0.01)
        pushed = store.sync({str(run_dir)!r})
        assert sorted(pushed) == [0, 1, 2], pushed
        assert store.sync({str(run_dir)!r}) == {{}}  # idempotent: every tag is there
        refs = api.list_repo_refs({repo!r}, repo_type="dataset")
        tags = {{t.name: t.target_commit for t in refs.tags}}
        assert tags == {{round_tag(r): pushed[r] for r in pushed}}, tags
        assert {{b.name for b in refs.branches}} == {{"main", "energizer-run"}}
        assert api.dataset_info({repo!r}).private is True
        loaded = {{}}
        for name, rev in (("tag1", "round-001"), ("branch", "energizer-run"), ("sha0", pushed[0]),
                          ("int2", 2)):
            ds = load_round({repo!r}, rev)
            ds.save_to_disk(os.path.join("loaded", name))
            loaded[name] = {{"ids": ds["pool_id"][:], "labels": ds["label"][:],
                            "fp": json.loads(ds.info.description)["energizer_hf"]["pool_fingerprint"],
                            "names": ds.features["label"].names, "text": ds["text"][:3]}}
        card = api.hf_hub_download({repo!r}, "README.md", repo_type="dataset", revision="round-002")
        meta = _front_matter(open(card).read())
        err = expect(RoundNotFoundError, load_round, {repo!r}, "round-009")
        missing = str(err)
        err = expect(RoundNotFoundError, load_round, {repo!r}, "0" * 40)
        print(json.dumps({{"pushed": pushed, "loaded": loaded, "meta": meta, "missing": missing}}))
        """,
    )
    got = last_json(out)
    pushed = {int(k): v for k, v in got["pushed"].items()}
    # two 500s on the commit endpoint, retried; then exactly one commit and one tag per round
    assert fault.hits == 2
    assert hub.count_requests("POST", r"/commit/energizer-run$", 500) == 2
    assert (
        hub.count_requests("POST", r"^/api/datasets/tester/al-rounds/commit/energizer-run$", 200)
        == 3
    )
    assert hub.count_requests("POST", r"^/api/datasets/tester/al-rounds/tag/", 200) == 3
    log = _git(hub, repo, "log", "--format=%H %s", "energizer-run").splitlines()
    assert [line.split(" ", 1)[0] for line in log[:3]] == [pushed[2], pushed[1], pushed[0]]
    assert len(log) == 4 and log[0].split(" ", 1)[1].startswith("energizer_hf round-002:")
    assert _git(hub, repo, "ls-tree", "-r", "--name-only", "round-000").split() == [
        ".gitattributes",
        "README.md",
        "data/train-00000-of-00001.parquet",
    ]
    loaded = got["loaded"]
    pool = learner.pool
    for name, r in (("tag1", 1), ("branch", 2), ("sha0", 0), ("int2", 2)):
        local = load_round(run_dir, r)
        assert loaded[name]["ids"] == local["pool_id"][:] == _ids_up_to(pool, r).tolist(), name
        assert loaded[name]["labels"] == local["label"][:]
        assert loaded[name]["fp"] == pool.fingerprint
        assert loaded[name]["names"] == learner.label_names
        assert loaded[name]["text"] == local["text"][:3]
    assert got["meta"]["energizer_hf"]["round"] == 2 and got["meta"]["size_categories"] == ["n<1K"]
    assert "round-009" in got["missing"] and "round-000, round-001, round-002" in got["missing"]
    # resume from the Hub revision: same labelled ids as the run had after round 1
    from_hub = datasets.load_from_disk(str(tmp_path / "loaded" / "tag1"))
    fresh = ActivePool(demo_data["train"])
    assert rebuild_pool_state(fresh, from_hub).tolist() == _ids_up_to(pool, 1).tolist()
    assert fresh.labels[fresh.labelled_ids].tolist() == pool.labels[fresh.labelled_ids].tolist()


@pytest.mark.integration
def test_persistent_failure_then_sync_pushes_the_missing_round_once(hub, tmp_path, run3):
    _, run_dir, _ = run3
    repo = "tester/al-flaky"
    # the same rounds as if made by another run (another run.json)
    other = tmp_path / "other-run"
    shutil.copytree(run_dir / "revisions", other / "revisions")
    card = other / "revisions" / "round-000" / "README.md"
    text = card.read_text()
    assert re.search(r"run_id: [0-9a-f]{16}", text)
    card.write_text(re.sub(r"run_id: [0-9a-f]{16}", "run_id: 0123456789abcdef", text))

    def break_commits():
        hub.inject_fault(method="POST", path_regex=r"/commit/", kind="500", times=None)

    out = run_client(
        hub,
        tmp_path,
        f"""
        run_dir = {str(run_dir)!r}
        # a wrong token: no retries, a named error without the token
        bad = HubRevisions({repo!r}, token="hf_WrongTokenValue0000", retries=3, backoff=0.01)
        err = expect(HubSyncError, bad.sync, run_dir)
        assert err.status_code == 401, err.status_code
        assert "hf_WrongTokenValue0000" not in str(err) and "credentials" in str(err), str(err)
        wrong_token = str(err)

        store = HubRevisions({repo!r}, retries=2, backoff=0.01)
        assert sorted(store.sync(run_dir, rounds=[0, 1])) == [0, 1]
        before = datasets.load_from_disk(os.path.join(run_dir, "revisions", "round-002"))
        checkpoint("break")
        err = expect(HubSyncError, store.sync, run_dir)
        assert err.round == 2 and err.status_code == 500, (err.round, err.status_code)
        failed = str(err)
        after = datasets.load_from_disk(os.path.join(run_dir, "revisions", "round-002"))
        assert after["pool_id"][:] == before["pool_id"][:] and after["label"][:] == before["label"][:]
        tags = sorted(t.name for t in api.list_repo_refs({repo!r}, repo_type="dataset").tags)
        assert tags == ["round-000", "round-001"], tags
        checkpoint("heal")
        pushed = store.sync(run_dir)
        assert sorted(pushed) == [2], pushed
        assert store.sync(run_dir) == {{}}
        err = expect(HubSyncError, HubRevisions({repo!r}).sync, {str(other)!r})
        assert "not made by this run" in str(err) and err.round == 0, str(err)
        print(json.dumps({{"failed": failed, "wrong_token": wrong_token}}))
        """,
        checkpoints={"break": break_commits, "heal": hub.reset_faults},
    )
    got = last_json(out)
    for message in got.values():
        assert SECRET not in message and "hf_WrongTokenValue0000" not in message
    assert "after 3 attempt(s)" in got["failed"] and "is intact" in got["failed"]
    assert "round-002" in got["failed"]
    # one 401 and no retry of it
    assert hub.count_requests(path_regex=r"/api/", status=401) == 1
    # round 2: 3 failed attempts, then exactly one commit; one tag per round overall
    assert hub.count_requests("POST", r"/commit/energizer-run$", 500) == 3
    assert hub.count_requests("POST", r"/commit/energizer-run$", 200) == 3
    assert hub.count_requests("POST", r"/tag/", 200) == 3
    assert len(_git(hub, repo, "log", "--format=%H", "energizer-run").split()) == 4


@pytest.mark.integration
@pytest.mark.slow
def test_example_script_pushes_rounds_and_the_final_model(hub, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(hub.client_env(hf_home=tmp_path / "hf_home"))
    env.update({"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "examples" / "push_rounds_to_hub.py"),
            "--run-dir",
            str(tmp_path / "run"),
            "--dataset-repo",
            "tester/example-rounds",
            "--model-repo",
            "tester/example-model",
            "--rounds",
            "2",
        ],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert SECRET not in proc.stdout + proc.stderr
    tags = _git(hub, "tester/example-rounds", "tag", "--list").split()
    assert tags == ["round-000", "round-001", "round-002"]
    # the rounds were pushed by the callback as the run went, one commit each
    assert (
        hub.count_requests(
            "POST", r"^/api/datasets/tester/example-rounds/commit/energizer-run$", 200
        )
        == 3
    )
    assert (
        hub.count_requests("POST", r"^/api/datasets/tester/example-rounds/commit/main$", 200) == 1
    )
    git_dir = hub.git_dir("tester/example-model", "model")
    files = subprocess.run(
        ["git", f"--git-dir={git_dir}", "ls-tree", "-r", "--name-only", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json"} <= set(files), files
    card = subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", "main:README.md"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    meta = _front_matter(card)
    assert meta["library_name"] == "transformers" and meta["datasets"] == ["tester/example-rounds"]
    result = meta["model-index"][0]["results"][0]
    # measured on the demo dataset's test split; the labelled set is linked as training data
    assert result["dataset"] == {"type": "energizer_hf_demo", "name": "energizer_hf_demo", "split": "test"}
    assert {m["type"] for m in result["metrics"]} == {"accuracy", "f1"}
    main = _git(hub, "tester/example-rounds", "rev-parse", "main").strip()
    assert main == summary["dataset_commit"] and summary["dataset_commit"] in card
    assert yaml.safe_load(json.dumps(meta))  # plain data all the way down


# ---------------------------------------------------------------------- the real Hub (opt-in)
@pytest.mark.integration
@pytest.mark.skipif(
    os.environ.get("ENERGIZER_HF_REAL_HUB") != "1" or not os.environ.get("HF_TOKEN"),
    reason="pushes to huggingface.co: set ENERGIZER_HF_REAL_HUB=1 and HF_TOKEN to run it",
)
def test_real_hub_round_trip(run3, tmp_path):
    """Push the rounds to a new private dataset repo of the token's user, load round-001 back
    by its tag, then delete the repo."""
    _, run_dir, _ = run3
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV or k == "HF_TOKEN"}
    env.pop("HF_ENDPOINT", None)
    env.update({"OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "hf_home")})
    prelude = PRELUDE.replace(
        'assert constants.ENDPOINT == os.environ["HF_ENDPOINT"], constants.ENDPOINT',
        'assert constants.ENDPOINT == "https://huggingface.co", constants.ENDPOINT',
    )
    script = f"""
    import uuid
    repo = api.whoami()["name"] + "/energizer-hf-test-" + uuid.uuid4().hex[:8]
    try:
        store = HubRevisions(repo, private=True, retries=3, backoff=2.0)
        pushed = store.sync({str(run_dir)!r})
        assert sorted(pushed) == [0, 1, 2], pushed
        assert store.sync({str(run_dir)!r}) == {{}}
        assert api.dataset_info(repo).private is True
        ds = load_round(repo, "round-001")
        local = load_round({str(run_dir)!r}, 1)
        assert ds["pool_id"][:] == local["pool_id"][:] and ds["label"][:] == local["label"][:]
        meta = json.loads(ds.info.description)["energizer_hf"]
        assert meta["round"] == 1, meta
        print(json.dumps({{"repo": repo, "rows": len(ds)}}))
    finally:
        api.delete_repo(repo, repo_type="dataset", missing_ok=True)
    """
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert last_json(proc.stdout)["rows"] == 20
    assert os.environ["HF_TOKEN"] not in proc.stdout + proc.stderr
