"""Behavioural customer segments per month-end, and migration between months.

A customer's segment on month-end M is decided from the invoices that fell due in the
trailing window (12 months by default) ending on M, using only what was known on M: an
invoice paid by M counts with its days late (paid date − due date); one still open on M
counts with the days it has been overdue so far (M − due date). The rules are transparent,
versioned and editable (:class:`SegmentRules`); they apply in this order, first match wins:

1. ``new`` — too little history: fewer than ``min_invoices`` invoices due in the window, or a
   first invoice less than ``min_tenure_days`` before M.
2. ``deteriorating`` — the recent months (``recent_months``) average at least
   ``deteriorating_min_days_late`` days late and at least ``deteriorating_increase_days`` more
   than the rest of the window.
3. ``disputer`` — disputes opened in the window ≥ ``disputer_min_disputes`` and ≥
   ``disputer_rate`` × invoices due in the window.
4. ``chronic_late`` — average days late above ``slow_max_days_late`` (15).
5. ``slow`` — average days late from ``on_time_max_days_late`` (1) to 15.
6. ``prompt`` — pays on average at least ``prompt_days_early`` days before the due date and
   at most ``prompt_max_late_share`` of invoices late.
7. ``on_time`` — everyone else.

Days late are counted as 0 for invoices paid on or before the due date.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import date, timedelta
from typing import Any

import polars as pl

from dashboard.dates import add_months, month_end
from dashboard.errors import MetricError
from dashboard.filters import Filters
from dashboard.ledger import PAID_FRAME, customer_filter_clause, date_literal, open_items_at_dates_sql, paid_dates_sql
from dashboard.store import Store
from dashboard.vocabulary import NO_SEGMENT, SEGMENTS

#: Severity used to call a move "worse" (higher is worse). ``new`` and "none" are unranked.
SEVERITY: dict[str, int] = {
    "prompt": 0, "on_time": 1, "slow": 2, "disputer": 3, "deteriorating": 3, "chronic_late": 4,
}


@dataclass(frozen=True)
class SegmentRules:
    """Thresholds of the segment rules; change ``rule_version`` whenever a threshold changes."""

    rule_version: str = "v1"
    window_months: int = 12
    recent_months: int = 3
    min_invoices: int = 4
    min_tenure_days: int = 90
    disputer_rate: float = 0.2
    disputer_min_disputes: int = 2
    prompt_days_early: float = 3.0
    prompt_max_late_share: float = 0.05
    on_time_max_days_late: float = 1.0
    slow_max_days_late: float = 15.0
    deteriorating_increase_days: float = 10.0
    deteriorating_min_days_late: float = 5.0
    deteriorating_min_recent_invoices: int = 2

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name == "rule_version":
                if not isinstance(value, str) or not value.strip():
                    msg = f"A segment rule version must be a non-empty name; got {value!r}"
                    raise MetricError(msg)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                msg = f"Segment threshold {name} must be a number of zero or more; got {value!r}"
                raise MetricError(msg)
        if not 0 < self.recent_months < self.window_months:
            msg = (
                f"The recent months ({self.recent_months!r}) must be fewer than the window "
                f"({self.window_months!r} months)"
            )
            raise MetricError(msg)
        if self.on_time_max_days_late > self.slow_max_days_late:
            msg = (
                f"No customer could be slow: on_time_max_days_late ({self.on_time_max_days_late!r}) is above "
                f"slow_max_days_late ({self.slow_max_days_late!r}); slow starts where on time ends."
            )
            raise MetricError(msg)


DEFAULT_RULES = SegmentRules()
#: ``rule_version`` of thresholds an analyst is trying out (never stored, never used by models).
WHAT_IF_VERSION = "what-if"


def what_if_rules(changes: dict[str, float], base: SegmentRules = DEFAULT_RULES) -> SegmentRules:
    """``base`` with some thresholds changed, as a what-if (``rule_version`` :data:`WHAT_IF_VERSION`).

    Whole-number settings (months, counts, days of tenure) must get whole numbers. Raises
    :class:`MetricError` naming the setting for an unknown one or a value the rules refuse;
    with no actual change, returns ``base`` itself.
    """
    kinds = {f.name: f.type for f in fields(SegmentRules) if f.name != "rule_version"}
    coerced: dict[str, float] = {}
    for name, value in changes.items():
        if name not in kinds:
            msg = f"There is no segment threshold called {name!r}; the thresholds are: {', '.join(kinds)}."
            raise MetricError(msg)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            msg = f"Segment threshold {name} must be a number; got {value!r}."
            raise MetricError(msg)
        if kinds[name] == "int":
            if float(value) != int(value):
                msg = f"Segment threshold {name} is a whole number; got {value!r}."
                raise MetricError(msg)
            value = int(value)
        coerced[name] = value if kinds[name] == "int" else float(value)
    changed = {name: value for name, value in coerced.items() if getattr(base, name) != value}
    if not changed:
        return base
    return replace(base, rule_version=WHAT_IF_VERSION, **changed)


def rules_comparison(shipped: pl.DataFrame, trial: pl.DataFrame, month: date, names: pl.DataFrame) -> pl.DataFrame:
    """Customers whose segment on ``month`` differs between two :func:`segment_history`
    results (the shipped rules and a what-if). Columns: customer_id, name, shipped_segment,
    trial_segment, ar_amount, reason (the what-if's); largest AR first."""
    before = shipped.filter(pl.col("month") == month).select("customer_id", shipped_segment="segment")
    after = trial.filter(pl.col("month") == month).select(
        "customer_id", "reason", trial_segment="segment", ar_amount="open_amount"
    )
    return (
        after.join(before, on="customer_id", how="inner")
        .filter(pl.col("shipped_segment") != pl.col("trial_segment"))
        .join(names.select("customer_id", "name"), on="customer_id", how="left")
        .select("customer_id", "name", "shipped_segment", "trial_segment", "ar_amount", "reason")
        .sort(["ar_amount", "customer_id"], descending=[True, False])
    )


def _segment_case(r: SegmentRules) -> tuple[str, str]:
    """SQL CASE for the segment and for the plain-language reason, over the stats columns."""
    conditions = [
        ("new", f"invoices_due < {int(r.min_invoices)} OR tenure_days < {int(r.min_tenure_days)}",
         f"'only ' || invoices_due || ' invoices due in {r.window_months} months, first invoice ' || tenure_days || ' days ago'"),
        ("deteriorating",
         f"recent_invoices >= {int(r.deteriorating_min_recent_invoices)} AND prior_invoices > 0 "
         f"AND recent_avg_days_late >= {float(r.deteriorating_min_days_late)} "
         f"AND recent_avg_days_late - prior_avg_days_late >= {float(r.deteriorating_increase_days)}",
         f"'last {r.recent_months} months ' || round(recent_avg_days_late, 1) || ' days late on average, before that ' "
         "|| round(prior_avg_days_late, 1)"),
        ("disputer",
         f"disputes >= {int(r.disputer_min_disputes)} AND disputes >= {float(r.disputer_rate)} * invoices_due",
         f"disputes || ' disputes on ' || invoices_due || ' invoices in {r.window_months} months'"),
        ("chronic_late", f"avg_days_late > {float(r.slow_max_days_late)}",
         "round(avg_days_late, 1) || ' days late on average'"),
        ("slow", f"avg_days_late >= {float(r.on_time_max_days_late)}",
         "round(avg_days_late, 1) || ' days late on average'"),
        ("prompt",
         f"avg_days_relative <= -{float(r.prompt_days_early)} AND late_share <= {float(r.prompt_max_late_share)}",
         "'pays ' || round(-avg_days_relative, 1) || ' days before the due date on average'"),
    ]
    segment = "CASE " + " ".join(f"WHEN {cond} THEN '{name}'" for name, cond, _ in conditions) + " ELSE 'on_time' END"
    reason = (
        "CASE " + " ".join(f"WHEN {cond} THEN {text}" for _, cond, text in conditions)
        + " ELSE 'pays around the due date (' || round(avg_days_late, 1) || ' days late on average)' END"
    )
    return segment, reason


def segments_sql(
    months: Sequence[date],
    *,
    rules: SegmentRules = DEFAULT_RULES,
    filters: Filters = Filters(),
    with_open_amount: bool = True,
    paid_from: str | None = None,
) -> tuple[str, list[Any]]:
    """SQL for the segment of every billed customer at each month-end in ``months``.

    Columns: month, customer_id, segment, rule_version, reason, invoices_due,
    paid_invoices, avg_days_late, avg_days_relative (negative = early), late_share,
    recent_invoices, recent_avg_days_late, prior_invoices, prior_avg_days_late, disputes,
    tenure_days, open_amount (AR on the month-end, base currency; NULL when
    ``with_open_amount`` is False, which skips that part of the work: the segment does not use it).
    ``paid_from``: a relation with :func:`dashboard.ledger.paid_dates_sql`'s invoice_id and
    paid_date, computed with ``upto`` = the last month, read instead of computing them again.
    """
    if not months:
        msg = "At least one month is needed for segments"
        raise MetricError(msg)
    # Dates are used as given (a mid-month as-of stays mid-month): nothing after them is read.
    ends = sorted(set(months))
    upto = ends[-1]
    window_starts = [add_months(m, -rules.window_months) for m in ends]
    recent_starts = [add_months(m, -rules.recent_months) for m in ends]
    if paid_from is None:
        paid_sql, paid_params = paid_dates_sql(upto, due_after=min(window_starts), filters=filters)
    else:
        paid_sql, paid_params = f"SELECT invoice_id, paid_date FROM {paid_from}", []
    inv_clause, inv_params = customer_filter_clause(filters, "i.customer_id")
    dis_clause, dis_params = customer_filter_clause(filters, "coalesce(d.customer_id, i.customer_id)")
    open_sql, open_params = open_items_at_dates_sql(ends, filters=filters) if with_open_amount else ("", [])
    segment, reason = _segment_case(rules)

    def array(days: Sequence[date]) -> str:
        return "[" + ", ".join(date_literal(d) for d in days) + "]"

    sql = f"""
    WITH months AS (
        SELECT unnest({array(ends)}) AS month_end, unnest({array(window_starts)}) AS window_start,
               unnest({array(recent_starts)}) AS recent_start
    ),
    paid AS ({paid_sql}),
    inv AS MATERIALIZED (  -- join the paid dates before the month expansion, not after
        SELECT i.invoice_id, i.customer_id, i.invoice_date, i.due_date, p.paid_date
        FROM invoices i LEFT JOIN paid p ON p.invoice_id = i.invoice_id
        WHERE i.doc_type = 'invoice' AND i.amount > 0 AND i.invoice_date <= {date_literal(upto)}{inv_clause}
    ),
    per_invoice AS (
        SELECT m.month_end, v.customer_id, v.due_date > m.recent_start AS is_recent,
               coalesce(v.paid_date <= m.month_end, false) AS is_paid,
               (CASE WHEN v.paid_date <= m.month_end THEN v.paid_date ELSE m.month_end END) - v.due_date
                   AS days_relative
        FROM inv v JOIN months m
          ON v.due_date > m.window_start AND v.due_date <= m.month_end AND v.invoice_date <= m.month_end
    ),
    behaviour AS (
        SELECT month_end, customer_id,
               count(*)::BIGINT AS invoices_due,
               count(*) FILTER (WHERE is_paid)::BIGINT AS paid_invoices,
               avg(greatest(days_relative, 0))::DOUBLE AS avg_days_late,
               avg(days_relative)::DOUBLE AS avg_days_relative,
               avg((days_relative > 0)::INTEGER)::DOUBLE AS late_share,
               count(*) FILTER (WHERE is_recent)::BIGINT AS recent_invoices,
               avg(greatest(days_relative, 0)) FILTER (WHERE is_recent)::DOUBLE AS recent_avg_days_late,
               count(*) FILTER (WHERE NOT is_recent)::BIGINT AS prior_invoices,
               avg(greatest(days_relative, 0)) FILTER (WHERE NOT is_recent)::DOUBLE AS prior_avg_days_late
        FROM per_invoice GROUP BY ALL
    ),
    first_invoice AS (
        SELECT i.customer_id, min(i.invoice_date) AS first_invoice
        FROM invoices i WHERE i.doc_type = 'invoice' AND i.amount > 0 AND i.invoice_date <= {date_literal(upto)}{inv_clause}
        GROUP BY 1
    ),
    disputes_in_window AS (
        SELECT m.month_end, coalesce(d.customer_id, i.customer_id) AS customer_id, count(*)::BIGINT AS disputes
        FROM disputes d LEFT JOIN invoices i ON i.invoice_id = d.invoice_id
        JOIN months m ON d.opened_date > m.window_start AND d.opened_date <= m.month_end
        WHERE TRUE{dis_clause}
        GROUP BY ALL
    ),
    open_ar AS (
        {f"SELECT as_of AS month_end, customer_id, sum(open_amount)::DOUBLE AS open_amount FROM ({open_sql}) GROUP BY ALL"
         if with_open_amount else "SELECT NULL::DATE AS month_end, NULL::VARCHAR AS customer_id, NULL::DOUBLE AS open_amount LIMIT 0"}
    ),
    stats AS (
        SELECT m.month_end, f.customer_id,
               coalesce(b.invoices_due, 0) AS invoices_due, coalesce(b.paid_invoices, 0) AS paid_invoices,
               coalesce(b.avg_days_late, 0) AS avg_days_late, coalesce(b.avg_days_relative, 0) AS avg_days_relative,
               coalesce(b.late_share, 0) AS late_share,
               coalesce(b.recent_invoices, 0) AS recent_invoices, b.recent_avg_days_late,
               coalesce(b.prior_invoices, 0) AS prior_invoices, b.prior_avg_days_late,
               coalesce(d.disputes, 0) AS disputes,
               (m.month_end - f.first_invoice)::INTEGER AS tenure_days,
               {"coalesce(o.open_amount, 0)" if with_open_amount else "NULL::DOUBLE"} AS open_amount
        FROM first_invoice f JOIN months m ON f.first_invoice <= m.month_end
        LEFT JOIN behaviour b ON b.month_end = m.month_end AND b.customer_id = f.customer_id
        LEFT JOIN disputes_in_window d ON d.month_end = m.month_end AND d.customer_id = f.customer_id
        LEFT JOIN open_ar o ON o.month_end = m.month_end AND o.customer_id = f.customer_id
    )
    SELECT month_end AS month, customer_id, {segment} AS segment, '{_quote(rules.rule_version)}' AS rule_version,
           {reason} AS reason,
           invoices_due, paid_invoices, avg_days_late, avg_days_relative, late_share,
           recent_invoices, recent_avg_days_late, prior_invoices, prior_avg_days_late, disputes,
           tenure_days, open_amount
    FROM stats
    """
    params = [*paid_params, *inv_params, *inv_params, *dis_params, *open_params]
    return sql, params


def _quote(text: str) -> str:
    return text.replace("'", "''")


def assign_segments(
    store: Store,
    month_end: date,
    *,
    rules: SegmentRules = DEFAULT_RULES,
    filters: Filters = Filters(),
    with_open_amount: bool = True,
    paid: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The segment of every billed customer as of ``month_end``, with the stats that
    decided it (columns as in :func:`segments_sql`). Any date works, not only month-ends:
    only data dated on or before it is used, so the risk model may use it as a feature
    for that date. ``with_open_amount=False`` leaves ``open_amount`` NULL and skips its
    work (the segment does not use it). ``paid``: the paid dates as of ``month_end``
    (:func:`dashboard.paydist.paid_dates`), when already read."""
    return segment_history(
        store, [month_end], rules=rules, filters=filters, with_open_amount=with_open_amount, paid=paid
    ).drop("month")


def segment_history(
    store: Store,
    months: Sequence[date],
    *,
    rules: SegmentRules = DEFAULT_RULES,
    filters: Filters = Filters(),
    with_open_amount: bool = True,
    paid: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Segments for several month-ends in one pass (column ``month`` added), sorted by
    month and customer. ``with_open_amount`` as in :func:`segments_sql`; ``paid``: the paid
    dates as of the last month, when already read."""
    sql, params = segments_sql(
        months, rules=rules, filters=filters, with_open_amount=with_open_amount,
        paid_from=None if paid is None else PAID_FRAME,
    )
    frames = None if paid is None else {PAID_FRAME: paid}
    return store.query(sql + " ORDER BY month, customer_id", params, frames=frames)


def segment_mix(history: pl.DataFrame) -> pl.DataFrame:
    """Customers and AR per segment and month, from :func:`segment_history`.

    Columns: month, segment, customers, ar_amount; every segment present each month.
    """
    months = history["month"].unique().sort()
    grid = pl.DataFrame({"month": months}).join(pl.DataFrame({"segment": list(SEGMENTS)}), how="cross")
    counts = history.group_by("month", "segment").agg(
        pl.len().cast(pl.Int64).alias("customers"), pl.col("open_amount").sum().alias("ar_amount")
    )
    return (
        grid.join(counts, on=["month", "segment"], how="left")
        .with_columns(pl.col("customers").fill_null(0), pl.col("ar_amount").fill_null(0.0))
        .with_columns(pl.col("segment").replace_strict({s: i for i, s in enumerate(SEGMENTS)}).alias("_o"))
        .sort("month", "_o")
        .drop("_o")
    )


def _two_months(history: pl.DataFrame, from_month: date, to_month: date) -> pl.DataFrame:
    if to_month <= from_month:
        msg = f"Migration needs a later second month; got {from_month} then {to_month}"
        raise MetricError(msg)
    before = history.filter(pl.col("month") == from_month).select(
        "customer_id", pl.col("segment").alias("from_segment"), pl.col("open_amount").alias("from_amount")
    )
    after = history.filter(pl.col("month") == to_month).select(
        "customer_id", pl.col("segment").alias("to_segment"), pl.col("open_amount").alias("ar_amount"),
        pl.col("reason"),
    )
    return after.join(before, on="customer_id", how="left").with_columns(
        pl.col("from_segment").fill_null(NO_SEGMENT), pl.col("from_amount").fill_null(0.0)
    )


def migration_matrix(history: pl.DataFrame, from_month: date, to_month: date) -> pl.DataFrame:
    """:func:`migration` from an already computed :func:`segment_history` holding both months."""
    moves = _two_months(history, from_month, to_month)
    order = {s: i for i, s in enumerate([NO_SEGMENT, *SEGMENTS])}
    return (
        moves.group_by("from_segment", "to_segment")
        .agg(pl.len().cast(pl.Int64).alias("customers"), pl.col("ar_amount").sum())
        .with_columns(
            pl.col("from_segment").replace_strict(order, return_dtype=pl.Int64).alias("_f"),
            pl.col("to_segment").replace_strict(order, return_dtype=pl.Int64).alias("_t"),
        )
        .sort("_f", "_t")
        .drop("_f", "_t")
    )


def migration(
    store: Store,
    from_month: date,
    to_month: date,
    *,
    rules: SegmentRules = DEFAULT_RULES,
    filters: Filters = Filters(),
) -> pl.DataFrame:
    """Transition matrix between two month-ends: from_segment, to_segment, customers,
    ar_amount (the customers' open AR on ``to_month``). A customer first billed after
    ``from_month`` comes from ``none``."""
    if to_month <= from_month:
        msg = f"Migration needs a later second month; got {from_month} then {to_month}"
        raise MetricError(msg)
    history = segment_history(store, [from_month, to_month], rules=rules, filters=filters)
    return migration_matrix(history, from_month, to_month)


def worse_moves(history: pl.DataFrame, from_month: date, to_month: date, names: pl.DataFrame) -> pl.DataFrame:
    """:func:`moved_to_worse` from an already computed :func:`segment_history`; ``names``
    has customer_id and name."""
    moves = _two_months(history, from_month, to_month)
    worse = moves.filter(
        pl.col("from_segment").replace_strict(SEVERITY, default=None, return_dtype=pl.Int64)
        < pl.col("to_segment").replace_strict(SEVERITY, default=None, return_dtype=pl.Int64)
    )
    return (
        worse.join(names.select("customer_id", "name"), on="customer_id", how="left")
        .select("customer_id", "name", "from_segment", "to_segment", "ar_amount", "reason")
        .sort(["ar_amount", "customer_id"], descending=[True, False])
    )


def moved_to_worse(
    store: Store,
    from_month: date,
    to_month: date,
    *,
    rules: SegmentRules = DEFAULT_RULES,
    filters: Filters = Filters(),
) -> pl.DataFrame:
    """Customers whose segment got worse between the two month-ends (by :data:`SEVERITY`).

    Columns: customer_id, name, from_segment, to_segment, ar_amount, reason; largest AR first.
    """
    if to_month <= from_month:
        msg = f"Migration needs a later second month; got {from_month} then {to_month}"
        raise MetricError(msg)
    history = segment_history(store, [from_month, to_month], rules=rules, filters=filters)
    return worse_moves(history, from_month, to_month, customer_names(store))


def customer_names(store: Store) -> pl.DataFrame:
    """customer_id and name of every customer."""
    return store.query("SELECT customer_id, name FROM customers")


def store_segments(
    store: Store, month_end: date, rules: SegmentRules = DEFAULT_RULES
) -> int:
    """Write every customer's segment on ``month_end`` to ``customer_segments`` (one
    transaction, replacing that month's rows of the same rule version). Returns the count."""
    frame = assign_segments(store, month_end, rules=rules).select(
        "customer_id", pl.lit(month_end).alias("month"), "segment", "rule_version"
    )
    with store.transaction() as cur:
        cur.execute(
            "DELETE FROM customer_segments WHERE month = ? AND rule_version = ?",
            [month_end, rules.rule_version],
        ).fetchall()
        cur.register("new_segments", frame)
        cur.execute(
            "INSERT INTO customer_segments (customer_id, month, segment, rule_version) "
            "SELECT customer_id, month, segment, rule_version FROM new_segments"
        ).fetchall()
        cur.unregister("new_segments")
    return frame.height


def customer_timeline(store: Store, customer_id: str, *, as_of: date) -> pl.DataFrame:
    """Everything that happened with one customer up to ``as_of``, oldest first.

    Columns: date, kind (invoice, credit_memo, ..., payment, adjustment, dispute opened,
    dispute resolved, contact, note), document, amount, detail.
    """
    day = date_literal(as_of)
    return store.query(
        f"""
        SELECT * FROM (
            SELECT invoice_date AS date, doc_type AS kind, invoice_id AS document, amount::DOUBLE AS amount,
                   'due ' || due_date AS detail
            FROM invoices WHERE customer_id = ? AND invoice_date <= {day}
            UNION ALL
            SELECT payment_date, 'payment', invoice_id, amount::DOUBLE, coalesce(method, '')
            FROM payments WHERE customer_id = ? AND payment_date <= {day}
            UNION ALL
            SELECT a.adjustment_date, 'adjustment', a.invoice_id, a.amount::DOUBLE,
                   coalesce(a.kind, '') || coalesce(': ' || a.reason, '')
            FROM adjustments a LEFT JOIN invoices i ON i.invoice_id = a.invoice_id
            WHERE coalesce(a.customer_id, i.customer_id) = ? AND a.adjustment_date <= {day}
            UNION ALL
            SELECT d.opened_date, 'dispute opened', d.invoice_id, d.amount::DOUBLE, coalesce(d.category, '')
            FROM disputes d LEFT JOIN invoices i ON i.invoice_id = d.invoice_id
            WHERE coalesce(d.customer_id, i.customer_id) = ? AND d.opened_date <= {day}
            UNION ALL
            SELECT d.resolved_date, 'dispute resolved', d.invoice_id, d.amount::DOUBLE, coalesce(d.resolution, '')
            FROM disputes d LEFT JOIN invoices i ON i.invoice_id = d.invoice_id
            WHERE coalesce(d.customer_id, i.customer_id) = ? AND d.resolved_date <= {day}
            UNION ALL
            SELECT ts::DATE, 'contact', invoice_id, promise_amount::DOUBLE,
                   concat_ws(' · ', channel, action, outcome,
                             CASE WHEN promise_date IS NOT NULL THEN 'promised for ' || promise_date END)
            FROM contacts WHERE customer_id = ? AND ts::DATE <= {day}
            UNION ALL
            SELECT ts::DATE, 'note', invoice_id, NULL::DOUBLE, left(text, 200)
            FROM notes WHERE customer_id = ? AND ts::DATE <= {day}
        ) ORDER BY date, kind, document
        """,
        [customer_id] * 7,
    )


def months_back(last: date, count: int) -> list[date]:
    """``count`` month-ends ending with the month-end on or before ``last``, oldest first."""
    newest = last if last == month_end(last) else month_end(last.replace(day=1) - timedelta(days=1))
    return [month_end(add_months(newest.replace(day=1), -i)) for i in range(count - 1, -1, -1)]
