"""The bad-file corpus (issue 8): each file gets a clear message and changes nothing.

Files that are merely unusual (BOM, semicolons) must load correctly; files that are wrong must be
refused, or have their bad rows set aside with the reason, and a refusal must leave every table
exactly as it was (store.fingerprint()).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.config import MAX_UPLOAD_BYTES
from dashboard.errors import IngestError
from dashboard.ingest import load_file
from dashboard.store import Store

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HEADER = "invoice_id,customer_id,invoice_date,due_date,amount\n"


def _good_rows(n: int, *, start: int = 1, sep: str = ",") -> str:
    return "".join(
        sep.join([f"G-{i}", "C1", "2026-03-02", "2026-04-01", f"{100 + i}.50"]) + "\n" for i in range(start, start + n)
    )


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    first = tmp_path / "first.csv"
    first.write_text(HEADER + _good_rows(3), encoding="utf-8")
    load_file(store, first)
    return store


REFUSED: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "empty"),
    "binary renamed .csv": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "not a"),
    "utf-16 that is not valid": (b"\xff\xfe" + "invoice_id".encode("utf-16-le") + b"\x00", "UTF-16"),
    "thousands of columns, none we know": (
        (",".join(f"col{i}" for i in range(3000)) + "\n" + ",".join("x" for _ in range(3000)) + "\n").encode(),
        "header",
    ),
    "formulas instead of amounts": (
        (HEADER + "".join(f"F-{i},C1,2026-03-02,2026-04-01,=SUM(A{i}:A9)\n" for i in range(10))).encode(),
        "amount",
    ),
    "dates in three formats": (
        (
            HEADER
            + "".join(f"D-{i},C1,2026-03-{i + 1:02d},2026-04-01,10.00\n" for i in range(3))
            + "".join(f"D-{i},C1,03/{i + 1:02d}/2026,2026-04-01,10.00\n" for i in range(3, 6))
            + "".join(f"D-{i},C1,{i + 1} March 2026,2026-04-01,10.00\n" for i in range(6, 9))
        ).encode(),
        "date",
    ),
    "amounts with letters": (
        (HEADER + "".join(f"L-{i},C1,2026-03-02,2026-04-01,12O.{i}0\n" for i in range(10))).encode(),
        "amount",
    ),
    "duplicate ids with different amounts": (
        (HEADER + "X-1,C1,2026-03-02,2026-04-01,100.00\nX-1,C1,2026-03-02,2026-04-01,120.00\n").encode(),
        "X-1",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_file_is_refused_with_a_plain_message_and_nothing_changes(loaded: Store, tmp_path: Path, case: str) -> None:
    data, expected = REFUSED[case]
    path = tmp_path / "extract.csv"
    path.write_bytes(data)
    before = loaded.fingerprint()
    with pytest.raises(IngestError) as caught:
        load_file(loaded, path)
    message = str(caught.value)
    print(f"{case}: {message}")
    assert "Traceback" not in message and len(message) < 1200
    assert expected.lower() in message.lower()
    assert loaded.fingerprint() == before


def test_a_file_over_the_upload_limit_is_refused_before_reading(loaded: Store, tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with open(path, "wb") as out:
        out.write(HEADER.encode())
        out.truncate(MAX_UPLOAD_BYTES + 1)
    before = loaded.fingerprint()
    with pytest.raises(IngestError, match="MB"):
        load_file(loaded, path, max_bytes=MAX_UPLOAD_BYTES)  # a browser upload
    assert loaded.fingerprint() == before


def test_a_totals_row_that_lies_is_refused(loaded: Store) -> None:
    before = loaded.fingerprint()
    with pytest.raises(IngestError) as caught:
        load_file(loaded, FIXTURES / "formats" / "qbo_open_invoices_bad_total.csv")
    assert "total" in str(caught.value).lower()
    assert loaded.fingerprint() == before


def test_utf16_unicode_text_export_loads(loaded: Store, tmp_path: Path) -> None:
    path = tmp_path / "unicode-text.csv"
    path.write_bytes((HEADER + _good_rows(3, start=20)).encode("utf-16"))
    assert load_file(loaded, path).rows_loaded == 3
    assert loaded.scalar("SELECT count(*) FROM invoices WHERE invoice_id IN ('G-20', 'G-21', 'G-22')") == 3


def test_utf8_bom_loads_with_clean_headers(loaded: Store, tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeff".encode() + (HEADER + _good_rows(4, start=10)).encode())
    result = load_file(loaded, path)
    assert result.rows_loaded == 4
    assert loaded.scalar("SELECT amount::DOUBLE FROM invoices WHERE invoice_id = 'G-10'") == 110.5


def test_semicolon_separated_with_decimal_commas_loads(loaded: Store, tmp_path: Path) -> None:
    path = tmp_path / "semicolons.csv"
    path.write_text(
        "invoice_id;customer_id;invoice_date;due_date;amount\nS-1;C1;2026-03-02;2026-04-01;1.234,56\n"
        "S-2;C1;2026-03-03;2026-04-02;99,90\n",
        encoding="utf-8",
    )
    result = load_file(loaded, path)
    assert result.rows_loaded == 2
    amounts = loaded.query("SELECT invoice_id, amount::DOUBLE AS a FROM invoices WHERE invoice_id LIKE 'S-%' ORDER BY 1")
    assert amounts["a"].to_list() == [1234.56, 99.9]


def test_a_formula_in_a_text_cell_is_kept_as_text_not_run(loaded: Store, tmp_path: Path) -> None:
    path = tmp_path / "formula-name.csv"
    path.write_text(
        "customer_id,name\nC9,\"=HYPERLINK(\"\"http://example.invalid\"\",\"\"click\"\")\"\n", encoding="utf-8"
    )
    load_file(loaded, path)
    # stored verbatim (it is data); exports neutralise it (tests/test_exports.py)
    assert loaded.scalar("SELECT name FROM customers WHERE customer_id = 'C9'").startswith("=HYPERLINK")
