"""Pure acquisition functions.

Every function takes a tensor of logits (or probabilities, where the name says so) of
shape ``(batch, num_classes)`` and returns one score per example, shape ``(batch,)``.
A higher score always means "more worth labelling", so every scoring strategy can keep
the top-k of its scores. No function holds state or does I/O.

>>> import torch
>>> logits = torch.tensor([[0.0, 0.0], [4.0, -4.0]])
>>> entropy(logits).argmax().item()
0
"""

from __future__ import annotations

import torch
from torch import Tensor

from energizer_hf.functional.primitives import entropy as _entropy

__all__ = [
    "entropy",
    "entropy_from_probs",
    "least_confidence",
    "least_confidence_from_probs",
    "margin",
    "margin_from_probs",
    "ratio_of_confidence",
    "ratio_of_confidence_from_probs",
]


def _check_2d(x: Tensor, name: str) -> None:
    if x.ndim != 2:
        raise ValueError(
            f"{name} expects a (batch, num_classes) tensor, got shape {tuple(x.shape)}."
        )


def entropy_from_probs(probs: Tensor) -> Tensor:
    """Shannon entropy (nats) of each row of a probability matrix."""
    _check_2d(probs, "entropy_from_probs")
    return _entropy(probs.float())


def entropy(logits: Tensor) -> Tensor:
    """Shannon entropy (nats) of the predictive distribution ``softmax(logits)``.

    Computed from log-probabilities, which is exact and stable for large logits.

    >>> import torch
    >>> round(entropy(torch.zeros(1, 4)).item(), 4)  # uniform over 4 classes: log(4)
    1.3863
    """
    _check_2d(logits, "entropy")
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return -(log_probs.exp() * log_probs).sum(-1)


def least_confidence_from_probs(probs: Tensor) -> Tensor:
    """``1 - max_c p(c)``: high when the most likely class is not very likely."""
    _check_2d(probs, "least_confidence_from_probs")
    return 1.0 - probs.float().max(-1).values


def least_confidence(logits: Tensor) -> Tensor:
    """Least confidence of ``softmax(logits)`` (Lewis & Gale, 1994)."""
    _check_2d(logits, "least_confidence")
    return least_confidence_from_probs(torch.softmax(logits.float(), dim=-1))


def _top2(probs: Tensor) -> tuple[Tensor, Tensor]:
    if probs.shape[-1] < 2:
        raise ValueError("margin-based scores need at least 2 classes.")
    top = probs.topk(2, dim=-1).values
    return top[:, 0], top[:, 1]


def margin_from_probs(probs: Tensor) -> Tensor:
    """Negative margin between the two most likely classes ("breaking ties").

    Scheffer et al. (2001); Luo et al. (2005). Higher = closer tie = more informative.
    """
    _check_2d(probs, "margin_from_probs")
    p1, p2 = _top2(probs.float())
    return -(p1 - p2)


def margin(logits: Tensor) -> Tensor:
    """Negative top-2 probability margin of ``softmax(logits)`` (breaking ties)."""
    _check_2d(logits, "margin")
    return margin_from_probs(torch.softmax(logits.float(), dim=-1))


def ratio_of_confidence_from_probs(probs: Tensor) -> Tensor:
    """Ratio ``p2 / p1`` of the two most likely classes: 1 for a tie, 0 when certain."""
    _check_2d(probs, "ratio_of_confidence_from_probs")
    p1, p2 = _top2(probs.float())
    return p2 / p1.clamp_min(1e-12)


def ratio_of_confidence(logits: Tensor) -> Tensor:
    """Ratio of confidence of ``softmax(logits)``: ``exp(l2 - l1)``, stable for any logits."""
    _check_2d(logits, "ratio_of_confidence")
    if logits.shape[-1] < 2:
        raise ValueError("margin-based scores need at least 2 classes.")
    top = logits.float().topk(2, dim=-1).values
    return torch.exp(top[:, 1] - top[:, 0])
