"""Real exports vary; the open AR they load to must not.

Every fixture — genuine exports (tests/fixtures/real, tests/fixtures/public) and our own
(tests/fixtures/formats, tests/fixtures/ingest) — is loaded as is, then again after layout
mutations a different export run, locale or spreadsheet would make: columns in another order,
headings in another case, columns we do not use dropped, unknown columns added, a leading blank
column, a byte-order mark, CRLF line ends, CSV saved as XLSX, dates written another way.
Each mutated file must load to the same open amount per currency and the same invoices.

The file is read here with Python's own ``csv`` module (not the product's reader), so a
mutation really is a different file, not the product's view of it.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import xlsxwriter

from dashboard.ingest import load_file, preview_file
from dashboard.store import Store

TESTS = Path(__file__).parent / "fixtures"


@dataclass(frozen=True)
class Fixture:
    path: str
    delimiter: str = ","
    as_of: date | None = None
    confirm: bool = False
    grouped: bool = False  # a report with title, heading and total lines: its first column carries headings


FIXTURES = [
    Fixture("real/quickbooks/tcc-projecthub__The Controls Company_Invoice List by Date.csv", grouped=True),
    Fixture("real/freshbooks/invoiceninja__freshbooks_invoices.csv"),
    Fixture("real/invoice2go/invoiceninja__i2g_invoices.csv", as_of=date(2021, 1, 28)),
    Fixture("real/invoicely/invoiceninja__invoicely_invoices.csv", confirm=True),
    Fixture("real/wave/invoiceninja__wave_invoices.csv"),
    Fixture("public/ibm_watson__WA_Fn-UseC_-Accounts-Receivable.csv"),
    Fixture("public/yellevate__Yellevate Invoices.csv"),
    Fixture("ingest/invoices.csv"),
    Fixture("formats/xero_invoices.csv", as_of=date(2026, 9, 30)),
    Fixture("formats/zoho_books_invoices.csv", as_of=date(2026, 9, 30)),
    Fixture("formats/freshbooks_invoices.csv", as_of=date(2026, 9, 30)),
    Fixture("formats/stripe_invoices.csv", as_of=date(2026, 9, 30)),
    Fixture("formats/netsuite_saved_search.csv", as_of=date(2026, 9, 30)),
    Fixture("formats/sap_fi_customer_items.csv", delimiter=";", as_of=date(2026, 9, 30)),
    Fixture("formats/qbo_open_invoices.csv", grouped=True),
    Fixture("formats/qbo_invoice_list.csv", grouped=True),
]


# -- the file as rows -----------------------------------------------------------------------
def _rows(fixture: Fixture) -> tuple[list[list[str]], int]:
    text = (TESTS / fixture.path).read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=fixture.delimiter))
    header = next(i for i, r in enumerate(rows) if sum(1 for c in r if c.strip()) >= 3)
    width = max(len(r) for r in rows)
    return [r + [""] * (width - len(r)) for r in rows], header


def _csv_bytes(rows: list[list[str]], delimiter: str, *, bom: bool = False, crlf: bool = False) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n").writerows(rows)
    data = out.getvalue().encode("utf-8")
    return (b"\xef\xbb\xbf" + data) if bom else data


def _xlsx_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("Export")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value != "":
                sheet.write_string(r, c, value)
    book.close()
    return buffer.getvalue()


# -- mutations: rows, header line -> rows (the header line may move) -------------------------
def reorder(rows: list[list[str]], header: int, rng: random.Random) -> list[list[str]]:
    order = list(range(len(rows[header])))
    keep = order[:1] if _grouped_rows(rows, header) else []  # a report's first column (headings, TOTAL) stays first
    rest = order[len(keep):]
    rng.shuffle(rest)
    order = keep + rest
    return [[r[i] for i in order] for r in rows]


def recase(rows: list[list[str]], header: int, rng: random.Random) -> list[list[str]]:
    change = rng.choice([str.upper, str.lower, str.title])
    return [([change(c) for c in r] if i == header else r) for i, r in enumerate(rows)]


def add_unknown(rows: list[list[str]], header: int, rng: random.Random) -> list[list[str]]:
    at = rng.randrange(1, len(rows[header]) + 1)
    out = []
    for i, r in enumerate(rows):
        # values on data lines only (a report's heading and total lines have no cell in a new column)
        is_data = i > header and sum(1 for c in r if c.strip()) >= 3 and not r[0].strip().lower().startswith("total")
        cell = "Internal remark" if i == header else (f"note {rng.randrange(1000)}" if is_data else "")
        out.append(r[:at] + [cell] + r[at:])
    return out


def leading_blank(rows: list[list[str]], header: int, rng: random.Random) -> list[list[str]]:
    return [[""] + r for r in rows]


def rewrite_iso_dates(rows: list[list[str]], header: int, rng: random.Random) -> list[list[str]]:
    """Dates written 2026-09-30 become '30 Sep 2026' (the file keeps one way per column)."""
    def swap(cell: str) -> str:
        try:
            return datetime.strptime(cell, "%Y-%m-%d").strftime("%d %b %Y")
        except ValueError:
            return cell
    return [(r if i <= header else [swap(c) for c in r]) for i, r in enumerate(rows)]


def _grouped_rows(rows: list[list[str]], header: int) -> bool:
    """A report (title lines above the headings): its first column holds headings and the TOTAL label."""
    return header > 0


#: Columns no loader reads (contact details, memos, descriptions): dropping one changes nothing.
_UNUSED = {
    "emailaddress", "email", "location full name", "customer email", "poaddressline1", "pocity", "pocountry",
    "inventoryitemcode", "item description", "paperlessdate", "countrycode", "paperlessbill", "daystosettle",
    "transaction line description", "notes / memo", "comment", "shipaddress", "item name", "country",
}


def drop_unused(fixture: Fixture, rows: list[list[str]], header: int, rng: random.Random) -> list[list[str]]:
    """Drop a column the load does not use: a known unused one, else one the preview leaves unmatched."""
    unused = [h for h in rows[header] if h.strip().lower().lstrip("*") in _UNUSED]
    if not unused:
        preview = preview_file(_csv_bytes(rows, fixture.delimiter), file_name=Path(fixture.path).name)
        if getattr(preview, "report", None) is None:
            unused = [m.source for m in preview.matches if m.target is None]
    if not unused:
        return rows
    index = rows[header].index(rng.choice(unused))
    return [r[:index] + r[index + 1:] for r in rows]


LAYOUT = {
    "columns reordered": reorder,
    "headings re-cased": recase,
    "unknown column added": add_unknown,
    "leading blank column": leading_blank,
    "dates written with month names": rewrite_iso_dates,
}


def _open(store: Store) -> tuple[dict[str, Decimal], int]:
    rows = store.query(
        "SELECT coalesce(currency, 'USD') AS c, sum(open_amount)::DECIMAL(18,2) AS open FROM ledger_documents GROUP BY 1"
    ).rows()
    invoices = int(store.scalar("SELECT count(*) FROM invoices"))
    return {c: Decimal(str(v)) for c, v in rows if v != 0}, invoices


def _load(tmp_path: Path, fixture: Fixture, data: bytes, name: str, tag: str) -> tuple[dict[str, Decimal], int]:
    with Store(tmp_path / f"{tag}.duckdb") as store:
        result = load_file(store, data, file_name=name, as_of_date=fixture.as_of, accept_fuzzy=fixture.confirm)
        assert result.status == "loaded", result.message
        return _open(store)


@pytest.mark.parametrize("fixture", FIXTURES, ids=[Path(f.path).name[:40] for f in FIXTURES])
def test_a_fixture_loads_to_the_same_open_ar_whatever_its_layout(fixture: Fixture, tmp_path: Path) -> None:
    rows, header = _rows(fixture)
    name = Path(fixture.path).name
    expected = _load(tmp_path, fixture, (TESTS / fixture.path).read_bytes(), name, "original")
    rng = random.Random(name)
    mutated: dict[str, tuple[bytes, str]] = {}
    for label, mutate in LAYOUT.items():
        if label == "leading blank column" and fixture.grouped:
            continue  # a grouped report's first column is its headings column
        mutated[label] = (_csv_bytes(mutate(rows, header, rng), fixture.delimiter), name)
    mutated["a column the load does not use dropped"] = (_csv_bytes(drop_unused(fixture, rows, header, rng), fixture.delimiter), name)
    mutated["byte-order mark and CRLF line ends"] = (_csv_bytes(rows, fixture.delimiter, bom=True, crlf=True), name)
    mutated["saved as XLSX"] = (_xlsx_bytes(rows), Path(name).with_suffix(".xlsx").name)
    for _ in range(3):  # several at once
        chosen = rng.sample([m for m in LAYOUT if not (fixture.grouped and m == "leading blank column")], 3)
        combined = rows
        for label in chosen:
            combined = LAYOUT[label](combined, header, rng)
        mutated[" + ".join(chosen)] = (_csv_bytes(combined, fixture.delimiter), name)
    for position, (label, (data, file_name)) in enumerate(mutated.items()):
        got = _load(tmp_path, fixture, data, file_name, f"m{position}")
        assert got == expected, f"{name}, {label}: {got} != {expected}"
