"""A pilot's report: per group and the difference, each with a 90% interval, and a plain verdict.

:func:`pilot_report` reads the outcomes of every customer the pilot assigned
(:func:`dashboard.pilot_outcomes.customer_outcomes`) as of any day from its start, and
bootstraps the differences over customers within the strata of the assignment (the customer
is the unit of randomization). The figures are measurements with intervals, not guarantees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from dashboard.display import day, days, percent, points
from dashboard.errors import PilotError
from dashboard.ledger import date_literal
from dashboard.pilot import ARMS, Pilot, assignments, ensure_assigned
from dashboard.pilot_outcomes import (
    BOOTSTRAP_RESAMPLES,
    CAP_FALLBACKS,
    DAYS_TO_PAY_CAP,
    INTERVAL,
    METRICS,
    MIN_FOLLOW_UP_SHARE,
    bootstrap_cells,
    bootstrap_sums,
    customer_outcomes,
    weighted_median,
)
from dashboard.store import Store


@dataclass(frozen=True)
class PilotReport:
    """A pilot's report on ``as_of``: per group and the difference, with 90% intervals.

    ``figures`` columns: metric, label, kind, better, worklist, holdout, difference
    (worklist − holdout), low, high (the 90% bootstrap interval of the difference), measurable
    (the interval leaves out 0). These are measurements with intervals, not guarantees.
    """

    pilot: Pilot
    as_of: date
    figures: pl.DataFrame
    medians: dict[str, float | None]
    customers: dict[str, int]
    invoices: dict[str, int]
    still_open: dict[str, int]
    cap: int | None  # None: too early to measure days to pay
    resamples: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def finished(self) -> bool:
        return self.as_of >= self.pilot.last_day

    @property
    def days_run(self) -> int:
        return max(0, min((self.as_of - self.pilot.start).days + 1, self.pilot.days))

    def figure(self, key: str) -> dict[str, Any]:
        return self.figures.filter(pl.col("metric") == key).to_dicts()[0]

    def sooner(self) -> tuple[float, float, float] | None:
        """Days the worklist group paid sooner than the holdout, with its 90% interval."""
        row = self.figure("days_to_pay")
        if row["difference"] is None:
            return None
        return -row["difference"], -row["high"], -row["low"]

    def verdict(self) -> str:
        """The plain verdict on days to pay, and the kill criterion."""
        estimate = self.sooner()
        if estimate is None and sum(self.invoices.values()):
            return (
                f"Too early to measure days to pay: fewer than {MIN_FOLLOW_UP_SHARE:.0%} of the invoices that came "
                f"due in the pilot have been due for {CAP_FALLBACKS[-1]} days."
            )
        if estimate is None:
            return "No invoice has come due in the pilot yet: nothing to measure."
        value, low, high = estimate
        interval = f"({_signed_days(low)} to {_signed_days(high)}, {INTERVAL:.0%} interval)"
        direction = "sooner" if value >= 0 else "later"
        if low <= 0 <= high:
            text = (
                f"No measurable change in days to pay: the worklist group paid {days(abs(value))} {direction} than the "
                f"holdout {interval}."
            )
        else:
            text = f"The worklist group paid {days(abs(value))} {direction} {interval}."
        if self.pilot.kill_days is None:
            return text
        meets = value >= self.pilot.kill_days and low > 0
        criterion = f"the kill criterion you set (at least {days(self.pilot.kill_days)} sooner, measurably)"
        if self.finished:
            return f"{text} At {self.pilot.days} days this {'meets' if meets else 'does not meet'} {criterion}."
        so_far = "meets" if meets else "does not meet yet"
        return (
            f"{text} After {self.days_run} of {self.pilot.days} days this {so_far} {criterion}; it is judged at "
            f"the end, on {day(self.pilot.last_day)}."
        )

    def censoring_note(self) -> str:
        open_count = sum(self.still_open.values())
        counted = (
            f"Days to pay are counted from the due date up to {self.cap} days past due (an invoice unpaid by then "
            f"counts {self.cap})."
            if self.cap is not None
            else "Days to pay are not measured yet (too little time since the invoices came due)."
        )
        return (
            f"{counted} {open_count:,} invoice(s) that came due in the pilot were still open on "
            f"{day(self.as_of)}: they are counted as censored (open at least that long), not dropped."
        )

    def table(self) -> pl.DataFrame:
        """The figures in words, for a page or a file."""
        rows = []
        for r in self.figures.to_dicts():
            fmt = _formatter(r["kind"])
            rows.append(
                {
                    "figure": r["label"],
                    "worklist_group": fmt(r["worklist"]),
                    "holdout_group": fmt(r["holdout"]),
                    "difference": fmt(r["difference"], signed=True),
                    "interval": f"{fmt(r['low'], signed=True)} to {fmt(r['high'], signed=True)}"
                    if r["low"] is not None
                    else "—",
                    "measurable": "yes" if r["measurable"] else "no",
                }
            )
        return pl.DataFrame(
            rows,
            schema={c: pl.String for c in ("figure", "worklist_group", "holdout_group", "difference", "interval", "measurable")},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "pilot": self.pilot.to_dict(),
            "as_of": self.as_of.isoformat(),
            "days_run": self.days_run,
            "finished": self.finished,
            "customers": self.customers,
            "invoices_due": self.invoices,
            "still_open": self.still_open,
            "days_to_pay_cap": self.cap,
            "median_days_to_pay": self.medians,
            "resamples": self.resamples,
            "interval": INTERVAL,
            "figures": self.figures.to_dicts(),
            "verdict": self.verdict(),
            "notes": [self.censoring_note(), *self.notes],
        }


def _signed_days(value: float) -> str:
    return f"{value:+,.1f}".replace("-", "−")


def _formatter(kind: str) -> Any:
    def fmt(value: float | None, *, signed: bool = False) -> str:
        if value is None:
            return "—"
        if kind == "share":  # a difference of two shares is in percentage points
            return points(value * 100) if signed else percent(value, share=True)
        if kind == "days":
            return days(value, signed=signed)
        if kind == "minutes":
            return f"{value:+,.1f} min".replace("-", "−") if signed else f"{value:,.1f} min"
        return f"{value:+,.2f}".replace("-", "−") if signed else f"{value:,.2f}"

    return fmt


def pilot_report(
    store: Store,
    pilot: Pilot,
    as_of: date,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    cap: int | None = None,
) -> PilotReport:
    """The pilot's report as of ``as_of`` (any day from its start; at and after its last day,
    the final report). Outcomes are read as of ``as_of``; see :func:`customer_outcomes` for each
    figure and for how invoices still open are handled (censored, not dropped)."""
    if as_of < pilot.start:
        msg = f"The pilot {pilot.name!r} starts on {day(pilot.start)}; a report needs a date from then on, got {day(as_of)}."
        raise PilotError(msg)
    stored = assignments(store, pilot.pilot_id)
    # customers with invoices due in the pilot that it has not seen yet are assigned now
    late = store.query(
        f"""
        SELECT DISTINCT customer_id FROM ledger_documents
        WHERE customer_id IS NOT NULL AND doc_type = 'invoice'
          AND due_date >= {date_literal(pilot.start)} AND due_date <= {date_literal(min(pilot.last_day, as_of))}
          AND customer_id NOT IN (SELECT customer_id FROM pilot_assignments WHERE pilot_id = ?)
        """,
        [pilot.pilot_id],
    )
    if late.height:
        ensure_assigned(store, pilot, late["customer_id"], as_of)
        stored = assignments(store, pilot.pilot_id)
    customers = stored.select("customer_id", "arm", "stratum")
    outcomes = customer_outcomes(
        store, customers.select("customer_id", "arm"), first=pilot.start, last=pilot.last_day, as_of=as_of, cap=cap
    )
    frame = customers.join(outcomes.customers.drop("arm"), on="customer_id", how="left").fill_null(0.0)
    columns = sorted({c for m in METRICS for c in (m.num, m.den)})
    values = frame.select(columns).to_numpy().astype(np.float64)
    arms = frame["arm"].to_numpy()
    cells = bootstrap_cells(frame).rank("dense").to_numpy()  # integer codes: cheap to sort
    boot = {}
    point = {}
    for arm in ARMS:
        mask = arms == arm
        point[arm] = values[mask].sum(axis=0)
        boot[arm] = bootstrap_sums(values[mask], cells[mask], resamples=resamples, seed=seed + (7 if arm == "holdout" else 0))
    index = {c: i for i, c in enumerate(columns)}
    rows = []
    low_q, high_q = (1 - INTERVAL) / 2, 1 - (1 - INTERVAL) / 2
    for metric in METRICS:
        num, den = index[metric.num], index[metric.den]
        est = {arm: _ratio(point[arm][num], point[arm][den]) for arm in ARMS}
        row: dict[str, Any] = {
            "metric": metric.key,
            "label": metric.label,
            "kind": metric.kind,
            "better": metric.better,
            "worklist": None if est["worklist"] is None else est["worklist"] * metric.scale,
            "holdout": None if est["holdout"] is None else est["holdout"] * metric.scale,
            "difference": None,
            "low": None,
            "high": None,
            "measurable": False,
        }
        if est["worklist"] is not None and est["holdout"] is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                draws = (
                    boot["worklist"][:, num] / boot["worklist"][:, den] - boot["holdout"][:, num] / boot["holdout"][:, den]
                ) * metric.scale
            draws = draws[np.isfinite(draws)]
            row["difference"] = (est["worklist"] - est["holdout"]) * metric.scale
            if draws.size:
                row["low"], row["high"] = float(np.quantile(draws, low_q)), float(np.quantile(draws, high_q))
                row["measurable"] = not (row["low"] <= 0 <= row["high"])
        rows.append(row)
    figures = pl.DataFrame(
        rows,
        schema={
            "metric": pl.String,
            "label": pl.String,
            "kind": pl.String,
            "better": pl.String,
            "worklist": pl.Float64,
            "holdout": pl.Float64,
            "difference": pl.Float64,
            "low": pl.Float64,
            "high": pl.Float64,
            "measurable": pl.Boolean,
        },
    )
    invoices = outcomes.invoices.join(customers.select("customer_id", "arm"), on="customer_id", how="left")
    medians = {}
    for arm in ARMS:
        part = invoices.filter(pl.col("arm") == arm)
        medians[arm] = weighted_median(part["capped_days"].to_numpy(), part["weight"].to_numpy()) if part.height else None
    counts = {arm: int((arms == arm).sum()) for arm in ARMS}
    due = {arm: int((invoices["arm"] == arm).sum()) for arm in ARMS}
    still_open = {arm: int(invoices.filter((pl.col("arm") == arm) & pl.col("days_to_pay").is_null()).height) for arm in ARMS}
    notes = []
    if pilot.cancelled is not None:
        notes.append(f"The pilot was cancelled on {day(pilot.cancelled.date())}; the figures cover its days anyway.")
    if outcomes.cap is not None and outcomes.cap < DAYS_TO_PAY_CAP:
        notes.append(
            f"Days to pay are counted up to {outcomes.cap} days past due, not {DAYS_TO_PAY_CAP}: too few invoices were "
            "followed that long yet."
        )
    return PilotReport(
        pilot=pilot,
        as_of=as_of,
        figures=figures,
        medians=medians,
        customers=counts,
        invoices=due,
        still_open=still_open,
        cap=outcomes.cap,
        resamples=resamples,
        notes=tuple(notes),
    )


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


