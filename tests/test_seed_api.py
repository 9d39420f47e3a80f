"""The seed API of the design document, end to end."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from energizer_hf import (
    ActiveDataModule,
    BudgetError,
    EnergizerError,
    PoolExhaustedWarning,
    Trainer,
)
from energizer_hf.acquisition_functions import entropy
from energizer_hf.query_strategies import AccumulatorStrategy, EntropyStrategy, RandomStrategy
from tests.seed_models import DictDataset, InputsHookModel, UnpackingModel, loaders, make_blobs


def _trainer(tmp_path, **kw):
    args = dict(
        max_labelling_epochs=3,
        query_size=10,
        max_epochs=2,
        test_after_labelling=True,
        reset_weights=True,
        total_budget=-1,
        enable_progress_bar=False,
        enable_model_summary=False,
        progress=False,
        run_dir=tmp_path / "run",
    )
    if "max_rounds" in kw:  # the same number under the name the other faces use
        args.pop("max_labelling_epochs")
    args.update(kw)
    return Trainer(**args)


class MyEntropy(AccumulatorStrategy):
    def pool_step(self, batch, batch_idx, *args, **kwargs):
        return entropy(self(batch))


def test_seed_usage_with_dataloaders(tmp_path):
    train_dl, test_dl, _ = loaders()
    trainer = _trainer(tmp_path)
    results = trainer.active_fit(model=MyEntropy(UnpackingModel()), train_dataloaders=train_dl, test_dataloaders=test_dl)
    df = results.to_pandas()
    assert df["round"].tolist() == [0, 1, 2, 3]
    assert df["num_labelled"].tolist() == [10, 20, 30, 40]  # random cold start, then 3 queries
    assert df["test/accuracy"].notna().all()
    assert df["stop_reason"].tolist()[-1] == "max_rounds"
    queried = [i for ids in df["queried_ids"] for i in ids]
    assert len(queried) == len(set(queried)) == 30
    assert (tmp_path / "run" / "rounds.jsonl").read_text().count("\n") == 4


def test_datamodule_with_initial_labels_and_inputs_hook(tmp_path):
    x, y = make_blobs(200)
    train_dl = DataLoader(DictDataset(x[:150], y[:150]), batch_size=16)
    test_dl = DataLoader(DictDataset(x[150:], y[150:]), batch_size=50)
    dm = ActiveDataModule(train_dl, test_dataloader=test_dl)
    dm.label([0, 1, 2, 3, 4])
    trainer = _trainer(tmp_path, max_labelling_epochs=2, query_size=7)
    strategy = EntropyStrategy(InputsHookModel())  # model's get_inputs_from_batch strips labels
    results = trainer.active_fit(model=strategy, datamodule=dm)
    assert [r["num_labelled"] for r in results] == [5, 12, 19]
    assert dm.pool.num_labelled == 19
    assert all(0.0 <= r["test/accuracy"] <= 1.0 for r in results)


def test_strategy_level_inputs_hook(tmp_path):
    x, y = make_blobs(120)
    train_dl = DataLoader(DictDataset(x, y), batch_size=16)

    class Hooked(EntropyStrategy):
        def get_inputs_from_batch(self, batch):
            return batch["features"]

    class PlainModel(InputsHookModel):
        get_inputs_from_batch = None  # the strategy's hook is the one used

    res = _trainer(tmp_path, max_labelling_epochs=1).active_fit(model=Hooked(PlainModel()), train_dataloaders=train_dl)
    assert len(res) == 2 and res[0]["num_queried"] == 10


def test_same_seed_same_queries(tmp_path):
    train_dl, test_dl, _ = loaders()
    runs = []
    for i in range(2):
        trainer = _trainer(tmp_path, run_dir=tmp_path / f"run{i}", seed=7)
        torch.manual_seed(0)  # the user's model: same initial weights
        res = trainer.active_fit(model=EntropyStrategy(UnpackingModel()), train_dataloaders=train_dl, test_dataloaders=test_dl)
        runs.append([r["queried_ids"] for r in res])
    assert runs[0] == runs[1]


def test_total_budget_stops_and_pool_exhaustion_warns(tmp_path):
    train_dl, _, _ = loaders(n=25)
    trainer = _trainer(tmp_path, max_labelling_epochs=-1, total_budget=100, query_size=10)
    with pytest.warns(PoolExhaustedWarning):
        res = trainer.active_fit(model=RandomStrategy(UnpackingModel()), train_dataloaders=train_dl)
    assert [r["num_labelled"] for r in res] == [10, 20, 25]
    assert res.stop_reason == "pool_exhausted"
    res2 = _trainer(tmp_path, run_dir=tmp_path / "b", max_labelling_epochs=-1, total_budget=25, query_size=10).active_fit(
        model=RandomStrategy(UnpackingModel()), train_dataloaders=loaders(n=100)[0]
    )
    assert [r["num_labelled"] for r in res2] == [10, 20, 25] and res2.stop_reason == "budget_exhausted"


class _WeightsAtFitStart(pl.Callback):
    def __init__(self):
        self.seen = []

    def on_fit_start(self, trainer, pl_module):
        self.seen.append(pl_module.net[0].weight.detach().clone())


@pytest.mark.parametrize("reset", [True, False])
def test_reset_weights(tmp_path, reset):
    train_dl, _, _ = loaders()
    strategy = EntropyStrategy(UnpackingModel())
    initial = strategy.model.net[0].weight.detach().clone()
    spy = _WeightsAtFitStart()
    trainer = _trainer(tmp_path, max_labelling_epochs=2, reset_weights=reset, callbacks=[spy])
    trainer.active_fit(model=strategy, train_dataloaders=train_dl)
    assert len(spy.seen) == 3
    assert torch.equal(spy.seen[0], initial)
    assert all(torch.equal(w, initial) for w in spy.seen[1:]) == reset
    assert (tmp_path / "run" / "model_state.pt").exists() != reset


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"query_size": 0}, "query_size"),
        ({"query_size": -3}, "query_size"),
        ({"total_budget": 0}, "total_budget"),
        ({"max_labelling_epochs": -1, "total_budget": -1}, "max_rounds"),
        ({"validation_perc": 1.5}, "validation_perc"),
    ],
)
def test_bad_trainer_arguments(kwargs, match):
    with pytest.raises(BudgetError, match=match):
        Trainer(enable_progress_bar=False, **kwargs)


def test_budget_smaller_than_initial_set(tmp_path):
    train_dl, _, _ = loaders()
    dm = ActiveDataModule(train_dl)
    dm.label(list(range(20)))
    with pytest.raises(BudgetError, match="smaller than the initial labelled set"):
        _trainer(tmp_path, total_budget=10).active_fit(model=EntropyStrategy(UnpackingModel()), datamodule=dm)


def test_active_fit_needs_a_strategy(tmp_path):
    train_dl, _, _ = loaders()
    with pytest.raises(EnergizerError, match="query strategy"):
        _trainer(tmp_path).active_fit(model=UnpackingModel(), train_dataloaders=train_dl)


def test_random_needs_no_model_forward(tmp_path):
    train_dl, _, _ = loaders()

    class Exploding(UnpackingModel):
        def forward(self, batch):
            if not self.training:
                raise AssertionError("random must not score the pool")
            return super().forward(batch)

    res = _trainer(tmp_path, max_labelling_epochs=1).active_fit(model=RandomStrategy(Exploding()), train_dataloaders=train_dl)
    assert res[0]["num_queried"] == 10
    assert np.isfinite(res[0]["time_fit"])


def test_round_and_pool_hooks_are_called(tmp_path):
    calls = []

    class Hooked(EntropyStrategy):
        def on_round_start(self, loop, round):
            calls.append(("round_start", round))

        def on_round_end(self, loop, record):
            calls.append(("round_end", record["round"]))

        def on_pool_start(self, context):
            calls.append(("pool_start", context.round))

        def on_pool_end(self, context, ids):
            calls.append(("pool_end", len(ids)))

    train_dl, _, _ = loaders()
    _trainer(tmp_path, max_labelling_epochs=1).active_fit(model=Hooked(UnpackingModel()), train_dataloaders=train_dl)
    assert calls == [
        ("round_start", 0), ("pool_start", 0), ("pool_end", 10), ("round_end", 0),
        ("round_start", 1), ("round_end", 1),
    ]


def test_the_seed_face_keeps_revisions_and_the_final_model(tmp_path):
    """The seed Trainer reaches what the HF-native path has: revisions, final model,
    stopping criteria and the initial strategy, under the same names."""
    import torch

    from energizer_hf.revisions import load_round
    from energizer_hf.run import RunDir, RunInfo

    x, y = make_blobs(150)
    train_dl = DataLoader(DictDataset(x, y), batch_size=16)
    dm = ActiveDataModule(train_dl, labels=y)
    trainer = _trainer(tmp_path, max_rounds=2, query_size=9, initial_size=12,
                       stopping_criteria=["kappa_average"])
    strategy = EntropyStrategy(InputsHookModel())
    results = trainer.active_fit(model=strategy, datamodule=dm)
    files = RunDir(tmp_path / "run")
    assert files.local_rounds() == [r["round"] for r in results] == [0, 1, 2]
    first = load_round(files.root, 0)
    assert first["label"][:] == y[first["pool_id"][:]].tolist()  # the true labels were revealed
    # stratified by default when the true labels are known: 12 = 4 per class
    assert sorted(np.bincount(y[dm.pool.ids_of_round(0)]).tolist()) == [4, 4, 4]
    state = torch.load(files.final_state_dict, weights_only=True)
    assert torch.equal(state["net.weight"], strategy.model.state_dict()["net.weight"])
    run = RunInfo.from_dir(files.root)
    assert run.settings["initial_strategy"] == "stratified"
    assert run.settings["stopping_criteria"] == [
        "KappaAverage(threshold=0.99, window=3, stop_set_size=2000, stop_ids=None)"
    ]
    assert run.strategy == "entropy" and run.label_source == "dataset"
    random_start = _trainer(tmp_path / "r", max_rounds=0, initial_size=12, initial_strategy="random")
    random_start.active_fit(model=EntropyStrategy(InputsHookModel()), datamodule=ActiveDataModule(train_dl, labels=y))
    assert RunInfo.from_dir(tmp_path / "r" / "run").settings["initial_strategy"] == "random"
