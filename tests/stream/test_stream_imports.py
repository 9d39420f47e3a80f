"""Every public name of the stream building blocks is importable; functional/stream stays a leaf."""

import ast
import importlib
from pathlib import Path

import pytest

MODULES = [
    "energizer_hf.functional.stream",
    "energizer_hf.functional.stream_quantile",
    "energizer_hf.stream",
    "energizer_hf.stream.drift",
    "energizer_hf.stream.registry",
    "energizer_hf.stream.sources",
    "energizer_hf.stream.state",
    "energizer_hf.stream.strategies",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_importable(name):
    module = importlib.import_module(name)
    assert list(module.__all__) == sorted(module.__all__)
    for public in module.__all__:
        assert hasattr(module, public), f"{name}.{public}"


@pytest.mark.parametrize("name", ["energizer_hf.functional.stream", "energizer_hf.functional.stream_quantile"])
def test_functional_stream_imports_only_numpy_stdlib_and_errors(name):
    mod = importlib.import_module(name)
    tree = ast.parse(Path(mod.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] if not a.name.startswith("energizer_hf") else a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module if node.module.startswith("energizer_hf") else node.module.split(".")[0])
    third_party = imported - {"__future__", "copy", "math", "collections", "dataclasses", "typing"}
    assert third_party - {"energizer_hf.functional.stream"} == {"numpy", "energizer_hf.errors"}, third_party
