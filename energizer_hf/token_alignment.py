"""Word → sub-word label alignment for token classification, and back.

Datasets for named-entity recognition hold *words* (``tokens``) and one tag per word
(``ner_tags``); a transformer sees *sub-words*. The convention of the Hugging Face token
classification examples is kept:

* the first sub-word of each word carries the word's tag; the word's other sub-words,
  the special tokens (``[CLS]``, ``[SEP]``) and padding carry ``-100``, which the loss and
  the metrics ignore;
* the tokenized dataset keeps, per sub-word, the index of its word (``word_ids``; -1 for
  special tokens), so sub-word predictions map back to words (:func:`words_from_subwords`)
  and word-level tags given later (by an annotator, from the label state) are aligned at
  batch time (:func:`align_labels`).

:func:`tokenize_and_align` tokenizes once into a memory-mapped Arrow file with the
conventions of :func:`energizer_hf.data.tokenize_dataset`: ``input_ids`` (int32) and
``length`` (int32, sub-words per row, for length-bucketed batches); the attention mask is
made by padding. It adds ``word_ids`` (int32), ``num_words`` (int32, words in the row) and,
when a tags column is named, ``labels`` (int32, with -100). Sentences longer than
``max_length`` sub-words are truncated with one warning for the whole dataset giving the
count; their last words get no sub-word (:func:`words_from_subwords` fills them). A word
that the tokenizer turns into no sub-word at all (a lone zero-width or control character,
removed by normalisation) is counted in a warning too and is treated like a truncated word.

:class:`WordIdsCollator` pads ``word_ids`` (with -1) next to a Hugging Face collator
(e.g. ``DataCollatorForTokenClassification``, which pads ``labels`` with -100) that does
not know that column.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from energizer_hf.errors import EnergizerError, TagLengthMismatchError
from energizer_hf.formats.conll import check_token_columns

__all__ = [
    "IGNORE_INDEX",
    "WordIdsCollator",
    "align_labels",
    "first_subword_mask",
    "tokenize_and_align",
    "words_from_subwords",
]

#: The label of positions that the loss and the metrics ignore.
IGNORE_INDEX = -100


def _as_2d(x: Any, name: str) -> tuple[np.ndarray, bool]:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim == 1:
        return a[None, :], True
    if a.ndim != 2:
        raise EnergizerError(f"{name} must be (T,) or (B, T), got shape {a.shape}.")
    return a, False


def first_subword_mask(word_ids: Any) -> np.ndarray:
    """True at the first sub-word of each word.

    Args:
        word_ids: ``(T,)`` or ``(B, T)`` word index of each sub-word, -1 (or any negative)
            for special tokens and padding.

    Returns:
        A boolean array of the same shape.

    >>> first_subword_mask([-1, 0, 0, 1, 2, 2, -1]).tolist()
    [False, True, False, True, True, False, False]
    """
    w, single = _as_2d(word_ids, "word_ids")
    w = w.astype(np.int64)
    prev = np.concatenate([np.full((w.shape[0], 1), -1), w[:, :-1]], axis=1)
    mask = (w >= 0) & (w != prev)
    return mask[0] if single else mask


def align_labels(word_ids: Any, word_tags: Any, *, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Sub-word labels from word tags: the first sub-word of a word gets its tag, every
    other position ``ignore_index``.

    Args:
        word_ids: ``(T,)`` or ``(B, T)`` word index of each sub-word, -1 for special tokens
            and padding.
        word_tags: ``(W,)`` or ``(B, W)`` tag ids of the words (padded rows may hold
            anything past their last word).

    Returns:
        ``(T,)`` or ``(B, T)`` int64 labels.

    Raises:
        TagLengthMismatchError: a sub-word points at a word beyond ``word_tags``.

    >>> align_labels([-1, 0, 0, 1, -1], [3, 5]).tolist()
    [-100, 3, -100, 5, -100]
    """
    w, single = _as_2d(word_ids, "word_ids")
    tags, _ = _as_2d(word_tags, "word_tags")
    if tags.shape[0] != w.shape[0]:
        raise TagLengthMismatchError(
            f"word_ids has {w.shape[0]} rows and word_tags {tags.shape[0]}."
        )
    w = w.astype(np.int64)
    if w.size and int(w.max(initial=-1)) >= tags.shape[1]:
        row = int(np.flatnonzero((w >= tags.shape[1]).any(1))[0])
        raise TagLengthMismatchError(
            f"Row {row}: a sub-word belongs to word {int(w[row].max())} but only "
            f"{tags.shape[1]} word tags are given. Give one tag per word."
        )
    first = first_subword_mask(w)
    gathered = np.take_along_axis(tags.astype(np.int64), np.clip(w, 0, None), axis=1)
    out = np.where(first, gathered, ignore_index)
    return out[0] if single else out


def words_from_subwords(
    values: Any, word_ids: Any, num_words: Any, *, fill: Any = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Word-level values (predicted tag ids, logits, probabilities) from their first
    sub-words.

    Args:
        values: ``(B, T)`` or ``(B, T, C)`` per-sub-word values (a tensor or an array).
        word_ids: ``(B, T)`` word index of each sub-word, -1 for special tokens/padding.
        num_words: ``(B,)`` number of words of each row (``num_words`` column).
        fill: the value of words with no sub-word (cut by truncation, or emptied by the
            tokenizer's normalisation); e.g. the id of ``O``.

    Returns:
        ``(word_values, has_value)``: ``(B, W)`` or ``(B, W, C)`` values with
        ``W = max(num_words)`` (positions past a row's last word hold ``fill``), and the
        ``(B, W)`` boolean mask of words that got a value from a sub-word.

    >>> v, m = words_from_subwords([[9, 4, 4, 7, 9]], [[-1, 0, 0, 1, -1]], [3], fill=0)
    >>> v.tolist(), m.tolist()
    ([[4, 7, 0]], [[True, True, False]])
    """
    vals = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    w, _ = _as_2d(word_ids, "word_ids")
    n = np.asarray(num_words, dtype=np.int64).reshape(-1)
    if vals.shape[:2] != w.shape or n.shape[0] != w.shape[0]:
        raise EnergizerError(
            f"values {vals.shape}, word_ids {w.shape} and num_words {n.shape} do not describe "
            "the same batch."
        )
    width = int(n.max(initial=0))
    out = np.empty((w.shape[0], width) + vals.shape[2:], dtype=vals.dtype)
    out[...] = fill
    has = np.zeros((w.shape[0], width), dtype=bool)
    rows, cols = np.nonzero(first_subword_mask(w) & (w < n[:, None]))
    words = w[rows, cols].astype(np.int64)
    out[rows, words] = vals[rows, cols]
    has[rows, words] = True
    return out, has


def _require_fast(tokenizer: Any) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise EnergizerError(
            f"Token classification needs a fast tokenizer (word_ids()), got "
            f"{type(tokenizer).__name__}. Load it with AutoTokenizer.from_pretrained(..., "
            "use_fast=True) or a tokenizers.Tokenizer wrapped in PreTrainedTokenizerFast."
        )


def tokenize_and_align(
    dataset: Any,
    tokenizer: Any,
    *,
    tokens_column: str = "tokens",
    tags_column: str | None = "ner_tags",
    max_length: int = 128,
    cache_file: str | None = None,
    progress: bool = True,
) -> Any:
    """Tokenize pre-split words once into a memory-mapped Arrow dataset, with alignment.

    Row ``i`` of the result is row ``i`` of ``dataset`` (pool ids are kept). The columns
    are described in the module docstring. With ``cache_file`` the result is written
    there and reused by later calls: the file name must identify the dataset, the
    tokenizer and ``max_length`` (as the learner's ``pool-v2-<fingerprint>-<tok>-<len>``
    names do), since it is the cache key.

    Args:
        dataset: a ``datasets.Dataset`` with a list-of-words column (and a tags column).
        tokenizer: a fast tokenizer.
        tokens_column: the words.
        tags_column: the word tag ids, or ``None`` to store no labels (tags then come
            from the label state, aligned per batch with :func:`align_labels`).
        max_length: the most sub-words per row, special tokens included.
        cache_file: an Arrow file to write the result to and reuse.
        progress: show the ``datasets`` progress bar.

    Returns:
        The tokenized ``datasets.Dataset``.

    Raises:
        EnergizerError: a slow tokenizer; TagLengthMismatchError / EmptySentenceError: a
            row whose tag count differs from its word count, or with no word.
    """
    import datasets

    _require_fast(tokenizer)
    check_token_columns(dataset, tokens_column, tags_column)
    truncated = 0
    dropped_words = 0
    empty_words = 0
    example_empty: list[str] = []

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        nonlocal truncated, dropped_words, empty_words
        words = batch[tokens_column]
        enc = tokenizer(
            words,
            is_split_into_words=True,
            truncation=True,
            max_length=max_length,
            return_attention_mask=False,
        )
        word_ids, labels, num_words = [], [], []
        for i, row_words in enumerate(words):
            w = np.array([-1 if x is None else x for x in enc.word_ids(i)], dtype=np.int64)
            n = len(row_words)
            present = np.zeros(n, dtype=bool)
            present[w[w >= 0]] = True
            last = int(w.max(initial=-1))
            if last < n - 1:  # words after the last sub-word were cut by truncation
                truncated += 1
                dropped_words += n - 1 - last
            missing = np.flatnonzero(~present[: last + 1])
            if missing.size:
                empty_words += int(missing.size)
                if len(example_empty) < 3:
                    example_empty.append(row_words[int(missing[0])])
            word_ids.append(w.astype(np.int32))
            num_words.append(n)
            if tags_column is not None:
                labels.append(align_labels(w, np.asarray(batch[tags_column][i])).astype(np.int32))
        out = {
            "input_ids": enc["input_ids"],
            "length": [len(ids) for ids in enc["input_ids"]],
            "word_ids": word_ids,
            "num_words": num_words,
        }
        if tags_column is not None:
            out["labels"] = labels
        return out

    features = {
        "input_ids": datasets.Sequence(datasets.Value("int32")),
        "length": datasets.Value("int32"),
        "word_ids": datasets.Sequence(datasets.Value("int32")),
        "num_words": datasets.Value("int32"),
    }
    if tags_column is not None:
        features["labels"] = datasets.Sequence(datasets.Value("int32"))
    from energizer_hf.utils import cached_map

    tokenized = cached_map(dataset, tokenize, features, cache_file=cache_file, progress=progress, desc="Tokenizing words")
    if truncated:
        warnings.warn(
            f"{truncated} of {len(dataset)} sentences are longer than max_length={max_length} "
            f"sub-words and were truncated ({dropped_words} words lost); those words get no "
            "label in training and the fill value in predictions.",
            stacklevel=2,
        )
    if empty_words:
        warnings.warn(
            f"{empty_words} words have no sub-word under this tokenizer (e.g. "
            f"{example_empty!r}); they get no label in training and the fill value in "
            "predictions.",
            stacklevel=2,
        )
    return tokenized


class WordIdsCollator:
    """Collate token-classification rows: a Hugging Face collator for the model inputs
    (and ``labels``), plus ``word_ids`` padded with -1 to the same length.

    Args:
        collator: e.g. ``DataCollatorForTokenClassification(tokenizer)``.
        padding_side: ``"right"`` or ``"left"``, as the tokenizer pads; by default read
            from ``collator.tokenizer``.
        drop: columns removed before collating (e.g. ``("length", "num_words")``).

    Example:
        >>> from transformers import DataCollatorForTokenClassification
        >>> from energizer_hf.demo import train_wordpiece_tokenizer
        >>> tok = train_wordpiece_tokenizer(["a b"], vocab_size=20)
        >>> collate = WordIdsCollator(DataCollatorForTokenClassification(tok))
        >>> rows = [
        ...     {"input_ids": [2, 5, 3], "labels": [-100, 1, -100], "word_ids": [-1, 0, -1]},
        ...     {"input_ids": [2, 3], "labels": [-100, -100], "word_ids": [-1, -1]},
        ... ]
        >>> batch = collate(rows)
        >>> batch["labels"].tolist(), batch["word_ids"].tolist()
        ([[-100, 1, -100], [-100, -100, -100]], [[-1, 0, -1], [-1, -1, -1]])
    """

    def __init__(
        self,
        collator: Callable[[list[dict[str, Any]]], dict[str, Any]],
        *,
        padding_side: str | None = None,
        drop: tuple[str, ...] = ("length", "num_words"),
    ) -> None:
        self.collator = collator
        side = padding_side or getattr(
            getattr(collator, "tokenizer", None), "padding_side", "right"
        )
        if side not in ("left", "right"):
            raise EnergizerError(f"padding_side must be 'left' or 'right', got {side!r}.")
        self.padding_side = side
        self.drop = drop

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        rows = [{k: v for k, v in f.items() if k not in self.drop} for f in features]
        word_ids = [np.asarray(r.pop("word_ids"), dtype=np.int64) for r in rows]
        batch = self.collator(rows)
        width = int(batch["input_ids"].shape[1])
        padded = np.full((len(rows), width), -1, dtype=np.int64)
        for i, w in enumerate(word_ids):
            if self.padding_side == "right":
                padded[i, : w.size] = w
            else:
                padded[i, width - w.size :] = w
        batch["word_ids"] = torch.from_numpy(padded)
        return batch
