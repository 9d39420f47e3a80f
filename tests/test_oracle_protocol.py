"""What the loop knows of an oracle: its protocol (label source, kept rounds, bind), nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from energizer_hf.errors import EnergizerError
from energizer_hf.learner import ActiveLearner
from energizer_hf.oracles import (
    AwaitingAnnotations,
    CallableOracle,
    Oracle,
    OracleBase,
    SimulatedOracle,
    as_oracle,
)
from energizer_hf.run import RunDir, RunInfo
from tests.conftest import learner_kwargs


def test_as_oracle_gives_every_labeller_the_protocol():
    fn = as_oracle(lambda ids, round: np.zeros(len(ids)))
    assert isinstance(fn, CallableOracle) and fn.annotate(np.array([3, 4]), round=1).tolist() == [0, 0]

    class OnlyAnnotate:
        def annotate(self, ids, *, round):
            return np.ones(len(ids), dtype=np.int64)

    wrapped = as_oracle(OnlyAnnotate())
    assert isinstance(wrapped, Oracle)
    assert (wrapped.label_source, wrapped.keeps_round) == ("annotator", False)
    assert wrapped.annotate(np.array([1]), round=0).tolist() == [1]
    simulated = SimulatedOracle(np.array([1, 0]))
    assert as_oracle(simulated) is simulated and simulated.label_source == "dataset"
    with pytest.raises(EnergizerError, match="annotate"):
        as_oracle(42)
    assert issubclass(AwaitingAnnotations, Exception) and AwaitingAnnotations.stop_reason == "awaiting_annotations"


class Recording(OracleBase):
    """Labels from an array (a person who is always right); remembers what the run gave it."""

    label_source = "annotator"

    def __init__(self, truth):
        self.truth = np.asarray(truth)
        self.bound = []
        self.guesses = []

    def bind(self, run, dataset, predict):
        self.bound.append((run, dataset, predict))

    def annotate(self, ids, *, round):
        run, dataset, predict = self.bound[-1]
        if predict is not None:  # the model's guesses, asked on this process alone
            self.guesses.append(predict(ids))
        return self.truth[ids]


def test_the_loop_binds_the_oracle_to_the_run(tmp_path, demo_data, demo_tokenizer, tiny_bert_config):
    truth = demo_data["train"]["label"][:]
    oracle = Recording(truth)
    learner = ActiveLearner(
        dataset=demo_data, model=tiny_bert_config, tokenizer=demo_tokenizer, oracle=oracle,
        **learner_kwargs(tmp_path, rounds=1),
    )
    results = learner.run()
    assert [r["num_labelled"] for r in results] == [10, 20]
    (run, dataset, predict), = oracle.bound
    assert isinstance(run, RunInfo) and run.files == RunDir(learner.config.run_dir)
    assert run.label_names == tuple(demo_data["train"].features["label"].names)
    assert run.text_column == "text" and run.label_source == "annotator"
    assert dataset is learner.pool.dataset and len(dataset) == 300
    # the initial set (untrained model) and round 1's queries: (ids, classes) probabilities
    assert [g.shape for g in oracle.guesses] == [(10, 5), (10, 5)]
    assert np.allclose(oracle.guesses[1].sum(1), 1.0, atol=1e-4)
    # the revisions say who labelled, from the protocol, not from the oracle's class
    card = RunDir(learner.config.run_dir).revision_card(1).read_text()
    assert "label_source: annotator" in card


def test_label_studio_oracle_takes_what_it_needs_from_the_run(tmp_path, demo_data):
    """No server needed: binding, and the pre-annotations from the run's model."""
    from energizer_hf.oracles import LabelStudioError, LabelStudioOracle

    names = ("negative", "positive")
    run = RunInfo(files=RunDir(tmp_path / "run"), label_names=names, text_column="sentence")
    dataset = demo_data["train"].rename_column("text", "sentence")
    probs = np.array([[0.2, 0.8], [0.9, 0.1]])
    oracle = LabelStudioOracle(url="http://127.0.0.1:9", token="t" * 40, progress=False)
    with pytest.raises(LabelStudioError, match="not bound"):
        _ = oracle.state_dir
    oracle.bind(run, dataset, lambda ids: probs[: len(ids)])
    assert oracle.label_names == list(names) and oracle.text_column == "sentence"
    assert oracle.state_dir == RunDir(tmp_path / "run").label_studio
    payloads = oracle._task_payloads(np.array([4, 7]), round=3)
    assert [p["data"] for p in payloads] == [
        {"text": dataset[4]["sentence"], "pool_id": 4, "round": 3},
        {"text": dataset[7]["sentence"], "pool_id": 7, "round": 3},
    ]
    assert [p["predictions"][0]["result"][0]["value"]["choices"] for p in payloads] == [["positive"], ["negative"]]
    assert [p["predictions"][0]["score"] for p in payloads] == [0.8, 0.9]
    # told something else than the run: a named error, not a silent mix-up
    other = LabelStudioOracle(url="http://127.0.0.1:9", token="t" * 40, label_names=["a", "b"])
    with pytest.raises(LabelStudioError, match="differ from the run's classes"):
        other.bind(run, dataset, None)
    elsewhere = LabelStudioOracle(url="http://127.0.0.1:9", token="t" * 40, run_dir=tmp_path / "x")
    with pytest.raises(LabelStudioError, match="leave run_dir out"):
        elsewhere.bind(run, dataset, None)
    silent = LabelStudioOracle(url="http://127.0.0.1:9", token="t" * 40, predictions=None)
    silent.bind(run, dataset, lambda ids: probs)
    assert "predictions" not in silent._task_payloads(np.array([1]), round=0)[0]
