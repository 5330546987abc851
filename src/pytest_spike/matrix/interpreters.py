"""Find Python interpreters the way users have them: PATH, pyenv, uv-managed.

A version that cannot be found, or one older than pytest-spike supports, comes back with
the reason; the caller turns that into a ``skipped`` cell, never into a pass.

pyenv's shims only answer for the active version (``python3.9`` through a shim fails with
"command not found" while ``$(pyenv root)/versions/3.9.18/bin/python`` exists), so every
candidate path is run once to confirm its version, and the real executable it reports
is what cells use (which also avoids the shim's start-up cost on every call).
"""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pytest_spike._core import runner
from pytest_spike.envs.manager import find_uv

#: The oldest Python pytest-spike runs on; older interpreters are skipped with a reason.
MIN_PYTHON = (3, 9)
_PROBE = "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.executable)"
_PROBE_TIMEOUT = 15.0


@dataclass(frozen=True)
class Interpreter:
    """An interpreter for ``version`` ("3.11"): its ``path``, or the ``reason`` there is none."""

    version: str
    path: str | None
    source: str = ""
    reason: str = ""

    @property
    def found(self) -> bool:
        return self.path is not None


def parse_python(value: str) -> tuple[int, int]:
    """(3, 11) from "3.11"; ValueError for anything else."""
    parts = value.strip().split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{value!r} is not a Python version like 3.11")
    return int(parts[0]), int(parts[1])


def python_option(value: str) -> str:
    """An argparse ``type=`` for ``--python X.Y``: ``banana`` is a usage error, not a cell."""
    import argparse

    try:
        major, minor = parse_python(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return f"{major}.{minor}"


def pyenv_root(env: Mapping[str, str] | None = None) -> Path | None:
    """``$PYENV_ROOT``, else ``~/.pyenv`` when it exists."""
    env = os.environ if env is None else env
    root = env.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    return Path(root) if Path(root, "versions").is_dir() else None


def _patch_key(path: str) -> tuple[int, ...]:
    name = Path(path).parent.parent.name
    return tuple(int(p) if p.isdigit() else -1 for p in name.split("."))


class Finder:
    """Finds and confirms interpreters; each answer is remembered for the finder's life.

    ``search_path`` (default ``$PATH``), ``pyenv`` (default ``pyenv_root()``; ``False`` to
    leave pyenv out) and ``uv`` (default ``find_uv()``; ``False`` to leave uv out) let tests
    and callers say exactly where to look.
    """

    def __init__(
        self,
        *,
        search_path: str | None = None,
        pyenv: Path | bool | None = None,
        uv: str | bool | None = None,
    ) -> None:
        self.search_path = os.environ.get("PATH", "") if search_path is None else search_path
        self.pyenv: Path | None = (
            pyenv_root() if pyenv is None else (Path(pyenv) if isinstance(pyenv, (str, Path)) else None)
        )
        self.uv: str | None = find_uv() if uv is None else (uv if isinstance(uv, str) else None)
        self._known: dict[str, Interpreter] = {}

    def find(self, version: str) -> Interpreter:
        """The interpreter for "X.Y", or one with ``path=None`` and the reason."""
        if version not in self._known:
            self._known[version] = self._find(version)
        return self._known[version]

    def find_all(self, versions: Iterable[str]) -> None:
        """Look up every version not known yet, all at once: each is a process or two (a
        pyenv shim takes 0.1-0.15 s to answer), and a cold matrix of three Pythons waited
        ~0.4 s for them one after another before its first layer could start."""
        todo = [v for v in dict.fromkeys(versions) if v not in self._known]
        if len(todo) < 2:
            for version in todo:
                self.find(version)
            return
        with ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="spike-find-python") as pool:
            self._known.update(zip(todo, pool.map(self._find, todo)))

    def _find(self, version: str) -> Interpreter:
        try:
            wanted = parse_python(version)
        except ValueError as exc:
            return Interpreter(version, None, reason=str(exc))
        if wanted < MIN_PYTHON:
            floor = ".".join(map(str, MIN_PYTHON))
            return Interpreter(
                version, None, reason=f"Python {version} is not supported by pytest-spike ({floor}+)"
            )
        for source, path in self._candidates(version):
            confirmed = _confirm(path, version)
            if confirmed:
                return Interpreter(version, confirmed, source=source)
        places = ["PATH"]
        if self.pyenv is not None:
            places.append(f"pyenv ({self.pyenv / 'versions'})")
        if self.uv is not None:
            places.append("uv python find")
        return Interpreter(
            version,
            None,
            reason=f"no Python {version} interpreter found on {', '.join(places)}",
        )

    def _candidates(self, version: str) -> Iterator[tuple[str, str]]:
        # A generator: asking uv costs about a second, so it is asked only when PATH and
        # pyenv had no confirmed interpreter.
        on_path = shutil.which(f"python{version}", path=self.search_path)
        if on_path:
            yield "PATH", on_path
        if self.pyenv is not None:
            pattern = str(self.pyenv / "versions" / f"{version}.*" / "bin" / "python")
            for path in sorted(glob.glob(pattern), key=_patch_key, reverse=True):
                yield "pyenv", path
        if self.uv is not None:
            done = runner.run(
                [self.uv, "python", "find", version],
                timeout=_PROBE_TIMEOUT,
                extra_env={"UV_PYTHON_DOWNLOADS": "never"},
            )
            if done.ok and done.stdout.strip():
                yield "uv", done.stdout.strip().splitlines()[-1]


def _confirm(path: str, version: str) -> str | None:
    """The real executable behind ``path`` when it runs and is ``version``, else None."""
    if not os.access(path, os.X_OK):
        return None
    done = runner.run([path, "-c", _PROBE], timeout=_PROBE_TIMEOUT)
    lines = done.stdout.split()
    if not done.ok or len(lines) < 2 or lines[0] != version:
        return None
    return lines[1] or path


def sort_pythons(versions: Sequence[str]) -> list[str]:
    """Unique "X.Y" strings in version order (unparsable ones last, as given)."""
    unique = list(dict.fromkeys(versions))

    def key(v: str) -> tuple[int, int, int]:
        try:
            major, minor = parse_python(v)
            return (0, major, minor)
        except ValueError:
            return (1, 0, 0)

    return sorted(unique, key=key)
