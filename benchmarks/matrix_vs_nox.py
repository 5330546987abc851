"""3, 3b, 6. Matrix: 3 Pythons x 3 versions of tomli, ``nox -s spike`` vs plain noxfiles.

pytest-spike side: ``nox -s spike -- -j 2`` with a noxfile that calls
``pytest_spike.matrix.nox.spike_sessions``: one nox session that runs every cell through
pytest-spike's runner (a uv environment per cell holding the pin, linked to one pytest +
pytest-spike layer per interpreter, two cells at a time, then the merged scorecard), on a
spike file with one ``hello_world`` test and the ``import`` built-in probe
(``spike_probes = import`` in its pytest.ini).
Baseline 3: a plain noxfile, nox's virtualenv backend and pip, one parametrized session per
cell, run sequentially: ``pip install tomli==V pytest`` and pytest on a file with the same
two tests (import tomli; parse a string).
Baseline 3b: the same sessions with ``nox -db uv -j 2`` (uv backend, two at a time): the
best a user would write today.
6: ``pytest-spike run -j 2`` (warm) on 3 Pythons x 10 versions (30 cells) against the 9
cells: seconds per cell, and how far from linear the growth is.
Also reported: where a cell's time goes (environment, layer, pytest start-up, probes; from
the runner's ``matrix.runner`` block) and the floor per interpreter (``python -c pass``,
``python -m pytest --version`` in a cell's environment).

cold: new nox environments, new pip/uv caches and a new pytest-spike cache (XDG_CACHE_HOME)
on both sides. warm: the caches are kept, the virtualenvs are made anew (nox's default).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from _bench import (
    REPO,
    Context,
    Result,
    alternate,
    clean_env,
    fresh_dir,
    median,
    pyenv_pythons,
    timed,
    tool_python,
)

PYTHONS = ("3.9", "3.11", "3.13")
CANDIDATE = "tomli"
VERSIONS = "latest:3"
#: issue 25's targets (3 cold and warm vs plain nox, 3b warm vs nox -db uv -j 2)
TARGET_COLD = 0.15
TARGET_WARM = 0.05
TARGET_UV = 0.5
#: benchmark 6: 3 Pythons x these 10 releases of tomli
WIDE_VERSIONS = ">=2.0.1"
#: time per cell at 30 cells / time per cell at 9: 1.0 is linear
TARGET_LINEAR = 1.3

SPIKE_TEST = """\
from pytest_spike import spike

pytestmark = spike.candidate("tomli")


@spike.hello_world
def test_parses_a_string():
    import tomli
    assert tomli.loads("a = 1") == {"a": 1}
"""

SPIKE_NOXFILE = """\
import nox
from pytest_spike.matrix.nox import spike_sessions

nox.options.error_on_missing_interpreters = True
spike_sessions(["."], plugin={plugin!r}, pythons={pythons!r}, versions={versions!r})
"""

PLAIN_TEST = """\
def test_imports():
    import tomli  # noqa: F401


def test_parses_a_string():
    import tomli
    assert tomli.loads("a = 1") == {"a": 1}
"""

PLAIN_NOXFILE = """\
import nox

CELLS = {cells!r}


@nox.session(venv_backend="virtualenv")
@nox.parametrize(["python", "version"], [nox.param(p, v, id=i) for i, p, v in CELLS])
def plain(session, version):
    session.install("tomli==" + version, "pytest")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_plain.py")


@nox.session(allow_parallel=True)
@nox.parametrize(["python", "version"], [nox.param(p, v, id=i) for i, p, v in CELLS])
def plain_uv(session, version):
    session.install("tomli==" + version, "pytest")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_plain.py")
"""


class _Matrix:
    def __init__(
        self, ctx: Context, nox: str, interpreters: dict[str, str], spike_dir: str = "spike", ini: str = ""
    ) -> None:
        self.ctx, self.nox, self.interpreters = ctx, nox, interpreters
        self.root = ctx.work / "matrix"
        self.spike_dir = self.root / spike_dir
        self.ini = ini  # more pytest.ini lines for the spike side (the box benchmark's spike_sandbox)
        self.plain_dir = self.root / "plain"
        self.log = ctx.work / "matrix.log"

    def _env(self, side: Path) -> dict[str, str]:
        return clean_env(
            XDG_CACHE_HOME=str(side / "xdg"),
            PIP_CACHE_DIR=str(side / "pip-cache"),
            UV_CACHE_DIR=str(side / "uv-cache"),
        )

    def _caches(self, side: Path, cold: bool) -> Path:
        cache = side / "caches"
        if cold:
            fresh_dir(cache)
        for leftover in (side / "project" / ".nox", side / "project" / ".spike"):
            if leftover.exists():
                fresh_dir(leftover)
        return cache

    def write_spike(self, plugin: list[str]) -> Path:
        """The spike side's project: the spike file, its pytest.ini and noxfile."""
        project = fresh_dir(self.spike_dir / "project")
        (project / "test_spike.py").write_text(SPIKE_TEST)
        (project / "pytest.ini").write_text(f"[pytest]\nspike_probes = import\n{self.ini}")
        (project / "noxfile.py").write_text(
            SPIKE_NOXFILE.format(plugin=plugin, pythons=list(PYTHONS), versions=VERSIONS)
        )
        return project

    def setup(self) -> list[tuple[str, str, str]]:
        project = self.write_spike(self.plugin())
        plan = subprocess.run(
            [
                str(Path(self.nox).parent / "pytest-spike"),
                "matrix",
                "--json",
                *(arg for v in PYTHONS for arg in ("--python", v)),
                "--versions",
                VERSIONS,
                ".",
            ],
            cwd=project,
            capture_output=True,
            text=True,
            env=self._env(self.spike_dir / "caches"),
            check=False,
        )
        if plan.returncode != 0:
            raise RuntimeError(f"pytest-spike matrix --json failed: {plan.stderr.strip()[-300:]}")
        cells = [
            (c["id"], self.interpreters[c["python"]], c["version"])
            for c in json.loads(plan.stdout)["cells"]
            if c.get("status", "run") == "run"
        ]
        plain = fresh_dir(self.plain_dir / "project")
        (plain / "test_plain.py").write_text(PLAIN_TEST)
        (plain / "noxfile.py").write_text(PLAIN_NOXFILE.format(cells=cells))
        return cells

    def plugin(self) -> list[str]:
        """How cells install pytest-spike: a wheel of this checkout built once (as a user
        installing it from the index gets a wheel), or with SPIKE_BENCH_EDITABLE=1 the
        example noxfile's ``-e`` (a build per cell)."""
        if os.environ.get("SPIKE_BENCH_EDITABLE") == "1":
            return ["-e", str(REPO)]
        out = fresh_dir(self.root / "wheel")
        subprocess.run(
            [self.ctx.python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return [str(next(out.glob("*.whl")))]

    def spike(self, cold: bool) -> float:
        cache = self._caches(self.spike_dir, cold)
        return timed(
            [self.nox, "-s", "spike", "--", "-j", "2"],
            cwd=self.spike_dir / "project",
            env=self._env(cache),
            log_to=self.log,
        )

    def plain(self, cold: bool) -> float:
        cache = self._caches(self.plain_dir, cold)
        return timed(
            [self.nox, "-s", "plain"], cwd=self.plain_dir / "project", env=self._env(cache), log_to=self.log
        )

    def plain_uv(self) -> float:
        cache = self._caches(self.plain_dir, False)
        return timed(
            [self.nox, "-db", "uv", "-j", "2", "-s", "plain_uv"],
            cwd=self.plain_dir / "project",
            env=self._env(cache),
            log_to=self.log,
        )

    def runner_cells(self) -> list[dict[str, object]]:
        report = self.spike_dir / "project" / ".spike" / "report.json"
        return list(json.loads(report.read_text())["matrix"]["runner"]["cells"])

    def wide(self, versions: str) -> tuple[float, int]:
        """``pytest-spike run -j 2`` warm (a first run primes it); (seconds, cells run)."""
        cache = self._caches(self.spike_dir, False)
        argv = [str(Path(self.nox).parent / "pytest-spike"), "run", ".", "-j", "2", "-q"]
        argv += [
            *(a for v in PYTHONS for a in ("--python", v)),
            "--versions",
            versions,
            "--json",
            "wide.json",
        ]
        opts = {"cwd": self.spike_dir / "project", "env": self._env(cache), "log_to": self.log}
        timed(argv, **opts)
        took = timed(argv, **opts)
        data = json.loads((self.spike_dir / "project" / "wide.json").read_text())
        ran = sum(c["state"] not in ("skipped", "queued") for c in data["matrix"]["runner"]["cells"])
        return took, ran

    def floor(self) -> list[str]:
        """``python -c pass`` and ``python -m pytest --version`` in one cell env per Python."""
        lines = []
        cells = self.spike_dir / "caches" / "xdg" / "pytest-spike" / "cells"
        seen: set[str] = set()
        for python in sorted(cells.glob("*/bin/python")):
            version = subprocess.run(
                [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, check=False,
            ).stdout.strip()  # fmt: skip
            if version in seen or not version:
                continue
            seen.add(version)
            bare = median([timed([str(python), "-c", "pass"]) for _ in range(3)])
            start = median([timed([str(python), "-m", "pytest", "--version"]) for _ in range(3)])
            lines.append(f"floor on {version}: python -c pass {bare:.3f}s, pytest --version {start:.2f}s")
        return lines


def measure(ctx: Context) -> list[Result]:
    interpreters = pyenv_pythons(PYTHONS)
    missing = [v for v in PYTHONS if v not in interpreters]
    if missing:
        why = f"no pyenv interpreter for Python {', '.join(missing)}"
        return [
            Result(f"matrix {len(PYTHONS)}x3, {m}", None, t, detail=[why])
            for m, t in (("cold", TARGET_COLD), ("warm", TARGET_WARM))
        ]
    nox = str(Path(tool_python(ctx)).parent / "nox")
    m = _Matrix(ctx, nox, interpreters)
    cells = m.setup()
    ctx.log(f"matrix cells: {[c[0] for c in cells]}")
    if m.log.exists():
        m.log.unlink()
    cold_spike, cold_plain = alternate(ctx.cold_runs, lambda: m.spike(True), lambda: m.plain(True))
    ctx.log(f"cold: spike {cold_spike}, plain nox {cold_plain}")
    warm_spike, warm_plain = alternate(ctx.runs, lambda: m.spike(False), lambda: m.plain(False))
    ctx.log(f"warm: spike {warm_spike}, plain nox {warm_plain}")
    per_cell = _breakdown(m.runner_cells())
    uv_plain = [m.plain_uv() for _ in range(ctx.runs)]
    ctx.log(f"nox -db uv -j 2: {uv_plain}")
    floor = m.floor()
    nine, nine_cells = m.wide(VERSIONS)
    wide, wide_cells = m.wide(WIDE_VERSIONS)
    growth = (wide / wide_cells) / (nine / nine_cells)
    label = f"matrix {len(PYTHONS)} Pythons x {len(cells) // len(PYTHONS)} versions of {CANDIDATE}"
    return [
        Result(
            f"{label}, cold",
            median(cold_spike) / median(cold_plain),
            TARGET_COLD,
            detail=[
                (
                    f"pytest-spike (nox -j 2) {median(cold_spike):.1f}s, plain nox "
                    f"{median(cold_plain):.1f}s (median of {len(cold_spike)})"
                )
            ],
        ),
        Result(
            f"{label}, warm",
            median(warm_spike) / median(warm_plain),
            TARGET_WARM,
            detail=[
                (
                    f"pytest-spike (nox -j 2) {median(warm_spike):.1f}s, plain nox "
                    f"{median(warm_plain):.1f}s (median of {len(warm_spike)})"
                ),
                per_cell,
                *floor,
            ],
        ),
        Result(
            f"{label}, vs nox -db uv -j 2 (3b)",
            median(warm_spike) / median(uv_plain),
            TARGET_UV,
            detail=[f"pytest-spike {median(warm_spike):.1f}s, nox -db uv -j 2 {median(uv_plain):.1f}s"],
        ),
        Result(
            f"matrix {wide_cells} cells vs {nine_cells} (6), time per cell",
            growth,
            TARGET_LINEAR,
            detail=[
                f"pytest-spike run -j 2, warm: {wide:.1f}s for {wide_cells} cells "
                f"({wide / wide_cells:.2f}s per cell), {nine:.1f}s for {nine_cells} "
                f"({nine / nine_cells:.2f}s per cell); 1.0 is linear"
            ],
        ),
    ]


def _breakdown(cells: list[dict[str, object]]) -> str:
    """Medians of where a cell's time went, from the runner's own record."""
    ran = [c for c in cells if c.get("state") == "done"]
    if not ran:
        return "per cell: no cell ran"
    parts = [f"{key[:-2]} {median([float(c[key]) for c in ran]):.2f}s"  # type: ignore[arg-type]
             for key in ("layer_s", "env_s", "startup_s", "probes_s")]  # fmt: skip
    return "per cell (median, last warm run): " + ", ".join(parts)
