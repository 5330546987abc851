"""Build tiny real packages for tests: wheels, sdists, and installed trees.

The archives are made here, byte for byte, so tests need no build backend and no network.
Everything pytest-spike does to them (install, inspect, import, extract) is real.
"""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence


@dataclass
class FakeProject:
    """A project to build: ``files`` maps paths inside the package root to their text."""

    name: str
    version: str = "1.0"
    files: Mapping[str, str] = field(default_factory=dict)
    requires: Sequence[str] = ()
    requires_python: str | None = None
    summary: str = "A test package"
    readme: str | None = None
    readme_type: str = "text/markdown"
    extras: Mapping[str, Sequence[str]] = field(default_factory=dict)
    classifiers: Sequence[str] = ()
    #: extra files only in the sdist (tests/, pyproject.toml, ...), relative to its root
    sdist_files: Mapping[str, str] = field(default_factory=dict)

    @property
    def dist_name(self) -> str:
        return self.name.replace("-", "_")

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")

    def metadata(self) -> str:
        lines = [
            "Metadata-Version: 2.1",
            f"Name: {self.name}",
            f"Version: {self.version}",
            f"Summary: {self.summary}",
        ]
        if self.requires_python:
            lines.append(f"Requires-Python: {self.requires_python}")
        for classifier in self.classifiers:
            lines.append(f"Classifier: {classifier}")
        lines += [f"Requires-Dist: {req}" for req in self.requires]
        for extra, reqs in self.extras.items():
            lines.append(f"Provides-Extra: {extra}")
            lines += [f'Requires-Dist: {req} ; extra == "{extra}"' for req in reqs]
        if self.readme is not None:
            lines.append(f"Description-Content-Type: {self.readme_type}")
            return "\n".join(lines) + "\n\n" + self.readme
        return "\n".join(lines) + "\n"

    def package_files(self) -> dict[str, str]:
        files = dict(self.files) or {f"{self.module}/__init__.py": ""}
        return {path: textwrap.dedent(text) for path, text in files.items()}


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(project: FakeProject, dest: Path) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` into ``dest`` and return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    info = f"{project.dist_name}-{project.version}.dist-info"
    contents: dict[str, bytes] = {
        path: text.encode() for path, text in project.package_files().items()
    }
    contents[f"{info}/METADATA"] = project.metadata().encode()
    contents[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: pkgfactory\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    top = sorted({path.split("/")[0] for path in project.package_files()})
    contents[f"{info}/top_level.txt"] = ("\n".join(t.removesuffix(".py") for t in top) + "\n").encode()
    record = [_record_line(path, data) for path, data in contents.items()]
    record.append(f"{info}/RECORD,,")
    contents[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = dest / f"{project.dist_name}-{project.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in contents.items():
            zf.writestr(path, data)
    return wheel


def build_sdist(project: FakeProject, dest: Path) -> Path:
    """Write ``<name>-<version>.tar.gz`` (package source plus ``sdist_files``) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    root = f"{project.dist_name}-{project.version}"
    files = dict(project.package_files())
    files["PKG-INFO"] = project.metadata()
    files.setdefault(
        "pyproject.toml",
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{project.name}"\nversion = "{project.version}"\n',
    )
    files.update({path: textwrap.dedent(text) for path, text in project.sdist_files.items()})
    sdist = dest / f"{root}.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        for path, text in sorted(files.items()):
            data = text.encode()
            member = tarfile.TarInfo(f"{root}/{path}")
            member.size = len(data)
            member.mode = 0o644
            tf.addfile(member, io.BytesIO(data))
    return sdist


def pip_install_target(wheels: Sequence[Path], target: Path) -> None:
    """Install wheels into ``target`` with the real pip, offline, without dependencies."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            "--no-compile",
            "--target",
            str(target),
            *map(str, wheels),
        ],
        check=True,
    )
