"""Input validation and small shared helpers for :mod:`energizer_hf.functional`.

Everything here is private; the exceptions are re-exported from the package.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

#: Upper bound on the number of rows in one chunk of a chunked distance computation.
MAX_CHUNK_ROWS = 4096
#: Target number of float32 elements of one ``(chunk, n_keys)`` block (64 MiB).
BLOCK_ELEMENTS = 1 << 24


class FunctionalInputError(ValueError):
    """Base class of the errors raised by :mod:`energizer_hf.functional` on bad inputs."""


class ShapeError(FunctionalInputError):
    """An input has the wrong number of dimensions or inconsistent sizes."""


class NonFiniteInputError(FunctionalInputError):
    """An input contains NaN or infinite values."""


class InvalidProbabilitiesError(FunctionalInputError):
    """A probability tensor has negative entries or rows that do not sum to one."""


class TooManyClustersError(FunctionalInputError):
    """More clusters (or centers) were requested than there are points."""


ArrayLike = Any  # torch.Tensor, numpy.ndarray or (nested) sequences of numbers


def as_float_tensor(x: ArrayLike, name: str, ndim: int | tuple[int, ...]) -> Tensor:
    """Convert ``x`` to a contiguous float32 CPU tensor and validate rank and finiteness.

    Tensors on another device are copied to the CPU: every function of the package
    computes on the CPU and returns CPU tensors.
    """
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        x = np.array(x)  # torch.as_tensor warns on read-only arrays
    t = torch.as_tensor(x)
    if not (
        t.is_floating_point()
        or t.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
    ):
        raise FunctionalInputError(f"{name} must be numeric, got dtype {t.dtype}.")
    t = t.to(device="cpu", dtype=torch.float32)
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if t.ndim not in ndims:
        want = " or ".join(str(d) for d in ndims)
        raise ShapeError(f"{name} must have {want} dimensions, got shape {tuple(t.shape)}.")
    if not all_finite(t):
        raise NonFiniteInputError(f"{name} contains NaN or infinite values.")
    return t.contiguous()


def all_finite(t: Tensor) -> bool:
    """Whether every element is finite, without an input-sized temporary.

    Any NaN/inf makes the sum non-finite, so a finite sum proves finiteness in one pass;
    only a non-finite sum (or a float32 overflow) needs the chunked elementwise check.
    """
    if t.numel() == 0 or bool(torch.isfinite(t.sum())):
        return True
    flat = t.reshape(-1)
    step = 1 << 20
    return all(bool(torch.isfinite(flat[i : i + step]).all()) for i in range(0, flat.numel(), step))


def check_probs(probs: Tensor, name: str, atol: float = 1e-3) -> None:
    """Check that the last dimension of ``probs`` holds probability distributions."""
    if probs.shape[-1] < 1:
        raise ShapeError(f"{name} needs at least one class, got shape {tuple(probs.shape)}.")
    if probs.numel() == 0:
        return
    if bool((probs < 0).any()):
        raise InvalidProbabilitiesError(
            f"{name} has negative entries; pass probabilities, not logits."
        )
    sums = probs.sum(-1)
    if not bool(torch.allclose(sums, torch.ones_like(sums), atol=atol)):
        worst = float((sums - 1).abs().max())
        raise InvalidProbabilitiesError(
            f"{name} rows must sum to 1 over the class dimension (worst deviation {worst:.3g}); "
            "pass softmax probabilities, not logits."
        )


def as_probs(x: ArrayLike, name: str, ndim: int) -> Tensor:
    t = as_float_tensor(x, name, ndim)
    check_probs(t, name)
    return t


def check_same_rows(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ShapeError(
            f"{name_a} and {name_b} must have the same number of rows, "
            f"got {a.shape[0]} and {b.shape[0]}."
        )


def check_k(k: int, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise FunctionalInputError(f"{name} must be an int, got {type(k).__name__}.")
    k = int(k)
    if k < 0:
        raise FunctionalInputError(f"{name} must be >= 0, got {k}.")
    return k


def labelled_to_mask(labelled: ArrayLike | None, n: int, name: str = "labelled") -> Tensor:
    """Turn ``None``, a boolean mask of length ``n`` or an index list into a bool mask."""
    mask = torch.zeros(n, dtype=torch.bool)
    if labelled is None:
        return mask
    t = torch.as_tensor(labelled)
    if t.dtype == torch.bool:
        if t.shape != (n,):
            raise ShapeError(f"boolean {name} mask must have shape ({n},), got {tuple(t.shape)}.")
        return t.cpu().clone()
    if t.numel() == 0:
        return mask
    if t.is_floating_point() or t.ndim != 1:
        raise ShapeError(
            f"{name} must be a boolean mask of shape ({n},) or a 1-D integer index array."
        )
    t = t.long().cpu()
    if bool((t < 0).any()) or bool((t >= n).any()):
        raise FunctionalInputError(f"{name} indices must lie in [0, {n}).")
    mask[t] = True
    return mask


def trivial_selection(k: int, labelled: ArrayLike | None, n: int) -> tuple[int, Tensor, Tensor | None]:
    """The preamble every selector shares: ``(k, candidate mask, early answer)``.

    The early answer is every candidate (ascending) when ``k`` covers them all, an empty
    selection when ``k == 0``, and ``None`` when the selector has real work to do.
    """
    k = check_k(k)
    candidates = ~labelled_to_mask(labelled, n)
    if k >= int(candidates.sum()):
        return k, candidates, candidates.nonzero().squeeze(1)
    if k == 0:
        return k, candidates, torch.empty(0, dtype=torch.long)
    return k, candidates, None


def make_generator(generator: torch.Generator | None, seed: int) -> torch.Generator:
    """Return ``generator`` or, if it is ``None``, a fresh CPU generator seeded with ``seed``."""
    if generator is not None:
        return generator
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


def rows_per_chunk(n_keys: int, chunk_size: int | None) -> int:
    """Rows of one query chunk so that a ``(rows, n_keys)`` float32 block stays ~64 MiB."""
    if chunk_size is not None:
        if chunk_size < 1:
            raise FunctionalInputError(f"chunk_size must be >= 1, got {chunk_size}.")
        return int(chunk_size)
    return max(1, min(MAX_CHUNK_ROWS, BLOCK_ELEMENTS // max(1, n_keys)))


def sq_euclidean(a: Tensor, b: Tensor, b_sq: Tensor | None = None) -> Tensor:
    """Squared euclidean distances between the rows of ``a`` and ``b`` (a small block)."""
    a_sq = (a * a).sum(1, keepdim=True)
    if b_sq is None:
        b_sq = row_sq_norms(b)
    d = torch.addmm(b_sq.unsqueeze(0), a, b.T, beta=1.0, alpha=-2.0)
    d.add_(a_sq)
    return d.clamp_(min=0.0)


def row_sq_norms(x: Tensor, chunk_rows: int = MAX_CHUNK_ROWS) -> Tensor:
    """Squared L2 norm of every row, chunked so that no ``x``-sized temporary is made."""
    out = torch.empty(x.shape[0], dtype=x.dtype)
    for start in range(0, x.shape[0], chunk_rows):
        block = x[start : start + chunk_rows]
        out[start : start + chunk_rows] = (block * block).sum(1)
    return out
