"""The project's own test sessions, across the Python versions installed here.

Interpreters are found on PATH and in pyenv's versions folder (pyenv's shims only answer
for the active version), and a missing interpreter is an error, never a silent skip.
"""

from __future__ import annotations

import glob
import os

import nox

PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]

nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["tests"]

_pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
_version_bins = sorted(glob.glob(os.path.join(_pyenv_root, "versions", "*", "bin")))
if _version_bins:
    os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), *_version_bins])


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite (pass extra pytest arguments after --)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-n", "auto", *session.posargs)


@nox.session(python="3.11")
def example(session: nox.Session) -> None:
    """Run the example spike from the README."""
    session.install("-e", ".", "-r", "examples/toml_parsers/requirements.txt")
    session.run("pytest", "--spike", "examples/toml_parsers", *session.posargs, success_codes=[0, 1])


@nox.session(python="3.11")
def calibration(session: nox.Session) -> None:
    """Spike the calibration panel (healthy and known-bad packages) and judge the verdicts."""
    session.install("-e", ".[test]")
    session.run("python", "benchmarks/calibration.py", *session.posargs)
