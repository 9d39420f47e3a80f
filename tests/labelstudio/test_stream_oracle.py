"""A stream labelled by people on a real Label Studio server (``LabelStudioStreamOracle``).

People are played by a background thread that annotates the tasks as they appear, with the
items' true labels, a little later: the stream never waits for them, and each retrain uses
the labels that have come back.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stream"))


def result(label: str) -> list[dict]:
    return [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]


def test_stream_tasks_created_as_chosen_labels_flow_back_and_models_retrain_on_them(
    label_studio, ls_client, tmp_path
):
    from _learner_runner import learner as make_learner

    from energizer_hf.oracles.label_studio import LabelStudioStreamOracle
    from energizer_hf.run import RunDir

    oracle = LabelStudioStreamOracle(
        url=label_studio.url, token=label_studio.token, project=f"stream-{uuid.uuid4().hex[:8]}", poll_seconds=0.0,
    )
    learner = make_learner(str(tmp_path / "run"), "replay", oracle=oracle, retrain_every=6, retrain_lag=None,
                           max_items=192, final_wait=60.0)
    learner.setup()
    source = learner.source
    names = learner.label_names
    stop = threading.Event()
    annotated: dict[int, str] = {}
    skip_position: list[int] = []

    def people() -> None:  # annotate every task about 0.3 s after it appears; skip the third one
        while not stop.is_set():
            if oracle.oracle.project_id is not None:
                for task in ls_client.tasks.list(project=oracle.oracle.project_id):
                    pos = int(task.data["pool_id"])
                    if pos in annotated or pos in skip_position:
                        continue
                    if len(annotated) + len(skip_position) == 2:
                        ls_client.annotations.create(id=task.id, result=[], was_cancelled=True)
                        skip_position.append(pos)
                        continue
                    row = source.dataset[int(source.order[pos])]
                    assert task.data["text"] == row["text"]
                    label = names[row["label"]]
                    ls_client.annotations.create(id=task.id, result=result(label))
                    annotated[pos] = label
            time.sleep(0.3)

    thread = threading.Thread(target=people, daemon=True)
    thread.start()
    try:
        results = learner.run()
    finally:
        stop.set()
        thread.join(timeout=30)
    files = RunDir(results.run_dir)
    tasks = list(ls_client.tasks.list(project=oracle.oracle.project_id))
    sent = [json.loads(line) for line in files.stream_sent.read_text().splitlines()]
    # a task for every item chosen, keyed by its arrival position, nothing more
    assert sorted(int(t.data["pool_id"]) for t in tasks) == sorted(r["position"] for r in sent)
    assert results.num_sent == len(sent) > 12
    # every label came back, the skipped item as -1 (never trained on)
    labels = [json.loads(line) for line in files.stream_labels.read_text().splitlines()]
    assert len(labels) == len(sent)
    by_id = {r["id"]: r["label"] for r in labels}
    skipped_id = next(r["id"] for r in sent if r["position"] == skip_position[0])
    assert by_id[skipped_id] == -1
    truth = {r["id"]: names.index(annotated[r["position"]]) for r in sent if r["position"] in annotated}
    assert all(by_id[i] == y for i, y in truth.items())
    assert results.num_labelled == len(sent) - 1
    # the models retrained on what had come back: each round on the labels received when it started
    recs = results.records
    assert len(recs) >= 2 and recs[-1]["num_labelled"] == results.num_labelled
    assert all(r["num_labelled"] <= results.num_labelled for r in recs)
    assert all(r["trigger_position"] <= r["swap_position"] for r in recs)
    # pre-annotations from the model in use, once there is one
    # (only from a trained model: items chosen while the initial weights were in use get none)
    with_pred = {int(t.data["pool_id"]) for t in tasks if ls_client.predictions.list(task=t.id)}
    decided = [json.loads(line) for line in files.stream_decisions.read_text().splitlines()]
    by_trained = {d["position"] for d in decided if d.get("label") and d["round"] >= 0}
    assert with_pred == by_trained
    state = json.loads((files.label_studio / "tasks.json").read_text())
    assert label_studio.token not in json.dumps(state)
    # restarting: items still out are re-sent without a second import
    again = LabelStudioStreamOracle(url=label_studio.url, token=label_studio.token, poll_seconds=0.0)
    from energizer_hf.run import RunInfo
    from energizer_hf.stream.oracles import SentItem

    again.bind(RunInfo.from_dir(files), names)
    first = sent[0]
    again.send([SentItem(id=first["id"], position=first["position"], row={"text": "x"})])
    assert len(list(ls_client.tasks.list(project=oracle.oracle.project_id))) == len(tasks)
    assert again.finish(0.0) == [(first["id"], by_id[first["id"]])]
    np.testing.assert_array_equal(sorted(by_id), sorted(r["id"] for r in sent))
