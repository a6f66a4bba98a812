"""Browser journey: start a pilot, export a worklist with its holdout marked apart, load the
outcomes, read the pilot's report — the real app in Debian's headless Chromium."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from dashboard.dates import latest_data_date
from dashboard.pilot import assignments, latest_pilot
from dashboard.pilot_report import pilot_report
from dashboard.store import Store
from tests.browser import browser_page, require_chromium, screenshot, streamlit_server, wait_for_app

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _chromium() -> None:
    require_chromium()


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))


def test_start_a_pilot_export_with_holdout_marked_load_outcomes_read_the_report(server_db: Path, tmp_path: Path) -> None:
    files: dict[str, Path] = {}
    with streamlit_server(server_db) as url, browser_page() as page:
        # 1. start a pilot: half the customers held out, so today's short sample worklist has some
        page.goto(f"{url}/strategy")
        wait_for_app(page, marker="[data-testid='stMain'] h1")
        page.get_by_role("tab", name="Pilot").click()
        name = page.get_by_placeholder("e.g. Worklist pilot, spring")
        name.fill("Browser pilot")
        name.press("Enter")
        wait_for_app(page)
        slider = page.get_by_role("slider", name="Holdout share")
        slider.focus()
        for _ in range(8):  # 10% -> 50% in steps of 5
            slider.press("ArrowRight")
        wait_for_app(page)
        page.get_by_role("button", name="Check balance and power").click()
        page.get_by_text("80% power").first.wait_for(timeout=120_000)
        wait_for_app(page)
        page.get_by_role("button", name="Start this pilot").click()
        page.get_by_text("Touches per customer").first.wait_for(state="attached", timeout=120_000)
        wait_for_app(page)
        screenshot(page, "journey-pilot-started")

        # 2. export the worklist: the holdout is marked and comes in its own file
        page.goto(f"{url}/worklist")
        wait_for_app(page, marker="[data-testid='stMetric']")
        page.get_by_text("Browser pilot").first.wait_for()
        page.get_by_role("button", name="Record and prepare the export").click()
        page.get_by_role("button", name="Download worklist (CSV)").wait_for(timeout=60_000)
        wait_for_app(page)
        for name, label in (("worklist", "Download worklist (CSV)"), ("holdout", "Download the pilot's holdout (CSV)")):
            with page.expect_download() as info:
                page.get_by_role("button", name=label).click()
            files[name] = tmp_path / info.value.suggested_filename
            info.value.save_as(files[name])
        screenshot(page, "journey-pilot-worklist-export")

        # 3. outcomes back in: every exported line was done, no answer yet
        outcomes = tmp_path / "outcomes.csv"
        lines = _rows(files["worklist"])
        outcomes.write_text("line_id,outcome\n" + "".join(f"{r['line_id'].lstrip(chr(39))},done\n" for r in lines))
        page.get_by_role("tab", name="Outcomes").click()
        page.locator("input[type='file']").set_input_files(str(outcomes))
        wait_for_app(page)
        page.get_by_role("button", name="Import outcomes", exact=True).click()
        page.get_by_text("outcome(s) recorded").first.wait_for(timeout=60_000)
        wait_for_app(page)

        # 4. the report
        page.goto(f"{url}/strategy")
        wait_for_app(page, marker="[data-testid='stMain'] h1")
        page.get_by_role("tab", name="Pilot").click()
        page.get_by_text("Touches per customer").first.wait_for(state="attached", timeout=120_000)
        wait_for_app(page)
        text = page.inner_text("[data-testid='stMain']")
        assert any(v in text for v in ("Too early to measure", "No measurable change", "The worklist group paid"))
        assert "censored" in text
        screenshot(page, "journey-pilot-report")

    worklist, holdout = _rows(files["worklist"]), _rows(files["holdout"])
    assert worklist and holdout
    assert all("pilot holdout" in r["note"] for r in holdout)
    assert not {r["customer_id"] for r in worklist} & {r["customer_id"] for r in holdout}
    with Store(server_db) as s:
        as_of = latest_data_date(s)
        pilot = latest_pilot(s, as_of)
        assert pilot is not None and pilot.name == "Browser pilot" and pilot.holdout_share == pytest.approx(0.5)
        arms = assignments(s, pilot.pilot_id)
        held = set(arms.filter(arms["arm"] == "holdout")["customer_id"])
        assert {r["customer_id"] for r in holdout} <= held
        assert not set(s.query("SELECT customer_id FROM actions")["customer_id"]) & held  # never recorded as work
        report = pilot_report(s, pilot, as_of, resamples=200)
        assert report.figure("touches")["worklist"] > 0  # the outcomes are the worklist group's touches
