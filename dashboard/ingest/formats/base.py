"""What every vendor-format parser returns, and the helpers they share.

A format parser turns the raw bytes of one vendor export into a :class:`ParsedReport`: a
frame with canonical column names and typed values (dates as ``Date``, money as
``Decimal(18, 2)``), the as-of date the file describes (from its title or footer, or None
when it has to be asked for), the report's own TOTAL when it has one, and a count of every
line by class (data, heading, total, blank, footer, excluded) that adds up to the lines read.
The canonical pipeline (:mod:`dashboard.ingest.load`) then validates and loads that frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import polars as pl

from dashboard.errors import UnknownColumnError, UnreadableFileError, ValidationError
from dashboard.ingest import grid as grid_reader
from dashboard.ingest.grid import shown, unique_names
from dashboard.ingest.headers import normalize_header
from dashboard.ingest.normalize import MONEY_DTYPE, money_expr
from dashboard.ingest.statedates import stated_date

ROW_CLASSES = ("data", "heading", "total", "blank", "footer", "excluded")


@dataclass
class ParsedReport:
    """A vendor export made canonical, with everything it said about itself.

    ``frame`` has canonical columns of ``table`` (plus, for invoices, ``customer_name`` and what
    the source says about settlement: ``open_amount``, ``amount_paid``, ``paid_date`` — Stripe's
    paid-at, SAP's clearing date, FreshBooks' date paid — and ``status``) and ``__row_number``
    (the line in the file). The canonical loader turns the settlement columns into the ledger's
    statements and dated payments.
    """

    source_format: str
    table: str
    frame: pl.DataFrame
    source_headers: list[str]
    as_of_date: date | None = None
    as_of_source: str | None = None  # "title", "footer" or None
    report_total: Decimal | None = None
    rows_total: Decimal | None = None
    row_classes: dict[str, int] = field(default_factory=dict)
    lines_read: int = 0
    warnings: list[str] = field(default_factory=list)
    doc_types: dict[str, int] = field(default_factory=dict)
    title: list[str] = field(default_factory=list)
    header_line: int = 1
    label: str = ""  # the format as a person names it: "QuickBooks Online Open Invoices"

    @property
    def reconciles(self) -> bool:
        """True when the data lines add up to the report's TOTAL (within a cent), or it has none."""
        if self.report_total is None or self.rows_total is None:
            return True
        return abs(self.report_total - self.rows_total) <= Decimal("0.01")

    def reconciliation_message(self, file_name: str) -> str:
        """The plain sentence for a report whose lines do not add up to its TOTAL."""
        difference = (self.report_total or Decimal(0)) - (self.rows_total or Decimal(0))
        return (
            f"{file_name} does not add up: its data lines total {self.rows_total:,.2f} but its TOTAL line says "
            f"{self.report_total:,.2f} (a difference of {difference:,.2f}). The file may have been edited or cut; "
            "export it again."
        )

    def summary(self) -> str:
        """One line: what the file was made of."""
        counts = ", ".join(f"{n} {kind}" for kind, n in self.row_classes.items() if n)
        text = f"{self.label or self.source_format}: {self.lines_read} lines ({counts})"
        if self.report_total is not None:
            text += f"; report total {self.report_total:,.2f}, data lines {self.rows_total:,.2f}"
        if self.as_of_date is not None:
            text += f"; as of {self.as_of_date} (from the {self.as_of_source})"
        return text


# -- reading (one reader underneath: dashboard.ingest.grid) --------------------------------
def read_grid(data: bytes, *, is_xlsx: bool, rows: int | None = None, file_name: str = "the file") -> pl.DataFrame:
    """Every line of the file (the first sheet of a workbook) as text cells ``c0..cN``, blank
    lines kept, nothing typed. ``rows`` reads only the first lines (detection)."""
    del is_xlsx  # the content says which
    return grid_reader.read_grid(data, file_name, rows=rows).frame


def head_rows(data: bytes, *, is_xlsx: bool, lines: int = 30) -> list[list[str]]:
    """The first lines of a file as lists of stripped cells (detection looks only here)."""
    if is_xlsx:
        return grid_reader.read_grid(data, "the file", rows=lines).head(lines)
    sample = data[:16384]
    if len(data) > len(sample) and b"\n" in sample:
        sample = sample[: sample.rfind(b"\n") + 1]  # whole lines only
    try:
        return grid_reader.read_grid(sample, "the file").head(lines)
    except UnreadableFileError:
        return []


def header_hits(cells: list[str], expected: set[str]) -> int:
    """How many of ``expected`` (normalized headers) appear among ``cells``."""
    return len({normalize_header(c) for c in cells if c} & expected)


def read_table(
    data: bytes, *, is_xlsx: bool, header_line: int = 0, counts: dict[str, int] | None = None, file_name: str = "the file"
) -> tuple[pl.DataFrame, list[str]]:
    """A flat export (one header line, then one line per record) as text columns.

    Returns the frame (with ``__row_number`` = line in the file, 1-based) and the headers as
    written. Lines blank in every cell are dropped; ``counts["blank"]`` says how many.
    """
    grid = read_grid(data, is_xlsx=is_xlsx, file_name=file_name)
    headers = [(c or "").strip() for c in grid.row(header_line)]
    while headers and not headers[-1]:
        headers.pop()
    names = unique_names(headers)
    body = grid.slice(header_line + 1).select(grid.columns[: len(names)])
    body = body.rename(dict(zip(body.columns, names, strict=True)))
    body = body.with_columns(
        pl.int_range(header_line + 2, header_line + 2 + body.height, dtype=pl.Int64).alias("__row_number")
    )
    blank = pl.all_horizontal([(pl.col(n).str.strip_chars() == "").fill_null(True) for n in names])
    kept = body.filter(~blank)
    if counts is not None:
        counts["blank"] = body.height - kept.height
    return kept, headers


def column(frame: pl.DataFrame, header: str, names: dict[str, str]) -> pl.Expr:
    """The column whose normalized header is ``header``, or a null text column when absent."""
    name = names.get(header)
    return pl.col(name) if name is not None else pl.lit(None, dtype=pl.String)


def header_index(headers: list[str]) -> dict[str, str]:
    """normalized header -> header as written (first wins)."""
    index: dict[str, str] = {}
    for header in unique_names(headers):
        index.setdefault(normalize_header(header), header)
    return index


def require_headers(file_name: str, label: str, names: dict[str, str], required: dict[str, str]) -> None:
    """Refuse a file whose layout lacks a column the format cannot do without.

    ``required`` maps normalized header -> the header as the vendor writes it.
    """
    missing = [shown for key, shown in required.items() if key not in names]
    if missing:
        msg = (
            f"{file_name} looks like a {label} export but has no {', '.join(repr(m) for m in missing)} column; "
            f"got headers {shown(list(names.values()))}. Export it again with the standard columns."
        )
        raise UnknownColumnError(msg)


# -- values --------------------------------------------------------------------------------
def text(expr: pl.Expr) -> pl.Expr:
    """Trimmed text; blank -> null."""
    stripped = expr.cast(pl.String).str.strip_chars()
    return pl.when(stripped == "").then(None).otherwise(stripped)


def money(expr: pl.Expr) -> pl.Expr:
    """Money text (``$1,234.56``, ``(1,234.56)``, ``1.234,56``) -> ``Decimal(18, 2)``."""
    return money_expr(expr.cast(pl.String))


def cents(expr: pl.Expr) -> pl.Expr:
    """Integer minor units (Stripe's ``amount_due``: 12345 = 123.45) -> ``Decimal(18, 2)``."""
    return (expr.cast(pl.Int64, strict=False).cast(pl.Decimal(20, 0)) / 100).cast(MONEY_DTYPE)


_EXCEL_EPOCH = date(1899, 12, 30)
_UNAMBIGUOUS_LAYOUTS = ("%Y-%m-%d", "%d %B %Y", "%B %d %Y", "%B %d, %Y", "%d-%B-%Y")


def dates(expr: pl.Expr, layouts: tuple[str, ...], *, excel_serial: bool = False) -> pl.Expr:
    """Date text in one of ``layouts`` (strptime codes) -> ``Date``; a time of day is ignored.

    ``excel_serial`` also reads whole numbers 20000-80000 as Excel day serials (1900 system).
    Spreadsheet cells read as ``2026-09-30 00:00:00`` are always understood.
    """
    raw = text(expr)
    cleaned = raw.str.replace(r"[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([AaPp][Mm])?\s*(Z|[+-]\d{2}:?\d{2}|UTC)?$", "")
    # the format's own layouts first, then the unambiguous ones any export may use (ISO, month names)
    parsed = [
        pl.when(day.dt.year() >= 1900).then(day)  # a two-digit year read as four is no date
        for day in (cleaned.str.to_date(layout, strict=False) for layout in (*layouts, *_UNAMBIGUOUS_LAYOUTS))
    ]
    if excel_serial:
        serial = pl.when(raw.str.contains(r"^\d{5}(\.0+)?$")).then(raw.str.replace(r"\.0+$", "")).cast(pl.Int64, strict=False)
        parsed.append(pl.lit(_EXCEL_EPOCH) + pl.duration(days=serial))
    return pl.coalesce(parsed)


def unix_dates(expr: pl.Expr) -> pl.Expr:
    """Unix seconds (Stripe ``created``) -> UTC ``Date``."""
    return pl.from_epoch(expr.cast(pl.Int64, strict=False), time_unit="s").dt.date()


def as_of_from(title: list[str], footer: list[str], *, day_first: bool = False) -> tuple[date | None, str | None]:
    """The date a report describes (see :func:`dashboard.ingest.statedates.stated_date`)."""
    return stated_date(title, footer, day_first=day_first)


def doc_type_counts(frame: pl.DataFrame) -> dict[str, int]:
    """How many documents of each type the frame holds."""
    if "doc_type" not in frame.columns or frame.height == 0:
        return {}
    counts = frame.group_by("doc_type").len().sort("doc_type")
    return {str(k): int(n) for k, n in counts.iter_rows()}


def balance_check(file_name: str, label: str, classes: dict[str, int], lines_read: int) -> None:
    """Refuse a file whose lines do not all fall into a class (the count must balance)."""
    if sum(classes.values()) != lines_read:
        msg = (
            f"{file_name}: {lines_read - sum(classes.values())} of its {lines_read} lines are neither data, heading, "
            f"total, blank nor footer; the file is not laid out like a {label}. Nothing was written."
        )
        raise ValidationError(msg)


# -- grouped reports (title, headings, "Total for ..." lines, TOTAL, footer) ----------------
@dataclass
class GroupedReport:
    """A report split into its parts: every line after the headings has one class."""

    title: list[str]
    headers: list[str]
    header_line: int  # 1-based
    data: pl.DataFrame  # data lines: named text columns, __row_number, __group (heading above)
    classes: dict[str, int]
    lines_read: int  # lines after the column headings
    total_cells: dict[str, str | None]  # the grand TOTAL line, by column name
    footer: list[str]


def find_header_line(grid: pl.DataFrame, expected: set[str], *, min_hits: int, scan: int = 40) -> int | None:
    """0-based line of the column headings: the first line holding ``min_hits`` of ``expected``."""
    for index, row in enumerate(grid.head(scan).iter_rows()):
        if header_hits([c or "" for c in row], expected) >= min_hits:
            return index
    return None


def split_grouped_report(
    grid: pl.DataFrame,
    header_row: int,
    *,
    file_name: str,
    label: str,
    key_columns: list[str],
    requires_footer: bool,
) -> GroupedReport:
    """Classify every line after the headings as data, heading, total, blank or footer.

    A heading line has one cell filled (a customer, a contact, an aging bucket) and names the
    data lines under it (``__group``). "Total ..." lines are subtotals; the line whose first
    text is "TOTAL"/"Total" alone is the report's grand total; anything after it is footer.
    Raises :class:`ValidationError` when the report is cut off (no grand total, or no footer
    where the format always writes one) or a line fits no class.
    """
    headers = [(c or "").strip() for c in grid.row(header_row)]
    names = unique_names(headers)
    title = [c.strip() for row in grid.head(header_row).iter_rows() for c in row if c and c.strip()]
    body = grid.slice(header_row + 1).rename(dict(zip(grid.columns, names, strict=True)))
    body = body.with_columns(pl.int_range(header_row + 2, header_row + 2 + body.height, dtype=pl.Int64).alias("__row_number"))
    filled = {n: (pl.col(n).str.strip_chars() != "").fill_null(False) for n in names}
    first_text = pl.coalesce([pl.when(filled[n]).then(pl.col(n).str.strip_chars()) for n in names]).fill_null("")
    filled_count = pl.sum_horizontal([filled[n].cast(pl.Int32) for n in names])
    keys = [k for k in key_columns if k in names]
    body = body.with_columns(
        first_text.alias("__first"),
        (filled_count == 0).alias("__blank"),
        first_text.str.contains(r"(?i)^total$").alias("__grand"),
        first_text.str.contains(r"(?i)^total\s").alias("__subtotal"),
        pl.any_horizontal([filled[k] for k in keys]).alias("__has_key") if keys else pl.lit(False).alias("__has_key"),
        (filled_count == 1).alias("__single"),
    )
    grand = body.filter(pl.col("__grand"))
    if grand.height == 0:
        last = body.filter(~pl.col("__blank")).tail(1)
        last_text = last["__first"][0] if last.height else ""
        msg = (
            f"{file_name} looks cut off: the {label} has no TOTAL line (its last line is {last_text!r}). "
            "Export the report again and load the whole file. Nothing was written."
        )
        raise ValidationError(msg)
    total_line = int(grand["__row_number"][0])
    after = pl.col("__row_number") > total_line
    body = body.with_columns(
        (after & ~pl.col("__blank")).alias("__footer"),
        (~after & pl.col("__single") & ~pl.col("__grand") & ~pl.col("__subtotal")).alias("__heading"),
    ).with_columns(
        (~after & pl.col("__has_key") & ~pl.col("__single") & ~pl.col("__blank") & ~pl.col("__grand") & ~pl.col("__subtotal")).alias("__data")
    )
    body = body.with_columns(pl.when(pl.col("__heading")).then(pl.col("__first")).forward_fill().alias("__group"))
    classes = {
        "data": int(body["__data"].sum()),
        "heading": int(body["__heading"].sum()),
        "total": int((body["__grand"] | body["__subtotal"]).filter(~body["__footer"]).sum()),
        "blank": int(body["__blank"].sum()),
        "footer": int(body["__footer"].sum()),
    }
    unclassified = body.filter(~pl.any_horizontal("__data", "__heading", "__grand", "__subtotal", "__blank", "__footer"))
    if unclassified.height:
        lines = unclassified["__row_number"].head(5).to_list()
        msg = (
            f"{file_name}: {unclassified.height} line(s) are neither data, heading, total, blank nor footer "
            f"(lines {lines}); the file is not laid out like a {label}. Nothing was written."
        )
        raise ValidationError(msg)
    balance_check(file_name, label, classes, body.height)
    footer = [c for row in body.filter(pl.col("__footer")).select(names).iter_rows() for c in row if c and c.strip()]
    if requires_footer and not footer:
        msg = (
            f"{file_name} looks cut off: nothing follows its TOTAL line, but a complete {label} export ends with "
            "the time it was run. Export the report again and load the whole file. Nothing was written."
        )
        raise ValidationError(msg)
    data = body.filter(pl.col("__data")).select(*names, "__row_number", "__group")
    return GroupedReport(
        title, headers, header_row + 1, data, classes, body.height, dict(zip(names, grand.select(names).row(0), strict=True)), footer
    )


def sum_money(frame: pl.DataFrame, name: str) -> Decimal:
    """The sum of a Decimal money column (0.00 when empty)."""
    value = frame.select(pl.col(name).sum()).item() if frame.height else None
    return Decimal(value) if value is not None else Decimal("0.00")


def money_value(cell: str | None) -> Decimal | None:
    """One money cell (a TOTAL line's figure) -> Decimal, or None."""
    if cell is None or not str(cell).strip():
        return None
    return pl.select(money(pl.lit(str(cell)))).item()


# -- what detection looks at ---------------------------------------------------------------
@dataclass
class Sniff:
    """The first lines of a file, read once and shown to every format's recogniser."""

    file_name: str
    is_xlsx: bool
    is_json: bool
    head: list[list[str]]  # first lines, stripped cells ([] for JSON)
    text_head: str  # the first 16 KB as text ("" for XLSX)

    def title_text(self, lines: int = 6) -> str:
        """The first lines joined, lower case (titles: "a/r aging detail", "open invoices")."""
        return " | ".join(" ".join(c for c in row if c) for row in self.head[:lines]).lower()

    def best_header_hits(self, expected: set[str]) -> int:
        """The most of ``expected`` any one of the first lines holds."""
        return max((header_hits(row, expected) for row in self.head), default=0)


@dataclass(frozen=True)
class FormatSpec:
    """One vendor layout: a name, a recogniser (looks at the first lines) and a parser."""

    name: str  # source_format stored in loads, e.g. "xero-invoice-export"
    label: str  # "Xero invoice export"
    recognise: Callable[[Sniff], bool]
    parse: Callable[[bytes, Sniff], ParsedReport]


def canonical_doc_type(expr: pl.Expr) -> pl.Expr:
    """A vendor's document type text -> invoice, credit_memo, unapplied_payment, journal."""
    value = text(expr).str.to_lowercase().fill_null("")
    return (
        pl.when(value.str.contains(r"credit|^cm$|^dg$")).then(pl.lit("credit_memo"))
        .when(value.str.contains(r"payment|receipt|^dz$|^pmt$|deposit")).then(pl.lit("unapplied_payment"))
        .when(value.str.contains(r"journal|^je$|^sa$|^ab$|general")).then(pl.lit("journal"))
        .otherwise(pl.lit("invoice"))
    )


def make_ids_for_blank(invoice_id: pl.Expr, doc_type: pl.Expr, invoice_date: pl.Expr, customer: pl.Expr, amount: pl.Expr) -> pl.Expr:
    """Documents without a number (journals, unapplied payments) get a stable id from what the
    line says, so next week's report finds the same document."""
    made = pl.concat_str(
        [doc_type, invoice_date.cast(pl.String), customer, amount.cast(pl.String)], separator=" ", ignore_nulls=True
    )
    return pl.coalesce(text(invoice_id), made)


def finish_invoices(frame: pl.DataFrame) -> pl.DataFrame:
    """Canonical invoice columns in order, typed; missing optional columns are null."""
    from dashboard.ingest.normalize import polars_dtype
    from dashboard.schema import CANONICAL_COLUMNS

    columns = [*CANONICAL_COLUMNS["invoices"], "customer_name", "open_amount", "amount_paid", "paid_date", "status"]
    types = {c: polars_dtype(t) for c, (t, _) in CANONICAL_COLUMNS["invoices"].items()}
    types |= {"customer_name": pl.String(), "open_amount": MONEY_DTYPE, "amount_paid": MONEY_DTYPE, "paid_date": pl.Date(),
              "status": pl.String()}
    exprs = [
        (pl.col(c) if c in frame.columns else pl.lit(None)).cast(types[c]).alias(c) for c in columns
    ]
    return frame.select("__row_number", *exprs)
