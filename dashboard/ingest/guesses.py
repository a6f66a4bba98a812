"""Header guesses checked against the values under them.

A heading that only *looks like* a Recoup column by name (a fuzzy match) is offered to the
user only when its values agree: an id whose value is the same on every row is a constant
(the seller's own account number in Wave and Invoice2go exports), not a customer or invoice
id; a date column must hold dates and an amount column numbers. A file without an invoice
number heading may still have one under another name ("Details": INV-1, INV-2 ...): a column
of unique, number-like values is offered as the invoice id — as a guess, to be confirmed.
"""

from __future__ import annotations

import polars as pl

from dashboard.ingest import normalize as nz
from dashboard.ingest.headers import ColumnMatch
from dashboard.schema import CANONICAL_COLUMNS, MONEY

#: Match methods that are guesses: a person confirms them before they are used.
GUESSES: tuple[str, ...] = ("fuzzy", "values")
_IDS = {"customer_id", "invoice_id", "payment_id", "adjustment_id", "dispute_id", "contact_id", "note_id"}
_ID_LIKE = r"^[A-Za-z]{0,8}[-#/ .:]?\d{1,12}[A-Za-z]?$"
_SAMPLE = 5000
_MOSTLY = 0.8


def _values(frame: pl.DataFrame, column: str) -> pl.Series:
    sample = frame.get_column(column).head(_SAMPLE).cast(pl.String).str.strip_chars()
    return sample.filter(sample.is_not_null() & (sample != ""))


def _contradiction(frame: pl.DataFrame, source: str, target: str, table: str) -> str | None:
    """Why the values of ``source`` cannot be ``target`` (None when they can)."""
    values = _values(frame, source)
    if values.len() == 0:
        return "is empty"
    if target in _IDS and frame.height > 1 and values.n_unique() == 1:
        return f"holds the same value ({values[0]!r}) on every row"
    kind = CANONICAL_COLUMNS.get(table, {}).get(target, ("VARCHAR", False))[0]
    probe = pl.DataFrame({"v": values})
    if kind == MONEY:
        share = probe.select(nz.money_expr(pl.col("v")).is_not_null().mean()).item()
        if share < _MOSTLY:
            return "does not hold amounts"
    elif kind in ("DATE", "TIMESTAMP"):
        choice = nz.choose_date_family(probe, "v", allow_excel_serial=True, timestamp=kind == "TIMESTAMP")
        if choice.family is None or choice.failures > (1 - _MOSTLY) * values.len():
            return "does not hold dates"
    return None


def _looks_like_ids(frame: pl.DataFrame, column: str) -> bool:
    values = _values(frame, column)
    if values.len() < max(1, 0.95 * min(frame.height, _SAMPLE)):
        return False
    return values.n_unique() >= 0.95 * values.len() and values.str.contains(_ID_LIKE).mean() >= _MOSTLY


def check_guesses(frame: pl.DataFrame, matches: list[ColumnMatch], table: str, *, notes: list[str]) -> list[ColumnMatch]:
    """Drop fuzzy matches the values contradict (saying why in ``notes``) and, for invoices
    without an invoice id heading, offer a column of unique number-like values as one."""
    checked: list[ColumnMatch] = []
    for m in matches:
        if m.method == "fuzzy" and m.target:
            why = _contradiction(frame, m.source, m.target, table)
            if why is not None:
                note = f"column '{m.source}' looks like {nz.label(m.target)} by its name but {why}, so it was not used"
                if note not in notes:
                    notes.append(note)
                checked.append(ColumnMatch(m.source, None, "unmatched", 0.0))
                continue
        checked.append(m)
    targets = {m.target for m in checked if m.target}
    if table == "invoices" and "invoice_id" not in targets:
        for position, m in enumerate(checked):
            if m.target is None and m.source in frame.columns and _looks_like_ids(frame, m.source):
                checked[position] = ColumnMatch(m.source, "invoice_id", "values", 0.0)
                break
    return checked


def describe_guess(match: ColumnMatch) -> str:
    """``'Details' looks like invoice id (its values look like invoice numbers)``."""
    why = "its values look like invoice numbers" if match.method == "values" else f"{match.score:.0f}% match"
    return f"'{match.source}' looks like {nz.label(match.target or '')} ({why})"
