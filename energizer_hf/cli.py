"""``energizer-hf``: the command line.

Commands:
    demo        run the offline demo (entropy vs random on generated data)
    run         run a YAML configuration; any field can be overridden (--query-size 10)
    push        push a run's round revisions, labelled set and final model to the Hub
    strategies  list the registered strategy names
    annotate    collect Label Studio annotations of a run and continue it
    stream      stream-based active learning from a YAML configuration (StreamConfig)
    compare     learning curves, AUC, final metric and label savings of runs

The Hub token comes from ``HF_TOKEN`` or ``hf auth login``; it is never a flag. Label
Studio's URL and token come from ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

__all__ = ["main"]


def _field_parser(field: dataclasses.Field) -> Any:
    """An argparse ``type`` for a RunConfig field, from its annotation."""
    ann = str(field.type)
    if ann.startswith("dict") or ann.startswith("list") or ann == "Any":
        import yaml

        return yaml.safe_load
    if "bool" in ann:
        return _parse_bool
    if "int" in ann and "float" not in ann:
        return lambda s: None if s.lower() in ("none", "null") else int(s)
    if "float" in ann:
        return float
    return lambda s: None if s.lower() in ("none", "null") else s


def _parse_bool(value: str) -> bool:
    v = value.lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {value!r}")


def _build_parser() -> argparse.ArgumentParser:
    from energizer_hf.learner import RunConfig
    from energizer_hf.run import LEGACY_CONFIG_NAMES

    parser = argparse.ArgumentParser(prog="energizer-hf", description="Active learning for Hugging Face models.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the offline demo (entropy vs random)")
    demo.add_argument("--out-dir", default="energizer_demo", help="where to write runs and the plot")
    demo.add_argument("--rounds", type=int, default=6)
    demo.add_argument("--query-size", type=int, default=20)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--strategies", default="entropy,random", help="comma-separated names")
    demo.add_argument("--no-progress", action="store_true")

    run = sub.add_parser(
        "run",
        help="run a YAML configuration",
        description="Run active learning from a YAML file; every field can be overridden.",
    )
    run.add_argument("config", nargs="?", help="YAML file with RunConfig fields")
    old_names = {new: old for old, new in LEGACY_CONFIG_NAMES.items()}
    for f in dataclasses.fields(RunConfig):
        flags = [f"--{f.name.replace('_', '-')}"]
        if f.name in old_names:  # the name the setting had before still works
            flags.append(f"--{old_names[f.name].replace('_', '-')}")
        run.add_argument(
            *flags,
            dest=f.name,
            type=_field_parser(f),
            default=argparse.SUPPRESS,
            help=f.metadata.get("help", ""),
        )

    push = sub.add_parser(
        "push",
        help="push a run's round revisions, labelled set and final model to the Hub",
        description=(
            "Push the round revisions of RUN_DIR that are missing on the Hub (one commit + tag "
            "round-NNN each on --branch of the dataset repo REPO_ID), the last round's labelled "
            "set with its card to main, and with --model-repo-id the final model saved in "
            "RUN_DIR/final_model with its card. Pushing again adds nothing. Token: HF_TOKEN or "
            "`hf auth login`."
        ),
    )
    push.add_argument("run_dir", metavar="RUN_DIR", help="run directory of a (finished) run")
    push.add_argument("repo_id", metavar="REPO_ID", help="Hub dataset repo id, user/name")
    push.add_argument("--model-repo-id", default=None, help="also push the final model here")
    vis = push.add_mutually_exclusive_group()
    vis.add_argument("--private", dest="private", action="store_true", default=True,
                     help="create missing repositories as private (default)")
    vis.add_argument("--public", dest="private", action="store_false",
                     help="create missing repositories as public")
    push.add_argument("--branch", default="energizer-run", help="branch of the round commits")

    sub.add_parser("strategies", help="list the registered strategy names")
    _add_stream_parser(sub)

    compare = sub.add_parser(
        "compare",
        help="learning curves, AUC, final metric and label savings of runs",
        description=(
            "Group run directories (by strategy by default; each run of a group is one seed) and "
            "print per group the AUC and final metric (mean ± std), and the labels each group "
            "needed to reach fractions of the reference group's final metric (label savings). "
            "Writes comparison.png / .md / .json into --out."
        ),
    )
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                         help="run directories, or directories holding run directories")
    compare.add_argument("--by", default="strategy",
                         help="group by this record field or run.json config key (default: strategy)")
    compare.add_argument("--metric", default="test/accuracy", help="record field to compare")
    compare.add_argument("--reference", default="random", help="group whose final metric sets the targets")
    compare.add_argument("--fractions", default="0.95,0.98",
                         help="comma-separated fractions of the reference's final metric")
    compare.add_argument("--out", default=None,
                         help="directory (or .png path) for the plot and tables (default: print only)")

    annotate = sub.add_parser(
        "annotate",
        help="collect Label Studio annotations of a run and continue it",
        description=(
            "Read the annotations given in Label Studio for the run in RUN_DIR (its project and "
            "oracle settings are in RUN_DIR/label_studio/tasks.json, its configuration in "
            "RUN_DIR/config.yaml), label them and continue the loop until the next round's "
            "tasks are imported (or with --wait, until the run ends). URL and token: "
            "LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY."
        ),
    )
    annotate.add_argument("run_dir", metavar="RUN_DIR", help="run directory of a Label Studio run")
    annotate.add_argument("--wait", action="store_true",
                          help="block (poll) for the annotations instead of stopping")
    annotate.add_argument("--timeout", type=float, default=None,
                          help="with --wait: seconds to wait per round before giving up")
    annotate.add_argument("--partial", action="store_true",
                          help="close the waiting round with what is annotated now; the rest "
                               "goes back to the pool")
    annotate.add_argument("--no-progress", action="store_true")
    return parser


def _annotate(args: argparse.Namespace) -> int:
    from energizer_hf.errors import EnergizerError
    from energizer_hf.learner import ActiveLearner, RunConfig
    from energizer_hf.oracles.base import AWAITING_ANNOTATIONS
    from energizer_hf.oracles.label_studio import LabelStudioOracle
    from energizer_hf.run import RunDir

    files = RunDir(args.run_dir)
    run_dir = files.root
    config_file = files.config_yaml
    if not config_file.exists():
        raise EnergizerError(
            f"{config_file} does not exist: RUN_DIR must be the run directory of a run started with "
            "a LabelStudioOracle (its config.yaml is written when the run stops)."
        )
    config = dataclasses.replace(
        RunConfig.from_yaml(config_file), run_dir=str(run_dir), progress=not args.no_progress
    )
    if config.dataset is None and not config.data_files:
        raise EnergizerError(
            "The run was started with an in-memory dataset, so `annotate` cannot load it: call "
            "learner.collect() from Python instead, or start runs from a dataset name or path."
        )
    # the run binds the oracle to its pool, texts and model (nothing is given twice)
    oracle = LabelStudioOracle.from_run_dir(
        run_dir, wait="block" if args.wait else "async", timeout=args.timeout, progress=not args.no_progress
    )
    results = ActiveLearner(config, oracle=oracle).collect(partial=args.partial)
    print(results.to_table())
    if results.stop_reason == AWAITING_ANNOTATIONS:
        waiting = results[-1].get("awaiting", {})
        print(
            f"\nAwaiting annotations: {waiting.get('done')}/{waiting.get('total')} tasks of round "
            f"{waiting.get('round')} done in {waiting.get('where')}. Run `energizer-hf annotate "
            f"{run_dir}` again later."
        )
    else:
        print(f"\nRun finished ({results.stop_reason}); rounds in {files.rounds}")
    return 0


def _add_stream_parser(sub: Any) -> None:
    """``energizer-hf stream [config.yaml] [--field value ...]``: every StreamConfig field is a flag."""
    from energizer_hf.stream_config import StreamConfig

    stream = sub.add_parser(
        "stream",
        help="stream-based active learning from a YAML configuration",
        description="Decide each arriving item (label or let go) under a budget rate, retraining as labels "
        "come back; every StreamConfig field can be overridden. A run directory with a stream is resumed.",
    )
    stream.add_argument("config", nargs="?", help="YAML file with StreamConfig fields")
    for f in dataclasses.fields(StreamConfig):
        stream.add_argument(
            f"--{f.name.replace('_', '-')}", dest=f.name, type=_field_parser(f), default=argparse.SUPPRESS,
            help=f.metadata.get("help", ""),
        )


def _stream(args: argparse.Namespace) -> int:
    """Run (or resume) a stream; Label Studio's URL and token come from the environment."""
    from energizer_hf.stream_config import StreamConfig
    from energizer_hf.stream_learner import StreamLearner

    values = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    config = StreamConfig.from_yaml(args.config) if args.config else StreamConfig()
    config = dataclasses.replace(config, **values)
    oracle = None
    if config.oracle == "label_studio":
        from energizer_hf.oracles.label_studio import LabelStudioStreamOracle

        oracle = LabelStudioStreamOracle(**dict(config.label_studio or {}))
    learner = StreamLearner(config, oracle=oracle)
    results = learner.run()
    print(results.to_table())
    progress = learner.progress()
    print(
        f"\nStream {results.stop_reason}: {progress['seen']} items seen, {progress['sent']} sent, "
        f"{progress['labelled']} labelled (rate over the window {progress['rate']:.3f}); "
        f"plot in {learner.files.stream_plot}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = _build_parser()
    args = parser.parse_args(argv)
    from energizer_hf.errors import EnergizerError

    try:
        if args.command == "demo":
            from energizer_hf.demo import run_demo

            run_demo(
                out_dir=args.out_dir,
                strategies=tuple(s.strip() for s in args.strategies.split(",") if s.strip()),
                rounds=args.rounds,
                query_size=args.query_size,
                seed=args.seed,
                progress=not args.no_progress,
            )
            return 0
        if args.command == "strategies":
            from energizer_hf.query_strategies import available_strategies

            print("\n".join(available_strategies()))
            return 0
        if args.command == "run":
            from energizer_hf.learner import ActiveLearner, RunConfig

            values = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
            config = RunConfig.from_yaml(args.config) if args.config else RunConfig()
            config = dataclasses.replace(config, **values)
            results = ActiveLearner(config).run()
            print(results.to_table())
            from energizer_hf.run import RunDir

            print(f"\nRounds recorded in {RunDir(config.run_dir).rounds}")
            return 0
        if args.command == "annotate":
            return _annotate(args)
        if args.command == "stream":
            return _stream(args)
        if args.command == "compare":
            from energizer_hf.compare import compare_runs, write_comparison

            try:
                fractions = [float(f) for f in args.fractions.split(",") if f.strip()]
            except ValueError:
                raise EnergizerError(f"--fractions must be numbers separated by commas, got {args.fractions!r}.") from None
            comparison = compare_runs(
                args.run_dirs, by=args.by, metric=args.metric, reference=args.reference or None, fractions=fractions
            )
            print(comparison.to_markdown())
            if comparison.reference is None and args.reference:
                print(f"\n(no group named {args.reference!r}: no label savings)")
            if args.out:
                files = write_comparison(comparison, args.out)
                print(f"\nWrote {files['png']}, {files['markdown']} and {files['json']}")
            return 0
        if args.command == "push":
            from energizer_hf.revisions import push_run

            summary = push_run(
                args.run_dir,
                args.repo_id,
                model_repo_id=args.model_repo_id,
                private=args.private,
                run_branch=args.branch,
            )
            rounds = ", ".join(f"round-{r:03d}" for r in summary["pushed_rounds"]) or "none (all there)"
            print(f"Rounds pushed to {args.repo_id}@{args.branch}: {rounds}")
            if summary["missing_rounds"]:
                print(f"Rounds without a local revision (not pushed): {summary['missing_rounds']}")
            print(f"Labelled set (round-{summary['last_round']:03d}): {summary['dataset_url']}")
            if args.model_repo_id:
                print(f"Final model: {summary['model_url']}")
            return 0
    except EnergizerError as err:
        print(f"energizer-hf: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
