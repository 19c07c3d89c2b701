"""Open an aha report in headless Chromium, check it as a browser shows it, and take a screenshot.

    python -m tinyzero.aha ROLLOUTS --out aha_report
    python benchmarks/aha_screenshot.py aha_report/report.html --out aha_report/screenshot.png

Checks, each a problem printed and exit status 1: every <img> (the plots) decodes with a size;
there is at least one; nothing is written to the console as an error and no script error is
raised; nothing is requested from the network (the report is one self-contained page). Prints a
JSON summary either way. Needs Chromium (Debian: `apt-get install chromium-headless-shell`, or
`chromium`); nothing else beyond the standard library.

It drives the browser through the Chrome DevTools Protocol over `--remote-debugging-pipe`
(JSON messages, each ended by a NUL byte, read by the browser on fd 3 and written on fd 4).
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")

# Runs in the page once it has loaded: what each image is and how big the page is.
PAGE_FACTS = """JSON.stringify({
  title: document.title,
  images: Array.from(document.images).map(img => ({
    alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight})),
  height: document.documentElement.scrollHeight
})"""


def find_browser(explicit: str | None = None) -> str | None:
    """The Chromium executable: `explicit`, $CHROMIUM, or the first of BROWSERS on PATH."""
    for name in (explicit, os.environ.get("CHROMIUM"), *BROWSERS):
        if name and (found := shutil.which(name)):
            return found
    return None


class DevTools:
    """A Chrome DevTools Protocol session over the browser's debugging pipe."""

    def __init__(self, browser: str, user_data_dir: str, width: int, height: int):
        self._log = open(Path(user_data_dir) / "chromium.log", "w+b")  # noqa: SIM115 (closed in close())
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def child_fds():  # the browser reads commands on fd 3 and writes replies on fd 4
            # Copies above 10 first, so that neither end is overwritten if it already is fd 3 or 4;
            # dup2 makes the copies inheritable, which the pipes themselves are not.
            read_end, write_end = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_read, from_browser_write))
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [
                browser, "--headless", "--remote-debugging-pipe", f"--user-data-dir={user_data_dir}",
                # root in a container has no user namespaces for Chromium's sandbox
                "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                f"--window-size={width},{height}", "about:blank",
            ],
            # stderr to a file: a pipe nobody reads could fill up and stall the browser
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log,
            preexec_fn=child_fds, close_fds=False,  # fds 3 and 4 must reach the browser
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                self.process.wait(timeout=10)
                self._log.seek(0)
                error = self._log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"Chromium closed the pipe (exit status {self.process.poll()}): {error}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, timeout: float = 60, **params) -> dict:
        """Send one command and wait for its reply; events that arrive meanwhile are kept."""
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(self._to_browser, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        """The first event named `method`, kept or still to come."""
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            self.events.append(message)
            if message.get("method") == method:
                return message

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._log.close()


def problems_in(events: list[dict], facts: dict) -> list[str]:
    """Everything a reader of the page would see go wrong."""
    problems = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", []))
            problems.append(f"console {params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            problems.append(f"script error: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            problems.append(f"browser error ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith(("data:", "file:", "about:")):
                problems.append(f"network request from a page meant to be self-contained: {url}")
        elif method == "Network.loadingFailed":
            problems.append(f"failed to load a resource: {params.get('errorText')}")
    images = facts["images"]
    if not images:
        problems.append("no image on the page: the plots are missing (was the report made with --no-plots?)")
    for image in images:
        if not image["complete"] or image["width"] == 0 or image["height"] == 0:
            problems.append(f"image {image['alt']!r} did not load (complete={image['complete']}, {image['width']}x{image['height']})")
    return problems


def check_report(report: Path, screenshot: Path, browser: str, width: int = 1280, height: int = 1600,
                 full_page: bool = False) -> dict:
    """Open `report` in `browser`, save a PNG screenshot, and return the facts and problems."""
    with tempfile.TemporaryDirectory(prefix="aha-chromium-") as profile:
        tools = DevTools(browser, profile, width, height)
        try:
            target = tools.call("Target.createTarget", url="about:blank")["targetId"]
            session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                tools.call(f"{domain}.enable", session)
            tools.call("Emulation.setDeviceMetricsOverride", session, width=width, height=height,
                       deviceScaleFactor=1, mobile=False)
            tools.call("Page.navigate", session, url=report.resolve().as_uri())
            tools.wait_for("Page.loadEventFired")
            facts = json.loads(tools.call("Runtime.evaluate", session, expression=PAGE_FACTS,
                                          returnByValue=True)["result"]["value"])
            shot_height = max(facts["height"], 1) if full_page else min(max(facts["height"], 1), height)
            shot = tools.call("Page.captureScreenshot", session, format="png", captureBeyondViewport=full_page,
                              clip={"x": 0, "y": 0, "width": width, "height": shot_height, "scale": 1})
        finally:
            tools.close()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    problems = problems_in(tools.events, facts)
    return {
        "report": str(report), "screenshot": str(screenshot), "browser": browser,
        "title": facts["title"], "images": facts["images"], "page_height": facts["height"],
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/aha_screenshot.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="report.html written by `python -m tinyzero.aha`, or its folder")
    parser.add_argument("--out", type=Path, help="PNG to write (default: screenshot.png beside the report)")
    parser.add_argument("--browser", help=f"Chromium executable (default: $CHROMIUM or the first of {', '.join(BROWSERS)})")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in CSS pixels (default: %(default)s)")
    parser.add_argument("--height", type=int, default=1600, help="viewport and screenshot height (default: %(default)s)")
    parser.add_argument("--full-page", action="store_true", help="capture the whole page, not only the first screen")
    args = parser.parse_args(argv)
    report = args.report / "report.html" if args.report.is_dir() else args.report
    if not report.is_file():
        parser.error(f"{report} is not a file: give the report.html that `python -m tinyzero.aha ... --out DIR` wrote")
    browser = find_browser(args.browser)
    if browser is None:
        parser.error("no Chromium found: install Debian's `chromium-headless-shell` (or `chromium`), or pass --browser PATH")
    result = check_report(report, args.out or report.with_name("screenshot.png"), browser, args.width, args.height,
                          args.full_page)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    for problem in result["problems"]:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
