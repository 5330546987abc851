"""1. Idle overhead: a 2,000-test suite with pytest-spike installed (no --spike) vs ``-p no:spike``.

The suite is 20 modules of 100 trivial tests. Both sides run the same command except for
``-p no:spike``. The ratio of median CPU times (user + system) is judged (target <= 1.02):
a 2 % effect is far below what neighbours on a shared machine do to wall time, which is
shown beside it.
"""

from __future__ import annotations

from pathlib import Path

from _bench import (
    Context,
    Result,
    alternate,
    clean_env,
    fresh_dir,
    median,
    run_measured,
)

TESTS = 2000
TARGET = 1.02


def make_suite(root: Path) -> None:
    for module in range(20):
        body = "\n".join(f"def test_{i}():\n    assert {i} == {i}\n" for i in range(TESTS // 20))
        (root / f"test_m{module}.py").write_text(body)
    (root / "pytest.ini").write_text("[pytest]\n")


def measure(ctx: Context) -> list[Result]:
    root = fresh_dir(ctx.work / "idle")
    make_suite(root)
    env = clean_env()
    base = [ctx.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    log = ctx.work / "idle.log"

    walls: dict[bool, list[float]] = {True: [], False: []}

    def run(*extra: str) -> float:
        wall, cpu = run_measured([*base, *extra], cwd=root, env=env, log_to=log)
        walls[not extra].append(wall)
        return cpu

    run()  # warm the file cache and write the .pyc files
    run("-p", "no:spike")
    for side in walls.values():
        side.clear()
    # Idle runs are cheap: three times the requested repetitions keeps the median steady.
    with_plugin, without = alternate(ctx.runs * 3, run, lambda: run("-p", "no:spike"))
    ratio = median(with_plugin) / median(without)
    # Where the difference goes: importing the plugin vs its hooks running per test.
    imports = [
        run_measured([ctx.python, "-c", code], env=env)[1]
        for _ in range(ctx.runs * 3)
        for code in ("import pytest", "import pytest, pytest_spike.plugin")
    ]
    import_cost = median(imports[1::2]) - median(imports[0::2])
    wall_ratio = median(walls[True]) / median(walls[False])
    return [
        Result(
            f"idle overhead, {TESTS} tests (CPU time)",
            ratio,
            TARGET,
            detail=[
                (
                    f"CPU with plugin {median(with_plugin):.3f}s, -p no:spike {median(without):.3f}s "
                    f"(median of {len(with_plugin)} each); wall time ratio {wall_ratio:.3f} "
                    f"({median(walls[True]):.2f}s / {median(walls[False]):.2f}s)"
                ),
                (
                    f"importing pytest_spike.plugin costs {import_cost:.3f}s CPU; the rest of the "
                    f"difference, {median(with_plugin) - median(without) - import_cost:.3f}s, is its hooks "
                    f"on {TESTS} tests"
                ),
            ],
        )
    ]
