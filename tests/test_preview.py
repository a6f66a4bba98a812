"""What a preview tells the Data page before anything is written."""

from __future__ import annotations

from pathlib import Path

from dashboard.ingest import preview_file

ROOT = Path(__file__).resolve().parent.parent


def test_a_plain_open_balance_list_without_a_date_asks_for_one(tmp_path: Path) -> None:
    path = tmp_path / "open-items.csv"
    path.write_text(
        "Invoice No,Customer ID,Invoice Date,Due Date,Amount,Open Balance\nO-1,C1,2026-08-01,2026-08-31,100.00,40.00\n",
        encoding="utf-8",
    )
    preview = preview_file(path)
    assert preview.mapping()["Open Balance"] == "open_amount"
    assert preview.needs_as_of_date
    assert preview.warnings == [] and preview.drift is None


def test_a_report_that_states_its_date_does_not_ask(tmp_path: Path) -> None:
    preview = preview_file(ROOT / "sample_data" / "extracts" / "qbo_ar_aging_detail_2026-09-30.csv")
    assert preview.stated_as_of_date() is not None
    assert not preview.needs_as_of_date


def test_an_invoice_list_without_open_balances_needs_no_date(tmp_path: Path) -> None:
    path = tmp_path / "invoices.csv"
    path.write_text("invoice_id,customer_id,invoice_date,due_date,amount\nI-1,C1,2026-08-01,2026-08-31,10.00\n", encoding="utf-8")
    assert not preview_file(path).needs_as_of_date
