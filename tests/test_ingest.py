"""Canonical ingest: headers, parsers, one-transaction loads with lineage, and the seed."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.errors import NeedsConfirmationError
from dashboard.ingest import load_file, load_frame, load_world, match_headers, preview_file, seed_store
from dashboard.ingest.normalize import choose_date_family, money_expr, parse_date, terms_days_expr
from dashboard.notes_text import note_flags, sentiment_score
from dashboard.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"


def _money(values: list[str | None]) -> list[Decimal | None]:
    return pl.DataFrame({"m": values}, schema={"m": pl.String}).select(money_expr(pl.col("m"))).to_series().to_list()


def _dates(values: list[str]) -> tuple[list[date | None], str | None, str | None]:
    frame = pl.DataFrame({"d": values}, schema={"d": pl.String})
    choice = choose_date_family(frame, "d")
    parsed, _ = parse_date(pl.col("d"), "invoice_date", choice.family)
    return frame.select(parsed).to_series().to_list(), choice.family, choice.ambiguous_with


def _load_parents(store: Store) -> None:
    load_file(store, FIXTURES / "customers.csv")
    load_file(store, FIXTURES / "invoices.csv")


# -- parsers -------------------------------------------------------------------------------
def test_money_parser_reads_every_house_style() -> None:
    values = ["$1,234.56", "1234.5", "(1,234.56)", "-1,234.56", "1.234,56", "USD 12.00", "", None, "1,234.56-", "€ 3,00"]
    assert _money(values) == [
        Decimal("1234.56"), Decimal("1234.50"), Decimal("-1234.56"), Decimal("-1234.56"), Decimal("1234.56"),
        Decimal("12.00"), None, None, Decimal("-1234.56"), Decimal("3.00"),
    ]
    assert _money(["twelve", "1,2,3", "12.3.4"]) == [None, None, None]


@settings(max_examples=60, deadline=None)
@given(cents=st.integers(min_value=-10**13, max_value=10**13))
def test_money_property_every_rendering_of_an_amount_reads_back_the_same(cents: int) -> None:
    amount = Decimal(cents).scaleb(-2)
    magnitude = abs(amount)
    us = f"{magnitude:,.2f}"
    eu = us.replace(",", "X").replace(".", ",").replace("X", ".")
    sign = "-" if amount < 0 else ""
    renderings = [f"{sign}{magnitude:.2f}", f"{sign}${us}", f"{sign}{eu}", f"{sign}USD {us}"]
    if amount < 0:
        renderings.append(f"({us})")
    assert _money(renderings) == [amount] * len(renderings)


@settings(max_examples=60, deadline=None)
@given(day=st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 12, 31)))
def test_date_property_iso_and_yyyymmdd_columns_read_back_exactly(day: date) -> None:
    for text in (day.isoformat(), day.strftime("%Y%m%d")):
        parsed, family, _ = _dates([text])
        assert parsed == [day], (text, family)


@settings(max_examples=40, deadline=None)
@given(days=st.lists(st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)), min_size=1, max_size=8))
def test_date_property_day_first_column_with_a_day_over_12_is_read_day_first(days: list[date]) -> None:
    days = [*days, date(2024, 3, 25)]  # one unambiguous value decides the column
    parsed, family, ambiguous = _dates([f"{d.day}/{d.month}/{d.year}" for d in days])
    assert family == "D/M/YYYY" and ambiguous is None
    assert parsed == days


def test_date_column_decides_its_layout_and_says_when_it_guessed() -> None:
    parsed, family, ambiguous = _dates(["01/02/2025", "03/04/2025"])
    assert family == "M/D/YYYY" and ambiguous == "D/M/YYYY"
    assert parsed == [date(2025, 1, 2), date(2025, 3, 4)]
    parsed, family, _ = _dates(["13/01/2025", "02/01/2025"])
    assert family == "D/M/YYYY" and parsed == [date(2025, 1, 13), date(2025, 1, 2)]
    parsed, family, _ = _dates(["20250105", "", "20250230"])
    assert family == "YYYYMMDD" and parsed == [date(2025, 1, 5), None, None]


def test_terms_codes_become_days() -> None:
    codes = ["NET30", "Net 30", "2/10 Net 30", "Due on receipt", "net45", "COD", "gibberish"]
    frame = pl.DataFrame({"t": codes})
    assert frame.select(terms_days_expr(pl.col("t"))).to_series().to_list() == [30, 30, 30, 0, 45, 0, None]


def test_note_sentiment_and_flags() -> None:
    assert sentiment_score("Thanks, great service, happy to pay!") > 0.5
    assert sentiment_score("This is terrible, we are furious about the wrong price") < -0.3
    assert note_flags("We have a cash flow problem but will pay by Friday") == ["distress", "promise"]
    assert note_flags("Invoice disputed: wrong price charged") == ["dispute"]
    assert note_flags("Called, left a voicemail") == []


# -- headers -------------------------------------------------------------------------------
def test_alias_headers_match_without_case_space_or_punctuation() -> None:
    headers = ["inv #", "Cust No", "Customer Name", "TXN DATE", "Net Due", "Total", "Unrelated"]
    matches = {m.source: (m.target, m.method) for m in match_headers(headers, "invoices")}
    assert matches == {
        "inv #": ("invoice_id", "alias"),
        "Cust No": ("customer_id", "alias"),
        "Customer Name": ("customer_name", "exact"),
        "TXN DATE": ("invoice_date", "alias"),
        "Net Due": ("due_date", "alias"),
        "Total": ("amount", "alias"),
        "Unrelated": (None, "unmatched"),
    }


def test_preview_detects_the_table_and_writes_nothing(store: Store) -> None:
    before = store.fingerprint()
    preview = preview_file(FIXTURES / "payments.csv", store=store)
    assert preview.table == "payments"
    assert preview.table_scores["payments"] > preview.table_scores["invoices"]
    assert preview.source_format == "canonical-csv"
    assert preview.rows == 2 and preview.sample.height == 2
    assert preview.missing_required == [] and not preview.needs_confirmation
    assert preview.mapping()["payment_date"] == "payment_date"
    assert store.fingerprint() == before


# -- loads ---------------------------------------------------------------------------------
def test_canonical_files_load_with_lineage_and_leading_zeros(store: Store) -> None:
    _load_parents(store)
    result = load_file(store, FIXTURES / "payments.csv", as_of_date=date(2025, 3, 1), who="tester")
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_rejected) == ("loaded", 2, 2, 0)
    assert result.message == "Loaded 2 payments from payments.csv."
    assert store.query("SELECT customer_id FROM customers ORDER BY 1")["customer_id"].to_list() == ["00085001", "00085002"]
    # P-2 had no customer: it takes its invoice's customer (leading zeros intact).
    assert store.scalar("SELECT customer_id FROM payments WHERE payment_id = 'P-2'") == "00085001"
    assert store.scalar("SELECT sum(amount) FROM invoices") == Decimal("310.50")
    load = store.query("SELECT * FROM loads WHERE load_id = ?", [result.load_id]).row(0, named=True)
    assert load["sha256"] and load["target_table"] == "payments" and load["source_format"] == "canonical-csv"
    assert load["as_of_date"] == date(2025, 3, 1) and load["who"] == "tester" and load["status"] == "loaded"
    assert json.loads(load["mapping"])["payment_date"] == "payment_date"
    assert store.scalar("SELECT count(DISTINCT load_id) FROM payments") == 1
    assert store.scalar("SELECT count(*) FROM mapping_profiles") == 3


def test_same_file_twice_is_a_noop_that_says_so(store: Store) -> None:
    first = load_file(store, FIXTURES / "customers.csv")
    before = store.fingerprint()
    again = load_file(store, FIXTURES / "customers.csv")
    assert again.status == "duplicate" and again.load_id is None and again.rows_loaded == 0
    loaded_on = store.scalar("SELECT started::DATE FROM loads WHERE load_id = ?", [first.load_id])
    assert again.message == f"customers.csv was already loaded on {loaded_on:%Y-%m-%d} (load #{first.load_id}); nothing changed."
    assert store.fingerprint() == before
    assert preview_file(FIXTURES / "customers.csv", store=store).already_loaded


ALIAS_INVOICES = """Invoice No,Cust No,Customer Name,Invoice Date,Terms,Total
00085001,000123,Acme Ltd,1/15/2025,Net 30,"$1,200.00"
00085002,000124,Beta GmbH,1/20/2025,2/10 Net 30,"(50.00)"
00085003,000124,Beta GmbH,2/3/2025,Due on receipt,75
"""


def test_alias_headers_load_and_invoices_create_minimal_customers(store: Store) -> None:
    result = load_file(store, ALIAS_INVOICES.encode(), file_name="erp.csv", max_reject_share=0.5)
    # the negative amount on a plain invoice is a credit that should be a credit memo
    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    assert result.rejected["reason"].to_list() == [
        "row 2: invoice 00085002 has a negative amount (-50.00): a credit should have document type credit memo"
    ]
    rows = store.query("SELECT invoice_id, customer_id, invoice_date, due_date, terms_days, amount FROM invoices ORDER BY 1")
    assert rows.rows() == [
        ("00085001", "000123", date(2025, 1, 15), date(2025, 2, 14), 30, Decimal("1200.00")),
        ("00085003", "000124", date(2025, 2, 3), date(2025, 2, 3), 0, Decimal("75.00")),
    ]
    customers = store.query("SELECT customer_id, name, load_id FROM customers ORDER BY 1").rows()
    assert customers == [("000123", "Acme Ltd", result.load_id), ("000124", "Beta GmbH", result.load_id)]
    assert any("M/D/YYYY" in w for w in result.warnings)


def test_rejected_rows_keep_reason_and_raw_row(store: Store) -> None:
    _load_parents(store)
    text = (
        "invoice_id,customer_id,invoice_date,due_date,amount\n"
        + "".join(f"INV-{i:02d},00085001,2025-03-01,2025-03-31,10.00\n" for i in range(10, 18))
        + "INV-90,00085001,,2025-03-31,10.00\n"
        + "INV-91,00085002,2025-03-01,2025-03-31,twelve\n"
    )
    result = load_file(store, text.encode(), file_name="march.csv")
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (10, 8, 2)
    assert result.message == "Loaded 8 invoices from march.csv; 2 rows need fixing."
    stored = store.query("SELECT row_number, reason, raw FROM rejected_rows WHERE load_id = ? ORDER BY 1", [result.load_id])
    assert stored["row_number"].to_list() == [9, 10]
    assert stored["reason"].to_list() == ["row 9: no invoice date", "row 10: amount 'twelve' is not a number"]
    assert json.loads(stored["raw"][1]) == {
        "invoice_id": "INV-91", "customer_id": "00085002", "invoice_date": "2025-03-01", "due_date": "2025-03-31", "amount": "twelve",
    }
    assert result.rejected.equals(stored.select("row_number", "reason", "raw"))


def test_due_date_from_terms_days_else_rejected(store: Store) -> None:
    text = (
        "invoice_id,customer_id,invoice_date,terms_days,terms_code,amount\n"
        "A1,C1,2025-01-01,45,,10\nA2,C1,2025-01-01,,NET15,10\nA3,C1,2025-01-01,,,10\n"
        "A4,C1,2025-01-01,,,10\nA5,C1,2025-01-01,60,,10\nA6,C1,2025-01-01,30,,10\n"
    )
    result = load_file(store, text.encode(), file_name="terms.csv", max_reject_share=0.5)
    assert store.query("SELECT invoice_id, due_date FROM invoices ORDER BY 1").rows() == [
        ("A1", date(2025, 2, 15)), ("A2", date(2025, 1, 16)), ("A5", date(2025, 3, 2)), ("A6", date(2025, 1, 31)),
    ]
    assert result.rejected["reason"].to_list() == [
        "row 3: no due date and no payment terms to work it out from",
        "row 4: no due date and no payment terms to work it out from",
    ]


def test_due_before_invoice_date_and_payment_for_unknown_invoice_are_rejected(store: Store) -> None:
    _load_parents(store)
    invoices = "invoice_id,customer_id,invoice_date,due_date,amount\n" + "".join(
        f"B{i},00085001,2025-02-01,2025-03-01,5\n" for i in range(9)
    ) + "B9,00085001,2025-02-01,2025-01-01,5\n"
    result = load_file(store, invoices.encode(), file_name="b.csv")
    assert result.rejected["reason"].to_list() == ["row 10: due date 2025-01-01 is before invoice date 2025-02-01"]
    payments = "payment_id,invoice_id,payment_date,amount\n" + "".join(
        f"Q{i},B{i},2025-02-10,5\n" for i in range(9)
    ) + "Q9,NOPE-1,2025-02-10,5\n"
    result = load_file(store, payments.encode(), file_name="q.csv")
    assert (result.rows_loaded, result.rows_rejected) == (9, 1)
    assert result.rejected["reason"].to_list() == [
        "row 10: payment Q9 is for invoice NOPE-1, which is not in the store (load the invoices first)"
    ]


def test_ids_already_in_store_are_skipped_when_equal_and_rejected_when_different(store: Store) -> None:
    _load_parents(store)
    text = (
        "invoice_id,customer_id,invoice_date,due_date,amount\n"
        "INV-1,00085001,2025-01-05,2025-02-04,100.00\n"   # same as stored: skipped
        "INV-2,00085001,2025-01-10,2025-02-09,260.00\n"   # stored 250.50: rejected
        + "".join(f"INV-1{i},00085001,2025-01-10,2025-02-09,1\n" for i in range(8))
    )
    result = load_file(store, text.encode(), file_name="again.csv")
    assert (result.rows_loaded, result.rows_rejected, result.rows_skipped) == (8, 1, 1)
    assert result.rejected["reason"].to_list() == [
        "row 2: invoice INV-2 is already in the store with amount 250.50, but this file says 260.00"
    ]
    assert store.scalar("SELECT amount FROM invoices WHERE invoice_id = 'INV-2'") == Decimal("250.50")
    assert "1 was already in the store" in result.message


def test_exact_duplicate_rows_load_once_with_a_warning(store: Store) -> None:
    text = "customer_id,name\nC1,One\nC2,Two\nC1,One\n"
    result = load_file(store, text.encode(), file_name="dups.csv")
    assert result.rows_loaded == 2 and result.rows_rejected == 0
    assert "1 row was an exact repeat of an earlier row and loaded once" in result.warnings


def test_fuzzy_header_needs_confirmation(store: Store) -> None:
    text = b"invoice_id,customer_id,Invoce Dat,due_date,amount\nX1,C1,2025-01-01,2025-01-31,10\n"
    preview = preview_file(text, file_name="typo.csv", store=store)
    fuzzy = [m for m in preview.matches if m.method == "fuzzy"]
    assert [(m.source, m.target) for m in fuzzy] == [("Invoce Dat", "invoice_date")] and 80 <= fuzzy[0].score < 100
    assert preview.needs_confirmation and preview.missing_required == []
    before = store.fingerprint()
    with pytest.raises(NeedsConfirmationError, match=r"'Invoce Dat' looks like invoice date .*--map \"Invoce Dat=invoice_date\""):
        load_file(store, text, file_name="typo.csv")
    assert store.fingerprint() == before
    result = load_file(store, text, file_name="typo.csv", accept_fuzzy=True)
    assert result.rows_loaded == 1
    # The confirmed mapping is remembered for files with the same headers.
    other = text.replace(b"X1,", b"X2,")
    assert not preview_file(other, file_name="typo2.csv", store=store).needs_confirmation
    assert load_file(store, other, file_name="typo2.csv").rows_loaded == 1


def test_user_mapping_confirms_and_can_ignore_columns(store: Store) -> None:
    text = b"Ref,Client,When,Value,Junk\nZ1,C9,05.03.2025,\"1.234,50\",x\n"
    result = load_file(
        store, text, file_name="map.csv",
        mapping={"Ref": "invoice_id", "Client": "customer_id", "When": "invoice_date", "Value": "amount", "Junk": ""},
        max_reject_share=1.0,
    )
    # the mapping was honoured; with no due date and no terms the invoice is due on its date, said out loud
    assert result.table == "invoices" and result.rows_loaded == 1
    assert any("no due date and no payment terms" in w and "due on receipt" in w for w in result.warnings)
    text = b"Ref,Client,When,Value,Terms\nZ2,C9,05.03.2025,\"1.234,50\",NET30\n"
    result = load_file(
        store, text, file_name="map2.csv",
        mapping={"Ref": "invoice_id", "Client": "customer_id", "When": "invoice_date", "Value": "amount", "Terms": "terms_code"},
    )
    assert store.query("SELECT invoice_id, invoice_date, due_date, amount FROM invoices ORDER BY 1").rows() == [
        ("Z1", date(2025, 3, 5), date(2025, 3, 5), Decimal("1234.50")),
        ("Z2", date(2025, 3, 5), date(2025, 4, 4), Decimal("1234.50")),
    ]


def test_semicolon_cp1252_and_bom_files(store: Store) -> None:
    text = "customer_id;name\n00001;Café Müller\n00002;Señor Ltd\n"
    load_file(store, text.encode("cp1252"), file_name="latin.csv")
    bom = "\ufeffcustomer_id\tname\n00003;x\tÉtoile\n".encode()
    load_file(store, bom, file_name="bom.tsv")
    load_file(store, b"customer_id|name\n00004|Pipe, Inc.\n", file_name="pipe.txt")
    assert store.query("SELECT customer_id, name FROM customers ORDER BY 1").rows() == [
        ("00001", "Café Müller"), ("00002", "Señor Ltd"), ("00003;x", "Étoile"), ("00004", "Pipe, Inc."),
    ]


def test_xlsx_with_real_dates_and_excel_serials_and_parquet(store: Store) -> None:
    frame = pl.DataFrame(
        {
            "Invoice Number": ["00042", "00043"],
            "Customer ID": ["0007", "0007"],
            "Invoice Date": [date(2025, 1, 5), date(2025, 1, 6)],
            "Due Date": [45692, 45693],  # Excel serials: 2025-02-04, 2025-02-05
            "Amount": [100.5, 200.0],
        }
    )
    buffer = io.BytesIO()
    frame.write_excel(buffer)
    result = load_file(store, buffer.getvalue(), file_name="aging.xlsx")
    assert result.rows_loaded == 2
    assert store.query("SELECT invoice_id, customer_id, invoice_date, due_date, amount FROM invoices ORDER BY 1").rows() == [
        ("00042", "0007", date(2025, 1, 5), date(2025, 2, 4), Decimal("100.50")),
        ("00043", "0007", date(2025, 1, 6), date(2025, 2, 5), Decimal("200.00")),
    ]
    assert store.scalar("SELECT source_format FROM loads") == "xlsx"
    payments = pl.DataFrame({"payment_id": ["P9"], "invoice_id": ["00042"], "payment_date": [date(2025, 2, 1)], "amount": [100.5]})
    buffer = io.BytesIO()
    payments.write_parquet(buffer)
    result = load_file(store, buffer.getvalue(), file_name="pay.parquet")
    assert result.rows_loaded == 1
    assert store.scalar("SELECT customer_id FROM payments") == "0007"


def test_notes_get_sentiment_and_flags_at_load(store: Store) -> None:
    text = (
        "note_id,customer_id,ts,text\n"
        "N1,C1,2025-01-05T10:00:00Z,\"Customer is angry, says invoice is disputed because of a wrong price\"\n"
        "N2,C1,2025-01-06 09:30,\"Great call, they promised payment on Friday\"\n"
        "N3,C1,2025-01-07T09:30:00+02:00,Called and left a voicemail\n"
    )
    load_file(store, text.encode(), file_name="notes.csv")
    rows = store.query("SELECT note_id, ts, sentiment, flags FROM notes ORDER BY 1").rows()
    assert rows[0][1] == datetime(2025, 1, 5, 10, 0) and rows[0][2] < 0 and rows[0][3] == "dispute"
    assert rows[1][1] == datetime(2025, 1, 6, 9, 30) and rows[1][2] > 0 and rows[1][3] == "promise"
    assert rows[2][1] == datetime(2025, 1, 7, 7, 30) and rows[2][3] is None  # +02:00 stored as UTC


def test_progress_is_reported_in_stages(store: Store) -> None:
    seen: list[tuple[float, str]] = []
    load_file(store, FIXTURES / "customers.csv", progress=lambda f, stage: seen.append((f, stage)))
    stages = [s for _, s in seen]
    assert stages[0] == "reading" and "validating" in stages and stages[-1] == "writing"
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1][0] == 1.0


def test_load_frame_and_load_world_take_typed_frames_in_parent_order(store: Store) -> None:
    start = date(2025, 1, 1)
    frames = {
        "payments": pl.DataFrame(
            {"payment_id": ["P1"], "invoice_id": ["I1"], "payment_date": [start + timedelta(days=20)], "amount": [Decimal("50.00")]}
        ),
        "invoices": pl.DataFrame(
            {
                "invoice_id": ["I1", "I2"], "customer_id": ["C1", "C1"], "invoice_date": [start, start],
                "due_date": [start + timedelta(days=30)] * 2, "amount": [80.0, 20.25],
            }
        ),
        "customers": pl.DataFrame({"customer_id": ["C1"], "name": ["One"], "strategic": [True]}),
    }
    results = load_world(store, frames, name="gen")
    assert [r.table for r in results] == ["customers", "invoices", "payments"]
    assert all(r.status == "loaded" and r.rows_rejected == 0 for r in results)
    assert store.scalar("SELECT sum(amount) FROM invoices") == Decimal("100.25")
    assert store.scalar("SELECT strategic FROM customers") is True
    again = load_frame(store, frames["invoices"], table="invoices", file_name="gen/invoices-again")
    assert again.status == "duplicate"


def test_seed_store_loads_sample_dir_once(store: Store, tmp_path: Path) -> None:
    sample = tmp_path / "sample"
    sample.mkdir()
    for name in ("customers", "invoices", "payments"):
        (sample / f"{name}.csv").write_bytes((FIXTURES / f"{name}.csv").read_bytes())
    results = seed_store(store, sample)
    assert [r.table for r in results] == ["customers", "invoices", "payments"]
    assert store.table_counts()["invoices"] == 3
    assert seed_store(store, sample) == []


# -- accounting-package reports (issue 3) ---------------------------------------------------
QBO_WEEK_1 = FIXTURES / "qbo_ar_aging_detail_2026-11-25.csv"
QBO_WEEK_2 = FIXTURES / "qbo_ar_aging_detail_2026-12-02.csv"


def test_quickbooks_aging_detail_lines_are_classified_with_a_balancing_count() -> None:
    from dashboard.ingest.formats.detect import parse_known_format

    report = parse_known_format(QBO_WEEK_1.read_bytes(), QBO_WEEK_1.name)
    assert report is not None and report.source_format == "quickbooks-ar-aging-detail"
    assert report.header_line == 5 and report.as_of_date == date(2026, 11, 25) and report.as_of_source == "title"
    assert report.row_classes == {"data": 9, "heading": 4, "total": 5, "blank": 4, "footer": 1}
    lines_after_header = len(QBO_WEEK_1.read_text().splitlines()) - report.header_line
    assert sum(report.row_classes.values()) == lines_after_header == report.lines_read == 23
    assert report.report_total == report.rows_total == Decimal("3910.17")
    assert report.frame["__row_number"].to_list() == [7, 8, 11, 12, 15, 16, 17, 20, 21]


def test_quickbooks_aging_detail_loads_invoices_and_a_dated_snapshot(store: Store) -> None:
    result = load_file(store, QBO_WEEK_1)
    assert (result.table, result.rows_loaded, result.rows_rejected, result.snapshot_rows) == ("invoices", 9, 0, 9)
    assert store.scalar("SELECT sum(open_amount) FROM snapshots") == Decimal("3910.17")  # the report's TOTAL
    assert store.scalar("SELECT DISTINCT as_of_date FROM snapshots") == date(2026, 11, 25)
    assert store.scalar("SELECT as_of_date FROM loads") == date(2026, 11, 25)
    doc_types = store.query("SELECT doc_type, count(*)::INT AS n FROM invoices GROUP BY 1 ORDER BY 1").rows()
    assert doc_types == [("credit_memo", 1), ("invoice", 6), ("journal", 1), ("unapplied_payment", 1)]
    assert store.query("SELECT invoice_date, due_date, amount, customer_id FROM invoices WHERE invoice_id = '1036'").row(0) == (
        date(2026, 11, 2), date(2026, 12, 2), Decimal("1200.00"), "Freeman Sporting Goods:0969 Ocean View Road",
    )
    assert store.scalar("SELECT count(*) FROM customers") == 6


def test_two_weekly_aging_snapshots_infer_interval_censored_payments(store: Store) -> None:
    load_file(store, QBO_WEEK_1)
    result = load_file(store, QBO_WEEK_2)
    assert (result.rows_loaded, result.rows_skipped, result.snapshot_rows, result.inferred_payments) == (1, 6, 7, 4)
    assert "4 payments inferred between 2026-11-25 and 2026-12-02" in result.message
    paid = store.query(
        "SELECT invoice_id, payment_date_lower, payment_date, amount FROM payments ORDER BY invoice_id"
    ).rows()
    week_1, week_2 = date(2026, 11, 25), date(2026, 12, 2)
    assert paid == [
        ("1015", week_1, week_2, Decimal("1000.00")),  # 1,500.00 open -> 500.00 open: a partial payment
        ("1021", week_1, week_2, Decimal("239.00")),
        ("1030", week_1, week_2, Decimal("85.00")),
        ("1036", week_1, week_2, Decimal("1200.00")),
    ]  # the credit memo, the unapplied payment and the journal are not invoices: nothing inferred


def test_quickbooks_aging_detail_as_xlsx_with_real_dates_and_numbers(store: Store, tmp_path: Path) -> None:
    import xlsxwriter

    path = tmp_path / "aging.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    date_format = book.add_format({"num_format": "mm/dd/yyyy"})
    rows = [
        ["A/R Aging Detail"], ["Craig's Design and Landscaping Services"], ["As of November 25, 2026"], [],
        ["", "Date", "Transaction Type", "Num", "Customer", "Due Date", "Past Due", "Amount", "Open Balance"],
        ["Current"],
        ["", date(2026, 11, 20), "Invoice", "1037", "Sonnenschein Family Store", date(2026, 12, 20), -25, 362.07, 362.07],
        ["", date(2026, 11, 2), "Invoice", "1036", "Freeman Sporting Goods", date(2026, 12, 2), -7, 1200, 1200],
        ["Total for Current", "", "", "", "", "", "", 1562.07, 1562.07],
        ["TOTAL", "", "", "", "", "", "", 1562.07, 1562.07],
        [], ["Accrual Basis Wednesday, November 25, 2026 10:52 AM GMT-08:00"],
    ]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, date):
                sheet.write_datetime(r, c, datetime(value.year, value.month, value.day), date_format)
            else:
                sheet.write(r, c, value)
    book.close()
    result = load_file(store, path)
    assert result.rows_loaded == 2 and result.snapshot_rows == 2
    assert store.scalar("SELECT source_format FROM loads") == "quickbooks-ar-aging-detail"
    assert store.query("SELECT invoice_id, invoice_date, due_date, amount FROM invoices ORDER BY 1").rows() == [
        ("1036", date(2026, 11, 2), date(2026, 12, 2), Decimal("1200.00")),
        ("1037", date(2026, 11, 20), date(2026, 12, 20), Decimal("362.07")),
    ]
    assert store.scalar("SELECT sum(open_amount) FROM snapshots") == Decimal("1562.07")


def test_customers_file_completes_customers_an_invoice_file_created(store: Store) -> None:
    invoices = b"invoice_id,customer_id,invoice_date,due_date,amount\nI-1,00085001,2025-01-01,2025-01-31,10\n"
    load_file(store, invoices, file_name="inv.csv")
    assert store.query("SELECT customer_id, name, industry FROM customers").rows() == [("00085001", "00085001", None)]
    result = load_file(store, FIXTURES / "customers.csv")
    assert (result.rows_loaded, result.rows_rejected, result.rows_skipped) == (2, 0, 0)
    assert store.query("SELECT customer_id, name, industry, load_id FROM customers ORDER BY 1").rows() == [
        ("00085001", "Acme Ltd", "Manufacturing", result.load_id),
        ("00085002", "Beta Corp", "Retail", result.load_id),
    ]
    # A real customers row, by contrast, is compared: a different name is a row to fix.
    changed = b"customer_id,name\n00085001,Acme Holdings\n" + b"".join(f"N{i},New {i}\n".encode() for i in range(9))
    result = load_file(store, changed, file_name="changed.csv")
    assert result.rejected["reason"].to_list() == [
        "row 1: customer 00085001 is already in the store with name Acme Ltd, but this file says Acme Holdings"
    ]


def test_delimiter_inside_quoted_text_does_not_fool_the_sniffer(store: Store) -> None:
    text = 'customer_id,name\nC1,"Smith; Jones; and Partners"\nC2,"A; B; C; D"\n'
    result = load_file(store, text.encode(), file_name="quoted.csv")
    assert result.rows_loaded == 2
    assert store.query("SELECT name FROM customers ORDER BY 1").rows() == [("A; B; C; D",), ("Smith; Jones; and Partners",)]


def test_spreadsheet_formula_ids_keep_their_leading_zeros(store: Store) -> None:
    text = 'customer_id,name\n"=""00085001""",Acme\n="00000042",Zero Ltd\n'
    load_file(store, text.encode(), file_name="excel.csv")
    assert store.query("SELECT customer_id FROM customers ORDER BY 1")["customer_id"].to_list() == ["00000042", "00085001"]


def test_total_lines_at_the_end_of_an_export_are_left_out_not_rejected(store: Store) -> None:
    text = (
        "Invoice No,Customer ID,Invoice Date,Due Date,Amount\n"
        "A-1,C1,2025-01-01,2025-01-31,10.00\nA-2,C1,2025-01-02,2025-02-01,15.50\n"
        "Total,,,,25.50\n"
    )
    result = load_file(store, text.encode(), file_name="with_total.csv")
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (3, 2, 0)
    assert "1 total line left out (row 3): totals are not rows" in result.warnings
