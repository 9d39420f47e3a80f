"""Every public name is importable, and the seed API's import lines work."""

import importlib
import importlib.util

import pytest

MODULES = [
    "energizer_hf",
    "energizer_hf.acquisition_functions",
    "energizer_hf.checks",
    "energizer_hf.cli_errors",
    "energizer_hf.config_types",
    "energizer_hf.distributed",
    "energizer_hf.errors",
    "energizer_hf.formats",
    "energizer_hf.functional",
    "energizer_hf.integrity",
    "energizer_hf.model_outputs",
    "energizer_hf.oracles",
    "energizer_hf.oracles.base",
    "energizer_hf.query_strategies",
    "energizer_hf.retry",
    "energizer_hf.revisions",
    "energizer_hf.run",
    "energizer_hf.runlock",
    "energizer_hf.scrub",
    "energizer_hf.strategy_catalog",
    "energizer_hf.stream",
    "energizer_hf.stream.oracles",
    "energizer_hf.stream_config",
    "energizer_hf.stream_learner",
    "energizer_hf.utils",
    "energizer_hf.selfsup",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_importable(name):
    module = importlib.import_module(name)
    assert list(module.__all__) == sorted(module.__all__)
    for public in module.__all__:
        assert hasattr(module, public), f"{name}.{public}"


def test_seed_api_imports():
    from energizer_hf import ActiveDataModule, Trainer  # noqa: F401
    from energizer_hf.acquisition_functions import entropy  # noqa: F401
    from energizer_hf.query_strategies import (  # noqa: F401
        AccumulatorStrategy,
        BALDStrategy,
        EntropyStrategy,
        LeastConfidenceStrategy,
        MarginStrategy,
        RandomStrategy,
    )


HEADLINE = {
    "AccumulatorStrategy": "energizer_hf.query_strategies.base",
    "ActiveLearner": "energizer_hf.learner",
    "LabelStudioOracle": "energizer_hf.oracles.label_studio",
    "PoolScorer": "energizer_hf.scoring",
    "RoundStore": "energizer_hf.revisions",
    "RunConfig": "energizer_hf.learner",
    "Strategy": "energizer_hf.query_strategies.base",
    "StreamConfig": "energizer_hf.stream_config",
    "StreamLearner": "energizer_hf.stream_learner",
    "WidgetOracle": "energizer_hf.oracles.widget",
    "register_strategy": "energizer_hf.query_strategies.registry",
}


def test_headline_classes_at_the_top_level():
    """`from energizer_hf import ActiveLearner` (docs/huge_pools.md) and friends."""
    import energizer_hf

    for name, home in HEADLINE.items():
        assert name in energizer_hf.__all__ and name in dir(energizer_hf), name
        assert getattr(energizer_hf, name) is getattr(importlib.import_module(home), name), name
    with pytest.raises(AttributeError, match="no attribute 'NotAThing'"):
        energizer_hf.NotAThing  # noqa: B018


def test_top_level_import_stays_lazy():
    """The new exports load nothing at `import energizer_hf`: no learner, no Hub client code,
    no Label Studio SDK."""
    import subprocess
    import sys

    code = (
        "import sys, energizer_hf\n"
        "eager = [m for m in ('energizer_hf.learner', 'energizer_hf.revisions.hub', 'energizer_hf.revisions.hub_api', 'label_studio_sdk') if m in sys.modules]\n"
        "assert not eager, eager\n"
        "from energizer_hf import ActiveLearner, RunConfig\n"
        "assert 'energizer_hf.learner' in sys.modules and 'label_studio_sdk' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_import_energizer_hf_loads_no_label_studio_or_notebook_code():
    """The loop knows oracles by their protocol (``oracles/base.py``), not by Label Studio."""
    import subprocess
    import sys

    code = (
        "import sys, energizer_hf, energizer_hf.loop, energizer_hf.learner, energizer_hf.cli\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('energizer_hf.oracles.') "
        "or m.startswith('label_studio') or m == 'ipywidgets')\n"
        "print(loaded)\n"
        "assert loaded == ['energizer_hf.oracles.base'], loaded\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]


def _documented_imports():
    """(file, module, names) of every `from energizer_hf... import ...` in the README, the docs'
    python blocks, the examples and the notebooks."""
    import ast
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sources = []
    for md in [root / "README.md", *(root / "docs").rglob("*.md"), *(root / "examples").rglob("*.md")]:
        blocks = re.findall(r"```python\n(.*?)```", md.read_text(), flags=re.S)
        sources += [(md.relative_to(root), b) for b in blocks]
    for nb in (root / "examples" / "notebooks").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        sources += [(nb.relative_to(root), "".join(c["source"])) for c in cells if c["cell_type"] == "code"]
    sources += [(py.relative_to(root), py.read_text()) for py in (root / "examples").glob("*.py")]
    for where, code in sources:
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "energizer_hf":
                yield str(where), node.module, [a.name for a in node.names]


def test_every_documented_import_line_works():
    found = list(_documented_imports())
    assert any(where.endswith("huge_pools.md") for where, _, _ in found)
    missing = []
    for where, module, names in found:
        mod = importlib.import_module(module)
        for name in names:
            if not hasattr(mod, name) and importlib.util.find_spec(f"{module}.{name}") is None:
                missing.append(f"{where}: from {module} import {name}")
    assert not missing, missing
