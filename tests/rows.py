"""Writing hand-made rows straight into a test store, the way a load would leave them.

Tests that build tiny worlds insert rows by column name and then bring the ledger up to date
(:func:`dashboard.ledger.refresh_ledger`), as every load does inside its transaction.
"""

from __future__ import annotations

import polars as pl

from dashboard.ledger import refresh_ledger
from dashboard.store import Store


def insert_rows(store: Store, table: str, rows: list[dict] | pl.DataFrame) -> None:
    """Insert ``rows`` (dicts or a frame) into ``table`` by column name (missing columns stay
    NULL or take their default), then rebuild the ledger, in one transaction."""
    frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows, infer_schema_length=None)
    if frame.height == 0:
        return
    with store.transaction() as cur:
        cur.register("recoup_test_rows", frame)
        cur.execute(f"INSERT INTO {table} BY NAME SELECT * FROM recoup_test_rows").fetchall()
        cur.unregister("recoup_test_rows")
        refresh_ledger(cur)


def ledger_rows(store: Store) -> tuple[list[tuple], list[tuple]]:
    """Both ledger tables, sorted: to compare the maintained ledger with a rebuilt one."""
    return (
        store.query("SELECT * FROM ledger_documents ORDER BY ALL").rows(),
        store.query("SELECT * FROM ledger_balances ORDER BY ALL").rows(),
    )


def ledger_is_rebuilt_identically(store: Store) -> bool:
    """True when rebuilding the whole ledger from the tables gives exactly the rows the loads
    (and undos) maintained; the rebuild is rolled back, so the store is left as it was."""
    kept = ledger_rows(store)
    cur = store.cursor()
    cur.execute("BEGIN TRANSACTION")
    try:
        refresh_ledger(cur)
        rebuilt = (
            cur.sql("SELECT * FROM ledger_documents ORDER BY ALL").pl().rows(),
            cur.sql("SELECT * FROM ledger_balances ORDER BY ALL").pl().rows(),
        )
    finally:
        cur.execute("ROLLBACK")
        cur.close()
    return kept == rebuilt


def as_before_the_ledger_view(con) -> None:  # noqa: ANN001 - a raw duckdb connection
    """Undo schema version 8 on a raw connection to a store file: ``ledger_documents`` a table
    again, no plain loads (what an older store looks like; its migration re-runs on opening)."""
    con.execute("DROP VIEW ledger_documents").fetchall()
    con.execute("DROP VIEW ledger_plain_documents").fetchall()
    con.execute("DROP TABLE ledger_plain_loads").fetchall()
    con.execute("ALTER TABLE ledger_stored_documents RENAME TO ledger_documents").fetchall()
    con.execute("DELETE FROM schema_version WHERE version >= 8").fetchall()
