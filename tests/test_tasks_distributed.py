"""NER and multi-label runs query the same rows with 2-process scoring as with 1 process.

Each case runs ``tests/scripts/ddp_tasks.py`` (a 2-round ActiveLearner run of a tiny model
on a 120-row pool, CPU) once as a plain process and once under ``torchrun
--nproc_per_node 2`` (gloo). Every rank fits the same model on one device with the same
seed, so the fits agree and only the pool scoring is shared: the scorer deals the
length-sorted batches to the two ranks and merges their top-k / outputs through files.
(Lightning ``strategy="ddp"`` would shard the fit too, and a sharded fit is not the fit
of one process, so it could not give the same queries.)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(out: Path, task: str, strategy: str, *extra: str, nproc: int | None = None) -> subprocess.CompletedProcess:
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), TOKENIZERS_PARALLELISM="false")
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "NODE_RANK",
                "GROUP_RANK", "TORCHELASTIC_RUN_ID", "ENERGIZER_HF_FAULT"):
        env.pop(key, None)
    cmd = [sys.executable]
    if nproc:
        cmd += ["-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port", str(_free_port())]
    cmd += ["-m", "tests.scripts.ddp_tasks", str(out / "run"), task, strategy, *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _ranks(out: Path, proc: subprocess.CompletedProcess, world: int) -> list[dict]:
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(world)]


CASES = [
    pytest.param("ner", "token_entropy", (), id="ner-token_entropy"),
    pytest.param("ner", "mnlp", ("--tokens",), id="ner-mnlp-token-budget"),
    pytest.param("multi_label", "binary_entropy", (), id="multi_label-binary_entropy"),
    pytest.param("multi_label", "mmc", (), id="multi_label-mmc"),
]


@pytest.mark.distributed
@pytest.mark.timeout(300)
@pytest.mark.parametrize("task,strategy,extra", CASES)
def test_two_process_scoring_queries_the_same_rows_as_one(tmp_path, task, strategy, extra):
    (one,) = _ranks(tmp_path / "one", _run(tmp_path / "one", task, strategy, *extra), 1)
    two = _ranks(tmp_path / "two", _run(tmp_path / "two", task, strategy, *extra, nproc=2), 2)
    assert one["world"] == 1 and [r["world"] for r in two] == [2, 2]
    assert one["task"] == ("token_classification" if task == "ner" else "multi_label")
    # two queries (rounds 0 and 1), none after the last round
    queries = one["queries"]
    assert len(queries) == 3 and all(queries[:2]) and queries[2] == []
    if "--tokens" not in extra:
        assert [len(q) for q in queries[:2]] == [10, 10] and one["num_labelled"] == [10, 20, 30]
    for rank in two:
        # the same queries, in the same order (the strategy's ranking), round by round
        assert rank["queries"] == queries, f"rank {rank['rank']}"
        for got, want in zip(rank["scores"], one["scores"]):
            assert (got is None) == (want is None)
            if want is not None:
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        # the same labelled set, labelled in the same rounds, with the same stored labels
        assert rank["labelled"] == one["labelled"]
        assert rank["rounds"] == one["rounds"]
        assert rank["labels"] == one["labels"]
        assert rank["num_labelled"] == one["num_labelled"]
    # rank 1 scored its share of the pool at every query (its exchange files were there)
    assert [s["round"] for s in two[0]["scored_by"]] == [0, 1]
    assert all(s["rank1_files"] > 0 for s in two[0]["scored_by"]), two[0]["scored_by"]
    assert all(s["rank1_files"] == 0 for s in one["scored_by"])
    # rank 0 wrote the label state once; it holds the same labelled set as one process's
    for sub in ("one", "two"):
        state = np.load(tmp_path / sub / "run" / "pool" / "label_state.npy")
        assert np.flatnonzero(state["round"] >= 0).tolist() == one["labelled"]
    records = [json.loads(x) for x in (tmp_path / "two" / "run" / "rounds.jsonl").read_text().splitlines()]
    assert [r["queried_ids"] for r in records] == queries


@pytest.mark.distributed
@pytest.mark.timeout(300)
@pytest.mark.parametrize("task,strategy", [
    pytest.param("ner", "token_entropy", id="ner"),
    pytest.param("multi_label", "binary_entropy", id="multi_label"),
])
def test_torchrun_without_starting_the_process_group_first(tmp_path, task, strategy):
    """The loop alone under torchrun (the script does not join the process group itself),
    with rank 0 slower to set up than rank 1: every rank must hold rank 0's labels. (Round
    0's labels were not broadcast when no scoring had started the process group yet: NER
    failed with TagLengthMismatchError, multi-label fitted rank 1 on empty label sets.)"""
    (one,) = _ranks(tmp_path / "one", _run(tmp_path / "one", task, strategy), 1)
    proc = _run(tmp_path / "two", task, strategy, "--lazy-group", "--delay-rank0", "8", nproc=2)
    two = _ranks(tmp_path / "two", proc, 2)
    for rank in two:
        assert rank["queries"] == one["queries"], f"rank {rank['rank']}: other queries than one process"
        assert rank["labelled"] == one["labelled"] and rank["labels"] == one["labels"], f"rank {rank['rank']}"
