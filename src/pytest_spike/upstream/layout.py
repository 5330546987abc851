"""Read an unpacked sdist: where its tests are, how upstream configures pytest, what harness
the tests need, and copy the tests (never the package source) into a work folder.

Everything here reads files only; nothing from the sdist is imported or executed.
"""

from __future__ import annotations

import configparser
import email.parser
import fnmatch
import re
import shlex
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pytest_spike._core import reqfiles

TEST_DIR_NAMES = ("tests", "test", "testing")
DEFAULT_PYTHON_FILES = ("test_*.py", "*_test.py")
#: Upstream ini keys that would break or redirect the sample run; every other key is kept,
#: plugins' own keys too (anyio's ``anyio_mode = "auto"`` decides whether its async tests run).
#: ``pythonpath`` is kept, rewritten to point into the copied folder.
DROPPED_INI_KEYS = frozenset(
    {
        "addopts",
        "testpaths",
        "pythonpath",
        "cache_dir",
        "minversion",
        "required_plugins",
        "strict",
        "strict_config",
        "strict_markers",
        "strict_parametrization_ids",
        "console_output_style",
        "log_file",
        "log_file_level",
        "log_file_format",
        "log_file_date_format",
    }
)
_DROPPED_INI_PREFIXES = ("junit_",)
#: ``-p no:NAME`` that upstream may set and the sample run cannot do without.
NEEDED_PLUGINS = frozenset({"junitxml", "terminal", "python", "main", "runner", "fixtures", "skipping"})
#: Config files the tests or their plugins may read from the working folder (sqlalchemy's
#: plugin reads the ``[db]`` section of ``setup.cfg``); copied beside the tests.
CONFIG_FILES = ("setup.cfg", "pyproject.toml", "tox.ini", "pytest.ini", ".pytest.ini")
HARNESS_NAMES = ("test", "tests", "testing")
#: Copied test folders whose first part is one of the candidate's modules move under this
#: folder: ``regex/tests`` run as ``regex/tests`` makes pytest's importlib mode register the
#: copied ``regex/`` folder as the module ``regex``, shadowing the installed package.
IN_PACKAGE = "_in_package"
_SKIP_DIRS = {"docs", "doc", "build", "dist", "node_modules", "venv", "site-packages", "__pycache__"}
#: Folders whose tests belong to example or demo projects, not to the package (flask's
#: ``examples/*/tests`` import the example apps): never sampled, but copied when imported.
_EXAMPLE_DIRS = {"examples", "example", "demo", "demos", "benchmarks", "benchmark"}
_MAX_DEPTH = 3  # root/tests, root/pkg/tests, root/src/pkg/tests
#: Caps on what is copied beside the tests (sibling folders, data, config).
MAX_SUPPORT_BYTES = 50 * 1024 * 1024
MAX_SUPPORT_FILES = 5000


@dataclass(frozen=True)
class PytestConfig:
    """The parts of upstream's pytest configuration the sample run keeps."""

    source: str = ""
    ini: Mapping[str, Any] = field(default_factory=dict)
    markexpr: str | None = None
    plugins: tuple[str, ...] = ()
    testpaths: tuple[str, ...] = ()
    pythonpath: tuple[str, ...] = ()

    @property
    def python_files(self) -> tuple[str, ...]:
        value = self.ini.get("python_files")
        if not value:
            return DEFAULT_PYTHON_FILES
        return tuple(_as_list(value, split_words=True))


@dataclass(frozen=True)
class TestLayout:
    """Where an unpacked sdist keeps its tests, relative to ``root``."""

    __test__ = False  # not a pytest test class despite the name

    root: Path
    test_dirs: tuple[str, ...]
    test_files: tuple[str, ...]
    conftest: bool
    config: PytestConfig
    notes: tuple[str, ...] = ()
    #: The candidate's top-level module names (test folders under one of them move, see
    #: ``IN_PACKAGE``; folders holding one are never copied).
    packages: tuple[str, ...] = ()
    #: What the tests need beside them, copied but never collected: config files, conftests
    #: up the tree, sibling folders they import or name, folders on upstream's pythonpath.
    support: tuple[str, ...] = ()
    #: Support folders the tests import: the copied folder goes on ``sys.path``.
    imported: tuple[str, ...] = ()

    @property
    def has_tests(self) -> bool:
        return bool(self.test_dirs or self.test_files)

    @property
    def paths(self) -> list[str]:
        """What to hand pytest, relative to the copied folder."""
        return [self.copied_as(p) for p in (*self.test_dirs, *self.test_files)]

    def copied_as(self, rel: str) -> str:
        """Where ``rel`` (relative to the sdist root) lands in the copied folder."""
        if rel.split("/")[0] in self.packages:
            return f"{IN_PACKAGE}/{rel}"
        return rel


@dataclass(frozen=True)
class Harness:
    """Requirements the upstream tests need beyond the package, and where they came from."""

    requirements: tuple[str, ...]
    source: str
    #: Everything any test-ish source declares (other extras, groups, requirement files):
    #: where a test needs a module the chosen source lacks (urllib3's conftest imports
    #: ``trustme``, named in its ``dev`` group only), the requirement is taken from here,
    #: never guessed from the module's name.
    declared: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"requirements": list(self.requirements), "source": self.source}

    def providing(self, modules: Iterable[str]) -> list[str]:
        """Declared requirements, not already in ``requirements``, that provide ``modules``
        (matched by name: ``pytest_mock`` is ``pytest-mock``; unmatched modules are left)."""
        chosen = {_req_name(r) for r in self.requirements}
        wanted = {canonicalize_name(m.split(".")[0]) for m in modules}
        found: dict[str, str] = {}
        for req in self.declared:  # the first set that names it wins (urllib3 pins it twice)
            if _req_name(req) in wanted - chosen:
                found.setdefault(_req_name(req), req)
        return list(found.values())


def _req_name(requirement: str) -> str:
    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        return ""


def find_tests(src_root: str | Path, package_modules: Sequence[str] = ()) -> TestLayout:
    """Find the test folders (``tests/``, ``test/``, ``testing/``, ``pkg/tests``), root test
    files, the root ``conftest.py`` and upstream's pytest configuration under ``src_root``."""
    root = Path(src_root)
    notes: list[str] = []
    config = read_pytest_config(root, notes)
    patterns = config.python_files
    packages = {m.split(".")[0] for m in package_modules} | {"src"}
    found: list[str] = []
    for rel in config.testpaths:
        path = root / rel
        if path.is_dir() and path.name not in packages and _has_tests(path, patterns):
            found.append(path.relative_to(root).as_posix())
    for path in _walk_dirs(root):
        if path.name in TEST_DIR_NAMES and _has_tests(path, patterns) and not _helpers(path):
            found.append(path.relative_to(root).as_posix())
    test_dirs = _outermost(found)
    test_files = sorted(
        p.name
        for p in root.iterdir()
        if p.is_file() and p.name != "conftest.py" and _matches(p.name, patterns)
    )
    tops = tuple(sorted(packages - {"src"}))
    support, imported = find_support(root, test_dirs, test_files, config, tops, notes)
    return TestLayout(
        root=root,
        test_dirs=tuple(test_dirs),
        test_files=tuple(test_files),
        conftest=(root / "conftest.py").is_file(),
        config=config,
        notes=tuple(notes),
        packages=tops,
        support=support,
        imported=imported,
    )


def _helpers(path: Path) -> bool:
    """A ``testing`` subpackage of a package (``sqlalchemy.testing``): the package's test
    helpers, part of its source, not a test suite."""
    return (
        path.name == "testing"
        and (path / "__init__.py").is_file()
        and (path.parent / "__init__.py").is_file()
    )


def _walk_dirs(root: Path, depth: int = 1) -> Iterable[Path]:
    if depth > _MAX_DEPTH:
        return
    for path in sorted(root.iterdir()):
        if not path.is_dir() or path.is_symlink():
            continue
        if path.name.startswith(".") or path.name in _SKIP_DIRS or path.name in _EXAMPLE_DIRS:
            continue
        yield path
        if path.name not in TEST_DIR_NAMES:
            yield from _walk_dirs(path, depth + 1)


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


def _has_tests(folder: Path, patterns: Sequence[str]) -> bool:
    return any(_matches(p.name, patterns) for p in folder.rglob("*.py"))


def _outermost(paths: Iterable[str]) -> list[str]:
    kept: list[str] = []
    for path in sorted(set(paths), key=lambda p: (p.count("/"), p)):
        if not any(path == k or path.startswith(k + "/") for k in kept):
            kept.append(path)
    return kept


def copy_tests(layout: TestLayout, dest: str | Path) -> list[str]:
    """Copy the test folders, root test files, root conftest and the support files into
    ``dest``; return what to pass pytest. Links are copied as links, so one pointing at the
    package source dangles instead of bringing the source along."""
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
    for rel in (*layout.support, *layout.test_dirs):
        source, target = layout.root / rel, out / layout.copied_as(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True, ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target, follow_symlinks=False)
    for rel in [*layout.test_files, *(["conftest.py"] if layout.conftest else [])]:
        shutil.copy2(layout.root / rel, out / rel, follow_symlinks=False)
    return layout.paths


# -- what the tests need beside them ----------------------------------------------------------

_IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)
_QUOTED = re.compile(r"""['"/\\]([A-Za-z0-9_][A-Za-z0-9_.-]*)(?=['"/\\])""")


def find_support(
    root: Path,
    test_dirs: Sequence[str],
    test_files: Sequence[str],
    config: PytestConfig,
    packages: Sequence[str],
    notes: list[str],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What the tests read or import from outside their folders, and of that, what they
    import (those folders go on ``sys.path``).

    Config files at the root; ``conftest.py`` files between the root and each test folder;
    the root's folders and files the tests import (pyparsing's ``examples``, urllib3's
    ``dummyserver``) or name in a string (psutil's ``'scripts'``); folders on upstream's
    ``pythonpath`` (filelock's ``tasks``). Never a folder that holds the package itself (a
    ``src/`` or ``lib/`` layout), so ``import pkg`` still resolves to the installed copy.
    """
    if not test_dirs and not test_files:
        return (), ()
    support = [*_config_files(root), *_conftests_above(root, test_dirs)]
    refs = _test_references(root, test_dirs, test_files, config)
    taken = {rel.split("/")[0] for rel in test_dirs} | set(test_files) | set(support)
    imported: list[str] = []
    budget = [MAX_SUPPORT_BYTES, MAX_SUPPORT_FILES]
    for path in sorted(root.iterdir()):
        if path.name in taken or not _is_wanted_sibling(path, refs, packages):
            continue
        if not _within_budget(path, budget):
            notes.append(f"{path.name}: not copied beside the tests (over the size cap)")
            continue
        support.append(path.name)
        if _is_imported_module(path, refs):
            imported.append(path.name)
    return tuple(dict.fromkeys(support)), tuple(imported)


#: Root entries never copied beside the tests: package source, build output, packaging files.
_NEVER_SUPPORT = frozenset({"src", "lib", "build", "dist", "setup.py", "conftest.py", "PKG-INFO"})


@dataclass(frozen=True)
class _TestReferences:
    """How the tests refer to the root's entries: by import, by a path in a string, or by
    upstream's ``pythonpath``."""

    imports: frozenset[str]
    named: frozenset[str]
    on_path: frozenset[str]


def _config_files(root: Path) -> list[str]:
    return [name for name in CONFIG_FILES if (root / name).is_file()]


def _conftests_above(root: Path, test_dirs: Sequence[str]) -> list[str]:
    """``conftest.py`` files between the root and each test folder (not the root's own)."""
    found: list[str] = []
    for rel in test_dirs:
        parts = rel.split("/")
        found += [
            f"{'/'.join(parts[:i])}/conftest.py"
            for i in range(1, len(parts))
            if (root.joinpath(*parts[:i]) / "conftest.py").is_file()
        ]
    return found


def _test_references(
    root: Path, test_dirs: Sequence[str], test_files: Sequence[str], config: PytestConfig
) -> _TestReferences:
    text = "\n".join(_read_tests(root, test_dirs, test_files))
    entries = {p.name for p in root.iterdir()}
    return _TestReferences(
        imports=frozenset(_IMPORT.findall(text)),
        named=frozenset(n for n in set(_QUOTED.findall(text)) & entries if _named_as_path(n, text)),
        on_path=frozenset(p.strip("./") for p in config.pythonpath if p.strip("./")),
    )


def _module_name(path: Path) -> str:
    """The name ``import`` would use for a root entry (``helpers.py`` is ``helpers``)."""
    name = path.name
    return name[:-3] if path.is_file() and name.endswith(".py") else name


def _is_wanted_sibling(path: Path, refs: _TestReferences, packages: Sequence[str]) -> bool:
    """A root entry the tests refer to that is neither hidden, a link, package source nor
    build output."""
    name, module = path.name, _module_name(path)
    if name.startswith(".") or path.is_symlink() or module in packages or name in _NEVER_SUPPORT:
        return False
    if module not in refs.imports and name not in refs.named and name not in refs.on_path:
        return False
    return not (path.is_dir() and _holds_package(path, packages))


def _is_imported_module(path: Path, refs: _TestReferences) -> bool:
    """An entry the tests import (a folder or a ``.py`` file): it goes on ``sys.path``."""
    return _module_name(path) in refs.imports and (path.is_dir() or path.name.endswith(".py"))


def _named_as_path(name: str, text: str) -> bool:
    """``name`` appears as a path: ``join(ROOT, "name")``, ``ROOT / "name"``,
    ``Path("name")`` or ``"name/..."`` (not any word in any string)."""
    quoted = rf"""['"]{re.escape(name)}['"/\\]"""
    return bool(re.search(rf"(?:join\([^)\n]*|/\s*|Path\(\s*){quoted}|['\"]{re.escape(name)}/", text))


def _read_tests(root: Path, test_dirs: Sequence[str], test_files: Sequence[str]) -> Iterable[str]:
    files = [root / f for f in test_files] + [root / "conftest.py"]
    for rel in test_dirs:
        files += sorted((root / rel).rglob("*.py"))
    for path in files[:2000]:
        if path.is_file() and not path.is_symlink():
            yield path.read_text(encoding="utf-8", errors="replace")


def _holds_package(folder: Path, packages: Sequence[str]) -> bool:
    """True when ``folder`` holds one of the candidate's modules within two levels."""
    for pkg in packages:
        for pattern in (pkg, f"{pkg}.py", f"*/{pkg}", f"*/{pkg}.py"):
            if any(folder.glob(pattern)):
                return True
    return False


def _within_budget(path: Path, budget: list[int]) -> bool:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files if not p.is_symlink())
    if size > budget[0] or len(files) > budget[1]:
        return False
    budget[0] -= size
    budget[1] -= len(files)
    return True


# -- upstream pytest configuration ---------------------------------------------------------


def read_pytest_config(root: Path, notes: list[str] | None = None) -> PytestConfig:
    """Upstream's pytest settings, found the way pytest looks for them (first match wins)."""
    notes = notes if notes is not None else []
    for name, section in (("pytest.ini", "pytest"), (".pytest.ini", "pytest")):
        if (root / name).is_file():
            return _config(f"{name} [{section}]", _ini_section(root / name, section, notes) or {})
    if (root / "pyproject.toml").is_file():
        data = load_toml(root / "pyproject.toml", notes)
        tool = data.get("tool", {}).get("pytest", {})
        if isinstance(tool, dict) and isinstance(tool.get("ini_options"), dict):
            return _config("pyproject.toml [tool.pytest.ini_options]", tool["ini_options"])
        if isinstance(tool, dict) and tool:
            return _config("pyproject.toml [tool.pytest]", tool)
    for name, section in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        values = _ini_section(root / name, section, notes) if (root / name).is_file() else None
        if values is not None:
            return _config(f"{name} [{section}]", values)
    return PytestConfig()


def _ini_section(path: Path, section: str, notes: list[str]) -> dict[str, str] | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(path.read_text(encoding="utf-8", errors="replace"))
    except configparser.Error as exc:
        notes.append(f"{path.name}: unreadable ({str(exc).splitlines()[0]})")
        return None
    return dict(parser[section]) if parser.has_section(section) else None


def _as_list(value: Any, split_words: bool = False) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    text = str(value)
    return text.split() if split_words else [ln.strip() for ln in text.splitlines() if ln.strip()]


def _config(source: str, values: Mapping[str, Any]) -> PytestConfig:
    addopts = values.get("addopts", "")
    args = list(addopts) if isinstance(addopts, list) else shlex.split(str(addopts), comments=True)
    markexpr, plugins = _kept_options(args)
    return PytestConfig(
        source=source,
        ini={k: v for k, v in values.items() if _kept_ini(k, v)},
        markexpr=markexpr,
        plugins=tuple(plugins),
        testpaths=tuple(_as_list(values.get("testpaths", ""), split_words=True)),
        pythonpath=tuple(_as_list(values.get("pythonpath", ""), split_words=True)),
    )


def _kept_ini(key: str, value: Any) -> bool:
    if key in DROPPED_INI_KEYS or key.startswith(_DROPPED_INI_PREFIXES):
        return False
    scalar = (str, int, float, bool)
    return isinstance(value, scalar) or (
        isinstance(value, (list, tuple)) and all(isinstance(v, scalar) for v in value)
    )


def _kept_options(args: Sequence[str]) -> tuple[str | None, list[str]]:
    """Upstream's ``-m`` expression and ``-p`` plugins: they decide what is meant to run."""
    markexpr: str | None = None
    plugins: list[str] = []
    i = 0
    while i < len(args):
        arg, value = args[i], None
        if arg in ("-m", "-p") and i + 1 < len(args):
            value, i = args[i + 1], i + 1
        elif arg[:2] in ("-m", "-p") and len(arg) > 2 and not arg.startswith("--"):
            value = arg[2:]
        value = value.strip() if value is not None else None
        if value and arg.startswith("-m"):
            markexpr = value
        elif value and value.removeprefix("no:") not in NEEDED_PLUGINS:
            plugins.append(value)  # psutil's "-p no:junitxml" would leave us no results
        i += 1
    return markexpr, plugins


# -- harness requirements -----------------------------------------------------------------

_EXTRA = re.compile(r"""extra\s*==\s*(['"])(?P<name>[^'"]+)\1""")


def harness_requirements(src_root: str | Path, dist_name: str) -> Harness:
    """The upstream test requirements, from the first source that has any: a test extra, a
    dependency group, a Poetry group, a test requirements file, ``requirements-dev.txt``.
    The package itself is left out (its extras are expanded instead), so installing the
    harness never replaces the version under test."""
    root = Path(src_root)
    notes: list[str] = []
    pyproject = load_toml(root / "pyproject.toml", notes) if (root / "pyproject.toml").is_file() else {}
    extras = _declared_extras(root, pyproject)
    groups = _dependency_groups(pyproject)
    expand = _Expander(canonicalize_name(dist_name), extras, groups)
    candidates = [
        *_extra_and_group_sources(expand, _poetry_groups(pyproject)),
        *_requirement_file_sources(root, expand),
        *_declared_test_sources(expand, extras, groups),
    ]
    cleaned = [(source, _without_dev_tools(source, reqs)) for source, reqs in candidates]
    return _first_harness(cleaned)


_Source = tuple[str, list[str]]


def _declared_extras(root: Path, pyproject: Mapping[str, Any]) -> dict[str, list[str]]:
    """Extras from PKG-INFO, then those only ``[project.optional-dependencies]`` declares."""
    extras = _pkg_info_extras(root / "PKG-INFO")
    project = pyproject.get("project", {})
    for name, reqs in (project.get("optional-dependencies") or {}).items():
        extras.setdefault(canonicalize_name(name), [str(r) for r in reqs])
    return extras


def _dependency_groups(pyproject: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {canonicalize_name(k): v for k, v in (pyproject.get("dependency-groups") or {}).items()}


def _poetry_groups(pyproject: Mapping[str, Any]) -> dict[str, list[str]]:
    """Poetry's groups, plus its old ``dev-dependencies`` table as the group ``dev``."""
    poetry = pyproject.get("tool", {}).get("poetry", {})
    groups: dict[str, list[str]] = {
        canonicalize_name(k): _poetry_reqs((v or {}).get("dependencies") or {})
        for k, v in (poetry.get("group") or {}).items()
    }
    if poetry.get("dev-dependencies"):
        groups.setdefault("dev", _poetry_reqs(poetry["dev-dependencies"]))
    return groups


def _extra_and_group_sources(expand: _Expander, poetry_groups: Mapping[str, list[str]]) -> list[_Source]:
    """Test extras, then test (or dev) dependency groups, then Poetry groups, in that order."""
    sources: list[_Source] = [(f"extra '{name}'", expand.extra(name)) for name in HARNESS_NAMES]
    sources += [
        (f"dependency group '{name}' in pyproject.toml", expand.group(name))
        for name in (*HARNESS_NAMES, "dev")
    ]
    sources += [
        (f"Poetry group '{name}' (version constraints dropped)", poetry_groups.get(name, []))
        for name in (*HARNESS_NAMES, "dev")
    ]
    return sources


def _requirement_files(root: Path) -> list[Path]:
    """Requirement files that may hold the test harness, most specific first."""
    files = sorted(p for p in root.glob("requirements*.txt") if "test" in p.name.lower())
    files += sorted(root.glob("test*requirements*.txt"))  # test_requirements.txt (numpy 1.x)
    files += sorted(root.glob("requirements/test*.txt"))
    files += [root / d / "requirements.txt" for d in TEST_DIR_NAMES]
    files += [root / "requirements-dev.txt", root / "requirements" / "dev.txt"]
    files += [root / "dev-requirements.txt", root / "requirements.txt"]  # last resorts
    return [path for path in files if path.is_file()]


def _requirement_file_sources(root: Path, expand: _Expander) -> list[_Source]:
    return [
        (path.relative_to(root).as_posix(), _requirements_file(path, root, expand, set()))
        for path in _requirement_files(root)
    ]


def _declared_test_sources(
    expand: _Expander, extras: Mapping[str, list[str]], groups: Mapping[str, list[Any]]
) -> list[_Source]:
    """Every other extra or group whose name starts with ``test`` or ``dev``: never chosen,
    only recorded as declared (see ``Harness.declared``)."""
    return [
        (f"'{name}' (declared)", expand.extra(name) if name in extras else expand.group(name))
        for name in sorted(set(extras) | set(groups))
        if name.startswith(("test", "dev"))
    ]


def _without_dev_tools(source: str, reqs: list[str]) -> list[str]:
    """A "dev" set also holds the docs, lint and release tools: the tests need none."""
    if "dev" not in source.lower():
        return reqs
    return [r for r in reqs if not _NOT_FOR_TESTS.match(r.strip())]


def _first_harness(sources: Sequence[_Source]) -> Harness:
    """The first source with requirements that may be chosen (not a declared-only set, not a
    bare ``requirements.txt``); every source's requirements count as declared."""
    declared = tuple(dict.fromkeys(r for _, reqs in sources for r in reqs))
    for source, reqs in sources:
        if reqs and not source.endswith("(declared)") and not source == "requirements.txt":
            return Harness(tuple(dict.fromkeys(reqs)), source, declared)
    return Harness((), "none", declared)


#: Projects found in "dev" requirement sets that running tests never needs.
_NOT_FOR_TESTS = re.compile(
    r"(?i)(sphinx[\w-]*|furo|mkdocs[\w-]*|myst[\w-]*|pre-commit|mypy|types-[\w-]+|ruff|black|"
    r"flake8[\w-]*|pylint|isort|twine|build|towncrier|bump2version|commitizen|ipython|jupyter[\w-]*)"
    r"(?![\w.-])"
)


class _Expander:
    """Resolves self-references (``pkg[tests]``) and ``include-group`` into plain requirements."""

    def __init__(self, dist: str, extras: dict[str, list[str]], groups: dict[str, list[Any]]) -> None:
        self.dist, self.extras, self.groups = dist, extras, groups

    def extra(self, name: str, seen: set[tuple[str, str]] | None = None) -> list[str]:
        return self._expand("extra", name, set() if seen is None else seen)

    def group(self, name: str) -> list[str]:
        return self._expand("group", name, set())

    def _expand(self, kind: str, name: str, seen: set[tuple[str, str]]) -> list[str]:
        key = canonicalize_name(name)
        if (kind, key) in seen:  # extras and groups may include each other in a cycle
            return []
        seen.add((kind, key))
        out: list[str] = []
        for entry in (self.extras if kind == "extra" else self.groups).get(key, []):
            if isinstance(entry, dict) and "include-group" in entry:
                out += self._expand("group", str(entry["include-group"]), seen)
            elif isinstance(entry, str):
                out += self.lines([entry], seen)
        return out

    def lines(self, lines: Iterable[str], seen: set[tuple[str, str]]) -> list[str]:
        out: list[str] = []
        for line in lines:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if canonicalize_name(req.name) == self.dist:
                for extra in sorted(req.extras):
                    out += self.extra(extra, seen)
            else:
                out.append(str(req))
        return out


def _pkg_info_extras(path: Path) -> dict[str, list[str]]:
    """``Requires-Dist`` lines of PKG-INFO grouped by extra, with the extra clause removed."""
    if not path.is_file():
        return {}
    meta = email.parser.Parser().parsestr(path.read_text(encoding="utf-8", errors="replace"))
    extras: dict[str, list[str]] = {}
    for line in meta.get_all("Requires-Dist") or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        match = _EXTRA.search(str(req.marker or ""))
        if not match:
            continue
        marker = str(req.marker)
        rest = (marker[: match.start()] + marker[match.end() :]).strip()
        rest = re.sub(r"^(and|or)\s+|\s+(and|or)$", "", rest).strip()
        try:
            req.marker = Marker(rest) if rest and rest != "()" else None
        except InvalidMarker:
            req.marker = None
        extras.setdefault(canonicalize_name(match.group("name")), []).append(str(req))
    return extras


def _poetry_reqs(table: Mapping[str, Any]) -> list[str]:
    out = []
    for name, spec in table.items():
        if name.lower() == "python":
            continue
        extras = spec.get("extras") if isinstance(spec, dict) else None
        out.append(f"{name}[{','.join(extras)}]" if extras else name)
    return out


def _requirements_file(path: Path, root: Path, expand: _Expander, seen: set[Path]) -> list[str]:
    """Requirements in a pip requirements file; ``-r`` is followed inside the sdist only."""
    if path in seen or len(seen) > 20:
        return []
    seen.add(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    out: list[str] = []
    for _, line in reqfiles.logical_lines(text):
        included = reqfiles.include(line)
        if included is not None:
            kind, name = included
            target = (path.parent / name).resolve()
            # constraints limit versions, they add no requirement: not followed
            if kind == "-r" and target.is_file() and root.resolve() in target.parents:
                out += _requirements_file(target, root, expand, seen)
            continue
        line = re.sub(r"^(-e|--editable)\s+", "", line)
        self_ref = re.match(r"^\.(\[(?P<extras>[^\]]*)\])?$", line)
        if self_ref:
            for extra in (self_ref.group("extras") or "").split(","):
                out += expand.extra(extra.strip()) if extra.strip() else []
        elif not line.startswith("-"):
            out += expand.lines([line], set())
    return out


# -- TOML -----------------------------------------------------------------------------------


def load_toml(path: Path, notes: list[str]) -> dict[str, Any]:
    """Parse a TOML file; an invalid one is empty, and ``notes`` says why."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - a dependency on Python < 3.11
        import tomli as tomllib

    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        return dict(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        notes.append(f"{path.name}: invalid TOML ({exc}); its settings were ignored")
        return {}
