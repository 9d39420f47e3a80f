"""Oracles give labels: simulated from the dataset, a callable, or people (Label Studio, or a notebook widget).

The protocol (:mod:`energizer_hf.oracles.base`) says what the loop needs of an oracle.
``LabelStudioOracle``, its errors and ``WidgetOracle`` are imported lazily, so
``import energizer_hf`` loads no Label Studio or notebook code (the Label Studio oracle
itself imports the SDK only when it talks to a server).
"""

from typing import Any

from energizer_hf.oracles.base import (
    AWAITING_ANNOTATIONS,
    AwaitingAnnotations,
    CallableOracle,
    Oracle,
    OracleBase,
    SimulatedOracle,
    as_oracle,
)

__all__ = [
    "AWAITING_ANNOTATIONS",
    "AnnotationRefusedWarning",
    "AwaitingAnnotations",
    "CallableOracle",
    "LabelStudioAuthError",
    "LabelStudioConnectionError",
    "LabelStudioError",
    "LabelStudioOracle",
    "LabelStudioStreamOracle",
    "LabelStudioTimeoutError",
    "LabelStudioUnknownLabelError",
    "Oracle",
    "OracleBase",
    "SimulatedOracle",
    "WidgetOracle",
    "as_oracle",
]

_LABEL_STUDIO = {
    "AnnotationRefusedWarning",
    "LabelStudioAuthError",
    "LabelStudioConnectionError",
    "LabelStudioError",
    "LabelStudioOracle",
    "LabelStudioStreamOracle",
    "LabelStudioTimeoutError",
    "LabelStudioUnknownLabelError",
}


def __getattr__(name: str) -> Any:
    # optional integrations: loaded on first use only
    if name == "WidgetOracle":
        from energizer_hf.oracles.widget import WidgetOracle

        return WidgetOracle
    if name in _LABEL_STUDIO:
        from energizer_hf.oracles import label_studio

        return getattr(label_studio, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
