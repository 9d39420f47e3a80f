"""A round as a dataset, and back: :func:`build_round_dataset` and :func:`rebuild_pool_state`.

The labelled set after round ``r`` is every row labelled in rounds ``0..r``. As a
``datasets.Dataset`` it has the columns ``pool_id``, the pool's input columns, ``label``
(a ``ClassLabel`` when the class names are known), ``label_name``, ``round``, ``split``
(``train``/``validation``), ``label_source`` and ``score``; its ``info.description`` holds
the round's metadata (``{"energizer_hf": {...}}``: pool fingerprint, round, run id, ...),
which :func:`rebuild_pool_state` checks before labelling a pool from it.

>>> import numpy as np
>>> from energizer_hf.pool import ActivePool
>>> pool = ActivePool([(np.zeros(2), 0)] * 4)
>>> pool.label([1, 3], [0, 1], round=0)
>>> ds = build_round_dataset(pool, 0, label_names=["a", "b"])
>>> ds["pool_id"][:], ds["label_name"][:]
([1, 3], ['a', 'b'])
>>> fresh = ActivePool([(np.zeros(2), 0)] * 4)
>>> rebuild_pool_state(fresh, ds).tolist()
[1, 3]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from energizer_hf.errors import DatasetMismatchError
from energizer_hf.pool import VALIDATION, ActivePool
from energizer_hf.run import META_KEY, round_tag

__all__ = [
    "FORMAT_VERSION",
    "RESERVED_COLUMNS",
    "build_round_dataset",
    "dataset_meta",
    "jsonable",
    "quiet_datasets",
    "rebuild_pool_state",
    "scores_of",
    "set_dataset_meta",
]

FORMAT_VERSION = 1
RESERVED_COLUMNS = ("pool_id", "label", "label_name", "round", "split", "label_source", "score")


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON data (NumPy scalars as numbers, anything else by its ``repr``)."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else repr(o)))


def dataset_meta(ds: Any) -> dict[str, Any]:
    """The ``energizer_hf`` metadata stored in a round dataset's info description."""
    desc = ds.info.description or ""
    try:
        data = json.loads(desc)
    except (TypeError, ValueError):
        return {}
    meta = data.get(META_KEY) if isinstance(data, dict) else None
    return meta if isinstance(meta, dict) else {}


def set_dataset_meta(ds: Any, meta: Mapping[str, Any]) -> None:
    """Store ``meta`` as the round dataset's ``energizer_hf`` metadata."""
    ds.info.description = json.dumps({META_KEY: jsonable(dict(meta))}, sort_keys=True)


class quiet_datasets:
    """Silence ``datasets`` progress bars inside the block (restored afterwards)."""

    def __enter__(self) -> None:
        import datasets

        self._was = datasets.is_progress_bar_enabled()
        if self._was:
            datasets.disable_progress_bars()

    def __exit__(self, *exc: object) -> None:
        import datasets

        if self._was:
            datasets.enable_progress_bars()


def scores_of(records: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    """Acquisition scores of queried ids, when the records carry them (``queried_scores``)."""
    scores: dict[int, float] = {}
    for rec in records:
        ids, values = rec.get("queried_ids"), rec.get("queried_scores")
        if ids and values and len(ids) == len(values):
            scores.update({int(i): float(v) for i, v in zip(ids, values) if v is not None})
    return scores


def build_round_dataset(
    pool: ActivePool,
    round: int,
    *,
    label_names: Sequence[str] | None = None,
    label_source: str = "dataset",
    scores: Mapping[int, float] | None = None,
    drop_columns: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> Any:
    """The labelled subset of ``pool`` as it was after round ``round`` (rows of rounds ``0..round``).

    Columns: ``pool_id``, the input columns of ``pool.dataset`` (selected with
    ``Dataset.select``; ``drop_columns`` and reserved names left out), ``label`` (a
    ``ClassLabel`` when ``label_names`` are known), ``label_name``, ``round``, ``split``
    (``train``/``validation``), ``label_source`` and ``score`` (``None`` when unknown).
    ``metadata`` is stored, with the pool fingerprint, in the dataset's info.
    """
    import datasets

    state = pool.state
    rounds = np.asarray(state["round"])
    ids = np.flatnonzero((rounds >= 0) & (rounds <= round)).astype(np.int64)
    labels = np.asarray(state["label"])[ids].astype(np.int64)
    names = list(label_names) if label_names is not None else None
    scores = scores or {}
    label_feature: Any = datasets.Value("int64")
    if names is not None and len(names) > 0 and (labels < len(names)).all():
        label_feature = datasets.ClassLabel(names=names)
    head = datasets.Dataset.from_dict(
        {"pool_id": ids.tolist()}, features=datasets.Features({"pool_id": datasets.Value("int64")})
    )
    tail = datasets.Dataset.from_dict(
        {
            "label": labels.tolist(),
            "label_name": [
                names[v]
                if names is not None and 0 <= v < len(names)
                else (None if v < 0 else str(v))
                for v in labels.tolist()
            ],
            "round": rounds[ids].astype(np.int64).tolist(),
            "split": np.where(
                np.asarray(state["split"])[ids] == VALIDATION, "validation", "train"
            ).tolist(),
            "label_source": [label_source] * len(ids),
            "score": [scores.get(int(i)) for i in ids.tolist()],
        },
        features=datasets.Features(
            {
                "label": label_feature,
                "label_name": datasets.Value("string"),
                "round": datasets.Value("int64"),
                "split": datasets.Value("string"),
                "label_source": datasets.Value("string"),
                "score": datasets.Value("float64"),
            }
        ),
    )
    parts = [head]
    skip = set(RESERVED_COLUMNS) | set(drop_columns)
    store = getattr(pool, "label_store", None)
    task_columns = store.round_columns(ids) if store is not None and hasattr(store, "round_columns") else None
    if task_columns is not None:  # tags / label sets as given, in place of the dataset's column
        skip |= set(task_columns[0])
        tail = tail.remove_columns(["label", "label_name"])
    inputs = [c for c in pool.column_names if c not in skip]
    if inputs:
        parts.append(pool.dataset.select(ids).select_columns(inputs))
    if task_columns is not None:
        parts.append(datasets.Dataset.from_dict(task_columns[0], features=datasets.Features(task_columns[1])))
    parts.append(tail)
    ds = datasets.concatenate_datasets(parts, axis=1) if len(parts) > 1 else head
    meta = {
        "format": FORMAT_VERSION,
        "round": int(round),
        "tag": round_tag(round),
        "num_rows": len(ids),
        "pool_fingerprint": pool.fingerprint,
        "pool_rows": len(pool),
        **(store.card_meta() if task_columns is not None and hasattr(store, "card_meta") else {}),
        **dict(metadata or {}),
    }
    set_dataset_meta(ds, meta)
    return ds


def rebuild_pool_state(
    pool: ActivePool,
    revision_dataset: Any,
    *,
    fingerprint: str | None = None,
    check_rows: int = 32,
) -> np.ndarray:
    """Label ``pool`` from a stored round (its ``pool_id``, ``label``, ``round``, ``split``).

    The round's pool fingerprint (from the dataset's metadata, or ``fingerprint=``) must match
    ``pool.fingerprint``, and up to ``check_rows`` rows of the stored input columns must equal
    the pool's. Labels the pool already has must agree with the revision; the others are
    added round by round. Returns the labelled pool ids (ascending).

    Raises:
        DatasetMismatchError: another dataset (fingerprint, size or content), or conflicting labels.
    """
    meta = dataset_meta(revision_dataset)
    stored = fingerprint or meta.get("pool_fingerprint")
    if not stored:
        raise DatasetMismatchError(
            "The revision carries no pool fingerprint (load it with energizer_hf.revisions.load_round, "
            "or pass fingerprint=...), so it cannot be checked against this pool."
        )
    if stored != pool.fingerprint:
        raise DatasetMismatchError(
            f"The revision was made from another dataset (fingerprint {stored}; this pool has "
            f"{pool.fingerprint}). Resume with the dataset the run was made with."
        )
    cols = revision_dataset.column_names
    store = getattr(pool, "label_store", None)
    if store is not None and hasattr(store, "from_round_columns"):
        return _rebuild_task_labels(pool, revision_dataset, store, check_rows)
    missing = [c for c in ("pool_id", "label", "round") if c not in cols]
    if missing:
        raise DatasetMismatchError(
            f"The revision has no column(s) {missing}; it is not a round snapshot."
        )
    ids = np.asarray(revision_dataset["pool_id"][:], dtype=np.int64)
    labels = np.asarray(revision_dataset["label"][:], dtype=np.int64)
    rounds = np.asarray(revision_dataset["round"][:], dtype=np.int64)
    val = (
        np.asarray(revision_dataset["split"][:]) == "validation"
        if "split" in cols
        else np.zeros(len(ids), dtype=bool)
    )
    if ids.size and (ids.min() < 0 or ids.max() >= len(pool)):
        raise DatasetMismatchError(
            f"The revision has pool ids outside [0, {len(pool)}): it belongs to another dataset."
        )
    _check_rows(pool, revision_dataset, ids, check_rows)
    state = pool.state
    have = np.asarray(state["round"])[ids] >= 0
    extra = np.setdiff1d(pool.labelled_ids, ids)
    conflict = have & (
        (np.asarray(state["label"])[ids] != labels) | (np.asarray(state["round"])[ids] != rounds)
    )
    if extra.size or conflict.any():
        raise DatasetMismatchError(
            f"The pool already has labels that differ from the revision ({int(extra.size)} ids not in "
            f"it, {int(conflict.sum())} with another label or round): start from an unlabelled pool "
            "(a new run directory)."
        )
    todo = ~have
    for r in np.unique(rounds[todo]):
        sel = todo & (rounds == r)
        pool.label(ids[sel], labels[sel], round=int(r), validation=val[sel])
    return np.sort(ids)


def _rebuild_task_labels(pool: ActivePool, ds: Any, store: Any, check_rows: int) -> np.ndarray:
    """:func:`rebuild_pool_state` for a task whose labels live in the pool's store."""
    values = store.from_round_columns(ds)
    if values is None or "pool_id" not in ds.column_names or "round" not in ds.column_names:
        raise DatasetMismatchError(
            f"The revision has no pool_id, round or '{getattr(store, 'column', 'labels')}' column: it is not a "
            "round snapshot of this task."
        )
    ids = np.asarray(ds["pool_id"][:], dtype=np.int64)
    rounds = np.asarray(ds["round"][:], dtype=np.int64)
    val = np.asarray(ds["split"][:]) == "validation" if "split" in ds.column_names else np.zeros(len(ids), dtype=bool)
    if ids.size and (ids.min() < 0 or ids.max() >= len(pool)):
        raise DatasetMismatchError(f"The revision has pool ids outside [0, {len(pool)}): it belongs to another dataset.")
    _check_rows(pool, ds.remove_columns([getattr(store, "column", "labels")]) if getattr(store, "column", None) in ds.column_names else ds, ids, check_rows)
    have = np.asarray(pool.state["round"])[ids] >= 0
    extra = np.setdiff1d(pool.labelled_ids, ids)
    if extra.size or (have & (np.asarray(pool.state["round"])[ids] != rounds)).any():
        raise DatasetMismatchError(
            "The pool already has labels that differ from the revision: start from an unlabelled pool (a new run directory)."
        )
    todo = ~have
    for r in np.unique(rounds[todo]):
        sel = np.flatnonzero(todo & (rounds == r))
        payload = values[sel] if isinstance(values, np.ndarray) else [values[i] for i in sel.tolist()]
        pool.label(ids[sel], payload, round=int(r), validation=val[sel])
    return np.sort(ids)


def _check_rows(pool: ActivePool, ds: Any, ids: np.ndarray, n: int) -> None:
    if not ids.size or n <= 0 or not pool.is_arrow:
        return
    common = [c for c in ds.column_names if c not in RESERVED_COLUMNS and c in pool.column_names]
    if not common:
        return
    pos = np.unique(np.linspace(0, ids.size - 1, num=min(n, ids.size)).astype(np.int64))
    mine = pool.dataset.select(ids[pos].tolist()).select_columns(common)[:]
    theirs = ds.select(pos.tolist()).select_columns(common)[:]
    if mine != theirs:
        raise DatasetMismatchError(
            "The revision's rows do not match the pool's rows with the same pool ids: it was made "
            "from another dataset (or another order of it)."
        )
