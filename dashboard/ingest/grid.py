"""Reading a file into a grid of text cells: the one decoder, delimiter sniffer and reader.

Everything that reads an extract's bytes comes through here — the canonical loader (plain
tables, :mod:`dashboard.ingest.read`) and every vendor format (reports with titles, headings,
totals and footers, :mod:`dashboard.ingest.formats`) — so a quirk handled once is handled for
all of them:

- text: UTF-8 with or without a byte-order mark, UTF-16 with or without one (Excel's
  "Unicode text"), else Windows-1252; line endings CRLF, LF or CR alone;
- the delimiter among ``, ; tab |``, counted the way a CSV reader sees fields (a delimiter
  inside quotes does not count);
- workbooks: every sheet is looked at; the caller picks one and the others are named;
- rows with more values than the widest line of the file's start are never cut short: the
  extra cells stay in the grid, so the table reader can refuse the row with its number.

A grid keeps every line, blank ones included, as ``c0 .. cN`` text columns; line ``i`` of the
frame is line ``i + 1`` of the file (the row a spreadsheet shows).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

import polars as pl

from dashboard.errors import UnreadableFileError

_DELIMITERS = (",", ";", "\t", "|")
_SAMPLE = 65536
#: Extra columns read past the widest line of the sample: a longer row later in the file is
#: still seen (and refused) rather than cut short.
_SLACK = 4
_XLSX_MAGIC = b"PK\x03\x04"


@dataclass
class Grid:
    """A file's lines as text cells, with how it was read."""

    frame: pl.DataFrame  # c0..cN text; every line, blank ones kept
    source_format: str  # "csv" or "xlsx"
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None  # the sheet read (workbooks)
    sheets: list[str] = field(default_factory=list)  # every sheet of the workbook

    def line(self, index: int) -> list[str]:
        """Line ``index`` (0-based) as stripped cells."""
        return [(c or "").strip() for c in self.frame.row(index)]

    def head(self, lines: int = 40) -> list[list[str]]:
        """The first lines as lists of stripped cells."""
        return [[(c or "").strip() for c in row] for row in self.frame.head(lines).iter_rows()]


# -- text -----------------------------------------------------------------------------------
def _looks_utf16(data: bytes) -> str | None:
    """'utf-16-le' / 'utf-16-be' for UTF-16 text without a byte-order mark, else None.

    ASCII-range text in UTF-16 has a zero byte in every other position."""
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def to_utf8(data: bytes, file_name: str) -> tuple[bytes, str]:
    """The file's text as UTF-8 bytes (no byte-order mark, LF or CRLF line ends) and the
    encoding it was written in. Refuses binary data with a plain reason."""
    if data.startswith(b"\xef\xbb\xbf"):
        data, encoding = data[3:], "utf-8-sig"
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
        data = _decode_or_refuse(data, encoding, file_name).encode("utf-8")
    elif (guessed := _looks_utf16(data)) is not None:
        encoding = guessed
        data = _decode_or_refuse(data, encoding, file_name).encode("utf-8")
    else:
        encoding = "utf-8"
    if b"\x00" in data[:_SAMPLE]:
        msg = (
            f"{file_name} is not a text file (it contains binary data); it may be a spreadsheet or a PDF renamed "
            "to .csv — export it as CSV from the source system"
        )
        raise UnreadableFileError(msg)
    if encoding == "utf-8" and not _is_utf8(data[:_SAMPLE]):
        encoding = "cp1252"
        data = decode_cp1252(data, file_name).encode("utf-8")
    head = data[:_SAMPLE]
    if b"\r" in head and b"\n" not in head:
        data = data.replace(b"\r", b"\n")  # old Mac line ends: CR alone
    return data, encoding


def _is_utf8(sample: bytes) -> bool:
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(sample) - 4  # a character cut at the end of the sample
    return True


def _decode_or_refuse(data: bytes, encoding: str, file_name: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        msg = f"{file_name} looks like UTF-16 text but is not valid UTF-16; export it again as CSV (UTF-8)"
        raise UnreadableFileError(msg) from exc


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
    if any(ord(ch) < 32 and ch not in "\r\n\t" for ch in text[:_SAMPLE]):
        msg = f"{file_name} is not a text file (it contains binary data); export it as CSV from the source system"
        raise UnreadableFileError(msg)
    return text


def decode_text(data: bytes) -> str:
    """A small piece of a file as text, for recognisers (never refuses)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_utf16(data):
        encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else _looks_utf16(data)
        return data[: len(data) - len(data) % 2].decode(encoding or "utf-16", errors="replace")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the sample is still UTF-8
        text = data[: exc.start].decode("utf-8") if exc.start > len(data) - 4 else data.decode("cp1252", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _csv_rows(sample: str, delimiter: str) -> list[list[str]]:
    try:
        return list(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter))
    except csv.Error:
        return []


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the most, equally many, fields.

    Fields are counted the way a CSV reader sees them, so a delimiter inside quoted text
    ("Smith; Jones Ltd") does not count. Lines of one cell (a report's title) do not vote.
    """
    sample = text[:_SAMPLE]
    if len(text) > _SAMPLE and "\n" in sample:
        sample = sample[: sample.rfind("\n")]  # the last line of a cut-off sample may be partial
    best, best_key = ",", (-1, -1)
    for delimiter in _DELIMITERS:
        rows = [r for r in _csv_rows(sample, delimiter) if sum(1 for c in r if c.strip()) >= 1][:40]
        wide = [r for r in rows if len(r) >= 2]
        if not wide:
            continue
        widths = [len(r) for r in wide]
        common = max(set(widths), key=widths.count)
        key = (sum(1 for w in widths if w == common), common)
        if key > best_key:
            best, best_key = delimiter, key
    return best


# -- grids ----------------------------------------------------------------------------------
def _columns(width: int) -> dict[str, pl.DataType]:
    return {f"c{i}": pl.String() for i in range(max(width, 1))}


def read_csv_grid(data: bytes, file_name: str, *, rows: int | None = None) -> Grid:
    """A CSV (or other delimited text) file as a grid."""
    text, encoding = to_utf8(data, file_name)
    sample = text[:_SAMPLE].decode("utf-8", errors="replace")
    delimiter = sniff_delimiter(sample)
    width = max((len(r) for r in _csv_rows(sample, delimiter)), default=1)
    try:
        frame = _read_delimited(text, delimiter, width, rows)
    except pl.exceptions.ComputeError as exc:
        if "utf" not in str(exc).lower() or encoding != "utf-8":
            raise _unreadable(file_name, exc) from exc
        # UTF-8 at the start, not further on: an old Excel export in Windows-1252
        encoding, text = "cp1252", decode_cp1252(text, file_name).encode("utf-8")
        frame = _read_delimited(text, delimiter, width, rows)
    except pl.exceptions.PolarsError as exc:
        raise _unreadable(file_name, exc) from exc
    # Slack columns nobody filled are not columns.
    filled = [c for c in frame.columns[width:] if frame.get_column(c).is_not_null().any()]
    frame = frame.select(frame.columns[:width] + filled) if width < frame.width else frame
    return Grid(frame, "csv", encoding, delimiter)


def _unreadable(file_name: str, exc: Exception) -> UnreadableFileError:
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return UnreadableFileError(f"{file_name} could not be read as CSV ({detail})")


def _read_delimited(text: bytes, delimiter: str, width: int, rows: int | None) -> pl.DataFrame:
    try:
        return pl.read_csv(
            text,
            has_header=False,
            infer_schema=False,
            separator=delimiter,
            schema=_columns(width + _SLACK),
            truncate_ragged_lines=True,
            missing_columns="insert",
            raise_if_empty=False,
            n_rows=rows,
        )
    except pl.exceptions.NoDataError:
        return pl.DataFrame(schema=_columns(width))


def sheet_names(data: bytes) -> list[str]:
    """The sheets of a workbook, in order."""
    import fastexcel

    return list(fastexcel.read_excel(data).sheet_names)


def read_xlsx_grid(data: bytes, file_name: str, *, sheet: str | None = None, rows: int | None = None) -> Grid:
    """One sheet of a workbook as a grid (the first when ``sheet`` is None)."""
    try:
        names = sheet_names(data)
        chosen = sheet if sheet is not None else (names[0] if names else None)
        options = {"n_rows": rows} if rows else {}
        frame = pl.read_excel(
            io.BytesIO(data), engine="calamine", sheet_name=chosen, has_header=False, infer_schema_length=0,
            read_options=options,
        )
    except (TypeError, NameError, AttributeError):
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is "cannot open this workbook"
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        msg = f"{file_name} could not be opened as an Excel workbook (it may be damaged or password-protected); details: {detail}"
        raise UnreadableFileError(msg) from exc
    frame = frame.with_columns(pl.all().cast(pl.String))
    frame = frame.rename({c: f"c{i}" for i, c in enumerate(frame.columns)})
    return Grid(frame, "xlsx", None, None, chosen, names)


def read_grid(data: bytes, file_name: str, *, rows: int | None = None, sheet: str | None = None) -> Grid:
    """A CSV file or one workbook sheet as a grid (``rows``: only the first lines)."""
    if data.startswith(_XLSX_MAGIC):
        return read_xlsx_grid(data, file_name, sheet=sheet, rows=rows)
    return read_csv_grid(data, file_name, rows=rows)


# -- tables inside grids --------------------------------------------------------------------
def unique_names(headers: list[str]) -> list[str]:
    """Headers made unique and non-empty (``column_3`` for a blank one)."""
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


def shown(headers: list[str], *, limit: int = 12, width: int = 40) -> list[str]:
    """Headers as a message quotes them: at most ``limit``, each cut to ``width`` characters."""
    cut = [h if len(h) <= width else h[: width - 1] + "…" for h in headers[:limit]]
    return cut + (["..."] if len(headers) > limit else [])


_NUMBER = re.compile(r"^[-+($€£]*[\d.,\s]+[)%]*$")


def header_line(grid: Grid, known: set[str], normalize: object, *, scan: int = 40) -> int:
    """The 0-based line of a plain table's column headings.

    The line among the first ``scan`` that names the most known columns (``known``: normalized
    header names) wins when it names at least two; otherwise the first line with at least two
    filled cells that are not numbers. Lines before it are a title (an export's preamble).
    """
    best, best_hits = None, 1
    first_wide = None
    for index, cells in enumerate(grid.head(scan)):
        filled = [c for c in cells if c]
        if len(filled) < 2:
            continue
        if first_wide is None and not any(_NUMBER.match(c) for c in filled):
            first_wide = index
        hits = len({normalize(c) for c in filled} & known)  # type: ignore[operator]
        if hits > best_hits:
            best, best_hits = index, hits
    if best is not None:
        return best
    return first_wide if first_wide is not None else 0
