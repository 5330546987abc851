"""Whose fault a README block's failure is (evidence rule 1, attribution).

A README example that fails is evidence against the candidate only when nothing else
explains it. The child (``readme._child``) reports the facts of each failure: the
exception's kind and subject, the README line it came from, whether the network was
refused, whether a timed-out block listened on a socket or was still printing. Here the
rules turn those facts, and what the whole README defines, into an :class:`Attribution`
(``unchecked``: never scored) or ``None`` (the candidate's: scored). Each rule names its
evidence in the reason, so the scorecard can say why a block was not counted.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_spike.model import Blame
from pytest_spike.readme.blocks import Block, cut, parse_session


@dataclass(frozen=True)
class Attribution:
    """Why a block's failure is not counted against the candidate."""

    blame: Blame
    reason: str


@dataclass(frozen=True)
class ReadmeFacts:
    """What the whole README defines and names, and what the candidate owns."""

    #: names each runnable block binds at module level (imports, assignments, defs)
    bound: Mapping[int, frozenset[str]]
    #: names the runnable blocks read
    used: frozenset[str]
    #: names each runnable block reads
    used_by: Mapping[int, frozenset[str]]
    #: whether some block imports ``*`` (a name then may come from anywhere)
    star_import: bool
    #: the code of every block, runnable or not (paths the README names)
    text: str
    #: the candidate's top-level modules and its distribution name as a module name
    own: frozenset[str]

    @classmethod
    def of(cls, blocks: Sequence[Block], modules: Sequence[str] = (), dist_name: str = "") -> ReadmeFacts:
        bound: dict[int, frozenset[str]] = {}
        used: set[str] = set()
        used_by: dict[int, frozenset[str]] = {}
        star = False
        for block in blocks:
            if not block.runnable:
                continue
            names: set[str] = set()
            reads: set[str] = set()
            for tree in _trees(block):
                found, has_star = _module_bindings(tree)
                names |= found
                star = star or has_star
                reads.update(
                    n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                )
            bound[block.index] = frozenset(names)
            used_by[block.index] = frozenset(reads)
            used |= reads
        own = {m for m in modules if m.isidentifier()}
        if dist_name:
            own.add(re.sub(r"[-.]+", "_", dist_name).lower())
        return cls(bound, frozenset(used), used_by, star, "\n".join(b.code for b in blocks), frozenset(own))

    def assumed_imports(self, modules: Sequence[str]) -> list[str]:
        """The candidate's modules the README uses before any example imports them
        (``regex.match(...)``; wcwidth's ``wcwidth.wcwidth(...)`` before a later
        ``from wcwidth import wcwidth``)."""
        order = sorted(self.bound)
        assumed = []
        for module in modules:
            first_use = next((i for i in order if module in self.used_by.get(i, ())), None)
            first_bind = next((i for i in order if module in self.bound[i]), None)
            if first_use is not None and (first_bind is None or first_use < first_bind):
                assumed.append(module)
        return assumed


@dataclass(frozen=True)
class Failure:
    """One block's failed or timed-out run, with what the rules need to judge it."""

    block: Block
    run: Mapping[str, Any]
    readme: ReadmeFacts
    #: indices of the blocks that ran clean (alone or after the others)
    ok: frozenset[int]
    limit: float

    @property
    def facts(self) -> Mapping[str, Any]:
        return self.run.get("facts") or {}

    @property
    def kind(self) -> str:
        return str(self.facts.get("type") or "")

    def source_line(self) -> str:
        """The README line the failure came from, without its ``>>>`` prompt ("" if unknown)."""
        line = self.facts.get("line")
        lines = self.block.code.splitlines()
        if not isinstance(line, int) or not 0 <= line - self.block.line < len(lines):
            return ""
        return re.sub(r"^\s*(?:>>>|\.\.\.)\s?", "", lines[line - self.block.line]).strip()


def attribute(failure: Failure) -> Attribution | None:
    """Whose fault ``failure`` is: an Attribution when not the candidate's, else None."""
    for rule in RULES:
        found = rule(failure)
        if found is not None:
            return found
    return None


def documented_raise(failure: Failure) -> str:
    """The README's comment saying the failing line raises what it raised ("" if none).

    pydantic's README ends an example with ``Page.model_validate_json(...)`` and the
    comment ``# After: ValidationError (extra_forbidden)``: the block did what it says.
    """
    line, kind = failure.facts.get("line"), failure.kind
    if failure.block.kind != "python" or not isinstance(line, int) or not kind.isidentifier():
        return ""
    lines = failure.block.code.splitlines()
    start = line - failure.block.line
    for text in lines[max(start, 0) : start + 4]:
        comment = text.partition("#")[2]
        if re.search(rf"\b{re.escape(kind)}\b", comment):
            return comment.strip()
    return ""


def _spike_error(f: Failure) -> Attribution | None:
    if f.run.get("spike"):
        return Attribution(Blame.SPIKE, f"pytest-spike's own runner failed: {f.run.get('error', '')}")
    return None


def _network(f: Failure) -> Attribution | None:
    if f.facts.get("refused"):
        return Attribution(
            Blame.ENVIRONMENT,
            "needs network access, which pytest-spike refused (--spike-allow-network allows it)",
        )
    if f.kind in _CONNECTION_ERRORS:
        # Nothing listened where the example connects: a server another example starts (and we
        # stopped), or a service the reader runs. A refused connection says nothing of the code.
        return Attribution(Blame.ENVIRONMENT, f"connects to a server that is not running here ({f.kind})")
    return None


#: Raised when the other end of a connection is not there.
_CONNECTION_ERRORS = frozenset(
    "ConnectionRefusedError ConnectionResetError ConnectionAbortedError ConnectionError".split()
)


#: Frames of a loop that serves or runs until stopped, by design.
_SERVE_FRAMES = frozenset(
    "serve_forever run_forever serve_until_stopped accept mainloop run_polling start_polling "
    "idle run_app serve".split()
)


def _timeout(f: Failure) -> Attribution | None:
    """A block that ran out of time hung unless it shows it runs until stopped by design."""
    if f.run.get("status") != "timeout":
        return None
    facts = f.facts
    if facts.get("listening"):
        return Attribution(
            Blame.ENVIRONMENT, "starts a server (it listened on a socket): it runs until stopped"
        )
    serving = [name for name in facts.get("frames") or () if name in _SERVE_FRAMES]
    if serving:
        return Attribution(Blame.ENVIRONMENT, f"entered a loop that runs until stopped ({serving[-1]})")
    quiet = facts.get("quiet_s")
    if isinstance(quiet, (int, float)) and quiet <= max(1.0, f.limit / 5):
        return Attribution(
            Blame.ENVIRONMENT,
            f"was still printing {quiet:.1f}s before its time ran out (a progress or streaming demo)",
        )
    if _loops_forever(f.block):
        return Attribution(Blame.ENVIRONMENT, "loops forever by design (`while True` without a break)")
    if facts.get("computing"):
        elapsed, cpu = facts.get("elapsed_s") or 0, facts.get("cpu_s") or 0
        return Attribution(
            Blame.ENVIRONMENT,
            f"slow: still computing after {elapsed:.0f} s (it used {cpu:.0f} s of CPU, growing up to "
            f"the end of its {facts.get('slow_limit') or elapsed:g} s allowance): working, not hung",
        )
    return None


def _syntax(f: Failure) -> Attribution | None:
    if f.facts.get("phase") != "compile":
        return None
    error = str(f.run.get("error", ""))
    if "Missing parentheses in call to 'print'" in error:
        return None  # a README written for Python 2: the candidate's
    return Attribution(
        Blame.SPIKE,
        f"not valid Python as read ({error}): an illustration, a placeholder or our cut of the block",
    )


def _system_exit(f: Failure) -> Attribution | None:
    if f.kind != "SystemExit":
        return None
    return Attribution(
        Blame.ENVIRONMENT,
        f"a command-line example: it exited with status {f.facts.get('code')!r} "
        "(pytest-spike runs it with no arguments)",
    )


def _stdin(f: Failure) -> Attribution | None:
    if f.kind != "EOFError":
        return None
    return Attribution(Blame.ENVIRONMENT, "reads standard input, which pytest-spike closes")


def _argv(f: Failure) -> Attribution | None:
    if f.kind != "IndexError" or "sys.argv" not in f.source_line():
        return None
    return Attribution(Blame.ENVIRONMENT, "reads command-line arguments, which pytest-spike does not give")


def _undefined_name(f: Failure) -> Attribution | None:
    name = f.facts.get("name")
    if f.kind != "NameError" or not name or not f.facts.get("in_readme"):
        return None  # raised inside the candidate's code: its bug
    before = [i for i, names in f.readme.bound.items() if name in names and i < f.block.index]
    if before:
        # A consequence: the block that defines it failed (and counts on its own), or
        # ran clean in a process that a later block ended, so the namespace started over.
        why = (
            "an earlier example ended the process" if set(before) <= f.ok else "its example did not run clean"
        )
        return Attribution(Blame.ENVIRONMENT, f"uses {name!r}, defined by an earlier example, but {why}")
    defined = any(name in names for names in f.readme.bound.values())
    if defined or f.readme.star_import or name in f.readme.own:
        return None  # used before the README defines it, or missing from the candidate
    return Attribution(
        Blame.ENVIRONMENT, f"uses {name!r}, which the README never defines: left to the reader"
    )


def _missing_module(f: Failure) -> Attribution | None:
    module = str(f.facts.get("module") or "")
    if f.kind != "ModuleNotFoundError" or not module:
        return None
    top = module.split(".")[0]
    if top in f.readme.own or f.facts.get("installed"):
        return None  # the candidate's own module, or a part missing from an installed package
    return Attribution(
        Blame.ENVIRONMENT,
        f"needs {top!r}, an optional package that is not installed (the candidate does not require it)",
    )


def _reader_path(f: Failure) -> Attribution | None:
    filename = f.facts.get("filename")
    if isinstance(filename, str) and filename.strip("./"):
        names = [filename]
    elif f.kind in _FILE_ERRORS or _NO_FILE.search(_error(f)):
        # Raised from compiled code with the name only in its message (a Rust reader's
        # "No such file or directory (os error 2): orders.parquet"): the message's paths.
        names = _PATHLIKE.findall(_error(f).partition(":")[2])
    else:
        return None
    for name in names:
        path = re.sub(r"^(?:\./)+", "", name.strip("'\"`")).rstrip("/")
        if path.strip("./") and path in f.readme.text:
            return Attribution(
                Blame.ENVIRONMENT,
                f"uses {path!r}, a path the README names but never creates: left to the reader",
            )
    return None  # a path the candidate's code made up (its missing data file, say)


_FILE_ERRORS = frozenset({"FileNotFoundError", "IsADirectoryError", "NotADirectoryError"})
_NO_FILE = re.compile(r"No such file or directory|\bos error 2\b|\bfile not found\b", re.IGNORECASE)
#: A path in an error message: a name with a suffix or a folder (``orders.parquet``, ``data/x``).
_PATHLIKE = re.compile(r"[\w~.-]*[\w~-][/\\][\w./\\~-]+|[\w~-][\w.~-]*\.[A-Za-z]\w{0,9}\b")


def _error(f: Failure) -> str:
    return str(f.run.get("error") or "")


#: An error that says, in words, that an optional package is not there: "You must install
#: the matplotlib library to plot", "requires pandas matplotlib ... to be installed", "Do
#: you need to install a parser library?", "pip install x".
_INSTALL_HINT = re.compile(
    r"\b(?:must|need(?:s)? to|have to|please|should)\b[^.?!]{0,60}?\binstall\b"
    r"|\b(?:to be|is not|are not|not) installed\b|\b(?:pip|conda) install\b",
    re.IGNORECASE,
)


def _install_hint(f: Failure) -> Attribution | None:
    error = _error(f)
    if f.kind in ("SyntaxError", "AssertionError") or not _INSTALL_HINT.search(error):
        return None
    return Attribution(
        Blame.ENVIRONMENT,
        f"needs an optional package that is not installed, as its message says ({cut(error, 200)})",
    )


#: Data or a model the reader downloads before the example runs: spaCy's "[E050] Can't find
#: model 'en_core_web_sm'", NLTK's "Resource punkt not found. Please use the NLTK Downloader".
_DOWNLOAD_FIRST = re.compile(
    r"can'?t find model|could not find (?:the )?model|\bresource\b[^.]{0,80}\bnot found"
    r"|\bdownload(?:er|ed)?\b[^.]{0,80}\b(?:model|data|dataset|corpus|corpora|resource|weights)\b"
    r"|\b(?:model|data|dataset|corpus|resource|weights)\b[^.]{0,80}\bdownload",
    re.IGNORECASE,
)


def _download_first(f: Failure) -> Attribution | None:
    error = _error(f)
    if not _DOWNLOAD_FIRST.search(error):
        return None
    return Attribution(
        Blame.ENVIRONMENT,
        f"needs data or a model the reader downloads first ({cut(error, 200)})",
    )


#: A system facility the box does not have: a display, a clipboard, a sound device.
_FACILITY = re.compile(
    r"\$DISPLAY|no display name|cannot open display|couldn'?t connect to display|no display found"
    r"|clipboard|copy/paste mechanism|\b(?:xclip|xsel|wl-copy|pbcopy)\b"
    r"|no (?:audio|sound) device|PortAudio",
    re.IGNORECASE,
)


def _system_facility(f: Failure) -> Attribution | None:
    error = _error(f)
    match = _FACILITY.search(error)
    if not match:
        return None
    what = "a clipboard" if re.search(r"clip|paste|xsel|copy", match.group(0), re.I) else "a display"
    if re.search(r"audio|sound", match.group(0), re.I):
        what = "a sound device"
    return Attribution(
        Blame.ENVIRONMENT,
        f"needs {what}, a system facility pytest-spike's box does not have ({cut(error, 200)})",
    )


#: ``...`` standing for code or values: ``f([...])``, ``f(a, ...)``, ``key=...``.
_ELLIPSIS = re.compile(r"[\[(,{=:]\s*\.\.\.\s*[\])},]")
_STRING = re.compile(r"""(['"])(?:\\.|(?!\1).)*\1""")


def _ellipsis(f: Failure) -> Attribution | None:
    line = _STRING.sub("''", f.source_line())
    if not _ELLIPSIS.search(line):
        return None
    return Attribution(Blame.ENVIRONMENT, "the failing line elides code with `...`: a placeholder")


#: Tried in order; the first that applies decides.
RULES: tuple[Callable[[Failure], Attribution | None], ...] = (
    _spike_error,
    _network,
    _timeout,
    _syntax,
    _system_exit,
    _stdin,
    _argv,
    _undefined_name,
    _missing_module,
    _reader_path,
    _system_facility,
    _install_hint,
    _download_first,
    _ellipsis,
)


# --- reading the README's code -------------------------------------------------------


def _parse(source: str) -> ast.Module | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ast.parse(source)
        except (SyntaxError, ValueError):
            return None


def _trees(block: Block) -> Iterator[ast.Module]:
    sources = (
        [e.source for e in parse_session(block.code, block.line)] if block.kind == "pycon" else [block.code]
    )
    for source in sources:
        tree = _parse(source)
        if tree is not None:
            yield tree


def _module_bindings(tree: ast.Module) -> tuple[set[str], bool]:
    """Names bound at module level (function and class bodies are not entered)."""
    names: set[str] = set()
    star = False
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                star = star or alias.name == "*"
                names.add(alias.asname or alias.name.split(".")[0])
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        pending.extend(ast.iter_child_nodes(node))
    names.discard("*")
    return names, star


def _loops_forever(block: Block) -> bool:
    """Whether the block has a ``while True`` loop with no ``break`` or ``return`` of its own."""
    for tree in _trees(block):
        for node in ast.walk(tree):
            if isinstance(node, ast.While) and _always(node.test) and not _exits(node):
                return True
    return False


def _always(test: ast.expr) -> bool:
    return isinstance(test, ast.Constant) and bool(test.value) is True


def _exits(loop: ast.While) -> bool:
    """Whether a ``break``, ``return`` or ``raise`` can end ``loop`` (nested defs excluded)."""
    pending: list[tuple[ast.AST, bool]] = [(node, False) for node in loop.body]
    while pending:
        node, nested = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Return, ast.Raise)) or (isinstance(node, ast.Break) and not nested):
            return True
        inner = nested or isinstance(node, (ast.For, ast.AsyncFor, ast.While))
        pending.extend((child, inner) for child in ast.iter_child_nodes(node))
    return False
