"""Oracles give labels: simulated from the dataset, a callable, or people (Label Studio, or a notebook widget).

``LabelStudioOracle`` and its errors are imported lazily, so ``import energizer_hf``
does not need ``label-studio-sdk`` (the oracle itself imports the SDK only when it talks
to a server).
"""

from typing import Any

from energizer_hf.oracles.base import CallableOracle, Oracle, SimulatedOracle

__all__ = [
    "AwaitingAnnotations",
    "CallableOracle",
    "LabelStudioAuthError",
    "LabelStudioConnectionError",
    "LabelStudioError",
    "LabelStudioOracle",
    "LabelStudioTimeoutError",
    "Oracle",
    "SimulatedOracle",
    "WidgetOracle",
]

_LAZY = {
    "AwaitingAnnotations",
    "LabelStudioAuthError",
    "LabelStudioConnectionError",
    "LabelStudioError",
    "LabelStudioOracle",
    "LabelStudioTimeoutError",
}


def __getattr__(name: str) -> Any:
    if name == "WidgetOracle":
        from energizer_hf.oracles.widget import WidgetOracle

        return WidgetOracle
    if name in _LAZY:
        from energizer_hf.oracles import label_studio

        return getattr(label_studio, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
