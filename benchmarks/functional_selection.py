"""Time every selector of energizer_hf.functional on a synthetic pool.

Default: 50,000 x 384 float32 embeddings (50 overlapping clusters, L2-normalised like
sentence embeddings), 10-class probabilities, MC probabilities with T=10 passes for the
Bayesian selectors, 1,000 labelled points, k=100.

Each case runs in a forked child process, so the peak-RSS delta is that case's own:
the child resets its high-water mark (``/proc/self/clear_refs``), and reports
``VmHWM - VmRSS(before)``; where that is unavailable it falls back to
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` minus the RSS before the call.

Run from the repository root:

    OMP_NUM_THREADS=1 python benchmarks/functional_selection.py
    OMP_NUM_THREADS=1 python benchmarks/functional_selection.py --n 5000 --only badge kcenter
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402
import torch  # noqa: E402

from energizer_hf import functional as F  # noqa: E402


def make_data(n: int, d: int, c: int, t: int, n_labelled: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    n_topics = 50
    centers = torch.randn(n_topics, d, generator=g)
    topic = torch.randint(n_topics, (n,), generator=g)
    emb = centers[topic] + 0.8 * torch.randn(n, d, generator=g)
    emb = torch.nn.functional.normalize(emb, dim=1)
    w = torch.randn(d, c, generator=g) * 3.0
    logits = emb @ w
    probs = torch.softmax(logits, 1)
    noise = torch.randn(n, t, c, generator=g) * 1.0
    mc = torch.softmax(logits.unsqueeze(1) + noise, -1)
    labelled = torch.randperm(n, generator=g)[:n_labelled]
    lab_mask = torch.zeros(n, dtype=torch.bool)
    lab_mask[labelled] = True
    return {"emb": emb, "probs": probs, "mc": mc, "labelled": labelled, "mask": lab_mask}


def cases(k: int) -> dict[str, Callable[[dict], object]]:
    def probcover_with_delta(x: dict) -> object:
        return F.probcover(x["emb"], k, x["labelled"], delta=x["delta"])

    def cal(x: dict) -> object:
        lab = x["labelled"]
        scores = F.cal_scores(x["probs"], x["emb"], x["probs"][lab], x["emb"][lab], n_neighbors=10)
        return torch.topk(scores.masked_fill(x["mask"], -1.0), k).indices

    return {
        "bald (scores)": lambda x: F.bald(x["mc"]),
        "batchbald_greedy": lambda x: F.batchbald_greedy(x["mc"], k, labelled=x["labelled"]),
        "kcenter_greedy (coreset)": lambda x: F.kcenter_greedy(x["emb"], k, x["labelled"]),
        f"kmeans ({k} clusters)": lambda x: F.kmeans(x["emb"], k),
        "bertkm_select": lambda x: F.bertkm_select(x["emb"], k, labelled=x["labelled"]),
        "typiclust": lambda x: F.typiclust(x["emb"], k, x["labelled"]),
        "estimate_probcover_delta": lambda x: F.estimate_probcover_delta(
            x["emb"], x["kmeans_labels"], alpha=0.95
        ),
        "probcover": probcover_with_delta,
        "badge_select (implicit)": lambda x: F.badge_select(
            x["probs"], x["emb"], k, labelled=x["labelled"]
        ),
        "badge_gradient_embeddings": lambda x: F.badge_gradient_embeddings(x["probs"], x["emb"]),
        "cluster_margin (+HAC)": lambda x: F.cluster_margin(
            x["probs"], x["emb"], k, labelled=x["labelled"]
        ),
        "cal_scores + top-k": cal,
        "egl_scores": lambda x: F.egl_scores(x["probs"], x["emb"]),
        "knn (self, k=20)": lambda x: F.knn(x["emb"], x["emb"], 20, exclude_self=True),
    }


def _vm(field: str) -> int:
    """A /proc/self/status memory field in bytes (0 if unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _child(fn: Callable[[dict], object], data: dict, queue: mp.Queue) -> None:
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak-RSS high-water mark
        hwm_ok = True
    except OSError:
        hwm_ok = False
    before = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    fn(data)
    seconds = time.perf_counter() - t0
    peak = _vm("VmHWM") if hwm_ok else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    queue.put((seconds, max(0, peak - before)))


def run_case(fn: Callable[[dict], object], data: dict) -> tuple[float, int]:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, data, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=384)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--labelled", type=int, default=1_000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--only", nargs="*", help="substrings of case names to run")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    data = make_data(args.n, args.d, args.classes, args.passes, args.labelled)
    data["kmeans_labels"] = F.kmeans(data["emb"], args.k, n_iter=20).labels
    data["delta"] = F.estimate_probcover_delta(data["emb"], data["kmeans_labels"], alpha=0.95)
    print(
        f"pool N={args.n} d={args.d} C={args.classes} T={args.passes} |L|={args.labelled} "
        f"k={args.k} threads={torch.get_num_threads()} torch={torch.__version__} "
        f"probcover delta={data['delta']:.4f}"
    )
    print(f"{'selector':<28} {'seconds':>9} {'peak RSS delta (MiB)':>21}")
    print("-" * 60)
    for name, fn in cases(args.k).items():
        if args.only and not any(s in name for s in args.only):
            continue
        seconds, rss = run_case(fn, data)
        print(f"{name:<28} {seconds:>9.2f} {rss / 2**20:>21.1f}", flush=True)


if __name__ == "__main__":
    main()
