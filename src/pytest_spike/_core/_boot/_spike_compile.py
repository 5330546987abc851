"""Byte-compile an environment once its install ended: ``python -I -S _spike_compile.py LIB PATTERN``.

Run by the environment's own interpreter (its bytecode is that Python's), with ``-I -S``: no
``site``, so no ``.pth`` file of the candidate's runs, and nothing but the standard library
is imported. Modules whose path matches ``PATTERN`` are left out (pygments' lexers nobody
imports, see ``NOT_COMPILED`` in ``pytest_spike.envs.manager``). A module that does not
compile (one for another Python) is the installer's business: the exit status is 0 either
way. In the boot folder, which every boxed step sees, so that an install step compiles what
it installed in its own box (``EnvManager._install``).
"""

from __future__ import annotations

import compileall
import os
import re
import sys

#: Worker processes from this many modules on: they cost more than a few modules take to
#: compile (a candidate alone: +20 ms in a box), and pay where there are many (pytest and
#: pygments: 0.35 s instead of 0.5 s).
PARALLEL_FROM = 64


def holds_modules(folder: str, enough: int) -> bool:
    """Whether ``folder`` holds at least ``enough`` ``.py`` files (counting stops there; links
    to folders are not followed)."""
    found = 0
    for _, _, names in os.walk(folder):
        found += sum(name.endswith(".py") for name in names)
        if found >= enough:
            return True
    return False


def main(argv: list[str]) -> int:
    lib, pattern = argv
    workers = 0 if holds_modules(lib, PARALLEL_FROM) else 1
    compileall.compile_dir(lib, rx=re.compile(pattern), quiet=1, workers=workers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
