"""Payment-risk model: LightGBM p_late, a censoring-aware pay-date model, calibration, scoring.

Two LightGBM boosters share the as-of features of :mod:`dashboard.features`:

- ``p_late``: binary, "closed after due date + grace, or still open at due + grace", on every
  invoice open at a snapshot (not yet due and overdue alike), calibrated on a later window
  (isotonic or sigmoid, via ``CalibratedClassifierCV(FrozenEstimator(model))``) with the map
  stored as numbers in the model card.
- pay date: a discrete-time hazard over weekly bins. Each snapshot row contributes one row per
  week it was observed still open ("person-period" data): label 1 in the week it closed, 0 in
  earlier weeks; rows still open when the labels were read (censored) contribute their at-risk
  weeks and no event, so slow payers are not dropped. The survival curve
  ``S(k) = prod(1 - h_j)`` gives ``p_paid_30d`` and the P10/P50/P90 pay dates (constant hazard
  within a week; the last week's hazard continues as a geometric tail past the horizon).

Validation is time-based: train on snapshots before the calibration window, calibrate on the
next months, test on the last months, with labels read only from what was known at the start
of the following window.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from dashboard.dates import latest_data_date, month_end, month_ends
from dashboard.errors import ModelError, TrainingDataError
from dashboard.features import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    FeatureSpec,
    build_features,
    build_outcomes,
    closing_dates_sql,
)
from dashboard.progress import no_progress
from dashboard.schema import PAID_WITHIN_DAYS
from dashboard.store import Store

CARD_VERSION = 1
SCORE_COLUMNS: tuple[str, ...] = (
    "invoice_id",
    "customer_id",
    "open_amount",
    "due_date",
    "p_late",
    "p_paid_30d",
    "pay_date_p10",
    "pay_date_p50",
    "pay_date_p90",
    "reasons",
)
MAX_TAIL_WEEKS = 156  # quantiles past three years are reported as three years


@dataclass(frozen=True)
class TrainingConfig:
    """How to train: data window, split, LightGBM parameters. Stored in the model card.

    ``as_of`` is the data cut (default: the newest date in the store). Snapshots are month
    ends; the last test snapshot is at least ``label_lag_days`` before ``as_of`` so that its
    outcomes are mostly known.
    """

    as_of: date | None = None
    grace_days: int = 5
    history_months: int = 30
    calibration_months: int = 3
    test_months: int = 4
    label_lag_days: int = 75
    warmup_months: int = 3
    # Training also snapshots the 15th of each month while the month ends give fewer than half of
    # max_snapshot_rows (measured +0.0015 AUC on not-yet-due at 55k rows); past that the extra rows
    # would be sampled away and only cost feature time.
    mid_month_snapshots: bool = True
    num_leaves: int = 15
    max_depth: int = 4
    n_estimators: int = 300
    learning_rate: float = 0.05
    min_child_samples: int = 50
    hazard_weeks: int = 26
    hazard_n_estimators: int = 120
    hazard_learning_rate: float = 0.1
    calibration_method: str = "sigmoid"  # measured: ECE 0.030 vs 0.031 (isotonic) on not-yet-due, same AUC
    max_snapshot_rows: int = 400_000
    max_test_rows: int = 60_000  # a random sample this large gives metrics stable to ~0.005 AUC
    random_state: int = 0
    n_jobs: int = 1  # OpenMP threads; 2 threads on a busy 2-core machine ran 10x slower (spin-waits)

    def validate(self) -> None:
        if self.calibration_method not in ("isotonic", "sigmoid"):
            msg = f"Calibration method must be 'isotonic' or 'sigmoid'; got {self.calibration_method!r}."
            raise TrainingDataError(msg)
        for name in (
            "history_months",
            "calibration_months",
            "test_months",
            "num_leaves",
            "n_estimators",
            "hazard_weeks",
        ):
            if getattr(self, name) < 1:
                msg = f"{name.replace('_', ' ')} must be at least 1; got {getattr(self, name)!r}."
                raise TrainingDataError(msg)


# --------------------------------------------------------------------------------------------
# matrices
# --------------------------------------------------------------------------------------------
def category_vocabulary(features: pl.DataFrame) -> dict[str, list[str]]:
    """Sorted distinct values of each categorical feature (stored in the card)."""
    return {
        c: sorted(v for v in features.get_column(c).unique().to_list() if v is not None) for c in CATEGORICAL_FEATURES
    }


def to_matrix(features: pl.DataFrame, categories: dict[str, list[str]]) -> np.ndarray:
    """Feature frame -> float matrix in ``FEATURE_COLUMNS`` order; categories as codes, unknown NaN."""
    exprs = []
    for column in FEATURE_COLUMNS:
        if column in categories:
            mapping = {value: float(i) for i, value in enumerate(categories[column])}
            exprs.append(pl.col(column).replace_strict(mapping, default=None, return_dtype=pl.Float64))
        else:
            exprs.append(pl.col(column).cast(pl.Float64))
    return features.select(exprs).to_numpy().astype(np.float64, copy=False)


def _categorical_indices() -> list[int]:
    return [FEATURE_COLUMNS.index(c) for c in CATEGORICAL_FEATURES]


# --------------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------------
def attach_labels(features: pl.DataFrame, outcomes: pl.DataFrame, *, known_by: date, grace_days: int) -> pl.DataFrame:
    """Add the labels as known at ``known_by``.

    ``late``: 1 when closed after due + grace or still open past it, 0 when closed in time,
    null while undetermined. ``event``: 1 when paid (closed, not by a write-off), else 0
    (censored; a written-off invoice stays "not paid" up to ``known_by``). ``duration_days``:
    days from the snapshot to payment, or to ``known_by`` when censored.
    """
    frame = features.join(outcomes, on="invoice_id", how="left")
    late_line = pl.col("due_date") + pl.duration(days=grace_days)
    paid = pl.col("closed_date").is_not_null() & ~pl.col("written_off").fill_null(False)
    return frame.with_columns(
        late=pl.when(pl.col("closed_date").is_not_null())
        .then((pl.col("closed_date") > late_line).cast(pl.Int8))
        .when(pl.lit(known_by) > late_line)
        .then(pl.lit(1, dtype=pl.Int8))
        .otherwise(None),
        event=paid.cast(pl.Int8),
        duration_days=(
            pl.when(paid).then(pl.col("closed_date")).otherwise(pl.lit(known_by)) - pl.col("as_of")
        ).dt.total_days(),
    )


def expand_person_weeks(
    matrix: np.ndarray, duration_days: np.ndarray, event: np.ndarray, *, weeks: int
) -> tuple[np.ndarray, np.ndarray]:
    """Person-period rows for the weekly hazard: features + week index, label per week.

    A row closed on day ``d`` after the snapshot (d >= 1) has its event in week ``(d-1)//7``
    and is at risk in every week before. A censored row observed ``d`` days is at risk in
    its ``d//7`` fully observed weeks. Weeks past the horizon are not expanded (the last
    week's hazard stands for the tail).
    """
    duration_days = np.maximum(duration_days.astype(np.int64), 0)
    event_week = np.where(event == 1, (np.maximum(duration_days, 1) - 1) // 7, -1)
    observed = np.where(event == 1, event_week + 1, duration_days // 7)
    observed = np.minimum(observed, weeks)
    row = np.repeat(np.arange(len(observed)), observed)
    starts = np.cumsum(observed) - observed
    week = np.arange(len(row)) - np.repeat(starts, observed)
    y = (week == event_week[row]).astype(np.float64)
    x = np.column_stack([matrix[row], week.astype(np.float64)])
    return x, y


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------
def expected_calibration_error(y: np.ndarray, p: np.ndarray, *, bins: int = 10) -> float:
    """ECE over equal-width probability bins, weighted by bin size."""
    if len(y) == 0:
        return float("nan")
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() * abs(p[mask].mean() - y[mask].mean())
    return float(total / len(y))


def calibration_curve_data(y: np.ndarray, p: np.ndarray, *, bins: int = 10) -> list[dict[str, float]]:
    """Per bin: mean predicted, observed share, count (for the calibration plot)."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            out.append(
                {"predicted": float(p[mask].mean()), "observed": float(y[mask].mean()), "count": int(mask.sum())}
            )
    return out


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """AUC, PR-AUC, Brier, ECE and the calibration curve for one set of probabilities."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    if len(y) == 0 or len(np.unique(y)) < 2:
        return {"rows": int(len(y)), "auc": None, "pr_auc": None, "brier": None, "ece": None, "curve": []}
    return {
        "rows": int(len(y)),
        "share_late": float(y.mean()),
        "auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "curve": calibration_curve_data(y, p),
    }


# --------------------------------------------------------------------------------------------
# the trained model
# --------------------------------------------------------------------------------------------
@dataclass
class RiskModel:
    """A trained payment-risk model: two boosters and the card that describes them."""

    late_booster: lgb.Booster
    hazard_booster: lgb.Booster
    card: dict[str, Any]
    model_id: str = ""
    path: str | None = None
    notice: str | None = None  # set by the registry when it fell back to another model

    @property
    def threads(self) -> int:
        return int(self.card.get("lightgbm", {}).get("n_jobs", 1))

    @property
    def categories(self) -> dict[str, list[str]]:
        return self.card["categories"]

    @property
    def grace_days(self) -> int:
        return int(self.card["feature_spec"]["grace_days"])

    @property
    def feature_spec(self) -> FeatureSpec:
        return FeatureSpec(**self.card["feature_spec"])

    def matrix(self, features: pl.DataFrame) -> np.ndarray:
        return to_matrix(features, self.categories)

    def raw_late_score(self, matrix: np.ndarray) -> np.ndarray:
        return self.late_booster.predict(matrix, raw_score=True, num_threads=self.threads)

    def p_late(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated probability of late payment."""
        return apply_calibration(self.raw_late_score(matrix), self.card["calibration"])

    def hazards(self, matrix: np.ndarray) -> np.ndarray:
        """Weekly hazard of closing, shape (rows, hazard_weeks)."""
        weeks = int(self.card["hazard"]["weeks"])
        n = matrix.shape[0]
        stacked = np.column_stack([np.repeat(matrix, weeks, axis=0), np.tile(np.arange(weeks, dtype=np.float64), n)])
        return np.clip(self.hazard_booster.predict(stacked, num_threads=self.threads).reshape(n, weeks), 1e-6, 1 - 1e-6)

    def predict(self, features: pl.DataFrame) -> pl.DataFrame:
        """``p_late``, ``p_paid_30d`` and the pay-date quantiles for each feature row."""
        matrix = self.matrix(features)
        p_late = self.p_late(matrix) if len(features) else np.zeros(0)
        hazards = self.hazards(matrix) if len(features) else np.zeros((0, 1))
        paid_30 = 1 - survival_at(hazards, float(PAID_WITHIN_DAYS))
        low, high = self.card["hazard"].get("interval_levels", [0.1, 0.9])
        q = {name: quantile_days(hazards, level) for name, level in (("p10", low), ("p50", 0.5), ("p90", high))}
        frame = features.select("as_of", "invoice_id", "customer_id", "open_amount", "due_date").with_columns(
            p_late=pl.Series(p_late, dtype=pl.Float64),
            p_paid_30d=pl.Series(paid_30, dtype=pl.Float64),
            # past the three-year tail cap there is no expected pay date: null, not a made-up date
            **{
                f"_days_{name}": pl.Series(
                    np.where(days >= 7 * MAX_TAIL_WEEKS, np.nan, np.ceil(days)), dtype=pl.Float64
                )
                .fill_nan(None)
                .cast(pl.Int64)
                for name, days in q.items()
            },
        )
        return frame.with_columns(
            (pl.col("as_of") + pl.duration(days=pl.col(f"_days_{name}"))).alias(f"pay_date_{name}") for name in q
        ).drop([f"_days_{name}" for name in q])


def apply_calibration(raw: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
    """Map raw LightGBM scores to calibrated probabilities with the card's stored map."""
    method = calibration["method"]
    if method == "isotonic":
        return np.interp(raw, np.asarray(calibration["x"]), np.asarray(calibration["y"]))
    if method == "sigmoid":
        return 1.0 / (1.0 + np.exp(calibration["a"] * raw + calibration["b"]))
    if method == "none":
        return 1.0 / (1.0 + np.exp(-raw))
    msg = f"Unknown calibration method {method!r} in the model card."
    raise ModelError(msg)


def survival_at(hazards: np.ndarray, days: float) -> np.ndarray:
    """P(still open ``days`` after the as-of date), constant hazard within each week."""
    weeks = hazards.shape[1]
    full = int(days // 7)
    frac = (days - 7 * full) / 7
    log_keep = np.log1p(-hazards)
    if full >= weeks:
        total = log_keep.sum(axis=1) + log_keep[:, -1] * (days / 7 - weeks)
    else:
        total = log_keep[:, :full].sum(axis=1) + log_keep[:, full] * frac
    return np.exp(total)


def survival_at_days(hazards: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Per-row P(still open ``days[i]`` after as-of) (same curve as :func:`survival_at`)."""
    n, weeks = hazards.shape
    log_keep = np.log1p(-hazards)
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(log_keep, axis=1)], axis=1)
    days = np.maximum(np.asarray(days, dtype=np.float64), 0.0)
    full = np.minimum((days // 7).astype(np.int64), weeks)
    rows = np.arange(n)
    inside = cum[rows, full] + log_keep[rows, np.minimum(full, weeks - 1)] * (days / 7 - full)
    return np.exp(np.where(full < weeks, inside, cum[:, -1] + log_keep[:, -1] * (days / 7 - weeks)))


def interval_outcomes(
    low_days: np.ndarray,
    high_days: np.ndarray,
    duration_days: np.ndarray,
    event: np.ndarray,
    hazards: np.ndarray | None = None,
) -> tuple[float, int]:
    """(covered, counted) rows for an interval in days after as-of.

    A paid row counts as covered when paid inside. A row still open past the interval's end
    is a miss. A row still open inside the interval is undetermined: without ``hazards`` it
    is left out; with them it counts with its model-implied chance of being paid inside,
    given it was still open when last seen (so slow payers are not dropped).
    """
    low = np.ceil(low_days)
    high = np.ceil(high_days)
    closed = event == 1
    covered = (closed & (duration_days >= low) & (duration_days <= high)).astype(np.float64)
    missed_open = ~closed & (duration_days > high)
    counted = closed | missed_open
    if hazards is not None:
        pending = ~closed & (duration_days <= high)
        if pending.any():
            seen = survival_at_days(hazards[pending], duration_days[pending])
            start = survival_at_days(hazards[pending], np.maximum(duration_days[pending], low[pending]))
            end = survival_at_days(hazards[pending], high[pending])
            covered[pending] = np.clip((start - end) / np.maximum(seen, 1e-12), 0, 1)
            counted = counted | pending
    return float(covered[counted].sum()), int(counted.sum())


def choose_interval_levels(
    hazards: np.ndarray, duration_days: np.ndarray, event: np.ndarray, *, target: float = 0.8
) -> tuple[list[float], float | None]:
    """Symmetric quantile levels (a, 1-a) whose interval covers ``target`` of the outcomes."""
    best: tuple[float, float | None] = (0.1, None)
    best_gap = float("inf")
    for a in np.round(np.arange(0.02, 0.26, 0.01), 2):
        covered, determined = interval_outcomes(
            quantile_days(hazards, float(a)), quantile_days(hazards, float(1 - a)), duration_days, event, hazards
        )
        if not determined:
            continue
        coverage = covered / determined
        if abs(coverage - target) < best_gap:
            best_gap = abs(coverage - target)
            best = (float(a), coverage)
    return [best[0], round(1 - best[0], 2)], best[1]


def quantile_days(hazards: np.ndarray, level: float) -> np.ndarray:
    """Days after as-of by which the invoice is paid with probability ``level``."""
    n, weeks = hazards.shape
    log_keep = np.log1p(-hazards)
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(log_keep, axis=1)], axis=1)  # log S at week ends
    target = np.log1p(-level)
    reached = cum[:, 1:] <= target
    has = reached.any(axis=1)
    k = np.where(has, reached.argmax(axis=1), weeks - 1)
    start = cum[np.arange(n), k]
    rate = log_keep[np.arange(n), k]
    within = np.where(has, (target - start) / rate, 0.0)
    days = 7 * (k + np.clip(within, 0, 1))
    tail_weeks = np.where(has, 0.0, (target - cum[:, -1]) / log_keep[:, -1])
    days = np.where(has, days, 7 * (weeks + np.minimum(tail_weeks, MAX_TAIL_WEEKS - weeks)))
    return np.maximum(days, 1.0)


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
@dataclass
class TrainingWindows:
    """The snapshot dates of each split and the day their labels are read."""

    train: list[date]
    calibration: list[date]
    test: list[date]
    data_end: date

    def to_dict(self) -> dict[str, Any]:
        return {
            "train": [self.train[0].isoformat(), self.train[-1].isoformat(), len(self.train)],
            "calibration": [self.calibration[0].isoformat(), self.calibration[-1].isoformat(), len(self.calibration)],
            "test": [self.test[0].isoformat(), self.test[-1].isoformat(), len(self.test)],
            "data_end": self.data_end.isoformat(),
        }


def _open_invoice_snapshots(store: Store, dates: list[date]) -> int:
    """How many (date, open invoice) rows snapshots at ``dates`` give (counted, not built)."""
    return int(
        store.scalar(
            f"""
            WITH closing AS ({closing_dates_sql()})
            SELECT count(*) FROM invoices i
            LEFT JOIN closing c USING (invoice_id)
            JOIN (SELECT unnest(?::DATE[]) AS d) s
              ON i.invoice_date <= s.d AND (c.closed_date IS NULL OR c.closed_date > s.d)
            WHERE coalesce(i.doc_type, 'invoice') = 'invoice' AND i.amount > 0
            """,
            [dates],
        )
        or 0
    )


def plan_windows(store: Store, config: TrainingConfig) -> TrainingWindows:
    """Month-end snapshots for train / calibration / test, oldest first (train also on the 15th
    of each month when ``config.mid_month_snapshots`` and the month ends give few rows)."""
    data_end = config.as_of or latest_data_date(store)
    first = store.scalar("SELECT min(invoice_date) FROM invoices")
    if data_end is None or first is None:
        msg = "There are no invoices in the store to train on; load data first."
        raise TrainingDataError(msg)
    last_test = data_end - timedelta(days=config.label_lag_days)
    if month_end(last_test) > last_test:
        last_test = month_end(last_test.replace(day=1) - timedelta(days=1))
    earliest = month_end(first)
    for _ in range(config.warmup_months):
        earliest = month_end(earliest + timedelta(days=1))
    snapshots = [d for d in month_ends(last_test, config.history_months) if d >= earliest]
    needed = config.test_months + config.calibration_months + 3
    if len(snapshots) < needed:
        msg = (
            f"Not enough history to train and test a model: the data runs from {first} to {data_end}, "
            f"which gives {len(snapshots)} usable month-end snapshots; at least {needed} are needed "
            f"(about {needed + config.warmup_months + 3} months of invoices)."
        )
        raise TrainingDataError(msg)
    test = snapshots[-config.test_months :]
    calibration = snapshots[-config.test_months - config.calibration_months : -config.test_months]
    train = snapshots[: -config.test_months - config.calibration_months]
    if config.mid_month_snapshots and _open_invoice_snapshots(store, train) * 2 <= config.max_snapshot_rows:
        # more (and differently placed) as-of dates for training only; calibration and test
        # stay at month ends, which is where the app scores
        train = sorted(train + [d.replace(day=15) for d in train])
    return TrainingWindows(train=train, calibration=calibration, test=test, data_end=data_end)


def data_fingerprint(store: Store, *, as_of: date) -> str:
    """A cheap hash of the data a model saw (row counts, sums and date ranges up to ``as_of``)."""
    row = store.query(
        """
        SELECT
          (SELECT count(*) FROM invoices WHERE invoice_date <= ?) AS invoices,
          (SELECT coalesce(sum(amount), 0)::DOUBLE FROM invoices WHERE invoice_date <= ?) AS invoiced,
          (SELECT count(*) FROM payments WHERE payment_date <= ?) AS payments,
          (SELECT coalesce(sum(amount), 0)::DOUBLE FROM payments WHERE payment_date <= ?) AS paid,
          (SELECT count(*) FROM disputes WHERE opened_date <= ?) AS disputes,
          (SELECT count(*) FROM contacts WHERE ts::DATE <= ?) AS contacts,
          (SELECT count(*) FROM notes WHERE ts::DATE <= ?) AS notes
        """,
        [as_of] * 7,
    ).to_dicts()[0]
    return hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _lgb_params(config: TrainingConfig, *, n_estimators: int) -> dict[str, Any]:
    return {
        "objective": "binary",
        "n_estimators": n_estimators,
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "max_depth": config.max_depth,
        "min_child_samples": config.min_child_samples,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "random_state": config.random_state,
        "n_jobs": config.n_jobs,
        "verbose": -1,
    }


@dataclass
class TrainingResult:
    """What :func:`train_model` returns: the model, its test predictions, and the timings."""

    model: RiskModel
    test_predictions: pl.DataFrame
    timings: dict[str, float] = field(default_factory=dict)


def train_model(
    store: Store,
    config: TrainingConfig | None = None,
    *,
    progress: Any = None,
) -> TrainingResult:
    """Train, calibrate and test a payment-risk model on the store's history.

    Parameters
    ----------
    store
        The receivables store.
    config
        Window, split and LightGBM parameters.
    progress
        Optional ``callable(fraction: float, message: str)`` (the Risk page's progress bar).

    Returns
    -------
    TrainingResult
        The :class:`RiskModel` (its card holds the test metrics next to the naive baseline)
        and the test-window predictions.
    """
    import time

    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    config = config or TrainingConfig()
    config.validate()
    say = progress or no_progress
    timings: dict[str, float] = {}
    started = time.perf_counter()

    windows = plan_windows(store, config)
    spec = FeatureSpec(grace_days=config.grace_days)
    say(0.05, "Building as-of features for every snapshot")
    features = build_features(store, windows.train + windows.calibration + windows.test, spec=spec)
    timings["features_s"] = time.perf_counter() - started

    def labelled(dates: list[date], known_by: date) -> pl.DataFrame:
        part = features.filter(pl.col("as_of").is_in(dates))
        return attach_labels(
            part, build_outcomes(store, known_by=known_by), known_by=known_by, grace_days=config.grace_days
        )

    train = labelled(windows.train, windows.calibration[0])
    calibration = labelled(windows.calibration, windows.test[0])
    test = labelled(windows.test, windows.data_end)
    if train.height > config.max_snapshot_rows:
        train = train.sample(config.max_snapshot_rows, seed=config.random_state)
    categories = category_vocabulary(train)

    # p_late -----------------------------------------------------------------------------
    say(0.2, f"Training the late-payment model on {train.height:,} invoice snapshots")
    t0 = time.perf_counter()
    train_late = train.filter(pl.col("late").is_not_null())
    calibration_late = calibration.filter(pl.col("late").is_not_null())
    if train_late.height < 200 or train_late.get_column("late").n_unique() < 2:
        msg = (
            f"Only {train_late.height} invoice snapshots with a known outcome before "
            f"{windows.calibration[0]}; a model needs a few hundred, with both on-time and late payments."
        )
        raise TrainingDataError(msg)
    x_train = to_matrix(train_late, categories)
    y_train = train_late.get_column("late").to_numpy()
    classifier = lgb.LGBMClassifier(**_lgb_params(config, n_estimators=config.n_estimators))
    x_cal = to_matrix(calibration_late, categories)
    y_cal = calibration_late.get_column("late").to_numpy()
    classifier.fit(
        x_train,
        y_train,
        categorical_feature=_categorical_indices(),
        eval_X=(x_cal,),
        eval_y=(y_cal,),
        callbacks=[lgb.early_stopping(50, verbose=False)],
    )
    timings["late_fit_s"] = time.perf_counter() - t0

    say(0.45, "Calibrating on the later window")
    calibrated = CalibratedClassifierCV(FrozenEstimator(classifier), method=config.calibration_method)
    calibrated.fit(x_cal, y_cal)
    calibrator = calibrated.calibrated_classifiers_[0].calibrators[0]
    if config.calibration_method == "isotonic":
        calibration_map = {
            "method": "isotonic",
            "x": [float(v) for v in calibrator.X_thresholds_],
            "y": [float(v) for v in calibrator.y_thresholds_],
        }
    else:
        calibration_map = {"method": "sigmoid", "a": float(calibrator.a_), "b": float(calibrator.b_)}
    calibration_map["fitted_on_rows"] = int(len(y_cal))

    # hazard -----------------------------------------------------------------------------
    say(0.55, "Training the pay-date (weekly hazard) model, open invoices included as censored")
    t0 = time.perf_counter()
    hazard_weeks = config.hazard_weeks

    def fit_hazard(rows: pl.DataFrame) -> lgb.LGBMClassifier:
        x_h, y_h = expand_person_weeks(
            to_matrix(rows, categories),
            rows.get_column("duration_days").to_numpy(),
            rows.get_column("event").to_numpy(),
            weeks=hazard_weeks,
        )
        timings["hazard_rows"] = float(len(y_h))
        params = _lgb_params(config, n_estimators=config.hazard_n_estimators)
        params["learning_rate"] = config.hazard_learning_rate
        fitted = lgb.LGBMClassifier(**params)
        return fitted.fit(x_h, y_h, categorical_feature=_categorical_indices())

    # Interval levels are chosen out of sample: a hazard model fitted on the training window
    # alone predicts the calibration window (outcomes as known at the start of the test
    # window); the final hazard model then learns from both windows.
    held_out = fit_hazard(train)
    level_rows = calibration.sample(min(calibration.height, 30_000), seed=config.random_state)
    x_cal_h = to_matrix(level_rows, categories)
    stacked = np.column_stack(
        [np.repeat(x_cal_h, hazard_weeks, axis=0), np.tile(np.arange(hazard_weeks, dtype=np.float64), len(x_cal_h))]
    )
    cal_hazards = np.clip(held_out.booster_.predict(stacked).reshape(len(x_cal_h), hazard_weeks), 1e-6, 1 - 1e-6)
    interval_levels, interval_coverage_cal = choose_interval_levels(
        cal_hazards,
        level_rows.get_column("duration_days").to_numpy(),
        level_rows.get_column("event").to_numpy(),
        target=0.8,
    )
    say(0.65, "Refitting the pay-date model on the training and calibration windows")
    hazard_model = fit_hazard(pl.concat([train, calibration]))
    timings["hazard_fit_s"] = time.perf_counter() - t0

    model = RiskModel(
        late_booster=classifier.booster_,
        hazard_booster=hazard_model.booster_,
        card={
            "card_version": CARD_VERSION,
            "features": list(FEATURE_COLUMNS),
            "categorical_features": list(CATEGORICAL_FEATURES),
            "categories": categories,
            "feature_spec": asdict(spec),
            "calibration": calibration_map,
            "hazard": {
                "weeks": config.hazard_weeks,
                "interval_levels": interval_levels,
                "interval_coverage_on_calibration": interval_coverage_cal,
                "interval_note": (
                    "pay_date_p10 / pay_date_p90 are the survival-curve quantiles at interval_levels, "
                    "chosen on the calibration window (with a hazard model that had not seen it) so "
                    "that 80% of outcomes fall inside; pay_date_p50 is the median."
                ),
                "formulation": (
                    "Discrete-time hazard over weekly bins (LightGBM binary on person-week rows: "
                    "features + week index). Every invoice open at a snapshot contributes the weeks "
                    "it was seen open; invoices still open when labels were read are right-censored "
                    "(at-risk weeks, no event), never dropped. S(t) = prod(1 - h_week); constant "
                    "hazard within a week; the last week's hazard continues past the horizon."
                ),
                "training_rows": int(timings["hazard_rows"]),
            },
        },
    )

    # test --------------------------------------------------------------------------------
    t0 = time.perf_counter()
    if test.height > config.max_test_rows:
        test = test.sample(config.max_test_rows, seed=config.random_state)
    say(0.75, f"Testing on {test.height:,} later snapshots next to the naive baseline")
    predictions = model.predict(test)
    test_predictions = test.select(
        "as_of",
        "invoice_id",
        "customer_id",
        "due_date",
        "days_to_due",
        "history_share_late",
        "history_mean_days_late",
        "late",
        "closed_date",
        "event",
        "duration_days",
    ).join(predictions.drop("customer_id", "due_date"), on=["as_of", "invoice_id"], how="left")
    base_rate = float(y_train.mean())
    metrics = evaluate(test_predictions, base_rate=base_rate, data_end=windows.data_end)
    model.card.update(
        {
            "metrics": metrics,
            "windows": windows.to_dict(),
            "parameters": {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(config).items()},
            "lightgbm": {k: v for k, v in _lgb_params(config, n_estimators=config.n_estimators).items()},
            "data_fingerprint": data_fingerprint(store, as_of=windows.data_end),
            "training_rows": {
                "late": int(train_late.height),
                "calibration": int(calibration_late.height),
                "test": int(test.height),
            },
            "base_rate_late": base_rate,
        }
    )
    say(0.9, "Explaining: global importance and drift reference")
    from dashboard.explain import global_importance

    sample = test.sample(min(test.height, 3000), seed=config.random_state)
    importance = global_importance(model, sample)
    model.card["importance"] = importance.to_dicts()
    # the reference is the newest population the model was judged on (the test snapshots): early
    # training snapshots have young customer histories, and against them any mature book "drifts"
    model.card["drift_reference"] = drift_reference(model, test.sample(min(test.height, 20000), seed=1))
    timings["evaluate_s"] = time.perf_counter() - t0
    created = datetime.now(UTC).replace(microsecond=0)
    digest = hashlib.sha256(
        (
            model.card["data_fingerprint"] + json.dumps(model.card["parameters"], sort_keys=True) + created.isoformat()
        ).encode()
    ).hexdigest()[:6]
    model.model_id = f"risk-{windows.data_end:%Y%m%d}-{digest}"
    model.card["model_id"] = model.model_id
    model.card["created"] = created.isoformat()
    timings["total_s"] = time.perf_counter() - started
    model.card["training_seconds"] = round(timings["total_s"], 1)
    say(1.0, f"Trained {model.model_id}")
    return TrainingResult(model=model, test_predictions=test_predictions, timings=timings)


def evaluate(predictions: pl.DataFrame, *, base_rate: float, data_end: date) -> dict[str, Any]:
    """Test-window metrics for the model and the naive baseline, overall and by due status.

    Baseline ``p_late`` = the customer's historical share of late invoices (the training base
    rate when it has none); baseline P50 date = due date + the customer's mean days late.
    """
    known = predictions.filter(pl.col("late").is_not_null())
    out: dict[str, Any] = {"data_end": data_end.isoformat()}
    for name, subset in (
        ("all", known),
        ("not_yet_due", known.filter(pl.col("days_to_due") >= 0)),
        ("overdue", known.filter(pl.col("days_to_due") < 0)),
    ):
        y = subset.get_column("late").to_numpy().astype(float)
        model_p = subset.get_column("p_late").to_numpy()
        baseline_p = subset.get_column("history_share_late").fill_null(base_rate).to_numpy()
        out[name] = {"model": classification_metrics(y, model_p), "baseline": classification_metrics(y, baseline_p)}

    # pay dates: closed rows give the error; open rows past P90 count as misses
    closed = predictions.filter(pl.col("event") == 1).with_columns(
        baseline_p50=pl.max_horizontal(
            pl.col("due_date")
            + pl.duration(days=pl.col("history_mean_days_late").fill_null(0).round(0).cast(pl.Int64)),
            pl.col("as_of") + pl.duration(days=1),
        )
    )
    never = date(9999, 12, 31)  # a null quantile means "not within three years"
    closed = closed.with_columns(pl.col("pay_date_p10", "pay_date_p50", "pay_date_p90").fill_null(never))
    actual = closed.get_column("closed_date")
    error = (closed.get_column("pay_date_p50") - actual).dt.total_days().abs().clip(upper_bound=3 * 365)
    baseline_error = (closed.get_column("baseline_p50") - actual).dt.total_days().abs()
    inside = (closed.get_column("pay_date_p10") <= actual) & (actual <= closed.get_column("pay_date_p90"))
    still_open = predictions.filter(pl.col("event") == 0)
    open_missed = still_open.filter(pl.col("pay_date_p90").fill_null(never) < pl.lit(data_end))
    determined = closed.height + open_missed.height
    covered = int(inside.sum())
    paid_30 = predictions.filter((pl.col("event") == 1) | (pl.col("duration_days") >= 30))
    y30 = ((paid_30.get_column("event") == 1) & (paid_30.get_column("duration_days") <= 30)).to_numpy().astype(float)
    out["pay_date"] = {
        "closed_rows": int(closed.height),
        "p50_mae_days": float(error.mean()) if closed.height else None,
        "baseline_p50_mae_days": float(baseline_error.mean()) if closed.height else None,
        "p10_p90_coverage": covered / determined if determined else None,
        "coverage_rows": int(determined),
        "p_paid_30d": classification_metrics(y30, paid_30.get_column("p_paid_30d").to_numpy()),
    }
    return out


# --------------------------------------------------------------------------------------------
# drift
# --------------------------------------------------------------------------------------------
DRIFT_FEATURES: tuple[str, ...] = (
    "history_share_late",
    "history_mean_days_late",
    "days_to_due",
    "customer_share_overdue",
    "amount_base",
)
PSI_RETRAIN_THRESHOLD = 0.25


def _bin_edges(values: np.ndarray, bins: int = 10) -> list[float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
    return [float(e) for e in edges]


def _shares(values: np.ndarray, edges: list[float]) -> list[float]:
    finite = values[np.isfinite(values)]
    counts = np.bincount(np.searchsorted(np.asarray(edges), finite, side="right"), minlength=len(edges) + 1)
    missing = values.size - finite.size
    counts = np.append(counts, missing).astype(float)
    return [float(c) for c in counts / max(values.size, 1)]


def drift_reference(model: RiskModel, sample: pl.DataFrame) -> dict[str, Any]:
    """Bin edges and shares of the score and top features on reference rows (for PSI later).

    The score is the raw (uncalibrated) late score: recalibration moves every probability but
    not the population, so the score's PSI must not change when only the map does.
    """
    matrix = model.matrix(sample)
    reference: dict[str, Any] = {}
    columns = {"score": model.raw_late_score(matrix)}
    for name in DRIFT_FEATURES:
        columns[name] = sample.get_column(name).cast(pl.Float64).fill_null(float("nan")).to_numpy()
    for name, values in columns.items():
        edges = _bin_edges(values)
        reference[name] = {"edges": edges, "shares": _shares(values, edges)}
    return reference


def population_stability(expected: list[float], actual: list[float]) -> float:
    """PSI = sum((a - e) * ln(a / e)) with a small floor on empty bins."""
    e = np.maximum(np.asarray(expected), 1e-4)
    a = np.maximum(np.asarray(actual), 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


def drift_report(store: Store, as_of: date, *, model: RiskModel) -> pl.DataFrame:
    """PSI of the score and top features between training and the open invoices at ``as_of``.

    Columns: ``measure, psi, status`` (``stable`` < 0.1 <= ``watch`` < 0.25 <= ``retrain``).
    """
    reference = model.card.get("drift_reference") or {}
    features = build_features(store, as_of, spec=model.feature_spec)
    rows = []
    if features.height and reference:
        matrix = model.matrix(features)
        current = {"score": model.raw_late_score(matrix)}
        for name in DRIFT_FEATURES:
            current[name] = features.get_column(name).cast(pl.Float64).fill_null(float("nan")).to_numpy()
        for name, ref in reference.items():
            if name not in current:
                continue
            psi = population_stability(ref["shares"], _shares(current[name], ref["edges"]))
            status = "stable" if psi < 0.1 else ("watch" if psi < PSI_RETRAIN_THRESHOLD else "retrain")
            rows.append({"measure": name, "psi": psi, "status": status})
    return pl.DataFrame(rows, schema={"measure": pl.String, "psi": pl.Float64, "status": pl.String})


def live_performance(store: Store, as_of: date, *, model: RiskModel) -> dict[str, Any]:
    """How the model did on invoices closed since its training data ended.

    Scores the invoices open at the model's data end, as known then, against what is known at
    ``as_of`` (late / on time), and compares AUC with the card's test AUC.
    """
    start = date.fromisoformat(model.card["windows"]["data_end"])
    if as_of <= start:
        return {"rows": 0, "message": f"No invoices have closed since training ended on {start}."}
    features = build_features(store, start, spec=model.feature_spec)
    labelled = attach_labels(
        features, build_outcomes(store, known_by=as_of), known_by=as_of, grace_days=model.grace_days
    )
    labelled = labelled.filter(pl.col("late").is_not_null())
    if labelled.height == 0:
        return {"rows": 0, "message": f"No invoices open on {start} have a known outcome by {as_of}."}
    p = model.p_late(model.matrix(labelled))
    metrics = classification_metrics(labelled.get_column("late").to_numpy().astype(float), p)
    metrics.pop("curve", None)
    metrics["since"] = start.isoformat()
    metrics["test_auc"] = model.card["metrics"]["all"]["model"]["auc"]
    return metrics


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------
def score_open_invoices(
    store: Store,
    as_of: date,
    *,
    model: RiskModel | None = None,
    with_reasons: bool = True,
    invoice_ids: list[str] | None = None,
) -> pl.DataFrame:
    """Score every invoice open at the end of ``as_of``.

    Parameters
    ----------
    store
        The receivables store.
    as_of
        Score date; features use only what was known by then.
    model
        A :class:`RiskModel`; default the active model of the store's registry.
    with_reasons
        Add 2-3 plain-language reasons per invoice (costs ~0.2 ms per row).
    invoice_ids
        Score only these invoices.

    Returns
    -------
    pl.DataFrame
        ``SCORE_COLUMNS`` plus ``model_id`` and ``as_of``; ``reasons`` is null when not asked.
    """
    if model is None:
        from dashboard.registry import load_active_model

        model = load_active_model(db=store.path)
    features = build_features(store, as_of, spec=model.feature_spec, invoice_ids=invoice_ids)
    scored = model.predict(features)
    if with_reasons and features.height:
        from dashboard.explain import reasons_for

        reasons = reasons_for(model, features)
        scored = scored.with_columns(reasons=reasons.get_column("reasons"))
    else:
        scored = scored.with_columns(reasons=pl.lit(None, dtype=pl.String))
    return scored.select(list(SCORE_COLUMNS)).with_columns(
        model_id=pl.lit(model.model_id), as_of=pl.lit(as_of, dtype=pl.Date)
    )


def save_scores(store: Store, scores: pl.DataFrame) -> int:
    """Write scores to the ``scores`` table, replacing any earlier run of the same model and date."""
    if scores.height == 0:
        return 0
    frame = scores.select(
        "model_id",
        "as_of",
        "invoice_id",
        "p_late",
        "p_paid_30d",
        "pay_date_p10",
        "pay_date_p50",
        "pay_date_p90",
        "reasons",
    )
    pairs = frame.select("model_id", "as_of").unique().rows()
    with store.transaction() as cur:
        for model_id, as_of in pairs:
            cur.execute(
                "DELETE FROM scores WHERE model_id = ? AND as_of = ? AND invoice_id IN (SELECT invoice_id FROM frame)",
                [model_id, as_of],
            ).fetchall()
        cur.execute("INSERT INTO scores BY NAME SELECT * FROM frame").fetchall()
    return frame.height


def with_config(config: TrainingConfig, **changes: Any) -> TrainingConfig:
    """A copy of ``config`` with ``changes`` (the page's parameter widgets)."""
    return replace(config, **changes)


def metrics_table(card: dict[str, Any]) -> pl.DataFrame:
    """The card's test metrics as rows (subset x who) for display: model next to baseline."""
    rows = []
    for part, label in (("not_yet_due", "not yet due"), ("overdue", "overdue"), ("all", "all open")):
        for who in ("model", "baseline"):
            m = card["metrics"][part][who]
            rows.append(
                {
                    "invoices": label,
                    "scored by": who,
                    "test rows": m.get("rows"),
                    "share late": m.get("share_late"),
                    "AUC": m.get("auc"),
                    "PR-AUC": m.get("pr_auc"),
                    "Brier": m.get("brier"),
                    "ECE": m.get("ece"),
                }
            )
    return pl.DataFrame(rows)


def pay_date_summary(card: dict[str, Any]) -> dict[str, Any]:
    """Headline pay-date figures of a card (P50 error next to baseline, interval coverage)."""
    pay = card["metrics"]["pay_date"]
    return {
        "P50 error (days)": pay.get("p50_mae_days"),
        "baseline P50 error (days)": pay.get("baseline_p50_mae_days"),
        "P10-P90 coverage": pay.get("p10_p90_coverage"),
        "paid-in-30-days ECE": pay.get("p_paid_30d", {}).get("ece"),
    }


def recalibrate(store: Store, model: RiskModel, *, as_of: date, months: int = 3, label_lag_days: int = 75) -> RiskModel:
    """A copy of ``model`` whose sigmoid calibration is refitted on recent outcomes.

    After a new load, the trees stay; only the probability map is refitted (Platt scaling on
    the raw scores) on the last ``months`` month-end snapshots at least ``label_lag_days``
    before ``as_of``, with outcomes as known at ``as_of``. The new model gets its own id and
    card (``recalibrated_from``); the test metrics in the card remain those of the original.
    """
    from sklearn.linear_model import LogisticRegression

    last = as_of - timedelta(days=label_lag_days)
    if month_end(last) > last:
        last = month_end(last.replace(day=1) - timedelta(days=1))
    dates = month_ends(last, months)
    features = build_features(store, dates, spec=model.feature_spec)
    labelled = attach_labels(
        features, build_outcomes(store, known_by=as_of), known_by=as_of, grace_days=model.grace_days
    )
    labelled = labelled.filter(pl.col("late").is_not_null())
    y = labelled.get_column("late").to_numpy()
    if labelled.height < 200 or len(np.unique(y)) < 2:
        msg = (
            f"Only {labelled.height} recent invoices with a known outcome between {dates[0]} and {dates[-1]}; "
            "recalibration needs a few hundred with both on-time and late payments."
        )
        raise TrainingDataError(msg)
    raw = model.raw_late_score(model.matrix(labelled)).reshape(-1, 1)
    fit = LogisticRegression(C=1e6).fit(raw, y)
    calibration = {
        "method": "sigmoid",
        "a": float(-fit.coef_[0][0]),
        "b": float(-fit.intercept_[0]),
        "fitted_on_rows": int(labelled.height),
    }
    card = json.loads(json.dumps(model.card, default=str))
    card["calibration"] = calibration
    card["recalibrated_from"] = model.model_id
    card["recalibration_window"] = [dates[0].isoformat(), dates[-1].isoformat(), as_of.isoformat()]
    created = datetime.now(UTC).replace(microsecond=0)
    card["created"] = created.isoformat()
    from sklearn.metrics import log_loss

    new = RiskModel(late_booster=model.late_booster, hazard_booster=model.hazard_booster, card=card)
    matrix = model.matrix(labelled)
    card["recalibration_fit"] = {
        "rows": int(labelled.height),
        "log_loss_before": float(log_loss(y, np.clip(model.p_late(matrix), 1e-9, 1 - 1e-9), labels=[0, 1])),
        "log_loss_after": float(log_loss(y, np.clip(new.p_late(matrix), 1e-9, 1 - 1e-9), labels=[0, 1])),
        "ece_before": expected_calibration_error(y.astype(float), model.p_late(matrix)),
        "ece_after": expected_calibration_error(y.astype(float), new.p_late(matrix)),
    }
    new.model_id = f"{model.model_id.split('-recal')[0]}-recal{as_of:%Y%m%d}"
    card["model_id"] = new.model_id
    return new
