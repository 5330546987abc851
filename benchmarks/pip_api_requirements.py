#!/usr/bin/env python3
"""Can ``pip_api.parse_requirements`` replace the two hand-written requirement-file readers?

    pip install pip-api           # into the environment pytest-spike is installed in
    python benchmarks/pip_api_requirements.py

Feeds the inputs of the readers' own tests (tests/envs/test_fit.py, tests/upstream/) and a few
more to pip-api and to pytest-spike's readers (``envs.fit.project_requirements``,
``upstream.layout.harness_requirements``), and prints what each returns. Writes its files in a
temporary folder; needs no network.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

CASES: dict[str, str] = {
    # tests/envs/test_fit.py::test_requirement_files_are_read_like_pip (without the editable)
    "fit test file": (
        "# top comment\n--index-url http://127.0.0.1:9/simple\n-r base.txt\n-c constraints.txt\n"
        "numpy==1.26.4 \\\n    --hash=sha256:abc\nhttps://example.invalid/pkg.whl\n"
        "tomli ; python_version < '3.11'\n"
    ),
    "editable of a checkout": "-e ./local-checkout\nattrs\n",
    "marker for another Python": "tomli ; python_version < '3.11'\n",
    "constraint include": "-c constraints.txt\n",
    "one name twice": "attrs>=22\nattrs<24\n",
    "a bad line": "ok==1\nnot a requirement!\n",
    # tests/upstream/test_upstream_run.py::test_harness_sources_in_order
    "self-reference with extra": "-r base.txt\n-e .[extra]\n--index-url x\n",
}


def _pip_api(path: Path) -> str:
    import pip_api  # imported late: its import runs `python -m pip --version`

    try:
        found = pip_api.parse_requirements(str(path), include_invalid=True)
    except Exception as exc:  # what a caller would have to catch
        return f"ERROR {type(exc).__name__}: {str(exc).splitlines()[0][:100]}"
    return repr(sorted(f"{v}".splitlines()[0][:60] for v in found.values()))


def _ours(path: Path) -> str:
    from pytest_spike.envs.fit import project_requirements
    from pytest_spike.model import SpikeError

    try:
        return repr(project_requirements([path.name], root=path.parent))
    except SpikeError as exc:
        return f"ERROR SpikeError: {str(exc)[:100]}"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "base.txt").write_text("attrs>=22  # comment\n")
        (root / "constraints.txt").write_text("dep==1.0\n")
        os.chdir(root)  # pip-api resolves "." against the working folder, not the file
        try:
            import pip_api

            print(
                f"pip-api {getattr(pip_api, '__version__', '?')} on pip {pip_api.PIP_VERSION}, {sys.executable}"
            )
        except Exception as exc:
            print(f"import pip_api failed: {type(exc).__name__}: {exc}")
            return 2
        rows: list[tuple[str, Any, Any]] = []
        for name, text in CASES.items():
            path = root / "case.txt"
            path.write_text(text)
            rows.append((name, _pip_api(path), _ours(path)))
        for name, theirs, ours in rows:
            print(f"\n{name}:\n  pip-api:      {theirs}\n  pytest-spike: {ours}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
