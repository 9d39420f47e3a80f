"""Score a pool with the PoolScorer on however many processes launched this script.

    torchrun --nproc_per_node 2 -m tests.scripts.dist_score OUT [--rows N] [--fail-rank R] [--hang-rank R]

Rank 0 writes ``result.json`` (top-k ids and scores, world size), ``probs.npy`` and
``embeddings.npy``; every rank writes the pool ids it scored to ``rank{r}_ids.npy``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--rows", type=int, default=101)
    parser.add_argument("--k", type=int, default=13)
    parser.add_argument("--batch-size", type=int, default=7)
    parser.add_argument("--fail-rank", type=int, default=-1)
    parser.add_argument("--hang-rank", type=int, default=-1)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()

    from energizer_hf.query_strategies import EntropyStrategy
    from energizer_hf.scoring import PoolScorer, QueryContext, distributed_rank_world
    from tests.scripts.tiny_setup import build

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pool, adapter, module = build(args.rows)
    rank, world = distributed_rank_world()
    scorer = PoolScorer(adapter, batch_size=args.batch_size, exchange_dir=out / "exchange", timeout=args.timeout)
    strategy = EntropyStrategy(module)
    seen: list[np.ndarray] = []
    original_step = strategy.pool_step

    def step(batch, batch_idx, *a, **kw):
        if rank == args.fail_rank and batch_idx == 1:
            raise RuntimeError("simulated failure while scoring")
        if rank == args.hang_rank and batch_idx == 1:
            time.sleep(3600)
        return original_step(batch, batch_idx)

    strategy.pool_step = step
    original_collate = adapter.collate

    def collate(ids):
        seen.append(np.asarray(ids))
        return original_collate(ids)

    adapter.collate = collate
    ctx = QueryContext(pool=pool, round=0, seed=0, scorer=scorer)
    ids = strategy.query(ctx, args.k)
    np.save(out / f"rank{rank}_ids.npy", np.concatenate(seen) if seen else np.empty(0, dtype=np.int64))
    strategy.model.eval()
    scores, top = scorer.topk(lambda b, i: original_step(b, i), pool.unlabelled_ids, args.k, tag="again")
    outs = strategy.pool_outputs(ctx, ("probs", "embeddings"))
    if rank == 0:
        np.save(out / "probs.npy", np.asarray(outs["probs"]))
        np.save(out / "embeddings.npy", np.asarray(outs["embeddings"]))
        (out / "result.json").write_text(json.dumps({
            "world": world, "ids": ids.tolist(), "again": top.tolist(), "scores": scores.tolist(),
            "pid": os.getpid(),
        }))


if __name__ == "__main__":
    main()
