"""Every public name is importable, and the seed API's import lines work."""

import importlib

import pytest

MODULES = [
    "energizer_hf",
    "energizer_hf.acquisition_functions",
    "energizer_hf.functional",
    "energizer_hf.hub",
    "energizer_hf.oracles",
    "energizer_hf.query_strategies",
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
