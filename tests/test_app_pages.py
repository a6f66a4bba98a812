"""AppTest smoke: every page of the app renders on the seeded sample store without an exception.

Feature-specific page tests (figures equal to the CLI's, editing, exporting) live beside each
feature; this file guards the shell and navigation.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.dates import latest_data_date
from dashboard.health import health_report
from dashboard.store import Store

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    "pages/overview.py",
    "pages/segments.py",
    "pages/risk.py",
    "pages/strategy.py",
    "pages/worklist.py",
    "pages/data.py",
]


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_the_seeded_store(app_env: Path, page: str) -> None:
    at = _app().run()
    assert not at.exception, at.exception
    at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.title, f"{page} shows no title"


def test_default_page_is_the_overview(app_env: Path) -> None:
    at = _app().run()
    assert not at.exception
    assert at.title[0].value == "Overview"


def test_data_page_shows_what_the_store_holds(app_env: Path) -> None:
    with Store(app_env) as s:
        invoices = s.scalar("SELECT count(*) FROM invoices WHERE doc_type = 'invoice'")
        others = s.scalar("SELECT count(*) FROM invoices WHERE doc_type <> 'invoice'")
        loads = s.scalar("SELECT count(*) FROM loads")
        health_invoices = health_report(s, latest_data_date(s)).payment_history["invoices"]
    at = _app().run()
    at.switch_page("pages/data.py").run()
    assert not at.exception
    metrics: dict[str, str] = {}
    for m in at.metric:  # the store summary comes first; the health panel below has its own cards
        metrics.setdefault(m.label, m.value)
    # one number per fact: the summary counts invoices as the health checks do, and says what it leaves apart
    assert metrics["Invoices"] == f"{invoices:,}" == f"{health_invoices:,}"
    assert any(f"{others:,} credit memos, unapplied payments and journals are counted apart" in c.value for c in at.caption)
    assert metrics["Loads"] == f"{loads:,}"
    # the data-health panel's own card says the same (13,948 documents used to stand beside 13,686 invoices)
    assert [m.value for m in at.metric if m.label == "Invoices"] == [f"{invoices:,}"] * 2
    assert metrics["Credit notes and other documents"] == f"{others:,}"
    # the load history lists the eight sample files
    assert len(at.dataframe) >= 1


@pytest.mark.parametrize("page", ["pages/overview.py", "pages/segments.py", "pages/risk.py", "pages/worklist.py"])
def test_data_health_banner_shows_on_pages_that_use_the_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    from dashboard.ingest import load_file

    invoices = tmp_path / "invoices-only.csv"
    invoices.write_text(
        "invoice_id,customer_id,invoice_date,due_date,amount\n"
        + "".join(f"H-{i},C{i % 3},2026-0{1 + i % 8}-10,2026-0{2 + i % 8}-09,{100 + i}.00\n" for i in range(20)),
        encoding="utf-8",
    )
    db = tmp_path / "no-payments.duckdb"
    with Store(db) as s:
        load_file(s, invoices)
    monkeypatch.setenv("RECOUP_DB", str(db))
    at = _app().run()
    at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    banners = [w.value for w in at.warning if w.value.startswith("Data health:")]
    assert any("no payment history" in b for b in banners), [w.value for w in at.warning]
