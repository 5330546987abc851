"""The child pytest's layer: what a new layer holds, so its first child starts warm."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from pytest_spike.envs import layer

BUILD = (
    "import sys; from pathlib import Path; from pytest_spike.envs import layer; "
    "print(layer.build_layer(Path(sys.argv[1]), boxed=sys.argv[2] == 'boxed'))"
)
IMPORT_FROM = "import sys; sys.path.insert(0, sys.argv[1]); import _pytest.compat"


@pytest.mark.parametrize("prefix", [True, False], ids=["pycache-prefix", "beside-the-source"])
def test_a_new_layer_holds_the_compiled_modules_of_what_it_links(tmp_path: Path, prefix: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    if prefix:
        env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    # the running environment's pytest is compiled where this interpreter keeps bytecode
    subprocess.run([sys.executable, "-c", "import _pytest.compat"], env=env, check=True)
    # children not boxed (--spike-sandbox off) inherit the prefix
    made = subprocess.run(
        [sys.executable, "-c", BUILD, str(tmp_path / "cache"), "unboxed"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    built = Path(made.stdout.strip())
    source = built / "_pytest" / "compat.py"
    assert source.is_file() and not list(built.parent.glob(".*"))  # renamed from its staging folder
    # a child importing pytest from the layer (-S: not from site-packages) compiles nothing
    child = subprocess.run(
        [sys.executable, "-S", "-v", "-c", IMPORT_FROM, str(built)], env=env, capture_output=True, text=True
    )
    loaded = [line for line in child.stderr.splitlines() if "code object from" in line and "compat" in line]
    if not prefix and not (Path(pytest.__file__).parent.parent / "_pytest" / "__pycache__").is_dir():
        pytest.skip("site-packages keeps no bytecode here (read-only)")
    assert loaded and loaded[0].endswith(".pyc'"), loaded
    assert str(built) in loaded[0]
    if prefix:
        # A boxed child has no prefix (the box does not keep the variable): it reads the
        # compiled module beside the source, compiling nothing either.
        env.pop("PYTHONPYCACHEPREFIX")
        child = subprocess.run(
            [sys.executable, "-S", "-v", "-c", IMPORT_FROM, str(built)],
            env=env,
            capture_output=True,
            text=True,
        )
        loaded = [
            line for line in child.stderr.splitlines() if "code object from" in line and "compat" in line
        ]
        assert loaded and loaded[0].endswith(".pyc'") and str(built / "_pytest" / "__pycache__") in loaded[0]
        # A layer only boxed children use puts nothing under the prefix, only beside.
        env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
        made = subprocess.run(
            [sys.executable, "-c", BUILD, str(tmp_path / "boxed-cache"), "boxed"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        boxed = Path(made.stdout.strip())
        assert list(boxed.glob("_pytest/__pycache__/compat.*.pyc"))
        assert not (tmp_path / "pycache" / boxed.relative_to(boxed.anchor)).exists()


def test_a_file_is_placed_over_an_earlier_copy_and_never_linked(tmp_path: Path) -> None:
    """A non-editable pytest-spike's package folder is placed over its RECORD's files; each
    is a copy of its own, never a link: a candidate writing into the layer must not write
    into the running environment."""
    source = tmp_path / "site" / "mod.py"
    source.parent.mkdir()
    source.write_text("VALUE = 1\n")
    target = tmp_path / "layer" / "mod.py"
    target.parent.mkdir()
    for _ in range(2):
        layer._copy_file(source, target)
    assert target.read_text() == "VALUE = 1\n" and not target.samefile(source)
    with target.open("a") as handle:
        handle.write("# a candidate was here\n")
    assert source.read_text() == "VALUE = 1\n"


def test_a_copy_is_a_new_file_even_where_a_link_stood(tmp_path: Path) -> None:
    """A target that is a symbolic or a hard link to a file of the host is replaced, never
    written through; the copy keeps the source's modification time (its compiled module
    stays valid) and its permission bits; a source that is not there raises."""
    source = tmp_path / "site" / "mod.py"
    source.parent.mkdir()
    source.write_text("VALUE = 1\n")
    os.utime(source, ns=(1_000_000_000_123, 1_500_000_000_456_789_000))
    source.chmod(0o640)
    host = tmp_path / "host.txt"
    host.write_text("the host's\n")
    layer_dir = tmp_path / "layer"
    layer_dir.mkdir()
    symlinked, hardlinked = layer_dir / "a.py", layer_dir / "b.py"
    symlinked.symlink_to(host)
    os.link(host, hardlinked)
    for target in (symlinked, hardlinked, layer_dir / "c.py"):
        layer._copy_file(source, target)
        assert not target.is_symlink() and target.read_text() == "VALUE = 1\n"
        assert target.stat().st_mtime_ns == source.stat().st_mtime_ns
        assert stat.S_IMODE(target.stat().st_mode) == 0o640 & ~_umask()
    assert host.read_text() == "the host's\n" and host.stat().st_nlink == 1
    with pytest.raises(FileNotFoundError):
        layer._copy_file(tmp_path / "gone.py", layer_dir / "d.py")


def _umask() -> int:
    """This process's umask, read without setting it (Linux: /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    pytest.skip("no umask to read here")


CHILD = """
import site, sys
site.addsitedir(sys.argv[1])
import pytest
from packaging.specifiers import SpecifierSet
code = pytest.main(["-p", "no:cacheprovider", "-q", "--spike", "--spike-probes=none", "--co", sys.argv[2]])
loaders = {type(m.__loader__).__name__ for n, m in list(sys.modules.items()) if n.startswith("pytest_spike.")}
print(sorted(loaders))
sys.exit(code)
"""


@pytest.mark.parametrize("bytecode", [True, False], ids=["bytecode", "PYTHONDONTWRITEBYTECODE"])
def test_the_child_pytest_does_not_rewrite_pytest_spike_in_its_layer(tmp_path: Path, bytecode: bool) -> None:
    """pytest rewrites a plugin distribution's modules and caches them beside the source. In
    a layer that cache is read-only (the box, PYTHONDONTWRITEBYTECODE): every child and cell
    rewrote ~55 modules again (~0.2 s of CPU); where it was writable, the next run saw a
    changed layer and rebuilt it. The layer's metadata lists no module for pytest to rewrite."""
    built = layer.build_layer(tmp_path / "cache")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    env.pop("PYTEST_ADDOPTS", None)
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    (tmp_path / "project").mkdir()
    # -S: pytest and pytest-spike come from the layer only, as in a cell's environment
    child = subprocess.run(
        [sys.executable, "-S", "-c", CHILD, str(built), str(tmp_path / "project")],
        env=env,
        capture_output=True,
        text=True,
    )
    # exit 5, no tests: --spike was known, so the plugin came from the layer
    assert child.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, child.stdout + child.stderr
    assert child.stdout.splitlines()[-1] == "['SourceFileLoader']"  # none AssertionRewritingHook
    assert sorted(p.name for p in built.rglob("*-pytest-*.pyc")) == []
    record = next(built.glob("pytest_spike-*.dist-info/RECORD")).read_text()
    assert "entry_points.txt" in record and "pytest_spike/" not in record.replace(".dist-info/", "")
    assert not list(built.glob("pytest_spike-*.dist-info/direct_url.json"))


def test_an_interpreters_markers_are_asked_once_per_binary(tmp_path: Path) -> None:
    """The marker environment costs a boxed child; it is kept per interpreter binary, and a
    binary that changed, or a script (a pyenv shim may answer for another Python), is asked."""
    python = sys.executable
    first = layer.cached_marker_environment(python, tmp_path)
    assert first == layer.marker_environment(python)
    (kept,) = (tmp_path / "layers" / "interpreters").glob("*.json")
    planted = json.loads(kept.read_text())
    planted["markers"]["python_full_version"] = "9.9.9"
    kept.write_text(json.dumps(planted))
    assert layer.cached_marker_environment(python, tmp_path)["python_full_version"] == "9.9.9"
    kept.write_text("{not json")
    assert layer.cached_marker_environment(python, tmp_path) == first  # asked again

    binary = tmp_path / "python-copy"
    shutil.copy2(os.path.realpath(python), binary)
    before = layer._binary_identity(str(binary))
    assert before is not None and before == layer._binary_identity(str(binary))
    os.utime(binary, ns=(0, binary.stat().st_mtime_ns + 1))
    assert layer._binary_identity(str(binary)) not in (None, before)
    shim = tmp_path / "shim"
    shim.write_text(f'#!/bin/sh\nexec {python} "$@"\n')
    shim.chmod(0o755)
    assert layer._binary_identity(str(shim)) is None  # so never kept: asked each time


FOR_PYTHON = (
    "import sys; from pathlib import Path; from pytest_spike.envs import layer; "
    "print(layer.layer_for(sys.argv[2], Path(sys.argv[1])))"
)
IMPORT_PYTEST = "import sys; sys.path.insert(0, sys.argv[1]); import pytest, _pytest._io.terminalwriter"


def another_python() -> str | None:
    """A pyenv interpreter of another version than this one (3.10+), if there is one."""
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    for folder in sorted(Path(root, "versions").glob("3.1*"), reverse=True):
        if not folder.name.startswith(here + ".") and (folder / "bin" / "python").exists():
            return str(folder / "bin" / "python")
    return None


def clean_env() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    }


def build_for(python: str, cache: Path) -> Path:
    made = subprocess.run(
        [sys.executable, "-c", FOR_PYTHON, str(cache), python],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(made.stdout.strip())


def test_a_layer_for_another_python_compiles_what_pytest_imports_and_not_every_lexer(tmp_path: Path) -> None:
    python = another_python()
    if python is None:
        pytest.skip("needs a pyenv interpreter of another version (3.10+)")
    built = build_for(python, tmp_path / "cache")
    lexers = built / "pygments" / "lexers"
    if not lexers.is_dir():
        pytest.skip("this pytest does not need pygments")
    # Every module a child pytest imports from the layer (pygments' too) loads compiled.
    child = subprocess.run(
        [python, "-S", "-v", "-c", IMPORT_PYTEST, str(built)], env=clean_env(), capture_output=True, text=True
    )
    assert child.returncode == 0, child.stderr[-2000:]
    loaded = [line for line in child.stderr.splitlines() if "code object from" in line and str(built) in line]
    assert any("pygments" in line for line in loaded) and len(loaded) > 50
    assert [line for line in loaded if not line.endswith(".pyc'")] == []
    # The lexers of other languages are left as source (half of a layer's compile time).
    assert (lexers / "rust.py").is_file() and not list(lexers.glob("__pycache__/rust.*.pyc"))


def test_a_layer_for_a_python_of_this_version_takes_this_ones_compiled_modules(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", "import _pytest.compat"], env=clean_env(), check=True)
    compiled = Path(
        importlib.util.cache_from_source(str(Path(pytest.__file__).parent.parent / "_pytest" / "compat.py"))
    )
    if not compiled.is_file():
        pytest.skip("site-packages keeps no bytecode here (read-only)")
    built = build_for(sys.executable, tmp_path / "cache")
    placed = Path(importlib.util.cache_from_source(str(built / "_pytest" / "compat.py")))
    # The same bytes: copied with the source (and found valid), not compiled again.
    assert placed.read_bytes() == compiled.read_bytes()


def test_a_layer_for_another_python_puts_its_bytecode_under_the_pycache_prefix(tmp_path: Path) -> None:
    """Children that inherit a PYTHONPYCACHEPREFIX (a matrix cell's pytest) read compiled
    modules only there: the layer's are there too, and nothing is compiled again."""
    python = another_python()
    if python is None:
        pytest.skip("needs a pyenv interpreter of another version (3.10+)")
    prefix = tmp_path / "prefix"
    env = {**clean_env(), "PYTHONPYCACHEPREFIX": str(prefix)}
    made = subprocess.run(
        [sys.executable, "-c", FOR_PYTHON, str(tmp_path / "cache"), python],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    built = Path(made.stdout.strip())
    child = subprocess.run(
        [python, "-S", "-v", "-c", IMPORT_PYTEST, str(built)], env=env, capture_output=True, text=True
    )
    assert child.returncode == 0, child.stderr[-2000:]
    loaded = [line for line in child.stderr.splitlines() if "code object from" in line and str(built) in line]
    assert len(loaded) > 50
    assert [line for line in loaded if not (line.endswith(".pyc'") and str(prefix) in line)] == []


def test_a_distribution_is_copied_only_into_a_layer_for_a_python_it_admits() -> None:
    """A copy of this interpreter's distributions is a layer only where each one's
    Requires-Python admits the target; the others' layers are installed for it."""
    dist = importlib.metadata.distribution("pytest")
    spec = dist.metadata["Requires-Python"]
    if not spec:
        pytest.skip("this pytest states no Requires-Python")
    admitted = next(
        v for v in ("3.8.0", "3.9.0", "3.10.0", "3.11.0", "3.12.0", "3.13.0") if v in SpecifierSet(spec)
    )
    refused = [v for v in ("3.0.0", "3.8.0", "3.9.0") if v not in SpecifierSet(spec)]
    assert layer._runs_on(dist, {"python_full_version": admitted})
    assert refused and not layer._runs_on(dist, {"python_full_version": refused[-1]})
    assert not layer._runs_on(dist, {})  # an interpreter that did not say: installed, not copied
