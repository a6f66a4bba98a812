"""Figures as people read them: money with its currency, days with their unit, percentages,
dates as dates, "—" for nothing, and tables whose columns and values speak the vocabulary.

Pure (no Streamlit): :func:`table_for_people` returns a :class:`PeopleTable` (the frame to show
and how to show each column) that ``dashboard.ui.table`` draws; the sentence helpers
(:func:`money`, :func:`days`, :func:`percent`, :func:`day`) are used by pages, messages and
reasons alike, so a figure reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from dashboard.config import base_currency
from dashboard.vocabulary import COLUMNS, EMPTY, VALUE_LABELS, column_kind, column_label


# -- one figure ---------------------------------------------------------------------------------
def money(value: float | None, *, currency: str | None = None, signed: bool = False, unit: bool = True) -> str:
    """``1612032.47`` → "1,612,032.47 USD" (base currency unless ``currency``); ``None`` → "—"."""
    if value is None:
        return EMPTY
    text = f"{value:+,.2f}" if signed else f"{value:,.2f}"
    text = text.replace("-", "−")
    return f"{text} {currency or base_currency()}" if unit else text


def short_money(value: float | None, *, currency: str | None = None, signed: bool = False) -> str:
    """Money in thousands or millions for a headline: 157,432 → "157k USD", 1,612,032 → "1.61M USD"."""
    if value is None:
        return EMPTY
    size = abs(value)
    sign = ("+" if value > 0 else "−" if value < 0 else "") if signed else ("−" if value < 0 else "")
    if size >= 1e6:
        figure = f"{size / 1e6:,.2f}M"
    elif size >= 1e4:
        figure = f"{size / 1e3:,.0f}k"
    elif size >= 1e3:
        figure = f"{size / 1e3:,.1f}k"
    else:
        figure = f"{size:,.0f}"
    return f"{sign}{figure} {currency or base_currency()}"


def days(value: float | None, *, signed: bool = False) -> str:
    """``34.758`` → "34.8 days"; ``None`` → "—"."""
    if value is None:
        return EMPTY
    text = f"{value:+,.1f}" if signed else f"{value:,.1f}"
    return f"{text.replace('-', '−')} days"


def percent(value: float | None, *, share: bool = False, signed: bool = False, decimals: int = 1) -> str:
    """``84.41`` → "84.4%" (``share=True`` reads 0–1: ``0.8441`` → "84.4%"); ``None`` → "—"."""
    if value is None:
        return EMPTY
    number = value * 100 if share else value
    text = f"{number:+,.{decimals}f}%" if signed else f"{number:,.{decimals}f}%"
    return text.replace("-", "−")


def points(value: float | None) -> str:
    """A change of a percentage: ``12.1`` → "+12.1 pts"."""
    return EMPTY if value is None else f"{value:+,.1f} pts".replace("-", "−")


def day(value: date | datetime | None) -> str:
    """``date(2026, 9, 30)`` → "30 Sep 2026"; ``None`` → "—"."""
    if value is None:
        return EMPTY
    return f"{value:%-d %b %Y}"


def day_range(start: date, end: date) -> str:
    """Two days as a range: "1–4 Oct 2026", "28 Sep – 4 Oct 2026"."""
    if start.year != end.year:
        return f"{day(start)} – {day(end)}"
    if start.month != end.month:
        return f"{start:%-d %b} – {day(end)}"
    return f"{start:%-d}–{day(end)}"


def week_label(start: date, end: date) -> str:
    """A forecast week: "5–11 Oct 2026", or "1–4 Oct 2026 (4 days)" for a part of a week."""
    length = (end - start).days + 1
    text = day_range(start, end)
    return text if length == 7 else f"{text} ({length} day{'s' if length != 1 else ''})"


def count(value: int | None, singular: str, plural: str | None = None) -> str:
    """``count(1, "invoice")`` → "1 invoice"; ``count(552, "invoice")`` → "552 invoices"."""
    if value is None:
        return EMPTY
    return f"{value:,} {singular if value == 1 else (plural or singular + 's')}"


# -- tables -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableColumn:
    """One shown column: its name in :attr:`PeopleTable.frame`, label, kind and help."""

    name: str
    label: str
    kind: str
    help: str | None = None


@dataclass(frozen=True)
class PeopleTable:
    """A frame ready for people: values in words, dates as dates, empties as "—", and how each
    column is shown (money with the currency in its label, shares as percentages, ...)."""

    frame: pl.DataFrame
    columns: tuple[TableColumn, ...]

    def labels(self) -> list[str]:
        return [c.label for c in self.columns]


def _kind_of(name: str, dtype: pl.DataType, kinds: Mapping[str, str]) -> str:
    if name in kinds:
        return kinds[name]
    if name in COLUMNS:
        return column_kind(name)
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    if dtype == pl.Boolean:
        return "flag"
    if dtype.is_integer():
        return "count"
    if dtype.is_float():
        return "number"
    return "text"


def _as_text(expr: pl.Expr, kind: str) -> pl.Expr:
    """A column with empty cells as text, formatted as its kind would be (Streamlit shows an
    empty number or date cell as "None")."""
    if kind in ("money", "document_money", "number"):
        text = expr.cast(pl.Float64).map_elements(lambda v: f"{v:,.2f}".replace("-", "−"), return_dtype=pl.String)
    elif kind == "days":
        text = expr.cast(pl.Float64).map_elements(lambda v: f"{v:,.1f}".replace("-", "−"), return_dtype=pl.String)
    elif kind == "score":
        text = expr.cast(pl.Float64).map_elements(lambda v: f"{v:.3f}".replace("-", "−"), return_dtype=pl.String)
    elif kind == "count":
        text = expr.cast(pl.Float64).map_elements(lambda v: f"{v:,.0f}".replace("-", "−"), return_dtype=pl.String)
    elif kind in ("share", "percent", "probability"):
        text = expr.cast(pl.Float64).map_elements(lambda v: f"{v:,.1f}%".replace("-", "−"), return_dtype=pl.String)
    elif kind == "date":
        text = expr.map_elements(day, return_dtype=pl.String)
    elif kind == "datetime":
        text = expr.map_elements(lambda v: f"{v:%-d %b %Y %H:%M}", return_dtype=pl.String)
    elif kind == "flag":
        text = expr.map_elements(lambda v: "yes" if v else "no", return_dtype=pl.String)
    else:
        text = expr.cast(pl.String)
    return text.fill_null(EMPTY)


def table_for_people(
    frame: pl.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    kinds: Mapping[str, str] | None = None,
    helps: Mapping[str, str] | None = None,
    currency: str | None = None,
) -> PeopleTable:
    """``frame`` (its ``columns``, default all) as people should read it.

    Vocabulary values become display names (``chronic_late`` → "Chronically late"); a
    timestamp that is always midnight becomes a date; shares (0–1) and probabilities become
    percentages; lists are joined; a column with empty cells becomes text with "—" in them;
    text empties become "—". ``labels`` / ``kinds`` / ``helps`` override the vocabulary's
    column labels (:data:`dashboard.vocabulary.COLUMNS`), kinds and help texts; money columns
    name ``currency`` (default the base currency) in their label.
    """
    labels, kinds, helps = dict(labels or {}), dict(kinds or {}), dict(helps or {})
    chosen = list(columns) if columns is not None else list(frame.columns)
    out: list[pl.Expr] = []
    shown: list[TableColumn] = []
    for name in chosen:
        dtype = frame.schema[name]
        expr = pl.col(name)
        if isinstance(dtype, pl.List):
            expr = expr.list.eval(pl.element().cast(pl.String)).list.join(", ")
            dtype = pl.String()
        elif isinstance(dtype, pl.Struct | pl.Object):
            continue
        if isinstance(dtype, pl.Datetime):
            values = frame[name].drop_nulls()
            if values.len() == 0 or (values.dt.truncate("1d") == values).all():
                expr, dtype = expr.cast(pl.Date), pl.Date()
        kind = _kind_of(name, dtype, kinds)
        if dtype.is_float():
            expr = expr.fill_nan(None)
        if name in VALUE_LABELS and dtype == pl.String:
            expr = expr.replace(VALUE_LABELS[name])
        if kind in ("share", "probability"):
            expr = expr.cast(pl.Float64) * 100
        has_empty = frame[name].null_count() > 0 or (dtype.is_float() and bool(frame[name].is_nan().any()))
        if kind == "text" or dtype == pl.String:
            expr, kind = expr.cast(pl.String).fill_null(EMPTY), "text"
        elif has_empty:
            expr, kind = _as_text(expr, kind), f"text_{kind}"
        label = labels.get(name) or column_label(name, currency=currency)
        default_help = COLUMNS[name].help if name in COLUMNS else None
        out.append(expr.alias(name))
        shown.append(TableColumn(name, label, kind, helps.get(name, default_help)))
    return PeopleTable(frame.select(out) if out else pl.DataFrame(), tuple(shown))
