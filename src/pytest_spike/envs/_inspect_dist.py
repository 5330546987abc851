"""Report one installed distribution and what it may need, as JSON, from inside the
interpreter that has it.

Run as a script (``python -c <this source> '{"name": ..., "extras": [...]}'``) by the probes,
for the running environment and any other, and by the environment manager after a build.
It reports facts only: the root distribution, every installed distribution reachable from it
by requirement name (whatever the requirement's marker), each with its requirements and size,
and the interpreter's marker environment. Which of those the root really needs is worked out
by the caller (``inspection.py``), with packaging, so markers and extras are evaluated the same
way everywhere. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from typing import Any

try:
    from importlib import metadata
except ImportError:  # pragma: no cover - Python < 3.8
    print(json.dumps({"error": "Python 3.8+ is needed"}))
    sys.exit(0)


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def find(name: str) -> metadata.Distribution | None:
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


def required_name(text: str) -> str | None:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", text)
    return match.group(1) if match else None


def size_of(dist: metadata.Distribution) -> int:
    # Bytecode is left out: it depends on how many interpreters compiled the files, not on
    # what was installed.
    total = 0
    for path in dist.files or ():
        if "__pycache__" in path.parts:
            continue
        try:
            total += os.path.getsize(str(dist.locate_file(path)))
        except OSError:
            pass
    return total


def top_level(dist: metadata.Distribution) -> list[str]:
    text = dist.read_text("top_level.txt")
    if text:
        listed = [line.strip() for line in text.splitlines() if line.strip()]
        if listed:
            return listed
    names: list[str] = []
    for path in dist.files or ():
        parts = path.parts
        if (
            not parts
            or parts[0].endswith((".dist-info", ".egg-info", ".data"))
            or parts[0] in ("..", "__pycache__")
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


def marker_environment() -> dict[str, str]:
    def fmt(info: Any) -> str:
        v = f"{info.major}.{info.minor}.{info.micro}"
        return v if info.releaselevel == "final" else v + info.releaselevel[0] + str(info.serial)

    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": fmt(sys.implementation.version),
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def describe(dist: metadata.Distribution) -> dict[str, Any]:
    return {
        "name": dist.metadata["Name"],
        "version": dist.version,
        "requires": list(dist.requires or ()),
        "size": size_of(dist),
        "uv_built": dist.read_text("uv_build.json") is not None,
    }


def main() -> None:
    args = json.loads(sys.argv[1])
    root = find(args["name"])
    report: dict[str, Any] = {"python": sys.executable, "env": marker_environment()}
    if root is None:
        report["installed"] = False
        print(json.dumps(report))
        return
    # Everything reachable by name: a superset of the closure, small, and cheap to size.
    dists = {canon(root.metadata["Name"]): describe(root)}
    queue = [root]
    while queue:
        for text in queue.pop().requires or ():
            name = required_name(text)
            if name is None or canon(name) in dists:
                continue
            dep = find(name)
            if dep is not None:
                dists[canon(name)] = describe(dep)
                queue.append(dep)
    direct_url = root.read_text("direct_url.json")
    report.update(
        {
            "installed": True,
            "name": root.metadata["Name"],
            "version": root.version,
            "requires_python": root.metadata["Requires-Python"],
            "requires": list(root.requires or ()),
            "modules": top_level(root),
            "location": str(root.locate_file("")),
            "installer": (root.read_text("INSTALLER") or "").strip() or None,
            "direct_url": json.loads(direct_url) if direct_url else None,
            "dists": list(dists.values()),
        }
    )
    print(json.dumps(report))


main()
