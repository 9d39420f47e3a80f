"""Run every example notebook top to bottom, offline, in smoke mode (tiny data and model).

The notebooks run as a user runs them: their install cell installs energizer_hf from a wheel
(built once per test session from a copy of this checkout) into a fresh virtual environment
whose kernel executes the notebook. The venv sees the test environment's packages
(``--system-site-packages``), so torch and the other dependencies are not installed again,
and nothing is installed into the test environment itself.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples" / "notebooks").glob("*.ipynb"))
KERNEL = "energizer-hf-wheel"

_missing = [m for m in ("nbformat", "nbclient", "ipykernel", "build") if importlib.util.find_spec(m) is None]
needs_jupyter = pytest.mark.skipif(
    bool(_missing),
    reason=f"executing notebooks needs {', '.join(_missing)} (pip install -e '.[dev]')",
)


def test_there_are_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= {"quickstart", "compare_strategies", "human_in_the_loop", "ner_active_learning"}


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.skipif(importlib.util.find_spec("nbformat") is None, reason="needs nbformat")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean(path):
    """Valid nbformat 4; one install source at the top; GPU, progress and own-data cells (a CSV,
    or for NER a CoNLL file or a dataset); no stored outputs; no badge to a repository that
    does not exist; no PyPI install."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    text = "\n".join(c.source for c in nb.cells)
    assert "colab.research.google.com/github" not in text and "colab-badge" not in text
    code = _code(nb)
    install = code[0]
    # the single source variable, overridable by the environment, and the install uses it
    assert 'ENERGIZER_HF_SOURCE = os.environ.get("ENERGIZER_HF_SOURCE", "")' in install
    assert install.count("ENERGIZER_HF_SOURCE =") == 1
    assert re.search(r'source = ENERGIZER_HF_SOURCE\b', install) and "pip" in install
    assert not re.search(r"""pip", "install", "-q", "energizer_hf""", text)
    assert "docs/install.md" in nb.cells[0].source and "Upload notebook" in nb.cells[0].source
    setup = next(c for c in code if "hardware = dict(" in c)
    assert "torch.cuda.is_available()" in setup and '"bf16-mixed"' in setup and '"16-mixed"' in setup
    assert "print(" in setup
    assert any("progress=not SMOKE" in c and "settings.update(hardware" in c for c in code)
    if path.stem == "ner_active_learning":  # own data: a CoNLL file (load_conll) or a tokens/tags dataset
        data = next(c for c in code if "MY_CONLL =" in c)
        assert "load_conll(MY_CONLL)" in data and "load_dataset(MY_HF_DATASET)" in data
        assert "TOKENS_COLUMN, TAGS_COLUMN" in data
    else:
        data = next(c for c in code if "MY_CSV =" in c)
        assert 'load_dataset("csv", data_files=MY_CSV)' in data and "TEXT_COLUMN, LABEL_COLUMN" in data
    assert 'drive.mount("/content/drive")' in data and "ON_COLAB" in data
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: stored outputs"


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory) -> Path:
    """A wheel of this checkout, built once per session from a copy (the tree is not touched)."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "site", "*.egg-info", "__pycache__", "runs", ".venv*",
            "energizer_demo", "lightning_logs", ".pytest_cache", ".ruff_cache",
        ),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(work / "dist"), str(src)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = (work / "dist").glob("energizer_hf-*-py3-none-any.whl")
    return wheel


@pytest.fixture(scope="session")
def notebook_venv(tmp_path_factory) -> tuple[Path, Path]:
    """A fresh venv for the kernel, and a JUPYTER_PATH naming its kernel spec.

    ``--system-site-packages`` shows it the base interpreter's packages; when the tests
    themselves run in a venv, a ``.pth`` file adds that venv's site-packages too (after the
    new venv's own, so the wheel installed there wins). pip comes from those packages and
    installs into the new venv (its ``sys.prefix``).
    """
    root = tmp_path_factory.mktemp("nb-venv")
    venv = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True, timeout=300,
    )
    python = venv / "bin" / "python"
    if sys.prefix != sys.base_prefix:
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        Path(purelib, "_energizer_test_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    spec = root / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "energizer_hf from the test wheel",
        "language": "python",
    }))
    return venv, root / "jupyter"


def _outputs_text(cell) -> str:
    parts = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            parts.append(o.text)
        elif "text/plain" in o.get("data", {}):
            parts.append(o["data"]["text/plain"])
    return "".join(parts)


@pytest.mark.slow
@needs_jupyter
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, built_wheel, notebook_venv, demo_data):
    import nbformat
    import torch
    from nbclient import NotebookClient

    venv, jupyter_path = notebook_venv
    nb = nbformat.read(path, as_version=4)
    env = {
        "ENERGIZER_HF_SOURCE": str(built_wheel),  # the install cell installs the wheel
        "ENERGIZER_HF_NOTEBOOK_SMOKE": "1",
        "JUPYTER_PATH": str(jupyter_path),
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "TMPDIR": str(tmp_path),  # the notebooks' smoke runs go to tempfile.mkdtemp()
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYTHONPATH": None,  # the kernel must not see this checkout
        "ENERGIZER_HF_CSV": None,
        "ENERGIZER_HF_CONLL": None,
    }
    if path.stem == "quickstart":  # the own-CSV cell: string labels, read with load_dataset("csv")
        csv = tmp_path / "my_texts.csv"
        names = demo_data["train"].features["label"].names
        both = [demo_data["train"], demo_data["test"]]
        rows = [(t, names[y]) for d in both for t, y in zip(d["text"][:], d["label"][:])]
        import csv as csv_module

        with open(csv, "w", newline="") as f:
            writer = csv_module.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        env["ENERGIZER_HF_CSV"] = str(csv)
    if path.stem == "ner_active_learning":  # the own-data cell: a CoNLL file read by load_conll
        from energizer_hf.demo import make_ner_dataset

        ner = make_ner_dataset(num_train=400, num_test=150, seed=0)
        names = ner["train"].features["ner_tags"].feature.names
        conll = tmp_path / "my_sentences.conll"
        conll.write_text("".join(
            "".join(f"{w}\t{names[t]}\n" for w, t in zip(row["tokens"], row["ner_tags"])) + "\n"
            for split in ("train", "test") for row in ner[split]
        ))
        env["ENERGIZER_HF_CONLL"] = str(conll)
    old = {k: os.environ.get(k) for k in env}
    for k, v in env.items():  # the kernel inherits this process's environment
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        client = NotebookClient(
            nb, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(tmp_path)}}
        )
        client.execute()  # raises CellExecutionError on the first failing cell
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    # the install cell installed the wheel into the venv and the notebook imported that copy
    match = re.search(r"energizer_hf (\S+) from (\S+)", _outputs_text(code[0]))
    assert match, _outputs_text(code[0])
    imported = Path(match.group(2)).resolve()
    assert imported.is_relative_to(venv.resolve()) and not imported.is_relative_to(ROOT), imported
    assert (imported / "__init__.py").is_file()
    # the hardware choice is printed, and is the one this machine calls for
    setup = next(_outputs_text(c) for c in code if "hardware = dict(" in c.source)
    expected = "accelerator=gpu" if torch.cuda.is_available() else "accelerator=cpu, precision=32-true"
    assert expected in setup, setup
    if path.stem == "quickstart":
        data_out = next(_outputs_text(c) for c in code if "MY_CSV =" in c.source)
        assert "classes: ['cooking', 'finance', 'politics', 'science', 'sports']" in data_out, data_out
        assert (next(tmp_path.glob("energizer-quickstart-*")) / "learning_curves.png").is_file()
    if path.stem == "ner_active_learning":
        data_out = next(_outputs_text(c) for c in code if "MY_CONLL =" in c.source)
        assert "tags: ['O', 'B-LOC', 'I-LOC', 'B-ORG', 'I-ORG', 'B-PER', 'I-PER']" in data_out, data_out
        assert "num_rows: 412" in data_out and "num_rows: 138" in data_out, data_out  # 550 sentences, 25% test
        assert (next(tmp_path.glob("energizer-ner-*")) / "learning_curves.png").is_file()
        # the per-type table: one row per entity type, a number in each strategy's column
        types = next(_outputs_text(c) for c in code if "def per_type_table" in c.source)
        assert "| entity type | random | token_entropy | mnlp |" in types, types
        for etype in ("LOC", "ORG", "PER", "(macro)", "(micro)"):
            assert re.search(rf"^\| {re.escape(etype)} \| [01]\.\d{{3}} \| [01]\.\d{{3}} \| [01]\.\d{{3}} \|$", types, re.M), etype
        # budgets in words: every run spent at most, and nearly all of, the same words
        words_out = _outputs_text(next(c for c in code if 'budget_unit="tokens"' in c.source))
        initial, per_round = map(int, re.search(r"initial (\d+), per round (\d+)", words_out).groups())
        budget = initial + 3 * per_round  # the smoke mode's 3 rounds
        spent = [int(m) for m in re.findall(r"entity F1 \S+ -> \S+ \((\d+) words in", words_out)]
        assert len(spent) == 3 and all(0.9 * budget <= n <= budget for n in spent), (budget, spent)
        assert '<Labels name="label" toName="text"><Label value="LOC"/>' in _outputs_text(code[-1])
    if path.stem in ("quickstart", "compare_strategies", "ner_active_learning"):  # the learning curves are inline
        assert any(
            "image/png" in o.get("data", {}) for c in code for o in c.outputs
        ), f"{path.name}: no inline plot"
    # every learning curve moves: the final round is clearly better than the first
    curves = sorted(tmp_path.glob("energizer-*/**/rounds.jsonl"))
    expected = {"quickstart": 2, "compare_strategies": 4, "human_in_the_loop": 1, "ner_active_learning": 6}
    assert len(curves) == expected[path.stem]
    metric = "test/entity_f1" if path.stem == "ner_active_learning" else "test/accuracy"
    for rounds in curves:
        acc = [json.loads(line)[metric] for line in rounds.read_text().splitlines() if line.strip()]
        assert all(math.isfinite(a) for a in acc), (str(rounds), acc)
        assert acc[-1] >= acc[0] + 0.15, (str(rounds), acc)


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
