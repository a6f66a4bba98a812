"""SAP FI customer open and cleared items (BSID / BSAD fields, as SE16N or an ALV list exports them).

Fields: KUNNR customer, BELNR document number, GJAHR fiscal year, BLART document type, BLDAT
document date, ZFBDT baseline date for payment, ZBD1T/ZBD2T/ZBD3T terms days, AUGDT clearing
date and AUGBL clearing document (cleared items only), SHKZG debit/credit (S = debit,
H = credit), DMBTR amount in local currency, WRBTR amount in document currency, WAERS
document currency, XBLNR reference. Ids keep their zero padding (``0000100001``); dates are
YYYYMMDD. The net due date is the baseline date plus the longest terms period (the last
instalment of a cash-discount term).
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
    money,
    read_table,
    require_headers,
    text,
)

OPEN_ITEMS = "sap-fi-customer-items"
_HEADERS = {"kunnr", "belnr", "gjahr", "bldat", "budat", "zfbdt", "zbd1t", "zbd2t", "zbd3t", "augdt", "shkzg", "dmbtr", "wrbtr", "waers"}
_LAYOUTS = ("%Y%m%d", "%d.%m.%Y")


def _is_sap(sniff: Sniff) -> bool:
    return bool(sniff.head) and sniff.best_header_hits(_HEADERS) >= 5


def _days(expr: pl.Expr) -> pl.Expr:
    return text(expr).cast(pl.Int32, strict=False).fill_null(0)


def _parse(data: bytes, sniff: Sniff) -> ParsedReport:
    label = "SAP FI customer line items"
    lines, headers = read_table(data, is_xlsx=sniff.is_xlsx)
    names = header_index(headers)
    require_headers(
        sniff.file_name, label, names,
        {"kunnr": "KUNNR", "belnr": "BELNR", "bldat": "BLDAT", "shkzg": "SHKZG", "wrbtr": "WRBTR"},
    )

    def col(key: str) -> pl.Expr:
        return pl.col(names[key]) if key in names else pl.lit(None, dtype=pl.String)

    # H (Haben) is a credit to the customer account: a negative receivable.
    sign = pl.when(text(col("shkzg")).str.to_uppercase() == "H").then(-1).otherwise(1)
    document = text(col("belnr"))
    invoice_id = pl.concat_str([document, text(col("gjahr"))], separator="/") if "gjahr" in names else document
    terms = pl.max_horizontal(_days(col("zbd1t")), _days(col("zbd2t")), _days(col("zbd3t")))
    baseline = pl.coalesce(dates(col("zfbdt"), _LAYOUTS), dates(col("bldat"), _LAYOUTS))
    local_amount = money(col("dmbtr"))
    frame = lines.with_columns(
        invoice_id.alias("invoice_id"),
        text(col("kunnr")).alias("customer_id"),
        canonical_doc_type(col("blart")).alias("doc_type") if "blart" in names else pl.lit("invoice").alias("doc_type"),
        dates(col("bldat"), _LAYOUTS).alias("invoice_date"),
        (baseline + pl.duration(days=terms)).alias("due_date"),
        terms.alias("terms_days"),
        text(col("zterm")).alias("terms_code"),
        (money(col("wrbtr")) * sign).cast(pl.Decimal(18, 2)).alias("amount"),
        text(col("waers")).str.to_uppercase().alias("currency"),
        (local_amount * sign).cast(pl.Decimal(18, 2)).alias("amount_base"),
        text(col("xblnr")).alias("po_number"),
        pl.lit(OPEN_ITEMS).alias("source_system"),
        dates(col("augdt"), _LAYOUTS).alias("__cleared_on"),
        text(col("augbl")).alias("__clearing_document"),
    ).with_columns(
        # An open item is open for its whole amount; a cleared item (AUGDT set) for nothing.
        pl.when(pl.col("__cleared_on").is_null()).then(pl.col("amount")).otherwise(pl.lit(0)).cast(pl.Decimal(18, 2)).alias("open_amount"),
    )
    # A cleared invoice was paid on its clearing date (AUGDT), in full.
    frame = frame.with_columns(
        pl.when(pl.col("doc_type") == "invoice").then(pl.col("__cleared_on")).alias("paid_date"),
        pl.when(pl.col("__cleared_on").is_not_null() & (pl.col("doc_type") == "invoice")).then(pl.col("amount")).alias("amount_paid"),
    )
    cleared = frame.filter(pl.col("paid_date").is_not_null())
    finished = finish_invoices(frame)
    warnings = [
        "net due dates are the baseline date (ZFBDT) plus the longest terms period (ZBD1T-ZBD3T)",
        "amounts are in document currency (WRBTR, WAERS) with the local-currency amount (DMBTR) as the base amount",
    ]
    if cleared.height:
        warnings.append(f"{cleared.height} cleared item(s): their clearing date (AUGDT) is recorded as the payment date")
    classes = {"data": lines.height}
    balance_check(sniff.file_name, label, classes, lines.height)
    return ParsedReport(
        source_format=OPEN_ITEMS,
        table="invoices",
        frame=finished,
        source_headers=headers,
        row_classes=classes,
        lines_read=lines.height,
        warnings=warnings,
        doc_types=doc_type_counts(finished),
        label=label,
    )


FORMATS = [FormatSpec(OPEN_ITEMS, "SAP FI customer line items (BSID/BSAD)", _is_sap, _parse)]
