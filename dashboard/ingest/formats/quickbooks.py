"""QuickBooks: Online A/R Aging Detail, Open Invoices, Invoice List (CSV/XLSX); Desktop Open Invoices (XLSX).

QuickBooks Online reports carry a title ("Open Invoices", the company, "As of September 30,
2026"), an unnamed first column holding heading lines (customers or aging buckets),
"Total for ..." lines, a TOTAL line and a footer with the time the report was run. Money is
written ``$1,234.56`` / ``(1,234.56)``; dates are unpadded M/D/YYYY.

QuickBooks Desktop's Excel export has no title, puts data in every other column (the columns
between are spacers), nests "Customer:Job" headings in the first columns, and stores dates
as Excel day numbers.

Every QuickBooks Online report (A/R Aging Detail, Open Invoices, Invoice List) is the same
grouped layout and goes through one parser.
"""

from __future__ import annotations

import polars as pl

from dashboard.ingest.formats.base import (
    FormatSpec,
    GroupedReport,
    ParsedReport,
    Sniff,
    as_of_from,
    canonical_doc_type,
    dates,
    doc_type_counts,
    find_header_line,
    finish_invoices,
    header_index,
    make_ids_for_blank,
    money,
    money_value,
    read_grid,
    split_grouped_report,
    sum_money,
    text,
)

AGING_DETAIL = "quickbooks-ar-aging-detail"
OPEN_INVOICES = "quickbooks-online-open-invoices"
INVOICE_LIST = "quickbooks-online-invoice-list"
DESKTOP_OPEN_INVOICES = "quickbooks-desktop-open-invoices"

_QBO_HEADERS = {"date", "transactiontype", "num", "customer", "name", "terms", "duedate", "pastdue", "amount", "openbalance"}
_QBD_HEADERS = {"type", "date", "num", "pono", "terms", "duedate", "aging", "openbalance", "name"}


# -- A/R Aging Detail (reader in dashboard.ingest.reports) ---------------------------------
def _is_aging_detail(sniff: Sniff) -> bool:
    return "a/r aging detail" in sniff.title_text() and sniff.best_header_hits(_QBO_HEADERS) >= 4


def _parse_aging_detail(data: bytes, sniff: Sniff) -> ParsedReport:
    return _parse_qbo_list(data, sniff, source_format=AGING_DETAIL, label="QuickBooks Online A/R Aging Detail report")


# -- Open Invoices (QuickBooks Online) -----------------------------------------------------
def _is_open_invoices(sniff: Sniff) -> bool:
    return "open invoices" in sniff.title_text() and sniff.best_header_hits(_QBO_HEADERS) >= 4


def _parse_open_invoices(data: bytes, sniff: Sniff) -> ParsedReport:
    return _parse_qbo_list(data, sniff, source_format=OPEN_INVOICES, label="QuickBooks Online Open Invoices report")


def _parse_qbo_list(data: bytes, sniff: Sniff, *, source_format: str, label: str) -> ParsedReport:
    grid = read_grid(data, is_xlsx=sniff.is_xlsx)
    header_row = find_header_line(grid, _QBO_HEADERS, min_hits=4)
    assert header_row is not None  # recognised on the same lines
    names = header_index([(c or "") for c in grid.row(header_row)])
    keys = [names[k] for k in ("date", "num", "openbalance") if k in names]
    report = split_grouped_report(grid, header_row, file_name=sniff.file_name, label=label, key_columns=keys, requires_footer=True)
    return _qbo_frame(report, names, source_format=source_format, label=label, sniff=sniff, day_layouts=("%m/%d/%Y",))


# -- Invoice List (QuickBooks Online): every invoice of a period, paid ones at 0.00 open -------
def _is_invoice_list(sniff: Sniff) -> bool:
    return "invoice list" in sniff.title_text() and sniff.best_header_hits(_QBO_HEADERS) >= 4


def _parse_invoice_list(data: bytes, sniff: Sniff) -> ParsedReport:
    return _parse_qbo_list(data, sniff, source_format=INVOICE_LIST, label="QuickBooks Online Invoice List report")


def _qbo_frame(
    report: GroupedReport, names: dict[str, str], *, source_format: str, label: str, sniff: Sniff, day_layouts: tuple[str, ...]
) -> ParsedReport:
    data = report.data

    def col(key: str) -> pl.Expr:
        return pl.col(names[key]) if key in names else pl.lit(None, dtype=pl.String)

    open_key = "openbalance"
    customer = text(col("customer")) if "customer" in names else text(col("name")) if "name" in names else None
    customer = pl.coalesce(customer, pl.col("__group")) if customer is not None else pl.col("__group")
    type_key = "transactiontype" if "transactiontype" in names else "type"
    frame = data.with_columns(
        customer.alias("customer_id"),
        canonical_doc_type(col(type_key)).alias("doc_type"),
        dates(col("date"), day_layouts, excel_serial=sniff.is_xlsx).alias("invoice_date"),
        dates(col("duedate"), day_layouts, excel_serial=sniff.is_xlsx).alias("due_date"),
        text(col("terms")).alias("terms_code"),
        money(col(open_key)).alias("open_amount"),
        money(col("amount")).alias("__amount"),
        text(col("pono")).alias("po_number"),
        # QuickBooks keeps a voided invoice in its lists at 0.00, with "Voided" as its memo.
        pl.when(text(col("memo")).str.to_lowercase().str.starts_with("void")).then(pl.lit("void")).alias("status"),
    ).with_columns(
        pl.coalesce("__amount", "open_amount").alias("amount"),
        pl.col("customer_id").alias("customer_name"),
        # A payment or journal has no due date of its own: it is "due" on its date.
        pl.when(pl.col("doc_type") != "invoice").then(pl.coalesce("due_date", "invoice_date")).otherwise(pl.col("due_date")).alias("due_date"),
    )
    frame = frame.with_columns(
        make_ids_for_blank(col("num"), col(type_key), pl.col("invoice_date"), pl.col("customer_id"), pl.col("amount")).alias("invoice_id"),
        pl.lit(source_format).alias("source_system"),
    )
    warnings = []
    if "amount" not in names:
        warnings.append("the report has no original amount column: each document's amount is its open balance")
    blank_numbers = data.filter(text(col("num")).is_null()).height if "num" in names else data.height
    if blank_numbers:
        warnings.append(f"{blank_numbers} line(s) have no number; their id is made of type, date, customer and amount")
    as_of, as_of_source = as_of_from(report.title, report.footer)
    if as_of_source == "footer":
        warnings.append(f"the title has no 'As of' date; using {as_of} from the footer (when the report was run)")
    frame = finish_invoices(frame)
    return ParsedReport(
        source_format=source_format,
        table="invoices",
        frame=frame,
        source_headers=report.headers,
        as_of_date=as_of,
        as_of_source=as_of_source,
        report_total=money_value(report.total_cells.get(names.get(open_key, ""))),
        rows_total=sum_money(frame, "open_amount"),
        row_classes=report.classes,
        lines_read=report.lines_read,
        warnings=warnings,
        doc_types=doc_type_counts(frame),
        title=report.title,
        header_line=report.header_line,
        label=label,
    )


# -- Open Invoices (QuickBooks Desktop, Excel export) --------------------------------------
def _is_desktop(sniff: Sniff) -> bool:
    if not sniff.is_xlsx or "open invoices" in sniff.title_text() or "a/r aging" in sniff.title_text():
        return False
    for row in sniff.head[:5]:
        cells = [c for c in row if c]
        # Data in every other column: the heading line has as many blank cells between as names.
        if len(cells) >= 4 and sniff.best_header_hits(_QBD_HEADERS) >= 4 and len(row) >= 2 * len(cells) - 1:
            return True
    return False


def _parse_desktop(data: bytes, sniff: Sniff) -> ParsedReport:
    label = "QuickBooks Desktop Open Invoices export"
    grid = read_grid(data, is_xlsx=True)
    header_row = find_header_line(grid, _QBD_HEADERS, min_hits=4)
    assert header_row is not None
    names = header_index([(c or "") for c in grid.row(header_row)])
    keys = [names[k] for k in ("date", "num", "openbalance") if k in names]
    report = split_grouped_report(grid, header_row, file_name=sniff.file_name, label=label, key_columns=keys, requires_footer=False)
    # Spacer columns (blank heading, nothing in any data line) are dropped from what is shown.
    report.headers = [h for h in report.headers if h]
    parsed = _qbo_frame(report, names, source_format=DESKTOP_OPEN_INVOICES, label=label, sniff=sniff, day_layouts=("%m/%d/%Y",))
    parsed.warnings.append("customer names are QuickBooks Customer:Job names; each job is kept as its own customer")
    return parsed


FORMATS = [
    FormatSpec(AGING_DETAIL, "QuickBooks Online A/R Aging Detail", _is_aging_detail, _parse_aging_detail),
    FormatSpec(OPEN_INVOICES, "QuickBooks Online Open Invoices", _is_open_invoices, _parse_open_invoices),
    FormatSpec(INVOICE_LIST, "QuickBooks Online Invoice List", _is_invoice_list, _parse_invoice_list),
    FormatSpec(DESKTOP_OPEN_INVOICES, "QuickBooks Desktop Open Invoices", _is_desktop, _parse_desktop),
]
