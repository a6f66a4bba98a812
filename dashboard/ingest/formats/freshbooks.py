"""FreshBooks invoice exports (CSV): the invoice list and the invoice details (line items).

Invoice list: ``Client Name``, ``Invoice #``, ``Date Issued``, ``Due Date``, ``Invoice Status``
(draft, sent, viewed, partial, paid, overdue, disputed), ``Date Paid``, ``Currency``,
``Amount``, ``Paid``, ``Outstanding``. Invoice details: one line per item with ``Item Name``,
``Rate``, ``Quantity``, ``Line Subtotal``, taxes and ``Line Total`` — an invoice's amount is
the sum of its line totals, and there is no due date. Dates are ISO. FreshBooks has no
customer id in these exports: the client name is the customer.
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
_HEADERS = {
    "clientname", "invoiceno", "dateissued", "duedate", "invoicestatus", "datepaid", "currency", "amount", "paid",
    "outstanding", "linetotal", "linesubtotal", "itemname",
}


def _is_freshbooks(sniff: Sniff) -> bool:
    return bool(sniff.head) and sniff.best_header_hits(_HEADERS) >= 6


def _parse(data: bytes, sniff: Sniff) -> ParsedReport:
    label = "FreshBooks invoice export"
    lines, headers = read_table(data, is_xlsx=sniff.is_xlsx)
    names = header_index(headers)
    line_items = "amount" not in names and "linetotal" in names
    amount_key, amount_header = ("linetotal", "Line Total") if line_items else ("amount", "Amount")
    require_headers(
        sniff.file_name, label, names,
        {"clientname": "Client Name", "invoiceno": "Invoice #", "dateissued": "Date Issued", amount_key: amount_header},
    )

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
        money(col(amount_key)).alias("amount"),
        money(col("paid")).alias("amount_paid"),
        money(col("outstanding")).alias("open_amount"),
        dates(col("datepaid"), layouts).alias("paid_date"),
        text(col("invoicestatus")).str.to_lowercase().alias("__status"),
        pl.lit("invoice").alias("doc_type"),
        pl.lit(INVOICE_EXPORT).alias("source_system"),
    )
    item_lines = typed.height
    if line_items:
        # One invoice per number: its line totals summed, its invoice-level fields taken once.
        typed = typed.group_by("invoice_id", maintain_order=True).agg(
            pl.col("__row_number").min(),
            pl.col("amount").sum(),
            pl.exclude("__row_number", "invoice_id", "amount").first(),
        )
        # Paid in full on its paid date when the status says paid; otherwise nothing is known paid.
        typed = typed.with_columns(
            pl.when(pl.col("__status") == "paid").then(pl.col("amount")).alias("amount_paid"),
            pl.when(pl.col("__status") == "paid").then(pl.col("paid_date")).alias("paid_date"),
        )
    if "duedate" not in names:
        typed = typed.with_columns(pl.col("invoice_date").alias("due_date"))
    # drafts are left out (and counted) by the loader, from their status
    kept = typed.with_columns(pl.col("__status").alias("status"))
    finished = finish_invoices(kept)
    warnings = ["FreshBooks exports no customer id: customers are identified by their client name"]
    if line_items:
        warnings.append(
            f"{item_lines} item lines make {typed.height} invoices: each invoice's amount is the sum of its line totals; "
            "the export has no amount paid (a partly paid invoice counts as wholly open)"
        )
    if "duedate" not in names:
        warnings.append("the export has no due date: each invoice is taken as due on its date (due on receipt)")
    disputed = kept.filter(pl.col("__status") == "disputed").height
    if disputed:
        warnings.append(f"{disputed} invoice(s) are marked disputed in FreshBooks; load the disputes file to track them")
    classes = {"data": item_lines}
    balance_check(sniff.file_name, label, classes, lines.height)
    return ParsedReport(
        source_format=INVOICE_EXPORT, table="invoices", frame=finished, source_headers=headers,
        row_classes=classes, lines_read=lines.height, warnings=warnings, doc_types=doc_type_counts(finished), label=label,
    )


FORMATS = [FormatSpec(INVOICE_EXPORT, "FreshBooks invoice export", _is_freshbooks, _parse)]
