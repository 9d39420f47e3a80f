"""The fit schedule and the Lightning controls of the HF-native path (and the seed face's
logger), on a tiny BERT."""

import copy
import csv
import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from energizer_hf import BudgetError, EnergizerError
from energizer_hf.errors import PeftConfigError, TrainerArgumentError
from energizer_hf.learner import OLD_FIT_DEFAULTS, ActiveLearner, RunConfig
from energizer_hf.schedule import FitSchedule
from tests.conftest import learner_kwargs


def _learner(tmp_path, data, tok, cfg, **kw):
    return ActiveLearner(dataset=data, model=cfg, tokenizer=tok, **learner_kwargs(tmp_path, **kw))


def _csv_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------- schedule
def test_schedule_step_floor_and_epochs():
    s = FitSchedule(min_steps=200, max_epochs=10)
    small = s.plan(25, 16)
    assert small.steps_per_epoch == 2 and small.total_steps == 200 and small.max_epochs == 100
    big = s.plan(1000, 16)
    assert big.max_epochs == 10 and big.total_steps == 630
    assert s.plan(25, 16, accumulate_grad_batches=2).steps_per_epoch == 1
    fixed = FitSchedule(min_steps=0, max_epochs=3).plan(25, 16)
    assert fixed.total_steps == 6 and fixed.max_epochs == 3


def test_schedule_selects_only_with_enough_validation_rows():
    s = FitSchedule(min_steps=200, max_epochs=10)
    few = s.plan(20, 16, num_validation=5, num_classes=4)
    assert few.train_on_validation and not few.select_best and few.num_train == 25
    many = s.plan(180, 16, num_validation=45, num_classes=6)
    assert many.select_best and many.num_validation == 45 and not many.train_on_validation
    # about 10 validation passes, the last epoch among them
    assert many.max_epochs % many.check_val_every_n_epoch == 0
    assert 8 <= many.max_epochs // many.check_val_every_n_epoch <= 12
    assert s.validation_threshold(77) == 154


@pytest.mark.parametrize("bad", [{"min_steps": -1}, {"max_epochs": 0}, {"min_validation_size": 0}])
def test_schedule_bad_values(bad):
    with pytest.raises(BudgetError):
        FitSchedule(**bad)
    with pytest.raises(BudgetError):
        RunConfig(**bad)


def test_min_steps_reached_in_a_run(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    res = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, min_steps=30, max_epochs=2,
                   initial_size=20, rounds=1, query_size=20).run()
    # 20 rows / batch 16 = 2 steps per epoch: 15 epochs; 40 rows: 3 steps per epoch, 10 epochs
    assert [(r["steps"], r["epochs"]) for r in res] == [(30, 15), (30, 10)]


def test_old_fit_is_reachable(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    kw = {**OLD_FIT_DEFAULTS, "learning_rate": 1e-3}
    res = ActiveLearner(dataset=demo_data, model=tiny_bert_config, tokenizer=demo_tokenizer,
                        **{**learner_kwargs(tmp_path, rounds=0, initial_size=25), **kw}).run()
    assert res[0]["steps"] == 6 and res[0]["epochs"] == 3  # 3 epochs of 2 batches


# ---------------------------------------------------------------------- batches
def test_length_grouped_batches_and_sorted_test_pass(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    learner = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=0, initial_size=60,
                       batch_size=8)
    learner.setup()
    data = learner.loop.backend.data
    learner.loop.pool.label(np.arange(60), np.zeros(60, dtype=np.int64))
    loader = data.train_loader(learner.loop.pool, seed=0)
    epochs = [[list(b) for b in loader.batch_sampler] for _ in range(2)]
    for batches in epochs:
        assert sorted(i for b in batches for i in b) == list(range(60))
    assert epochs[0] != epochs[1]  # a new shuffle every epoch
    lengths = data.lengths[:60]
    pad = sum(len(b) * lengths[b].max() for b in epochs[0])
    rng = np.random.default_rng(0)
    perm = rng.permutation(60)
    pad_random = sum(8 * lengths[perm[i:i + 8]].max() for i in range(0, 60, 8))
    assert pad <= pad_random
    test_batches = list(data.test_loader().batch_sampler)
    tl = data.test_lengths
    assert sorted(i for b in test_batches for i in b) == list(range(len(tl)))
    maxes = [tl[b].max() for b in test_batches]
    assert maxes == sorted(maxes)


def test_sorted_test_pass_gives_the_same_metrics(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    learner = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=0)
    rec = learner.run()[0]
    backend = learner.loop.backend
    backend.data.test_lengths = None  # dataset order
    unsorted = backend.test(0)
    assert unsorted["test/accuracy"] == pytest.approx(rec["test/accuracy"])
    assert unsorted["test/f1_macro"] == pytest.approx(rec["test/f1_macro"])


# ---------------------------------------------------------------------- trainer kwargs
def test_logger_through_trainer_kwargs_writes_one_series_per_round(tmp_path, demo_data, demo_tokenizer,
                                                                    tiny_bert_config):
    from pytorch_lightning.loggers import CSVLogger

    logger = CSVLogger(str(tmp_path / "logs"), name="al")
    res = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, max_epochs=2,
                   trainer_kwargs={"logger": logger}).run()
    rows = _csv_rows(tmp_path / "logs" / "al" / "version_0" / "metrics.csv")
    series = [r for r in rows if r.get("al/test/accuracy")]
    assert len(series) == len(res) == 3
    steps = [int(r["step"]) for r in series]
    assert steps == [r["num_labelled"] for r in res] and steps == sorted(set(steps))
    assert [float(r["al/test/accuracy"]) for r in series] == pytest.approx([r["test/accuracy"] for r in res])
    # per-epoch fit curves under a per-round prefix, for every round
    for k in range(3):
        assert any(r.get(f"round_{k:03d}/train/loss") for r in rows), k
    assert not any(k.startswith("test/") for k in rows[0])  # no test metrics at step 0


def test_trainer_arguments_as_keywords_and_a_yaml_logger(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    from pytorch_lightning.loggers import CSVLogger

    res = _learner(tmp_path / "a", demo_data, demo_tokenizer, tiny_bert_config, rounds=0, initial_size=32,
                   logger=CSVLogger(str(tmp_path / "kw")), accumulate_grad_batches=2, gradient_clip_val=1.0,
                   deterministic=True).run()
    assert res[0]["steps"] == 1  # 2 batches of 16, accumulated into one step
    assert list((tmp_path / "kw").rglob("metrics.csv"))
    # the YAML form: a short name, saved under the run directory
    learner = _learner(tmp_path / "b", demo_data, demo_tokenizer, tiny_bert_config, rounds=0,
                       trainer_kwargs={"logger": "tensorboard"})
    learner.run()
    events = list((tmp_path / "b" / "run" / "logs").rglob("events.out.tfevents*"))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for path in {e.parent for e in events}:
        acc = EventAccumulator(str(path))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    assert "al/test/accuracy" in tags and "round_000/train/loss" in tags


def test_lightning_callbacks_fire_and_loop_callbacks_too(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    class Counting(pl.Callback):
        def __init__(self):
            self.fits = self.tests = self.batches = 0

        def on_train_start(self, trainer, pl_module):
            self.fits += 1

        def on_train_batch_end(self, *args):
            self.batches += 1

        def on_test_start(self, trainer, pl_module):
            self.tests += 1

    class LoopHook:
        def __init__(self):
            self.records = []

        def on_round_end(self, loop, record):
            self.records.append(record["round"])

    cb, hook, spec_cb = Counting(), LoopHook(), Counting()
    res = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, callbacks=[cb, hook],
                   trainer_kwargs={"callbacks": [spec_cb]}).run()
    assert cb.fits == len(res) == 3 and cb.tests == 3 and cb.batches > 0
    assert spec_cb.fits == 3
    assert hook.records == [0, 1, 2]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"trainer_kwargs": {"acumulate_grad_batches": 2}}, "accumulate_grad_batches"),
        ({"trainer_kwargs": {"max_epochs": 5}}, "RunConfig.max_epochs"),
        ({"trainer_kwargs": {"max_steps": 5}}, "min_steps"),
        ({"trainer_kwargs": {"limit_train_batches": 0}}, "limit_train_batches=0"),
        ({"trainer_kwargs": {"precision": "bf16-mixed"}, "precision": "16-mixed"}, "given twice"),
        ({"trainer_kwargs": {"logger": "nosuchlogger"}}, "Unknown logger"),
    ],
)
def test_bad_trainer_arguments(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, kwargs, match):
    with pytest.raises(TrainerArgumentError, match=match):
        _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, **kwargs).setup()


def test_bad_keyword_arguments(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    with pytest.raises(TrainerArgumentError, match="gradient_clip_val"):
        _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, gradient_clip_vall=1.0)
    with pytest.raises(TrainerArgumentError, match="given twice"):
        _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, accumulate_grad_batches=2,
                 trainer_kwargs={"accumulate_grad_batches": 4})
    with pytest.raises(EnergizerError, match="trainer_kwargs: got .* expected a mapping"):
        RunConfig(trainer_kwargs=["logger"])


def test_trainer_kwargs_from_yaml_keep_the_run_resumable(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    from pytorch_lightning.loggers import CSVLogger

    kw = dict(rounds=1, trainer_kwargs={"gradient_clip_val": 1.0})
    _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, **kw).run()
    # a logger object is not part of the run's identity: extending the run with one is fine
    res = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=2,
                   trainer_kwargs={"gradient_clip_val": 1.0, "logger": CSVLogger(str(tmp_path / "l"))}).run()
    assert len(res) == 3
    cfg = RunConfig(trainer_kwargs={"logger": CSVLogger(str(tmp_path / "l")), "gradient_clip_val": 1.0})
    assert cfg.to_dict()["trainer_kwargs"] == {"gradient_clip_val": 1.0}


def test_fit_progress_bar(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, capsys):
    _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=0, progress=True).run()
    assert "fit round 0" in capsys.readouterr().err


# ---------------------------------------------------------------------- model options
def test_peft_model_runs_rounds(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForSequenceClassification

    cfg = copy.deepcopy(tiny_bert_config)
    cfg.num_labels = len(demo_data["train"].features["label"].names)
    base = AutoModelForSequenceClassification.from_config(cfg)
    model = peft.get_peft_model(base, peft.LoraConfig(task_type="SEQ_CLS", r=2, target_modules=["query", "value"]))
    learner = ActiveLearner(dataset=demo_data, model=model, tokenizer=demo_tokenizer, strategy="badge",
                            **learner_kwargs(tmp_path, rounds=1))
    res = learner.run()
    assert len(res) == 2 and "test/accuracy" in res[1]
    trainable = {n for n, p in learner.module.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    # a peft config as a mapping (YAML) builds the adapter
    learner = _learner(tmp_path / "b", demo_data, demo_tokenizer, tiny_bert_config, rounds=0,
                       peft={"peft_type": "lora", "r": 2, "target_modules": ["query"]})
    learner.run()
    assert any("lora_" in n for n, _ in learner.module.named_parameters())


def test_peft_with_another_task_type_is_refused(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    peft = pytest.importorskip("peft")
    with pytest.raises(PeftConfigError, match="SEQ_CLS"):
        _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config,
                 peft=peft.LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["query"])).setup()
    with pytest.raises(PeftConfigError, match="peft_type"):
        _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, peft={"r": 2}).setup()


def test_class_weighted_loss_gradient_checkpointing_and_frozen_embeddings(tmp_path, demo_data, demo_tokenizer,
                                                                          tiny_bert_config):
    learner = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=0, initial_size=20,
                       initial_strategy="random", class_weights="balanced", gradient_checkpointing=True,
                       freeze_embeddings=True)
    before = None
    learner.setup()
    emb = learner.module.model.get_input_embeddings().weight
    before = emb.detach().clone()
    learner.run()
    weights = learner.module.class_weights
    labels = learner.pool.labels[learner.pool.train_ids]
    counts = np.bincount(labels, minlength=4)
    expected = [20 / ((counts > 0).sum() * c) if c else 1.0 for c in counts]
    assert weights.tolist() == pytest.approx(expected)
    assert torch.equal(emb, before) and not emb.requires_grad
    assert any(getattr(m, "gradient_checkpointing", False) for m in learner.module.model.modules())
    with pytest.raises(EnergizerError, match="class_weights has 2 weights"):
        _learner(tmp_path / "b", demo_data, demo_tokenizer, tiny_bert_config, rounds=0,
                 class_weights=[1.0, 2.0]).run()
    with pytest.raises(EnergizerError, match="'balanced'.* or a list"):
        RunConfig(class_weights="inverse")


# ---------------------------------------------------------------------- the seed face
def test_seed_face_logger_gets_a_monotone_round_series(tmp_path):
    from pytorch_lightning.loggers import CSVLogger
    from torch.utils.data import DataLoader, TensorDataset

    from energizer_hf import Trainer
    from energizer_hf.query_strategies import EntropyStrategy
    from tests.seed_models import UnpackingModel, make_blobs

    class Logging(UnpackingModel):  # a user's module that logs its training loss
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            self.log("train_loss", loss)
            return loss

    x, y = make_blobs(160)
    loader = DataLoader(TensorDataset(x[:120], y[:120]), batch_size=16)
    test = DataLoader(TensorDataset(x[120:], y[120:]), batch_size=16)
    logger = CSVLogger(str(tmp_path / "logs"), name="seed")
    trainer = Trainer(max_labelling_epochs=2, query_size=10, max_epochs=2, run_dir=str(tmp_path / "run"),
                      progress=False, enable_progress_bar=False, enable_model_summary=False, logger=logger,
                      log_every_n_steps=1)
    res = trainer.active_fit(EntropyStrategy(Logging()), train_dataloaders=loader, test_dataloaders=test)
    rows = _csv_rows(tmp_path / "logs" / "seed" / "version_0" / "metrics.csv")
    series = [r for r in rows if r.get("al/num_labelled")]
    assert [int(r["step"]) for r in series] == [r["num_labelled"] for r in res] == [10, 20, 30]
    assert any(r.get("round_002/train_loss") for r in rows)
    assert not math.isnan(float(series[-1]["al/test/accuracy"]))


def test_head_learning_rate(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    class Grab(pl.Callback):
        def on_train_end(self, trainer, pl_module):
            self.groups = trainer.optimizers[0].param_groups

    grab = Grab()
    learner = _learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, rounds=0, learning_rate=1e-4,
                       head_learning_rate=1e-2, callbacks=[grab])
    learner.run()
    groups = grab.groups
    names = {id(p): n for n, p in learner.module.model.named_parameters()}
    head = [g for g in groups if g["initial_lr"] == 1e-2]
    assert head and all(names[id(p)].startswith("classifier.") for g in head for p in g["params"])
    body = [p for g in groups if g["initial_lr"] == 1e-4 for p in g["params"]]
    assert len(body) + sum(len(g["params"]) for g in head) == len(names)
