"""Name → strategy class registry, so configs and the command line can say ``strategy: entropy``."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from energizer_hf.errors import EnergizerError, UnknownStrategyError

if TYPE_CHECKING:
    from energizer_hf.query_strategies.base import Strategy

__all__ = ["available_strategies", "get_strategy_class", "register_strategy", "strategy_catalog"]

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
}


def strategy_catalog() -> dict[str, dict[str, object]]:
    """Every registered strategy by its name: ``family``, ``aliases`` and a one-line
    ``description`` (the first paragraph of its docstring). ``energizer-hf strategies``
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
        }
    return dict(sorted(out.items()))
