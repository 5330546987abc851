"""The docs probe: a real sdist on a local index, its quickstart in Markdown (MyST), reST and a
notebook, run in the box against the installed package.

``docspkg``'s quickstarts hold, between them, examples that pass, one that fails in the
candidate's own code, one that needs the network and one with a placeholder path; ``nodocs``
ships no documentation at all.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from indexserver import HERMETIC_ENV, IndexServer
from pkgfactory import FakeProject, build_wheel, pip_install_target

from pytest_spike import kinds
from pytest_spike.model import Blame, Candidate, Severity
from pytest_spike.probes.base import ProbeContext, ProbeOutcome
from pytest_spike.probes.docs import Page, newcomer_pages, notebook_blocks
from pytest_spike.readme.blocks import extract_blocks
from pytest_spike.services import Services
from pytest_spike.settings import Settings

QUICKSTART_MD = """\
# Quickstart

```{code-block} python
:caption: adding
import docspkg
assert docspkg.add(1, 2) == 3
```

Dividing by zero is the library's own business:

```python
docspkg.divide(1, 0)
```

```{note}
print("a note is not code")
```
"""

QUICKSTART_RST = """\
Quickstart
==========

.. code-block:: python

    import docspkg
    total = docspkg.add(2, 2)

.. doctest::

    >>> docspkg.add(total, 1)
    5

Fetch the latest release notes::

    import urllib.request
    urllib.request.urlopen("http://203.0.113.9/notes.txt", timeout=2)
"""


def notebook(*cells: tuple[str, str]) -> str:
    return json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {},
            "cells": [
                {"cell_type": kind, "id": f"c{n}", "metadata": {}, "source": source}
                | ({"outputs": [], "execution_count": None} if kind == "code" else {})
                for n, (kind, source) in enumerate(cells)
            ],
        }
    )


QUICKSTART_IPYNB = notebook(
    ("markdown", "# Quickstart"),
    ("code", "%matplotlib inline\nimport docspkg\nprint(docspkg.add(3, 4))"),
    ("code", "with open('path/to/your/data.csv') as fh:\n    rows = fh.read()"),
)

DOCSPKG = FakeProject(
    "docspkg",
    "1.0",
    files={
        "docspkg/__init__.py": "def add(a, b):\n    return a + b\n\ndef divide(a, b):\n    return a / b\n"
    },
    sdist_files={
        "docs/conf.py": "project = 'docspkg'\n",
        "docs/index.rst": "docspkg\n=======\n\n.. toctree::\n\n   quickstart\n",
        "docs/quickstart.md": QUICKSTART_MD,
        "docs/quickstart.rst": QUICKSTART_RST,
        "docs/quickstart.ipynb": QUICKSTART_IPYNB,
        "docs/api/modules.rst": ".. code-block:: python\n\n    import docspkg\n",
        "docs/changelog.md": "```python\nraise SystemExit('not a newcomer page')\n```\n",
    },
)
NODOCS = FakeProject("nodocs", "1.0", sdist_files={"README.md": "# nodocs\n"})


@pytest.fixture(scope="module")
def docs_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("docs-site")
    pip_install_target([build_wheel(p, root / "wheels") for p in (DOCSPKG, NODOCS)], root / "site")
    return root / "site"


@pytest.fixture
def settings(tmp_path: Path, docs_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(docs_site))
    monkeypatch.setenv("PYTHONPATH", str(docs_site))
    with IndexServer(tmp_path / "index") as server:
        server.add(DOCSPKG).add(NODOCS)
        yield Settings(
            isolation="never", cache_dir=tmp_path / "cache", index_url=server.url, probe_timeout=60.0
        )


def probe(requirement: str, settings: Settings, tmp_path: Path) -> ProbeOutcome:
    services = Services(settings, rootdir=tmp_path)
    try:
        ctx = ProbeContext(Candidate(requirement), settings, services, timeout=settings.probe_timeout)
        outcome = kinds.kind("docs").function(ctx)
    finally:
        services.close()
    assert {f.code for f in outcome.findings} <= set(kinds.kind("docs").all_codes)
    return outcome


def test_the_quickstart_in_three_formats_runs_by_the_readme_rules(settings: Settings, tmp_path: Path) -> None:
    outcome = probe("docspkg", settings, tmp_path)
    assert outcome.skipped is None and outcome.version == "1.0"
    found = {(f.code, f.blame): f for f in outcome.findings}
    pages = {p["page"]: p for p in outcome.details["pages"]}
    # the quickstarts first, the Sphinx index after them; not the changelog nor the API pages
    assert list(pages) == ["quickstart.ipynb", "quickstart.md", "quickstart.rst", "index.rst"]
    assert pages["quickstart.md"]["counts"]["runnable"] == 2
    assert pages["quickstart.md"]["counts"]["ok"] == 1
    failed = found[("docs.failed", Blame.CANDIDATE)]
    assert failed.severity is Severity.LOW  # 1 of 5 checked
    assert failed.message.startswith("1 of 5 checked docs examples failed: quickstart.md line 12: ")
    assert "ZeroDivisionError" in failed.message
    assert (failed.evidence["page"], failed.evidence["line"]) == ("quickstart.md", "12")
    unchecked = found[("docs.unchecked", Blame.ENVIRONMENT)]
    assert unchecked.message.startswith("2 of 7 docs examples not checked: quickstart.ipynb line 3: ")
    assert "quickstart.rst line 16" in unchecked.message  # the network, refused
    reasons = {b["line"]: b["unchecked"] for b in pages["quickstart.rst"]["blocks"] if b["unchecked"]}
    assert "network" in reasons[16]
    notebook_reasons = [b["unchecked"] for b in pages["quickstart.ipynb"]["blocks"] if b["unchecked"]]
    assert notebook_reasons and "path/to/your/data.csv" in notebook_reasons[0]
    # a session's output is compared: the doctest's 5 matched
    assert pages["quickstart.rst"]["counts"]["sessions_matched"] == 1
    summary = found[("docs.pages", Blame.CANDIDATE)].message
    assert summary == (
        "docs: quickstart.ipynb 1/2 (1 unchecked), quickstart.md 1/2, quickstart.rst 2/3 (1 unchecked)"
    )
    assert outcome.details["counts"] == {
        "pages": 4,
        "runnable": 7,
        "checked": 5,
        "ok": 4,
        "failed": 1,
        "timeout": 0,
        "unchecked": 2,
    }


def test_an_sdist_without_documentation_is_unknown(settings: Settings, tmp_path: Path) -> None:
    outcome = probe("nodocs", settings, tmp_path)
    assert (
        outcome.skipped
        == "no documentation in the sdist nodocs-1.0.tar.gz (no docs/, doc/, Sphinx or MkDocs pages)"
    )
    assert [f.code for f in outcome.findings] == ["docs.none"]


def test_without_nbformat_a_notebook_is_unchecked(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "nbformat", None)  # import nbformat raises ImportError
    outcome = probe("docspkg", settings, tmp_path)
    said = [f for f in outcome.findings if "quickstart.ipynb not run" in f.message]
    assert [(f.code, f.blame) for f in said] == [("docs.unchecked", Blame.ENVIRONMENT)]
    assert "nbformat not installed" in said[0].message
    assert outcome.details["counts"]["runnable"] == 5


def test_myst_directives_and_mkdocs_nav(tmp_path: Path) -> None:
    blocks = extract_blocks(QUICKSTART_MD, "text/markdown")
    assert [(b.line, b.kind) for b in blocks] == [(5, "python"), (12, "python"), (16, "other")]
    assert blocks[0].code.startswith("import docspkg")  # the :caption: option is not code
    site = tmp_path / "sdist"
    (site / "site-docs" / "guide").mkdir(parents=True)
    (site / "mkdocs.yml").write_text(
        "docs_dir: site-docs\nnav:\n  - Home: index.md\n  - Start: guide/first-steps.md\n"
    )
    (site / "site-docs" / "index.md").write_text("# home\n")
    (site / "site-docs" / "guide" / "first-steps.md").write_text("# first\n")
    (site / "site-docs" / "guide" / "usage.md").write_text("# usage\n")
    pages = newcomer_pages(site)
    assert [p.name for p in pages] == ["guide/usage.md", "index.md"]
    notebook_file = tmp_path / "nb.ipynb"
    notebook_file.write_text(QUICKSTART_IPYNB)
    cells = notebook_blocks(notebook_file)
    assert [(b.line, b.kind) for b in cells] == [(2, "python"), (3, "python")]
    assert cells[0].code.splitlines()[0] == "pass  # matplotlib inline"
    assert Page(notebook_file, "nb.ipynb", "notebook").format == "notebook"


def test_sphinx_doctest_setup_runs_before_a_pages_examples() -> None:
    """tenacity's docs import everything in a ``testsetup`` block that Sphinx's doctest runs
    first: read as Python, not as a block of language ``*``."""
    page = ".. testsetup:: *\n\n    from tenacity import *\n\n.. testcode::\n\n    stop_after_attempt(3)\n"
    blocks = extract_blocks(page, "text/x-rst")
    assert [(b.line, b.kind, b.code) for b in blocks] == [
        (3, "python", "from tenacity import *"),
        (7, "python", "stop_after_attempt(3)"),
    ]
