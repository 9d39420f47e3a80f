"""What a model returns, read the same way everywhere: logits, dropout switches, MC-dropout passes.

The scorer and the strategies both run models; these helpers are their one home, so a
model that returns a ``transformers`` output, a dict or a tuple works for all of them and
every error names the same problem in the same words.

>>> import torch
>>> logits_from_output({"logits": torch.zeros(2, 3)}).shape
torch.Size([2, 3])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from energizer_hf.errors import EnergizerError, InvalidScoresError

__all__ = [
    "check_mc_samples",
    "dropout_enabled",
    "has_dropout",
    "logits_from_output",
    "mc_probabilities",
    "repeat_batch",
]


def logits_from_output(output: Any, model: Any = None) -> Tensor:
    """Extract a ``(batch, num_classes)`` logits tensor from a model's forward output."""
    logits = output
    if not isinstance(output, Tensor):
        logits = getattr(output, "logits", None)
        if logits is None and isinstance(output, dict):
            logits = output.get("logits")
        if logits is None and isinstance(output, (tuple, list)) and output:
            logits = output[0]
    if not isinstance(logits, Tensor):
        name = type(model).__name__ if model is not None else "the model"
        raise InvalidScoresError(
            f"{name} returned {type(output).__name__} from forward; expected a logits tensor "
            "of shape (batch, num_classes) or an output with a `.logits` attribute."
        )
    if logits.ndim != 2:
        name = type(model).__name__ if model is not None else "the model"
        raise InvalidScoresError(
            f"{name} returned logits of shape {tuple(logits.shape)}; expected "
            "(batch, num_classes)."
        )
    return logits


def _dropout_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]


def has_dropout(model: nn.Module) -> bool:
    """Whether ``model`` has a dropout layer (MC dropout needs one)."""
    return bool(_dropout_layers(model))


@contextmanager
def dropout_enabled(model: nn.Module) -> Iterator[int]:
    """Put only the dropout layers in training mode (MC dropout), restore afterwards.

    Yields the number of dropout layers switched on.
    """
    layers = _dropout_layers(model)
    states = [m.training for m in layers]
    for m in layers:
        m.train()
    try:
        yield len(layers)
    finally:
        for m, s in zip(layers, states):
            m.train(s)


def repeat_batch(batch: Any, times: int) -> Any:
    """Each row of a batch (tensor, mapping or sequence of them) repeated ``times`` in place."""
    if isinstance(batch, Tensor):
        return batch.repeat_interleave(times, dim=0)
    if isinstance(batch, Mapping):  # dicts and transformers' BatchEncoding
        return {k: repeat_batch(v, times) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(repeat_batch(v, times) for v in batch)
    return batch


def check_mc_samples(passes: int) -> int:
    """``passes`` if it is a usable number of MC-dropout passes (>= 2), else an error."""
    if passes < 2:
        raise EnergizerError(f"num_mc_samples must be >= 2, got {passes}.")
    return passes


def mc_probabilities(
    forward: Callable[[Any], Any],
    batch: Any,
    model: nn.Module,
    passes: int,
    *,
    rows: int | None = None,
    replicate: bool = False,
    to_logits: Callable[[Any, int | None], Tensor] | None = None,
    who: str = "MC dropout",
) -> Tensor:
    """``(rows, passes, C)`` class probabilities of ``passes`` forward passes with dropout on.

    Args:
        forward: runs the model on a batch.
        batch: the inputs of ``rows`` examples.
        model: the module whose dropout layers are switched on.
        passes: number of stochastic passes (>= 2).
        rows: examples in ``batch`` (checked by ``to_logits`` when given).
        replicate: repeat the batch ``passes`` times in memory and run it once (faster on
            a GPU, same distribution).
        to_logits: ``(output, rows) -> logits``; default :func:`logits_from_output`.
        who: named in the error when the model has no dropout layer.

    Raises:
        EnergizerError: ``passes < 2`` or a model without dropout layers.
    """
    check_mc_samples(passes)
    if to_logits is None:

        def to_logits(output: Any, n: int | None) -> Tensor:
            return logits_from_output(output, model)

    with dropout_enabled(model) as n:
        if n == 0:
            raise EnergizerError(
                f"{who} needs MC-dropout samples but {type(model).__name__} has no dropout "
                "layers: add dropout to the model or use a deterministic strategy such as 'entropy'."
            )
        if replicate:
            logits = to_logits(forward(repeat_batch(batch, passes)), None if rows is None else rows * passes)
            return torch.softmax(logits.float(), -1).reshape(-1, passes, logits.shape[-1])
        return torch.stack(
            [torch.softmax(to_logits(forward(batch), rows).float(), -1) for _ in range(passes)], dim=1
        )
