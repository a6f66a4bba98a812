"""Xero: the invoice export CSV (one line per line item) and the Aged Receivables Detail report.

Invoice export: required headers carry a ``*`` (``*ContactName``, ``*InvoiceNumber``,
``*InvoiceDate``, ``*DueDate``); every line item repeats the invoice's ``Total``,
``InvoiceAmountPaid`` and ``InvoiceAmountDue`` — they are taken once per invoice, never
summed. Dates are day-first (D/M/YYYY). Drafts and voided invoices are not receivables.

Aged Receivables Detail: title ("Aged Receivables Detail", the organisation, "As at 30
September 2026"), a heading line per contact, bucket columns (Current, < 1 Month, 1 Month, 2
Months, 3 Months, Older) and Total, "Total <contact>" lines and a grand "Total" line.
"""

from __future__ import annotations

import polars as pl

from dashboard.errors import ValidationError
from dashboard.ingest.formats.base import (
    FormatSpec,
    ParsedReport,
    Sniff,
    as_of_from,
    balance_check,
    dates,
    doc_type_counts,
    find_header_line,
    finish_invoices,
    header_index,
    money,
    money_value,
    read_grid,
    read_table,
    require_headers,
    split_grouped_report,
    sum_money,
    text,
)

INVOICE_EXPORT = "xero-invoice-export"
AGED_RECEIVABLES = "xero-aged-receivables-detail"

_EXPORT_HEADERS = {"contactname", "invoicenumber", "invoicedate", "duedate", "invoiceamountdue", "invoiceamountpaid", "lineamount", "unitamount"}
_AGED_HEADERS = {"invoicedate", "invoicenumber", "invoicereference", "duedate", "current", "1month", "2months", "3months", "older", "total"}
_DAY_FIRST = ("%d/%m/%Y", "%d %b %Y", "%d %B %Y")


def _is_invoice_export(sniff: Sniff) -> bool:
    first = sniff.head[0] if sniff.head else []
    return any(c.startswith("*") for c in first) and sniff.best_header_hits(_EXPORT_HEADERS) >= 5


def _parse_invoice_export(data: bytes, sniff: Sniff) -> ParsedReport:
    label = "Xero invoice export"
    read_counts: dict[str, int] = {}
    lines, headers = read_table(data, is_xlsx=sniff.is_xlsx, counts=read_counts)
    names = header_index(headers)
    require_headers(
        sniff.file_name, label, names,
        {"contactname": "*ContactName", "invoicenumber": "*InvoiceNumber", "invoicedate": "*InvoiceDate", "duedate": "*DueDate"},
    )

    def col(key: str) -> pl.Expr:
        return pl.col(names[key]) if key in names else pl.lit(None, dtype=pl.String)

    typed = lines.with_columns(
        text(col("invoicenumber")).alias("invoice_id"),
        text(col("contactname")).alias("customer_id"),
        dates(col("invoicedate"), _DAY_FIRST).alias("invoice_date"),
        dates(col("duedate"), _DAY_FIRST).alias("due_date"),
        money(col("total")).alias("__total"),
        money(col("invoiceamountpaid")).alias("__paid"),
        money(col("invoiceamountdue")).alias("__due"),
        money(col("lineamount")).alias("__line"),
        text(col("currency")).str.to_uppercase().alias("currency"),
        text(col("reference")).alias("po_number"),
        text(col("status")).str.to_lowercase().alias("__status"),
        text(col("type")).str.to_lowercase().alias("__type"),
    )
    # Invoice-level figures repeat on each line item: one value per invoice, or the file contradicts itself.
    per_invoice = typed.group_by("invoice_id", maintain_order=True).agg(
        pl.col("__row_number").min(),
        pl.len().alias("__lines"),
        pl.col("customer_id", "invoice_date", "due_date", "currency", "po_number", "__type", "__status").first(),
        pl.col("__total").n_unique().alias("__totals"),
        pl.col("__total").first(),
        pl.col("__paid").first(),
        pl.col("__due").first(),
        pl.col("__line").sum().alias("__line_sum"),
    )
    conflicting = per_invoice.filter(pl.col("__totals") > 1)
    if conflicting.height:
        ids = conflicting["invoice_id"].head(3).to_list()
        msg = f"{sniff.file_name}: invoice(s) {ids} have line items that disagree on the invoice Total; export the invoices again. Nothing was written."
        raise ValidationError(msg)
    is_credit = pl.col("__type").str.contains("credit").fill_null(False)
    sign = pl.when(is_credit).then(-1).otherwise(1)
    total = pl.coalesce("__total", "__line_sum")
    frame = per_invoice.with_columns(
        (total.abs() * sign).cast(pl.Decimal(18, 2)).alias("amount"),
        (pl.coalesce("__due", total - pl.col("__paid").fill_null(0)).abs() * sign).cast(pl.Decimal(18, 2)).alias("open_amount"),
        pl.when(is_credit).then(pl.lit("credit_memo")).otherwise(pl.lit("invoice")).alias("doc_type"),
        pl.col("customer_id").alias("customer_name"),
        pl.lit(INVOICE_EXPORT).alias("source_system"),
        pl.col("__status").alias("status"),  # drafts and voids are left out (and counted) by the loader
    )
    frame = finish_invoices(frame)
    warnings = []
    repeated = lines.height - per_invoice.height
    if repeated:
        warnings.append(
            f"{lines.height} line items make {per_invoice.height} invoices: each invoice's Total "
            "and amount due were taken once, not summed over its lines"
        )
    warnings.append("dates read day-first (D/M/YYYY), as Xero writes them")
    blank_lines = read_counts["blank"]
    classes = {"data": lines.height, "blank": blank_lines}
    balance_check(sniff.file_name, label, classes, lines.height + blank_lines)
    return ParsedReport(
        source_format=INVOICE_EXPORT,
        table="invoices",
        frame=frame,
        source_headers=headers,
        row_classes=classes,
        lines_read=lines.height + blank_lines,
        warnings=warnings,
        doc_types=doc_type_counts(frame),
        label=label,
    )


def _is_aged_receivables(sniff: Sniff) -> bool:
    return "aged receivables" in sniff.title_text() and sniff.best_header_hits(_AGED_HEADERS) >= 5


def _parse_aged_receivables(data: bytes, sniff: Sniff) -> ParsedReport:
    label = "Xero Aged Receivables Detail report"
    grid = read_grid(data, is_xlsx=sniff.is_xlsx)
    header_row = find_header_line(grid, _AGED_HEADERS, min_hits=5)
    assert header_row is not None
    names = header_index([(c or "") for c in grid.row(header_row)])
    require_headers(sniff.file_name, label, names, {"invoicenumber": "Invoice Number", "duedate": "Due Date", "total": "Total"})
    keys = [names[k] for k in ("invoicedate", "invoicenumber") if k in names]
    report = split_grouped_report(grid, header_row, file_name=sniff.file_name, label=label, key_columns=keys, requires_footer=False)

    def col(key: str) -> pl.Expr:
        return pl.col(names[key]) if key in names else pl.lit(None, dtype=pl.String)

    frame = report.data.with_columns(
        text(col("invoicenumber")).alias("invoice_id"),
        pl.col("__group").alias("customer_id"),
        pl.col("__group").alias("customer_name"),
        dates(col("invoicedate"), _DAY_FIRST).alias("invoice_date"),
        dates(col("duedate"), _DAY_FIRST).alias("due_date"),
        money(col("total")).alias("open_amount"),
        text(col("invoicereference")).alias("po_number"),
        pl.lit(AGED_RECEIVABLES).alias("source_system"),
    ).with_columns(
        pl.col("open_amount").alias("amount"),
        pl.when(pl.col("open_amount") < 0).then(pl.lit("credit_memo")).otherwise(pl.lit("invoice")).alias("doc_type"),
    )
    frame = finish_invoices(frame)
    as_of, as_of_source = as_of_from(report.title, report.footer, day_first=True)
    warnings = ["the report has no original amount: each invoice's amount is its amount due on the report date"]
    return ParsedReport(
        source_format=AGED_RECEIVABLES,
        table="invoices",
        frame=frame,
        source_headers=report.headers,
        as_of_date=as_of,
        as_of_source=as_of_source,
        report_total=money_value(report.total_cells.get(names["total"])),
        rows_total=sum_money(frame, "open_amount"),
        row_classes=report.classes,
        lines_read=report.lines_read,
        warnings=warnings,
        doc_types=doc_type_counts(frame),
        title=report.title,
        header_line=report.header_line,
        label=label,
    )


FORMATS = [
    FormatSpec(INVOICE_EXPORT, "Xero invoice export", _is_invoice_export, _parse_invoice_export),
    FormatSpec(AGED_RECEIVABLES, "Xero Aged Receivables Detail", _is_aged_receivables, _parse_aged_receivables),
]
