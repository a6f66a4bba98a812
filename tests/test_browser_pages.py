"""Every page read as a new user reads it: the real app in headless Chromium on the sample store,
at 1440 px and at 800 px. A page fails when its visible text shows an identifier instead of
words (a snake_case name such as ``customer_id`` or ``chronic_late``), "None", "NaN" or a date
with "00:00:00", or when a KPI value is cut off. A screenshot of the top of each page is written
to docs/screenshots/ (shown in the README).

Visible text is the page's text as drawn (Material icon ligatures such as ``keyboard_arrow_right``
hidden first) plus each table's header row and cells, read from the grid's accessible copy:
the grid itself is drawn on a canvas. Each page is waited for until its script has finished,
nothing is still loading, and the page has been scrolled through (grids and charts draw when
they come into view).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import (
    CUT_OFF,
    ROOT,
    browser_page,
    problems,
    require_chromium,
    reveal,
    settle,
    streamlit_server,
    visible_text,
)

pytestmark = pytest.mark.browser

# The README's pictures are refreshed with RECOUP_SCREENSHOTS_TO_DOCS=1 (make screenshots); an
# ordinary run writes them to test-artifacts/, so it never changes tracked files.
SCREENSHOTS = ROOT / ("docs" if os.environ.get("RECOUP_SCREENSHOTS_TO_DOCS") else "test-artifacts") / "screenshots"
WIDTHS = (1440, 800)
# the other tabs of a page, and text each shows once drawn (visited at the wide width)
TABS = {
    "risk": (("Explain an invoice", "In words:"), ("History & drift", "Drift since training"), ("Train", "Train a new")),
    "strategy": (("Message templates", "Merge fields"), ("Simulator", "Run simulation")),
    "worklist": (("Per collector", None), ("Held", None), ("Response rates", "assumed rate"),
                 ("Outcomes", "Import outcomes")),
}
# path, title, the text that says the page has drawn everything (the Overview's backtest runs once)
PAGES = (
    ("", "Overview", "held the actual"),
    ("segments", "Segments", "Customer drill-down"),
    ("risk", "Risk model", "How the pay dates are modelled"),
    ("strategy", "Strategy & simulation", "Version history"),
    ("worklist", "Worklist", "Export today's lines"),
    ("data", "Data", "Load history"),
)
@pytest.fixture(autouse=True)
def _chromium() -> None:
    require_chromium()


@pytest.fixture(scope="module")
def app_url(seeded_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    copy = tmp_path_factory.mktemp("pages") / "server.duckdb"
    shutil.copy(seeded_db_path, copy)
    with streamlit_server(copy) as url:
        yield url


def save_screenshot(page: object, name: str) -> Path:
    """The top of the page as a modest PNG (256 colours) in :data:`SCREENSHOTS`."""
    from PIL import Image

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    raw = page.screenshot(full_page=False)
    image = Image.open(io.BytesIO(raw)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    path = SCREENSHOTS / f"{name}.png"
    image.save(path, optimize=True)
    return path


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_reads_as_words_with_whole_figures(app_url: str, width: int) -> None:
    report: dict[str, list[str]] = {}
    with browser_page() as page:
        for path, title, done_text in PAGES:
            page.set_viewport_size({"width": width, "height": 1000})
            page.goto(f"{app_url}/{path}")
            settle(page, done_text)
            page.get_by_role("heading", name=title, exact=True).wait_for()
            if width < 1024:  # a narrow window starts with the sidebar folded away
                page.wait_for_selector("[data-testid='stSidebar'][data-collapsed='true']", state="attached", timeout=15_000)
            cut_off = page.evaluate(CUT_OFF)  # at the real width, before the window is made tall
            save_screenshot(page, f"{path or 'overview'}-{width}")
            reveal(page)
            found = problems(*visible_text(page))
            found += [f"KPI value cut off: {value!r}" for value in cut_off]
            for tab, tab_done in TABS.get(path, ()) if width == WIDTHS[0] else ():
                page.set_viewport_size({"width": width, "height": 1000})
                page.get_by_role("tab", name=tab).click()
                settle(page, tab_done)
                reveal(page)
                found += [f"[{tab}] {item}" for item in problems(*visible_text(page))]
            if found:
                report[title] = found
    assert report == {}, "\n".join(f"{title}:\n  " + "\n  ".join(items[:15]) for title, items in report.items())


def test_the_checks_catch_what_they_look_for() -> None:
    text = "Segment chronic_late · open_amount_base = 3143256.08 · due 2026-10-01 00:00:00 · None · NaN"
    found = problems(text, ["customer_id"], ["None"])
    assert any("'chronic_late'" in f for f in found) and any("canonical column 'customer_id'" in f for f in found)
    assert any("'None'" in f and f.startswith("table cell") for f in found)
    assert sum(f.startswith("text: '00:00:00'") for f in found) == 1 and any("'NaN'" in f for f in found)
    # words, file names, addresses and ids are fine
    assert problems("Loaded fx_rates.csv; ap@x_y.example; INV-000140; 2026-10-01; Nonetheless", [], []) == []
