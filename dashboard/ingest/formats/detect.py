"""Which vendor layout a file is, from its first lines; then parse it.

Recognisers look only at the first lines (16 KB of text, or the first rows of a workbook),
so a million-row canonical CSV costs nothing here. The first format whose recogniser says
yes wins; the order puts the most specific layouts first.
"""

from __future__ import annotations

from pathlib import Path

from dashboard.ingest.formats import freshbooks, netsuite, quickbooks, sap, stripe, summary, wave, xero, zoho
from dashboard.ingest.formats.base import FormatSpec, ParsedReport, Sniff, head_rows
from dashboard.ingest.grid import decode_text

FORMATS: list[FormatSpec] = [
    *summary.FORMATS,
    *quickbooks.FORMATS,
    *xero.FORMATS,
    *stripe.FORMATS,
    *sap.FORMATS,
    *zoho.FORMATS,
    *freshbooks.FORMATS,
    *netsuite.FORMATS,
    *wave.FORMATS,
]
_XLSX_MAGIC = b"PK\x03\x04"


def sniff_file(data: bytes, file_name: str) -> Sniff | None:
    """The first lines of a file for the recognisers; None for what no vendor layout can be."""
    if not data or b"\x00" in data[:4096] and not data.startswith(_XLSX_MAGIC):
        return None
    suffix = Path(file_name).suffix.lower()
    if data.startswith(_XLSX_MAGIC):
        if suffix not in (".xlsx", ".xlsm", ""):
            return None
        try:
            head = head_rows(data, is_xlsx=True)
        except Exception:  # noqa: BLE001 - an unreadable workbook is the plain reader's to explain
            return None
        return Sniff(file_name, True, False, head, "")
    if data.startswith(b"PAR1"):
        return None
    text = decode_text(data[:16384])
    stripped = text.lstrip()
    if suffix == ".json" or stripped.startswith(("{", "[")):
        return Sniff(file_name, False, True, [], text)
    return Sniff(file_name, False, False, head_rows(data, is_xlsx=False), text)


def detect_format(data: bytes, file_name: str) -> FormatSpec | None:
    """The vendor layout of a file, or None (a plain or canonical table)."""
    sniff = sniff_file(data, file_name)
    if sniff is None:
        return None
    return next((spec for spec in FORMATS if spec.recognise(sniff)), None)


def parse_known_format(data: bytes, file_name: str) -> ParsedReport | None:
    """Parse a vendor export into a :class:`ParsedReport`; None when it is no known layout.

    Raises :class:`~dashboard.errors.IngestError` subclasses for a recognised file that is
    cut off, laid out wrongly or missing a column the format needs.
    """
    sniff = sniff_file(data, file_name)
    if sniff is None:
        return None
    spec = next((s for s in FORMATS if s.recognise(sniff)), None)
    if spec is None:
        return None
    return spec.parse(data, sniff)
