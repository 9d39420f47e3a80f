"""Run the HF-native path on the demo data; used by the crash-and-resume tests.

``python -m tests._resume_script RUN_DIR STRATEGY [cli]``: with ``cli``, a failure ends as
the command line ends it (one line, the documented exit status).
"""

import sys

import torch

torch.set_num_threads(1)

from energizer_hf.demo import build_tiny_bert, make_demo_dataset, train_wordpiece_tokenizer  # noqa: E402
from energizer_hf.learner import ActiveLearner  # noqa: E402


def main(run_dir: str, strategy: str) -> None:
    data = make_demo_dataset(num_train=400, num_test=100, seed=0)
    tok = train_wordpiece_tokenizer(data["train"]["text"][:], vocab_size=200)
    cfg = build_tiny_bert(len(tok), hidden=16, layers=1)
    learner = ActiveLearner(
        dataset=data, model=cfg, tokenizer=tok, strategy=strategy, query_size=15, initial_size=10,
        rounds=4, max_epochs=2, min_steps=0, learning_rate=1e-3, max_length=32, run_dir=run_dir, progress=False, seed=3,
    )
    res = learner.run()
    ids = learner.pool.labelled_ids.tolist()
    rounds = learner.pool.rounds[ids].tolist()
    print("RESULT", ids, rounds, [r["queried_ids"] for r in res], flush=True)


if __name__ == "__main__":
    if sys.argv[3:] == ["cli"]:
        from energizer_hf.cli_errors import run_command

        sys.exit(run_command(lambda frame: main(sys.argv[1], sys.argv[2])))
    main(sys.argv[1], sys.argv[2])
