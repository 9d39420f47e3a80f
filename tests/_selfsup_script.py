"""Run the HF-native path with self-training on the demo data; used by the resume test."""

import json
import sys

import torch

torch.set_num_threads(1)

from energizer_hf.demo import build_tiny_bert, make_demo_dataset, train_wordpiece_tokenizer  # noqa: E402
from energizer_hf.learner import ActiveLearner  # noqa: E402


def main(run_dir: str) -> None:
    data = make_demo_dataset(num_train=300, num_test=60, seed=0)
    tok = train_wordpiece_tokenizer(data["train"]["text"][:], vocab_size=200)
    cfg = build_tiny_bert(len(tok), hidden=16, layers=1)
    learner = ActiveLearner(
        dataset=data, model=cfg, tokenizer=tok, strategy="entropy", query_size=10, initial_size=10,
        rounds=3, max_epochs=2, learning_rate=1e-3, max_length=32, run_dir=run_dir, progress=False, seed=5,
        self_training={"threshold": None, "top_k_per_class": 4},
    )
    res = learner.run()
    pseudo = [{k: v for k, v in r.items() if k.startswith("pseudo/")} for r in res]
    print("RESULT " + json.dumps({
        "labelled": learner.pool.labelled_ids.tolist(),
        "queries": [r["queried_ids"] for r in res],
        "pseudo": pseudo,
    }), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
