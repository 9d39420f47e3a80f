"""``LabelStudioOracle`` against a real Label Studio server (see docs/dev/labelstudio.md).

People are played by API calls (``annotations.create``), from the test body or from a
background thread while the oracle blocks.
"""

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

NAMES = ["negative", "neutral", "positive"]


def result(label: str) -> list[dict]:
    return [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]


def make_oracle(label_studio, tmp_path, **kw):
    from energizer_hf.oracles import LabelStudioOracle

    kw.setdefault("project", f"test-{uuid.uuid4().hex[:8]}")
    kw.setdefault("label_names", NAMES)
    kw.setdefault("texts", lambda ids: [f"example {i}" for i in ids])
    kw.setdefault("run_dir", tmp_path / "run")
    kw.setdefault("poll_interval", 0.2)
    kw.setdefault("progress", False)
    return LabelStudioOracle(url=label_studio.url, token=label_studio.token, **kw)


def tasks_by_pool_id(client, pid, round=None):
    return {
        t.data["pool_id"]: t
        for t in client.tasks.list(project=pid)
        if round is None or t.data["round"] == round
    }


def annotate(client, task_id, *labels, cancel=False):
    for label in labels:
        client.annotations.create(id=task_id, result=result(label))
    if cancel:
        client.annotations.create(id=task_id, result=[], was_cancelled=True)


# --------------------------------------------------------------------------- import + read
def test_import_with_predictions_read_back_and_no_reimport(label_studio, ls_client, tmp_path):
    preds = lambda ids: (np.asarray(ids) % 3, np.full(len(ids), 0.75))  # noqa: E731
    oracle = make_oracle(label_studio, tmp_path, predictions=preds)
    ids = np.array([4, 7, 9])
    mapping = oracle.submit(ids, round=1)
    pid = oracle.project_id
    tasks = tasks_by_pool_id(ls_client, pid)
    assert sorted(tasks) == [4, 7, 9] and mapping == {i: tasks[i].id for i in (4, 7, 9)}
    t = tasks[7]
    assert t.data == {"text": "example 7", "pool_id": 7, "round": 1}
    (pred,) = ls_client.predictions.list(task=t.id)
    assert pred.model_version == "energizer-hf-round-1" and pred.score == 0.75
    assert pred.result[0]["value"]["choices"] == [NAMES[7 % 3]]
    project = ls_client.projects.get(id=pid)
    assert project.get_label_interface().get_control("label").labels == NAMES

    for pool_id, label in ((4, "positive"), (7, "negative"), (9, "neutral")):
        annotate(ls_client, tasks[pool_id].id, label)
    assert oracle.annotate(ids, round=1).tolist() == [2, 0, 1]

    state = json.loads((tmp_path / "run" / "label_studio" / "tasks.json").read_text())
    assert state["project"] == pid
    assert state["rounds"]["1"]["4"]["status"] == "labelled"
    assert label_studio.token not in json.dumps(state)

    # a new process (same run dir), and one that lost tasks.json after the import: no re-import
    again = make_oracle(label_studio, tmp_path, project=None)
    assert again.annotate(ids, round=1).tolist() == [2, 0, 1]
    (tmp_path / "run" / "label_studio" / "tasks.json").unlink()
    lost = make_oracle(label_studio, tmp_path, project=pid)
    assert lost.annotate(ids, round=1).tolist() == [2, 0, 1]
    assert len(list(ls_client.tasks.list(project=pid))) == 3
    # the same ids in another round are new tasks
    lost.submit(np.array([4]), round=2)
    assert len(list(ls_client.tasks.list(project=pid))) == 4


# --------------------------------------------------------------------------- skips
@pytest.mark.parametrize("skipped", ["return", "ignore"])
def test_skipped_tasks_are_not_labelled(label_studio, ls_client, tmp_path, skipped):
    oracle = make_oracle(label_studio, tmp_path, skipped=skipped)
    oracle.submit(np.array([1, 2]), round=1)
    tasks = tasks_by_pool_id(ls_client, oracle.project_id)
    annotate(ls_client, tasks[1].id, cancel=True)
    annotate(ls_client, tasks[2].id, "neutral")
    assert oracle.annotate(np.array([1, 2]), round=1).tolist() == [-1, 1]
    status = oracle.round_state(1)["1"]["status"]
    assert status == ("skipped" if skipped == "return" else "ignored")
    # queried again in a later round
    if skipped == "return":
        oracle.submit(np.array([1]), round=2)
        assert 1 in tasks_by_pool_id(ls_client, oracle.project_id, round=2)
    else:
        assert oracle.annotate(np.array([1]), round=2).tolist() == [-1]  # no new task, no wait
        assert tasks_by_pool_id(ls_client, oracle.project_id, round=2) == {}


# --------------------------------------------------------------------------- conflicts
@pytest.mark.parametrize(
    "rule, expected",
    [("first", [2, 0, 1]), ("majority", [2, 0, -1]), ("unanimous", [-1, 0, -1])],
)
def test_conflicting_annotations(label_studio, ls_client, tmp_path, rule, expected):
    oracle = make_oracle(label_studio, tmp_path, conflict=rule, annotations_per_task=3)
    ids = np.array([10, 11, 12])
    oracle.submit(ids, round=1)
    tasks = tasks_by_pool_id(ls_client, oracle.project_id)
    annotate(ls_client, tasks[10].id, "positive", "negative", "positive")
    annotate(ls_client, tasks[11].id, "negative", "negative", "negative")
    annotate(ls_client, tasks[12].id, "neutral", "positive", "negative")
    assert oracle.annotate(ids, round=1).tolist() == expected
    lines = (tmp_path / "run" / "label_studio" / "conflicts.jsonl").read_text().splitlines()
    conflicts = {c["pool_id"]: c for c in map(json.loads, lines)}
    assert sorted(conflicts) == [10, 12]
    assert conflicts[10]["votes"] == ["positive", "negative", "positive"]
    assert conflicts[10]["rule"] == rule
    assert conflicts[10]["resolved"] == (None if expected[0] == -1 else NAMES[expected[0]])
    assert oracle.round_state(1)["12"]["status"] == ("labelled" if rule == "first" else "conflict")


# --------------------------------------------------------------------------- deletes + edits
def test_deleted_task_and_changed_annotation_are_reported(label_studio, ls_client, tmp_path):
    from energizer_hf.oracles.label_studio import AnnotationChangedWarning

    oracle = make_oracle(label_studio, tmp_path)
    oracle.submit(np.array([1, 2]), round=1)
    tasks = tasks_by_pool_id(ls_client, oracle.project_id)
    ls_client.tasks.delete(id=tasks[1].id)
    annotate(ls_client, tasks[2].id, "neutral")
    with pytest.warns(AnnotationChangedWarning, match="deleted before it was annotated"):
        assert oracle.annotate(np.array([1, 2]), round=1).tolist() == [-1, 1]
    assert oracle.round_state(1)["1"]["status"] == "deleted"

    (ann,) = ls_client.annotations.list(id=tasks[2].id)
    time.sleep(0.05)
    ls_client.annotations.update(id=ann.id, result=result("positive"))
    with pytest.warns(AnnotationChangedWarning, match="changed after they were read"):
        oracle.sync()
    assert oracle.labels(np.array([2]), round=1).tolist() == [1]  # not applied
    events = [json.loads(x) for x in (tmp_path / "run" / "label_studio" / "events.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert "deleted" in kinds and "changed_after_read" in kinds
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        oracle.sync()  # reported once


# --------------------------------------------------------------------------- waiting
def test_blocking_waits_for_a_person_and_times_out(label_studio, ls_client, tmp_path):
    from energizer_hf.oracles import LabelStudioTimeoutError

    oracle = make_oracle(label_studio, tmp_path, timeout=1.0)
    with pytest.raises(LabelStudioTimeoutError, match="0/2"):
        oracle.annotate(np.array([3, 5]), round=1)
    pid = oracle.project_id

    def person():
        time.sleep(1.0)
        for pool_id, t in tasks_by_pool_id(ls_client, pid).items():
            annotate(ls_client, t.id, NAMES[pool_id % 3])

    thread = threading.Thread(target=person)
    thread.start()
    patient = make_oracle(label_studio, tmp_path, project=None, timeout=60)
    assert patient.annotate(np.array([3, 5]), round=1).tolist() == [0, 2]
    thread.join()
    assert len(list(ls_client.tasks.list(project=pid))) == 2


def test_async_raises_awaiting_until_done(label_studio, ls_client, tmp_path):
    from energizer_hf.oracles import AwaitingAnnotations

    oracle = make_oracle(label_studio, tmp_path, wait="async")
    with pytest.raises(AwaitingAnnotations) as ei:
        oracle.annotate(np.array([3, 5]), round=1)
    assert (ei.value.done, ei.value.total) == (0, 2)
    tasks = tasks_by_pool_id(ls_client, oracle.project_id)
    annotate(ls_client, tasks[3].id, "neutral")
    with pytest.raises(AwaitingAnnotations) as ei:
        oracle.annotate(np.array([3, 5]), round=1)
    assert ei.value.done == 1
    annotate(ls_client, tasks[5].id, "negative")
    assert oracle.annotate(np.array([3, 5]), round=1).tolist() == [1, 0]


def test_async_partial_closes_the_round(label_studio, ls_client, tmp_path):
    from energizer_hf.oracles import AwaitingAnnotations
    from energizer_hf.oracles.label_studio import AnnotationChangedWarning

    oracle = make_oracle(label_studio, tmp_path, wait="async")
    ids = np.array([6, 7, 8])
    with pytest.raises(AwaitingAnnotations):
        oracle.annotate(ids, round=1)
    tasks = tasks_by_pool_id(ls_client, oracle.project_id)
    annotate(ls_client, tasks[7].id, "positive")
    oracle.partial = True
    assert oracle.annotate(ids, round=1).tolist() == [-1, 2, -1]
    assert oracle.partial is False  # one-shot
    assert oracle.round_state(1)["6"]["status"] == "abandoned"
    with pytest.raises(AwaitingAnnotations):  # the next round waits again
        oracle.annotate(np.array([9]), round=2)
    annotate(ls_client, tasks[6].id, "neutral")  # too late: reported, not used
    with pytest.warns(AnnotationChangedWarning, match="changed after"):
        oracle.sync()
    assert oracle.labels(ids, round=1).tolist() == [-1, 2, -1]


# --------------------------------------------------------------------------- errors
def test_wrong_token_is_a_named_error_without_the_token(label_studio, tmp_path):
    from energizer_hf import EnergizerError
    from energizer_hf.oracles import LabelStudioAuthError, LabelStudioOracle

    secret = "f00dfeed" * 5
    oracle = LabelStudioOracle(
        url=label_studio.url, token=secret, label_names=NAMES, texts=lambda ids: ["x"] * len(ids),
        run_dir=tmp_path / "run", progress=False,
    )
    with pytest.raises(LabelStudioAuthError) as ei:
        oracle.annotate(np.array([1]), round=1)
    assert isinstance(ei.value, EnergizerError)
    assert secret not in str(ei.value) and secret not in repr(oracle)
    assert ei.value.__cause__ is None and ei.value.__suppress_context__
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text()


def test_token_from_environment_and_missing(label_studio, tmp_path, monkeypatch):
    from energizer_hf.oracles import LabelStudioAuthError, LabelStudioOracle

    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    oracle = LabelStudioOracle(label_names=NAMES, texts=lambda ids: ["x"] * len(ids),
                               run_dir=tmp_path / "run", progress=False, project="env-token-test")
    assert oracle.ensure_project() > 0
    monkeypatch.delenv("LABEL_STUDIO_API_KEY")
    with pytest.raises(LabelStudioAuthError, match="LABEL_STUDIO_API_KEY"):
        LabelStudioOracle(label_names=NAMES, run_dir=tmp_path / "run")


def test_unreachable_server_retries_then_named_error(tmp_path):
    from energizer_hf.oracles import LabelStudioConnectionError, LabelStudioOracle

    from .server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    oracle = LabelStudioOracle(
        url=url, token="t" * 40, label_names=NAMES, texts=lambda ids: ["x"] * len(ids),
        run_dir=tmp_path / "run", max_retries=3, retry_backoff=0.1, progress=False,
    )
    t0 = time.monotonic()
    with pytest.raises(LabelStudioConnectionError, match="after 3 attempts") as ei:
        oracle.annotate(np.array([1]), round=1)
    assert time.monotonic() - t0 < 10
    assert url in str(ei.value) and "t" * 40 not in str(ei.value)


# --------------------------------------------------------------------------- restarts
def test_server_killed_mid_round_then_resume(label_studio, ls_client, tmp_path):
    oracle = make_oracle(label_studio, tmp_path)
    ids = np.array([20, 21, 22])
    oracle.submit(ids, round=1)
    pid = oracle.project_id
    tasks = tasks_by_pool_id(ls_client, pid)
    annotate(ls_client, tasks[20].id, "positive")
    annotate(ls_client, tasks[21].id, "neutral")

    label_studio.kill()  # the server crashes ...
    errors = []

    def bring_back():
        try:
            time.sleep(1.0)
            label_studio._wait_port_free()
            label_studio.start(timeout=180)
            annotate(ls_client, tasks[22].id, "negative")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=bring_back)
    thread.start()
    # ... and energizer_hf restarts too: a new oracle on the same run directory, which
    # retries until the server is back and then waits for the last annotation
    resumed = make_oracle(label_studio, tmp_path, project=None, retry_backoff=0.5,
                          max_retries=20, retry_timeout=180, timeout=240)
    try:
        assert resumed.annotate(ids, round=1).tolist() == [2, 1, 0]
    finally:
        thread.join()
        if not label_studio.healthy():
            label_studio.restart()
    assert not errors
    assert len(list(ls_client.tasks.list(project=pid))) == 3  # nothing imported twice


# --------------------------------------------------------------------------- the loop
class Annotator(threading.Thread):
    """A person: answers every new task of the project with the true label."""

    def __init__(self, url, token, title, truth, skip=(), rounds=None):
        super().__init__(daemon=True)
        from label_studio_sdk import LabelStudio

        self.client = LabelStudio(base_url=url, api_key=token, timeout=60)
        self.title, self.truth, self.skip, self.rounds = title, truth, set(skip), rounds
        self.halt = threading.Event()
        self.done: list[int] = []
        self.errors: list[BaseException] = []

    def run(self):
        try:
            while not self.halt.is_set():
                self.step()
                time.sleep(0.2)
        except BaseException as exc:  # noqa: BLE001
            self.errors.append(exc)

    def step(self):
        pid = next((p.id for p in self.client.projects.list() if p.title == self.title), None)
        if pid is None:
            return
        for t in self.client.tasks.list(project=pid):
            if t.annotations or (self.rounds is not None and t.data["round"] not in self.rounds):
                continue
            pool_id = t.data["pool_id"]
            if pool_id in self.skip:
                annotate(self.client, t.id, cancel=True)
            else:
                annotate(self.client, t.id, self.names[self.truth[pool_id]])
            self.done.append(pool_id)


def _tiny_model_dir(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    from transformers import AutoModel

    model_dir = tmp_path / "model"
    AutoModel.from_config(tiny_bert_config).save_pretrained(model_dir)
    demo_tokenizer.save_pretrained(model_dir)
    data_dir = tmp_path / "data"
    demo_data.save_to_disk(str(data_dir))
    return str(model_dir), str(data_dir)


def test_two_round_loop_blocking(label_studio, ls_client, tmp_path, demo_data, demo_tokenizer,
                                 tiny_bert_config):
    from energizer_hf.learner import ActiveLearner

    train = demo_data["train"]
    names = train.features["label"].names
    truth = np.asarray(train["label"][:])
    title = f"loop-{uuid.uuid4().hex[:8]}"
    from energizer_hf.oracles.label_studio import learner_predictions

    kwargs = learner_kwargs(tmp_path)
    oracle = make_oracle(label_studio, tmp_path, project=title, label_names=names,
                         dataset=train, texts=None, run_dir=kwargs["run_dir"], timeout=120)
    learner = ActiveLearner(dataset=demo_data, model=tiny_bert_config, tokenizer=demo_tokenizer,
                            oracle=oracle, **kwargs)
    oracle.predictions = learner_predictions(learner)
    person = Annotator(label_studio.url, label_studio.token, title, truth)
    person.names = names
    person.start()
    try:
        res = learner.run()
    finally:
        person.halt.set()
        person.join()
    assert not person.errors
    assert [r["num_labelled"] for r in res] == [10, 20, 30]
    labelled = learner.pool.labelled_ids
    assert (learner.pool.labels[labelled] == truth[labelled]).all()
    tasks = list(ls_client.tasks.list(project=oracle.project_id))
    assert len(tasks) == 30 and sorted(t.data["round"] for t in tasks) == [0] * 10 + [1] * 10 + [2] * 10
    assert sorted(res[0]["queried_ids"]) == sorted(t.data["pool_id"] for t in tasks if t.data["round"] == 1)
    (pred,) = ls_client.predictions.list(task=tasks[-1].id)
    assert pred.model_version == "energizer-hf-round-2" and 0 < pred.score <= 1
    assert pred.result[0]["value"]["choices"][0] in names


def test_async_loop_collect_and_cli(label_studio, ls_client, tmp_path, demo_data, demo_tokenizer,
                                   tiny_bert_config, monkeypatch, capsys):
    from energizer_hf import cli
    from energizer_hf.learner import ActiveLearner
    from energizer_hf.oracles.label_studio import AWAITING_ANNOTATIONS

    model_dir, data_dir = _tiny_model_dir(tmp_path, demo_data, demo_tokenizer, tiny_bert_config)
    train = demo_data["train"]
    names = train.features["label"].names
    truth = np.asarray(train["label"][:])
    title = f"async-{uuid.uuid4().hex[:8]}"
    kwargs = learner_kwargs(tmp_path, rounds=1)
    run_dir = kwargs["run_dir"]
    oracle = make_oracle(label_studio, tmp_path, project=title, label_names=names, dataset=train,
                         texts=None, run_dir=run_dir, wait="async")
    learner = ActiveLearner(dataset=data_dir, model=model_dir, tokenizer=model_dir, oracle=oracle,
                            **kwargs)
    person = Annotator(label_studio.url, label_studio.token, title, truth)
    person.names = names

    res = learner.run()  # imports the initial set and stops
    assert res.stop_reason == AWAITING_ANNOTATIONS and res[-1]["awaiting"]["total"] == 10
    assert not (tmp_path / "run" / "rounds.jsonl").exists()
    person.step()  # the person labels the initial set
    res = learner.collect()  # round 0: fit, query round 1, import, stop
    assert res.stop_reason == AWAITING_ANNOTATIONS and len(res) == 1
    assert res[0]["round"] == 0 and res[0]["num_labelled"] == 10 and "time_fit" in res[0]
    queried = res[0]["queried_ids"]
    assert len(queried) == 10 and (tmp_path / "run" / "pending.json").exists()
    assert learner.collect().stop_reason == AWAITING_ANNOTATIONS  # nothing new yet

    tasks = tasks_by_pool_id(ls_client, oracle.project_id, round=1)
    skipped_id = queried[0]
    annotate(ls_client, tasks[skipped_id].id, cancel=True)
    for pool_id in queried[1:]:
        annotate(ls_client, tasks[pool_id].id, names[truth[pool_id]])
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    assert cli.main(["annotate", run_dir, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Run finished (max_rounds)" in out and label_studio.token not in out
    records = [json.loads(x) for x in (tmp_path / "run" / "rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in records] == [0, 1]
    assert records[0]["queried_ids"] == queried and records[0]["num_skipped"] == 1
    assert records[1]["num_labelled"] == 19 and records[1]["stop_reason"] == "max_rounds"
    assert not (tmp_path / "run" / "pending.json").exists()
    assert len(list(ls_client.tasks.list(project=oracle.project_id))) == 20


def test_loop_timeout_keeps_the_round_and_resumes_without_requery(
    label_studio, ls_client, tmp_path, demo_data, demo_tokenizer, tiny_bert_config
):
    from energizer_hf.learner import ActiveLearner
    from energizer_hf.oracles import LabelStudioTimeoutError

    train = demo_data["train"]
    names = train.features["label"].names
    truth = np.asarray(train["label"][:])
    title = f"timeout-{uuid.uuid4().hex[:8]}"
    kwargs = learner_kwargs(tmp_path, rounds=1)
    # from disk: a tokenizer object used by a run changes its identity (truncation settings)
    model_dir, _ = _tiny_model_dir(tmp_path, demo_data, demo_tokenizer, tiny_bert_config)

    def learner(timeout):
        oracle = make_oracle(label_studio, tmp_path, project=title, label_names=names, dataset=train,
                             texts=None, run_dir=kwargs["run_dir"], timeout=timeout)
        return oracle, ActiveLearner(dataset=demo_data, model=model_dir, tokenizer=model_dir,
                                     oracle=oracle, **kwargs)

    person = Annotator(label_studio.url, label_studio.token, title, truth, rounds={0})
    person.names = names
    person.start()
    try:
        oracle, first = learner(timeout=12)
        with pytest.raises(LabelStudioTimeoutError, match="0/10"):
            first.run()  # the initial set is annotated, round 1's tasks are not
    finally:
        person.halt.set()
        person.join()
    pending = json.loads((tmp_path / "run" / "pending.json").read_text())
    assert pending["round"] == 0 and len(pending["queried_ids"]) == 10
    assert not (tmp_path / "run" / "rounds.jsonl").exists()

    person = Annotator(label_studio.url, label_studio.token, title, truth)
    person.names = names
    person.start()
    try:
        oracle, second = learner(timeout=60)  # a new process: no fit, no query for round 0
        res = second.run()
    finally:
        person.halt.set()
        person.join()
    assert [r["num_labelled"] for r in res] == [10, 20]
    assert res[0]["queried_ids"] == pending["queried_ids"]
    assert res[0]["time_fit"] == pending["record"]["time_fit"]  # round 0 was not fitted again
    assert len(list(ls_client.tasks.list(project=oracle.project_id))) == 20
    assert not (tmp_path / "run" / "pending.json").exists()


def test_import_does_not_need_the_sdk():
    import subprocess
    import sys

    code = (
        "import sys, energizer_hf\n"
        "from energizer_hf.oracles import LabelStudioOracle, AwaitingAnnotations\n"
        "import energizer_hf.loop, energizer_hf.cli\n"
        "assert 'label_studio_sdk' not in sys.modules, 'sdk imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_cli_annotate_without_a_run(tmp_path, capsys):
    from energizer_hf import cli

    assert cli.main(["annotate", str(tmp_path)]) == 2
    assert "config.yaml does not exist" in capsys.readouterr().err


def test_example_script_async_session(label_studio, ls_client, tmp_path, demo_data, demo_tokenizer,
                                      tiny_bert_config):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    model_dir, _ = _tiny_model_dir(tmp_path, demo_data, demo_tokenizer, tiny_bert_config)
    pool = tmp_path / "pool.csv"
    demo_data["train"].remove_columns("label").to_csv(str(pool))  # no labels: people give them
    names = demo_data["train"].features["label"].names
    title = f"example-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(root),
               LABEL_STUDIO_URL=label_studio.url, LABEL_STUDIO_API_KEY=label_studio.token)
    proc = subprocess.run(
        [sys.executable, str(root / "examples" / "label_studio_session.py"), "--data", str(pool),
         "--model", model_dir, "--labels", ",".join(names), "--run-dir", str(tmp_path / "run"),
         "--project", title, "--query-size", "5", "--initial-size", "5", "--rounds", "1", "--async"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "energizer-hf annotate" in proc.stdout
    assert label_studio.token not in proc.stdout + proc.stderr
    pid = next(p.id for p in ls_client.projects.list() if p.title == title)
    tasks = list(ls_client.tasks.list(project=pid))
    assert len(tasks) == 5 and all(t.total_predictions == 1 for t in tasks)
