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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


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
    #: core metadata 2.4 License-Expression, the older free-text License field, and
    #: License-File name -> text (written under the dist-info's licenses/)
    license_expression: str | None = None
    license: str | None = None
    license_files: Mapping[str, str] = field(default_factory=dict)

    @property
    def dist_name(self) -> str:
        return self.name.replace("-", "_")

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")

    def metadata(self) -> str:
        modern = self.license_expression is not None or bool(self.license_files)
        lines = [
            f"Metadata-Version: {'2.4' if modern else '2.1'}",
            f"Name: {self.name}",
            f"Version: {self.version}",
            f"Summary: {self.summary}",
        ]
        if self.requires_python:
            lines.append(f"Requires-Python: {self.requires_python}")
        for classifier in self.classifiers:
            lines.append(f"Classifier: {classifier}")
        if self.license_expression is not None:
            lines.append(f"License-Expression: {self.license_expression}")
        if self.license is not None:
            lines.append("License: " + "\n        ".join(self.license.splitlines()))
        lines += [f"License-File: {name}" for name in self.license_files]
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
    contents: dict[str, bytes] = {path: text.encode() for path, text in project.package_files().items()}
    contents[f"{info}/METADATA"] = project.metadata().encode()
    for name, text in project.license_files.items():
        contents[f"{info}/licenses/{name}"] = text.encode()
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


# A PEP 517 backend small enough to ship inside a test sdist: no build requirements, so
# pip and uv build it offline, for real.
_BACKEND = """
import base64, hashlib, os, zipfile

def _line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (path, digest, len(data))

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = "srconly-1.5.dist-info"
    files = {
        "srconly/__init__.py": b"VALUE = 15\\n",
        info + "/METADATA": b"Metadata-Version: 2.1\\nName: srconly\\nVersion: 1.5\\n",
        info + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\n"
        b"Tag: py3-none-any\\n",
    }
    record = [_line(p, d) for p, d in files.items()] + [info + "/RECORD,,"]
    files[info + "/RECORD"] = ("\\n".join(record) + "\\n").encode()
    name = "srconly-1.5-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for p, d in files.items():
            zf.writestr(p, d)
    return name
"""
_PYPROJECT = '[build-system]\nrequires = []\nbuild-backend = "tinybackend"\nbackend-path = ["."]\n'


def backend_from_sdist(name: str, version: str, *, header: str = "", before: str = "") -> str:
    """A PEP 517 backend (``build_wheel`` only, no build requirements) whose wheel holds the
    sdist's ``<name>/__init__.py`` with PKG-INFO as its METADATA; ``before`` runs first in
    ``build_wheel`` (indented by this function), ``header`` at the top of the module. For
    hostile builds: what a backend does before it builds is what the tests watch."""
    body = "".join(f"    {line}\n" for line in before.splitlines())
    info = f"{name}-{version}.dist-info"
    return f"""import base64, hashlib, os, zipfile
{header}

def _line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (path, digest, len(data))

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
{body}    info = "{info}"
    files = {{
        "{name}/__init__.py": open("{name}/__init__.py", "rb").read(),
        info + "/METADATA": open("PKG-INFO", "rb").read(),
        info + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }}
    record = [_line(p, d) for p, d in files.items()] + [info + "/RECORD,,"]
    files[info + "/RECORD"] = ("\\n".join(record) + "\\n").encode()
    name = "{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for p, d in files.items():
            zf.writestr(p, d)
    return name
"""


def failing_build(name: str, version: str, files: Mapping[str, str] | None = None) -> FakeProject:
    """An sdist-only project whose build fails (wheel or editable) with the build's own
    error line: ``RuntimeError: <name> does not build here``."""
    fail = f"    raise RuntimeError('{name} does not build here')\n"
    return FakeProject(
        name,
        version,
        files=files or {},
        sdist_files={
            "pyproject.toml": _PYPROJECT,
            "tinybackend.py": f"def build_wheel(*args, **kwargs):\n{fail}\n"
            f"def build_editable(*args, **kwargs):\n{fail}",
        },
    )


#: An sdist-only project whose build fails, with the build's own error line.
FAILING_BUILD = failing_build("failbuild", "1.0")


def build_local_index(dest: Path) -> Path:
    """A find-links folder: dep 1.0/2.0, cand (dep>=2), oldcand (dep<2), broken (missing dep),
    an sdist that builds and one that does not."""
    build_wheel(FakeProject("dep", "1.0"), dest)
    build_wheel(FakeProject("dep", "2.0", files={"dep/__init__.py": "VERSION = 2\n"}), dest)
    build_wheel(FakeProject("cand", "1.0", requires=["dep>=2"]), dest)
    build_wheel(FakeProject("oldcand", "1.0", requires=["dep<2"]), dest)
    build_wheel(FakeProject("broken", "1.0", requires=["missingdep>=1"]), dest)
    sdist_files = {"pyproject.toml": _PYPROJECT, "tinybackend.py": _BACKEND}
    build_sdist(FakeProject("srconly", "1.5", sdist_files=sdist_files), dest)
    build_sdist(FAILING_BUILD, dest)
    return dest


def editable_dist_info(name: str, version: str, project_dir: Path, site: Path) -> Path:
    """Write into ``site`` the metadata ``pip install -e project_dir`` leaves there: the
    project's ``.dist-info`` with a ``direct_url.json`` naming the folder as editable.

    For a project whose build no longer works (it was installed while it did), which no
    installer can put there now."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("pip\n")
    url = project_dir.resolve().as_uri()
    (info / "direct_url.json").write_text(f'{{"url": "{url}", "dir_info": {{"editable": true}}}}')
    (info / "RECORD").write_text(
        f"{info.name}/METADATA,,\n{info.name}/direct_url.json,,\n{info.name}/RECORD,,\n"
    )
    return info


# A PEP 660 backend for a project folder: its editable wheel is a .pth file naming the folder.
_EDITABLE_BACKEND = """
import base64, hashlib, os, zipfile

NAME, VERSION = {name!r}, {version!r}

def _line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (path, digest, len(data))

def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    info = "%s-%s.dist-info" % (NAME, VERSION)
    files = {{
        NAME + ".pth": (os.path.abspath(".") + "\\n").encode(),
        info + "/METADATA": ("Metadata-Version: 2.1\\nName: %s\\nVersion: %s\\n" % (NAME, VERSION)).encode(),
        info + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }}
    record = [_line(p, d) for p, d in files.items()] + [info + "/RECORD,,"]
    files[info + "/RECORD"] = ("\\n".join(record) + "\\n").encode()
    wheel = "%s-%s-py3-none-any.whl" % (NAME, VERSION)
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as zf:
        for p, d in files.items():
            zf.writestr(p, d)
    return wheel

build_wheel = build_editable
"""


def editable_project_files(name: str, version: str, build_requires: Sequence[str] = ()) -> dict[str, str]:
    """``pyproject.toml`` and an in-tree backend that installs the folder editable (a .pth
    file), needing ``build_requires`` from the index to build."""
    requires = ", ".join(f'"{req}"' for req in build_requires)
    return {
        "pyproject.toml": f'[build-system]\nrequires = [{requires}]\nbuild-backend = "tinybackend"\n'
        f'backend-path = ["."]\n\n[project]\nname = "{name}"\nversion = "{version}"\n',
        "tinybackend.py": _EDITABLE_BACKEND.format(name=name, version=version),
    }


# Runs at every start-up of an environment's interpreter that has it installed (the site
# module processes .pth files before any script runs): rewrites importlib.metadata and
# prints a forged inspection at exit.
_PTH_FORGE = """
import atexit, json, sys
import importlib.metadata as _im

_read = _im.PathDistribution.read_text
_FORGED = {forged!r}
_NAME = {name!r}

def _read_text(self, filename):
    text = _read(self, filename)
    if text and filename in ("METADATA", "PKG-INFO"):
        head, _, _ = text.partition("\\n\\n")
        head = "\\n".join(x for x in head.splitlines() if not x.startswith("Requires-Dist:"))
        if "Name: " + _NAME in head:
            return head + "\\n\\n" + _FORGED
        return head + "\\n"
    return text

_im.PathDistribution.read_text = _read_text

def _forged_inspection():
    try:
        asked = json.loads(sys.argv[1])
    except Exception:
        return
    if isinstance(asked, dict) and "name" in asked:
        dist = {{"name": _NAME, "version": "1.0", "requires": [], "size": 1, "uv_built": False}}
        print(json.dumps({{"installed": True, "name": _NAME, "version": "1.0", "requires": [],
                          "modules": [_NAME], "dists": [dist], "env": {{}}}}))

atexit.register(_forged_inspection)
"""

#: What a .pth forger (:func:`pth_forger`) says its README is: two runnable blocks.
FORGED_README = "# forged\n\n```python\nprint('forged 1')\n```\n\n```python\nprint('forged 2')\n```\n"


def pth_forger(name: str, requires: Sequence[str], readme: str) -> FakeProject:
    """A project whose wheel installs a ``.pth`` file that hides every ``Requires-Dist`` from
    ``importlib.metadata``, swaps its README for :data:`FORGED_README`, and prints a forged
    inspection line (no dependency) when an interpreter there exits."""
    forge = f"_{name}_forge"
    return FakeProject(
        name,
        "1.0",
        requires=requires,
        files={
            f"{name}/__init__.py": "VALUE = 42\n",
            f"{forge}.py": _PTH_FORGE.format(forged=FORGED_README, name=name),
            f"{name}_forge.pth": f"import {forge}\n",
        },
        readme=readme,
    )
