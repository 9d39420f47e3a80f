"""A tiny, deterministic HF setup shared by the multi-process scripts and tests."""

from __future__ import annotations

import numpy as np
import torch


def build(num_rows: int = 101, seed: int = 0, dropout: float = 0.1):
    """Return ``(pool, adapter, module)``: demo data tokenized, a 1-layer BERT classifier."""
    from transformers import DataCollatorWithPadding

    from energizer_hf import ActivePool
    from energizer_hf.data import HFDataAdapter
    from energizer_hf.demo import build_tiny_bert, make_demo_dataset, train_wordpiece_tokenizer
    from energizer_hf.model import HFSequenceClassifier

    data = make_demo_dataset(num_train=max(num_rows, 1), num_test=10, seed=seed)
    ds = data["train"].select(range(num_rows))
    tok = train_wordpiece_tokenizer(data["train"]["text"][:], vocab_size=200)
    cfg = build_tiny_bert(len(tok), hidden=16, layers=1)
    cfg.hidden_dropout_prob = dropout
    cfg.initializer_range = 0.5  # spread-out outputs, so rankings are not all ties
    torch.manual_seed(seed)
    module = HFSequenceClassifier(cfg, num_labels=5)
    enc = tok(ds["text"][:], truncation=True, max_length=32)
    import datasets

    tokenized = datasets.Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    lengths = np.array([len(x) for x in enc["input_ids"]], dtype=np.int64)
    adapter = HFDataAdapter(
        tokenized, DataCollatorWithPadding(tok, return_tensors="pt"), batch_size=8, eval_batch_size=7,
        lengths=lengths, model_columns=["input_ids", "attention_mask"],
    )
    return ActivePool(ds), adapter, module
