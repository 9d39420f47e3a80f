"""Token classification (named-entity recognition): one BIO tag per word.

* **Data**: a list-of-words column (``tokens``) and a tags column (``ner_tags``:
  ``Sequence(ClassLabel)`` as in ``conll2003``/``wnut_17``, or lists of tag names, or of
  ids with ``label_names``), or CoNLL files (``token<TAB>tag``, blank line between
  sentences) read by :func:`energizer_hf.formats.load_conll`. Tags must be BIO/IOB2; an
  ``I-X`` that continues no ``X`` entity is read as ``B-X`` (the documented repair rule of
  :func:`energizer_hf.functional.sequence.repair_bio`; conlleval and seqeval read it the
  same way). Sentences with no word, and rows whose tag count differs from their word
  count, are refused.
* **Label state**: what the oracle says goes to a :class:`~energizer_hf.label_stores.RaggedTagStore`
  next to the pool's state (``pool/token_tags.*``: offsets + tag ids, memory-mapped,
  replaced atomically); a simulation's gold tags are read from the dataset's Arrow
  column without Python lists (:class:`RaggedTags`).
* **Model**: :class:`HFTokenClassifier` over ``AutoModelForTokenClassification``; the
  first sub-word of each word carries its tag, others ``-100`` (aligned per batch from
  the word tags and the stored ``word_ids``: :class:`TokenLabelCollator`).
* **Metrics**: entity-level precision / recall / F1 with exact span matching (micro, and
  per type), macro entity F1 and token accuracy, computed by
  :func:`energizer_hf.functional.sequence.entity_scores` (equal to seqeval's, tested).
* **Budgets**: ``budget_unit: tokens`` counts words; each row's cost is its word count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from energizer_hf.errors import (
    EmptySentenceError,
    EnergizerError,
    InvalidTagsError,
    LabelMismatchError,
    TagLengthMismatchError,
    UnknownLabelError,
)
from energizer_hf.label_stores import RaggedTagStore
from energizer_hf.model import HFSequenceClassifier
from energizer_hf.tasks.base import Task, register_task
from energizer_hf.token_alignment import IGNORE_INDEX, WordIdsCollator, align_labels

__all__ = [
    "HFTokenClassifier",
    "RaggedTags",
    "TagStore",
    "TokenClassificationTask",
    "TokenLabelCollator",
    "entity_types",
    "load_token_classifier",
    "read_tags",
]


@register_task
class TokenClassificationTask(Task):
    """Named-entity recognition and other BIO tagging."""

    name = "token_classification"
    task_categories = ("token-classification",)
    task_ids = ("named-entity-recognition",)
    label_studio_config = "ner"
    monitor = "val/entity_f1"
    budget_units = ("examples", "tokens")
    test_metric = "test/entity_f1"


def entity_types(tag_names: Sequence[str]) -> list[str]:
    """The entity types of BIO tag names, in order of first appearance.

    >>> entity_types(["O", "B-LOC", "I-LOC", "B-PER", "I-PER"])
    ['LOC', 'PER']
    """
    out: list[str] = []
    for name in tag_names:
        if name != "O" and len(name) > 2 and name[2:] not in out:
            out.append(name[2:])
    return out


def _check_names(names: Sequence[str]) -> list[str]:
    names = [str(n) for n in names]
    for n in names:
        if n != "O" and not (len(n) > 2 and n[:2] in ("B-", "I-")):
            raise InvalidTagsError(
                f"Tag name {n!r} is not in BIO/IOB2 form ('O', 'B-TYPE', 'I-TYPE'): convert the "
                "tags (IOBES and bare types are not read)."
            )
    missing = [f"B-{t}" for t in entity_types(names) if f"B-{t}" not in names]
    if missing:
        raise InvalidTagsError(f"The tag set has I- tags without their B- tags: add {missing}.")
    return names


# ---------------------------------------------------------------------- gold tags
class RaggedTags:
    """Tag ids of many sentences as ``offsets`` + ``values`` (read from Arrow, no lists).

    >>> t = RaggedTags(np.array([0, 2, 3]), np.array([1, 2, 0]))
    >>> [a.tolist() for a in t[np.array([1, 0])]]
    [[0], [1, 2]]
    """

    def __init__(self, offsets: np.ndarray, values: np.ndarray) -> None:
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.values = np.asarray(values, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    def __getitem__(self, ids: Any) -> list[np.ndarray]:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        return [self.values[self.offsets[i] : self.offsets[i + 1]] for i in ids.tolist()]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def _list_column(dataset: Any, column: str) -> tuple[np.ndarray, Any]:
    """``(offsets, flat values as an Arrow array)`` of a list column (indices mapping respected)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = dataset.data.column(column)
    indices = getattr(dataset, "_indices", None)
    if indices is not None:
        col = col.take(indices.column(0))
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if isinstance(arr, pa.ChunkedArray):  # an empty column
        arr = pa.concat_arrays(arr.chunks) if arr.num_chunks else pa.array([], type=pa.list_(pa.int64()))
    offsets = np.asarray(arr.offsets, dtype=np.int64)
    flat = arr.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    offsets = offsets - offsets[0]
    if pc.sum(arr.is_null()).as_py():
        raise TagLengthMismatchError(f"The column '{column}' has rows without tags: give every sentence its tags.")
    return offsets, flat


def read_tags(
    dataset: Any,
    column: str,
    names: Sequence[str] | None = None,
    *,
    tokens_column: str = "tokens",
    repair: bool = True,
) -> tuple[list[str], RaggedTags]:
    """The tag names and the tag ids of every sentence of ``dataset[column]``.

    Tags may be a ``Sequence(ClassLabel)`` (names from the feature), tag names (names in
    the deterministic order of :func:`energizer_hf.formats.conll.tag_names` unless
    ``names`` are given) or ids (``names`` needed). BIO violations are repaired by the rule
    of the module docstring (``repair=False``: refused).

    Raises:
        TagLengthMismatchError / EmptySentenceError: a row whose tags do not match its words.
        UnknownLabelError: a tag name or id outside ``names``.
        InvalidTagsError: tags not in BIO form.
    """
    import pyarrow as pa

    from energizer_hf.formats.conll import check_token_columns, tag_names
    from energizer_hf.functional.sequence import bio_violations, repair_bio

    feature = dataset.features.get(column)
    inner = getattr(feature, "feature", None)
    feature_names = getattr(inner, "names", None)
    if tokens_column in dataset.column_names:
        check_token_columns(dataset, tokens_column, column)
    offsets, flat = _list_column(dataset, column)
    if np.any(np.diff(offsets) == 0):
        row = int(np.flatnonzero(np.diff(offsets) == 0)[0])
        raise EmptySentenceError(f"Row {row} of '{column}' has no tag: every sentence needs at least one word.")
    if pa.types.is_string(flat.type) or pa.types.is_large_string(flat.type):
        strings = np.asarray(flat.to_numpy(zero_copy_only=False), dtype=object)
        uniq, inverse = np.unique(strings.astype(str), return_inverse=True)
        if names is None:
            names = tag_names(uniq.tolist())
        names = _check_names(names)
        index = {n: i for i, n in enumerate(names)}
        unknown = [u for u in uniq.tolist() if u not in index]
        if unknown:
            raise UnknownLabelError(f"Tags {unknown[:10]} are not among the tag names {names}.")
        values = np.asarray([index[u] for u in uniq.tolist()], dtype=np.int64)[inverse]
    else:
        values = np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.int64)
        if feature_names is not None:
            if names is not None and list(names) != list(feature_names):
                raise LabelMismatchError(
                    f"label_names {list(names)} differ from the tags column's ClassLabel names {list(feature_names)}."
                )
            names = list(feature_names)
        if names is None:
            raise UnknownLabelError(
                f"The tags column '{column}' holds ids without names: give label_names (the tag names, e.g. "
                "[O, B-PER, I-PER])."
            )
        names = _check_names(names)
        bad = values[(values < 0) | (values >= len(names))]
        if bad.size:
            raise UnknownLabelError(f"Tag ids {sorted(set(bad.tolist()))[:10]} are not in 0..{len(names) - 1}.")
    ragged = RaggedTags(offsets, values)
    sentences = ragged[np.arange(len(ragged))]
    if len(bio_violations(sentences, names)):
        if not repair:
            repair_bio(sentences, names, strict=True)
        fixed = repair_bio(sentences, names)
        ragged = RaggedTags(offsets, np.concatenate([np.asarray(f, dtype=np.int64) for f in fixed]))
    return list(names), ragged


# ---------------------------------------------------------------------- label state
class TagStore:
    """The pool's store of word tags given by the oracle (a :class:`RaggedTagStore` under
    ``<run_dir>/pool``), with what the loop and the data adapter ask of a task's labels.

    Args:
        tag_names: the tag names (ids are positions).
        num_words: ``(N,)`` words per sentence: one tag per word is required, and it is
            each row's cost under ``budget_unit: tokens``.
    """

    def __init__(self, tag_names: Sequence[str], num_words: np.ndarray) -> None:
        self.tag_names = _check_names(tag_names)
        self.costs = np.asarray(num_words, dtype=np.int64)
        self._types = np.asarray(
            [entity_types(self.tag_names).index(n[2:]) if n.startswith("B-") else -1 for n in self.tag_names]
        )
        self.store = RaggedTagStore(None, self.costs.size, len(self.tag_names), sentence_lengths=self.costs)

    def open(self, state_dir: Any, *, fingerprint: str | None = None, read_only: bool = False) -> None:
        """Persist under ``state_dir`` (resume what is there); ``None``: in memory."""
        if state_dir is None:
            return
        old = self.store
        self.store = RaggedTagStore(
            state_dir, self.costs.size, len(self.tag_names), sentence_lengths=self.costs,
            fingerprint=fingerprint, read_only=read_only,
        )
        if old.state_dir is None and old.labelled_ids.size and not self.store.labelled_ids.size:
            ids = old.labelled_ids
            self.store.set(ids, [old.get(int(i)) for i in ids])

    # what the loop asks
    def given(self, labels: Any, n: int) -> np.ndarray:
        """Which answers carry tags (``None`` or an empty row: skipped)."""
        if isinstance(labels, RaggedTags):
            labels = labels[np.arange(len(labels))]
        if len(labels) != n:
            raise TagLengthMismatchError(f"The oracle returned tags for {len(labels)} sentences, {n} were asked.")
        return np.array([t is not None and len(t) > 0 for t in labels], dtype=bool)

    def subset(self, labels: Any, mask: np.ndarray) -> list[Any]:
        if isinstance(labels, RaggedTags):
            labels = labels[np.arange(len(labels))]
        return [t for t, keep in zip(labels, mask.tolist()) if keep]

    def accept(self, labels: Any, ids: np.ndarray) -> list[np.ndarray]:
        """Tag ids of the answers (names mapped), one per word, in BIO form.

        Raises:
            TagLengthMismatchError: a sentence with another number of tags than words.
            UnknownLabelError: a tag name or id outside the tag set.
        """
        from energizer_hf.functional.sequence import repair_bio

        if isinstance(labels, RaggedTags):
            labels = labels[np.arange(len(labels))]
        index = {n: i for i, n in enumerate(self.tag_names)}
        out = []
        for pid, tags in zip(np.asarray(ids).tolist(), labels):
            if tags is None:
                raise EmptySentenceError(f"No tags for pool id {pid}: a skipped sentence is not labelled.")
            arr = np.asarray(list(tags) if not isinstance(tags, np.ndarray) else tags)
            if arr.dtype.kind in "UO":
                unknown = sorted({str(t) for t in arr.tolist()} - set(index))
                if unknown:
                    raise UnknownLabelError(
                        f"Tags {unknown[:10]} of pool id {pid} are not among the tag names {self.tag_names}."
                    )
                arr = np.asarray([index[str(t)] for t in arr.tolist()], dtype=np.int64)
            arr = arr.astype(np.int64)
            if arr.size != self.costs[pid]:
                raise TagLengthMismatchError(
                    f"Pool id {pid} has {int(self.costs[pid])} words but {arr.size} tags were given: one tag per word."
                )
            bad = arr[(arr < 0) | (arr >= len(self.tag_names))]
            if bad.size:
                raise UnknownLabelError(f"Tag ids {bad[:5].tolist()} of pool id {pid} are not in 0..{len(self.tag_names) - 1}.")
            out.append(arr)
        return [np.asarray(r, dtype=np.int64) for r in repair_bio(out, self.tag_names)] if out else out

    def set(self, ids: np.ndarray, tags: list[np.ndarray]) -> None:
        self.store.set(ids, tags)

    def word_tags(self, ids: np.ndarray) -> list[np.ndarray]:
        """The stored word tags of ``ids`` (for training batches)."""
        return [np.asarray(self.store.get(int(i)), dtype=np.int64) for i in np.asarray(ids).tolist()]

    rows = word_tags

    def distribution(self, ids: np.ndarray) -> dict[int, int]:
        """Count of each tag id over the words of ``ids``."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return {}
        values, _ = self.store.gather(ids)
        counts = np.bincount(np.asarray(values, dtype=np.int64), minlength=len(self.tag_names))
        return {i: int(c) for i, c in enumerate(counts.tolist()) if c}

    def predict(self, strategy: Any, scorer: Any, ids: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """The model's word tags of ``ids`` and their mean probability (pre-annotations for
        people), on this process: ``[(tag ids per word, score), ...]`` in the order of ids."""
        from energizer_hf.token_alignment import words_from_subwords

        ids = np.asarray(ids, dtype=np.int64)
        model = strategy.model
        was_training = model.training
        model.to(scorer.device).eval()
        out: dict[int, tuple[np.ndarray, float]] = {}
        try:
            with torch.inference_mode():
                for batch_ids in scorer.source.plan(ids, scorer.batch_size):
                    batch = scorer.source.collate(batch_ids)
                    batch = {k: v.to(scorer.device) if isinstance(v, Tensor) else v for k, v in batch.items()}
                    logits = strategy(strategy.get_inputs_from_batch(batch))
                    logits = getattr(logits, "logits", logits)
                    probs = torch.softmax(logits.float(), -1).cpu().numpy()
                    words, _ = words_from_subwords(
                        probs, batch["word_ids"].cpu().numpy(), self.costs[batch_ids], fill=0.0
                    )
                    for j, pid in enumerate(batch_ids.tolist()):
                        n = int(self.costs[pid])
                        p = words[j, :n]
                        tags = np.where(p.sum(-1) > 0, p.argmax(-1), 0)
                        out[pid] = (tags.astype(np.int64), float(p.max(-1).mean()) if n else 0.0)
        finally:
            model.train(was_training)
        return [out[int(i)] for i in ids.tolist()]

    # what the round datasets and cards ask
    task = "token_classification"
    column = "ner_tags"

    def round_columns(self, ids: np.ndarray) -> tuple[dict[str, list], dict[str, Any]]:
        """The labelled tags of ``ids`` as a ``ner_tags`` column (``Sequence(ClassLabel)``)."""
        import datasets

        tags = [t.tolist() for t in self.word_tags(ids)]
        return {self.column: tags}, {self.column: datasets.Sequence(datasets.ClassLabel(names=self.tag_names))}

    def from_round_columns(self, ds: Any) -> list[np.ndarray] | None:
        """The tags of a stored round (``None`` when it has no tags column)."""
        if self.column not in ds.column_names:
            return None
        return [np.asarray(t, dtype=np.int64) for t in ds[self.column][:]]

    def card_meta(self) -> dict[str, Any]:
        return {
            "task": self.task, "task_categories": list(TokenClassificationTask.task_categories),
            "task_ids": list(TokenClassificationTask.task_ids), "entity_types": entity_types(self.tag_names),
            "tag_names": list(self.tag_names),
        }

    def describe(self, ids: np.ndarray) -> dict[str, int]:
        """Sentences, tokens and entities of ``ids`` (the round records' counts)."""
        ids = np.asarray(ids, dtype=np.int64)
        entities = 0
        if ids.size:
            values, _ = self.store.gather(ids)
            entities = int((self._types[np.asarray(values, dtype=np.int64)] >= 0).sum())
        return {"sentences": int(ids.size), "tokens": int(self.costs[ids].sum()), "entities": entities}


# ---------------------------------------------------------------------- collation
class TokenLabelCollator:
    """Rows with word-level ``labels`` (tag ids per word) and ``word_ids`` → a padded batch
    whose ``labels`` are aligned to sub-words (first sub-word tagged, others -100) and whose
    ``word_ids`` are padded with -1 (:class:`~energizer_hf.token_alignment.WordIdsCollator`).
    Rows without ``labels`` (pool scoring) are collated as they are."""

    def __init__(self, tokenizer: Any) -> None:
        from transformers import DataCollatorForTokenClassification

        self.inner = WordIdsCollator(DataCollatorForTokenClassification(tokenizer, return_tensors="pt"))

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        rows = []
        for f in features:
            row = dict(f)
            if "labels" in row:
                row["labels"] = align_labels(np.asarray(row["word_ids"]), np.asarray(row["labels"])).tolist()
            rows.append(row)
        return self.inner(rows)


# ---------------------------------------------------------------------- model
def load_token_classifier(model: Any, num_labels: int, id2label: dict[int, str] | None = None) -> Any:
    """A ``transformers`` token classifier (hub id, directory, config or instance) with
    ``num_labels`` tags and their names.

    Raises:
        LabelMismatchError: an instance or config whose head has another size.
    """
    import copy

    from transformers import AutoModelForTokenClassification, PretrainedConfig, PreTrainedModel

    id2label = id2label or {i: str(i) for i in range(num_labels)}
    label2id = {v: k for k, v in id2label.items()}
    base = model.get_base_model() if hasattr(model, "get_base_model") and hasattr(model, "peft_config") else model
    if isinstance(base, PreTrainedModel):
        if base.config.num_labels != num_labels:
            raise LabelMismatchError(
                f"{type(base).__name__} has a head of {base.config.num_labels} tags but the data has "
                f"{num_labels} ({', '.join(list(id2label.values())[:8])}...): build it with num_labels={num_labels}."
            )
        base.config.id2label, base.config.label2id = dict(id2label), dict(label2id)
        return model
    if isinstance(model, PretrainedConfig):
        config = copy.deepcopy(model)
        if getattr(config, "_num_labels_set_explicitly", False) and config.num_labels != num_labels:
            raise LabelMismatchError(
                f"The model config has num_labels={config.num_labels} but the data has {num_labels} tags."
            )
        config.num_labels = num_labels
        config.id2label, config.label2id = dict(id2label), dict(label2id)
        return AutoModelForTokenClassification.from_config(config)
    if isinstance(model, str):
        try:
            return AutoModelForTokenClassification.from_pretrained(
                model, num_labels=num_labels, id2label=id2label, label2id=label2id
            )
        except RuntimeError as err:  # a saved token classifier whose head has another size
            if "mismatch" not in str(err).lower():
                raise
            from energizer_hf.model import head_mismatch_error

            raise head_mismatch_error(model, num_labels, "tags") from err
    raise EnergizerError(
        f"model must be a hub id, a directory, a transformers config or a PreTrainedModel; got {type(model).__name__}."
    )


class HFTokenClassifier(HFSequenceClassifier):
    """Fine-tune a ``transformers`` token classifier (``AutoModelForTokenClassification``).

    The same optimisation as :class:`~energizer_hf.model.HFSequenceClassifier` (AdamW,
    warm-up, PEFT with ``TOKEN_CLS``); the loss is the cross-entropy over first sub-words
    (labels ``-100`` elsewhere); validation and test give entity-level P/R/F1 (micro and
    per type: ``test/f1_<type>``), macro entity F1 and token accuracy. ``embed`` is the
    mean-pooled last hidden state (a sentence embedding for diversity strategies).

    Args:
        model: hub id, directory, config or instance of a token classifier.
        num_labels: number of tags.
        id2label: tag names (BIO), needed for entity metrics.
        **kwargs: as :class:`~energizer_hf.model.HFSequenceClassifier`.

    Example:
        >>> from transformers import BertConfig
        >>> cfg = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
        ...                  num_attention_heads=2, intermediate_size=16)
        >>> m = HFTokenClassifier(cfg, num_labels=3, id2label={0: "O", 1: "B-X", 2: "I-X"})
        >>> m(dict(input_ids=torch.tensor([[1, 2, 3]]))).shape
        torch.Size([1, 3, 3])
    """

    task = "token_classification"
    peft_task_type = "TOKEN_CLS"

    def __init__(self, model: Any, num_labels: int, id2label: dict[int, str] | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(model, num_labels, id2label, *args, **kwargs)
        self.tag_names = [str((id2label or {}).get(i, i)) for i in range(num_labels)]
        self._gold: dict[str, list[np.ndarray]] = {"val": [], "test": []}
        self._pred: dict[str, list[np.ndarray]] = {"val": [], "test": []}
        self._loss: dict[str, list[tuple[float, int]]] = {"val": [], "test": []}

    def load_model(self, model: Any, num_labels: int, id2label: dict[int, str] | None) -> Any:
        return load_token_classifier(model, num_labels, id2label)

    def _loss_of(self, logits: Tensor, labels: Tensor, weight: Tensor | None = None) -> Tensor:
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), weight=weight, ignore_index=IGNORE_INDEX
        )

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self(batch)
        weight = None if self.class_weights is None else self.class_weights.to(logits.device, torch.float32)
        loss = self._loss_of(logits, batch["labels"], weight)
        self.log("train/loss", loss, prog_bar=True, batch_size=logits.shape[0])
        return loss

    def _eval_step(self, batch: dict[str, Tensor], stage: str) -> None:
        logits = self(batch)
        labels = batch["labels"]
        loss = self._loss_of(logits, labels)
        self.log(f"{stage}/loss", loss, batch_size=logits.shape[0])
        keep = (labels != IGNORE_INDEX).cpu().numpy()
        gold = labels.cpu().numpy()
        pred = logits.argmax(-1).cpu().numpy()
        for i in range(gold.shape[0]):
            self._gold[stage].append(gold[i][keep[i]])
            self._pred[stage].append(pred[i][keep[i]])

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _scores(self, stage: str) -> dict[str, float]:
        from energizer_hf.functional.sequence import entity_scores, token_accuracy

        gold, pred = self._gold[stage], self._pred[stage]
        self._gold[stage], self._pred[stage] = [], []
        if not gold:
            return {}
        s = entity_scores(gold, pred, self.tag_names)
        out = {
            f"{stage}/entity_f1": float(s["f1"]),
            f"{stage}/entity_precision": float(s["precision"]),
            f"{stage}/entity_recall": float(s["recall"]),
            f"{stage}/entity_macro_f1": float(s["macro_f1"]),
            f"{stage}/token_accuracy": float(token_accuracy(gold, pred, self.tag_names)),
        }
        if stage == "test":
            for etype, per in (s.get("per_type") or {}).items():
                out[f"test/f1_{etype}"] = float(per["f1"])
        return out

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self._scores("val"))

    def on_test_epoch_end(self) -> None:
        self.log_dict(self._scores("test"))
