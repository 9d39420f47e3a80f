"""``energizer-hf``: the command line.

Commands:
    demo        run the offline demo (entropy vs random on generated data; --task ner|multi_label)
    run         run a YAML configuration; any field can be overridden (--query-size 10)
    push        push a run's round revisions, labelled set and final model to the Hub
    strategies  list the strategies: name, family, description (and aliases)
    annotate    collect Label Studio annotations of a run and continue it
    stream      stream-based active learning from a YAML configuration (StreamConfig)
    compare     learning curves, AUC, final metric and label savings of runs
    check       check that a run directory's files agree
    repair      make the safe repairs of a run directory
    unlock      break the stale lock of a run directory

Every failure ends in one line ``energizer-hf: error: <Name>: <what to do>`` and a
documented exit status (:mod:`energizer_hf.cli_errors`); ``--debug`` prints the traceback
first. ``--help``, ``strategies`` and argument errors import neither torch nor Lightning.

The Hub token comes from ``HF_TOKEN`` or ``hf auth login``; it is never a flag. Label
Studio's URL and token come from ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

__all__ = ["main"]


def _field_parser(field: dataclasses.Field) -> Any:
    """An argparse ``type`` for a RunConfig field: the text as given for scalars (RunConfig
    checks and coerces every value in one place, naming the field and the value), YAML for
    mappings and lists (``--strategy-args '{base: badge}'``)."""
    ann = str(field.type)
    if ann.startswith("dict") or ann.startswith("list") or ann == "Any":
        return _yaml_value
    return str


def _yaml_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise argparse.ArgumentTypeError(f"not valid YAML ({problem}): {text!r}") from None


_yaml_value.__name__ = "YAML"  # argparse names the type in its message


class _Parser(argparse.ArgumentParser):
    """Argument errors end in one line too, naming the option, the value and where to look."""

    def error(self, message: str) -> Any:  # noqa: D102 - argparse's hook
        from energizer_hf.scrub import scrub

        self.exit(2, scrub(f"energizer-hf: error: ArgumentError: {message} (see `{self.prog} --help`).\n"))


class _RoundTracker:
    """A loop callback telling the failure frame which round runs (for Ctrl-C)."""

    def __init__(self, frame: Any) -> None:
        self.frame = frame

    def on_round_start(self, loop: Any, round: int) -> None:
        self.frame.round = round


def _build_parser() -> argparse.ArgumentParser:
    from energizer_hf.cli_errors import EXIT_STATUSES
    from energizer_hf.learner import RunConfig
    from energizer_hf.run import LEGACY_CONFIG_NAMES

    statuses = "; ".join(f"{code}: {what}" for code, what in EXIT_STATUSES.items())
    parser = _Parser(
        prog="energizer-hf",
        description="Active learning for Hugging Face models.",
        epilog=f"Exit statuses: {statuses}.",
    )
    parser.add_argument("--debug", action="store_true", help="print the traceback of a failure")
    sub = parser.add_subparsers(dest="command", required=True)
    # `energizer-hf run x.yaml --debug` works as well as `energizer-hf --debug run x.yaml`
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="print the traceback of a failure")
    add_parser = sub.add_parser

    def with_debug(*a: Any, **kw: Any) -> argparse.ArgumentParser:
        return add_parser(*a, parents=[debug], **kw)

    sub.add_parser = with_debug  # type: ignore[method-assign]

    demo = sub.add_parser("demo", help="run the offline demo (entropy vs random)")
    demo.add_argument("--out-dir", default="energizer_demo", help="where to write runs and the plot")
    demo.add_argument("--rounds", type=int, default=6)
    demo.add_argument("--query-size", type=int, default=20)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--strategies", default=None,
                      help="comma-separated names (default: the task's uncertainty strategy and random)")
    demo.add_argument("--task", default="text_classification", choices=["text_classification", "ner", "multi_label"],
                      help="the generated task: topics, named entities (ner) or several topics per text")
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
        extra: dict[str, Any] = {}
        if "bool" in str(f.type):  # `--overwrite` alone is true; `--overwrite false` works too
            extra = {"nargs": "?", "const": "true", "metavar": "BOOL"}
        run.add_argument(
            *flags,
            dest=f.name,
            type=_field_parser(f),
            default=argparse.SUPPRESS,
            help=f.metadata.get("help", ""),
            **extra,
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

    sub.add_parser("strategies", help="list the strategies: name, family, description (and aliases)")

    check = sub.add_parser(
        "check",
        help="check that a run directory's files agree",
        description=(
            "Check RUN_DIR: records, label state, revisions and final model agree; lists each "
            "problem with what to do. Changes nothing. Exit status 0 when no error is found, "
            "4 otherwise."
        ),
    )
    check.add_argument("run_dir", metavar="RUN_DIR")
    repair = sub.add_parser(
        "repair",
        help="make the safe repairs of a run directory",
        description=(
            "Under the run's lock: remove stale temporary files, drop a torn last record, add a "
            "missing newline, rebuild a lost pool.json, roll back unrecorded labels, remove "
            "revisions without a record. Nothing else is changed. Exit status 0 when no error "
            "is left, 4 otherwise."
        ),
    )
    repair.add_argument("run_dir", metavar="RUN_DIR")
    unlock = sub.add_parser(
        "unlock",
        help="break the stale lock of a run directory",
        description=(
            "Remove the lock of RUN_DIR left by a run that is gone (e.g. on another host, or a "
            "file system without working locks). Refused while the holder runs on this host, "
            "unless --force."
        ),
    )
    unlock.add_argument("run_dir", metavar="RUN_DIR")
    unlock.add_argument("--force", action="store_true", help="break it even if the holder seems alive")
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


def _annotate(args: argparse.Namespace, frame: Any) -> int:
    from energizer_hf.errors import EnergizerError
    from energizer_hf.learner import ActiveLearner, RunConfig
    from energizer_hf.oracles.base import AWAITING_ANNOTATIONS
    from energizer_hf.oracles.label_studio import LabelStudioOracle
    from energizer_hf.run import RunDir
    from energizer_hf.utils import progress_enabled

    files = RunDir(args.run_dir)
    run_dir = files.root
    config_file = files.config_yaml
    if not config_file.exists():
        raise EnergizerError(
            f"{config_file} does not exist: RUN_DIR must be the run directory of a run started with "
            "a LabelStudioOracle (its config.yaml is written when the run stops)."
        )
    config = dataclasses.replace(
        RunConfig.from_yaml(config_file), run_dir=str(run_dir), progress=False if args.no_progress else None
    )
    if config.dataset is None and not config.data_files:
        raise EnergizerError(
            "The run was started with an in-memory dataset, so `annotate` cannot load it: call "
            "learner.collect() from Python instead, or start runs from a dataset name or path."
        )
    # the run binds the oracle to its pool, texts and model (nothing is given twice)
    oracle = LabelStudioOracle.from_run_dir(
        run_dir, wait="block" if args.wait else "async", timeout=args.timeout,
        progress=False if args.no_progress else progress_enabled(None),
    )
    results = ActiveLearner(config, oracle=oracle, callbacks=[_RoundTracker(frame)]).collect(partial=args.partial)
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


def _run(args: argparse.Namespace, frame: Any) -> int:
    from energizer_hf.config_types import coerce_fields, load_yaml_mapping
    from energizer_hf.errors import ConfigError
    from energizer_hf.learner import RunConfig
    from energizer_hf.strategy_catalog import CATALOG, resolve

    flags = {k: v for k, v in vars(args).items() if k not in ("command", "config", "debug")}
    # each source checked on its own, so an error names where the bad value came from
    try:
        flags = coerce_fields(RunConfig, flags, source="the command line")
    except ConfigError as err:  # name the flags as they were typed
        issues = [_as_flag(issue) for issue in err.errors or [str(err)]]
        raise ConfigError(
            "\n".join(["The command line has wrong values:", *(f"  - {i}" for i in issues)]), issues
        ) from None
    data = load_yaml_mapping(args.config) if args.config else {}
    from energizer_hf.run import LEGACY_CONFIG_NAMES

    for old, new in LEGACY_CONFIG_NAMES.items():  # a flag wins over the file's old name too
        if old in data and new in flags:
            data.pop(old)
    config = RunConfig.from_dict({**data, **flags}, source=args.config or "the command line")
    if isinstance(config.strategy, str) and resolve(config.strategy) is None:
        from energizer_hf.errors import UnknownStrategyError

        raise UnknownStrategyError(  # before torch is imported
            f"Unknown strategy '{config.strategy}'. Known strategies: {', '.join(CATALOG)} "
            "(`energizer-hf strategies` describes them)."
        )
    from energizer_hf.learner import ActiveLearner
    from energizer_hf.run import RunDir

    results = ActiveLearner(config, callbacks=[_RoundTracker(frame)]).run()
    print(results.to_table())
    files = RunDir(config.run_dir)
    print(f"\nRounds recorded in {files.rounds}")
    metric = _curve_metric(results)
    if metric is not None:
        print(f"Area under the learning curve ({metric}): {results.area_under_curve(metric):.4f}   "
              f"final: {results[-1][metric]:.4f}")
        plot = _plot_curve(results, config, metric, files.root / "learning_curve.png")
        if plot is not None:
            print(f"Learning curve: {plot}")
    return 0


def _as_flag(issue: str) -> str:
    """``max_rounds: got 'x' ...`` → ``--max-rounds: got 'x' ...``."""
    name, sep, rest = issue.partition(":")
    return f"--{name.replace('_', '-')}{sep}{rest}" if sep and name.isidentifier() else issue


def _curve_metric(results: Any) -> str | None:
    """The metric of the learning curve: the task's (test accuracy; entity-level F1 for
    NER; micro F1 for multi-label), else the first test metric."""
    keys = {k for r in results for k in r if k.startswith("test/") and isinstance(r.get(k), (int, float))}
    if not keys:
        return None
    for preferred in ("test/accuracy", "test/entity_f1", "test/f1_micro"):
        if preferred in keys:
            return preferred
    return sorted(keys)[0]


def _plot_curve(results: Any, config: Any, metric: str, path: Any) -> Any:
    try:
        from energizer_hf.results import plot_learning_curves

        return plot_learning_curves({config.strategy: results}, path, metric=metric,
                                    title=f"{config.strategy} on {config.dataset or 'data_files'}")
    except ImportError as err:  # matplotlib is optional
        print(f"(no plot: {err})")
        return None
    except OSError as err:  # a finished run shown from a read-only directory
        print(f"(no plot: {err.strerror or err})")
        return None


def _strategies() -> int:
    from energizer_hf.strategy_catalog import CATALOG

    width = max(len(n) for n in CATALOG)
    families = max(len(str(e["family"])) for e in CATALOG.values())
    for name, entry in CATALOG.items():
        aliases = entry["aliases"]
        also = f" (aliases: {', '.join(aliases)})" if aliases else ""  # type: ignore[arg-type]
        tasks = ", ".join(entry.get("tasks") or [])  # type: ignore[arg-type]
        print(f"{name:<{width}}  {entry['family']:<{families}}  {entry['description']}{also}  [tasks: {tasks}]")
    return 0


def _check(args: argparse.Namespace) -> int:
    from energizer_hf.checks import check_path_exists
    from energizer_hf.cli_errors import EXIT_RUN_DIR
    from energizer_hf.integrity import RunFiles, check_run_files
    from energizer_hf.run import RunDir
    from energizer_hf.runlock import read_holder

    files = RunDir(check_path_exists(args.run_dir, "run directory"))
    holder = read_holder(files.lock)
    if holder:
        print(f"(a run holds this directory: pid {holder.get('pid')} on {holder.get('host')}; "
              "files it is writing may be reported)")
    report = check_run_files(RunFiles.of(files))
    print(report)
    if not report.ok:
        print(f"\nRepair the safe cases with `energizer-hf repair {files.root}`; the others say what to do.")
    return 0 if report.ok else EXIT_RUN_DIR


def _repair(args: argparse.Namespace) -> int:
    from energizer_hf.checks import check_path_exists
    from energizer_hf.cli_errors import EXIT_RUN_DIR
    from energizer_hf.integrity import RunFiles, check_run_files
    from energizer_hf.run import RunDir
    from energizer_hf.runlock import RunLock

    files = RunDir(check_path_exists(args.run_dir, "run directory"))
    with RunLock(files.lock):
        report = check_run_files(RunFiles.of(files), repair=True)
    print(report)
    return 0 if report.ok else EXIT_RUN_DIR


def _unlock(args: argparse.Namespace) -> int:
    from energizer_hf.checks import check_path_exists
    from energizer_hf.run import RunDir
    from energizer_hf.runlock import break_lock

    files = RunDir(check_path_exists(args.run_dir, "run directory"))
    holder = break_lock(files.lock, force=args.force)
    if holder:
        print(f"Broke the lock of {files.root} held by pid {holder.get('pid')} on {holder.get('host')} "
              f"since {holder.get('started', '?')}.")
    else:
        print(f"{files.root} was not locked.")
    return 0


def _dispatch(args: argparse.Namespace, frame: Any) -> int:
    if args.command == "demo":
        from energizer_hf.demo import run_demo

        run_demo(
            out_dir=args.out_dir,
            strategies=tuple(s.strip() for s in args.strategies.split(",") if s.strip()) if args.strategies else None,
            rounds=args.rounds,
            query_size=args.query_size,
            seed=args.seed,
            progress=False if args.no_progress else None,  # default: only on a terminal
            task=args.task,
        )
        return 0
    if args.command == "strategies":
        return _strategies()
    if args.command == "run":
        return _run(args, frame)
    if args.command == "annotate":
        return _annotate(args, frame)
    if args.command == "stream":
        return _stream(args)
    if args.command == "check":
        return _check(args)
    if args.command == "repair":
        return _repair(args)
    if args.command == "unlock":
        return _unlock(args)
    if args.command == "compare":
        from energizer_hf.compare import compare_runs, write_comparison
        from energizer_hf.errors import EnergizerError

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
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse allows no other


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

    values = {k: v for k, v in vars(args).items() if k not in ("command", "config", "debug")}
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
    """Run the command line; returns the exit status (see :mod:`energizer_hf.cli_errors`)."""
    from energizer_hf.cli_errors import run_command

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help (0) or an argument error (2, already printed)
        return exit.code if isinstance(exit.code, int) else 0
    return run_command(lambda frame: _dispatch(args, frame), debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
