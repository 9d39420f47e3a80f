"""Run a StreamLearner on the demo data with the tiny model (crash/resume tests).

The crash tests run it with ``ENERGIZER_HF_FAULT=stream_commit:K`` (the process dies right
after mini-batch K is committed), run it again on the same directory, and compare the
decision log with an uninterrupted run's.
Usage: python tests/stream/_learner_runner.py RUN_DIR SOURCE   (SOURCE: replay | streaming)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def learner(run_dir: str, source: str, **overrides):
    from energizer_hf.demo import build_tiny_bert, make_demo_dataset, train_wordpiece_tokenizer
    from energizer_hf.stream_learner import StreamLearner

    torch.set_num_threads(1)
    data = make_demo_dataset(num_train=400, num_test=60, seed=0)
    tok = train_wordpiece_tokenizer(data["train"]["text"][:], vocab_size=200)
    kwargs = dict(
        model=build_tiny_bert(len(tok), hidden=16, layers=1), tokenizer=tok, test=data["test"],
        budget_rate=0.2, window=50, retrain_every=20, retrain_lag=64, stream_batch_size=32,
        max_epochs=1, min_steps=0, learning_rate=1e-3, max_length=32, eval_batch_size=64,
        run_dir=run_dir, progress=False, seed=0,
    )
    kwargs.update(overrides)
    if "stream" in kwargs:
        return StreamLearner(**kwargs)
    if source == "streaming":
        import datasets

        files = Path(run_dir).parent / "stream-data"
        if not files.exists():
            files.mkdir(parents=True)
            data["train"].to_json(str(files / "train.jsonl"))
        label_names = data["train"].features["label"].names
        stream = datasets.load_dataset("json", data_files={"train": str(files / "train.jsonl")}, streaming=True)
        kwargs.setdefault("label_names", label_names)
        return StreamLearner(stream=stream["train"], **kwargs)
    return StreamLearner(stream=data["train"], **kwargs)


if __name__ == "__main__":
    results = learner(sys.argv[1], sys.argv[2]).run()
    print(json.dumps({"seen": results.num_seen, "sent": results.num_sent, "rounds": len(results.records)}))
