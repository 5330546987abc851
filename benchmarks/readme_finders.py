#!/usr/bin/env python3
"""The README probe's block finder against markdown-it-py (CommonMark) and docutils (reST).

    pip install markdown-it-py docutils        # into the environment pytest-spike is in
    python benchmarks/readme_finders.py                     # fetch (once) and compare 50 READMEs
    python benchmarks/readme_finders.py --show requests     # every block of one README, per tool
    python benchmarks/readme_finders.py --cache DIR --offline

READMEs are the long descriptions of 50 packages (the 15 of the field notes and 35 more
popular ones), from the package index's JSON API: the index pip is configured with
(``PIP_INDEX_URL``, else pip's default), its ``/simple`` swapped for ``/pypi``. They are kept
in ``--cache`` (default ``$TMPDIR/pytest-spike-readmes``) so the numbers can be reproduced
offline.

Per README, each tool *finds* blocks: the hand-written finder (``readme.blocks``),
markdown-it-py's ``fence`` and ``code_block`` tokens for Markdown, docutils' ``literal_block``
and ``doctest_block`` nodes for reStructuredText (which reads Markdown READMEs is decided as
the probe decides it). Every found block is then *classified* by the probe's content
classifier (``blocks.classify``: the libraries find, they don't classify content), and, as a
second view, by its fence language alone. Blocks are matched across tools by their text
(whitespace-normalised), so the table says how many each found, how many both found, and
how often the classification differs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_spike.readme.blocks import KINDS, classify, extract_blocks

FIELD_NOTES = (
    "attrs packaging tomli tomlkit more-itertools python-dateutil requests arrow pendulum "
    "orjson click rich pyyaml humanize toolz"
).split()
POPULAR = (
    "numpy pandas flask django fastapi pydantic httpx sqlalchemy jinja2 pytest black boto3 six "
    "urllib3 certifi idna charset-normalizer typing-extensions markupsafe jsonschema pillow "
    "tqdm cryptography pyjwt tabulate docutils aiohttp marshmallow freezegun simplejson "
    "werkzeug pygments cachetools redis psutil"
).split()
PACKAGES = FIELD_NOTES + POPULAR


@dataclass(frozen=True)
class Found:
    line: int  # 1-based, 0 when the tool does not say
    language: str
    code: str

    @property
    def key(self) -> str:
        return " ".join(self.code.split())

    def kind(self) -> str:
        return classify(self.code, self.language)


# -- fetching ----------------------------------------------------------------------------------


def json_api_base() -> str:
    index = os.environ.get("PIP_INDEX_URL", "")
    if not index:
        from pip._internal.models.index import PyPI  # pip's default index, not spelled out here

        return PyPI.pypi_url
    return re.sub(r"/simple/?$", "", index.rstrip("/")) + "/pypi"


def fetch(name: str, cache: Path, offline: bool) -> dict[str, str] | None:
    path = cache / f"{name}.json"
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text("utf-8"))
        return data
    if offline:
        return None
    url = f"{json_api_base()}/{name}/json"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            info = json.load(response)["info"]
    except OSError as exc:
        print(f"{name}: cannot fetch ({exc})", file=sys.stderr)
        return None
    data = {
        "name": name,
        "version": info.get("version") or "",
        "content_type": info.get("description_content_type") or "",
        "text": info.get("description") or "",
    }
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), "utf-8")
    return data


# -- the three finders -------------------------------------------------------------------------


def is_markdown(text: str, content_type: str) -> bool:
    """The probe's own decision (``extract_blocks``), so every tool reads the same syntax."""
    ctype = content_type.lower()
    fence = re.compile(r"^ *(`{3,}|~{3,})", re.M)
    directive = re.compile(r"^\.\. [\w-]+::", re.M)
    sniffed = bool(fence.search(text.expandtabs(8))) and not directive.search(text)
    return "markdown" in ctype or ("rst" not in ctype and sniffed)


_EXTRACT: Any = extract_blocks


def by_hand(text: str, content_type: str) -> list[Found]:
    """The probe's finder. It now finds Markdown blocks with markdown-it-py itself, so
    ``--before REV`` measures the finder of an earlier commit (the hand-written one: 81c5078)."""
    return [Found(b.line, b.language, b.code) for b in _EXTRACT(text, content_type)]


def load_finder(rev: str) -> Any:
    """``extract_blocks`` of readme/blocks.py as it was at git revision ``rev``."""
    import subprocess
    import types

    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{rev}:src/pytest_spike/readme/blocks.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType(f"blocks_at_{rev}")
    module.__dict__["__name__"] = module.__name__
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"blocks.py@{rev}", "exec"), module.__dict__)
    return module.extract_blocks


def by_markdown_it(text: str) -> list[Found]:
    import textwrap

    from markdown_it import MarkdownIt

    found = []
    for token in MarkdownIt("commonmark").parse(text.expandtabs(8)):
        if token.type in ("fence", "code_block"):
            info = token.info.split()
            language = info[0].strip("{}.").lower() if info else ""
            line = token.map[0] + (2 if token.type == "fence" else 1) if token.map else 0
            code = textwrap.dedent(token.content).strip("\n")
            if code.strip():
                found.append(Found(line, language, code))
    return found


def by_docutils(text: str) -> list[Found]:
    import textwrap

    from docutils import nodes
    from docutils.core import publish_doctree

    settings = {
        "report_level": 5,
        "halt_level": 5,
        "file_insertion_enabled": False,
        "raw_enabled": False,
        "syntax_highlight": "none",
        "warning_stream": False,
    }
    try:
        tree = publish_doctree(text, settings_overrides=settings)
    except Exception as exc:  # docutils raises on some malformed input
        print(f"docutils: {type(exc).__name__}: {exc}", file=sys.stderr)
        return []
    found = []
    for node in tree.findall(lambda n: isinstance(n, (nodes.literal_block, nodes.doctest_block))):
        if isinstance(node.parent, nodes.system_message):
            continue  # an error report quoting the source, not a block of the README
        classes = [c for c in node.get("classes", []) if c != "code"]
        language = "pycon" if isinstance(node, nodes.doctest_block) else (classes[0] if classes else "")
        code = textwrap.dedent(node.astext()).strip("\n")
        if code.strip():
            found.append(Found(node.line or 0, language.lower(), code))
    return found


# -- comparing ---------------------------------------------------------------------------------


@dataclass
class Tally:
    readmes: int = 0
    hand: int = 0
    library: int = 0
    both: int = 0
    only_hand: int = 0
    only_library: int = 0
    kind_differs: int = 0  # on blocks both found: the content classifier on each tool's block
    hand_kinds: Counter[str] | None = None
    library_kinds: Counter[str] | None = None
    fence_only_differs: int = 0  # the hand finder's kind vs. the fence language's kind alone

    def __post_init__(self) -> None:
        self.hand_kinds, self.library_kinds = Counter(), Counter()


def fence_kind(language: str) -> str:
    lang = language.lower()
    if lang in ("python", "py", "python3", "py3"):
        return "python"
    if lang in ("pycon", "doctest", "ipython", "ipython3"):
        return "pycon"
    return classify("x", lang) if lang not in ("", "text", "txt", "none") else "other"


def compare(hand: list[Found], library: list[Found], tally: Tally) -> list[str]:
    """Add one README to ``tally``; return lines describing where the tools differ."""
    assert tally.hand_kinds is not None and tally.library_kinds is not None
    tally.readmes += 1
    tally.hand += len(hand)
    tally.library += len(library)
    unmatched: dict[str, list[Found]] = {}  # the library's blocks by text, each matched once
    for found in library:
        unmatched.setdefault(found.key, []).append(found)
    diffs = []
    for block in hand:
        kind = block.kind()
        tally.hand_kinds[kind] += 1
        if fence_kind(block.language) != kind and block.language:
            tally.fence_only_differs += 1
        same = unmatched.get(block.key)
        other = same.pop(0) if same else None
        if other is None:
            tally.only_hand += 1
            diffs.append(f"  only hand    L{block.line:<4} {kind:<6} {first(block.code)}")
            continue
        tally.both += 1
        if other.kind() != kind:
            tally.kind_differs += 1
            diffs.append(
                f"  kind differs L{block.line:<4} hand {kind} / library {other.kind()}: {first(block.code)}"
            )
    for block in library:
        tally.library_kinds[block.kind()] += 1
    for rest in unmatched.values():
        for block in rest:
            tally.only_library += 1
            diffs.append(f"  only library L{block.line:<4} {block.kind():<6} {first(block.code)}")
    return diffs


def first(code: str) -> str:
    line = next((x.strip() for x in code.splitlines() if x.strip()), "")
    return line if len(line) <= 70 else line[:67] + "..."


def kinds(counter: Counter[str] | None) -> str:
    assert counter is not None
    return " ".join(f"{k}:{counter[k]}" for k in KINDS if counter[k])


def table(tallies: dict[str, Tally]) -> Iterable[str]:
    yield "| syntax | READMEs | hand finder | library | both | only hand | only library | kind differs | hand kinds | library kinds |"
    yield "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
    for syntax, t in tallies.items():
        lib = "markdown-it-py" if syntax == "markdown" else "docutils"
        yield (
            f"| {syntax} ({lib}) | {t.readmes} | {t.hand} | {t.library} | {t.both} | {t.only_hand} | "
            f"{t.only_library} | {t.kind_differs} | {kinds(t.hand_kinds)} | {kinds(t.library_kinds)} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "pytest-spike-readmes")
    parser.add_argument("--offline", action="store_true", help="use the cache only")
    parser.add_argument("--show", metavar="NAME", help="list every block of one README, per tool")
    parser.add_argument("--diffs", action="store_true", help="list where the tools differ, per README")
    parser.add_argument("--before", metavar="REV", help="measure the finder of git revision REV")
    args = parser.parse_args(argv)
    if args.before:
        global _EXTRACT
        _EXTRACT = load_finder(args.before)

    names = [args.show] if args.show else PACKAGES
    tallies = {"markdown": Tally(), "rst": Tally()}
    seconds: Counter[str] = Counter()
    missing = []
    for name in names:
        data = fetch(name, args.cache, args.offline)
        if data is None or not data["text"].strip():
            missing.append(name)
            continue
        text, ctype = data["text"], data["content_type"]
        markdown = is_markdown(text, ctype)
        start = time.perf_counter()
        hand = by_hand(text, ctype)
        seconds["hand"] += time.perf_counter() - start
        start = time.perf_counter()
        library = by_markdown_it(text) if markdown else by_docutils(text)
        seconds["markdown-it-py" if markdown else "docutils"] += time.perf_counter() - start
        diffs = compare(hand, library, tallies["markdown" if markdown else "rst"])
        if args.show:
            for tool, blocks in (("hand", hand), ("markdown-it-py" if markdown else "docutils", library)):
                print(f"== {tool}: {len(blocks)} blocks")
                for block in blocks:
                    print(
                        f"  L{block.line:<4} {block.language or '-':<8} {block.kind():<6} {first(block.code)}"
                    )
        if args.diffs or args.show:
            print(
                f"{name} {data['version']} ({'markdown' if markdown else 'rst'}, {ctype or 'no type'}): "
                f"hand {len(hand)}, library {len(library)}"
            )
            print("\n".join(diffs) if diffs else "  same blocks, same kinds")
    print()
    print("\n".join(table(tallies)))
    hand_md = tallies["markdown"].fence_only_differs + tallies["rst"].fence_only_differs
    print(f"\nblocks whose fence language alone would give another kind than their content: {hand_md}")
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()))
    if missing:
        print(f"no README: {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
