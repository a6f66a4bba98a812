"""The one CSV writer: every CSV Recoup writes (worklist exports, scores, outcome templates).

UTF-8 with a byte-order mark (Excel then opens accents correctly), ``\\r\\n`` line ends, and
formula-safe: a spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return as a formula (a customer named ``=HYPERLINK(...)`` or an invoice numbered
``=INJ-00-0`` would), so text cells starting with one of those get a leading single quote.
Numbers are written as numbers, dates as ISO dates, nulls as empty cells.

The synthetic-world writer (:mod:`dashboard.synthetic.writer`) is not a report for people but
the canonical input files the loader reads back byte for byte, so it writes plain CSV.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


def neutralize_cell(value: str) -> str:
    """A text cell a spreadsheet will show as text: formula-like starts get a leading quote."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, str):
        return neutralize_cell(value)
    if isinstance(value, (list, tuple)):
        return neutralize_cell("; ".join("" if v is None else str(v) for v in value))
    return str(value)


def to_csv_bytes(frame: pl.DataFrame) -> bytes:
    """``frame`` as CSV bytes: UTF-8 with a BOM, formula-safe (see the module docstring)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([neutralize_cell(name) for name in frame.columns])
    for row in frame.iter_rows():
        writer.writerow([_cell(value) for value in row])
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


def write_csv(frame: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` to ``path`` with :func:`to_csv_bytes`, whole or not at all (a temporary
    file beside it is renamed into place). Raises ``OSError`` when the folder cannot be written."""
    return write_file_atomically(to_csv_bytes(frame), path)


def write_file_atomically(data: bytes, path: str | os.PathLike[str]) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, renamed into place,
    so a reader never sees half a file. Raises ``OSError`` (the folder is missing or read-only,
    the disk is full); no temporary file is left behind."""
    target = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
