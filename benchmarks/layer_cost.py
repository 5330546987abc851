#!/usr/bin/env python3
"""What a cold matrix's layers cost: ``layer_for`` for each interpreter, in a new cache.

    python benchmarks/layer_cost.py                          # this checkout's src
    python benchmarks/layer_cost.py OLD/src NEW/src          # source trees side by side
    python benchmarks/layer_cost.py --rounds 3 --python 3.9 --python 3.13

Each round builds the layer of pytest + pytest-spike for every interpreter (default the
benchmark-3 ones, ``$(pyenv root)/versions/3.9*``, ``3.11*``, ``3.13*``) into a new cache, in
a process of its own per side, one after the other; uv's cache is shared and warmed first,
so index time is left out. Rounds alternate the sides' order. Printed per side: the wall
time and the CPU time of the children (compileall, uv, the interpreters asked) and of the
side's own process, medians over the rounds. Not judged: read the difference between sides.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

ONE_SIDE = """
import json, os, resource, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from pytest_spike.envs import layer
from pytest_spike.envs.manager import find_uv
if not layer.__file__.startswith(sys.argv[1]):
    raise SystemExit(f"pytest_spike came from {layer.__file__}, not {sys.argv[1]}")
with tempfile.TemporaryDirectory(dir=sys.argv[2]) as cache:
    start = time.perf_counter()
    for python in sys.argv[3:]:
        layer.layer_for(python, Path(cache), uv=find_uv())
    wall = time.perf_counter() - start
children, me = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "children_cpu": children.ru_utime + children.ru_stime,
                  "own_cpu": me.ru_utime + me.ru_stime}))
"""


def interpreters(wanted: list[str]) -> list[str]:
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False).stdout.strip()
    found = []
    for version in wanted:
        matches = sorted(Path(root, "versions").glob(f"{version}.*/bin/python")) if root else []
        if not matches:
            raise SystemExit(f"no Python {version} in $(pyenv root)/versions")
        found.append(str(matches[-1]))
    return found


def one(src: str, work: Path, pythons: list[str]) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE")}
    env["UV_CACHE_DIR"] = str(work / "uv")
    done = subprocess.run(
        [sys.executable, "-c", ONE_SIDE, src, str(work), *pythons], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{src}: {done.stderr.strip()[-500:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "src", nargs="*", default=[str(SRC)], help="pytest-spike source trees (default: this one)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--python", action="append", help="X.Y, repeatable (default 3.9, 3.11, 3.13)")
    args = parser.parse_args()
    pythons = interpreters(args.python or ["3.9", "3.11", "3.13"])
    with tempfile.TemporaryDirectory(prefix="layer-cost-") as folder:
        work = Path(folder)
        one(args.src[0], work, pythons)  # warms uv's cache (the 3.9 layer installs)
        times: dict[str, list[dict[str, float]]] = {src: [] for src in args.src}
        for round_ in range(args.rounds):
            for src in args.src if round_ % 2 == 0 else args.src[::-1]:
                times[src].append(one(src, work, pythons))
    print(
        f"layers for {', '.join(pythons)}; medians of {args.rounds}, load {os.getloadavg()[0]:.1f} at the end"
    )
    for src, runs in times.items():
        cells = {key: statistics.median(r[key] for r in runs) for key in ("wall", "children_cpu", "own_cpu")}
        print(
            f"  {src}: wall {cells['wall']:.2f} s, CPU children {cells['children_cpu']:.2f} s"
            f" + own {cells['own_cpu']:.2f} s"
        )


if __name__ == "__main__":
    main()
