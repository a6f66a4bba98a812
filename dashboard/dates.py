"""Calendar helpers shared by every as-of computation. Nothing here reads the clock."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from dashboard.store import Store


def month_end(day: date) -> date:
    """Last day of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    """Same day-of-month ``months`` later (clamped to the month's length)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def month_ends(last: date, count: int) -> list[date]:
    """``count`` month-ends ending with ``last``'s month, oldest first."""
    return [month_end(add_months(month_start(last), -i)) for i in range(count - 1, -1, -1)]


def week_start(day: date) -> date:
    """Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def latest_data_date(store: Store) -> date | None:
    """The newest business date in the store (invoice, payment, adjustment or snapshot).

    The app's default as-of date: figures are "as of the data", never as of the wall clock,
    so a store loaded last month still shows last month's picture.
    """
    value = store.scalar(
        """
        SELECT max(d) FROM (
            SELECT max(invoice_date) AS d FROM invoices
            UNION ALL SELECT max(payment_date) FROM payments
            UNION ALL SELECT max(adjustment_date) FROM adjustments
            UNION ALL SELECT max(as_of_date) FROM snapshots
        )
        """
    )
    return value
