"""Run a task (ner or multi_label) on generated data; used by the task crash-and-resume tests.

Prints the labelled ids, their rounds and their stored labels (tags or label sets).
"""

import json
import sys

import torch

torch.set_num_threads(1)

from energizer_hf.demo import (  # noqa: E402
    build_tiny_bert,
    make_multilabel_dataset,
    make_ner_dataset,
    train_wordpiece_tokenizer,
)
from energizer_hf.learner import ActiveLearner  # noqa: E402


def main(run_dir: str, task: str, strategy: str) -> None:
    if task == "ner":
        data = make_ner_dataset(200, 60, seed=0)
        tok = train_wordpiece_tokenizer([" ".join(t) for t in data["train"]["tokens"][:]], vocab_size=200)
        extra = {"budget_unit": "tokens", "query_size": 120, "initial_size": 100}
    else:
        data = make_multilabel_dataset(200, 60, seed=0)
        tok = train_wordpiece_tokenizer(data["train"]["text"][:], vocab_size=200)
        extra = {"label_column": "labels", "query_size": 10, "initial_size": 10}
    cfg = build_tiny_bert(len(tok), hidden=16, layers=1)
    learner = ActiveLearner(
        dataset=data, model=cfg, tokenizer=tok, strategy=strategy, rounds=3, max_epochs=1, min_steps=0,
        learning_rate=1e-3, max_length=32, run_dir=run_dir, progress=False, seed=3, **extra,
    )
    res = learner.run()
    pool = learner.pool
    ids = pool.labelled_ids
    labels = [r.tolist() for r in pool.label_store.rows(ids)]
    print("RESULT " + json.dumps({
        "ids": ids.tolist(), "rounds": pool.rounds[ids].tolist(), "labels": labels,
        "queried": [r["queried_ids"] for r in res],
    }), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
