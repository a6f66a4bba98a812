"""Replay a pilot on a generated world with a known true effect: does the report recover it?

:func:`replay_pilot` loads a world into a throw-away store, starts a pilot on it (the
assignment depends on the pilot id, so each replication gets its own), reads the report with
no effect (the null), then injects a known effect — every payment on an invoice of a worklist
customer that came due in the pilot arrives ``effect_days`` sooner (never before the invoice
date nor the pilot's start) — and reads the report again.

The true effect on the report's estimand (mean days from due to payment, counted up to the
cap) is computed from both potential outcomes of *every* invoice that came due in the pilot,
read from the full ledger (the world runs past the report date, so nothing is censored in the
truth): the effect applied to everyone, against no one. With the floors it is a little under
``effect_days``; it is exactly 0 with no effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from dashboard.ingest import load_world
from dashboard.ledger import date_literal, refresh_ledger
from dashboard.pilot import Pilot, plan_pilot, start_pilot
from dashboard.pilot_outcomes import DAYS_TO_PAY_CAP, INTERVAL
from dashboard.pilot_report import PilotReport, pilot_report
from dashboard.store import Store
from dashboard.synthetic.generator import World


@dataclass(frozen=True)
class ReplayResult:
    """One replication: the reports without and with the effect, and the true effect."""

    pilot: Pilot
    null_report: PilotReport
    effect_report: PilotReport
    true_effect: float  # days sooner, worklist over holdout, on the report's estimand
    effect_days: float

    @staticmethod
    def _covers(report: PilotReport, truth: float) -> bool:
        sooner = report.sooner()
        return sooner is not None and sooner[1] <= truth <= sooner[2]

    @property
    def effect_covered(self) -> bool:
        """The 90% interval of the effect report holds the true effect."""
        return self._covers(self.effect_report, self.true_effect)

    @property
    def null_no_change(self) -> bool:
        """The null report's verdict is "no measurable change"."""
        return self.null_report.verdict().startswith("No measurable change")

    def summary(self) -> str:
        value, low, high = self.effect_report.sooner() or (float("nan"),) * 3
        null, null_low, null_high = self.null_report.sooner() or (float("nan"),) * 3
        return (
            f"effect: true {self.true_effect:.2f}, estimate {value:.2f} ({low:.2f} to {high:.2f}) "
            f"{'covered' if self.effect_covered else 'MISSED'}; null: {null:.2f} ({null_low:.2f} to {null_high:.2f}) "
            f"{'no change' if self.null_no_change else 'CHANGE'}"
        )


def _cohort_days(store: Store, pilot: Pilot, cap: int) -> pl.DataFrame:
    """Each invoice that came due in the pilot: days from due to paid, capped, from the full ledger."""
    return store.query(
        f"""
        SELECT document_id, customer_id,
               least(coalesce((paid_date - due_date), {cap}), {cap})::DOUBLE AS capped_days
        FROM ledger_documents
        WHERE doc_type = 'invoice' AND amount > 0
          AND due_date >= {date_literal(pilot.start)} AND due_date <= {date_literal(pilot.last_day)}
        """
    )


def _shift_payments(store: Store, pilot: Pilot, effect_days: int, *, arm: str | None) -> None:
    """Move the payments on invoices due in the pilot (of ``arm``'s customers, or everyone's)
    ``effect_days`` sooner, never before the invoice date or the pilot's start; keep the
    original dates in ``replay_original`` so they can be put back."""
    who = (
        f"AND i.customer_id IN (SELECT customer_id FROM pilot_assignments WHERE pilot_id = '{pilot.pilot_id}' "
        f"AND arm = '{arm}')"
        if arm
        else ""
    )
    with store.transaction() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS replay_original (payment_id VARCHAR PRIMARY KEY, payment_date DATE)"
        ).fetchall()
        cur.execute(
            f"""
            INSERT INTO replay_original
            SELECT p.payment_id, p.payment_date FROM payments p JOIN invoices i ON i.invoice_id = p.invoice_id
            WHERE i.due_date >= {date_literal(pilot.start)} AND i.due_date <= {date_literal(pilot.last_day)} {who}
            ON CONFLICT DO NOTHING
            """
        ).fetchall()
        cur.execute(
            f"""
            UPDATE payments p SET payment_date = greatest(o.payment_date - {int(effect_days)}, i.invoice_date,
                                                          {date_literal(pilot.start)})
            FROM replay_original o, invoices i
            WHERE o.payment_id = p.payment_id AND i.invoice_id = p.invoice_id
              AND i.due_date >= {date_literal(pilot.start)} AND i.due_date <= {date_literal(pilot.last_day)} {who}
            """
        ).fetchall()
        refresh_ledger(cur)


def _restore_payments(store: Store) -> None:
    with store.transaction() as cur:
        cur.execute(
            "UPDATE payments p SET payment_date = o.payment_date FROM replay_original o WHERE o.payment_id = p.payment_id"
        ).fetchall()
        cur.execute("DROP TABLE replay_original").fetchall()
        refresh_ledger(cur)


def replay_pilot(
    world: World,
    *,
    start: date,
    effect_days: int,
    replication: int,
    days: int = 90,
    holdout_share: float = 0.10,
    report_after_days: int = 30,
    resamples: int = 2_000,
) -> ReplayResult:
    """Start a pilot on ``world`` at ``start`` and read its report ``report_after_days`` after its
    last day, without and with an effect of ``effect_days`` sooner for the worklist group (see
    the module docstring). ``replication`` names the pilot (so its assignment) and seeds the bootstrap."""
    with Store(":memory:") as store:
        load_world(store, world.frames, name=f"replay-{replication}")
        plan = plan_pilot(
            store, name=f"replay {replication}", start=start, days=days, holdout_share=holdout_share, kill_days=None
        )
        pilot = start_pilot(store, plan)
        as_of = pilot.last_day + timedelta(days=report_after_days)
        null_report = pilot_report(store, pilot, as_of, resamples=resamples, seed=replication)
        cap = null_report.cap or DAYS_TO_PAY_CAP
        untreated = _cohort_days(store, pilot, cap)
        _shift_payments(store, pilot, effect_days, arm=None)
        treated = _cohort_days(store, pilot, cap)
        _restore_payments(store)
        true_effect = float(
            untreated.join(treated, on="document_id", suffix="_treated")
            .select((pl.col("capped_days") - pl.col("capped_days_treated")).mean())
            .item()
            or 0.0
        )
        _shift_payments(store, pilot, effect_days, arm="worklist")
        effect_report = pilot_report(store, pilot, as_of, resamples=resamples, seed=replication, cap=cap)
    return ReplayResult(
        pilot=pilot,
        null_report=null_report,
        effect_report=effect_report,
        true_effect=true_effect,
        effect_days=effect_days,
    )


__all__ = ["DAYS_TO_PAY_CAP", "INTERVAL", "ReplayResult", "replay_pilot"]
