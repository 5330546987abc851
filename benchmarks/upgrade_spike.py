"""6. Upgrade spike of a 500-test suite vs the least it can cost.

What the issue asks of an upgrade spike: no more than the baseline run + one environment
build + 1.2x the suite's own time on the new version (the spike reuses this run's outcomes
as its baseline, so the suite runs once on each side). Four commands, in turn, every round
starting with the next one:

(i) ``pytest -q -p no:cacheprovider`` of the suite alone, in an environment with oldlib 1.0,
pytest and pytest-spike (the baseline run); (ii) one environment build of the upgraded
requirements alone: ``uv venv`` + ``uv pip install oldlib==2.0`` into a new folder with a new
uv cache; (iii) the same pytest command in an environment with oldlib 2.0 (the suite's own
time there); (iv) ``pytest -q --spike-upgrade oldlib`` in the first environment, with a new
``--spike-cache-dir`` and uv cache every time, as cold as the spike's first run.

Judged: median (iv) / (median (i) + median (ii) + 1.2 x median (iii)), target <= 1.0.

The package index is a folder of two wheels in the work folder (``PIP_NO_INDEX``,
``PIP_FIND_LINKS``, and uv's spellings of the same): nothing is fetched. The project is 500
small tests in 10 modules that import oldlib; one in ten calls a function 2.0 deprecates,
and each does a little arithmetic so the suite's time is not only pytest's start-up.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _bench import (
    REPO,
    Context,
    Result,
    clean_env,
    cpu_counted,
    find_uv,
    fresh_dir,
    in_turn,
    median,
    run_measured,
)

sys.path.insert(0, str(REPO / "tests"))

from pkgfactory import FakeProject, build_wheel  # noqa: E402  (the tests' wheel builder)

TESTS = 500
MODULES = 10
TARGET = 1.0
#: the suite's own time on the new version counts this many times in the budget
SUITE_FACTOR = 1.2

_TOTALS = """
def total(xs):
    return sum(xs)

def mean(xs):
    return total(xs) / len(xs)
"""
_OLDLIB = _TOTALS + "\ndef helper(n):\n    return n * 2\n"
_NEWLIB = (
    "import warnings\n"
    + _TOTALS
    + "\ndef helper(n):\n"
    + '    warnings.warn("oldlib.helper is deprecated; use oldlib.twice", DeprecationWarning, stacklevel=2)\n'
    + "    return twice(n)\n\ndef twice(n):\n    return n * 2\n"
)


def make_index(folder: Path) -> Path:
    """A find-links folder holding oldlib 1.0 and 2.0 (2.0 deprecates ``helper``)."""
    for version, source in (("1.0", _OLDLIB), ("2.0", _NEWLIB)):
        build_wheel(FakeProject("oldlib", version, files={"oldlib/__init__.py": source}), folder)
    return folder


def make_project(root: Path, tests: int = TESTS, modules: int = MODULES) -> None:
    """``tests`` small tests over ``modules`` files, importing oldlib, with a little work each."""
    per_module = tests // modules
    for module in range(modules):
        body = ["import oldlib", ""]
        for i in range(per_module):
            n = module * per_module + i
            if n % 10 == 0:
                body += [f"def test_{n}():", f"    assert oldlib.helper({n}) == {2 * n}", ""]
            else:
                size = 200 + 40 * (n % 50)
                body += [
                    f"def test_{n}():",
                    f"    xs = [x * x for x in range({size})]",
                    f"    assert oldlib.total(xs) == {sum(x * x for x in range(size))}",
                    "    assert oldlib.mean(xs) > 0",
                    "",
                ]
        (root / f"test_m{module}.py").write_text("\n".join(body))
    (root / "requirements.txt").write_text("oldlib==1.0\n")
    (root / "pytest.ini").write_text("[pytest]\nspike_requirements = requirements.txt\n")


def offline_env(index: Path, uv_cache: Path) -> dict[str, str]:
    """The children's environment: the local folder is the only package index."""
    return clean_env(
        PIP_CONFIG_FILE="/dev/null",
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(index),
        UV_NO_INDEX="1",
        UV_FIND_LINKS=str(index),
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(uv_cache),
    )


def make_env(ctx: Context, uv: str, venv: Path, index: Path, version: str) -> str:
    """A venv with oldlib ``version``, pytest and pytest-spike (editable, from this checkout)."""
    fresh_dir(venv)
    python = venv / "bin" / "python"
    subprocess.run([uv, "venv", "-q", "--python", ctx.python, str(venv)], check=True)
    # pytest and pytest-spike's needs come from the index uv is configured with (setup only).
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), "--find-links", str(index)]
        + [f"oldlib=={version}", "-e", str(REPO)],
        check=True,
    )
    return str(python)


def measure(ctx: Context) -> list[Result]:
    uv = find_uv()
    if uv is None:
        return [
            Result("upgrade spike of 500 tests", None, TARGET, detail=["not measured: uv is not installed"])
        ]
    root = fresh_dir(ctx.work / "upgrade")
    index = make_index(root / "index")
    project = root / "project"
    project.mkdir()
    make_project(project)
    ctx.log("setting up the environments (oldlib 1.0 and 2.0, pytest, pytest-spike)")
    old_python = make_env(ctx, uv, root / "env-1.0", index, "1.0")
    new_python = make_env(ctx, uv, root / "env-2.0", index, "2.0")
    log = ctx.work / "upgrade.log"
    suite = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]
    cpu: dict[str, list[float]] = {"base": [], "build": [], "after": [], "spike": []}

    def fresh_env() -> dict[str, str]:
        return offline_env(index, fresh_dir(root / "uv-cache"))

    def measured(side: str, *commands: list[str], cwd: Path | None = None) -> float:
        """Wall seconds of ``commands`` run one after another; their CPU seconds kept apart."""
        env, wall, used = fresh_env(), 0.0, 0.0
        for argv in commands:
            seconds, cpu_seconds = run_measured(argv, cwd=cwd, env=env, log_to=log)
            wall, used = wall + seconds, used + cpu_seconds
        cpu[side].append(used)
        return wall

    def baseline() -> float:
        return measured("base", [old_python, *suite], cwd=project)

    def build() -> float:
        venv = root / "built"
        shutil.rmtree(venv, ignore_errors=True)
        install = [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "oldlib==2.0"]
        return measured("build", [uv, "venv", "-q", "--python", ctx.python, str(venv)], install)

    def suite_after() -> float:
        return measured("after", [new_python, *suite], cwd=project)

    def spike() -> float:
        # A new path every time: bytecode kept under PYTHONPYCACHEPREFIX for an earlier
        # cache at the same path would make the child pytest's layer warm.
        cache = Path(tempfile.mkdtemp(prefix="spike-cache-", dir=root))
        # "--opt=value": pytest finds its rootdir before it loads plugins, so the value of a
        # plugin option given as its own argument would count as a path (and move the rootdir).
        argv = [old_python, *suite, "--spike-upgrade=oldlib", f"--spike-cache-dir={cache}"]
        argv.append(f"--spike-json={root / 'up.json'}")
        try:
            return measured("spike", argv, cwd=project)
        finally:
            shutil.rmtree(cache)

    baseline(), suite_after()  # write the .pyc files of both environments once
    base, built, after, spiked = in_turn(ctx.runs, baseline, build, suite_after, spike)
    for side in cpu.values():
        del side[: len(side) - ctx.runs]  # not the warm-up runs
    cpu_budget = median(cpu["base"]) + median(cpu["build"]) + SUITE_FACTOR * median(cpu["after"])
    budget = median(base) + median(built) + SUITE_FACTOR * median(after)
    ratio = median(spiked) / budget
    # What the spike costs beyond one baseline, one build and one suite run on 2.0: the
    # target holds for suites whose own time is at least this over (SUITE_FACTOR - 1).
    fixed = median(spiked) - (median(base) + median(built) + median(after))
    return [
        Result(
            f"upgrade spike of {TESTS} tests vs baseline + build + {SUITE_FACTOR}x suite",
            ratio,
            TARGET,
            detail=[
                f"spike {median(spiked):.2f}s; budget {budget:.2f}s = baseline {median(base):.2f}s + "
                f"build {median(built):.2f}s + {SUITE_FACTOR} x suite on 2.0 {median(after):.2f}s "
                f"(median of {len(spiked)} each)",
                f"beyond baseline + build + 1x suite: {fixed:.2f}s, so the target holds for suites "
                f"of {max(fixed, 0) / (SUITE_FACTOR - 1):.1f}s or more on the new version",
                f"CPU time (steadier on a loaded machine): spike {median(cpu['spike']):.2f}s / budget "
                f"{cpu_budget:.2f}s = {median(cpu['spike']) / cpu_budget:.3f} ({cpu_counted()})",
                _inside(root / "up.json"),
            ],
        )
    ]


def _inside(path: Path) -> str:
    """What the last spike's results say it spent: the baseline run and the target."""
    data = json.loads(path.read_text())
    [upgrade] = data["upgrades"]
    [target] = upgrade["targets"]
    return (
        f"last spike: baseline run {upgrade['baseline']['duration_s']:.2f}s of {upgrade['baseline']['tests']} "
        f"tests, target {target['version']} {target['duration_s']:.2f}s, level {target['level']}, "
        f"{len(target['findings'])} finding(s)"
    )
