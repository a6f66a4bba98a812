"""Vectorized parsers: text columns as read -> typed columns, plus a plain-words problem per row.

Every parser works on a whole Polars column (no Python loop over rows) and returns the parsed
column together with a "problem" column (null when the value is fine or blank), so validation
can turn problems into rejected rows that quote the bad value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from dashboard.schema import MONEY

MONEY_DTYPE = pl.Decimal(18, 2)

# Sign, parentheses, a currency code or symbol before or after, and the digits.
_MONEY_SHAPE = r"^\(?\s*-?\s*(?:[A-Za-z]{3}|[$€£¥])?\s*-?\s*[\d.,]*\d[\d.,]*\s*(?:[A-Za-z]{3}|[$€£¥])?\s*-?\s*\)?$"
# "1.234,56" / "1234,56" / "12,5": a comma decimal separator (EU style).
_EU_NUMBER = r"^(?:\d{1,3}(?:\.\d{3})+|\d+),\d{1,2}$"
_US_NUMBER = r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$"

# Day-first and month-first are both legal in the same column; the column decides (see
# parse_date). Each family is one date layout; the timestamp variants add a time of day.
DATE_FAMILIES: dict[str, str] = {
    "YYYY-MM-DD": "%Y-%m-%d",
    "YYYYMMDD": "%Y%m%d",
    "YYYY/MM/DD": "%Y/%m/%d",
    "M/D/YYYY": "%m/%d/%Y",
    "D/M/YYYY": "%d/%m/%Y",
    "D.M.YYYY": "%d.%m.%Y",
    "M-D-YYYY": "%m-%d-%Y",
    "D-M-YYYY": "%d-%m-%Y",
    "M/D/YY": "%m/%d/%y",
    "D/M/YY": "%d/%m/%y",
    # month names (a full name or its first three letters): "Jan 28 2021", "30 September 2026", "1-Feb-25"
    "Mon D YYYY": "%B %d %Y",
    "Mon D, YYYY": "%B %d, %Y",
    "D Mon YYYY": "%d %B %Y",
    "D-Mon-YYYY": "%d-%B-%Y",
    "D-Mon-YY": "%d-%B-%y",
}
#: A parsed year before this is a misread (a two-digit year taken as four digits).
_EARLIEST_YEAR = 1900
_CHOICE_SAMPLE = 20_000
_TIME_SUFFIXES = (" %H:%M:%S%.f", " %H:%M:%S", " %H:%M")
_EXCEL_EPOCH = pl.date(1899, 12, 30)
_EXCEL_EPOCH_DATETIME = datetime(1899, 12, 30)


_LABELS = {
    "ts": "date and time",
    "rate_to_base": "exchange rate",
    "amount_base": "amount in base currency",
    "terms_days": "payment terms (days)",
    "doc_type": "document type",
    "po_number": "PO number",
}


def label(column: str) -> str:
    """A canonical column name as a finance person says it: ``invoice_date`` -> ``invoice date``."""
    return _LABELS.get(column, column.replace("_", " "))


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    stripped = expr.str.strip_chars()
    return pl.when(stripped == "").then(None).otherwise(stripped)


def clean_text(expr: pl.Expr) -> pl.Expr:
    """Trim surrounding spaces; blank -> null. Inner text (and leading zeros) is kept."""
    return expr.str.strip_chars().replace("", None)


def decimal_style(values: pl.Series, *, delimiter: str | None = None) -> str | None:
    """Which decimal separator money text uses: "comma" (``1.234,50``), "dot" (``1,234.50``),
    or None when the values do not say.

    A value ending in a separator and one or two digits shows the decimal separator; a file
    that shows both, or neither, says nothing — except that a semicolon-delimited file (the
    European CSV) with nothing else to go on is read with decimal commas.
    """
    digits = values.cast(pl.String).str.replace_all(r"[^\d.,]", "")
    comma = bool(digits.str.contains(r",\d{1,2}$").any())
    dot = bool(digits.str.contains(r"\.\d{1,2}$").any())
    if comma and not dot:
        return "comma"
    if dot and not comma:
        return "dot"
    if not comma and not dot and delimiter == ";":
        return "comma"
    return None


def money_parts(expr: pl.Expr, *, style: str | None = None, spreadsheet: bool = False) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Money text -> (``Decimal(18, 2)`` value, too precise, ambiguous).

    ``style`` ("comma" / "dot", see :func:`decimal_style`) says which separator is the
    decimal one; None decides per value, and a value only a style could tell (``12.500``:
    twelve thousand five hundred, or twelve and a half?) is *ambiguous* and has no value.
    A value with more than two decimals (beyond trailing zeros) is *too precise* and has no
    value either: money is kept to the cent, never rounded silently — except a spreadsheet's
    binary float noise (``163014.87999999998``), which is within a millionth of a cent.
    """
    text = _blank_to_null(expr)
    digits = text.str.replace_all(r"[^\d.,]", "")
    comma_form = digits.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
    dot_form = digits.str.replace_all(",", "", literal=True)
    if style == "comma":
        dotted = pl.when(digits.str.contains(r"^(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?$")).then(comma_form)
        ambiguous = pl.lit(False)
    elif style == "dot":
        dotted = pl.when(digits.str.contains(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")).then(dot_form)
        ambiguous = pl.lit(False)
    else:
        ambiguous = digits.str.contains(r"^\d{1,3}\.\d{3}$")  # 12.500: 12,500 or 12.5? (1,234 is thousands)
        dotted = (
            pl.when(ambiguous).then(None)
            .when(digits.str.contains(_EU_NUMBER)).then(comma_form)
            .when(digits.str.contains(_US_NUMBER)).then(dot_form)
        )
    shaped = text.str.contains(_MONEY_SHAPE)
    number = pl.when(shaped).then(dotted)
    fraction = number.str.extract(r"\.(\d+)$", 1)
    exact = fraction.is_null() | (fraction.str.len_chars() <= 2) | fraction.str.slice(2).str.contains(r"^0+$")
    if spreadsheet:
        as_float = number.cast(pl.Float64, strict=False)
        exact = exact | ((as_float * 100 - (as_float * 100).round(0)).abs() < 1e-4)
    value = pl.when(exact).then(number).cast(pl.Decimal(38, 12), strict=False).round(2).cast(MONEY_DTYPE, strict=False)
    value = pl.when(text.str.contains(r"^\(.*\)$|-")).then(-value).otherwise(value)
    too_precise = number.is_not_null() & ~exact
    return value, too_precise.fill_null(False), (shaped & ambiguous).fill_null(False)


def money_expr(expr: pl.Expr, *, style: str | None = None, spreadsheet: bool = True) -> pl.Expr:
    """Parse money text to ``Decimal(18, 2)``; null when blank, not a number, ambiguous or
    more precise than a cent (see :func:`money_parts`).

    Accepts ``$1,234.56``, ``1234.5``, ``(1,234.56)`` (negative), ``-1,234.56``,
    ``1.234,56`` (EU), ``USD 12.00``, ``1,234.56-`` (trailing minus).
    """
    return money_parts(expr, style=style, spreadsheet=spreadsheet)[0]


def parse_money(expr: pl.Expr, column: str) -> tuple[pl.Expr, pl.Expr]:
    """Money column and its problem ("amount 'twelve' is not a number")."""
    text = _blank_to_null(expr)
    value = money_expr(expr)
    problem = pl.when(text.is_not_null() & value.is_null()).then(
        pl.format("{} '{}' is not a number", pl.lit(label(column)), text)
    )
    return value, problem


def parse_double(expr: pl.Expr, column: str) -> tuple[pl.Expr, pl.Expr]:
    """A plain decimal number (exchange rates): ``1.0834``, ``1,0834`` (EU)."""
    text = _blank_to_null(expr)
    dotted = pl.when(text.str.contains(r"^-?\d+,\d+$")).then(text.str.replace(",", ".")).otherwise(text.str.replace_all(",", ""))
    value = pl.when(dotted.str.contains(r"^-?\d*\.?\d+([eE][-+]?\d+)?$")).then(dotted).cast(pl.Float64, strict=False)
    problem = pl.when(text.is_not_null() & value.is_null()).then(
        pl.format("{} '{}' is not a number", pl.lit(label(column)), text)
    )
    return value, problem


def parse_integer(expr: pl.Expr, column: str) -> tuple[pl.Expr, pl.Expr]:
    """A whole number (``terms_days``); ``30.0`` is accepted as 30."""
    text = _blank_to_null(expr)
    value = pl.when(text.str.contains(r"^-?\d+(\.0+)?$")).then(text.str.replace(r"\.0+$", "")).cast(pl.Int32, strict=False)
    problem = pl.when(text.is_not_null() & value.is_null()).then(
        pl.format("{} '{}' is not a whole number", pl.lit(label(column)), text)
    )
    return value, problem


_TRUE = ("true", "t", "yes", "y", "1", "x")
_FALSE = ("false", "f", "no", "n", "0")


def parse_boolean(expr: pl.Expr, column: str) -> tuple[pl.Expr, pl.Expr]:
    """yes/no, true/false, 1/0, y/n, x; blank -> false (a flag nobody ticked)."""
    text = _blank_to_null(expr).str.to_lowercase()
    value = (
        pl.when(text.is_null()).then(False)
        .when(text.is_in(_TRUE)).then(True)
        .when(text.is_in(_FALSE)).then(False)
        .otherwise(None)
    )
    problem = pl.when(text.is_not_null() & value.is_null()).then(
        pl.format("{} '{}' is not yes or no", pl.lit(label(column)), _blank_to_null(expr))
    )
    return value, problem


@dataclass(frozen=True)
class DateChoice:
    """Which layout a date column was read with, and why (for the load's warnings)."""

    column: str
    family: str | None        # key of DATE_FAMILIES, "Excel serial", or None (column empty)
    ambiguous_with: str | None  # another family that also read every value
    failures: int             # non-blank values the chosen layout could not read
    time_layouts: tuple[str, ...] | None = None  # timestamps: the time-of-day layouts present (None = try all)


def _date_text(expr: pl.Expr) -> pl.Expr:
    # "2024-01-05T00:00:00Z", "2024-01-05 00:00" -> the date part; time of day is not a date's business.
    return _blank_to_null(expr).str.replace(
        r"[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([AaPp][Mm])?\s*(Z|[+-]\d{2}:?\d{2}|UTC|GMT)?$", ""
    )


def _date_by_family(text: pl.Expr, family: str) -> pl.Expr:
    if family == "Excel serial":
        serial = pl.when(text.str.contains(r"^\d{4,5}(\.0+)?$")).then(text.str.replace(r"\.0+$", "")).cast(pl.Int64, strict=False)
        return _EXCEL_EPOCH + pl.duration(days=serial)
    parsed = text.str.to_date(DATE_FAMILIES[family], strict=False)
    return pl.when(parsed.dt.year() >= _EARLIEST_YEAR).then(parsed)


def _ts_text(expr: pl.Expr) -> pl.Expr:
    # "2024-01-05T10:11:12Z" -> "2024-01-05 10:11:12+00:00"; an offset is kept and converted to UTC.
    return (
        _blank_to_null(expr)
        .str.replace(r"\s*(Z|UTC|GMT)$", "+00:00")
        .str.replace(r"\s+([+-]\d{2}:?\d{2})$", "$1")
        .str.replace("T", " ")
    )


_ALL_TIME_LAYOUTS = (*(suffix + "%z" for suffix in _TIME_SUFFIXES), *_TIME_SUFFIXES, "")
# What each time-of-day layout looks like at the end of a value (after _ts_text).
_OFFSET = r"(?:[+-]\d{2}:?\d{2})"
_TIME_LAYOUT_SHAPES = {
    " %H:%M:%S%.f%z": rf"\d:\d{{2}}:\d{{2}}\.\d+{_OFFSET}$",
    " %H:%M:%S%z": rf"\d:\d{{2}}:\d{{2}}{_OFFSET}$",
    " %H:%M%z": rf"\s\d{{1,2}}:\d{{2}}{_OFFSET}$",
    " %H:%M:%S%.f": r"\d:\d{2}:\d{2}\.\d+$",
    " %H:%M:%S": r"\d:\d{2}:\d{2}$",
    " %H:%M": r"\s\d{1,2}:\d{2}$",
}


def time_layouts_present(frame: pl.DataFrame, column: str) -> tuple[str, ...]:
    """The time-of-day layouts (with or without a UTC offset) that occur in a timestamp column.

    Parsing tries only these: each layout tried costs a full pass over the column.
    """
    return _time_layouts_in(frame.select(_ts_text(pl.col(column)).alias(column)), column)


def _time_layouts_in(normalized: pl.DataFrame, column: str) -> tuple[str, ...]:
    text = pl.col(column)
    flags = normalized.select(
        *(text.str.contains(shape).any().alias(layout) for layout, shape in _TIME_LAYOUT_SHAPES.items()),
        (~text.str.contains(":", literal=True)).any().alias(""),
    ).row(0, named=True)
    return tuple(layout for layout in _ALL_TIME_LAYOUTS if flags[layout])


def _timestamp_by_family(text: pl.Expr, family: str, time_layouts: tuple[str, ...] | None = None) -> pl.Expr:
    if family == "Excel serial":
        number = pl.when(text.str.contains(r"^\d{4,5}(\.\d+)?$")).then(text).cast(pl.Float64, strict=False)
        return pl.lit(_EXCEL_EPOCH_DATETIME) + pl.duration(milliseconds=(number * 86_400_000).round(0).cast(pl.Int64))
    layout = DATE_FAMILIES[family]
    variants = []
    for suffix in _ALL_TIME_LAYOUTS if time_layouts is None else time_layouts:
        if suffix == "":
            variants.append(text.str.to_date(layout, strict=False).cast(pl.Datetime("us")))
        elif suffix.endswith("%z"):
            variants.append(
                text.str.to_datetime(layout + suffix, strict=False, time_unit="us")
                .dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            )
        else:
            variants.append(text.str.to_datetime(layout + suffix, strict=False, time_unit="us"))
    if not variants:
        return pl.lit(None, dtype=pl.Datetime("us"))
    return pl.coalesce(variants) if len(variants) > 1 else variants[0]


def choose_date_family(
    frame: pl.DataFrame, column: str, *, allow_excel_serial: bool = False, timestamp: bool = False
) -> DateChoice:
    """Pick the one layout that reads the whole column.

    The layout that parses every non-blank value wins; when month-first and day-first both
    do (no day above 12 anywhere), month-first is used and the choice is reported as
    ambiguous. When none reads everything, the one with fewest failures is used and the
    failing values become rejected rows.
    """
    families = list(DATE_FAMILIES)
    if allow_excel_serial:
        families.append("Excel serial")
    # Normalize the text once (one pass), then try the layouts on it.
    frame = frame.select((_ts_text if timestamp else _date_text)(pl.col(column)).alias(column))
    text = pl.col(column)
    time_layouts = _time_layouts_in(frame, column) if timestamp else None

    def parse(value: pl.Expr, family: str) -> pl.Expr:
        return _timestamp_by_family(value, family, time_layouts) if timestamp else _date_by_family(value, family)

    def failures(data: pl.DataFrame, candidates: list[str]) -> dict[str, int]:
        return data.select(
            text.is_not_null().sum().alias("__present"),
            *[(text.is_not_null() & parse(text, f).is_null()).sum().alias(f) for f in candidates],
        ).row(0, named=True)

    # Trying every layout on a million values is slow: rank them on a sample, then count the
    # front-runners (the ones the sample cannot tell apart) on the whole column.
    if frame.height > _CHOICE_SAMPLE:
        sample_counts = failures(frame.sample(_CHOICE_SAMPLE, seed=0), families)
        sample_counts.pop("__present")
        fewest = min(sample_counts.values())
        candidates = [f for f in families if sample_counts[f] <= fewest]
    else:
        candidates = families
    counts = failures(frame, candidates)
    present = counts.pop("__present")
    if present == 0:
        return DateChoice(column, None, None, 0, time_layouts)
    ranked = sorted(candidates, key=lambda f: (counts[f], families.index(f)))
    best = ranked[0]
    ambiguous = next((f for f in ranked[1:] if counts[f] == counts[best] == 0), None)
    return DateChoice(column, best, ambiguous, int(counts[best]), time_layouts)


def parse_date(expr: pl.Expr, column: str, family: str | None) -> tuple[pl.Expr, pl.Expr]:
    """Date column read with ``family`` (from :func:`choose_date_family`) and its problem."""
    text = _date_text(expr)
    if family is None:
        return pl.lit(None, dtype=pl.Date), pl.lit(None, dtype=pl.String)
    value = _date_by_family(text, family)
    problem = pl.when(text.is_not_null() & value.is_null()).then(
        pl.format("{} '{}' is not a date", pl.lit(label(column)), _blank_to_null(expr))
    )
    return value, problem


def parse_timestamp(
    expr: pl.Expr, column: str, family: str | None, *, time_layouts: tuple[str, ...] | None = None
) -> tuple[pl.Expr, pl.Expr]:
    """Timestamp (UTC, naive) read with ``family``; a date alone means midnight; an offset is
    converted to UTC. ``time_layouts`` (from :func:`choose_date_family`) limits what is tried."""
    text = _ts_text(expr)
    if family is None:
        return pl.lit(None, dtype=pl.Datetime("us")), pl.lit(None, dtype=pl.String)
    value = _timestamp_by_family(text, family, time_layouts)
    problem = pl.when(text.is_not_null() & value.is_null()).then(
        pl.format("{} '{}' is not a date and time", pl.lit(label(column)), _blank_to_null(expr))
    )
    return value, problem


def terms_days_expr(terms_code: pl.Expr) -> pl.Expr:
    """Days until due from a terms code: ``NET30``, ``Net 30``, ``2/10 Net 30``, ``Due on receipt``."""
    code = _blank_to_null(terms_code).str.to_lowercase()
    net = code.str.extract(r"net\s*-?\s*(\d{1,3})", 1).cast(pl.Int32, strict=False)
    immediate = code.str.contains(r"receipt|^cod$|cash on delivery|immediate|^due now$")
    bare_number = code.str.extract(r"^(\d{1,3})\s*(days?)?$", 1).cast(pl.Int32, strict=False)
    return pl.coalesce(net, pl.when(immediate).then(pl.lit(0, dtype=pl.Int32)), bare_number)


def polars_dtype(duckdb_type: str) -> pl.DataType:
    """The Polars type ingest produces for a canonical DuckDB type."""
    return {
        "VARCHAR": pl.String(),
        "DATE": pl.Date(),
        "TIMESTAMP": pl.Datetime("us"),
        "INTEGER": pl.Int32(),
        "DOUBLE": pl.Float64(),
        "BOOLEAN": pl.Boolean(),
        MONEY: MONEY_DTYPE,
    }[duckdb_type]
