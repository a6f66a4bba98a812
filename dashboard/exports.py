"""Worklist exports: CSV (UTF-8 with BOM, formula-safe), XLSX (formatted) and a JSON action queue.

:func:`export_worklist` returns one export file's bytes, and records the exported lines in
``actions`` when asked (so the next build that day does not recommend them again); the JSON
layout is documented by ``docs/worklist.schema.json``. CSV goes through the one CSV writer
(:mod:`dashboard.csv_writer`, formula guard included); XLSX cells are written as text, never
as formulas.

Keys or names: the CSV, XLSX and JSON files are data other tools read back (a dialler, a CRM,
this app's outcome import by ``line_id``), so their columns and values keep the stable keys of
:mod:`dashboard.vocabulary` (``segment = chronic_late``, ``channel = sms``). What a person reads in
them — ``reasons`` and the email drafts — is in words and names money with its currency.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter

from dashboard.csv_writer import to_csv_bytes
from dashboard.errors import WorklistError
from dashboard.policy import ensure_default_policy
from dashboard.store import Store, utcnow
from dashboard.worklist import OUTCOMES, WorklistResult, record_export

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "worklist.schema.json"
SCHEMA_ID = "https://recoup.example/schemas/worklist-1.json"
FORMATS: tuple[str, ...] = ("csv", "xlsx", "json")
# The flat columns of the CSV and XLSX exports, in order (invoices become a list of ids).
FLAT_COLUMNS: tuple[str, ...] = (
    "line_id",
    "scheduled_date",
    "queue_position",
    "collector",
    "customer_id",
    "customer_name",
    "email",
    "action",
    "channel",
    "tone",
    "template_id",
    "requires_review",
    "invoice_count",
    "invoice_ids",
    "open_amount",
    "currency",
    "max_days_past_due",
    "oldest_due_date",
    "p_paid_horizon",
    "response_rate",
    "response_contacts",
    "expected_cash_accelerated",
    "effort_minutes",
    "priority",
    "segment",
    "risk_tier",
    "rule_id",
    "broken_promise",
    "probability_source",
    "reasons",
)
_MONEY_COLUMNS = ("open_amount", "expected_cash_accelerated")
_SHARE_COLUMNS = ("p_paid_horizon", "response_rate")


def flat_lines(lines: pl.DataFrame) -> pl.DataFrame:
    """Worklist lines as a flat table (one row per customer; invoice ids joined by ``;``)."""
    return lines.with_columns(
        invoice_ids=pl.col("invoices").list.eval(pl.element().struct.field("invoice_id")).list.join("; "),
        p_paid_horizon=pl.col("p_paid_horizon").round(4),
        response_rate=pl.col("response_rate").round(4),
        open_amount=pl.col("open_amount").round(2),
        expected_cash_accelerated=pl.col("expected_cash_accelerated").round(2),
        priority=pl.col("priority").round(4),
    ).select(FLAT_COLUMNS)


def to_xlsx_bytes(frame: pl.DataFrame, *, sheet_name: str = "Worklist") -> bytes:
    """An XLSX workbook: bold header, frozen first row, autofilter, money/percent/date formats."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    sheet = workbook.add_worksheet(sheet_name[:31])
    header = workbook.add_format({"bold": True, "bg_color": "#DDE6F0", "border": 1, "text_wrap": True, "valign": "top"})
    money = workbook.add_format({"num_format": "#,##0.00"})
    share = workbook.add_format({"num_format": "0.0%"})
    day = workbook.add_format({"num_format": "yyyy-mm-dd"})
    number = workbook.add_format({"num_format": "0.00"})
    for col, name in enumerate(frame.columns):
        sheet.write_string(0, col, name, header)
        dtype = frame.schema[name]
        width = max(len(name), 10)
        if name in _MONEY_COLUMNS:
            cell_format = money
        elif name in _SHARE_COLUMNS:
            cell_format = share
        elif dtype == pl.Date:
            cell_format = day
        elif dtype.is_float():
            cell_format = number
        else:
            cell_format = None
        for row, value in enumerate(frame[name].to_list(), start=1):
            if value is None:
                sheet.write_blank(row, col, None, cell_format)
            elif isinstance(value, bool):
                sheet.write_boolean(row, col, value)
            elif isinstance(value, (int, float)):
                sheet.write_number(row, col, value, cell_format)
            elif isinstance(value, (date, datetime)):
                sheet.write_datetime(row, col, datetime(value.year, value.month, value.day), cell_format)
            else:
                text = str(value)
                sheet.write_string(row, col, text)
                width = max(width, min(len(text), 60))
        sheet.set_column(col, col, min(width + 2, 62))
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(frame.height, 1), max(len(frame.columns) - 1, 0))
    workbook.close()
    return buffer.getvalue()


def to_json_dict(result: WorklistResult, lines: pl.DataFrame, *, generated: datetime | None = None) -> dict[str, Any]:
    """The JSON action queue (see ``docs/worklist.schema.json``)."""
    records = json.loads(lines.select([c for c in lines.columns if c not in ("as_of",)]).write_json())
    for record in records:
        record["invoices"] = [
            {
                k: invoice[k]
                for k in (
                    "invoice_id",
                    "invoice_date",
                    "due_date",
                    "open_amount",
                    "open_amount_base",
                    "days_past_due",
                    "dispute_open",
                    "p_paid_horizon",
                    "rule_id",
                )
            }
            for invoice in record["invoices"]
        ]
    return {
        "$schema": SCHEMA_ID,
        "kind": "recoup.worklist",
        "version": 1,
        "as_of": result.as_of.isoformat(),
        "generated": (generated or utcnow()).replace(microsecond=0).isoformat() + "Z",
        "policy_version": result.policy_version,
        "model_id": result.model_id,
        "probability_source": result.probability_source,
        "capacity_per_collector": result.capacity_per_collector,
        "lines": records,
    }


def to_json_bytes(result: WorklistResult, lines: pl.DataFrame) -> bytes:
    return (json.dumps(to_json_dict(result, lines), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def load_json_schema() -> dict[str, Any]:
    """The documented JSON Schema of the JSON export."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def format_from_path(path: str | Path) -> str:
    """``csv``, ``xlsx`` or ``json`` from a file name; refuses anything else, quoting it."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        msg = f"The worklist can be exported as .csv, .xlsx or .json; got {str(path)!r}."
        raise WorklistError(msg)
    return suffix


def export_worklist(
    store: Store,
    result: WorklistResult,
    *,
    export_format: str,
    lines: pl.DataFrame | None = None,
    record: bool = True,
) -> bytes:
    """The export file's bytes, after recording the exported lines in ``actions``.

    Parameters
    ----------
    store
        Where the export is recorded.
    result
        The built worklist.
    export_format
        ``csv``, ``xlsx`` or ``json``.
    lines
        The lines to export; default today's lines (``result.today()``).
    record
        Record the lines as exported (default). A preview passes ``False``.
    """
    if export_format not in FORMATS:
        msg = f"Unknown export format {export_format!r}; use one of {', '.join(FORMATS)}."
        raise WorklistError(msg)
    chosen = result.today() if lines is None else lines
    if record and result.policy_version is None and chosen.height:
        # the shipped default policy was used: save it as a version so this export can be explained
        result = replace(result, policy_version=ensure_default_policy(store))
    if export_format == "csv":
        data = to_csv_bytes(flat_lines(chosen))
    elif export_format == "xlsx":
        data = to_xlsx_bytes(flat_lines(chosen))
    else:
        data = to_json_bytes(result, chosen)
    if record:
        record_export(store, result, chosen, export_format=export_format)
    return data


# -- outcomes coming back --------------------------------------------------------------------
OUTCOME_COLUMNS: tuple[str, ...] = ("action_id", "outcome", "reason", "promise_date", "promise_amount")


def outcomes_template_csv(recorded: pl.DataFrame) -> bytes:
    """A CSV to fill in and import back: the recorded lines (``action_id``, ``customer_id``,
    ``action``) with empty ``outcome``, ``reason`` and ``promise_date`` columns."""
    template = recorded.select(
        "action_id",
        "customer_id",
        "action",
        outcome=pl.lit(None, pl.String),
        reason=pl.lit(None, pl.String),
        promise_date=pl.lit(None, pl.String),
    )
    return to_csv_bytes(template)


def read_outcomes_csv(source: str | Path | bytes) -> pl.DataFrame:
    """Read an outcomes file: ``action_id`` (the export's ``line_id``), ``outcome`` (one of
    done, skipped, overridden, promise, paid), optional ``reason``, ``promise_date``,
    ``promise_amount``. An exported CSV with an added ``outcome`` column is accepted as is.
    """
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    text = raw.decode("utf-8-sig", errors="replace")
    try:
        frame = pl.read_csv(io.StringIO(text), infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        msg = f"The outcomes file could not be read as CSV: {exc}"
        raise WorklistError(msg) from exc
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    if "action_id" not in frame.columns and "line_id" in frame.columns:
        frame = frame.rename({"line_id": "action_id"})
    missing = [c for c in ("action_id", "outcome") if c not in frame.columns]
    if missing:
        msg = (
            f"The outcomes file needs the columns action_id (or line_id) and outcome "
            f"(one of {', '.join(OUTCOMES)}); missing {missing!r}, got {frame.columns!r}."
        )
        raise WorklistError(msg)
    frame = frame.with_columns(pl.col("action_id").str.strip_chars().str.strip_prefix("'"))
    frame = frame.filter(pl.col("outcome").is_not_null() & (pl.col("outcome").str.strip_chars() != ""))
    return frame.select([c for c in OUTCOME_COLUMNS if c in frame.columns])
