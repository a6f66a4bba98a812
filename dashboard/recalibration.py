"""Recent-outcome recalibration: P(late)'s level refitted at scoring time.

A probability map fitted when the model was trained (its calibration window ends months before
any date it scores: the test window and the label lag sit in between) carries the share of
invoices paid late *then*. When that share moves — a shock that delays many customers at once,
a slow season, a new mix of customers — every P(late) is off by the same amount on the logit
scale, while the ranking still holds. So, at each as-of date, the scorer (model or
customer-history baseline) keeps its map's slope and refits only its intercept on the newest
outcomes known at that date:

- weekly snapshots at ``as_of - 7 d, ..., as_of - 7·weeks d``, the invoices open then whose
  outcome was still undetermined (not more than grace past due — the rows the map scores);
- labelled as known at ``as_of``: only invoices whose due date + grace has passed by ``as_of``
  get a label, paid or not (:func:`dashboard.features.attach_labels`), so which rows are
  labelled depends on their due date (a feature), never on their outcome or on anything after
  ``as_of``; a selection on features leaves P(late | score) as it was, which is what the shift
  estimates;
- the shift δ maximises the likelihood of those outcomes under ``logit p + δ``, each row weighted
  by how fresh its outcome is (``exp(-age / RECENCY_DAYS)``, ``age`` the days from the invoice's
  due date to ``as_of - grace``, the newest due date whose outcome can be known), with a normal
  prior of sd ``PRIOR_SD`` on δ (a few dozen rows cannot move it far; thousands can);
- the shift applied is ``PERSISTENCE × δ``: the invoices scored fall due days to months after the
  newest known outcomes, and a move in the share paid late (a shock to many customers at once)
  lasts only weeks, so on average only part of it is still there when they fall due. One level
  per date, so the ranking at a date, and every AUC, is the stored map's. (A shift decaying with
  each invoice's days to due fitted slightly better on the worlds it was chosen on, but it
  re-ranks invoices, and on one of them it took the model's AUC below the baseline's.)
- with fewer than ``MIN_ROWS`` such rows, or one class only, δ = 0 and the note says why.

The window length (``RECENT_WEEKS``), ``RECENCY_DAYS`` and ``PERSISTENCE`` were chosen on worlds
the product is not judged on (second-world stores with other seeds and the generator's own
world; see ``bench/RESULTS.md``), and are stated in every scorer's note.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from dashboard.features import FeatureSpec, attach_labels, build_features, build_outcomes
from dashboard.store import Store

RECENT_WEEKS = 8
MIN_ROWS = 30
MAX_CUSTOMERS = 2_000  # customers whose recent invoices the shift is fitted on (a fixed hash sample)
PRIOR_SD = 1.0  # logit units: a base-rate move from 20% to 40% late is 0.98
RECENCY_DAYS = 21  # an outcome due this many days before the newest known one weighs 1/e of it
PERSISTENCE = 0.8  # share of the fitted shift applied to the invoices scored
METHOD_ID = f"recent{RECENT_WEEKS}w{RECENCY_DAYS}d{round(100 * PERSISTENCE)}"  # in scorer ids: kept scores follow the method
RECALIBRATION_TEXT = (
    f"At scoring, the map's slope stays and its level (intercept) is refitted on the newest outcomes known at "
    f"the as-of date: the invoices open at weekly snapshots of the last {RECENT_WEEKS} weeks whose due date + "
    f"grace has passed by then (at least {MIN_ROWS}, of both kinds; otherwise the map stands), the freshest "
    f"weighing most (weight 1/e at {RECENCY_DAYS} days older); {PERSISTENCE:.0%} of that shift is applied, as a "
    "move in the share paid late lasts weeks and the invoices scored fall due later. The window, the weights "
    "and the share were chosen on worlds the product is not judged on."
)


@dataclass(frozen=True)
class RecentShift:
    """The intercept shift of a P(late) map and what it was fitted on (plain numbers)."""

    shift: float = 0.0  # applied: PERSISTENCE x fitted
    fitted: float = 0.0  # the shift the recent outcomes call for
    rows: int = 0
    late: int = 0
    weeks: int = RECENT_WEEKS
    first_snapshot: date | None = None
    last_snapshot: date | None = None
    as_of: date | None = None
    mean_before: float | None = None  # mean P(late) on those rows before the shift
    note: str = ""

    def apply(self, p: np.ndarray, determined: np.ndarray | None = None) -> np.ndarray:
        """``p`` moved by the shift on the logit scale (rows already late stay 1)."""
        if self.shift == 0.0 or len(p) == 0:
            return p
        moved = shifted(p, self.shift)
        return moved if determined is None else np.where(determined, p, moved)

    def describe(self) -> str:
        if self.rows == 0 or self.shift == 0.0 and self.note:
            return f"P(late) not recalibrated on recent outcomes: {self.note}"
        window = f"{self.first_snapshot} to {self.last_snapshot}" if self.first_snapshot else "none"
        return (
            f"P(late) recalibrated on recent outcomes: its level refitted on {self.rows:,} invoice snapshots (the "
            f"invoices open at weekly snapshots of the last {self.weeks} weeks, {window}, whose outcome was known on "
            f"{self.as_of}) "
            f"({self.late / self.rows:.0%} late, against {self.mean_before:.0%} predicted by the stored map; the "
            f"freshest weighing most): logit shift {self.fitted:+.2f}, of which {PERSISTENCE:.0%} is applied "
            f"({self.shift:+.2f}), as such a move lasts weeks and the invoices scored fall due later."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "intercept shift on recent outcomes, recency-weighted, damped", "shift": round(self.shift, 4),
            "fitted": round(self.fitted, 4), "recency_days": RECENCY_DAYS, "persistence": PERSISTENCE, "rows": self.rows,
            "late": self.late, "weeks": self.weeks,
            "window": [d.isoformat() if d else None for d in (self.first_snapshot, self.last_snapshot)],
            "as_of": self.as_of.isoformat() if self.as_of else None, "note": self.note,
        }


def shifted(p: np.ndarray, shift: float) -> np.ndarray:
    """Probabilities ``p`` moved by ``shift`` on the logit scale (the one place a shift is applied)."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return 1.0 / (1.0 + np.exp(-(np.log(q / (1 - q)) + shift)))


def recent_snapshots(as_of: date, weeks: int = RECENT_WEEKS) -> list[date]:
    """Weekly snapshot dates before ``as_of``, oldest first."""
    return [as_of - timedelta(days=7 * k) for k in range(weeks, 0, -1)]


def recent_outcomes(
    store: Store, as_of: date, *, spec: FeatureSpec, weeks: int = RECENT_WEEKS, max_customers: int = MAX_CUSTOMERS
) -> pl.DataFrame:
    """Feature rows of the recent weekly snapshots whose outcome was undetermined then and is
    known at ``as_of`` (with ``late``).

    Only invoices due between the first snapshot − grace and ``as_of`` − grace can be both (open,
    at most grace past due at a snapshot; due + grace passed by ``as_of``), so only they are
    built; on a book of more than ``max_customers`` customers, those of a fixed hash sample of
    customers (an intercept needs a few thousand rows, not the whole book; whole customers, so
    each keeps its history)."""
    if weeks < 1:
        msg = f"The recalibration window is a number of weeks, at least 1; got {weeks!r}."
        raise ValueError(msg)
    dates = recent_snapshots(as_of, weeks)
    ids = store.query(
        """
        WITH sampled AS (
            SELECT customer_id FROM (SELECT DISTINCT customer_id FROM invoices)
            ORDER BY hash(customer_id), customer_id LIMIT $max_customers
        )
        SELECT invoice_id FROM invoices
        WHERE coalesce(doc_type, 'invoice') = 'invoice' AND amount > 0
          AND due_date >= $first - $grace AND due_date < $as_of - $grace AND invoice_date <= $last
          AND customer_id IN (SELECT customer_id FROM sampled)
        """,
        {"max_customers": max_customers, "first": dates[0], "last": dates[-1], "as_of": as_of,
         "grace": spec.grace_days},
    )
    features = build_features(store, dates, spec=spec, invoice_ids=ids.get_column("invoice_id").to_list())
    if features.is_empty():
        return features.with_columns(late=pl.lit(None, dtype=pl.Int8))
    labelled = attach_labels(features, build_outcomes(store, known_by=as_of), known_by=as_of,
                             grace_days=spec.grace_days)
    return labelled.filter(pl.col("late").is_not_null() & (pl.col("days_past_due") <= spec.grace_days))


def fit_shift(
    p: np.ndarray, late: np.ndarray, *, weights: np.ndarray | None = None, prior_sd: float = PRIOR_SD
) -> float:
    """δ maximising sum w · log-likelihood(late | sigmoid(logit p + δ)) − δ² / (2 prior_sd²)
    (Newton; ``weights`` default 1)."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    logit = np.log(q / (1 - q))
    y = np.asarray(late, dtype=np.float64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    delta = 0.0
    for _ in range(50):
        s = 1.0 / (1.0 + np.exp(-(logit + delta)))
        gradient = float((w * (y - s)).sum()) - delta / prior_sd**2
        curvature = float((w * s * (1 - s)).sum()) + 1.0 / prior_sd**2
        step = gradient / curvature
        delta += step
        if abs(step) < 1e-8:
            break
    return float(delta)


def recency_weights(rows: pl.DataFrame, *, as_of: date, grace_days: int, days: float = RECENCY_DAYS) -> np.ndarray:
    """``exp(-age / days)`` per row, ``age`` the days from its due date to ``as_of - grace``
    (the newest due date whose outcome can be known at ``as_of``): 1 for the freshest outcomes."""
    newest = as_of - timedelta(days=grace_days)
    age = rows.select((pl.lit(newest) - pl.col("due_date")).dt.total_days()).to_series().to_numpy().astype(np.float64)
    return np.exp(-np.maximum(age, 0.0) / days)


def recent_shift(
    rows: pl.DataFrame, p: np.ndarray, *, as_of: date, grace_days: int, weeks: int = RECENT_WEEKS
) -> RecentShift:
    """The shift for a scorer whose P(late) on ``rows`` (:func:`recent_outcomes`) is ``p``: fitted
    on the rows weighted by :func:`recency_weights`, ``PERSISTENCE`` of it applied."""
    dates = recent_snapshots(as_of, weeks)
    base = {"weeks": weeks, "first_snapshot": dates[0], "last_snapshot": dates[-1], "as_of": as_of}
    y = rows.get_column("late").to_numpy().astype(np.float64) if rows.height else np.zeros(0)
    if rows.height < MIN_ROWS or len(np.unique(y)) < 2:
        kind = "" if rows.height < MIN_ROWS else f", all {'late' if y.max() == 1 else 'on time'}"
        return RecentShift(rows=int(rows.height), late=int(y.sum()), note=(
            f"only {rows.height} invoice snapshots of the last {weeks} weeks have a known outcome{kind} (at least {MIN_ROWS} "
            "of both kinds are needed), so the map fitted at training time stands"
        ), **base)
    fitted = fit_shift(p, y, weights=recency_weights(rows, as_of=as_of, grace_days=grace_days))
    return RecentShift(shift=PERSISTENCE * fitted, fitted=fitted, rows=int(rows.height), late=int(y.sum()),
                       mean_before=float(np.mean(p)), **base)
