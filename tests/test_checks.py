"""Data, model and run-directory checks before any work: one test per case of issue 14."""

from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow as pa
import pytest

from energizer_hf.checks import (
    check_label_values,
    check_missing,
    check_model_source,
    check_path_exists,
    check_run_dir,
    check_sequence_classification,
    check_test_classes,
    check_text_encoding,
    check_tokenizer_files,
    check_vocab_fits,
    missing_mask,
)
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
from tests._readonly import read_only

MASKS = [
    (np.array([0.0, np.nan, 2.0]), [False, True, False]),
    (np.array([1, 2, 3]), [False, False, False]),
    (pa.array([1, None, 3]), [False, True, False]),
    (pa.array([1.0, float("nan"), None]), [False, True, True]),
    (pa.array(["a", "", "  \t", None, "b"]), [False, True, True, True, False]),
    (pa.chunked_array([pa.array(["x", None]), pa.array(["", "y"])]), [False, True, True, False]),
    (pa.array(["a", None], type=pa.large_string()), [False, True]),
    (np.array(["a", "", None], dtype=object), [False, True, True]),
    (pa.array([[1], [], None]), [False, True, True]),
]


@pytest.mark.parametrize("column, expected", MASKS)
def test_missing_mask(column, expected):
    assert missing_mask(column).tolist() == expected


def _csv_dataset(tmp_path, text):
    import datasets

    path = tmp_path / "data.csv"
    path.write_text(text)
    return datasets.load_dataset("csv", data_files={"train": str(path)})["train"]


def test_empty_text_cells_and_nan_labels_of_a_real_csv(tmp_path):
    """pandas reads an empty cell as NaN: a null text and a float label column with NaN."""
    ds = _csv_dataset(tmp_path, "text,label\ngood,1\n,0\nbad,\nfine,0\n   ,1\n")
    assert ds.features["label"].dtype == "float64"  # why NaN silently became a class
    cols = {"text": ds.data.column("text"), "label": ds.data.column("label")}
    with pytest.raises(MissingValuesError) as info:
        check_missing(cols, where="the pool")
    text = str(info.value)
    for piece in (
        "'text': 2 rows (e.g. row 1, 4)",
        "'label': 1 row (e.g. row 2)",
        "on_missing: drop",
    ):
        assert piece in text, text


def test_drop_missing_rows_with_a_count(tmp_path, caplog):
    ds = _csv_dataset(tmp_path, "text,label\ngood,1\n,0\nbad,\nfine,0\n")
    cols = {"text": ds.data.column("text"), "label": ds.data.column("label")}
    with caplog.at_level(logging.WARNING, logger="energizer_hf.checks"):
        report = check_missing(cols, on_missing="drop")
    assert report.keep.tolist() == [0, 3] and report.dropped == 2
    assert report.counts == {"text": 1, "label": 1}
    assert "Dropped 2 row(s)" in caplog.text
    kept = ds.select(report.keep)
    assert kept["text"][:] == ["good", "fine"]


def test_missing_check_edge_cases():
    assert check_missing({"text": pa.array(["a", "b"])}).keep is None
    with pytest.raises(MissingValuesError, match="Every row"):
        check_missing({"text": pa.array(["", None])}, on_missing="drop")
    with pytest.raises(MissingValuesError, match="'error' or 'drop'"):
        check_missing({"text": pa.array(["a"])}, on_missing="skip")


LABELS_BAD = [
    (np.array([0.0, 0.5, 1.0]), "non-integer numbers ([0.5])"),
    (pa.array([2.25, 1.0, None]), "non-integer numbers ([2.25])"),
    (np.array([0, -1, 1, -1]), "use a split with labels"),
    (pa.array([3, -2]), "negative class ids [-2]"),
]


@pytest.mark.parametrize("labels, words", LABELS_BAD)
def test_label_values_that_cannot_be_classes(labels, words):
    with pytest.raises(LabelMismatchError, match=None) as info:
        check_label_values(labels, where="the test split")
    assert words in str(info.value)


@pytest.mark.parametrize(
    "labels", [np.array([0.0, 1.0, 2.0]), pa.array([1, 0, None]), pa.array(["neg", "pos"])]
)
def test_label_values_that_are_fine(labels):
    check_label_values(labels)


def test_test_split_class_the_pool_never_has():
    pool = np.array([0, 1, 1, 0, 2])
    test = np.array([0, 3, 3, 1, 4])
    with pytest.raises(ClassNotInPoolError) as info:
        check_test_classes(pool, test, names=["a", "b", "c", "d", "e"])
    text = str(info.value)
    assert "2 classes that the pool never has" in text
    assert "'d' (id 3): 2 rows" in text and "'e' (id 4): 1 rows" in text
    assert isinstance(info.value, LabelMismatchError)  # callers catching the old error still do
    check_test_classes(pool, np.array([2, 1, 0]))
    check_test_classes(pa.array(["x", "y", None]), pa.array(["y", None]))
    with pytest.raises(ClassNotInPoolError, match="'z': 1 rows"):
        check_test_classes(pa.array(["x", "y"]), pa.array(["y", "z"]))


def test_encode_labels_refuses_an_unseen_integer_test_class():
    """encode_labels used to accept contiguous ids 0..C-1 over pool and test together, so a
    class only the test split has got a model output; it now refuses it, as promised."""
    from energizer_hf.learner import encode_labels

    with pytest.raises(ClassNotInPoolError, match="2: 1 rows"):
        encode_labels(np.array([0, 1, 0]), np.array([0, 1, 2]))
    names, _, test = encode_labels(np.array([0, 1, 2]), np.array([0, 1]))
    assert names == ["0", "1", "2"] and test.tolist() == [0, 1]


# ---------------------------------------------------------------------- encodings
def test_non_utf8_csv_names_line_column_and_fix(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\nok,0\nun café noir,1\n".encode("latin-1"))
    for chunk in (1 << 20, 7, 1):  # the position must not depend on chunking
        with pytest.raises(DataEncodingError) as info:
            check_text_encoding(path, chunk_size=chunk)
        text = str(info.value)
        assert "byte 0xe9 at line 3, column 7 (byte offset 22)" in text, text
        assert "iconv" in text and "encoding: cp1252" in text
    check_text_encoding(path, encoding="latin-1")
    import datasets

    with pytest.raises(Exception) as raw:  # what the user saw without the check
        datasets.load_dataset("csv", data_files={"train": str(path)})
    assert not isinstance(raw.value, EnergizerError)


def test_utf8_split_across_chunks_and_boms(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("text\n" + "é€😀\n" * 50, encoding="utf-8")
    for chunk in (1, 2, 3, 5, 1 << 20):
        check_text_encoding(path, chunk_size=chunk)
    sig = tmp_path / "sig.csv"
    sig.write_bytes(b"\xef\xbb\xbftext\nx\n")
    check_text_encoding(sig)
    wide = tmp_path / "wide.csv"
    wide.write_text("text\nx\n", encoding="utf-16")
    with pytest.raises(DataEncodingError, match="UTF-16 byte-order mark.*encoding: utf-16"):
        check_text_encoding(wide)
    check_text_encoding(wide, encoding="utf-16")
    with pytest.raises(DataEncodingError, match="Unknown encoding"):
        check_text_encoding(path, encoding="klingon")


# ---------------------------------------------------------------------- paths
def test_missing_paths_are_named(tmp_path):
    with pytest.raises(PathNotFoundError) as info:
        check_path_exists(tmp_path / "nope" / "train.csv", "data file")
    err = info.value
    assert isinstance(err, FileNotFoundError) and isinstance(err, EnergizerError)
    assert f"nearest existing folder is '{tmp_path}'" in str(err)


@pytest.mark.parametrize(
    "spec", ["./models/bert", "/no/such/model", "runs/x/final_model", "~/nope-model"]
)
def test_a_model_path_typo_is_a_missing_path_not_a_bad_repo_id(spec):
    with pytest.raises(PathNotFoundError, match="model directory"):
        check_model_source(spec)


def test_model_sources(tmp_path):
    assert check_model_source("prajjwal1/bert-tiny") is None  # a Hub id: checked by the Hub
    assert check_model_source("bert-base-uncased") is None
    assert check_model_source(tmp_path) == tmp_path
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(EnergizerError, match="is a file"):
        check_model_source(tmp_path / "weights.bin")


# ---------------------------------------------------------------------- tokenizer / model
@pytest.fixture
def tiny_model(tiny_bert_config):
    from transformers import BertForSequenceClassification

    return BertForSequenceClassification(tiny_bert_config)


def test_model_directory_without_tokenizer(tmp_path, tiny_model, demo_tokenizer):
    model_dir = tmp_path / "model"
    tiny_model.save_pretrained(model_dir)
    with pytest.raises(MissingTokenizerError) as info:
        check_tokenizer_files(model_dir)
    assert "tokenizer.save_pretrained" in str(info.value) and "tokenizer:" in str(info.value)
    # what happens without the check: transformers builds a tokenizer of special tokens
    from transformers import AutoTokenizer

    silent = AutoTokenizer.from_pretrained(model_dir)
    assert len(silent) < 10 and set(silent("active learning")["input_ids"][1:-1]) == {
        silent.unk_token_id
    }
    (model_dir / "tokenizer_config.json").write_text("{}")
    with pytest.raises(MissingTokenizerError, match="tokenizer_config.json, but no vocabulary"):
        check_tokenizer_files(model_dir)
    demo_tokenizer.save_pretrained(model_dir)
    check_tokenizer_files(model_dir)


@pytest.mark.parametrize(
    "files",
    [
        ["vocab.txt"],
        ["vocab.json", "merges.txt"],
        ["spiece.model"],
        ["sentencepiece.bpe.model"],
        ["tokenizer.json"],
    ],
)
def test_vocabulary_files_count_as_a_tokenizer(tmp_path, files):
    (tmp_path / "config.json").write_text("{}")
    for name in files:
        (tmp_path / name).write_text("x")
    check_tokenizer_files(tmp_path)


def test_tokenizer_larger_than_the_embeddings(demo_tokenizer, tiny_bert_config):
    from transformers import BertConfig, BertForSequenceClassification

    small = BertConfig(**{**tiny_bert_config.to_dict(), "vocab_size": len(demo_tokenizer) - 50})
    model = BertForSequenceClassification(small)
    with pytest.raises(VocabularyMismatchError) as info:
        check_vocab_fits(demo_tokenizer, model)
    text = str(info.value)
    assert f"{len(demo_tokenizer)} tokens" in text and f"{small.vocab_size} rows" in text
    assert "resize_token_embeddings" in text
    with pytest.raises(VocabularyMismatchError, match="vocab_size"):
        check_vocab_fits(demo_tokenizer, small)
    with pytest.raises(VocabularyMismatchError):
        check_vocab_fits(demo_tokenizer, {"vocab_size": 10})
    check_vocab_fits(demo_tokenizer, BertForSequenceClassification(tiny_bert_config))
    # without the check: an IndexError deep in torch at the first forward pass
    import torch

    ids = torch.tensor([[len(demo_tokenizer) - 1]])
    with pytest.raises(IndexError):
        model(input_ids=ids)


def test_model_type_without_a_sequence_classification_head(tmp_path, tiny_bert_config):
    from transformers import ViTConfig

    with pytest.raises(UnsupportedModelError) as info:
        check_sequence_classification(ViTConfig(), source="google/vit-base")
    assert "'vit' of 'google/vit-base'" in str(info.value) and "bert" in str(info.value)
    ViTConfig().save_pretrained(tmp_path / "vit")
    with pytest.raises(UnsupportedModelError, match="'vit'"):
        check_sequence_classification(tmp_path / "vit")
    with pytest.raises(UnsupportedModelError, match="no readable config.json"):
        check_sequence_classification(tmp_path)
    check_sequence_classification(tiny_bert_config)
    check_sequence_classification("roberta")
    check_sequence_classification(
        {"model_type": "mine", "auto_map": {"AutoModelForSequenceClassification": "m.X"}}
    )
    check_sequence_classification(
        {"model_type": "mine", "architectures": ["MineForSequenceClassification"]}
    )


# ---------------------------------------------------------------------- run directory
def test_run_dir_that_is_a_file_or_under_one(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunDirError, match="is a file"):
        check_run_dir(tmp_path / "f")
    with pytest.raises(RunDirError, match="cannot be created: .* is a file"):
        check_run_dir(tmp_path / "f" / "run")
    assert check_run_dir(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert not (tmp_path / "new").exists()


def test_run_dir_that_is_not_writable(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with read_only(run_dir):
        with pytest.raises(RunDirError, match="is not writable.*chmod"):
            check_run_dir(run_dir)
        with pytest.raises(RunDirError, match="cannot be created"):
            check_run_dir(run_dir / "sub")
        assert check_run_dir(run_dir, write=False) == run_dir
    assert json.dumps([p.name for p in run_dir.iterdir()]) == "[]"
