"""NetSuite transaction saved search, exported as CSV.

Typical columns of an A/R saved search: ``Internal ID``, ``Type`` (Invoice, Credit Memo,
Payment, Journal), ``Date``, ``Document Number``, ``Name`` (``C1001 Acme Corp``: entity id
then company name), ``Terms``, ``Due Date/Receive By``, ``Currency``, ``Exchange Rate``,
``Amount``, ``Amount Remaining``, ``Status``. Dates are M/D/YYYY. The entity id is the
customer id; ``Amount`` × ``Exchange Rate`` is the base-currency amount.
"""

from __future__ import annotations

import polars as pl

from dashboard.ingest.formats.base import (
    FormatSpec,
    ParsedReport,
    Sniff,
    balance_check,
    canonical_doc_type,
    dates,
    doc_type_counts,
    finish_invoices,
    header_index,
    make_ids_for_blank,
    money,
    read_table,
    require_headers,
    text,
)

SAVED_SEARCH = "netsuite-saved-search"
_HEADERS = {"internalid", "type", "date", "documentnumber", "name", "duedatereceiveby", "amountremaining", "exchangerate", "status", "currency"}


def _is_netsuite(sniff: Sniff) -> bool:
    return bool(sniff.head) and sniff.best_header_hits(_HEADERS) >= 5 and sniff.best_header_hits({"internalid", "duedatereceiveby", "documentnumber"}) >= 2


def _parse(data: bytes, sniff: Sniff) -> ParsedReport:
    label = "NetSuite saved search"
    lines, headers = read_table(data, is_xlsx=sniff.is_xlsx)
    names = header_index(headers)
    require_headers(sniff.file_name, label, names, {"date": "Date", "name": "Name", "amount": "Amount", "amountremaining": "Amount Remaining"})

    def col(*keys: str) -> pl.Expr:
        return next((pl.col(names[k]) for k in keys if k in names), pl.lit(None, dtype=pl.String))

    name = text(col("name"))
    entity = name.str.extract(r"^(\S*\d\S*)\s+\S", 1)
    layouts = ("%m/%d/%Y",)
    typed = lines.with_columns(
        pl.coalesce(entity, name).alias("customer_id"),
        pl.coalesce(name.str.extract(r"^\S*\d\S*\s+(.+)$", 1), name).alias("customer_name"),
        canonical_doc_type(col("type")).alias("doc_type"),
        dates(col("date"), layouts).alias("invoice_date"),
        dates(col("duedatereceiveby", "duedate"), layouts).alias("due_date"),
        text(col("terms")).alias("terms_code"),
        text(col("currency")).str.to_uppercase().alias("currency"),
        text(col("exchangerate")).cast(pl.Float64, strict=False).alias("__rate"),
        money(col("amount")).alias("amount"),
        money(col("amountremaining")).alias("open_amount"),
        pl.lit(SAVED_SEARCH).alias("source_system"),
    ).with_columns(
        make_ids_for_blank(col("documentnumber"), col("type"), pl.col("invoice_date"), pl.col("customer_id"), pl.col("amount")).alias("invoice_id"),
        pl.when(pl.col("doc_type") != "invoice").then(pl.coalesce("due_date", "invoice_date")).otherwise(pl.col("due_date")).alias("due_date"),
        (pl.col("amount").cast(pl.Float64) * pl.col("__rate")).round(2).cast(pl.Decimal(18, 2)).alias("amount_base"),
    )
    finished = finish_invoices(typed)
    classes = {"data": lines.height}
    balance_check(sniff.file_name, label, classes, lines.height)
    warnings = ["customer ids are the entity ids at the start of NetSuite's Name column"]
    return ParsedReport(
        source_format=SAVED_SEARCH, table="invoices", frame=finished, source_headers=headers,
        row_classes=classes, lines_read=lines.height, warnings=warnings, doc_types=doc_type_counts(finished), label=label,
    )


FORMATS = [FormatSpec(SAVED_SEARCH, "NetSuite saved search (CSV)", _is_netsuite, _parse)]
