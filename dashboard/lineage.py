"""Lineage reads: what was loaded, when, from which file, and which rows need fixing."""

from __future__ import annotations

import polars as pl

from dashboard.store import Store


def load_history(store: Store, *, limit: int = 50) -> pl.DataFrame:
    """The most recent loads, newest first (one row per file loaded)."""
    return store.query(
        """
        SELECT load_id, file_name, source_format, target_table, as_of_date, rows_read,
               rows_loaded, rows_rejected, status, message, who, started, finished, sha256
        FROM loads ORDER BY load_id DESC LIMIT ?
        """,
        [limit],
    )


def rejected_rows(store: Store, load_id: int) -> pl.DataFrame:
    """Rows of one load that were kept aside, with the reason in plain words."""
    return store.query(
        "SELECT row_number, reason, raw FROM rejected_rows WHERE load_id = ? ORDER BY row_number",
        [load_id],
    )
