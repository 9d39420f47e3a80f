"""Griffe extensions for the docs build: Sphinx roles as links, dataclass fields as a table.

``SphinxRoles``: the docstrings use reStructuredText roles (``:class:`ActivePool```,
``:meth:`~energizer_hf.hub.RoundStore.sync```), which Markdown shows as raw text. Each role
becomes an optional mkdocs-autorefs cross-reference to the object's canonical path: a link
when that object is rendered on some page of the site, plain code otherwise. Names are
resolved the way Python would from the docstring's own scope (its members, then the
enclosing class and module, including imported names), as Sphinx does. A role that names
nothing in the package stays code and is logged (``unresolved``; the docs test checks the
list is empty). ``~`` shows only the last component, as in Sphinx; functions and methods
get ``()``.

``DataclassFields``: a dataclass whose fields carry ``metadata={"help": ...}`` (``RunConfig``)
gets a table of its fields (name, type, default, help) appended to its docstring. The
table is built from ``dataclasses.fields`` of the imported class, so it cannot drift from
the code.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import logging
import re
from typing import Any

import griffe

log = logging.getLogger("mkdocs.plugins.energizer_hf_docs")

ROLE_RE = re.compile(r":(?:py:)?(class|func|meth|mod|attr|data|exc|obj):`([^`]+)`")
CALLABLE_ROLES = {"func", "meth"}


def _lookup(pkg: griffe.Module, path: str) -> Any | None:
    """The object at ``path`` inside ``pkg`` (aliases followed), or None."""
    if path == pkg.path:
        return pkg
    if not path.startswith(pkg.path + "."):
        return None
    try:
        obj = pkg[path[len(pkg.path) + 1 :]]
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    if obj.is_alias:
        try:
            obj = obj.final_target
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
    return obj


def resolve_role_target(
    pkg: griffe.Module, scope: Any, target: str, by_name: dict[str, list[str]] | None = None
) -> str | None:
    """Canonical path of ``target`` seen from ``scope`` (a griffe object), or None.

    ``by_name`` (object name -> paths in the package) is the last resort, as Sphinx's
    search for a name in every module: used when the name is unique.
    """
    if target.startswith(pkg.path + ".") or target == pkg.path:
        obj = _lookup(pkg, target)
        return obj.path if obj is not None else None
    head, _, rest = target.partition(".")
    where = scope
    while where is not None:
        try:
            full = where.resolve(head)
        except griffe.NameResolutionError:
            full = None
        if full is not None:
            obj = _lookup(pkg, f"{full}.{rest}" if rest else full)
            if obj is not None:
                return obj.path
        where = where.parent
    candidates = (by_name or {}).get(head, [])
    if len(candidates) == 1:
        obj = _lookup(pkg, f"{candidates[0]}.{rest}" if rest else candidates[0])
        if obj is not None:
            return obj.path
    return None


def is_external(pkg: griffe.Module, target: str) -> bool:
    """A dotted path into another package (``torch.utils.data.Subset``): not ours to link."""
    top = target.lstrip("~").split(".")[0]
    return "." in target and top != pkg.path


def render_roles(text: str, resolve: Any, unresolved: list[str] | None = None) -> str:
    """Replace every role of ``text``; ``resolve(target) -> path | None``."""

    def repl(match: re.Match) -> str:
        role, target = match.group(1), match.group(2).strip()
        short = target.startswith("~")
        target = target.lstrip("~").removesuffix("()")
        title = target.rsplit(".", 1)[-1] if short else target
        if role in CALLABLE_ROLES:
            title += "()"
        code = f"<code>{html.escape(title)}</code>"
        path = resolve(target)
        if path is None:
            if unresolved is not None:
                unresolved.append(f":{role}:`{match.group(2)}`")
            return code
        return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'

    return ROLE_RE.sub(repl, text)


def _walk(obj: Any):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


class SphinxRoles(griffe.Extension):
    """Turn ``:class:`...``` and friends into cross-references (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.unresolved: list[str] = []

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        by_name: dict[str, list[str]] = {}
        for obj in _walk(pkg):
            by_name.setdefault(obj.name, []).append(obj.path)
        for obj in _walk(pkg):
            doc = obj.docstring
            if doc is None or not ROLE_RE.search(doc.value):
                continue
            missing: list[str] = []
            doc.value = render_roles(
                doc.value, lambda t, o=obj: resolve_role_target(pkg, o, t, by_name), missing
            )
            for role in missing:
                if is_external(pkg, ROLE_RE.match(role).group(2)):
                    continue
                log.info("%s: %s names nothing in %s; shown as code", obj.path, role, pkg.path)
                self.unresolved.append(f"{obj.path}: {role}")


def _type_name(tp: Any) -> str:
    return tp if isinstance(tp, str) else getattr(tp, "__name__", repr(tp))


def fields_table(cls: type) -> str | None:
    """A Markdown table of a dataclass's fields with ``metadata["help"]``, or None."""
    if not dataclasses.is_dataclass(cls):
        return None
    fields = [f for f in dataclasses.fields(cls) if "help" in f.metadata]
    if not fields:
        return None

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for f in fields:
        if f.default is not dataclasses.MISSING:
            default = f"`{f.default!r}`"
        elif f.default_factory is not dataclasses.MISSING:
            default = f"`{f.default_factory()!r}`"
        else:
            default = "required"
        # Python-Markdown keeps a pipe inside a code span: only the plain help text is escaped
        rows.append(f"| `{f.name}` | `{_type_name(f.type)}` | {default} | {cell(f.metadata['help'])} |")
    return "\n".join(rows)


class DataclassFields(griffe.Extension):
    """Append the fields table to every documented dataclass with field help."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if not obj.is_class or not any("dataclass" in str(d.value) for d in obj.decorators):
                continue
            module = importlib.import_module(obj.module.path)
            cls = module
            for part in obj.path[len(obj.module.path) + 1 :].split("."):
                cls = getattr(cls, part)
            table = fields_table(cls)
            if table is None:
                continue
            text = f"**Fields**\n\n{table}"
            if obj.docstring is None:
                obj.docstring = griffe.Docstring(text, parent=obj)
            else:
                obj.docstring.value = f"{obj.docstring.value.rstrip()}\n\n{text}"
