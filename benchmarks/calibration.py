#!/usr/bin/env python3
"""Calibration panel: do healthy packages come out LOW and known-bad ones MEDIUM or worse?

    python benchmarks/calibration.py                      # the whole panel (about 15 min on 2 cores)
    python benchmarks/calibration.py --only attrs nose    # some packages
    python benchmarks/calibration.py --results DIR        # judge the results files of an earlier run
    python benchmarks/calibration.py --panel ml -n 1      # the ML and data panel (about 30 min)

Runs a zero-file spike (``pytest --spike --spike-candidate NAME --spike-isolation always``,
every built-in probe, every candidate in its own environment) of each package in the
panel, against the package index pip is configured with, and prints one Markdown table:
package, level, score, evidence coverage and each scored finding. Then it judges the
targets of the evidence rules (README, "How to read a verdict"):

- no healthy package at HIGH or BLOCKED;
- at most 10 % of the healthy ones at MEDIUM, each with a reason a reviewer signed
  (``SIGNED_MEDIUM`` below; an unsigned MEDIUM is a miss);
- every known-bad package at MEDIUM or worse;
- every bad package riskier than every healthy one, pairwise, by (level, score).

Exit status: 0 when every target is met, 1 when one is missed, 2 when the panel could not
run. Results files and logs are kept in ``--work`` (default ``$TMPDIR/pytest-spike-calibration``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Healthy, widely used packages: a release within the last two years, active maintainers.
HEALTHY = (
    "attrs",
    "packaging",
    "tomli",
    "tomlkit",
    "more-itertools",
    "python-dateutil",
    "requests",
    "arrow",
    "orjson",
    "click",
    "rich",
    "pyyaml",
    "humanize",
    "toolz",
    "certifi",
    "charset-normalizer",
    "idna",
    "urllib3",
    "typing-extensions",
    "platformdirs",
    "filelock",
    "jinja2",
    "markupsafe",
    "pluggy",
    "iniconfig",
    "pydantic",
    "httpx",
    "anyio",
    "tqdm",
    "pytz",
    "tzdata",
    "cachetools",
    "msgpack",
    "zipp",
    "pathspec",
    "regex",
    "psutil",
    "flask",
    "werkzeug",
    "pygments",
    "structlog",
    "tenacity",
    "ruamel.yaml",
    "pyparsing",
    "sqlalchemy",
    "jsonschema",
)

#: Known-bad packages and why they are bad.
BAD = {
    "pycrypto": "unmaintained since 2013; its build fails on current Python",
    "futures": "a Python 2 backport that refuses to install on Python 3",
    "functools32": "Python 2 only: does not install on Python 3",
    "mysql-python": "Python 2 only: its build fails on Python 3",
    "sklearn": "deprecated name: its install fails on purpose (use scikit-learn)",
    "pep8": "renamed to pycodestyle and deprecated in 2016",
    "nose": "abandoned in 2015; imports break on current Python",
    "distribute": "merged back into setuptools in 2013",
    "oauth2client": "deprecated by its maintainers in 2017",
    "flask-script": "abandoned since 2017; breaks with current Flask",
    "unittest2": "abandoned backport (last release 2015)",
    "tensorflow-gpu": "removed: its install fails on purpose",
}

#: Healthy packages a reviewer accepts at MEDIUM, and the reason they signed.
SIGNED_MEDIUM: Mapping[str, str] = {}

#: The ML and data world (``--panel ml``): frameworks, dataframes, NLP, plotting, gradient
#: boosting, hyper-parameter search. The spike takes each one's newest release that installs
#: on the running Python. No torch or tensorflow: several GB each.
ML_HEALTHY = (
    "scikit-learn",
    "pandas",
    "polars",
    "pyarrow",
    "statsmodels",
    "xgboost",
    "lightgbm",
    "catboost",
    "optuna",
    "hyperopt",
    "matplotlib",
    "seaborn",
    "plotly",
    "bokeh",
    "nltk",
    "spacy",
    "gensim",
    "transformers",
    "datasets",
    "numba",
    "scipy",
    "sympy",
    "networkx",
)

#: Known-bad packages of the ML and data world and why they are bad.
ML_BAD = {
    "sklearn": "deprecated name: its install fails on purpose (use scikit-learn)",
    "theano": "abandoned in 2017; breaks with current NumPy",
    "pandas-profiling": "renamed to ydata-profiling and deprecated in 2023",
    "tensorflow-gpu": "removed: its install fails on purpose",
}

#: Healthy ML packages a reviewer accepts at MEDIUM, and the reason they signed.
ML_SIGNED_MEDIUM: Mapping[str, str] = {
    "seaborn": "signals.stale is true: no release since 0.13.2 (2024-01-25), so the rule's 2 years "
    "have passed; the finding is the candidate's and a team should read it (signed: issue 24)",
}


@dataclass(frozen=True)
class Panel:
    """A set of healthy and known-bad packages judged against the same targets."""

    healthy: tuple[str, ...]
    bad: Mapping[str, str]
    signed_medium: Mapping[str, str]


PANELS = {
    "base": Panel(HEALTHY, BAD, SIGNED_MEDIUM),
    "ml": Panel(ML_HEALTHY, ML_BAD, ML_SIGNED_MEDIUM),
}

LEVELS = ("low", "medium", "high", "blocked")


@dataclass
class Row:
    """One package's verdict as the results file gives it."""

    name: str
    group: str  # "healthy" or "bad"
    level: str = "missing"
    score: float = 0.0
    evidence: str = ""
    scored: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    #: the version probed, the candidate's probe time, and its environment's build time and
    #: size: the cost of a spike
    version: str = ""
    seconds: float = 0.0
    install_s: float = 0.0
    env_mb: float = 0.0

    @property
    def risk(self) -> tuple[int, float]:
        rank = LEVELS.index(self.level) if self.level in LEVELS else -1
        return rank, self.score


def run_panel(names: Sequence[str], work: Path, jobs: int) -> Path:
    """Spike ``names`` in one pytest run; return the results file."""
    project = work / "project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    out = work / "results.json"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "--spike",
        "--spike-isolation",
        "always",
        "-p",
        "no:cacheprovider",
        "-q",
        "-rN",
        "--spike-json",
        str(out),
    ]
    for name in names:
        argv += ["--spike-candidate", name]
    if jobs > 1:
        argv += ["-n", str(jobs)]
    log = work / "calibration.log"
    print(f"running {len(names)} candidates (log: {log}) ...", flush=True)
    with log.open("w") as handle:
        # As users run it: PYTHONDONTWRITEBYTECODE (set in some shells and CI images) hid
        # what the import system tries in a read-only environment (see CHANGELOG).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        done = subprocess.run(
            argv, cwd=project, stdout=handle, stderr=subprocess.STDOUT, check=False, env=env
        )
    if not out.is_file():
        raise SystemExit(f"calibration: pytest exited {done.returncode} without results; see {log}")
    return out


def load_rows(results: Iterable[Path], panel: Panel = PANELS["base"]) -> dict[str, Row]:
    """Rows by candidate name from one or more results files."""
    rows: dict[str, Row] = {}
    for path in results:
        data = json.loads(path.read_text())
        for cand in data.get("candidates", []):
            name = _panel_name(cand["name"], panel)
            row = Row(
                name,
                "bad" if name in panel.bad else "healthy",
                cand.get("level", "missing"),
                float(cand.get("score") or 0),
            )
            row.evidence = _evidence(cand)
            row.version = str(cand.get("version") or "")
            row.seconds = float(cand.get("duration_s") or 0)
            row.install_s, row.env_mb = _install(cand)
            for finding in cand.get("findings", []):
                text = f"{finding['code']} +{finding.get('points', 0)}"
                if finding.get("blame", "candidate") != "candidate":
                    row.unchecked.append(finding["code"])
                elif float(finding.get("points") or 0) > 0:
                    row.scored.append(text)
            rows[name] = row
    return rows


def _install(cand: Mapping[str, object]) -> tuple[float, float]:
    """The candidate's environment: seconds to build it and MB on disk, from the install probe."""
    for probe in cand.get("probes") or []:  # type: ignore[attr-defined]
        if isinstance(probe, Mapping) and probe.get("kind") == "install":
            details = probe.get("details") or {}
            return float(details.get("install_time_s") or 0), float(details.get("size_mb") or 0)
    return 0.0, 0.0


def _panel_name(name: str, panel: Panel) -> str:
    """The panel's spelling of a canonical candidate name (``ruamel-yaml`` -> ``ruamel.yaml``)."""
    canonical = {_canonical(n): n for n in (*panel.healthy, *panel.bad)}
    return canonical.get(_canonical(name), name)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _evidence(cand: Mapping[str, object]) -> str:
    evidence = cand.get("evidence")
    if isinstance(evidence, Mapping):
        unknown = ", ".join(evidence.get("unknown") or ())  # type: ignore[arg-type]
        text = f"{evidence.get('probes_with_evidence')}/{evidence.get('probes')}"
        return f"{text} (unknown: {unknown})" if unknown else text
    probes = cand.get("probes") or []
    ran = [p for p in probes if isinstance(p, Mapping) and p.get("nodeid", "").startswith("spike::")]
    seen = [p for p in ran if p.get("outcome") != "skipped"]
    return f"{len(seen)}/{len(ran)}"


def table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| package | group | level | score | evidence | version | probes | env build | env size | scored findings |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        scored = ", ".join(row.scored) or "-"
        cost = f"{row.seconds:.0f} s | {row.install_s:.0f} s | {row.env_mb:.0f} MB"
        lines.append(
            f"| {row.name} | {row.group} | {row.level.upper()} | {row.score:g} | {row.evidence} "
            f"| {row.version or '-'} | {cost} | {scored} |"
        )
    return lines


def judge(rows: Mapping[str, Row], panel: Panel = PANELS["base"]) -> list[str]:
    """The missed targets, one line each (empty: all met)."""
    healthy = [r for r in rows.values() if r.group == "healthy"]
    bad = [r for r in rows.values() if r.group == "bad"]
    missed = [f"{r.name}: no verdict (not in the results)" for r in rows.values() if r.level == "missing"]
    missed += [f"healthy {r.name} is {r.level.upper()}" for r in healthy if r.level in ("high", "blocked")]
    medium = [r for r in healthy if r.level == "medium"]
    if healthy and len(medium) > 0.10 * len(healthy):
        missed.append(f"{len(medium)} of {len(healthy)} healthy packages at MEDIUM (at most 10 %)")
    missed += [
        f"healthy {r.name} at MEDIUM without a signed reason"
        for r in medium
        if r.name not in panel.signed_medium
    ]
    missed += [f"bad {r.name} is only {r.level.upper()}" for r in bad if r.level in ("low", "missing")]
    for b in bad:
        beaten_by = [f"{h.name} ({h.level} {h.score:g})" for h in healthy if b.risk <= h.risk]
        if beaten_by and b.level != "missing":
            missed.append(
                f"bad {b.name} ({b.level} {b.score:g}) is not riskier than healthy " + ", ".join(beaten_by)
            )
    return missed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--panel",
        choices=sorted(PANELS),
        default="base",
        help="base: small libraries (default); ml: the ML and data world",
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", help="spike only these packages of the panel")
    parser.add_argument(
        "--results",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="judge these results files instead of running the panel",
    )
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "pytest-spike-calibration")
    parser.add_argument(
        "-n",
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="pytest-xdist workers (default: 2)",
    )
    parser.add_argument("--table", type=Path, metavar="MD", help="also write the table to this file")
    args = parser.parse_args(argv)
    panel = PANELS[args.panel]
    names = list(args.only or [*panel.healthy, *panel.bad])
    unknown = [n for n in names if n not in panel.healthy and n not in panel.bad]
    if unknown:
        parser.error(f"not in the panel: {', '.join(unknown)}")
    if args.results:
        files = args.results
    else:
        args.work.mkdir(parents=True, exist_ok=True)
        files = [run_panel(names, args.work, args.jobs)]
    found = load_rows(files, panel)
    rows = {n: found.get(n, Row(n, "bad" if n in panel.bad else "healthy")) for n in names}
    ordered = sorted(rows.values(), key=lambda r: (r.group != "healthy", r.risk, r.name))
    lines = table(ordered)
    print("\n".join(lines))
    if args.table:
        args.table.write_text("\n".join(lines) + "\n")
    missed = judge(rows, panel)
    print()
    healthy = [r for r in rows.values() if r.group == "healthy"]
    by_level = {lvl: sum(r.level == lvl for r in healthy) for lvl in LEVELS}
    print("healthy: " + ", ".join(f"{n} {lvl.upper()}" for lvl, n in by_level.items()))
    print("bad: " + ", ".join(f"{r.name} {r.level.upper()}" for r in rows.values() if r.group == "bad"))
    for line in missed:
        print(f"MISSED  {line}")
    print("all targets met" if not missed else f"{len(missed)} target(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
