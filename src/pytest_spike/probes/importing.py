"""The import probe: import the candidate's top-level modules in a fresh interpreter."""

from __future__ import annotations

import json
from typing import Any

from pytest_spike.model import Finding, Severity
from pytest_spike.probes.base import ProbeContext, ProbeOutcome

#: An import slower than this is a low finding: every process that uses it pays it.
SLOW_IMPORT_S = 1.0
_MARK = "@@pytest-spike-import@@"
#: Warnings kept per module: the report line must stay inside the runner's output cap.
MAX_WARNINGS = 50
_WARNING_SEVERITY = {
    "DeprecationWarning": Severity.MEDIUM,
    "PendingDeprecationWarning": Severity.MEDIUM,
    "FutureWarning": Severity.MEDIUM,
}

# Runs in the candidate's interpreter: imports each module with every warning recorded.
_IMPORT_SCRIPT = """
import json, sys, time, traceback, warnings
out = []
for name in sys.argv[1:]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        error = None
        try:
            __import__(name)
        except BaseException as exc:
            error = "".join(traceback.format_exception_only(type(exc), exc)).strip()[-2000:]
        took = time.perf_counter() - start
    out.append({
        "module": name, "seconds": took, "error": error,
        "warnings": [
            {"category": w.category.__name__, "message": str(w.message)[:300],
             "where": "%s:%s" % (w.filename, w.lineno)}
            for w in caught[:@MAX_WARNINGS@]
        ],
    })
# A newline first: the import may have printed text without one.
sys.stdout.write("\\n" + @MARK@ + json.dumps(out) + "\\n")
""".replace("@MARK@", repr(_MARK)).replace("@MAX_WARNINGS@", str(MAX_WARNINGS))


def probe_import(ctx: ProbeContext) -> ProbeOutcome:
    info = ctx.inspect()
    cand = ctx.candidate
    if ctx.python is None or (not info.get("installed") and not cand.modules):
        return ProbeOutcome(skipped=f"{cand.project} is not installed (see the install probe)")
    modules = list(cand.modules or info.get("modules") or [cand.project.replace("-", "_")])
    result = ctx.run([str(ctx.python), "-c", _IMPORT_SCRIPT, *modules])
    details: dict[str, Any] = {"modules": modules, "python": ctx.python}
    imports = _read_report(result.stdout)
    if imports is None:
        # The interpreter died before reporting: a crash, an os._exit or a hang.
        code = "import.timeout" if result.timed_out else "import.crashed"
        detail = result.last_error_line()
        details.update(ended=result.describe(), stderr_tail=result.stderr[-2000:])
        return ProbeOutcome(
            findings=[
                Finding(
                    code,
                    Severity.CRITICAL,
                    f"importing {', '.join(modules)} {result.describe()}" + (f": {detail}" if detail else ""),
                    {"ended": result.describe(), "excerpt": detail},
                )
            ],
            details=details,
            version=info.get("version"),
            peak_memory_mb=result.peak_memory_mb,
        )
    findings: list[Finding] = []
    details["imports"] = imports
    for entry in imports:
        module = entry["module"]
        if entry["error"]:
            findings.append(
                Finding(
                    "import.failed",
                    Severity.CRITICAL,
                    f"import {module} failed: {entry['error'].splitlines()[-1]}",
                    {"module": module, "excerpt": entry["error"][-500:]},
                )
            )
            continue
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
    details["import_s"] = round(sum(e["seconds"] for e in imports), 4)
    return ProbeOutcome(
        findings=findings,
        details=details,
        version=info.get("version"),
        peak_memory_mb=result.peak_memory_mb,
    )


def _read_report(stdout: str) -> list[dict[str, Any]] | None:
    """The import script's report, or None when the interpreter never wrote a whole one."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(_MARK):
            try:
                report = json.loads(line[len(_MARK) :])
            except ValueError:
                return None  # cut by the output cap, or by a crash in mid-write
            return report if isinstance(report, list) else None
    return None


def _unique(warnings: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for warning in warnings:
        seen.setdefault((warning["category"], warning["message"]), warning)
    return list(seen.values())
