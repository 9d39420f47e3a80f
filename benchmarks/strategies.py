"""Query time and peak memory of every registered zoo strategy on a synthetic pool.

The model outputs are given directly (a table of precomputed probabilities, embeddings and
MC-dropout probabilities), so what is timed is the strategy's selection, not a network:
strategies built on whole-pool outputs get their arrays from memory, and the scoring
strategies (``entropy``, ``margin``, the ``class_balanced`` base) run a table-lookup
"model" through the real :class:`~energizer_hf.scoring.PoolScorer`.

Default: 50,000 rows, 384-d L2-normalised embeddings (50 overlapping topics), 10 classes,
T=10 MC passes, 1,000 labelled training rows, k=100; the strategies that scale are run
again on 200,000 rows. Each case runs in a forked child; the peak-RSS delta is that
child's high-water mark above its RSS before the query (as
``benchmarks/functional_selection.py``).

    OMP_NUM_THREADS=1 python benchmarks/strategies.py
    OMP_NUM_THREADS=1 python benchmarks/strategies.py --rows 5000 --large-rows 0 --only badge coreset
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from energizer_hf import ActivePool, QueryContext  # noqa: E402
from energizer_hf.data import TorchDataAdapter  # noqa: E402
from energizer_hf.query_strategies import (  # noqa: E402
    PoolOutputsStrategy,
    configure_strategy,
    get_strategy_class,
)
from energizer_hf.scoring import PoolScorer  # noqa: E402

# name -> runs on the large pool too
CASES: dict[str, bool] = {
    "random": True,
    "entropy": True,
    "margin": True,
    "coreset": True,
    "kmeans": True,
    "typiclust": False,
    "probcover": False,
    "badge": True,
    "cluster_margin": True,
    "cal": True,
    "egl": True,
    "dal": True,
    "batchbald": True,
    "class_balanced": True,
    "random_subset(badge, 10k)": True,
    "random_subset(probcover, 10k)": True,
    "cold_start_kmeans": False,
}


def make_data(n: int, d: int, c: int, t: int, seed: int = 0) -> dict[str, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(50, d, generator=g)
    topic = torch.randint(50, (n,), generator=g)
    emb = torch.nn.functional.normalize(centers[topic] + 0.8 * torch.randn(n, d, generator=g), dim=1)
    logits = emb @ (torch.randn(d, c, generator=g) * 3.0)
    mc = torch.softmax(logits.unsqueeze(1) + torch.randn(n, t, c, generator=g), -1)
    return {
        "embeddings": emb.numpy(),
        "logits": logits.numpy(),
        "probs": torch.softmax(logits, 1).numpy(),
        "mc_probs": mc.numpy(),
    }


class Table(nn.Module):
    """A lookup "model": logits and embeddings by pool id (batches are ``(ids,)``)."""

    def __init__(self, data: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.logits = torch.from_numpy(data["logits"])
        self.emb = torch.from_numpy(data["embeddings"])
        self.drop = nn.Dropout(0.1)

    def forward(self, batch: Any) -> torch.Tensor:
        return self.drop(self.logits[batch[0]])

    def embed(self, batch: Any) -> torch.Tensor:
        return self.emb[batch[0]]


def _feed(strategy: Any, data: dict[str, np.ndarray]) -> None:
    """Give whole-pool strategies their outputs from memory (no model pass)."""
    targets = [strategy, getattr(strategy, "base", None)]
    for s in targets:
        if isinstance(s, PoolOutputsStrategy):
            s.outputs = lambda ctx, ids, what, **kw: {w: data[w][ids] for w in what}


def build_strategy(name: str, model: nn.Module) -> Any:
    if name.startswith("random_subset("):
        base = name[len("random_subset(") :].split(",")[0]
        return configure_strategy("random_subset", base=base, subpool_size=10_000)(model)
    return get_strategy_class(name)(model)


def _vm(field: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _child(name: str, data: dict, n_labelled: int, k: int, queue: Any) -> None:
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    try:
        n = data["probs"].shape[0]
        ds = TensorDataset(torch.arange(n))
        pool = ActivePool(ds)
        rng = np.random.default_rng(0)
        lab = rng.choice(n, size=n_labelled, replace=False)
        pool.label(lab, data["probs"][lab].argmax(1))
        adapter = TorchDataAdapter(DataLoader(ds, batch_size=4096))
        strategy = build_strategy(name, Table(data))
        _feed(strategy, data)
        ctx = QueryContext(pool=pool, round=1, seed=0, scorer=PoolScorer(adapter, batch_size=4096))
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            hwm_ok = True
        except OSError:
            hwm_ok = False
        before = psutil.Process().memory_info().rss
        t0 = time.perf_counter()
        ids = strategy.query(ctx, k)
        seconds = time.perf_counter() - t0
        peak = _vm("VmHWM") if hwm_ok else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        assert len(set(np.asarray(ids).tolist())) == k
        queue.put((seconds, max(0, peak - before), None))
    except Exception as err:  # report, do not hang the parent
        queue.put((float("nan"), 0, f"{type(err).__name__}: {err}"))


def run_case(name: str, data: dict, n_labelled: int, k: int, timeout: float) -> tuple[float, int, str | None]:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, data, n_labelled, k, queue))
    proc.start()
    try:
        result = queue.get(timeout=timeout)
    except Exception:
        proc.kill()
        result = (float("nan"), 0, f"timeout > {timeout:.0f} s")
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--large-rows", type=int, default=200_000, help="0 to skip")
    parser.add_argument("--d", type=int, default=384)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--labelled", type=int, default=1_000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per case")
    parser.add_argument("--only", nargs="*", help="substrings of strategy names to run")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    names = [c for c in CASES if not args.only or any(s in c for s in args.only)]
    print(
        f"d={args.d} C={args.classes} T={args.passes} |L|={args.labelled} k={args.k} "
        f"threads={torch.get_num_threads()} torch={torch.__version__}"
    )
    print(f"{'strategy':<32} {'rows':>8} {'seconds':>9} {'peak RSS delta (MiB)':>21}")
    print("-" * 73)
    for rows, large in ((args.rows, False), (args.large_rows, True)):
        if rows <= 0:
            continue
        data = make_data(rows, args.d, args.classes, args.passes)
        for name in names:
            if large and not CASES[name]:
                continue
            seconds, rss, err = run_case(name, data, args.labelled, args.k, args.timeout)
            note = f"  ({err})" if err else ""
            print(f"{name:<32} {rows:>8} {seconds:>9.2f} {rss / 2**20:>21.1f}{note}", flush=True)
        del data


if __name__ == "__main__":
    main()
