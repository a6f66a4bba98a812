"""The customer-history baseline: what the risk model must beat, and what scores when it does not.

- **Score** (what a model is compared with): the customer's mean days late over its invoices
  closed by the as-of date (``history_mean_days_late``); a customer with none gets the book's
  mean (``fill_days_late``). One line of SQL, and on real data often as good as a model.
- **P(late)**: 1 for an invoice already more than ``grace_days`` past due (it is late whatever
  happens next); otherwise a logistic map of the score, fitted on labelled snapshots. The map is
  increasing, so P(late) ranks invoices exactly as the score does. Without enough labelled
  snapshots to fit it, the customer's share of late invoices, smoothed towards the book's share.
- **Pay date**: the invoice's delay after due = the customer's mean days late (shrunk towards
  the book's mean by ``shrink_invoices`` pseudo-invoices) + the book's spread around its
  customers' means (a Kaplan–Meier curve of those residuals, unpaid invoices censored),
  conditioned on not being paid by the as-of date. It is turned into weekly hazards of the same
  shape as the risk model's, so survival, P(paid within 30 days) and pay-date quantiles come
  from the same code for both (:mod:`dashboard.scoring`).

:func:`fit_baseline` fits it from a store as of a date (the fallback when no model can be
trained); :func:`dashboard.training.train_model` fits one on its training window and keeps it in
the model card, next to the model it is compared with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from dashboard.features import DEFAULT_GRACE_DAYS, FeatureSpec
from dashboard.recalibration import shifted
from dashboard.store import Store

RESIDUAL_MIN = -120  # residual grid (days around the customer's mean), both ends inclusive
RESIDUAL_MAX = 365
SHRINK_INVOICES = 2.0  # pseudo-invoices of the book's mean in a customer's pay-date shift
MIN_CALIBRATION_ROWS = 30  # labelled snapshots (of both kinds) needed to fit the P(late) map
TAIL_WEEKLY_HAZARD = 0.02  # past everything the book has seen: about 40% paid in half a year
TAIL_PSEUDO_INVOICES = 2.0  # weight of that tail hazard in every day of the residual curve
HISTORY_DAYS = 540  # invoices issued in this window before the fit date teach the spread
BASELINE_DESCRIPTION = (
    "customer-history baseline: the customer's mean days late over its invoices paid by the "
    "as-of date (one line of SQL)"
)


@dataclass(frozen=True)
class CustomerHistoryBaseline:
    """The fitted baseline (plain numbers: it is stored in a model card as JSON).

    Attributes
    ----------
    grace_days
        Days after due before an invoice counts as late.
    fill_days_late
        Mean days late given to customers without a closed invoice.
    fill_share_late
        The book's share of late invoices (the uncalibrated map's prior).
    a, b, c
        P(late) = 1 / (1 + exp(-(a * score + b + c * past_due))) for invoices not yet late
        (``past_due``: 1 for an invoice past due but within grace, still open; 0 before its due
        date); ``a >= 0``. Without ``c`` the map fitted on both kinds of rows overstates P(late)
        for invoices not yet due, the ones it is shown for.
    calibrated
        False when there were too few labelled snapshots to fit ``a, b``: P(late) is then the
        customer's smoothed share of late invoices.
    calibration_rows
        Labelled snapshots the map was fitted on.
    residual_survival
        P(residual > r) for r = RESIDUAL_MIN .. RESIDUAL_MAX (days around the customer's shift).
    residual_invoices
        Invoices the residual curve was learnt from (paid and still open).
    weeks
        Weekly hazards returned by :meth:`hazards` (the risk model's horizon).
    note
        Why the baseline looks as it does (too few rows, no payments...), or empty.
    recent_shift, recent_rows, recent_note
        The logit shift of P(late) refitted on the outcomes known at the as-of date of the last
        weeks' snapshots (:mod:`dashboard.recalibration`; 0 and empty when not recalibrated),
        the rows it was fitted on, and what it says.
    """

    grace_days: int = DEFAULT_GRACE_DAYS
    fill_days_late: float = 0.0
    fill_share_late: float = 0.5
    a: float = 0.0
    b: float = 0.0
    c: float = 0.0
    calibrated: bool = False
    calibration_rows: int = 0
    residual_survival: tuple[float, ...] = field(default_factory=tuple)
    residual_invoices: int = 0
    weeks: int = 26
    shrink_invoices: float = SHRINK_INVOICES
    note: str = ""
    recent_shift: float = 0.0
    recent_rows: int = 0
    recent_note: str = ""

    # -- stored form ----------------------------------------------------------------------
    def to_card(self) -> dict[str, Any]:
        out = asdict(self)
        out["residual_survival"] = [round(float(v), 6) for v in self.residual_survival]
        out["description"] = BASELINE_DESCRIPTION
        return out

    @classmethod
    def from_card(cls, data: dict[str, Any]) -> CustomerHistoryBaseline:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["residual_survival"] = tuple(float(v) for v in data.get("residual_survival", ()))
        return cls(**values)

    # -- scores ---------------------------------------------------------------------------
    def score(self, features: pl.DataFrame) -> np.ndarray:
        """The naive ranking score: mean days late of the customer's closed invoices."""
        return (
            features.get_column("history_mean_days_late").cast(pl.Float64).fill_null(self.fill_days_late).to_numpy()
        )

    def p_late(self, features: pl.DataFrame) -> np.ndarray:
        """P(late) for each feature row (see the module docstring)."""
        if features.height == 0:
            return np.zeros(0)
        determined = features.get_column("days_past_due").to_numpy() > self.grace_days
        if self.calibrated:
            z = self.a * np.clip(self.score(features), -60.0, 240.0) + self.b + self.c * _past_due(features)
            p = 1.0 / (1.0 + np.exp(-z))
        else:
            closed = features.get_column("history_invoices_closed").cast(pl.Float64).fill_null(0.0).to_numpy()
            share = features.get_column("history_share_late").cast(pl.Float64).fill_null(self.fill_share_late).to_numpy()
            p = (closed * share + 2.0 * self.fill_share_late) / (closed + 2.0)
        p = np.clip(p, 1e-4, 1 - 1e-4)
        if self.recent_shift:
            p = shifted(p, self.recent_shift)
        return np.where(determined, 1.0, p)

    def calibration_text(self) -> str:
        """How P(late) is calibrated, in plain words."""
        if self.calibrated:
            text = (f"P(late) is a logistic map of the customer's mean days late, fitted on {self.calibration_rows:,} "
                    "invoices with a known outcome")
        else:
            text = "P(late) is the customer's share of late invoices, smoothed towards the book's"
        if self.recent_note:
            return f"{text}; {self.recent_note}"
        return f"{text} (not recalibrated on recent outcomes)."

    def shift(self, features: pl.DataFrame) -> np.ndarray:
        """The customer's expected days late, shrunk towards the book's mean."""
        n = features.get_column("history_invoices_closed").cast(pl.Float64).fill_null(0.0).to_numpy()
        mean = features.get_column("history_mean_days_late").cast(pl.Float64).fill_null(self.fill_days_late).to_numpy()
        return (n * mean + self.shrink_invoices * self.fill_days_late) / (n + self.shrink_invoices)

    def _residual_above(self, x: np.ndarray) -> np.ndarray:
        """P(residual > x) on the grid (x rounded down to whole days; beyond the grid: 1 or the last value)."""
        curve = np.asarray(self.residual_survival, dtype=np.float64)
        if curve.size == 0:
            return np.ones_like(x, dtype=np.float64)
        index = np.floor(x).astype(np.int64) - RESIDUAL_MIN
        inside = np.clip(index, 0, curve.size - 1)
        return np.where(index < 0, 1.0, curve[inside])

    def hazards(self, features: pl.DataFrame) -> np.ndarray:
        """Weekly hazards of being paid, shape (rows, weeks), given still open on the as-of date."""
        n = features.height
        if n == 0:
            return np.zeros((0, self.weeks))
        days_after_due = -features.get_column("days_to_due").cast(pl.Float64).to_numpy()  # on the as-of date
        start = days_after_due - self.shift(features)
        ends = start[:, None] + 7.0 * np.arange(self.weeks + 1)[None, :]
        alive = self._residual_above(ends)
        with np.errstate(divide="ignore", invalid="ignore"):
            keep = np.where(alive[:, :-1] > 1e-9, alive[:, 1:] / alive[:, :-1], 1.0 - TAIL_WEEKLY_HAZARD)
        hazards = 1.0 - keep
        # past the last residual the book has seen, a small constant hazard instead of none
        hazards = np.where(alive[:, :-1] <= 1e-9, TAIL_WEEKLY_HAZARD, hazards)
        return np.clip(hazards, 1e-6, 1 - 1e-6)


# ------------------------------------------------------------------------------------------
# fitting
# ------------------------------------------------------------------------------------------
def residual_sample(store: Store, known_by: date, *, shrink_invoices: float = SHRINK_INVOICES) -> tuple[pl.DataFrame, float]:
    """Each invoice issued in the ``HISTORY_DAYS`` before ``known_by``: its delay after due (paid)
    or days seen open after due (not paid by ``known_by``: censored), and the customer's shrunk
    mean days late as known on the invoice date. Returns the frame and the book's mean days late.

    Columns: residual (delay − customer shift, whole days), is_paid.
    """
    sql = """
    WITH docs AS (
        SELECT document_id, customer_id, invoice_date, due_date,
               CASE WHEN paid_date <= $known_by THEN paid_date END AS paid_date
        FROM ledger_documents
        WHERE doc_type = 'invoice' AND amount > 0 AND invoice_date <= $known_by
    ),
    closed_days AS (  -- per customer and closing day: invoices closed and their days late
        SELECT customer_id, paid_date, count(*) AS n, sum(paid_date - due_date)::DOUBLE AS late
        FROM docs WHERE paid_date IS NOT NULL GROUP BY ALL
    ),
    running AS (
        SELECT customer_id, paid_date,
               sum(n) OVER w AS cum_n, sum(late) OVER w AS cum_late
        FROM closed_days
        WINDOW w AS (PARTITION BY customer_id ORDER BY paid_date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ),
    book AS (SELECT coalesce(avg(paid_date - due_date), 0)::DOUBLE AS mean_late FROM docs WHERE paid_date IS NOT NULL),
    recent AS (SELECT * FROM docs WHERE invoice_date > $known_by - $history_days)
    SELECT (coalesce(d.paid_date, $known_by) - d.due_date)::DOUBLE AS delay,
           d.paid_date IS NOT NULL AS is_paid,
           coalesce(r.cum_n, 0)::DOUBLE AS n_closed,
           r.cum_late / nullif(r.cum_n, 0) AS mean_late,
           (SELECT mean_late FROM book) AS book_mean
    FROM recent d ASOF LEFT JOIN running r
      ON r.customer_id = d.customer_id AND d.invoice_date >= r.paid_date
    """
    frame = store.query(sql, {"known_by": known_by, "history_days": HISTORY_DAYS})
    if frame.is_empty():
        return pl.DataFrame(schema={"residual": pl.Int64, "is_paid": pl.Boolean}), 0.0
    book_mean = float(frame["book_mean"][0] or 0.0)
    shift = (pl.col("n_closed") * pl.col("mean_late").fill_null(book_mean) + shrink_invoices * book_mean) / (
        pl.col("n_closed") + shrink_invoices
    )
    out = frame.select(residual=(pl.col("delay") - shift).floor().cast(pl.Int64), is_paid=pl.col("is_paid"))
    return out, book_mean


def residual_curve(sample: pl.DataFrame) -> tuple[float, ...]:
    """Kaplan–Meier P(residual > r) on the grid, unpaid invoices censored where they were last seen."""
    if sample.is_empty():
        return ()
    width = RESIDUAL_MAX - RESIDUAL_MIN + 1
    residual = sample["residual"].to_numpy()
    paid = sample["is_paid"].to_numpy() & (residual <= RESIDUAL_MAX)
    column = np.clip(residual, RESIDUAL_MIN, RESIDUAL_MAX) - RESIDUAL_MIN
    events = np.bincount(column[paid], minlength=width).astype(float)
    leaving = np.bincount(column, minlength=width).astype(float)
    at_risk = np.cumsum(leaving[::-1])[::-1]
    # a few pseudo-invoices at the tail's daily hazard: where few invoices are left at risk the
    # curve neither drops to zero on the last one paid nor stays flat after the last one seen
    tail = 1.0 - (1.0 - TAIL_WEEKLY_HAZARD) ** (1 / 7)
    hazard = (events + TAIL_PSEUDO_INVOICES * tail) / (at_risk + TAIL_PSEUDO_INVOICES)
    return tuple(float(v) for v in np.cumprod(1.0 - hazard))


def _past_due(features: pl.DataFrame) -> np.ndarray:
    """1.0 for rows already past due (within grace for the rows P(late) is asked of), else 0.0."""
    return (features.get_column("days_past_due").to_numpy() > 0).astype(np.float64)


def fit_p_late_map(score: np.ndarray, late: np.ndarray, past_due: np.ndarray | None = None) -> tuple[float, float, float] | None:
    """Logistic map of the score (and of being past due) to P(late), increasing in the score
    (a >= 0); (a, b, c), or None when it cannot be fitted."""
    if len(late) < MIN_CALIBRATION_ROWS or len(np.unique(late)) < 2:
        return None
    from sklearn.linear_model import LogisticRegression

    past_due = np.zeros(len(late)) if past_due is None else np.asarray(past_due, dtype=np.float64)
    x = np.column_stack([np.clip(score, -60.0, 240.0), past_due])
    fit = LogisticRegression(C=1e4).fit(x, late.astype(int))
    a, c, b = float(fit.coef_[0][0]), float(fit.coef_[0][1]), float(fit.intercept_[0])
    if a < 0:  # a later record must never mean a lower risk: the share late (by due status) alone
        fit = LogisticRegression(C=1e4).fit(past_due.reshape(-1, 1), late.astype(int))
        return 0.0, float(fit.intercept_[0]), float(fit.coef_[0][0])
    return a, b, c


def fit_baseline_on(
    labelled: pl.DataFrame,
    *,
    store: Store,
    known_by: date,
    grace_days: int,
    weeks: int,
    note: str = "",
) -> CustomerHistoryBaseline:
    """Fit the baseline on labelled snapshot rows (features + ``late``) and the store's history
    up to ``known_by`` (the spread of pay dates around each customer's mean)."""
    sample, book_mean = residual_sample(store, known_by)
    rows = labelled.filter(pl.col("late").is_not_null() & (pl.col("days_past_due") <= grace_days))
    history = labelled.filter(pl.col("history_invoices_closed") > 0)
    fill_share = (
        float(history["history_share_late"].mean()) if history.height else float(rows["late"].mean()) if rows.height else 0.5
    )
    baseline = CustomerHistoryBaseline(
        grace_days=grace_days, fill_days_late=book_mean, fill_share_late=fill_share if fill_share == fill_share else 0.5,
        residual_survival=residual_curve(sample), residual_invoices=int(sample.height), weeks=weeks,
    )
    fitted = fit_p_late_map(baseline.score(rows), rows["late"].to_numpy(), _past_due(rows)) if rows.height else None
    reasons = [note] if note else []
    if fitted is None:
        classes = rows["late"].n_unique() if rows.height else 0
        if rows.height == 0:
            reasons.append("no invoice has a known on-time or late outcome yet, so P(late) is the book's share late")
        elif classes < 2:
            kind = "late" if rows["late"].max() == 1 else "on time"
            reasons.append(
                f"every one of the {rows.height} invoices with a known outcome was {kind}, so P(late) cannot be "
                "calibrated: it is each customer's share of late invoices, smoothed towards the book's"
            )
        else:
            reasons.append(
                f"only {rows.height} invoices with a known outcome (at least {MIN_CALIBRATION_ROWS} are needed to "
                "calibrate P(late)): it is each customer's share of late invoices, smoothed towards the book's"
            )
        return _replace(baseline, calibrated=False, calibration_rows=int(rows.height), note="; ".join(reasons))
    return _replace(baseline, a=fitted[0], b=fitted[1], c=fitted[2], calibrated=True, calibration_rows=int(rows.height),
                    note="; ".join(reasons))


def _replace(baseline: CustomerHistoryBaseline, **changes: Any) -> CustomerHistoryBaseline:
    from dataclasses import replace

    return replace(baseline, **changes)


def fit_baseline(store: Store, as_of: date, *, spec: FeatureSpec | None = None, weeks: int = 26, note: str = "") -> CustomerHistoryBaseline:
    """The baseline as of ``as_of`` from the store alone (no model): its P(late) map is fitted on
    weekly snapshots of the last months whose outcomes are known by ``as_of``, then its level
    refitted on the outcomes of the last weeks (:mod:`dashboard.recalibration`)."""
    from dashboard.features import attach_labels, build_features, build_outcomes
    from dashboard.recalibration import recent_outcomes, recent_shift

    spec = spec or FeatureSpec()
    first = store.scalar("SELECT min(invoice_date) FROM invoices WHERE coalesce(doc_type, 'invoice') = 'invoice'")
    labelled = pl.DataFrame()
    if first is not None:
        # snapshots whose invoices' due date + grace has passed by as_of for most terms
        last = as_of - timedelta(days=max(spec.grace_days + 35, 40))
        dates = [last - timedelta(days=14 * k) for k in range(12) if last - timedelta(days=14 * k) > first]
        if dates:
            features = build_features(store, dates, spec=spec)
            if features.height:
                labelled = attach_labels(features, build_outcomes(store, known_by=as_of), known_by=as_of,
                                         grace_days=spec.grace_days)
    if labelled.is_empty():
        labelled = pl.DataFrame(schema={"late": pl.Int8, "days_past_due": pl.Int32, "history_invoices_closed": pl.Int32,
                                        "history_share_late": pl.Float64, "history_mean_days_late": pl.Float64})
    baseline = fit_baseline_on(labelled, store=store, known_by=as_of, grace_days=spec.grace_days, weeks=weeks, note=note)
    if first is None:
        return baseline
    recent_rows = recent_outcomes(store, as_of, spec=spec)
    shift = recent_shift(recent_rows, baseline.p_late(recent_rows) if recent_rows.height else np.zeros(0), as_of=as_of,
                         grace_days=spec.grace_days)
    return _replace(baseline, recent_shift=shift.shift, recent_rows=shift.rows, recent_note=shift.describe())
