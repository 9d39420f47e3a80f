"""Every public name is importable, and the seed API's import lines work."""

import importlib

import pytest

MODULES = [
    "energizer_hf",
    "energizer_hf.acquisition_functions",
    "energizer_hf.functional",
    "energizer_hf.distributed",
    "energizer_hf.model_outputs",
    "energizer_hf.oracles",
    "energizer_hf.oracles.base",
    "energizer_hf.query_strategies",
    "energizer_hf.retry",
    "energizer_hf.revisions",
    "energizer_hf.run",
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
