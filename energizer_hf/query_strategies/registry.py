"""Name → strategy class registry, so configs and the command line can say ``strategy: entropy``."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from energizer_hf.errors import EnergizerError, UnknownStrategyError

if TYPE_CHECKING:
    from energizer_hf.query_strategies.base import Strategy

__all__ = ["available_strategies", "get_strategy_class", "register_strategy"]

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
