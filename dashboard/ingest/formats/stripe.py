"""Stripe invoices: the Dashboard CSV export and the API's JSON list.

Dashboard CSV: ``id``, ``Customer``, ``Customer Name``, ``Amount Due``, ``Amount Paid``,
``Amount Remaining``, ``Currency`` (lower case), ``Date (UTC)``, ``Due Date (UTC)``,
``Paid At (UTC)``, ``Status`` (draft, open, paid, uncollectible, void), amounts in units.
API JSON (``GET /v1/invoices``): ``{"object": "list", "data": [...]}``, amounts in cents,
``created`` / ``due_date`` / ``status_transitions.paid_at`` in Unix seconds.
Drafts and voided invoices are not receivables; a paid invoice's ``paid_at`` is a real
payment date.
"""

from __future__ import annotations

import json

import polars as pl

from dashboard.errors import UnreadableFileError
from dashboard.ingest.formats.base import (
    FormatSpec,
    ParsedReport,
    Sniff,
    balance_check,
    cents,
    dates,
    doc_type_counts,
    finish_invoices,
    header_index,
    money,
    read_table,
    require_headers,
    text,
    unix_dates,
)

DASHBOARD_CSV = "stripe-invoices-csv"
API_JSON = "stripe-invoices-json"
_HEADERS = {"id", "amountdue", "amountpaid", "amountremaining", "currency", "customer", "dateutc", "duedateutc", "duedate", "paidatutc", "paidat", "status"}


def _is_csv(sniff: Sniff) -> bool:
    return not sniff.is_json and bool(sniff.head) and sniff.best_header_hits(_HEADERS) >= 5 and "id" in {
        c.strip().lower() for c in sniff.head[0]
    }


def _finish(typed: pl.DataFrame, *, source_format: str, label: str, headers: list[str], file_name: str, lines_read: int) -> ParsedReport:
    # drafts and voids are left out (and counted) by the loader, from their status
    kept = typed
    frame = kept.with_columns(
        pl.col("__status").alias("status"),
        pl.coalesce("due_date", "invoice_date").alias("due_date"),
        pl.lit("invoice").alias("doc_type"),
        pl.coalesce("customer_name", "customer_id").alias("customer_name"),
        pl.lit(source_format).alias("source_system"),
        pl.when(pl.col("__status") == "paid").then(pl.lit(0)).otherwise(
            pl.coalesce("__remaining", pl.col("amount") - pl.col("__paid").fill_null(0))
        ).cast(pl.Decimal(18, 2)).alias("open_amount"),
    )
    frame = frame.with_columns(pl.col("__paid_at").alias("paid_date"), pl.col("__paid").alias("amount_paid"))
    paid = frame.filter(pl.col("paid_date").is_not_null() & (pl.col("amount_paid").fill_null(0) > 0)).height
    finished = finish_invoices(frame)
    warnings = []
    if finished.select(pl.col("currency").n_unique()).item() > 1:
        warnings.append("invoices are in several currencies; amounts stay in each invoice's currency")
    if paid:
        warnings.append(f"{paid} paid invoice(s): Stripe's paid-at time is recorded as the payment date")
    classes = {"data": kept.height}
    balance_check(file_name, label, classes, lines_read)
    return ParsedReport(
        source_format=source_format,
        table="invoices",
        frame=finished,
        source_headers=headers,
        row_classes=classes,
        lines_read=lines_read,
        warnings=warnings,
        doc_types=doc_type_counts(finished),
        label=label,
    )


def _parse_csv(data: bytes, sniff: Sniff) -> ParsedReport:
    label = "Stripe invoices export (Dashboard CSV)"
    lines, headers = read_table(data, is_xlsx=sniff.is_xlsx)
    names = header_index(headers)
    require_headers(sniff.file_name, label, names, {"id": "id", "amountdue": "Amount Due", "currency": "Currency", "status": "Status"})

    def col(*keys: str) -> pl.Expr:
        return next((pl.col(names[k]) for k in keys if k in names), pl.lit(None, dtype=pl.String))

    layouts = ("%Y-%m-%d", "%m/%d/%Y")
    typed = lines.with_columns(
        text(col("id")).alias("invoice_id"),
        text(col("customer", "customerid")).alias("customer_id"),
        text(col("customername")).alias("customer_name"),
        money(col("amountdue", "total")).alias("amount"),
        money(col("amountpaid")).alias("__paid"),
        money(col("amountremaining")).alias("__remaining"),
        text(col("currency")).str.to_uppercase().alias("currency"),
        dates(col("dateutc", "date", "created"), layouts).alias("invoice_date"),
        dates(col("duedateutc", "duedate"), layouts).alias("due_date"),
        dates(col("paidatutc", "paidat"), layouts).alias("__paid_at"),
        text(col("status")).str.to_lowercase().alias("__status"),
    )
    return _finish(typed, source_format=DASHBOARD_CSV, label=label, headers=headers, file_name=sniff.file_name, lines_read=lines.height)


def _is_json(sniff: Sniff) -> bool:
    head = sniff.text_head.lstrip()
    return sniff.is_json and ('"object": "invoice"' in head or '"object":"invoice"' in head or "in_" in head)


def _parse_json(data: bytes, sniff: Sniff) -> ParsedReport:
    label = "Stripe invoices (API JSON)"
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = f"{sniff.file_name} is not valid JSON ({exc}); save the API response as it came"
        raise UnreadableFileError(msg) from exc
    records = document.get("data", []) if isinstance(document, dict) else document
    if not isinstance(records, list) or not records:
        msg = f"{sniff.file_name} holds no invoices (expected a list of Stripe invoice objects under \"data\")"
        raise UnreadableFileError(msg)
    raw = pl.DataFrame(records, infer_schema_length=None)
    headers = raw.columns
    transitions = (
        pl.col("status_transitions").struct.field("paid_at") if "status_transitions" in raw.columns else pl.lit(None)
    )

    def field(name: str, dtype: pl.DataType = pl.String) -> pl.Expr:
        return pl.col(name) if name in raw.columns else pl.lit(None, dtype=dtype)

    typed = raw.with_row_index("__row_number", offset=1).with_columns(pl.col("__row_number").cast(pl.Int64)).with_columns(
        field("id").alias("invoice_id"),
        field("customer").alias("customer_id"),
        field("customer_name").alias("customer_name"),
        cents(field("amount_due", pl.Int64)).alias("amount"),
        cents(field("amount_paid", pl.Int64)).alias("__paid"),
        cents(field("amount_remaining", pl.Int64)).alias("__remaining"),
        field("currency").str.to_uppercase().alias("currency"),
        unix_dates(field("created", pl.Int64)).alias("invoice_date"),
        unix_dates(field("due_date", pl.Int64)).alias("due_date"),
        unix_dates(transitions).alias("__paid_at"),
        field("status").str.to_lowercase().alias("__status"),
    )
    return _finish(typed, source_format=API_JSON, label=label, headers=headers, file_name=sniff.file_name, lines_read=raw.height)


FORMATS = [
    FormatSpec(DASHBOARD_CSV, "Stripe invoices (Dashboard CSV)", _is_csv, _parse_csv),
    FormatSpec(API_JSON, "Stripe invoices (API JSON)", _is_json, _parse_json),
]
