"""Small maths of fitting: loss weights for imbalanced labelled sets."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ._validation import ArrayLike, FunctionalInputError, ShapeError

__all__ = ["balanced_class_weights", "balanced_pos_weights"]


def balanced_class_weights(labels: ArrayLike, num_classes: int) -> Tensor:
    """Per-class loss weights ``n / (K * n_c)``: inverse class frequency (the "balanced"
    heuristic of King & Zeng, 2001, as in scikit-learn), so every class present carries the
    same total weight in the loss. ``K`` counts the classes present; an absent class gets
    weight 1 (it has no term in the loss). O(n + C).

    Args:
        labels: ``(n,)`` integer class ids in ``[0, num_classes)``.
        num_classes: number of classes ``C``.

    Returns:
        ``(C,)`` float32 weights.

    Raises:
        ShapeError: labels that are not one-dimensional.
        FunctionalInputError: ids out of range or no labels.

    >>> balanced_class_weights([0, 0, 0, 1], 3)
    tensor([0.6667, 2.0000, 1.0000])
    """
    y = torch.as_tensor(labels).to(torch.int64).reshape(-1) if not isinstance(labels, Tensor) else labels
    if y.ndim != 1:
        raise ShapeError(f"labels must be one-dimensional, got shape {tuple(y.shape)}.")
    y = y.to(device="cpu", dtype=torch.int64)
    if y.numel() == 0:
        raise FunctionalInputError("balanced_class_weights needs at least one label.")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise FunctionalInputError(f"labels must be in [0, {num_classes}), got {int(y.min())}..{int(y.max())}.")
    counts = torch.bincount(y, minlength=num_classes).to(torch.float32)
    present = counts > 0
    weights = torch.ones(num_classes, dtype=torch.float32)
    weights[present] = y.numel() / (int(present.sum()) * counts[present])
    return weights


def balanced_pos_weights(multi_hot: ArrayLike, max_weight: float = 100.0) -> Tensor:
    """Per-label positive weights of a multi-label loss (``pos_weight`` of
    ``binary_cross_entropy_with_logits``): each label's negatives / positives among the
    rows, so that its positives weigh as much as its negatives; a label with no positive
    gets 1, and weights are capped at ``max_weight``. O(n · L).

    >>> balanced_pos_weights([[1, 0], [0, 0], [0, 0], [1, 1]])
    tensor([1., 3.])
    """
    y = torch.as_tensor(np.asarray(multi_hot), dtype=torch.float32)
    if y.ndim != 2:
        raise ShapeError(f"multi_hot must be (rows, labels), got shape {tuple(y.shape)}.")
    if y.shape[0] == 0:
        raise FunctionalInputError("balanced_pos_weights needs at least one row.")
    pos = y.sum(0)
    neg = y.shape[0] - pos
    weights = torch.where(pos > 0, neg / pos.clamp(min=1), torch.ones_like(pos))
    return weights.clamp(min=1.0, max=float(max_weight))
