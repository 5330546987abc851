"""The structure drawing (benchmarks/imports.py): no import cycle, no import of a higher floor."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_benchmarks import BENCHMARKS, load


def test_no_cycle_and_no_upward_import(monkeypatch: pytest.MonkeyPatch) -> None:
    imports = load("imports", BENCHMARKS / "imports.py", monkeypatch)
    assert imports.problems() == []


def test_the_drawing_finds_a_cycle_and_an_upward_import(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The check can fail: a model that imports the cli, and two modules that import each other."""
    imports = load("imports", BENCHMARKS / "imports.py", monkeypatch)
    package = tmp_path / "pytest_spike"
    (package / "cli").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "cli" / "__init__.py").write_text("from pytest_spike.cli import run\n")
    (package / "cli" / "run.py").write_text("import pytest_spike.cli\n")
    (package / "model.py").write_text("def f():\n    from pytest_spike.cli import run\n")
    found = imports.problems(package)
    assert "cycle: pytest_spike.cli <-> pytest_spike.cli.run" in found
    assert "upward: pytest_spike.model (floor 0) -> pytest_spike.cli.run (floor 6)" in found
    assert imports.main([str(package)]) == 1
