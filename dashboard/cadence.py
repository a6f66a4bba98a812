"""The cadence the contact history shows: strategy A of the simulator is what the team does.

The simulator compares a change (B) with the current way of working (A), and calibrates how
much a touch pulls payment forward by replaying A on history. Both need A to be the cadence
that produced that history, not a cadence written in code. :func:`observed_strategy` reads it
from the ``contacts`` table: for each invoice, its touches in order (1st, 2nd, ...) and when
each was sent relative to the due date; step *k* of A is the median day of the *k*-th touch,
with the channel, tone and action most often used for it. A step stays while at least
``min_share`` of the touched invoices (and at least ``MIN_STEP_INVOICES``) reached it: touches
stop when invoices are paid, so later steps are rare but still part of the cadence.

With too little contact history the shipped default cadence is used and
:attr:`ObservedCadence.assumed` says so, so every output can mark it an assumption.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from dashboard.display import day
from dashboard.simulate import Strategy, Touch, current_strategy
from dashboard.store import Store
from dashboard.vocabulary import CHANNELS, TONES

MIN_TOUCHED_INVOICES = 50
MAX_STEPS = 12
MIN_STEP_INVOICES = 20
STEP_COLUMNS = ("step", "days_from_due", "channel", "tone", "action", "invoices", "share")


@dataclass(frozen=True)
class ObservedCadence:
    """Strategy A as observed, with the evidence behind each step."""

    strategy: Strategy
    steps: pl.DataFrame  # step, days_from_due, channel, tone, action, invoices, share
    touched_invoices: int
    window: tuple[date, date]
    assumed: bool  # True when the history was too thin and the default cadence stands in

    def summary(self) -> str:
        start, end = day(self.window[0]), day(self.window[1])
        if self.assumed:
            return (
                f"Only {self.touched_invoices} invoices were contacted between {start} and {end}: the current "
                "strategy uses Recoup's default cadence (an assumption, not your history)."
            )
        days = ", ".join(f"{d:+d}" for d in self.steps["days_from_due"].to_list())
        return (
            f"Current strategy (A) as your contact history shows it: {self.touched_invoices:,} invoices contacted "
            f"between {start} and {end}, touched at {days} days from the due date."
        )


def observed_strategy(
    store: Store, as_of: date, *, months: int = 6, min_share: float = 0.01, name: str = "current"
) -> ObservedCadence:
    """The cadence of touches in the ``months`` before ``as_of``, as a simulator :class:`Strategy`.

    Only touches on an invoice, with a channel and tone the simulator knows, count. Invoices
    issued at least ``months`` before ``as_of`` are left out when their first touch would fall
    before the window (their sequence would start in the middle).
    """
    start = as_of - timedelta(days=round(months * 30.44))
    touches = store.query(
        """
        WITH t AS (
            SELECT c.invoice_id, c.ts, c.channel, c.tone, coalesce(c.action, 'reminder') AS action,
                   (c.ts::DATE - i.due_date)::INTEGER AS days_from_due
            FROM contacts c JOIN invoices i ON i.invoice_id = c.invoice_id
            WHERE c.ts::DATE <= ?::DATE AND c.channel IN (SELECT unnest(?::VARCHAR[]))
              AND c.tone IN (SELECT unnest(?::VARCHAR[]))
              AND coalesce(c.outcome, '') <> 'dispute raised'
        ), sequenced AS (
            SELECT *, row_number() OVER (PARTITION BY invoice_id ORDER BY ts, channel) AS step,
                   min(ts) OVER (PARTITION BY invoice_id)::DATE AS first_touch
            FROM t
        )
        SELECT step, days_from_due, channel, tone, action, invoice_id
        FROM sequenced WHERE first_touch > ?::DATE
        """,
        [as_of, list(CHANNELS), list(TONES), start],
    )
    touched = touches.filter(pl.col("step") == 1).height
    if touched < MIN_TOUCHED_INVOICES:
        default = current_strategy()
        return ObservedCadence(
            strategy=default,
            steps=steps_frame(default.steps).with_columns(
                step=pl.int_range(1, len(default.steps) + 1),
                invoices=pl.lit(None, pl.UInt32),
                share=pl.lit(None, pl.Float64),
            ).select(STEP_COLUMNS),
            touched_invoices=touched,
            window=(start, as_of),
            assumed=True,
        )
    steps = (
        touches.group_by("step")
        .agg(
            days_from_due=pl.col("days_from_due").median().round().cast(pl.Int64),
            channel=pl.col("channel").mode().sort().first(),
            tone=pl.col("tone").mode().sort().first(),
            action=pl.col("action").mode().sort().first(),
            invoices=pl.len(),
        )
        .with_columns(share=pl.col("invoices") / touched)
        .filter((pl.col("share") >= min_share) & (pl.col("invoices") >= MIN_STEP_INVOICES))
        .sort("step")
        .head(MAX_STEPS)
    )
    # a cadence moves forward in time: a step no later than the one before is the same touch
    # repeated (a resend on the same day), not a new step
    kept, last = [], None
    for row in steps.iter_rows(named=True):
        if last is None or row["days_from_due"] > last:
            kept.append(row)
            last = row["days_from_due"]
    steps = pl.DataFrame(kept, schema=steps.schema).with_columns(step=pl.int_range(1, len(kept) + 1)).select(STEP_COLUMNS)
    strategy = Strategy(
        name=name,
        steps=tuple(
            Touch(r["days_from_due"], r["channel"], r["tone"], r["action"]) for r in steps.iter_rows(named=True)
        ),
    )
    return ObservedCadence(strategy=strategy, steps=steps, touched_invoices=touched, window=(start, as_of), assumed=False)


def steps_frame(steps: Sequence[Touch]) -> pl.DataFrame:
    """A cadence as rows (days_from_due, action, channel, tone): for display and editing."""
    return pl.DataFrame(
        {
            "days_from_due": [s.days_from_due for s in steps],
            "action": [s.action for s in steps],
            "channel": [s.channel for s in steps],
            "tone": [s.tone for s in steps],
        },
        schema={"days_from_due": pl.Int64, "action": pl.String, "channel": pl.String, "tone": pl.String},
    )
