"""What a real Label Studio 1.23 server does, seen through ``label-studio-sdk`` (2.0.x).

Each test is a small, executable statement of one fact that ``LabelStudioOracle`` will rely
on; docs/dev/labelstudio.md collects them.  Raw HTTP (stdlib ``urllib``) is used only for
/health and for auth-header checks the SDK cannot express.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LABELS = ("negative", "neutral", "positive")


def make_label_config(labels=LABELS, from_name: str = "label", to_name: str = "text") -> str:
    choices = "".join(f'<Choice value="{label}"/>' for label in labels)
    return (
        f'<View><Text name="{to_name}" value="$text"/>'
        f'<Choices name="{from_name}" toName="{to_name}" choice="single">{choices}</Choices></View>'
    )


def choice_result(label: str) -> list[dict]:
    """An annotation/prediction ``result`` for one single-label choice."""
    return [
        {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}
    ]


def labels_of(result: list[dict]) -> list[str]:
    return [c for region in result for c in region["value"]["choices"]]


@pytest.fixture
def project(ls_client):
    p = ls_client.projects.create(
        title=f"smoke-{uuid.uuid4().hex[:8]}", label_config=make_label_config()
    )
    yield p
    ls_client.projects.delete(id=p.id)


def import_pool(client, project_id: int, n: int = 3, round_: int = 1) -> list[int]:
    tasks = [
        {
            "data": {"text": f"example {i}", "pool_id": 5 + i, "round": round_},
            "predictions": [
                {
                    "model_version": f"round-{round_}",
                    "score": 0.5 + i / 10,
                    "result": choice_result(LABELS[i % len(LABELS)]),
                }
            ],
        }
        for i in range(n)
    ]
    resp = client.projects.import_tasks(project_id, request=tasks, return_task_ids=True)
    assert resp.task_count == n
    assert resp.prediction_count == n
    assert len(resp.task_ids) == n
    return list(resp.task_ids)


def http_get(url: str, headers: dict | None = None) -> tuple[int, dict]:
    """Raw GET -> (status, parsed JSON body), without going through the SDK."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def max_task_id(client) -> int:
    """Highest task id over all projects on the server (0 if none)."""
    ids = [
        t.id
        for p in client.projects.list()
        for t in client.tasks.list(project=p.id, fields="task_only")
    ]
    return max(ids, default=0)


def annotated_query(skipped: bool = False) -> str:
    """``query=`` for tasks.list: tasks with a submitted (and optionally a skipped) annotation."""
    items = [
        {
            "filter": "filter:tasks:total_annotations",
            "operator": "greater",
            "type": "Number",
            "value": 0,
        }
    ]
    if skipped:
        items.append(
            {
                "filter": "filter:tasks:cancelled_annotations",
                "operator": "greater",
                "type": "Number",
                "value": 0,
            }
        )
    return json.dumps({"filters": {"conjunction": "or", "items": items}})


def tasks_by_id(client, project_id: int) -> dict[int, object]:
    return {t.id: t for t in client.tasks.list(project=project_id)}


# --------------------------------------------------------------------------- server / auth
def test_health_and_legacy_token_header(label_studio):
    assert http_get(f"{label_studio.url}/health") == (200, {"status": "UP"})
    status, me = http_get(
        f"{label_studio.url}/api/current-user/whoami",
        headers={"Authorization": f"Token {label_studio.token}"},
    )
    assert status == 200 and me["email"] == label_studio.username
    assert label_studio.start_seconds is not None and label_studio.start_seconds < 180


def test_sdk_uses_legacy_token_scheme(ls_client, label_studio):
    # A non-JWT api_key makes the SDK send "Authorization: Token <key>".
    headers = ls_client._client_wrapper.get_headers()
    assert headers["Authorization"] == f"Token {label_studio.token}"
    me = ls_client.users.whoami()
    assert me.email == label_studio.username


def test_wrong_token_is_401(label_studio):
    from label_studio_sdk import LabelStudio
    from label_studio_sdk.core.api_error import ApiError
    from label_studio_sdk.errors import UnauthorizedError

    bad = LabelStudio(base_url=label_studio.url, api_key="f" * 40, timeout=30)
    # endpoints that declare 401 raise the subclass ...
    with pytest.raises(UnauthorizedError) as ei:
        list(bad.tasks.list(project=1))
    assert ei.value.status_code == 401
    assert ei.value.body["detail"] == "Invalid token."
    # ... others raise the plain ApiError: always catch ApiError and look at status_code.
    with pytest.raises(ApiError) as ei:
        bad.projects.get(id=1)
    assert type(ei.value) is ApiError and ei.value.status_code == 401
    assert ei.value.headers.get("www-authenticate") == "Token"

    # raw HTTP: no header, or the legacy token sent as Bearer, is "not provided"
    for headers in ({}, {"Authorization": f"Bearer {label_studio.token}"}):
        status, body = http_get(f"{label_studio.url}/api/projects", headers=headers)
        assert status == 401
        assert body["detail"] == "Authentication credentials were not provided."


def test_unreachable_url_raises_httpx_connect_error(label_studio):
    import httpx
    from label_studio_sdk import LabelStudio

    from .server import free_port

    down = LabelStudio(
        base_url=f"http://127.0.0.1:{free_port()}", api_key=label_studio.token, timeout=5
    )
    t0 = time.monotonic()
    with pytest.raises(httpx.ConnectError):
        down.projects.get(id=1)
    assert time.monotonic() - t0 < 5  # refused at once, not a timeout


# --------------------------------------------------------------------------- projects / tasks
def test_create_project_with_generated_config(ls_client, project):
    assert project.id > 0
    got = ls_client.projects.get(id=project.id)
    assert got.title == project.title
    li = got.get_label_interface()
    control = li.get_control("label")
    assert control.tag == "Choices"
    assert control.labels == list(LABELS)  # plain strings, in config order


def test_import_tasks_with_predictions_and_list(ls_client, project):
    ids = import_pool(ls_client, project.id, n=3)
    tasks = tasks_by_id(ls_client, project.id)
    assert sorted(tasks) == sorted(ids)
    t = tasks[ids[1]]
    # custom data keys survive with their JSON types
    assert t.data == {"text": "example 1", "pool_id": 6, "round": 1}
    assert t.is_labeled is False and t.total_annotations == 0 and t.total_predictions == 1
    (pred,) = t.predictions
    assert pred.model_version == "round-1"
    assert pred.score == pytest.approx(0.6)
    assert labels_of(pred.result) == ["neutral"]
    # a later round adds a prediction to an existing task
    extra = ls_client.predictions.create(
        task=ids[1], result=choice_result("positive"), score=0.9, model_version="round-2"
    )
    assert extra.task == ids[1] and extra.score == pytest.approx(0.9)
    preds = ls_client.predictions.list(task=ids[1])
    assert [(p.model_version, labels_of(p.result)) for p in preds] == [
        ("round-1", ["neutral"]),
        ("round-2", ["positive"]),
    ]
    assert tasks_by_id(ls_client, project.id)[ids[1]].total_predictions == 2
    # pagination is transparent
    assert [x.id for x in ls_client.tasks.list(project=project.id, page_size=1)] == sorted(ids)


def test_annotation_as_a_person(ls_client, project):
    (tid,) = import_pool(ls_client, project.id, n=1)
    me = ls_client.users.whoami()
    ann = ls_client.annotations.create(id=tid, result=choice_result("positive"))
    assert ann.task == tid and ann.project == project.id
    assert ann.completed_by == me.id and ann.was_cancelled is False and ann.ground_truth is False
    assert isinstance(ann.created_at, datetime) and isinstance(ann.updated_at, datetime)

    t = tasks_by_id(ls_client, project.id)[tid]
    assert t.is_labeled is True and t.total_annotations == 1 and t.cancelled_annotations == 0
    assert t.completed_at is not None
    # SDK quirk: LseTask.annotations is typed Optional[str] but holds the raw list of dicts
    (raw,) = t.annotations
    assert isinstance(raw, dict)
    assert raw["id"] == ann.id and raw["completed_by"] == me.id  # int in tasks.list
    assert labels_of(raw["result"]) == ["positive"]

    # tasks.get nests completed_by as a user object instead
    full = ls_client.tasks.get(id=tid)
    assert full.annotations[0]["completed_by"]["id"] == me.id
    assert full.annotations[0]["completed_by"]["email"] == me.email

    # annotations.list gives typed Annotation objects
    (typed,) = ls_client.annotations.list(id=tid)
    assert typed.id == ann.id and labels_of(typed.result) == ["positive"]


def test_cancelled_annotation_reads_back_as_skipped(ls_client, project):
    tid, other = import_pool(ls_client, project.id, n=2)
    ann = ls_client.annotations.create(id=tid, result=[], was_cancelled=True)
    assert ann.was_cancelled is True and ann.result == []
    tasks = tasks_by_id(ls_client, project.id)
    t = tasks[tid]
    # counted separately and does not label the task
    assert t.cancelled_annotations == 1 and t.total_annotations == 0 and t.is_labeled is False
    assert t.completed_at is None
    (raw,) = t.annotations
    assert raw["was_cancelled"] is True and raw["result"] == []
    assert tasks[other].annotations == [] and tasks[other].cancelled_annotations == 0

    # only_annotated=True is accepted by the SDK but IGNORED by LS 1.23 (community): all tasks
    everything = {x.id for x in ls_client.tasks.list(project=project.id, only_annotated=True)}
    assert everything == {tid, other}
    # a Data Manager filter works; skipped tasks have total_annotations == 0
    done = {x.id for x in ls_client.tasks.list(project=project.id, query=annotated_query())}
    assert done == set()
    done_or_skipped = {
        x.id for x in ls_client.tasks.list(project=project.id, query=annotated_query(skipped=True))
    }
    assert done_or_skipped == {tid}


def test_two_annotations_on_one_task(ls_client, project):
    (tid,) = import_pool(ls_client, project.id, n=1)
    a = ls_client.annotations.create(id=tid, result=choice_result("negative"))
    b = ls_client.annotations.create(id=tid, result=choice_result("positive"))
    assert a.id != b.id
    t = tasks_by_id(ls_client, project.id)[tid]
    # project overlap is 1 by default, yet the server accepts and keeps both
    assert t.overlap == 1 and t.total_annotations == 2 and t.is_labeled is True
    assert sorted((x["id"], labels_of(x["result"])[0]) for x in t.annotations) == [
        (a.id, "negative"),
        (b.id, "positive"),
    ]
    assert [x.id for x in ls_client.annotations.list(id=tid)] == [a.id, b.id]

    # deleting one annotation (e.g. an annotator retracts) updates the counters
    assert ls_client.annotations.delete(id=a.id) is None
    t = tasks_by_id(ls_client, project.id)[tid]
    assert t.total_annotations == 1 and [x["id"] for x in t.annotations] == [b.id]


def test_update_annotation_bumps_updated_at(ls_client, project):
    (tid,) = import_pool(ls_client, project.id, n=1)
    a = ls_client.annotations.create(id=tid, result=choice_result("negative"))
    assert a.updated_at >= a.created_at
    time.sleep(0.05)
    u = ls_client.annotations.update(id=a.id, result=choice_result("neutral"))
    assert u.id == a.id and labels_of(u.result) == ["neutral"]
    assert u.created_at == a.created_at
    assert u.updated_at > a.updated_at  # the field that reveals an edit
    assert u.last_action is None  # not set by plain API writes
    got = ls_client.annotations.get(id=a.id)
    assert got.updated_at == u.updated_at and labels_of(got.result) == ["neutral"]

    g = ls_client.annotations.update(id=a.id, ground_truth=True)
    assert g.ground_truth is True and labels_of(g.result) == ["neutral"]  # PATCH semantics
    raw = tasks_by_id(ls_client, project.id)[tid].annotations[0]
    assert raw["ground_truth"] is True


def test_delete_task(ls_client, project):
    from label_studio_sdk.core.api_error import ApiError

    keep, gone = import_pool(ls_client, project.id, n=2)
    ann = ls_client.annotations.create(id=gone, result=choice_result("positive"))
    assert ls_client.tasks.delete(id=gone) is None
    assert set(tasks_by_id(ls_client, project.id)) == {keep}
    with pytest.raises(ApiError) as ei:
        ls_client.tasks.get(id=gone)
    assert ei.value.status_code == 404
    assert ei.value.body["detail"] == "No Task matches the given query."
    # its annotations go with it
    with pytest.raises(ApiError) as ei:
        ls_client.annotations.get(id=ann.id)
    assert ei.value.status_code == 404

    # SQLite backend: the Task table is not AUTOINCREMENT, so a new task gets
    # max(existing task id) + 1 and the id of a deleted highest task is REUSED. Never key pool
    # examples on LS task ids alone; use data["pool_id"] (annotation ids were not reused).
    highest = max_task_id(ls_client)
    (new_tid,) = import_pool(ls_client, project.id, n=1, round_=2)
    assert new_tid == highest + 1
    if gone > highest:  # always the case when this file runs alone (projects are deleted)
        assert new_tid == gone
    t = tasks_by_id(ls_client, project.id)[new_tid]
    assert t.data["round"] == 2 and t.annotations == []
    new_ann = ls_client.annotations.create(id=new_tid, result=choice_result("neutral"))
    assert new_ann.id > ann.id


# --------------------------------------------------------------------------- persistence
@pytest.mark.parametrize("crash", [False, True], ids=["stop", "sigkill"])
def test_restart_keeps_data(ls_client, label_studio, project, crash):
    ids = import_pool(ls_client, project.id, n=2)
    ann = ls_client.annotations.create(id=ids[0], result=choice_result("neutral"))
    url = label_studio.url
    label_studio.restart(crash=crash)
    assert label_studio.url == url and label_studio.healthy()
    # the same client object keeps working (no session state on the server side)
    tasks = tasks_by_id(ls_client, project.id)
    assert sorted(tasks) == sorted(ids)
    assert tasks[ids[0]].annotations[0]["id"] == ann.id
    assert labels_of(tasks[ids[0]].annotations[0]["result"]) == ["neutral"]
    assert tasks[ids[1]].predictions[0].model_version == "round-1"
    assert ls_client.users.whoami().email == label_studio.username  # token still valid
