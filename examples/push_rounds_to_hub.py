"""Push every active-learning round to the Hub as a dataset revision, then the final model.

Each round's labelled set becomes one commit on the branch ``energizer-run`` of a dataset
repository, tagged ``round-000``, ``round-001``, ... (and a local copy under
``<run-dir>/revisions/``). At the end the final labelled set goes to ``main`` with its card,
and the model and tokenizer go to a model repository whose card links that revision.
Install energizer_hf first, from a checkout or a wheel (docs/install.md; it is not on PyPI yet).

It runs fully offline against a local Hub-compatible endpoint when ``HF_ENDPOINT`` is set,
e.g. the test server of this repository::

    python -m tests.hubsim.server --port 8765 --data-dir /tmp/hub &
    export HF_ENDPOINT=http://127.0.0.1:8765 HF_HUB_DISABLE_XET=1 HF_TOKEN=hf_test_token
    python examples/push_rounds_to_hub.py --dataset-repo tester/al-rounds --model-repo tester/al-model

Without ``HF_ENDPOINT`` it pushes to huggingface.co with your login (``hf auth login``) or
``HF_TOKEN``. The data, tokenizer and model are the tiny built-in demo ones, so nothing is
downloaded. Load a round back with ``energizer_hf.revisions.load_round("tester/al-rounds", "round-001")``
or ``datasets.load_dataset("tester/al-rounds", revision="round-001", split="train")``.

The same from the command line (every ``ActiveLearner`` run also keeps the final model under
``<run-dir>/final_model/``)::

    energizer-hf run config.yaml --hub-repo-id tester/al-rounds       # a commit + tag per round
    energizer-hf push runs/energizer tester/al-rounds --model-repo-id tester/al-model
    energizer-hf run config.yaml --run-dir runs/from-round-1 \\
        --resume-from tester/al-rounds --resume-revision round-001    # start from a revision
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset-repo", default="tester/energizer-rounds")
    parser.add_argument("--model-repo", default="tester/energizer-model")
    parser.add_argument("--run-dir", default="runs/push_rounds_to_hub")
    parser.add_argument("--strategy", default="entropy")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--query-size", type=int, default=10)
    parser.add_argument("--public", action="store_true", help="create public repositories")
    args = parser.parse_args(argv)

    import torch

    from energizer_hf.demo import build_tiny_bert, make_demo_dataset, train_wordpiece_tokenizer
    from energizer_hf.learner import ActiveLearner
    from energizer_hf.revisions import HubRevisions

    torch.set_num_threads(1)
    data = make_demo_dataset(num_train=300, num_test=100, seed=0)
    tokenizer = train_wordpiece_tokenizer(data["train"]["text"][:], vocab_size=200)
    config = build_tiny_bert(len(tokenizer), hidden=16, layers=1)

    # One commit + tag per round, as the run goes; retries with backoff on server errors.
    store = HubRevisions(args.dataset_repo, private=not args.public, retries=3, backoff=0.5)
    learner = ActiveLearner(
        dataset=data,
        model=config,
        tokenizer=tokenizer,
        strategy=args.strategy,
        callbacks=[store],
        query_size=args.query_size,
        initial_size=args.query_size,
        max_rounds=args.rounds,
        max_epochs=1,
        learning_rate=1e-3,
        max_length=32,
        run_dir=args.run_dir,
        progress=False,
    )
    results = learner.run()
    store.sync()  # no-op unless a round failed to push (e.g. on a resumed run)
    final = learner.push_to_hub(args.model_repo, store=store)  # labelled set + model + card
    summary = {
        "rounds": [r["round"] for r in results],
        "test_accuracy": [r.get("test/accuracy") for r in results],
        "dataset_repo": args.dataset_repo,
        "dataset_commit": final.dataset_commit,
        "model_repo": args.model_repo,
        "model_commit": final.model_commit,
        "model_url": final.model_url,
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
