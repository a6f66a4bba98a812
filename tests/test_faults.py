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

from dashboard.errors import StoreError
from dashboard.ingest import load_file, load_frame
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
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
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
    bad.write_text(
        "invoice_id,customer_id,invoice_date,due_date,amount\nX,C1,not a date,2026-01-01,1\n", encoding="utf-8"
    )
    with Store(small_store) as s:
        before = s.fingerprint()
        with pytest.raises(Exception, match="date"):
            load_file(s, bad)
        assert s.fingerprint() == before
        assert interrupted_load(s) is None


@pytest.mark.parametrize("content", ["", '{"file_name": "big.csv", "pi'])
def test_a_garbled_journal_still_explains_the_stop(small_store: Path, content: str) -> None:
    # the stop can land while the journal itself is being written
    with Store(small_store) as s:
        journal_path(s).write_text(content, encoding="utf-8")
        notice = interrupted_load(s)
        assert notice is not None and not notice.kept
        assert "did not finish" in notice.message
        dismiss_interrupted_load(s)
        assert not journal_path(s).exists()


# -- a full disk ----------------------------------------------------------------------------------
# A small tmpfs mounted in a private mount namespace (``unshare -rm``: no root needed where user
# namespaces are allowed) is a real full disk: DuckDB gets ENOSPC from the kernel, exactly as on
# a laptop whose disk filled up. The child reports what happened as JSON lines.
_FULL_DISK_CHILD = r"""
import json, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
import polars as pl
from dashboard.errors import StoreError
from dashboard.store import Store

case, folder = sys.argv[1], Path(sys.argv[3])
db = folder / "recoup.duckdb"

def report(**values):
    print(json.dumps(values), flush=True)

if case in ("load", "load-spilled"):  # a load bigger than the disk, through the loader as the Data page runs it
    from dashboard.ingest import load_file
    from dashboard.ingest.journal import interrupted_load

    if case == "load-spilled":  # read in chunks, each spilled to Parquet parts beside the store (in the background)
        from dashboard.ingest import read, stage
        read.STREAM_BYTES, stage.SPILL_MEMORY_BYTES = 100, 1

    with Store(db) as s:
        before = s.fingerprint()
        try:
            load_file(s, Path(sys.argv[4]))
            report(error=None)
        except Exception as exc:
            report(error=type(exc).__name__, message=str(exc), same=s.fingerprint() == before,
                   journal=interrupted_load(s) is not None, left=sorted(os.listdir(folder)))
elif case == "create":
    try:
        Store(db).close()
        report(error=None)
    except Exception as exc:
        report(error=type(exc).__name__, message=str(exc), left=sorted(os.listdir(folder)))
else:
    with Store(db) as s:
        s.query("SELECT 1")
        with s.transaction() as cur:
            cur.execute("INSERT INTO customers (customer_id, name) VALUES ('C1', 'Acme')")
        before = s.fingerprint()
        filler = pl.DataFrame({"customer_id": [f"F{i:07d}-{os.urandom(8).hex()}" for i in range(200_000)]})
        try:
            with s.transaction() as cur:
                cur.execute("INSERT INTO customers (customer_id, name) SELECT customer_id, customer_id FROM filler")
            report(error=None)
        except Exception as exc:
            report(error=type(exc).__name__, message=str(exc), same=s.fingerprint() == before)
    with Store(db) as s:
        report(reopened=s.table_counts()["customers"], same=s.fingerprint() == before)
"""


def _on_a_full_disk(tmp_path: Path, size: str, case: str, *extra: str) -> list[dict]:
    import json
    import shutil

    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("no private mount namespace here (unshare -rm) to make a small full disk")
    mount = tmp_path / f"disk-{size}"
    mount.mkdir()
    script = tmp_path / "child.py"
    script.write_text(_FULL_DISK_CHILD, encoding="utf-8")
    shell = f"mount -t tmpfs -o size={size} tmpfs {mount} && {sys.executable} {script} {case} {ROOT} {mount} {' '.join(extra)}"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", shell], capture_output=True, text=True, timeout=120)
    if "mount:" in done.stderr and not done.stdout:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("size", ["8k", "16k"])
def test_a_store_created_on_a_full_disk_says_so_and_leaves_no_stub(tmp_path: Path, size: str) -> None:
    # 8k: DuckDB cannot write the file header; 16k: the header fits but the first migration's
    # commit does not (before: a raw TransactionException, and a stub that later failed to open)
    (result,) = _on_a_full_disk(tmp_path, size, "create")
    assert result["error"] == "StoreError"
    assert "disk" in result["message"] and "full" in result["message"], result["message"]
    assert "IO Error" not in result["message"] and "TransactionContext" not in result["message"]
    assert result["left"] == [], "a half-created store was left on the disk"


def test_a_write_that_fills_the_disk_is_rolled_back_with_a_plain_reason(tmp_path: Path) -> None:
    failed, reopened = _on_a_full_disk(tmp_path, "1m", "write")
    assert failed["error"] == "StoreError", failed
    assert "is full" in failed["message"] and "rolled back" in failed["message"], failed["message"]
    assert failed["same"], "the failed write changed the open store"
    assert reopened == {"reopened": 1, "same": True}


def test_a_load_that_fills_the_disk_is_refused_with_a_plain_reason(tmp_path: Path) -> None:
    # the loader's own cleanup then meets the aborted transaction and raises "Current transaction
    # is aborted": the reason underneath it (no space left) is what the user is told
    big = tmp_path / "big.csv"
    _big_invoices_csv(big, 300_000)
    (failed,) = _on_a_full_disk(tmp_path, "1m", "load", str(big))
    assert failed["error"] == "StoreError", failed
    assert "is full" in failed["message"] and "rolled back" in failed["message"], failed["message"]
    assert failed["same"] and not failed["journal"]


def test_a_load_whose_spill_fills_the_disk_is_refused_with_a_plain_reason(tmp_path: Path) -> None:
    # the typed rows go to Parquet parts beside the store, written in the background while the
    # next chunk is typed: the part that does not fit stops the load with the same plain reason
    big = tmp_path / "big.csv"
    _big_invoices_csv(big, 300_000)
    (failed,) = _on_a_full_disk(tmp_path, "1m", "load-spilled", str(big))
    assert failed["error"] == "StoreError", failed
    assert "is full" in failed["message"], failed["message"]
    assert failed["same"] and not failed["journal"]
    assert not [name for name in failed["left"] if name.startswith(".recoup-load-")], "the spill's scratch folder was left behind"


def test_a_load_that_runs_out_of_memory_says_so_and_changes_nothing(store: Store) -> None:
    """DuckDB running out of the memory it may use (here: a 4 MB limit on a 50,000-payment
    load) is refused in plain words, and the store is as it was."""
    from datetime import date, timedelta

    n = 50_000
    load_frame(store, pl.DataFrame({
        "invoice_id": [f"I{i}" for i in range(n)], "customer_id": [f"C{i % 50}" for i in range(n)],
        "invoice_date": [date(2025, 1, 1) + timedelta(days=i % 300) for i in range(n)],
        "due_date": [date(2025, 2, 1) + timedelta(days=i % 300) for i in range(n)],
        "amount": [100.0] * n, "currency": ["USD"] * n,
    }), table="invoices", file_name="invoices")
    payments = pl.DataFrame({"payment_id": [f"P{i}" for i in range(n)], "invoice_id": [f"I{i}" for i in range(n)],
                             "payment_date": [date(2026, 1, 15)] * n, "amount": [50.0] * n})
    before = store.fingerprint()
    with pytest.raises(StoreError, match="needed more memory than it may use") as refused, \
            store.bounded_memory(big=True, limit="4MB"):
        load_frame(store, payments, table="payments", file_name="payments")
    assert "the store is as it was" in str(refused.value)
    assert store.fingerprint() == before
    assert load_frame(store, payments, table="payments", file_name="payments").rows_loaded == n
