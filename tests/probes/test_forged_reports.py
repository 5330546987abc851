"""Verdicts a candidate cannot forge: an import child's report written by candidate code (an
atexit hook, a report printed before a failure, a report followed by a crash) loses to what
the host observed, and a report that contradicts it is ``spike.tampered``. Real wheels, pip,
pytest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pkgfactory import FakeProject, build_wheel, pip_install_target

# What every forger prints: a clean import of itself, with the marker taken from its argv.
_FORGE = (
    "import json, sys\n"
    "_args = json.loads(sys.argv[1])\n"
    "def _forge():\n"
    "    clean = [{'module': __name__, 'seconds': 0.0, 'error': None, 'real': True, 'warnings': []}]\n"
    "    sys.stdout.write('\\n' + _args['mark'] + json.dumps(clean) + '\\n')\n"
    "    sys.stdout.flush()\n"
)

PROJECTS = [
    # The review's forgery: the import fails, an atexit hook reports it clean.
    FakeProject(
        "atexitdist",
        "1.0",
        files={
            "atexitpkg/__init__.py": _FORGE
            + "import atexit\natexit.register(_forge)\nraise RuntimeError('broken')\n"
        },
    ),
    # A report printed in mid-import, then the import fails: the child's own report follows.
    FakeProject(
        "printdist",
        "1.0",
        files={"printpkg/__init__.py": _FORGE + "_forge()\nraise RuntimeError('broken')\n"},
    ),
    # A report, then a crash: no report the child wrote could precede a SIGSEGV.
    FakeProject(
        "crashdist",
        "1.0",
        files={
            "crashpkg/__init__.py": _FORGE
            + "import os, signal\n_forge()\nos.kill(os.getpid(), signal.SIGSEGV)\n"
        },
    ),
    FakeProject(
        "honestdist", "1.0", files={"honestpkg/__init__.py": "import atexit\natexit.register(print, 'bye')\n"}
    ),
]


@pytest.fixture(scope="module")
def forged_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("forged-site")
    wheels = [build_wheel(p, root / "wheels") for p in PROJECTS]
    pip_install_target(wheels, root / "site")
    return root / "site"


@pytest.fixture
def site(forged_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYTHONPATH", str(forged_site))
    monkeypatch.syspath_prepend(str(forged_site))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    return forged_site


def spike(pytester: pytest.Pytester, name: str) -> tuple[pytest.RunResult, dict[str, dict[str, Any]]]:
    result = pytester.runpytest(
        "--spike",
        "--spike-candidate",
        name,
        "--spike-probes=install,import",
        "--spike-isolation=never",
        "--spike-json=r.json",
    )
    data = json.loads((pytester.path / "r.json").read_text())
    cand = next(c for c in data["candidates"] if c["name"] == name)
    return result, {f["code"]: f for f in cand["findings"]}


def test_an_atexit_hook_cannot_report_a_failed_import_clean(pytester: pytest.Pytester, site: Path) -> None:
    result, found = spike(pytester, "atexitdist")
    result.assert_outcomes(passed=1, failed=1)
    assert "RuntimeError: broken" in found["import.failed"]["message"]
    assert "2 import reports" in found["spike.tampered"]["message"]


def test_a_report_printed_before_a_failure_is_tampering(pytester: pytest.Pytester, site: Path) -> None:
    result, found = spike(pytester, "printdist")
    result.assert_outcomes(passed=1, failed=1)
    tampered = found["spike.tampered"]
    assert tampered["severity"] == "critical" and tampered["blame"] == "candidate"
    assert "2 import reports" in tampered["message"]
    assert "RuntimeError: broken" in found["import.failed"]["message"]


def test_a_report_followed_by_a_crash_loses_to_the_crash(pytester: pytest.Pytester, site: Path) -> None:
    result, found = spike(pytester, "crashdist")
    result.assert_outcomes(passed=1, failed=1)
    assert "killed by SIGSEGV" in found["spike.tampered"]["message"]
    assert "killed by SIGSEGV" in found["import.crashed"]["message"]
    assert "import.modules" not in found


def test_an_honest_candidate_with_an_atexit_hook_is_not_tampering(
    pytester: pytest.Pytester, site: Path
) -> None:
    result, found = spike(pytester, "honestdist")
    result.assert_outcomes(passed=2)
    assert "spike.tampered" not in found and "import.modules" in found
