"""Shared fixtures: tiny models built from configs, tiny datasets, one thread."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def demo_data():
    from energizer_hf.demo import make_demo_dataset

    return make_demo_dataset(num_train=300, num_test=100, seed=0)


@pytest.fixture(scope="session")
def demo_tokenizer(demo_data):
    from energizer_hf.demo import train_wordpiece_tokenizer

    return train_wordpiece_tokenizer(demo_data["train"]["text"][:], vocab_size=200)


@pytest.fixture(scope="session")
def tiny_bert_config(demo_tokenizer):
    from energizer_hf.demo import build_tiny_bert

    return build_tiny_bert(len(demo_tokenizer), hidden=16, layers=1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data is not present ({SHARED_DATA}); this test needs it")
    return SHARED_DATA


def learner_kwargs(tmp_path, **overrides):
    """Fast settings for the HF-native path on the tiny model."""
    kwargs = dict(
        query_size=10,
        initial_size=10,
        rounds=2,
        max_epochs=1,
        min_steps=0,  # the fixed schedule: tiny models need no step floor, tests stay fast
        batch_size=16,
        eval_batch_size=64,
        learning_rate=1e-3,
        max_length=32,
        run_dir=str(tmp_path / "run"),
        progress=False,
        seed=0,
    )
    kwargs.update(overrides)
    return kwargs


@pytest.fixture
def rng():
    return np.random.default_rng(0)
