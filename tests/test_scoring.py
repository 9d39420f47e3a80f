"""The pool scorer: exactly-once coverage, order, MC dropout, errors, and 2 real processes."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from energizer_hf import EmptyPoolError, InvalidScoresError
from energizer_hf.errors import EnergizerError
from energizer_hf.query_strategies import EntropyStrategy
from energizer_hf.scoring import PoolScorer, QueryContext, plan_by_length
from tests.scripts.tiny_setup import build

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("rows", [1, 7, 101])
@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("batch_size", [1, 4, 7])
def test_every_id_is_scored_exactly_once(rows, world, batch_size, rng):
    ids = rng.permutation(1000)[:rows]
    lengths = rng.integers(1, 50, size=1000)
    scorer = PoolScorer(_Source(lengths), batch_size=batch_size)
    shards = [np.concatenate(scorer._shard(ids, r, world) or [np.empty(0, dtype=np.int64)]) for r in range(world)]
    together = np.concatenate(shards)
    assert sorted(together.tolist()) == sorted(ids.tolist())  # each id once, none invented


class _Source:
    def __init__(self, lengths):
        self.lengths = lengths

    def plan(self, ids, batch_size, max_tokens=None):
        return plan_by_length(ids, self.lengths, batch_size, max_tokens)

    def collate(self, ids):
        return torch.as_tensor(ids)


def test_batches_are_length_sorted_and_respect_the_token_budget(rng):
    lengths = rng.integers(1, 100, size=500)
    batches = plan_by_length(np.arange(500), lengths, batch_size=64, max_tokens=400)
    flat = np.concatenate(batches)
    assert np.all(np.diff(lengths[flat]) >= 0)
    for b in batches:
        assert len(b) == 1 or len(b) * lengths[b].max() <= 400
        assert len(b) <= 64


def _ctx(pool, adapter, **kw):
    return QueryContext(pool=pool, round=0, seed=0, scorer=PoolScorer(adapter, batch_size=7, **kw))


def test_outputs_come_back_in_pool_order():
    pool, adapter, module = build(40)
    strategy = EntropyStrategy(module)
    ids = np.array([39, 3, 17, 0, 25])
    outs = strategy.pool_outputs(_ctx(pool, adapter), ("logits", "probs", "embeddings"), ids=ids)
    strategy.model.eval()
    with torch.inference_mode():
        for j, i in enumerate(ids):
            batch = adapter.collate(np.array([i]))
            logits, emb = strategy.model.logits_and_embeddings(batch)
            assert np.allclose(outs["logits"][j], logits[0].numpy(), atol=1e-5)
            assert np.allclose(outs["embeddings"][j], emb[0].numpy(), atol=1e-5)
    assert np.allclose(outs["probs"].sum(1), 1.0, atol=1e-5)


def test_outputs_as_memory_maps_in_the_exchange_dir(tmp_path):
    pool, adapter, module = build(30)
    outs = EntropyStrategy(module).pool_outputs(_ctx(pool, adapter, exchange_dir=tmp_path), ("probs",))
    assert isinstance(outs["probs"], np.memmap)
    assert outs["probs"].shape == (30, 5)


@pytest.mark.parametrize("replicate", [False, True])
def test_mc_dropout_passes_differ_and_deterministic_passes_do_not(replicate):
    pool, adapter, module = build(20, dropout=0.3)
    strategy = EntropyStrategy(module)
    torch.manual_seed(0)
    mc = strategy.pool_outputs(_ctx(pool, adapter), ("mc_probs",), num_mc_samples=4, mc_replicate=replicate)["mc_probs"]
    assert mc.shape == (20, 4, 5)
    assert not np.allclose(mc[:, 0], mc[:, 1])  # dropout on: passes differ
    a = strategy.pool_outputs(_ctx(pool, adapter), ("probs",))["probs"]
    b = strategy.pool_outputs(_ctx(pool, adapter), ("probs",))["probs"]
    assert np.array_equal(a, b)  # eval mode: identical


def test_errors_zero_rows_wrong_width_bad_batch_size():
    pool, adapter, module = build(10)
    with pytest.raises(EmptyPoolError, match="zero rows"):
        PoolScorer(adapter).topk(lambda b, i: torch.zeros(1), np.array([], dtype=np.int64), 3)
    with pytest.raises(EnergizerError, match="batch_size"):
        PoolScorer(adapter, batch_size=0)
    strategy = EntropyStrategy(module)
    ctx = QueryContext(pool=pool, round=0, seed=0, scorer=PoolScorer(adapter, num_classes=3))
    with pytest.raises(InvalidScoresError, match=r"HFSequenceClassifier returned logits of shape \(\d+, 5\)"):
        strategy.pool_outputs(ctx, ("probs",))


def test_embeddings_without_a_hook_name_the_missing_hook():
    from energizer_hf import ActivePool
    from energizer_hf.data import TorchDataAdapter
    from tests.seed_models import UnpackingModel, loaders

    train_dl, _, _ = loaders(20)
    pool = ActivePool(train_dl.dataset)
    ctx = QueryContext(pool=pool, round=0, seed=0, scorer=PoolScorer(TorchDataAdapter(train_dl)))
    with pytest.raises(EnergizerError, match="no `embed"):
        EntropyStrategy(UnpackingModel()).pool_outputs(ctx, ("embeddings",))


# ---------------------------------------------------------------------- 2 processes
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(out, *extra, launcher="torchrun", timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    script = ["-m", "tests.scripts.dist_score", str(out), *extra]
    if launcher == "torchrun":
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port())]
    elif launcher == "accelerate":
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port())]
    else:
        cmd = [sys.executable]
    return subprocess.run(cmd + script, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    proc = _launch(out, launcher="python")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.distributed
@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_processes_equal_one(tmp_path, single, launcher):
    proc = _launch(tmp_path, launcher=launcher)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = (json.loads((d / "result.json").read_text()) for d in (single, tmp_path))
    assert one["world"] == 1 and two["world"] == 2
    assert two["ids"] == one["ids"] and two["again"] == one["ids"]
    assert np.allclose(two["scores"], one["scores"], atol=1e-6)
    assert np.allclose(np.load(tmp_path / "probs.npy"), np.load(single / "probs.npy"), atol=1e-6)
    assert np.allclose(np.load(tmp_path / "embeddings.npy"), np.load(single / "embeddings.npy"), atol=1e-5)
    r0, r1 = np.load(tmp_path / "rank0_ids.npy"), np.load(tmp_path / "rank1_ids.npy")
    assert len(r0) and len(r1) and not set(r0) & set(r1)
    assert sorted(np.concatenate([r0, r1]).tolist()) == sorted(np.load(single / "rank0_ids.npy").tolist())


@pytest.mark.distributed
def test_a_failing_rank_is_named(tmp_path):
    proc = _launch(tmp_path, "--fail-rank", "1", "--timeout", "60")
    assert proc.returncode != 0
    assert "Scoring failed on rank 1: RuntimeError: simulated failure while scoring" in proc.stderr


@pytest.mark.distributed
def test_a_hung_rank_times_out_and_is_named(tmp_path):
    proc = _launch(tmp_path, "--hang-rank", "1", "--timeout", "5")
    assert proc.returncode != 0
    assert "Rank(s) [1] did not finish scoring within 5 s" in proc.stderr


@pytest.mark.distributed
def test_round_loop_under_lightning_ddp_two_processes(tmp_path):
    run_dir = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), MASTER_PORT=str(_free_port()))
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "NODE_RANK"):
        env.pop(key, None)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.scripts.ddp_loop", str(run_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    # both ranks ran the loop and agree on every query and on the final labelled set
    assert rank0["labelled"] == rank1["labelled"] and rank0["queries"] == rank1["queries"]
    labelled = rank0["labelled"]
    assert len(labelled) == 10 + 3 * 15 == len(set(labelled))
    # the label state and the records were written once, by rank 0
    records = [json.loads(x) for x in (run_dir / "rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in records] == [0, 1, 2, 3]
    from energizer_hf.pool import STATE_DTYPE

    state = np.load(run_dir / "pool" / "label_state.npy")
    assert state.dtype == STATE_DTYPE and sorted(np.flatnonzero(state["round"] >= 0).tolist()) == labelled
    # the pool was scored by both ranks (seen each round; the exchange is removed at the end)
    assert all(n > 0 for n in rank0["scored_by_rank1"][:3]), "rank 1 did not take part in scoring"
    assert not (run_dir / "scoring").exists()


def test_long_texts_are_truncated_with_one_warning(demo_tokenizer):
    import datasets

    from energizer_hf.data import tokenize_dataset

    ds = datasets.Dataset.from_dict({"text": ["match goal " * 30, "short text", "stock market " * 40]})
    with pytest.warns(UserWarning, match="2 of 3 texts are longer than max_length=16") as record:
        tok = tokenize_dataset(ds, demo_tokenizer, "text", max_length=16, progress=False)
    assert len([w for w in record if "truncated" in str(w.message)]) == 1
    assert max(tok["length"][:]) == 16
    assert tok.features["input_ids"].feature.dtype == "int32"


def test_a_model_without_logits_is_named():
    from torch import nn

    class Embedder(nn.Module):
        def forward(self, batch):
            return {"hidden": torch.zeros(len(batch["input_ids"]), 4)}

    pool, adapter, _ = build(10)
    with pytest.raises(InvalidScoresError, match="Embedder returned dict from forward; expected a logits tensor"):
        EntropyStrategy(Embedder()).query(_ctx(pool, adapter), 3)


def test_cleanup_keeps_the_current_rounds_exchange_files(tmp_path):
    from energizer_hf.scoring import PoolScorer

    for name in ("r0001-topk-000", "r0002-topk-000", "r0003-topk-000", "r0003-outputs-001", "notes"):
        (tmp_path / name).mkdir()
    scorer = PoolScorer.__new__(PoolScorer)
    scorer.exchange_dir = tmp_path
    scorer.cleanup(before_round=3)  # another rank may be writing round 3's files already
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "r0003-outputs-001", "r0003-topk-000"]
    scorer.cleanup()
    assert list(tmp_path.iterdir()) == []
