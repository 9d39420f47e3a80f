"""Name → strategy class registry, so configs and the command line can say ``strategy: entropy``."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from energizer_hf.errors import EnergizerError, UnknownStrategyError

if TYPE_CHECKING:
    from energizer_hf.query_strategies.base import Strategy

__all__ = [
    "available_strategies",
    "check_strategy_task",
    "get_strategy_class",
    "register_strategy",
    "strategies_for_task",
    "strategy_catalog",
]

_REGISTRY: dict[str, type[Strategy]] = {}
T = TypeVar("T", bound="type[Strategy]")


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def register_strategy(name: str, *aliases: str):
    """Class decorator registering a strategy under ``name`` (and aliases).

    Raises:
        EnergizerError: when a name is already taken by another class.
    """

    def decorator(cls: T) -> T:
        for key in (name, *aliases):
            key = _normalise(key)
            existing = _REGISTRY.get(key)
            if existing is not None and existing is not cls:
                raise EnergizerError(
                    f"A strategy named '{key}' is already registered ({existing.__qualname__}); "
                    "choose another name."
                )
            _REGISTRY[key] = cls
        cls.name = _normalise(name)
        return cls

    return decorator


def available_strategies() -> list[str]:
    """Sorted names (and aliases) of every registered strategy."""
    return sorted(_REGISTRY)


def get_strategy_class(name: str) -> type[Strategy]:
    """The class registered under ``name``.

    Raises:
        UnknownStrategyError: listing the known names.
    """
    key = _normalise(name)
    if key not in _REGISTRY:
        raise UnknownStrategyError(
            f"Unknown strategy '{name}'. Known strategies: {', '.join(available_strategies())}."
        )
    return _REGISTRY[key]


# the family a strategy belongs to, by the module that defines it
_FAMILIES = {
    "uncertainty": "uncertainty",
    "bayesian": "bayesian",
    "diversity": "diversity",
    "hybrid": "hybrid",
    "cold_start": "cold start",
    "alps": "cold start",
    "subpool": "sub-pool",
    "wrappers": "wrapper",
    "random": "baseline",
    "sequence": "token classification",
    "multilabel": "multi-label",
}


def strategy_catalog() -> dict[str, dict[str, object]]:
    """Every registered strategy by its name: ``family``, ``aliases`` and a one-line
    ``description`` (the first paragraph of its docstring) and the ``tasks`` it serves. ``energizer-hf strategies``
    prints the copy kept in :mod:`energizer_hf.strategy_catalog` (no torch import; a test
    keeps it equal to this)."""
    import inspect

    names: dict[type, list[str]] = {}
    for key, cls in _REGISTRY.items():
        names.setdefault(cls, []).append(key)
    out: dict[str, dict[str, object]] = {}
    for cls, keys in names.items():
        doc = " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())
        if len(doc) > 110:
            doc = doc[:109].rstrip() + "…"
        module = cls.__module__.rsplit(".", 1)[-1]
        out[cls.name] = {
            "family": _FAMILIES.get(module, module),
            "aliases": sorted(k for k in keys if k != cls.name),
            "description": doc,
            "tasks": list(getattr(cls, "tasks", ())),
        }
    return dict(sorted(out.items()))


def strategies_for_task(task: str) -> list[str]:
    """Sorted names of the registered strategies that serve ``task`` (their ``tasks``)."""
    return sorted(
        key for key, cls in _REGISTRY.items() if key == cls.name and task in getattr(cls, "tasks", ())
    )


def check_strategy_task(cls: type[Strategy], task: str | None) -> None:
    """Refuse a strategy class that cannot serve ``task`` (``None``: no check).

    Raises:
        StrategyTaskError: naming the strategies that can serve the task.
    """
    from energizer_hf.errors import StrategyTaskError

    if task is None or task in getattr(cls, "tasks", ()):
        return
    name = getattr(cls, "name", cls.__name__)
    raise StrategyTaskError(
        f"The strategy '{name}' cannot serve the task '{task}' (it serves: "
        f"{', '.join(getattr(cls, 'tasks', ())) or 'none'}). Strategies for {task}: "
        f"{', '.join(strategies_for_task(task)) or 'none registered'}."
    )
