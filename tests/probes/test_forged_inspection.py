"""Verdicts a candidate cannot forge, continued: a ``.pth`` file in the candidate's environment
runs in every interpreter started there, before any script of ours. This one rewrites
``importlib.metadata`` (no ``Requires-Dist``, another README) and prints a forged inspection
at exit. The host reads the environment's files itself, so the real dependency and the real
README show. Real wheels, a local index, real environments, the box, pytest end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from backends import use_find_links
from pkgfactory import FORGED_README, FakeProject, build_wheel, pth_forger

REAL_README = "# pthdist\n\n```python\nimport pthdist\nprint('the real README', pthdist.VALUE)\n```\n"
HOSTILE = pth_forger("pthdist", requires=["pthdep>=1"], readme=REAL_README)
PROJECTS = [HOSTILE, FakeProject("pthdep", "1.0", files={"pthdep/__init__.py": "X = 1\n"})]


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pth-index")
    for project in PROJECTS:
        build_wheel(project, folder)
    return folder


@pytest.fixture
def offline(hostile_index: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    use_find_links(monkeypatch, hostile_index)
    return hostile_index


def _probe(candidate: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in candidate["probes"] if p["kind"] == kind)
    return found


def test_a_pth_file_cannot_forge_the_inspection_or_the_readme(
    pytester: pytest.Pytester, offline: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    result = pytester.runpytest(
        "--spike",
        "--spike-candidate=pthdist",
        "--spike-probes=install,readme",
        "--spike-isolation=always",
        "--spike-sandbox=require",
        f"--spike-cache-dir={cache}",
        "--spike-json=r.json",
    )
    data = json.loads((pytester.path / "r.json").read_text())
    (cand,) = data["candidates"]
    install = _probe(cand, "install")["details"]
    env_python = str(Path(install["env"]) / "bin" / "python")
    # The forgery is live: the environment's own interpreter does see no dependency and
    # the substituted README, and prints a forged inspection (so the test would catch a
    # reader that asked it).
    seen = pytester.run(
        env_python,
        "-c",
        "import importlib.metadata as m; d = m.distribution('pthdist');"
        "print(bool(d.requires), d.metadata.get_payload() == " + repr(FORGED_README) + ")",
    )
    assert seen.outlines[-1] == "False True", seen.outlines
    asked = pytester.run(env_python, "-c", "pass", json.dumps({"name": "pthdist"}))
    assert json.loads(asked.outlines[-1])["requires"] == [], asked.outlines
    # What the host read from the files: the real dependency, its size, the real README.
    assert install["isolated"] is True and install["python"] == env_python
    assert install["dependencies"] == {"pthdep": "1.0"}, install
    footprint = next(f for f in cand["findings"] if f["code"] == "install.footprint")
    assert footprint["message"].startswith("1 transitive dependencies")
    readme = _probe(cand, "readme")
    assert readme["outcome"] == "passed", readme
    blocks = readme["details"]["blocks"]
    assert [b["first_line"] for b in blocks] == ["import pthdist"], blocks
    assert readme["details"]["counts"]["ok"] == 1
    result.assert_outcomes(passed=2)
