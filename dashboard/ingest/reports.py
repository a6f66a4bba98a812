"""Accounting-package reports: find the table inside the report and say what every line was.

An exported report is not a table: it has title lines (report name, company, "As of ..."),
heading lines (aging buckets or customers), "Total for ..." lines, a TOTAL line and a footer
(when it was run). :func:`read_report` finds the column headings, classifies every line after
them — data, heading, total, blank, footer — with a count that must balance, reconciles the
data lines to the report's own TOTAL, and reads the as-of date from the title.

Recognised so far: QuickBooks Online "A/R Aging Detail" (CSV and XLSX). Issue 3 adds the others.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import polars as pl

from dashboard.errors import ValidationError
from dashboard.ingest.headers import normalize_header
from dashboard.ingest.normalize import money_expr

QBO_AR_AGING_DETAIL = "quickbooks-ar-aging-detail"

# Normalized column headings of each report layout; a header line must hold most of them.
REPORT_HEADERS: dict[str, frozenset[str]] = {
    QBO_AR_AGING_DETAIL: frozenset(
        {"date", "transactiontype", "num", "customer", "duedate", "pastdue", "amount", "openbalance"}
    ),
}
_MIN_HEADER_HITS = 4
_SCAN_LINES = 40
_AS_OF = re.compile(r"(?i)\bas of\s+(.+?)\s*$")
_DATE_IN_TEXT = re.compile(r"([A-Z][a-z]+\.? \d{1,2}, \d{4}|\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2})")
_DATE_LAYOUTS = ("%B %d, %Y", "%b %d, %Y", "%b. %d, %Y", "%m/%d/%Y", "%Y-%m-%d", "%d %B %Y")


@dataclass
class ReportLayout:
    """What a report file was made of. ``row_counts`` covers every line after the headings."""

    kind: str
    title: list[str]
    header_line: int  # 1-based line (row) of the column headings
    as_of_date: date | None
    as_of_source: str | None  # "title" or "footer"
    row_counts: dict[str, int] = field(default_factory=dict)  # data, heading, total, blank, footer
    report_total: Decimal | None = None  # the TOTAL line's open balance
    rows_total: Decimal | None = None  # the sum of the data lines' open balances
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        counts = ", ".join(f"{n} {kind}" for kind, n in self.row_counts.items() if n)
        return f"{self.kind}: {counts}; data lines add up to the report total {self.report_total}"


def _parse_date_text(text: str) -> date | None:
    cleaned = text.strip().strip('"').strip()
    for layout in _DATE_LAYOUTS:
        try:
            return datetime.strptime(cleaned, layout).date()
        except ValueError:
            continue
    return None


def _max_fields(sample: str) -> int:
    try:
        rows = list(csv.reader(io.StringIO(sample, newline="")))
    except csv.Error:
        return 1
    return max((len(r) for r in rows[:_SCAN_LINES * 5]), default=1)


def read_grid(data: bytes, *, source_format: str, encoding: str = "utf-8") -> pl.DataFrame:
    """Every line of the file as a row of text cells ``c0..cN`` (blank lines kept)."""
    if source_format == "xlsx":
        grid = pl.read_excel(io.BytesIO(data), engine="calamine", has_header=False, infer_schema_length=0)
        grid = grid.with_columns(pl.all().cast(pl.String))
        return grid.rename({c: f"c{i}" for i, c in enumerate(grid.columns)})
    text = data.decode(encoding, errors="replace")
    width = _max_fields(text[:65536])
    return pl.read_csv(
        text.encode("utf-8"),
        has_header=False,
        infer_schema=False,
        schema={f"c{i}": pl.String for i in range(width)},
        truncate_ragged_lines=True,
        missing_columns="insert",
    )


def find_report_header(grid: pl.DataFrame) -> tuple[str, int] | None:
    """The report kind and the 0-based row of its column headings, or None for a plain table."""
    head = grid.head(_SCAN_LINES)
    for index, row in enumerate(head.iter_rows()):
        cells = {normalize_header(c) for c in row if c}
        for kind, expected in REPORT_HEADERS.items():
            if len(cells & expected) >= _MIN_HEADER_HITS and index > 0:
                return kind, index
    return None


def looks_like_report(data: bytes, *, source_format: str) -> bool:
    """Cheap test on the first lines: a title line of one cell before a wider table."""
    if source_format != "csv":
        return source_format == "xlsx"
    if b"\x00" in data[:8192]:
        return False
    sample = data[:8192].decode("utf-8", errors="replace")
    try:
        rows = [r for r in csv.reader(io.StringIO(sample, newline="")) if any(c.strip() for c in r)][:3]
    except csv.Error:
        return False
    return bool(rows) and sum(1 for c in rows[0] if c.strip()) == 1


def read_report(data: bytes, *, file_name: str, source_format: str, encoding: str = "utf-8") -> tuple[pl.DataFrame, ReportLayout] | None:
    """The data lines of a report as a table (headers as in the report, ``__row_number`` = line),
    and its layout; None when the file is not a recognised report.

    Raises :class:`ValidationError` when the report is cut off (no TOTAL line or no footer),
    when a line fits no class, or when the data lines do not add up to the report's TOTAL.
    """
    from dashboard.ingest.read import ROW_COLUMN

    grid = read_grid(data, source_format=source_format, encoding=encoding)
    found = find_report_header(grid)
    if found is None:
        return None
    kind, header_index = found
    headers = [c.strip() if c else "" for c in grid.row(header_index)]
    names = unique_names(headers)
    title = [c.strip() for row in grid.head(header_index).iter_rows() for c in row if c and c.strip()]
    body = grid.slice(header_index + 1).rename(dict(zip(grid.columns, names, strict=True)))
    body = body.with_columns(pl.int_range(header_index + 2, header_index + 2 + body.height, dtype=pl.Int64).alias(ROW_COLUMN))

    key = {normalize_header(h): n for h, n in zip(headers, names, strict=True)}
    first, rest = names[0], names[1:]
    open_col, amount_col = key.get("openbalance"), key.get("amount")
    nonblank = {n: (pl.col(n).str.strip_chars() != "").fill_null(False) for n in names}
    label = pl.col(first).str.strip_chars().str.to_lowercase().fill_null("")
    is_blank = ~pl.any_horizontal([nonblank[n] for n in names])
    is_grand_total = label == "total"
    is_subtotal = label.str.starts_with("total for ") | (label.str.starts_with("total ") & ~is_grand_total)
    body = body.with_columns(
        is_blank.alias("__blank"), is_grand_total.alias("__grand_total"), is_subtotal.alias("__subtotal")
    )
    total_rows = body.filter(pl.col("__grand_total"))
    if total_rows.height == 0:
        last = body.filter(~pl.col("__blank")).tail(1)
        last_text = ", ".join(c for c in (last.row(0)[:len(names)] if last.height else ()) if c)
        msg = (
            f"{file_name} looks cut off: the report has no TOTAL line (its last line is {last_text!r}). "
            "Export the report again and load the whole file; nothing was written."
        )
        raise ValidationError(msg)
    total_line = int(total_rows[ROW_COLUMN][0])
    after_total = pl.col(ROW_COLUMN) > total_line
    data_cells = [nonblank[n] for n in (key.get("date"), key.get("num"), open_col) if n]
    body = body.with_columns(
        (after_total & ~pl.col("__blank")).alias("__footer"),
        (nonblank[first] & ~pl.any_horizontal([nonblank[n] for n in rest]) & ~pl.col("__grand_total") & ~pl.col("__subtotal") & ~after_total).alias("__heading"),
    ).with_columns(
        (
            ~pl.col("__blank") & ~pl.col("__grand_total") & ~pl.col("__subtotal") & ~pl.col("__footer") & ~pl.col("__heading")
            & ~nonblank[first] & pl.any_horizontal(data_cells)
        ).alias("__data")
    )
    counts = body.select(
        pl.col("__data").sum().alias("data"),
        pl.col("__heading").sum().alias("heading"),
        (pl.col("__subtotal") | pl.col("__grand_total")).sum().alias("total"),
        pl.col("__blank").sum().alias("blank"),
        pl.col("__footer").sum().alias("footer"),
    ).row(0, named=True)
    counts = {k: int(v) for k, v in counts.items()}
    classes = ["__data", "__heading", "__subtotal", "__grand_total", "__blank", "__footer"]
    unclassified = body.filter(~pl.any_horizontal(classes))
    if unclassified.height or sum(counts.values()) != body.height:
        lines = unclassified[ROW_COLUMN].head(5).to_list()
        msg = (
            f"{file_name}: {unclassified.height} line(s) after the column headings are neither data, heading, total, "
            f"blank nor footer (lines {lines}); the report layout is not the expected {kind}. Nothing was written."
        )
        raise ValidationError(msg)
    if counts["footer"] == 0:
        msg = (
            f"{file_name} looks cut off: nothing follows the TOTAL line (a complete export ends with the time "
            "it was run). Export the report again and load the whole file; nothing was written."
        )
        raise ValidationError(msg)

    layout = ReportLayout(kind, title, header_index + 1, None, None, counts)
    layout.as_of_date, layout.as_of_source = _as_of(title, body.filter(pl.col("__footer")), names)
    if layout.as_of_source == "footer":
        layout.warnings.append(f"the report title has no 'As of' date; using {layout.as_of_date} from its footer (when it was run)")
    data_rows = body.filter(pl.col("__data"))
    if open_col:
        _reconcile(file_name, data_rows, total_rows.head(1), open_col, "open balance", layout)
    if amount_col:
        _reconcile(file_name, data_rows, total_rows.head(1), amount_col, "amount", None)

    data_rows = data_rows.drop([c for c in data_rows.columns if c.startswith("__") and c != ROW_COLUMN])
    num, type_col = key.get("num"), key.get("transactiontype")
    if num:
        missing = data_rows.filter(~nonblank[num]).height
        if missing:
            # Journal entries and unapplied payments often have no number: a stable id from what
            # the line says, so the next week's report finds the same document.
            parts = [pl.col(c).fill_null("").str.strip_chars() for c in (type_col, key.get("date"), key.get("customer"), amount_col) if c]
            data_rows = data_rows.with_columns(
                pl.when(nonblank[num]).then(pl.col(num)).otherwise(pl.concat_str(parts, separator=" ")).alias(num)
            )
            layout.warnings.append(
                f"{missing} line{'s have' if missing != 1 else ' has'} no number: their id is made of type, date, customer and amount"
            )
    if first and not any(headers[0:1]):
        data_rows = data_rows.drop(first)  # the unnamed bucket column: its text is on heading lines only
    return data_rows.select(ROW_COLUMN, pl.exclude(ROW_COLUMN)), layout


def unique_names(headers: list[str]) -> list[str]:
    """Headers made unique and non-empty (``column_3`` for a blank one); shared by every report reader."""
    seen: dict[str, int] = {}
    names = []
    for index, header in enumerate(headers):
        name = (header or "").strip() or f"column_{index + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        names.append(name)
    return names


def _as_of(title: list[str], footer: pl.DataFrame, names: list[str]) -> tuple[date | None, str | None]:
    for text in title:
        match = _AS_OF.search(text)
        if match:
            parsed = _parse_date_text(match.group(1))
            if parsed:
                return parsed, "title"
    for row in footer.select(names).iter_rows():
        for cell in row:
            match = _DATE_IN_TEXT.search(cell or "")
            if match and _parse_date_text(match.group(1)):
                return _parse_date_text(match.group(1)), "footer"
    return None, None


def _reconcile(file_name: str, data_rows: pl.DataFrame, total_row: pl.DataFrame, column: str, what: str, layout: ReportLayout | None) -> None:
    rows_total = data_rows.select(money_expr(pl.col(column)).sum()).item() or Decimal("0.00")
    report_total = total_row.select(money_expr(pl.col(column))).item()
    if layout is not None:
        layout.rows_total, layout.report_total = rows_total, report_total
    if report_total is not None and rows_total != report_total:
        msg = (
            f"{file_name} does not add up: its data lines total {rows_total:,.2f} of {what}, but its TOTAL line says "
            f"{report_total:,.2f} (a difference of {report_total - rows_total:,.2f}). The file may have been edited or "
            "cut; export it again. Nothing was written."
        )
        raise ValidationError(msg)
