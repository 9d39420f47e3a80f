"""Stream-based active learning on a drifting stream (runs offline, on CPU, in about a minute).

    python examples/stream_learning.py [--run-dir runs/stream-example]

The generated demo dataset (five topics) arrives as a stream whose topic mix drifts: the
first half is mostly sports and finance, the second mostly science and politics. Two
stream strategies (variable uncertainty, and random at the same budget rate) decide item by
item which ones to label; every 15 labels the model is retrained, from its initial
weights, in the background, and tested. Running the same configuration again resumes the
run directory (a finished run returns its results at once); the plot of accuracy and labels
spent is written to ``<run_dir>/stream/stream.png``.

Replace the demo data with yours (``stream=your_dataset`` or
``stream=load_dataset(..., streaming=True)["train"]``) and the tiny model with a real one
(``model="sentence-transformers/all-MiniLM-L6-v2"``): nothing else changes.

Install energizer_hf first, from a checkout or a wheel (docs/install.md).
"""

import argparse

import numpy as np

from energizer_hf import StreamLearner
from energizer_hf.demo import build_tiny_bert, make_demo_dataset, train_wordpiece_tokenizer
from energizer_hf.stream import ReplaySource, prior_drift_order


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", default="runs/stream-example")
    args = parser.parse_args()

    data = make_demo_dataset(num_train=1500, num_test=200, seed=0)
    tokenizer = train_wordpiece_tokenizer(data["train"]["text"][:], vocab_size=300)
    labels = np.asarray(data["train"]["label"][:])
    # a drifting stream: the class mix moves from sports/finance to science/politics
    order = prior_drift_order(labels, [[0.45, 0.45, 0.05, 0.05, 0.0], [0.05, 0.05, 0.45, 0.45, 0.0]], 700, seed=0)

    for strategy in ("variable_uncertainty", "random"):
        learner = StreamLearner(
            stream=ReplaySource(data["train"], order=order),
            test=data["test"],
            model=build_tiny_bert(len(tokenizer), hidden=32, layers=1),
            tokenizer=tokenizer,
            strategy=strategy,
            budget_rate=0.1,           # label at most 10 % of the arrivals ...
            window=100,                # ... in every 100 consecutive items
            retrain_every=15,          # retrain on every label so far after 15 new ones
            retrain_lag=64,            # the new model is used 64 items after its retrain starts
            stream_batch_size=32,
            max_length=32, max_epochs=3, min_steps=30, learning_rate=2e-3,
            run_dir=f"{args.run_dir}/{strategy}", progress=False, seed=0,
        )
        results = learner.run()
        print(f"\n{strategy}: {results.num_seen} items seen, {results.num_labelled} labelled")
        print(results.to_table())
        again = StreamLearner(learner.config, stream=ReplaySource(data["train"], order=order), test=data["test"],
                              model=build_tiny_bert(len(tokenizer), hidden=32, layers=1), tokenizer=tokenizer)
        assert again.run().records == results.records  # a finished run is read back, not redone
        print(f"plot: {learner.plot()}")


if __name__ == "__main__":
    main()
