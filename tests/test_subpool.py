"""Huge pools: the embedding store, the faiss index, SEALS and AnchorAL (issue 8)."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

pytest.importorskip("faiss", reason="the ANN index needs faiss-cpu (pip install faiss-cpu)")

from energizer_hf import ActivePool  # noqa: E402
from energizer_hf.ann import AnnIndex, choose_index_kind, open_or_build_index  # noqa: E402
from energizer_hf.data import TorchDataAdapter  # noqa: E402
from energizer_hf.embeddings import EmbeddingWriter, PoolEmbeddings  # noqa: E402
from energizer_hf.errors import CorruptIndexError, EnergizerError, IndexMismatchError  # noqa: E402
from energizer_hf.query_strategies import SEALS, AnchorAL, configure_strategy  # noqa: E402
from energizer_hf.scoring import PoolScorer, QueryContext  # noqa: E402
from tests.test_zoo import Table  # noqa: E402


def _unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _clusters(n_per=40, dim=8, centers=4, seed=0, spread=0.15):
    g = np.random.default_rng(seed)
    c = _unit(g.normal(size=(centers, dim)))
    x = np.concatenate([c[i] + spread * g.normal(size=(n_per, dim)) for i in range(centers)])
    y = np.repeat(np.arange(centers), n_per)
    return _unit(x), y


def _store(tmp_path, x, dataset_fp="data-a", encoder_fp="enc-a", name="store"):
    w = EmbeddingWriter(tmp_path / name, len(x), x.shape[1], dataset_fingerprint=dataset_fp,
                        encoder_fingerprint=encoder_fp, encoder="test")
    w.write(np.arange(len(x)), x)
    return w.finish()


# ---------------------------------------------------------------- the store
def test_store_round_trip_is_normalised_and_memory_mapped(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32) * 3
    store = _store(tmp_path, x)
    assert isinstance(store.array, np.memmap)
    np.testing.assert_allclose(np.linalg.norm(store.array, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(store.array, _unit(x), rtol=1e-5)
    again = PoolEmbeddings.open(tmp_path / "store", dataset_fingerprint="data-a", encoder_fingerprint="enc-a", num_rows=50)
    assert again.meta["encoder"] == "test" and again.dim == 6


def test_an_unfinished_store_is_not_a_store(tmp_path):
    w = EmbeddingWriter(tmp_path / "s", 10, 4, dataset_fingerprint="d", encoder_fingerprint="e", encoder="t")
    w.write(np.arange(5), np.ones((5, 4)))
    assert not PoolEmbeddings.exists(tmp_path / "s")
    with pytest.raises(FileNotFoundError):
        PoolEmbeddings.open(tmp_path / "s")


def test_store_of_another_dataset_or_encoder_is_refused_with_fingerprints(tmp_path):
    _store(tmp_path, np.eye(4, dtype=np.float32), dataset_fp="aaaa1111", encoder_fp="eeee2222")
    with pytest.raises(IndexMismatchError, match="aaaa1111.*bbbb3333"):
        PoolEmbeddings.open(tmp_path / "store", dataset_fingerprint="bbbb3333")
    with pytest.raises(IndexMismatchError, match="eeee2222.*ffff4444"):
        PoolEmbeddings.open(tmp_path / "store", encoder_fingerprint="ffff4444")


def test_truncated_embeddings_are_a_clear_error(tmp_path):
    store = _store(tmp_path, np.eye(8, dtype=np.float32))
    path = store.directory / "embeddings.npy"
    del store
    data = path.read_bytes()
    path.write_bytes(data[:-20])
    with pytest.raises(CorruptIndexError, match="truncated"):
        PoolEmbeddings.open(tmp_path / "store")


def test_non_finite_embeddings_are_refused(tmp_path):
    w = EmbeddingWriter(tmp_path / "s", 2, 2, dataset_fingerprint="d", encoder_fingerprint="e", encoder="t")
    with pytest.raises(EnergizerError, match="NaN"):
        w.write(np.arange(2), np.array([[1.0, np.nan], [0.0, 1.0]]))


# ---------------------------------------------------------------- the index
def test_auto_kind_by_pool_size():
    assert choose_index_kind(1_000) == "flat"
    assert choose_index_kind(100_000) == "hnsw"
    assert choose_index_kind(1_000_000) == "ivf"


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_index_finds_the_true_neighbours_and_excludes_ids(tmp_path, kind):
    x, _ = _clusters(n_per=250, dim=16, centers=8)
    store = _store(tmp_path, x)
    index = AnnIndex.build(store, kind, **({"nlist": 16, "nprobe": 8} if kind == "ivf" else {}))
    assert index.kind == kind and index.ntotal == len(x)
    allowed = np.ones(len(x), dtype=bool)
    allowed[::3] = False  # e.g. the labelled rows
    queries = np.asarray(store.array[:20])
    sims, ids = index.search(queries, 10, allowed)
    assert (ids >= 0).all() and allowed[ids].all()
    exact = np.argsort(-(queries @ np.asarray(store.array)[allowed].T), axis=1)[:, :10]
    exact_ids = np.flatnonzero(allowed)[exact]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.tolist(), exact_ids.tolist())])
    assert recall >= (1.0 if kind == "flat" else 0.9)
    assert (np.diff(sims, axis=1) <= 1e-5).all()  # best first


def test_too_few_allowed_rows_pad_with_minus_one(tmp_path):
    store = _store(tmp_path, _clusters(n_per=5, dim=4, centers=2)[0])
    allowed = np.zeros(10, dtype=bool)
    allowed[[2, 7]] = True
    sims, ids = AnnIndex.build(store, "flat").search(np.asarray(store.array[:1]), 5, allowed)
    assert sorted(ids[0][ids[0] >= 0].tolist()) == [2, 7]
    assert (ids[0] == -1).sum() == 3 and np.isneginf(sims[0][ids[0] == -1]).all()


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_saved_index_reloads_with_identical_results(tmp_path, kind):
    store = _store(tmp_path, _clusters(n_per=100, dim=8)[0])
    built = open_or_build_index(store, kind=kind, **({"nlist": 8} if kind == "ivf" else {}))
    reloaded = open_or_build_index(store, kind=kind, **({"nlist": 8} if kind == "ivf" else {}))
    assert reloaded.meta["sha256"] == built.meta["sha256"]
    q = np.asarray(store.array[:7])
    for a, b in zip(built.search(q, 5), reloaded.search(q, 5)):
        np.testing.assert_array_equal(a, b)


def test_truncated_index_is_a_clear_error_and_rebuild_recovers(tmp_path):
    store = _store(tmp_path, _clusters(n_per=100, dim=8)[0])
    index = open_or_build_index(store, kind="hnsw")
    path, _ = AnnIndex.files(store.directory, "hnsw")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorruptIndexError, match="truncated.*rebuild_index=True"):
        open_or_build_index(store, kind="hnsw")
    rebuilt = open_or_build_index(store, kind="hnsw", rebuild=True)
    assert rebuilt.meta["file_bytes"] == index.meta["file_bytes"]
    assert open_or_build_index(store, kind="hnsw").ntotal == 400


def test_altered_index_bytes_are_detected(tmp_path):
    store = _store(tmp_path, _clusters(n_per=50, dim=8)[0])
    open_or_build_index(store, kind="flat")
    path, _ = AnnIndex.files(store.directory, "flat")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptIndexError, match="SHA-256"):
        open_or_build_index(store, kind="flat")


def test_index_of_another_dataset_is_refused_with_the_fingerprint(tmp_path):
    x = _clusters(n_per=50, dim=8)[0]
    a = _store(tmp_path, x, dataset_fp="1111aaaa", name="a")
    open_or_build_index(a, kind="flat")
    b = _store(tmp_path, x, dataset_fp="2222bbbb", name="b")
    with pytest.raises(IndexMismatchError, match="1111aaaa.*2222bbbb"):
        open_or_build_index(b, tmp_path / "a", kind="flat")
    assert open_or_build_index(b, tmp_path / "a", kind="flat", rebuild=True).meta["dataset_fingerprint"] == "2222bbbb"


def test_bad_index_arguments(tmp_path):
    store = _store(tmp_path, np.eye(4, dtype=np.float32))
    with pytest.raises(EnergizerError, match="Unknown index kind"):
        AnnIndex.build(store, "annoy")
    with pytest.raises(EnergizerError, match="Unknown index parameters"):
        AnnIndex.build(store, "hnsw", nprobe=3)
    with pytest.raises(EnergizerError, match="positive integer"):
        AnnIndex.build(store, "hnsw", m=0)
    index = AnnIndex.build(store, "flat")
    with pytest.raises(EnergizerError, match="dimension"):
        index.search(np.ones((1, 3)), 1)
    with pytest.raises(EnergizerError, match="allowed"):
        index.search(np.ones((1, 4)), 1, np.ones(3, dtype=bool))


# ---------------------------------------------------------------- strategies
def _setup(emb, probs=None, labelled=(), labels=None):
    n = len(emb)
    ds = TensorDataset(torch.arange(n))
    pool = ActivePool(ds)
    if labelled:
        pool.label(list(labelled), labels)
    adapter = TorchDataAdapter(DataLoader(ds, batch_size=16))
    probs = np.full((n, 2), 0.5) if probs is None else probs
    return pool, adapter, Table(probs, emb)


def _ctx(pool, adapter, tmp_path=None, seed=0, round=1):
    return QueryContext(pool=pool, round=round, seed=seed, scorer=PoolScorer(adapter, batch_size=16),
                        run_dir=tmp_path)


def test_seals_subpool_is_the_union_of_labelled_neighbours(tmp_path):
    x, _ = _clusters(n_per=30, dim=8, centers=4)
    # entropy peaks far from the labelled cluster: a full-pool strategy would go there
    probs = np.tile([0.99, 0.01], (120, 1))
    probs[90:] = 0.5
    labelled = [0, 1, 2]
    pool, adapter, model = _setup(x, probs, labelled, [0, 0, 0])
    strategy = SEALS(model, base="entropy", num_neighbours=5, index="flat")
    ctx = _ctx(pool, adapter, tmp_path)
    ids = strategy.query(ctx, 4)
    sims = x[labelled] @ x.T
    sims[:, labelled] = -np.inf
    union = set(np.argsort(-sims, axis=1)[:, :5].ravel().tolist())
    assert set(ids.tolist()) <= union
    assert ctx.extras["subpool"]["size"] == len(union) and ctx.extras["subpool"]["method"] == "SEALS"
    assert (tmp_path / "ann" / "index-flat.faiss").exists() and (tmp_path / "ann" / "embeddings.npy").exists()
    assert {"embed", "index", "search", "score"} <= set(ctx.timings)


def test_seals_tops_up_when_neighbours_are_too_few(tmp_path):
    x, _ = _clusters(n_per=10, dim=4, centers=2)
    pool, adapter, model = _setup(x, labelled=[0], labels=[0])
    ctx = _ctx(pool, adapter, tmp_path)
    ids = SEALS(model, base="random", num_neighbours=2, index="flat").query(ctx, 6)
    assert ids.size == 6 and len(set(ids.tolist())) == 6 and 0 not in ids
    assert ctx.extras["subpool"]["found"] == 2 and ctx.extras["subpool"]["size"] == 6


def test_anchoral_ranks_candidates_by_mean_similarity_to_the_anchors(tmp_path):
    # class 0 anchors at e0; rows 1-3 are near it (decreasing), rows 4+ elsewhere
    emb = np.array([[1, 0, 0], [0.99, 0.1, 0], [0.9, 0.4, 0], [0.7, 0.7, 0], [0, 1, 0], [0, 0, 1],
                    [0, 0.2, 1], [-1, 0, 0]], dtype=np.float32)
    pool, adapter, model = _setup(_unit(emb), labelled=[0], labels=[0])
    strategy = AnchorAL(model, base="random", num_anchors=3, num_neighbours=4, subpool_size=2, index="flat")
    ctx = _ctx(pool, adapter, tmp_path)
    ids = strategy.query(ctx, 2)
    assert sorted(ids.tolist()) == [1, 2]  # the two most similar of the 4 retrieved
    assert ctx.extras["subpool"]["anchors"] == {"0": 1}  # fewer labelled than anchors: uses what exists


def test_anchoral_takes_anchors_from_every_class_so_minorities_are_searched(tmp_path):
    x, y = _clusters(n_per=50, dim=16, centers=4, spread=0.1)
    # a 4-row labelled minority class (3) next to 20 labelled rows of each other class
    labelled = np.concatenate([np.flatnonzero(y == c)[:20] for c in range(3)] + [np.flatnonzero(y == 3)[:4]])
    pool, adapter, model = _setup(x, labelled=labelled.tolist(), labels=y[labelled].tolist())
    for anchor_strategy in ("random", "kmeans++", "uncertainty"):
        strategy = AnchorAL(model, base="random", anchor_strategy=anchor_strategy, num_anchors=5,
                            num_neighbours=10, subpool_size=40, index="flat")
        ctx = _ctx(pool, adapter, tmp_path)
        ids = strategy.query(ctx, 40)
        assert ctx.extras["subpool"]["anchors"] == {"0": 5, "1": 5, "2": 5, "3": 4}
        assert set(y[ids].tolist()) == {0, 1, 2, 3}, anchor_strategy
        again = AnchorAL(model, base="random", anchor_strategy=anchor_strategy, num_anchors=5,
                         num_neighbours=10, subpool_size=40, index="flat").query(_ctx(pool, adapter, tmp_path), 40)
        assert again.tolist() == ids.tolist()  # deterministic for a seed


def test_anchoral_with_a_subpool_larger_than_the_pool_scores_everything(tmp_path, caplog):
    x, _ = _clusters(n_per=10, dim=4, centers=2)
    probs = np.tile([0.9, 0.1], (20, 1))
    probs[17] = 0.5
    pool, adapter, model = _setup(x, probs, labelled=[0], labels=[0])
    ctx = _ctx(pool, adapter, tmp_path)
    with caplog.at_level(logging.WARNING):
        ids = AnchorAL(model, base="entropy", subpool_size=1000).query(ctx, 1)
    assert ids.tolist() == [17] and "whole pool" in caplog.text
    assert ctx.extras["subpool"]["method"] == "whole_pool"
    assert not (tmp_path / "ann").exists()  # no index needed


def test_round_zero_without_labels_falls_back_to_cold_start(tmp_path):
    x, _ = _clusters(n_per=10, dim=4, centers=2)
    pool, adapter, model = _setup(x)
    for cls in (SEALS, AnchorAL):
        ctx = _ctx(pool, adapter, tmp_path, round=0)
        ids = cls(model, subpool_size=5).query(ctx, 3) if cls is AnchorAL else cls(model).query(ctx, 3)
        assert ids.size == 3 and ctx.extras["subpool"]["method"] == "cold_start"
    assert not (tmp_path / "ann").exists()


def test_bad_subpool_arguments():
    model = Table(np.full((2, 2), 0.5), np.eye(2))
    with pytest.raises(EnergizerError, match="anchor_strategy"):
        AnchorAL(model, anchor_strategy="closest")
    with pytest.raises(EnergizerError, match="subpool_size"):
        AnchorAL(model, subpool_size=0)
    with pytest.raises(EnergizerError, match="num_neighbours"):
        SEALS(model, num_neighbours=-1)
    with pytest.raises(EnergizerError, match="index must be"):
        SEALS(model, index="annoy")


def test_ready_embeddings_are_used_as_they_are_and_checked(tmp_path):
    x, y = _clusters(n_per=20, dim=8, centers=2)
    pool, adapter, model = _setup(np.zeros((40, 1)), labelled=[0, 20], labels=[0, 1])  # the model's own are useless
    store = _store(tmp_path, x, dataset_fp=pool.fingerprint)
    ctx = _ctx(pool, adapter)
    ids = AnchorAL(model, base="random", embeddings=store, num_neighbours=5, subpool_size=10, index="flat").query(ctx, 4)
    assert ids.size == 4 and ctx.extras["index"]["dir"] == str(store.directory)
    other = _store(tmp_path, x, dataset_fp="not-this-pool", name="other")
    with pytest.raises(IndexMismatchError, match="not-this-pool"):
        SEALS(model, embeddings=other.directory).query(_ctx(pool, adapter), 2)
    with pytest.raises(EnergizerError, match="not both"):
        SEALS(model, embeddings=store, encoder="some/encoder")


def test_strategy_without_a_directory_says_where_to_keep_the_index():
    x, _ = _clusters(n_per=10, dim=4, centers=2)
    pool, adapter, model = _setup(x, labelled=[0], labels=[0])
    with pytest.raises(EnergizerError, match="index_dir"):
        SEALS(model).query(_ctx(pool, adapter, None), 2)


def test_shared_index_dir_of_another_pool_is_refused(tmp_path):
    x, _ = _clusters(n_per=10, dim=4, centers=2)
    pool, adapter, model = _setup(x, labelled=[0], labels=[0])
    SEALS(model, index_dir=tmp_path / "shared", index="flat").query(_ctx(pool, adapter), 2)
    y, _ = _clusters(n_per=11, dim=4, centers=2, seed=5)
    pool2, adapter2, model2 = _setup(y, labelled=[0], labels=[0])
    with pytest.raises(IndexMismatchError, match=f"{pool.fingerprint}.*{pool2.fingerprint}"):
        SEALS(model2, index_dir=tmp_path / "shared", index="flat").query(_ctx(pool2, adapter2), 2)


def test_strategy_reports_a_truncated_index_and_rebuilds_on_request(tmp_path):
    x, y = _clusters(n_per=30, dim=8, centers=2)
    pool, adapter, model = _setup(x, labelled=[0, 30], labels=[0, 1])
    first = AnchorAL(model, base="random", num_neighbours=10, subpool_size=15, index="hnsw").query(_ctx(pool, adapter, tmp_path), 3)
    path = tmp_path / "ann" / "index-hnsw.faiss"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CorruptIndexError, match="rebuild_index=True"):
        AnchorAL(model, base="random", num_neighbours=10, subpool_size=15, index="hnsw").query(_ctx(pool, adapter, tmp_path), 3)
    again = AnchorAL(model, base="random", num_neighbours=10, subpool_size=15, index="hnsw",
                     rebuild_index=True).query(_ctx(pool, adapter, tmp_path), 3)
    assert again.tolist() == first.tolist()


def test_configured_from_a_name_like_a_config_file_would():
    cls = configure_strategy("anchoral", base="margin", num_anchors=4, subpool_size=100)
    assert cls.requires_embeddings is True
    strategy = cls(Table(np.full((2, 2), 0.5), np.eye(2)))
    assert strategy.num_anchors == 4 and strategy.base.name == "margin"


# ---------------------------------------------------------------- in a run
@pytest.mark.slow
def test_learner_run_with_a_separate_encoder_reuses_the_cache_and_records_minority_stats(
    tmp_path, demo_data, demo_tokenizer, tiny_bert_config
):
    from transformers import AutoModel

    from energizer_hf.learner import ActiveLearner

    enc_dir = tmp_path / "encoder"
    torch.manual_seed(0)
    AutoModel.from_config(tiny_bert_config).save_pretrained(enc_dir)
    demo_tokenizer.save_pretrained(enc_dir)
    cache = tmp_path / "cache"

    def run(seed, rounds=2, run_dir=None):
        strategy = configure_strategy("anchoral", base="entropy", encoder=str(enc_dir), cache_dir=str(cache),
                                      num_anchors=3, num_neighbours=20, subpool_size=30)
        learner = ActiveLearner(
            dataset=demo_data, model=tiny_bert_config, tokenizer=demo_tokenizer, strategy=strategy,
            query_size=5, initial_size=10, rounds=rounds, max_epochs=1, min_steps=0, batch_size=8, seed=seed,
            run_dir=str(run_dir or tmp_path / f"run{seed}"), progress=False,
        )
        return learner.run()

    res = run(0)
    stores = list(cache.iterdir())
    assert len(stores) == 1
    meta = json.loads((stores[0] / "embeddings.json").read_text())
    stamp = os.stat(stores[0] / "embeddings.npy").st_mtime_ns
    first = res[0]
    assert first["query_info"]["subpool"]["method"] == "AnchorAL"
    assert first["query_info"]["subpool"]["size"] == 30
    assert 0.0 <= first["queried_minority_share"] <= 1.0 and "minority_class" in first
    assert "test/minority_f1" in first and f"test/f1/{demo_data['train'].features['label'].names[0]}" in first
    # another run (another seed) on the same data and encoder reuses the embeddings and the index
    res2 = run(1)
    assert os.stat(stores[0] / "embeddings.npy").st_mtime_ns == stamp
    assert json.loads((stores[0] / "embeddings.json").read_text()) == meta
    assert len(res2) == 3
    # extending a finished run (resume) reloads the index instead of building it
    index_meta = (stores[0] / "index-flat.json").read_text()
    res3 = run(0, rounds=3, run_dir=tmp_path / "run0")
    assert len(res3) == 4 and (stores[0] / "index-flat.json").read_text() == index_meta


# ---------------------------------------------------------------- several processes
def _run_script(out, *extra, nproc=None):
    import socket
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(root))
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable]
    if nproc:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd += ["-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port", str(port)]
    proc = subprocess.run(cmd + ["-m", "tests.scripts.dist_subpool", str(out), *extra], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "result.json").read_text())


@pytest.mark.distributed
@pytest.mark.parametrize("encoder", [False, True], ids=["model-embeddings", "separate-encoder"])
def test_two_processes_query_the_same_subpool_as_one(tmp_path, encoder, demo_tokenizer, tiny_bert_config):
    extra = ()
    if encoder:
        from transformers import AutoModel

        torch.manual_seed(0)
        AutoModel.from_config(tiny_bert_config).save_pretrained(tmp_path / "encoder")
        demo_tokenizer.save_pretrained(tmp_path / "encoder")
        extra = ("--encoder", str(tmp_path / "encoder"))
    one = _run_script(tmp_path / "one", *extra)
    two = _run_script(tmp_path / "two", *extra, nproc=2)
    assert one["world"] == 1 and two["world"] == 2
    for name in ("seals", "anchoral"):
        assert two[name] == one[name] and len(one[name]) == 5
        assert two[f"{name}_subpool"] == one[f"{name}_subpool"]
    rank1 = json.loads((tmp_path / "two" / "rank1.json").read_text())
    assert rank1["seals"] == two["seals"] and rank1["anchoral"] == two["anchoral"]  # every rank agrees
    np.testing.assert_allclose(
        np.load(tmp_path / "one" / "ann" / "embeddings.npy"), np.load(tmp_path / "two" / "ann" / "embeddings.npy"),
        atol=1e-5,
    )
