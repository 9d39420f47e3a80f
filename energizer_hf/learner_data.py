"""Loading a run's data and encoding its labels: a Hub name, a local file or a split->file
mapping to a ``DatasetDict``; raw labels to class ids with names (re-exported by
:mod:`energizer_hf.learner`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from energizer_hf.errors import EnergizerError, LabelMismatchError

__all__ = ["check_split_labelled", "encode_labels", "encode_with_names", "load_data"]


# ---------------------------------------------------------------------- data loading
_CONLL_EXTS = {".conll", ".conllu", ".bio", ".iob", ".iob2"}



_FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}



def _file_kwargs(ext: str, encoding: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"delimiter": "\t"} if ext == ".tsv" else {}
    if ext in (".csv", ".tsv", ".json", ".jsonl"):
        kwargs["encoding"] = encoding
    return kwargs



def _check_local_file(path: str | os.PathLike, encoding: str) -> None:
    """A local data file must exist and (text formats) be readable in ``encoding``; a URL
    (``https://``, ``hf://``, ``s3://``...) is left to ``datasets``."""
    from energizer_hf.checks import check_path_exists, check_text_encoding

    if "://" in os.fspath(path):
        return
    check_path_exists(path, "data file")
    if Path(path).suffix.lower() in (".csv", ".tsv", ".json", ".jsonl"):
        check_text_encoding(path, encoding)



def load_data(
    dataset: str | None,
    dataset_config: str | None = None,
    data_files: dict[str, str] | None = None,
    *,
    encoding: str = "utf-8",
) -> Any:
    """Load a ``DatasetDict`` from a hub name, a local file, a split→file mapping or a
    ``save_to_disk`` directory.

    Raises:
        PathNotFoundError: a local file that does not exist (not a malformed Hub id).
        DataEncodingError: a text file with bytes that are not ``encoding`` (line and
            column named).
    """
    import datasets

    if data_files and {Path(f).suffix.lower() for f in data_files.values()} <= _CONLL_EXTS:
        from energizer_hf.formats.conll import load_conll

        return load_conll(dict(data_files))
    if data_files:
        exts = {Path(f).suffix.lower() for f in data_files.values()}
        if len(exts) != 1 or next(iter(exts)) not in _FILE_BUILDERS:
            raise EnergizerError(
                f"data_files must all be CSV, TSV, JSON(L) or parquet files of one kind, got {sorted(exts)}."
            )
        for f in data_files.values():
            _check_local_file(f, encoding)
        ext = next(iter(exts))
        return datasets.load_dataset(
            _FILE_BUILDERS[ext], data_files=dict(data_files), **_file_kwargs(ext, encoding)
        )
    if not dataset:
        raise EnergizerError("No dataset given: set `dataset` (a hub name or a local path) or `data_files`.")
    path = Path(dataset)
    if path.is_dir() and (
        (path / "dataset_dict.json").exists() or (path / "state.json").exists() or (path / "dataset_info.json").exists()
    ):
        return datasets.load_from_disk(str(path))
    if path.is_file() and path.suffix.lower() in _CONLL_EXTS:
        from energizer_hf.formats.conll import load_conll

        return load_conll({"train": str(path)})
    if path.is_file():
        ext = path.suffix.lower()
        if ext not in _FILE_BUILDERS:
            raise EnergizerError(
                f"Cannot read '{path}': use a .csv, .tsv, .json, .jsonl or .parquet file, or a save_to_disk directory."
            )
        _check_local_file(path, encoding)
        return datasets.load_dataset(
            _FILE_BUILDERS[ext], data_files={"train": str(path)}, **_file_kwargs(ext, encoding)
        )
    from energizer_hf.checks import _looks_like_path, check_path_exists

    if _looks_like_path(dataset):  # a local path with a typo, not a Hub id
        check_path_exists(dataset, "dataset")
    try:
        return datasets.load_dataset(dataset, dataset_config)
    except Exception as err:
        from energizer_hf.scrub import scrub

        text = f"{err}"
        if scrub(text) != text or scrub(dataset) != dataset:  # a token pasted into the name/URL
            raise EnergizerError(
                f"Could not load the dataset {scrub(dataset)!r}: {type(err).__name__}: {scrub(text)} "
                "(credentials masked: give tokens through HF_TOKEN or `hf auth login`, not in the name)."
            ) from None
        raise



def encode_labels(
    pool_labels: Any, test_labels: Any = None, feature: Any = None, names: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Map raw labels (ints, strings or a ``ClassLabel``) to ids ``0..C-1`` with names.

    ``names`` (the ``label_names`` setting) names the classes: integer labels are class ids
    into it (``names=["neg", "pos"]`` on 0/1 labels), string labels must be among them (ids
    follow their order). Without ``names``, a ``ClassLabel`` gives its names, ids
    ``0..C-1`` are named ``"0"...``, and other values are sorted.

    Returns ``(names, pool_ids, test_ids)``.

    Raises:
        ClassNotInPoolError: a test class that never occurs in the pool (a
            :class:`~energizer_hf.errors.LabelMismatchError`).
        LabelMismatchError: missing labels, ``names`` that differ from a ``ClassLabel``'s,
            or ``names`` whose length does not match the integer ids.

    >>> encode_labels([0, 1, 1], names=["neg", "pos"])[0]
    ['neg', 'pos']
    """
    names_from_feature = getattr(feature, "names", None)
    pool = np.asarray(pool_labels)
    test = None if test_labels is None else np.asarray(test_labels)
    if test is not None and not (pool.dtype == object and any(v is None for v in pool.tolist())):
        from energizer_hf.checks import check_test_classes

        check_test_classes(pool, test, names=names_from_feature)
    for arr, where in ((pool, "pool"), (test, "test split")):
        if arr is not None and arr.dtype == object and any(v is None for v in arr.tolist()):
            raise LabelMismatchError(
                f"The {where} has rows without a label; drop them or fill the label column."
            )
    if names is not None:
        return _encode_named(pool, test, names_from_feature, [str(n) for n in names])
    if names_from_feature is not None:
        names = list(names_from_feature)
        return names, pool.astype(np.int64), None if test is None else test.astype(np.int64)
    values = pool if test is None else np.concatenate([pool, test])
    classes = np.unique(values)
    if np.issubdtype(classes.dtype, np.integer) and classes.min() >= 0 and np.array_equal(
        classes, np.arange(classes.max() + 1)
    ):
        names = [str(c) for c in classes.tolist()]
        return names, pool.astype(np.int64), None if test is None else test.astype(np.int64)
    pool_classes = np.unique(pool)
    if test is not None:
        unseen = np.setdiff1d(np.unique(test), pool_classes)
        if unseen.size:
            raise LabelMismatchError(
                f"The test split has labels that never occur in the pool: {unseen[:10].tolist()}."
            )
    names = [str(c) for c in pool_classes.tolist()]
    pool_ids = np.searchsorted(pool_classes, pool).astype(np.int64)
    test_ids = None if test is None else np.searchsorted(pool_classes, test).astype(np.int64)
    return names, pool_ids, test_ids



def _encode_named(
    pool: np.ndarray, test: np.ndarray | None, feature_names: Sequence[str] | None, names: list[str]
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """:func:`encode_labels` with the class names given (``label_names``)."""
    if len(set(names)) != len(names):
        raise LabelMismatchError(f"label_names has duplicated names: {names}. Give each class once.")
    if feature_names is not None:
        if list(feature_names) != names:
            raise LabelMismatchError(
                f"label_names {names} do not match the dataset's ClassLabel names {list(feature_names)}: "
                "leave label_names out (the ClassLabel names are used) or give the same names in the same order."
            )
        return names, pool.astype(np.int64), None if test is None else test.astype(np.int64)
    values = pool if test is None else np.concatenate([pool, test])
    if values.dtype.kind in "iu" or (values.dtype.kind == "f" and np.all(np.mod(values, 1) == 0)):
        top = int(values.max()) if values.size else -1
        if values.size and int(values.min()) < 0:
            raise LabelMismatchError(f"Label ids must be >= 0 to be named by label_names; got {int(values.min())}.")
        if top + 1 != len(names):
            raise LabelMismatchError(
                f"label_names has {len(names)} names ({', '.join(names[:10])}) but the labels are class ids "
                f"0..{top} ({top + 1} classes): give one name per class id, in id order."
            )
        return names, pool.astype(np.int64), None if test is None else test.astype(np.int64)
    pool_ids = encode_with_names(pool, names)
    test_ids = None if test is None else encode_with_names(test, names)
    return names, pool_ids, test_ids



def check_split_labelled(values: Any, split: str, feature: Any = None) -> None:
    """Refuse a split whose labels are all ``-1`` (a GLUE-style test split: the labels are
    withheld), or with some ``-1`` rows in a ``ClassLabel`` column.

    Raises:
        UnlabelledSplitError: saying which split to use instead.

    >>> check_split_labelled(np.array([0, 1]), "test")
    """
    from energizer_hf.errors import UnlabelledSplitError

    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        return
    missing = arr < 0
    if missing.all():
        raise UnlabelledSplitError(
            f"The '{split}' split has no labels (every label is {int(arr.flat[0])}, as in GLUE-style test "
            f"splits whose labels are withheld): it cannot measure anything. Test on a split with labels "
            f"(test_split: validation) or on none (test_split: '')."
        )
    if missing.any() and getattr(feature, "names", None) is not None:
        raise UnlabelledSplitError(
            f"{int(missing.sum())} of {arr.size} rows of the '{split}' split have no label (-1): drop them "
            f"(dataset['{split}'].filter(lambda r: r['label'] >= 0)) or use another split."
        )



def encode_with_names(values: Any, names: list[str], feature: Any = None) -> np.ndarray:
    """Label ids of ``values`` for the given class ``names`` (strings by name, ints or a
    ``ClassLabel`` as ids).

    Raises:
        LabelMismatchError: a name that is not a class, an id out of range, or a
            ``ClassLabel`` with other names.
    """
    feature_names = getattr(feature, "names", None)
    if feature_names is not None and list(feature_names) != list(names):
        raise LabelMismatchError(
            f"The split's ClassLabel names {list(feature_names)} differ from the classes {list(names)}."
        )
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        bad = arr[(arr < 0) | (arr >= len(names))]
        if bad.size:
            raise LabelMismatchError(f"Label ids {sorted(set(bad.tolist()))[:10]} are not in 0..{len(names) - 1}.")
        return arr.astype(np.int64)
    index = {str(n): i for i, n in enumerate(names)}
    unknown = sorted({str(v) for v in arr.tolist()} - set(index))
    if unknown:
        raise LabelMismatchError(f"Labels {unknown[:10]} are not among the classes {list(names)}.")
    return np.fromiter((index[str(v)] for v in arr.tolist()), dtype=np.int64, count=arr.size)



def datasets_value(dtype: str) -> Any:
    """A ``datasets.Value`` feature (imported when needed)."""
    import datasets

    return datasets.Value(dtype)
