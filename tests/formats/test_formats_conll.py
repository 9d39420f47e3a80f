"""energizer_hf.formats.conll: CoNLL files into HF NER datasets, and their named errors."""

from __future__ import annotations

import warnings

import datasets
import numpy as np
import pytest

from energizer_hf.errors import (
    ColumnNotFoundError,
    DataFormatError,
    EmptyPoolError,
    EmptySentenceError,
    InvalidTagsError,
    TagLengthMismatchError,
    UnknownLabelError,
)
from energizer_hf.formats import check_token_columns, load_conll, read_conll, tag_names

WNUT_NAMES = [
    "O",
    "B-corporation",
    "I-corporation",
    "B-creative-work",
    "I-creative-work",
    "B-group",
    "I-group",
    "B-location",
    "I-location",
    "B-person",
    "I-person",
    "B-product",
    "I-product",
]


@pytest.fixture(autouse=True)
def _quiet():
    datasets.disable_progress_bars()
    yield
    datasets.enable_progress_bars()


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_layouts_docstart_and_separators(tmp_path):
    text = (
        "-DOCSTART-\tO\n\n"
        "EU\tB-ORG\nrejects\tO\nGerman\tB-MISC\ncall\tO\n"
        "\t\n\n\n"  # a whitespace-only line and several blank lines are one separator
        "Peter Blackburn\tB-PER\n"  # tab-separated: the token keeps its space
        "-DOCSTART- -X- -X- O\n"  # ends the sentence
        "BRUSSELS NNP B-NP B-LOC\n1996-08-22 CD I-NP O"  # space-separated, 4 columns, no final newline
    )
    ds = load_conll(write(tmp_path / "a.conll", text))
    assert ds.num_rows == 3
    assert ds["tokens"][:] == [
        ["EU", "rejects", "German", "call"],
        ["Peter Blackburn"],
        ["BRUSSELS", "1996-08-22"],
    ]
    names = ds.features["ner_tags"].feature.names
    assert names == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert [[names[i] for i in s] for s in ds["ner_tags"][:]] == [
        ["B-ORG", "O", "B-MISC", "O"],
        ["B-PER"],
        ["B-LOC", "O"],
    ]
    assert ds.features["tokens"] == datasets.Sequence(datasets.Value("string"))
    assert isinstance(ds.features["ner_tags"].feature, datasets.ClassLabel)


def test_crlf_and_bom(tmp_path):
    p = tmp_path / "w.conll"
    p.write_bytes("\ufeffHello\tO\r\nParis\tB-LOC\r\n\r\nBye\tO\r\n".encode())
    s = read_conll(p)
    assert s.tokens == ["Hello", "Paris", "Bye"] and s.tags == ["O", "B-LOC", "O"]
    assert s.lengths.tolist() == [2, 1] and s.lines.tolist() == [1, 2, 4]


def test_splits_share_one_label_set_and_order(tmp_path):
    train = write(tmp_path / "train.conll", "a\tB-PER\nb\tO\n")
    test = write(tmp_path / "test.conll", "c\tI-LOC\nd\tI-LOC\n\ne\tB-ORG\n")
    with pytest.warns(UserWarning, match="1 I- tags continue no entity"):
        dd = load_conll({"train": train, "test": [test, train]})
    assert isinstance(dd, datasets.DatasetDict)
    expected = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    for split in ("train", "test"):
        assert dd[split].features["ner_tags"].feature.names == expected
    assert dd["test"].num_rows == 3  # the test file then the train file
    assert dd["test"]["ner_tags"][:] == [[1, 2], [3], [5, 0]]  # I-LOC I-LOC repaired to B-LOC I-LOC
    # an explicit order is kept; a tag outside it is named with file:line
    order = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    ds = load_conll([train], label_names=order)
    assert ds.features["ner_tags"].feature.names == order and ds["ner_tags"][:] == [[1, 0]]
    with (
        pytest.warns(UserWarning, match="I- tags"),
        pytest.raises(UnknownLabelError, match=r"test.conll:4: tag 'B-ORG' is not in label_names"),
    ):
        load_conll(test, label_names=["O", "B-LOC", "I-LOC"])
    with pytest.raises(InvalidTagsError):
        load_conll(train, label_names=["O", "PER"])


def test_bio_strict_refuses_with_file_and_line(tmp_path):
    p = write(tmp_path / "x.conll", "a\tB-PER\n\nb\tO\nc\tI-PER\n")
    with pytest.raises(InvalidTagsError, match=r"x.conll:4: 'I-PER' continues no entity") as info:
        read_conll(p, bio="strict")
    assert (info.value.sentence, info.value.position) == (1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_conll(write(tmp_path / "ok.conll", "a\tB-PER\nb\tI-PER\n"), bio="strict")
    with pytest.raises(InvalidTagsError, match=r"y.conll:2: .*'E-PER'"):
        read_conll(write(tmp_path / "y.conll", "a\tO\nb\tE-PER\n"))


@pytest.mark.parametrize(
    "text, line",
    [
        ("a\tO\nlonely\n", 2),  # one field
        ("a\tO\n\tO\n", 2),  # empty token
        ("a\tO\n\nb\t\t\n", 3),  # empty tag
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, text, line):
    p = write(tmp_path / "bad.conll", text)
    with pytest.raises(DataFormatError, match=rf"bad.conll:{line}: expected 'token<TAB>tag'"):
        read_conll(p)


def test_non_utf8_and_empty_files(tmp_path):
    p = write(tmp_path / "latin.conll", "a\tO\n\nM\u00fcnchen\tB-LOC\n", encoding="latin-1")
    with pytest.raises(DataFormatError, match=r"latin.conll:3: the file is not UTF-8 \(byte 0xfc"):
        read_conll(p)
    with pytest.raises(EmptyPoolError, match="no sentence"):
        read_conll(write(tmp_path / "empty.conll", "\n\n-DOCSTART- O\n\n"))
    with pytest.raises(FileNotFoundError):
        read_conll(tmp_path / "missing.conll")
    with pytest.raises(EmptyPoolError):
        load_conll([])


def test_tag_names_order():
    assert tag_names(["I-b", "O", "B-a", "B-b"]) == ["O", "B-a", "I-a", "B-b", "I-b"]
    assert tag_names(["O"]) == ["O"]
    with pytest.raises(InvalidTagsError):
        tag_names(["X"])


def test_check_token_columns():
    ds = datasets.Dataset.from_dict(
        {"tokens": [["a", "b"], ["c"], ["d", "e", "f"]], "ner_tags": [[0, 0], [1], [0, 1, 2]]}
    )
    assert check_token_columns(ds).tolist() == [2, 1, 3]
    assert check_token_columns(ds.select([2, 0])).tolist() == [3, 2]  # indices mapping respected
    bad = datasets.Dataset.from_dict({"tokens": [["a"], ["b", "c"]], "ner_tags": [[0], [0]]})
    with pytest.raises(TagLengthMismatchError, match="Row 1 has 2 tokens .* and 1 tags"):
        check_token_columns(bad)
    assert check_token_columns(bad, tags_column=None).tolist() == [1, 2]
    empty = datasets.Dataset.from_dict({"tokens": [["a"], []], "ner_tags": [[0], []]})
    with pytest.raises(EmptySentenceError, match="Row 1 has no tokens"):
        check_token_columns(empty)
    with pytest.raises(ColumnNotFoundError):
        check_token_columns(ds, "words")


def test_wnut17_counts_match_the_readme(shared_data):
    folder = shared_data / "wnut17"
    if not (folder / "train.conll").exists():
        pytest.skip(f"{folder} is not present")
    files = {s: folder / f"{s}.conll" for s in ("train", "validation", "test")}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the files are valid IOB2: nothing to repair
        dd = load_conll(files)
    assert {s: dd[s].num_rows for s in dd} == {"train": 3394, "validation": 1009, "test": 1287}
    for split, path in files.items():
        assert dd[split].features["ner_tags"].feature.names == WNUT_NAMES  # the Hub's order
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        lengths = check_token_columns(dd[split])
        assert lengths.sum() == len(lines)
        tags = np.concatenate([np.asarray(t) for t in dd[split]["ner_tags"][:]])
        expected = np.array([WNUT_NAMES.index(line.split("\t")[-1]) for line in lines])
        np.testing.assert_array_equal(tags, expected)
