"""Lineage reads: what was loaded, when, from which file, which rows need fixing, and what the
store holds; :func:`preview_messages` sorts a file preview's messages for the Data page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from dashboard.display import day
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


@dataclass(frozen=True)
class PreviewMessages:
    """A file preview's messages sorted for the page: what checks out (``confirmations``), what
    is only information (``notes``) and what needs a look (``warnings``)."""

    confirmations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def preview_messages(preview: Any) -> PreviewMessages:
    """Sort a preview's messages: a vendor report whose lines add up to its own TOTAL says so as
    a confirmation; how the report was read (its lines, its date, the format's reading notes such
    as "dates read day-first") are notes; what needs a look (lines that do not add up, changed
    columns, a missing date or rate) stays a warning."""
    report = getattr(preview, "report", None)
    warnings = list(preview.warnings)
    if report is None:
        return PreviewMessages(warnings=warnings)
    summary = report.summary()
    reading = [w for w in warnings if w in report.warnings]
    rest = [w for w in warnings if w != summary and w not in report.warnings]
    counts = ", ".join(f"{n:,} {kind}" for kind, n in report.row_classes.items() if n)
    described = f"{report.label or report.source_format}: {report.lines_read:,} lines read ({counts})"
    if report.as_of_date is not None:
        described += f"; balances as of {day(report.as_of_date)} (from its {report.as_of_source})"
    notes = [note[:1].upper() + note[1:] + "." for note in reading]
    if report.report_total is not None and report.reconciles:
        return PreviewMessages(
            confirmations=[f"{described}. Its data lines add up to its TOTAL line: {report.report_total:,.2f}."],
            notes=notes,
            warnings=rest,
        )
    return PreviewMessages(notes=[described + ".", *notes], warnings=rest)
