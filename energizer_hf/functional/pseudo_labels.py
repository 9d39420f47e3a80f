"""Choosing pseudo-labels for self-training from a model's class probabilities.

Self-training (Lee, 2013, "Pseudo-Label"; in active learning: Wang et al., 2017,
"Cost-Effective Active Learning", CEAL) adds the unlabelled examples the current model is
most sure about, with its own predictions as labels, to the next fit. Two selection rules,
usable together:

* a confidence **threshold** (CEAL): keep an example when the probability of its predicted
  class is at least ``threshold``;
* a **class-balanced top-k** (Zou et al., 2018, "Class-Balanced Self-Training"): for each
  predicted class keep at most the ``k`` most confident examples, so that an easy,
  frequent class cannot fill the pseudo-labelled set on its own.

With Monte-Carlo dropout samples ``(N, T, C)`` the confidence is that of the mean
prediction over the T passes (Mukherjee & Awadallah, 2020, "Uncertainty-aware
Self-training"): an example the passes disagree on gets a lower confidence.

Functions here hold no state and do no I/O; they return positions into the rows given.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ._validation import ArrayLike, FunctionalInputError, as_probs, check_k

__all__ = ["PseudoLabels", "pseudo_label_confidence", "select_pseudo_labels"]


class PseudoLabels(NamedTuple):
    """Output of :func:`select_pseudo_labels` (all three of the same length)."""

    positions: Tensor
    """int64 row positions into the given probabilities, most confident first."""
    labels: Tensor
    """int64 predicted class of each selected row."""
    confidence: Tensor
    """float32 probability of the predicted class."""


def pseudo_label_confidence(probs: ArrayLike) -> tuple[Tensor, Tensor]:
    """Predicted class and its probability for every row.

    Complexity: O(N · C), or O(N · T · C) for MC samples.

    Args:
        probs: ``(N, C)`` class probabilities, or ``(N, T, C)`` probabilities of T
            stochastic passes (MC dropout), which are averaged first.

    Returns:
        ``(labels, confidence)``: int64 ``(N,)`` argmax classes (ties: the smaller class
        id) and float32 ``(N,)`` probabilities of those classes.

    Example:
        >>> import torch
        >>> labels, conf = pseudo_label_confidence(torch.tensor([[0.2, 0.8], [0.6, 0.4]]))
        >>> labels.tolist(), [round(c, 2) for c in conf.tolist()]
        ([1, 0], [0.8, 0.6])
        >>> mc = torch.tensor([[[0.9, 0.1], [0.1, 0.9]]])  # two passes that disagree
        >>> round(pseudo_label_confidence(mc)[1].item(), 2)
        0.5
    """
    t = torch.as_tensor(probs)
    p = as_probs(t, "probs (N, C) or (N, T, C)", (2, 3))
    if p.ndim == 3:
        p = p.mean(1)
    confidence, labels = p.max(-1)  # max returns the first maximal index: the smaller id
    return labels.to(torch.int64), confidence


def select_pseudo_labels(
    probs: ArrayLike,
    threshold: float | None = None,
    top_k_per_class: int | None = None,
) -> PseudoLabels:
    """The rows to pseudo-label: confident ones (``threshold``), at most ``k`` per
    predicted class (``top_k_per_class``), or both.

    Rows are ranked by confidence, most confident first; ties go to the smaller position,
    so the result is deterministic. With only ``top_k_per_class`` every class contributes
    its ``k`` most confident rows whatever their confidence.

    Complexity: O(N · C + N log N) time, O(N) memory (``N · T · C`` to read MC samples).

    Args:
        probs: ``(N, C)`` probabilities or ``(N, T, C)`` MC-dropout samples (see
            :func:`pseudo_label_confidence`).
        threshold: keep rows whose confidence is at least this, in ``(0, 1)``; ``None``:
            no threshold.
        top_k_per_class: keep at most this many rows per predicted class (``>= 1``);
            ``None``: no cap.

    Returns:
        A :class:`PseudoLabels` of positions, labels and confidences.

    Raises:
        FunctionalInputError: a threshold outside ``(0, 1)``, ``top_k_per_class < 1``, or
            neither rule given (that would pseudo-label every row).

    Example:
        >>> import torch
        >>> p = torch.tensor([[0.95, 0.05], [0.97, 0.03], [0.10, 0.90], [0.55, 0.45]])
        >>> select_pseudo_labels(p, threshold=0.9).positions.tolist()
        [1, 0, 2]
        >>> chosen = select_pseudo_labels(p, top_k_per_class=1)
        >>> chosen.positions.tolist(), chosen.labels.tolist()
        ([1, 2], [0, 1])
    """
    if threshold is None and top_k_per_class is None:
        raise FunctionalInputError(
            "Give a threshold, a top_k_per_class or both: with neither every row would be pseudo-labelled."
        )
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise FunctionalInputError(f"threshold must be a number in (0, 1), got {threshold!r}.")
        if not 0.0 < float(threshold) < 1.0:
            raise FunctionalInputError(
                f"threshold must lie strictly between 0 and 1, got {threshold}: it is the smallest "
                "probability of the predicted class that makes a pseudo-label."
            )
    if top_k_per_class is not None and check_k(top_k_per_class, "top_k_per_class") < 1:
        raise FunctionalInputError(f"top_k_per_class must be >= 1 (or None), got {top_k_per_class}.")
    labels, confidence = pseudo_label_confidence(probs)
    n = confidence.shape[0]
    # most confident first, ties to the smaller position: sort positions by -confidence
    # with a stable sort (positions are already ascending)
    order = torch.sort(-confidence, stable=True).indices
    if threshold is not None:
        order = order[confidence[order] >= float(threshold)]
    if top_k_per_class is not None and order.numel():
        ranked_labels = labels[order]
        # rank of each row within its class, in the confidence order
        keep = torch.zeros(order.numel(), dtype=torch.bool)
        for c in torch.unique(ranked_labels).tolist():
            where = torch.nonzero(ranked_labels == c).flatten()
            keep[where[: int(top_k_per_class)]] = True
        order = order[keep]
    order = order.to(torch.int64) if n else torch.empty(0, dtype=torch.int64)
    return PseudoLabels(order, labels[order], confidence[order])
