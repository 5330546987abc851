"""Idle overhead: a 2,000-test suite with pytest-spike installed (no --spike) vs ``-p no:spike``.

Runs both side by side, alternating, and prints the ratio of medians (absolute times drift
on shared machines; the ratio is what we track). Usage: python benchmarks/idle_overhead.py [RUNS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = 2000
TARGET = 1.02


def make_suite(root: Path) -> None:
    for module in range(20):
        body = "\n".join(f"def test_{i}():\n    assert {i} == {i}\n" for i in range(TESTS // 20))
        (root / f"test_m{module}.py").write_text(body)
    (root / "pytest.ini").write_text("[pytest]\n")


def timed(root: Path, *extra: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *extra],
        cwd=root, check=True, stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_suite(root)
        timed(root)  # warm the file cache
        with_plugin, without = [], []
        for _ in range(runs):
            with_plugin.append(timed(root))
            without.append(timed(root, "-p", "no:spike"))
    ratio = statistics.median(with_plugin) / statistics.median(without)
    print(f"idle overhead, {TESTS} tests, {runs} runs each: with plugin {statistics.median(with_plugin):.3f}s, "
          f"without {statistics.median(without):.3f}s, ratio {ratio:.3f} (target <= {TARGET})")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
