"""Multi-label columns → a multi-hot ``uint8`` matrix and the label names.

Accepted forms of a column (Arrow, NumPy or Python values, one entry per row):

* ``"joined"``: strings of names joined by ``sep`` (``"anger;joy"``, the GoEmotions CSV);
  pieces are stripped of surrounding whitespace, empty pieces ignored;
* ``"names"``: lists of names (``["anger", "joy"]``);
* ``"ids"``: lists of label ids (``[0, 17]``), or one id per row (an integer column);
* ``"multi_hot"``: a ``(N, L)`` 0/1 matrix, or lists of L numbers/booleans per row.

``kind="auto"`` decides from the type: a string column is joined names, lists of strings
are names, lists of integers (or integers) are ids, a 2-D array or lists of floats or
booleans are multi-hot. (A list of integers is never read as multi-hot: pass
``kind="multi_hot"`` for 0/1 integer lists.) A null row has no label.

Label names come from ``label_names`` (e.g. GoEmotions' ``labels.txt``, see
:func:`read_label_names`) or, for a ``Sequence(ClassLabel)`` column read with
:func:`multilabel_column`, from the feature; otherwise they are the sorted names found (for
ids: ``"0" … "L-1"`` with ``L`` from ``num_labels`` or the largest id + 1).

Errors: :class:`~energizer_hf.errors.UnknownLabelError` for a name not in ``label_names``
or an id out of ``[0, L)``; :class:`~energizer_hf.errors.EmptyLabelSetError` for a row with
no label unless ``allow_empty`` (a label set that permits "none");
:class:`~energizer_hf.errors.DataFormatError` for multi-hot rows of the wrong length or
values other than 0/1. Each message names the first offending row and how many there are.

Everything is vectorised with ``pyarrow.compute`` and NumPy: no Python loop over rows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from energizer_hf.errors import (
    ColumnNotFoundError,
    DataFormatError,
    EmptyLabelSetError,
    EnergizerError,
    UnknownLabelError,
)

__all__ = ["multilabel_column", "read_label_names", "to_multi_hot"]

Kind = Literal["auto", "joined", "names", "ids", "multi_hot"]
KINDS = ("auto", "joined", "names", "ids", "multi_hot")


def read_label_names(path: str | os.PathLike) -> list[str]:
    """Label names from a text file, one per line (blank lines ignored).

    Raises:
        UnknownLabelError: a name is listed twice.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "labels.txt"
    >>> _ = p.write_text("anger\\njoy\\n")
    >>> read_label_names(p)
    ['anger', 'joy']
    """
    text = Path(path).read_text(encoding="utf-8")
    names = [line.strip() for line in text.splitlines()]
    names = [n for n in names if n]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UnknownLabelError(f"'{path}' lists these label names more than once: {dup}.")
    return names


def _as_arrow(values: Any) -> Any:
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype != object:
        return pa.array(values)
    return pa.array(values if not isinstance(values, np.ndarray) else values.tolist())


def _auto_kind(arr: Any) -> str:
    import pyarrow.types as pt

    t = arr.type
    if pt.is_string(t) or pt.is_large_string(t) or pt.is_null(t):
        return "joined"
    if pt.is_integer(t):
        return "ids"
    if pt.is_fixed_size_list(t):
        return "multi_hot"
    if pt.is_list(t) or pt.is_large_list(t):
        v = t.value_type
        if pt.is_string(v) or pt.is_large_string(v) or pt.is_null(v):
            return "names"
        if pt.is_integer(v):
            return "ids"
        if pt.is_floating(v) or pt.is_boolean(v):
            return "multi_hot"
    raise DataFormatError(
        f"A multi-label column of Arrow type {t} is not understood: give names joined by a "
        "separator, lists of names, lists of label ids, or multi-hot rows."
    )


def _rows_with(flags: np.ndarray) -> str:
    rows = np.flatnonzero(flags)
    return f"row {int(rows[0])} ({rows.size} row{'s' if rows.size > 1 else ''} in all)"


def to_multi_hot(
    values: Any,
    *,
    label_names: Sequence[str] | None = None,
    num_labels: int | None = None,
    kind: Kind = "auto",
    sep: str = ";",
    allow_empty: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """Parse a multi-label column (forms in the module docstring) into a multi-hot matrix.

    Args:
        values: the column: a ``pyarrow`` (chunked) array, a NumPy array (2-D for
            multi-hot), or a Python list.
        label_names: the label set, in id order.
        num_labels: the number of labels, when ids come without names.
        kind: the form of ``values``; ``"auto"`` decides from its type.
        sep: separator of ``"joined"`` names.
        allow_empty: accept rows with no label (the label set permits "none").

    Returns:
        ``(matrix, names)``: an ``(N, L)`` ``uint8`` multi-hot matrix and the ``L`` names.

    Raises:
        UnknownLabelError: an unknown name or an id out of range.
        EmptyLabelSetError: a row with no label, unless ``allow_empty``.
        DataFormatError: a column in no known form, or bad multi-hot rows.

    >>> m, names = to_multi_hot(["joy;anger", "joy"], label_names=["anger", "joy", "fear"])
    >>> m.tolist(), names
    ([[1, 1, 0], [0, 1, 0]], ['anger', 'joy', 'fear'])
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind not in KINDS:
        raise EnergizerError(f"kind must be one of {KINDS}, got {kind!r}.")
    names = None if label_names is None else [str(n) for n in label_names]
    if names is not None and len(set(names)) != len(names):
        raise UnknownLabelError(f"label_names has duplicates: {names}.")
    if isinstance(values, np.ndarray) and values.ndim == 2:
        if kind not in ("auto", "multi_hot"):
            raise DataFormatError(f"A 2-D array is a multi-hot matrix, not kind={kind!r}.")
        return _from_matrix(values, names, num_labels, allow_empty)
    arr = _as_arrow(values)
    kind = _auto_kind(arr) if kind == "auto" else kind
    n = len(arr)
    if kind == "multi_hot":
        return _from_list_matrix(arr, names, num_labels, allow_empty)
    if kind == "joined":
        if not (
            pa.types.is_string(arr.type)
            or pa.types.is_large_string(arr.type)
            or pa.types.is_null(arr.type)
        ):
            raise DataFormatError(
                f"kind='joined' needs a string column, got Arrow type {arr.type}."
            )
        arr = pc.split_pattern(arr.cast(pa.string()), pattern=sep)
        kind = "names"
    if kind == "ids" and pa.types.is_integer(arr.type):  # one id per row
        parents = np.flatnonzero(arr.is_valid().to_numpy(zero_copy_only=False))
        flat = arr.drop_null().to_numpy(zero_copy_only=False).astype(np.int64)
    else:
        if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
            raise DataFormatError(f"kind={kind!r} needs a list column, got Arrow type {arr.type}.")
        parents = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False).astype(np.int64)
        flat_arr = pc.list_flatten(arr)
        if kind == "names":
            flat_arr = pc.utf8_trim_whitespace(flat_arr.cast(pa.string()))
            keep = pc.and_(pc.is_valid(flat_arr), pc.not_equal(flat_arr, "")).fill_null(False)
            keep_np = keep.to_numpy(zero_copy_only=False)
            flat_arr, parents = flat_arr.filter(keep), parents[keep_np]
        flat = flat_arr
    if kind == "names":
        if names is None:
            names = sorted(pc.unique(flat).to_pylist())
        ids = pc.index_in(flat, value_set=pa.array(names, pa.string()))
        unknown = ids.is_null().to_numpy(zero_copy_only=False)
        if unknown.any():
            bad = sorted(set(flat.filter(ids.is_null()).to_pylist()))
            rows = np.zeros(n, dtype=bool)
            rows[parents[unknown]] = True
            raise UnknownLabelError(
                f"Label name(s) {bad[:10]} at {_rows_with(rows)} are not in the label set "
                f"{names}. Fix the data, or add them to label_names."
            )
        ids_np = ids.to_numpy(zero_copy_only=False).astype(np.int64)
    elif kind == "ids":
        ids_np = flat if isinstance(flat, np.ndarray) else flat.to_numpy(zero_copy_only=False)
        if isinstance(ids_np, np.ndarray) and ids_np.dtype == object:  # nulls inside lists
            raise DataFormatError("A list of label ids contains nulls; remove them.")
        ids_np = np.asarray(ids_np, dtype=np.int64)
        size = len(names) if names is not None else num_labels
        if size is None:
            size = int(ids_np.max()) + 1 if ids_np.size else 0
        if names is not None and num_labels is not None and num_labels != len(names):
            raise UnknownLabelError(f"num_labels={num_labels} but {len(names)} label_names given.")
        out = (ids_np < 0) | (ids_np >= size)
        if out.any():
            rows = np.zeros(n, dtype=bool)
            rows[parents[out]] = True
            raise UnknownLabelError(
                f"Label id {int(ids_np[out][0])} at {_rows_with(rows)} is outside [0, {size}) "
                "(the label set). Fix the data, or pass the full label_names/num_labels."
            )
        names = names if names is not None else [str(i) for i in range(size)]
    else:
        raise EnergizerError(f"Unknown kind {kind!r}.")
    matrix = np.zeros((n, len(names)), dtype=np.uint8)
    matrix[parents, ids_np] = 1
    _check_empty(matrix, allow_empty)
    return matrix, names


def _check_empty(matrix: np.ndarray, allow_empty: bool) -> None:
    if allow_empty or matrix.shape[0] == 0:
        return
    empty = ~matrix.any(1)
    if empty.any():
        raise EmptyLabelSetError(
            f"{_rows_with(empty)} has no label. Give every row at least one label, or pass "
            "allow_empty=True if the label set permits 'none'."
        )


def _from_matrix(
    m: np.ndarray, names: list[str] | None, num_labels: int | None, allow_empty: bool
) -> tuple[np.ndarray, list[str]]:
    if m.dtype != bool and not (
        np.issubdtype(m.dtype, np.integer) or np.issubdtype(m.dtype, np.floating)
    ):
        raise DataFormatError(f"A multi-hot matrix must be numeric, got dtype {m.dtype}.")
    size = (
        len(names) if names is not None else (num_labels if num_labels is not None else m.shape[1])
    )
    if m.shape[1] != size:
        raise DataFormatError(
            f"Multi-hot rows have {m.shape[1]} entries but the label set has {size} labels."
        )
    bad = ~((m == 0) | (m == 1))
    if bad.any():
        raise DataFormatError(
            f"Multi-hot values must be 0 or 1: {_rows_with(bad.any(1))} has {m[bad][0]!r}."
        )
    matrix = m.astype(np.uint8)
    _check_empty(matrix, allow_empty)
    return matrix, names if names is not None else [str(i) for i in range(size)]


def _from_list_matrix(
    arr: Any, names: list[str] | None, num_labels: int | None, allow_empty: bool
) -> tuple[np.ndarray, list[str]]:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_fixed_size_list(arr.type):
        width = arr.type.list_size
        lengths = np.full(len(arr), width, dtype=np.int64)
    elif pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
        width = int(lengths.max()) if lengths.size else 0
    else:
        raise DataFormatError(f"kind='multi_hot' needs list rows, got Arrow type {arr.type}.")
    size = len(names) if names is not None else (num_labels if num_labels is not None else width)
    wrong = lengths != size
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise DataFormatError(
            f"Multi-hot {_rows_with(wrong)} has {int(lengths[i])} entries; the label set has "
            f"{size} labels."
        )
    flat = pc.list_flatten(arr)
    if flat.null_count:
        raise DataFormatError("Multi-hot rows contain nulls; use 0 for absent labels.")
    values = flat.to_numpy(zero_copy_only=False).reshape(len(arr), size)
    return _from_matrix(values, names, size, allow_empty)


def multilabel_column(
    dataset: Any,
    column: str,
    *,
    label_names: Sequence[str] | None = None,
    kind: Kind = "auto",
    sep: str = ";",
    allow_empty: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """The multi-hot matrix of a ``datasets.Dataset`` column, read from Arrow directly.

    A ``Sequence(ClassLabel)`` column gives the label names when ``label_names`` is not
    given. The dataset's indices mapping (after ``select``/``shuffle``) is respected.

    Args:
        dataset: a ``datasets.Dataset``.
        column: the label column.
        label_names: the label set, in id order.
        kind: the form of the column (see :func:`to_multi_hot`).
        sep: separator of joined names.
        allow_empty: accept rows with no label.

    Returns:
        ``(matrix, names)`` as :func:`to_multi_hot`.

    >>> import datasets
    >>> ds = datasets.Dataset.from_dict({"labels": ["a;b", "b"]})
    >>> multilabel_column(ds, "labels")[0].tolist()
    [[1, 1], [0, 1]]
    """
    if column not in dataset.column_names:
        raise ColumnNotFoundError(
            f"Column '{column}' is not in the dataset (columns: {dataset.column_names})."
        )
    col = dataset.data.column(column)
    indices = getattr(dataset, "_indices", None)
    if indices is not None:
        col = col.take(indices.column(0))
    feature = dataset.features[column]
    inner = getattr(feature, "feature", None)
    if label_names is None and inner is not None and hasattr(inner, "names"):
        label_names = list(inner.names)
    elif label_names is None and hasattr(feature, "names"):  # a single-label ClassLabel
        label_names = list(feature.names)
    return to_multi_hot(
        col,
        label_names=label_names,
        kind=kind,
        sep=sep,
        allow_empty=allow_empty,
    )
