"""CoNLL token-tag files → ``datasets.Dataset`` in the Hugging Face NER convention.

**Accepted files.** UTF-8 text (a byte-order mark is ignored; LF or CRLF line ends), one
token per line. A line's token is its first field and its tag its last field; fields are
separated by tabs when the line has a tab (tokens may then contain spaces), otherwise by
runs of whitespace (so CoNLL-2003's ``token POS chunk tag`` lines work). A blank or
whitespace-only line ends a sentence; blank lines in a row are one separator, so a file
cannot produce an empty sentence. A ``-DOCSTART-`` line (first field) ends the current
sentence and is skipped.

**Output.** One dataset per file group, with ``tokens``
(``Sequence(Value("string"))``) and ``ner_tags`` (``Sequence(ClassLabel(names=...))``),
as ``conll2003`` and ``wnut_17`` on the Hub. The tag names are shared by every split and
ordered deterministically: ``O`` first, then ``B-TYPE``, ``I-TYPE`` for each entity type
in sorted order (both are listed for every type seen, so a model's head size does not
depend on which splits were read). For WNUT-17 this is the Hub's order. Pass
``label_names`` to impose another order (e.g. conll2003's).

**Tags.** Tags must be ``O``, ``B-TYPE`` or ``I-TYPE``. An ``I-X`` that continues no
``X`` entity (IOB1 files, annotation slips) is handled by ``bio``: ``"repair"`` (default)
rewrites it to ``B-X`` (the rule of :mod:`energizer_hf.functional.sequence`) and warns
once with the count and the first ``file:line``; ``"strict"`` refuses with
:class:`~energizer_hf.errors.InvalidTagsError` naming ``file:line``.

**Errors** (each names ``file:line``): :class:`~energizer_hf.errors.DataFormatError` for a
line with fewer than two fields, an empty token or tag, or bytes that are not UTF-8;
:class:`~energizer_hf.errors.InvalidTagsError` for a tag outside BIO form;
:class:`~energizer_hf.errors.UnknownLabelError` for a tag missing from ``label_names``;
:class:`~energizer_hf.errors.EmptyPoolError` for a file without any sentence.

For datasets built another way, :func:`check_token_columns` checks ``tokens``/``ner_tags``
lengths (vectorised over Arrow): a row whose tag count differs from its token count is a
:class:`~energizer_hf.errors.TagLengthMismatchError`; an empty row is an
:class:`~energizer_hf.errors.EmptySentenceError` (refused, not skipped: a pool id is a row
index, so dropping rows silently would renumber the pool; filter them first).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from energizer_hf.errors import (
    ColumnNotFoundError,
    DataFormatError,
    EmptyPoolError,
    EmptySentenceError,
    EnergizerError,
    InvalidTagsError,
    TagLengthMismatchError,
    UnknownLabelError,
)
from energizer_hf.functional.sequence import bio_violations

__all__ = ["ConllSentences", "check_token_columns", "load_conll", "read_conll", "tag_names"]

DOCSTART = "-DOCSTART-"
PathLike = str | os.PathLike


@dataclass
class ConllSentences:
    """The sentences of one CoNLL file, flattened.

    Attributes:
        path: the file.
        tokens: every token, sentence after sentence.
        tags: the tag of each token.
        lengths: ``(S,)`` int64 tokens per sentence.
        lines: ``(M,)`` int64 1-based line number of each token (for error messages).
    """

    path: str
    tokens: list[str]
    tags: list[str]
    lengths: np.ndarray
    lines: np.ndarray

    @property
    def offsets(self) -> np.ndarray:
        """``(S + 1,)`` int64 start of each sentence in ``tokens``, then the total."""
        return np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.lengths.size)

    def sentences(self) -> list[list[str]]:
        """The tags as one list per sentence."""
        o = self.offsets.tolist()
        return [self.tags[o[i] : o[i + 1]] for i in range(len(o) - 1)]


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataFormatError(
            f"{path}:{line}: the file is not UTF-8 (byte 0x{data[err.start]:02x} at offset "
            f"{err.start}). Convert it, e.g. `iconv -f latin1 -t utf-8 in > out`."
        ) from None


def read_conll(path: PathLike, *, bio: Literal["repair", "strict"] = "repair") -> ConllSentences:
    """Read one CoNLL file (format in the module docstring).

    Args:
        path: the file.
        bio: ``"repair"`` an ``I-X`` that continues nothing into ``B-X`` (warning with a
            count), or ``"strict"``: refuse it.

    Returns:
        The file's sentences, flattened.

    Raises:
        DataFormatError: a malformed line or non-UTF-8 bytes (``file:line``).
        InvalidTagsError: a tag outside BIO form, or with ``"strict"`` an ``I-X`` that
            continues nothing (``file:line``).
        EmptyPoolError: the file has no sentence.
    """
    if bio not in ("repair", "strict"):
        raise EnergizerError(f"bio must be 'repair' or 'strict', got {bio!r}.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CoNLL file '{path}' does not exist.")
    text = _decode(path)
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    lengths: list[int] = []
    current = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            if current:
                lengths.append(current)
                current = 0
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        while len(fields) > 2 and not fields[-1].strip():  # trailing tabs
            fields.pop()
        token, tag = fields[0], fields[-1].strip()
        if token == DOCSTART:
            if current:
                lengths.append(current)
                current = 0
            continue
        if len(fields) < 2 or not token.strip() or not tag:
            raise DataFormatError(
                f"{path}:{number}: expected 'token<TAB>tag' (or space-separated fields with the "
                f"tag last), got {line!r}. Fix the line, or separate sentences with a blank line."
            )
        tokens.append(token)
        tags.append(tag)
        lines.append(number)
        current += 1
    if current:
        lengths.append(current)
    if not lengths:
        raise EmptyPoolError(f"CoNLL file '{path}' has no sentence (no 'token<TAB>tag' line).")
    out = ConllSentences(
        str(path), tokens, tags, np.asarray(lengths, np.int64), np.asarray(lines, np.int64)
    )
    _check_bio(out, bio)
    return out


def _check_bio(sentences: ConllSentences, bio: str) -> None:
    try:
        bad = bio_violations(sentences.sentences())
    except InvalidTagsError as err:
        line = int(sentences.lines[sentences.offsets[err.sentence] + err.position])
        raise InvalidTagsError(
            f"{sentences.path}:{line}: {err}", err.sentence, err.position
        ) from None
    if bad.size == 0:
        return
    index = sentences.offsets[bad[:, 0]] + bad[:, 1]
    first = int(sentences.lines[index[0]])
    tag = sentences.tags[int(index[0])]
    if bio == "strict":
        raise InvalidTagsError(
            f"{sentences.path}:{first}: {tag!r} continues no entity of its type ({index.size} "
            f"such tags in the file). Write 'B-{tag[2:]}' there, or read with bio='repair' "
            "(an I-X that starts an entity is read as B-X).",
            int(bad[0, 0]),
            int(bad[0, 1]),
        )
    for i in index.tolist():
        sentences.tags[i] = "B-" + sentences.tags[i][2:]
    warnings.warn(
        f"{sentences.path}: {index.size} I- tags continue no entity of their type (first at "
        f"line {first}: {tag!r}) and were read as B- tags (IOB1 → IOB2). Pass bio='strict' "
        "to refuse them instead.",
        stacklevel=3,
    )


def tag_names(tags: Any) -> list[str]:
    """The deterministic tag order: ``O``, then ``B-TYPE``, ``I-TYPE`` per sorted type.

    Args:
        tags: any iterable of BIO tag names.

    Returns:
        The names (both ``B-`` and ``I-`` for every type seen).

    >>> tag_names(["I-PER", "O", "B-LOC"])
    ['O', 'B-LOC', 'I-LOC', 'B-PER', 'I-PER']
    """
    types = set()
    for tag in set(tags):
        if tag != "O":
            if not (isinstance(tag, str) and len(tag) > 2 and tag[:2] in ("B-", "I-")):
                raise InvalidTagsError(f"Tag {tag!r} is not in BIO/IOB2 form ('O', 'B-X', 'I-X').")
            types.add(tag[2:])
    return ["O"] + [f"{p}-{t}" for t in sorted(types) for p in "BI"]


def _to_dataset(sentences: ConllSentences, names: list[str]) -> Any:
    import datasets
    import pyarrow as pa

    index = {n: i for i, n in enumerate(names)}
    vocab, inverse = np.unique(
        np.asarray(sentences.tags, dtype=object).astype(str), return_inverse=True
    )
    missing = [v for v in vocab.tolist() if v not in index]
    if missing:
        first = int(sentences.lines[int(np.flatnonzero(vocab[inverse] == missing[0])[0])])
        raise UnknownLabelError(
            f"{sentences.path}:{first}: tag {missing[0]!r} is not in label_names "
            f"({len(missing)} unknown tag(s): {missing[:10]}). Add them to label_names, or "
            "leave label_names unset to take the tags found in the files."
        )
    ids = np.asarray([index[v] for v in vocab.tolist()], dtype=np.int64)[inverse.reshape(-1)]
    offsets = pa.array(sentences.offsets.astype(np.int32))
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    return datasets.Dataset.from_dict(
        {
            "tokens": pa.ListArray.from_arrays(offsets, pa.array(sentences.tokens, pa.string())),
            "ner_tags": pa.ListArray.from_arrays(offsets, pa.array(ids, pa.int64())),
        },
        features=features,
    )


def load_conll(
    data_files: PathLike | Sequence[PathLike] | Mapping[str, PathLike | Sequence[PathLike]],
    *,
    label_names: Sequence[str] | None = None,
    bio: Literal["repair", "strict"] = "repair",
) -> Any:
    """Load CoNLL files as ``datasets`` in the HF NER convention, one shared tag set.

    Args:
        data_files: a file or list of files (one dataset, files concatenated in order), or
            a mapping ``split -> file(s)`` as for ``datasets.load_dataset``.
        label_names: the tag names in the order to use; by default :func:`tag_names` of
            every tag in every file.
        bio: how an ``I-X`` that continues nothing is handled (see :func:`read_conll`).

    Returns:
        A ``datasets.Dataset`` (file or list) or a ``datasets.DatasetDict`` (mapping) with
        ``tokens`` and ``ner_tags`` columns.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "train.conll").write_text("EU\\tB-ORG\\nrejects\\tO\\n\\nPeter\\tB-PER\\n")
        >>> ds = load_conll(d / "train.conll")
        >>> ds.num_rows, ds.features["ner_tags"].feature.names
        (2, ['O', 'B-ORG', 'I-ORG', 'B-PER', 'I-PER'])
    """
    import datasets

    if isinstance(data_files, Mapping):
        groups = {str(k): _as_list(v) for k, v in data_files.items()}
    else:
        groups = {"": _as_list(data_files)}
    read = {split: [read_conll(f, bio=bio) for f in files] for split, files in groups.items()}
    if label_names is None:
        names = tag_names(t for parts in read.values() for s in parts for t in s.tags)
    else:
        names = list(label_names)
        if len(set(names)) != len(names):
            raise UnknownLabelError(f"label_names has duplicates: {names}.")
        tag_names(names)  # every name in BIO form
    built = {
        split: datasets.concatenate_datasets([_to_dataset(s, names) for s in parts])
        if len(parts) > 1
        else _to_dataset(parts[0], names)
        for split, parts in read.items()
    }
    if not isinstance(data_files, Mapping):
        return built[""]
    return datasets.DatasetDict(built)


def _as_list(files: PathLike | Sequence[PathLike]) -> list[PathLike]:
    if isinstance(files, (str, os.PathLike)):
        return [files]
    files = list(files)
    if not files:
        raise EmptyPoolError("An empty list of CoNLL files was given: name at least one file.")
    return files


def check_token_columns(
    dataset: Any, tokens_column: str = "tokens", tags_column: str | None = "ner_tags"
) -> np.ndarray:
    """Check a token-classification dataset's columns and return its sentence lengths.

    Vectorised over the Arrow columns (no Python loop over rows).

    Args:
        dataset: a ``datasets.Dataset``.
        tokens_column: list-of-strings column of words.
        tags_column: list-of-tag-ids column, or ``None`` when tags come from elsewhere.

    Returns:
        ``(N,)`` int64 number of tokens (words) per row, for token budgets.

    Raises:
        ColumnNotFoundError: a column is missing.
        TagLengthMismatchError: a row with a different number of tags than tokens.
        EmptySentenceError: a row with no token.

    >>> import datasets
    >>> ds = datasets.Dataset.from_dict({"tokens": [["a", "b"], ["c"]], "ner_tags": [[0, 0], [1]]})
    >>> check_token_columns(ds).tolist()
    [2, 1]
    """
    lengths = _list_lengths(dataset, tokens_column)
    if tags_column is not None:
        tag_lengths = _list_lengths(dataset, tags_column)
        bad = np.flatnonzero(tag_lengths != lengths)
        if bad.size:
            i = int(bad[0])
            raise TagLengthMismatchError(
                f"Row {i} has {int(lengths[i])} tokens in '{tokens_column}' and "
                f"{int(tag_lengths[i])} tags in '{tags_column}' ({bad.size} such rows). Give "
                "every token exactly one tag."
            )
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise EmptySentenceError(
            f"Row {int(empty[0])} has no tokens ({empty.size} empty rows). Remove them before "
            f"building the pool, e.g. ds.filter(lambda t: len(t) > 0, input_columns="
            f"'{tokens_column}'): pool ids are row indices, so they are not dropped silently."
        )
    return lengths


def _list_lengths(dataset: Any, column: str) -> np.ndarray:
    import pyarrow.compute as pc

    if column not in dataset.column_names:
        raise ColumnNotFoundError(
            f"Column '{column}' is not in the dataset (columns: {dataset.column_names})."
        )
    col = dataset.data.column(column)
    indices = getattr(dataset, "_indices", None)
    if indices is not None:
        col = col.take(indices.column(0))
    lengths = pc.list_value_length(col).fill_null(0)
    return lengths.to_numpy(zero_copy_only=False).astype(np.int64)
