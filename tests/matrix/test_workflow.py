"""The GitHub Actions example: a real linter passes it, and its commands parse."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_spike import cli

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "github-actions" / "spike.yml"


def tool(name: str) -> str | None:
    """A linter next to this interpreter (installed by the test extra) or on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def lint(name: str, *args: str) -> None:
    """Run linter ``name`` on the workflow; the test extra installs it, so its absence fails."""
    found = tool(name)
    if found is None:
        pytest.fail(f"{name} is not installed: install the test extra")
    done = subprocess.run([found, *args, str(WORKFLOW)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_accepts_the_workflow() -> None:
    # shellcheck is optional for actionlint; without it the run: scripts are not checked.
    lint("actionlint", "-shellcheck=", "-no-color")


def test_workflow_matches_the_github_workflow_schema() -> None:
    lint("check-jsonschema", "--builtin-schema", "vendor.github-workflows")


def test_every_pytest_spike_command_in_the_workflow_parses() -> None:
    parser = cli.build_parser()
    text = WORKFLOW.read_text()
    commands = re.findall(r"pytest-spike ((?:matrix|merge|cell-failed)\b[^)\n]*)", text)
    assert sorted(c.split()[0] for c in commands) == ["cell-failed", "matrix", "matrix", "merge"]
    for command in commands:
        argv = [a.replace("$SPIKE_PATHS", "tests/spikes") for a in shlex.split(command)]
        argv = argv[: argv.index(">")] if ">" in argv else argv  # drop a shell redirection
        args = parser.parse_args(argv)  # exits (SystemExit) on an unknown option
        assert args.func is not None
