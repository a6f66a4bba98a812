"""Browser journeys for what must not break a page: hostile text in the data, a day's export
downloaded again after a reload, a cut-off model file, and any unexpected failure.

Each runs the real app (`python -m dashboard.ui.serve`) in headless Chromium against its own
store; ``streamlit_server`` fails the test if Streamlit logged an uncaught exception (a
traceback on the page).
"""

from __future__ import annotations

import csv
import io
import shutil
import urllib.request
from pathlib import Path

import polars as pl
import pytest

from dashboard.dates import latest_data_date
from dashboard.policy import default_policy, save_policy
from dashboard.registry import SHIPPED_MODELS_DIR, active_model_id, set_active
from dashboard.store import Store
from dashboard.worklist import build_worklist
from tests.browser import ARTIFACTS, browser_page, require_chromium, screenshot, streamlit_server, wait_for_app

pytestmark = pytest.mark.browser

EVIL = "http://evil.example"
HOSTILE_NAME = f"Acme [pay here]({EVIL}/pay) ![t]({EVIL}/p.png)"
HOSTILE_EMAIL = "ap@x.example\r\nBcc: evil@x.example"
HOSTILE_CATEGORY = f"pricing [pay here]({EVIL}/pay) ![t]({EVIL}/p.png)"
DISPUTED_INVOICE = "INV-012655"  # open and disputed on the sample data's last day


@pytest.fixture(autouse=True)
def _chromium() -> None:
    require_chromium()


def _copy(seeded_db_path: Path, tmp_path: Path) -> Path:
    db = tmp_path / "books" / "recoup.duckdb"
    db.parent.mkdir()
    shutil.copy(seeded_db_path, db)
    return db


def _choose(page: object, label: str, text: str) -> None:
    """Pick the option containing ``text`` in the selectbox labelled ``label``."""
    box = page.locator("[data-testid='stSelectbox']").filter(has_text=label)
    box.locator("input").click()
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    wait_for_app(page)


def _text(page: object) -> str:
    """The page's text as a person reads it (without the invisible word joiners that keep
    Markdown from turning a URL in the data into a link)."""
    return page.inner_text("body").replace("\u2060", "")


def _no_live_hostile_markup(page: object) -> None:
    links = page.locator("a[href*='evil.example']")
    assert links.count() == 0, [
        links.nth(i).evaluate("e => e.parentElement.parentElement.outerHTML.slice(0, 1500)")
        for i in range(links.count())
    ]
    assert page.locator("img[src*='evil.example']").count() == 0, "an image from the data is shown"


def _hostile_store(seeded_db_path: Path, tmp_path: Path) -> tuple[Path, str]:
    """The sample store where one of today's lines (a call script: its subject names the
    customer) belongs to a customer with a Markdown-laden name and an email with a line break,
    and an open dispute's category carries the same Markdown."""
    db = _copy(seeded_db_path, tmp_path)
    with Store(db) as store:
        as_of = latest_data_date(store)
        rules = default_policy().with_columns(
            template_id=pl.when(pl.col("channel") != "person").then(pl.lit("call")).otherwise(pl.col("template_id"))
        )
        save_policy(store, rules, based_on_version=None, author="journey", comment="call scripts")
        today = build_worklist(store, as_of, capacity_per_collector=25).today()
        # a call script a person reviews ("Draft for review"); which customer that is depends on the risk tiers
        customer = today.filter((pl.col("template_id") == "call") & pl.col("requires_review"))["customer_id"][0]
        with store.transaction() as cur:
            cur.execute(
                "UPDATE customers SET name = ?, email = ? WHERE customer_id = ?",
                [HOSTILE_NAME, HOSTILE_EMAIL, customer],
            )
            cur.execute("UPDATE disputes SET category = ? WHERE invoice_id = ?", [HOSTILE_CATEGORY, DISPUTED_INVOICE])
    return db, customer


def test_hostile_text_is_shown_as_text_and_the_days_export_downloads_again_after_a_reload(
    seeded_db_path: Path, tmp_path: Path
) -> None:
    db, customer = _hostile_store(seeded_db_path, tmp_path)
    fetched: list[str] = []
    downloads: dict[str, Path] = {}
    with streamlit_server(db) as url, browser_page() as page:
        page.on("request", lambda request: fetched.append(request.url) if "evil.example" in request.url else None)
        page.goto(f"{url}/worklist")
        wait_for_app(page, marker="[data-testid='stMetric']")
        _choose(page, "Line", "Acme [pay here]")
        page.get_by_text("Draft for review:").wait_for(timeout=60_000)
        wait_for_app(page)
        body = _text(page)
        screenshot(page, "journey-worklist-hostile-line")
        _no_live_hostile_markup(page)
        assert f"Call {HOSTILE_NAME} about" in body  # the subject, shown as written
        assert "contains a line break or another control character, so this draft has no recipient" in body
        page.get_by_role("button", name="Download this message (.eml)").wait_for()

        # export with a name, then reload: the day's files are still there to download
        page.get_by_label("Exported by").fill("Ana Lima")
        page.get_by_label("Exported by").press("Tab")
        page.get_by_text("CSV", exact=True).click()
        wait_for_app(page)
        page.get_by_role("button", name="Record and prepare the export").click()
        page.get_by_text("line(s) recorded for").wait_for(timeout=60_000)
        wait_for_app(page)
        page.reload()
        wait_for_app(page, marker="[data-testid='stMetric']")
        page.get_by_role("button", name="Download worklist (CSV)").wait_for(timeout=60_000)
        assert page.get_by_role("button", name="Record and prepare the export").is_disabled()
        history = page.inner_text("body")
        assert "UTC by Ana Lima:" in history and "4 file(s)" in history, history[-2000:]
        for label in ("CSV", "XLSX"):
            with page.expect_download() as info:
                page.get_by_role("button", name=f"Download worklist ({label})").click()
            saved = tmp_path / info.value.suggested_filename
            info.value.save_as(saved)
            downloads[label] = saved
        screenshot(page, "journey-worklist-export-after-reload")

        # the Risk page: the reasons quote the dispute category from the file, as text
        page.goto(f"{url}/risk")
        wait_for_app(page, marker="[data-testid='stTabs']")
        page.get_by_role("tab", name="Explain an invoice").click()
        wait_for_app(page, timeout_s=180)
        _choose(page, "Explain invoice", DISPUTED_INVOICE)
        page.get_by_text("Why:").first.wait_for(timeout=120_000)
        wait_for_app(page)
        screenshot(page, "journey-risk-hostile-reason")
        risk_text = _text(page)
        assert f"A {HOSTILE_CATEGORY} dispute has been open" in risk_text, risk_text[
            risk_text.find("Explain invoice") :
        ][:800]
        _no_live_hostile_markup(page)
    assert fetched == [], f"the browser fetched {fetched}"

    rows = list(csv.reader(io.StringIO(downloads["CSV"].read_bytes().decode("utf-8-sig"), newline="")))
    workbook = pl.read_excel(downloads["XLSX"])
    with Store(db) as store:
        recorded = sorted(store.query("SELECT action_id FROM actions")["action_id"].to_list())
    assert sorted(r[0] for r in rows[1:]) == recorded == sorted(workbook["line_id"].cast(pl.String).to_list())
    assert any(r[0].endswith(customer) for r in rows[1:])


def test_a_cut_off_model_file_falls_back_on_the_worklist_page(seeded_db_path: Path, tmp_path: Path) -> None:
    db = _copy(seeded_db_path, tmp_path)
    shipped = active_model_id(models_dir=SHIPPED_MODELS_DIR)
    own = db.parent / "recoup.models"
    own.mkdir()
    shutil.copytree(SHIPPED_MODELS_DIR / shipped, own / "risk-20261001-cut")
    set_active("risk-20261001-cut", db=db)
    model_file = own / "risk-20261001-cut" / "model.txt"
    model_file.write_bytes(model_file.read_bytes()[:200_000])  # `head -c 200000`: LightGBM aborts on it
    with streamlit_server(db) as url, browser_page() as page:
        page.goto(f"{url}/worklist")
        wait_for_app(page, marker="[data-testid='stMetric']", timeout_s=120)
        body = page.inner_text("body")
        screenshot(page, "journey-worklist-cut-off-model")
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as alive:
            assert alive.status == 200, "the server died"
    assert "The file model.txt of model 'risk-20261001-cut' is not the one its card describes" in body
    assert f"Using the shipped default model '{shipped}' instead" in body
    assert f"from risk model {shipped}" in body


def test_an_unexpected_failure_is_a_plain_message_and_a_log_line_on_every_page(
    seeded_db_path: Path, tmp_path: Path
) -> None:
    db = _copy(seeded_db_path, tmp_path)
    with Store(db) as store, store.transaction() as cur:
        cur.execute("DROP TABLE scores")  # a damaged store: every page's data version reads this table
    pages = {"overview": "Overview", "worklist": "Worklist", "risk": "Risk model", "segments": "Segments"}
    shown = {}
    with streamlit_server(db) as url, browser_page() as page:
        port = url.rsplit(":", 1)[1]
        for path, title in pages.items():
            page.goto(f"{url}/{path}")
            wait_for_app(page, marker="[data-testid='stAlert']", timeout_s=120)
            assert page.locator("[data-testid='stException']").count() == 0, f"a traceback on {path}"
            shown[path] = page.inner_text("[data-testid='stMain']")
            assert f"Something went wrong in the {title} page: CatalogException" in shown[path], shown[path][:2000]
        screenshot(page, "journey-unexpected-failure")
    log = (ARTIFACTS / f"streamlit-{port}.log").read_text(errors="replace")
    for text in shown.values():
        reference = text.split("(reference ", 1)[1][:8]
        assert f"failed (reference {reference})" in log
    assert "recoup.pages" in log and "Traceback" in log and "scores" in log
