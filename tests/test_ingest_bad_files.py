"""Refusals: a clear message, and every table of the store exactly as it was."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from dashboard import config
from dashboard.errors import UnknownColumnError, UnreadableFileError, ValidationError
from dashboard.ingest import load_file, preview_file
from dashboard.store import Store

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "ingest"


@pytest.fixture
def loaded(store: Store) -> Store:
    """A store that already holds customers and invoices (so "unchanged" means something)."""
    load_file(store, FIXTURES / "customers.csv")
    load_file(store, FIXTURES / "invoices.csv")
    return store


def _refused(store: Store, data: bytes, file_name: str, error: type[Exception], match: str, **options: object) -> None:
    before = store.fingerprint()
    with pytest.raises(error, match=match):
        load_file(store, data, file_name=file_name, **options)
    assert store.fingerprint() == before


def test_no_header_match_names_the_missing_column_and_quotes_headers(loaded: Store) -> None:
    data = b"Num,Name,Memo,Amount\n1001,Acme,x,10\n"
    _refused(
        loaded, data, "qb.csv", UnknownColumnError,
        r"no invoice date column; got headers \['Num', 'Name', 'Memo', 'Amount'\]",
    )


def test_nothing_recognisable_at_all_is_refused(loaded: Store) -> None:
    _refused(loaded, b"foo,bar\n1,2\n", "mystery.csv", UnknownColumnError, r"none of its headers looks like a Recoup column.*got headers \['foo', 'bar'\]")


def test_bad_dates_refuse_the_file_with_the_top_reasons(loaded: Store) -> None:
    data = (
        b"invoice_id,customer_id,invoice_date,due_date,amount\n"
        b"D1,00085001,2025-13-45,2025-02-01,10\nD2,00085001,yesterday,2025-02-01,10\n"
        b"D3,00085001,2025-01-02,2025-02-01,10\nD4,00085001,,2025-02-01,10\n"
    )
    _refused(
        loaded, data, "dates.csv", ValidationError,
        r"3 of 4 rows \(75%\) have problems, more than the 20% allowed\. Most common: 2 × invoice date '2025-13-45' is not a date \(first at row 1\); 1 × no invoice date",
    )


def test_duplicate_invoice_ids_with_different_amounts_refuse_the_file(loaded: Store) -> None:
    data = (
        b"invoice_id,customer_id,invoice_date,due_date,amount\n"
        b"INV-7,00085001,2025-01-02,2025-02-01,100.00\nINV-8,00085001,2025-01-02,2025-02-01,5\n"
        b"INV-7,00085001,2025-01-02,2025-02-01,120.00\n"
    )
    _refused(loaded, data, "dup.csv", ValidationError, r"invoice INV-7 appears twice with different amounts \(100\.00 and 120\.00\)")


def test_empty_file(loaded: Store) -> None:
    _refused(loaded, b"", "empty.csv", UnreadableFileError, r"^empty\.csv is empty$")
    _refused(loaded, b"  \n\n", "blank.csv", UnreadableFileError, r"is empty")


def test_header_only_file(loaded: Store) -> None:
    _refused(loaded, b"invoice_id,customer_id,invoice_date,amount\n", "header.csv", UnreadableFileError, r"has a header row .* but no data rows")


def test_binary_file_renamed_csv(loaded: Store) -> None:
    data = bytes(range(256)) * 8
    _refused(loaded, data, "invoices.csv", UnreadableFileError, r"is not a text file \(it contains binary data\)")


def test_spreadsheet_renamed_csv_and_wrong_extension(loaded: Store) -> None:
    buffer = io.BytesIO()
    pl.DataFrame({"a": [1]}).write_excel(buffer)
    _refused(loaded, buffer.getvalue(), "report.csv", UnreadableFileError, r"compressed \(zip or Excel\) file, not a \.csv file")
    _refused(loaded, b"invoice_id\n1\n", "book.xlsx", UnreadableFileError, r"has a \.xlsx name but its content is not a xlsx file")
    _refused(loaded, b"%PDF-1.4 invoice_id\n", "statement.pdf", UnreadableFileError, r"\.pdf files cannot be loaded")


def test_file_over_the_upload_limit_is_refused_before_parsing(loaded: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(config, "MAX_UPLOAD_BYTES", 100)
    path = tmp_path / "big.csv"
    path.write_bytes(b"customer_id,name\n" + b"C1,x\n" * 50)
    before = loaded.fingerprint()
    with pytest.raises(UnreadableFileError, match=r"big\.csv is 0\.0 MB, over the 0 MB upload limit"):
        load_file(loaded, path, max_bytes=config.MAX_UPLOAD_BYTES)
    with pytest.raises(UnreadableFileError, match="upload limit"):
        preview_file(path, max_bytes=config.MAX_UPLOAD_BYTES)
    assert loaded.fingerprint() == before
    # the command line loads whole books: no upload limit there
    assert load_file(loaded, path).status == "loaded"


def test_refusal_inside_the_transaction_rolls_back_everything(loaded: Store) -> None:
    # 1 of 3 rows contradicts the store: over a 10% limit the whole file goes, minimal customers included.
    data = (
        b"invoice_id,customer_id,invoice_date,due_date,amount\n"
        b"INV-1,00085001,2025-01-05,2025-02-04,999.00\nNEW-1,NEWCUST,2025-01-02,2025-02-01,5\nNEW-2,NEWCUST,2025-01-02,2025-02-01,6\n"
    )
    _refused(
        loaded, data, "contradicts.csv", ValidationError,
        r"invoice INV-1 is already in the store with amount 100\.00, but this file says 999\.00",
        max_reject_share=0.1,
    )
    assert loaded.scalar("SELECT count(*) FROM customers WHERE customer_id = 'NEWCUST'") == 0


# -- the command line ----------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dashboard", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_cli_load_orders_parents_first_and_refuses_bad_files_with_reason(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.duckdb")
    ok = _cli("load", str(FIXTURES / "payments.csv"), str(FIXTURES / "invoices.csv"), str(FIXTURES / "customers.csv"), "--db", db)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [
        "Loaded 2 customers from customers.csv.",
        "Loaded 3 invoices from invoices.csv.",
        "Loaded 2 payments from payments.csv.",
    ]
    again = _cli("load", str(FIXTURES / "invoices.csv"), "--db", db)
    assert again.returncode == 0 and "was already loaded on" in again.stdout and "nothing changed" in again.stdout

    bad = tmp_path / "typo.csv"
    bad.write_text("invoice_id,customer_id,Invoce Dat,due_date,amount\nX1,00085001,2025-01-01,2025-01-31,10\n")
    with Store(db) as store:
        before = store.fingerprint()
    refused = _cli("load", str(bad), "--db", db)
    assert refused.returncode != 0 and refused.stdout == ""
    assert "error: typo.csv: please confirm the column mapping: 'Invoce Dat' looks like invoice date" in refused.stderr
    with Store(db) as store:
        assert store.fingerprint() == before
    mapped = _cli("load", str(bad), "--db", db, "--map", "Invoce Dat=invoice_date", "--json")
    assert mapped.returncode == 0, mapped.stderr
    assert '"rows_loaded": 1' in mapped.stdout


def test_cli_seed_loads_once_then_says_so(tmp_path: Path) -> None:
    db = str(tmp_path / "seed.duckdb")
    sample = tmp_path / "sample"
    sample.mkdir()
    for name in ("customers", "invoices"):
        (sample / f"{name}.csv").write_bytes((FIXTURES / f"{name}.csv").read_bytes())
    first = _cli("seed", "--db", db, "--sample-dir", str(sample))
    assert first.returncode == 0, first.stderr
    assert "seeded 5 rows from 2 sample files (3 invoices, 2 customers, 0 payments)" in first.stdout
    second = _cli("seed", "--db", db, "--sample-dir", str(sample))
    assert second.returncode == 0 and "store already has 3 invoices; nothing loaded" in second.stdout
    missing = _cli("seed", "--db", str(tmp_path / "other.duckdb"), "--sample-dir", str(tmp_path / "nowhere"))
    assert missing.returncode != 0 and "no sample data to seed from" in missing.stderr


# -- reports -------------------------------------------------------------------------------
def test_report_cut_off_before_its_total_is_refused(loaded: Store) -> None:
    data = (FIXTURES / "qbo_ar_aging_detail_cut_off.csv").read_bytes()
    _refused(loaded, data, "aging.csv", ValidationError, r"looks cut off: the QuickBooks Online A/R Aging Detail report has no TOTAL line \(its last line is 'Total for 91")


def test_report_cut_off_after_its_total_is_refused(loaded: Store) -> None:
    lines = (FIXTURES / "qbo_ar_aging_detail_2026-11-25.csv").read_text().splitlines()
    data = ("\n".join(lines[: lines.index(next(x for x in lines if x.startswith("TOTAL"))) + 1]) + "\n").encode()
    _refused(loaded, data, "aging.csv", ValidationError, r"looks cut off: nothing follows its TOTAL line")


def test_report_whose_lines_do_not_add_up_to_its_total_is_refused(loaded: Store) -> None:
    data = (FIXTURES / "qbo_ar_aging_detail_bad_total.csv").read_bytes()
    _refused(
        loaded, data, "aging.csv", ValidationError,
        r"does not add up: its data lines total 3,910\.17 but its TOTAL line says 3,901\.17",
    )


def test_open_balances_without_a_date_are_refused_until_one_is_given(loaded: Store) -> None:
    from dashboard.errors import AsOfDateNeededError

    data = b"Invoice No,Customer,Date,Due Date,Amount,Open Balance\nQ1,Zed,2026-01-01,2026-01-31,10,4\n"
    _refused(loaded, data, "open.csv", AsOfDateNeededError, r"says what is open or paid but does not say on which date; load it with --as-of")
    from datetime import date

    result = load_file(loaded, data, file_name="open.csv", as_of_date=date(2026, 2, 1))
    assert result.snapshot_rows == 1
    assert loaded.query("SELECT as_of_date, invoice_id, open_amount FROM snapshots").rows() == [(date(2026, 2, 1), "Q1", 4)]
