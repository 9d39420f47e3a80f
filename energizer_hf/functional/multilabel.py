"""Multi-label classification: acquisition scores on per-label sigmoid probabilities,
class-balanced initial sets, metrics and a decision-threshold tuner.

Acquisition functions take ``probs`` of shape ``(N, L)``: for each of N pool examples and
L labels, the model's probability that the label applies (a sigmoid output, one
independent Bernoulli per label; rows need not sum to one). Scores are ``(N,)`` float32
and **higher means more worth labelling**; entropies are in nats. A label is predicted
when ``p > threshold`` (strictly, as torchmetrics does), 0.5 unless said otherwise.

Per-row aggregation. A label-wise uncertainty is turned into one score per example by
``"max"`` (the most uncertain label decides) or ``"mean"`` (all labels count equally),
the two aggregations compared by Esuli & Sebastiani ("Active Learning Strategies for
Multi-Label Text Classification", ECIR 2009).

Metrics take multi-hot ``(N, L)`` targets (0/1 integers or booleans) and either
predictions of the same kind or probabilities (floats, binarised with the threshold).
They equal scikit-learn's and torchmetrics' multilabel metrics (checked in the tests);
a ratio with a zero denominator is 0.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from ._validation import (
    ArrayLike,
    FunctionalInputError,
    InvalidProbabilitiesError,
    ShapeError,
    as_float_tensor,
    check_k,
    labelled_to_mask,
    make_generator,
)

__all__ = [
    "cardinality_stratified_random",
    "decide_labels",
    "hamming_loss",
    "iterative_stratification",
    "mean_binary_entropy",
    "mmc_scores",
    "multilabel_f1",
    "multilabel_least_confidence",
    "multilabel_max_margin",
    "multilabel_scores",
    "predict_cardinality",
    "stratified_initial_set",
    "subset_accuracy",
    "tune_threshold",
]

_EPS = 1e-12


def _sigmoid_probs(probs: ArrayLike, name: str = "probs (N, L)") -> Tensor:
    p = as_float_tensor(probs, name, 2)
    if p.shape[1] < 1:
        raise ShapeError(f"{name} needs at least one label, got shape {tuple(p.shape)}.")
    if p.numel() and (bool((p < 0).any()) or bool((p > 1).any())):
        raise InvalidProbabilitiesError(
            f"{name} must hold per-label probabilities in [0, 1]; apply a sigmoid to logits first."
        )
    return p


def _binary_entropy(p: Tensor) -> Tensor:
    q = 1.0 - p
    return -(p * p.clamp_min(_EPS).log() + q * q.clamp_min(_EPS).log())


def _aggregate(u: Tensor, reduction: str) -> Tensor:
    if reduction == "max":
        return u.max(1).values if u.shape[0] else u.new_zeros(0)
    if reduction == "mean":
        return u.mean(1)
    raise FunctionalInputError(f"reduction must be 'max' or 'mean', got {reduction!r}.")


# ---------------------------------------------------------------------------- acquisition
def mean_binary_entropy(probs: ArrayLike) -> Tensor:
    """Mean over labels of the binary entropy of each label's Bernoulli.

    ``(1/L) Σ_l H(p_l)`` with ``H(p) = -p log p - (1-p) log(1-p)``: the entropy of the
    label set under independent labels, per label. Reference: Esuli & Sebastiani, ECIR
    2009 ("AVG" aggregation of label-wise uncertainty).

    Complexity: O(N · L).

    Args:
        probs: ``(N, L)`` per-label probabilities.

    Returns:
        ``(N,)`` float32 scores in ``[0, log 2]``.

    >>> import torch
    >>> [round(v, 4) for v in mean_binary_entropy(torch.tensor([[0.5, 0.5], [0.5, 1.0]])).tolist()]
    [0.6931, 0.3466]
    """
    p = _sigmoid_probs(probs)
    return _binary_entropy(p).mean(1)


def multilabel_least_confidence(
    probs: ArrayLike, reduction: Literal["max", "mean"] = "max"
) -> Tensor:
    """Least confidence over labels: ``1 - max(p_l, 1 - p_l)`` per label, aggregated.

    The per-label confidence is the probability of the label decision the model would
    make; its complement ``min(p_l, 1 - p_l)`` is largest at ``p_l = 0.5``. With
    ``"max"`` (default) the row's least confident label decides; ``"mean"`` averages.

    Complexity: O(N · L).

    Args:
        probs: ``(N, L)`` per-label probabilities.
        reduction: ``"max"`` or ``"mean"`` over labels.

    Returns:
        ``(N,)`` float32 scores in ``[0, 0.5]``.

    >>> import torch
    >>> p = torch.tensor([[0.9, 0.4], [0.99, 0.01]])
    >>> [round(v, 4) for v in multilabel_least_confidence(p).tolist()]
    [0.4, 0.01]
    """
    p = _sigmoid_probs(probs)
    return _aggregate(torch.minimum(p, 1.0 - p), reduction)


def multilabel_max_margin(probs: ArrayLike, threshold: float = 0.5) -> Tensor:
    """One minus the separation margin between predicted-positive and -negative labels.

    Li & Guo ("Active Learning with Multi-Label SVM Classification", IJCAI 2013) measure
    the uncertainty of a prediction by its *separation margin*: the smallest score of a
    predicted-positive label minus the largest score of a predicted-negative label. With
    the probabilities sorted in decreasing order ``p_(1) >= ... >= p_(L)`` and ``k`` the
    number of labels above ``threshold``, the margin is ``p_(k) - p_(k+1)``. Every
    example is taken to have at least one label and not all of them: ``k`` is clipped to
    ``[1, L - 1]`` (no label above the threshold: the top one is positive; all above: the
    lowest one is negative). The score is ``1 - margin``.

    Complexity: O(N · L log L).

    Args:
        probs: ``(N, L)`` per-label probabilities, ``L >= 2``.
        threshold: decision threshold (a label is positive when ``p > threshold``).

    Returns:
        ``(N,)`` float32 scores in ``[0, 1]``, higher = positives and negatives closer.

    >>> import torch
    >>> [round(v, 4) for v in multilabel_max_margin(torch.tensor([[0.9, 0.6, 0.1], [0.9, 0.2, 0.1]])).tolist()]
    [0.5, 0.3]
    """
    p = _sigmoid_probs(probs)
    if p.shape[1] < 2:
        raise ShapeError("multilabel_max_margin needs at least 2 labels.")
    ordered = p.sort(1, descending=True).values
    k = (p > threshold).sum(1).clamp(1, p.shape[1] - 1)
    rows = torch.arange(p.shape[0])
    return 1.0 - (ordered[rows, k - 1] - ordered[rows, k])


def predict_cardinality(
    probs: ArrayLike,
    labelled_probs: ArrayLike | None = None,
    labelled_cardinality: ArrayLike | None = None,
    *,
    threshold: float = 0.5,
    l2: float = 1e-3,
    max_iter: int = 200,
) -> Tensor:
    """Predicted number of labels of each example, from its sorted probabilities.

    Yang et al. ("Effective Multi-Label Active Learning for Text Classification", KDD
    2009) predict the label cardinality with a logistic regression on the example's label
    probabilities, normalised to sum to one and sorted in decreasing order, trained on the
    labelled set. Given ``labelled_probs`` and their true ``labelled_cardinality``, this
    fits that multinomial logistic regression (classes: the cardinalities seen, features:
    the sorted normalised probabilities plus a bias; L2 penalty ``l2``; full-batch L-BFGS
    from zero, deterministic) and predicts its most likely class. Without a labelled set
    (or with one cardinality only) it falls back to the number of labels above
    ``threshold``. Predictions are clipped to ``[1, L]``.

    Complexity: O(max_iter · n_labelled · L · K) to fit, O(N · L log L) to predict, for K
    distinct cardinalities.

    Args:
        probs: ``(N, L)`` per-label probabilities of the examples to score.
        labelled_probs: ``(n, L)`` probabilities of labelled examples (the same model).
        labelled_cardinality: ``(n,)`` their true numbers of labels.
        threshold: decision threshold of the fallback.
        l2: L2 penalty of the logistic regression.
        max_iter: L-BFGS iterations.

    Returns:
        ``(N,)`` int64 cardinalities in ``[1, L]``.

    >>> import torch
    >>> predict_cardinality(torch.tensor([[0.9, 0.8, 0.1], [0.2, 0.1, 0.1]])).tolist()
    [2, 1]
    """
    p = _sigmoid_probs(probs)
    n_labels = p.shape[1]
    fallback = (p > threshold).sum(1).clamp(1, n_labels)
    if labelled_probs is None or labelled_cardinality is None:
        return fallback
    lp = _sigmoid_probs(labelled_probs, "labelled_probs (n, L)")
    if lp.shape[1] != n_labels:
        raise ShapeError(f"labelled_probs has {lp.shape[1]} labels, probs has {n_labels}.")
    card = torch.as_tensor(np.asarray(labelled_cardinality)).long().reshape(-1)
    if card.shape[0] != lp.shape[0]:
        raise ShapeError(
            f"labelled_cardinality has {card.shape[0]} entries for {lp.shape[0]} labelled rows."
        )
    classes = torch.unique(card.clamp(1, n_labels))
    if classes.numel() < 2:
        return fallback if classes.numel() == 0 else torch.full_like(fallback, int(classes[0]))

    def features(x: Tensor) -> Tensor:
        normalised = x / x.sum(1, keepdim=True).clamp_min(_EPS)
        ordered = normalised.sort(1, descending=True).values
        return torch.cat([ordered, torch.ones(x.shape[0], 1)], 1).double()

    xf = features(lp)
    target = torch.searchsorted(classes, card.clamp(1, n_labels))
    w = torch.zeros(xf.shape[1], classes.numel(), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xf @ w, target) + l2 * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        return classes[(features(p) @ w).argmax(1)]


def mmc_scores(
    probs: ArrayLike,
    labelled_probs: ArrayLike | None = None,
    labelled_cardinality: ArrayLike | None = None,
    *,
    threshold: float = 0.5,
) -> Tensor:
    """MMC: expected loss reduction with the most confident label vector (Yang et al. 2009).

    Yang, Sun, Wang, Zhang & Hua ("Effective Multi-Label Active Learning for Text
    Classification", KDD 2009) predict the label vector ``ŷ`` (the ``k`` most probable
    labels, ``k`` the predicted cardinality) and score an example by
    ``Σ_l (1 - ŷ_l f_l(x)) / 2`` with ``ŷ_l ∈ {-1, +1}`` and ``f_l`` the label-wise SVM
    output. Simplifications here: ``f_l(x) = 2 p_l - 1`` (a probability in place of the
    SVM margin), so the score is ``Σ_{l ∈ ŷ} (1 - p_l) + Σ_{l ∉ ŷ} p_l``, the expected
    number of wrong label decisions under the model; ``k`` comes from
    :func:`predict_cardinality` (the paper's logistic regression on sorted probabilities
    when a labelled set is given, the thresholded count otherwise).

    Complexity: O(N · L log L) plus fitting the cardinality model.

    Args:
        probs: ``(N, L)`` per-label probabilities.
        labelled_probs: ``(n, L)`` probabilities of the labelled examples.
        labelled_cardinality: ``(n,)`` their true numbers of labels.
        threshold: decision threshold of the cardinality fallback.

    Returns:
        ``(N,)`` float32 scores in ``[0, L]``.

    >>> import torch
    >>> [round(v, 4) for v in mmc_scores(torch.tensor([[0.9, 0.2, 0.1], [0.6, 0.5, 0.4]])).tolist()]
    [0.4, 1.3]
    """
    p = _sigmoid_probs(probs)
    k = predict_cardinality(p, labelled_probs, labelled_cardinality, threshold=threshold)
    rank = p.argsort(1, descending=True).argsort(1)  # 0 = most probable label
    positive = rank < k[:, None]
    return torch.where(positive, 1.0 - p, p).sum(1)


def cardinality_stratified_random(
    probs: ArrayLike,
    k: int,
    *,
    labelled: ArrayLike | None = None,
    threshold: float = 0.5,
    generator: torch.Generator | None = None,
    seed: int = 0,
) -> Tensor:
    """A random baseline stratified by predicted label cardinality.

    Uniform random sampling, except that the pool is split into strata by the predicted
    number of labels (``#{l : p_l > threshold}``) and each stratum receives its
    proportional share of the ``k`` picks (within one of its exact share: systematic
    sampling with a random start over the pool ordered by stratum, then at random). The
    expected composition is that of uniform random sampling; what changes is the
    variance: a batch cannot over- or under-sample examples the model thinks carry many
    labels (which cost more to annotate), so strategies compared against it are compared
    at the same mix of predicted cardinalities. It uses no uncertainty.

    Complexity: O(N log N).

    Args:
        probs: ``(N, L)`` per-label probabilities.
        k: number of examples to select.
        labelled: boolean mask ``(N,)`` or indices of examples never to select.
        threshold: decision threshold.
        generator: source of randomness (else a fresh one seeded with ``seed``).
        seed: seed of the fresh generator.

    Returns:
        ``min(k, n_unlabelled)`` distinct int64 indices, ascending.

    >>> import torch
    >>> p = torch.tensor([[0.9, 0.9]] * 4 + [[0.9, 0.1]] * 4)
    >>> ids = cardinality_stratified_random(p, 4, seed=0)
    >>> int((ids < 4).sum()), int((ids >= 4).sum())
    (2, 2)
    """
    p = _sigmoid_probs(probs)
    k = check_k(k)
    n = p.shape[0]
    candidates = torch.nonzero(~labelled_to_mask(labelled, n)).reshape(-1)
    if k >= candidates.numel():
        return candidates.sort().values
    if k == 0:
        return torch.empty(0, dtype=torch.long)
    g = make_generator(generator, seed)
    stratum = (p[candidates] > threshold).sum(1).double()
    key = stratum + torch.rand(candidates.numel(), generator=g, dtype=torch.float64) * 0.5
    ordered = candidates[key.argsort()]
    start = torch.rand(1, generator=g, dtype=torch.float64).item()
    step = candidates.numel() / k
    positions = ((torch.arange(k, dtype=torch.float64) + start) * step).long()
    return ordered[positions.clamp_max(candidates.numel() - 1)].sort().values


# ---------------------------------------------------------------------------- stratification
def _multi_hot(x: ArrayLike, name: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if a.ndim != 2:
        raise ShapeError(f"{name} must be a (N, L) multi-hot matrix, got shape {a.shape}.")
    if a.dtype != bool:
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            raise FunctionalInputError(f"{name} must be numeric 0/1, got dtype {a.dtype}.")
        if a.size and not np.isin(a, (0, 1)).all():
            raise FunctionalInputError(f"{name} must hold only 0 and 1 (a multi-hot matrix).")
    return a.astype(bool)


def iterative_stratification(
    labels: ArrayLike,
    proportions: ArrayLike,
    *,
    desired: ArrayLike | None = None,
    generator: torch.Generator | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Split multi-label examples into subsets whose label counts follow ``proportions``.

    Sechidis, Tsoumakas & Vlahavas, "On the Stratification of Multi-Label Data", ECML
    PKDD 2011, Algorithm 1: repeatedly take the label with the fewest remaining examples
    (ties at random) and give each of its examples to the subset that still desires the
    most examples of that label (ties: the subset desiring the most examples overall,
    then at random); each assignment lowers the subset's desire for every label of the
    example. Examples with no label go last, to the subsets desiring the most examples.
    Examples are visited in a random order.

    Complexity: O(N · L + N · m) for N examples, L labels and m subsets.

    Args:
        labels: ``(N, L)`` multi-hot label matrix.
        proportions: ``(m,)`` non-negative subset proportions (normalised to sum to 1).
        desired: optional ``(m, L)`` desired label counts per subset, replacing
            ``proportions × label counts`` (e.g. to ask for at least one example of a
            rare label in a small subset).
        generator: source of randomness (else a fresh one seeded with ``seed``).
        seed: seed of the fresh generator.

    Returns:
        ``(N,)`` int64 subset index of each example.

    >>> y = [[1, 0], [1, 0], [1, 1], [0, 1], [0, 1], [1, 0]]
    >>> folds = iterative_stratification(y, [0.5, 0.5], seed=0)
    >>> sorted(int((folds == j).sum()) for j in (0, 1))
    [3, 3]
    """
    y = _multi_hot(labels, "labels")
    n, n_labels = y.shape
    r = np.asarray(proportions, dtype=np.float64).reshape(-1)
    if r.size < 1 or (r < 0).any() or r.sum() <= 0:
        raise FunctionalInputError("proportions must be non-negative with a positive sum.")
    r = r / r.sum()
    counts = y.sum(0).astype(np.float64)
    want = np.outer(r, counts) if desired is None else np.array(desired, dtype=np.float64)
    if want.shape != (r.size, n_labels):
        raise ShapeError(f"desired must have shape ({r.size}, {n_labels}), got {want.shape}.")
    size = r * n
    rng = np.random.default_rng(
        int(torch.randint(0, 2**62, (1,), generator=make_generator(generator, seed)))
    )
    order = rng.permutation(n)
    fold = np.full(n, -1, dtype=np.int64)
    remaining = y.sum(0).astype(np.int64)
    left = np.ones(n, dtype=bool)
    y_ordered = y[order]
    while True:
        active = np.flatnonzero(remaining > 0)
        if active.size == 0:
            break
        fewest = active[remaining[active] == remaining[active].min()]
        label = int(rng.choice(fewest))
        members = np.flatnonzero(y_ordered[:, label] & left[order])
        for pos in members.tolist():
            row = y_ordered[pos]
            best = np.flatnonzero(want[:, label] == want[:, label].max())
            if best.size > 1:
                best = best[size[best] == size[best].max()]
            j = int(best[0] if best.size == 1 else rng.choice(best))
            want[j, row] -= 1
            size[j] -= 1
            fold[order[pos]] = j
        taken = order[members]
        left[taken] = False
        remaining -= y[taken].sum(0)
    for i in np.flatnonzero(fold < 0)[rng.permutation(int((fold < 0).sum()))].tolist():
        best = np.flatnonzero(size == size.max())
        j = int(best[0] if best.size == 1 else rng.choice(best))
        size[j] -= 1
        fold[i] = j
    return fold


def stratified_initial_set(
    labels: ArrayLike,
    k: int,
    *,
    min_per_label: int = 1,
    generator: torch.Generator | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A first labelled set of ``k`` examples that keeps the label distribution and gives
    rare labels at least ``min_per_label`` examples when ``k`` allows.

    Runs :func:`iterative_stratification` with two subsets (the set, proportion
    ``k / N``, and the rest) whose desired count of each label ``l`` in the set is
    ``max(k · n_l / N, min(min_per_label, n_l))``: proportional, raised for rare labels.
    Rarest labels are placed first, so they get their minimum before frequent labels
    fill the set. The set is then brought to exactly ``k`` examples: surplus examples are
    removed, those whose labels are most over their desired count first; missing ones are
    added, those covering the largest remaining shortfall first (ties at random). A label
    with fewer examples than asked gets all of them; when ``k`` is smaller than what the
    minimums need, the rarest labels keep theirs.

    Complexity: O(N · L) plus O(|surplus or deficit| · N · L) for the final adjustment
    (a few rounding steps in practice).

    Args:
        labels: ``(N, L)`` multi-hot gold labels of the pool.
        k: size of the set.
        min_per_label: desired minimum number of examples of each label.
        generator: source of randomness (else a fresh one seeded with ``seed``).
        seed: seed of the fresh generator.

    Returns:
        ``min(k, N)`` distinct int64 row indices, ascending.

    >>> y = [[1, 0, 0]] * 8 + [[0, 1, 0]] * 8 + [[0, 0, 1]]  # label 2 is rare
    >>> ids = stratified_initial_set(y, 3, seed=0)
    >>> ids.size, 16 in ids.tolist()
    (3, True)
    """
    y = _multi_hot(labels, "labels")
    k = check_k(k)
    n = y.shape[0]
    if k >= n:
        return np.arange(n, dtype=np.int64)
    if k == 0:
        return np.empty(0, dtype=np.int64)
    if isinstance(min_per_label, bool) or int(min_per_label) < 0:
        raise FunctionalInputError(f"min_per_label must be >= 0, got {min_per_label!r}.")
    g = make_generator(generator, seed)
    counts = y.sum(0).astype(np.float64)
    target = np.maximum(counts * k / n, np.minimum(float(min_per_label), counts))
    desired = np.stack([target, counts - target])
    fold = iterative_stratification(y, [k / n, 1 - k / n], desired=desired, generator=g)
    chosen = fold == 0
    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=g)))
    yi = y.astype(np.int64)
    rarity = np.argsort(np.argsort(counts, kind="stable"), kind="stable")  # 0 = rarest
    floor = np.minimum(float(min_per_label), counts)
    while chosen.sum() > k:
        members = np.flatnonzero(chosen)
        have = yi[members].sum(0)
        ym = y[members]
        # drop first the example whose removal breaks the fewest minimums, then the one
        # whose labels are most over their desired counts, then the one whose rarest
        # label is the most frequent
        breaks = (ym & (have - 1 < floor)[None, :]).sum(1)
        over = np.where(ym, (have - target)[None, :], np.inf).min(1)
        rarest = np.where(ym, rarity[None, :], y.shape[1]).min(1)
        keys = np.lexsort((rng.random(members.size), -rarest, -over, breaks))
        chosen[members[keys[0]]] = False
    while chosen.sum() < k:
        have = yi[chosen].sum(0)
        short = np.maximum(target - have, 0)
        others = np.flatnonzero(~chosen)
        gain = yi[others] @ short
        keys = np.lexsort((rng.random(others.size), -gain))
        chosen[others[keys[0]]] = True
    return np.flatnonzero(chosen).astype(np.int64)


# ---------------------------------------------------------------------------- metrics
def _pair(
    y_true: ArrayLike, y_pred: ArrayLike, threshold: float | ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    t = _multi_hot(y_true, "y_true")
    a = y_pred.detach().cpu().numpy() if isinstance(y_pred, Tensor) else np.asarray(y_pred)
    if a.shape != t.shape:
        raise ShapeError(f"y_pred has shape {a.shape}, y_true has {t.shape}.")
    if np.issubdtype(a.dtype, np.floating):
        if a.size and not np.isfinite(a).all():
            raise FunctionalInputError("y_pred contains NaN or infinite values.")
        thr = np.asarray(threshold, dtype=np.float64)
        if thr.ndim not in (0, 1) or (thr.ndim == 1 and thr.shape != (t.shape[1],)):
            raise ShapeError(f"threshold must be a float or a ({t.shape[1]},) array.")
        # compare in the predictions' precision, as torchmetrics does: a float32 0.3 is
        # not above the threshold 0.3
        p = a > thr.astype(a.dtype)
    else:
        p = _multi_hot(a, "y_pred")
    return t, p


def decide_labels(probs: ArrayLike, threshold: float | ArrayLike = 0.5, *, at_least_one: bool = False) -> np.ndarray:
    """Multi-hot decisions: the labels whose probability is above ``threshold``; with
    ``at_least_one`` a row with none above it gets its most probable label (the label set
    permits no empty row, and a model trained on a few dozen rows of many rare labels
    rarely reaches 0.5 on any).

    Complexity: O(N · L).

    >>> decide_labels([[0.2, 0.4], [0.7, 0.6]]).tolist()
    [[0, 0], [1, 1]]
    >>> decide_labels([[0.2, 0.4], [0.7, 0.6]], at_least_one=True).tolist()
    [[0, 1], [1, 1]]
    """
    a = np.asarray(probs, dtype=np.float64)
    if a.ndim != 2:
        raise ShapeError(f"probs must be (rows, labels), got shape {a.shape}.")
    thr = np.asarray(threshold, dtype=np.float64)
    out = (a > thr).astype(np.uint8)
    if at_least_one and a.size:
        empty = out.sum(1) == 0
        out[np.flatnonzero(empty), a[empty].argmax(1)] = 1
    return out


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    tp, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn))
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros_like(den), where=den > 0)


def multilabel_f1(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    average: Literal["micro", "macro", "none"] = "micro",
    *,
    threshold: float | ArrayLike = 0.5,
) -> float | np.ndarray:
    """F1 over label decisions: micro (pooled counts) or macro (mean of per-label F1).

    Macro averages over all L labels; a label with no gold and no predicted positive has
    F1 0 (as scikit-learn's and torchmetrics' defaults).

    Complexity: O(N · L).

    Args:
        y_true: ``(N, L)`` multi-hot gold labels.
        y_pred: ``(N, L)`` multi-hot predictions, or probabilities (floats).
        average: ``"micro"``, ``"macro"`` or ``"none"`` (per-label array).
        threshold: for probabilities: a label is predicted when ``p > threshold``; a float
            or one per label.

    Returns:
        A float, or an ``(L,)`` float64 array for ``"none"``.

    >>> multilabel_f1([[1, 0], [1, 1]], [[1, 0], [0, 1]]), multilabel_f1([[1, 0], [1, 1]], [[1, 0], [0, 1]], "macro")
    (0.8, 0.8333333333333333)
    """
    t, p = _pair(y_true, y_pred, threshold)
    tp = (t & p).sum(0)
    fp = (~t & p).sum(0)
    fn = (t & ~p).sum(0)
    if average == "micro":
        return float(_f1(tp.sum(), fp.sum(), fn.sum()))
    per_label = _f1(tp, fp, fn)
    if average == "macro":
        return float(per_label.mean()) if per_label.size else 0.0
    if average == "none":
        return per_label
    raise FunctionalInputError(f"average must be 'micro', 'macro' or 'none', got {average!r}.")


def subset_accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float | ArrayLike = 0.5
) -> float:
    """Fraction of examples whose predicted label set equals the gold set exactly.

    Complexity: O(N · L).

    >>> subset_accuracy([[1, 0], [1, 1]], [[1, 0], [0, 1]])
    0.5
    """
    t, p = _pair(y_true, y_pred, threshold)
    return float((t == p).all(1).mean()) if t.shape[0] else 0.0


def hamming_loss(
    y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float | ArrayLike = 0.5
) -> float:
    """Fraction of wrong label decisions over all examples and labels.

    Complexity: O(N · L).

    >>> hamming_loss([[1, 0], [1, 1]], [[1, 0], [0, 1]])
    0.25
    """
    t, p = _pair(y_true, y_pred, threshold)
    return float((t != p).mean()) if t.size else 0.0


def multilabel_scores(
    y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float | ArrayLike = 0.5
) -> dict[str, float]:
    """Micro/macro F1, micro precision and recall, subset accuracy and Hamming loss.

    Complexity: O(N · L).

    >>> s = multilabel_scores([[1, 0], [1, 1]], [[0.9, 0.2], [0.3, 0.7]])
    >>> s["micro_f1"], s["subset_accuracy"], s["hamming_loss"]
    (0.8, 0.5, 0.25)
    """
    t, p = _pair(y_true, y_pred, threshold)
    tp, fp, fn = int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum())
    return {
        "micro_f1": float(_f1(tp, fp, fn)),
        "macro_f1": float(multilabel_f1(t, p, "macro")),
        "micro_precision": tp / (tp + fp) if tp + fp else 0.0,
        "micro_recall": tp / (tp + fn) if tp + fn else 0.0,
        "subset_accuracy": subset_accuracy(t, p),
        "hamming_loss": hamming_loss(t, p),
    }


def _best_threshold(p: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """The threshold maximising F1 of the pooled decisions ``p > thr``, and that F1.

    Every distinct probability is a candidate cut: predicting the examples at or above
    it. The threshold returned lies halfway between the cut and the next lower distinct
    probability, so that ``p > thr`` reproduces the cut; ties in F1 go to the higher
    threshold (fewer positives).
    """
    positives = int(t.sum())
    if positives == 0 or p.size == 0:
        return 0.5, 0.0
    order = np.argsort(-p, kind="stable")
    ps, ts = p[order], t[order]
    tp = np.cumsum(ts)
    fp = np.arange(1, ps.size + 1) - tp
    last = np.flatnonzero(np.append(ps[1:] != ps[:-1], True))  # last index of each value
    f1 = 2 * tp[last] / (tp[last] + fp[last] + positives)
    best = int(np.flatnonzero(f1 == f1.max())[0])
    cut = ps[last[best]]
    below = ps[last[best] + 1] if last[best] + 1 < ps.size else 0.0
    mid = (cut + below) / 2 if cut > below else cut / 2
    # predictions are compared in float32: two adjacent float32 values have no float32
    # between them, and then the lower value itself separates them (p > below)
    if not (np.float32(below) < np.float32(mid) < np.float32(cut)) and cut > below:
        mid = below
    return float(mid), float(f1[best])


def tune_threshold(
    probs: ArrayLike, y_true: ArrayLike, *, per_label: bool = False
) -> float | np.ndarray:
    """Decision threshold(s) maximising F1 on a validation set.

    One global threshold maximises micro-F1 exactly: every distinct probability is tried
    as the cut (one sort, O(N·L log(N·L))). With ``per_label`` each label gets the
    threshold maximising its own F1 (so the macro-F1 on this set is maximal); a label
    with no positive example in ``y_true`` keeps the global threshold. Tuning on the
    set later evaluated overfits: tune on validation data.

    Complexity: O(N · L log(N · L)).

    Args:
        probs: ``(N, L)`` per-label probabilities on the validation set.
        y_true: ``(N, L)`` multi-hot gold labels.
        per_label: one threshold per label instead of one for all.

    Returns:
        A float in ``[0, 1)`` (0.5 when ``y_true`` has no positive), or an ``(L,)`` array.

    >>> tune_threshold([[0.9, 0.4], [0.35, 0.2]], [[1, 1], [0, 0]])
    0.375
    """
    p = _sigmoid_probs(probs).numpy().astype(np.float64)
    t = _multi_hot(y_true, "y_true")
    if t.shape != p.shape:
        raise ShapeError(f"y_true has shape {t.shape}, probs has {p.shape}.")
    global_thr, _ = _best_threshold(p.reshape(-1), t.reshape(-1))
    if not per_label:
        return global_thr
    out = np.full(p.shape[1], global_thr, dtype=np.float64)
    for label in np.flatnonzero(t.any(0)).tolist():
        out[label], _ = _best_threshold(p[:, label], t[:, label])
    return out
