"""FreshBooks invoice details export (CSV).

Headers: ``Client Name``, ``Invoice #``, ``Date Issued``, ``Due Date``, ``Invoice Status``
(draft, sent, viewed, partial, paid, overdue, disputed), ``Date Paid``, ``Currency``,
``Amount``, ``Paid``, ``Outstanding``. Dates are ISO. FreshBooks has no customer id in this
export: the client name is the customer.
"""

from __future__ import annotations

import polars as pl

from dashboard.ingest.formats.base import (
    FormatSpec,
    ParsedReport,
    Sniff,
    balance_check,
    dates,
    doc_type_counts,
    finish_invoices,
    header_index,
    money,
    read_table,
    require_headers,
    text,
)

INVOICE_EXPORT = "freshbooks-invoices"
_HEADERS = {"clientname", "invoiceno", "dateissued", "duedate", "invoicestatus", "datepaid", "currency", "amount", "paid", "outstanding"}
_NOT_RECEIVABLE = ("draft",)


def _is_freshbooks(sniff: Sniff) -> bool:
    return bool(sniff.head) and sniff.best_header_hits(_HEADERS) >= 6


def _parse(data: bytes, sniff: Sniff) -> ParsedReport:
    label = "FreshBooks invoice export"
    lines, headers = read_table(data, is_xlsx=sniff.is_xlsx)
    names = header_index(headers)
    require_headers(sniff.file_name, label, names, {"clientname": "Client Name", "invoiceno": "Invoice #", "dateissued": "Date Issued", "amount": "Amount"})

    def col(key: str) -> pl.Expr:
        return pl.col(names[key]) if key in names else pl.lit(None, dtype=pl.String)

    layouts = ("%Y-%m-%d", "%m/%d/%Y")
    typed = lines.with_columns(
        text(col("invoiceno")).alias("invoice_id"),
        text(col("clientname")).alias("customer_id"),
        text(col("clientname")).alias("customer_name"),
        dates(col("dateissued"), layouts).alias("invoice_date"),
        dates(col("duedate"), layouts).alias("due_date"),
        text(col("currency")).str.to_uppercase().alias("currency"),
        money(col("amount")).alias("amount"),
        money(col("paid")).alias("__paid"),
        money(col("outstanding")).alias("open_amount"),
        dates(col("datepaid"), layouts).alias("__paid_at"),
        text(col("invoicestatus")).str.to_lowercase().alias("__status"),
        pl.lit("invoice").alias("doc_type"),
        pl.lit(INVOICE_EXPORT).alias("source_system"),
    )
    excluded = typed.filter(pl.col("__status").is_in(_NOT_RECEIVABLE).fill_null(False))
    kept = typed.filter(~pl.col("__status").is_in(_NOT_RECEIVABLE).fill_null(False))
    payments = kept.filter(pl.col("__paid_at").is_not_null() & (pl.col("__paid").fill_null(0) > 0)).select(
        pl.lit(None, dtype=pl.String).alias("__clearing"),
        "invoice_id", "customer_id",
        pl.col("__paid_at").alias("payment_date"),
        pl.col("__paid").alias("amount"),
        "currency",
        pl.lit("FreshBooks").alias("method"),
    )
    finished = finish_invoices(kept)
    warnings = ["FreshBooks exports no customer id: customers are identified by their client name"]
    if excluded.height:
        warnings.append(f"{excluded.height} draft invoice(s) are not receivables and were left out")
    disputed = kept.filter(pl.col("__status") == "disputed").height
    if disputed:
        warnings.append(f"{disputed} invoice(s) are marked disputed in FreshBooks; load the disputes file to track them")
    classes = {"data": kept.height, "excluded": excluded.height}
    balance_check(sniff.file_name, label, classes, lines.height)
    return ParsedReport(
        source_format=INVOICE_EXPORT, table="invoices", frame=finished, source_headers=headers,
        row_classes=classes, lines_read=lines.height, warnings=warnings, doc_types=doc_type_counts(finished),
        payments=payments, label=label,
    )


FORMATS = [FormatSpec(INVOICE_EXPORT, "FreshBooks invoice export", _is_freshbooks, _parse)]
