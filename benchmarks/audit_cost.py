#!/usr/bin/env python3
"""What the behaviour audit hooks cost on a healthy package's import.

    python benchmarks/audit_cost.py                 # import pytest, 30 runs each way
    python benchmarks/audit_cost.py --module rich --runs 50

Runs ``python -c "import MODULE"`` three ways, alternating, and prints the median CPU times: plain;
with the audit boot on PYTHONPATH but no audit folder (the boot steps aside at once); with
the audit hooks on (as in every boxed step). Unboxed, so bubblewrap's own start does not
blur the difference.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile

from pytest_spike._core import behaviour


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", default="pytest")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        behaviour.python_path(None)  # compiles the boot, as the runner's first boxed step does
        base = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_SPIKE")}
        base.pop("PYTHONPATH", None)
        ways = {
            "plain": base,
            "boot, no hooks": {**base, "PYTHONPATH": behaviour.BOOT},
            "audit hooks on": {
                **base,
                "PYTHONPATH": behaviour.BOOT,
                **behaviour.audit_env(folder, ["/tmp", folder], pidns=False),
            },
        }
        took: dict[str, list[float]] = {name: [] for name in ways}
        argv = [sys.executable, "-c", f"import {args.module}"]
        for _ in range(args.runs):
            for name, env in ways.items():
                # CPU time (user + system) of the child: steadier than wall time on a
                # machine shared with other work.
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run(argv, env=env, check=True)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                took[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        plain = statistics.median(took["plain"])
        print(f"import {args.module}, median CPU time of {args.runs} runs")
        for name, values in took.items():
            median = statistics.median(values)
            print(f"  {name:15} {median * 1000:7.1f} ms  {median / plain:5.3f}x")
        attempts = sum(1 for _ in os.scandir(folder))
        print(f"  attempt files written: {attempts}")


if __name__ == "__main__":
    main()
