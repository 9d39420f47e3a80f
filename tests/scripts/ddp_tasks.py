"""A short NER or multi-label ActiveLearner run on however many processes launched this script.

    python -m tests.scripts.ddp_tasks RUN_DIR TASK STRATEGY [--tokens]
    torchrun --nproc_per_node 2 -m tests.scripts.ddp_tasks RUN_DIR TASK STRATEGY [--tokens]
        [--lazy-group] [--delay-rank0 S]

TASK is ``ner`` or ``multi_label``. Every rank fits the same tiny model on one CPU device
(same seed, same data), so the fits agree; under ``torchrun`` the pool scoring is shared by
the ranks (the scorer deals batches round-robin and exchanges results through files).
Every rank writes ``rank<r>.json`` next to RUN_DIR: the world size the scorer saw, the
queries and their scores per round, the labelled ids, their rounds and their stored labels,
and, per query, whether rank 1 wrote exchange files (it took part in scoring).

The process group is started before the run, as ``examples/score_pool_multi_gpu.py`` does;
``--lazy-group`` leaves that to the loop (its first scoring call), and ``--delay-rank0``
lets the other ranks set up and label round 0 before rank 0 does.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

torch.set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("task", choices=["ner", "multi_label"])
    parser.add_argument("strategy")
    parser.add_argument("--tokens", action="store_true", help="NER only: the budget in tokens")
    parser.add_argument("--rows", type=int, default=120)
    parser.add_argument("--lazy-group", action="store_true",
                        help="do not start the process group before the run (the loop's first scoring call does)")
    parser.add_argument("--delay-rank0", type=float, default=0.0,
                        help="rank 0 waits this many seconds before the run (the other ranks set up first)")
    args = parser.parse_args()

    from energizer_hf.demo import (
        build_tiny_bert,
        make_multilabel_dataset,
        make_ner_dataset,
        train_wordpiece_tokenizer,
    )
    from energizer_hf.distributed import distributed_rank_world, env_rank
    from energizer_hf.learner import ActiveLearner

    if not args.lazy_group:
        # as examples/score_pool_multi_gpu.py does: join the torchrun process group first
        # (a no-op on one process)
        distributed_rank_world()
    run_dir = Path(args.run_dir)
    if args.task == "ner":
        data = make_ner_dataset(args.rows, 30, seed=0)
        tok = train_wordpiece_tokenizer([" ".join(t) for t in data["train"]["tokens"][:]], vocab_size=200)
        extra = {"budget_unit": "tokens", "query_size": 80, "initial_size": 80} if args.tokens else {}
    else:
        data = make_multilabel_dataset(args.rows, 30, seed=0)
        tok = train_wordpiece_tokenizer(data["train"]["text"][:], vocab_size=200)
        extra = {"label_column": "labels"}
    cfg = build_tiny_bert(len(tok), hidden=16, layers=1)
    cfg.initializer_range = 0.5  # spread-out outputs, so rankings are not decided by ties

    scored_by: list[dict] = []

    class Spy:  # the exchange files of a round's query are removed later: look each round
        def on_round_end(self, loop, record):
            if record.get("queried_ids"):
                rank1 = list((run_dir / "scoring").rglob("rank1.*"))
                scored_by.append({"round": record["round"], "rank1_files": len(rank1)})

    kwargs = dict(
        query_size=10, initial_size=10, rounds=2, max_epochs=1, min_steps=0, batch_size=16, eval_batch_size=8,
        learning_rate=1e-3, max_length=32, run_dir=str(run_dir), progress=False, seed=0, accelerator="cpu",
        devices=1,
    )
    kwargs.update(extra)
    learner = ActiveLearner(dataset=data, model=cfg, tokenizer=tok, strategy=args.strategy, callbacks=[Spy()],
                            **kwargs)
    if args.delay_rank0 and env_rank() == 0:
        time.sleep(args.delay_rank0)
    res = learner.run()
    rank, world = distributed_rank_world()
    pool = learner.pool
    ids = pool.labelled_ids
    out = run_dir.parent / f"rank{env_rank()}.json"
    out.write_text(json.dumps({
        "rank": rank,
        "world": world,
        "task": learner.task.name,
        "queries": [r["queried_ids"] for r in res],
        "scores": [r.get("queried_scores") for r in res],
        "num_labelled": [r["num_labelled"] for r in res],
        "labelled": ids.tolist(),
        "rounds": pool.rounds[ids].tolist(),
        "labels": [r.tolist() for r in pool.label_store.rows(ids)],
        "scored_by": scored_by,
    }))


if __name__ == "__main__":
    main()
