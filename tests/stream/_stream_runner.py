"""Decide a streamed JSONL dataset with cheap synthetic scores, committing every mini-batch.

The crash tests run it, kill it (SIGKILL) and run it again on the same directory; the
resumed run must leave the same decision log as an uninterrupted one.
Usage: python -m tests.stream._stream_runner DATA_DIR RUN_DIR [DELAY_SECONDS]
"""

from __future__ import annotations

import sys
import time
import zlib
from pathlib import Path

import numpy as np


def synthetic_outputs(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Scores in [0, 1) and 8-d embeddings that depend only on each text (no model)."""
    seeds = [zlib.crc32(t.encode()) for t in texts]
    scores = np.array([(s % 10007) / 10007 for s in seeds])
    emb = np.stack([np.random.default_rng(s).normal(size=8) for s in seeds])
    return scores, emb


def main(data_dir: str, run_dir: str, delay: float = 0.0, batch_size: int = 16) -> dict:
    import datasets

    from energizer_hf.stream import IterableDatasetSource, StreamStore, make_stream_strategy

    files = sorted(str(p) for p in Path(data_dir).glob("*.jsonl"))
    stream = datasets.load_dataset("json", data_files=files, split="train", streaming=True)
    source = IterableDatasetSource(stream, id_column="uid")
    strategy = make_stream_strategy("novelty", 0.2, window=50, memory_size=16, delta=0.5, seed=7)
    store = StreamStore(run_dir, config={"strategy": strategy.state_dict()["params"], "batch_size": batch_size})
    if store.checkpoint is not None:
        source.load_state_dict(store.checkpoint.source)
        strategy.load_state_dict(store.checkpoint.strategy)
    # items committed as sent before a crash whose labels never came back: send them again
    pending = set(store.pending_ids())
    again = [r for r in store.sent_records() if r["id"] in pending]
    if again:
        store.record_labels([r["id"] for r in again], [r["row"]["label"] for r in again])
    for batch in source.batches(batch_size):
        scores, emb = synthetic_outputs(batch.texts)
        strategy.decide(scores, emb)
        sent = store.commit(
            batch, strategy.last, source_state=source.state_dict(), strategy_state=strategy.state_dict()
        )
        where = {item: j for j, item in enumerate(batch.ids)}
        store.record_labels(sent, [batch.columns["label"][where[i]] for i in sent])  # simulated oracle
        if delay:
            time.sleep(delay)
    result = {"position": store.position, "sent": store.num_sent, "labelled": store.num_labelled}
    print("DONE", result, flush=True)
    return result


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
