"""Reading a plain extract: bytes in, a table of text columns out (nothing typed yet).

CSV (any encoding and line ending :mod:`dashboard.ingest.grid` reads), XLSX (the sheet that
best looks like a Recoup table; the others are named) and Parquet. The column headings need
not be on the first line: an export's preamble (a title, the company, "As of ...") is read
for the date it states and left out, and so is a footer (the time the export was run). A row
with more values than there are headings is kept with a mark, so validation refuses it with
its number instead of cutting it short. Unusable files raise :class:`UnreadableFileError`
with a plain reason.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from dashboard.errors import UnreadableFileError
from dashboard.ingest.grid import Grid, header_line, read_grid, sheet_names, shown, unique_names
from dashboard.ingest.headers import KNOWN_HEADERS, detect_table, normalize_header
from dashboard.ingest.statedates import stated_date

ROW_COLUMN = "__row_number"  # added by read_extract; not a source column
#: Set on rows that hold more values than the file has column headings: how many more.
EXTRA_VALUES = "__extra_values"
_XLSX_MAGIC = b"PK\x03\x04"
_PARQUET_MAGIC = b"PAR1"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls
_FOOTER_SCAN = 50  # a footer is among the last lines
_HEAD_BYTES = 256 * 1024  # what a streamed file's layout is decided from
_STREAM_SLACK = 4  # columns read past the headings, to see (and refuse) rows with more values


@dataclass
class RawExtract:
    """A file as read: every column text, headers as written in the file."""

    file_name: str
    sha256: str
    source_format: str  # "csv", "xlsx", "parquet" (the loader adds "canonical-csv")
    frame: pl.DataFrame
    encoding: str | None = None
    delimiter: str | None = None
    title: list[str] = field(default_factory=list)  # lines above the column headings
    footer: list[str] = field(default_factory=list)  # lines below the last row
    stated_as_of: date | None = None  # the date the title or footer says the file describes
    stated_as_of_source: str | None = None  # "title" or "footer"
    warnings: list[str] = field(default_factory=list)  # how it was read (skipped sheets, preamble ...)
    # the rows after ``frame`` for a file read in chunks (see read_extract); None when frame is all of it
    rest: Callable[[], Iterator[pl.DataFrame]] | None = None
    streamed_bytes: int | None = None  # the size of a file read from disk chunk by chunk

    def chunks(self) -> Iterator[pl.DataFrame]:
        """The rows after :attr:`frame`, chunk by chunk (nothing for a file read whole)."""
        return self.rest() if self.rest is not None else iter(())


def read_bytes(source: Path | bytes, *, file_name: str | None = None, max_bytes: int | None = None) -> tuple[bytes, str]:
    """The file's bytes and its display name. ``max_bytes`` (browser uploads) refuses a bigger
    file unread; scheduled command-line loads of whole books have no limit."""
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
    if max_bytes is not None and size > max_bytes:
        msg = (
            f"{name} is {size / 1024 / 1024:,.1f} MB, over the {max_bytes / 1024 / 1024:,.0f} MB upload limit; "
            "split it, load it from the command line (python -m dashboard load), or raise RECOUP_MAX_UPLOAD_MB"
        )
        raise UnreadableFileError(msg)
    if not isinstance(source, bytes | bytearray | memoryview):
        data = Path(source).read_bytes()
    return data, name


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


def _filled(row: tuple[str | None, ...]) -> int:
    return sum(1 for c in row if c is not None and c.strip())


@dataclass
class TableLayout:
    """Where a plain table sits in a grid, decided once from the file's first lines."""

    top: int  # 0-based line of the column headings
    cells: list[str]  # the headings as written (trailing blanks cut)
    names: list[str]  # unique, non-empty names for them
    dropped: list[str]  # names of columns with no heading and nothing in them (a leading blank column, spacers)
    title: list[str]  # lines above the headings

    @property
    def headers(self) -> list[str]:
        return [h for n, h in zip(self.names, self.cells, strict=True) if n not in self.dropped]


def table_layout(grid: Grid, file_name: str) -> TableLayout:
    """The heading line, headings and empty columns of the plain table in ``grid``."""
    top = header_line(grid, KNOWN_HEADERS, normalize_header)
    cells = grid.line(top) if grid.frame.height else []
    while cells and not cells[-1]:
        cells.pop()
    if not cells:
        msg = f"{file_name} has no column headings"
        raise UnreadableFileError(msg)
    names = unique_names(cells)
    body = grid.frame.slice(top + 1)
    dropped = [
        name for position, (name, heading) in enumerate(zip(names, cells, strict=True))
        if not heading and body.get_column(body.columns[position]).drop_nulls().str.strip_chars().eq("").all()
    ]
    return TableLayout(top, cells, names, dropped, [c for row in grid.head(top) for c in row if c])


def split_footer(body: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """A footer: the last lines with at most one filled cell (the time the export was run, a note)."""
    tail = body.tail(_FOOTER_SCAN)
    counts = tail.select(pl.sum_horizontal([pl.col(c).str.strip_chars().str.len_chars().gt(0).fill_null(False) for c in tail.columns]))
    filled = counts.to_series().to_list() if tail.height else []
    end = len(filled)
    while end > 0 and filled[end - 1] <= 1:
        end -= 1
    end = body.height - (len(filled) - end)
    footer = [c.strip() for row in body.slice(end).iter_rows() for c in row if c and c.strip()]
    return body.head(end), footer


def shape_body(body: pl.DataFrame, layout: TableLayout, *, first_row: int = 1) -> pl.DataFrame:
    """Grid lines under the headings (``c0..cN``) as the table's rows: named columns, a row
    number (``first_row`` for the first line), rows with more values than headings marked
    (:data:`EXTRA_VALUES`), blank rows left out."""
    width = len(layout.cells)
    extra = body.columns[width:]
    frame = body.select(body.columns[:width]).rename(dict(zip(body.columns[:width], layout.names, strict=True)))
    if extra:
        beyond = pl.sum_horizontal([pl.col(c).str.strip_chars().str.len_chars().gt(0).fill_null(False) for c in extra])
        counted = body.select(beyond.alias(EXTRA_VALUES)).to_series().replace(0, None)
        if counted.null_count() < counted.len():
            frame = frame.with_columns(counted)
    frame = frame.drop(layout.dropped)
    kept = [n for n in layout.names if n not in layout.dropped]
    frame = frame.rename(dict(zip(kept, unique_names(layout.headers), strict=True)))
    source_columns = [c for c in frame.columns if c != EXTRA_VALUES]
    frame = frame.with_row_index(ROW_COLUMN, offset=first_row).with_columns(pl.col(ROW_COLUMN).cast(pl.Int64))
    # Rows that are blank in every column (trailing empty lines, Excel's formatted blanks) are not rows.
    # (The readers give empty cells as null; a cell of spaces is text and keeps its row.)
    blank = pl.all_horizontal([pl.col(c).is_null() for c in source_columns])
    return frame.filter(~blank) if frame.select(blank.any()).item() else frame


def _best_sheet(data: bytes, file_name: str) -> tuple[Grid, list[str]]:
    """The sheet of a workbook that best looks like a Recoup table, and a note per other sheet."""
    names = sheet_names(data)
    if len(names) <= 1:
        return read_grid(data, file_name), []
    scored: list[tuple[float, int, str]] = []
    for position, name in enumerate(names):
        head = read_grid(data, file_name, sheet=name, rows=40)
        if head.frame.height == 0:
            scored.append((-1.0, position, name))
            continue
        headers = [h for h in head.line(header_line(head, KNOWN_HEADERS, normalize_header)) if h]
        _, scores = detect_table(headers)
        scored.append((max(scores.values()), position, name))
    best = max(scored, key=lambda s: (s[0], -s[1]))
    others = [name for _, _, name in sorted(scored, key=lambda s: s[1]) if name != best[2]]
    note = (
        f"the workbook has {len(names)} sheets: '{best[2]}' was read (its columns fit best); "
        f"{', '.join(repr(n) for n in others)} {'was' if len(others) == 1 else 'were'} not loaded — "
        "load a sheet on its own by saving it as a separate file"
    )
    return read_grid(data, file_name, sheet=best[2]), [note]


def _title_note(title: list[str]) -> str:
    return f"the {len(title)} line(s) above the column headings were read as the file's title: {shown(title, limit=3, width=60)}"


#: Rows typed and checked at a time: a load holds one chunk in Python, DuckDB the rest.
CHUNK_ROWS = 250_000
#: A plain CSV file bigger than this is read from disk chunk by chunk, never whole.
STREAM_BYTES = 64 * 1024 * 1024


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in 8 MB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while piece := handle.read(8 * 1024 * 1024):
            digest.update(piece)
    return digest.hexdigest()


def chunked(raw: RawExtract) -> RawExtract:
    """Split a big in-memory table into chunks (the first stays in ``frame``)."""
    whole, size = raw.frame, CHUNK_ROWS
    if whole.height <= size:
        return raw
    raw.frame = whole.head(size)
    raw.rest = lambda: (whole.slice(start, size) for start in range(size, whole.height, size))
    return raw


def _stream_csv(path: Path, name: str, size: int) -> RawExtract | None:
    """A big plain CSV read chunk by chunk from disk (None when it needs the whole-file
    reader: not UTF-8, old-Mac line ends)."""
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    head = head[: head.rfind(b"\n") + 1] if b"\n" in head else head
    grid = read_grid(head, name)
    if grid.encoding not in ("utf-8", "utf-8-sig") or b"\r" in head.replace(b"\r\n", b""):
        return None
    layout = table_layout(grid, name)
    width = len(layout.cells) + _STREAM_SLACK
    lazy = pl.scan_csv(
        path, has_header=False, separator=grid.delimiter or ",", skip_rows=layout.top + 1, infer_schema=False,
        schema={f"c{i}": pl.String for i in range(width)}, truncate_ragged_lines=True, missing_columns="insert",
        raise_if_empty=False,
    )

    def chunks() -> Iterator[tuple[pl.DataFrame, list[str]]]:
        """Shaped chunks with the footer of the last one split off."""
        first_row, pending = 1, None
        for batch in lazy.collect_batches(chunk_size=CHUNK_ROWS):
            if pending is not None:
                shaped = shape_body(pending, layout, first_row=first_row)
                first_row += pending.height
                yield shaped, []
            pending = batch
        if pending is not None:
            body, footer = split_footer(pending)
            yield shape_body(body, layout, first_row=first_row), footer

    stream = chunks()
    # the file's hash is read beside its first chunk (hashing releases the GIL)
    with ThreadPoolExecutor(max_workers=1) as hashing:
        digest = hashing.submit(sha256_of, path)
        first, footer = next(stream, (pl.DataFrame(), []))
        sha256 = digest.result()
    if first.height == 0:
        msg = f"{name} has a header row ({', '.join(shown(layout.headers, limit=6))}) but no data rows"
        raise UnreadableFileError(msg)
    warnings = [_title_note(layout.title)] if layout.title else []
    as_of, as_of_source = stated_date(layout.title, footer)
    raw = RawExtract(
        name, sha256, "csv", first, grid.encoding, grid.delimiter, layout.title, footer, as_of, as_of_source,
        warnings,
    )
    raw.rest = lambda: (chunk for chunk, _ in stream)
    raw.streamed_bytes = size
    return raw


def streams(source: Path | bytes, *, max_bytes: int | None = None) -> bool:
    """Whether ``source`` is read from disk chunk by chunk: a CSV file over :data:`STREAM_BYTES`
    given by path (the command line; a browser upload is bytes, and limited)."""
    if isinstance(source, bytes | bytearray | memoryview) or max_bytes is not None:
        return False
    path = Path(source)
    return path.is_file() and path.stat().st_size > STREAM_BYTES and path.suffix.lower() not in (".xlsx", ".xlsm", ".parquet", ".pq")


def read_extract(source: Path | bytes, *, file_name: str | None = None, max_bytes: int | None = None) -> RawExtract:
    """Read an extract with every column as text; refuse what cannot be a table of rows.

    A big plain CSV on disk (see :func:`streams`) is read chunk by chunk (``rest``); a big
    table read whole is handed over in chunks too, so a load types one chunk at a time.
    """
    if streams(source, max_bytes=max_bytes):
        path = Path(source)  # type: ignore[arg-type]
        streamed = _stream_csv(path, file_name or path.name, path.stat().st_size)
        if streamed is not None:
            return streamed
    return chunked(_read_whole(source, file_name=file_name, max_bytes=max_bytes))


def _read_whole(source: Path | bytes, *, file_name: str | None = None, max_bytes: int | None = None) -> RawExtract:
    """:func:`read_extract` of a file read into memory whole."""
    data, name = read_bytes(source, file_name=file_name, max_bytes=max_bytes)
    sha256 = hashlib.sha256(data).hexdigest()
    if not data or data.isspace():
        msg = f"{name} is empty"
        raise UnreadableFileError(msg)
    source_format = sniff_format(data, name)
    warnings: list[str] = []
    title: list[str] = []
    footer: list[str] = []
    encoding = delimiter = None
    if source_format == "parquet":
        try:
            frame = pl.read_parquet(io.BytesIO(data)).with_columns(pl.all().cast(pl.String))
        except (TypeError, NameError, AttributeError):
            raise
        except Exception as exc:  # noqa: BLE001 - any reader failure is "cannot read this file"
            detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            msg = f"{name} could not be opened as a Parquet file (it may be damaged or cut off); details: {detail}"
            raise UnreadableFileError(msg) from exc
        headers = [str(c) for c in frame.columns]
        frame.columns = unique_names(headers)
    else:
        grid, warnings = _best_sheet(data, name) if source_format == "xlsx" else (read_grid(data, name), [])
        encoding, delimiter = grid.encoding, grid.delimiter
        if grid.frame.height == 0:
            msg = f"{name} is empty"
            raise UnreadableFileError(msg)
        layout = table_layout(grid, name)
        body, footer = split_footer(grid.frame.slice(layout.top + 1))
        if body.height == 0:
            msg = f"{name} has a header row ({', '.join(shown(layout.headers, limit=6))}) but no data rows"
            raise UnreadableFileError(msg)
        frame, headers, title = shape_body(body, layout), layout.headers, layout.title
        if title:
            warnings.append(_title_note(title))
    if source_format == "parquet":
        if frame.width == 0:
            msg = f"{name} has no columns"
            raise UnreadableFileError(msg)
        if frame.height == 0:
            msg = f"{name} has a header row ({', '.join(shown(headers, limit=6))}) but no data rows"
            raise UnreadableFileError(msg)
        frame = frame.with_row_index(ROW_COLUMN, offset=1).with_columns(pl.col(ROW_COLUMN).cast(pl.Int64))
    if frame.height == 0:
        msg = f"{name} has a header row but every data row is blank"
        raise UnreadableFileError(msg)
    as_of, as_of_source = stated_date(title, footer)
    return RawExtract(name, sha256, source_format, frame, encoding, delimiter, title, footer, as_of, as_of_source, warnings)
