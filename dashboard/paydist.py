"""Per-invoice pay-date distributions as of a date, for the cash forecast and the simulator.

The estimate is a censoring-aware empirical distribution: a Kaplan–Meier curve of the
*pay delay* (payment date − due date, in days) fitted on invoices issued on or before
``as_of`` using only events dated on or before it. An invoice still open on ``as_of`` is
censored at ``as_of − due_date``; one settled without cash (credit, write-off) is censored
at its settlement date. One curve per customer segment (``dashboard.segments`` as of the
date), with each daily hazard shrunk towards the all-customer hazard so small segments
borrow strength: ``h_g = (events_g + k·h_all) / (at_risk_g + k)``.

An open invoice that is ``t`` days past due pays after ``t`` by construction: its
distribution is the segment curve conditioned on ``delay > t``, so invoices deep in arrears
automatically get the slow tail. Probability left at the end of the curve is "not paid
within the curve's range" (written off, or paid beyond a year late).

Plugging in another model (e.g. the risk model's hazard): anything with the
:class:`PayDateSampler` shape (``lot`` and ``week_lookup(day_edges)``) replaces
:class:`EmpiricalPayDates` in ``dashboard.forecast.forecast_cash(sampler=...)``;
:class:`WeekProbabilitySampler` builds one from per-invoice probabilities of paying in each
forecast week.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

import numpy as np
import polars as pl

from dashboard.errors import ForecastError
from dashboard.ledger import fx_join_sql, invoice_base_sql, open_items_sql, paid_dates_source, paid_dates_sql
from dashboard.segments import assign_segments
from dashboard.store import Store

#: Pay delays (days after due; negative = before due) the curves cover.
DELAY_MIN = -90
DELAY_MAX = 400
#: Sentinel delay meaning "not paid within the curve's range".
NEVER = 10**6
#: Resolution of the quantized uniforms used by the fast samplers.
LEVELS = 256


class PayDateSampler(Protocol):
    """What :func:`dashboard.forecast.forecast_cash` needs from a pay-date model.

    ``lot[i]`` is invoice ``i``'s row in ``week_lookup``; ``week_lookup(day_edges)[lot, level]``
    is the forecast window (the last = later or never) for a uniform draw quantized to
    ``level`` of ``LEVELS``. :class:`EmpiricalPayDates` and :class:`WeekProbabilitySampler`
    (any model that gives per-invoice window probabilities, e.g. the risk model) provide it.
    """

    lot: np.ndarray

    def week_lookup(self, day_edges: np.ndarray) -> np.ndarray: ...


class WeekProbabilitySampler:
    """A :class:`PayDateSampler` from per-invoice probabilities of paying in each forecast
    window, for plugging in another model (e.g. the risk model's discrete-time hazard:
    P(paid by the end of window k) differenced over k).

    ``probabilities``: (n_invoices, windows + 1), rows summing to 1, the last column being
    "later or never". Each invoice is its own lot.
    """

    def __init__(self, probabilities: np.ndarray) -> None:
        probabilities = np.asarray(probabilities, dtype=float)
        if probabilities.ndim != 2 or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6):
            msg = f"Pay-week probabilities must be one row per invoice summing to 1; got shape {probabilities.shape!r}."
            raise ForecastError(msg)
        self.probabilities = probabilities
        self.lot = np.arange(len(probabilities))

    def week_lookup(self, day_edges: np.ndarray) -> np.ndarray:
        if self.probabilities.shape[1] != len(day_edges) + 1:
            msg = (
                f"The model gave {self.probabilities.shape[1]} pay-week columns for {len(day_edges)} forecast weeks; "
                f"expected {len(day_edges) + 1} (one per week plus 'later or never')."
            )
            raise ForecastError(msg)
        cdf = np.cumsum(self.probabilities, axis=1)[:, :-1]
        levels = (np.arange(LEVELS) + 0.5) / LEVELS
        return (levels[None, :, None] > cdf[:, None, :]).sum(axis=2).astype(np.uint8)


@dataclass(frozen=True)
class PayDelayCurves:
    """Survival curves of the pay delay per group, fitted as of ``as_of``.

    Attributes
    ----------
    groups
        Group labels (customer segments); row ``g`` of ``survival`` belongs to ``groups[g]``.
    delays
        The delay grid, ``DELAY_MIN .. DELAY_MAX`` days after due.
    survival
        ``survival[g, j]`` = P(delay > delays[j]) for group ``g``.
    invoices
        Invoices that went into each group's curve.
    """

    as_of: date
    groups: tuple[str, ...]
    delays: np.ndarray
    survival: np.ndarray
    invoices: np.ndarray

    def group_index(self, labels: pl.Series | list[str]) -> np.ndarray:
        """Row of each label in ``survival``; unknown labels use the all-customer curve."""
        lookup = {g: i for i, g in enumerate(self.groups)}
        series = pl.Series(list(labels), dtype=pl.String) if not isinstance(labels, pl.Series) else labels.cast(pl.String)
        return series.replace_strict(lookup, default=lookup["all"], return_dtype=pl.Int64).to_numpy()

    def survival_at(self, group: np.ndarray, delay: np.ndarray) -> np.ndarray:
        """P(delay > ``delay``) for each (group, delay) pair (clipped to the grid)."""
        column = np.clip(np.asarray(delay) - DELAY_MIN, -1, len(self.delays) - 1)
        values = self.survival[group, np.maximum(column, 0)]
        return np.where(column < 0, 1.0, values)

    def to_frame(self) -> pl.DataFrame:
        """Long frame: group, delay_days, survival (for charts and tests)."""
        return pl.DataFrame(
            {
                "group": np.repeat(np.array(self.groups), len(self.delays)),
                "delay_days": np.tile(self.delays, len(self.groups)),
                "survival": self.survival.ravel(),
            }
        )


def _km_survival(
    group: np.ndarray,
    delay: np.ndarray,
    is_event: np.ndarray,
    n_groups: int,
    *,
    shrinkage: float,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan–Meier per group on the delay grid, hazards shrunk towards the pooled hazard
    (each invoice counting ``weights[i]``, default 1)."""
    width = DELAY_MAX - DELAY_MIN + 1
    column = np.clip(delay, DELAY_MIN, DELAY_MAX) - DELAY_MIN
    # Anything beyond the grid is censored at its end: we only learn "later than DELAY_MAX".
    is_event = is_event & (delay <= DELAY_MAX)
    key = group * width + column
    w = np.ones(len(key)) if weights is None else np.asarray(weights, dtype=np.float64)
    events = np.bincount(key[is_event], weights=w[is_event], minlength=n_groups * width).reshape(n_groups, width)
    leaving = np.bincount(key, weights=w, minlength=n_groups * width).reshape(n_groups, width)
    # At risk at delay j: every invoice whose event or censoring delay is >= j.
    at_risk = np.cumsum(leaving[:, ::-1], axis=1)[:, ::-1]
    pooled_events, pooled_risk = events.sum(axis=0), at_risk.sum(axis=0)
    pooled_hazard = np.divide(pooled_events, pooled_risk, out=np.zeros(width), where=pooled_risk > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(at_risk + shrinkage > 0, (events + shrinkage * pooled_hazard) / (at_risk + shrinkage), 0.0)
    survival = np.cumprod(1.0 - hazard, axis=1)
    pooled = np.cumprod(1.0 - pooled_hazard)
    counts = np.bincount(group, minlength=n_groups)
    return np.vstack([survival, pooled]), np.append(counts, len(group))


def paid_dates(store: Store, as_of: date) -> pl.DataFrame:
    """When each document was settled, as known on ``as_of`` (:func:`dashboard.ledger.paid_dates_sql`):
    invoice_id, paid_date, paid_by_payments. Read once for the shared inputs of a date."""
    paid_sql, params = paid_dates_sql(as_of)
    return store.query(f"SELECT invoice_id, paid_date, paid_by_payments FROM ({paid_sql})", params)


def customer_groups(store: Store, as_of: date, *, paid: pl.DataFrame | None = None) -> pl.DataFrame:
    """The group (behavioural segment as of ``as_of``) of every billed customer: customer_id,
    group. ``paid``: :func:`paid_dates` for ``as_of``, when already read."""
    segments = assign_segments(store, as_of, with_open_amount=False, paid=paid)
    if segments.is_empty():
        return pl.DataFrame(schema={"customer_id": pl.String, "group": pl.String})
    return segments.select("customer_id", group=pl.col("segment"))


def pay_history(
    store: Store, as_of: date, *, history_days: int = 540, paid: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Invoices issued by ``as_of`` and due in the ``history_days`` before it, with what was
    known on ``as_of``: customer_id, invoice_id, invoice_date, due_date, amount (base),
    delay_days (pay or censoring date − due date), is_paid (settled by cash by ``as_of``),
    is_closed_without_cash (credited or written off). ``paid``: :func:`paid_dates` for
    ``as_of``, when already read."""
    paid_sql, params, frames = paid_dates_source(as_of, paid)
    start = as_of - timedelta(days=history_days)
    sql = f"""
    WITH paid AS ({paid_sql})
    SELECT i.customer_id, i.invoice_id, i.invoice_date, i.due_date,
           {invoice_base_sql()} AS amount,
           (coalesce(p.paid_date, ?::DATE) - i.due_date)::INTEGER AS delay_days,
           coalesce(p.paid_by_payments > 0, false) AS is_paid,
           coalesce(p.paid_by_payments <= 0, false) AS is_closed_without_cash
    FROM invoices i {fx_join_sql()} LEFT JOIN paid p ON p.invoice_id = i.invoice_id
    WHERE i.doc_type = 'invoice' AND i.amount > 0 AND i.invoice_date <= ?::DATE AND i.due_date > ?::DATE
    ORDER BY i.rowid  -- a fixed order: sums over the history are then the same on every run
    """
    return store.query(sql, [*params, as_of, as_of, start], frames=frames)


def fit_pay_delay_curves(
    store: Store,
    as_of: date,
    *,
    history_days: int = 540,
    shrinkage: float = 20.0,
    groups: pl.DataFrame | None = None,
    history: pl.DataFrame | None = None,
    half_life_days: float | None = None,
) -> PayDelayCurves:
    """Fit the pay-delay curves as of ``as_of`` from history strictly known on that date.

    Parameters
    ----------
    history_days
        Invoices due in this many days before ``as_of`` are used (recent behaviour).
    shrinkage
        Pseudo-invoices of the pooled hazard added to every group's daily hazard.
    groups
        customer_id → group; default :func:`customer_groups` (segments as of the date).
    history
        :func:`pay_history` for the same date, when the caller already has it.
    half_life_days
        Weight each invoice by 0.5 ** (days from its due date to ``as_of`` / half-life), so that
        recent behaviour counts more (None: every invoice alike).
    """
    history = pay_history(store, as_of, history_days=history_days) if history is None else history
    if history.is_empty():
        msg = (
            f"There is no invoice history due in the {history_days} days before {as_of.isoformat()} "
            "to learn payment timing from; choose a later as-of date or load more history."
        )
        raise ForecastError(msg)
    groups = customer_groups(store, as_of) if groups is None else groups
    history = history.join(groups, on="customer_id", how="left").with_columns(pl.col("group").fill_null("new"))
    labels = tuple(sorted(history["group"].unique().to_list()))
    index = {g: i for i, g in enumerate(labels)}
    group = history["group"].replace_strict(index, return_dtype=pl.Int64).to_numpy()
    weights = None
    if half_life_days:
        age = (
            np.datetime64(as_of) - history["due_date"].to_numpy().astype("datetime64[D]")
        ).astype(np.int64)
        weights = 0.5 ** (np.maximum(age, 0) / half_life_days)
    survival, counts = _km_survival(
        group,
        history["delay_days"].to_numpy().astype(np.int64),
        history["is_paid"].to_numpy(),
        len(labels),
        shrinkage=shrinkage,
        weights=weights,
    )
    return PayDelayCurves(
        as_of=as_of,
        groups=(*labels, "all"),
        delays=np.arange(DELAY_MIN, DELAY_MAX + 1),
        survival=survival,
        invoices=counts,
    )


def last_business_days(as_of: date, days: int) -> np.ndarray:
    """Days after ``as_of`` (1..``days`` + 40) that are a month's last business day."""
    offsets = np.arange(1, days + 41)
    day = np.datetime64(as_of.isoformat()) + offsets
    month_last = (day.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1
    weekday = (month_last.astype(np.int64) + 3) % 7  # 0 = Monday
    run = month_last - np.where(weekday == 5, 1, np.where(weekday == 6, 2, 0))
    return np.unique(offsets[day == run])


def snap_to_run(days_after: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """The first month-end payment run on or after each day (days after as_of)."""
    position = np.searchsorted(runs, days_after, side="left")
    return np.where(position < len(runs), runs[np.minimum(position, len(runs) - 1)], days_after)


class EmpiricalPayDates:
    """Pay-date distributions of a set of open invoices from :class:`PayDelayCurves`.

    Each invoice's delay is its group's curve conditioned on ``delay > days_past_due``.
    Customers who pay only in a month-end run (``month_end``) have their pay date moved to
    the next month's last business day. Invoices with the same (group, days past due,
    month-end flag) share one distribution ("lot"), so the work scales with the number of
    lots, not invoices, except for the final draw.
    """

    def __init__(
        self,
        curves: PayDelayCurves,
        *,
        group: np.ndarray,
        days_past_due: np.ndarray,
        month_end: np.ndarray | None = None,
    ) -> None:
        self.curves = curves
        self.group = np.asarray(group, dtype=np.int64)
        self.days_past_due = np.asarray(days_past_due, dtype=np.int64)
        self.month_end = (
            np.zeros(len(self.group), dtype=bool) if month_end is None else np.asarray(month_end, dtype=bool)
        )
        clipped = np.clip(self.days_past_due, DELAY_MIN - 1, DELAY_MAX + 1)
        key = (self.group * 10_000 + (clipped - DELAY_MIN + 1)) * 2 + self.month_end
        lots, self.lot = np.unique(key, return_inverse=True)
        self.lot_month_end = (lots % 2).astype(bool)
        lots = lots // 2
        self.lot_group = lots // 10_000
        self.lot_days_past_due = lots % 10_000 + DELAY_MIN - 1

    def _conditional_cdf(self, delays: np.ndarray) -> np.ndarray:
        """(lots, len(delays)) P(delay <= d | delay > days_past_due)."""
        base = self.curves.survival_at(self.lot_group, self.lot_days_past_due)
        at = self.curves.survival_at(self.lot_group[:, None], np.maximum(delays[None, :], self.lot_days_past_due[:, None]))
        with np.errstate(divide="ignore", invalid="ignore"):
            conditional = np.where(base[:, None] > 0, at / base[:, None], 1.0)
        return 1.0 - np.clip(conditional, 0.0, 1.0)

    def week_probabilities(self, day_edges: np.ndarray) -> np.ndarray:
        """(n_invoices, len(day_edges)) P(pay in window k); window k ends on day ``day_edges[k]``
        after ``as_of`` (inclusive); the last column is "later or never"."""
        cdf = self.lot_week_cdf(day_edges)
        probabilities = np.diff(np.concatenate([np.zeros((len(cdf), 1)), cdf, np.ones((len(cdf), 1))], axis=1), axis=1)
        return probabilities[self.lot]

    def lot_week_cdf(self, day_edges: np.ndarray) -> np.ndarray:
        """(lots, len(day_edges)) P(paid by day ``day_edges[k]`` after as_of)."""
        # Paid by day e after as_of <=> delay <= days_past_due + e; a month-end payer's
        # money arrives at the last run on or before e, so it needed delay <= that run.
        edges = np.asarray(day_edges)
        runs = last_business_days(self.curves.as_of, int(edges.max()) if len(edges) else 1)
        position = np.searchsorted(runs, edges, side="right") - 1
        run_edges = np.where(position >= 0, runs[np.maximum(position, 0)], 0)
        edge_matrix = np.where(self.lot_month_end[:, None], run_edges[None, :], edges[None, :])
        delays = self.lot_days_past_due[:, None] + edge_matrix
        base = self.curves.survival_at(self.lot_group, self.lot_days_past_due)
        at = self.curves.survival_at(np.repeat(self.lot_group[:, None], delays.shape[1], axis=1), delays)
        with np.errstate(divide="ignore", invalid="ignore"):
            conditional = np.where(base[:, None] > 0, at / base[:, None], 1.0)
        return 1.0 - np.clip(conditional, 0.0, 1.0)

    def week_lookup(self, day_edges: np.ndarray) -> np.ndarray:
        """(lots, LEVELS) uint8 table: the window index for a quantized uniform level."""
        cdf = self.lot_week_cdf(day_edges)
        levels = (np.arange(LEVELS) + 0.5) / LEVELS
        table = np.empty((len(cdf), LEVELS), dtype=np.uint8)
        for lot in range(len(cdf)):
            table[lot] = np.searchsorted(cdf[lot], levels, side="right")
        return table

    def delay_quantiles(self, levels: int = 1024) -> np.ndarray:
        """(lots, levels) int32 delay at each quantized uniform level (``NEVER`` = not paid)."""
        grid = np.arange(DELAY_MIN, DELAY_MAX + 1)
        cdf = self._conditional_cdf(grid)
        points = (np.arange(levels) + 0.5) / levels
        table = np.empty((len(cdf), levels), dtype=np.int32)
        for lot in range(len(cdf)):
            position = np.searchsorted(cdf[lot], points, side="left")
            table[lot] = np.where(position < len(grid), grid[np.minimum(position, len(grid) - 1)], NEVER)
        # A sampled delay is never on or before the invoice's current days past due.
        return np.where(table == NEVER, NEVER, np.maximum(table, self.lot_days_past_due[:, None] + 1))

    def sample_delays(self, rng: np.random.Generator, n_paths: int, *, levels: int = 1024) -> np.ndarray:
        """(n_paths, n_invoices) pay delays in days after due; ``NEVER`` = not paid."""
        table = self.delay_quantiles(levels)
        u = rng.integers(0, levels, size=(n_paths, len(self.lot)), dtype=np.int32)
        return table.ravel().take(self.lot[None, :] * levels + u)


def month_end_payers(store: Store, as_of: date, *, min_share: float = 0.7, min_payments: int = 3) -> pl.DataFrame:
    """Customers who pay in a month-end run: at least ``min_share`` of their (at least
    ``min_payments``) invoice payments in the 18 months to ``as_of`` fell on a month's last
    business day. Columns: customer_id, month_end_payer."""
    frame = store.query(
        """
        WITH p AS (
            SELECT customer_id, payment_date AS d,
                   last_day(payment_date) - (CASE dayofweek(last_day(payment_date))
                        WHEN 6 THEN 1 WHEN 0 THEN 2 ELSE 0 END) AS run_day
            FROM payments
            WHERE invoice_id IS NOT NULL AND payment_date <= ?::DATE AND payment_date > ?::DATE - INTERVAL 540 DAY
        )
        SELECT customer_id, count(*)::BIGINT AS payments, avg((d = run_day)::INTEGER)::DOUBLE AS run_share
        FROM p GROUP BY 1
        """,
        [as_of, as_of],
    )
    return frame.select(
        "customer_id",
        month_end_payer=(pl.col("payments") >= min_payments) & (pl.col("run_share") >= min_share),
    )


def open_invoices(
    store: Store, as_of: date, *, groups: pl.DataFrame | None = None, payers: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Invoices with money still to collect on ``as_of`` (positive open amount), with their
    customer's group and currency: invoice_id, customer_id, due_date, days_past_due,
    open_amount (base, DOUBLE), currency, group, month_end_payer. Credit memos and unapplied
    cash are left out: they are not collections. ``groups`` / ``payers``: precomputed
    :func:`customer_groups` / :func:`month_end_payers` for the same date."""
    items_sql, params = open_items_sql(as_of)
    items = store.query(
        f"""
        SELECT o.invoice_id, o.customer_id, o.due_date, o.days_past_due, o.open_amount::DOUBLE AS open_amount,
               coalesce(i.currency, 'base') AS currency
        FROM ({items_sql}) o JOIN invoices i ON i.invoice_id = o.invoice_id
        WHERE o.doc_type = 'invoice' AND o.open_amount > 0
        """,
        params,
    )
    groups = customer_groups(store, as_of) if groups is None else groups
    payers = month_end_payers(store, as_of) if payers is None else payers
    groups = groups.join(payers, on="customer_id", how="left")
    return (
        items.join(groups, on="customer_id", how="left")
        .with_columns(
            pl.col("group").fill_null("new"),
            pl.col("currency").fill_null("base"),
            pl.col("month_end_payer").fill_null(False),
        )
        .sort("invoice_id")
    )


@dataclass(frozen=True)
class AsOfInputs:
    """What the forecast and the simulator both read for one as-of date, read once and
    passed to :func:`dashboard.forecast.forecast_cash`, ``dashboard.simulate.measure_effects``
    and ``dashboard.simulate.build_book`` (``inputs=``): :func:`paid_dates`, :func:`pay_history`,
    :func:`customer_groups`, :func:`month_end_payers` and :func:`open_invoices`."""

    as_of: date
    paid: pl.DataFrame
    history: pl.DataFrame
    groups: pl.DataFrame
    payers: pl.DataFrame
    invoices: pl.DataFrame

    def check(self, as_of: date) -> None:
        """Raise ForecastError when these inputs were read for another date."""
        if self.as_of != as_of:
            msg = (
                f"The shared inputs were read as of {self.as_of.isoformat()}, not {as_of.isoformat()}; "
                "read them again for this date."
            )
            raise ForecastError(msg)


def read_as_of_inputs(store: Store, as_of: date) -> AsOfInputs:
    """Read the :class:`AsOfInputs` of ``as_of`` once (each query runs one time)."""
    paid = paid_dates(store, as_of)  # shared by the three queries that need it
    groups = customer_groups(store, as_of, paid=paid)
    payers = month_end_payers(store, as_of)
    return AsOfInputs(
        as_of=as_of,
        paid=paid,
        history=pay_history(store, as_of, paid=paid),
        groups=groups,
        payers=payers,
        invoices=open_invoices(store, as_of, groups=groups, payers=payers),
    )


def empirical_pay_dates(curves: PayDelayCurves, invoices: pl.DataFrame) -> EmpiricalPayDates:
    """:class:`EmpiricalPayDates` for ``invoices`` (needs columns group, days_past_due)."""
    return EmpiricalPayDates(
        curves,
        group=curves.group_index(invoices["group"]),
        days_past_due=invoices["days_past_due"].to_numpy().astype(np.int64),
        month_end=invoices["month_end_payer"].to_numpy() if "month_end_payer" in invoices.columns else None,
    )
