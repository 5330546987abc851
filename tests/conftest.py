from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from listener import Listener  # noqa: E402
from pkgfactory import FakeProject, build_wheel, pip_install_target  # noqa: E402

pytest_plugins = ["pytester"]

#: Tiny packages with one behaviour each, installed once per session into a folder that
#: tests put on PYTHONPATH (so subprocesses see them too).
FIXTURE_PROJECTS = [
    FakeProject(
        "goodpkg",
        "1.0",
        files={"goodpkg/__init__.py": "def hello():\n    return 'hi'\n"},
        readme="# goodpkg\n\n```python\nimport goodpkg\nprint(goodpkg.hello())\n```\n\n"
        "```pycon\n>>> import goodpkg\n>>> goodpkg.hello()\n'hi'\n```\n",
    ),
    FakeProject(
        "readmepkg",
        "1.0",
        readme="# readmepkg\n\n```python\nimport readmepkg\n```\n\n"
        "```python\nreadmepkg.frobnicate('path/to/file')\n```\n\n"
        "```python\nimport readmepkg.missing_module\n```\n\n```console\n$ pip install readmepkg\n```\n",
    ),
    FakeProject(
        "warnpkg",
        "1.0",
        files={
            "warnpkg/__init__.py": "import warnings\n"
            "warnings.warn('warnpkg.old_api is deprecated', DeprecationWarning)\n"
        },
    ),
    FakeProject(
        "brokenpkg", "1.0", files={"brokenpkg/__init__.py": "raise ImportError('brokenpkg needs libfoo')\n"}
    ),
    FakeProject(
        "segvpkg",
        "1.0",
        files={"segvpkg/__init__.py": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"},
    ),
    FakeProject("hangpkg", "1.0", files={"hangpkg/__init__.py": "import time\ntime.sleep(60)\n"}),
    FakeProject("conflictpkg", "1.0", requires=["missingdep>=1"]),
    FakeProject("deppkg", "1.0", requires=["goodpkg", "warnpkg ; python_version < '3'"]),
    FakeProject("other-name", "2.0", files={"othermod.py": "VALUE = 1\n"}),
]


@pytest.fixture(scope="session", autouse=True)
def _ctrl_c_reaches_children() -> None:
    """A suite started in the background of a script (``cmd &``: the shell ignores SIGINT for
    it) passes SIGINT ignored on to every child it starts, and a child pytest told to stop by
    the Ctrl-C tests would never hear it. Python's own handler, as in a terminal."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def fixture_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the fixture packages installed by pip, as in site-packages."""
    root = tmp_path_factory.mktemp("fixture-site")
    wheels = [build_wheel(p, root / "wheels") for p in FIXTURE_PROJECTS]
    site = root / "site"
    pip_install_target(wheels, site)
    return site


@pytest.fixture
def spike_site(fixture_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the fixture packages on sys.path and PYTHONPATH for this test."""
    monkeypatch.syspath_prepend(str(fixture_site))
    monkeypatch.setenv("PYTHONPATH", str(fixture_site))
    monkeypatch.setenv("COLUMNS", "80")
    # The core tests look at install and import in this environment; probes and
    # candidate environments have tests of their own that opt in.
    monkeypatch.setenv("PYTEST_ADDOPTS", "--spike-probes=install,import --spike-isolation=never")
    return fixture_site


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A TCP listener on 127.0.0.1 that counts connections and keeps what they sent."""
    found = Listener()
    yield found
    found.close()
