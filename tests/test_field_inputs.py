"""Inputs met in the field, each loaded correctly or refused with a clear reason (and a
refusal writes nothing): numbers written the European way, rows that do not line up, credit
notes with the wrong sign, overpayments and other payments to look at, workbooks with several
sheets, a source's day-first dates, a flat invoice list with its paid dates, and figures that
cannot be right said out loud.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
import xlsxwriter

from dashboard import metrics
from dashboard.health import health_report
from dashboard.ingest import load_file, preview_file
from dashboard.store import Store

INVOICES = b"Invoice No,Customer ID,Invoice Date,Due Date,Amount\n"


def _amounts(store: Store) -> dict[str, Decimal]:
    return dict(store.query("SELECT invoice_id, amount FROM invoices").rows())


def test_a_decimal_comma_file_reads_dots_as_thousands(store: Store) -> None:
    data = (
        b"Invoice No;Customer ID;Invoice Date;Due Date;Amount\n"
        b"A1;C1;01.02.2025;03.03.2025;12.500\nA2;C1;01.02.2025;03.03.2025;1.234\nA3;C1;01.02.2025;03.03.2025;1.234,56\n"
    )
    load_file(store, data, file_name="eu.csv")
    # 12.500 and 1.234 are twelve thousand five hundred and one thousand two hundred thirty-four
    assert _amounts(store) == {"A1": Decimal("12500.00"), "A2": Decimal("1234.00"), "A3": Decimal("1234.56")}


def test_more_than_two_decimals_is_refused_with_the_reason_never_rounded(store: Store) -> None:
    data = INVOICES + b"A1,C1,2025-02-01,2025-03-03,1.2345\nA2,C1,2025-02-01,2025-03-03,10.50\nA3,C1,2025-02-01,2025-03-03,12.500\n"
    result = load_file(store, data, file_name="precise.csv", max_reject_share=1.0)
    assert result.rejected["reason"].to_list() == [
        "row 1: amount '1.2345' has more than two decimals; money is kept to the cent, so round it in the source "
        "(nothing is rounded silently)"
    ]
    assert _amounts(store) == {"A2": Decimal("10.50"), "A3": Decimal("12.50")}  # trailing zeros are not precision


def test_a_value_that_reads_two_ways_is_refused_when_the_file_does_not_say_which(store: Store) -> None:
    data = INVOICES + b"A1,C1,2025-02-01,2025-03-03,12.500\nA2,C1,2025-02-01,2025-03-03,1250\n"
    result = load_file(store, data, file_name="which.csv", max_reject_share=1.0)
    assert result.rejected["reason"].to_list()[0].startswith("row 1: amount '12.500' could be read two ways")


def test_a_row_split_by_an_unquoted_thousands_comma_is_refused_with_its_number(store: Store) -> None:
    data = (
        b"Invoice No,Customer ID,Invoice Date,Due Date,Amount,Currency\n"
        b"A1,C1,2025-02-01,2025-03-03,1,234.56,USD\n" + b"".join(f"A{i},C1,2025-02-01,2025-03-03,50.00,USD\n".encode() for i in range(2, 7))
    )
    result = load_file(store, data, file_name="ragged.csv")
    assert result.rows_loaded == 5 and result.rejected["reason"].to_list()[0].startswith(
        "row 1: the row has 1 more value(s) than the file has column headings"
    )
    assert "A1" not in _amounts(store)  # never loaded as amount 1.00 with currency "234.56"


def test_a_credit_memo_with_a_positive_amount_lowers_ar(store: Store) -> None:
    data = (
        b"Invoice No,Customer ID,Type,Invoice Date,Due Date,Amount\n"
        b"I1,C1,Invoice,2025-06-01,2025-07-01,1000.00\nCM1,C1,Credit Memo,2025-06-10,2025-06-10,300.00\n"
    )
    result = load_file(store, data, file_name="credit.csv")
    assert any("credit memo had a positive amount" in w for w in result.warnings)
    assert metrics.compute_kpis(store, date(2025, 6, 30)).ar_total == pytest.approx(700.0)


def test_payments_to_look_at_are_set_aside_with_the_reason(store: Store) -> None:
    load_file(store, INVOICES + b"I1,C1,2025-01-01,2025-01-31,19993.93\nI2,C1,2025-01-05,2025-02-04,100\n"
              b"I3,C1,2025-01-05,2025-02-04,100\nI4,C1,2025-01-05,2025-02-04,100\n", file_name="i.csv")
    payments = (
        b"payment_id,invoice_id,payment_date,amount\n"
        b"P1,I1,2025-02-10,999999\nP2,I2,2025-02-10,-50\nP3,I3,2024-12-01,100\nP4,I4,2025-02-10,100\n"
    )
    result = load_file(store, payments, file_name="p.csv", max_reject_share=1.0)
    assert result.rejected["reason"].to_list() == [
        "row 1: payments on invoice I1 add up to 999999.00, more than the 19993.93 no payment has covered yet (an overpayment): "
        "record the excess as an unapplied payment",
        "row 2: payment P2 has a negative amount (-50.00): a refund or reversal is not a payment; load it as an adjustment",
        "row 3: payment P3 is dated 2024-12-01, before its invoice I3 was issued (2025-01-05): check the dates or the "
        "invoice it was applied to",
    ]
    kpis = metrics.compute_kpis(store, date(2025, 3, 31))
    # only P4 applied: 19,993.93 + 100 + 100 open, none of it negative
    assert kpis.ar_total == pytest.approx(20193.93) and kpis.ar_overdue >= 0 and (kpis.cei or 0) <= 100


def _workbook(sheets: dict[str, list[list[str]]]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                sheet.write_string(r, c, value)
    book.close()
    return buffer.getvalue()


def test_a_workbook_loads_its_invoice_sheet_and_names_the_others(store: Store) -> None:
    data = _workbook({
        "Summary": [["Month", "Revenue"], ["2025-06", "1200"]],
        "Invoices": [["Invoice No", "Customer ID", "Invoice Date", "Due Date", "Amount"],
                     ["I1", "C1", "2025-06-01", "2025-07-01", "1200.00"]],
        "Notes": [["Anything"], ["else"]],
    })
    preview = preview_file(data, file_name="book.xlsx")
    assert preview.table == "invoices"
    result = load_file(store, data, file_name="book.xlsx")
    assert result.rows_loaded == 1
    assert any("'Invoices' was read" in w and "'Summary', 'Notes' were not loaded" in w for w in result.warnings)


def test_a_sources_day_first_dates_are_remembered_for_its_next_file(store: Store) -> None:
    load_file(store, INVOICES + b"A1,C1,25/03/2025,24/04/2025,10\n", file_name="march.csv")
    # every day of the next file is 12 or less: it is read as the source's earlier file showed
    result = load_file(store, INVOICES + b"A2,C1,05/03/2025,04/04/2025,10\n", file_name="april.csv")
    assert any("as this source's earlier files were" in w for w in result.warnings)
    assert store.scalar("SELECT invoice_date FROM invoices WHERE invoice_id = 'A2'") == date(2025, 3, 5)


def test_a_flat_invoice_list_with_a_paid_date_column_counts_only_what_is_unpaid(store: Store) -> None:
    data = (
        b"Invoice No,Customer ID,Industry,Invoice Date,Due Date,Amount,Currency,Date Paid,Disputed\n"
        b"F1,C1,Retail,2025-01-05,2025-02-04,100.00,USD,2025-02-01,No\n"
        b"F2,C1,Retail,2025-02-05,2025-03-07,200.00,USD,2025-03-20,No\n"
        b"F3,C2,Retail,2025-03-05,2025-04-04,300.00,USD,,Yes\n"
    )
    result = load_file(store, data, file_name="flat.csv")
    assert "2 payments dated by the file's paid dates" in result.message
    kpis = metrics.compute_kpis(store, date(2025, 4, 30))
    assert (kpis.ar_total, kpis.open_invoices) == (300.0, 1)
    # and F2 is late by 13 days: paid 03-20, due 03-07
    assert store.scalar("SELECT paid_date FROM ledger_documents WHERE document_id = 'F2'") == date(2025, 3, 20)


def test_figures_that_cannot_be_right_are_said_after_the_load_and_on_every_page(store: Store) -> None:
    # two years of invoices and not a word about payment (the paid column left out of the export)
    start = date(2023, 1, 2)
    rows = "".join(
        f"N{i},C{i % 7},{start + timedelta(days=3 * i)},{start + timedelta(days=3 * i + 30)},{100 + i}\n" for i in range(200)
    ).encode()
    result = load_file(store, INVOICES + rows, file_name="no paid dates.csv")
    said = " ".join(result.warnings)
    assert "invoices over a year old that no file says anything about" in said and "DSO is" in said
    banners = " ".join(health_report(store, date(2024, 8, 31)).banners)
    assert "no file says anything about" in banners and "DSO is 597 days" in banners


def test_negative_overdue_ar_puts_a_banner_up(store: Store) -> None:
    load_file(store, INVOICES + b"I1,C1,2025-01-01,2025-01-31,100\n", file_name="i.csv")
    # unapplied cash far beyond the overdue invoice
    load_file(store, b"payment_id,customer_id,payment_date,amount\nU1,C1,2025-02-01,5000\n", file_name="u.csv")
    banners = " ".join(health_report(store, date(2025, 3, 31)).banners)
    assert "Overdue AR is negative (-4,900.00) as of 2025-03-31" in banners


def test_old_mac_line_endings_load(store: Store) -> None:
    data = INVOICES.replace(b"\n", b"\r") + b"A1,C1,2025-02-01,2025-03-03,10.00\rA2,C1,2025-02-01,2025-03-03,20.00\r"
    assert load_file(store, data, file_name="mac.csv").rows_loaded == 2


def test_utf16_without_a_byte_order_mark_is_read_as_text(store: Store) -> None:
    data = (INVOICES.decode() + "A1,Zürich AG,2025-02-01,2025-03-03,10.00\n").encode("utf-16-le")
    assert load_file(store, data, file_name="unicode.csv").rows_loaded == 1
    assert store.scalar("SELECT customer_id FROM invoices") == "Zürich AG"


def test_a_refusal_never_echoes_a_huge_header_line(store: Store) -> None:
    from dashboard.errors import IngestError

    data = ("x" * 200_000 + ",y\n1,2\n").encode()
    before = store.fingerprint()
    with pytest.raises(IngestError) as caught:
        load_file(store, data, file_name="wide.csv")
    assert len(str(caught.value)) < 1_000 and "…" in str(caught.value)
    assert store.fingerprint() == before


def test_an_email_with_a_line_break_is_left_empty_with_a_warning(store: Store) -> None:
    data = (
        b"customer_id,name,email\n"
        b'C1,Acme,"ap@x.example\r\nBcc: evil@x.example"\nC2,Beta,ar@beta.example\nC3,Gamma,a@x.example; b@y.example\n'
    )
    result = load_file(store, data, file_name="customers.csv")
    assert result.rows_loaded == 3
    assert dict(store.query("SELECT customer_id, email FROM customers").rows()) == {
        "C1": None, "C2": "ar@beta.example", "C3": None,
    }
    assert any("2 email addresses are not one plain address" in w and "C1: 'ap@x.example\\r\\nBcc" in w for w in result.warnings)
