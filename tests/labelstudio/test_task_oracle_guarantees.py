"""The Label Studio oracle's guarantees for named entities (spans) and multi-label
(multiple choices), against a real Label Studio server: the same conflict rules as single
labels (votes compared as word-level BIO tags / label sets), a restart with tasks pending
(no duplicate task, nothing lost, the labels of an uninterrupted run), and annotations
with unknown names refused with an ``LabelStudioUnknownLabelError`` in the report (the task stays
pending, never labelled)."""

from __future__ import annotations

import json
import threading
import time
import uuid
import warnings

import numpy as np
import pytest

from tests.conftest import learner_kwargs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TOPICS = ["sports", "politics", "tech"]
CLASSES = ["negative", "neutral", "positive"]
SENTENCES = {
    1: ["Ada", "met", "Bob"],
    2: ["Rome", "is", "old"],
    3: ["Carol", "left"],
    10: ["Ada", "Lovelace", "visited", "Paris"],
    11: ["Bob", "met", "Carol", "in", "Rome"],
    12: ["Turing", "lived", "in", "London"],
}


def span(words, first, last, etype, *, cut=0):
    """A span over words ``first..last`` (``cut`` characters short at both ends: people
    do not always hit word boundaries; word granularity makes it the same words)."""
    text = " ".join(words)
    start = sum(len(w) + 1 for w in words[:first]) + cut
    end = sum(len(w) + 1 for w in words[: last + 1]) - 1 - cut
    return {"from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "text": text[start:end], "labels": [etype]}}


def choices(*names):
    return [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": list(names)}}]


def make_oracle(label_studio, tmp_path, task, **kw):
    from energizer_hf.oracles import LabelStudioOracle

    names = {"ner": TAGS, "multi_label": TOPICS, "single_label": CLASSES}[task]
    texts = (lambda ids: [SENTENCES[int(i)] for i in ids]) if task == "ner" else (  # noqa: E731
        lambda ids: [f"example {i}" for i in ids])
    kw.setdefault("project", f"{task}-{uuid.uuid4().hex[:8]}")
    kw.setdefault("run_dir", tmp_path / "run")
    return LabelStudioOracle(url=label_studio.url, token=label_studio.token, task=task, label_names=names,
                             texts=texts, poll_interval=0.2, progress=False, **kw)


def tasks_by_pool_id(client, pid, round=None):
    return {t.data["pool_id"]: t for t in client.tasks.list(project=pid)
            if round is None or t.data["round"] == round}


def read_jsonl(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


# --------------------------------------------------------------------------- conflicts
S = SENTENCES
# per task type: pool id -> three annotations (results), in submission order:
#   10: A, B, A (a 2-1 majority)   11: A three times, written differently (agreement)
#   12: A, B, C (all differ: a tie under majority)
VOTES = {
    "ner": {
        10: [[span(S[10], 0, 1, "PER"), span(S[10], 3, 3, "LOC")], [span(S[10], 0, 0, "PER")],
             [span(S[10], 3, 3, "LOC"), span(S[10], 0, 1, "PER", cut=1)]],
        11: [[span(S[11], 0, 0, "PER"), span(S[11], 2, 2, "PER"), span(S[11], 4, 4, "LOC")],
             [span(S[11], 4, 4, "LOC"), span(S[11], 2, 2, "PER"), span(S[11], 0, 0, "PER")],
             [span(S[11], 0, 0, "PER", cut=1), span(S[11], 2, 2, "PER"), span(S[11], 4, 4, "LOC", cut=1)]],
        12: [[span(S[12], 0, 0, "PER"), span(S[12], 3, 3, "LOC")],
             [span(S[12], 0, 0, "LOC"), span(S[12], 3, 3, "LOC")],
             []],  # no span at all: every word is O, a vote like the others
    },
    "multi_label": {
        10: [choices("sports", "tech"), choices("politics"), choices("tech", "sports")],
        11: [choices("politics", "sports"), choices("sports", "politics"), choices("politics", "sports")],
        12: [choices("sports"), choices("sports", "politics"), choices()],  # no choice: the empty set
    },
}
# the label each (distinct) vote stands for, as the run stores it
A10 = {"ner": [1, 2, 0, 3], "multi_label": [0, 2]}
A11 = {"ner": [1, 0, 1, 0, 3], "multi_label": [0, 1]}
A12 = {"ner": [1, 0, 0, 3], "multi_label": [0]}
RENDERED_10 = {"ner": [["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "O", "O", "O"], ["B-PER", "I-PER", "O", "B-LOC"]],
               "multi_label": [["sports", "tech"], ["politics"], ["sports", "tech"]]}


@pytest.mark.parametrize("task", ["ner", "multi_label"])
@pytest.mark.parametrize(
    "rule, resolved",  # which of pool ids 10, 11, 12 get a label (as test_oracle's single-label rules)
    [("first", [True, True, True]), ("majority", [True, True, False]), ("unanimous", [False, True, False])],
)
def test_conflicting_spans_and_label_sets(label_studio, ls_client, tmp_path, task, rule, resolved):
    oracle = make_oracle(label_studio, tmp_path, task, conflict=rule, annotations_per_task=3, wait="async")
    ids = np.array([10, 11, 12])
    oracle.submit(ids, round=1)
    tasks = tasks_by_pool_id(ls_client, oracle.project_id)
    for pool_id, results in VOTES[task].items():
        for result in results:
            ls_client.annotations.create(id=tasks[pool_id].id, result=result)
    expected = [a[task] if ok else None for a, ok in zip((A10, A11, A12), resolved)]
    assert oracle.annotate(ids, round=1) == expected
    assert oracle.labels(ids, round=1) == expected  # what the run stores: never a guess

    conflicts = {c["pool_id"]: c for c in read_jsonl(tmp_path / "run" / "label_studio" / "conflicts.jsonl")}
    assert sorted(conflicts) == [10, 12]  # 11: the same vote, however written
    assert conflicts[10]["votes"] == RENDERED_10[task] and conflicts[10]["rule"] == rule
    assert conflicts[10]["resolved"] == (RENDERED_10[task][0] if resolved[0] else None)
    assert conflicts[12]["resolved"] == (None if not resolved[2] else conflicts[12]["votes"][0])
    assert len(conflicts[12]["annotation_ids"]) == 3
    state = oracle.round_state(1)
    for pool_id, ok, label in zip((10, 11, 12), resolved, expected):
        entry = state[str(pool_id)]
        # unresolved: status conflict, label -1 (back to the pool), exactly as single-label
        assert (entry["status"], entry["label"]) == (("labelled", label) if ok else ("conflict", -1))
    assert "refused" not in json.dumps(state)


# --------------------------------------------------------------------------- unknown names
UNKNOWN = {  # task -> (a result with an unknown name, the unknown name, a valid result, its label)
    "ner": ([span(SENTENCES[1], 0, 0, "MISC"), span(SENTENCES[1], 2, 2, "PER")], "MISC",
            [span(SENTENCES[1], 0, 0, "PER")], [1, 0, 0]),
    "multi_label": (choices("tech", "weather"), "weather", choices("tech"), [2]),
    "single_label": (choices("mixed"), "mixed", choices("neutral"), 1),
}
ALLOWED = {"ner": ["PER", "LOC"], "multi_label": TOPICS, "single_label": CLASSES}


def valid(task, pool_id):
    if task == "ner":
        return [span(SENTENCES[pool_id], 0, 0, "LOC")], [3] + [0] * (len(SENTENCES[pool_id]) - 1)
    return UNKNOWN[task][2], UNKNOWN[task][3]


@pytest.mark.parametrize("task", ["ner", "multi_label", "single_label"])
def test_unknown_names_are_refused_with_a_named_error(label_studio, ls_client, tmp_path, task):
    from energizer_hf.oracles import AwaitingAnnotations, LabelStudioTimeoutError
    from energizer_hf.oracles.label_studio import (
        AnnotationRefusedWarning,
        LabelStudioUnknownLabelError,
    )

    bad, unknown, good, label = UNKNOWN[task]
    oracle = make_oracle(label_studio, tmp_path, task, wait="async")
    ids = np.array([1, 2, 3])
    oracle.submit(ids, round=1)
    tasks = tasks_by_pool_id(ls_client, oracle.project_id)
    refused_1 = ls_client.annotations.create(id=tasks[1].id, result=bad)  # only an unknown name
    ls_client.annotations.create(id=tasks[2].id, result=valid(task, 2)[0])
    ls_client.annotations.create(id=tasks[3].id, result=valid(task, 3)[0])  # a valid one, then
    refused_3 = ls_client.annotations.create(id=tasks[3].id, result=bad)  # one refused: still pending

    with pytest.warns(AnnotationRefusedWarning) as caught, pytest.raises(AwaitingAnnotations) as ei:
        oracle.annotate(ids, round=1)
    assert (ei.value.done, ei.value.total) == (1, 3)
    assert "2 annotation(s) refused" in str(ei.value) and "LabelStudioUnknownLabelError" in str(ei.value)
    caught = [w for w in caught if issubclass(w.category, AnnotationRefusedWarning)]
    assert len(caught) == 2
    errors = {e.pool_id: e for e in oracle.refused(1)}
    assert sorted(errors) == [1, 3]
    for pool_id, ann in ((1, refused_1), (3, refused_3)):
        err = errors[pool_id]
        assert isinstance(err, LabelStudioUnknownLabelError)
        assert (err.task_id, err.annotation_id, err.round) == (tasks[pool_id].id, ann.id, 1)
        assert err.unknown == [unknown] and err.allowed == ALLOWED[task]
        message = str(err)
        assert f"task {tasks[pool_id].id}" in message and repr(unknown) in message
        assert ", ".join(ALLOWED[task]) in message and "stays pending" in message
        assert message in {str(w.message) for w in caught}
    state = oracle.round_state(1)
    assert [state[k]["status"] for k in ("1", "2", "3")] == ["pending", "labelled", "pending"]
    assert state["1"]["refused"][0]["error"] == "LabelStudioUnknownLabelError"
    assert oracle.labels(ids, round=1)[0] in (None, -1)  # never labelled
    events = [e for e in read_jsonl(tmp_path / "run" / "label_studio" / "events.jsonl") if e["event"] == "refused"]
    assert sorted(e["pool_id"] for e in events) == [1, 3]

    with warnings.catch_warnings(record=True) as again:  # reported once, not at every poll
        warnings.simplefilter("always")
        with pytest.raises(AwaitingAnnotations):
            oracle.annotate(ids, round=1)
        blocking = make_oracle(label_studio, tmp_path, task, project=None, timeout=0.5)
        with pytest.raises(LabelStudioTimeoutError, match="refused: LabelStudioUnknownLabelError") as ei:
            blocking.annotate(ids, round=1)
    assert not [w for w in again if issubclass(w.category, AnnotationRefusedWarning)]
    assert f"task {tasks[1].id}" in str(ei.value)

    # corrected (1) and deleted (3) in Label Studio: both resolve, as if nothing had happened
    time.sleep(0.05)
    ls_client.annotations.update(id=refused_1.id, result=good)
    ls_client.annotations.delete(id=refused_3.id)
    got = oracle.annotate(ids, round=1)
    got = got.tolist() if hasattr(got, "tolist") else got
    assert got == [label, valid(task, 2)[1], valid(task, 3)[1]]
    assert oracle.refused() == [] and "refused" not in oracle.round_state(1)["1"]


# --------------------------------------------------------------------------- restart
class Crash(BaseException):
    """The process dies (nothing below the loop gets to handle it)."""


class Person(threading.Thread):
    """Answers new tasks with ``answer(pool_id, text)``; in round 1 only the first
    ``round1`` tasks (by task id) once all ``query_size`` of them are there."""

    def __init__(self, url, token, title, answer, round1=None, query_size=10):
        super().__init__(daemon=True)
        from label_studio_sdk import LabelStudio

        self.client = LabelStudio(base_url=url, api_key=token, timeout=60)
        self.title, self.answer, self.round1, self.query_size = title, answer, round1, query_size
        self.halt = threading.Event()
        self.errors: list[BaseException] = []
        self.answered: list[tuple[int, int]] = []

    def run(self):
        try:
            while not self.halt.is_set():
                pid = next((p.id for p in self.client.projects.list() if p.title == self.title), None)
                tasks = sorted(self.client.tasks.list(project=pid), key=lambda t: t.id) if pid else []
                r1 = [t.id for t in tasks if t.data["round"] == 1]
                allowed = set(r1[: self.round1]) if self.round1 is not None and len(r1) >= self.query_size else None
                for t in tasks:
                    if t.annotations or (t.data["round"] == 1 and allowed is not None and t.id not in allowed):
                        continue
                    if t.data["round"] == 1 and self.round1 is not None and allowed is None:
                        continue
                    self.client.annotations.create(id=t.id, result=self.answer(t.data["pool_id"], t.data["text"]))
                    self.answered.append((t.data["round"], t.data["pool_id"]))
                time.sleep(0.2)
        except BaseException as exc:  # noqa: BLE001
            self.errors.append(exc)


def _task_setup(task, tmp_path):
    from transformers import AutoModel

    from energizer_hf.demo import (
        build_tiny_bert,
        make_multilabel_dataset,
        make_ner_dataset,
        train_wordpiece_tokenizer,
    )
    from energizer_hf.oracles.label_studio.annotations import tags_to_spans

    if task == "ner":
        data = make_ner_dataset(120, 30, seed=0)
        tok = train_wordpiece_tokenizer([" ".join(t) for t in data["train"]["tokens"][:]], vocab_size=200)
        names = data["train"].features["ner_tags"].feature.names
        from energizer_hf.tasks import read_tags

        # the gold tags as the run stores them (an I- after O repaired to B-, read_tags' rule)
        _, _repaired = read_tags(data["train"], "ner_tags")
        gold = [t.tolist() for t in _repaired[list(range(len(data["train"])))]]

        def answer(pool_id, text):
            return tags_to_spans(gold[pool_id], names, text.split(" "))

        extra = {"strategy": "token_entropy"}
    else:
        data = make_multilabel_dataset(120, 30, seed=0)
        tok = train_wordpiece_tokenizer(data["train"]["text"][:], vocab_size=200)
        names = data["train"].features["labels"].feature.names
        gold = data["train"]["labels"][:]

        def answer(pool_id, text):
            return choices(*[names[j] for j in gold[pool_id]])

        extra = {"strategy": "binary_entropy", "label_column": "labels"}
    model_dir = tmp_path / "model"  # from disk: both processes of a run load the same model
    AutoModel.from_config(build_tiny_bert(len(tok), hidden=16, layers=1)).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    return data, str(model_dir), gold, answer, extra


def _labels(learner, task):
    pool, store = learner.pool, learner.pool.label_store
    ids = pool.labelled_ids.tolist()
    if task == "ner":
        return {i: store.word_tags([i])[0].tolist() for i in ids}
    return {i: np.flatnonzero(store.multi_hot([i])[0]).tolist() for i in ids}


@pytest.mark.parametrize("task", ["ner", "multi_label"])
def test_restart_with_pending_tasks(label_studio, ls_client, tmp_path, task):
    from energizer_hf.learner import ActiveLearner
    from energizer_hf.oracles import LabelStudioOracle

    data, model_dir, gold, answer, extra = _task_setup(task, tmp_path)

    def learner(root, title, **kw):
        oracle = LabelStudioOracle(url=label_studio.url, token=label_studio.token, project=title,
                                   poll_interval=0.2, progress=False, timeout=300, **kw)
        kwargs = learner_kwargs(root, rounds=1, initial_strategy="random", **extra)
        return oracle, ActiveLearner(dataset=data, model=model_dir, tokenizer=model_dir, oracle=oracle, **kwargs)

    def run(learner, person):
        person.start()
        try:
            return learner.run()
        finally:
            person.halt.set()
            person.join()
            assert not person.errors

    # an uninterrupted run, for reference
    title_ref = f"{task}-ref-{uuid.uuid4().hex[:8]}"
    _, ref = learner(tmp_path / "ref", title_ref)
    ref_res = run(ref, Person(label_studio.url, label_studio.token, title_ref, answer))
    ref_labels = _labels(ref, task)

    # the same run, killed while round 1 waits with 4 of its 10 tasks annotated
    title = f"{task}-crash-{uuid.uuid4().hex[:8]}"
    root = tmp_path / "crash"
    oracle, first = learner(root, title)
    count_done = oracle._count_done

    def crash_when_four_are_in(ids, round):
        done = count_done(ids, round)
        if round == 1 and done >= 4:
            raise Crash
        return done

    oracle._count_done = crash_when_four_are_in
    person = Person(label_studio.url, label_studio.token, title, answer, round1=4)
    with pytest.raises(Crash):
        run(first, person)
    del first, oracle
    run_dir = root / "run"
    pending = json.loads((run_dir / "pending.json").read_text())
    assert pending["round"] == 0 and len(pending["queried_ids"]) == 10
    state = json.loads((run_dir / "label_studio" / "tasks.json").read_text())
    assert sorted(e["status"] for e in state["rounds"]["1"].values()) == ["labelled"] * 4 + ["pending"] * 6
    pid = state["project"]
    assert len(list(ls_client.tasks.list(project=pid))) == 20

    # a new process on the same run directory and server: the project and round come from the run
    resumed_oracle, resumed = learner(root, None)
    person = Person(label_studio.url, label_studio.token, title, answer)
    res = run(resumed, person)
    assert resumed_oracle.project_id == pid
    assert res[0]["queried_ids"] == pending["queried_ids"]  # not fitted or queried again
    tasks = list(ls_client.tasks.list(project=pid))
    keys = [(t.data["round"], t.data["pool_id"]) for t in tasks]
    assert len(tasks) == 20 and len(set(keys)) == 20  # no duplicate task
    assert all(len(t.annotations) == 1 for t in tasks)  # nobody was asked twice
    assert sorted(p for r, p in person.answered) == sorted(  # only the 6 left were answered now
        int(k) for k, e in state["rounds"]["1"].items() if e["status"] == "pending")
    imports = [e for e in read_jsonl(run_dir / "label_studio" / "events.jsonl") if e["event"] == "import"]
    assert [e["round"] for e in imports] == [0, 1]

    # the label state ends as in the uninterrupted run
    assert sorted(ref_res[0]["queried_ids"]) == sorted(pending["queried_ids"])
    assert [r["num_labelled"] for r in res] == [r["num_labelled"] for r in ref_res]
    got = _labels(resumed, task)
    assert got == ref_labels
    expected = {i: (gold[i] if task == "ner" else sorted(gold[i])) for i in got}
    assert got == expected


# --------------------------------------------------------------------------- no server
def test_words_holding_a_space_keep_one_tag_per_word(tmp_path):
    """A sentence's own words decide the word offsets (not the shown text split again):
    "New York" is one word, one tag, in the spans read back and in the pre-annotations."""
    from energizer_hf.oracles import LabelStudioOracle

    words = ["New York", "is", "big"]
    oracle = LabelStudioOracle(url="http://127.0.0.1:9", token="t" * 40, task="ner", label_names=TAGS,
                               texts=lambda ids: [words for _ in ids], run_dir=tmp_path / "run", progress=False)
    ann = {"id": 1, "result": [span(words, 0, 0, "LOC")]}
    assert ann["result"][0]["value"]["text"] == "New York"
    assert oracle._parse(ann, 0)[1] == (3, 0, 0)
    oracle._predict = lambda ids: [((3, 0, 0), 0.9) for _ in ids]
    (payload,) = oracle._task_payloads(np.array([0]), round=1)
    assert payload["data"]["text"] == "New York is big"
    (region,) = payload["predictions"][0]["result"]
    assert (region["value"]["start"], region["value"]["end"], region["value"]["labels"]) == (0, 8, ["LOC"])
