"""Wave: the accounting transactions export (CSV), read for its Accounts Receivable lines.

Wave's "Export all accounting transactions" writes one line per account a transaction
touches (``Transaction ID``, ``Transaction Date``, ``Account Name``, ``Amount (One column)``,
``Debit Amount (Two Column Approach)``, ``Customer``, ``Invoice Number``, ``Account Type``,
``Account ID`` ...). What customers owe is on the ``Accounts Receivable`` lines: an invoice
debits it (a positive amount), an invoice payment credits it (negative). Income and cash
lines are the other side of the same transactions and are left out. The export has no due
dates (invoices are taken as due on their date) and no currency (the base currency).
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

TRANSACTIONS = "wave-accounting-transactions"
_HEADERS = {
    "transactionid", "transactiondate", "accountname", "transactiondescription", "amountonecolumn",
    "debitamounttwocolumnapproach", "creditamounttwocolumnapproach", "customer", "invoicenumber", "accounttype",
}
_RECEIVABLE = "accounts receivable"


def _is_wave(sniff: Sniff) -> bool:
    return bool(sniff.head) and sniff.best_header_hits(_HEADERS) >= 6


def _parse(data: bytes, sniff: Sniff) -> ParsedReport:
    label = "Wave accounting transactions export"
    lines, headers = read_table(data, is_xlsx=sniff.is_xlsx, file_name=sniff.file_name)
    names = header_index(headers)
    require_headers(
        sniff.file_name, label, names,
        {"transactiondate": "Transaction Date", "accountname": "Account Name", "amountonecolumn": "Amount (One column)",
         "invoicenumber": "Invoice Number"},
    )

    def col(key: str) -> pl.Expr:
        return pl.col(names[key]) if key in names else pl.lit(None, dtype=pl.String)

    typed = lines.with_columns(
        text(col("accountname")).str.to_lowercase().alias("__account"),
        text(col("invoicenumber")).alias("invoice_id"),
        text(col("customer")).alias("customer_id"),
        dates(col("transactiondate"), ("%Y-%m-%d", "%m/%d/%Y")).alias("__date"),
        money(col("amountonecolumn")).alias("__amount"),
    )
    receivable = typed.filter((pl.col("__account") == _RECEIVABLE) & pl.col("invoice_id").is_not_null())
    other = typed.height - receivable.height
    invoiced = receivable.filter(pl.col("__amount") > 0).group_by("invoice_id", maintain_order=True).agg(
        pl.col("__row_number").min(),
        pl.col("customer_id").drop_nulls().first(),
        pl.col("__date").min().alias("invoice_date"),
        pl.col("__amount").sum().alias("amount"),
    )
    paid = receivable.filter(pl.col("__amount") < 0).group_by("invoice_id").agg(
        (-pl.col("__amount").sum()).alias("amount_paid"),
        pl.col("__date").max().alias("paid_date"),
    )
    frame = invoiced.join(paid, on="invoice_id", how="left").with_columns(
        pl.col("invoice_date").alias("due_date"),
        pl.col("customer_id").alias("customer_name"),
        pl.lit("invoice").alias("doc_type"),
        pl.lit(TRANSACTIONS).alias("source_system"),
    )
    finished = finish_invoices(frame)
    warnings = [
        f"{receivable.height} Accounts Receivable lines of {lines.height} make {frame.height} invoices and "
        f"{receivable.filter(pl.col('__amount') < 0).height} payments; the other {other} lines are the income and cash "
        "sides of the same transactions",
        "the export has no due dates: each invoice is taken as due on its date (due on receipt)",
        "a payment is dated by Wave's transaction date; several payments on one invoice are dated by the last",
    ]
    classes = {"data": receivable.height, "excluded": other}
    balance_check(sniff.file_name, label, classes, lines.height)
    return ParsedReport(
        source_format=TRANSACTIONS, table="invoices", frame=finished, source_headers=headers, row_classes=classes,
        lines_read=lines.height, warnings=warnings, doc_types=doc_type_counts(finished), label=label,
    )


FORMATS = [FormatSpec(TRANSACTIONS, "Wave accounting transactions export", _is_wave, _parse)]
