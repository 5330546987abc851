"""pytest-spike versions REQ [SPEC]: show which versions a versions= spec resolves to.

For people, one version per line (with ``-v``, every left-out release and why); for scripts,
``--json``. Exit status: 0 with at least one version, 1 when nothing matches, 2 on an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_spike.index.client import redact
from pytest_spike.index.versions import resolve
from pytest_spike.model import SpikeError, default_cache_root, parse_requirement
from pytest_spike.services import INDEX_CACHE, index_client

PROG = "pytest-spike versions"


def _python(value: str) -> str | None:
    if value.lower() in ("any", "all", ""):
        return None
    parts = value.split(".")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{value!r} is not a Python version like 3.11 (or 'any')")
    return value


def _configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    parser.add_argument(
        "requirement",
        metavar="REQ",
        help="the project, optionally with a specifier: tomli, 'tomli>=2'",
    )
    parser.add_argument(
        "spec",
        metavar="SPEC",
        nargs="?",
        default=None,
        help="'latest:N', a specifier ('>=2,<3') or versions ('1.0, 2.0'); default: the newest release",
    )
    parser.add_argument(
        "--python",
        metavar="X.Y",
        type=_python,
        default=here,
        help=f"keep releases whose requires-python admits this Python, 'any' for all (default: {here})",
    )
    parser.add_argument("--pre", action="store_true", help="include pre-releases (default: no)")
    parser.add_argument("--json", action="store_true", help="print the resolution as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="also list left-out releases and why")
    parser.add_argument(
        "--index-url",
        metavar="URL",
        default=None,
        help="the simple index URL (default: PIP_INDEX_URL, pip config, then the package index)",
    )
    parser.add_argument("--offline", action="store_true", help="answer from the cache only (default: no)")
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        type=Path,
        default=None,
        help=f"cache for index answers (default: {(default_cache_root() / INDEX_CACHE)})",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=15.0,
        help="per-request timeout (default: 15)",
    )
    parser.set_defaults(func=main)
    return parser


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register the ``versions`` subcommand on the ``pytest-spike`` parser."""
    parser = subparsers.add_parser(
        "versions",
        help="show the versions a spec resolves to on the package index",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    return _configure(parser)


def main(args: argparse.Namespace) -> int:
    """Run the command; prints to stdout (results) and stderr (one-line errors)."""
    try:
        req = parse_requirement(args.requirement, "REQ")
        client = index_client(
            args.index_url, cache_dir=args.cache_dir, offline=args.offline, timeout=args.timeout
        )
        # A bare "tomli>=2" is itself the spec; with SPEC too, it filters what SPEC picks.
        spec = args.spec if args.spec is not None else (str(req.specifier) or None)
        result = resolve(client, req.name, spec, python=args.python, prereleases=args.pre)
    except SpikeError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if req.specifier and args.spec is not None:
        for version in [v for v in result.versions if not req.specifier.contains(v, prereleases=True)]:
            result.versions.remove(version)
            result.excluded[str(version)] = f"outside {req.specifier} (from REQ)"
    where = "any Python" if args.python is None else f"Python {args.python}"
    for reason in result.skipped:
        print(f"{PROG}: note: {reason} (answered from the other indexes)", file=sys.stderr)
    if args.json:
        data = result.to_dict()
        data["index_url"] = redact(client.index_url)
        print(json.dumps(data, indent=2))
    else:
        for version in result.versions:
            print(version)
        if args.verbose:
            for left_out, reason in result.excluded.items():
                print(f"{left_out}  left out: {reason}")
    if not result.versions:
        spec = args.spec or "the newest release"
        print(f"{PROG}: no version of {req.name} matches {spec} on {where}", file=sys.stderr)
        return 1
    return 0


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the command line) and run; for ``python -m``."""
    parser = _configure(
        argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0] if __doc__ else None)
    )
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run())
