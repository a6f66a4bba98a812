from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from dashboard.errors import SchemaTooNewError, StoreError, StoreLockedError
from dashboard.schema import DATA_TABLES, SCHEMA_VERSION
from dashboard.store import Store
from tests.rows import as_before_the_ledger_view

ROOT = Path(__file__).resolve().parent.parent


def test_new_store_has_every_table_empty_and_current_schema(store: Store) -> None:
    counts = store.table_counts()
    assert set(counts) == set(DATA_TABLES)
    assert all(n == 0 for n in counts.values())
    assert store.schema_version() == SCHEMA_VERSION


def test_reopening_does_not_migrate_twice(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    with Store(path) as s:
        assert s.scalar("SELECT count(*) FROM schema_version") == SCHEMA_VERSION


def test_store_written_by_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version VALUES (?, now())", [SCHEMA_VERSION + 1]).fetchall()
    con.close()
    before = path.read_bytes()
    with pytest.raises(SchemaTooNewError, match=f"schema version {SCHEMA_VERSION + 1}"):
        Store(path)
    assert path.read_bytes() == before


def test_failed_transaction_leaves_store_exactly_as_it_was(store: Store) -> None:
    with store.transaction() as cur:
        cur.execute(
            "INSERT INTO customers (customer_id, name) VALUES ('00085001', 'Acme Ltd')"
        )
    before = store.fingerprint()
    with pytest.raises(duckdb.ConstraintException), store.transaction() as cur:
        cur.execute("INSERT INTO customers (customer_id, name) VALUES ('00085002', 'Beta')")
        cur.execute("INSERT INTO customers (customer_id, name) VALUES ('00085001', 'Dup')")
    assert store.fingerprint() == before
    # ids are text: leading zeros survive
    assert store.scalar("SELECT customer_id FROM customers") == "00085001"


def test_cursors_per_session_see_committed_writes(store: Store) -> None:
    a, b = store.cursor(), store.cursor()
    with store.transaction() as cur:
        cur.execute("INSERT INTO customers (customer_id, name) VALUES ('C1', 'One')")
    assert a.execute("SELECT count(*) FROM customers").fetchall()[0][0] == 1
    assert b.execute("SELECT name FROM customers").fetchall()[0][0] == "One"


def test_a_query_reads_frames_it_is_given_and_only_that_query(store: Store) -> None:
    shared = pl.DataFrame({"invoice_id": ["I1", "I2", "I3"], "amount": [10.0, 20.0, 12.5]})
    got = store.query("SELECT sum(amount) AS total, count(*) AS n FROM shared_frame WHERE amount > ?", [11], frames={"shared_frame": shared})
    assert got.row(0) == (32.5, 2)
    with pytest.raises(duckdb.CatalogException, match="shared_frame"):
        store.query("SELECT count(*) FROM shared_frame")  # registered on that query's cursor only


def test_second_process_gets_a_plain_locked_message(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path):
        proc = subprocess.run(
            [sys.executable, "-m", "dashboard", "status", "--db", str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode != 0
    assert "in use by another Recoup process" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_locked_error_type(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    code = (
        "import sys; from dashboard.store import Store; from dashboard.errors import StoreLockedError\n"
        f"try:\n    Store({str(path)!r})\nexcept StoreLockedError:\n    sys.exit(7)\n"
    )
    with Store(path):
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60)
    assert proc.returncode == 7
    assert StoreLockedError.__mro__[1].__name__ == "StoreError"


def test_status_json_counts_tables(tmp_path: Path) -> None:
    import json

    path = tmp_path / "s.duckdb"
    proc = subprocess.run(
        [sys.executable, "-m", "dashboard", "status", "--db", str(path), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["tables"]["invoices"] == 0
    assert out["schema_version"] == SCHEMA_VERSION
    assert out["loads"] == []


def test_invoice_and_payment_ids_stay_unique_under_overlapping_and_concurrent_loads(tmp_path: Path) -> None:
    """invoices/payments have no PRIMARY KEY index (schema.py says why): the one writer keeps ids unique."""
    import threading

    from dashboard.ingest import load_file

    header = "invoice_id,customer_id,invoice_date,due_date,amount\n"
    files = []
    for n, ids in enumerate([range(0, 400), range(200, 600), range(300, 700), range(0, 700)]):
        path = tmp_path / f"overlap-{n}.csv"
        path.write_text(header + "".join(f"U-{i},C{i % 7},2026-01-05,2026-02-04,{10 + i}.00\n" for i in ids), encoding="utf-8")
        files.append(path)
    with Store(tmp_path / "u.duckdb") as s:
        errors: list[BaseException] = []

        def load(path: Path) -> None:
            try:
                load_file(s, path)
            except BaseException as exc:  # noqa: BLE001 - surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=load, args=(p,)) for p in files]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert s.scalar("SELECT count(*) FROM invoices") == 700
        assert s.scalar("SELECT count(DISTINCT invoice_id) FROM invoices") == 700


def test_a_store_from_before_kept_backtests_gets_the_table_when_opened(tmp_path: Path) -> None:
    """A store at schema version 6 (no kept_backtests) is migrated on opening, its data untouched."""
    path = tmp_path / "v6.duckdb"
    with Store(path) as s, s.transaction() as cur:
        cur.execute("INSERT INTO customers (customer_id, name) VALUES ('C1', 'Alpha')").fetchall()
    con = duckdb.connect(str(path))  # as version 6 left it
    as_before_the_ledger_view(con)  # version 8
    con.execute("DROP TABLE kept_backtests").fetchall()
    con.execute("DELETE FROM schema_version WHERE version >= 7").fetchall()
    con.close()
    with pytest.raises(StoreError, match="needs an upgrade"):  # a read-only opening writes nothing
        Store(path, read_only=True)
    with Store(path) as s:
        assert s.schema_version() == SCHEMA_VERSION == 8
        assert s.scalar("SELECT count(*) FROM kept_backtests") == 0
        assert s.scalar("SELECT name FROM customers") == "Alpha"
