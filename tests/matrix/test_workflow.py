"""The GitHub Actions examples: a real linter passes them, and their commands parse."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_spike import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "github-actions"
WORKFLOW = EXAMPLES / "spike.yml"
#: the fan-out of an upgrade spike, one job per target version
UPGRADE_WORKFLOW = EXAMPLES / "upgrade.yml"


def tool(name: str) -> str | None:
    """A linter next to this interpreter (installed by the test extra) or on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def lint(name: str, *args: str, workflow: Path = WORKFLOW) -> None:
    """Run linter ``name`` on a workflow; the test extra installs it, so its absence fails."""
    found = tool(name)
    if found is None:
        pytest.fail(f"{name} is not installed: install the test extra")
    done = subprocess.run([found, *args, str(workflow)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("workflow", [WORKFLOW, UPGRADE_WORKFLOW], ids=lambda p: p.name)
def test_actionlint_accepts_the_workflow(workflow: Path) -> None:
    # shellcheck is optional for actionlint; without it the run: scripts are not checked.
    lint("actionlint", "-shellcheck=", "-no-color", workflow=workflow)


@pytest.mark.parametrize("workflow", [WORKFLOW, UPGRADE_WORKFLOW], ids=lambda p: p.name)
def test_workflow_matches_the_github_workflow_schema(workflow: Path) -> None:
    lint("check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow=workflow)


@pytest.mark.parametrize(
    ("workflow", "expected"),
    [
        (WORKFLOW, ["cell-failed", "matrix", "matrix", "merge"]),
        (UPGRADE_WORKFLOW, ["matrix", "matrix", "merge"]),
    ],
    ids=["spike.yml", "upgrade.yml"],
)
def test_every_pytest_spike_command_in_the_workflow_parses(workflow: Path, expected: list[str]) -> None:
    parser = cli.build_parser()
    text = workflow.read_text()
    commands = re.findall(r"pytest-spike ((?:matrix|merge|cell-failed)\b[^)\n]*)", text)
    assert sorted(c.split()[0] for c in commands) == expected
    for command in commands:
        argv = [a.replace("$SPIKE_PATHS", "tests/spikes") for a in shlex.split(command)]
        argv = argv[: argv.index(">")] if ">" in argv else argv  # drop a shell redirection
        args = parser.parse_args(argv)  # exits (SystemExit) on an unknown option
        assert args.func is not None


@pytest.mark.parametrize("workflow", [WORKFLOW, UPGRADE_WORKFLOW], ids=lambda p: p.name)
def test_the_workflows_leave_candidates_nothing_to_steal(workflow: Path) -> None:
    """Read-only token, no credentials left in .git/config, and the box on every Linux job that
    runs candidate code (strictly: --spike-sandbox require where the job is Linux only)."""
    from ruamel.yaml import YAML  # check-jsonschema's YAML reader, in the test extra

    data = YAML(typ="safe").load(workflow.read_text())
    assert data["permissions"] == {"contents": "read"}
    for name, job in data["jobs"].items():
        assert "secrets" not in str(job.get("env", {})), name
        steps = job["steps"]
        for step in steps:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, f"{name}: {step}"
        runs = " ".join(str(s.get("run", "")) for s in steps)
        if "pytest --spike" in runs:
            assert any("bubblewrap" in str(s.get("run", "")) for s in steps), f"{name} runs unboxed"
            if job["runs-on"] == "ubuntu-latest":
                assert "--spike-sandbox require" in runs, name
