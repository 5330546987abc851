#!/usr/bin/env python3
"""What one step costs: ``python -c pass`` through ``runner.run``, boxed and unboxed.

    python benchmarks/step_cost.py                          # this checkout's src
    python benchmarks/step_cost.py OLD/src NEW/src          # source trees side by side
    python benchmarks/step_cost.py --rounds 6 --steps 10 --host-mb 100

Each side runs in a process of its own, padded to ``--host-mb`` of memory (a pytest parent is
about that size; how a step is started can depend on it), ``--steps`` steps per round of each
kind: boxed (``--spike-sandbox require``), ``--spike-sandbox off`` (the step's limits still
set), and a plain ``/bin/sleep 0.05`` without a box (time beyond the 50 ms: the wait's own
cost). Rounds alternate the sides' order; medians over all rounds. Not judged: the number to
read is the difference between the sides, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
KINDS = ("boxed", "off", "sleep")


def one_side(src: str, steps: int, host_mb: int) -> dict[str, list[float]]:
    """Runs in the side's own process: the times of ``steps`` steps of each kind."""
    sys.path.insert(0, src)
    from pytest_spike._core import runner, sandbox

    if not runner.__file__ or not runner.__file__.startswith(src):
        raise SystemExit(f"pytest_spike came from {runner.__file__}, not {src}")
    pad = bytearray(host_mb * 1024 * 1024)
    for i in range(0, len(pad), 4096):  # touched, so the pages are really there
        pad[i] = 1
    argv = [sys.executable, "-c", "pass"]
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}

    def step(kind: str, command: list[str], box: sandbox.Box | None) -> None:
        start = time.perf_counter()
        done = runner.run(command, timeout=60, box=box)
        times[kind].append(time.perf_counter() - start - (0.05 if kind == "sleep" else 0.0))
        if not done.ok:
            raise SystemExit(f"{kind} step failed: {done.describe()}: {done.stderr[-300:]}")

    with sandbox.use(sandbox.Policy(mode="require")):
        runner.run(argv, timeout=60, box=sandbox.Box("import"))  # warm: bubblewrap checked once
        for _ in range(steps):
            step("boxed", argv, sandbox.Box("import"))
    with sandbox.use(sandbox.Policy(mode="off")):
        for _ in range(steps):
            step("off", argv, sandbox.Box("import"))
    for _ in range(steps):
        step("sleep", ["/bin/sleep", "0.05"], None)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "src", nargs="*", help="source folders holding pytest_spike (default: this checkout's)"
    )
    parser.add_argument("--rounds", type=int, default=6, help="rounds, each side once per round (default 6)")
    parser.add_argument(
        "--steps", type=int, default=10, help="steps of each kind per side and round (default 10)"
    )
    parser.add_argument(
        "--host-mb", type=int, default=100, help="memory of each side's process (default 100)"
    )
    parser.add_argument("--side", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        print(json.dumps(one_side(args.side, args.steps, args.host_mb)))
        return 0
    sides = [str(Path(s).resolve()) for s in args.src] or [str(SRC)]
    times: dict[str, dict[str, list[float]]] = {s: {k: [] for k in KINDS} for s in sides}
    loads: list[float] = []
    for round_ in range(args.rounds):
        for side in sides if round_ % 2 == 0 else sides[::-1]:
            loads.append(os.getloadavg()[0])
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--side",
                    side,
                    "--steps",
                    str(args.steps),
                    "--host-mb",
                    str(args.host_mb),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                print(f"{side}: {done.stderr.strip() or done.stdout.strip()}", file=sys.stderr)
                return 2
            for kind, values in json.loads(done.stdout).items():
                times[side][kind].extend(values)
    print(
        f"one step, median ms of {args.rounds * args.steps} per side, host {args.host_mb} MB, {os.cpu_count()} "
        f"cores, load {min(loads):.1f}-{max(loads):.1f} (median {statistics.median(loads):.1f})"
    )
    for side in sides:
        cells = "  ".join(f"{kind} {1000 * statistics.median(times[side][kind]):6.1f}" for kind in KINDS)
        print(f"  {cells}  {side}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
