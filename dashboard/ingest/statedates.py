"""The date an export says it describes, read from its title or footer.

Accounting exports say it in words: "As of September 30, 2026" (QuickBooks), "As at 30
September 2026" (Xero), a period "January 1-June 30, 2025" or "April, 2020-December, 2025"
(the balances then are those of its end), or only a footer with the time the report was run
(" Friday, April 10, 2026 10:18 AM GMT-05:00"), which is when its open balances were true.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime

_MONTHS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_ONE_DATE = (
    rf"{_MONTHS} \d{{1,2}},? \d{{4}}"  # September 30, 2026 / Sep 30 2026
    rf"|\d{{1,2}} {_MONTHS},? \d{{4}}"  # 30 September 2026
    r"|\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2}|\d{1,2}\.\d{1,2}\.\d{4}"
)
_DATE = re.compile(rf"({_ONE_DATE})", re.IGNORECASE)
# "January 1-June 30, 2025": the first part has no year of its own.
_DAY_RANGE = re.compile(rf"({_MONTHS}) (\d{{1,2}})\s*[-–]\s*({_MONTHS}) (\d{{1,2}}),? (\d{{4}})", re.IGNORECASE)
# "April, 2020-December, 2025" / "January 2025 - March 2025": whole months.
_MONTH_RANGE = re.compile(rf"({_MONTHS}),? (\d{{4}})\s*[-–]\s*({_MONTHS}),? (\d{{4}})", re.IGNORECASE)
_LAYOUTS = (
    "%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y", "%d %B, %Y", "%d %b, %Y",
    "%m/%d/%Y", "%Y-%m-%d", "%d.%m.%Y",
)


def _clean(text: str) -> str:
    text = re.sub(r"\bSept\b", "Sep", text.replace(".", "") if not re.search(r"\d\.\d", text) else text)
    return re.sub(r"\s+", " ", text).strip()


def parse_date_text(text: str, *, day_first: bool = False) -> date | None:
    """One date written in words or digits ("Sep 30, 2026", "30 September 2026", "9/30/2026")."""
    cleaned = _clean(text)
    layouts = ("%d/%m/%Y", *_LAYOUTS) if day_first else _LAYOUTS
    for layout in layouts:
        try:
            return datetime.strptime(cleaned, layout).date()
        except ValueError:
            continue
    return None


def _month(text: str) -> int | None:
    try:
        return datetime.strptime(_clean(text)[:3], "%b").month
    except ValueError:
        return None


def date_in_text(value: str, *, day_first: bool = False) -> date | None:
    """The date a line of text gives: the end of a period it names, else the first date in it."""
    value = value or ""
    ranged = _DAY_RANGE.search(value)
    if ranged:
        found = parse_date_text(f"{ranged.group(3)} {ranged.group(4)}, {ranged.group(5)}")
        if found:
            return found
    months = _MONTH_RANGE.search(value)
    if months:
        month, year = _month(months.group(3)), int(months.group(4))
        if month:
            return date(year, month, calendar.monthrange(year, month)[1])
    match = _DATE.search(value)
    return parse_date_text(match.group(1), day_first=day_first) if match else None


def stated_date(title: list[str], footer: list[str], *, day_first: bool = False) -> tuple[date | None, str | None]:
    """The date an export describes and where it was read: a title's "As of/As at" date; else
    the footer's run time (when the open balances were true); else any date in the title (the
    end of the period it names). (None, None) when the file says nothing."""
    for line in title:
        if re.search(r"(?i)\bas (of|at)\b", line):
            found = date_in_text(line, day_first=day_first)
            if found:
                return found, "title"
    for line in footer:
        found = date_in_text(line, day_first=day_first)
        if found:
            return found, "footer"
    for line in title:
        found = date_in_text(line, day_first=day_first)
        if found:
            return found, "title"
    return None, None
