"""Query with SEALS and AnchorAL on however many processes launched this script.

    torchrun --nproc_per_node 2 -m tests.scripts.dist_subpool OUT [--encoder DIR]

Every rank embeds its share of the pool (the model's hook through the scorer, or a separate
encoder over the text column), rank 0 builds the index and searches; all ranks score the
sub-pool. Rank 0 writes ``result.json`` with the queried ids and the world size; every rank
writes ``rank{r}.json`` with what it returned.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--rows", type=int, default=101)
    parser.add_argument("--encoder", default=None)
    args = parser.parse_args()

    from energizer_hf.query_strategies import SEALS, AnchorAL
    from energizer_hf.scoring import PoolScorer, QueryContext, distributed_rank_world
    from tests.scripts.tiny_setup import build

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pool, adapter, module = build(args.rows)
    labelled = [0, 5, 9, 20, 33, 41, 60]
    pool.label(labelled, [0, 1, 2, 3, 4, 0, 1])
    rank, world = distributed_rank_world()
    result = {"world": world}
    for name, strategy in (
        ("seals", SEALS(module, num_neighbours=6, index="hnsw", index_dir=out / "ann", encoder=args.encoder)),
        ("anchoral", AnchorAL(module, num_neighbours=15, subpool_size=30, anchor_strategy="uncertainty",
                              index="hnsw", index_dir=out / "ann", encoder=args.encoder)),
    ):
        scorer = PoolScorer(adapter, batch_size=8, exchange_dir=out / f"exchange-{name}", timeout=120)
        ctx = QueryContext(pool=pool, round=1, seed=0, scorer=scorer)
        result[name] = np.asarray(strategy.query(ctx, 5)).tolist()
        result[f"{name}_subpool"] = ctx.extras.get("subpool", {}).get("size")
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    if rank == 0:
        (out / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
