"""The HF-native loop with TAPT and self-training under Lightning ``strategy="ddp"`` on 2 CPU
processes.

    python -m tests.scripts.ddp_selfsup RUN_DIR

Lightning's launcher re-runs this command for rank 1 at the first fit: rank 1's set-up then
finds the adapted encoder rank 0 built in the run's cache and loads it. Every rank writes
``rank<r>.json`` next to RUN_DIR (TAPT source, labelled ids, queries, pseudo-label counts).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)


def main(run_dir: str) -> None:
    from energizer_hf.demo import build_tiny_bert, make_demo_dataset, train_wordpiece_tokenizer
    from energizer_hf.distributed import env_rank
    from energizer_hf.learner import ActiveLearner

    data = make_demo_dataset(num_train=200, num_test=40, seed=0)
    tok = train_wordpiece_tokenizer(data["train"]["text"][:], vocab_size=200)
    cfg = build_tiny_bert(len(tok), hidden=16, layers=1)
    learner = ActiveLearner(
        dataset=data, model=cfg, tokenizer=tok, strategy="entropy", query_size=10, initial_size=10,
        rounds=2, max_epochs=1, learning_rate=1e-3, max_length=32, run_dir=run_dir, progress=False, seed=0,
        accelerator="cpu", devices=2, lightning_strategy="ddp",
        tapt_steps=4, tapt_args={"learning_rate": 1e-3, "cache_dir": str(Path(run_dir).parent / "shared")},
        self_training={"threshold": None, "top_k_per_class": 3},
    )
    res = learner.run()
    out = Path(run_dir).parent / f"rank{env_rank()}.json"
    out.write_text(json.dumps({
        "tapt": learner.tapt.source,
        "labelled": learner.pool.labelled_ids.tolist(),
        "queries": [r["queried_ids"] for r in res],
        "pseudo": [r.get("pseudo/num_rows") for r in res],
        "extra": None if learner.loop.backend.data.extra_train_rows is None
        else learner.loop.backend.data.extra_train_rows[0].tolist(),
    }))


if __name__ == "__main__":
    main(sys.argv[1])
