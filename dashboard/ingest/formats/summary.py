"""Per-customer aging summaries: refused, naming the invoice-level report to export instead.

QuickBooks' "A/R Aging Summary" and Xero's "Aged Receivables Summary" give one line per
customer with its balance by age (Current, 1 - 30, ..., 91 and over), and no invoices. Recoup
works invoice by invoice (aging, risk, worklist, pay dates), so such a file is refused with the
report that has the same money invoice by invoice, and the total it should add up to.
"""

from __future__ import annotations

import re

from dashboard.errors import SummaryReportError
from dashboard.ingest.formats.base import FormatSpec, ParsedReport, Sniff, money_value
from dashboard.ingest.headers import normalize_header

AGING_SUMMARY = "aging-summary"
_BUCKET = re.compile(
    r"^(current|not yet due|<\s*1\s*month|\d+\s*months?|older|\d+\s*-\s*\d+(\s*days)?|\d+\s*\+|\d+\s*(and|or)\s*(over|more)"
    r"|over\s*\d+|>\s*\d+|\d+\s*days?\s*(and\s*)?(over|more))$"
)
_WHO = {"customer", "contact", "name", "client", "customername", "debtor", "account"}
_DOCUMENT = {"num", "no", "invoice", "invoiceno", "invoicenumber", "documentnumber", "invoicedate", "date", "duedate", "reference"}


def _heading_line(sniff: Sniff) -> list[str] | None:
    for row in sniff.head[:40]:
        cells = [c.strip().lower() for c in row if c and c.strip()]
        buckets = sum(1 for c in cells if _BUCKET.match(c))
        keys = {normalize_header(c) for c in cells}
        if buckets >= 3 and keys & _WHO and not keys & _DOCUMENT:
            return [c for c in row if c]
    return None


def _is_summary(sniff: Sniff) -> bool:
    return _heading_line(sniff) is not None


def _stated_total(sniff: Sniff) -> str:
    for row in sniff.head:
        cells = [c for c in row if c]
        if cells and cells[0].strip().lower() == "total":
            value = money_value(cells[-1])
            if value is not None:
                return f" Its TOTAL is {value:,.2f}: the detail report for the same date should add up to it."
    return ""


def _refuse(data: bytes, sniff: Sniff) -> ParsedReport:
    title = sniff.title_text()
    headings = {c.strip().lower() for c in (_heading_line(sniff) or [])}
    if "aged receivables" in title or "< 1 month" in headings or "1 month" in headings:
        report, detail = "a Xero Aged Receivables Summary", "Accounting → Reports → Aged Receivables Detail (or the invoice export)"
    elif "a/r aging summary" in title or "91 and over" in headings:
        report, detail = "a QuickBooks A/R Aging Summary", "Reports → A/R Aging Detail (or Open Invoices)"
    else:
        report, detail = "an aging summary", "the aging detail (open invoices) report of the same system"
    msg = (
        f"{sniff.file_name} is {report}: one line per customer with its balance by age, and no invoices. Recoup works "
        f"invoice by invoice (aging, risk scores, worklist), so it cannot load a summary. Export {detail} for the same "
        f"date and load that.{_stated_total(sniff)} Nothing was written."
    )
    raise SummaryReportError(msg)


FORMATS = [FormatSpec(AGING_SUMMARY, "Aging summary (per customer)", _is_summary, _refuse)]
