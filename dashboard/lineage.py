"""Lineage reads: what was loaded, when, from which file, and which rows need fixing."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class StoreSummary:
    """What the store holds, counted the way the rest of the product counts it: ``invoices``
    are invoice documents (as the health checks count them); credit memos, unapplied payments
    and journals are ``other_documents``; ``payments`` are cash lines (inferred ones included)."""

    invoices: int
    other_documents: int
    payments: int
    customers: int
    loads: int

    def documents_note(self) -> str:
        """One line on what "Invoices" counts."""
        if not self.other_documents:
            return "Invoices counts invoice documents."
        return (
            f"Invoices counts invoice documents; {self.other_documents:,} credit memos, unapplied payments and journals "
            "are counted apart (the health checks below count invoices the same way)."
        )


def store_summary(store: Store) -> StoreSummary:
    """The counts the Data page shows, read after any load of the same page run."""
    row = store.query(
        """
        SELECT (SELECT count(*) FROM invoices WHERE coalesce(doc_type, 'invoice') = 'invoice')::BIGINT AS invoices,
               (SELECT count(*) FROM invoices WHERE coalesce(doc_type, 'invoice') <> 'invoice')::BIGINT AS other_documents,
               (SELECT count(*) FROM payments)::BIGINT AS payments,
               (SELECT count(*) FROM customers)::BIGINT AS customers,
               (SELECT count(*) FROM loads WHERE status = 'loaded')::BIGINT AS loads
        """
    ).row(0, named=True)
    return StoreSummary(**{k: int(v) for k, v in row.items()})
