"""WidgetOracle on multi-label runs: toggles per label, "done"/"skip", label sets to the store."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest

from energizer_hf.errors import EmptyLabelSetError, EnergizerError, UnknownLabelError
from energizer_hf.oracles.base import AwaitingAnnotations
from energizer_hf.oracles.widget import WidgetOracle

NAMES = ["sports", "finance", "science", "politics", "cooking"]
TEXTS = [f"text {i}" for i in range(10)]


@pytest.fixture(scope="module")
def ml_data():
    from energizer_hf.demo import make_multilabel_dataset

    return make_multilabel_dataset(200, 60, seed=0)


@pytest.fixture(scope="module")
def ml_tok(ml_data):
    from energizer_hf.demo import train_wordpiece_tokenizer

    return train_wordpiece_tokenizer(ml_data["train"]["text"][:], vocab_size=200)


def _answer_for(i: int):
    """A fixed label set per pool id (names and ids mixed); every 7th id skipped."""
    if i % 7 == 0:
        return None
    labels = [NAMES[i % 5]]
    if i % 3 == 0:
        labels.append((i + 2) % 5)  # an id
    return labels


def _ids_of(labels) -> list[int]:
    return sorted({NAMES.index(v) if isinstance(v, str) else int(v) for v in labels})


def test_headless_answers_flow_into_a_multilabel_run(tmp_path, ml_data, ml_tok):
    from energizer_hf.demo import build_tiny_bert
    from energizer_hf.learner import ActiveLearner
    from tests.conftest import learner_kwargs

    asked: dict[int, object] = {}

    def answer(ids, round):
        out = [_answer_for(int(i)) for i in ids]
        asked.update(zip(ids.tolist(), out))
        return out

    oracle = WidgetOracle(ml_data["train"]["text"][:], NAMES, answer=answer)  # multi_label from the run
    learner = ActiveLearner(
        dataset=ml_data, model=build_tiny_bert(len(ml_tok), hidden=16, layers=1), tokenizer=ml_tok,
        oracle=oracle, strategy="random",
        **learner_kwargs(tmp_path, label_column="labels", rounds=1, query_size=14, initial_size=14),
    )
    results = learner.run()
    assert oracle.multi_label and not oracle.allow_empty
    assert results.stop_reason != "awaiting_annotations" and len(results) == 2
    store = learner.pool.label_store
    labelled = set(learner.pool.labelled_ids.tolist())
    skipped = {i for i, a in asked.items() if a is None}
    assert skipped and labelled == set(asked) - skipped  # skips go back to the pool
    for i in labelled:
        assert np.flatnonzero(store.multi_hot([i])[0]).tolist() == _ids_of(asked[i]), i
    # the oracle's history holds what annotate returned: sorted id lists, None for a skip
    for h in oracle.history.values():
        assert [None if a is None else _ids_of(a) for a in (asked[i] for i in h["ids"])] == h["labels"]


def test_set_label_names_ids_skip_and_refusals():
    oracle = WidgetOracle(TEXTS, NAMES, multi_label=True)
    oracle._round, oracle._ids = 1, np.array([3, 5, 8, 9])
    oracle.set_label(3, ["science", "sports"])
    oracle.set_label(5, [4, 1, 4])
    oracle.set_label(8, "skip")
    assert oracle.pending == 1
    oracle.set_label(9, ["cooking", 0])
    assert oracle.annotate(np.array([3, 5, 8, 9]), round=1) == [[0, 2], [1, 4], None, [0, 4]]
    assert oracle.history[1]["labels"] == [[0, 2], [1, 4], None, [0, 4]]

    oracle._round, oracle._ids = 2, np.array([0, 1])
    for skip in (None, -1, "skip"):
        oracle.set_label(0, skip)
        assert oracle._given[0] is None
    with pytest.raises(UnknownLabelError, match="'chess' is not in the label set"):
        oracle.set_label(0, ["sports", "chess"])
    with pytest.raises(UnknownLabelError, match="Label id 5 is outside"):
        oracle.set_label(0, [5])
    with pytest.raises(EmptyLabelSetError, match="does not allow rows with no label"):
        oracle.set_label(0, [])
    with pytest.raises(EnergizerError, match="not queried in this round"):
        oracle.set_label(7, ["sports"])
    assert 1 not in oracle._given

    allowing = WidgetOracle(TEXTS, NAMES, multi_label=True)
    allowing.bind(SimpleNamespace(config={"task": "multi_label", "allow_empty_labels": True}), None, None)
    allowing._round, allowing._ids = 1, np.array([2])
    allowing.set_label(2, [])
    assert allowing.annotate(np.array([2]), round=1) == [[]]


def test_headless_answer_errors_and_multi_hot():
    oracle = WidgetOracle(TEXTS, NAMES, multi_label=True, answer=lambda ids, r: [["sports"]])
    with pytest.raises(EnergizerError, match="1 label sets for 2 ids"):
        oracle.annotate(np.array([0, 1]), round=0)
    bad = WidgetOracle(TEXTS, NAMES, multi_label=True, answer=lambda ids, r: [["golf"]])
    with pytest.raises(UnknownLabelError, match="golf"):
        bad.annotate(np.array([0]), round=0)
    empty = WidgetOracle(TEXTS, NAMES, multi_label=True, answer=lambda ids, r: [[]])
    with pytest.raises(EmptyLabelSetError):
        empty.annotate(np.array([0]), round=0)
    hot = WidgetOracle(TEXTS, NAMES, multi_label=True,
                       answer=lambda ids, r: np.array([[1, 0, 0, 1, 0], [-1, -1, -1, -1, -1]]))
    assert hot.annotate(np.array([4, 6]), round=0) == [[0, 3], None]


def test_bind_takes_the_task_and_refuses_a_contradiction():
    run_ml = SimpleNamespace(config={"task": "multi_label"})
    run_sl = SimpleNamespace(config={"task": "text_classification"})
    auto = WidgetOracle(TEXTS, NAMES)
    assert not auto.multi_label
    auto.bind(run_ml, None, None)
    assert auto.multi_label and not auto.allow_empty
    auto.bind(SimpleNamespace(config={}), None, None)  # a run that does not say: unchanged
    assert auto.multi_label
    with pytest.raises(EnergizerError, match="multi_label=False but the run's task is 'multi_label'"):
        WidgetOracle(TEXTS, NAMES, multi_label=False).bind(run_ml, None, None)
    with pytest.raises(EnergizerError, match="multi_label=True"):
        WidgetOracle(TEXTS, NAMES, multi_label=True).bind(run_sl, None, None)
    single = WidgetOracle(TEXTS, NAMES, answer=lambda ids, r: [2, -1])
    single.bind(run_sl, None, None)
    assert single.annotate(np.array([0, 1]), round=0).tolist() == [2, -1]  # single-label as before


@pytest.mark.skipif(importlib.util.find_spec("ipywidgets") is None, reason="needs ipywidgets")
def test_widget_toggles_set_the_labels(monkeypatch):
    import IPython.display
    import ipywidgets as w

    from energizer_hf.oracles import widget

    monkeypatch.setattr(widget, "in_notebook", lambda: True)
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda x: shown.append(x))
    oracle = WidgetOracle(TEXTS, NAMES, multi_label=True)
    ids = np.array([4, 2, 7])
    with pytest.raises(AwaitingAnnotations):
        oracle.annotate(ids, round=3)
    assert len(shown) == 1 and shown[0] is oracle.widget
    assert sorted(oracle.buttons) == [2, 4, 7]
    for i, pool_id in enumerate(ids.tolist()):
        row = oracle.widget.children[1 + i]
        assert TEXTS[pool_id] in row.children[0].value
        toggles = oracle.buttons[pool_id]
        assert list(toggles) == NAMES and all(isinstance(t, w.ToggleButton) for t in toggles.values())
        assert isinstance(oracle.controls[pool_id]["done"], w.Button)

    # 4: two labels on, done; 2: nothing on, done is refused (shown, not raised), then skip
    oracle.buttons[4]["finance"].value = True
    oracle.buttons[4]["cooking"].value = True
    oracle.controls[4]["done"].click()
    oracle.controls[2]["done"].click()
    assert 2 not in oracle._given and "no label" in oracle.controls[2]["note"].value
    oracle.controls[2]["skip"].click()
    # 7: one label, done, then changed: the answer is taken back until "done" again
    oracle.buttons[7]["science"].value = True
    oracle.controls[7]["done"].click()
    assert oracle._given[7] == [2]
    oracle.buttons[7]["politics"].value = True
    assert 7 not in oracle._given and oracle.pending == 1
    assert "2/3 labelled" in oracle.widget.children[0].value
    with pytest.raises(AwaitingAnnotations):
        oracle.annotate(ids, round=3)
    oracle.controls[7]["done"].click()
    assert "collect()" in oracle.widget.children[0].value
    assert oracle.annotate(ids, round=3) == [[1, 4], None, [2, 3]]
    assert len(shown) == 1  # the same round is not shown twice
