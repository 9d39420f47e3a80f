"""Active learning with people: each round's queries are labelled in Label Studio.

    export LABEL_STUDIO_URL=http://localhost:8080
    export LABEL_STUDIO_API_KEY=...            # Account & Settings → Access Token
    python examples/label_studio_session.py --data my_texts.csv --model prajjwal1/bert-tiny \\
        --labels negative,neutral,positive --run-dir runs/ls-session

The pool (a CSV/JSON/parquet file or a save_to_disk directory with a ``text`` column) needs
no labels. With ``--async`` the script imports a round's tasks and exits; run
``energizer-hf annotate RUN_DIR`` (or this script again) when the annotations are in.
See examples/LABEL_STUDIO.md.

Install energizer_hf first, from a checkout or a wheel (docs/install.md; it is not on PyPI yet), with the ``labelstudio`` extra.
"""

from __future__ import annotations

import argparse
import logging

from energizer_hf.learner import ActiveLearner
from energizer_hf.oracles import AWAITING_ANNOTATIONS, LabelStudioOracle


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="pool: a file or a save_to_disk directory")
    p.add_argument("--model", default="prajjwal1/bert-tiny")
    p.add_argument("--labels", required=True, help="comma-separated class names")
    p.add_argument("--text-column", default="text")
    p.add_argument("--run-dir", default="runs/label-studio")
    p.add_argument("--project", default=None, help="Label Studio project id or title (default: new)")
    p.add_argument("--strategy", default="entropy")
    p.add_argument("--query-size", type=int, default=20)
    p.add_argument("--initial-size", type=int, default=20)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--async", dest="asynchronous", action="store_true",
                   help="import the round's tasks and exit instead of waiting")
    p.add_argument("--skipped", choices=["return", "ignore"], default="return")
    p.add_argument("--conflict", choices=["first", "majority", "unanimous"], default="first")
    p.add_argument("--annotations-per-task", type=int, default=1)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    labels = [s.strip() for s in args.labels.split(",") if s.strip()]
    project = int(args.project) if args.project and args.project.isdigit() else args.project
    # URL and token from LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY; the run gives the oracle
    # its directory, the class names, the texts and the model's guesses (pre-annotations)
    oracle = LabelStudioOracle(
        project=project,
        wait="async" if args.asynchronous else "block",
        skipped=args.skipped,
        conflict=args.conflict,
        annotations_per_task=args.annotations_per_task,
    )
    learner = ActiveLearner(
        dataset=args.data,
        model=args.model,
        strategy=args.strategy,
        oracle=oracle,
        text_column=args.text_column,
        label_names=labels,
        test_split="",
        initial_strategy="random",
        query_size=args.query_size,
        initial_size=args.initial_size,
        max_rounds=args.rounds,
        run_dir=args.run_dir,
    )
    results = learner.run()
    print(results.to_table())
    if results.stop_reason == AWAITING_ANNOTATIONS:
        waiting = results[-1]["awaiting"]
        print(f"\nWaiting for annotations ({waiting['done']}/{waiting['total']} done) in "
              f"{waiting['where']}.\nWhen they are in: energizer-hf annotate {args.run_dir}")


if __name__ == "__main__":
    main()
