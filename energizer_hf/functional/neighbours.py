"""Exact, chunked nearest-neighbour search.

The pool can hold hundreds of thousands of examples, so no function here builds the
``(n_query, n_keys)`` distance matrix at once: queries are processed in chunks of at most
4096 rows (fewer when ``n_keys`` is large, so one block stays around 64 MiB of float32).
The search is exact (brute force), not approximate.

Metrics: ``"euclidean"`` (distances are returned as plain, not squared, L2 distances) and
``"cosine"`` (``1 - cos(q, k)``, in ``[0, 2]``; zero vectors are treated as orthogonal to
everything). Euclidean distances use ``‖q‖² + ‖k‖² − 2 q·k`` in float32 (one matrix
product per block), so squared distances between near-duplicates carry an absolute
round-off of about ``1e-7 · (‖q‖² + ‖k‖²)``; the cosine metric normalises a copy of the
keys.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ._validation import (
    ArrayLike,
    FunctionalInputError,
    ShapeError,
    as_float_tensor,
    row_sq_norms,
    rows_per_chunk,
)

__all__ = ["knn", "min_distances", "radius_neighbors"]

Metric = Literal["euclidean", "cosine"]


class _Keys:
    """Keys prepared once for repeated chunked searches (no validation, no copies).

    A query block's distances are ``offset(q)[:, None] + partial(q)`` where
    ``partial = bias − scale · q @ keysᵀ`` is a single ``addmm``: for euclidean
    ``bias = ‖k‖²``, ``scale = 2``, ``offset = ‖q‖²`` (squared distances); for cosine the
    rows are unit-normalised, ``bias = 0``, ``scale = 1``, ``offset = 1``. Reductions
    (min, top-k, threshold) run on ``partial`` and the per-row offset is added to the few
    survivors only, which keeps one pass over each block after the matmul.
    """

    def __init__(self, keys: Tensor, metric: str) -> None:
        if metric not in ("euclidean", "cosine"):
            raise FunctionalInputError(f"metric must be 'euclidean' or 'cosine', got {metric!r}.")
        self.metric = metric
        if metric == "euclidean":
            self.keys = keys
            self.bias = row_sq_norms(keys)
            self.scale = 2.0
        else:
            self.keys = F.normalize(keys, dim=1)
            self.bias = torch.zeros(keys.shape[0])
            self.scale = 1.0
        self.n = keys.shape[0]

    def query(self, q: Tensor) -> Tensor:
        return F.normalize(q, dim=1) if self.metric == "cosine" else q

    def offset(self, q: Tensor) -> Tensor:
        if self.metric == "euclidean":
            return (q * q).sum(1)
        return torch.ones(q.shape[0])

    def partial(self, q: Tensor) -> Tensor:
        return torch.addmm(self.bias.unsqueeze(0), q, self.keys.T, beta=1.0, alpha=-self.scale)

    def finish(self, d: Tensor, squared: bool = False) -> Tensor:
        """Clamp round-off and turn squared euclidean into plain distances."""
        if self.metric == "euclidean":
            d = d.clamp_(min=0.0)
            return d if squared else d.sqrt_()
        return d.clamp_(0.0, 2.0)


def _nonzero_2d(mask: Tensor) -> tuple[Tensor, Tensor]:
    """``mask.nonzero()`` as (rows, cols), fast for sparse masks.

    Scans the mask eight booleans at a time (viewed as int64 words) and only expands the
    non-zero words, which is several times faster than ``nonzero`` on a sparse block.
    """
    n_cols = mask.shape[1]
    flat = mask.reshape(-1)
    if flat.numel() % 8 or not flat.is_contiguous():
        nz = mask.nonzero()
        return nz[:, 0], nz[:, 1]
    hits = flat.view(torch.int64).nonzero().squeeze(1)
    pos = (hits.unsqueeze(1) * 8 + torch.arange(8)).reshape(-1)
    pos = pos[flat[pos]]
    return pos // n_cols, pos % n_cols


def _check_dims(query: Tensor, keys: Tensor) -> None:
    if query.shape[1] != keys.shape[1]:
        raise ShapeError(
            f"query and keys must have the same feature dimension, got {query.shape[1]} "
            f"and {keys.shape[1]}."
        )


def _min_distances(
    q: Tensor, keys: _Keys, chunk_size: int | None, squared: bool = True
) -> tuple[Tensor, Tensor]:
    """Unvalidated kernel of :func:`min_distances` on prepared keys."""
    q = keys.query(q)
    n = q.shape[0]
    out_d = torch.empty(n)
    out_i = torch.empty(n, dtype=torch.long)
    step = rows_per_chunk(keys.n, chunk_size)
    for start in range(0, n, step):
        stop = min(start + step, n)
        qc = q[start:stop]
        vals, idx = keys.partial(qc).min(dim=1)
        out_d[start:stop] = vals + keys.offset(qc)
        out_i[start:stop] = idx
    return keys.finish(out_d, squared), out_i


def knn(
    query: ArrayLike,
    keys: ArrayLike,
    k: int,
    metric: Metric = "euclidean",
    *,
    exclude_self: bool = False,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Exact k nearest neighbours of every query row among the key rows.

    Reference: Cover & Hart, "Nearest Neighbor Pattern Classification", IEEE Trans.
    Inf. Theory, 1967 (exact brute-force search).

    Complexity: O(n_query · n_keys · d) time, O(chunk · n_keys + n_query · k) memory.

    Args:
        query: ``(n_query, d)`` float tensor (or numpy array).
        keys: ``(n_keys, d)`` float tensor.
        k: number of neighbours, ``1 <= k <= n_keys`` (``n_keys - 1`` with ``exclude_self``).
        metric: ``"euclidean"`` or ``"cosine"``.
        exclude_self: ``query`` and ``keys`` are the same set of rows; row ``i`` is not its
            own neighbour (duplicates at distance 0 still are).
        chunk_size: query rows per chunk (default: at most 4096, ~64 MiB per block).

    Returns:
        ``(distances, indices)``, both ``(n_query, k)``, sorted by increasing distance.

    Raises:
        ShapeError: on mismatching feature dimensions or wrong ranks.
        NonFiniteInputError: on NaN/inf inputs.
        FunctionalInputError: on an out-of-range ``k`` or unknown metric.

    >>> import torch
    >>> keys = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    >>> d, i = knn(torch.tensor([[0.9, 0.0]]), keys, k=2)
    >>> i.tolist(), [round(x, 2) for x in d[0].tolist()]
    ([[1, 0]], [0.1, 0.9])
    """
    q = as_float_tensor(query, "query", 2)
    kt = as_float_tensor(keys, "keys", 2)
    _check_dims(q, kt)
    prepared = _Keys(kt, metric)
    if exclude_self and q.shape[0] != kt.shape[0]:
        raise ShapeError("exclude_self=True needs query and keys with the same rows.")
    available = kt.shape[0] - (1 if exclude_self else 0)
    if not 1 <= k <= available:
        raise FunctionalInputError(
            f"k must be in [1, {available}] for {kt.shape[0]} keys, got {k}."
        )
    q = prepared.query(q)
    n = q.shape[0]
    out_d = torch.empty(n, k)
    out_i = torch.empty(n, k, dtype=torch.long)
    step = rows_per_chunk(kt.shape[0], chunk_size)
    for start in range(0, n, step):
        stop = min(start + step, n)
        qc = q[start:stop]
        d = prepared.partial(qc)
        if exclude_self:
            rows = torch.arange(stop - start)
            d[rows, rows + start] = float("inf")
        vals, idx = torch.topk(d, k, dim=1, largest=False, sorted=True)
        out_d[start:stop] = vals + prepared.offset(qc).unsqueeze(1)
        out_i[start:stop] = idx
    return prepared.finish(out_d), out_i


def min_distances(
    query: ArrayLike,
    keys: ArrayLike,
    metric: Metric = "euclidean",
    *,
    squared: bool = False,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Distance from every query row to its nearest key row, and that key's index.

    Equivalent to ``knn(query, keys, 1)`` flattened, with an option to get squared
    euclidean distances (what k-means and k-center use).

    Reference: Cover & Hart, 1967 (1-nearest neighbour).

    Complexity: O(n_query · n_keys · d) time, O(chunk · n_keys + n_query) memory.

    Args:
        query: ``(n_query, d)`` tensor.
        keys: ``(n_keys, d)`` tensor, at least one row.
        metric: ``"euclidean"`` or ``"cosine"``.
        squared: return squared euclidean distances (ignored for cosine).
        chunk_size: query rows per chunk.

    Returns:
        ``(distances, indices)``, both ``(n_query,)``.

    >>> import torch
    >>> d, i = min_distances(torch.tensor([[0.0], [4.0]]), torch.tensor([[1.0], [3.0]]), squared=True)
    >>> d.tolist(), i.tolist()
    ([1.0, 1.0], [0, 1])
    """
    q = as_float_tensor(query, "query", 2)
    kt = as_float_tensor(keys, "keys", 2)
    if kt.shape[0] == 0:
        raise FunctionalInputError("keys must contain at least one row.")
    _check_dims(q, kt)
    return _min_distances(q, _Keys(kt, metric), chunk_size, squared=squared)


def radius_neighbors(
    query: ArrayLike,
    keys: ArrayLike,
    radius: float,
    metric: Metric = "euclidean",
    *,
    max_neighbors: int | None = None,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """All (query, key) pairs closer than ``radius``, as a sparse COO edge list.

    A pair is kept when ``distance <= radius``. The edge list is the only thing whose size
    depends on the data: memory is O(chunk · n_keys + E) for E edges. Pass
    ``max_neighbors`` to keep only the nearest ``max_neighbors`` keys within the radius of
    each query (bounded memory, an approximation of the ball for very dense regions).

    Reference: Bentley, "A Survey of Techniques for Fixed Radius Near Neighbor
    Searching", SLAC report 186, 1975 (here by exact brute force).

    Complexity: O(n_query · n_keys · d) time.

    Args:
        query: ``(n_query, d)`` tensor.
        keys: ``(n_keys, d)`` tensor.
        radius: non-negative distance threshold (plain, not squared, for euclidean).
        metric: ``"euclidean"`` or ``"cosine"``.
        max_neighbors: optional cap on the edges kept per query row.
        chunk_size: query rows per chunk.

    Returns:
        ``(rows, cols, distances)``: 1-D tensors of equal length, sorted by ``rows``.

    >>> import torch
    >>> x = torch.tensor([[0.0], [0.5], [3.0]])
    >>> r, c, _ = radius_neighbors(x, x, radius=1.0)
    >>> list(zip(r.tolist(), c.tolist()))
    [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2)]
    """
    q = as_float_tensor(query, "query", 2)
    kt = as_float_tensor(keys, "keys", 2)
    if not radius >= 0:
        raise FunctionalInputError(f"radius must be >= 0, got {radius}.")
    if max_neighbors is not None and max_neighbors < 1:
        raise FunctionalInputError(f"max_neighbors must be >= 1, got {max_neighbors}.")
    _check_dims(q, kt)
    prepared = _Keys(kt, metric)
    q = prepared.query(q)
    threshold = radius * radius if metric == "euclidean" else radius
    rows_out: list[Tensor] = []
    cols_out: list[Tensor] = []
    dist_out: list[Tensor] = []
    n = q.shape[0]
    step = rows_per_chunk(kt.shape[0], chunk_size)
    for start in range(0, n, step):
        stop = min(start + step, n)
        qc = q[start:stop]
        d = prepared.partial(qc)
        offset = prepared.offset(qc)
        limit = (threshold - offset).unsqueeze(1)  # distance <= threshold  <=>  d <= limit
        if max_neighbors is not None and max_neighbors < kt.shape[0]:
            vals, idx = torch.topk(d, max_neighbors, dim=1, largest=False, sorted=False)
            keep = vals <= limit
            r = torch.arange(stop - start).unsqueeze(1).expand_as(idx)[keep]
            c, v = idx[keep], vals[keep]
            order = torch.argsort(r * kt.shape[0] + c)
            r, c, v = r[order], c[order], v[order]
        else:
            r, c = _nonzero_2d(d <= limit)
            v = d[r, c]
        rows_out.append(r + start)
        cols_out.append(c)
        dist_out.append(v + offset[r])
    if not rows_out:
        empty = torch.empty(0, dtype=torch.long)
        return empty, empty.clone(), torch.empty(0)
    return torch.cat(rows_out), torch.cat(cols_out), prepared.finish(torch.cat(dist_out))
