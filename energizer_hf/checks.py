"""Data, model and run-directory checks made before any work starts.

Each check is a function that raises a named error (see `energizer_hf.errors`) saying
what is wrong and what to do, instead of a traceback deep in ``datasets``, ``transformers``
or torch later, or worse, a run that "works" on wrong data. Columns are checked as Arrow
arrays (or NumPy arrays): a million-row pool never becomes a Python list.

| check | error |
| --- | --- |
| `check_missing` | `MissingValuesError` (or the rows to drop) |
| `check_label_values` | `LabelMismatchError` |
| `check_test_classes` | `ClassNotInPoolError` |
| `check_text_encoding` | `DataEncodingError` |
| `check_path_exists`, `check_model_source` | `PathNotFoundError` |
| `check_tokenizer_files` | `MissingTokenizerError` |
| `check_vocab_fits` | `VocabularyMismatchError` |
| `check_sequence_classification` | `UnsupportedModelError` |
| `check_run_dir` | `RunDirError` |

Missing values (``on_missing``): a label or text that is ``None``, NaN (pandas' missing
value in a float column) or empty/whitespace-only is *missing*. ``on_missing="error"``
(the default) refuses the data and says which column and rows; ``on_missing="drop"``
returns the rows to keep and the count dropped (then pool ids are row indices of the
dataset *after* the drop).

>>> import pyarrow as pa
>>> check_missing({"text": pa.array(["a", " ", None, "b"])}, on_missing="drop").keep.tolist()
[0, 3]
"""

from __future__ import annotations

import codecs
import fnmatch
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from energizer_hf.errors import (
    ClassNotInPoolError,
    DataEncodingError,
    EnergizerError,
    LabelMismatchError,
    MissingTokenizerError,
    MissingValuesError,
    PathNotFoundError,
    RunDirError,
    UnsupportedModelError,
    VocabularyMismatchError,
)
from energizer_hf.scrub import scrub

__all__ = [
    "MissingReport",
    "check_label_values",
    "check_missing",
    "check_model_source",
    "check_path_exists",
    "check_run_dir",
    "check_sequence_classification",
    "check_test_classes",
    "check_text_encoding",
    "check_tokenizer_files",
    "check_vocab_fits",
    "missing_mask",
]

log = logging.getLogger(__name__)

OnMissing = Literal["error", "drop"]
_SHOW = 10  # row ids / classes shown in a message


# ---------------------------------------------------------------------- columns
def _as_arrow(column: Any) -> Any:
    """An Arrow array or chunked array of ``column`` (Arrow, NumPy, or a sequence)."""
    import pyarrow as pa

    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        return column
    if isinstance(column, np.ndarray):
        if column.dtype.kind in "fc":
            return pa.array(column, from_pandas=True)  # NaN → null
        if column.dtype.kind in "biu":
            return pa.array(column)
        return pa.array(column.tolist() if column.dtype.kind == "O" else column, from_pandas=True)
    return pa.array(column, from_pandas=True)


def _to_numpy_bool(arr: Any) -> np.ndarray:
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr.to_numpy(zero_copy_only=False).astype(bool, copy=False)


def missing_mask(column: Any) -> np.ndarray:
    """A boolean mask of missing values: null, NaN, or an empty/whitespace-only string.

    >>> import numpy as np
    >>> missing_mask(np.array([0.0, np.nan, 2.0])).tolist()
    [False, True, False]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _as_arrow(column)
    kind = arr.type
    if pa.types.is_floating(kind):
        mask = pc.is_null(arr, nan_is_null=True)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0)
        mask = pc.or_kleene(pc.is_null(arr), pc.fill_null(empty, True))
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        mask = pc.or_kleene(
            pc.is_null(arr), pc.fill_null(pc.equal(pc.list_value_length(arr), 0), True)
        )
    else:
        mask = pc.is_null(arr)
    return _to_numpy_bool(mask)


@dataclass(frozen=True)
class MissingReport:
    """What `check_missing` found.

    Attributes:
        counts: missing values per column (only columns that have some).
        keep: with ``on_missing="drop"``, the ascending row ids to keep; ``None`` when
            nothing is missing.
        dropped: number of rows dropped.
    """

    counts: dict[str, int] = field(default_factory=dict)
    keep: np.ndarray | None = None
    dropped: int = 0


def check_missing(
    columns: Mapping[str, Any],
    *,
    on_missing: OnMissing = "error",
    where: str = "the pool",
) -> MissingReport:
    """Find missing labels and texts in ``columns`` (name → Arrow/NumPy column, equal
    lengths) and refuse them or choose the rows to keep.

    Args:
        columns: the text column(s) and the label column of one split.
        on_missing: ``"error"`` to refuse, ``"drop"`` to drop the rows (logged with the
            count; the caller selects ``keep``).
        where: the split's name, for the message.

    Raises:
        MissingValuesError: values are missing and ``on_missing="error"`` (names the
            columns, counts and first row ids, and both fixes); every row would be
            dropped; or ``on_missing`` is not a known choice.
    """
    if on_missing not in ("error", "drop"):
        raise MissingValuesError(f"on_missing must be 'error' or 'drop', got {on_missing!r}.")
    any_missing: np.ndarray | None = None
    counts: dict[str, int] = {}
    rows: dict[str, np.ndarray] = {}
    for name, column in columns.items():
        mask = missing_mask(column)
        if any_missing is None:
            any_missing = np.zeros(mask.shape[0], dtype=bool)
        if mask.shape != any_missing.shape:
            raise EnergizerError(
                f"Column {name!r} has {mask.shape[0]} rows, expected {any_missing.shape[0]}."
            )
        if mask.any():
            counts[name] = int(mask.sum())
            rows[name] = np.flatnonzero(mask)[:_SHOW]
            any_missing |= mask
    if any_missing is None or not counts:
        return MissingReport()
    detail = "; ".join(
        f"{name!r}: {n} row{'s' if n > 1 else ''} (e.g. row {', '.join(map(str, rows[name].tolist()))})"
        for name, n in counts.items()
    )
    total = int(any_missing.sum())
    if on_missing == "error":
        raise MissingValuesError(
            f"{where.capitalize()} has missing values (None, NaN or empty text) in {detail}. Drop "
            "those rows with on_missing: drop (the count is reported), or fill the cells."
        )
    if total == any_missing.size:
        raise MissingValuesError(
            f"Every row of {where} has a missing value ({detail}): check text_column and "
            "label_column."
        )
    log.warning("Dropped %d row(s) of %s with missing values: %s.", total, where, detail)
    return MissingReport(counts=counts, keep=np.flatnonzero(~any_missing), dropped=total)


def check_label_values(labels: Any, *, where: str = "the pool", column: str = "label") -> None:
    """Refuse label values that cannot be classes: non-integral floats (regression
    targets) and negative ids (a GLUE-style test split marks unlabelled rows with -1).
    Integral floats (an integer column with NaN, read by pandas) pass: cast them to
    int64 once the missing rows are dropped.

    Call after `check_missing` (missing labels are reported there).

    Raises:
        LabelMismatchError: naming the first bad values and what to do.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _as_arrow(labels)
    kind = arr.type
    valid = pc.drop_null(arr)
    if pa.types.is_floating(kind):
        finite = pc.filter(valid, pc.invert(pc.is_nan(valid)))
        frac = pc.not_equal(finite, pc.floor(finite))
        if pc.any(frac).as_py():
            bad = pc.unique(pc.filter(finite, frac)).to_pylist()[:_SHOW]
            raise LabelMismatchError(
                f"The {column!r} column of {where} holds non-integer numbers ({bad}): classification "
                "needs class ids or names. Give a column of class ids or names."
            )
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
    if numeric and len(valid) and pc.min(valid).as_py() < 0:
        bad = sorted(pc.unique(pc.filter(valid, pc.less(valid, 0))).to_pylist())[:_SHOW]
        hint = " (-1 marks unlabelled rows in GLUE-style test splits: use a split with labels)"
        raise LabelMismatchError(
            f"The {column!r} column of {where} has negative class ids {bad}{hint if -1 in bad else ''}; "
            "class ids must be 0..C-1."
        )


def check_test_classes(
    pool_labels: Any,
    test_labels: Any,
    *,
    names: Sequence[str] | None = None,
    test_split: str = "test",
) -> None:
    """Refuse a test split with classes the pool never has: the model would get a class
    that no query can ever label, and its test metrics would be wrong.

    Works on integer ids and on string names alike (missing values are ignored).

    Raises:
        ClassNotInPoolError: listing those classes (by name when ``names`` are given) and
            how many test rows have them.
    """
    import pyarrow.compute as pc

    pool = pc.drop_null(_as_arrow(pool_labels))
    test = pc.drop_null(_as_arrow(test_labels))
    if len(pool) == 0 or len(test) == 0:
        return
    if pool.type != test.type:
        try:
            test = test.cast(pool.type)
        except Exception:  # noqa: BLE001 - e.g. names vs ids: encode_labels reports it
            return
    pool_classes = pc.unique(pool)
    absent = pc.invert(pc.is_in(test, value_set=pool_classes))
    if not pc.any(absent).as_py():
        return
    missing = pc.value_counts(pc.filter(test, absent)).to_pylist()
    missing.sort(key=lambda item: (-item["counts"], str(item["values"])))

    def show(value: Any) -> str:
        if names is not None and isinstance(value, int) and 0 <= value < len(names):
            return f"{names[value]!r} (id {value})"
        return repr(value)

    listed = ", ".join(f"{show(m['values'])}: {m['counts']} rows" for m in missing[:_SHOW])
    raise ClassNotInPoolError(
        f"The {test_split} split has {len(missing)} class{'es' if len(missing) > 1 else ''} that the "
        f"pool never has ({listed}): the model would get classes it can never learn. Drop those "
        f"rows from the {test_split} split, or use a pool that contains them."
    )


# ---------------------------------------------------------------------- files
def check_text_encoding(
    path: str | os.PathLike, encoding: str = "utf-8", *, chunk_size: int = 1 << 20
) -> None:
    """Read a text data file (CSV/TSV/JSON lines) once, in chunks, and refuse bytes that
    are not valid in ``encoding``, naming the line, column and byte offset.

    Raises:
        DataEncodingError: with the position, the bad bytes and the two fixes
            (re-encode the file, or pass its encoding).
        PathNotFoundError: the file does not exist.
    """
    path = Path(path)
    check_path_exists(path, "data file")
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    except LookupError:
        raise DataEncodingError(
            f"Unknown encoding {encoding!r}: use e.g. utf-8, latin-1 or cp1252."
        ) from None
    offset, line, line_start = 0, 1, 0
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        bom = _bom_encoding(head)
        if bom in ("utf-16", "utf-32") and not codecs.lookup(encoding).name.startswith(bom):
            raise DataEncodingError(
                f"'{path}' starts with a {bom.upper()} byte-order mark but is read as {encoding}: "
                f"pass encoding: {bom}, or re-encode it as UTF-8."
            )
        while True:
            chunk = fh.read(chunk_size)
            final = not chunk
            try:
                decoder.decode(chunk, final=final)
            except UnicodeDecodeError as err:
                # err.start is relative to the decoder's buffered bytes + this chunk
                pending = len(err.object) - len(chunk)
                pos = offset - pending + err.start
                before = err.object[: err.start]
                line_here = line + before.count(b"\n")
                last_nl = before.rfind(b"\n")
                column = (err.start - last_nl) if last_nl >= 0 else (pos - line_start + 1)
                bad = err.object[err.start : err.end]
                raise DataEncodingError(
                    f"'{path}' is not valid {encoding}: byte{'s' if len(bad) > 1 else ''} "
                    f"{' '.join(f'{b:#04x}' for b in bad[:4])} at line {line_here}, column {column} "
                    f"(byte offset {pos}). Re-encode the file as UTF-8 (e.g. `iconv -f cp1252 -t "
                    f"utf-8 '{path.name}' > utf8-{path.name}`), or pass its encoding (e.g. "
                    "encoding: cp1252 or latin-1 for Western European text)."
                ) from None
            if final:
                return
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                line_start = offset + nl + 1
            line += chunk.count(b"\n")
            offset += len(chunk)


def _bom_encoding(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF32_LE) or head.startswith(codecs.BOM_UTF32_BE):
        return "utf-32"
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    return None


def _looks_like_path(spec: str) -> bool:
    """A string that can only be a local path (not a Hub id ``namespace/name``)."""
    return (
        spec.startswith((".", "/", "~"))
        or "\\" in spec
        or spec.count("/") > 1
        or spec.endswith("/")
        or os.path.splitext(spec)[1].lower()
        in (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt", ".arrow")
    )


def check_path_exists(path: str | os.PathLike, what: str = "path") -> Path:
    """The path, or `PathNotFoundError` naming it, the working directory and the
    nearest parent that exists."""
    p = Path(os.path.expanduser(os.fspath(path)))
    if p.exists():
        return p
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    raise PathNotFoundError(
        scrub(
            f"The {what} '{path}' does not exist (relative paths start at {os.getcwd()}; the "
            f"nearest existing folder is '{parent}'). Check the path."
        )
    )


def check_model_source(spec: Any, what: str = "model") -> Path | None:
    """A model/tokenizer given by name: its local directory when it is one, ``None`` for a
    Hub id. A string that can only be a path (``./x``, ``/x``, ``a/b/c``) must exist, so a
    typo is named as a missing path, not as a malformed Hub id.

    Raises:
        PathNotFoundError: a path that does not exist.
        EnergizerError: a local file where a directory is needed.
    """
    if not isinstance(spec, (str, os.PathLike)):
        return None
    text = os.fspath(spec)
    local = Path(os.path.expanduser(text))
    if local.exists():
        if not local.is_dir():
            raise EnergizerError(
                f"The {what} '{text}' is a file: give the directory that holds config.json and "
                "the weights (what save_pretrained wrote), or a Hub id."
            )
        return local
    if isinstance(spec, os.PathLike) or _looks_like_path(text):
        check_path_exists(text, f"{what} directory")
    return None


# ---------------------------------------------------------------------- tokenizer and model
_VOCAB_FILES = (
    "tokenizer.json",
    "vocab*.txt",
    "vocab*.json",
    "merges.txt",
    "*.model",
    "*.spm",
    "*.tiktoken",
    "bpe.codes",
    "*.vocab",
)


def check_tokenizer_files(model_dir: str | os.PathLike) -> None:
    """Refuse a local model directory that has no tokenizer vocabulary, before
    ``AutoTokenizer.from_pretrained`` silently builds a tokenizer of a few special tokens
    that maps every word to ``[UNK]``.

    A directory counts as having a tokenizer when it holds ``tokenizer.json`` or a
    vocabulary file (``vocab.txt``, ``vocab.json`` + ``merges.txt``, ``*.model`` /
    ``*.spm`` SentencePiece files, ``*.tiktoken``); ``tokenizer_config.json`` alone carries
    no vocabulary.

    Raises:
        MissingTokenizerError: saying how to fix it (save the tokenizer there, or give
            ``tokenizer:``).
    """
    directory = Path(model_dir)
    if not directory.is_dir():
        return
    names = [p.name for p in directory.iterdir() if p.is_file()]
    if any(fnmatch.fnmatch(n, pattern) for n in names for pattern in _VOCAB_FILES):
        return
    extra = (
        " (it has tokenizer_config.json, but no vocabulary file)"
        if "tokenizer_config.json" in names
        else ""
    )
    raise MissingTokenizerError(
        f"The model directory '{directory}' has no tokenizer files{extra}: transformers would "
        "build a tokenizer that maps every word to [UNK], and the run would learn nothing. "
        "Save the tokenizer there (tokenizer.save_pretrained(dir)) or give one with "
        "tokenizer: <Hub id or directory>."
    )


def _embedding_rows(model: Any) -> tuple[int | None, str]:
    get = getattr(model, "get_input_embeddings", None)
    if callable(get):
        emb = get()
        rows = getattr(emb, "num_embeddings", None)
        if rows is None and getattr(emb, "weight", None) is not None:
            rows = int(emb.weight.shape[0])
        if rows is not None:
            return int(rows), "embedding matrix"
    config = getattr(model, "config", model)
    if isinstance(config, Mapping):
        size = config.get("vocab_size")
    else:
        size = getattr(config, "vocab_size", None)
        if size is None and hasattr(config, "get_text_config"):
            size = getattr(config.get_text_config(), "vocab_size", None)
    return (int(size) if size is not None else None), "vocab_size"


def check_vocab_fits(tokenizer: Any, model: Any) -> None:
    """Refuse a tokenizer whose ids go beyond the model's input embeddings (an
    ``IndexError`` deep in torch at the first batch otherwise).

    Args:
        tokenizer: a ``transformers`` tokenizer (``len(tokenizer)`` counts added tokens).
        model: a model (its input embeddings are measured), a config, or a mapping with
            ``vocab_size``.

    Raises:
        VocabularyMismatchError: with both sizes and the two fixes.
    """
    try:
        size = len(tokenizer)
    except TypeError:
        size = getattr(tokenizer, "vocab_size", None)
    rows, source = _embedding_rows(model)
    if size is None or rows is None or size <= rows:
        return
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    raise VocabularyMismatchError(
        f"The tokenizer '{name}' has {size} tokens but the model's {source} has {rows} rows: "
        f"token ids >= {rows} would crash the model. Use the tokenizer that belongs to the model "
        "(tokenizer: <the model's Hub id or directory>), or resize the model's embeddings "
        "(model.resize_token_embeddings(len(tokenizer))) when the tokenizer is meant to be larger."
    )


def check_sequence_classification(config: Any, *, source: str | None = None) -> None:
    """Refuse a model type that has no sequence-classification class in ``transformers``
    (``AutoModelForSequenceClassification`` would fail with a long message, or a custom
    model would get no head).

    Args:
        config: a ``PretrainedConfig``, a mapping (``config.json``), a model type string,
            or a local model directory.
        source: the model's name, for the message.

    Raises:
        UnsupportedModelError: naming the model type and a few supported ones.
    """
    data: Any = config
    if isinstance(config, (str, os.PathLike)) and Path(config).is_dir():
        source = source or os.fspath(config)
        try:
            data = json.loads((Path(config) / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise UnsupportedModelError(
                f"'{config}' has no readable config.json: give a directory written by "
                "save_pretrained, or a Hub id."
            ) from None
    if isinstance(data, str):
        model_type, auto_map, archs = data, {}, []
    elif isinstance(data, Mapping):
        model_type, auto_map, archs = (
            data.get("model_type"),
            data.get("auto_map") or {},
            data.get("architectures") or [],
        )
    else:
        model_type = getattr(data, "model_type", None)
        auto_map = getattr(data, "auto_map", None) or {}
        archs = getattr(data, "architectures", None) or []
    if "AutoModelForSequenceClassification" in auto_map or any(
        "ForSequenceClassification" in a for a in archs
    ):
        return  # remote code or a checkpoint that already is a classifier
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
    )

    if model_type in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
        return
    where = f" of '{source}'" if source else ""
    raise UnsupportedModelError(
        f"The model type {model_type!r}{where} has no sequence-classification class in transformers "
        "(AutoModelForSequenceClassification does not support it). Use a model with such a head, "
        "e.g. bert, roberta, deberta-v2, distilbert, electra, xlm-roberta, modernbert."
    )


# ---------------------------------------------------------------------- run directory
def check_run_dir(run_dir: str | os.PathLike, *, write: bool = True) -> Path:
    """Refuse a ``run_dir`` that is a file, lies under a file, or (with ``write``) cannot be
    created or written; returns it as a ``Path``. Nothing is left behind.

    Raises:
        RunDirError: naming the path and what to do.
    """
    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise RunDirError(
            f"run_dir '{path}' is a file, not a directory: choose another run_dir or move that file."
        )
    existing = path
    while not existing.exists():
        if existing == existing.parent:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise RunDirError(
            f"run_dir '{path}' cannot be created: '{existing}' is a file. Choose another run_dir."
        )
    if write and existing.exists() and not _writable(existing):
        what = (
            "is not writable"
            if existing == path
            else f"cannot be created: '{existing}' is not writable"
        )
        raise RunDirError(
            f"run_dir '{path}' {what}. Choose a run_dir you can write to, or fix the "
            "permissions (e.g. chmod u+w). A finished run can still be read from a read-only "
            "directory (energizer-hf check)."
        )
    return path


def _writable(directory: Path) -> bool:
    if not os.access(directory, os.W_OK | os.X_OK):
        return False
    # os.access ignores read-only mounts for root in some set-ups: try it
    import tempfile

    try:
        fd, name = tempfile.mkstemp(prefix=".energizer-write-test.", dir=directory)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True
