"""Reading an extract: bytes in, a frame of text columns out (nothing typed yet).

CSV (utf-8, utf-8 with BOM, cp1252 fallback; delimiter sniffed among , ; tab |), XLSX
(fastexcel) and Parquet. Unusable files raise :class:`UnreadableFileError` with a plain reason.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from dashboard import config
from dashboard.errors import RecoupError, UnreadableFileError
from dashboard.ingest.reports import ReportLayout, looks_like_report, read_report

ROW_COLUMN = "__row_number"  # added by read_extract; not a source column
_DELIMITERS = (",", ";", "\t", "|")
_XLSX_MAGIC = b"PK\x03\x04"
_PARQUET_MAGIC = b"PAR1"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls


@dataclass
class RawExtract:
    """A file as read: every column text, headers as written in the file."""

    file_name: str
    sha256: str
    source_format: str  # "csv", "xlsx", "parquet" (the loader adds "canonical-csv")
    frame: pl.DataFrame
    encoding: str | None = None
    delimiter: str | None = None
    report: ReportLayout | None = None  # set when the file is an accounting-package report


def read_bytes(source: Path | bytes, *, file_name: str | None = None) -> tuple[bytes, str]:
    """The file's bytes and its display name; refuses files over ``MAX_UPLOAD_BYTES`` unread."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        name = file_name or "upload"
        size = len(data)
    else:
        path = Path(source)
        name = file_name or path.name
        if not path.is_file():
            msg = f"{name}: no such file {str(path)!r}"
            raise UnreadableFileError(msg)
        size = path.stat().st_size
        data = b""
    if size > config.MAX_UPLOAD_BYTES:
        msg = (
            f"{name} is {size / 1024 / 1024:,.1f} MB, over the {config.MAX_UPLOAD_BYTES / 1024 / 1024:,.0f} MB "
            "upload limit; split it, or raise RECOUP_MAX_UPLOAD_MB"
        )
        raise UnreadableFileError(msg)
    if not isinstance(source, bytes | bytearray | memoryview):
        data = Path(source).read_bytes()
    return _utf16_to_utf8(data, name), name


def _utf16_to_utf8(data: bytes, name: str) -> bytes:
    """Excel's "Unicode text" export is UTF-16 with a byte-order mark: read it as the text it is."""
    if not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data
    try:
        return data.decode("utf-16").encode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"{name} starts like a UTF-16 text file but is not valid UTF-16; export it again as CSV (UTF-8)"
        raise UnreadableFileError(msg) from exc


def sniff_format(data: bytes, file_name: str) -> str:
    """"csv", "xlsx" or "parquet", from the content first and the extension second."""
    suffix = Path(file_name).suffix.lower()
    if data.startswith(_PARQUET_MAGIC):
        return "parquet"
    if data.startswith(_XLSX_MAGIC):
        if suffix in (".xlsx", ".xlsm", ""):
            return "xlsx"
        msg = f"{file_name} is a compressed (zip or Excel) file, not a {suffix or 'text'} file; save it as .csv or .xlsx"
        raise UnreadableFileError(msg)
    if data.startswith(_OLE_MAGIC):
        msg = f"{file_name} is an old Excel .xls workbook; open it in Excel and save it as .xlsx or .csv"
        raise UnreadableFileError(msg)
    if suffix in (".xlsx", ".xlsm", ".parquet", ".pq"):
        msg = f"{file_name} has a {suffix} name but its content is not a {suffix[1:]} file"
        raise UnreadableFileError(msg)
    if suffix in (".pdf", ".doc", ".docx", ".zip", ".png", ".jpg", ".jpeg", ".json", ".xml"):
        msg = f"{file_name}: {suffix} files cannot be loaded; export the report as .csv, .xlsx or .parquet"
        raise UnreadableFileError(msg)
    return "csv"


def _refuse_binary(data: bytes, file_name: str) -> None:
    if b"\x00" in data[:65536]:
        msg = (
            f"{file_name} is not a text file (it contains binary data); it may be a spreadsheet or "
            "a PDF renamed to .csv — export it as CSV from the source system"
        )
        raise UnreadableFileError(msg)


def decode_cp1252(data: bytes, file_name: str) -> str:
    """The Windows-1252 reading of a file that is not UTF-8 (old Excel "CSV" exports)."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        msg = (
            f"{file_name} is in a character encoding Recoup cannot read "
            f"(byte {data[exc.start:exc.start + 1]!r} at position {exc.start:,}); save it as UTF-8 CSV"
        )
        raise UnreadableFileError(msg) from exc
    if any(ord(ch) < 32 and ch not in "\r\n\t" for ch in text[:65536]):
        msg = f"{file_name} is not a text file (it contains binary data); export it as CSV from the source system"
        raise UnreadableFileError(msg)
    return text


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the most, equally many, fields.

    Fields are counted the way a CSV reader sees them, so a delimiter inside quoted text
    ("Smith; Jones Ltd") does not count.
    """
    sample = text[:65536]
    if len(text) > 65536 and "\n" in sample:
        sample = sample[: sample.rfind("\n")]  # the last line of a cut-off sample may be partial
    best, best_key = ",", (-1, -1)
    for delimiter in _DELIMITERS:
        try:
            rows = [r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if any(c.strip() for c in r)][:20]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        consistent = sum(1 for r in rows if len(r) == len(rows[0]))
        key = (consistent, len(rows[0]))
        if key > best_key:
            best, best_key = delimiter, key
    return best


def _dedupe_headers(headers: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for header in headers:
        name = header.strip() or "column"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        result.append(name)
    return result


def _all_text(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.all().cast(pl.String))


def read_csv_bytes(data: bytes, file_name: str) -> tuple[pl.DataFrame, str, str]:
    """Parse CSV bytes with every column as text: UTF-8 (BOM or not), else Windows-1252.

    Returns the frame, the encoding and the delimiter. UTF-8 is checked by the reader itself,
    so a large file is never decoded twice.
    """
    _refuse_binary(data, file_name)
    encoding = "utf-8"
    if data.startswith(b"\xef\xbb\xbf"):
        data, encoding = data[3:], "utf-8-sig"
    delimiter = sniff_delimiter(data[:65536].decode("utf-8", errors="replace"))
    try:
        return _read_csv(data, delimiter), encoding, delimiter
    except pl.exceptions.ComputeError as exc:
        if "utf-8" not in str(exc).lower() and "utf8" not in str(exc).lower():
            msg = f"{file_name} could not be read as CSV ({str(exc).splitlines()[0]})"
            raise UnreadableFileError(msg) from exc
    text = decode_cp1252(data, file_name)
    delimiter = sniff_delimiter(text[:65536])
    return _read_csv(text.encode("utf-8"), delimiter), "cp1252", delimiter


def _read_csv(data: bytes, delimiter: str) -> pl.DataFrame:
    return pl.read_csv(
        data,
        separator=delimiter,
        infer_schema=False,
        has_header=True,
        truncate_ragged_lines=True,
        raise_if_empty=False,
    )


def _read_report(data: bytes, name: str, source_format: str) -> tuple[pl.DataFrame, ReportLayout, str | None] | None:
    encoding = None
    if source_format == "csv":
        _refuse_binary(data, name)
        encoding = "utf-8"
        if data.startswith(b"\xef\xbb\xbf"):
            data, encoding = data[3:], "utf-8-sig"
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            decode_cp1252(data, name)
            encoding = "cp1252"
    try:
        found = read_report(data, file_name=name, source_format=source_format, encoding="cp1252" if encoding == "cp1252" else "utf-8")
    except (RecoupError, TypeError, NameError, AttributeError):
        raise  # a refusal with its reason, or a programming error
    except Exception:  # noqa: BLE001 - not readable as a report grid: the plain reader tries (and explains)
        return None
    if found is None:
        return None
    return found[0], found[1], encoding


def read_extract(source: Path | bytes, *, file_name: str | None = None) -> RawExtract:
    """Read an extract with every column as text; refuse what cannot be a table of rows."""
    data, name = read_bytes(source, file_name=file_name)
    sha256 = hashlib.sha256(data).hexdigest()
    if not data or data.isspace():
        msg = f"{name} is empty"
        raise UnreadableFileError(msg)
    source_format = sniff_format(data, name)
    encoding = delimiter = None
    if source_format in ("csv", "xlsx") and looks_like_report(data, source_format=source_format):
        found = _read_report(data, name, source_format)
        if found is not None:
            frame, layout, encoding = found
            if frame.height == 0:
                msg = f"{name} is a {layout.kind} report with no data lines"
                raise UnreadableFileError(msg)
            return RawExtract(name, sha256, layout.kind, frame, encoding, ",", layout)
    try:
        if source_format == "parquet":
            frame = _all_text(pl.read_parquet(io.BytesIO(data)))
        elif source_format == "xlsx":
            frame = _all_text(pl.read_excel(io.BytesIO(data), engine="calamine", infer_schema_length=0))
        else:
            frame, encoding, delimiter = read_csv_bytes(data, name)
    except (UnreadableFileError, TypeError, NameError, AttributeError):
        raise  # ours, or a programming error: not the file's fault
    except Exception as exc:  # noqa: BLE001 - any reader failure is "cannot read this file"
        what = {
            "xlsx": "an Excel workbook (it may be damaged or password-protected)",
            "parquet": "a Parquet file (it may be damaged or cut off)",
        }.get(source_format, "CSV")
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = f"{name} could not be opened as {what}; details: {detail}"
        raise UnreadableFileError(msg) from exc
    if frame.width == 0:
        msg = f"{name} has no columns"
        raise UnreadableFileError(msg)
    frame.columns = _dedupe_headers([str(c) for c in frame.columns])
    if frame.height == 0:
        msg = f"{name} has a header row ({', '.join(frame.columns[:6])}) but no data rows"
        raise UnreadableFileError(msg)
    # Row numbers as the finance person sees them: 1 = first row after the header.
    source_columns = frame.columns
    frame = frame.with_row_index(ROW_COLUMN, offset=1).with_columns(pl.col(ROW_COLUMN).cast(pl.Int64))
    # Rows that are blank in every column (trailing empty lines, Excel's formatted blanks) are not rows.
    # (The CSV reader gives empty cells as null; a cell of spaces is text and keeps its row.)
    blank = pl.all_horizontal(pl.col(source_columns).is_null())
    frame = frame.filter(~blank) if frame.select(blank.any()).item() else frame
    if frame.height == 0:
        msg = f"{name} has a header row but every data row is blank"
        raise UnreadableFileError(msg)
    return RawExtract(name, sha256, source_format, frame, encoding, delimiter)
