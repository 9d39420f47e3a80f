"""One shared tester runs every registered strategy through the design's invariants."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from energizer_hf import ActivePool, InvalidScoresError, QueryContext
from energizer_hf.data import TorchDataAdapter
from energizer_hf.errors import EnergizerError, UnknownStrategyError
from energizer_hf.query_strategies import (
    AccumulatorStrategy,
    EntropyStrategy,
    LeastConfidenceStrategy,
    MarginStrategy,
    RatioOfConfidenceStrategy,
    available_strategies,
    get_strategy_class,
    register_strategy,
)
from energizer_hf.scoring import PoolScorer
from tests.seed_models import UnpackingModel, make_blobs

# the strategies of single-label text classification (the others have their own tests in tests/test_tasks.py)
STRATEGY_CLASSES = sorted(
    {get_strategy_class(n) for n in available_strategies() if "text_classification" in get_strategy_class(n).tasks},
    key=lambda c: c.__name__,
)


def _setup(n=57, labelled=(0, 5, 9), batch_size=8):
    x, y = make_blobs(n)
    dl = DataLoader(TensorDataset(x, y), batch_size=batch_size)
    pool = ActivePool(dl.dataset)
    pool.label(list(labelled))
    adapter = TorchDataAdapter(dl)
    return pool, adapter


def _query(strategy, pool, adapter, k, seed=0, round=0):
    scorer = PoolScorer(adapter, batch_size=adapter.pool_batch_size)
    ctx = QueryContext(pool=pool, round=round, seed=seed, scorer=scorer)
    return np.asarray(strategy.query(ctx, k))


@pytest.mark.parametrize("cls", STRATEGY_CLASSES, ids=lambda c: c.__name__)
class TestEveryStrategy:
    def make(self, cls):
        if getattr(cls, "requires_embeddings", False):
            pytest.skip("needs an `embed` hook, which UnpackingModel lacks (see tests/test_zoo.py)")
        if getattr(cls, "requires_mlm", False):
            pytest.skip("needs a masked language model (see tests/test_alps.py)")
        torch.manual_seed(0)
        return cls(UnpackingModel(dropout=0.3))

    @pytest.mark.parametrize("k", [1, 7, 20])
    def test_exactly_k_unlabelled_distinct_ids(self, cls, k):
        pool, adapter = _setup()
        ids = _query(self.make(cls), pool, adapter, k)
        assert ids.size == k
        assert len(set(ids.tolist())) == k
        assert not np.isin(ids, pool.labelled_ids).any()
        assert ((ids >= 0) & (ids < len(pool))).all()

    def test_deterministic_for_a_seed(self, cls):
        pool, adapter = _setup()
        torch.manual_seed(1)
        a = _query(self.make(cls), pool, adapter, 10, seed=3)
        torch.manual_seed(1)
        b = _query(self.make(cls), pool, adapter, 10, seed=3)
        assert a.tolist() == b.tolist()

    def test_k_larger_than_pool_returns_everything_left(self, cls):
        pool, adapter = _setup(n=12)
        ids = _query(self.make(cls), pool, adapter, 100)
        assert sorted(ids.tolist()) == pool.unlabelled_ids.tolist()

    def test_batch_size_does_not_change_the_query(self, cls):
        if getattr(cls, "needs_mc_samples", False):
            pytest.skip("MC-dropout draws depend on the batch layout")
        pool, adapter = _setup(batch_size=5)
        pool2, adapter2 = _setup(batch_size=16)
        assert _query(self.make(cls), pool, adapter, 9).tolist() == _query(self.make(cls), pool2, adapter2, 9).tolist()


class FixedLogits(nn.Module):
    """Returns preset logits for the ids in the batch (batches are (ids,) tuples)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, batch):
        return self.logits[batch[0]]


def _known(strategy_cls, logits, k=1):
    ds = TensorDataset(torch.arange(len(logits)))
    dl = DataLoader(ds, batch_size=2)
    pool = ActivePool(ds)
    return _query(strategy_cls(FixedLogits(logits)), pool, TorchDataAdapter(dl), k).tolist()


def test_entropy_picks_the_uniform_example():
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.0, 0.0, 0.0], [2.0, 1.0, 0.0], [0.0, 5.0, 0.0]])
    assert _known(EntropyStrategy, logits) == [1]


def test_margin_picks_the_closest_tie_even_when_entropy_would_not():
    # row 0: two-way tie with a third class at 0 -> small margin, low-ish entropy
    # row 1: spread over 3 classes but a clear winner -> higher entropy, larger margin
    logits = torch.tensor([[3.0, 3.0, -9.0], [1.2, 0.0, 0.0], [5.0, 0.0, 0.0]])
    assert _known(MarginStrategy, logits) == [0]
    assert _known(EntropyStrategy, logits) == [1]


def test_least_confidence_and_ratio_known_answers():
    logits = torch.tensor([[5.0, 0.0], [0.1, 0.0], [2.0, 0.0]])
    assert _known(LeastConfidenceStrategy, logits, k=2) == [1, 2]
    assert _known(RatioOfConfidenceStrategy, logits, k=2) == [1, 2]


def test_bald_prefers_disagreement_over_uniform_uncertainty():
    from energizer_hf.query_strategies import BALDStrategy

    class Disagreeing(nn.Module):
        # example 0: every pass uniform; example 1: passes confidently disagree
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.5)

        def forward(self, batch):
            ids = batch[0]
            mask = self.drop(torch.ones(len(ids), 1))  # 0 or 2 per pass
            flip = (mask > 0).float()
            confident = torch.cat([flip * 8 - 4, 4 - flip * 8], dim=1)
            uniform = torch.zeros(len(ids), 2)
            return torch.where((ids == 1).unsqueeze(1), confident, uniform)

    ds = TensorDataset(torch.arange(2))
    pool = ActivePool(ds)
    torch.manual_seed(0)
    ids = _query(BALDStrategy(Disagreeing(), num_mc_samples=20), pool, TorchDataAdapter(DataLoader(ds, batch_size=2)), 1)
    assert ids.tolist() == [1]


def test_nan_scores_name_the_strategy():
    class NaNStrategy(AccumulatorStrategy):
        def pool_step(self, batch, batch_idx, *args, **kwargs):
            return torch.full((len(batch[0]),), float("nan"))

    pool, adapter = _setup()
    with pytest.raises(InvalidScoresError, match="NaNStrategy"):
        _query(NaNStrategy(UnpackingModel()), pool, adapter, 3)


def test_wrong_score_shape():
    class Wrong(AccumulatorStrategy):
        def pool_step(self, batch, batch_idx, *args, **kwargs):
            return torch.zeros(3)

    pool, adapter = _setup()
    with pytest.raises(InvalidScoresError, match="one score per example"):
        _query(Wrong(UnpackingModel()), pool, adapter, 3)


def test_unknown_strategy_lists_known_ones():
    with pytest.raises(UnknownStrategyError, match="entropy") as err:
        get_strategy_class("entropi")
    assert "random" in str(err.value)


def test_registry_rejects_duplicate_names():
    with pytest.raises(EnergizerError, match="already registered"):

        @register_strategy("entropy")
        class Another(EntropyStrategy):
            pass


def test_model_is_deep_copied():
    model = UnpackingModel()
    strategy = EntropyStrategy(model)
    assert strategy.model is not model
    assert torch.equal(strategy.model.net[0].weight, model.net[0].weight)


def test_mc_strategy_without_dropout_says_what_is_missing():
    from energizer_hf.query_strategies import BALDStrategy

    pool, adapter = _setup()
    model = nn.Sequential()  # no dropout layers
    strategy = BALDStrategy(FixedLogits(torch.zeros(57, 3)))
    del model
    with pytest.raises(EnergizerError, match="no dropout layers"):
        _query(strategy, pool, adapter, 2)
