"""Receivables measures as of a date: open items, aging, the DSO family, CEI, roll rates.

Everything here is computed in DuckDB from the store and takes an explicit ``as_of`` date;
nothing reads the clock. The open amount of a document is defined once, in the ledger
(:func:`dashboard.ledger.open_items_sql`), and every measure here builds on it.

What counts as accounts receivable
----------------------------------
Open amounts, paid dates and settlement come from the ledger (:mod:`dashboard.ledger`):
every document — invoices, credit memos, unapplied payments and journals, and payments
without an invoice (unapplied cash) — with its signed balance as of the date. Credit memos
and unapplied cash **do** count in AR, as negative balances (the standard aging-report
convention: the total is what the customers owe net of what we owe them). Money is in base
currency, converted per document and rounded to the cent, so buckets sum exactly to the total.

Sources for the formulas: the Credit Research Foundation (CRF) definitions of DSO
(standard and countback), best possible DSO, average days delinquent and the collection
effectiveness index, as summarised in the project's DATA_MODEL.md "Standard measures".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import polars as pl

from dashboard.dates import add_months, month_end, month_start
from dashboard.display import day, money
from dashboard.errors import MetricError
from dashboard.filters import Filters
from dashboard.ledger import (
    CURRENT,
    DEFAULT_BUCKETS,
    bucket_labels,
    customer_filter_clause,
    date_literal,
    open_items_at_dates_sql,
    open_items_sql,
    paid_dates_sql,
    validate_buckets,
)
from dashboard.store import Store
from dashboard.vocabulary import PROMISE_GRACE_DAYS

#: Periods the period-based measures accept.
PERIODS: tuple[str, ...] = ("month", "quarter", "trailing90")
#: The aging row that holds credit notes, unapplied cash and other documents netting against
#: the invoices owed (:meth:`KpiResult.aging_table`).
CREDITS = "Credits and unapplied cash"
#: An open document customers owe on: an invoice with a positive balance.
_OWED_SQL = "(doc_type = 'invoice' AND open_amount > 0)"
#: How many monthly windows the countback DSO may walk back before giving up.
COUNTBACK_MAX_MONTHS = 36
PAID = "paid"


# ---------------------------------------------------------------------------------------
# buckets and periods
# ---------------------------------------------------------------------------------------
def month_window(end: date) -> tuple[date, date]:
    """The month that ends on ``end``: the calendar month when ``end`` is a month-end,
    otherwise the day after the same date one month earlier through ``end``."""
    if end == month_end(end):
        return month_start(end), end
    return add_months(end, -1) + timedelta(days=1), end


def period_bounds(as_of: date, period: str = "month") -> tuple[date, date]:
    """First and last day of the period that ends on ``as_of``.

    ``month``: the month ending on ``as_of`` (see :func:`month_window`); ``quarter``: the
    three such months; ``trailing90``: the 90 days ending on ``as_of``.
    """
    if period == "month":
        return month_window(as_of)
    if period == "quarter":
        start = month_window(as_of)[0]
        for _ in range(2):
            start = month_window(start - timedelta(days=1))[0]
        return start, as_of
    if period == "trailing90":
        return as_of - timedelta(days=89), as_of
    msg = f"Unknown period {period!r}; choose one of {', '.join(PERIODS)}"
    raise MetricError(msg)


def _monthly_windows(end: date, count: int) -> list[tuple[date, date]]:
    """``count`` consecutive month windows, newest first, the first ending on ``end``."""
    windows: list[tuple[date, date]] = []
    current = end
    for _ in range(count):
        start, stop = month_window(current)
        windows.append((start, stop))
        current = start - timedelta(days=1)
    return windows


def _days(start: date, end: date) -> int:
    return (end - start).days + 1


# ---------------------------------------------------------------------------------------
# formulas (pure, tested against hand-computed examples)
# ---------------------------------------------------------------------------------------
def dso_standard(ending_ar: float, credit_sales: float, days: int) -> float | None:
    """Days sales outstanding, standard (CRF): ending AR / credit sales in period × days.

    ``None`` when there were no credit sales in the period.
    """
    if credit_sales <= 0:
        return None
    return ending_ar / credit_sales * days


def best_possible_dso(current_ar: float, credit_sales: float, days: int) -> float | None:
    """Best possible DSO (CRF): current (not yet due) AR / credit sales × days."""
    if credit_sales <= 0:
        return None
    return current_ar / credit_sales * days


def average_days_delinquent(dso: float | None, best: float | None) -> float | None:
    """Average days delinquent (CRF): DSO − best possible DSO."""
    if dso is None or best is None:
        return None
    return dso - best


def collection_effectiveness_index(
    beginning_ar: float, credit_sales: float, ending_total_ar: float, ending_current_ar: float
) -> float | None:
    """Collection effectiveness index (CRF), in percent:
    (beginning AR + credit sales − ending total AR) / (beginning AR + credit sales − ending
    current AR) × 100. ``None`` when the denominator is zero or negative (nothing was
    collectible)."""
    denominator = beginning_ar + credit_sales - ending_current_ar
    if denominator <= 0:
        return None
    return (beginning_ar + credit_sales - ending_total_ar) / denominator * 100


def dso_countback(ending_ar: float, windows: Sequence[tuple[float, int]]) -> float | None:
    """Countback DSO (CRF "countback" / exhaustion method).

    ``windows``: (credit sales, days) per month, newest first. Walk back month by month,
    consuming each month's sales until the ending AR is used up; the result is the whole
    months' days plus the used fraction of the last month. 0 when AR is zero or a credit
    balance; ``None`` when the AR exceeds all the sales in the windows given.
    """
    if ending_ar <= 0:
        return 0.0
    remaining = ending_ar
    days = 0.0
    for sales, window_days in windows:
        if sales > 0 and remaining <= sales:
            return days + remaining / sales * window_days
        if sales > 0:
            remaining -= sales
        days += window_days
    return None


def receivables_turnover(credit_sales: float, beginning_ar: float, ending_ar: float) -> float | None:
    """Receivables turnover for the period (not annualised): credit sales / average AR,
    average AR = (beginning AR + ending AR) / 2 (the usual textbook definition)."""
    average = (beginning_ar + ending_ar) / 2
    if average <= 0:
        return None
    return credit_sales / average


# ---------------------------------------------------------------------------------------
# the KPI result
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KpiResult:
    """The CFO's measures as of one date, computed once and rendered many ways.

    Money in base currency; days in calendar days; rates in percent (0-100).
    ``aging`` maps bucket label to open amount, buckets in order, and sums to ``ar_total``.
    Period-based measures (dso, best_possible_dso, add, cei, turnover, the days-to-pay
    family, dispute and promise rates) cover ``period_start`` .. ``period_end``.
    ``turnover`` is for the period, not annualised. ``invoice_count`` counts every document
    in the store issued on or before ``as_of``; ``open_invoices`` those still open.

    Behaviour measures over the period: ``avg_days_to_pay`` (paid date − invoice date) and
    ``avg_days_late`` (paid date − due date, paying early counts as 0) over invoices
    settled in the period with at least some cash (credited or written off ones are not
    "paid"), plain and amount-weighted (``*_weighted``); ``dispute_rate`` = disputes opened
    ÷ invoices issued in the period × 100; ``avg_days_to_resolve`` over disputes resolved in
    the period; ``promise_kept_rate`` see :func:`_promise_kept`. ``credit_sales`` = invoices
    (doc_type ``invoice``) issued in the period; ``beginning_ar`` = open AR the day before
    ``period_start``; ``aging_invoices`` = open documents per bucket.

    Open AR splits in two: what customers owe on invoices (``owed_aging`` / ``owed_invoices``
    per bucket: invoices with a positive balance — what the worklist chases and the cash
    forecast collects) and everything that nets against it (``credits_total`` over
    ``credit_documents``: credit notes, unapplied cash, overpaid invoices, journals — usually
    negative). ``owed_total + credits_total == ar_total``.
    """

    as_of: date
    period: str
    period_start: date
    period_end: date
    ar_total: float
    ar_current: float
    ar_overdue: float
    pct_current: float | None
    aging: dict[str, float]
    credit_sales: float
    beginning_ar: float
    dso: float | None
    dso_countback: float | None
    best_possible_dso: float | None
    add: float | None
    cei: float | None
    avg_days_to_pay: float | None
    avg_days_to_pay_weighted: float | None
    avg_days_late: float | None
    avg_days_late_weighted: float | None
    dispute_rate: float | None
    avg_days_to_resolve: float | None
    promise_kept_rate: float | None
    turnover: float | None
    open_invoices: int
    invoice_count: int
    aging_invoices: dict[str, int] = field(default_factory=dict)
    owed_aging: dict[str, float] = field(default_factory=dict)
    owed_invoices: dict[str, int] = field(default_factory=dict)
    credits_total: float = 0.0
    credit_documents: int = 0
    issued_invoices: int = 0
    issued_credit_notes: int = 0

    @property
    def owed_total(self) -> float:
        """Open amount of the invoices with a positive balance (base currency)."""
        return sum(self.owed_aging.values())

    @property
    def owed_count(self) -> int:
        """How many invoices have a positive balance."""
        return sum(self.owed_invoices.values())

    def aging_table(self) -> pl.DataFrame:
        """The aging a person reads: invoices owed per bucket (never negative), then one row for
        credit notes and unapplied cash (:data:`CREDITS`); rows sum to ``ar_total``.

        Columns: bucket, amount, invoices (documents in the row), share (% of open AR).
        """
        buckets = list(self.aging)
        frame = pl.DataFrame(
            {
                "bucket": [*buckets, CREDITS],
                "amount": [float(self.owed_aging.get(b, 0.0)) for b in buckets] + [float(self.credits_total)],
                "invoices": [int(self.owed_invoices.get(b, 0)) for b in buckets] + [int(self.credit_documents)],
            },
            schema={"bucket": pl.String, "amount": pl.Float64, "invoices": pl.Int64},
        )
        return frame.with_columns(
            (pl.col("amount") / self.ar_total * 100 if self.ar_total else pl.lit(None, dtype=pl.Float64)).alias("share")
        )

    def open_ar_note(self) -> str:
        """Why open AR, the invoices owed and the documents counted differ, in one line."""
        return (
            f"Open AR {money(self.ar_total)} = {money(self.owed_total)} owed on {self.owed_count:,} invoices "
            f"{'−' if self.credits_total <= 0 else '+'} {money(abs(self.credits_total))} of credit notes and "
            f"unapplied cash ({self.credit_documents:,} documents): {self.open_invoices:,} open documents in all. "
            f"The cash forecast and the worklist collect the {self.owed_count:,} invoices."
        )

    def documents_note(self) -> str:
        """What the document count holds: "13,686 invoices and 262 credit notes issued"."""
        return (
            f"{self.issued_invoices:,} invoices and {self.issued_credit_notes:,} credit notes issued up to "
            f"{day(self.as_of)}; {self.open_invoices:,} documents open"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dates as ISO strings, money rounded to the cent, other figures to 4 decimals."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, date):
                out[key] = value.isoformat()
            elif isinstance(value, float):
                out[key] = _round(key, value)
        out["aging"] = {k: round(v, 2) for k, v in self.aging.items()}
        return out

    def aging_frame(self) -> pl.DataFrame:
        """The aging as a frame (bucket, amount, invoices, share), as :func:`aging` returns it."""
        frame = pl.DataFrame(
            {
                "bucket": list(self.aging),
                "amount": [float(v) for v in self.aging.values()],
                "invoices": [int(self.aging_invoices.get(b, 0)) for b in self.aging],
            },
            schema={"bucket": pl.String, "amount": pl.Float64, "invoices": pl.Int64},
        )
        total = frame["amount"].sum()
        return frame.with_columns(
            (pl.col("amount") / total * 100 if total else pl.lit(None, dtype=pl.Float64)).alias("share")
        )

    def summary(self) -> str:
        """One line for the CLI."""

        def fmt(value: float | None, unit: str = "") -> str:
            return "n/a" if value is None else f"{value:,.1f}{unit}"

        return (
            f"As of {self.as_of}: open AR {self.ar_total:,.2f} ({fmt(self.pct_current, '%')} current, "
            f"{self.ar_overdue:,.2f} overdue) on {self.open_invoices} open documents; "
            f"DSO {fmt(self.dso)} (countback {fmt(self.dso_countback)}, best {fmt(self.best_possible_dso)}, "
            f"ADD {fmt(self.add)}); CEI {fmt(self.cei, '%')}"
        )


def _round(key: str, value: float) -> float:
    if math.isnan(value):
        return value
    if key.startswith(("ar_", "credit_sales", "beginning_ar")):
        return round(value, 2)
    return round(value, 4)


def _scalar_float(value: Any) -> float | None:
    return None if value is None else float(value)


def compute_kpis(
    store: Store,
    as_of: date,
    *,
    period: str = "month",
    filters: Filters = Filters(),
    buckets: Sequence[int] = DEFAULT_BUCKETS,
) -> KpiResult:
    """Every CFO measure as of ``as_of`` (see :class:`KpiResult` and the formula functions)."""
    return compute_kpis_many(store, [as_of], period=period, filters=filters, buckets=buckets)[0]


def compute_kpis_many(
    store: Store,
    dates: Sequence[date],
    *,
    period: str = "month",
    filters: Filters = Filters(),
    buckets: Sequence[int] = DEFAULT_BUCKETS,
) -> list[KpiResult]:
    """:func:`compute_kpis` for several as-of dates (e.g. now and the previous month-end for
    the cards' changes), sharing one open-items pass and one credit-sales pass."""
    buckets = validate_buckets(buckets)
    labels = bucket_labels(buckets)
    bounds = {d: period_bounds(d, period) for d in dates}
    beginnings = {d: start - timedelta(days=1) for d, (start, _) in bounds.items()}
    ar_dates = sorted(set(dates) | set(beginnings.values()))

    # AR at every as-of date and the day before each period: one pass of the open-items definition.
    sql, params = open_items_at_dates_sql(ar_dates, filters=filters, buckets=buckets)
    aged = store.query(
        f"SELECT as_of, bucket, {_OWED_SQL} AS owed, sum(open_amount)::DOUBLE AS amount, "
        f"count(*)::BIGINT AS invoices FROM ({sql}) GROUP BY ALL ORDER BY ALL",  # ordered: summed in Python
        params,
    )
    windows_by_date = {d: _monthly_windows(d, COUNTBACK_MAX_MONTHS) for d in dates}
    all_windows = sorted({w for ws in windows_by_date.values() for w in ws})
    sales = dict(zip(all_windows, _sales_in_windows(store, all_windows, filters), strict=True))

    results: list[KpiResult] = []
    for as_of in dates:
        start, end = bounds[as_of]
        days = _days(start, end)
        now = aged.filter(pl.col("as_of") == as_of)
        aging = dict.fromkeys(labels, 0.0)
        aging_invoices = dict.fromkeys(labels, 0)
        owed_aging = dict.fromkeys(labels, 0.0)
        owed_invoices = dict.fromkeys(labels, 0)
        credits_total, credit_documents = 0.0, 0
        for bucket, owed, amount, invoices in now.select("bucket", "owed", "amount", "invoices").iter_rows():
            aging[bucket] += float(amount)
            aging_invoices[bucket] += int(invoices)
            if owed:
                owed_aging[bucket] = float(amount)
                owed_invoices[bucket] = int(invoices)
            else:
                credits_total += float(amount)
                credit_documents += int(invoices)
        ar_total = sum(aging.values())
        ar_current = aging[CURRENT]
        beginning_ar = float(aged.filter(pl.col("as_of") == beginnings[as_of])["amount"].sum())
        activity = _period_activity(store, start, end, filters)
        credit_sales = activity["credit_sales"]
        dso = dso_standard(ar_total, credit_sales, days)
        best = best_possible_dso(ar_current, credit_sales, days)
        results.append(
            KpiResult(
                as_of=as_of,
                period=period,
                period_start=start,
                period_end=end,
                ar_total=ar_total,
                ar_current=ar_current,
                ar_overdue=ar_total - ar_current,
                pct_current=(ar_current / ar_total * 100) if ar_total > 0 else None,
                aging=aging,
                credit_sales=credit_sales,
                beginning_ar=beginning_ar,
                dso=dso,
                dso_countback=dso_countback(ar_total, [sales[w] for w in windows_by_date[as_of]]),
                best_possible_dso=best,
                add=average_days_delinquent(dso, best),
                cei=collection_effectiveness_index(beginning_ar, credit_sales, ar_total, ar_current),
                avg_days_to_pay=activity["avg_days_to_pay"],
                avg_days_to_pay_weighted=activity["avg_days_to_pay_weighted"],
                avg_days_late=activity["avg_days_late"],
                avg_days_late_weighted=activity["avg_days_late_weighted"],
                dispute_rate=activity["dispute_rate"],
                avg_days_to_resolve=activity["avg_days_to_resolve"],
                promise_kept_rate=activity["promise_kept_rate"],
                turnover=receivables_turnover(credit_sales, beginning_ar, ar_total),
                open_invoices=sum(aging_invoices.values()),
                invoice_count=activity["invoice_count"],
                aging_invoices=aging_invoices,
                owed_aging=owed_aging,
                owed_invoices=owed_invoices,
                credits_total=credits_total,
                credit_documents=credit_documents,
                issued_invoices=activity["issued_invoices"],
                issued_credit_notes=activity["issued_credit_notes"],
            )
        )
    return results


def previous_month_end(as_of: date) -> date:
    """The as-of date the Overview compares with: the day before the month ending on ``as_of``."""
    return month_window(as_of)[0] - timedelta(days=1)


def _sales_in_windows(store: Store, windows: Sequence[tuple[date, date]], filters: Filters) -> list[tuple[float, int]]:
    """Credit sales (invoices issued, base currency) per window, in the order given."""
    clause, params = customer_filter_clause(filters, "i.customer_id")
    starts = ", ".join(date_literal(s) for s, _ in windows)
    ends = ", ".join(date_literal(e) for _, e in windows)
    first, last = date_literal(min(s for s, _ in windows)), date_literal(max(e for _, e in windows))
    frame = store.query(
        f"""
        WITH w AS (
            SELECT unnest([{starts}]) AS window_start, unnest([{ends}]) AS window_end,
                   unnest(range({len(windows)})) AS position
        ),
        daily AS (  -- per day first (exact: decimal sums), so the windows join a few hundred rows
            SELECT i.invoice_date, sum(i.amount_base) AS sales
            FROM ledger_documents i
            WHERE i.doc_type = 'invoice' AND i.invoice_date BETWEEN {first} AND {last}{clause}
            GROUP BY 1
        )
        SELECT w.position, coalesce(sum(d.sales), 0)::DOUBLE AS sales
        FROM w LEFT JOIN daily d ON d.invoice_date BETWEEN w.window_start AND w.window_end
        GROUP BY w.position ORDER BY w.position
        """,
        params,
    )
    sales = frame["sales"].to_list()
    return [(float(s), _days(start, stop)) for s, (start, stop) in zip(sales, windows, strict=True)]


def _period_activity(store: Store, start: date, end: date, filters: Filters) -> dict[str, Any]:
    """Credit sales, payment behaviour, disputes and promises within ``start`` .. ``end``,
    using only what was known on ``end``."""
    clause, params = customer_filter_clause(filters, "i.customer_id")
    s, e = date_literal(start), date_literal(end)
    row = store.query(
        f"""
        SELECT
            count(*)::BIGINT AS invoice_count,
            count(*) FILTER (WHERE i.doc_type = 'invoice')::BIGINT AS all_invoices,
            count(*) FILTER (WHERE i.doc_type = 'credit_memo')::BIGINT AS all_credit_notes
        FROM invoices i
        WHERE i.invoice_date <= {e}{clause}
        """,
        params,
    ).row(0, named=True)
    # the period's invoices at the ledger's base amount (its 'invoice' documents are the invoices rows)
    row |= store.query(
        f"""
        SELECT coalesce(sum(i.amount_base), 0)::DOUBLE AS credit_sales, count(*)::BIGINT AS invoices_issued
        FROM ledger_documents i
        WHERE i.doc_type = 'invoice' AND i.invoice_date BETWEEN {s} AND {e}{clause}
        """,
        params,
    ).row(0, named=True)

    paid_sql, paid_params = paid_dates_sql(end, since=start, filters=filters)
    pay = store.query(
        f"""
        SELECT avg(paid_date - invoice_date)::DOUBLE AS avg_days_to_pay,
               (sum((paid_date - invoice_date) * amount) / nullif(sum(amount), 0))::DOUBLE
                   AS avg_days_to_pay_weighted,
               avg(greatest(paid_date - due_date, 0))::DOUBLE AS avg_days_late,
               (sum(greatest(paid_date - due_date, 0) * amount) / nullif(sum(amount), 0))::DOUBLE
                   AS avg_days_late_weighted
        FROM ({paid_sql}) p
        WHERE doc_type = 'invoice' AND amount > 0 AND paid_by_payments > 0 AND paid_date BETWEEN {s} AND {e}
        """,
        paid_params,
    ).row(0, named=True)

    dclause, dparams = customer_filter_clause(filters, "coalesce(d.customer_id, i.customer_id)")
    # the invoice's customer matters only to a filter (invoice ids are unique: the join adds no rows)
    invoice_join = "" if filters.is_empty else " LEFT JOIN invoices i ON i.invoice_id = d.invoice_id"
    disputes = store.query(
        f"""
        SELECT count(*) FILTER (WHERE d.opened_date BETWEEN {s} AND {e})::BIGINT AS opened,
               avg(d.resolved_date - d.opened_date) FILTER (
                   WHERE d.resolved_date BETWEEN {s} AND {e})::DOUBLE AS avg_days_to_resolve
        FROM disputes d{invoice_join}
        WHERE d.opened_date <= {e}{dclause}
        """,
        dparams,
    ).row(0, named=True)

    promise = _promise_kept(store, start, end, filters)
    issued = int(row["invoices_issued"])
    return {
        "credit_sales": float(row["credit_sales"]),
        "invoice_count": int(row["invoice_count"]),
        "issued_invoices": int(row["all_invoices"]),
        "issued_credit_notes": int(row["all_credit_notes"]),
        **{k: _scalar_float(v) for k, v in pay.items()},
        "dispute_rate": (int(disputes["opened"]) / issued * 100) if issued else None,
        "avg_days_to_resolve": _scalar_float(disputes["avg_days_to_resolve"]),
        "promise_kept_rate": promise,
    }


def _promise_kept(store: Store, start: date, end: date, filters: Filters) -> float | None:
    """Promise-to-pay kept rate, in percent.

    Promises (contacts with outcome 'promise to pay') whose promised date falls in the period
    and whose grace period (:data:`PROMISE_GRACE_DAYS`) has ended by ``end``. A promise is kept
    when payments from the contact's date to the promised date plus grace, on the promised
    invoice (or any of the customer's invoices when none is named), reach the promised
    amount (any payment when no amount was promised). ``None`` when no promise fell due.
    """
    clause, params = customer_filter_clause(filters, "k.customer_id")
    s, e = date_literal(start), date_literal(end)
    value = store.scalar(
        f"""
        WITH promises AS (
            SELECT k.contact_id, k.customer_id, k.invoice_id, k.ts::DATE AS made, k.promise_date,
                   k.promise_amount::DOUBLE AS promise_amount
            FROM contacts k
            WHERE lower(k.outcome) = 'promise to pay' AND k.promise_date IS NOT NULL
              AND k.promise_date >= {s}
              AND k.promise_date + {PROMISE_GRACE_DAYS} <= {e}{clause}
        ),
        matched AS (  -- two equi-joins, not one join on a CASE: keeps it a hash join at 1M payments
            SELECT pr.contact_id, p.amount, p.payment_date
            FROM promises pr JOIN payments p ON p.invoice_id = pr.invoice_id
            WHERE pr.invoice_id IS NOT NULL
            UNION ALL
            SELECT pr.contact_id, p.amount, p.payment_date
            FROM promises pr JOIN payments p ON p.customer_id = pr.customer_id
            WHERE pr.invoice_id IS NULL
        ),
        received AS (
            SELECT pr.contact_id, coalesce(sum(m.amount), 0)::DOUBLE AS received, count(m.amount) AS n
            FROM promises pr
            LEFT JOIN matched m ON m.contact_id = pr.contact_id
             AND m.payment_date BETWEEN pr.made AND pr.promise_date + {PROMISE_GRACE_DAYS}
            GROUP BY pr.contact_id
        )
        SELECT avg(CASE WHEN (pr.promise_amount IS NULL AND r.n > 0)
                          OR (pr.promise_amount IS NOT NULL AND r.received >= pr.promise_amount - 0.005)
                        THEN 100.0 ELSE 0.0 END)::DOUBLE
        FROM promises pr JOIN received r USING (contact_id)
        """,
        params,
    )
    return _scalar_float(value)


# ---------------------------------------------------------------------------------------
# frames for pages and later issues
# ---------------------------------------------------------------------------------------
def aging(
    store: Store, as_of: date, *, filters: Filters = Filters(), buckets: Sequence[int] = DEFAULT_BUCKETS
) -> pl.DataFrame:
    """Open AR by aging bucket on ``as_of``: columns bucket, amount, invoices, share (% of
    the total), every bucket present and in order. ``amount`` sums to the open AR total."""
    labels = bucket_labels(buckets)
    sql, params = open_items_sql(as_of, filters=filters, buckets=buckets)
    got = store.query(
        f"SELECT bucket, sum(open_amount)::DOUBLE AS amount, count(*)::BIGINT AS invoices FROM ({sql}) GROUP BY 1",
        params,
    )
    frame = (
        pl.DataFrame({"bucket": labels, "position": list(range(len(labels)))})
        .join(got, on="bucket", how="left")
        .with_columns(pl.col("amount").fill_null(0.0), pl.col("invoices").fill_null(0))
        .sort("position")
        .drop("position")
    )
    total = frame["amount"].sum()
    return frame.with_columns(
        (pl.col("amount") / total * 100 if total else pl.lit(None, dtype=pl.Float64)).alias("share")
    )


def aging_reconciliation(aging_frame: pl.DataFrame, ar_total: float) -> dict[str, Any]:
    """The check the Overview shows: do the buckets sum to the open AR?

    Returns bucket_sum, ar_total, difference and ``reconciles`` (difference under a cent).
    """
    bucket_sum = float(aging_frame["amount"].sum())
    difference = round(bucket_sum - ar_total, 2)
    return {
        "bucket_sum": round(bucket_sum, 2),
        "ar_total": round(ar_total, 2),
        "difference": difference,
        "reconciles": abs(difference) < 0.01,
    }


def history_points(last: date, months: int) -> list[date]:
    """The dates :func:`kpi_history` reports: the previous ``months - 1`` month-ends and ``last``."""
    if months < 1:
        msg = f"History needs at least one month; got months={months!r}"
        raise MetricError(msg)
    return [stop for _, stop in reversed(_monthly_windows(last, months))]


def kpi_history(
    store: Store,
    last: date,
    *,
    months: int = 24,
    filters: Filters = Filters(),
    buckets: Sequence[int] = DEFAULT_BUCKETS,
) -> pl.DataFrame:
    """Monthly KPIs for ``months`` points ending on ``last`` (oldest first).

    Points are month-ends, the newest being ``last`` itself, so the last row equals
    ``compute_kpis(store, last)``. One SQL pass for the AR and aging at every point, one for
    credit sales per month. Columns: month_end, ar_total, ar_current, ar_overdue,
    pct_current, credit_sales, dso, dso_countback, best_possible_dso, add, cei, one column per
    aging bucket label (net), ``owed_<bucket>`` per bucket (invoices with a positive balance)
    and ``credits`` (credit notes and unapplied cash, see :class:`KpiResult`).
    """
    buckets = validate_buckets(buckets)
    labels = bucket_labels(buckets)
    windows = _monthly_windows(last, months + COUNTBACK_MAX_MONTHS)
    points = [stop for _, stop in windows[:months]]
    ar_dates = [stop for _, stop in windows[: months + 1]]  # one more: beginning AR of the oldest
    sql, params = open_items_at_dates_sql(ar_dates, filters=filters, buckets=buckets)
    aged = store.query(
        # ordered: the credits are summed in Python, and a float sum depends on its order
        f"SELECT as_of, bucket, {_OWED_SQL} AS owed, sum(open_amount)::DOUBLE AS amount FROM ({sql}) "
        "GROUP BY ALL ORDER BY ALL",
        params,
    )
    wide: dict[date, dict[str, float]] = {d: dict.fromkeys(labels, 0.0) for d in ar_dates}
    owed: dict[date, dict[str, float]] = {d: {f"owed_{b}": 0.0 for b in labels} for d in ar_dates}
    credits: dict[date, float] = dict.fromkeys(ar_dates, 0.0)
    for as_of, bucket, is_owed, amount in aged.iter_rows():
        wide[as_of][bucket] += float(amount)
        if is_owed:
            owed[as_of][f"owed_{bucket}"] = float(amount)
        else:
            credits[as_of] += float(amount)
    sales = _sales_in_windows(store, windows, filters)

    rows: list[dict[str, Any]] = []
    for position, point in enumerate(points):
        ar = wide[point]
        total = sum(ar.values())
        current = ar[CURRENT]
        beginning = sum(wide[ar_dates[position + 1]].values())
        credit_sales, days = sales[position]
        dso = dso_standard(total, credit_sales, days)
        best = best_possible_dso(current, credit_sales, days)
        rows.append(
            {
                "month_end": point,
                "ar_total": total,
                "ar_current": current,
                "ar_overdue": total - current,
                "pct_current": current / total * 100 if total > 0 else None,
                "credit_sales": credit_sales,
                "dso": dso,
                "dso_countback": dso_countback(total, sales[position : position + COUNTBACK_MAX_MONTHS]),
                "best_possible_dso": best,
                "add": average_days_delinquent(dso, best),
                "cei": collection_effectiveness_index(beginning, credit_sales, total, current),
                **ar,
                **owed[point],
                "credits": credits[point],
            }
        )
    schema: dict[str, Any] = {
        "month_end": pl.Date,
        **{
            k: pl.Float64
            for k in (
                "ar_total", "ar_current", "ar_overdue", "pct_current", "credit_sales", "dso",
                "dso_countback", "best_possible_dso", "add", "cei",
            )
        },
        **dict.fromkeys(labels, pl.Float64),
        **{f"owed_{b}": pl.Float64 for b in labels},
        "credits": pl.Float64,
    }
    return pl.DataFrame(list(reversed(rows)), schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def roll_rates(
    store: Store,
    from_date: date,
    to_date: date,
    *,
    filters: Filters = Filters(),
    buckets: Sequence[int] = DEFAULT_BUCKETS,
) -> pl.DataFrame:
    """How the balances open on ``from_date`` moved by ``to_date``.

    One row per (from_bucket, to_bucket) with to_bucket ``paid`` when the document was
    settled (paid, credited or written off) by ``to_date``. Columns: from_bucket,
    to_bucket, amount (open amount on ``from_date``), invoices, share (% of the from
    bucket's amount). Ordered by bucket. Only debit balances roll: credit memos and
    unapplied cash (negative open amounts) and documents issued after ``from_date`` are
    not part of the matrix.
    """
    if to_date <= from_date:
        msg = f"Roll rates need a later second date; got {from_date} then {to_date}"
        raise MetricError(msg)
    return _roll_matrices(store, [from_date, to_date], filters, buckets).drop("from_date", "to_date")


def roll_rate_matrices(
    store: Store,
    last: date,
    *,
    months: int = 12,
    filters: Filters = Filters(),
    buckets: Sequence[int] = DEFAULT_BUCKETS,
) -> pl.DataFrame:
    """:func:`roll_rates` for each of the ``months`` steps between consecutive
    :func:`history_points` ending on ``last``, in one pass. Columns: from_date, to_date,
    then those of :func:`roll_rates`. The last step is ``roll_rates(previous month-end, last)``."""
    return _roll_matrices(store, history_points(last, months + 1), filters, buckets)


def _roll_matrices(store: Store, points: Sequence[date], filters: Filters, buckets: Sequence[int]) -> pl.DataFrame:
    labels = bucket_labels(buckets)
    sql, params = open_items_at_dates_sql(points, filters=filters, buckets=buckets)
    steps = ", ".join(f"({date_literal(a)}, {date_literal(b)})" for a, b in zip(points, points[1:], strict=False))
    frame = store.query(
        f"""
        WITH items AS ({sql}),
        steps AS (SELECT * FROM (VALUES {steps}) t(from_date, to_date))
        SELECT s.from_date, s.to_date, b.bucket AS from_bucket, coalesce(a.bucket, '{PAID}') AS to_bucket,
               sum(b.open_amount)::DOUBLE AS amount, count(*)::BIGINT AS invoices
        FROM steps s
        JOIN items b ON b.as_of = s.from_date AND b.open_amount > 0
        LEFT JOIN items a ON a.as_of = s.to_date AND a.invoice_id = b.invoice_id
        GROUP BY ALL
        """,
        params,
    )
    if frame.is_empty():
        return frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("share"))
    order = {label: i for i, label in enumerate([*labels, PAID])}
    return (
        frame.with_columns(
            (pl.col("amount") / pl.col("amount").sum().over("to_date", "from_bucket") * 100).alias("share"),
            pl.col("from_bucket").replace_strict(order, return_dtype=pl.Int64).alias("_f"),
            pl.col("to_bucket").replace_strict(order, return_dtype=pl.Int64).alias("_t"),
        )
        .sort("to_date", "_f", "_t")
        .drop("_f", "_t")
    )


def forward_roll_rates(matrices: pl.DataFrame, buckets: Sequence[int] = DEFAULT_BUCKETS) -> pl.DataFrame:
    """From :func:`roll_rate_matrices`: for each step and bucket k (except the oldest), the %
    of bucket k's amount that sat in an older bucket (k+1 or later, not ``paid``) at the
    step's end. Columns: month_end (the step's end), from_bucket, roll_rate (percent)."""
    labels = bucket_labels(buckets)
    position = {label: i for i, label in enumerate(labels)}
    if matrices.is_empty():
        return pl.DataFrame(schema={"month_end": pl.Date, "from_bucket": pl.String, "roll_rate": pl.Float64})
    ranked = matrices.with_columns(
        pl.col("from_bucket").replace_strict(position, return_dtype=pl.Int64).alias("_f"),
        pl.col("to_bucket").replace_strict(position, default=-1, return_dtype=pl.Int64).alias("_t"),
    ).filter(pl.col("_f") < len(labels) - 1)
    return (
        ranked.group_by("to_date", "from_bucket", "_f")
        .agg((pl.col("amount").filter(pl.col("_t") > pl.col("_f")).sum() / pl.col("amount").sum() * 100)
             .alias("roll_rate"))
        .sort("to_date", "_f")
        .select(pl.col("to_date").alias("month_end"), "from_bucket", "roll_rate")
    )


def roll_rate_history(
    store: Store,
    last: date,
    *,
    months: int = 12,
    filters: Filters = Filters(),
    buckets: Sequence[int] = DEFAULT_BUCKETS,
) -> pl.DataFrame:
    """Month-over-month forward roll rates: for each month-end M and bucket k, the % of the
    amount in bucket k at the previous month-end that sat in bucket k+1 (or later) at M.

    Columns: month_end, from_bucket, roll_rate (percent). The collections manager's early
    warning: a rising Current -> 1-30 rate shows up before DSO moves. Debit balances only,
    as in :func:`roll_rates`.
    """
    matrices = roll_rate_matrices(store, last, months=months, filters=filters, buckets=buckets)
    return forward_roll_rates(matrices, buckets)


def top_overdue_customers(
    store: Store, as_of: date, *, limit: int = 10, filters: Filters = Filters()
) -> pl.DataFrame:
    """Customers with the most overdue AR on ``as_of``.

    Columns: customer_id, name, overdue_amount, open_amount, overdue_invoices,
    oldest_days_past_due, largest first.
    """
    sql, params = open_items_sql(as_of, filters=filters)
    return store.query(
        f"""
        SELECT o.customer_id, any_value(c.name) AS name,
               sum(o.open_amount) FILTER (WHERE o.days_past_due > 0)::DOUBLE AS overdue_amount,
               sum(o.open_amount)::DOUBLE AS open_amount,
               count(*) FILTER (WHERE o.days_past_due > 0)::BIGINT AS overdue_invoices,
               max(o.days_past_due)::INTEGER AS oldest_days_past_due
        FROM ({sql}) o LEFT JOIN customers c ON c.customer_id = o.customer_id
        GROUP BY o.customer_id
        HAVING sum(o.open_amount) FILTER (WHERE o.days_past_due > 0) > 0
        ORDER BY overdue_amount DESC, o.customer_id
        LIMIT {int(limit)}
        """,
        params,
    )
