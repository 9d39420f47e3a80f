"""ALPS on a tiny BERT with a masked-LM head built from the same config."""

import numpy as np
import pytest
import torch

from energizer_hf.errors import EnergizerError
from energizer_hf.query_strategies import ALPSStrategy
from energizer_hf.query_strategies.alps import surprisal_embeddings
from energizer_hf.scoring import PoolScorer, QueryContext
from tests.scripts.tiny_setup import build


@pytest.fixture(scope="module")
def setup():
    from transformers import BertForMaskedLM

    pool, adapter, module = build(60)
    torch.manual_seed(0)
    mlm = BertForMaskedLM(module.model.config)
    return pool, adapter, module, mlm


def _query(strategy, pool, adapter, k, batch_size=8, seed=0):
    ctx = QueryContext(pool=pool, round=0, seed=seed, scorer=PoolScorer(adapter, batch_size=batch_size))
    return np.asarray(strategy.query(ctx, k))


def test_alps_returns_k_distinct_unlabelled_ids_deterministically(setup):
    pool, adapter, module, mlm = setup
    a = _query(ALPSStrategy(module, mlm=mlm), pool, adapter, 9)
    b = _query(ALPSStrategy(module, mlm=mlm), pool, adapter, 9, batch_size=5)  # other batching
    assert a.size == 9 and len(set(a.tolist())) == 9
    assert a.tolist() == b.tolist()


def test_surprisal_embeddings_are_normalised_and_batch_independent(setup):
    _, adapter, _, mlm = setup
    ids = np.arange(6)
    whole = surprisal_embeddings(mlm, **{k: v for k, v in adapter.collate(ids).items() if k != "token_type_ids"}, dim=32)
    one = surprisal_embeddings(mlm, **{k: v for k, v in adapter.collate(ids[:1]).items() if k != "token_type_ids"}, dim=32)
    norms = whole.norm(dim=1)
    assert torch.allclose(norms[norms > 0], torch.ones_like(norms[norms > 0]), atol=1e-5)
    assert torch.allclose(whole[0], one[0], atol=1e-5)  # padding and batch do not matter


def test_alps_picks_one_example_per_surprisal_cluster():
    # two very different groups of "surprisal": ALPS with k=2 takes one from each
    from energizer_hf import functional as F

    emb = torch.cat([torch.tensor([[1.0, 0.0]]).repeat(10, 1), torch.tensor([[0.0, 1.0]]).repeat(10, 1)])
    emb = emb + 0.01 * torch.randn(20, 2, generator=torch.Generator().manual_seed(0))
    picks = F.bertkm_select(emb, 2, seed=0)
    assert sorted((picks >= 10).tolist()) == [False, True]


def test_alps_without_a_masked_lm_says_what_to_pass(setup):
    pool, adapter, module, _ = setup
    with pytest.raises(EnergizerError, match="needs a masked language model: pass mlm="):
        _query(ALPSStrategy(module), pool, adapter, 3)
    with pytest.raises(EnergizerError, match="fraction"):
        ALPSStrategy(module, fraction=0)
