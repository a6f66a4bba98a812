"""Zoho Books invoice export (CSV): one line per line item, invoice figures repeated.

Headers: ``Invoice Date``, ``Invoice ID``, ``Invoice Number``, ``Invoice Status``,
``Customer ID``, ``Customer Name``, ``Due Date``, ``PurchaseOrder``, ``Currency Code``,
``Exchange Rate``, ``Payment Terms``, ``Payment Terms Label``, ``Item Name``, ``Quantity``,
``Item Price``, ``Item Total``, ``SubTotal``, ``Total``, ``Balance``, ``Last Payment Date``.
Dates are ISO. ``Total`` × ``Exchange Rate`` is the amount in the organisation's base currency.
"""

from __future__ import annotations

import polars as pl

from dashboard.errors import ValidationError
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

INVOICE_EXPORT = "zoho-books-invoices"
_HEADERS = {"invoicedate", "invoiceid", "invoicenumber", "invoicestatus", "customerid", "customername", "currencycode", "exchangerate", "balance", "itemtotal", "paymentterms"}


def _is_zoho(sniff: Sniff) -> bool:
    return bool(sniff.head) and sniff.best_header_hits(_HEADERS) >= 6


def _parse(data: bytes, sniff: Sniff) -> ParsedReport:
    label = "Zoho Books invoice export"
    lines, headers = read_table(data, is_xlsx=sniff.is_xlsx)
    names = header_index(headers)
    require_headers(
        sniff.file_name, label, names,
        {"invoicenumber": "Invoice Number", "invoicedate": "Invoice Date", "customername": "Customer Name", "total": "Total", "balance": "Balance"},
    )

    def col(key: str) -> pl.Expr:
        return pl.col(names[key]) if key in names else pl.lit(None, dtype=pl.String)

    layouts = ("%Y-%m-%d", "%d/%m/%Y")
    typed = lines.with_columns(
        text(col("invoicenumber")).alias("invoice_id"),
        pl.coalesce(text(col("customerid")), text(col("customername"))).alias("customer_id"),
        text(col("customername")).alias("customer_name"),
        dates(col("invoicedate"), layouts).alias("invoice_date"),
        dates(col("duedate"), layouts).alias("due_date"),
        text(col("paymentterms")).alias("terms_days_text"),
        text(col("paymenttermslabel")).alias("terms_code"),
        text(col("currencycode")).str.to_uppercase().alias("currency"),
        text(col("exchangerate")).cast(pl.Float64, strict=False).alias("__rate"),
        money(col("total")).alias("amount"),
        money(col("balance")).alias("open_amount"),
        text(col("purchaseorder")).alias("po_number"),
        dates(col("lastpaymentdate"), layouts).alias("__paid_at"),
        text(col("invoicestatus")).alias("status"),
    )
    kept = typed  # drafts and voids are left out (and counted) by the loader, from their status
    per_invoice = kept.group_by("invoice_id", maintain_order=True).agg(
        pl.col("__row_number").min(),
        pl.col("amount").n_unique().alias("__totals"),
        pl.exclude("__row_number", "invoice_id").first(),
    )
    conflicting = per_invoice.filter(pl.col("__totals") > 1)
    if conflicting.height:
        msg = f"{sniff.file_name}: invoice(s) {conflicting['invoice_id'].head(3).to_list()} have line items that disagree on the invoice Total. Nothing was written."
        raise ValidationError(msg)
    frame = per_invoice.with_columns(
        pl.col("terms_days_text").cast(pl.Int32, strict=False).alias("terms_days"),
        pl.lit("invoice").alias("doc_type"),
        (pl.col("amount").cast(pl.Float64) * pl.col("__rate")).round(2).cast(pl.Decimal(18, 2)).alias("amount_base"),
        pl.lit(INVOICE_EXPORT).alias("source_system"),
    )
    # What was paid is dated on the last payment date (the only date the export gives).
    frame = frame.with_columns(
        (pl.col("amount") - pl.col("open_amount")).cast(pl.Decimal(18, 2)).alias("amount_paid"),
        pl.col("__paid_at").alias("paid_date"),
    )
    paid = frame.filter(pl.col("paid_date").is_not_null() & (pl.col("amount_paid") > 0)).height
    finished = finish_invoices(frame)
    warnings = []
    if kept.height > per_invoice.height:
        warnings.append(f"{kept.height} line items make {per_invoice.height} invoices: each invoice's Total and Balance were taken once")
    if paid:
        warnings.append(f"{paid} invoice(s) with payments: what was paid is dated on the Last Payment Date")
    classes = {"data": kept.height}
    balance_check(sniff.file_name, label, classes, lines.height)
    return ParsedReport(
        source_format=INVOICE_EXPORT, table="invoices", frame=finished, source_headers=headers,
        row_classes=classes, lines_read=lines.height, warnings=warnings, doc_types=doc_type_counts(finished), label=label,
    )


FORMATS = [FormatSpec(INVOICE_EXPORT, "Zoho Books invoice export", _is_zoho, _parse)]
