"""energizer_hf.functional.multilabel: metrics against scikit-learn and torchmetrics,
known answers for the acquisition scores, stratified selection and threshold tuning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from torchmetrics.functional.classification import (
    multilabel_exact_match,
    multilabel_f1_score,
    multilabel_hamming_distance,
)

from energizer_hf.functional import (
    FunctionalInputError,
    InvalidProbabilitiesError,
    ShapeError,
    cardinality_stratified_random,
    hamming_loss,
    iterative_stratification,
    mean_binary_entropy,
    mmc_scores,
    multilabel_f1,
    multilabel_least_confidence,
    multilabel_max_margin,
    multilabel_scores,
    predict_cardinality,
    stratified_initial_set,
    subset_accuracy,
    tune_threshold,
)


def random_problem(seed, n=300, n_labels=7, rare_label=True):
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.05, 0.4, n_labels)
    y = (rng.random((n, n_labels)) < freq).astype(np.int64)
    if rare_label:  # one label nobody has and nobody predicts, one rare
        y[:, -1] = 0
        y[:, -2] = 0
        y[rng.choice(n, 3, replace=False), -2] = 1
    noise = rng.normal(0, 0.25, y.shape)
    probs = np.clip(0.25 + 0.5 * y + noise, 0, 1).astype(np.float32)
    probs[:, -1] = np.minimum(probs[:, -1], 0.3)
    return y, probs


# ---------------------------------------------------------------------------- metrics
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_metrics_match_sklearn_and_torchmetrics(seed, threshold):
    y, probs = random_problem(seed)
    pred = (probs > threshold).astype(np.int64)
    n_labels = y.shape[1]
    yt, pt = torch.from_numpy(y), torch.from_numpy(probs)
    for average in ("micro", "macro"):
        ours = multilabel_f1(y, probs, average, threshold=threshold)
        assert ours == pytest.approx(skm.f1_score(y, pred, average=average, zero_division=0))
        ref = multilabel_f1_score(pt, yt, n_labels, threshold=threshold, average=average)
        assert ours == pytest.approx(float(ref), abs=1e-6)
        assert multilabel_f1(y, pred, average) == ours  # binary predictions
    np.testing.assert_allclose(
        multilabel_f1(y, pred, "none"), skm.f1_score(y, pred, average=None, zero_division=0)
    )
    exact = float(multilabel_exact_match(pt, yt, n_labels, threshold=threshold))
    assert subset_accuracy(y, probs, threshold=threshold) == pytest.approx(exact)
    assert subset_accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred))
    ham = float(multilabel_hamming_distance(pt, yt, n_labels, threshold=threshold, average="micro"))
    assert hamming_loss(y, probs, threshold=threshold) == pytest.approx(ham, abs=1e-6)
    assert hamming_loss(y, pred) == pytest.approx(skm.hamming_loss(y, pred))
    s = multilabel_scores(y, probs, threshold=threshold)
    assert s["micro_precision"] == pytest.approx(
        skm.precision_score(y, pred, average="micro", zero_division=0)
    )
    assert s["micro_recall"] == pytest.approx(
        skm.recall_score(y, pred, average="micro", zero_division=0)
    )
    assert s["micro_f1"] == pytest.approx(multilabel_f1(y, pred))


def test_metrics_known_answers_and_per_label_thresholds():
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    probs = np.array([[0.6, 0.2, 0.1], [0.4, 0.45, 0.0], [0.9, 0.3, 0.2]])
    # at 0.5: predictions [[1,0,0],[0,0,0],[1,0,0]]: tp=2, fp=0, fn=2
    assert multilabel_f1(y, probs) == pytest.approx(2 / 3)
    assert multilabel_f1(y, probs, "macro") == pytest.approx((1.0 + 0 + 0) / 3)
    assert subset_accuracy(y, probs) == pytest.approx(1 / 3)
    assert hamming_loss(y, probs) == pytest.approx(2 / 9)
    # per-label thresholds [0.5, 0.25, 0.5]: label 1 now perfect
    thr = np.array([0.5, 0.25, 0.5])
    assert multilabel_f1(y, probs, threshold=thr) == 1.0
    assert subset_accuracy(y, probs, threshold=thr) == 1.0
    # the strict '>' rule: a probability equal to the threshold is negative
    assert multilabel_f1([[1]], [[0.5]]) == 0.0


def test_metric_input_errors():
    with pytest.raises(ShapeError):
        multilabel_f1([[1, 0]], [[1, 0, 0]])
    with pytest.raises(FunctionalInputError, match="0 and 1"):
        multilabel_f1([[2, 0]], [[1, 0]])
    with pytest.raises(FunctionalInputError, match="average"):
        multilabel_f1([[1, 0]], [[1, 0]], "weighted")
    with pytest.raises(ShapeError, match="threshold"):
        multilabel_f1([[1, 0]], [[0.7, 0.1]], threshold=[0.5, 0.5, 0.5])
    with pytest.raises(FunctionalInputError, match="NaN"):
        multilabel_f1([[1, 0]], [[np.nan, 0.1]])


# ---------------------------------------------------------------------------- thresholds
def _micro_f1_at(y, probs, thr):
    return multilabel_f1(y, probs, threshold=thr)


@pytest.mark.parametrize("seed", [0, 1])
def test_tuned_threshold_is_optimal_against_a_fine_grid(seed):
    y, probs = random_problem(seed, rare_label=False)
    thr = tune_threshold(probs, y)
    best = _micro_f1_at(y, probs, thr)
    candidates = np.unique(np.concatenate([np.linspace(0, 1, 201), probs.reshape(-1) - 1e-7]))
    grid_best = max(_micro_f1_at(y, probs, float(c)) for c in candidates)
    assert best == pytest.approx(grid_best)
    assert best >= _micro_f1_at(y, probs, 0.5)
    per = tune_threshold(probs, y, per_label=True)
    assert per.shape == (y.shape[1],)
    for label in range(y.shape[1]):
        mine = multilabel_f1(y[:, [label]], probs[:, [label]], threshold=float(per[label]))
        grid = max(
            multilabel_f1(y[:, [label]], probs[:, [label]], threshold=float(c)) for c in candidates
        )
        assert mine == pytest.approx(grid)
    assert multilabel_f1(y, probs, "macro", threshold=per) >= multilabel_f1(
        y, probs, "macro", threshold=thr
    )


def test_threshold_known_answers():
    assert tune_threshold([[0.9, 0.4], [0.35, 0.2]], [[1, 1], [0, 0]]) == pytest.approx(0.375)
    # separable data: the tuned threshold gives F1 = 1 even though 0.5 does not
    probs = np.array([[0.3], [0.25], [0.1], [0.05]])
    y = np.array([[1], [1], [0], [0]])
    thr = tune_threshold(probs, y)
    assert 0.1 < thr < 0.25 and multilabel_f1(y, probs, threshold=thr) == 1.0
    # a label without positives keeps the global threshold; no positive at all: 0.5
    per = tune_threshold([[0.9, 0.2], [0.1, 0.7]], [[1, 0], [0, 0]], per_label=True)
    assert per[1] == pytest.approx(tune_threshold([[0.9, 0.2], [0.1, 0.7]], [[1, 0], [0, 0]]))
    assert tune_threshold([[0.9]], [[0]]) == 0.5
    with pytest.raises(InvalidProbabilitiesError):
        tune_threshold([[1.5]], [[1]])


# ---------------------------------------------------------------------------- acquisition
def test_acquisition_known_answers():
    p = torch.tensor([[0.5, 0.5, 0.5], [0.9, 0.1, 0.5], [1.0, 0.0, 0.0]])
    h = lambda q: -(q * math.log(q) + (1 - q) * math.log(1 - q))  # noqa: E731
    torch.testing.assert_close(
        mean_binary_entropy(p), torch.tensor([math.log(2), (2 * h(0.9) + math.log(2)) / 3, 0.0])
    )
    torch.testing.assert_close(multilabel_least_confidence(p), torch.tensor([0.5, 0.5, 0.0]))
    torch.testing.assert_close(
        multilabel_least_confidence(p, "mean"), torch.tensor([0.5, 0.7 / 3, 0.0])
    )
    # margins: row 0 none above 0.5 -> k=1: 0.5-0.5; row 1 k=1: 0.9-0.5; row 2: 1-0
    torch.testing.assert_close(multilabel_max_margin(p), torch.tensor([1.0, 0.6, 0.0]))
    # all labels above the threshold: the lowest counts as negative
    torch.testing.assert_close(
        multilabel_max_margin(torch.tensor([[0.9, 0.8, 0.7]])), torch.tensor([0.9])
    )
    # MMC: the expected number of wrong decisions with the top-k labels predicted
    torch.testing.assert_close(mmc_scores(p), torch.tensor([1.5, 0.7, 0.0]))
    # the uncertain rows score higher than the confident one under every function
    for fn in (mean_binary_entropy, multilabel_least_confidence, multilabel_max_margin, mmc_scores):
        s = fn(p)
        assert s[2] < s[1] <= s[0] or fn is multilabel_least_confidence


def test_predict_cardinality_learns_from_the_labelled_set():
    # a model whose probabilities are all low: the threshold says one label everywhere,
    # but rows with two (near-)equal top probabilities carry two labels
    rng = np.random.default_rng(0)
    one = np.column_stack([rng.uniform(0.3, 0.45, 40), rng.uniform(0.0, 0.05, (40, 3))])
    two = np.column_stack([rng.uniform(0.3, 0.45, (40, 2)), rng.uniform(0.0, 0.05, (40, 2))])
    lab = np.vstack([one, two]).astype(np.float32)
    card = np.array([1] * 40 + [2] * 40)
    test = torch.tensor([[0.4, 0.02, 0.01, 0.0], [0.02, 0.35, 0.4, 0.01]])
    assert predict_cardinality(test).tolist() == [1, 1]
    assert predict_cardinality(test, lab, card).tolist() == [1, 2]
    # MMC follows: the second row's two top labels are predicted positive
    torch.testing.assert_close(
        mmc_scores(test, lab, card), torch.tensor([0.6 + 0.03, 0.02 + 0.65 + 0.6 + 0.01])
    )
    assert predict_cardinality(test, lab[:3], [2, 2, 2]).tolist() == [2, 2]
    with pytest.raises(ShapeError):
        predict_cardinality(test, lab, card[:5])


def test_acquisition_input_errors():
    with pytest.raises(InvalidProbabilitiesError, match="sigmoid"):
        mean_binary_entropy(torch.tensor([[2.0, -1.0]]))
    with pytest.raises(ShapeError):
        multilabel_max_margin(torch.tensor([[0.2], [0.4]]))
    with pytest.raises(ShapeError):
        mean_binary_entropy(torch.tensor([0.2, 0.4]))
    with pytest.raises(FunctionalInputError, match="reduction"):
        multilabel_least_confidence(torch.tensor([[0.2]]), "sum")


# ---------------------------------------------------------------------------- random baseline
def test_cardinality_stratified_random_allocates_proportionally():
    # strata of predicted cardinality 0 (6 rows), 1 (9 rows), 2 (3 rows)
    p = torch.tensor([[0.1, 0.1]] * 6 + [[0.9, 0.1]] * 9 + [[0.9, 0.9]] * 3)
    stratum = (p > 0.5).sum(1)
    counts = np.zeros(18)
    for seed in range(600):
        ids = cardinality_stratified_random(p, 6, seed=seed)
        assert ids.numel() == 6 and ids.unique().numel() == 6
        per = torch.bincount(stratum[ids], minlength=3).tolist()
        assert per == [2, 3, 1]  # exactly 6 * (6, 9, 3) / 18
        counts[ids.numpy()] += 1
    # uniform within and across strata: every row drawn about 600 * 6/18 = 200 times
    assert counts.min() > 150 and counts.max() < 250
    assert torch.equal(
        cardinality_stratified_random(p, 6, seed=3), cardinality_stratified_random(p, 6, seed=3)
    )
    # labelled rows are never chosen; k beyond the candidates returns them all
    ids = cardinality_stratified_random(p, 5, labelled=list(range(10)), seed=0)
    assert ids.min() >= 10
    assert cardinality_stratified_random(p, 50, labelled=list(range(10))).tolist() == list(
        range(10, 18)
    )
    assert cardinality_stratified_random(p, 0).numel() == 0


# ---------------------------------------------------------------------------- stratification
def _label_distribution_error(y, folds, proportions):
    """Mean absolute gap between each fold's label counts and the desired counts."""
    counts = y.sum(0)
    gaps = [np.abs(y[folds == j].sum(0) - r * counts).mean() for j, r in enumerate(proportions)]
    return float(np.mean(gaps))


def test_iterative_stratification_beats_random_splits():
    rng = np.random.default_rng(0)
    n, n_labels = 600, 12
    freq = np.geomspace(0.4, 0.01, n_labels)
    y = (rng.random((n, n_labels)) < freq).astype(np.int64)
    props = [0.2, 0.3, 0.5]
    folds = iterative_stratification(y, props, seed=0)
    assert folds.shape == (n,) and set(folds.tolist()) <= {0, 1, 2}
    sizes = np.bincount(folds, minlength=3)
    assert np.all(np.abs(sizes - np.array(props) * n) <= 0.05 * n)
    ours = _label_distribution_error(y, folds, props)
    random_errors = [
        _label_distribution_error(y, rng.choice(3, size=n, p=props), props) for _ in range(20)
    ]
    assert ours < 0.5 * min(random_errors)
    assert np.array_equal(folds, iterative_stratification(y, props, seed=0))
    # rows without any label still get a fold
    y0 = np.vstack([y, np.zeros((10, n_labels), dtype=np.int64)])
    assert (iterative_stratification(y0, props, seed=1) >= 0).all()


def test_stratified_initial_set_has_every_label_and_exact_size():
    rng = np.random.default_rng(1)
    n, n_labels = 2000, 10
    freq = np.array([0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.003, 0.002])
    y = (rng.random((n, n_labels)) < freq).astype(np.int64)
    y[y.sum(1) == 0, 0] = 1
    assert (y.sum(0) > 0).all()
    for k in (10, 25, 60):
        ids = stratified_initial_set(y, k, seed=0)
        assert ids.size == k and np.unique(ids).size == k and (np.diff(ids) > 0).all()
        assert (y[ids].sum(0) >= 1).all(), k
    # a plain random set of 25 almost never has all ten labels
    random_hits = sum((y[rng.choice(n, 25, replace=False)].sum(0) >= 1).all() for _ in range(50))
    assert random_hits < 10
    # with min_per_label=0 the set follows the label proportions
    ids = stratified_initial_set(y, 200, min_per_label=0, seed=0)
    share = y[ids].sum(0) / 200
    np.testing.assert_allclose(share[:4], y.sum(0)[:4] / n, atol=0.03)
    assert np.array_equal(ids, stratified_initial_set(y, 200, min_per_label=0, seed=0))


def test_stratified_initial_set_edges():
    y = np.array([[1, 0, 0]] * 8 + [[0, 1, 0]] * 8 + [[0, 0, 1]])
    assert 16 in stratified_initial_set(y, 3, seed=0).tolist()
    # k smaller than the labels: the rarest labels are kept
    ids = stratified_initial_set(y, 2, seed=0)
    assert ids.size == 2 and 16 in ids.tolist()
    assert stratified_initial_set(y, 50).tolist() == list(range(17))
    assert stratified_initial_set(y, 0).size == 0
    with pytest.raises(FunctionalInputError):
        stratified_initial_set(y, 2, min_per_label=-1)
    with pytest.raises(ShapeError):
        stratified_initial_set([1, 0, 1], 2)


def test_stratified_initial_set_on_goemotions(shared_data):
    path = shared_data / "goemotions" / "train.csv"
    if not path.exists():
        pytest.skip(f"{path} is not present")
    import datasets

    from energizer_hf.formats.multilabel import read_label_names, to_multi_hot

    names = read_label_names(shared_data / "goemotions" / "labels.txt")
    ds = datasets.load_dataset("csv", data_files=str(path), split="train")
    y, _ = to_multi_hot(ds.data.column("labels"), label_names=names)
    ids = stratified_initial_set(y, 100, seed=0)
    assert ids.size == 100
    assert (y[ids].sum(0) >= 1).all()  # all 28 labels, grief (77 of 43k rows) included
    rng = np.random.default_rng(0)
    covered = [int((y[rng.choice(len(y), 100, replace=False)].sum(0) >= 1).sum()) for _ in range(5)]
    assert max(covered) < 28


def test_threshold_separates_adjacent_float32_values():
    lo = np.float32(0.3)
    hi = np.nextafter(lo, np.float32(1))  # no float32 lies between them
    if np.float32((float(lo) + float(hi)) / 2) != hi:  # pick a pair whose midpoint rounds up
        lo, hi = hi, np.nextafter(hi, np.float32(1))
    assert np.float32((float(lo) + float(hi)) / 2) == hi
    probs = np.array([[hi], [lo]], dtype=np.float32)
    thr = tune_threshold(probs, [[1], [0]])
    assert multilabel_f1([[1], [0]], probs, threshold=thr) == 1.0
