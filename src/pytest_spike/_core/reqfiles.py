"""The lines of a pip requirements file, read the way pip reads them.

Both readers of requirement files (the project's, ``envs.fit``; an sdist's test harness,
``upstream.layout``) start here: comments dropped (``#`` at the start or after a space, so a
URL's ``#egg=`` stays), backslash continuations joined, blank lines skipped, each logical
line with the number of its first physical line. What a line means is the reader's business.

(pip-api's ``parse_requirements`` was measured for this and does not serve: it drops lines
whose markers do not match the running Python, does not follow ``-c``, refuses an editable
whose folder is absent and a name listed twice, and runs ``python -m pip`` when imported:
benchmarks/pip_api_requirements.py shows each case.)
"""

from __future__ import annotations

import re

_COMMENT = re.compile(r"(^|\s)#.*$")
_INCLUDE = re.compile(r"^(-r|--requirement|-c|--constraint)(?:[\s=]+|(?=[^\s=-]))(\S+)$")


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(number of the first physical line, the logical line) for each non-empty line."""
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        raw = _COMMENT.sub("", raw)
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line:
            lines.append((start, line))
    if pending.strip():  # a continuation on the last line: pip takes what is there
        lines.append((start, pending.strip()))
    return lines


def include(line: str) -> tuple[str, str] | None:
    """``("-r" | "-c", file)`` for an include line (``-r f``, ``-rf``, ``--requirement=f``), else None."""
    match = _INCLUDE.match(line)
    if match is None:
        return None
    return ("-c" if match.group(1) in ("-c", "--constraint") else "-r"), match.group(2)
