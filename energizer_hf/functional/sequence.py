"""Sequence labelling (named-entity recognition): BIO tags, entity spans, entity-level
metrics, and token-level acquisition scores for sentences.

**Tags.** IOB2 (also called BIO; Tjong Kim Sang & Veenstra, "Representing Text Chunks",
EACL 1999) gives every token ``O`` (outside any entity), ``B-TYPE`` (first token of an
entity) or ``I-TYPE`` (inside: continues the entity of the same TYPE that the previous
token belongs to). Other schemes (IOBES's ``E-``/``S-``, bare types) are refused with
:class:`~energizer_hf.errors.InvalidTagsError`.

**Repair rule.** An ``I-X`` that continues no entity of type X (first token of a sentence,
after ``O``, or after a ``B-``/``I-`` tag of another type) is read as ``B-X``. This is how
conlleval and seqeval's default mode read such tags, and it is exactly the IOB1 → IOB2
conversion. :func:`repair_bio` applies it; with ``strict=True`` it refuses instead and the
error names the sentence and the position. In the metrics, ``mode="lenient"`` (default)
applies the same rule; ``mode="strict"`` (seqeval's ``mode="strict", scheme=IOB2``) keeps
only ``B-X I-X*`` runs as entities and ignores tokens of a run that does not start with
``B-``.

**Tag inputs.** Every function takes the tags of many sentences in one of these forms:

* tag names: a sequence of sentences, each a sequence of strings (as seqeval takes them);
* tag ids with ``names`` (the ``ClassLabel`` names of the tags column): a sequence of
  sentences of ints, or a padded ``(B, T)`` integer array or tensor. Entries equal to
  ``ignore_index`` (-100, the label of padding and non-first sub-words) are dropped, so
  positions count the kept tokens (the words).

Spans are ``(type, start, end)`` with ``end`` exclusive, positions within the sentence.

**Acquisition.** Scores for a batch of sentences from per-token logits (or probabilities,
``from_probs=True``) of shape ``(B, T, C)`` and a ``(B, T)`` mask of the tokens to score
(``True``/non-zero: a word's first sub-word; padding, special tokens and later sub-words
are masked out). Every score is ``(B,)`` float32 and **higher means more worth
labelling**; entropies are in nats. Padding never reaches a score (it is selected out,
not multiplied by zero, so NaN in padding cannot leak). A sentence whose mask is all
false scores ``empty`` (default 0.0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from energizer_hf.errors import InvalidTagsError, UnknownLabelError

from ._validation import (
    ArrayLike,
    FunctionalInputError,
    NonFiniteInputError,
    ShapeError,
    as_float_tensor,
    check_probs,
)

__all__ = [
    "bio_violations",
    "entity_scores",
    "entity_spans",
    "mnlp",
    "per_token_entropy",
    "per_token_least_confidence",
    "reduce_tokens",
    "repair_bio",
    "token_accuracy",
    "token_entropy",
    "token_least_confidence",
]

Reduction = Literal["sum", "mean", "max"]
SpanMode = Literal["lenient", "strict"]
REDUCTIONS = ("sum", "mean", "max")
_O, _B, _I = 0, 1, 2
_EPS = 1e-12


# ---------------------------------------------------------------------------- tag parsing
def _parse_tag(tag: Any) -> tuple[int, str | None]:
    """``"O"`` → (O, None); ``"B-PER"`` → (B, "PER"); anything else raises."""
    if isinstance(tag, str):
        if tag == "O":
            return _O, None
        if len(tag) > 2 and tag[1] == "-" and tag[0] in "BI":
            return (_B if tag[0] == "B" else _I), tag[2:]
    raise InvalidTagsError(
        f"Tag {tag!r} is not in BIO/IOB2 form: use 'O', 'B-TYPE' or 'I-TYPE' (convert IOBES "
        "tags, E-/S-, to IOB2 first)."
    )


@dataclass
class _Flat:
    """Tags of several sentences, flattened: one entry per kept token."""

    vocab_index: np.ndarray  # (M,) index into ``vocab``
    lengths: np.ndarray  # (S,) kept tokens per sentence
    vocab: list[str]  # tag names
    kind: str  # "str", "lists" (ragged ints), "array" (numpy), "tensor"
    keep: np.ndarray | None = None  # kept entries of ``source``
    source: np.ndarray | None = None  # the input ids: (B, T), or flat for ragged lists
    raw_lengths: np.ndarray | None = None  # ragged lists: entries per sentence, ignored included

    @property
    def starts(self) -> np.ndarray:
        """(M,) True at the first token of each sentence."""
        s = np.zeros(self.vocab_index.size, dtype=bool)
        first = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        s[first[self.lengths > 0]] = True
        return s

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)


def _locate(flat: _Flat, index: int) -> tuple[int, int]:
    offsets = flat.offsets
    sentence = int(np.searchsorted(offsets, index, side="right") - 1)
    return sentence, int(index - offsets[sentence])


def _flatten(tags: Any, names: Sequence[str] | None, ignore_index: int) -> _Flat:
    if isinstance(tags, (np.ndarray, Tensor)):
        arr = tags.detach().cpu().numpy() if isinstance(tags, Tensor) else np.asarray(tags)
        kind = "tensor" if isinstance(tags, Tensor) else "array"
        if arr.ndim != 2:
            raise ShapeError(f"tag ids must be a (B, T) array, got shape {arr.shape}.")
        if not np.issubdtype(arr.dtype, np.integer):
            raise FunctionalInputError(f"tag id arrays must hold integers, got dtype {arr.dtype}.")
        if names is None:
            raise FunctionalInputError("tag ids need `names`, the tag names indexed by id.")
        keep = arr != ignore_index
        ids = arr[keep].astype(np.int64)
        flat = _Flat(ids, keep.sum(1).astype(np.int64), list(names), kind, keep, arr)
        _check_ids(flat, ids, len(names))
        return flat
    if isinstance(tags, (str, bytes)) or not isinstance(tags, Sequence):
        raise FunctionalInputError(
            "tags must be a list of sentences (each a list of tag names or ids) or a (B, T) "
            f"array of tag ids, got {type(tags).__name__}."
        )
    lengths = np.fromiter((len(s) for s in tags), dtype=np.int64, count=len(tags))
    items = [t for sentence in tags for t in sentence]
    if items and isinstance(items[0], str):
        if not all(isinstance(t, str) for t in items):
            raise FunctionalInputError("mix of tag names and tag ids in one input.")
        vocab, inverse = np.unique(np.asarray(items, dtype=object).astype(str), return_inverse=True)
        return _Flat(inverse.astype(np.int64).reshape(-1), lengths, vocab.tolist(), "str")
    if names is None and items:
        raise FunctionalInputError("tag ids need `names`, the tag names indexed by id.")
    try:
        raw = np.asarray(items, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise FunctionalInputError(
            "tags must be all tag names (strings) or all tag ids (integers)."
        ) from None
    keep = raw != ignore_index
    sentence = np.repeat(np.arange(lengths.size), lengths)
    kept_lengths = np.bincount(sentence[keep], minlength=lengths.size).astype(np.int64)
    flat = _Flat(raw[keep], kept_lengths, list(names or []), "lists", keep, raw, lengths)
    _check_ids(flat, flat.vocab_index, len(flat.vocab))
    return flat


def _check_ids(flat: _Flat, ids: np.ndarray, n: int) -> None:
    bad = np.flatnonzero((ids < 0) | (ids >= n))
    if bad.size:
        sentence, position = _locate(flat, int(bad[0]))
        raise UnknownLabelError(
            f"Tag id {int(ids[bad[0]])} (sentence {sentence}, position {position}) is not in "
            f"[0, {n}): pass the `names` of every tag id, or mark ignored positions with the "
            "ignore_index."
        )


def _codes(
    flat: _Flat, type_index: dict[str, int] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-token prefix codes and type indices (-1 for O), and the type names."""
    prefix_of = np.empty(len(flat.vocab), dtype=np.int8)
    types_of: list[str | None] = []
    for v, tag in enumerate(flat.vocab):
        try:
            prefix_of[v], t = _parse_tag(tag)
        except InvalidTagsError as err:
            hits = np.flatnonzero(flat.vocab_index == v)
            if hits.size == 0:  # a name of the label set that no token uses
                raise InvalidTagsError(f"In `names`: {err}") from None
            sentence, position = _locate(flat, int(hits[0]))
            raise InvalidTagsError(
                f"Sentence {sentence}, position {position}: {err}", sentence, position
            ) from None
        types_of.append(t)
    if type_index is None:
        type_index = {t: i for i, t in enumerate(sorted({t for t in types_of if t is not None}))}
    type_of = np.array([-1 if t is None else type_index[t] for t in types_of], dtype=np.int32)
    idx = flat.vocab_index
    return prefix_of[idx], type_of[idx], sorted(type_index, key=type_index.get)


def _links(prefix: np.ndarray, types: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """True where an ``I-X`` continues the previous token's run of type X."""
    prev_prefix = np.concatenate([[_O], prefix[:-1]])
    prev_type = np.concatenate([[-1], types[:-1]])
    return (prefix == _I) & ~starts & (prev_prefix != _O) & (prev_type == types)


# ---------------------------------------------------------------------------- BIO checks
def bio_violations(
    tags: Any, names: Sequence[str] | None = None, *, ignore_index: int = -100
) -> np.ndarray:
    """Where an ``I-X`` tag continues no entity of type X (the tags the repair rule changes).

    Complexity: O(M) for M tokens (plus O(V) tag-name parsing for V distinct tags).

    Args:
        tags: tag names or tag ids of several sentences (see the module docstring).
        names: tag names indexed by id, for tag ids.
        ignore_index: tag id of dropped positions.

    Returns:
        ``(K, 2)`` int64 array of ``(sentence, position)``, in reading order.

    Raises:
        InvalidTagsError: a tag is not ``O``, ``B-TYPE`` or ``I-TYPE``.

    >>> bio_violations([["O", "I-PER", "I-PER"], ["B-LOC", "I-PER"]]).tolist()
    [[0, 1], [1, 1]]
    """
    flat = _flatten(tags, names, ignore_index)
    prefix, types, _ = _codes(flat)
    starts = flat.starts
    bad = np.flatnonzero((prefix == _I) & ~_links(prefix, types, starts))
    if bad.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    offsets = flat.offsets
    sentence = np.searchsorted(offsets, bad, side="right") - 1
    return np.stack([sentence, bad - offsets[sentence]], axis=1).astype(np.int64)


def repair_bio(
    tags: Any,
    names: Sequence[str] | None = None,
    *,
    strict: bool = False,
    ignore_index: int = -100,
) -> Any:
    """Apply the repair rule: an ``I-X`` that continues no entity of type X becomes ``B-X``.

    A single pass is exact: the rule keeps a tag's type, so a repaired tag still lets the
    ``I-X`` after it continue.

    Complexity: O(M) for M tokens.

    Args:
        tags: tag names or tag ids of several sentences (see the module docstring).
        names: tag names indexed by id, for tag ids; every repaired ``I-X`` needs ``B-X``
            among them.
        strict: refuse tags that need repair instead of repairing them.
        ignore_index: tag id of dropped positions (kept as they are in the output).

    Returns:
        The repaired tags in the form given: a list of lists of names, a list of lists of
        ids, or an array/tensor of the same shape (ignored positions untouched).

    Raises:
        InvalidTagsError: a tag is not in BIO form; with ``strict``, the first tag that
            needs repair (``.sentence`` and ``.position`` locate it); a ``B-X`` missing from
            ``names``.

    >>> repair_bio([["O", "I-PER", "I-PER", "I-LOC"]])
    [['O', 'B-PER', 'I-PER', 'B-LOC']]
    >>> repair_bio([[0, 2, 2]], names=["O", "B-PER", "I-PER"])
    [[0, 1, 2]]
    """
    flat = _flatten(tags, names, ignore_index)
    prefix, types, _ = _codes(flat)
    bad = np.flatnonzero((prefix == _I) & ~_links(prefix, types, flat.starts))
    if bad.size and strict:
        sentence, position = _locate(flat, int(bad[0]))
        tag = flat.vocab[int(flat.vocab_index[bad[0]])]
        raise InvalidTagsError(
            f"Sentence {sentence}, position {position}: {tag!r} continues no entity of its "
            f"type ({bad.size} such tags in all). Write 'B-{tag[2:]}' there, or repair the tags "
            "(an I-X that starts an entity is read as B-X).",
            sentence,
            position,
        )
    fixed = flat.vocab_index.copy()
    if bad.size:
        vocab_id = {v: i for i, v in enumerate(flat.vocab)}
        to_b = {}
        for v in np.unique(fixed[bad]).tolist():
            b_tag = "B-" + flat.vocab[v][2:]
            if b_tag not in vocab_id:
                if flat.kind != "str":
                    raise InvalidTagsError(
                        f"Cannot repair {flat.vocab[v]!r} into {b_tag!r}: {b_tag!r} is not among "
                        "the tag names. Add it to the label set."
                    )
                vocab_id[b_tag] = len(flat.vocab)
                flat.vocab.append(b_tag)
            to_b[v] = vocab_id[b_tag]
        lut = np.arange(len(flat.vocab), dtype=np.int64)
        for v, b in to_b.items():
            lut[v] = b
        fixed[bad] = lut[fixed[bad]]
    return _unflatten(flat, fixed)


def _unflatten(flat: _Flat, fixed: np.ndarray) -> Any:
    if flat.kind == "str":
        values = np.asarray(flat.vocab, dtype=object)[fixed].tolist()
        offsets = flat.offsets.tolist()
        return [values[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    assert flat.source is not None and flat.keep is not None
    out = flat.source.copy()
    out[flat.keep] = fixed.astype(out.dtype)
    if flat.kind == "tensor":
        return torch.from_numpy(out)
    if flat.kind == "array":
        return out
    assert flat.raw_lengths is not None
    values = out.tolist()
    offsets = np.concatenate([[0], np.cumsum(flat.raw_lengths)]).tolist()
    return [values[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]


# ---------------------------------------------------------------------------- spans
@dataclass
class _Spans:
    head: np.ndarray  # flat index of the first token
    end: np.ndarray  # flat index one past the last token
    type: np.ndarray  # type index


def _spans(prefix: np.ndarray, types: np.ndarray, starts: np.ndarray, mode: SpanMode) -> _Spans:
    """Entities as runs: a head (a B-, or an I- that continues nothing) and the I-
    tokens linked to it. ``strict`` keeps only runs whose head is a B-."""
    if mode not in ("lenient", "strict"):
        raise FunctionalInputError(f"mode must be 'lenient' or 'strict', got {mode!r}.")
    link = _links(prefix, types, starts)
    inside = prefix != _O
    head = inside & ~link
    next_link = np.concatenate([link[1:], [False]])
    last = inside & ~next_link
    heads, lasts = np.flatnonzero(head), np.flatnonzero(last)
    keep = prefix[heads] == _B if mode == "strict" else np.ones(heads.size, dtype=bool)
    return _Spans(heads[keep], lasts[keep] + 1, types[heads[keep]].astype(np.int64))


def entity_spans(
    tags: Any,
    names: Sequence[str] | None = None,
    *,
    mode: SpanMode = "lenient",
    ignore_index: int = -100,
) -> list[list[tuple[str, int, int]]]:
    """Entities of each sentence as ``(type, start, end)`` with ``end`` exclusive.

    Complexity: O(M) for M tokens (vectorised over all sentences).

    Args:
        tags: tag names or tag ids of several sentences (see the module docstring).
        names: tag names indexed by id, for tag ids.
        mode: ``"lenient"`` reads an ``I-X`` that continues nothing as ``B-X`` (conlleval,
            seqeval's default); ``"strict"`` keeps only ``B-X I-X*`` runs (seqeval
            ``mode="strict", scheme=IOB2``).
        ignore_index: tag id of dropped positions.

    Returns:
        One list of spans per sentence, in reading order.

    >>> entity_spans([["B-PER", "I-PER", "O", "I-LOC"]])
    [[('PER', 0, 2), ('LOC', 3, 4)]]
    >>> entity_spans([["B-PER", "I-PER", "O", "I-LOC"]], mode="strict")
    [[('PER', 0, 2)]]
    """
    flat = _flatten(tags, names, ignore_index)
    prefix, types, type_names = _codes(flat)
    spans = _spans(prefix, types, flat.starts, mode)
    offsets = flat.offsets
    sentence = np.searchsorted(offsets, spans.head, side="right") - 1
    out: list[list[tuple[str, int, int]]] = [[] for _ in range(flat.lengths.size)]
    for s, h, e, t in zip(
        sentence.tolist(), spans.head.tolist(), spans.end.tolist(), spans.type.tolist()
    ):
        out[s].append((type_names[t], h - int(offsets[s]), e - int(offsets[s])))
    return out


def _paired(
    gold: Any, pred: Any, names: Sequence[str] | None, ignore_index: int
) -> tuple[_Flat, _Flat]:
    if isinstance(gold, (np.ndarray, Tensor)) and isinstance(pred, (np.ndarray, Tensor)):
        g = gold.detach().cpu().numpy() if isinstance(gold, Tensor) else np.asarray(gold)
        p = pred.detach().cpu().numpy() if isinstance(pred, Tensor) else np.asarray(pred)
        if g.shape != p.shape:
            raise ShapeError(
                f"gold and pred must have the same shape, got {g.shape} and {p.shape}."
            )
        # positions ignored in the gold labels (sub-words, padding) are ignored in pred too
        p = np.where(g == ignore_index, ignore_index, p)
        gf, pf = _flatten(g, names, ignore_index), _flatten(p, names, ignore_index)
    else:
        gf, pf = _flatten(gold, names, ignore_index), _flatten(pred, names, ignore_index)
    if gf.lengths.shape != pf.lengths.shape or not np.array_equal(gf.lengths, pf.lengths):
        if gf.lengths.shape != pf.lengths.shape:
            raise ShapeError(
                f"gold has {gf.lengths.size} sentences and pred {pf.lengths.size}: pass the "
                "same sentences."
            )
        i = int(np.flatnonzero(gf.lengths != pf.lengths)[0])
        raise ShapeError(
            f"Sentence {i} has {int(gf.lengths[i])} gold tags and {int(pf.lengths[i])} "
            "predicted tags: predict one tag per token (map sub-word predictions back to words)."
        )
    return gf, pf


def _shared_codes(
    gf: _Flat, pf: _Flat
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], list[str]]:
    # parse each side, then index the union of their types
    _, _, gt = _codes(gf)
    _, _, pt = _codes(pf)
    type_index = {t: i for i, t in enumerate(sorted(set(gt) | set(pt)))}
    gp, gty, _ = _codes(gf, type_index)
    pp, pty, _ = _codes(pf, type_index)
    return (gp, gty), (pp, pty), sorted(type_index, key=type_index.get)


def _prf(
    correct: np.ndarray, n_pred: np.ndarray, n_gold: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    correct, n_pred, n_gold = (np.asarray(a, dtype=np.float64) for a in (correct, n_pred, n_gold))
    p = np.divide(correct, n_pred, out=np.zeros_like(correct), where=n_pred > 0)
    r = np.divide(correct, n_gold, out=np.zeros_like(correct), where=n_gold > 0)
    f = np.divide(2 * p * r, p + r, out=np.zeros_like(correct), where=(p + r) > 0)
    return p, r, f


def entity_scores(
    gold: Any,
    pred: Any,
    names: Sequence[str] | None = None,
    *,
    mode: SpanMode = "lenient",
    ignore_index: int = -100,
) -> dict[str, Any]:
    """Entity-level precision, recall and F1 with exact span matching, micro and per type.

    A predicted entity is correct when a gold entity has the same type, start and end
    (CoNLL-2003 evaluation: Tjong Kim Sang & De Meulder, 2003). Micro scores count all
    entities together; ``macro_f1`` averages the per-type F1 over the types found in gold
    or predictions. A ratio with a zero denominator is 0 (seqeval's ``zero_division``
    default, without its warning). The numbers equal seqeval's in the same ``mode``.

    Complexity: O(M + E log E) for M tokens and E entities.

    Args:
        gold: gold tags of several sentences (see the module docstring).
        pred: predicted tags, same sentences and lengths. When both are ``(B, T)`` arrays,
            positions where ``gold`` is ``ignore_index`` are ignored in ``pred`` too, so
            ``entity_scores(labels, logits.argmax(-1), names)`` works on sub-word outputs.
        names: tag names indexed by id, for tag ids.
        mode: span reading, ``"lenient"`` or ``"strict"`` (see :func:`entity_spans`).
        ignore_index: tag id of dropped positions.

    Returns:
        ``{"precision", "recall", "f1", "macro_f1", "num_gold", "num_pred", "num_correct",
        "per_type": {type: {"precision", "recall", "f1", "support"}}}`` (floats and ints;
        ``support`` is the number of gold entities of the type).

    Raises:
        ShapeError: different numbers of sentences or of tags in a sentence.

    >>> s = entity_scores([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "O"]])
    >>> s["precision"], s["recall"], round(s["f1"], 4)
    (1.0, 0.5, 0.6667)
    """
    gf, pf = _paired(gold, pred, names, ignore_index)
    (gp, gt), (pp, pt), type_names = _shared_codes(gf, pf)
    starts = gf.starts
    g, p = _spans(gp, gt, starts, mode), _spans(pp, pt, starts, mode)
    _, gi, pi = np.intersect1d(g.head, p.head, assume_unique=True, return_indices=True)
    match = (g.end[gi] == p.end[pi]) & (g.type[gi] == p.type[pi])
    n_types = len(type_names)
    correct_t = np.bincount(g.type[gi][match], minlength=n_types)
    gold_t = np.bincount(g.type, minlength=n_types)
    pred_t = np.bincount(p.type, minlength=n_types)
    pt_, rt_, ft_ = _prf(correct_t, pred_t, gold_t)
    (mp, mr, mf) = (float(x[0]) for x in _prf([int(match.sum())], [p.head.size], [g.head.size]))
    per_type = {
        name: {
            "precision": float(pt_[i]),
            "recall": float(rt_[i]),
            "f1": float(ft_[i]),
            "support": int(gold_t[i]),
        }
        for i, name in enumerate(type_names)
        if gold_t[i] or pred_t[i]
    }
    return {
        "precision": mp,
        "recall": mr,
        "f1": mf,
        "macro_f1": float(np.mean([v["f1"] for v in per_type.values()])) if per_type else 0.0,
        "num_gold": int(g.head.size),
        "num_pred": int(p.head.size),
        "num_correct": int(match.sum()),
        "per_type": per_type,
    }


def token_accuracy(
    gold: Any, pred: Any, names: Sequence[str] | None = None, *, ignore_index: int = -100
) -> float:
    """Fraction of tokens whose predicted tag equals the gold tag (``O`` tokens included).

    Complexity: O(M).

    Args:
        gold: gold tags of several sentences (see the module docstring).
        pred: predicted tags, same sentences and lengths (for ``(B, T)`` arrays, positions
            ignored in ``gold`` are ignored in ``pred`` too).
        names: tag names indexed by id, for tag ids.
        ignore_index: tag id of dropped positions.

    Returns:
        Accuracy in ``[0, 1]``; 0.0 when there are no tokens.

    >>> token_accuracy([["B-PER", "O", "O"]], [["B-PER", "O", "B-LOC"]])
    0.6666666666666666
    """
    gf, pf = _paired(gold, pred, names, ignore_index)
    if gf.vocab_index.size == 0:
        return 0.0
    g = np.asarray(gf.vocab, dtype=object)[gf.vocab_index]
    p = np.asarray(pf.vocab, dtype=object)[pf.vocab_index]
    return float(np.mean(g == p))


# ---------------------------------------------------------------------------- acquisition
def _token_inputs(
    logits: ArrayLike, mask: ArrayLike | None, from_probs: bool
) -> tuple[Tensor, Tensor]:
    name = "probs (B, T, C)" if from_probs else "logits (B, T, C)"
    x = _as_float(logits, name, 3)
    m = _mask(mask, tuple(x.shape[:2]))
    valid = x[m]
    if not bool(torch.isfinite(valid).all()):
        raise NonFiniteInputError(f"{name} contains NaN or infinite values at masked-in tokens.")
    if from_probs:
        check_probs(valid, name)
    return x, m


def _as_float(x: ArrayLike, name: str, ndim: int) -> Tensor:
    """A float32 CPU tensor of rank ``ndim``; finiteness is checked by the caller where
    it matters (masked-in entries only)."""
    t = torch.as_tensor(np.array(x) if isinstance(x, np.ndarray) else x)
    if not (
        t.is_floating_point()
        or t.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)
    ):
        raise FunctionalInputError(f"{name} must be numeric, got dtype {t.dtype}.")
    if t.ndim != ndim:
        raise ShapeError(f"{name} must have {ndim} dimensions, got shape {tuple(t.shape)}.")
    return t.detach().to(device="cpu", dtype=torch.float32)


def _mask(mask: ArrayLike | None, shape: tuple[int, ...]) -> Tensor:
    if mask is None:
        return torch.ones(shape, dtype=torch.bool)
    m = torch.as_tensor(np.array(mask) if isinstance(mask, np.ndarray) else mask).detach().cpu()
    if tuple(m.shape) != tuple(shape):
        raise ShapeError(f"mask must have shape {tuple(shape)}, got {tuple(m.shape)}.")
    return m != 0


def _log_probs(x: Tensor, from_probs: bool) -> Tensor:
    return x.clamp_min(_EPS).log() if from_probs else torch.log_softmax(x, dim=-1)


def per_token_entropy(logits: ArrayLike, *, from_probs: bool = False) -> Tensor:
    """Entropy of each token's predicted tag distribution, ``-Σ_c p_c log p_c`` (nats).

    Complexity: O(B · T · C).

    Args:
        logits: ``(B, T, C)`` per-token logits (probabilities with ``from_probs``).
        from_probs: the input holds probabilities.

    Returns:
        ``(B, T)`` float32 entropies in ``[0, log C]``.

    >>> round(per_token_entropy(torch.zeros(1, 2, 4))[0, 0].item(), 4)  # uniform: log 4
    1.3863
    """
    x = as_float_tensor(logits, "logits (B, T, C)", 3)
    if from_probs:
        check_probs(x, "probs (B, T, C)")
    logp = _log_probs(x, from_probs)
    return -(logp.exp() * logp).sum(-1)


def per_token_least_confidence(logits: ArrayLike, *, from_probs: bool = False) -> Tensor:
    """``1 - max_c p_c`` of each token (Culotta & McCallum, AAAI 2005, per token).

    Complexity: O(B · T · C).

    Args:
        logits: ``(B, T, C)`` per-token logits (probabilities with ``from_probs``).
        from_probs: the input holds probabilities.

    Returns:
        ``(B, T)`` float32 scores in ``[0, 1 - 1/C]``.

    >>> per_token_least_confidence(torch.tensor([[[0.5, 0.5], [1.0, 0.0]]]), from_probs=True)
    tensor([[0.5000, 0.0000]])
    """
    x = as_float_tensor(logits, "logits (B, T, C)", 3)
    if from_probs:
        check_probs(x, "probs (B, T, C)")
        return 1.0 - x.max(-1).values
    return 1.0 - torch.softmax(x, dim=-1).max(-1).values


def reduce_tokens(
    scores: ArrayLike,
    mask: ArrayLike | None = None,
    reduction: Reduction = "sum",
    *,
    empty: float = 0.0,
) -> Tensor:
    """Reduce per-token scores to one score per sentence over the masked-in tokens.

    ``"sum"`` favours long sentences (total uncertainty; Settles & Craven, EMNLP 2008,
    "total token entropy"), ``"mean"`` normalises by length, ``"max"`` keeps the most
    uncertain token. Masked-out entries are selected out (never multiplied), so NaN or
    inf in padding does not leak.

    Complexity: O(B · T).

    Args:
        scores: ``(B, T)`` per-token scores.
        mask: ``(B, T)`` bool or 0/1 (e.g. an attention mask); ``None`` keeps every token.
        reduction: ``"sum"``, ``"mean"`` or ``"max"``.
        empty: the score of a sentence with no masked-in token.

    Returns:
        ``(B,)`` float32 scores.

    Raises:
        FunctionalInputError: an unknown reduction; NonFiniteInputError: a masked-in score
            is NaN or infinite.

    >>> s = torch.tensor([[1.0, 2.0, 9.0], [4.0, 0.0, 0.0]])
    >>> m = torch.tensor([[1, 1, 0], [1, 0, 0]])
    >>> [reduce_tokens(s, m, r).tolist() for r in ("sum", "mean", "max")]
    [[3.0, 4.0], [1.5, 4.0], [2.0, 4.0]]
    """
    if reduction not in REDUCTIONS:
        raise FunctionalInputError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}.")
    t = _as_float(scores, "scores (B, T)", 2)
    m = _mask(mask, tuple(t.shape))
    if not bool(torch.isfinite(t[m]).all()):
        raise NonFiniteInputError(
            "per-token scores contain NaN or infinite values at masked-in tokens."
        )
    n = m.sum(1)
    if reduction == "max":
        out = torch.where(m, t, torch.full_like(t, -torch.inf)).max(1).values
    else:
        out = torch.where(m, t, torch.zeros_like(t)).sum(1)
        if reduction == "mean":
            out = out / n.clamp_min(1)
    return torch.where(n > 0, out, torch.full_like(out, float(empty)))


def token_entropy(
    logits: ArrayLike,
    mask: ArrayLike | None = None,
    reduction: Reduction = "sum",
    *,
    from_probs: bool = False,
    empty: float = 0.0,
) -> Tensor:
    """Token entropy of each sentence: per-token entropies reduced by sum, mean or max.

    Reference: Settles & Craven, "An Analysis of Active Learning Strategies for Sequence
    Labeling Tasks", EMNLP 2008 (total token entropy; ``"mean"`` is its length-normalised
    form).

    Complexity: O(B · T · C).

    Args:
        logits: ``(B, T, C)`` per-token logits (probabilities with ``from_probs``).
        mask: ``(B, T)`` tokens to score; ``None`` scores every token.
        reduction: ``"sum"``, ``"mean"`` or ``"max"``.
        from_probs: the input holds probabilities.
        empty: the score of a sentence with no masked-in token.

    Returns:
        ``(B,)`` float32 scores, higher = more uncertain.

    >>> logits = torch.tensor([[[0.0, 0.0], [9.0, -9.0]], [[0.0, 0.0], [0.0, 0.0]]])
    >>> [round(v, 4) for v in token_entropy(logits, reduction="mean").tolist()]
    [0.3466, 0.6931]
    """
    x, m = _token_inputs(logits, mask, from_probs)
    logp = _log_probs(x, from_probs)
    per_token = -(logp.exp() * logp).sum(-1)
    return reduce_tokens(per_token, m, reduction, empty=empty)


def token_least_confidence(
    logits: ArrayLike,
    mask: ArrayLike | None = None,
    reduction: Reduction = "sum",
    *,
    from_probs: bool = False,
    empty: float = 0.0,
) -> Tensor:
    """Per-token least confidence ``1 - max_c p_c``, reduced by sum, mean or max.

    Reference: Culotta & McCallum, "Reducing Labeling Effort for Structured Prediction
    Tasks", AAAI 2005 (least confidence; here per token, as in Settles & Craven, 2008).

    Complexity: O(B · T · C).

    Args:
        logits: ``(B, T, C)`` per-token logits (probabilities with ``from_probs``).
        mask: ``(B, T)`` tokens to score; ``None`` scores every token.
        reduction: ``"sum"``, ``"mean"`` or ``"max"``.
        from_probs: the input holds probabilities.
        empty: the score of a sentence with no masked-in token.

    Returns:
        ``(B,)`` float32 scores, higher = less confident.

    >>> probs = torch.tensor([[[0.5, 0.5], [0.9, 0.1]]])
    >>> [round(v, 4) for v in token_least_confidence(probs, from_probs=True).tolist()]
    [0.6]
    """
    x, m = _token_inputs(logits, mask, from_probs)
    top = x.max(-1).values if from_probs else torch.softmax(x, dim=-1).max(-1).values
    return reduce_tokens(1.0 - top, m, reduction, empty=empty)


def mnlp(
    logits: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    from_probs: bool = False,
    empty: float = 0.0,
) -> Tensor:
    """Maximum normalised log-probability, negated so that higher = more informative.

    Shen et al. ("Deep Active Learning for Named Entity Recognition", ICLR 2018, arXiv
    1707.05928, 2017) select the sentences with the *lowest*
    ``max_y (1/n) Σ_i log P(y_i | x)``: the length-normalised log-probability of the best
    tag path. With a per-token softmax (no CRF) the best path is the per-token argmax, so
    that value is ``(1/n) Σ_i log max_c p_ic``; this function returns its negation,
    ``-(1/n) Σ_i log max_c p_ic >= 0``.

    Complexity: O(B · T · C).

    Args:
        logits: ``(B, T, C)`` per-token logits (probabilities with ``from_probs``).
        mask: ``(B, T)`` tokens of each sentence (n is their count).
        from_probs: the input holds probabilities.
        empty: the score of a sentence with no masked-in token.

    Returns:
        ``(B,)`` float32 scores ``>= 0``, higher = less likely best path per token.

    >>> probs = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]])
    >>> round(mnlp(probs, from_probs=True).item(), 4)  # -(log 0.5 + log 1) / 2
    0.3466
    """
    x, m = _token_inputs(logits, mask, from_probs)
    best = _log_probs(x, from_probs).max(-1).values
    return reduce_tokens(-best, m, "mean", empty=empty)
