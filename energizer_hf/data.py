"""Data adapters: how the loop turns pool ids into DataLoaders.

* :class:`TorchDataAdapter` re-uses the user's own ``DataLoader`` settings (batch size,
  collate function, workers) over zero-copy subsets of a map-style dataset: the seed API.
* :class:`HFDataAdapter` works on a tokenized ``datasets.Dataset``: labels come from the
  pool's label state (what the annotator said), never from the dataset, and pool batches
  are built by length with dynamic padding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from energizer_hf.pool import ActivePool
from energizer_hf.scoring import plan_by_length

__all__ = ["HFDataAdapter", "LabelledRows", "LengthGroupedBatches", "TorchDataAdapter"]


def _loader_settings(dl: DataLoader) -> dict[str, Any]:
    return {
        "batch_size": dl.batch_size or 1,
        "collate_fn": dl.collate_fn,
        "num_workers": dl.num_workers,
        "pin_memory": dl.pin_memory,
    }


class TorchDataAdapter:
    """Build per-round loaders from the user's DataLoaders (seed API).

    Args:
        train_dataloader: its dataset is the pool; its settings are re-used.
        val_dataloader: fixed validation data; when ``None``, the pool's validation split
            (if any) is used.
        test_dataloader: fixed test data.
    """

    def __init__(
        self,
        train_dataloader: DataLoader,
        val_dataloader: DataLoader | None = None,
        test_dataloader: DataLoader | None = None,
    ) -> None:
        self.train_dataloader = train_dataloader
        self.val_dataloader = val_dataloader
        self.test_dataloader = test_dataloader
        self.settings = _loader_settings(train_dataloader)

    @property
    def dataset(self) -> Any:
        return self.train_dataloader.dataset

    def train_loader(self, pool: ActivePool, seed: int, ids: np.ndarray | None = None) -> DataLoader:
        generator = torch.Generator().manual_seed(seed)
        ids = pool.train_ids if ids is None else ids
        return DataLoader(
            Subset(self.dataset, ids.tolist()),
            shuffle=True,
            generator=generator,
            **self.settings,
        )

    def val_loader(self, pool: ActivePool) -> DataLoader | None:
        if self.val_dataloader is not None:
            return self.val_dataloader
        ids = pool.validation_ids
        if ids.size == 0:
            return None
        return DataLoader(Subset(self.dataset, ids.tolist()), shuffle=False, **self.settings)

    def test_loader(self) -> DataLoader | None:
        return self.test_dataloader

    # BatchSource: pool scoring in the dataset's order, with the user's collate function
    def plan(self, ids: np.ndarray, batch_size: int, max_tokens: int | None = None) -> list[np.ndarray]:
        return plan_by_length(ids, None, batch_size)

    def collate(self, ids: np.ndarray) -> Any:
        dataset = self.dataset
        getitems = getattr(dataset, "__getitems__", None)
        items = getitems(ids.tolist()) if callable(getitems) else [dataset[int(i)] for i in ids]
        return self.settings["collate_fn"](items)

    @property
    def pool_batch_size(self) -> int:
        return self.settings["batch_size"]


class LabelledRows(Dataset):
    """Rows of a tokenized dataset with labels attached from an array (batched reads).

    ``dataset[ids]`` is read in one Arrow call per batch through ``__getitems__``.
    """

    def __init__(
        self,
        dataset: Any,
        ids: np.ndarray,
        labels: np.ndarray | None = None,
        columns: list[str] | None = None,
    ) -> None:
        self.dataset = dataset
        self.ids = np.asarray(ids, dtype=np.int64)
        # one int per row, or a task's per-row labels (word tags, multi-hot rows) as they are
        if labels is not None and not isinstance(labels, list) and np.ndim(labels) == 1:
            labels = np.asarray(labels, dtype=np.int64)
        self.labels = labels
        self.columns = columns

    def __len__(self) -> int:
        return int(self.ids.size)

    def __getitems__(self, positions: list[int]) -> list[dict[str, Any]]:
        rows = self.dataset[self.ids[positions].tolist()]
        keys = self.columns or list(rows)
        out = [{k: rows[k][j] for k in keys} for j in range(len(positions))]
        if self.labels is not None:
            scalar = isinstance(self.labels, np.ndarray) and self.labels.ndim == 1
            for j, p in enumerate(positions):
                out[j]["labels"] = int(self.labels[p]) if scalar else self.labels[p]
        return out

    def __getitem__(self, position: int) -> dict[str, Any]:
        return self.__getitems__([position])[0]


class LengthGroupedBatches(torch.utils.data.Sampler):
    """Training batches of similar lengths, in a random order (like HF ``group_by_length``).

    Each epoch shuffles the rows, cuts them into mega-batches of ``mega * batch_size`` rows
    (``mega = clamp(n // (4 * batch_size), 1, 50)``), sorts each mega-batch by length, cuts
    it into batches and shuffles the order of all batches: batches need little padding,
    and which rows share a batch still changes every epoch.

    Args:
        lengths: token count of each row (positions ``0..n-1`` of the dataset).
        batch_size: rows per batch.
        seed: seeds the first epoch; later epochs continue the same generator.

    >>> batches = list(LengthGroupedBatches(np.array([5, 1, 9, 2, 8, 3]), 2, seed=0))
    >>> sorted(len(b) for b in batches), sorted(i for b in batches for i in b)
    ([2, 2, 2], [0, 1, 2, 3, 4, 5])
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int = 0) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return -(-self.lengths.size // self.batch_size)

    def __iter__(self):
        n, bs = self.lengths.size, self.batch_size
        order = self.rng.permutation(n)
        mega = bs * min(max(n // (4 * bs), 1), 50)
        batches = []
        for start in range(0, n, mega):
            chunk = order[start : start + mega]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + bs].tolist() for i in range(0, chunk.size, bs)]
        for j in self.rng.permutation(len(batches)):
            yield batches[j]


class HFDataAdapter:
    """Loaders over a tokenized ``datasets.Dataset`` with dynamic padding.

    Args:
        tokenized: the tokenized pool (row ``i`` is pool id ``i``), without labels.
        collator: pads a list of feature dicts into a batch (e.g.
            ``transformers.DataCollatorWithPadding``).
        batch_size: training batch size.
        eval_batch_size: batch size for validation, test and pool scoring.
        test: the tokenized test split and its label ids, or ``None``.
        lengths: token count of each pool row, for length-sorted pool batches.
        model_columns: the columns the model takes (e.g. input_ids, attention_mask).
        group_by_length: training batches of similar lengths (:class:`LengthGroupedBatches`);
            needs ``lengths``.
        test_lengths: token count of each test row: the test pass runs in length-sorted
            batches (any order otherwise gives the same metrics, with more padding).
        validation: the tokenized validation split of the dataset and its label ids: it
            replaces the pool's held-out labelled rows as validation data.
        validation_lengths: token count of each validation row (length-sorted batches).
    """

    def __init__(
        self,
        tokenized: Any,
        collator: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
        batch_size: int,
        eval_batch_size: int,
        *,
        test: tuple[Any, np.ndarray] | None = None,
        lengths: np.ndarray | None = None,
        model_columns: list[str] | None = None,
        num_workers: int = 0,
        group_by_length: bool = False,
        test_lengths: np.ndarray | None = None,
        validation: tuple[Any, np.ndarray] | None = None,
        validation_lengths: np.ndarray | None = None,
    ) -> None:
        self.tokenized = tokenized
        self.validation = validation
        self.validation_lengths = validation_lengths
        self.collator = collator
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.test = test
        self.lengths = lengths
        self.model_columns = model_columns
        self.num_workers = num_workers
        self.group_by_length = group_by_length and lengths is not None
        self.test_lengths = test_lengths

        # Self-training (energizer_hf.selfsup.self_training): (pool ids, pseudo-labels) that
        # join the training rows of the next fit only; never part of the pool's label state.
        self.extra_train_rows: tuple[np.ndarray, np.ndarray] | None = None

    def _sorted_loader(self, rows: LabelledRows, lengths: np.ndarray | None, batch_size: int) -> DataLoader:
        """An evaluation loader in length-sorted batches (dynamic padding)."""
        from energizer_hf.scoring import plan_by_length

        if lengths is None:
            return self._loader(rows, batch_size, shuffle=False)
        batches = [b.tolist() for b in plan_by_length(np.arange(len(rows)), lengths, batch_size)]
        return DataLoader(rows, batch_sampler=batches, collate_fn=self.collator, num_workers=self.num_workers)

    def _loader(self, rows: LabelledRows, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(
            rows,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            collate_fn=self.collator,
            num_workers=self.num_workers,
        )

    @staticmethod
    def _labels(pool: ActivePool, ids: np.ndarray) -> Any:
        """The labels of ``ids`` from the label state (a task's store when it has one)."""
        store = getattr(pool, "label_store", None)
        return store.rows(ids) if store is not None else pool.labels[ids]

    def train_loader(self, pool: ActivePool, seed: int, ids: np.ndarray | None = None) -> DataLoader:
        """Shuffled training batches of ``ids`` (default: the pool's training rows, plus the
        pseudo-labelled rows of self-training when there are any)."""
        if ids is None:
            ids = pool.train_ids
            labels = self._labels(pool, ids)
            if self.extra_train_rows is not None:  # pseudo-labelled rows (self-training)
                ids = np.concatenate([ids, self.extra_train_rows[0]])
                labels = np.concatenate([labels, self.extra_train_rows[1]])
        else:
            ids = np.asarray(ids, dtype=np.int64)
            labels = self._labels(pool, ids)
        rows = LabelledRows(self.tokenized, ids, labels, self.model_columns)
        if self.group_by_length:
            sampler = LengthGroupedBatches(self.lengths[ids], self.batch_size, seed=seed)
            return DataLoader(rows, batch_sampler=sampler, collate_fn=self.collator, num_workers=self.num_workers)
        return self._loader(rows, self.batch_size, shuffle=True, seed=seed)

    def num_validation(self, pool: ActivePool) -> int:
        """Rows of the validation data: the dataset's validation split when given, else the
        pool's held-out labelled rows."""
        return len(self.validation[0]) if self.validation is not None else int(pool.validation_ids.size)

    def val_loader(self, pool: ActivePool) -> DataLoader | None:
        if self.validation is not None:
            data, labels = self.validation
            rows = LabelledRows(data, np.arange(len(data)), labels, self.model_columns)
            return self._sorted_loader(rows, self.validation_lengths, self.eval_batch_size)
        ids = pool.validation_ids
        if ids.size == 0:
            return None
        rows = LabelledRows(self.tokenized, ids, self._labels(pool, ids), self.model_columns)
        lengths = None if self.lengths is None else self.lengths[ids]
        return self._sorted_loader(rows, lengths, self.eval_batch_size)

    def test_loader(self) -> DataLoader | None:
        if self.test is None:
            return None
        data, labels = self.test
        rows = LabelledRows(data, np.arange(len(data)), labels, self.model_columns)
        return self._sorted_loader(rows, self.test_lengths, self.eval_batch_size)

    # BatchSource: length-sorted batches, dynamic padding, inputs only
    def plan(self, ids: np.ndarray, batch_size: int, max_tokens: int | None = None) -> list[np.ndarray]:
        return plan_by_length(ids, self.lengths, batch_size, max_tokens)

    def collate(self, ids: np.ndarray) -> Any:
        rows = LabelledRows(self.tokenized, ids, None, self.model_columns)
        return self.collator(rows.__getitems__(list(range(len(ids)))))

    @property
    def pool_batch_size(self) -> int:
        return self.eval_batch_size


def column_as_numpy(dataset: Any, name: str) -> np.ndarray:
    """One column of a ``datasets.Dataset`` as a NumPy array, without a Python list.

    Reads the Arrow column directly (respecting an indices mapping), so a million-row
    column costs its array and nothing more.
    """
    indices = getattr(dataset, "_indices", None)
    column = dataset.data.column(name)
    if indices is not None:
        column = column.take(indices.column(0))
    return column.to_numpy(zero_copy_only=False)


def tokenize_dataset(
    dataset: Any,
    tokenizer: Any,
    text_column: str,
    *,
    text_pair_column: str | None = None,
    max_length: int = 128,
    cache_file: str | None = None,
    progress: bool = True,
) -> Any:
    """Tokenize once into a memory-mapped Arrow dataset: ``input_ids`` (int32), ``length``
    (and ``token_type_ids`` for pairs). The attention mask is not stored: padding makes it.

    Texts longer than ``max_length`` tokens are truncated with one warning for the whole
    dataset, not an exception. With ``cache_file`` the result is reused by later calls.
    """
    import warnings

    import datasets

    truncated = 0

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        nonlocal truncated
        args = (batch[text_column], batch[text_pair_column]) if text_pair_column else (batch[text_column],)
        enc = tokenizer(*args, truncation=True, max_length=max_length, return_attention_mask=False)
        encodings = getattr(enc, "encodings", None)
        if encodings:
            truncated += sum(1 for e in encodings if e.overflowing)
        out = {"input_ids": enc["input_ids"], "length": [len(ids) for ids in enc["input_ids"]]}
        if text_pair_column and "token_type_ids" in enc:
            out["token_type_ids"] = enc["token_type_ids"]
        return out

    features = {"input_ids": datasets.Sequence(datasets.Value("int32")), "length": datasets.Value("int32")}
    if text_pair_column:
        features["token_type_ids"] = datasets.Sequence(datasets.Value("int8"))
    from energizer_hf.utils import cached_map

    tokenized = cached_map(dataset, tokenize, features, cache_file=cache_file, progress=progress, desc="Tokenizing")
    if truncated:
        warnings.warn(
            f"{truncated} of {len(dataset)} texts are longer than max_length={max_length} tokens "
            "and were truncated.",
            stacklevel=2,
        )
    return tokenized
