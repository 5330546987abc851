"""Find a distribution's public modules and import them, from inside the candidate's interpreter.

Run as a script by the import probe (``python -c <this source> '<json args>'``). Standard
library only, Python 3.9+. It prints two lines, each a marker and then JSON:

- the plan, before importing anything: the modules it chose, how it found them (``files``,
  ``top_level``, ``given``) and what it left out;
- the report: for each module, the time, the error if any, whether it is real (a module with
  a file, not an empty namespace) and every warning with its ``owner``: ``candidate`` (a public
  module of the distribution), ``shim`` (one of its private modules), ``importer`` (the import
  statement itself, so the imported module warned about itself), ``alias`` (a deprecated alias
  module whose warning points to another module of the distribution, imported clean: see
  ``follow_aliases``) or ``other`` (a dependency, the standard library).

Which modules: the distribution's files (its RECORD) give its top-level names. A namespace
package (a folder without ``__init__.py``, or whose ``__init__.py`` only extends its path) is
resolved to the real packages below it (``ruamel`` -> ``ruamel.yaml``). Private modules
(``_yaml``) and folders that are not API (``tests``) are imported only when nothing else exists.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sys
import time
import traceback
import warnings
from typing import Any

try:
    from importlib import metadata
except ImportError:  # pragma: no cover - Python < 3.8
    metadata = None  # type: ignore[assignment]

Mod = tuple[str, ...]

#: Top-level names that ship by accident or for tooling: never the API a user imports.
NOT_API: tuple[str, ...] = ("test", "tests", "testing", "doc", "docs", "example", "examples")
NOT_API += ("benchmark", "benchmarks", "setup", "conftest")
#: More modules than this are left out (and counted): the report must stay small.
MAX_MODULES = 20
_EXTENSIONS = (".so", ".pyd")
_NAMESPACE_INIT = ("extend_path(", "declare_namespace(")


def canon(name: str) -> str:
    return "".join("-" if c in "-_." else c for c in name).lower()


def find(name: str) -> metadata.Distribution | None:
    if metadata is None:
        return None
    for candidate in (name, canon(name), canon(name).replace("-", "_")):
        try:
            return metadata.distribution(candidate)
        except metadata.PackageNotFoundError:
            pass
    wanted = canon(name)
    for dist in metadata.distributions():
        if canon(dist.metadata["Name"] or "") == wanted:
            return dist
    return None


def module_of(parts: Mod) -> Mod | None:
    """The dotted parts a file installs (``a/b/__init__.py`` -> a.b), or None."""
    name = parts[-1]
    if name.endswith(".py"):
        stem = name[:-3]
    elif name.endswith(_EXTENSIONS):
        stem = name.split(".")[0]
    else:
        return None
    parts = tuple(parts[:-1]) + (() if stem == "__init__" else (stem,))
    if not parts or not all(p.isidentifier() for p in parts) or "__main__" in parts:
        return None
    return parts


class Layout:
    """The modules a distribution installs, from its file list."""

    def __init__(self, dist: metadata.Distribution) -> None:
        self.dist = dist
        self.files: dict[Mod, str] = {}  # dotted parts -> absolute path of the module's file
        self.packages: set[Mod] = set()  # dotted parts of folders with an __init__
        for path in dist.files or ():
            parts = tuple(path.parts)
            if not parts or parts[0] == ".." or parts[0].endswith((".dist-info", ".egg-info", ".data")):
                continue
            if "__pycache__" in parts:
                continue
            mod = module_of(parts)
            if mod is None or mod[0].startswith("__editable__"):
                continue  # an editable install's finder is not the package it finds
            if parts[-1].startswith("__init__."):
                self.packages.add(mod)
            self.files.setdefault(mod, os.path.realpath(str(dist.locate_file(path))))

    def roots(self) -> list[Mod]:
        return sorted({mod[:1] for mod in self.files})

    def namespace_like(self, mod: Mod) -> bool:
        """No __init__ of its own here, or one that only extends the package's path."""
        if mod not in self.files:
            return True
        if mod not in self.packages:
            return False  # a plain module
        try:
            with open(self.files[mod], encoding="utf-8", errors="replace") as handle:
                text = handle.read(20000)
        except OSError:
            return False
        return any(token in text for token in _NAMESPACE_INIT)

    def resolve(self, mod: Mod) -> list[Mod]:
        """``mod`` itself, or for a namespace the real packages and modules below it."""
        if not self.namespace_like(mod):
            return [mod]
        children = sorted(
            {m[: len(mod) + 1] for m in self.files if m[: len(mod)] == mod and len(m) > len(mod)}
        )
        found: list[Mod] = []
        for child in children:
            found += self.resolve(child)
        return found


def private(mod: Mod) -> bool:
    # mypyc ships its runtime as a top-level "<hash>__mypyc" extension: plumbing, not API
    return mod[0] in NOT_API or mod[0].endswith("__mypyc") or any(part.startswith("_") for part in mod)


def plan(args: dict[str, Any]) -> dict[str, Any]:
    dist = find(args["dist"])
    layout = Layout(dist) if dist is not None else None
    how, found = found_modules(args, dist, layout)
    public = [m for m in found if not private(m)]
    chosen = (public or found) if how != "given" else found
    left_out: dict[str, str] = {
        ".".join(m): "private (a public module exists)" for m in found if m not in chosen
    }
    if len(chosen) > MAX_MODULES:
        left_out[f"{len(chosen) - MAX_MODULES} more modules"] = f"over the limit of {MAX_MODULES} modules"
        chosen = chosen[:MAX_MODULES]
    return {
        "how": how,
        "modules": [".".join(m) for m in chosen],
        "left_out": dict(sorted(left_out.items())[:MAX_MODULES]),
        "only_private": bool(found) and not public,
        "dist_files": file_owners(layout, [m for m in found if m not in chosen]),
    }


def found_modules(
    args: dict[str, Any], dist: metadata.Distribution | None, layout: Layout | None
) -> tuple[str, list[Mod]]:
    """How the modules were found (given, files, top_level, guessed) and which they are."""
    if args.get("modules"):
        how, found = "given", [tuple(name.split(".")) for name in args["modules"]]
    else:
        how, found = listed_modules(dist, layout)
    found = [m for m in found if m and all(part.isidentifier() for part in m)]
    if not found and dist is not None:
        # No file list and no top_level.txt (an editable install by some backends): the
        # project's name is a guess, and a guess that does not import is no evidence.
        how, found = "guessed", [(canon(args["dist"]).replace("-", "_"),)]
    return how, found


def listed_modules(dist: metadata.Distribution | None, layout: Layout | None) -> tuple[str, list[Mod]]:
    """The distribution's modules from its file list, else from its top_level.txt."""
    found: list[Mod] = [mod for root in layout.roots() for mod in layout.resolve(root)] if layout else []
    if found or dist is None:
        return "files", found
    # An editable install or a legacy one without a file list: trust top_level.txt.
    text = dist.read_text("top_level.txt") or ""
    return "top_level", [(line.strip(),) for line in text.splitlines() if line.strip()]


def file_owners(layout: Layout | None, shims: list[Mod]) -> dict[str, str]:
    """Each file of the distribution -> "shim" (under a module left out) or "candidate".

    A file under a module left out is not the candidate's API; any other file, private
    submodules of its public packages included, is the candidate's own code.
    """
    own: dict[str, str] = {}
    for mod, path in (layout.files if layout else {}).items():
        shim = any(mod[: len(s)] == s for s in shims)
        own[os.path.normcase(path)] = "shim" if shim else "candidate"
    return own


def owner(filename: str, own: dict[str, str], imported_dirs: list[str]) -> str:
    if filename.startswith("<") and (filename == "<string>" or "importlib" in filename):
        return "importer"  # the imported module warned about itself (stacklevel=2)
    path = os.path.normcase(os.path.realpath(filename))
    if own:
        return own.get(path, "other")
    # No file list (modules given by the user, an editable install): where the module lives.
    if any(path == d or path.startswith(d + os.sep) for d in imported_dirs):
        return "candidate"
    return "other"


def where_of(module: Any) -> str | None:
    """The file or folder a module was loaded from (None: an empty namespace)."""
    path = getattr(module, "__file__", None)
    if not path:
        return None
    path = os.path.normcase(os.path.realpath(str(path)))
    return os.path.dirname(path) if os.path.basename(path).startswith("__init__.") else path


#: A deprecation warning that names the module to import instead: "Please use `import
#: python_multipart` instead", "use python_multipart instead", "moved to new_name".
_POINTS_TO = re.compile(
    r"(?:\buse\s+`?(?:import\s+)?|\bimport\s+|\bmoved to\s+`?|\brenamed to\s+`?)"
    r"`?([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*)`?"
)
_DEPRECATIONS = ("DeprecationWarning", "PendingDeprecationWarning", "FutureWarning")


def import_one(name: str, own: dict[str, str], max_warnings: int) -> dict[str, Any]:
    """Import ``name`` and report its time, error, whether it is real and its warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        error = None
        try:
            __import__(name)
        except BaseException as exc:
            error = "".join(traceback.format_exception_only(type(exc), exc)).strip()[-2000:]
        took = time.perf_counter() - start
    module = sys.modules.get(name)
    where = where_of(module) if module is not None and error is None else None
    dirs = [where] if where else []
    return {
        "module": name,
        "seconds": took,
        "error": error,
        "real": where is not None,
        "warnings": [
            {
                "category": w.category.__name__,
                "message": str(w.message)[:300],
                "where": f"{w.filename}:{w.lineno}",
                "owner": owner(str(w.filename), own, dirs),
            }
            for w in caught[:max_warnings]
        ],
    }


def follow_aliases(out: list[dict[str, Any]], roots: set[str], own: dict[str, str], limit: int) -> None:
    """A module that is only a deprecated alias of another module of the same distribution
    (``multipart`` warning "Please use `import python_multipart` instead"): import the module
    the warning points to, and when that one imports clean, the alias's warning is not the
    candidate's (owner ``alias``, with ``points_to``)."""
    done = {entry["module"]: entry for entry in out}
    for entry in list(out):
        for warning in entry["warnings"]:
            if warning["category"] not in _DEPRECATIONS or warning["owner"] not in ("candidate", "importer"):
                continue
            match = _POINTS_TO.search(warning["message"])
            target = match.group(1) if match else ""
            if not target or target == entry["module"] or target.split(".")[0] not in roots:
                continue  # names no other module of this distribution (another project's: counts)
            if target not in done:
                done[target] = import_one(target, own, limit)
                done[target]["via"] = f"the module {entry['module']}'s deprecation warning points to"
                out.append(done[target])
            real = done[target]
            clean = real["error"] is None and not any(
                w["category"] in _DEPRECATIONS and w["owner"] in ("candidate", "importer")
                for w in real["warnings"]
            )
            if clean:
                warning["owner"], warning["points_to"] = "alias", target


def main() -> None:
    args = json.loads(sys.argv[1])
    chosen = plan(args)
    own = chosen.pop("dist_files")
    # The plan first, so a crash or a hang in mid-import still says what was being imported.
    sys.stdout.write("\n" + args["plan_mark"] + json.dumps(chosen) + "\n")
    sys.stdout.flush()
    limit = args.get("max_warnings", 50)
    out = [import_one(name, own, limit) for name in chosen["modules"]]
    roots = {m.split(".")[0] for m in chosen["modules"]}
    dist = find(args["dist"])
    if dist is not None:
        roots |= {mod[0] for mod in Layout(dist).files}
    follow_aliases(out, roots, own, limit)
    # The exit hooks run now, before the report (the candidate's, and the box's check for
    # daemons): one that prints a report of its own is seen as a second report, never last.
    run_exit_hooks = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_hooks is not None:
        run_exit_hooks()
    # A newline first: the import may have printed text without one.
    sys.stdout.write("\n" + args["mark"] + json.dumps(out) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    # The report is the last thing this process says, and the host sees exit status 0.
    os._exit(0)


main()
