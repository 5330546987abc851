"""Find the code blocks of a README and say what each one is.

Markdown yields fenced and indented blocks; reStructuredText and plain text yield code
directives, ``::`` literal blocks and ``>>>`` paragraphs. Blocks are classified by their
content, not their fence language (field notes: 38 of 52 ``>>>`` sessions sat in
``python`` fences). ``>>>`` sessions are split into examples by a lenient REPL parser.
Pure text processing: nothing here runs code.
"""

from __future__ import annotations

import ast
import codeop
import json
import re
import textwrap
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

#: Block kinds that are executed; every other kind is listed with status ``skipped``.
RUNNABLE_KINDS = ("python", "pycon")
KINDS = ("python", "pycon", "shell", "toml", "json", "other")

_SHELL_LANGS = frozenset(
    "bash sh shell console zsh fish shell-session sh-session shellsession terminal "
    "powershell ps1 pwsh bat batch cmd doscon".split()
)
_LANG_KINDS = {lang: "shell" for lang in _SHELL_LANGS}
_LANG_KINDS.update({"toml": "toml", "json": "json", "jsonc": "json", "json5": "json"})
_PYTHON_LANGS = frozenset("python py python3 py3 pycon ipython ipython3 doctest".split())
#: Fence languages that leave the decision to the content.
_OPEN_LANGS = _PYTHON_LANGS | {"", "text", "txt", "plain", "plaintext", "none", "default", "code"}

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,}) *(?P<info>[^`]*?) *$")
_DIRECTIVE = re.compile(
    r"^(?P<indent> *)\.\.\s+(?P<name>code-block|code|sourcecode|testsetup|testcode|doctest|ipython)::\s*"
    r"(?P<lang>\S*)"
)
#: sphinx.ext.doctest's directives: their argument is a group name (``*``), not a language.
_DOCTEST_DIRECTIVES = frozenset({"testsetup", "testcode", "doctest"})
_RST_DIRECTIVE = re.compile(r"^\.\. [\w-]+::")
#: MyST directives that hold code, and the language their code is in when the fence names none.
_MYST_CODE = {
    "code-block": "",
    "code": "",
    "sourcecode": "",
    "code-cell": "python",
    "testcode": "python",
    "doctest": "pycon",
    "ipython": "python",
}
_OPTION = re.compile(r"^ +:[\w-]+:")
_LIST_MARKER = re.compile(r"^ *(?:[-*+\u2022]|\d+[.)]|#\.|\(?[A-Za-z0-9]\)) +(?=\S)")
_SHELL_START = re.compile(
    r"^(?:[$%] |#!|(?:sudo|pip3?|pipx|uv|uvx|conda|mamba|poetry|pdm|hatch|git|curl|wget|cd|"
    r"export|source|make|docker|brew|apt|apt-get|npm|yarn|cargo|tox|nox|pytest)\b|"
    r"python[\d.]*\s+-)"
)
_TOML_TABLE = re.compile(r"^\s*\[\[?\s*[\w\"'.\- ]+\]\]?\s*(?:#.*)?$")
_TOML_LINE = re.compile(r"^(?:\s*[\w\"'.\-]+\s*=\s*\S|\s|[\]}\"'])")
_PS1 = re.compile(r"^>>> ?")
_PS2 = re.compile(r"^\.\.\.(?: |$)")
#: Clauses that continue a compound statement at its own indentation.
_CLAUSE = re.compile(r"^(?:else|elif|except|finally)\b")
_EXCEPTION = re.compile(
    r"^(?:[A-Za-z_]\w*\.)*(?P<name>[A-Za-z_]\w*(?:Error|Exception|Warning|Exit|Interrupt|"
    r"Iteration))(?::|$)"
)


@dataclass(frozen=True)
class Block:
    """One code block of a README: where it starts, what it is, and its text (dedented)."""

    index: int
    line: int
    kind: str
    code: str
    language: str = ""

    @property
    def runnable(self) -> bool:
        return self.kind in RUNNABLE_KINDS

    @property
    def first_line(self) -> str:
        """The first line of code (comments skipped where there is code), cut to 120 chars."""
        lines = [line.strip() for line in self.code.splitlines() if line.strip()]
        code = [line for line in lines if not line.startswith("#")] or lines or [""]
        return cut(code[0], 120)


@dataclass(frozen=True)
class Example:
    """One statement of a ``>>>`` session and the output the README shows for it."""

    source: str
    want: str
    line: int
    #: the exception the README shows instead of output ("" when none)
    exception: str = ""


def extract_blocks(text: str, content_type: str = "") -> list[Block]:
    """Find the code blocks of a README and classify each by its content.

    Markdown (``text/markdown``) yields fenced and indented blocks; reStructuredText and
    plain text yield code directives, ``::`` literal blocks and ``>>>`` paragraphs. With no
    or an unknown content type, a README with fences and no reST directive is read as Markdown.
    """
    lines = text.expandtabs(8).splitlines()
    ctype = content_type.lower()
    markdown = "markdown" in ctype or (
        "rst" not in ctype
        and any(_FENCE.match(line) for line in lines)
        # reST directives at the margin (``.. image::``) outvote fences: freezegun and boto3
        # declare no type, write reST and quote a fence or two
        and not any(_RST_DIRECTIVE.match(line) for line in lines)
    )
    raw = _markdown_blocks(lines) if markdown else _rst_blocks(lines)
    blocks: list[Block] = []
    for start, language, body in raw:
        while body and not body[0].strip():
            body, start = body[1:], start + 1
        code = textwrap.dedent("\n".join(body)).strip("\n")
        if code.strip():
            kind = classify(code, language)
            blocks.append(Block(len(blocks), start + 1, kind, code, language))
    return blocks


def _markdown_blocks(lines: list[str]) -> Iterator[tuple[int, str, list[str]]]:
    """Fenced and indented code blocks as CommonMark finds them (markdown-it-py).

    Measured against the hand-written finder this replaced (benchmarks/readme_finders.py, 28
    Markdown READMEs of popular packages): the same 250 blocks, less 4 the hand-written finder
    took for code: paragraphs continuing a list item, indented past four columns.
    """
    from markdown_it import MarkdownIt

    for token in MarkdownIt("commonmark").parse("\n".join(lines)):
        if token.type not in ("fence", "code_block") or token.map is None:
            continue
        first = token.map[0] + (1 if token.type == "fence" else 0)  # 0-based first code line
        info = token.info.split()
        body = token.content.splitlines()
        if info and info[0].startswith("{") and info[0].endswith("}"):
            language, skipped = _myst_directive(info, body)
            yield first + skipped, language, body[skipped:]
            continue
        language = info[0].strip("{}.").lower() if info else ""
        yield first, language, body


def _myst_directive(info: list[str], body: list[str]) -> tuple[str, int]:
    """A MyST directive fence (```` ```{code-block} python ````): the language its code is in
    (the directive's name for one that holds no code: ``note``, ``eval-rst``), and how many
    lines of options (``:linenos:``, or a ``---`` block) open its body."""
    name = info[0][1:-1].strip().lower()
    if name not in _MYST_CODE:
        return name, 0
    language = info[1].lower() if len(info) > 1 else _MYST_CODE[name]
    skipped = 0
    if body and body[0].strip() == "---":
        closing = next((i for i in range(1, len(body)) if body[i].strip() == "---"), None)
        skipped = closing + 1 if closing is not None else 0
    while skipped < len(body) and _OPTION.match(" " + body[skipped]):
        skipped += 1
    return language, skipped


def _rst_blocks(lines: list[str]) -> Iterator[tuple[int, str, list[str]]]:
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = _DIRECTIVE.match(line)
        if directive:
            start = i + 1
            while start < len(lines) and _OPTION.match(lines[start]):
                start += 1
            end = _indented_end(lines, start, _indent(line))
            # A testsetup block runs before the examples of its page, as Sphinx's doctest runs it.
            language = "python" if directive["name"] in _DOCTEST_DIRECTIVES else directive["lang"].lower()
            yield start, language, lines[start:end]
            i = max(end, start)
        elif line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
            end = _indented_end(lines, i + 1, _text_indent(lines, i))
            yield i + 1, "", lines[i + 1 : end]
            i = max(end, i + 1)
        elif line.lstrip().startswith(">>>"):
            end = i
            while end < len(lines) and lines[end].strip():
                end += 1
            yield i, "pycon", lines[i:end]
            i = end
        else:
            i += 1


def _text_indent(lines: list[str], i: int) -> int:
    """The column the paragraph text of ``lines[i]`` starts at: past a list marker, if any.

    A ``::`` literal block ends at the first line not indented past its paragraph's text, so in
    ``2. Install it::`` the prose after the block (indented 3, like the item's text) is not code.
    """
    if i > 0 and lines[i - 1].strip():
        return _indent(lines[i])  # a paragraph's later line: indented like its text
    marker = _LIST_MARKER.match(lines[i])
    return len(marker.group(0)) if marker else _indent(lines[i])


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _unindent(line: str, width: int) -> str:
    return line[min(width, _indent(line)) :]


def _indented_end(lines: list[str], start: int, base: int) -> int:
    """End (exclusive) of the run from ``start`` of blank lines and lines deeper than ``base``."""
    end = start
    for k in range(start, len(lines)):
        if lines[k].strip():
            if _indent(lines[k]) <= base:
                break
            end = k + 1
    return end


def classify(code: str, language: str = "") -> str:
    """Say what a block is: python, pycon, shell, toml, json or other.

    Content decides: a ``>>>`` prompt makes a session whatever the fence says. A fence
    naming another language (yaml, ini, bash...) is believed, since ``a: 1`` is valid Python.
    """
    lines = [line.strip() for line in code.splitlines() if line.strip()]
    if not lines:
        return "other"
    if lines[0].startswith(">>>"):
        return "pycon"
    if any(line.startswith(">>>") for line in lines):
        # Prompts further down: a session after some text, unless the block is Python whose
        # docstrings show sessions (tqdm's API listing: ``class tqdm():`` ... ``>>> t = tqdm()``).
        return "python" if language in _OPEN_LANGS and _parse(code) is not None else "pycon"
    language = language.lower()
    if language not in _OPEN_LANGS:
        return _LANG_KINDS.get(language, "other")
    return _data_kind(code, lines) or _code_kind(code, lines, language)


def _data_kind(code: str, lines: list[str]) -> str | None:
    """ "json" or "toml" for a block that is data, else None."""
    stripped = code.strip()
    if stripped[0] in "{[" and _is_json(stripped):
        return "json"
    return "toml" if _is_toml(code, lines) else None


def _is_toml(code: str, lines: list[str]) -> bool:
    """At least one ``[table]`` header, and every line a header, a key line or a comment."""
    return any(_TOML_TABLE.match(x) for x in lines) and all(
        _TOML_TABLE.match(x) or _TOML_LINE.match(x) or x.startswith("#")
        for x in code.splitlines()
        if x.strip()
    )


def _code_kind(code: str, lines: list[str], language: str) -> str:
    """ "shell", "python" or "other" for a block that is not data."""
    commands = [line for line in lines if not line.startswith("#")] or lines
    tree = _parse(code)
    if tree is None and _SHELL_START.match(commands[0]):
        return "shell"
    if tree is not None and _is_code(tree):
        return "python"
    # A python fence that does not parse is still the README's claim: run it, let it fail.
    return "python" if language in _PYTHON_LANGS and tree is None else "other"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _parse(code: str) -> ast.Module | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ast.parse(code)
        except (SyntaxError, ValueError):
            return None


def _is_code(tree: ast.Module) -> bool:
    """False for blocks that only name or show a value (``requests``, ``{'a': 1}``)."""
    for stmt in tree.body:
        if not isinstance(stmt, ast.Expr) or not _is_value(stmt.value):
            return True
    return False


def _is_value(node: ast.expr) -> bool:
    if isinstance(node, (ast.Name, ast.Attribute)):
        return True
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def parse_session(code: str, line: int = 1) -> list[Example]:
    """Split a ``>>>`` session into examples, leniently.

    Accepts continuation lines without ``...`` (indented ones after a compound statement,
    any line inside open brackets), code on the lines after a bare ``>>>``, and expected
    exceptions shown without a ``Traceback`` header. ``line`` is the block's first line.
    """
    lines = code.splitlines()
    examples = []
    i = 0
    # After a bare ">>>", unprompted code at column 0 stays code up to the next prompt,
    # blank lines between definitions included (orjson's README).
    code_mode = False
    while i < len(lines):
        prompt = _PS1.match(lines[i].strip())
        if prompt:
            start, source = i, [lines[i].strip()[prompt.end() :]]
            code_mode = not source[0].strip()
            i += 1
        elif code_mode and lines[i].strip() and not lines[i][:1].isspace():
            start, source = i - 1, [""]  # as if a bare ">>>" stood on the line before
        else:
            i += 1
            continue
        while i < len(lines) and lines[i].strip():
            more = _PS2.match(lines[i].strip()) or _prompted_body(source, lines[i].strip())
            if not more and _PS1.match(lines[i].strip()):
                break
            if more:
                source.append(lines[i].strip()[more.end() :])
            elif _continues(source, lines[i]):
                # Unprompted lines are indented past the 4-column prompt they lack, unless
                # the statement itself began unprompted after a bare ">>>" (orjson's README).
                source.append(_unindent(lines[i], 4 if source[0].strip() else 0))
            else:
                break
            i += 1
        want = []
        while i < len(lines) and lines[i].strip() and not _PS1.match(lines[i].strip()):
            want.append(lines[i])
            i += 1
        while len(source) > 1 and not source[0].strip():
            source, start = source[1:], start + 1  # the code begins after the bare ">>>"
        text = "\n".join(source).strip("\n")
        if text.strip():
            examples.append(Example(text, "\n".join(want), line + start, _exception(want)))
    return examples


def _prompted_body(source: list[str], line: str) -> re.Match[str] | None:
    """The prompt of ``>>>     body``: an indented line under an open header, prompted wrongly.

    pathspec's README writes ``>>> with open(...) as fh:`` then ``>>>     spec = ...``;
    a REPL would reject it, but a reader sees the body of the ``with``.
    """
    prompt = _PS1.match(line)
    if prompt is None:
        return None
    rest = line[prompt.end() :]
    if not (rest[:1].isspace() or _CLAUSE.match(rest)) or not _needs_body(source):
        return None
    return prompt


def _needs_body(source: list[str]) -> bool:
    """Whether ``source`` ends inside a compound statement that still takes lines."""
    text = "\n".join(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bool(text.strip()) and codeop.compile_command(text, "<readme>", "single") is None
        except (SyntaxError, ValueError, OverflowError):
            return False


def _continues(source: list[str], line: str) -> bool:
    """Whether an unprompted ``line`` continues the statement in ``source``."""
    text = "\n".join(source)
    if not text.strip():
        return True  # code after a bare ">>>"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if codeop.compile_command(text, "<readme>", "single") is not None:
                return False  # a complete simple statement: what follows is output
        except (SyntaxError, ValueError, OverflowError):
            return False
        try:
            compile(text + "\n", "<readme>", "exec")
        except (SyntaxError, ValueError):
            return True  # open brackets or a header without a body
    return line[:1].isspace()  # a compound statement takes indented lines only


def _exception(want: list[str]) -> str:
    if not want:
        return ""
    if want[0].startswith("Traceback (most recent call last)"):
        for line in reversed(want[1:]):
            if line.strip() and not line[:1].isspace() and line.strip() != "...":
                return line.split(":", 1)[0].strip().split(".")[-1]
        return ""
    # Without the header, an exception line opens or closes the output ("<...>" first).
    match = _EXCEPTION.match(want[0]) or _EXCEPTION.match(want[-1])
    return match["name"] if match else ""


def cut(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
