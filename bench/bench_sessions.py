"""Load: eight people using the app at once, in real headless Chromium against one server.

    .venv/bin/python -m bench.bench_sessions --customers 22000 --sessions 8    # ~1M invoices

Builds (or reuses) a generated store, starts the real app (`python -m dashboard.ui.serve`), then
opens ``--sessions`` browser sessions at the same moment; each visits every page in turn
(``--rounds`` times) and records how long each page took from navigation until Streamlit's
script run finished. Prints each page's median and p95 over all sessions and rounds, and the
slowest page. The server's query cache is shared by the sessions (as in production), so the
first visit to a page pays for the queries and later ones mostly do not: both are in the figures.
Needs Debian's chromium (make browser).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from bench.common import emit_result

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

PAGES = ["overview", "segments", "risk", "strategy", "worklist", "data"]
RUNNING = "[data-testid='stStatusWidgetRunningIcon']"


async def _settled(page: object, timeout_s: float) -> None:
    await page.wait_for_selector("[data-testid='stApp']", state="attached")
    await page.wait_for_selector("h1", state="attached", timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    quiet_since = None
    while time.monotonic() < deadline:
        if await page.query_selector(RUNNING) is None:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 0.8:
                return
        else:
            quiet_since = None
        await asyncio.sleep(0.1)
    raise TimeoutError("page still running")


async def _session(browser: object, url: str, rounds: int, timeout_s: float, times: dict[str, list[float]], errors: list[str]) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    for _ in range(rounds):
        for name in PAGES:
            started = time.perf_counter()
            try:
                await page.goto(f"{url}/{name}" if name != "overview" else url)
                await _settled(page, timeout_s)
                # the quiet period is not the user's wait: take it off
                times[name].append(time.perf_counter() - started - 0.8)
                shown = await page.query_selector("[data-testid='stException']")
                if shown is not None:
                    text = " ".join((await shown.inner_text()).split())
                    errors.append(f"{name}: exception shown: {text[:600]}")
            except Exception as exc:  # noqa: BLE001 - a failed render is a result, counted and printed
                errors.append(f"{name}: {exc!r}"[:200])
    await context.close()


async def _run(url: str, sessions: int, rounds: int, timeout_s: float) -> tuple[dict[str, list[float]], list[str], float]:
    from playwright.async_api import async_playwright

    times: dict[str, list[float]] = {p: [] for p in PAGES}
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        started = time.perf_counter()
        await asyncio.gather(*(_session(browser, url, rounds, timeout_s, times, errors) for _ in range(sessions)))
        wall = time.perf_counter() - started
        await browser.close()
    return times, errors, wall


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=22_000)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a page may take")
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args(argv)
    from bench.bench_worklist import OUT, build

    OUT.mkdir(exist_ok=True)
    db = args.db or OUT / f"worklist-{args.customers}.duckdb"
    build(db, args.customers)
    with streamlit_server(db, timeout=120) as url:
        times, errors, wall = asyncio.run(_run(url, args.sessions, args.rounds, args.timeout))
    size = f"{db.name}, {args.sessions} sessions x {args.rounds} rounds"
    print(f"{'page':10} {'visits':>6} {'median s':>9} {'p95 s':>7} {'max s':>7}")
    slowest = None
    for name, values in times.items():
        if not values:
            continue
        median, p95 = statistics.median(values), _p95(values)
        print(f"{name:10} {len(values):6} {median:9.2f} {p95:7.2f} {max(values):7.2f}")
        emit_result(f"page {name} under {args.sessions} concurrent sessions (median)", size=size, seconds=median,
                    note=f"p95 {p95:.2f} s, max {max(values):.2f} s, {len(values)} visits")
        if slowest is None or median > slowest[1]:
            slowest = (name, median, p95)
    if slowest:
        print(f"slowest page: {slowest[0]} median {slowest[1]:.2f} s, p95 {slowest[2]:.2f} s; all sessions done in {wall:.1f} s")
    print(f"errors: {len(errors)}")
    for error in errors[:20]:
        print(f"  {error}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
