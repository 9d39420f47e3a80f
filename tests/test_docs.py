"""The docs site builds with warnings as errors, and the how-to page's code runs."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ROLE_TEXT_RE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):(?:`|&#96;|<code>)")


def _docs_module(name):
    if importlib.util.find_spec("griffe") is None:
        pytest.skip("griffe (mkdocstrings[python]) is not installed")
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("mkdocs", "mkdocstrings", "material")),
    reason="building the docs needs mkdocs-material and mkdocstrings[python] (pip install them)",
)
def test_mkdocs_build_strict(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--clean",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1", OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    site = tmp_path / "site"
    for page in (
        "index.html",
        "quickstart/index.html",
        "concepts/index.html",
        "strategies/index.html",
        "how_to_add_a_strategy/index.html",
        "architecture/index.html",
        "api/learner/index.html",
        "api/oracles/index.html",
    ):
        assert (site / page).is_file(), page
    # the API pages are generated from the docstrings
    learner_page = (site / "api" / "learner" / "index.html").read_text()
    assert "ActiveLearner" in learner_page
    assert "WidgetOracle" in (site / "api" / "oracles" / "index.html").read_text()
    # Sphinx roles are rendered (links or code), never shown as raw text
    raw = {
        str(page.relative_to(site)): ROLE_TEXT_RE.findall(page.read_text())
        for page in site.rglob("*.html")
    }
    assert not {k: v for k, v in raw.items() if v}
    assert 'href="#energizer_hf.learner.RunConfig"><code>RunConfig</code></a>' in learner_page
    # RunConfig's table of fields: every field with its help text
    import dataclasses
    import html

    from energizer_hf.learner import RunConfig

    def text(s):  # what a reader sees: no tags, no Markdown code marks, one space
        return " ".join(html.unescape(re.sub(r"<[^>]+>", "", s)).replace("`", "").split())

    page_text = text(learner_page)
    for field in dataclasses.fields(RunConfig):
        assert f"<td><code>{field.name}</code></td>" in learner_page, field.name
        assert text(field.metadata["help"]) in page_text, field.name


def test_nav_pages_exist():
    yaml = pytest.importorskip("yaml")
    # mkdocs.yml has no custom tags: plain safe_load reads it
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(nav):
        for item in nav:
            for value in item.values():
                if isinstance(value, list):
                    yield from pages(value)
                else:
                    yield value

    for page in pages(config["nav"]):
        assert (DOCS / page).is_file(), page


def test_doctest_fence_extension():
    mod = _docs_module("griffe_doctest")
    text = 'Intro.\n\n>>> r[0]["x"]\n10\n\nAfter.\n\nExample:\n    >>> f(1)\n    2\n'
    assert mod.fence_doctests(text) == (
        'Intro.\n\n```pycon\n>>> r[0]["x"]\n10\n```\n\nAfter.\n\n'
        "Example:\n    ```pycon\n    >>> f(1)\n    2\n    ```"
    )


@pytest.mark.slow
def test_how_to_add_a_strategy_code_runs(tmp_path):
    """Every python block of the how-to page, in order, as one script (tiny data).

    It runs in a subprocess so that the strategies it registers do not leak into the
    registry of the other tests.
    """
    text = (DOCS / "how_to_add_a_strategy.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 3
    script = tmp_path / "how_to.py"
    script.write_text(
        f"run_root = {str(tmp_path / 'runs')!r}\n"
        + "\n".join(blocks)
        + "\nprint('final', results[-1]['num_labelled'])\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(
            os.environ,
            OMP_NUM_THREADS="1",
            TOKENIZERS_PARALLELISM="false",
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        ),
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "final 24" in proc.stdout


def test_sphinx_roles_become_cross_references():
    roles = _docs_module("griffe_roles")
    paths = {"~energizer_hf.pool.ActivePool": None, "energizer_hf.pool.ActivePool": "energizer_hf.pool.ActivePool",
             "sync": "energizer_hf.hub.RoundStore.sync"}
    text = "See :class:`~energizer_hf.pool.ActivePool`, :meth:`sync` and :func:`nothing`."
    missing = []
    out = roles.render_roles(text, paths.get, missing)
    assert out == (
        'See <autoref identifier="energizer_hf.pool.ActivePool" optional><code>ActivePool</code></autoref>, '
        '<autoref identifier="energizer_hf.hub.RoundStore.sync" optional><code>sync()</code></autoref> '
        "and <code>nothing()</code>."
    )
    assert missing == [":func:`nothing`"]


def test_every_role_in_the_package_resolves():
    """Every role of every docstring names an object of the package (or another package)."""
    import griffe

    roles = _docs_module("griffe_roles")
    ext = roles.SphinxRoles()
    pkg = griffe.load("energizer_hf", search_paths=[str(ROOT)], extensions=griffe.load_extensions(ext))
    assert ext.unresolved == []
    left = [o.path for o in roles._walk(pkg) if o.docstring and roles.ROLE_RE.search(o.docstring.value)]
    assert left == []
    # a short name resolved from its scope, and an imported one followed to its definition
    assert 'identifier="energizer_hf.run_config.RunConfig"' in pkg["learner.ActiveLearner"].docstring.value


def test_dataclass_fields_table():
    import dataclasses

    from energizer_hf.learner import RunConfig

    roles = _docs_module("griffe_roles")
    rows = roles.fields_table(RunConfig).splitlines()
    fields = dataclasses.fields(RunConfig)
    assert rows[0] == "| field | type | default | meaning |" and len(rows) == 2 + len(fields)
    assert rows[2].startswith("| `dataset` | `str | None` | `None` | Hub dataset name")
    assert roles.fields_table(int) is None


def _user_facing_texts():
    import json

    for path in [ROOT / "README.md", *DOCS.rglob("*.md"), *(ROOT / "examples").rglob("*.md"),
                 *(ROOT / "examples").glob("*.py"), *(ROOT / "examples").glob("*.yaml")]:
        yield path, path.read_text()
    for nb in (ROOT / "examples" / "notebooks").glob("*.ipynb"):
        yield nb, "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"])


# `pip install energizer_hf` in any quoting, with options or extras; not `energizer_hf @ git+...`
_SEP = r"""(?:",\s*"|\s+)"""  # between words: a space, or `", "` in an argument list
PYPI_INSTALL_RE = re.compile(
    rf"""pip{_SEP}install{_SEP}(?:-\S+{_SEP})*["']?energizer[_-]hf(?![^\n]*\s@\s)(?:\[|["'\s]|$)""", re.M
)


def test_install_instructions_are_true():
    """energizer_hf is on no index: no page says `pip install energizer_hf` / "from PyPI" or
    links a Colab badge to a repository, except docs/install.md's "once a release exists"."""
    install = (DOCS / "install.md").read_text()
    released = install[install.index("## Once a release exists on PyPI"):]
    released = released[: released.index("\n## ", 1)]
    assert PYPI_INSTALL_RE.search(released)
    wrong = []
    for path, text in _user_facing_texts():
        if path == DOCS / "install.md":
            text = text.replace(released, "")
        for pattern in (PYPI_INSTALL_RE, re.compile(r"from PyPI(?![^\n]*once a release exists)"), re.compile(r"colab\.research\.google\.com/github")):
            wrong += [f"{path.relative_to(ROOT)}: {m.group(0)!r}" for m in pattern.finditer(text)]
    assert not wrong, wrong
    # the pages that tell how to install point to the one page that does
    for page in ("README.md", "docs/quickstart.md", "docs/index.md", "examples/LABEL_STUDIO.md"):
        assert "install.md" in (ROOT / page).read_text(), page
    release = ROOT / ".ci" / "release"
    assert release.is_file() and os.access(release, os.X_OK)
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert ".ci/release" in workflow and "NOT RUN" in workflow and "has **not\nbeen run**" in install
