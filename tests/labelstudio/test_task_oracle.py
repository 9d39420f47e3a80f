"""The Label Studio oracle for named entities (spans) and multi-label (multiple choices),
against a real Label Studio server: pre-annotations from the run's model, annotations read
back to word-level BIO tags / label sets, skips."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pytest

from tests.conftest import learner_kwargs

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Person(threading.Thread):
    """Answers every new task of the project with ``answer(pool_id, text)`` (``None``: skip)."""

    def __init__(self, url, token, title, answer):
        super().__init__(daemon=True)
        from label_studio_sdk import LabelStudio

        self.client = LabelStudio(base_url=url, api_key=token, timeout=60)
        self.title, self.answer = title, answer
        self.halt = threading.Event()
        self.errors: list[BaseException] = []

    def run(self):
        try:
            while not self.halt.is_set():
                pid = next((p.id for p in self.client.projects.list() if p.title == self.title), None)
                for t in self.client.tasks.list(project=pid) if pid is not None else []:
                    if t.annotations:
                        continue
                    result = self.answer(t.data["pool_id"], t.data["text"])
                    if result is None:
                        self.client.annotations.create(id=t.id, result=[], was_cancelled=True)
                    else:
                        self.client.annotations.create(id=t.id, result=result)
                time.sleep(0.2)
        except BaseException as exc:  # noqa: BLE001
            self.errors.append(exc)


def _oracle(label_studio, tmp_path, title, **kw):
    from energizer_hf.oracles import LabelStudioOracle

    return LabelStudioOracle(url=label_studio.url, token=label_studio.token, project=title, poll_interval=0.2,
                             progress=False, timeout=300, run_dir=tmp_path / "run", **kw)


def _run(learner, person):
    person.start()
    try:
        return learner.run()
    finally:
        person.halt.set()
        person.join()


def test_ner_spans_with_pre_annotations_read_back_as_bio(label_studio, ls_client, tmp_path):
    from energizer_hf.demo import build_tiny_bert, make_ner_dataset, train_wordpiece_tokenizer
    from energizer_hf.learner import ActiveLearner
    from energizer_hf.oracles.label_studio.annotations import tags_to_spans

    data = make_ner_dataset(120, 30, seed=0)
    tok = train_wordpiece_tokenizer([" ".join(t) for t in data["train"]["tokens"][:]], vocab_size=200)
    names = data["train"].features["ner_tags"].feature.names
    from energizer_hf.tasks import read_tags

    # the gold tags as the run stores them (an I- after O repaired to B-, read_tags' rule)
    _, _repaired = read_tags(data["train"], "ner_tags")
    gold = [t.tolist() for t in _repaired[list(range(len(data["train"])))]]
    title = f"ner-{uuid.uuid4().hex[:8]}"
    skip = {int(i) for i in range(0, 120, 7)}

    def answer(pool_id, text):
        if pool_id in skip:
            return None
        return tags_to_spans(gold[pool_id], names, text.split(" "))

    oracle = _oracle(label_studio, tmp_path, title)
    learner = ActiveLearner(dataset=data, model=build_tiny_bert(len(tok), hidden=16, layers=1), tokenizer=tok,
                            strategy="token_entropy", oracle=oracle,
                            **learner_kwargs(tmp_path, initial_strategy="random", rounds=1))
    person = Person(label_studio.url, label_studio.token, title, answer)
    res = _run(learner, person)
    assert not person.errors
    assert oracle.task == "ner"
    pool = learner.pool
    labelled = pool.labelled_ids
    assert labelled.size == res[-1]["num_labelled"] > 0
    assert not set(labelled.tolist()) & skip  # skipped sentences stay unlabelled
    for i in labelled.tolist():  # the spans people drew, read back to word-level BIO tags
        assert pool.label_store.word_tags([i])[0].tolist() == gold[i]
    project = ls_client.projects.get(id=oracle.project_id)
    assert list(project.get_label_interface().get_control("label").labels) == ["LOC", "ORG", "PER"]
    tasks = [t for t in ls_client.tasks.list(project=oracle.project_id) if t.data["round"] == 1]
    preds = ls_client.predictions.list(task=tasks[0].id)
    assert len(preds) == 1 and preds[0].model_version == "energizer-hf-round-1"
    for region in preds[0].result:  # spans of the model's predicted tags, on word boundaries
        text = tasks[0].data["text"]
        v = region["value"]
        assert region["type"] == "labels" and v["labels"][0] in ("LOC", "ORG", "PER")
        assert text[v["start"]:v["end"]] == v["text"] and (v["start"] == 0 or text[v["start"] - 1] == " ")


def test_multilabel_choices_with_pre_annotations(label_studio, ls_client, tmp_path):
    from energizer_hf.demo import (
        build_tiny_bert,
        make_multilabel_dataset,
        train_wordpiece_tokenizer,
    )
    from energizer_hf.learner import ActiveLearner

    data = make_multilabel_dataset(120, 30, seed=0)
    tok = train_wordpiece_tokenizer(data["train"]["text"][:], vocab_size=200)
    names = data["train"].features["labels"].feature.names
    gold = data["train"]["labels"][:]
    title = f"ml-{uuid.uuid4().hex[:8]}"
    empty: list[int] = []

    def answer(pool_id, text):  # the first two tasks are submitted with no label
        if len(empty) < 2:
            empty.append(pool_id)
        chosen = [] if pool_id in empty else [names[j] for j in gold[pool_id]]
        return [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": chosen}}]

    oracle = _oracle(label_studio, tmp_path, title)
    learner = ActiveLearner(dataset=data, model=build_tiny_bert(len(tok), hidden=16, layers=1), tokenizer=tok,
                            strategy="binary_entropy", oracle=oracle,
                            **learner_kwargs(tmp_path, label_column="labels", rounds=1, initial_strategy="random"))
    person = Person(label_studio.url, label_studio.token, title, answer)
    with pytest.warns(UserWarning, match="no label"):
        res = _run(learner, person)
    assert not person.errors and oracle.task == "multi_label"
    pool = learner.pool
    assert len(empty) == 2 and not set(empty) & set(pool.labelled_ids.tolist())  # back to the pool
    for i in pool.labelled_ids.tolist():
        assert np.flatnonzero(pool.label_store.multi_hot([i])[0]).tolist() == sorted(gold[i])
    assert res[-1]["num_labelled"] == pool.labelled_ids.size
    tasks = [t for t in ls_client.tasks.list(project=oracle.project_id) if t.data["round"] == 1]
    (pred,) = ls_client.predictions.list(task=tasks[0].id)
    assert pred.result[0]["type"] == "choices"
    assert set(pred.result[0]["value"]["choices"]) <= set(names) and 0 < pred.score <= 1
