"""Headless Chromium, driven over the DevTools protocol on a pipe, with the standard library only.

``chromium --remote-debugging-pipe`` reads protocol commands on its fd 3 and writes answers
and events on its fd 4, each one JSON message ending in a NUL byte. That is all a test needs
to open a page at a given size, collect what the page logs as an error (uncaught exceptions,
``console.error``, refused resources, Content Security Policy violations), evaluate a check
in the page and take a screenshot, with no extra Python package and no port to race for.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Names Chromium goes by: Debian's package, Ubuntu's snap wrapper, Google's build.
EXECUTABLES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    env = os.environ.get("SPIKE_CHROMIUM")
    if env:
        return env
    return next((found for name in EXECUTABLES if (found := shutil.which(name))), None)


class BrowserError(RuntimeError):
    """The browser died, answered with an error, or did not answer in time."""


@dataclass
class PageResult:
    """What a page did: its errors, the check's value and a PNG screenshot."""

    errors: list[str] = field(default_factory=list)
    checks: Any = None
    png: bytes = b""


class Chromium:
    """One headless Chromium process and one page in it."""

    def __init__(self, executable: str, profile: Path, *, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict[str, Any]] = []
        self._log = open(profile / "chromium.log", "wb")  # closed in close()
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The child's ends move to 3 and 4 after the fork; above 4 first, so neither dup2
        # overwrites the other. Python's own fds are close-on-exec, so only these two pass.
        to_browser_r, from_browser_w = (self._above_4(fd) for fd in (to_browser_r, from_browser_w))
        args = [
            executable,
            "--headless",
            "--no-sandbox",  # containers and root: the sandbox needs privileges they lack
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--window-size=1280,900",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]

        def wire() -> None:  # in the child: the protocol's fds are 3 (commands) and 4 (answers)
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,  # a file, never a pipe nobody reads while the page loads
            close_fds=False,  # keeps 3 and 4, which exist only after wire() runs in the child
            preexec_fn=wire,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)

    @staticmethod
    def _above_4(fd: int) -> int:
        moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5)
        os.close(fd)
        return moved

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.call("Browser.close", timeout=10)
            except (BrowserError, OSError):
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()

    # -- the protocol ---------------------------------------------------------------------

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one command and wait for its answer; events that arrive meanwhile are kept."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        answer = self._wait(lambda m: m.get("id") == self._next_id, timeout, f"an answer to {method}")
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return dict(answer.get("result") or {})

    def wait_event(
        self, method: str, *, session: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        for i, event in enumerate(self.events):
            if event.get("method") == method and event.get("sessionId") == session:
                return self.events.pop(i)
        return self._wait(
            lambda m: m.get("method") == method and m.get("sessionId") == session, timeout, method, keep=False
        )

    def _wait(self, wanted: Any, timeout: float | None, what: str, keep: bool = True) -> dict[str, Any]:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if wanted(message):
                    return message
                if "method" in message:
                    self.events.append(message)
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no {what} within {timeout or self.timeout:.0f}s")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    stderr = Path(self._log.name).read_text(errors="replace")
                    raise BrowserError(
                        f"the browser closed the pipe while waiting for {what}: {stderr[-2000:]}"
                    )
                self._buffer += chunk

    # -- a page ---------------------------------------------------------------------------

    def open(
        self,
        url: str,
        check: str,
        *,
        width: int = 1280,
        height: int = 900,
        full_page: bool = True,
        max_height: int | None = None,
    ) -> PageResult:
        """Load ``url`` at ``width`` x ``height``, evaluate ``check`` (an expression whose value
        is returned by value), take a screenshot: the whole page (at most ``max_height`` px
        tall) or the first screen."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self.call("Page.navigate", {"url": url}, session=session)
        self.wait_event("Page.loadEventFired", session=session)
        value = self.call("Runtime.evaluate", {"expression": check, "returnByValue": True}, session=session)
        if "exceptionDetails" in value:
            raise BrowserError(f"the check raised: {value['exceptionDetails']}")
        shot: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
            shot.update(
                captureBeyondViewport=True,
                clip={
                    "x": 0,
                    "y": 0,
                    "width": width,
                    "height": min(size["height"], max_height or 1e9),
                    "scale": 1,
                },
            )
        png = base64.b64decode(self.call("Page.captureScreenshot", shot, session=session)["data"])
        return PageResult(errors=self.page_errors(session), checks=value["result"].get("value"), png=png)

    def page_errors(self, session: str) -> list[str]:
        """Everything the page reported as an error, one line each."""
        errors = []
        for event in self.events:
            if event.get("sessionId") != session:
                continue
            params = event.get("params") or {}
            method = event.get("method")
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails") or {}
                errors.append(
                    f"exception: {details.get('text')} {details.get('exception', {}).get('description', '')}"
                )
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                args = " ".join(
                    str(a.get("value", a.get("description", ""))) for a in params.get("args") or ()
                )
                errors.append(f"console.{params.get('type')}: {args}")
            elif method == "Log.entryAdded" and (params.get("entry") or {}).get("level") == "error":
                entry = params["entry"]
                errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".rstrip())
        return errors


def main(argv: list[str]) -> int:
    """``python tests/report/browser.py PAGE.html OUT.png [MAX_HEIGHT]``: the screenshot in docs/.

    Opens the first finding of the first candidate, so the picture shows evidence unfolded.
    """
    import tempfile

    page, out = Path(argv[0]).resolve(), Path(argv[1])
    unfold = "(() => { const f = document.querySelector('section.candidate details.finding');"
    unfold += " if (f) f.open = true; return 1; })()"
    with (
        tempfile.TemporaryDirectory() as profile,
        Chromium(find_chromium() or "chromium", Path(profile)) as browser,
    ):
        seen = browser.open(page.as_uri(), unfold, max_height=int(argv[2]) if len(argv) > 2 else None)
    out.write_bytes(seen.png)
    print(f"{out}: {len(seen.png) // 1024} KB; page errors: {seen.errors or 'none'}")
    return 1 if seen.errors else 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
