import json

import datasets
import numpy as np
import pytest
import torch
from torch.utils.data import Subset, TensorDataset

from energizer_hf import ActivePool, DatasetMismatchError, EmptyPoolError, InvalidIdsError
from energizer_hf.pool import STATE_DTYPE, split_validation


@pytest.fixture
def ds():
    return datasets.Dataset.from_dict({"text": [f"t{i}" for i in range(50)], "label": [i % 3 for i in range(50)]})


def test_state_is_memory_mapped_and_persisted(ds, tmp_path):
    pool = ActivePool(ds, tmp_path / "s")
    pool.label([1, 2, 3], labels=[1, 2, 0], round=0)
    assert isinstance(pool.state, np.memmap)
    assert pool.state.dtype == STATE_DTYPE
    again = ActivePool(ds, tmp_path / "s")
    assert again.labelled_ids.tolist() == [1, 2, 3]
    assert again.labels[[1, 2, 3]].tolist() == [1, 2, 0]
    assert again.rounds[0] == -1


def test_views_are_zero_copy_selections(ds):
    pool = ActivePool(ds)
    pool.label([4, 0], labels=[1, 0], round=0)
    view = pool.labelled
    assert view._indices is not None  # an indices mapping over the same Arrow table
    # the view's Arrow buffers are the dataset's own: nothing was copied
    def addresses(d):
        return [b.address for c in d.data.table.column("text").chunks for b in c.buffers() if b]

    assert addresses(view) == addresses(ds)
    assert view["text"][:] == ["t0", "t4"]
    assert len(pool.unlabelled) == 48 and 0 not in pool.unlabelled_ids


def test_torch_dataset_views():
    tds = TensorDataset(torch.arange(10).float())
    pool = ActivePool(tds)
    pool.label([3])
    assert isinstance(pool.labelled, Subset) and pool.labelled.indices == [3]
    assert pool.labels[3] == -1  # the dataset carries its labels


@pytest.mark.parametrize(
    "ids, match",
    [([50], "out of range"), ([-1], "out of range"), ([1, 1], "Duplicated"), ([0.5], "integers")],
)
def test_label_refuses_bad_ids(ds, ids, match):
    pool = ActivePool(ds)
    with pytest.raises(InvalidIdsError, match=match):
        pool.label(ids)


def test_label_refuses_already_labelled(ds):
    pool = ActivePool(ds)
    pool.label([5], labels=[0])
    with pytest.raises(InvalidIdsError, match="already labelled"):
        pool.label([6, 5], labels=[0, 0])
    assert pool.labelled_ids.tolist() == [5]  # nothing half-applied


def test_label_is_atomic_when_the_write_fails(ds, tmp_path, monkeypatch):
    pool = ActivePool(ds, tmp_path / "s")
    pool.label([1], labels=[1], round=0)
    import energizer_hf.pool as pool_mod

    def boom(path, array):
        raise OSError("disk full")

    monkeypatch.setattr(pool_mod, "atomic_save_npy", boom)
    with pytest.raises(OSError):
        pool.label([2], labels=[2], round=1)
    monkeypatch.undo()
    assert ActivePool(ds, tmp_path / "s").labelled_ids.tolist() == [1]
    assert not [p for p in (tmp_path / "s").iterdir() if p.name.endswith(".tmp")]


def test_resume_against_another_dataset_is_refused(ds, tmp_path):
    ActivePool(ds, tmp_path / "s").label([1], labels=[0])
    other = datasets.Dataset.from_dict({"text": [f"x{i}" for i in range(50)], "label": [0] * 50})
    with pytest.raises(DatasetMismatchError, match="another dataset"):
        ActivePool(other, tmp_path / "s")
    assert json.loads((tmp_path / "s" / "pool.json").read_text())["num_rows"] == 50


def test_same_data_loaded_twice_has_the_same_fingerprint(ds):
    copy = datasets.Dataset.from_dict({"text": ds["text"][:], "label": ds["label"][:]})
    assert ActivePool(copy).fingerprint == ActivePool(ds).fingerprint


def test_empty_dataset():
    with pytest.raises(EmptyPoolError):
        ActivePool(datasets.Dataset.from_dict({"text": [], "label": []}))


def test_initial_set_random_and_stratified(ds):
    pool = ActivePool(ds)
    labels = np.asarray(ds["label"][:])
    strat = pool.sample_initial(9, seed=1, labels=labels)
    assert np.bincount(labels[strat]).tolist() == [3, 3, 3]
    rand = pool.sample_initial(9, seed=1)
    assert len(set(rand.tolist())) == 9
    assert np.array_equal(rand, pool.sample_initial(9, seed=1))


def test_validation_split_is_stratified():
    ids = np.arange(40)
    labels = np.repeat([0, 1, 2, 3], 10)
    mask = split_validation(ids, labels, 0.2, np.random.default_rng(0))
    assert mask.sum() == 8
    assert np.bincount(labels[mask]).tolist() == [2, 2, 2, 2]


def test_rollback_and_stats(ds):
    pool = ActivePool(ds)
    pool.label([0, 1], labels=[0, 1], round=0)
    pool.label([2, 3], labels=[2, 2], round=1, validation=[True, False])
    assert pool.validation_ids.tolist() == [2]
    stats = pool.stats()
    assert stats["labelled_per_round"] == {0: 2, 1: 2}
    assert stats["label_distribution"] == {0: 1, 1: 1, 2: 2}
    assert pool.rollback(after_round=0).tolist() == [2, 3]
    assert pool.labelled_ids.tolist() == [0, 1]
