"""Faults: the program killed in the middle of a load leaves a consistent store and says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.ingest import load_file
from dashboard.ingest.journal import dismiss_interrupted_load, interrupted_load, journal_path
from dashboard.store import Store

ROOT = Path(__file__).resolve().parent.parent


def _big_invoices_csv(path: Path, rows: int) -> None:
    n = pl.int_range(0, rows, eager=True)
    pl.DataFrame(
        {
            "invoice_id": "K-" + n.cast(pl.String).str.zfill(7),
            "customer_id": "C" + (n % 500).cast(pl.String).str.zfill(5),
            "invoice_date": ["2026-01-15"] * rows,
            "due_date": ["2026-02-14"] * rows,
            "amount": ((n % 997) + 10).cast(pl.Float64) + 0.25,
        }
    ).write_csv(path)


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    db = tmp_path / "faults.duckdb"
    first = tmp_path / "first.csv"
    first.write_text(
        "invoice_id,customer_id,invoice_date,due_date,amount\nA-1,C1,2026-01-02,2026-02-01,100.00\n", encoding="utf-8"
    )
    with Store(db) as s:
        load_file(s, first)
    return db


def test_killed_mid_load_leaves_the_store_as_it_was_and_explains(small_store: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    _big_invoices_csv(big, 400_000)
    with Store(small_store) as s:
        before = s.fingerprint()
        journal = journal_path(s)
    assert journal is not None and not journal.exists()

    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboard", "load", str(big), "--db", str(small_store)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not journal.exists():
        assert proc.poll() is None, f"load ended before it could be interrupted: {proc.communicate()}"
        assert time.monotonic() < deadline, "the load never started its transaction"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)  # the laptop crashes mid-transaction
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    with Store(small_store) as s:
        assert s.fingerprint() == before, "a partial load survived the crash"
        assert s.scalar("SELECT count(*) FROM invoices") == 1
        notice = interrupted_load(s)
        assert notice is not None and not notice.kept
        assert "big.csv" in notice.message and "did not finish" in notice.message
        assert "exactly as it was" in notice.message

        # the app says what happened, on the Data page
        os.environ["RECOUP_DB"] = str(small_store)
        try:
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
            at.switch_page("pages/data.py").run()
            assert not at.exception
            assert any("did not finish" in w.value for w in at.warning), [w.value for w in at.warning]
        finally:
            del os.environ["RECOUP_DB"]

        dismiss_interrupted_load(s)
        assert interrupted_load(s) is None

    # loading the same file again afterwards works and lands whole
    with Store(small_store) as s:
        result = load_file(s, big)
        assert result.rows_loaded == 400_000
        assert s.scalar("SELECT count(*) FROM invoices") == 400_001


def test_a_finished_load_leaves_no_journal(small_store: Path) -> None:
    with Store(small_store) as s:
        assert interrupted_load(s) is None
        assert not journal_path(s).exists()


def test_a_refused_load_leaves_no_journal(small_store: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("invoice_id,customer_id,invoice_date,due_date,amount\nX,C1,not a date,2026-01-01,1\n", encoding="utf-8")
    with Store(small_store) as s:
        before = s.fingerprint()
        with pytest.raises(Exception, match="date"):
            load_file(s, bad)
        assert s.fingerprint() == before
        assert interrupted_load(s) is None


@pytest.mark.parametrize("content", ["", "{\"file_name\": \"big.csv\", \"pi"])
def test_a_garbled_journal_still_explains_the_stop(small_store: Path, content: str) -> None:
    # the stop can land while the journal itself is being written
    with Store(small_store) as s:
        journal_path(s).write_text(content, encoding="utf-8")
        notice = interrupted_load(s)
        assert notice is not None and not notice.kept
        assert "did not finish" in notice.message
        dismiss_interrupted_load(s)
        assert not journal_path(s).exists()
