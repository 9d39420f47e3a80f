"""Name → stream strategy class registry, so configs can say ``strategy: variable_uncertainty``.

Separate from the pool strategies' registry (:mod:`energizer_hf.query_strategies.registry`):
``random`` names a pool strategy there and a stream strategy here.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

from energizer_hf.errors import EnergizerError, StreamInputError, UnknownStrategyError

__all__ = [
    "available_stream_strategies",
    "get_stream_strategy_class",
    "make_stream_strategy",
    "register_stream_strategy",
]

_REGISTRY: dict[str, type] = {}
T = TypeVar("T", bound=type)


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def register_stream_strategy(name: str, *aliases: str):
    """Class decorator registering a stream strategy under ``name`` (and aliases).

    Raises:
        EnergizerError: when a name is already taken by another class.
    """

    def decorator(cls: T) -> T:
        for key in (name, *aliases):
            key = _normalise(key)
            existing = _REGISTRY.get(key)
            if existing is not None and existing is not cls:
                raise EnergizerError(
                    f"A stream strategy named '{key}' is already registered "
                    f"({existing.__qualname__}); choose another name."
                )
            _REGISTRY[key] = cls
        cls.name = _normalise(name)
        return cls

    return decorator


def available_stream_strategies() -> list[str]:
    """Sorted names (and aliases) of every registered stream strategy."""
    return sorted(_REGISTRY)


def get_stream_strategy_class(name: str) -> type:
    """The class registered under ``name``.

    Raises:
        UnknownStrategyError: listing the known names.
    """
    key = _normalise(name)
    if key not in _REGISTRY:
        raise UnknownStrategyError(
            f"Unknown stream strategy '{name}'. Known stream strategies: "
            f"{', '.join(available_stream_strategies())}."
        )
    return _REGISTRY[key]


def make_stream_strategy(name: str, budget_rate: float, **params: Any) -> Any:
    """Build the stream strategy registered under ``name`` (what a config file names).

    Raises:
        UnknownStrategyError: an unknown name.
        StreamInputError: a parameter the strategy does not take.
    """
    cls = get_stream_strategy_class(name)
    accepted: set[str] = set()
    for klass in cls.__mro__:  # follow **kwargs up to the base that names everything
        if "__init__" not in vars(klass):
            continue
        sig = inspect.signature(klass.__init__).parameters.values()
        accepted |= {p.name for p in sig if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind == p.VAR_KEYWORD for p in sig):
            break
    accepted -= {"self", "budget_rate"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise StreamInputError(
            f"Stream strategy '{cls.name}' has no parameter(s) {unknown}; it takes {sorted(accepted)}."
        )
    return cls(budget_rate, **params)
