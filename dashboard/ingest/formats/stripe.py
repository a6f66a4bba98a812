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
_HEADERS = {
    "id",
    "amountdue",
    "amountpaid",
    "amountremaining",
    "currency",
    "customer",
    "dateutc",
    "duedateutc",
    "duedate",
    "paidatutc",
    "paidat",
    "status",
}


def _is_csv(sniff: Sniff) -> bool:
    return (
        not sniff.is_json
        and bool(sniff.head)
        and sniff.best_header_hits(_HEADERS) >= 5
        and "id" in {c.strip().lower() for c in sniff.head[0]}
    )


def _finish(
    typed: pl.DataFrame, *, source_format: str, label: str, headers: list[str], file_name: str, lines_read: int
) -> ParsedReport:
    # drafts and voids are left out (and counted) by the loader, from their status
    kept = typed
    frame = kept.with_columns(
        pl.col("__status").alias("status"),
        pl.coalesce("due_date", "invoice_date").alias("due_date"),
        pl.lit("invoice").alias("doc_type"),
        pl.coalesce("customer_name", "customer_id").alias("customer_name"),
        pl.lit(source_format).alias("source_system"),
        pl.when(pl.col("__status") == "paid")
        .then(pl.lit(0))
        .otherwise(pl.coalesce("__remaining", pl.col("amount") - pl.col("__paid").fill_null(0)))
        .cast(pl.Decimal(18, 2))
        .alias("open_amount"),
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
    require_headers(
        sniff.file_name,
        label,
        names,
        {"id": "id", "amountdue": "Amount Due", "currency": "Currency", "status": "Status"},
    )

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
    return _finish(
        typed,
        source_format=DASHBOARD_CSV,
        label=label,
        headers=headers,
        file_name=sniff.file_name,
        lines_read=lines.height,
    )


def _is_json(sniff: Sniff) -> bool:
    head = sniff.text_head.lstrip()
    return sniff.is_json and ('"object": "invoice"' in head or '"object":"invoice"' in head or "in_" in head)


# The invoice fields read from the API JSON, by kind; anything else in a record is ignored.
_TEXT_FIELDS = ("id", "customer", "customer_name", "currency", "status")
_WHOLE_FIELDS = ("amount_due", "amount_paid", "amount_remaining", "created", "due_date")
_INT64 = 2**63


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    return "text"


def _as_text(value: object) -> tuple[str | None, bool]:
    """(text, understood): ids may come as text or numbers; an expanded object gives its ``id``."""
    if value is None:
        return None, True
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return value["id"], True  # Stripe's expanded customer object
    if isinstance(value, str):
        return value, True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value), True
    return None, False


def _as_whole(value: object) -> tuple[int | None, bool]:
    """(integer, understood): amounts in cents and Unix times are whole numbers."""
    if value is None:
        return None, True
    if isinstance(value, bool):
        return None, False
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and -_INT64 < value < _INT64:
        return value, True
    return None, False


def _records_frame(records: list[dict], file_name: str) -> tuple[pl.DataFrame, list[str], list[str]]:
    """The invoice fields of every record in fixed types, the keys seen, and the type problems.

    Built field by field rather than by Polars inferring a schema: one record whose field
    holds another kind of value (an object where text belongs) would otherwise stop the
    whole file with an error about builders and schemas.
    """
    columns: dict[str, list] = {name: [] for name in (*_TEXT_FIELDS, *_WHOLE_FIELDS, "paid_at")}
    problems: list[str] = []
    headers: dict[str, None] = {}
    for number, record in enumerate(records, start=1):
        headers.update(dict.fromkeys(record))
        for name in _TEXT_FIELDS:
            value, understood = _as_text(record.get(name))
            columns[name].append(value)
            if not understood:
                problems.append(f"invoice {number}: {name!r} is {_kind(record.get(name))}")
        for name in _WHOLE_FIELDS:
            value, understood = _as_whole(record.get(name))
            columns[name].append(value)
            if not understood:
                problems.append(f"invoice {number}: {name!r} is {_kind(record.get(name))}, not a whole number")
        transitions = record.get("status_transitions")
        paid_at, understood = (
            _as_whole(transitions.get("paid_at")) if isinstance(transitions, dict) else (None, transitions is None)
        )
        columns["paid_at"].append(paid_at)
        if not understood:
            problems.append(f"invoice {number}: 'status_transitions' is {_kind(transitions)}")
    schema = {**dict.fromkeys(_TEXT_FIELDS, pl.String), **dict.fromkeys((*_WHOLE_FIELDS, "paid_at"), pl.Int64)}
    frame = pl.DataFrame(columns, schema=schema)
    notes = []
    if problems:
        notes.append(
            f"{len(problems)} value(s) in {file_name} are of a kind a Stripe invoice does not use and were "
            f"left empty (first: {problems[0]})"
        )
    return frame, list(headers), notes


def _parse_json(data: bytes, sniff: Sniff) -> ParsedReport:
    label = "Stripe invoices (API JSON)"
    try:
        document = json.loads(data)
    except RecursionError:
        msg = (
            f"{sniff.file_name} is nested far deeper than a Stripe export (a list of invoice objects is a "
            "few levels deep); save the API response as it came"
        )
        raise UnreadableFileError(msg) from None
    except (ValueError, UnicodeDecodeError) as exc:  # bad JSON, or a number too long to read
        msg = f"{sniff.file_name} is not valid JSON ({str(exc)[:200]}); save the API response as it came"
        raise UnreadableFileError(msg) from exc
    records = document.get("data", []) if isinstance(document, dict) else document
    if not isinstance(records, list) or not records:
        msg = f'{sniff.file_name} holds no invoices (expected a list of Stripe invoice objects under "data")'
        raise UnreadableFileError(msg)
    strays = [(number, item) for number, item in enumerate(records, start=1) if not isinstance(item, dict)]
    if strays:
        number, item = strays[0]
        msg = (
            f"{sniff.file_name}: item {number} of the invoice list is {_kind(item)} ({repr(item)[:60]}), not a "
            f"Stripe invoice object ({len(strays)} of {len(records)} items are not); save the API response as it came"
        )
        raise UnreadableFileError(msg)
    raw, headers, notes = _records_frame(records, sniff.file_name)

    typed = (
        raw.with_row_index("__row_number", offset=1)
        .with_columns(pl.col("__row_number").cast(pl.Int64))
        .with_columns(
            pl.col("id").alias("invoice_id"),
            pl.col("customer").alias("customer_id"),
            pl.col("customer_name"),
            cents(pl.col("amount_due")).alias("amount"),
            cents(pl.col("amount_paid")).alias("__paid"),
            cents(pl.col("amount_remaining")).alias("__remaining"),
            pl.col("currency").str.to_uppercase().alias("currency"),
            unix_dates(pl.col("created")).alias("invoice_date"),
            unix_dates(pl.col("due_date")).alias("due_date"),
            unix_dates(pl.col("paid_at")).alias("__paid_at"),
            pl.col("status").str.to_lowercase().alias("__status"),
        )
    )
    report = _finish(
        typed, source_format=API_JSON, label=label, headers=headers, file_name=sniff.file_name, lines_read=raw.height
    )
    report.warnings[:0] = notes
    return report


FORMATS = [
    FormatSpec(DASHBOARD_CSV, "Stripe invoices (Dashboard CSV)", _is_csv, _parse_csv),
    FormatSpec(API_JSON, "Stripe invoices (API JSON)", _is_json, _parse_json),
]
