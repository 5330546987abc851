"""Describe one installed distribution as JSON, from inside the interpreter that has it.

Run as a script by the install probe (``python -c <this source> '<json args>'``) with the
candidate's interpreter, so the same code inspects the running environment and any other.
Standard library only, Python 3.8+; packaging is used when the environment has it (or
pip's vendored copy) to evaluate markers, else markers are skipped.
"""

import json
import os
import re
import sys

try:
    from importlib import metadata
except ImportError:  # pragma: no cover - Python < 3.8
    print(json.dumps({"error": "Python 3.8+ is needed"}))
    sys.exit(0)

try:
    from packaging.requirements import Requirement
except ImportError:
    try:
        from pip._vendor.packaging.requirements import Requirement
    except ImportError:
        Requirement = None


def canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def find(name):
    wanted = canon(name)
    for candidate in (name, wanted, wanted.replace("-", "_")):
        try:
            return metadata.distribution(candidate)
        except metadata.PackageNotFoundError:
            pass
    for dist in metadata.distributions():
        if canon(dist.metadata["Name"] or "") == wanted:
            return dist
    return None


def requirements(dist, extras):
    found = []
    for text in dist.requires or ():
        if Requirement is None:
            if ";" in text:
                continue
            found.append((re.split(r"[\s\[(<>=!~;]", text.strip(), maxsplit=1)[0], text))
            continue
        try:
            req = Requirement(text)
        except Exception:
            continue
        if req.marker is not None:
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if not any(req.marker.evaluate(env) for env in envs):
                continue
        found.append((req.name, text))
    return found


def size_of(dist):
    total = 0
    for path in dist.files or ():
        try:
            total += os.path.getsize(str(dist.locate_file(path)))
        except OSError:
            pass
    return total


def top_level(dist):
    text = dist.read_text("top_level.txt")
    if text:
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if names:
            return names
    names = []
    for path in dist.files or ():
        parts = path.parts
        if (
            not parts
            or parts[0].endswith((".dist-info", ".egg-info", ".data"))
            or parts[0]
            in (
                "..",
                "__pycache__",
            )
        ):
            continue
        if len(parts) == 1 and parts[0].endswith(".py"):
            name = parts[0][:-3]
        elif len(parts) > 1 and parts[-1] == "__init__.py" and len(parts) == 2:
            name = parts[0]
        elif len(parts) == 1 and (".cpython-" in parts[0] or parts[0].endswith((".so", ".pyd"))):
            name = parts[0].split(".")[0]
        else:
            continue
        if name.isidentifier() and name not in names:
            names.append(name)
    return names


def main():
    args = json.loads(sys.argv[1])
    dist = find(args["name"])
    if dist is None:
        print(json.dumps({"installed": False, "python": sys.executable}))
        return
    seen = {}
    queue = [(dist, list(args.get("extras") or ()))]
    while queue:
        current, extras = queue.pop()
        for name, _text in requirements(current, extras):
            key = canon(name)
            if key in seen or key == canon(dist.metadata["Name"]):
                continue
            dep = find(name)
            seen[key] = None if dep is None else dep.version
            if dep is not None:
                queue.append((dep, []))
    dep_size = 0
    for key, version in seen.items():
        if version is not None:
            dep_size += size_of(find(key))
    direct_url = dist.read_text("direct_url.json")
    print(
        json.dumps(
            {
                "installed": True,
                "python": sys.executable,
                "name": dist.metadata["Name"],
                "version": dist.version,
                "requires_python": dist.metadata["Requires-Python"],
                "requires": list(dist.requires or ()),
                "modules": top_level(dist),
                "dependencies": seen,
                "size_bytes": size_of(dist),
                "deps_size_bytes": dep_size,
                "location": str(dist.locate_file("")),
                "installer": (dist.read_text("INSTALLER") or "").strip() or None,
                "direct_url": json.loads(direct_url) if direct_url else None,
                "markers_evaluated": Requirement is not None,
            }
        )
    )


main()
