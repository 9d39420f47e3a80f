"""Typed configuration at the boundary: values checked and coerced once, from YAML, the
command line or Python, with every bad field named in one error.

The rules come from the dataclass's own type hints (``int``, ``float``, ``bool``, ``str``,
``X | None``, ``list[X]``, ``dict[K, V]``, ``Literal[...]``, ``Any``):

* **bool**: ``True``/``False``, or the usual spellings ``true/false``, ``yes/no``,
  ``on/off``, ``1/0`` (any case; also the integers 1 and 0). A quoted ``"no"`` is
  ``False``; anything else is an error (``"nope"``, ``2``).
* **int**: integers, or numbers/numeric strings with a whole value (``"3"``, ``"1e3"``,
  ``3.0``); never a bool, never ``2.5``.
* **float**: numbers or numeric strings (PyYAML reads ``1e-3`` as the *string*
  ``"1e-3"``); never a bool, never NaN.
* **str**: strings, paths and integers (a YAML ``train_split: 2020``); a bool or a float
  is an error (YAML turns ``yes``/``on`` into booleans and ``1.10`` into ``1.1``: quote it).
* **X | None**: ``None``, or the strings ``none``/``null`` (any case, as the command line
  gives them), or an ``X``.
* **list[X]**: a list or tuple whose items are each an ``X``; a lone scalar is an error.
* **dict[K, V]**: a mapping whose keys and values are coerced. A string where a mapping is
  expected is an error, unless the caller passes a hook for that field, such as
  `single_split_files`, which follows ``datasets.load_dataset``'s convention
  (``data_files: train.csv`` is ``{train: train.csv}``).
* **Literal[...]**: one of the values (strings compared without case).

Errors are `ConfigError` listing every bad field with its value
(scrubbed of credentials), the expected type, and the field's help text.

>>> from dataclasses import dataclass
>>> @dataclass
... class Cfg:
...     lr: float = 5e-5
...     reset: bool = True
...     rounds: int | None = 5
>>> coerce_fields(Cfg, {"lr": "1e-3", "reset": "no", "rounds": "null"})
{'lr': 0.001, 'reset': False, 'rounds': None}
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from energizer_hf.errors import AcceleratorUnavailableError, ConfigError, ConfigFileError
from energizer_hf.scrub import scrub

__all__ = [
    "PRECISIONS",
    "check_kwargs",
    "check_runtime",
    "coerce_dataclass",
    "coerce_fields",
    "coerce_value",
    "describe_type",
    "load_yaml_mapping",
    "single_split_files",
]

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_NONE = frozenset({"none", "null", "~"})

#: Lightning's precision values (``lightning_fabric``'s ``_PRECISION_INPUT``); a test
#: keeps this list equal to Lightning's so that checking it needs no Lightning import.
PRECISIONS = (
    "32-true",
    "bf16-mixed",
    "16-mixed",
    "bf16-true",
    "16-true",
    "64-true",
    "transformer-engine",
    "transformer-engine-float16",
    "32",
    "16",
    "bf16",
    "64",
)
_ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


class _Bad(Exception):
    """One value that does not fit its type (internal: collected into a ConfigError)."""

    def __init__(self, expected: str, hint: str = "", where: str = "") -> None:
        super().__init__(expected)
        self.expected, self.hint, self.where = expected, hint, where


# ---------------------------------------------------------------------- type names
def describe_type(hint: Any) -> str:
    """A short human name of a type hint, as used in error messages.

    >>> describe_type(dict[str, str] | None)
    'a mapping of str to str, or null'
    >>> describe_type(Literal["random", "stratified"])
    "one of 'random', 'stratified'"
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return "any value"
    if hint is type(None):
        return "null"
    if _is_union(hint):
        parts = [describe_type(a) for a in args if a is not type(None)]
        text = " or ".join(parts)
        return f"{text}, or null" if type(None) in args else text
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if hint is bool:
        return "a boolean (true/false, yes/no, on/off or 1/0)"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if origin in (list, tuple, Sequence, set, frozenset) or hint in (list, tuple):
        item = describe_type(args[0]) if args and args[0] is not Ellipsis else "values"
        return f"a list of {_bare(item)}"
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if len(args) == 2:
            return (
                f"a mapping of {_bare(describe_type(args[0]))} to {_bare(describe_type(args[1]))}"
            )
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def _bare(name: str) -> str:
    for article in ("an ", "a "):
        if name.startswith(article):
            name = name[len(article) :]
    return {"string": "str", "integer": "int", "number": "float", "any value": "any"}.get(
        name, name
    )


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) is typing.Union or isinstance(hint, types.UnionType)


# ---------------------------------------------------------------------- coercion
def coerce_value(value: Any, hint: Any, field: str = "value") -> Any:
    """``value`` converted to the type ``hint`` by the rules of this module.

    Raises:
        ConfigError: the value does not fit, naming ``field``, the value and the type.

    >>> coerce_value("1e-3", float)
    0.001
    >>> coerce_value("Off", bool)
    False
    >>> coerce_value(2.5, int, "rounds")
    Traceback (most recent call last):
    ...
    energizer_hf.errors.ConfigError: rounds: got 2.5 (float), expected an integer (2.5 is not a whole number).
    """
    try:
        return _coerce(value, hint)
    except _Bad as bad:
        line = _issue_line(field, value, hint, bad)
        raise ConfigError(line, [line]) from None


def _coerce(value: Any, hint: Any) -> Any:
    if hint is Any or hint is object or isinstance(hint, typing.TypeVar):
        return value
    if isinstance(hint, str):  # an unresolved forward reference: nothing to check against
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
            return None
        raise _Bad("null")
    if _is_union(hint):
        return _coerce_union(value, args)
    if origin is Literal:
        return _coerce_literal(value, args)
    if hint is bool:
        return _coerce_bool(value)
    if hint is int:
        return _coerce_int(value)
    if hint is float:
        return _coerce_float(value)
    if hint is str:
        return _coerce_str(value)
    if origin in (list, tuple, set, frozenset, Sequence) or hint in (list, tuple, set, frozenset):
        return _coerce_sequence(value, hint, origin or hint, args)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return _coerce_mapping(value, args)
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise _Bad(describe_type(hint))
    return value  # Callable[...], Protocols and the like: not checked here


def _coerce_union(value: Any, args: tuple[Any, ...]) -> Any:
    optional = type(None) in args
    members = [a for a in args if a is not type(None)]
    if value is None:
        if optional:
            return None
        raise _Bad(describe_type(typing.Union[tuple(members)]))  # noqa: UP007 - built from a tuple
    if optional and isinstance(value, str) and value.strip().lower() in _NONE:
        return None
    # a member the value already is wins (int stays int in `int | str`), then conversions
    for member in members:
        if isinstance(member, type) and _exactly(value, member):
            return _coerce(value, member)
    errors: list[_Bad] = []
    for member in members:
        try:
            return _coerce(value, member)
        except _Bad as bad:
            errors.append(bad)
    expected = " or ".join(describe_type(m) for m in members) + (", or null" if optional else "")
    hint = next((e.hint for e in errors if e.hint), "")
    raise _Bad(expected, hint)


def _exactly(value: Any, member: type) -> bool:
    if member is bool:
        return isinstance(value, bool)
    if member in (int, float):
        return isinstance(value, member) and not isinstance(value, bool)
    if member in (list, dict, str):
        return isinstance(value, member)
    origin = typing.get_origin(member)
    return origin is not None and isinstance(origin, type) and isinstance(value, origin)


def _coerce_literal(value: Any, choices: tuple[Any, ...]) -> Any:
    for choice in choices:
        if value == choice and type(value) is type(choice):
            return choice
    if isinstance(value, str):
        folded = value.strip().lower()
        for choice in choices:
            if isinstance(choice, str) and choice.lower() == folded:
                return choice
        close = difflib.get_close_matches(folded, [str(c) for c in choices], n=1)
        raise _Bad(describe_type(Literal[choices]), f"did you mean {close[0]!r}?" if close else "")
    raise _Bad(describe_type(Literal[choices]))


def _coerce_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if type(value).__module__ == "numpy" and type(value).__name__ in ("bool_", "bool"):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        folded = value.strip().lower()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return False
    raise _Bad(describe_type(bool))


def _number_from_str(text: str) -> float:
    folded = text.strip()
    try:
        number = float(folded)
    except ValueError:
        raise _Bad("", f"{text!r} is not a number") from None
    if math.isnan(number):
        raise _Bad("", "NaN is not a usable setting")
    return number


def _coerce_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Bad(describe_type(int), "a boolean is not a number")
    if isinstance(value, int) or type(value).__name__.startswith(("int", "uint")):
        try:
            return int(value.__index__())
        except (AttributeError, TypeError):
            pass
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            try:
                number = _number_from_str(value)
            except _Bad as bad:
                raise _Bad(describe_type(int), bad.hint) from None
            value = number
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        number = float(value)
        if math.isfinite(number) and number.is_integer():
            return int(number)
        raise _Bad(describe_type(int), f"{value!r} is not a whole number")
    raise _Bad(describe_type(int))


def _coerce_float(value: Any) -> float:
    if isinstance(value, bool):
        raise _Bad(describe_type(float), "a boolean is not a number")
    if isinstance(value, str):
        try:
            return _number_from_str(value)
        except _Bad as bad:
            raise _Bad(describe_type(float), bad.hint) from None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _Bad(describe_type(float)) from None
    if math.isnan(number):
        raise _Bad(describe_type(float), "NaN is not a usable setting")
    return number


def _coerce_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, bool):
        raise _Bad(
            describe_type(str),
            "YAML reads yes/no, on/off and true/false as booleans: quote the value",
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise _Bad(
            describe_type(str), "YAML reads this as a number (1.10 becomes 1.1): quote the value"
        )
    raise _Bad(describe_type(str))


def _coerce_sequence(value: Any, hint: Any, kind: Any, args: tuple[Any, ...]) -> Any:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(
        value, (list, tuple, set, frozenset)
    ):
        raise _Bad(describe_type(hint), "write a YAML list, e.g. [a, b]")
    if kind is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
        if len(value) != len(args):
            raise _Bad(describe_type(hint), f"expected {len(args)} items, got {len(value)}")
        items = [_at(i, v, a) for i, (v, a) in enumerate(zip(value, args))]
    else:
        item = args[0] if args else Any
        items = [_at(i, v, item) for i, v in enumerate(value)]
    return tuple(items) if kind is tuple else items


def _at(where: Any, value: Any, hint: Any) -> Any:
    try:
        return _coerce(value, hint)
    except _Bad as bad:
        raise _Bad(bad.expected, bad.hint, f"[{where!r}]{bad.where}") from None


def _coerce_mapping(value: Any, args: tuple[Any, ...]) -> dict:
    if not isinstance(value, Mapping):
        raise _Bad(
            describe_type(dict[args] if len(args) == 2 else dict),
            "write a mapping, e.g. {key: value}",
        )
    key_hint, value_hint = args if len(args) == 2 else (Any, Any)
    out = {}
    for key, item in value.items():
        out[_at(key, key, key_hint)] = _at(key, item, value_hint)
    return out


# ---------------------------------------------------------------------- dataclasses
def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - unresolvable annotations: check nothing for them
        return {f.name: Any for f in dataclasses.fields(cls)}


def _fmt_value(value: Any) -> str:
    text = scrub(repr(value))
    return text if len(text) <= 80 else text[:77] + "..."


def _issue_line(field: str, value: Any, hint: Any, bad: _Bad, help_text: str = "") -> str:
    shown = _dig(value, bad.where) if bad.where else value
    expected = bad.expected or describe_type(hint)
    line = (
        f"{field}{bad.where}: got {_fmt_value(shown)} ({type(shown).__name__}), expected {expected}"
    )
    if bad.hint:
        line += f" ({bad.hint})"
    if help_text:
        line += f" [{field}: {help_text.rstrip('.')}]"
    return scrub(line + ".")


def _dig(value: Any, where: str) -> Any:
    """The nested item named by ``where`` (``[0]['train']``), for the error message."""
    import ast

    item = value
    for part in where[1:-1].split("]["):
        try:
            item = item[ast.literal_eval(part)]
        except Exception:  # noqa: BLE001 - a best-effort display
            return value
    return item


def coerce_fields(
    cls: type,
    data: Mapping[str, Any],
    *,
    source: str | None = None,
    hooks: Mapping[str, Callable[[Any], Any]] | None = None,
    allow_unknown: bool = False,
) -> dict[str, Any]:
    """Check and coerce ``data`` (field name → value) for the dataclass ``cls``.

    Args:
        cls: the dataclass whose type hints give the rules.
        data: the values, e.g. a YAML mapping or command-line overrides.
        source: where the values come from (a file name), for the message.
        hooks: per-field functions applied before the type rules (e.g.
            ``{"data_files": single_split_files}``).
        allow_unknown: keep names that are not fields instead of reporting them.

    Returns:
        The coerced values (only the fields given).

    Raises:
        ConfigError: every unknown field (with the closest name) and every value of the
            wrong type, in one message.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source or cls.__name__} must be a mapping of field: value, got {type(data).__name__}."
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    out: dict[str, Any] = {}
    issues: list[str] = []
    for name, value in data.items():
        if name not in fields:
            if allow_unknown:
                out[name] = value
                continue
            close = difflib.get_close_matches(str(name), list(fields), n=1)
            issues.append(
                f"{scrub(str(name))}: not a known field"
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + "."
            )
            continue
        hook = (hooks or {}).get(name)
        try:
            if hook is not None:
                value = hook(value)
            out[name] = _coerce(value, hints.get(name, Any))
        except _Bad as bad:
            issues.append(
                _issue_line(
                    name, value, hints.get(name, Any), bad, fields[name].metadata.get("help", "")
                )
            )
        except ConfigError as err:  # raised by a hook
            issues.extend(err.errors or [str(err)])
    if issues:
        raise _config_error(issues, source or cls.__name__, unknown_known=sorted(fields))
    return out


def coerce_dataclass(
    obj: Any,
    *,
    source: str | None = None,
    hooks: Mapping[str, Callable[[Any], Any]] | None = None,
) -> None:
    """Coerce every field of the dataclass instance ``obj`` in place (call it first thing
    in ``__post_init__``: then YAML, the command line and Python all pass through it).

    Raises:
        ConfigError: every value of the wrong type, in one message.
    """
    values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    coerced = coerce_fields(type(obj), values, source=source or type(obj).__name__, hooks=hooks)
    for name, value in coerced.items():
        if value is not values[name]:
            object.__setattr__(obj, name, value)


def _config_error(issues: list[str], source: str, unknown_known: Sequence[str] = ()) -> ConfigError:
    n = len(issues)
    head = f"{source}: {n} configuration value{'s are' if n > 1 else ' is'} wrong:"
    tail = "Fix them in the configuration file or with the matching --flags."
    return ConfigError("\n".join([head, *(f"  - {i}" for i in issues), tail]), issues)


def single_split_files(value: Any) -> Any:
    """A ``data_files`` hook: a lone file (or list of files) is the ``train`` split, as in
    ``datasets.load_dataset(..., data_files="train.csv")``; mappings pass unchanged.

    >>> single_split_files("train.csv")
    {'train': 'train.csv'}
    """
    if isinstance(value, (str, os.PathLike)):
        return {"train": os.fspath(value)}
    return value


def check_kwargs(fn: Callable[..., Any], kwargs: Mapping[str, Any], what: str) -> None:
    """Refuse keyword arguments that ``fn`` (a function or a class) does not take, naming
    the closest accepted names; a function with ``**kwargs`` takes anything.

    >>> def make(base: str, subpool_size: int = 10): ...
    >>> check_kwargs(make, {"subpool_sise": 5}, "strategy_args")
    Traceback (most recent call last):
    ...
    energizer_hf.errors.ConfigError: strategy_args: unknown argument 'subpool_sise' (did you mean 'subpool_size'?); accepted: base, subpool_size.
    """
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [
        n
        for n, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and n != "self"
    ]
    unknown = [k for k in kwargs if k not in accepted]
    if not unknown:
        return
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), accepted, n=1)
        parts.append(f"{scrub(repr(key))}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    plural = "s" if len(unknown) > 1 else ""
    message = (
        f"{what}: unknown argument{plural} {', '.join(parts)}; accepted: "
        f"{', '.join(accepted) if accepted else 'none'}."
    )
    raise ConfigError(message, [message])


# ---------------------------------------------------------------------- YAML files
def _yaml_loader() -> type:
    import yaml

    class _StrictLoader(yaml.SafeLoader):
        """SafeLoader that refuses a key given twice (PyYAML silently keeps the last)."""

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # reported by PyYAML itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice (first on line {seen[key].line + 1}); keep one",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    _StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return _StrictLoader


def load_yaml_mapping(path: str | os.PathLike, what: str = "configuration") -> dict[str, Any]:
    """Read a YAML file that must hold a mapping (``field: value`` lines).

    Returns ``{}`` for an empty file.

    Raises:
        ConfigFileError: the file is missing or a directory, not UTF-8, not valid YAML
            (with line, column, the line itself and what to do; tab indentation named as
            such), has a key twice, or its top level is not a mapping.
    """
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigFileError(
            f"The {what} file '{path}' does not exist (relative paths start at {os.getcwd()}): "
            "check the path."
        )
    if path.is_dir():
        raise ConfigFileError(
            f"The {what} file '{path}' is a directory: give the YAML file inside it."
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigFileError(
            f"The {what} file '{path}' is not UTF-8 (byte {raw[err.start]:#04x} on line {line}): "
            "save it as UTF-8."
        ) from None
    try:
        data = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        raise ConfigFileError(_yaml_error_message(path, text, err, what)) from None
    except yaml.YAMLError as err:
        raise ConfigFileError(f"The {what} file '{path}' is not valid YAML: {scrub(err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(
            f"The top level of '{path}' must be a mapping of field: value lines, got "
            f"{'a list' if isinstance(data, list) else type(data).__name__}: write e.g.\n"
            "  dataset: train.csv\n  rounds: 5"
        )
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigFileError(
            f"The field names in '{path}' must be strings, got {', '.join(repr(k) for k in bad_keys[:5])}."
        )
    return data


def _yaml_error_message(path: Path, text: str, err: Any, what: str) -> str:
    mark = err.problem_mark or err.context_mark
    lines = text.splitlines()
    line_no = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    problem = (err.problem or err.context or "invalid YAML").strip()
    # PyYAML points at the first tab it trips over; a tab may also hide earlier
    tab_line = None
    if "\t" in problem or "'\\t'" in problem:
        tab_line = line_no
    else:
        upto = lines[: line_no or len(lines)]
        for i, ln in enumerate(upto, 1):
            indent = ln[: len(ln) - len(ln.lstrip())]
            if "\t" in indent:
                tab_line = i
                break
    if tab_line is not None:
        return (
            f"The {what} file '{path}' is indented with a tab on line {tab_line}: YAML needs "
            "spaces for indentation. Replace the tabs with spaces (e.g. `expand -t 2`)."
        )
    where = f" on line {line_no}, column {column}" if line_no is not None else ""
    shown = ""
    if line_no is not None and 0 < line_no <= len(lines):
        src = scrub(lines[line_no - 1])[:120]
        shown = f"\n  {line_no} | {src}\n  {' ' * len(str(line_no))} | {' ' * max(column - 1, 0)}^"
    return (
        f"The {what} file '{path}' is not valid YAML{where}: {scrub(problem)}.{shown}\n"
        "Fix the syntax there (`key: value` per line, lists as [a, b], quote values that "
        "contain ': ' or start with a special character)."
    )


# ---------------------------------------------------------------------- runtime
def check_runtime(precision: Any, accelerator: Any, devices: Any) -> None:
    """Check Lightning's ``precision``, ``accelerator`` and ``devices`` against this
    machine before any work starts (cheap: imports torch only for a GPU accelerator).

    Raises:
        ConfigError: a precision or accelerator name Lightning does not know (with the
            valid values and the closest one), or malformed ``devices``.
        AcceleratorUnavailableError: a GPU/MPS/TPU accelerator on a machine without one,
            or more devices than the machine has.
    """
    _check_precision(precision)
    name = _check_accelerator_name(accelerator)
    requested = _requested_devices(devices)
    if name in ("auto", "cpu") or not isinstance(accelerator, str):
        return
    available, what = _available_devices(name)
    if available == 0:
        raise AcceleratorUnavailableError(
            f"accelerator={accelerator!r}, but this machine has no {what}. Use accelerator: cpu "
            "(or auto, which picks a GPU when there is one)."
        )
    if requested is not None and available is not None and requested > available:
        raise AcceleratorUnavailableError(
            f"devices={devices!r} asks for {requested} {what} device(s), but this machine has "
            f"{available}. Use devices: {available} or fewer (or -1 for all)."
        )
    if name in ("gpu", "cuda") and str(precision).startswith("bf16"):
        import torch

        if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
            raise AcceleratorUnavailableError(
                f"precision={precision!r} needs bfloat16, which this GPU does not support: use "
                "precision: 16-mixed."
            )


def _check_precision(precision: Any) -> None:
    if isinstance(precision, bool) or not isinstance(precision, (str, int)):
        raise ConfigError(
            f"precision: got {_fmt_value(precision)}, expected one of {', '.join(PRECISIONS[:8])}."
        )
    text = str(precision).strip()
    if text in PRECISIONS:
        return
    close = difflib.get_close_matches(text.lower(), PRECISIONS, n=1, cutoff=0.4)
    raise ConfigError(
        f"precision: {_fmt_value(precision)} is not a Lightning precision"
        + (f" (did you mean {close[0]!r}?)" if close else "")
        + f". Valid values: {', '.join(PRECISIONS[:8])} (and the short forms 32, 16, bf16, 64)."
    )


def _check_accelerator_name(accelerator: Any) -> str:
    if not isinstance(accelerator, str):
        if accelerator is not None and hasattr(accelerator, "setup_device"):
            return "object"  # a Lightning Accelerator instance: Lightning checks it
        raise ConfigError(
            f"accelerator: got {_fmt_value(accelerator)}, expected one of {', '.join(_ACCELERATORS)}."
        )
    name = accelerator.strip().lower()
    if name in _ACCELERATORS:
        return name
    close = difflib.get_close_matches(name, _ACCELERATORS, n=1, cutoff=0.4)
    raise ConfigError(
        f"accelerator: {_fmt_value(accelerator)} is not a Lightning accelerator"
        + (f" (did you mean {close[0]!r}?)" if close else "")
        + f". Valid values: {', '.join(_ACCELERATORS)}."
    )


def _requested_devices(devices: Any) -> int | None:
    """The number of devices asked for; ``None`` for "all"/"auto"."""
    bad = ConfigError(
        f"devices: got {_fmt_value(devices)}, expected a positive number of devices, -1 (all), "
        "'auto', or a list of device indices such as [0, 1]."
    )
    if isinstance(devices, bool):
        raise bad
    if isinstance(devices, int):
        if devices == -1:
            return None
        if devices <= 0:
            raise bad
        return devices
    if isinstance(devices, str):
        text = devices.strip().lower()
        if text in ("auto", "-1"):
            return None
        if "," in text:
            parts = [p for p in text.split(",") if p.strip()]
            if not all(p.strip().isdigit() for p in parts) or not parts:
                raise bad
            return max(int(p) for p in parts) + 1
        if text.isdigit() and int(text) > 0:
            return int(text)
        raise bad
    if isinstance(devices, (list, tuple)):
        if not devices or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in devices
        ):
            raise bad
        return max(devices) + 1
    raise bad


def _available_devices(name: str) -> tuple[int | None, str]:
    """How many devices of this kind the machine has (``None``: unknown) and their name."""
    if name in ("gpu", "cuda"):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.device_count(), "CUDA GPU"
        if (
            name == "gpu"
            and getattr(torch.backends, "mps", None)
            and torch.backends.mps.is_available()
        ):
            return 1, "MPS GPU"
        return 0, "GPU (CUDA or Apple MPS)" if name == "gpu" else "CUDA GPU"
    if name == "mps":
        import torch

        ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
        return (1 if ok else 0), "Apple MPS GPU"
    if name == "tpu":
        import importlib.util

        return (None if importlib.util.find_spec("torch_xla") is not None else 0), "TPU (torch_xla)"
    return None, name
