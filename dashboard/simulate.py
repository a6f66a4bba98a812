"""Strategy simulator: strategy A (the current way of working: the cadence the contact history
shows, :mod:`dashboard.cadence`) against B (the user's edits), with common random numbers,
effects measured from the contact history, and intervals.

The model of one invoice, measured as of ``as_of`` from history known on that date:

1. **No-touch pay delay** (pay date − due date, what the customer would do unchased): a
   Kaplan–Meier curve per lateness band from invoices none of whose touches got a response,
   each weighted by 1 / P(no response to the touches it was sent) — inverse probability
   weighting, so invoices that met many touches are not under-represented. Invoices that
   will not pay whatever is sent (written off, or unpaid past 120 days) keep weight 1, and
   weights are capped at ``MAX_WEIGHT``.
2. **Response to a touch** by lateness band × channel × tone: share of touches followed by
   payment (outcome ``paid``) or by a promise that was kept (paid from the day it was made to
   :data:`~dashboard.vocabulary.PROMISE_GRACE_DAYS` after the promised date, the one window
   every part of Recoup uses); shrunk towards the channel × tone rate over all bands.
3. **Days a response pulls payment forward**: exponential with a mean per segment, chosen so
   that replaying strategy A on the no-touch curves reproduces the observed mean days to pay
   (capped at 120 days past due) of that segment — a calibration, reported as measured.
4. **Early-payment discount**: take-up per segment measured on 2/10-style invoices (discount
   adjustments); takers pay within 10 days of issue. Offering another rate scales take-up in
   proportion (an assumption, flagged).

Uncertainty: every measured quantity is re-estimated on ``n_boot`` customer-bootstrap
replicates (Poisson weights per customer); path ``p`` uses replicate ``p mod n_boot`` and its
own draws, shared by A and B (common random numbers: the same draw for the same invoice and
the same touch day under both strategies), so a difference is the strategy's effect, not noise.
The draws are counter-based — a hash of the path's key and the invoice (or invoice × step
day), computed only when needed — and the day-by-day send loop is a compiled kernel
(``dashboard._simulate_kernels``); a path's draws do not depend on how paths are chunked.

The simulated book: invoices open on ``as_of`` (no-touch delay conditioned on not being paid
yet) plus the next ``horizon_days`` of new billing, taken as the last ``horizon_days`` of
invoices shifted forward. Touches are sent on the next business day of each step, largest
amounts first (or the strategy's priority rule) up to the daily capacity, only while unpaid.
Anything the user sets by hand (an effect for a channel and tone, a discount rate never
measured, new terms, a credit hold) is listed in ``assumptions`` and marked in every output.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any

import numba
import numpy as np
import polars as pl

from dashboard import _simulate_kernels as kernels
from dashboard import display
from dashboard.errors import SimulationError
from dashboard.forecast import forecast_windows, window_edges
from dashboard.ledger import fx_join_sql, invoice_base_sql
from dashboard.paydist import DELAY_MAX, DELAY_MIN, NEVER, AsOfInputs, customer_groups, open_invoices, pay_history
from dashboard.progress import Progress, ShouldCancel, never_cancel, no_progress
from dashboard.store import Store
from dashboard.vocabulary import CHANNELS, PRIORITY_RULES, PROMISE_GRACE_DAYS, TONES, words

N_CELLS = len(CHANNELS) * len(TONES)  # (channel, tone) cells of one lateness band
DAYS_TO_PAY_CAP = 120
MAX_WEIGHT = 20.0  # cap on inverse-probability weights (a few invoices must not dominate)
WRITE_OFF_DAYS = 240
PULL_GRID = np.array([0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 18.0, 25.0, 35.0, 50.0, 70.0])
_KERNEL_LOCK = threading.Lock()  # the compiled kernel runs one simulation chunk at a time


# ---------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Touch:
    """One cadence step: ``days_from_due`` (-3 = three days before due), channel, tone."""

    days_from_due: int
    channel: str
    tone: str
    action: str = "reminder"


@dataclass(frozen=True)
class Strategy:
    """A collections strategy the simulator can run.

    ``segment_steps`` overrides ``steps`` for a segment; ``daily_capacity`` caps touches per
    day (None = no cap); ``priority`` orders a day's touches when capacity binds;
    ``early_pay_discount`` and ``terms_days`` map a segment (or ``"all"``) to a discount rate
    (0.02 = 2/10) and to the terms of new invoices; ``credit_hold`` lists segments that get
    no new invoices; ``assumed_effects`` maps (channel, tone) to a hand-set
    (response probability, mean days pulled forward) — always reported as an assumption.
    """

    name: str = "current"
    steps: tuple[Touch, ...] = ()
    segment_steps: Mapping[str, tuple[Touch, ...]] = field(default_factory=dict)
    daily_capacity: int | None = None
    priority: str = "largest_amount"
    early_pay_discount: Mapping[str, float] = field(default_factory=dict)
    terms_days: Mapping[str, int] = field(default_factory=dict)
    credit_hold: tuple[str, ...] = ()
    assumed_effects: Mapping[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    def steps_for(self, segment: str) -> tuple[Touch, ...]:
        return tuple(self.segment_steps.get(segment, self.steps))

    def for_segment(self, mapping: Mapping[str, Any], segment: str) -> Any:
        return mapping.get(segment, mapping.get("all"))

    def validate(self) -> None:
        """Raise SimulationError with the bad value when a setting cannot be simulated."""
        if self.priority not in PRIORITY_RULES:
            msg = f"Unknown prioritization rule {self.priority!r}; use one of {list(PRIORITY_RULES)}."
            raise SimulationError(msg)
        if self.daily_capacity is not None and self.daily_capacity < 0:
            msg = f"Daily touch capacity cannot be negative; got {self.daily_capacity!r}."
            raise SimulationError(msg)
        for segment, rate in self.early_pay_discount.items():
            if not 0.0 <= rate < 0.2:
                msg = f"An early-payment discount must be between 0 and 20%; got {rate!r} for {segment!r}."
                raise SimulationError(msg)
        for segment, days in self.terms_days.items():
            if not 0 <= days <= 180:
                msg = f"Payment terms must be 0 to 180 days; got {days!r} for {segment!r}."
                raise SimulationError(msg)
        all_steps = [*self.steps, *(s for steps in self.segment_steps.values() for s in steps)]
        for step in all_steps:
            if step.channel not in CHANNELS:
                msg = f"Unknown channel {step.channel!r} in a cadence step; use one of {list(CHANNELS)}."
                raise SimulationError(msg)
            if step.tone not in TONES:
                msg = f"Unknown tone {step.tone!r} in a cadence step; use one of {list(TONES)}."
                raise SimulationError(msg)
        for key, (probability, pull) in self.assumed_effects.items():
            if not (0.0 <= probability <= 1.0) or pull < 0:
                msg = f"An assumed effect needs a probability 0–1 and days ≥ 0; got {(probability, pull)!r} for {key!r}."
                raise SimulationError(msg)

    def assumptions(self, measured_discount_rate: float | None = None) -> list[str]:
        """Plain-language list of every effect this strategy sets by hand."""
        notes = [
            f"{self.name}: the answer to a {words(tone)} {words(channel)} is set by hand to {p:.0%}, "
            f"pulling payment {d:g} days earlier"
            for (channel, tone), (p, d) in self.assumed_effects.items()
        ]
        for segment, rate in self.early_pay_discount.items():
            if measured_discount_rate is None or abs(rate - measured_discount_rate) > 1e-9:
                notes.append(
                    f"{self.name}: take-up of a {rate:.1%} discount by {_who(segment)} is scaled from the measured "
                    f"{(measured_discount_rate or 0):.1%} take-up in proportion to the rate"
                )
        for segment, days in self.terms_days.items():
            notes.append(f"{self.name}: {_who(segment)} keep their lateness when terms become {days} days")
        for segment in self.credit_hold:
            notes.append(f"{self.name}: a credit hold on {_who(segment)} stops their new invoices and changes nothing else")
        return notes


def _who(segment: str) -> str:
    """"chronically late customers", "all customers"."""
    if segment == "all":
        return "all customers"
    return f"{words(segment)} customers".replace("customer customers", "customers")


def strategy_from_policy(policy: Any, *, name: str | None = None) -> Strategy:
    """A :class:`Strategy` from a ``dashboard.synthetic.CollectionsPolicy`` (same cadence,
    capacity and discounts)."""

    def steps(items: Any) -> tuple[Touch, ...]:
        return tuple(Touch(s.days_from_due, s.channel, s.tone, s.action) for s in items)

    return Strategy(
        name=name or policy.name,
        steps=steps(policy.steps),
        segment_steps={seg: steps(items) for seg, items in policy.segment_steps.items()},
        daily_capacity=policy.daily_capacity,
        early_pay_discount=dict(policy.early_pay_discount),
    )


def current_strategy() -> Strategy:
    """The shipped default cadence (``dashboard.synthetic.default_policy``) as a Strategy: what
    strategy A falls back to when the contact history is too thin to show a cadence."""
    from dashboard.synthetic import default_policy

    return strategy_from_policy(default_policy(), name="current")


# ---------------------------------------------------------------------------------------
# measuring effects from history
# ---------------------------------------------------------------------------------------
def _weighted_km(
    group: np.ndarray, delay: np.ndarray, is_event: np.ndarray, weight: np.ndarray, n_groups: int, shrinkage: float
) -> np.ndarray:
    """Weighted Kaplan–Meier survival per group on the delay grid, each group's hazard shrunk
    towards the pooled one with ``shrinkage`` pseudo-observations: ``(n_groups, width)``, or
    ``(R, n_groups, width)`` for ``weight`` of shape ``(R, n)`` (one curve set per replicate)."""
    width = DELAY_MAX - DELAY_MIN + 1
    column = np.clip(delay, DELAY_MIN, DELAY_MAX) - DELAY_MIN
    is_event = is_event & (delay <= DELAY_MAX)
    key = (group * width + column).astype(np.int64)
    weights = np.atleast_2d(np.asarray(weight, dtype=float))
    events, leaving = kernels.weighted_counts(key, is_event.astype(np.bool_), weights, n_groups * width)
    events = events.reshape(-1, n_groups, width)
    leaving = leaving.reshape(-1, n_groups, width)
    at_risk = np.cumsum(leaving[:, :, ::-1], axis=2)[:, :, ::-1]
    pooled_events, pooled_risk = events.sum(axis=1, keepdims=True), at_risk.sum(axis=1, keepdims=True)
    pooled = np.divide(pooled_events, pooled_risk, out=np.zeros_like(pooled_risk), where=pooled_risk > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(at_risk + shrinkage > 0, (events + shrinkage * pooled) / (at_risk + shrinkage), 0.0)
    survival = np.cumprod(1.0 - np.clip(hazard, 0.0, 1.0), axis=2)
    return survival if np.ndim(weight) == 2 else survival[0]


def _restricted_mean(survival: np.ndarray, cap: int = DAYS_TO_PAY_CAP) -> np.ndarray:
    """Mean of min(delay, cap) from survival curves on the delay grid (last axis)."""
    delays = np.arange(DELAY_MIN, DELAY_MAX + 1)
    upto = delays < cap
    # E[min(D, cap)] = DELAY_MIN + sum_{d=DELAY_MIN}^{cap-1} P(D > d)
    return DELAY_MIN + survival[..., upto].sum(axis=-1)


LATENESS_BANDS: tuple[float, ...] = (-3.0, 0.0, 3.0, 7.0, 12.0, 20.0, 35.0)
BAND_LABELS: list[str] = [
    "3+ days early", "0-3 days early", "0-3 days late", "3-7 days late", "7-12 days late",
    "12-20 days late", "20-35 days late", "35+ days late",
]


def lateness_bands(
    store: Store, as_of: date, *, min_paid: int = 3, history: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Each customer's lateness band as of ``as_of``: the mean days after due of its invoices
    paid in the last 18 months (clipped to -30..90), cut at ``LATENESS_BANDS``; ``new`` with
    fewer than ``min_paid`` paid invoices. Columns: customer_id, band.

    Bands, not the business segments, carry the simulator's parameters: a response rate or a
    no-touch curve averaged over customers who pay very differently is biased (the slowest
    payers also answer least), and narrow bands keep customers alike.
    """
    history = pay_history(store, as_of) if history is None else history
    per_customer = (
        history.filter(pl.col("is_paid"))
        .group_by("customer_id")
        .agg(mean=pl.col("delay_days").clip(-30, 90).mean(), paid=pl.len())
    )
    # Intervals are closed on the right: a mean of exactly 0 days is "0-3 days early".
    band = pl.lit(BAND_LABELS[-1])
    for edge, band_label in reversed(list(zip(LATENESS_BANDS, BAND_LABELS, strict=False))):
        band = pl.when(pl.col("mean") <= edge).then(pl.lit(band_label)).otherwise(band)
    return per_customer.select(
        "customer_id",
        band=pl.when(pl.col("paid") < min_paid).then(pl.lit("new")).otherwise(band),
    )


@dataclass
class MeasuredEffects:
    """What the contact history says, as of ``as_of``, with ``n_boot`` bootstrap replicates.

    ``response[r, s, c, t]``: probability one touch gets a response; ``pull_mean[r, s]``: mean
    days a response pulls payment forward; ``baseline[r, s, :]``: no-touch delay survival on
    the delay grid; ``discount_take[r, s]``: take-up of the measured discount rate.
    ``cells``: one row per segment × channel × tone seen in history (touches, responses,
    response_probability with p10/p90, source "measured").
    """

    as_of: date
    segments: tuple[str, ...]
    response: np.ndarray
    pull_mean: np.ndarray
    baseline: np.ndarray
    discount_take: np.ndarray
    measured_discount_rate: float
    observed_channel_tone: set[tuple[str, str]]
    cells: pl.DataFrame
    observed_days_to_pay: np.ndarray
    customer_band: pl.DataFrame

    @property
    def n_boot(self) -> int:
        return int(self.response.shape[0])

    def segment_index(self, labels: Any) -> np.ndarray:
        lookup = {s: i for i, s in enumerate(self.segments)}
        series = pl.Series(np.asarray(labels, dtype=str)) if len(labels) else pl.Series([], dtype=pl.String)
        return series.replace_strict(lookup, default=lookup["new"], return_dtype=pl.Int64).to_numpy()


def _contact_history(store: Store, as_of: date, paid: pl.DataFrame | None = None) -> pl.DataFrame:
    """Touches known on ``as_of`` (customer, invoice, and the index of the channel and the
    tone in ``CHANNELS`` and ``TONES``, -1 for another) with whether each got a response
    (outcome paid, or a promise kept: paid from the day it was made to PROMISE_GRACE_DAYS after
    the promised date); promises still pending on ``as_of`` are left out. ``paid``:
    :func:`dashboard.paydist.paid_dates` for ``as_of``, when already read."""
    from dashboard.ledger import paid_dates_source

    paid_sql, params, frames = paid_dates_source(as_of, paid)
    channel = " ".join(f"WHEN '{name}' THEN {k}" for k, name in enumerate(CHANNELS))
    tone = " ".join(f"WHEN '{name}' THEN {k}" for k, name in enumerate(TONES))
    return store.query(
        f"""
        WITH paid AS ({paid_sql})
        SELECT c.customer_id, c.invoice_id,
               CASE c.channel {channel} ELSE -1 END::BIGINT AS channel,
               CASE c.tone {tone} ELSE -1 END::BIGINT AS tone,
               (c.outcome = 'paid' OR (c.outcome = 'promise to pay' AND p.paid_date IS NOT NULL
                    AND p.paid_date BETWEEN c.ts::DATE AND c.promise_date + {PROMISE_GRACE_DAYS})) AS responded
        FROM contacts c LEFT JOIN paid p ON p.invoice_id = c.invoice_id
        WHERE c.ts::DATE <= ?::DATE AND c.channel IS NOT NULL AND c.tone IS NOT NULL
          AND coalesce(c.outcome, '') <> 'dispute raised'
          AND NOT (c.outcome = 'promise to pay' AND p.paid_date IS NULL
                   AND c.promise_date + {PROMISE_GRACE_DAYS} > ?::DATE)
        ORDER BY c.rowid  -- a fixed order: the weighted sums over touches are then the same on every run
        """,
        [*params, as_of, as_of],
        frames=frames,
    )


def measure_effects(
    store: Store,
    as_of: date,
    *,
    strategy_a: Strategy,
    n_boot: int = 20,
    seed: int = 0,
    shrinkage: float = 20.0,
    calibration_draws: int = 3000,
    inputs: AsOfInputs | None = None,
) -> MeasuredEffects:
    """Measure response rates, pull-forward, no-touch delays and discount take-up as of ``as_of``.

    ``strategy_a`` is the policy the history was collected under (used to calibrate the
    pull-forward days). Replicate 0 uses the data as it is; the others resample customers.
    ``inputs``: :func:`dashboard.paydist.read_as_of_inputs` for ``as_of`` (shared with the
    forecast), else the payment history is read here.
    """
    if inputs is not None:
        inputs.check(as_of)
    history = pay_history(store, as_of) if inputs is None else inputs.history
    if history.is_empty():
        msg = f"There is no invoice history before {as_of.isoformat()} to measure collection effects from."
        raise SimulationError(msg)
    groups = lateness_bands(store, as_of, history=history).rename({"band": "group"})
    segments = tuple(sorted({*groups["group"].to_list(), "new"}))
    seg_lookup = {s: i for i, s in enumerate(segments)}
    n_seg = len(segments)
    contacts = _contact_history(store, as_of, None if inputs is None else inputs.paid)
    customers = pl.concat([history["customer_id"], contacts["customer_id"].drop_nulls()]).unique().sort()
    # Per customer: its row in the bootstrap weights and the index of its group ("new" when
    # it has none), joined once onto the history and the touches (a touch without a known
    # customer gets row 0 and "new").
    by_customer = (
        pl.DataFrame({"customer_id": customers, "_c": np.arange(len(customers), dtype=np.int64)})
        .join(groups, on="customer_id", how="left", maintain_order="left")
        .select("customer_id", "_c", _s=pl.col("group").fill_null("new").replace_strict(seg_lookup, return_dtype=pl.Int64))
    )
    new_group = seg_lookup["new"]
    history = history.join(by_customer, on="customer_id", how="left", maintain_order="left")
    contacts = contacts.join(by_customer, on="customer_id", how="left", maintain_order="left").with_columns(
        pl.col("_c").fill_null(0), pl.col("_s").fill_null(new_group)
    )

    rng = np.random.default_rng(seed)
    weights = rng.poisson(1.0, size=(n_boot, len(customers))).astype(float)
    weights[0] = 1.0

    # -- response rates ----------------------------------------------------------------
    c_seg = contacts["_s"].to_numpy()
    c_ch, c_tone = contacts["channel"].to_numpy(), contacts["tone"].to_numpy()
    known = (c_ch >= 0) & (c_tone >= 0)
    c_resp = contacts["responded"].fill_null(False).to_numpy()
    c_cust = contacts["_c"].to_numpy()
    cell = c_seg * N_CELLS + c_ch * len(TONES) + c_tone
    n_cells = n_seg * N_CELLS
    response = np.zeros((n_boot, n_seg, len(CHANNELS), len(TONES)))
    sent_counts = np.zeros((n_boot, n_cells))
    resp_counts = np.zeros((n_boot, n_cells))
    sent_counts, resp_counts = kernels.bootstrap_cell_counts(
        weights, c_cust[known].astype(np.int64), cell[known].astype(np.int64), c_resp[known].astype(np.bool_), n_cells
    )
    for r in range(n_boot):
        sent, got = sent_counts[r], resp_counts[r]
        sent3 = sent.reshape(n_seg, len(CHANNELS), len(TONES))
        got3 = got.reshape(n_seg, len(CHANNELS), len(TONES))
        pooled = np.divide(got3.sum(0), sent3.sum(0), out=np.full((len(CHANNELS), len(TONES)), np.nan), where=sent3.sum(0) > 0)
        response[r] = (got3 + shrinkage * np.nan_to_num(pooled)) / (sent3 + shrinkage)
        response[r][:, np.isnan(pooled)] = np.nan  # never tried: needs an assumption
    observed_ct = {
        (CHANNELS[c], TONES[t]) for c in range(len(CHANNELS)) for t in range(len(TONES))
        if sent_counts[0].reshape(n_seg, len(CHANNELS), len(TONES))[:, c, t].sum() > 0
    }

    # -- no-touch delays (inverse probability weighted Kaplan–Meier) --------------------------
    h_seg = history["_s"].to_numpy()
    h_cust = history["_c"].to_numpy()
    h_delay = history["delay_days"].to_numpy().astype(np.int64)
    h_paid = history["is_paid"].to_numpy()
    h_closed = history["is_closed_without_cash"].to_numpy()
    invoice_index = history.select("invoice_id").with_row_index("_i")
    c_inv = (
        contacts.select("invoice_id").join(invoice_index, on="invoice_id", how="left", maintain_order="left")
        ["_i"].cast(pl.Int64).fill_null(-1).to_numpy()
    )
    on_hist = (c_inv >= 0) & known
    responded_invoice = np.zeros(history.height, dtype=bool)
    responded_invoice[c_inv[on_hist & c_resp]] = True
    # Customers answer more or less than their band: the touch probabilities are scaled by
    # the customer's own observed / expected responses (shrunk with 5 pseudo-responses), so
    # the weights follow the customer and not the band average. Invoices that will not be
    # paid whatever is sent (written off, or still unpaid past the cap) never had a chance
    # to respond: weighting them up would invent lateness.
    hopeless = h_closed | (~h_paid & (h_delay > DAYS_TO_PAY_CAP))
    ipw, plain = kernels.inverse_probability_weights(
        weights, np.nan_to_num(response), *(a[on_hist].astype(np.int64) for a in (c_seg, c_ch, c_tone, c_cust, c_inv)),
        c_resp[on_hist].astype(np.bool_), h_cust.astype(np.int64), hopeless.astype(np.bool_),
        responded_invoice, MAX_WEIGHT,
    )
    baseline = _weighted_km(h_seg, h_delay, h_paid, ipw, n_seg, shrinkage)
    observed = _weighted_km(h_seg, h_delay, h_paid, plain, n_seg, shrinkage)
    observed_mean = _restricted_mean(observed)

    # -- pull-forward days: replay A on the no-touch curves, match the observed mean ------------
    pull_mean = np.zeros((n_boot, n_seg))
    cal_rng = np.random.default_rng(seed + 1)
    u_base = cal_rng.random(calibration_draws)
    u_resp = cal_rng.random((16, calibration_draws))
    u_pull = cal_rng.random((16, calibration_draws))
    grid = np.arange(DELAY_MIN, DELAY_MAX + 1)
    pull_base = -np.log1p(-u_pull)
    for r in range(n_boot):
        for s, segment in enumerate(segments):
            cdf = 1.0 - baseline[r, s]
            position = np.searchsorted(cdf, u_base, side="left")
            delay = np.where(position < len(grid), grid[np.minimum(position, len(grid) - 1)], NEVER)
            steps = strategy_a.steps_for(segment)
            # Every pull scale at once: row g of ``pay`` replays A with PULL_GRID[g].
            pay = np.broadcast_to(delay, (len(PULL_GRID), len(delay))).astype(float)
            for k, step in enumerate(steps[:16]):
                probability = _effect(response[r], s, step, strategy_a)[0]
                day = step.days_from_due
                hit = (pay > day) & (u_resp[k] < probability)
                pull = np.round(pull_base[k] * PULL_GRID[:, None])
                pay = np.where(hit, np.minimum(pay, np.maximum(pay - pull, day + 1)), pay)
            means_arr = np.minimum(pay, DAYS_TO_PAY_CAP).mean(axis=1)
            # Means fall as the pull grows: interpolate on the reversed (increasing) arrays.
            pull_mean[r, s] = float(np.interp(observed_mean[r, s], means_arr[::-1], PULL_GRID[::-1]))

    # -- discount take-up --------------------------------------------------------------------
    disc = store.query(
        f"""
        SELECT i.customer_id, i.invoice_id, {invoice_base_sql()} AS amount,
               coalesce(sum(-a.amount * coalesce(fx.fx_rate, 1.0)) FILTER (WHERE a.kind = 'discount'), 0)::DOUBLE
                   AS discount
        FROM invoices i {fx_join_sql()} LEFT JOIN adjustments a ON a.invoice_id = i.invoice_id AND a.adjustment_date <= ?::DATE
        WHERE i.doc_type = 'invoice' AND i.amount > 0 AND i.terms_code LIKE '2-10%'
          AND i.invoice_date <= ?::DATE - 40 AND i.invoice_date > ?::DATE - 540
        GROUP BY ALL
        """,
        [as_of, as_of, as_of],
    ).join(by_customer, on="customer_id", how="left", maintain_order="left").with_columns(
        pl.col("_c").fill_null(0), pl.col("_s").fill_null(new_group)
    )
    discount_take = np.zeros((n_boot, n_seg))
    took = disc["discount"].to_numpy() > 0
    rate_values = disc.filter(pl.col("discount") > 0).select((pl.col("discount") / pl.col("amount")).median()).item()
    measured_rate = round(float(rate_values), 3) if rate_values is not None else 0.02
    if disc.height:
        d_seg, d_cust = disc["_s"].to_numpy(), disc["_c"].to_numpy()
        for r in range(n_boot):
            w = weights[r, d_cust]
            n = np.bincount(d_seg, weights=w, minlength=n_seg)
            t = np.bincount(d_seg[took], weights=w[took], minlength=n_seg)
            pooled = t.sum() / max(n.sum(), 1e-9)
            discount_take[r] = (t + shrinkage * pooled) / (n + shrinkage)

    cells = _cells_frame(segments, sent_counts, resp_counts, response)
    return MeasuredEffects(
        as_of=as_of,
        segments=segments,
        response=response,
        pull_mean=pull_mean,
        baseline=baseline,
        discount_take=discount_take,
        measured_discount_rate=measured_rate,
        observed_channel_tone=observed_ct,
        cells=cells,
        observed_days_to_pay=observed_mean,
        customer_band=groups.rename({"group": "band"}),
    )


def _effect(response: np.ndarray, segment: int, step: Touch, strategy: Strategy) -> tuple[float, bool]:
    """(response probability, is_assumption) of a step for a segment in one replicate."""
    key = (step.channel, step.tone)
    if key in strategy.assumed_effects:
        return float(strategy.assumed_effects[key][0]), True
    value = response[segment, CHANNELS.index(step.channel), TONES.index(step.tone)]
    if np.isnan(value):
        msg = (
            f"No touches by {step.channel} in a {step.tone} tone were ever sent, so their effect cannot be "
            f"measured; set an assumed response for ({step.channel!r}, {step.tone!r}) in the strategy "
            f"{strategy.name!r}."
        )
        raise SimulationError(msg)
    return float(value), False


def _cells_frame(segments: tuple[str, ...], sent: np.ndarray, got: np.ndarray, response: np.ndarray) -> pl.DataFrame:
    rows = []
    shape = (len(segments), len(CHANNELS), len(TONES))
    sent0, got0 = sent[0].reshape(shape), got[0].reshape(shape)
    for s, segment in enumerate(segments):
        for c, channel in enumerate(CHANNELS):
            for t, tone in enumerate(TONES):
                if sent0[s, c, t] <= 0:
                    continue
                values = response[:, s, c, t]
                rows.append(
                    {
                        "lateness_band": segment,
                        "channel": channel,
                        "tone": tone,
                        "touches": int(sent0[s, c, t]),
                        "responses": int(got0[s, c, t]),
                        "response_probability": float(values[0]),
                        "response_p10": float(np.quantile(values, 0.1)),
                        "response_p90": float(np.quantile(values, 0.9)),
                        "source": "measured",
                    }
                )
    return pl.DataFrame(rows)


# ---------------------------------------------------------------------------------------
# the simulated book
# ---------------------------------------------------------------------------------------
@dataclass
class Book:
    """Invoices the simulation follows (days are relative to ``as_of``).

    ``segment`` is the lateness band (row of the measured parameters); ``segment_name`` the
    business segment (what a strategy's per-segment settings refer to).

    ``condition``: the no-touch delay is drawn conditioned on being greater than this (days
    past due on ``as_of`` for open invoices; before issue for new ones).
    """

    as_of: date
    invoice_id: np.ndarray
    segment: np.ndarray
    segment_name: np.ndarray
    issue_day: np.ndarray
    terms_days: np.ndarray
    due_day: np.ndarray
    amount: np.ndarray
    is_new: np.ndarray
    condition: np.ndarray
    billed_before: np.ndarray  # billing on each of the 91 days before as_of (oldest first)
    customer_id: np.ndarray | None = None
    # P(late) of each invoice from the one scoring path (dashboard.scoring), for the
    # "highest_risk" priority; a new invoice takes its customer's mean over its open ones
    risk: np.ndarray | None = None
    risk_source: str = ""

    @property
    def size(self) -> int:
        return len(self.amount)

    @cached_property
    def segment_names(self) -> tuple[list[str], np.ndarray]:
        """The distinct business segments and each invoice's index among them (sorted once:
        every plan and check of a simulation reads them)."""
        names, index = np.unique(self.segment_name, return_inverse=True)
        return names.tolist(), np.ravel(index)


def build_book(
    store: Store, as_of: date, effects: MeasuredEffects, *, horizon_days: int = 91, inputs: AsOfInputs | None = None
) -> Book:
    """Open invoices on ``as_of`` plus ``horizon_days`` of new billing (the last
    ``horizon_days`` of invoices moved forward by that many days). ``inputs``:
    :func:`dashboard.paydist.read_as_of_inputs` for ``as_of`` (shared with the forecast)."""
    if inputs is not None:
        inputs.check(as_of)
        segments, opened = inputs.groups, inputs.invoices
    else:
        segments = customer_groups(store, as_of)
        opened = open_invoices(store, as_of, groups=segments)
    recent = store.query(
        f"""
        SELECT i.invoice_id, i.customer_id, i.invoice_date, i.due_date,
               (i.due_date - i.invoice_date)::INTEGER AS terms_days,
               {invoice_base_sql()} AS amount
        FROM invoices i {fx_join_sql()}
        WHERE i.doc_type = 'invoice' AND i.amount > 0 AND i.invoice_date <= ?::DATE AND i.invoice_date > ?::DATE
        ORDER BY i.invoice_id
        """,
        [as_of, as_of - timedelta(days=horizon_days)],
    ).join(segments, on="customer_id", how="left").with_columns(pl.col("group").fill_null("new"))
    bands = effects.customer_band
    opened = opened.join(bands, on="customer_id", how="left").with_columns(pl.col("band").fill_null("new"))
    recent = recent.join(bands, on="customer_id", how="left").with_columns(pl.col("band").fill_null("new"))
    billed = np.zeros(91)
    if recent.height:
        back = recent.select((pl.lit(as_of) - pl.col("invoice_date")).dt.total_days()).to_series().to_numpy()
        keep = back < 91
        np.add.at(billed, 90 - back[keep], recent["amount"].to_numpy()[keep])
    open_due = opened.select((pl.col("due_date") - pl.lit(as_of)).dt.total_days()).to_series().to_numpy().astype(np.int64)
    open_issue = np.minimum(open_due, 0)  # issue day before as_of; only its sign matters
    new_issue = (
        recent.select((pl.col("invoice_date") - pl.lit(as_of)).dt.total_days()).to_series().to_numpy().astype(np.int64)
        + horizon_days
    )
    new_terms = recent["terms_days"].to_numpy().astype(np.int64)
    segment_names = np.concatenate([opened["group"].to_numpy().astype(str), recent["group"].to_numpy().astype(str)])
    return Book(
        as_of=as_of,
        invoice_id=np.concatenate([opened["invoice_id"].to_numpy().astype(str), ("new:" + recent["invoice_id"]).to_numpy().astype(str)]),
        segment=effects.segment_index(
            np.concatenate([opened["band"].to_numpy().astype(str), recent["band"].to_numpy().astype(str)])
        ),
        segment_name=segment_names,
        issue_day=np.concatenate([open_issue, new_issue]),
        terms_days=np.concatenate([np.maximum(open_due - open_issue, 0), new_terms]),
        due_day=np.concatenate([open_due, new_issue + new_terms]),
        amount=np.concatenate([opened["open_amount"].to_numpy(), recent["amount"].to_numpy()]),
        is_new=np.concatenate([np.zeros(opened.height, dtype=bool), np.ones(recent.height, dtype=bool)]),
        condition=np.concatenate([-open_due, -new_terms - 1]),
        billed_before=billed,
        customer_id=np.concatenate([opened["customer_id"].to_numpy().astype(str), recent["customer_id"].to_numpy().astype(str)]),
    )


def with_risk(book: Book, scores: pl.DataFrame, *, source: str) -> Book:
    """``book`` with each invoice's P(late) from ``scores`` (invoice_id, p_late: the one scoring
    path's output); an invoice not scored (new billing) takes its customer's mean, else the book's."""
    from dataclasses import replace

    open_ids = pl.DataFrame({"invoice_id": book.invoice_id, "customer_id": book.customer_id})
    joined = open_ids.join(scores.select("invoice_id", "p_late"), on="invoice_id", how="left", maintain_order="left")
    overall = float(scores["p_late"].mean()) if scores.height else 0.5
    filled = joined.with_columns(
        pl.col("p_late").fill_null(pl.col("p_late").mean().over("customer_id")).fill_null(overall)
    )
    return replace(book, risk=filled["p_late"].to_numpy(), risk_source=source)


# ---------------------------------------------------------------------------------------
# simulation
# ---------------------------------------------------------------------------------------
@dataclass
class _Plan:
    """One strategy applied to the book: due days, amounts, touch rows in send order."""

    strategy: Strategy
    due_day: np.ndarray
    active: np.ndarray  # invoice exists under this strategy (credit hold removes new ones)
    discount_rate: np.ndarray
    touch_invoice: np.ndarray  # the rows in send order: invoice, day, step (row of the step_* tables)
    touch_day: np.ndarray
    touch_step: np.ndarray
    step_days: np.ndarray  # per step: days from due (its draws are shared by every step on that day)
    step_cell: np.ndarray  # (channel, tone) index or -1 for an assumed effect
    step_assumed: np.ndarray  # (steps, 2): the assumed response probability and pull days
    day_values: np.ndarray
    day_starts: np.ndarray
    assumptions: list[str]


def _plan(strategy: Strategy, book: Book, effects: MeasuredEffects, end_day: int, horizon_end: int | None = None) -> _Plan:
    """``strategy`` applied to ``book``: touch rows up to ``end_day``. Without a capacity, a
    touch after ``horizon_end`` (the last day of week 13) is left out unless its invoice is a
    new one still inside its days-to-pay cap: no other outcome can see it (a payment it moved
    would still land after the horizon), and touches are counted inside the horizon only.
    With a capacity every touch stays: it takes a slot another invoice's touch could have had."""
    strategy.validate()
    due = book.due_day.copy()
    active = np.ones(book.size, dtype=bool)
    discount = np.zeros(book.size)
    names, name_index = book.segment_names
    for k, name in enumerate(names):
        members = name_index == k
        terms = strategy.for_segment(strategy.terms_days, name)
        if terms is not None:
            due = np.where(members & book.is_new, book.issue_day + int(terms), due)
        rate = strategy.for_segment(strategy.early_pay_discount, name)
        if rate:
            discount = np.where(members & book.is_new, float(rate), discount)
        if name in strategy.credit_hold or "all" in strategy.credit_hold:
            active &= ~(members & book.is_new)
    # The steps of each segment, one after the other; what each step's rows carry.
    step_starts, step_days, step_cell, step_ap, step_apull = [0], [], [], [], []
    for name in names:
        for step in strategy.steps_for(name):
            assumed = strategy.assumed_effects.get((step.channel, step.tone))
            if assumed is None and (step.channel, step.tone) not in effects.observed_channel_tone:
                _effect(np.full((1, len(CHANNELS), len(TONES)), np.nan), 0, step, strategy)  # raises
            step_days.append(step.days_from_due)
            step_cell.append(-1 if assumed else CHANNELS.index(step.channel) * len(TONES) + TONES.index(step.tone))
            step_ap.append(assumed[0] if assumed else 0.0)
            step_apull.append(assumed[1] if assumed else 0.0)
        step_starts.append(len(step_days))
    # Send order: day, then the priority (largest amount first, ...), then invoice, then
    # step. Within a day the priority key depends on the invoice alone (most overdue =
    # earliest due), so invoices are ranked once and their rows generated in rank order.
    if strategy.priority == "largest_amount":
        invoice_key = -book.amount
    elif strategy.priority == "smallest_amount":
        invoice_key = book.amount
    elif strategy.priority == "highest_risk":
        if book.risk is None:
            msg = "The 'highest risk first' priority needs risk scores; the book has none."
            raise SimulationError(msg)
        invoice_key = -book.risk
    else:
        invoice_key = due.astype(float)
    by_rank = np.lexsort((np.arange(book.size), invoice_key)).astype(np.int64)
    keep_after_horizon = horizon_end is None or strategy.daily_capacity is not None
    inv, day, step_index, day_values, day_starts = kernels.plan_rows(
        due.astype(np.int64), book.issue_day.astype(np.int64), book.is_new.astype(np.bool_),
        name_index.astype(np.int64), active, by_rank, np.array(step_starts, dtype=np.int64),
        np.array(step_days, dtype=np.int64), book.as_of.weekday(), int(end_day),
        -1 if keep_after_horizon else int(horizon_end), DAYS_TO_PAY_CAP,
    )
    return _Plan(
        strategy=strategy,
        due_day=due,
        active=active,
        discount_rate=discount,
        touch_invoice=inv,
        touch_day=day,
        touch_step=step_index,
        step_days=np.array(step_days, dtype=np.int64),
        step_cell=np.array(step_cell, dtype=np.int64),
        step_assumed=np.array([step_ap, step_apull], dtype=float).T.reshape(-1, 2),
        day_values=day_values,
        day_starts=day_starts,
        assumptions=strategy.assumptions(effects.measured_discount_rate),
    )


def _slot_index(plans: list[_Plan]) -> dict[int, int]:
    """Shared draw column per (step days from due): the same step day under A and B shares
    its draws (common random numbers)."""
    used = [plan.step_days[np.bincount(plan.touch_step, minlength=len(plan.step_days)) > 0] for plan in plans]
    days = sorted({int(d) for days_of_plan in used for d in days_of_plan})
    return {d: i for i, d in enumerate(days)}


@dataclass
class SimulationResult:
    """A against B, computed once; rendered as tables, JSON and charts.

    ``metrics``: one row per outcome (metric, label, unit, a_low, a_p50, a_high, b_low, b_p50,
    b_high, diff_low, diff_p50, diff_high, uses_assumptions). ``weekly``: week, week_start,
    metric (cash_collected, overdue_balance, dso), the same quantile columns. ``touches``:
    day, date, a_mean, b_mean, a_capacity, b_capacity. ``effects``: the measured
    response rates (source = measured) and any hand-set ones (source = assumption).
    ``paths[metric]``: (paths, 2) values under A and B.
    """

    as_of: date
    strategy_a: Strategy
    strategy_b: Strategy
    n_paths: int
    interval: float
    metrics: pl.DataFrame
    weekly: pl.DataFrame
    touches: pl.DataFrame
    effects: pl.DataFrame
    assumptions: list[str]
    paths: dict[str, np.ndarray] = field(repr=False)
    dso_start: float | None = None  # the DSO the weekly DSO starts from (see :func:`dso_on_book`)
    risk_source: str = ""  # the scorer behind a "highest_risk" priority, and why it is in use

    def effect(self, metric: str) -> tuple[float, float, float]:
        """(low, median, high) of B − A for ``metric``."""
        row = self.metrics.filter(pl.col("metric") == metric).row(0, named=True)
        return row["diff_low"], row["diff_p50"], row["diff_high"]

    def median(self, metric: str, strategy: str = "a") -> float:
        """The median of ``metric`` under strategy ``a`` or ``b``."""
        return float(self.metrics.filter(pl.col("metric") == metric)[f"{strategy}_p50"][0])

    def outcomes_table(self, *, currency: str | None = None) -> pl.DataFrame:
        """A against B for people: each outcome's medians and the difference with its interval,
        every figure with its unit (money in ``currency``, default the base currency), and
        whether it rests on measured effects or on assumptions."""
        level = f"{self.interval:.0%}"

        def figure(value: float, unit: str, *, signed: bool = False) -> str:
            if value is None or np.isnan(value):
                return display.EMPTY
            if unit == "base currency":
                return display.money(value, currency=currency, signed=signed)
            if unit == "days":
                return display.days(value, signed=signed)
            text = f"{value:+,.0f}" if signed else f"{value:,.0f}"
            return f"{text.replace('-', '−')} {unit}"

        rows = [
            {
                "Outcome": r["label"],
                "A (median)": figure(r["a_p50"], r["unit"]),
                "B (median)": figure(r["b_p50"], r["unit"]),
                "B − A (median)": figure(r["diff_p50"], r["unit"], signed=True),
                f"B − A, {level} interval": (
                    f"{figure(r['diff_low'], r['unit'], signed=True)} to {figure(r['diff_high'], r['unit'], signed=True)}"
                ),
                "Basis": "uses assumptions" if r["uses_assumptions"] else "measured",
            }
            for r in self.metrics.iter_rows(named=True)
        ]
        return pl.DataFrame(rows)

    def dso_basis(self, overview_dso: float | None) -> str:
        """Why the simulated DSO does not start at the Overview's DSO, in one line."""
        return (
            "DSO here counts the open invoices the simulator follows (credits and unapplied cash left out) over the "
            f"last 91 days of credit sales: {display.days(self.dso_start)} on {display.day(self.as_of)}. The "
            f"Overview's DSO nets credits and uses the month's sales: {display.days(overview_dso)}."
        )

    def verdict(self, *, currency: str | None = None) -> str:
        """B against A in one line: cash in 13 weeks, DSO at week 13 and workload, each with its
        interval, and whether it rests on measured effects or on numbers typed by hand.

        "B collects 157k USD more than A in 13 weeks (110k to 220k USD), DSO −4.4 days (−6.1 to
        −2.8), 1,240 more touches (+14%); every effect measured from your contact history."
        """
        level = f"{self.interval:.0%}"
        low, mid, high = self.effect("cash_collected")
        if low > 0 or high < 0:  # the whole interval on one side of zero
            ends = sorted((abs(low), abs(high)))
            cash = (
                f"B collects {display.short_money(abs(mid), currency=currency)} {'more' if mid > 0 else 'less'} than A in "
                f"13 weeks ({display.short_money(ends[0], currency=currency).rsplit(' ', 1)[0]} to "
                f"{display.short_money(ends[1], currency=currency)}, {level} interval)"
            )
        else:
            cash = (
                f"B and A collect about the same in 13 weeks (B − A between "
                f"{display.short_money(low, currency=currency, signed=True)} and "
                f"{display.short_money(high, currency=currency, signed=True)}, {level} interval)"
            )
        dso_low, dso_mid, dso_high = self.effect("dso_end")
        dso = (
            "DSO at week 13 unchanged"
            if all(np.isnan(v) for v in (dso_low, dso_mid, dso_high))
            else f"DSO at week 13 {display.days(dso_mid, signed=True)} ({_signed(dso_low)} to {_signed(dso_high)})"
        )
        _t_low, touches, _t_high = self.effect("touches")
        a_touches = self.median("touches", "a")
        if abs(touches) < 0.5:
            workload = "the same number of touches"
        else:
            share = f" ({touches / a_touches:+.0%})".replace("-", "−") if a_touches > 0 else ""
            workload = f"{abs(touches):,.0f} {'more' if touches > 0 else 'fewer'} touches{share}"
        costs = []
        discount = self.median("discount_cost", "b") - self.median("discount_cost", "a")
        if abs(discount) >= 0.5:
            costs.append(f"discounts cost {display.short_money(discount, currency=currency, signed=True)}")
        basis = (
            f"uses {len(self.assumptions)} number(s) typed by hand (marked below as assumptions)"
            if self.assumptions
            else "every effect measured from your contact history"
        )
        return "; ".join([", ".join([cash, dso, workload, *costs]), basis]) + "."

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "strategy_a": self.strategy_a.name,
            "strategy_b": self.strategy_b.name,
            "paths": self.n_paths,
            "interval": self.interval,
            "assumptions": self.assumptions,
            "risk_source": self.risk_source,
            "metrics": self.metrics.to_dicts(),
        }


def _signed(value: float) -> str:
    return f"{value:+,.1f}".replace("-", "−")


def dso_on_book(book: Book) -> float | None:
    """The DSO the simulator's weekly DSO starts from: the open invoices it follows (credits and
    unapplied cash left out, as they are not collected) ÷ the credit sales of the 91 days before
    ``as_of`` × 91. The Overview's DSO nets credits and uses the period chosen there, so the two
    differ; the Strategy page says which is which."""
    sales = float(book.billed_before.sum())
    if sales <= 0:
        return None
    return float(book.amount[~book.is_new].sum()) / sales * 91


METRICS: tuple[tuple[str, str, str], ...] = (
    ("cash_collected", "base currency", "Cash collected in 13 weeks"),
    ("days_to_pay_new", "days", "Mean days to pay after due, new invoices (capped at 120)"),
    ("overdue_balance_end", "base currency", "Overdue balance at week 13"),
    ("dso_end", "days", "DSO at week 13"),
    ("touches", "touches", "Touches sent in 13 weeks"),
    ("touches_over_capacity", "touches", "Touches wanted but over capacity in 13 weeks"),
    ("discount_cost", "base currency", "Early-payment discounts given"),
    ("write_offs", "base currency", "Expected write-offs (240+ days past due)"),
)


def simulate_strategies(
    store: Store,
    as_of: date,
    strategy_b: Strategy,
    *,
    strategy_a: Strategy | None = None,
    n_paths: int = 400,
    n_boot: int = 20,
    seed: int = 0,
    horizon_days: int = 91,
    interval: float = 0.9,
    effects: MeasuredEffects | None = None,
    book: Book | None = None,
    chunk_paths: int = 50,
    scorer: Any = None,
    progress: Progress = no_progress,
    should_cancel: ShouldCancel = never_cancel,
) -> SimulationResult:
    """Simulate the book under A and B with the same draws; return both and their difference.

    A strategy with the ``highest_risk`` priority orders touches by P(late) from the one scoring
    path (:func:`dashboard.scoring.scores_for` with ``scorer``, default the scorer in use: the
    model, or the customer-history baseline it or the store falls back to).

    Intervals are central ``interval`` ranges over paths (default 90%: P5–P95, in the
    ``*_low`` / ``*_high`` columns; ``*_p50`` is the median). Without ``strategy_a``, A is the
    cadence the contact history shows (:func:`dashboard.cadence.observed_strategy`).
    """
    if strategy_a is None:  # the cadence the contact history shows (dashboard.cadence)
        from dashboard.cadence import observed_strategy

        strategy_a = observed_strategy(store, as_of).strategy
    if n_paths < 10:
        msg = f"A simulation needs at least 10 paths for its intervals; got n_paths={n_paths!r}."
        raise SimulationError(msg)
    if not 0.5 <= interval < 1:
        msg = f"The interval must be a probability between 0.5 and 1; got {interval!r}."
        raise SimulationError(msg)
    progress(0.0, "measuring effects from the contact history")
    effects = measure_effects(store, as_of, strategy_a=strategy_a, n_boot=n_boot, seed=seed) if effects is None else effects
    book = build_book(store, as_of, effects, horizon_days=horizon_days) if book is None else book
    if "highest_risk" in (strategy_a.priority, strategy_b.priority) and book.risk is None:
        from dashboard.scoring import active_scorer, scores_for

        scorer = scorer or active_scorer(store, as_of)
        book = with_risk(book, scores_for(store, as_of, scorer=scorer), source=f"{scorer.label}: {scorer.reason}")
    end_day = horizon_days + int(book.terms_days.max(initial=0)) + DAYS_TO_PAY_CAP + 1
    edges = window_edges(as_of, 13)
    touch_days = max(int(edges[-1]), 1)  # touches are counted up to the end of week 13
    # The two plans are built side by side (their compiled parts release the GIL).
    with ThreadPoolExecutor(max_workers=2) as pool:
        plans = list(pool.map(lambda strategy: _plan(strategy, book, effects, end_day, touch_days), (strategy_a, strategy_b)))
    slots = _slot_index(plans)
    slot_days = np.array(sorted(slots), dtype=np.int64)
    # The draws of a touch are keyed by (invoice, step day): the same touch gets the same
    # draws under A and B (common random numbers).
    step_slots = [np.searchsorted(slot_days, plan.step_days).astype(np.int64) for plan in plans]
    response, pull_mean, step_columns = _effect_columns(plans, effects)
    thresholds = kernels.response_thresholds(response)
    windows = forecast_windows(as_of, 13)
    weeks = len(edges)
    tables, lot = _delay_tables(book, effects)
    issued_week = np.searchsorted(edges, book.issue_day, side="left")
    amount = np.stack([np.where(plan.active, book.amount, 0.0) for plan in plans])
    sales = np.stack([_credit_sales(book, amount[which], edges) for which in range(2)])
    # The kernel walks the invoices grouped by delay table (its rows stay in cache); each
    # keeps its own index as its key in the random streams, so the draws do not change.
    order = np.argsort(lot, kind="stable")
    position = np.empty(book.size, dtype=np.int64)
    position[order] = np.arange(book.size)
    plan_inputs = {
        "due_day": np.stack([plan.due_day[order] for plan in plans]).astype(np.int64),
        "discount_rate": np.stack([plan.discount_rate[order] for plan in plans]).astype(float),
        "amount": np.ascontiguousarray(amount[:, order]),
        "is_new_active": np.stack([(book.is_new & plan.active)[order] for plan in plans]),
        "crosses": np.stack([((plan.due_day + WRITE_OFF_DAYS <= edges[-1]) & plan.active)[order] for plan in plans]),
        "overdue_week": np.stack(
            [np.maximum(issued_week, np.searchsorted(edges, plan.due_day, side="right"))[order] for plan in plans]
        ),
        "sales": sales,
        **_touch_rows(plans, book, step_slots, len(slot_days), step_columns, position),
        "capacity": np.array([-1 if plan.strategy.daily_capacity is None else plan.strategy.daily_capacity for plan in plans]),
    }
    plan_inputs["same"] = _same_under_both(plan_inputs)
    book_inputs = {
        "lot": lot[order].astype(np.int64),
        "draw_id": order.astype(np.int64),
        "segment": book.segment[order].astype(np.int64),
        "issue_day": book.issue_day[order].astype(np.int64),
        "floor_day": np.maximum(book.issue_day, 1)[order].astype(np.int64),
        "take_rate": np.ascontiguousarray(effects.discount_take, dtype=float),
        "issued_week": issued_week[order].astype(np.int64),
        "edges": edges.astype(np.int64),
    }
    # One key per path and random stream: a path's draws do not depend on the chunking.
    keys = kernels.stream_keys(np.random.default_rng(seed + 17), n_paths)
    metric_values = np.zeros((n_paths, 2, kernels.N_METRICS))
    weekly = np.zeros((n_paths, 2, 3, weeks))
    touches_sent = np.zeros((2, touch_days + 1), dtype=np.int64)
    threads = numba.get_num_threads()
    # Scratch for a plan with a capacity: each block's payment days, allocated once.
    chunks = [min(chunk_paths, n_paths - start) for start in range(0, n_paths, chunk_paths)]
    blocks = max(-(-p // kernels.block_size(p, threads)) for p in chunks)
    kept = book.size * 2 * kernels.BLOCK if (plan_inputs["capacity"] >= 0).any() else 0
    pay_buffer = np.empty((blocks, kept), dtype=np.int32)
    takes_buffer = np.empty((blocks, kept), dtype=np.bool_)
    done = 0
    while done < n_paths:
        if should_cancel():
            msg = "The simulation was cancelled."
            raise SimulationError(msg)
        p = min(chunk_paths, n_paths - done)
        rows = slice(done, done + p)
        size = kernels.block_size(p, threads)
        per_block = np.zeros((-(-p // size), 2, touch_days + 1), dtype=np.int64)
        with _KERNEL_LOCK:  # the kernel releases the GIL; numba's workqueue pool is not thread-safe
            kernels.simulate_chunk(
                keys[rows], (np.arange(done, done + p) % effects.n_boot).astype(np.int64), tables, book_inputs["lot"],
                book_inputs["draw_id"], book_inputs["segment"], book_inputs["issue_day"], book_inputs["floor_day"], book_inputs["take_rate"],
                float(effects.measured_discount_rate), NEVER, plan_inputs["due_day"], plan_inputs["discount_rate"],
                plan_inputs["amount"], plan_inputs["is_new_active"], plan_inputs["crosses"], plan_inputs["overdue_week"],
                book_inputs["issued_week"], plan_inputs["sales"], book_inputs["edges"], plan_inputs["touch_invoice"],
                plan_inputs["touch_day"], plan_inputs["touch_key"], plan_inputs["touch_column"],
                plan_inputs["day_values"], plan_inputs["day_starts"], plan_inputs["plan_days"],
                plan_inputs["invoice_starts"], plan_inputs["by_invoice"], plan_inputs["touch_day_index"],
                plan_inputs["capacity"].astype(np.int64),
                thresholds, pull_mean, plan_inputs["same"], DAYS_TO_PAY_CAP, WRITE_OFF_DAYS, touch_days,
                size, pay_buffer, takes_buffer, metric_values[rows], weekly[rows], per_block,
            )
        touches_sent += per_block.sum(axis=0)
        done += p
        progress(0.1 + 0.9 * done / n_paths, f"{done} of {n_paths} paths")
    collected = {m: metric_values[:, :, k] for k, (m, _, _) in enumerate(METRICS)}
    weekly_cash, weekly_overdue, weekly_dso = weekly[:, :, 0], weekly[:, :, 1], weekly[:, :, 2]
    touches_per_day = touches_sent.astype(float)
    result = _result(
        as_of, strategy_a, strategy_b, plans, effects, book, n_paths, interval, collected,
        weekly_cash, weekly_overdue, weekly_dso, touches_per_day, windows,
    )
    result.risk_source = book.risk_source
    return result


def _same_under_both(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Per invoice: identical under both plans (due day, amount, discount, balances and the
    same touches) — simulated once when neither plan has a capacity."""
    same = np.ones(inputs["due_day"].shape[1], dtype=bool)
    for name in ("due_day", "discount_rate", "amount", "is_new_active", "crosses", "overdue_week"):
        same &= inputs[name][0] == inputs[name][1]
    if (inputs["capacity"] >= 0).any():
        return same  # the kernel shares nothing when a capacity couples the invoices
    starts = inputs["invoice_starts"]
    counts = np.diff(starts, axis=1)
    same &= counts[0] == counts[1]
    rows = np.flatnonzero(same & (counts[0] > 0))
    if len(rows):
        lengths = counts[0, rows]
        within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        a = np.repeat(starts[0, rows], lengths) + within
        b = np.repeat(starts[1, rows], lengths) + within
        equal = np.ones(len(a), dtype=bool)
        for name in ("touch_day", "touch_key", "touch_column"):
            equal &= inputs[name][a] == inputs[name][b]
        differs = np.repeat(rows, lengths)[~equal]
        same[differs] = False
    return same


def _touch_rows(  # noqa: PLR0913
    plans: list[_Plan],
    book: Book,
    step_slots: list[np.ndarray],
    n_slots: int,
    step_columns: list[np.ndarray],
    position: np.ndarray,
) -> dict[str, np.ndarray]:
    """Both plans' touch rows one after the other, as the kernel reads them: in send order
    (day, then priority) when a capacity binds, else grouped by invoice (days in order).
    Invoices are numbered by their ``position`` in the kernel's order.

    ``invoice_starts[which]``: first row of each invoice — of the rows themselves without a
    capacity, of ``by_invoice`` (the send-order rows regrouped by invoice) with one.
    ``touch_day_index``: the entry in ``day_values`` of each row (of each ``by_invoice`` row
    with a capacity)."""
    n = len(position)
    total = sum(len(plan.touch_invoice) for plan in plans)
    out = {
        "touch_invoice": np.empty(total, dtype=np.int32),
        "touch_day": np.empty(total, dtype=np.int32),
        "touch_key": np.empty(total, dtype=np.int32),
        "touch_column": np.empty(total, dtype=np.int32),
        "by_invoice": np.empty(total, dtype=np.int32),
        "touch_day_index": np.empty(total, dtype=np.int32),
    }
    invoice_starts = np.zeros((2, n + 1), dtype=np.int64)
    day_starts = [np.zeros(1, dtype=np.int64)]
    offset = 0
    day_offset = 0
    calls = []
    position, segment = position.astype(np.int64), book.segment.astype(np.int64)
    for which, plan in enumerate(plans):
        calls.append((
            plan.touch_invoice, plan.touch_day, plan.touch_step, plan.day_starts, position,
            segment, step_slots[which], n_slots, step_columns[which], N_CELLS,
            plan.strategy.daily_capacity is not None, offset, day_offset, *out.values(), invoice_starts[which],
        ))
        day_starts.append(offset + plan.day_starts[1:])
        offset += len(plan.touch_invoice)
        day_offset += len(plan.day_values)
    # Both plans side by side: each writes its own rows of the out arrays (the kernel releases the GIL).
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda args: kernels.touch_layout(*args), calls))
    counts = [len(plan.day_values) for plan in plans]
    return {
        **out,
        "day_values": np.concatenate([plan.day_values for plan in plans]).astype(np.int64),
        "day_starts": np.concatenate(day_starts),
        "plan_days": np.array([[0, counts[0]], [counts[0], counts[0] + counts[1]]], dtype=np.int64),
        "invoice_starts": invoice_starts,
    }


def _credit_sales(book: Book, amount: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Credit sales of the 91 days to each week end: history before as_of plus new invoices."""
    sales = np.zeros(len(edges))
    for k, edge in enumerate(edges):
        t = int(edge)
        history_part = book.billed_before[max(0, t) :].sum() if t < 91 else 0.0
        new_part = (amount * (book.is_new & (book.issue_day <= t) & (book.issue_day > t - 91))).sum()
        sales[k] = history_part + new_part
    return sales


def _effect_columns(plans: list[_Plan], effects: MeasuredEffects) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Response probability and mean pull per (replicate, column), and each plan's step columns.

    Columns are the lateness band × channel × tone cells, then one per hand-set effect. A
    step's column is its hand-set column, or -1 - its (channel, tone) cell: a touch then
    takes its band's column for that cell (:func:`kernels.touch_layout`).
    """
    n_boot, n_seg = effects.n_boot, len(effects.segments)
    response = [np.nan_to_num(effects.response.reshape(n_boot, n_seg * N_CELLS))]
    pull = [np.repeat(effects.pull_mean, N_CELLS, axis=1)]
    assumed: dict[tuple[float, float], int] = {}
    step_columns = []
    for plan in plans:
        columns = np.empty(len(plan.step_days), dtype=np.int64)
        for k, cell in enumerate(plan.step_cell):
            if cell >= 0:
                columns[k] = -1 - cell
            else:
                pair = (float(plan.step_assumed[k, 0]), float(plan.step_assumed[k, 1]))
                columns[k] = n_seg * N_CELLS + assumed.setdefault(pair, len(assumed))
        step_columns.append(columns)
    for (probability, days) in assumed:
        response.append(np.full((n_boot, 1), probability))
        pull.append(np.full((n_boot, 1), days))
    return np.concatenate(response, axis=1), np.concatenate(pull, axis=1).astype(float), step_columns


def _delay_tables(book: Book, effects: MeasuredEffects, levels: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """No-touch delay quantiles per replicate and lot (segment, condition), and each
    invoice's lot: ``tables[r, lot, k]`` is the delay at probability (k + 0.5) / levels."""
    cond = np.clip(book.condition, DELAY_MIN - 1, DELAY_MAX + 1)
    lots, lot = np.unique(book.segment * 10_000 + (cond - DELAY_MIN + 1), return_inverse=True)
    lot_seg, lot_cond = lots // 10_000, lots % 10_000 + DELAY_MIN - 1
    baseline = np.ascontiguousarray(effects.baseline, dtype=float)
    tables = kernels.delay_tables(baseline, lot_seg.astype(np.int64), lot_cond.astype(np.int64), DELAY_MIN, NEVER, levels)
    return tables, np.ravel(lot).astype(np.int64)


def _quantile_columns(values: np.ndarray, interval: float) -> dict[str, float]:
    low, high = (1 - interval) / 2, 1 - (1 - interval) / 2
    a, b = values[:, 0], values[:, 1]
    diff = b - a
    out: dict[str, float] = {}
    for prefix, series in (("a", a), ("b", b), ("diff", diff)):
        finite = series[np.isfinite(series)]
        if finite.size == 0:
            out |= {f"{prefix}_low": float("nan"), f"{prefix}_p50": float("nan"), f"{prefix}_high": float("nan")}
            continue
        q = np.quantile(finite, [low, 0.5, high])
        out |= {f"{prefix}_low": float(q[0]), f"{prefix}_p50": float(q[1]), f"{prefix}_high": float(q[2])}
    return out


def _result(
    as_of: date,
    strategy_a: Strategy,
    strategy_b: Strategy,
    plans: list[_Plan],
    effects: MeasuredEffects,
    book: Book,
    n_paths: int,
    interval: float,
    collected: dict[str, np.ndarray],
    weekly_cash: np.ndarray,
    weekly_overdue: np.ndarray,
    weekly_dso: np.ndarray,
    touches_per_day: np.ndarray,
    windows: list[tuple[date, date]],
) -> SimulationResult:
    assumptions = [*plans[0].assumptions, *plans[1].assumptions]
    uses_assumptions = bool(assumptions)
    metric_rows = [
        {"metric": key, "label": label, "unit": unit, **_quantile_columns(collected[key], interval), "uses_assumptions": uses_assumptions}
        for key, unit, label in METRICS
    ]
    weekly_rows = []
    for name, values in (("cash_collected", weekly_cash), ("overdue_balance", weekly_overdue), ("dso", weekly_dso)):
        for k, (start, _end) in enumerate(windows):
            weekly_rows.append(
                {"week": k + 1, "week_start": start, "metric": name, **_quantile_columns(values[:, :, k], interval),
                 "uses_assumptions": uses_assumptions}
            )
    days = np.arange(1, touches_per_day.shape[1])
    touches = pl.DataFrame(
        {
            "day": days,
            "date": [as_of + timedelta(days=int(d)) for d in days],
            "a_mean": touches_per_day[0, 1:] / n_paths,
            "b_mean": touches_per_day[1, 1:] / n_paths,
            "a_capacity": [plans[0].strategy.daily_capacity] * len(days),
            "b_capacity": [plans[1].strategy.daily_capacity] * len(days),
        },
        schema_overrides={"a_capacity": pl.Int64, "b_capacity": pl.Int64},
    )
    assumed_rows = [
        {
            "lateness_band": "all", "channel": channel, "tone": tone, "touches": 0, "responses": 0,
            "response_probability": float(p), "response_p10": float(p), "response_p90": float(p),
            "source": f"assumption ({plan.strategy.name})",
        }
        for plan in plans
        for (channel, tone), (p, _d) in plan.strategy.assumed_effects.items()
    ]
    effect_frame = effects.cells
    pulls = pl.DataFrame(
        {
            "lateness_band": list(effects.segments),
            "pull_forward_days_mean": effects.pull_mean[0],
            "pull_forward_p10": np.quantile(effects.pull_mean, 0.1, axis=0),
            "pull_forward_p90": np.quantile(effects.pull_mean, 0.9, axis=0),
        }
    )
    effect_frame = effect_frame.join(pulls, on="lateness_band", how="left") if effect_frame.height else effect_frame
    if assumed_rows:
        effect_frame = pl.concat([effect_frame, pl.DataFrame(assumed_rows)], how="diagonal_relaxed")
    return SimulationResult(
        as_of=as_of,
        strategy_a=strategy_a,
        strategy_b=strategy_b,
        n_paths=n_paths,
        interval=interval,
        metrics=pl.DataFrame(metric_rows),
        weekly=pl.DataFrame(weekly_rows),
        touches=touches,
        effects=effect_frame,
        assumptions=assumptions,
        paths=collected,
        dso_start=dso_on_book(book),
    )
