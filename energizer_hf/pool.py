"""The active pool: a dataset plus its label state, kept as memory-mapped index columns.

The data itself is never copied: views are zero-copy selections (``Dataset.select`` on an
Arrow dataset, :class:`torch.utils.data.Subset` on a map-style torch dataset). The label
state is three columns, one entry per row of the original dataset (the *pool id*):

* ``round``: the round in which the row was labelled, ``-1`` while unlabelled;
* ``split``: ``0`` for training, ``1`` for validation (meaningful once labelled);
* ``label``: the label id given by the annotator, ``-1`` when unknown (e.g. when a torch
  dataset carries its own labels).

They are stored together in one ``label_state.npy`` file that is opened memory-mapped
read-only and replaced atomically (write a new file, fsync, rename) by every
:meth:`ActivePool.label` call, so a crash at any instant leaves the previous complete state
on disk.

Tasks whose labels are not one integer per row (per-token tags, multi-hot label sets)
give the pool a ``label_store`` (see :mod:`energizer_hf.tasks`): :meth:`ActivePool.label`
writes the labels to it first, then marks the ids labelled in the state (``label`` 0:
"in the store"), so a crash in between leaves harmless extra labels in the store, never a
labelled id without its labels.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from energizer_hf.errors import (
    DatasetMismatchError,
    EmptyPoolError,
    EnergizerError,
    InvalidIdsError,
)
from energizer_hf.functional.primitives import allocate
from energizer_hf.run import POOL_META_FILE, POOL_STATE_FILE
from energizer_hf.utils import atomic_save_npy, atomic_write_json, dataset_fingerprint

__all__ = ["ActivePool", "STATE_DTYPE"]

STATE_DTYPE = np.dtype([("round", "<i4"), ("split", "i1"), ("label", "<i8")])
TRAIN, VALIDATION = 0, 1
_STATE_FILE = POOL_STATE_FILE
_META_FILE = POOL_META_FILE
_FORMAT_VERSION = 1


def _is_hf_dataset(obj: Any) -> bool:
    return hasattr(obj, "select") and hasattr(obj, "features") and hasattr(obj, "column_names")


class ActivePool:
    """A dataset with memory-mapped label state and zero-copy views.

    Args:
        dataset: a ``datasets.Dataset`` or any map-style torch dataset (``__len__`` and
            ``__getitem__``). Pool ids are its row indices.
        state_dir: where the label state lives. When it already holds a state, that state
            is resumed after checking that it belongs to this dataset. ``None`` keeps the
            state in memory (for quick experiments; nothing survives a crash).
        fingerprint: overrides the content fingerprint computed from ``dataset``.

    Example:
        >>> import datasets
        >>> ds = datasets.Dataset.from_dict({"text": list("abcdef"), "label": [0, 1] * 3})
        >>> pool = ActivePool(ds)
        >>> pool.label([0, 3], labels=[0, 1], round=0)
        >>> pool.num_labelled, len(pool.unlabelled)
        (2, 4)
    """

    def __init__(
        self,
        dataset: Any,
        state_dir: str | Path | None = None,
        *,
        fingerprint: str | None = None,
        label_store: Any = None,
    ) -> None:
        if dataset is None or not hasattr(dataset, "__len__"):
            raise EnergizerError(
                "ActivePool needs a datasets.Dataset or a map-style torch dataset "
                f"(with __len__ and __getitem__), got {type(dataset).__name__}."
            )
        if len(dataset) == 0:
            raise EmptyPoolError(
                "The dataset given to the pool has no rows: pass a dataset (or split) with at "
                "least one example."
            )
        if state_dir is not None:  # a file, or a folder that cannot be written: named now
            from energizer_hf.checks import check_run_dir

            check_run_dir(state_dir)
        self.dataset = dataset
        self.fingerprint = fingerprint or dataset_fingerprint(dataset)
        self.state_dir = Path(state_dir) if state_dir is not None else None
        # A read-only pool (a non-zero rank of a distributed run) reads the state from disk
        # but keeps its changes in memory; rank 0 writes the same changes to disk.
        self.read_only = False
        # the labels of tasks that are not one integer per row (tasks/): opened with the state
        self.label_store = label_store
        self._state: np.ndarray
        if self.label_store is not None:
            self.label_store.open(self.state_dir, fingerprint=self.fingerprint, read_only=False)
        if self.state_dir is not None and (self.state_dir / _STATE_FILE).exists():
            self._resume()
        else:
            self._state = np.empty(len(dataset), dtype=STATE_DTYPE)
            self._state["round"] = -1
            self._state["split"] = TRAIN
            self._state["label"] = -1
            if self.state_dir is not None:
                self._write(self._state)

    # ------------------------------------------------------------------ persistence
    def _meta(self) -> dict:
        return {
            "format_version": _FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "num_rows": len(self.dataset),
        }

    def _write(self, new_state: np.ndarray) -> None:
        """Persist ``new_state`` atomically, then memory-map it read-only."""
        if self.state_dir is None or self.read_only:
            self._state = new_state
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        meta_path = self.state_dir / _META_FILE
        if not meta_path.exists():
            atomic_write_json(meta_path, self._meta())
        atomic_save_npy(self.state_dir / _STATE_FILE, new_state)
        self._state = np.load(self.state_dir / _STATE_FILE, mmap_mode="r")

    def _resume(self) -> None:
        assert self.state_dir is not None
        import json

        meta_path = self.state_dir / _META_FILE
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        saved_fp, saved_rows = meta.get("fingerprint"), meta.get("num_rows")
        if saved_fp != self.fingerprint or saved_rows != len(self.dataset):
            raise DatasetMismatchError(
                f"The label state in '{self.state_dir}' belongs to another dataset "
                f"(saved fingerprint {saved_fp}, {saved_rows} rows; this dataset has "
                f"fingerprint {self.fingerprint}, {len(self.dataset)} rows). Resume with the "
                "same dataset, or start a new run directory."
            )
        state = np.load(self.state_dir / _STATE_FILE, mmap_mode="r")
        if state.dtype != STATE_DTYPE or state.shape != (len(self.dataset),):
            raise DatasetMismatchError(
                f"The label state file in '{self.state_dir}' has dtype {state.dtype} and "
                f"shape {state.shape}, expected {STATE_DTYPE} and ({len(self.dataset)},): it "
                "was not written by this version of energizer_hf or for this dataset."
            )
        self._state = state

    def attach(self, state_dir: str | Path) -> None:
        """Persist the state under ``state_dir`` from now on.

        If ``state_dir`` already holds a state for this dataset, that state is resumed and
        replaces the in-memory one (labels given in memory before are only kept when the
        directory has none); otherwise the current state is written there.
        """
        state_dir = Path(state_dir)
        if self.state_dir is not None and self.state_dir.resolve() == state_dir.resolve():
            return
        self.state_dir = state_dir
        if self.label_store is not None:
            self.label_store.open(state_dir, fingerprint=self.fingerprint, read_only=self.read_only)
        if (state_dir / _STATE_FILE).exists():
            in_memory = np.array(self._state, copy=True)
            self._resume()
            if (in_memory["round"] >= 0).any() and not np.array_equal(in_memory, self._state):
                warnings.warn(
                    f"'{state_dir}' already holds a label state; it is resumed and the labels "
                    "given in memory before are ignored.",
                    stacklevel=2,
                )
        else:
            self._write(np.array(self._state, copy=True))

    @staticmethod
    def has_state(state_dir: str | Path) -> bool:
        """Whether ``state_dir`` holds a saved label state."""
        return (Path(state_dir) / _STATE_FILE).exists()

    # ------------------------------------------------------------------ state access
    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def is_arrow(self) -> bool:
        """Whether the pool is a ``datasets.Dataset`` (named columns, Arrow rows)."""
        return _is_hf_dataset(self.dataset)

    @property
    def column_names(self) -> list[str]:
        """The dataset's columns (``[]`` for a map-style torch dataset)."""
        return list(self.dataset.column_names) if self.is_arrow else []

    @property
    def source_name(self) -> str | None:
        """The dataset's own name (``info.dataset_name`` or ``builder_name``), when it has one."""
        info = self.dataset.info if self.is_arrow else None
        for name in (info.dataset_name, info.builder_name) if info is not None else ():
            if name:
                return str(name)
        return None

    @property
    def state(self) -> np.ndarray:
        """The (read-only) label state: a structured array with round, split, label."""
        return self._state

    @property
    def rounds(self) -> np.ndarray:
        """Round in which each pool id was labelled, -1 when unlabelled."""
        return self._state["round"]

    @property
    def labels(self) -> np.ndarray:
        """Label given to each pool id, -1 when unlabelled or unknown."""
        return self._state["label"]

    @property
    def labelled_mask(self) -> np.ndarray:
        return self._state["round"] >= 0

    @property
    def num_labelled(self) -> int:
        return int(np.count_nonzero(self.labelled_mask))

    @property
    def num_unlabelled(self) -> int:
        return len(self) - self.num_labelled

    @property
    def last_round(self) -> int:
        """The highest round with a label, -1 when nothing is labelled."""
        return int(self._state["round"].max()) if len(self) else -1

    @property
    def train_ids(self) -> np.ndarray:
        """Pool ids labelled for training (not validation), ascending."""
        s = self._state
        return np.flatnonzero((s["round"] >= 0) & (s["split"] == TRAIN))

    @property
    def validation_ids(self) -> np.ndarray:
        """Pool ids labelled and held out for validation, ascending."""
        s = self._state
        return np.flatnonzero((s["round"] >= 0) & (s["split"] == VALIDATION))

    @property
    def labelled_ids(self) -> np.ndarray:
        """All labelled pool ids (training and validation), ascending."""
        return np.flatnonzero(self.labelled_mask)

    @property
    def unlabelled_ids(self) -> np.ndarray:
        """Pool ids without a label, ascending."""
        return np.flatnonzero(~self.labelled_mask)

    def ids_of_round(self, round: int) -> np.ndarray:
        return np.flatnonzero(self._state["round"] == round)

    # ------------------------------------------------------------------ views
    def view(self, ids: Sequence[int] | np.ndarray) -> Any:
        """A zero-copy view of the dataset restricted to ``ids`` (in that order)."""
        ids = np.asarray(ids, dtype=np.int64)
        if _is_hf_dataset(self.dataset):
            return self.dataset.select(ids)
        from torch.utils.data import Subset

        return Subset(self.dataset, ids.tolist())

    @property
    def labelled(self) -> Any:
        """Training part of the labelled data (zero-copy view)."""
        return self.view(self.train_ids)

    @property
    def validation(self) -> Any:
        """Validation part of the labelled data (zero-copy view)."""
        return self.view(self.validation_ids)

    @property
    def unlabelled(self) -> Any:
        """The rows still without a label (zero-copy view)."""
        return self.view(self.unlabelled_ids)

    # ------------------------------------------------------------------ labelling
    def check_ids(self, ids: Any, *, allow_labelled: bool = False) -> np.ndarray:
        """Validate pool ids and return them as an int64 array.

        Raises:
            InvalidIdsError: ids that are not integers, out of range, duplicated or (unless
                ``allow_labelled``) already labelled.
        """
        arr = np.asarray(ids)
        if arr.ndim != 1:
            arr = arr.reshape(-1)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
                arr = arr.astype(np.int64)
            else:
                raise InvalidIdsError(
                    f"Pool ids must be integers (row indices of the dataset), got dtype {arr.dtype}."
                )
        arr = arr.astype(np.int64, copy=False)
        bad = arr[(arr < 0) | (arr >= len(self))]
        if bad.size:
            raise InvalidIdsError(
                f"Pool ids out of range [0, {len(self)}): {bad[:10].tolist()}"
                + (" ..." if bad.size > 10 else "")
                + ". Pool ids are row indices of the original dataset."
            )
        uniq, counts = np.unique(arr, return_counts=True)
        if uniq.size != arr.size:
            raise InvalidIdsError(
                f"Duplicated pool ids: {uniq[counts > 1][:10].tolist()}. Each id can be labelled once."
            )
        if not allow_labelled:
            already = arr[self._state["round"][arr] >= 0]
            if already.size:
                raise InvalidIdsError(
                    f"Pool ids already labelled: {already[:10].tolist()}"
                    + (" ..." if already.size > 10 else "")
                    + ". Query only unlabelled ids (see ActivePool.unlabelled_ids)."
                )
        return arr

    def label(
        self,
        ids: Sequence[int] | np.ndarray,
        labels: Sequence[int] | np.ndarray | None = None,
        round: int | None = None,
        validation: Sequence[bool] | np.ndarray | None = None,
    ) -> None:
        """Label pool ids, atomically.

        Args:
            ids: unlabelled pool ids (row indices of the dataset).
            labels: label ids, one per id; ``None`` when the dataset carries its labels.
            round: the round to record; defaults to ``last_round + 1``.
            validation: a boolean per id: ``True`` puts the id in the validation split.

        Raises:
            InvalidIdsError: out-of-range, duplicated or already-labelled ids, or a
                ``labels``/``validation`` length that does not match ``ids``.
        """
        arr = self.check_ids(ids)
        if labels is not None and self.label_store is not None:
            # the task's labels (tags, label sets) go to its store first; the state says "known"
            self.label_store.set(arr, self.label_store.accept(labels, arr))
            labels = np.zeros(arr.size, dtype=np.int64)
        elif labels is not None:
            labels = np.asarray(labels, dtype=np.int64).reshape(-1)
            if labels.shape != arr.shape:
                raise InvalidIdsError(
                    f"Got {arr.size} ids but {labels.size} labels: pass one label per id."
                )
            if labels.size and labels.min() < -1:
                raise InvalidIdsError("Label ids must be >= 0 (or -1 for 'unknown').")
        if validation is not None:
            validation = np.asarray(validation, dtype=bool).reshape(-1)
            if validation.shape != arr.shape:
                raise InvalidIdsError(
                    f"Got {arr.size} ids but {validation.size} validation flags."
                )
        if round is None:
            round = max(self.last_round + 1, 0)
        if round < 0:
            raise InvalidIdsError(f"round must be >= 0, got {round}.")
        if arr.size == 0:
            return
        new_state = np.array(self._state, copy=True)  # copy-on-write: old file stays valid
        new_state["round"][arr] = round
        new_state["split"][arr] = TRAIN
        if validation is not None:
            new_state["split"][arr[validation]] = VALIDATION
        new_state["label"][arr] = -1 if labels is None else labels
        self._write(new_state)

    def rollback(self, after_round: int) -> np.ndarray:
        """Forget every label given in a round later than ``after_round``; returns their ids.

        Used on resume to drop labels whose round was not recorded as complete.
        """
        drop = np.flatnonzero(self._state["round"] > after_round)
        if drop.size:
            new_state = np.array(self._state, copy=True)
            new_state["round"][drop] = -1
            new_state["split"][drop] = TRAIN
            new_state["label"][drop] = -1
            self._write(new_state)
        return drop

    # ------------------------------------------------------------------ initial set
    def sample_initial(
        self,
        size: int,
        *,
        seed: int = 0,
        labels: np.ndarray | None = None,
    ) -> np.ndarray:
        """Choose ``size`` unlabelled ids for the initial labelled set.

        Random when ``labels`` is None; otherwise class-stratified: every class gets
        ``size // C`` ids (classes too small give what they have, and the remainder is
        drawn at random), which is how simulations usually build a balanced seed set.
        """
        if size <= 0:
            return np.empty(0, dtype=np.int64)
        candidates = self.unlabelled_ids
        if labels is not None and np.ndim(labels) == 2:  # multi-hot: rare labels first
            if size > candidates.size:
                raise EnergizerError(
                    f"Asked for an initial set of {size} but only {candidates.size} rows are "
                    "unlabelled: use a smaller initial size."
                )
            from energizer_hf.functional.multilabel import stratified_initial_set

            picked = stratified_initial_set(np.asarray(labels)[candidates], size, seed=seed)
            return np.sort(candidates[np.asarray(picked, dtype=np.int64)])
        if size > candidates.size:
            raise EnergizerError(
                f"Asked for an initial set of {size} but only {candidates.size} rows are "
                "unlabelled: use a smaller initial size."
            )
        rng = np.random.default_rng(seed)
        if labels is None:
            return np.sort(rng.choice(candidates, size=size, replace=False))
        labels = np.asarray(labels)[candidates]
        classes, counts = np.unique(labels, return_counts=True)
        per_class = size // len(classes)
        # an equal share per class (small classes give what they have); the rest is random
        takes = allocate(np.full(classes.size, per_class), per_class * classes.size, capacity=counts, refill=False)
        chosen: list[np.ndarray] = []
        for c, take in zip(classes, takes):
            members = candidates[labels == c]
            chosen.append(rng.choice(members, size=int(take), replace=False))
        picked = np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)
        remaining = size - picked.size
        if remaining:
            rest = np.setdiff1d(candidates, picked, assume_unique=True)
            picked = np.concatenate([picked, rng.choice(rest, size=remaining, replace=False)])
        return np.sort(picked.astype(np.int64))

    # ------------------------------------------------------------------ statistics
    def label_distribution(self, ids: np.ndarray | None = None) -> dict[int, int]:
        """Count of each known label among ``ids`` (default: all labelled ids)."""
        ids = self.labelled_ids if ids is None else np.asarray(ids, dtype=np.int64)
        if self.label_store is not None:  # per tag / per label of the task's store
            return self.label_store.distribution(ids)
        labels = self._state["label"][ids]
        labels = labels[labels >= 0]
        values, counts = np.unique(labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    def stats(self) -> dict[str, Any]:
        """Counts per round and per split, and the label distribution of labelled rows."""
        s = self._state
        labelled = s["round"] >= 0
        per_round = {}
        if labelled.any():
            rounds, counts = np.unique(s["round"][labelled], return_counts=True)
            per_round = {int(r): int(c) for r, c in zip(rounds, counts)}
        return {
            "num_rows": len(self),
            "num_labelled": int(labelled.sum()),
            "num_train": int((labelled & (s["split"] == TRAIN)).sum()),
            "num_validation": int((labelled & (s["split"] == VALIDATION)).sum()),
            "num_unlabelled": int((~labelled).sum()),
            "labelled_per_round": per_round,
            "label_distribution": self.label_distribution(),
        }

    def __repr__(self) -> str:
        return (
            f"ActivePool(rows={len(self)}, labelled={self.num_labelled}, "
            f"state_dir={str(self.state_dir) if self.state_dir else None!r})"
        )


def split_validation(
    ids: np.ndarray,
    labels: np.ndarray | None,
    fraction: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Boolean mask choosing ``round(fraction * len(ids))`` ids for validation.

    Stratified by label when labels are known and every class has at least two ids in
    ``ids``; random otherwise.
    """
    n = len(ids)
    mask = np.zeros(n, dtype=bool)
    if fraction <= 0 or n < 2:
        return mask
    n_val = int(round(fraction * n))
    n_val = min(max(n_val, 1), n - 1)
    if labels is not None and (labels >= 0).all():
        classes, counts = np.unique(labels, return_counts=True)
        if counts.min() >= 2 and n_val >= len(classes):
            # per class proportionally (at least one each), largest remainders first
            alloc = allocate(counts * n_val / n, n_val, minimum=1)
            for c, a in zip(classes, alloc):
                members = np.flatnonzero(labels == c)
                a = min(a, members.size - 1)
                mask[rng.choice(members, size=a, replace=False)] = True
            return mask
    mask[rng.choice(n, size=n_val, replace=False)] = True
    return mask


def warn_pool_exhausted(requested: int, available: int) -> None:
    from energizer_hf.errors import PoolExhaustedWarning

    warnings.warn(
        f"Only {available} unlabelled rows are left but {requested} were requested: this "
        "round labels what is left and the run stops after it.",
        PoolExhaustedWarning,
        stacklevel=3,
    )
