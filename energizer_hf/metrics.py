"""User metrics on validation and test, and the names of per-class metrics.

A metric is an ``evaluate`` module (anything with ``compute(predictions=...,
references=..., **kwargs)``), a plain callable in scikit-learn's order
``fn(y_true, y_pred, **kwargs)`` (``sklearn.metrics.f1_score``), or either of them paired
with its keyword arguments: ``(f1, {"average": "macro"})``. :func:`as_metrics` turns such
a list into :class:`Metric` objects, :meth:`Metric.compute` returns flat ``{key: float}``
results under a prefix (``val/`` or ``test/``).

A result with one value per class (``average=None``) becomes one key per class, named by
the class: ``test/f1/<class name>`` (:func:`per_class_key`). Such keys stay in the round
records (and the loggers) but out of the progress bar and the default tables;
:func:`per_class_table` lays them out as one compact table, classes in id order (never
sorted as strings).

>>> def hits(y_true, y_pred):
...     return sum(int(t == p) for t, p in zip(y_true, y_pred))
>>> [m.compute([0, 1, 1], [0, 1, 0], prefix="test/") for m in as_metrics([hits])]
[{'test/hits': 2.0}]
>>> per_class_key("test/", "f1", "sports")
'test/f1/sports'
>>> is_per_class_key("test/f1/sports"), is_per_class_key("test/f1_macro")
(True, False)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from energizer_hf.errors import EnergizerError

__all__ = [
    "Metric",
    "MetricError",
    "as_metrics",
    "display_metrics",
    "is_per_class_key",
    "per_class_columns",
    "per_class_key",
    "per_class_table",
]


class MetricError(EnergizerError):
    """A metric that is neither an ``evaluate`` module nor a callable, that fails on the
    predictions, or that returns something other than numbers."""


def per_class_key(prefix: str, metric: str, class_name: str) -> str:
    """The record key of ``metric`` for one class: ``<prefix><metric>/<class name>``."""
    return f"{prefix}{metric}/{class_name}"


def is_per_class_key(key: str) -> bool:
    """Whether a record key is a per-class metric (``split/metric/class``), including the
    ``test/f1_class_<id>`` keys of models written for earlier versions."""
    head, _, rest = key.partition("/")
    return bool(head) and ("/" in rest or rest.startswith("f1_class_"))


def display_metrics(record: Mapping[str, Any], prefix: str = "test/") -> dict[str, Any]:
    """The ``prefix`` metrics of a record that fit on one line: per-class keys left out."""
    return {k: v for k, v in record.items() if k.startswith(prefix) and not is_per_class_key(k)}


@dataclass(frozen=True)
class Metric:
    """One user metric: ``fn`` with its keyword arguments.

    Attributes:
        name: the key under the prefix (``test/<name>``).
        fn: an ``evaluate`` module's ``compute`` or a ``fn(y_true, y_pred, **kw)``.
        kwargs: keyword arguments of every call (``{"average": "macro"}``).
        evaluate_style: call as ``fn(predictions=..., references=...)`` (an ``evaluate``
            module) rather than ``fn(y_true, y_pred)``.
    """

    name: str
    fn: Callable[..., Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    evaluate_style: bool = False

    def compute(
        self,
        references: Sequence[int] | np.ndarray,
        predictions: Sequence[int] | np.ndarray,
        *,
        prefix: str = "test/",
        label_names: Sequence[str] | None = None,
    ) -> dict[str, float]:
        """The metric on class ids, as ``{key: float}`` (per-class results by class name).

        Raises:
            MetricError: the metric raised, or returned something that is not numbers.
        """
        refs = np.asarray(references, dtype=np.int64).tolist()
        preds = np.asarray(predictions, dtype=np.int64).tolist()
        try:
            if self.evaluate_style:
                out = self.fn(predictions=preds, references=refs, **dict(self.kwargs))
            else:
                out = self.fn(refs, preds, **dict(self.kwargs))
        except Exception as err:  # noqa: BLE001 - named for the user, with the fix
            raise MetricError(
                f"The metric {self.name!r} failed on {len(refs)} predictions: {type(err).__name__}: {err}. "
                "Give its keyword arguments with the metric, e.g. metrics=[(f1, {'average': 'macro'})] "
                "for multi-class data."
            ) from err
        results: dict[str, float] = {}
        items = out.items() if isinstance(out, Mapping) else [(self.name, out)]
        for key, value in items:
            base = self.name if key == self.name else f"{self.name}_{key}"
            results.update(_flatten(prefix, base, value, label_names, self.name))
        return results


def _flatten(
    prefix: str, base: str, value: Any, label_names: Sequence[str] | None, metric: str
) -> dict[str, float]:
    if value is None:
        return {}
    if isinstance(value, (bool, int, float, np.integer, np.floating)):
        return {f"{prefix}{base}": float(value)}
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.ndim == 0 and np.issubdtype(arr.dtype, np.number):
        return {f"{prefix}{base}": float(arr)}
    if arr.ndim == 1 and np.issubdtype(arr.dtype, np.number):
        names = list(label_names) if label_names is not None and len(label_names) == arr.size else None
        return {
            per_class_key(prefix, base, names[i] if names is not None else str(i)): float(v)
            for i, v in enumerate(arr.tolist())
        }
    if isinstance(value, str):  # e.g. an evaluate module's description: not a number
        return {}
    raise MetricError(
        f"The metric {metric!r} returned {type(value).__name__} for {base!r}: return a number, one "
        "number per class, or a mapping of them."
    )


def _name_of(obj: Any) -> str:
    name = getattr(obj, "name", None) or getattr(obj, "__name__", None) or type(obj).__name__
    return str(name)


def as_metrics(metrics: Iterable[Any] | None) -> list[Metric]:
    """:class:`Metric` objects from ``evaluate`` modules, callables and ``(metric, kwargs)``
    pairs (a :class:`Metric` passes as is). Two metrics of the same name get their keyword
    values appended (``f1_macro``, ``f1_micro``).

    Raises:
        MetricError: an item that is none of these, kwargs that are not a mapping, or two
            metrics that would write the same key.
    """
    out: list[Metric] = []
    for item in metrics or ():
        if isinstance(item, Metric):
            out.append(item)
            continue
        kwargs: Mapping[str, Any] = {}
        obj = item
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[1], Mapping):
                raise MetricError(
                    f"A metric with arguments is a pair (metric, {{'average': 'macro'}}), got {item!r}."
                )
            obj, kwargs = item
        compute = getattr(obj, "compute", None)
        if callable(compute):
            out.append(Metric(_name_of(obj), compute, dict(kwargs), evaluate_style=True))
        elif callable(obj):
            out.append(Metric(_name_of(obj), obj, dict(kwargs), evaluate_style=False))
        else:
            raise MetricError(
                f"metrics must be evaluate modules (with .compute), callables fn(y_true, y_pred) or "
                f"(metric, kwargs) pairs; got {type(obj).__name__}."
            )
    names = [m.name for m in out]
    for i, m in enumerate(out):
        if names.count(m.name) > 1 and m.kwargs:
            suffix = "_".join(str(v) for v in m.kwargs.values())
            out[i] = Metric(f"{m.name}_{suffix}", m.fn, m.kwargs, m.evaluate_style)
    final = [m.name for m in out]
    twice = sorted({n for n in final if final.count(n) > 1})
    if twice:
        raise MetricError(
            f"Two metrics are named {', '.join(twice)}: give them different keyword arguments, or "
            "wrap one in energizer_hf.metrics.Metric(name=..., fn=...)."
        )
    return out


def per_class_columns(keys: Iterable[str], prefix: str = "test/") -> dict[str, list[str]]:
    """Per-class keys under ``prefix`` grouped by metric: ``{metric: [class names]}`` in the
    order the keys come."""
    out: dict[str, list[str]] = {}
    for key in keys:
        if not key.startswith(prefix) or not is_per_class_key(key):
            continue
        rest = key[len(prefix):]
        if rest.startswith("f1_class_") and "/" not in rest:  # the name of earlier versions
            metric, cls = "f1", rest[len("f1_class_"):]
        else:
            metric, _, cls = rest.partition("/")
        out.setdefault(metric, [])
        if cls not in out[metric]:
            out[metric].append(cls)
    return out


def per_class_table(
    record: Mapping[str, Any],
    label_names: Sequence[str] | None = None,
    prefix: str = "test/",
    floatfmt: str = ".4f",
) -> tuple[list[str], list[list[str]]]:
    """The per-class metrics of one record as ``(header, rows)``: one row per class (in
    ``label_names`` order, then any other class in id order), one column per metric.

    >>> header, rows = per_class_table({"test/f1/b": 0.5, "test/f1/a": 1.0}, ["b", "a"])
    >>> header, rows
    (['class', 'f1'], [['b', '0.5000'], ['a', '1.0000']])
    """
    groups = per_class_columns(record, prefix)
    if not groups:
        return ["class"], []
    seen: list[str] = []
    for classes in groups.values():
        seen.extend(c for c in classes if c not in seen)
    names = [str(n) for n in (label_names or ())]
    order = [n for n in names if n in seen]
    rest = [c for c in seen if c not in order]
    rest.sort(key=lambda c: (0, int(c)) if c.isdigit() else (1, c))  # ids by value, not as strings
    order += rest
    metrics = list(groups)

    def cell(metric: str, cls: str) -> str:
        value = record.get(per_class_key(prefix, metric, cls))
        if value is None and metric == "f1":
            ids = {n: str(i) for i, n in enumerate(names)}
            value = record.get(f"{prefix}f1_class_{ids.get(cls, cls)}")
        if isinstance(value, (int, float)):
            return "nan" if isinstance(value, float) and math.isnan(value) else format(value, floatfmt)
        return ""

    return ["class", *metrics], [[cls, *(cell(m, cls) for m in metrics)] for cls in order]
