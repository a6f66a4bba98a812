"""Support for the browser journeys: a real `streamlit run` server and Debian's headless Chromium.

Never downloads a browser: Chromium comes from the system packages (`make test` installs it via
.ci/install-chromium.sh). When it is missing the journeys skip with the reason printed (-ra).
"""

from __future__ import annotations

import os
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
def streamlit_server(db_path: Path, *, timeout: float = 60.0, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run the real app on a free loopback port against ``db_path``; yield its URL."""
    port = free_port()
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
