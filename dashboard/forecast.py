"""13-week cash-collection forecast with Monte Carlo intervals, and its backtest.

Cash from invoices open on ``as_of``: each invoice's pay date is drawn from its
pay-date distribution (:mod:`dashboard.paydist`, recent invoices weighted more), ``n_paths`` times; the open amount lands in
the week of the draw. P10/P50/P90 are quantiles over paths, per week, per segment and
currency. Customers pay their invoices in runs, so draws of one customer's invoices are
positively correlated (a share ``customer_correlation`` of each draw is the customer's own
uniform): ignoring that makes intervals too narrow.

Cash from invoices not issued yet (``new_*``): weekly billing = the last 13 weeks' run-rate ×
the month-of-year seasonality of the last one or two years, with the
week-to-week noise of past billing; each day's billing pays after the history's
invoice-to-payment lag (Kaplan–Meier).

Weeks are calendar weeks (Monday start). Week 1 runs from the day after ``as_of`` to the
following Sunday, so it is short unless ``as_of`` is a Sunday.

Backtest: at past as-of dates, the forecast made with only data known then against the
cash that actually came in (payments applied to invoices, base currency), next to two
naive forecasts — the run-rate (the last 13 weeks' average daily cash × days in the week) and
open invoices paid on their due dates at face value (overdue ones in week 1) plus new billing
paid on its terms.

The forecast in use, judged on the business's own past: our pay-date model is only as right as
its picture of how customers pay, and a business whose payments move with shocks across
customers can be better served by its own run-rate. So the point the product states at each
horizon is ``w × level × our P50 + (1 − w) × run-rate``. ``level`` corrects our model's level
on its own record: actual / our P50 summed over its last 13 forecasts at that horizon whose week
had ended, shrunk towards 1 (``** 0.75``; :func:`level_factors`) — after a shock our curves have
learned slow weeks and under-forecast for months, and a level learned on the last quarter's
outcomes follows that. ``w`` (0, 0.1, … 1) is the weight that had the smallest absolute error
over the business's own earlier forecasts at that horizon — forecasts made every week over the
year before (only data known then) whose week had ended by the as-of date
(:func:`combination_weights`). ``w = 1`` is our (corrected) model alone, ``w = 0`` the run-rate
alone; with no earlier forecast judged yet, our model alone. In the backtest the level and the
weights are chosen the same way at every origin, rolling, so neither has seen the outcome of the
forecast it serves.

Intervals that hold on any data: the Monte Carlo band comes from our own model of pay dates, and
is only as right as that model. So the P10–P90 band a forecast states is calibrated on the same
earlier forecasts: at each horizon the band is the stated point ÷ and × k, where k is the
split-conformal 80% quantile of how many times off the last :data:`BAND_ERRORS` (13) forecasts at
that horizon were, either way — max(r, 1/r) for their ratios r = actual / stated point
(:func:`conformal_ratio_band`; :func:`calibrate_forecast`), the stated point of each past forecast
being the blend as it would have been chosen then — the errors of the forecast the product states,
not of one of its parts. Ratios rather than scale-free residuals (actual − point) / run-rate: on
second-world seeds we do not report (1–3) the two held the actual within a point or two of each
other, and a ratio band never goes below zero cash, where a residual band can. Symmetric (in log
ratio) rather than the 10th and 90th percentiles of the ratios themselves: when shocks come and go,
the sign of the point's recent error flips — the level has learned a shock just as it ends — and a
band placed where the last errors fell misses on the other side; one score for both sides also
rests each bound on all the errors rather than on the two or three in one tail, so a quarter of
errors is enough and the band follows a change of volatility sooner. Chosen on second-world seeds
1–6 and 8–10 and generator seeds 11–12, none of them reported (bench/RESULTS.md): the percentiles of
the last 26 ratios held 59–83% of backtest weeks by world; the symmetric band on the last 13, 73–82%,
8–20 errors all 71–83%. The blend's weights are still chosen on the last
:data:`CALIBRATION_MAX_ERRORS` (26) forecasts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from dashboard import _simulate_kernels as kernels
from dashboard.dates import month_end, week_start
from dashboard.errors import ForecastError
from dashboard.ledger import cash_base_sql, fx_join_sql, invoice_base_sql
from dashboard.paydist import (
    DELAY_MIN,
    AsOfInputs,
    PayDateSampler,
    PayDelayCurves,
    _km_survival,
    customer_groups,
    empirical_pay_dates,
    fit_pay_delay_curves,
    last_business_days,
    month_end_payers,
    open_invoices,
    pay_history,
    snap_to_run,
)
from dashboard.progress import Progress, ShouldCancel, never_cancel, no_progress
from dashboard.store import Store

HORIZON_WEEKS = 13
QUANTILES = (0.10, 0.50, 0.90)
# Recent pay behaviour counts more: an invoice due half a year ago weighs half as much in the
# pay-date curves (on the first sample world: 4-week WAPE 14.3% -> 14.0%, 90 days 14.3%).
PAY_HISTORY_HALF_LIFE_DAYS = 180


def forecast_windows(as_of: date, weeks: int = HORIZON_WEEKS) -> list[tuple[date, date]]:
    """(first day, last day) of each forecast week: calendar weeks after ``as_of``."""
    if weeks < 1:
        msg = f"A forecast needs at least one week; got weeks={weeks!r}."
        raise ForecastError(msg)
    first = as_of + timedelta(days=1)
    monday = week_start(first)
    return [(max(first, monday + timedelta(days=7 * k)), monday + timedelta(days=7 * k + 6)) for k in range(weeks)]


def window_edges(as_of: date, weeks: int = HORIZON_WEEKS) -> np.ndarray:
    """Last day of each forecast week, as days after ``as_of``."""
    return np.array([(end - as_of).days for _, end in forecast_windows(as_of, weeks)], dtype=np.int64)


def _quantiles(paths: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    q = np.quantile(paths, QUANTILES, axis=axis)
    return q[0], q[1], q[2], paths.mean(axis=axis)


# ---------------------------------------------------------------------------------------
# Monte Carlo core
# ---------------------------------------------------------------------------------------
def simulate_window_cash(
    lookup: np.ndarray,
    lot: np.ndarray,
    amount: np.ndarray,
    bucket: np.ndarray,
    *,
    n_buckets: int,
    n_paths: int,
    rng: np.random.Generator,
    customer: np.ndarray | None = None,
    customer_correlation: float = 0.0,
    chunk_paths: int = 50,
    progress: Progress = no_progress,
    should_cancel: ShouldCancel = never_cancel,
) -> np.ndarray:
    """Cash per (path, bucket, window) from per-invoice window draws.

    ``lookup[lot, level]`` is the window index (the last = later/never) for a quantized
    uniform ``level``; ``lot[i]`` the invoice's row of ``lookup``. With ``customer`` given, a
    share ``customer_correlation`` of invoices' draws use their customer's uniform. The draws
    are counter-based (:func:`dashboard._simulate_kernels.window_cash`, the simulator's
    generator): compiled, on every core, and the same whatever the chunking.
    """
    n = len(lot)
    n_windows = int(lookup.max()) + 1 if lookup.size else 1
    n_windows = max(n_windows, 1)
    out = np.zeros((n_paths, n_buckets, n_windows))
    if n == 0:
        return out
    draw_key = np.arange(n, dtype=np.int64)
    shared = np.zeros(n, dtype=np.bool_)
    if customer is not None and customer_correlation > 0:
        _, customer_index = np.unique(customer, return_inverse=True)
        shared = rng.random(n) < customer_correlation
        draw_key = np.where(shared, np.ravel(customer_index), draw_key).astype(np.int64)
    # One key per path and stream: a path's draws do not depend on the chunking.
    keys = kernels.stream_keys(rng, n_paths, streams=2)
    lookup = np.ascontiguousarray(lookup)
    if lookup.shape[1] & (lookup.shape[1] - 1):
        msg = f"The pay-date lookup needs a power-of-two number of levels; got {lookup.shape[1]}."
        raise ForecastError(msg)
    lot = np.asarray(lot, dtype=np.int64)
    weights = np.asarray(amount, dtype=np.float64)
    bucket = np.asarray(bucket, dtype=np.int64)
    done = 0
    while done < n_paths:
        if should_cancel():
            msg = "The forecast was cancelled."
            raise ForecastError(msg)
        p = min(chunk_paths, n_paths - done)
        kernels.window_cash(keys[done : done + p], lookup, lot, weights, bucket, draw_key, shared, out[done : done + p])
        done += p
        progress(done / n_paths, f"{done} of {n_paths} paths")
    return out


# ---------------------------------------------------------------------------------------
# new invoices: run-rate x seasonality, paid after the history's issue-to-payment lag
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NewBillingModel:
    """Billing not issued yet, as estimated on ``as_of``.

    Attributes: weekly_run_rate (base currency per week over the last 13 weeks), seasonality
    (12 month-of-year factors from the last one or two years; 1.0 with less than a year), log_noise_sd (week-to-week
    noise of billing around its run-rate), lag_cdf (P(paid within d days of issue),
    d = 0..DELAY_MAX), mean_terms_days (amount-weighted, last 13 weeks).
    """

    as_of: date
    weekly_run_rate: float
    seasonality: np.ndarray
    log_noise_sd: float
    lag_cdf: np.ndarray
    mean_terms_days: float
    month_end_ratio: float = 1.0
    month_end_payer_share: float = 0.0

    def daily_billing(self, days: int) -> np.ndarray:
        """Expected billing on each of the ``days`` days after ``as_of`` (seasonality, and the
        month-end billing run: the last three days of a month bill ``month_end_ratio`` times
        an ordinary day)."""
        dates = [self.as_of + timedelta(days=int(d)) for d in range(1, days + 1)]
        months = np.array([d.month - 1 for d in dates])
        recent_months = np.array([(self.as_of - timedelta(days=int(d))).month - 1 for d in range(0, 91)])
        factor = self.seasonality[months] / max(float(self.seasonality[recent_months].mean()), 1e-9)
        length = np.array([month_end(d).day for d in dates], dtype=float)
        last_three = np.array([month_end(d).day - d.day < 3 for d in dates])
        ordinary = length / (3 * self.month_end_ratio + length - 3)
        profile = np.where(last_three, self.month_end_ratio * ordinary, ordinary)
        return self.weekly_run_rate / 7.0 * factor * profile


def fit_new_billing(
    store: Store, as_of: date, *, history: pl.DataFrame | None = None, payers: pl.DataFrame | None = None
) -> NewBillingModel:
    """Estimate the :class:`NewBillingModel` from invoices issued on or before ``as_of``
    (``history`` / ``payers``: precomputed :func:`dashboard.paydist.pay_history` /
    :func:`dashboard.paydist.month_end_payers` for the same date)."""
    start = as_of - timedelta(days=3 * 365)
    daily = store.query(
        f"""
        SELECT i.invoice_date AS day, sum({invoice_base_sql()})::DOUBLE AS billed,
               sum({invoice_base_sql()} * coalesce(i.terms_days, i.due_date - i.invoice_date))::DOUBLE AS billed_terms
        FROM invoices i {fx_join_sql()}
        WHERE i.doc_type = 'invoice' AND i.amount > 0 AND i.invoice_date <= ?::DATE AND i.invoice_date > ?::DATE
        GROUP BY 1 ORDER BY 1
        """,
        [as_of, start],
    )
    if daily.is_empty():
        msg = f"No invoices were issued before {as_of.isoformat()}: there is no billing run-rate to project."
        raise ForecastError(msg)
    first_day = daily["day"].min()
    span_days = (as_of - first_day).days + 1
    recent = daily.filter(pl.col("day") > as_of - timedelta(days=91))
    recent_days = min(91, span_days)
    weekly_run_rate = float(recent["billed"].sum()) / recent_days * 7.0
    mean_terms = float(recent["billed_terms"].sum()) / max(float(recent["billed"].sum()), 1e-9)
    # Week-to-week noise around a 13-week rolling mean, from the last year.
    weekly = (
        daily.with_columns(week=pl.col("day").dt.truncate("1w"))
        .group_by("week")
        .agg(pl.col("billed").sum())
        .sort("week")
        .filter(pl.col("week") > as_of - timedelta(days=365), pl.col("week") + timedelta(days=6) <= as_of)
    )
    values = weekly["billed"].to_numpy()
    if len(values) >= 8:
        rolling = np.convolve(values, np.ones(8) / 8, mode="valid")
        ratio = values[7:] / np.maximum(rolling, 1e-9)
        log_noise_sd = float(np.std(np.log(np.maximum(ratio, 1e-3))))
    else:
        log_noise_sd = 0.3
    seasonality = np.ones(12)
    if span_days >= 365:
        years = 2 if span_days >= 2 * 365 else 1
        monthly = (
            daily.filter(pl.col("day") > as_of - timedelta(days=years * 365))
            .with_columns(month=pl.col("day").dt.month())
            .group_by("month")
            .agg(pl.col("billed").sum())
        )
        by_month = np.zeros(12)
        by_month[monthly["month"].to_numpy() - 1] = monthly["billed"].to_numpy()
        if (by_month > 0).all():
            seasonality = by_month / by_month.mean()
    last_three = daily.filter(pl.col("day").dt.month_end().dt.day() - pl.col("day").dt.day() < 3)
    other = daily.filter(pl.col("day").dt.month_end().dt.day() - pl.col("day").dt.day() >= 3)
    recent_span = daily.filter(pl.col("day") > as_of - timedelta(days=365))
    if last_three.height and other.height and recent_span.height > 60:
        per_day_last = float(last_three.filter(pl.col("day") > as_of - timedelta(days=365))["billed"].sum()) / 36.0
        per_day_other = float(other.filter(pl.col("day") > as_of - timedelta(days=365))["billed"].sum()) / 329.0
        month_end_ratio = per_day_last / per_day_other if per_day_other > 0 else 1.0
    else:
        month_end_ratio = 1.0
    payers = month_end_payers(store, as_of) if payers is None else payers
    billed_by = store.query(
        f"""
        SELECT i.customer_id, sum({invoice_base_sql()})::DOUBLE AS billed FROM invoices i {fx_join_sql()}
        WHERE i.doc_type = 'invoice' AND i.amount > 0 AND i.invoice_date <= ?::DATE AND i.invoice_date > ?::DATE
        GROUP BY 1
        """,
        [as_of, as_of - timedelta(days=91)],
    ).join(payers, on="customer_id", how="left")
    total_billed = float(billed_by["billed"].sum()) if billed_by.height else 0.0
    run_billed = float(billed_by.filter(pl.col("month_end_payer").fill_null(False))["billed"].sum()) if billed_by.height else 0.0
    # Issue-to-payment lag (days), Kaplan–Meier over invoices due in the last 18 months.
    history = pay_history(store, as_of) if history is None else history
    lag = history.select(
        lag_days=pl.col("delay_days") + (pl.col("due_date") - pl.col("invoice_date")).dt.total_days(),
        is_paid=pl.col("is_paid"),
    )
    survival, _ = _km_survival(
        np.zeros(lag.height, dtype=np.int64),
        lag["lag_days"].to_numpy().astype(np.int64),
        lag["is_paid"].to_numpy(),
        1,
        shrinkage=0.0,
    )
    # Grid starts at DELAY_MIN (< 0); a lag is never negative.
    lag_cdf = 1.0 - survival[0, -DELAY_MIN:]
    return NewBillingModel(
        as_of=as_of,
        weekly_run_rate=weekly_run_rate,
        seasonality=seasonality,
        log_noise_sd=log_noise_sd,
        lag_cdf=lag_cdf,
        mean_terms_days=mean_terms,
        month_end_ratio=month_end_ratio,
        month_end_payer_share=run_billed / total_billed if total_billed > 0 else 0.0,
    )



def new_billing_cash_paths(
    model: NewBillingModel, edges: np.ndarray, *, n_paths: int, rng: np.random.Generator
) -> np.ndarray:
    """(n_paths, windows) cash from invoices issued after ``as_of`` and paid by each window's end."""
    days = int(edges[-1])
    billing = model.daily_billing(days)
    pmf = np.diff(np.concatenate([[0.0], model.lag_cdf]))
    pmf = np.append(pmf, np.zeros(max(0, days - len(pmf))))
    runs = last_business_days(model.as_of, days)
    # contribution[j, k]: cash in window k from billing in issue week j (days 7j+1..7j+7).
    n_weeks = int(np.ceil(days / 7))
    day_week = np.minimum(np.arange(days) // 7, n_weeks - 1)
    contribution = np.zeros((n_weeks, len(edges)))
    share = model.month_end_payer_share
    for issue in range(days):
        lags = np.arange(0, days - issue)
        paid_day = issue + 1 + lags  # days after as_of
        cash = billing[issue] * pmf[: len(lags)]
        # Month-end payers' share of the money waits for the next month-end run.
        window_plain = np.searchsorted(edges, paid_day, side="left")
        window_run = np.searchsorted(edges, snap_to_run(paid_day, runs), side="left")
        np.add.at(contribution[day_week[issue]], window_plain, (1 - share) * cash)
        keep = window_run < len(edges)
        np.add.at(contribution[day_week[issue]], window_run[keep], share * cash[keep])
    # Week-to-week noise of billing, plus the run-rate's own uncertainty (a 13-week mean)
    # shared by all weeks of a path.
    sd = model.log_noise_sd
    level = rng.normal(0.0, sd / np.sqrt(13.0), size=(n_paths, 1))
    noise = np.exp(level + rng.normal(-0.5 * sd**2, sd, size=(n_paths, n_weeks)))
    return noise @ contribution


# ---------------------------------------------------------------------------------------
# the forecast
# ---------------------------------------------------------------------------------------
@dataclass
class CashForecast:
    """A 13-week forecast, computed once and rendered as table, JSON and chart.

    ``weeks`` columns: week, week_start, week_end, p10, p50, p90, mean (cash from invoices
    open on ``as_of``), new_p10, new_p50, new_p90 (invoices not issued yet), total_p10,
    total_p50, total_p90. ``by_group``: week_start, segment, currency, p10, p50, p90, mean.
    ``open_paths`` / ``new_paths``: (paths, weeks) simulated cash (for backtests);
    ``invoices``: the open invoices forecast; ``new_billing``: the new-billing model used.
    """

    as_of: date
    weeks: pl.DataFrame
    by_group: pl.DataFrame
    open_amount: float
    open_invoice_count: int
    n_paths: int
    later_or_never_p50: float
    open_paths: np.ndarray = field(repr=False)
    new_paths: np.ndarray = field(repr=False)
    invoices: pl.DataFrame | None = field(default=None, repr=False)
    new_billing: NewBillingModel | None = field(default=None, repr=False)
    band_note: str = "P10–P90 from the Monte Carlo paths (not yet calibrated on past forecasts)."
    point_note: str = "The forecast is our pay-date model alone (not yet judged on past forecasts)."

    def to_rows(self) -> list[dict[str, Any]]:
        """The CLI's JSON rows: week_start, p10, p50, p90, new_p50 (and the rest)."""
        return [
            {
                "week_start": row["week_start"].isoformat(),
                "week_end": row["week_end"].isoformat(),
                "p10": round(row["p10"], 2),
                "p50": round(row["p50"], 2),
                "p90": round(row["p90"], 2),
                "new_p10": round(row["new_p10"], 2),
                "new_p50": round(row["new_p50"], 2),
                "new_p90": round(row["new_p90"], 2),
                "total_p50": round(row["total_p50"], 2),
                # the forecast in use and its calibrated band, once a backtest has judged our model
                **({"forecast": round(row["point"], 2), "forecast_p10": round(row["total_p10"], 2),
                    "forecast_p90": round(row["total_p90"], 2), "run_rate": round(row["run_rate"], 2)}
                   if "point" in row else {}),
            }
            for row in self.weeks.iter_rows(named=True)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "open_amount": round(self.open_amount, 2),
            "open_invoices": self.open_invoice_count,
            "paths": self.n_paths,
            "not_collected_in_13_weeks_p50": round(self.later_or_never_p50, 2),
            "weeks": self.to_rows(),
        }

    def summary(self) -> str:
        total = float(self.weeks["p50"].sum())
        new = float(self.weeks["new_p50"].sum())
        text = (
            f"As of {self.as_of.isoformat()}: {total:,.0f} expected over {self.weeks.height} weeks "
            f"from {self.open_invoice_count} open invoices ({self.open_amount:,.0f} open), "
            f"plus {new:,.0f} from invoices not issued yet (our model's medians, {self.n_paths} paths)."
        )
        if "point" in self.weeks.columns:
            text += (
                f"\nForecast in use: {float(self.weeks['point'].sum()):,.0f} over {self.weeks.height} weeks "
                f"(weekly P10–P90 summed {float(self.weeks['total_p10'].sum()):,.0f} – "
                f"{float(self.weeks['total_p90'].sum()):,.0f}; naive run-rate {float(self.weeks['run_rate'].sum()):,.0f})."
            )
        return f"{text}\n{self.point_note}\n{self.band_note}"


def forecast_cash(
    store: Store,
    as_of: date,
    *,
    weeks: int = HORIZON_WEEKS,
    n_paths: int = 1000,
    seed: int = 0,
    customer_correlation: float = 0.5,
    curves: PayDelayCurves | None = None,
    invoices: pl.DataFrame | None = None,
    sampler: PayDateSampler | None = None,
    include_new: bool = True,
    inputs: AsOfInputs | None = None,
    progress: Progress = no_progress,
    should_cancel: ShouldCancel = never_cancel,
) -> CashForecast:
    """Forecast cash collected in each of ``weeks`` calendar weeks after ``as_of``.

    Parameters
    ----------
    curves, invoices, sampler
        Precomputed pay-delay curves, open invoices (:func:`dashboard.paydist.open_invoices`)
        or a :class:`dashboard.paydist.PayDateSampler` for those invoices, in their row order
        (to plug in another model, e.g. ``WeekProbabilitySampler`` from the risk model).
    customer_correlation
        Share of each invoice's draw taken from its customer's common draw (0 = independent).
    inputs
        :func:`dashboard.paydist.read_as_of_inputs` for ``as_of``, when the caller (e.g. the
        simulator next to it) already read them; nothing is read twice.
    """
    if n_paths < 10:
        msg = f"A forecast needs at least 10 Monte Carlo paths for its intervals; got n_paths={n_paths!r}."
        raise ForecastError(msg)
    progress(0.0, "reading open invoices")
    # Segments, month-end payers and payment history are read once and shared.
    if inputs is not None:
        inputs.check(as_of)
        history, payers = inputs.history, inputs.payers
        invoices = inputs.invoices if invoices is None else invoices
    else:
        history = pay_history(store, as_of) if (include_new or (sampler is None and curves is None)) else None
        payers = month_end_payers(store, as_of)
    if invoices is None or (sampler is None and curves is None):
        groups = inputs.groups if inputs is not None else customer_groups(store, as_of)
        invoices = open_invoices(store, as_of, groups=groups, payers=payers) if invoices is None else invoices
        curves = (
            fit_pay_delay_curves(store, as_of, groups=groups, history=history, half_life_days=PAY_HISTORY_HALF_LIFE_DAYS)
            if curves is None else curves
        )
    if sampler is None:
        sampler = empirical_pay_dates(curves, invoices)
    windows = forecast_windows(as_of, weeks)
    edges = window_edges(as_of, weeks)
    progress(0.05, "building pay-date distributions")
    lookup = sampler.week_lookup(edges)
    rng = np.random.default_rng(seed)
    bucket_frame = invoices.select("group", "currency").with_row_index("row")
    keys = bucket_frame.select("group", "currency").unique(maintain_order=True).sort("group", "currency")
    keys = keys.with_row_index("bucket")
    bucket = bucket_frame.join(keys, on=["group", "currency"], how="left").sort("row")["bucket"].to_numpy()
    amount = invoices["open_amount"].to_numpy().astype(np.float64)
    customer = invoices["customer_id"].to_numpy()

    def sim_progress(fraction: float, stage: str) -> None:
        progress(0.1 + 0.8 * fraction, stage)

    cash = simulate_window_cash(
        lookup,
        sampler.lot,
        amount,
        bucket.astype(np.int64) if len(bucket) else np.zeros(0, dtype=np.int64),
        n_buckets=max(keys.height, 1),
        n_paths=n_paths,
        rng=rng,
        customer=customer,
        customer_correlation=customer_correlation,
        progress=sim_progress,
        should_cancel=should_cancel,
    )
    # Make sure every week has a column even when no invoice can land in the last ones.
    if cash.shape[2] < weeks + 1:
        cash = np.concatenate([cash, np.zeros((*cash.shape[:2], weeks + 1 - cash.shape[2]))], axis=2)
    open_paths = cash[:, :, :weeks].sum(axis=1)
    later = cash[:, :, weeks].sum(axis=1)
    progress(0.92, "projecting new billing")
    new_model = None
    if include_new:
        new_model = fit_new_billing(store, as_of, history=history, payers=payers)
        new_paths = new_billing_cash_paths(new_model, edges, n_paths=n_paths, rng=rng)
    else:
        new_paths = np.zeros((n_paths, weeks))
    p10, p50, p90, mean = _quantiles(open_paths)
    n10, n50, n90, _ = _quantiles(new_paths)
    t10, t50, t90, _ = _quantiles(open_paths + new_paths)
    week_frame = pl.DataFrame(
        {
            "week": np.arange(1, weeks + 1),
            "week_start": [w[0] for w in windows],
            "week_end": [w[1] for w in windows],
            "p10": p10,
            "p50": p50,
            "p90": p90,
            "mean": mean,
            "new_p10": n10,
            "new_p50": n50,
            "new_p90": n90,
            "total_p10": t10,
            "total_p50": t50,
            "total_p90": t90,
            # the naive run-rate beside ours: the last 13 weeks' average daily cash x days in the week
            "run_rate": naive_last_13_weeks(store, as_of, weeks=weeks),
        }
    )
    group_rows = []
    for row in keys.iter_rows(named=True):
        g10, g50, g90, gmean = _quantiles(cash[:, row["bucket"], :weeks])
        for k in range(weeks):
            group_rows.append(
                {
                    "week_start": windows[k][0],
                    "segment": row["group"],
                    "currency": row["currency"],
                    "p10": float(g10[k]),
                    "p50": float(g50[k]),
                    "p90": float(g90[k]),
                    "mean": float(gmean[k]),
                }
            )
    by_group = pl.DataFrame(
        group_rows,
        schema={
            "week_start": pl.Date,
            "segment": pl.String,
            "currency": pl.String,
            "p10": pl.Float64,
            "p50": pl.Float64,
            "p90": pl.Float64,
            "mean": pl.Float64,
        },
    )
    progress(1.0, "done")
    return CashForecast(
        as_of=as_of,
        weeks=week_frame,
        by_group=by_group,
        open_amount=float(amount.sum()),
        open_invoice_count=int(len(amount)),
        n_paths=n_paths,
        later_or_never_p50=float(np.median(later)),
        open_paths=open_paths,
        new_paths=new_paths,
        invoices=invoices,
        new_billing=new_model,
    )


# ---------------------------------------------------------------------------------------
# backtest
# ---------------------------------------------------------------------------------------
def actual_collections(store: Store, as_of: date, *, weeks: int = HORIZON_WEEKS) -> np.ndarray:
    """Cash actually applied to invoices (base currency) in each forecast week after ``as_of``."""
    windows = forecast_windows(as_of, weeks)
    frame = store.query(
        f"""
        SELECT p.payment_date AS day,
               sum({cash_base_sql("p.amount")})::DOUBLE AS cash
        FROM payments p JOIN invoices i ON i.invoice_id = p.invoice_id {fx_join_sql()}
        WHERE i.doc_type = 'invoice' AND p.payment_date > ?::DATE AND p.payment_date <= ?::DATE
        GROUP BY 1
        """,
        [as_of, windows[-1][1]],
    )
    days = np.array([(d - as_of).days for d in frame["day"].to_list()], dtype=np.int64)
    window = np.searchsorted(window_edges(as_of, weeks), days, side="left")
    return np.bincount(window, weights=frame["cash"].to_numpy(), minlength=weeks)[:weeks]


def naive_last_13_weeks(store: Store, as_of: date, *, weeks: int = HORIZON_WEEKS) -> np.ndarray:
    """Naive forecast 1: the average daily collections of the last 13 weeks, per week."""
    cash_before = store.scalar(
        f"""
        SELECT coalesce(sum({cash_base_sql("p.amount")}), 0)
        FROM payments p JOIN invoices i ON i.invoice_id = p.invoice_id {fx_join_sql()}
        WHERE i.doc_type = 'invoice' AND p.payment_date > ?::DATE AND p.payment_date <= ?::DATE
        """,
        [as_of - timedelta(days=91), as_of],
    )
    per_day = float(cash_before) / 91.0
    windows = forecast_windows(as_of, weeks)
    return np.array([per_day * ((end - start).days + 1) for start, end in windows])


def naive_due_dates(
    store: Store,
    as_of: date,
    *,
    weeks: int = HORIZON_WEEKS,
    invoices: pl.DataFrame | None = None,
    new_billing: NewBillingModel | None = None,
) -> np.ndarray:
    """Naive forecast 2: open invoices paid at face value on their due date (overdue ones in
    week 1), plus the run-rate of new billing paid on its average terms."""
    invoices = open_invoices(store, as_of) if invoices is None else invoices
    edges = window_edges(as_of, weeks)
    days_to_due = np.maximum(-invoices["days_past_due"].to_numpy().astype(np.int64), 1)
    window = np.searchsorted(edges, days_to_due, side="left")
    keep = window < weeks
    open_part = np.bincount(window[keep], weights=invoices["open_amount"].to_numpy()[keep], minlength=weeks)[:weeks]
    model = fit_new_billing(store, as_of) if new_billing is None else new_billing
    billing = model.daily_billing(int(edges[-1]))
    pay_day = np.arange(1, len(billing) + 1) + int(round(model.mean_terms_days))
    window_new = np.searchsorted(edges, pay_day, side="left")
    keep_new = window_new < weeks
    new_part = np.bincount(window_new[keep_new], weights=billing[keep_new], minlength=weeks)[:weeks]
    return open_part + new_part


#: The band every forecast states: P10–P90.
BAND = (0.10, 0.90)
#: Past forecasts that choose the blend and calibrate the band: every CALIBRATION_EVERY_WEEKS
#: weeks over the CALIBRATION_SPAN_WEEKS weeks before the first backtest date (and between backtest
#: dates). Weekly: two-weekly origins leave 13-26 errors per horizon, too few for a P10.
CALIBRATION_EVERY_WEEKS = 1
CALIBRATION_SPAN_WEEKS = 52
#: At most this many most recent errors per horizon choose a blend weight (behaviour changes:
#: half a year of weekly forecasts).
CALIBRATION_MAX_ERRORS = 26
#: Fewer errors than this at a horizon: the errors of every horizon are pooled.
MIN_CALIBRATION_ERRORS = 8
#: At most this many most recent errors per horizon calibrate a band (a quarter of weekly
#: forecasts; chosen on dev worlds only, bench/RESULTS.md).
BAND_ERRORS = 13
#: The weights on our model's P50 tried against the run-rate (the rest on the run-rate).
BLEND_WEIGHTS = np.round(np.linspace(0.0, 1.0, 11), 2)
#: Our model's level, corrected before the blend: its P50 at each horizon × (actual / its P50
#: summed over its LEVEL_ERRORS most recent forecasts at that horizon whose week had ended) **
#: LEVEL_SHRINK (shrunk towards no correction). Chosen on second-world seeds 1–4 and generator
#: seed 11 (bench/RESULTS.md): 8–26 errors and shrinkage 0.5–1 all within 0.6 points of each other.
LEVEL_ERRORS = 13
LEVEL_SHRINK = 0.75
#: Monte Carlo paths per past forecast in the backtest the Overview and ``forecast`` run.
BACKTEST_PATHS = 300
#: The forecast's method, in every kept backtest's key (:mod:`dashboard.forecast_kept`): a backtest
#: kept by another method is never read back. Bump the leading number with any change to this
#: module, :mod:`dashboard.paydist`, :mod:`dashboard._simulate_kernels`, the customer groups
#: (:mod:`dashboard.segments`) or the ledger's reads that changes a backtest's numbers for the same
#: data and parameters; the constants after it follow themselves.
METHOD_ID = (
    f"fc1-hl{PAY_HISTORY_HALF_LIFE_DAYS}-cal{CALIBRATION_EVERY_WEEKS}x{CALIBRATION_SPAN_WEEKS}w"
    f"-blend{CALIBRATION_MAX_ERRORS}-min{MIN_CALIBRATION_ERRORS}-band{BAND_ERRORS}"
    f"-level{LEVEL_ERRORS}x{LEVEL_SHRINK}"
)


def conformal_ratio_band(ratios: np.ndarray, *, band: tuple[float, float] = BAND) -> tuple[float, float]:
    """Bounds (1/k, k) on actual / forecast from n past ratios r: k is the (n+1)·(high − low)-th
    smallest of the scores max(r, 1/r) — how many times off each past forecast was, either way
    (interpolated; the largest at the end). For exchangeable ratios a new one then falls inside with
    probability high − low on average: the split-conformal argument on the score |log r|, with
    interpolated ranks, which states 80% rather than the "at least 80%" of whole ranks. A ratio of
    zero or less (no cash where some was forecast) is infinitely off: when the rank falls on one,
    the band is 0 to the largest ratio seen (at least 1)."""
    values = np.asarray(ratios, dtype=np.float64)
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    positive = values > 0
    scores = np.sort(np.where(positive, np.abs(np.log(np.where(positive, values, 1.0))), np.inf))
    rank = min(max((band[1] - band[0]) * (n + 1), 1.0), float(n))  # 1-based, as numpy's "weibull"
    below, frac = int(np.floor(rank)), rank - np.floor(rank)
    a, b = scores[below - 1], scores[min(below, n - 1)]
    if np.isinf(a) or (frac > 0 and np.isinf(b)):
        return 0.0, float(max(values.max(), 1.0))
    k = float(np.exp(a if frac == 0 else a + frac * (b - a)))
    return 1.0 / k, k


@dataclass
class BacktestResult:
    """Forecasts made at past as-of dates against what came in.

    ``details``: as_of, horizon (week 1..13), week_start, week_end, actual, p50 (the point the
    product states: the blend of :func:`combination_weights`), model_p50 (our pay-date model's
    P50), level (:func:`level_factors`) and model_point (model_p50 × level), weight (on
    model_point; the rest on the run-rate), p10 / p90 (the band calibrated from
    earlier forecasts' errors at that horizon: :func:`conformal_ratio_band`), mc_p10 / mc_p90
    (the Monte Carlo band before calibration), band_errors (errors behind the band),
    last_13_weeks (the naive run-rate: the average daily cash of the 13 weeks before × days in
    the week), due_dates, inside.
    ``table``: per horizon: actual, wape_forecast (the stated point), wape_model (our model
    alone), wape_last_13_weeks, wape_due_dates, coverage_80 (calibrated band), coverage_monte_carlo.
    ``runs``: every past forecast made (backtest dates and the calibration origins before them):
    as_of, horizon, week_end, actual, p50 (our model), last_13_weeks, level, model_point, weight
    and point (the blend as chosen at that origin) — what chooses a new forecast's blend and calibrates its band.
    """

    as_of_dates: list[date]
    details: pl.DataFrame
    table: pl.DataFrame
    runs: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)

    def wape_at(self, horizon: int) -> dict[str, float]:
        row = self.table.filter(pl.col("horizon") == horizon).row(0, named=True)
        return {k: row[k] for k in ("wape_forecast", "wape_last_13_weeks", "wape_due_dates")}

    def wape_first(self, weeks: int = 4) -> dict[str, float]:
        """WAPE over the first ``weeks`` weeks of every backtest forecast, pooled: the stated
        forecast, our model alone, the run-rate naive and the due-date naive."""
        rows = self.details.filter(pl.col("horizon") <= weeks)
        actual = float(rows["actual"].sum())
        return {
            "wape_forecast": float((rows["actual"] - rows["p50"]).abs().sum()) / actual,
            "wape_model": float((rows["actual"] - rows["model_p50"]).abs().sum()) / actual,
            "wape_last_13_weeks": float((rows["actual"] - rows["last_13_weeks"]).abs().sum()) / actual,
            "wape_due_dates": float((rows["actual"] - rows["due_dates"]).abs().sum()) / actual,
        }

    def beats_run_rate(self, weeks: int = 4) -> bool:
        """The stated forecast's WAPE over the first ``weeks`` weeks is below the run-rate naive's."""
        wape = self.wape_first(weeks)
        return wape["wape_forecast"] < wape["wape_last_13_weeks"]

    def mean_weight(self, weeks: int = 4) -> float:
        """The average weight on our model over the first ``weeks`` weeks of the backtest dates."""
        return float(self.details.filter(pl.col("horizon") <= weeks)["weight"].mean())

    @property
    def coverage(self) -> float:
        """Share of all (as-of, week) pairs whose actual fell inside the calibrated P10–P90 band."""
        return float(self.details["inside"].mean())

    @property
    def coverage_monte_carlo(self) -> float:
        """The same for the Monte Carlo band before calibration."""
        inside = (self.details["actual"] >= self.details["mc_p10"]) & (self.details["actual"] <= self.details["mc_p90"])
        return float(inside.mean())

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of_dates": [d.isoformat() for d in self.as_of_dates],
            "coverage_80": round(self.coverage, 4),
            "by_horizon": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in self.table.iter_rows(named=True)],
        }


def blend(weight: Any, model_point: Any, run_rate: Any) -> Any:
    """The forecast in use: ``weight × model_point + (1 − weight) × run_rate`` (the one place the
    blend is written; NumPy arrays or Polars expressions)."""
    return weight * model_point + (1 - weight) * run_rate


def _blend_weight(actual: np.ndarray, model: np.ndarray, run_rate: np.ndarray) -> float:
    """The weight of :data:`BLEND_WEIGHTS` with the smallest absolute error; on a tie the
    smaller weight (the simpler run-rate)."""
    errors = np.abs(actual[None, :] - blend(BLEND_WEIGHTS[:, None], model[None, :], run_rate[None, :])).sum(axis=1)
    return float(BLEND_WEIGHTS[int(np.argmin(np.round(errors, 6)))])


def level_factors(runs: pl.DataFrame, as_of: date, weeks: int = HORIZON_WEEKS) -> np.ndarray:
    """Per horizon, the factor on our model's P50 that corrects its level: (actual / P50, each
    summed over the most recent :data:`LEVEL_ERRORS` past forecasts at that horizon made before
    ``as_of`` whose week had ended by then) ** :data:`LEVEL_SHRINK`. 1.0 (no correction) where
    fewer than :data:`MIN_CALIBRATION_ERRORS` were judged or they forecast no cash. ``runs``
    needs as_of, horizon, week_end, actual and p50 (our model's, uncorrected)."""
    out = np.ones(weeks)
    if runs.is_empty():
        return out
    known = runs.filter((pl.col("as_of") < as_of) & (pl.col("week_end") <= as_of) & (pl.col("horizon") <= weeks))
    recent = (known.sort("as_of", descending=True).group_by("horizon", maintain_order=True).head(LEVEL_ERRORS)
              .group_by("horizon").agg(pl.len().alias("n"), pl.col("actual").sum(), pl.col("p50").sum()))
    for h, n, actual, p50 in recent.select("horizon", "n", "actual", "p50").iter_rows():
        if n >= MIN_CALIBRATION_ERRORS and p50 > 0:
            out[h - 1] = (actual / p50) ** LEVEL_SHRINK
    return out


def combination_weights(runs: pl.DataFrame, as_of: date, weeks: int = HORIZON_WEEKS) -> np.ndarray:
    """Per horizon, the weight on our model's level-corrected P50 (``model_point``: the rest on
    the run-rate) that had the smallest absolute error over past forecasts made before ``as_of``
    whose week had ended by then (the most recent :data:`CALIBRATION_MAX_ERRORS` at that
    horizon; when a horizon has fewer than :data:`MIN_CALIBRATION_ERRORS`, every horizon's
    pooled). 1.0 (our model alone) where no past forecast has been judged yet. ``runs`` needs
    as_of, horizon, week_end, actual, model_point (as :func:`blend_runs` adds it) and
    last_13_weeks."""
    out = np.ones(weeks)
    if runs.is_empty():
        return out
    known = runs.filter((pl.col("as_of") < as_of) & (pl.col("week_end") <= as_of)).sort("as_of", descending=True)
    if known.is_empty():
        return out

    def weight(frame: pl.DataFrame) -> float:
        return _blend_weight(frame["actual"].to_numpy(), frame["model_point"].to_numpy(),
                             frame["last_13_weeks"].to_numpy())

    pooled = weight(known.head(CALIBRATION_MAX_ERRORS * 4))
    for h in range(1, weeks + 1):
        mine = known.filter(pl.col("horizon") == h).head(CALIBRATION_MAX_ERRORS)
        out[h - 1] = weight(mine) if mine.height >= MIN_CALIBRATION_ERRORS else pooled
    return out


def blend_runs(runs: pl.DataFrame, weeks: int = HORIZON_WEEKS) -> pl.DataFrame:
    """``runs`` with level, model_point (our P50 × level), weight and point: at every origin the
    level correction :func:`level_factors` and the blend :func:`combination_weights` would have
    chosen then (from earlier origins only)."""
    origins = sorted(runs["as_of"].unique().to_list())
    levelled = pl.concat([
        mine.with_columns(level=pl.Series(level_factors(runs, as_of, weeks)[mine["horizon"].to_numpy() - 1]))
        for as_of in origins
        for mine in [runs.filter(pl.col("as_of") == as_of).sort("horizon")]
    ]).with_columns(model_point=pl.col("p50") * pl.col("level"))
    parts = []
    for as_of in origins:
        mine = levelled.filter(pl.col("as_of") == as_of)
        weight = pl.Series("weight", combination_weights(levelled, as_of, weeks)[mine["horizon"].to_numpy() - 1])
        parts.append(mine.with_columns(weight).with_columns(
            point=blend(pl.col("weight"), pl.col("model_point"), pl.col("last_13_weeks"))))
    return pl.concat(parts)


def band_errors(runs: pl.DataFrame, as_of: date, weeks: int = HORIZON_WEEKS) -> dict[int, np.ndarray]:
    """Per horizon, the ratios actual / stated point (``point``, or ``p50`` where runs have no
    blend) of past forecasts whose week had ended by ``as_of`` (the most recent
    :data:`BAND_ERRORS`); when a horizon has fewer than :data:`MIN_CALIBRATION_ERRORS`, every
    horizon's ratios pooled (the most recent 4 × :data:`BAND_ERRORS`)."""
    if runs.is_empty():
        return {}
    point = "point" if "point" in runs.columns else "p50"
    known = runs.filter((pl.col("as_of") < as_of) & (pl.col("week_end") <= as_of) & (pl.col(point) > 0))
    known = known.with_columns(ratio=pl.col("actual") / pl.col(point))
    pooled = known.sort("as_of", descending=True).head(BAND_ERRORS * 4)["ratio"].to_numpy()
    out = {}
    for h in range(1, weeks + 1):
        ratios = known.filter(pl.col("horizon") == h).sort("as_of", descending=True).head(BAND_ERRORS)
        values = ratios["ratio"].to_numpy()
        out[h] = values if len(values) >= MIN_CALIBRATION_ERRORS else pooled
    return out


def calibrated_band(points: np.ndarray, errors: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P10 / P90 per week from ``points`` (the stated point per horizon) and :func:`band_errors`; NaN
    where there are too few errors. Also returns how many errors each week's band rests on."""
    low = np.full(len(points), np.nan)
    high = np.full(len(points), np.nan)
    used = np.zeros(len(points), dtype=np.int64)
    for k in range(len(points)):
        ratios = errors.get(k + 1, np.zeros(0))
        if len(ratios) >= MIN_CALIBRATION_ERRORS:
            lo, hi = conformal_ratio_band(ratios)
            low[k], high[k] = points[k] * lo, points[k] * hi
            used[k] = len(ratios)
    return low, high, used


def blend_note(weights: np.ndarray, *, judged: bool = True, level: np.ndarray | None = None) -> str:
    """Which forecast is in use, in words, from the weights on our model per week and the
    factors that corrected its level (:func:`level_factors`)."""
    if not judged:
        return "The forecast is our pay-date model alone: no past forecast of this business could be judged yet."
    share = float(np.mean(weights))
    if np.all(weights == 1.0):
        what = "our pay-date model alone"
    elif np.all(weights == 0.0):
        what = "the naive run-rate alone (our pay-date model did worse on this business's past)"
    else:
        what = (f"a blend of our pay-date model ({share:.0%} on average, {weights.min():.0%}–{weights.max():.0%} "
                f"by week) and the naive run-rate")
    corrected = ""
    if level is not None and np.any(weights > 0) and not np.allclose(level, 1.0):
        corrected = (f" Our model's medians are scaled by {level.min():.2f}–{level.max():.2f} by week: how far its "
                     f"last {LEVEL_ERRORS} forecasts at each week ahead were off, shrunk towards 1.")
    return (f"The forecast in use (line) is {what}: the weights had the smallest error over this business's own "
            f"past forecasts at each week ahead.{corrected}")


def calibrate_forecast(result: CashForecast, backtest: BacktestResult) -> CashForecast:
    """``result`` with the forecast in use (``point``: our total P50, its level corrected by
    :func:`level_factors`, blended with the run-rate by the weights :func:`combination_weights`
    chooses on the backtest's past forecasts; ``level`` and ``weight`` per week) and its
    P10–P90 band calibrated from those forecasts' errors at each horizon (weeks without enough
    errors keep the Monte Carlo band; ``band_note`` and ``point_note`` say which)."""
    weeks = result.weeks
    runs = backtest.runs
    weights = combination_weights(runs, result.as_of, weeks.height)
    level = level_factors(runs, result.as_of, weeks.height)
    judged = not runs.is_empty() and runs.filter(
        (pl.col("as_of") < result.as_of) & (pl.col("week_end") <= result.as_of)).height > 0
    point = blend(weights, weeks["total_p50"].to_numpy() * level, weeks["run_rate"].to_numpy())
    errors = band_errors(runs, result.as_of, weeks.height)
    low, high, used = calibrated_band(point, errors)
    calibrated = ~np.isnan(low)
    shift = point - weeks["total_p50"].to_numpy()  # the Monte Carlo band, moved with the point
    frame = weeks.with_columns(
        total_p10_monte_carlo=pl.col("total_p10"), total_p90_monte_carlo=pl.col("total_p90"),
        total_p10=pl.Series(np.where(calibrated, low, weeks["total_p10"].to_numpy() + shift)),
        total_p90=pl.Series(np.where(calibrated, high, weeks["total_p90"].to_numpy() + shift)),
        point=pl.Series(point), weight=pl.Series(weights), level=pl.Series(level),
        band_errors=pl.Series(used),
    )
    if calibrated.all():
        note = (f"P10–P90 calibrated on this business's own past forecasts: the line ÷ and × how many times off "
                f"8 in 10 of the last {int(used.max())} forecasts at each week ahead were, either way "
                f"(split-conformal).")
    elif calibrated.any():
        note = (f"P10–P90 calibrated on past forecasts' errors for {int(calibrated.sum())} of {len(calibrated)} weeks; "
                "the others keep the Monte Carlo band (too few past forecasts).")
    else:
        note = "P10–P90 from the Monte Carlo paths alone: too few past forecasts to calibrate them yet."
    from dataclasses import replace

    return replace(result, weeks=frame, band_note=note, point_note=blend_note(weights, judged=judged, level=level))


def backtest_dates(store: Store, *, every_weeks: int = 4, span_weeks: int = 52, weeks: int = HORIZON_WEEKS) -> list[date]:
    """Sundays every ``every_weeks`` weeks over the last ``span_weeks`` weeks of data that
    still have ``weeks`` weeks of actuals after them."""
    last = store.scalar("SELECT max(payment_date) FROM payments")
    if last is None:
        msg = "There are no payments in the store: nothing to backtest a forecast against."
        raise ForecastError(msg)
    latest = last - timedelta(days=7 * weeks)
    latest = latest - timedelta(days=(latest.weekday() + 1) % 7)  # back to a Sunday
    count = span_weeks // every_weeks
    return [latest - timedelta(days=7 * every_weeks * i) for i in range(count - 1, -1, -1)]


def calibration_origins(store: Store, dates: Sequence[date], *, every_weeks: int = CALIBRATION_EVERY_WEEKS,
                        span_weeks: int = CALIBRATION_SPAN_WEEKS) -> list[date]:
    """Past forecast dates whose errors calibrate the bands: every ``every_weeks`` weeks from
    ``span_weeks`` weeks before the first of ``dates`` to the last, once the data has two
    months of history (the backtest dates themselves included)."""
    first_invoice = store.scalar(
        "SELECT min(invoice_date) FROM invoices WHERE coalesce(doc_type, 'invoice') = 'invoice'"
    )
    if first_invoice is None or not dates:
        return list(dates)
    last, first = max(dates), min(dates) - timedelta(days=7 * span_weeks)
    grid = []
    day = last
    while day >= max(first, first_invoice + timedelta(days=56)):
        grid.append(day)
        day -= timedelta(days=7 * every_weeks)
    return sorted(set(grid) | set(dates))


def backtest_plan(
    store: Store,
    *,
    as_of_dates: Sequence[date] | None = None,
    weeks: int = HORIZON_WEEKS,
    calibrate_from: Sequence[date] | None = None,
) -> tuple[list[date], list[date]]:
    """The backtest dates and every origin a forecast is made at (the dates and the calibration
    origins), sorted, as :func:`backtest_forecast` resolves its defaults."""
    dates = list(as_of_dates) if as_of_dates is not None else backtest_dates(store, weeks=weeks)
    if not dates:
        msg = "No as-of dates to backtest: the data is shorter than the forecast horizon."
        raise ForecastError(msg)
    origins = sorted(set(calibrate_from) | set(dates)) if calibrate_from is not None else calibration_origins(store, dates)
    return dates, origins


def backtest_forecast(
    store: Store,
    *,
    as_of_dates: Sequence[date] | None = None,
    weeks: int = HORIZON_WEEKS,
    n_paths: int = 500,
    seed: int = 0,
    customer_correlation: float = 0.5,
    calibrate_from: Sequence[date] | None = None,
    progress: Progress = no_progress,
    should_cancel: ShouldCancel = never_cancel,
) -> BacktestResult:
    """Backtest the forecast (open + new), its calibrated band and the two naive forecasts.

    Forecasts are made at ``as_of_dates`` (default :func:`backtest_dates`) and at the earlier
    origins of ``calibrate_from`` (default :func:`calibration_origins`), each with only the data
    known then. Each backtest date's band is calibrated from the errors of the forecasts made
    before it whose week had ended by then — never from its own outcome.
    """
    dates, origins = backtest_plan(store, as_of_dates=as_of_dates, weeks=weeks, calibrate_from=calibrate_from)
    rows = []
    for i, as_of in enumerate(origins):
        if should_cancel():
            msg = "The backtest was cancelled."
            raise ForecastError(msg)
        progress(i / len(origins), f"forecast {i + 1} of {len(origins)}, as of {as_of.isoformat()}")
        result = forecast_cash(
            store, as_of, weeks=weeks, n_paths=n_paths, seed=seed + i, customer_correlation=customer_correlation
        )
        actual = actual_collections(store, as_of, weeks=weeks)
        naive1 = naive_last_13_weeks(store, as_of, weeks=weeks)
        naive2 = naive_due_dates(store, as_of, weeks=weeks, invoices=result.invoices, new_billing=result.new_billing)
        weeks_frame = result.weeks
        for k in range(weeks):
            rows.append(
                {
                    "as_of": as_of,
                    "horizon": k + 1,
                    "week_start": weeks_frame["week_start"][k],
                    "week_end": weeks_frame["week_end"][k],
                    "actual": float(actual[k]),
                    "p50": float(weeks_frame["total_p50"][k]),
                    "mc_p10": float(weeks_frame["total_p10"][k]),
                    "mc_p90": float(weeks_frame["total_p90"][k]),
                    "last_13_weeks": float(naive1[k]),
                    "due_dates": float(naive2[k]),
                }
            )
    progress(1.0, "done")
    runs = blend_runs(pl.DataFrame(rows), weeks)
    parts = []
    for as_of in dates:
        mine = runs.filter(pl.col("as_of") == as_of).sort("horizon")
        low, high, used = calibrated_band(mine["point"].to_numpy(), band_errors(runs, as_of, weeks))
        # The Monte Carlo band where there are too few errors, moved with the point.
        shift = (mine["point"] - mine["p50"]).to_numpy()
        parts.append(mine.with_columns(
            p10=pl.Series(np.where(np.isnan(low), mine["mc_p10"].to_numpy() + shift, low)),
            p90=pl.Series(np.where(np.isnan(high), mine["mc_p90"].to_numpy() + shift, high)),
            band_errors=pl.Series(used),
        ))
    details = pl.concat(parts).rename({"p50": "model_p50"}).rename({"point": "p50"}).with_columns(
        inside=(pl.col("actual") >= pl.col("p10")) & (pl.col("actual") <= pl.col("p90"))
    )
    table = (
        details.group_by("horizon")
        .agg(
            actual=pl.col("actual").sum(),
            wape_forecast=(pl.col("actual") - pl.col("p50")).abs().sum() / pl.col("actual").sum(),
            wape_model=(pl.col("actual") - pl.col("model_p50")).abs().sum() / pl.col("actual").sum(),
            wape_last_13_weeks=(pl.col("actual") - pl.col("last_13_weeks")).abs().sum() / pl.col("actual").sum(),
            wape_due_dates=(pl.col("actual") - pl.col("due_dates")).abs().sum() / pl.col("actual").sum(),
            coverage_80=pl.col("inside").cast(pl.Float64).mean(),
            coverage_monte_carlo=((pl.col("actual") >= pl.col("mc_p10")) & (pl.col("actual") <= pl.col("mc_p90")))
            .cast(pl.Float64).mean(),
        )
        .sort("horizon")
    )
    return BacktestResult(as_of_dates=dates, details=details, table=table, runs=runs.select(
        "as_of", "horizon", "week_end", "actual", "p50", "last_13_weeks", "level", "model_point", "weight", "point"))
