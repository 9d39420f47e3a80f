"""A storage backend written here, in the test file, plugs into a run with no change to the package.

``ParquetRounds`` keeps each round as ``<folder>/round-NNN.parquet`` (+ a small JSON file of
its metadata): the three methods of :class:`energizer_hf.revisions.RoundStore` and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np

from energizer_hf import ActivePool, Trainer
from energizer_hf.learner import ActiveLearner
from energizer_hf.query_strategies import EntropyStrategy
from energizer_hf.revisions import (
    RoundStore,
    build_round_dataset,
    load_round,
    restore_from_revision,
)
from energizer_hf.revisions.rounds import dataset_meta, set_dataset_meta
from energizer_hf.run import RunDir
from tests.conftest import learner_kwargs
from tests.seed_models import UnpackingModel, loaders


class ParquetRounds:
    """Each round's labelled set as one Parquet file in a folder."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def _path(self, round, suffix=".parquet"):
        return self.folder / f"round-{int(round):03d}{suffix}"

    def on_round_end(self, run, pool, record):
        ds = build_round_dataset(
            pool, record["round"], label_names=list(run.label_names) or None,
            label_source=run.label_source, metadata={"run_id": run.run_id, "strategy": run.strategy},
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(self._path(record["round"])))
        self._path(record["round"], ".json").write_text(json.dumps(dataset_meta(ds)))

    def rounds(self):
        return sorted(int(p.stem.split("-")[1]) for p in self.folder.glob("round-*.parquet"))

    def load(self, revision=None):
        round = self.rounds()[-1] if revision is None else int(str(revision).split("-")[-1])
        ds = datasets.Dataset.from_parquet(str(self._path(round)))
        set_dataset_meta(ds, json.loads(self._path(round, ".json").read_text()))
        return ds


def test_a_store_from_outside_the_package_keeps_every_round(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    store = ParquetRounds(tmp_path / "parquet")
    assert isinstance(store, RoundStore)
    learner = ActiveLearner(
        dataset=demo_data, model=tiny_bert_config, tokenizer=demo_tokenizer, strategy="entropy",
        callbacks=[store], **learner_kwargs(tmp_path, rounds=2),
    )
    records = list(learner.run())
    assert store.rounds() == [0, 1, 2]
    files = RunDir(learner.config.run_dir)
    assert not files.revisions.exists()  # the given store replaces the default local one
    for rec in records:
        ds = store.load(rec["round"])
        rounds = np.asarray(learner.pool.rounds)
        assert ds["pool_id"][:] == np.flatnonzero((rounds >= 0) & (rounds <= rec["round"])).tolist()
        assert dataset_meta(ds)["run_id"] == files.run_id() and dataset_meta(ds)["strategy"] == "entropy"
    # a new run starts from round 1 of this store, through the same protocol
    pool = ActivePool(demo_data["train"])
    assert restore_from_revision(pool, store, 1, run_dir=tmp_path / "from-store") == 1
    assert pool.labelled_ids.tolist() == load_round(store, 1)["pool_id"][:]


def test_the_seed_trainer_takes_the_same_store(tmp_path):
    train_dl, test_dl, _ = loaders()
    store = ParquetRounds(tmp_path / "seed-parquet")
    trainer = Trainer(max_rounds=2, query_size=10, max_epochs=1, enable_progress_bar=False,
                      enable_model_summary=False, progress=False, run_dir=tmp_path / "run")
    trainer.active_fit(model=EntropyStrategy(UnpackingModel()), train_dataloaders=train_dl,
                       test_dataloaders=test_dl, callbacks=[store])
    assert store.rounds() == [0, 1, 2] and len(store.load()) == 30
    assert store.load(0)["label_source"][:] == ["dataset"] * 10
