"""A file read and checked in chunks loads exactly as when it is read whole.

Big files are typed one chunk at a time (and a big CSV on disk is never read whole); here the
chunk is made three rows long so every whole-file rule — repeats, contradictions, numbers
several customers use, voided copies, counted notes, a column read one way throughout — has
to hold across chunks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.errors import ValidationError
from dashboard.ingest import load_file
from dashboard.ingest import read as reader
from dashboard.ingest import stage as staging
from dashboard.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
MIXED = (
    b"Invoice No,Customer ID,Type,Invoice Date,Due Date,Amount,Status,Date Paid\n"
    b"A1,C1,Invoice,2025-01-05,2025-02-04,100.00,Open,\n"
    b"A2,C1,Invoice,2025-01-06,2025-02-05,200.00,Paid,2025-02-01\n"
    b"A3,C2,Invoice,2025-01-07,2025-02-06,300.00,Void,\n"
    b"A1,C1,Invoice,2025-01-05,2025-02-04,100.00,Open,\n"  # an exact repeat, in the next chunk
    b"S9,C1,Invoice,2025-01-08,2025-02-07,50.00,Open,\n"
    b"S9,C3,Invoice,2025-01-09,2025-02-08,60.00,Open,\n"  # the same number, another customer
    b"CM1,C2,Credit Memo,2025-01-10,2025-01-10,40.00,Open,\n"  # a credit written positive
    b"A4,C2,Invoice,2025-13-45,2025-02-09,10.00,Open,\n"  # not a date
    b"K1,C3,Invoice,2025-01-11,2025-02-10,0.00,Open,\n"  # a voided zero copy of K1
    b"K1,C3,Invoice,2025-01-12,2025-02-11,500.00,Open,\n"
)


def _contents(store: Store) -> dict[str, list[tuple]]:
    return {
        table: store.query(f"SELECT * EXCLUDE (load_id) FROM {table} ORDER BY ALL").rows()
        for table in ("invoices", "payments", "snapshots", "customers")
    } | {
        "rejected": store.query("SELECT row_number, reason FROM rejected_rows ORDER BY ALL").rows(),
        "ledger": store.query("SELECT * FROM ledger_documents ORDER BY ALL").rows(),
        "load": store.query("SELECT rows_read, rows_loaded, rows_rejected, message FROM loads").rows(),
    }


def _load_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: Path, **options: object) -> tuple[dict, dict, list, list]:
    with Store(tmp_path / "whole.duckdb") as store:
        whole = load_file(store, path, **options)
        expected = _contents(store)
    monkeypatch.setattr(reader, "CHUNK_ROWS", 3)
    monkeypatch.setattr(reader, "STREAM_BYTES", 100)  # every file on disk is read from disk in chunks
    assert reader.streams(path)
    with Store(tmp_path / "chunked.duckdb") as store:
        chunked = load_file(store, path, **options)
        got = _contents(store)
    # and with every chunk spilled to disk (a file too big to hold its typed rows in memory)
    monkeypatch.setattr(staging, "SPILL_MEMORY_BYTES", 1)
    with Store(tmp_path / "spilled.duckdb") as store:
        spilled = load_file(store, path, **options)
        assert _contents(store) == got
        assert spilled.warnings == chunked.warnings
    return expected, got, whole.warnings, chunked.warnings


@pytest.mark.parametrize(
    "name", ["mixed.csv", "ingest/invoices.csv", "public/ibm_watson__WA_Fn-UseC_-Accounts-Receivable.csv"]
)
def test_a_file_loads_the_same_in_chunks_as_whole(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = FIXTURES / name
    if name == "mixed.csv":
        path = tmp_path / name
        path.write_bytes(MIXED)
    expected, got, whole_notes, chunked_notes = _load_both(tmp_path, monkeypatch, path, max_reject_share=1.0)
    assert got == expected
    assert chunked_notes == whole_notes


def test_the_mixed_file_is_read_as_its_rows_say(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(MIXED)
    with Store(tmp_path / "recoup.duckdb") as store:
        result = load_file(store, path, max_reject_share=1.0)
        ids = [r[0] for r in store.query("SELECT invoice_id FROM invoices ORDER BY 1").rows()]
        said = " ".join(result.warnings)
    assert ids == ["A1", "A2", "CM1", "K1", "S9 · C1", "S9 · C3"]  # A3 void, A4 set aside, the zero K1 left out
    assert result.rejected["reason"].to_list() == ["row 8: invoice date '2025-13-45' is not a date"]
    assert "1 row was an exact repeat" in said and "1 credit memo had a positive amount" in said
    assert "used by more than one customer (S9)" in said
    assert "1 void and 1 voided zero-amount copy documents left out: not receivables (row 3, 9)" in said


def test_a_contradiction_across_chunks_refuses_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "clash.csv"
    path.write_bytes(
        b"Invoice No,Customer ID,Invoice Date,Due Date,Amount\n"
        b"B1,C1,2025-01-05,2025-02-04,100.00\nB2,C1,2025-01-05,2025-02-04,1.00\nB3,C1,2025-01-05,2025-02-04,1.00\n"
        b"B1,C1,2025-01-05,2025-02-04,120.00\n"
    )
    monkeypatch.setattr(reader, "CHUNK_ROWS", 3)
    monkeypatch.setattr(reader, "STREAM_BYTES", 100)
    with Store(tmp_path / "recoup.duckdb") as store:
        before = store.fingerprint()
        with pytest.raises(ValidationError, match=r"invoice B1 appears twice with different amounts \(100\.00 and 120\.00\)"):
            load_file(store, path)
        assert store.fingerprint() == before
