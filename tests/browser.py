"""Support for the browser journeys: a real `streamlit run` server and Debian's headless Chromium.

Never downloads a browser: Chromium comes from the system packages (`make test` installs it via
.ci/install-chromium.sh). When it is missing the journeys skip with the reason printed (-ra).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dashboard.schema import CANONICAL_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("RECOUP_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def require_chromium() -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"browser journeys skipped: no Chromium at {CHROMIUM} (run `make browser` as root)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def streamlit_server(
    db_path: Path, *, timeout: float = 60.0, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[str]:
    """Run the real app on a loopback port (``port``, else a free one) against ``db_path``; yield its URL."""
    port = port or free_port()
    env = {**os.environ, **(env or {}), "RECOUP_DB": str(db_path)}
    log = (ARTIFACTS / f"streamlit-{port}.log")
    ARTIFACTS.mkdir(exist_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "dashboard.ui.serve",
                "--server.address", "127.0.0.1", "--server.port", str(port),
                "--server.headless", "true", "--browser.gatherUsageStats", "false",
                "--server.fileWatcherType", "none",
            ],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start; see {log}")
                time.sleep(0.25)
            yield url
            out.flush()
            uncaught = uncaught_errors(log)
            if uncaught:
                msg = f"the app raised {len(uncaught)} uncaught exception(s) while serving (see {log}):\n" + uncaught[0]
                raise AssertionError(msg)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def uncaught_errors(log: Path) -> list[str]:
    """The tracebacks Streamlit logged as "Uncaught app execution" while the server was up
    (a script still running when the server is stopped is interrupted: not counted)."""
    text = log.read_text(errors="replace").split("Stopping...")[0]
    return [part[:3000] for part in text.split("Uncaught app execution")[1:]]


@contextmanager
def browser_page(*, downloads: Path | None = None) -> Iterator[object]:
    """A Playwright page in headless system Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def wait_for_app(page: object, *, marker: str | None = None, quiet_ms: int = 1200, timeout_s: float = 90) -> None:
    """Wait until the script run has finished: ``marker`` (a CSS selector) is on the page and
    Streamlit's running indicator has been absent for ``quiet_ms`` in a row."""
    page.wait_for_selector("[data-testid='stApp']", state="attached")
    if marker:
        page.wait_for_selector(marker, state="attached", timeout=timeout_s * 1000)
    running = "[data-testid='stStatusWidgetRunningIcon']"
    deadline = time.monotonic() + timeout_s
    quiet_since = None
    while time.monotonic() < deadline:
        if page.query_selector(running) is None:
            quiet_since = quiet_since or time.monotonic()
            if (time.monotonic() - quiet_since) * 1000 >= quiet_ms:
                return
        else:
            quiet_since = None
        page.wait_for_timeout(100)
    raise TimeoutError("the app was still running after the timeout")


def screenshot(page: object, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# -- reading a page as a person sees it ---------------------------------------------------------
IDENTIFIER = re.compile(r"(?<![\w./@-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w(]|\.\w)")  # not file.csv
CANONICAL = sorted({c for columns in CANONICAL_COLUMNS.values() for c in columns if "_" in c})
FORBIDDEN = {
    "None": re.compile(r"(?<![\w'])None(?![\w'])"),
    "NaN": re.compile(r"(?<!\w)NaN(?!\w)"),
    "00:00:00": re.compile(r"00:00:00"),
}
HIDE_ICONS = "[data-testid='stIconMaterial'], [data-testid$='Icon'] { display: none !important; }"
GRIDS = """() => Array.from(document.querySelectorAll("[data-testid='stDataFrame'] table")).map(t => ({
    headers: Array.from(t.querySelectorAll("th")).map(c => c.textContent),
    cells: Array.from(t.querySelectorAll("td")).map(c => c.textContent),
}))"""
CUT_OFF = """() => Array.from(document.querySelectorAll("[data-testid='stMetricValue']"))
    .filter(e => [e, ...e.querySelectorAll("*")].some(x => x.scrollWidth > x.clientWidth + 1))
    .map(e => e.textContent)"""
MAIN_HEIGHT = "() => document.querySelector(\"[data-testid='stMain']\").scrollHeight"


def settle(page: object, done_text: str | None) -> None:
    """Wait until the page is complete: its last section's text (``done_text``, outside any
    table) is there, the script is not running, and no element is still a loading skeleton,
    for a quiet second and a half in a row."""
    wait_for_app(page, marker="[data-testid='stMain'] h1", timeout_s=300)
    if done_text is not None:
        page.get_by_text(done_text).first.wait_for(state="attached", timeout=180_000)
    deadline = time.monotonic() + 300
    quiet_since = None
    while time.monotonic() < deadline:
        busy = page.query_selector("[data-testid='stSkeleton'], [data-testid='stStatusWidgetRunningIcon']")
        if busy is None:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 1.5:
                return
        else:
            quiet_since = None
        page.wait_for_timeout(200)
    raise TimeoutError(f"the page was still loading after 300 s (waiting for {done_text!r})")


def reveal(page: object) -> None:
    """Scroll the main column through (grids and charts draw when they come into view), then
    make the window as tall as the page so everything is drawn at once."""
    height = page.evaluate(MAIN_HEIGHT)
    for top in range(0, height, 700):
        page.evaluate(f"() => document.querySelector(\"[data-testid='stMain']\").scrollTo(0, {top})")
        page.wait_for_timeout(120)
    page.evaluate("() => document.querySelector(\"[data-testid='stMain']\").scrollTo(0, 0)")
    width = page.viewport_size["width"]
    page.set_viewport_size({"width": width, "height": min(page.evaluate(MAIN_HEIGHT) + 50, 16000)})
    page.wait_for_timeout(800)


def visible_text(page: object) -> tuple[str, list[str], list[str]]:
    """(the page's drawn text, every grid header, every grid cell)."""
    page.add_style_tag(content=HIDE_ICONS)
    grids = page.evaluate(GRIDS)
    return (
        page.inner_text("body"),
        [h for g in grids for h in g["headers"]],
        [c for g in grids for c in g["cells"]],
    )


def problems(text: str, headers: list[str], cells: list[str]) -> list[str]:
    """What a finance reader should never see, each with its context."""
    found: list[str] = []
    for where, words in (("text", [text]), ("table header", headers), ("table cell", cells)):
        for chunk in words:
            if where != "table cell":  # cells may hold a value whose column shows it by name
                for match in IDENTIFIER.finditer(chunk):
                    name = match.group(0)
                    kind = "canonical column" if name in CANONICAL else "identifier"
                    found.append(f"{where}: {kind} {name!r} in …{chunk[max(0, match.start() - 40):match.end() + 40]!r}")
            for label, pattern in FORBIDDEN.items():
                for match in pattern.finditer(chunk):
                    found.append(f"{where}: {label!r} in …{chunk[max(0, match.start() - 40):match.end() + 40]!r}")
    return found
