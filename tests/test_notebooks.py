"""Run every example notebook top to bottom, offline, in smoke mode (tiny data and model)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples" / "notebooks").glob("*.ipynb"))
COLAB = "https://colab.research.google.com/github/energizer-hf/energizer_hf/blob/main/examples/notebooks/"

_missing = [m for m in ("nbformat", "nbclient", "ipykernel") if importlib.util.find_spec(m) is None]
needs_jupyter = pytest.mark.skipif(
    bool(_missing),
    reason=f"executing notebooks needs {', '.join(_missing)} (pip install nbclient ipykernel)",
)


def test_there_are_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= {"quickstart", "compare_strategies", "human_in_the_loop"}


@pytest.mark.skipif(importlib.util.find_spec("nbformat") is None, reason="needs nbformat")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean(path):
    """Valid nbformat 4, a Colab badge to itself, a guarded install cell, no stored outputs."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown" and COLAB + path.name in nb.cells[0].source
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert 'find_spec("energizer_hf") is None' in code[0].source and "pip" in code[0].source
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: stored outputs"


@pytest.mark.slow
@needs_jupyter
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {
        "ENERGIZER_HF_NOTEBOOK_SMOKE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TMPDIR": str(tmp_path),  # the notebooks' smoke runs go to tempfile.mkdtemp()
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        client = NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        )
        client.execute()  # raises CellExecutionError on the first failing cell
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if path.stem in ("quickstart", "compare_strategies"):  # the learning curves are inline
        assert any(
            "image/png" in o.get("data", {})
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.outputs
        ), f"{path.name}: no inline plot"
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors, errors


# ---------------------------------------------------------------- WidgetOracle (no kernel)
def test_widget_oracle_headless_answer_and_errors():
    import numpy as np

    from energizer_hf.errors import EnergizerError
    from energizer_hf.oracles.base import Oracle
    from energizer_hf.oracles.widget import WidgetOracle

    oracle = WidgetOracle(["a", "b", "c"], ["x", "y"], answer=lambda ids, r: [0, -1][: len(ids)])
    assert isinstance(oracle, Oracle) and oracle.keeps_round
    assert oracle.annotate(np.array([2, 1]), round=0).tolist() == [0, -1]
    with pytest.raises(EnergizerError, match="2 labels for 3 ids"):
        oracle.annotate(np.array([0, 1, 2]), round=1)
    with pytest.raises(EnergizerError, match="at least two"):
        WidgetOracle(["a"], ["x"])
    with pytest.raises(EnergizerError, match="live notebook kernel"):  # no answer, no kernel
        WidgetOracle(["a", "b"], ["x", "y"]).annotate(np.array([0]), round=0)


@pytest.mark.skipif(importlib.util.find_spec("ipywidgets") is None, reason="needs ipywidgets")
def test_widget_oracle_async_cycle_with_clicks(
    tmp_path, monkeypatch, demo_data, demo_tokenizer, tiny_bert_config
):
    """run() stops awaiting the widget; clicks + collect() finish each round; skips go back."""
    import IPython.display

    from energizer_hf.learner import ActiveLearner
    from energizer_hf.oracles import widget
    from tests.conftest import learner_kwargs

    monkeypatch.setattr(widget, "in_notebook", lambda: True)
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda w: shown.append(w))
    texts = demo_data["train"]["text"][:]
    gold = demo_data["train"]["label"][:]
    names = demo_data["train"].features["label"].names
    oracle = widget.WidgetOracle(texts, names)
    learner = ActiveLearner(
        dataset=demo_data,
        model=tiny_bert_config,
        tokenizer=demo_tokenizer,
        oracle=oracle,
        strategy="entropy",
        **learner_kwargs(tmp_path, query_size=5, initial_size=5, rounds=2),
    )
    results = learner.run()
    assert results.stop_reason == "awaiting_annotations" and len(shown) == 1
    assert learner.collect().stop_reason == "awaiting_annotations"  # nothing clicked yet
    for _ in range(4):
        if results.stop_reason != "awaiting_annotations":
            break
        for i, (pool_id, buttons) in enumerate(sorted(oracle.buttons.items())):
            assert texts[pool_id] in oracle.widget.children[1 + i].children[0].value
            buttons.value = "skip" if i == 0 else names[gold[pool_id]]
        results = learner.collect()
    assert results.stop_reason != "awaiting_annotations"
    assert [r["num_labelled"] for r in results] == [4, 8, 12]  # one skip per round
    assert sorted(oracle.history) == [0, 1, 2]
    assert all(h["labels"][0] == -1 for h in oracle.history.values())
