"""Griffe extension for the docs build: render bare doctest blocks as code.

The package's docstrings hold doctests (``>>> r[0]["num_labelled"]``) outside fenced
blocks. Markdown reads ``>>>`` as nested block quotes and ``x[0][1]`` as reference links,
which the strict build reports as broken cross-references. This wraps each run of doctest
lines (prompt, continuation and output lines, up to a blank line) in a ``pycon`` fence,
at its indentation; the docstrings themselves are unchanged.
"""

from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    in_fence = False
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith("```"):
            in_fence = not in_fence
        if in_fence or not stripped.startswith(">>>"):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(stripped)]
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip() and lines[i].startswith(indent):
            out.append(lines[i])
            i += 1
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestFence(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
