"""energizer_hf.formats.multilabel: every column form to one multi-hot matrix."""

from __future__ import annotations

import time

import datasets
import numpy as np
import pyarrow as pa
import pytest

from energizer_hf.errors import (
    ColumnNotFoundError,
    DataFormatError,
    EmptyLabelSetError,
    UnknownLabelError,
)
from energizer_hf.formats import multilabel_column, read_label_names, to_multi_hot

NAMES = ["anger", "joy", "fear"]
EXPECTED = [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


@pytest.mark.parametrize(
    "values, kw",
    [
        (["joy;anger", "joy", "fear"], {}),
        ([" joy ; anger;", "joy;joy", "fear"], {}),  # spaces, empty pieces, duplicates
        (["joy|anger", "joy", "fear"], {"sep": "|"}),
        ([["joy", "anger"], ["joy"], ["fear"]], {}),
        ([[1, 0], [1], [2]], {}),
        (np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]]), {}),
        (np.array([[True, True, False], [False, True, False], [False, False, True]]), {}),
        ([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], {}),
        ([[1, 1, 0], [0, 1, 0], [0, 0, 1]], {"kind": "multi_hot"}),
        (pa.chunked_array([["joy;anger"], ["joy", "fear"]]), {}),
        (
            pa.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]], type=pa.list_(pa.int8(), 3)),
            {},
        ),  # fixed-size lists are multi-hot
    ],
)
def test_every_form_gives_the_same_matrix(values, kw):
    m, names = to_multi_hot(values, label_names=NAMES, **kw)
    assert m.dtype == np.uint8 and m.tolist() == EXPECTED and names == NAMES


def test_names_are_inferred_sorted_and_ids_use_the_range():
    m, names = to_multi_hot(["joy;anger", "fear"])
    assert names == ["anger", "fear", "joy"] and m.tolist() == [[1, 0, 1], [0, 1, 0]]
    m, names = to_multi_hot([[0, 3], [1]])
    assert names == ["0", "1", "2", "3"] and m.shape == (2, 4)
    m, names = to_multi_hot([[0], [1]], num_labels=5)
    assert m.shape == (2, 5)
    m, _ = to_multi_hot(np.array([2, 0, 1]), label_names=NAMES)  # one id per row
    assert m.tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0]]


def test_unknown_names_and_ids_out_of_range_are_named():
    with pytest.raises(UnknownLabelError, match=r"\['rage'\] at row 1 \(2 rows in all\)"):
        to_multi_hot(["joy", "rage;joy", "rage"], label_names=NAMES)
    with pytest.raises(UnknownLabelError, match=r"Label id 3 at row 2 .* outside \[0, 3\)"):
        to_multi_hot([[0], [1], [3]], label_names=NAMES)
    with pytest.raises(UnknownLabelError, match="-1"):
        to_multi_hot([[0], [-1]], num_labels=3)
    with pytest.raises(UnknownLabelError, match="duplicates"):
        to_multi_hot(["joy"], label_names=["joy", "joy"])


def test_empty_rows_refused_unless_allowed():
    values = ["joy", "", None, "anger;"]
    with pytest.raises(EmptyLabelSetError, match=r"row 1 \(2 rows in all\) has no label"):
        to_multi_hot(values, label_names=NAMES)
    m, _ = to_multi_hot(values, label_names=NAMES, allow_empty=True)
    assert m.tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0]]
    with pytest.raises(EmptyLabelSetError):
        to_multi_hot([[1], []], label_names=NAMES)
    with pytest.raises(EmptyLabelSetError):
        to_multi_hot(np.array([[0, 0, 0]]), label_names=NAMES)
    assert to_multi_hot([[], [0]], label_names=NAMES, allow_empty=True)[0].sum() == 1


def test_bad_multi_hot_rows():
    with pytest.raises(DataFormatError, match=r"row 1 \(1 row in all\) has 2 entries"):
        to_multi_hot([[1.0, 0.0, 0.0], [1.0, 0.0]], label_names=NAMES)
    with pytest.raises(DataFormatError, match="0 or 1"):
        to_multi_hot(np.array([[2, 0, 0]]), label_names=NAMES)
    with pytest.raises(DataFormatError, match="label set has 3"):
        to_multi_hot(np.array([[1, 0]]), label_names=NAMES)
    with pytest.raises(DataFormatError, match="not understood"):
        to_multi_hot([{"a": 1}])


def test_dataset_columns_and_classlabel_names():
    features = datasets.Features(
        {
            "labels": datasets.Sequence(datasets.ClassLabel(names=NAMES)),
            "text": datasets.Value("string"),
        }
    )
    ds = datasets.Dataset.from_dict(
        {"labels": [[0, 1], [1], [2]], "text": ["a", "b", "c"]}, features=features
    )
    m, names = multilabel_column(ds, "labels")
    assert names == NAMES and m.tolist() == EXPECTED
    m, _ = multilabel_column(ds.select([2, 0]), "labels")  # indices mapping respected
    assert m.tolist() == [EXPECTED[2], EXPECTED[0]]
    with pytest.raises(ColumnNotFoundError):
        multilabel_column(ds, "label")
    single = datasets.Dataset.from_dict(
        {"label": [2, 0]}, features=datasets.Features({"label": datasets.ClassLabel(names=NAMES)})
    )
    assert multilabel_column(single, "label")[0].tolist() == [[0, 0, 1], [1, 0, 0]]


def test_read_label_names(tmp_path):
    p = tmp_path / "labels.txt"
    p.write_text("anger\n\njoy\nfear")
    assert read_label_names(p) == NAMES[:1] + ["joy", "fear"]
    p.write_text("a\nb\na\n")
    with pytest.raises(UnknownLabelError, match=r"\['a'\]"):
        read_label_names(p)


def test_goemotions_all_splits(shared_data):
    folder = shared_data / "goemotions"
    if not (folder / "train.csv").exists():
        pytest.skip(f"{folder} is not present")
    datasets.disable_progress_bars()
    names = read_label_names(folder / "labels.txt")
    assert len(names) == 28
    sizes = {"train": 43410, "validation": 5426, "test": 5427}
    for split, n in sizes.items():
        ds = datasets.load_dataset("csv", data_files=str(folder / f"{split}.csv"), split="train")
        start = time.process_time()
        m, got = multilabel_column(ds, "labels", label_names=names)
        cpu = time.process_time() - start
        assert got == names and m.shape == (n, 28) and m.dtype == np.uint8
        assert (m.sum(1) >= 1).all()
        assert 0.1 < (m.sum(1) >= 2).mean() < 0.25  # "~16% of rows carry 2+ labels"
        # vectorised: tens of milliseconds of CPU for 43k rows (a per-row loop is ~10x more)
        assert cpu < 2.0
        if split == "validation":  # the reference, row by row, on the smaller split
            index = {name: i for i, name in enumerate(names)}
            ref = np.zeros((n, 28), dtype=np.uint8)
            for row, labels in enumerate(ds["labels"][:]):
                for name in labels.split(";"):
                    ref[row, index[name]] = 1
            np.testing.assert_array_equal(m, ref)
    train = datasets.load_dataset("csv", data_files=str(folder / "train.csv"), split="train")
    m, _ = multilabel_column(train, "labels", label_names=names)
    assert m[:, names.index("grief")].sum() == 77  # the README's rare label
