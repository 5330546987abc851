"""The cache keeps its integrity end to end: an environment or an evidence file changed after
a run (as by a candidate that got out of its box) is rebuilt or re-taken by the next run,
which says so, and what was planted is not used.

The fixture package ``counted`` appends a line to a file each time it is imported, so a test
can tell whether the import probe ran again, and what code it ran.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backends import use_find_links
from pkgfactory import FakeProject, build_wheel


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A find-links folder with ``counted`` 1.0; returns the file its imports are logged in."""
    folder, log = tmp_path / "index", tmp_path / "imports.log"
    folder.mkdir()
    source = f"with open({str(log)!r}, 'a') as f:\n    f.write('imported\\n')\n"
    build_wheel(FakeProject("counted", "1.0", files={"counted/__init__.py": source}), folder)
    use_find_links(monkeypatch, folder)
    return log


def run(pytester: pytest.Pytester) -> tuple[pytest.RunResult, dict]:
    result = pytester.runpytest(
        "--spike",
        # The candidate logs its imports to a file, which the box refuses by design.
        "--spike-sandbox=off",
        "--spike-probes=install,import",
        "--spike-isolation=always",
        f"--spike-cache-dir={pytester.path / 'cache'}",
        "--spike-json=r.json",
        "--spike-candidate=counted",
    )
    data = json.loads((pytester.path / "r.json").read_text())
    probes = {p["kind"]: p for c in data["candidates"] for p in c["probes"]}
    for probe in probes.values():  # each probe with its findings, as the card shows them
        probe["findings"] = [
            f for c in data["candidates"] for f in c["findings"] if f["probe"] == probe["nodeid"]
        ]
    return result, probes


def codes(probe: dict) -> list[str]:
    return [f["code"] for f in probe["findings"]]


def test_an_environment_changed_after_a_run_is_rebuilt_and_the_install_probe_says_so(
    pytester: pytest.Pytester, local_index: Path
) -> None:
    log = local_index
    run(pytester)
    (marker,) = (pytester.path / "cache" / "envs").glob("*/spike-env.json")
    built_at = json.loads(marker.read_text())["built_at"]
    _, probes = run(pytester)  # the control: nothing changed, everything reused
    assert probes["install"]["cached"] is True and probes["import"]["cached"] is True
    assert json.loads(marker.read_text())["built_at"] == built_at
    assert "install.rebuilt" not in codes(probes["install"])
    assert log.read_text() == "imported\n"
    (module,) = (pytester.path / "cache" / "envs").glob("*/lib/python*/site-packages/counted/__init__.py")
    module.write_text(f"with open({str(log)!r}, 'a') as f:\n    f.write('rigged\\n')\n")
    result, probes = run(pytester)
    install = probes["install"]
    assert install["details"]["reused"] is False and install["cached"] is False
    relative = "/".join(module.parts[-5:])  # lib/pythonX.Y/site-packages/counted/__init__.py
    assert install["details"]["rebuilt"] == f"{relative} changed"
    (finding,) = [f for f in install["findings"] if f["code"] == "install.rebuilt"]
    assert finding["severity"] == "info" and relative in finding["message"]
    result.stdout.fnmatch_lines([f"*rebuilt the cached environment for counted: {relative} changed*"])
    # The rebuilt environment's evidence is new (another build), and the planted code never ran.
    assert probes["import"]["cached"] is False
    assert log.read_text() == "imported\nimported\n"
    # The next run reuses the new environment, silently: the install probe's outcome that said
    # "rebuilt" was not kept, so it runs again (cheap); the import's evidence is reused.
    _, probes = run(pytester)
    assert probes["install"]["details"]["reused"] is True and "install.rebuilt" not in codes(
        probes["install"]
    )
    assert probes["import"]["cached"] is True and log.read_text() == "imported\nimported\n"


def evidence_file(pytester: pytest.Pytester, kind: str) -> Path:
    (found,) = [
        path
        for path in (pytester.path / "cache" / "evidence").glob("*.json")
        if json.loads(path.read_text())["probe"] == kind
    ]
    return found


def test_an_evidence_file_edited_after_a_run_is_taken_again(
    pytester: pytest.Pytester, local_index: Path
) -> None:
    log = local_index
    run(pytester)
    _, probes = run(pytester)  # the control: nothing changed, the evidence reused
    assert probes["import"]["cached"] is True and log.read_text() == "imported\n"
    # An attacker's edit: the import failed, critically.
    path = evidence_file(pytester, "import")
    document = json.loads(path.read_text())
    document["outcome"]["findings"].append(
        {"code": "import.failed", "severity": "critical", "message": "planted verdict", "evidence": {}}
    )
    path.write_text(json.dumps(document))
    result, probes = run(pytester)
    result.stdout.fnmatch_lines(
        ["*counted import: the kept evidence changed since it was written: running the probe again*"]
    )
    assert probes["import"]["cached"] is False and probes["import"]["outcome"] == "passed"
    assert "planted" not in (pytester.path / "r.json").read_text()
    assert log.read_text() == "imported\nimported\n"  # the probe ran again
    assert "planted" not in path.read_text()  # and its new evidence replaced the edited file
    _, probes = run(pytester)
    assert probes["import"]["cached"] is True and log.read_text() == "imported\nimported\n"


def test_evidence_without_a_recorded_digest_is_taken_again(
    pytester: pytest.Pytester, local_index: Path
) -> None:
    log = local_index
    run(pytester)
    index = pytester.path / "cache" / "evidence-digests.json"
    assert set(json.loads(index.read_text())["digests"]) == {
        evidence_file(pytester, kind).stem for kind in ("install", "import")
    }
    index.unlink()  # as evidence kept by an older pytest-spike, or an index an attacker removed
    result, probes = run(pytester)
    result.stdout.fnmatch_lines(
        ["*counted import: the kept evidence has no recorded digest: running the probe again*"]
    )
    assert probes["import"]["cached"] is False and log.read_text() == "imported\nimported\n"
