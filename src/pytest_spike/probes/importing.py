"""The import probe: import the candidate's public modules in a fresh interpreter.

Which modules, and whose warnings count, is decided in the candidate's interpreter by
``_import_child.py``: namespace packages resolve to the real packages below them, private
modules and shims are imported only when nothing else exists, and a warning counts against
the candidate only when its own public code raised it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_spike._core import runner
from pytest_spike.model import TAMPERED, Blame, Finding, Severity
from pytest_spike.probes.base import ProbeContext, ProbeOutcome

#: An import slower than this is a low finding: every process that uses it pays it.
SLOW_IMPORT_S = 1.0
_MARK = "@@pytest-spike-import@@"
_PLAN_MARK = "@@pytest-spike-import-plan@@"
#: Warnings kept per module: the report line must stay inside the runner's output cap.
MAX_WARNINGS = 50
_WARNING_SEVERITY = {
    "DeprecationWarning": Severity.MEDIUM,
    "PendingDeprecationWarning": Severity.MEDIUM,
    "FutureWarning": Severity.MEDIUM,
}
#: Whose warning it is (see _import_child.py) -> whether it counts against the candidate.
_CHARGED_OWNERS = {"candidate": True, "importer": True, "shim": False, "other": False, "alias": False}
_NOT_CHARGED_WHY = {
    "shim": "raised by a private module of the distribution",
    "other": "raised by another module (a dependency or the standard library)",
    "alias": "a deprecated alias module: the module it points to imported clean",
}
_CHILD_SOURCE = (Path(__file__).parent / "_import_child.py").read_text(encoding="utf-8")
NOTHING_IMPORTABLE = "nothing importable found"
#: Modules named in the one-line summary; the details list them all.
_NAMED_IN_MESSAGE = 4


def probe_import(ctx: ProbeContext) -> ProbeOutcome:
    info = ctx.inspect()
    cand = ctx.candidate
    if ctx.python is None or (not info.get("installed") and not cand.modules):
        return ProbeOutcome(skipped=f"{cand.project} is not installed (see the install probe)")
    dist = info.get("name") or cand.project
    args = _child_args(dist, cand.modules)
    result = ctx.run(runner.python_argv(str(ctx.python), _CHILD_SOURCE, json.dumps(args)), stage="import")
    plan = _read_line(result.stdout, _PLAN_MARK, dict) or {}
    details = _plan_details(plan, ctx.python)
    version = info.get("version")
    imports = _read_line(result.stdout, _MARK, list)
    forged = _forged(result, _MARK)
    if imports is None or (forged and not result.ok):
        # No report, or one the child did not end with: what the host saw wins.
        outcome = _died(result, details, version, cand.project)
        outcome.findings[:0] = forged
        return outcome
    details["imports"] = imports
    details["import_s"] = round(sum(e["seconds"] for e in imports), 4)
    imports = _counted(imports, plan.get("how"))
    real = [e["module"] for e in imports if e["real"] or e["error"]]
    if not real:
        why = _nothing_importable(plan.get("how"), dist, details["modules"])
        return ProbeOutcome(
            details=details, version=version, skipped=why, peak_memory_mb=result.peak_memory_mb
        )
    details["modules"] = real
    clean = {e["module"].split(".")[0] for e in imports if not e["error"]}
    findings = [f for entry in imports for f in _entry_findings(entry, clean)]
    findings += _aliases(imports)
    findings += _not_charged(imports, details)
    findings[:0] = forged
    findings.append(_imported(imports, details["left_out"], plan.get("only_private", False)))
    return ProbeOutcome(findings, details, version, peak_memory_mb=result.peak_memory_mb)


def _counted(imports: list[dict[str, Any]], how: str | None) -> list[dict[str, Any]]:
    """The import entries that are evidence: where the module name was only a guess from
    the project's name, not finding it is no evidence."""
    if how != "guessed":
        return imports
    return [e for e in imports if not (e["error"] or "").startswith("ModuleNotFoundError")]


def _child_args(dist: str, modules: Sequence[str]) -> dict[str, Any]:
    """The JSON arguments of ``_import_child.py``."""
    return {
        "dist": dist,
        "modules": list(modules),
        "mark": _MARK,
        "plan_mark": _PLAN_MARK,
        "max_warnings": MAX_WARNINGS,
    }


def _plan_details(plan: dict[str, Any], python: str) -> dict[str, Any]:
    """The details the child's plan gives: modules chosen, how found, what was left out."""
    return {
        "modules": list(plan.get("modules") or []),
        "found_by": plan.get("how"),
        "left_out": plan.get("left_out") or {},
        "python": python,
    }


def _died(
    result: runner.RunResult, details: dict[str, Any], version: str | None, project: str
) -> ProbeOutcome:
    """The interpreter died before reporting (a crash, an ``os._exit`` or a hang): critical."""
    code = "import.timeout" if result.timed_out else "import.crashed"
    detail = result.last_error_line()
    what = ", ".join(details["modules"]) or f"the modules of {project}"
    details.update(ended=result.describe(), stderr_tail=result.stderr[-2000:])
    finding = Finding(
        code,
        Severity.CRITICAL,
        f"importing {what} {result.describe()}" + (f": {detail}" if detail else ""),
        {"ended": result.describe(), "excerpt": detail},
    )
    return ProbeOutcome([finding], details, version, peak_memory_mb=result.peak_memory_mb)


_MISSING = re.compile(r"^ModuleNotFoundError: No module named '([^'.]+)")


def _optional_dependency(entry: dict[str, Any], clean: frozenset[str] | set[str]) -> str:
    """The missing package when a secondary top-level module of the candidate (duckdb's
    ``adbc_driver_duckdb``) needs one that is not installed while its main modules import
    clean: an optional extra, not a broken candidate ("" otherwise)."""
    error = (entry["error"] or "").strip().splitlines()
    match = _MISSING.match(error[-1]) if error else None
    top = entry["module"].split(".")[0]
    if not match or not clean or top in clean or match.group(1) == top or match.group(1) in clean:
        return ""
    return match.group(1)


def _nothing_importable(how: str | None, dist: str, modules: list[str]) -> str:
    """Why no module was real: a guessed name that isn't there, or an empty namespace."""
    why = NOTHING_IMPORTABLE
    if how == "guessed":
        return why + f": {dist} lists no module, and none is named {', '.join(modules)}"
    if modules:
        return why + f": {', '.join(modules)} is only an empty namespace"
    return why


def _entry_findings(entry: dict[str, Any], clean: frozenset[str] | set[str] = frozenset()) -> list[Finding]:
    module = entry["module"]
    optional = _optional_dependency(entry, clean)
    if optional:
        return [
            Finding(
                "import.optional",
                Severity.INFO,
                f"import {module} needs {optional!r}, an optional package that is not installed; "
                f"{', '.join(sorted(clean))} imported clean",
                {"module": module, "excerpt": entry["error"][-500:]},
                blame=Blame.ENVIRONMENT,
            )
        ]
    if entry["error"]:
        return [
            Finding(
                "import.failed",
                Severity.CRITICAL,
                f"import {module} failed: {entry['error'].splitlines()[-1]}",
                {"module": module, "excerpt": entry["error"][-500:]},
            )
        ]
    findings = []
    if entry["seconds"] > SLOW_IMPORT_S:
        findings.append(
            Finding(
                "import.slow",
                Severity.LOW,
                f"import {module} took {entry['seconds']:.2f}s (over {SLOW_IMPORT_S:.0f}s)",
                {"module": module, "seconds": f"{entry['seconds']:.3f}"},
            )
        )
    for warning in _unique(entry["warnings"]):
        if not _CHARGED_OWNERS.get(warning.get("owner", "candidate"), True):
            continue
        severity = _WARNING_SEVERITY.get(warning["category"], Severity.LOW)
        code = "import.deprecation" if severity is Severity.MEDIUM else "import.warning"
        findings.append(
            Finding(
                code,
                severity,
                f"import {module} raises {warning['category']}: {warning['message']}",
                {"module": module, "where": warning["where"]},
            )
        )
    return findings


def _aliases(imports: list[dict[str, Any]]) -> list[Finding]:
    """One info finding per deprecated alias module whose real module imported clean."""
    findings = []
    for entry in imports:
        for warning in _unique(entry["warnings"]):
            if warning.get("owner") != "alias":
                continue
            target = warning.get("points_to", "")
            findings.append(
                Finding(
                    "import.alias",
                    Severity.INFO,
                    f"import {entry['module']} is a deprecated alias ({warning['category']}: "
                    f"{warning['message']}); imported {target}, which it points to, instead: clean",
                    {"module": entry["module"], "points_to": target, "where": warning["where"]},
                )
            )
    return findings


def _not_charged(imports: list[dict[str, Any]], details: dict[str, Any]) -> list[Finding]:
    """Warnings that other code raised: kept in the details, one info finding, no points."""
    rows = [
        {"module": e["module"], **w, "why": _NOT_CHARGED_WHY[w["owner"]]}
        for e in imports
        for w in _unique(e["warnings"])
        if not _CHARGED_OWNERS.get(w.get("owner", "candidate"), True) and w.get("owner") != "alias"
    ]
    details["warnings_not_charged"] = rows
    if not rows:
        return []
    first = rows[0]
    more = f" and {len(rows) - 1} more" if len(rows) > 1 else ""
    return [
        Finding(
            "import.foreign_warning",
            Severity.INFO,
            f"{len(rows)} warning(s) while importing, not charged: {first['category']} at {first['where']} "
            f"({first['why']}){more}",
            {"module": first["module"], "where": first["where"]},
        )
    ]


def _imported(imports: list[dict[str, Any]], left_out: dict[str, str], only_private: bool) -> Finding:
    """What the verdict rests on: the modules imported, and those left out."""
    done = [e for e in imports if e["real"] or e["error"]]
    if len(done) <= _NAMED_IN_MESSAGE:
        message = "imported " + ", ".join(f"{e['module']} ({e['seconds']:.2f}s)" for e in done)
    else:
        named = ", ".join(e["module"] for e in done[:_NAMED_IN_MESSAGE])
        took = sum(e["seconds"] for e in done)
        message = (
            f"imported {len(done)} modules ({named} and {len(done) - _NAMED_IN_MESSAGE} more) in {took:.2f}s"
        )
    if left_out:
        names = list(left_out)
        more = f" and {len(names) - _NAMED_IN_MESSAGE} more" if len(names) > _NAMED_IN_MESSAGE else ""
        message += f"; left out {', '.join(names[:_NAMED_IN_MESSAGE])}{more}"
    if only_private:
        message += "; the distribution has only private modules"
    return Finding(
        "import.modules", Severity.INFO, message, {"modules": ", ".join(e["module"] for e in done)}
    )


def _forged(result: runner.RunResult, mark: str) -> list[Finding]:
    """``spike.tampered`` when the child's report contradicts what the host saw.

    The child runs the exit hooks, then writes one report and ends at once with status 0
    (``os._exit``: nothing of the candidate's runs after it). More than one report line, or a report from a child that did not exit
    with 0, means candidate code wrote one: the host's observation (the exit status, the
    signal, the traceback) decides.
    """
    reports = sum(1 for line in result.stdout.splitlines() if line.startswith(mark))
    if reports == 0 or (reports == 1 and result.ok):
        return []
    why = f"{reports} import reports" if reports > 1 else "an import report"
    said = f"{why} in the child's output, which {result.describe()}: candidate code wrote a report of its own"
    return [Finding(TAMPERED, Severity.CRITICAL, said, {"ended": result.describe(), "reports": str(reports)})]


def _read_line(stdout: str, mark: str, kind: type) -> Any:
    """The JSON after ``mark`` on its last line, or None when the child never wrote a whole one."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(mark):
            try:
                value = json.loads(line[len(mark) :])
            except ValueError:
                return None  # cut by the output cap, or by a crash in mid-write
            return value if isinstance(value, kind) else None
    return None


def _unique(warnings: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for warning in warnings:
        seen.setdefault((warning["category"], warning["message"]), warning)
    return list(seen.values())
