"""The strategy zoo (diversity, hybrid, wrappers, cold start): shared invariants on a tiny
BERT with an ``embed`` hook, a known answer per strategy on preset outputs, bad inputs,
and a few end-to-end runs through :class:`~energizer_hf.learner.ActiveLearner`."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from energizer_hf import ActivePool, InvalidScoresError, QueryContext
from energizer_hf.data import TorchDataAdapter
from energizer_hf.errors import EmptyPoolError, EnergizerError
from energizer_hf.functional import TooManyClustersError, kmeans
from energizer_hf.query_strategies import (
    BADGEStrategy,
    BatchBALDStrategy,
    CALStrategy,
    ClassBalanced,
    ClusterMarginStrategy,
    ColdStartStrategy,
    CoresetStrategy,
    DALStrategy,
    EGLStrategy,
    EntropyStrategy,
    KMeansStrategy,
    ProbCoverStrategy,
    RandomSubset,
    TypiClustStrategy,
    available_strategies,
    cold_start,
    cold_start_select,
    configure_strategy,
    diversity,
    get_strategy_class,
    hybrid,
    wrappers,
)
from energizer_hf.scoring import PoolScorer
from tests.scripts.tiny_setup import build
from tests.seed_models import UnpackingModel

ZOO_MODULES = {m.__name__ for m in (cold_start, diversity, hybrid, wrappers)}
ZOO = sorted(
    {c for c in map(get_strategy_class, available_strategies()) if c.__module__ in ZOO_MODULES},
    key=lambda c: c.__name__,
)
LABELLED = (0, 5, 9, 20)


@pytest.fixture(scope="module")
def tiny():
    pool, adapter, module = build(48)
    pool.label(list(LABELLED), [0, 1, 2, 3])
    return pool, adapter, module


def _ctx(pool, adapter, seed=0, round=0):
    return QueryContext(pool=pool, round=round, seed=seed, scorer=PoolScorer(adapter, batch_size=16))


def _query(strategy, pool, adapter, k, seed=0, round=0):
    return np.asarray(strategy.query(_ctx(pool, adapter, seed, round), k))


def _make(cls, module):
    torch.manual_seed(0)
    return cls(module)


def test_every_zoo_strategy_is_registered_with_flags():
    names = {c.name for c in ZOO}
    assert {"coreset", "kmeans", "typiclust", "probcover", "badge", "cluster_margin", "cal", "egl",
            "batchbald", "dal", "class_balanced", "random_subset", "cold_start_random"} <= names
    for cls in ZOO:
        assert isinstance(cls.requires_embeddings, bool)
        assert isinstance(cls.needs_mc_samples, bool)
        assert cls.__doc__ and len(cls.__doc__) > 40


# ---------------------------------------------------------------- shared invariants
@pytest.mark.parametrize("cls", ZOO, ids=lambda c: c.__name__)
class TestZooInvariants:
    @pytest.mark.parametrize("k", [1, 9])
    def test_exactly_k_distinct_unlabelled(self, cls, k, tiny):
        pool, adapter, module = tiny
        ids = _query(_make(cls, module), pool, adapter, k)
        assert ids.size == k and ids.dtype == np.int64
        assert len(set(ids.tolist())) == k
        assert not np.isin(ids, pool.labelled_ids).any()
        assert ((ids >= 0) & (ids < len(pool))).all()

    def test_deterministic_for_a_seed(self, cls, tiny):
        pool, adapter, module = tiny
        a = _query(_make(cls, module), pool, adapter, 6, seed=3, round=1)
        b = _query(_make(cls, module), pool, adapter, 6, seed=3, round=1)
        assert a.tolist() == b.tolist()

    def test_k_at_least_the_pool_returns_everything_left(self, cls, tiny):
        pool, adapter, module = tiny
        ids = _query(_make(cls, module), pool, adapter, len(pool) + 5)
        assert ids.tolist() == pool.unlabelled_ids.tolist()

    def test_empty_pool(self, cls):
        ds = TensorDataset(torch.arange(4))
        pool = ActivePool(ds)
        pool.label([0, 1, 2, 3])
        with pytest.raises(EmptyPoolError):
            _query(_make(cls, Table(np.eye(4), np.eye(4))), pool, TorchDataAdapter(DataLoader(ds, batch_size=2)), 1)


# ---------------------------------------------------------------- preset outputs
class Table(nn.Module):
    """Preset probabilities and embeddings per pool id (batches are ``(ids,)``)."""

    def __init__(self, probs, emb, dropout=0.0):
        super().__init__()
        self.register_buffer("logits", torch.log(torch.as_tensor(np.asarray(probs), dtype=torch.float32).clamp_min(1e-9)))
        self.register_buffer("emb", torch.as_tensor(np.asarray(emb), dtype=torch.float32))
        self.drop = nn.Dropout(dropout)

    def forward(self, batch):
        return self.drop(self.logits[batch[0]])

    def embed(self, batch):
        return self.emb[batch[0]]


def _known(strategy, probs, emb, k, labelled=(), labels=None, seed=0):
    n = len(probs)
    ds = TensorDataset(torch.arange(n))
    pool = ActivePool(ds)
    if labelled:
        pool.label(list(labelled), labels)
    adapter = TorchDataAdapter(DataLoader(ds, batch_size=3))
    model = Table(probs, emb)
    if isinstance(strategy, type):
        strategy = strategy(model)
    return _query(strategy, pool, adapter, k, seed=seed).tolist()


UNIFORM = np.full((6, 2), 0.5)


def test_coreset_picks_the_farthest_point():
    emb = np.array([[0.0], [1.0], [2.0], [10.0], [3.0], [0.5]])
    assert _known(CoresetStrategy, UNIFORM, emb, 2, labelled=[0]) == [3, 4]


def test_kmeans_takes_one_per_cluster():
    emb = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    assert sorted(_known(KMeansStrategy, UNIFORM, emb, 2)) == [1, 4]


def test_typiclust_prefers_the_dense_region():
    g = np.random.default_rng(0)
    emb = np.concatenate([g.normal(0, 0.1, (20, 2)), [[4.0, 4.0]]])
    assert _known(TypiClustStrategy(Table(np.full((21, 2), 0.5), emb), n_clusters=1), np.full((21, 2), 0.5), emb, 1) != [20]


def test_probcover_covers_the_biggest_ball_first():
    emb = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [9.0]])
    strategy = ProbCoverStrategy(Table(UNIFORM, emb), delta=0.5, normalize=False)
    assert _known(strategy, UNIFORM, emb, 2) == [0, 3]


def test_badge_starts_from_the_largest_gradient():
    probs = np.array([[0.99, 0.01], [0.5, 0.5], [0.6, 0.4], [0.5, 0.5], [0.9, 0.1], [0.99, 0.01]])
    emb = np.array([[1.0, 0], [1.0, 0], [1.0, 0], [5.0, 0], [1.0, 0], [1.0, 0]])
    assert _known(BADGEStrategy, probs, emb, 1) == [3]


def test_egl_ranks_uncertain_large_embeddings_first():
    probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.7, 0.3], [0.999, 0.001], [0.9, 0.1]])
    emb = np.array([[9.0, 0], [1.0, 0], [3.0, 0], [1.0, 0], [1.0, 0], [1.0, 0]])
    assert _known(EGLStrategy, probs, emb, 2) == [2, 1]


def test_cal_picks_the_prediction_that_disagrees_with_its_neighbours():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.85, 0.15], [0.9, 0.1]])
    emb = np.array([[0.0], [0.1], [0.05], [0.06], [0.07], [9.0]])
    assert _known(CALStrategy, probs, emb, 1, labelled=[0, 1], labels=[0, 0]) == [3]


def test_cluster_margin_round_robins_over_clusters():
    probs = np.array([[0.5, 0.5], [0.51, 0.49], [0.52, 0.48], [0.53, 0.47], [0.99, 0.01], [0.99, 0.01]])
    emb = np.array([[0.0], [0.1], [0.2], [9.0], [0.3], [9.1]])
    picks = _known(ClusterMarginStrategy(Table(probs, emb), margin_batch_size=4, n_clusters=2), probs, emb, 2)
    assert 3 in picks and len(set(picks) & {0, 1, 2}) == 1


def test_dal_picks_rows_unlike_the_labelled_set():
    g = np.random.default_rng(0)
    emb = np.concatenate([g.normal(0, 0.3, (14, 2)), g.normal(0, 0.3, (6, 2)) + [4.0, 4.0]])
    probs = np.full((20, 2), 0.5)
    picks = _known(DALStrategy(Table(probs, emb), sub_batches=2), probs, emb, 4, labelled=list(range(8)))
    assert set(picks) <= set(range(14, 20))


def test_cluster_margin_can_reuse_the_pool_clusters():
    probs = np.array([[0.5, 0.5], [0.51, 0.49], [0.52, 0.48], [0.53, 0.47], [0.99, 0.01], [0.99, 0.01]])
    emb = np.array([[0.0], [0.1], [0.2], [9.0], [0.3], [9.1]])
    s = ClusterMarginStrategy(Table(probs, emb), margin_batch_size=4, n_clusters=2, reuse_clusters=True)
    picks = _known(s, probs, emb, 2)
    assert 3 in picks and len(set(picks) & {0, 1, 2}) == 1
    assert s.pool_clusters.tolist() in ([0, 0, 0, 1, 0, 1], [1, 1, 1, 0, 1, 0])


def test_outputs_from_memory_mapped_exchange_files(tmp_path, tiny):
    pool, adapter, module = tiny
    ctx = QueryContext(pool=pool, round=0, seed=0, scorer=PoolScorer(adapter, batch_size=16, exchange_dir=tmp_path))
    for cls in (CoresetStrategy, BADGEStrategy, CALStrategy):
        ids = np.asarray(_make(cls, module).query(ctx, 5))
        assert ids.size == 5 and not np.isin(ids, pool.labelled_ids).any()


def test_batchbald_does_not_take_the_duplicate(monkeypatch):
    a = [[0.99, 0.01], [0.99, 0.01], [0.01, 0.99], [0.01, 0.99]]
    b = [[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]]
    mc = np.array([a, a, b])  # (N=3, T=4, C=2): rows 0 and 1 are duplicates
    strategy = BatchBALDStrategy(Table(np.full((3, 2), 0.5), np.zeros((3, 1)), dropout=0.5))
    monkeypatch.setattr(strategy, "outputs", lambda ctx, ids, what, **kw: {"mc_probs": mc[ids]})
    picks = _known(strategy, np.full((3, 2), 0.5), np.zeros((3, 1)), 2)
    assert picks[1] == 2 and picks[0] in (0, 1)


def _balanced_probs():
    # rows 0-5 predicted class 0 (entropy decreasing with id), rows 6-11 class 1 (lower entropy)
    p0 = np.linspace(0.55, 0.7, 6)
    p1 = np.linspace(0.8, 0.95, 6)
    probs = np.concatenate([np.stack([p0, 1 - p0], 1), np.stack([1 - p1, p1], 1)])
    return probs, np.zeros((12, 1))


def test_class_balanced_returns_the_requested_mix():
    probs, emb = _balanced_probs()
    assert _known(EntropyStrategy, probs, emb, 4) == [0, 1, 2, 3]  # all class 0
    picks = _known(ClassBalanced, probs, emb, 4)
    assert sorted(picks) == [0, 1, 6, 7]
    skewed = ClassBalanced(Table(probs, emb), base="margin", proportions={0: 0.25, 1: 0.75})
    assert sorted(_known(skewed, probs, emb, 4)) == [0, 6, 7, 8]


def test_class_balanced_fills_a_missing_class_with_the_best_rest():
    probs, emb = _balanced_probs()
    probs3 = np.concatenate([probs, np.zeros((12, 1))], 1)  # class 2 is never predicted
    picks = _known(ClassBalanced(Table(probs3, emb), proportions=[1, 1, 1]), probs3, emb, 3)
    assert sorted(picks) == [0, 1, 6]  # 1 + 1 by quota, the third is the best remaining


def test_class_balanced_inverse_labelled_favours_rare_classes():
    probs, emb = _balanced_probs()
    s = ClassBalanced(Table(probs, emb), proportions="inverse_labelled")
    # labelled: 3 of class 0, none of class 1 -> weights 1/4 and 1 -> quotas 1 and 3
    picks = _known(s, probs, emb, 4, labelled=[9, 10, 11], labels=[0, 0, 0])
    assert sorted(picks) == [0, 6, 7, 8]


def test_random_subset_draws_another_subpool_each_round():
    g = np.random.default_rng(1)
    probs = g.dirichlet([1, 1, 1], size=40)
    emb = np.zeros((40, 1))
    s = RandomSubset(Table(probs, emb), base="entropy", subpool_size=10)
    pool, adapter = _tiny_table(probs, emb)
    rounds = [tuple(_query(s, pool, adapter, 3, round=r).tolist()) for r in range(4)]
    assert all(len(set(r)) == 3 for r in rounds)
    assert len(set(rounds)) > 1


def _tiny_table(probs, emb):
    ds = TensorDataset(torch.arange(len(probs)))
    return ActivePool(ds), TorchDataAdapter(DataLoader(ds, batch_size=4))


def test_random_subset_equals_base_on_the_drawn_subpool():
    g = np.random.default_rng(2)
    probs = g.dirichlet([1, 1, 1], size=30)
    emb = np.zeros((30, 1))
    pool, adapter = _tiny_table(probs, emb)
    wrapper = RandomSubset(Table(probs, emb), base="entropy", subpool_size=8)
    ctx = _ctx(pool, adapter, seed=4)
    picks = np.asarray(wrapper.query(ctx, 2))
    sub = ctx.rng(salt=0x5B5B).choice(pool.unlabelled_ids, size=8, replace=False)
    ent = -(probs[sub] * np.log(probs[sub])).sum(1)
    assert sorted(picks.tolist()) == sorted(sub[np.argsort(-ent)[:2]].tolist())


def test_configure_strategy_binds_arguments_and_flags():
    cls = configure_strategy("random_subset", base="badge", subpool_size=7)
    assert cls.requires_embeddings and cls.name == "random_subset"
    s = cls(Table(UNIFORM, np.eye(6)))
    assert s.subpool_size == 7 and isinstance(s.base, BADGEStrategy)
    assert s.base.model is s.model  # the trained model is shared, not copied
    nested = configure_strategy("class_balanced", base=configure_strategy("margin"), proportions=[1, 2])
    assert nested(Table(UNIFORM, np.eye(6))).proportions == [1, 2]


# ---------------------------------------------------------------- cold start
def test_cold_start_stratified_follows_label_frequencies():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    ids = cold_start_select(10, labels=labels, seed=0)
    assert np.bincount(labels[ids], minlength=3).tolist() == [6, 3, 1]
    assert len(set(ids.tolist())) == 10


def test_cold_start_strategy_uses_given_embeddings_without_a_model():
    emb = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    pool, adapter = _tiny_table(UNIFORM, emb)
    s = ColdStartStrategy(None, method="kmeans", embeddings=emb)
    assert sorted(_query(s, pool, adapter, 2).tolist()) == [1, 4]
    s = ColdStartStrategy(None, method="random", labels=[0, 0, 0, 1, 1, 1])
    picks = _query(s, pool, adapter, 2).tolist()
    assert sorted(np.array([0, 0, 0, 1, 1, 1])[picks].tolist()) == [0, 1]
    for method in ("typiclust", "probcover"):
        assert len(_query(ColdStartStrategy(None, method=method, embeddings=emb), pool, adapter, 2)) == 2


# ---------------------------------------------------------------- bad inputs
def test_embeddings_without_the_hook_name_the_hook():
    pool, adapter = _tiny_table(UNIFORM, UNIFORM)
    with pytest.raises(EnergizerError, match=r"CoresetStrategy needs embeddings but UnpackingModel has no `embed"):
        _query(CoresetStrategy(UnpackingModel(dim=1)), pool, adapter, 2)
    with pytest.raises(EnergizerError, match="embed"):
        ColdStartStrategy(None, method="typiclust")


def test_kmeans_with_more_clusters_than_rows():
    with pytest.raises(TooManyClustersError):
        kmeans(torch.zeros(5, 2), 10)
    emb = np.arange(6.0)[:, None]
    with pytest.raises(EnergizerError, match="n_clusters=50"):
        _known(TypiClustStrategy(Table(UNIFORM, emb), n_clusters=50), UNIFORM, emb, 2)


@pytest.mark.parametrize("cls", [BADGEStrategy, EGLStrategy, CoresetStrategy, ClassBalanced, ClusterMarginStrategy])
def test_nan_outputs_raise_invalid_scores(cls):
    probs = UNIFORM.copy()
    probs[2] = np.nan
    emb = np.ones((6, 1))
    emb[3] = np.nan
    with pytest.raises(InvalidScoresError):
        _known(cls, probs, emb, 2)


def test_bad_constructor_values():
    m = Table(UNIFORM, UNIFORM)
    for make in (
        lambda: RandomSubset(m, subpool_size=0),
        lambda: ClassBalanced(m, proportions=[0, 0]),
        lambda: ClassBalanced(m, proportions="popular"),
        lambda: ClassBalanced(m, base="coreset"),
        lambda: ProbCoverStrategy(m, delta=-1),
        lambda: BatchBALDStrategy(m, num_mc_samples=1),
        lambda: DALStrategy(m, sub_batches=0),
        lambda: ColdStartStrategy(None, method="magic"),
    ):
        with pytest.raises(EnergizerError):
            make()


# ---------------------------------------------------------------- end to end
@pytest.mark.parametrize(
    "strategy",
    ["coreset", "badge", "class_balanced", configure_strategy("random_subset", base="typiclust", subpool_size=40)],
    ids=["coreset", "badge", "class_balanced", "random_subset_typiclust"],
)
def test_end_to_end_through_the_learner(tmp_path, demo_data, demo_tokenizer, tiny_bert_config, strategy):
    from energizer_hf.learner import ActiveLearner
    from tests.conftest import learner_kwargs

    learner = ActiveLearner(
        dataset=demo_data, model=tiny_bert_config, tokenizer=demo_tokenizer,
        strategy=strategy, **learner_kwargs(tmp_path, rounds=1),
    )
    res = learner.run()
    assert [r["num_labelled"] for r in res] == [10, 20]
    queried = res[0]["queried_ids"]
    assert len(set(queried)) == 10 and (learner.pool.rounds[np.array(queried)] == 1).all()
    assert res.stop_reason == "max_rounds"
