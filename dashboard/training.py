"""Training the payment-risk model, and judging it against the customer-history baseline.

:func:`train_model` plans time-ordered snapshot windows (:func:`plan_windows`), builds as-of
features once, and fits:

- ``p_late`` (LightGBM, binary) on the snapshots whose outcome is still open — an invoice
  already more than ``grace_days`` past due is late whatever happens, and is scored 1 —
  calibrated (sigmoid or isotonic) on a later window;
- the pay-date hazard (discrete time, weekly bins, open invoices censored);
- the customer-history baseline (:mod:`dashboard.baseline`) on the same windows.

Both are scored on the last, held-out window through the one scoring path
(:func:`dashboard.scoring.score_features`). The model is put in use only when its AUC on the
held-out invoices not yet due beats the baseline's by ``baseline_margin`` even at the lower end
of a customer bootstrap (the 16th percentile of the gain); otherwise the card says the baseline
scores, and why. The card also says how thin the evidence is.

Windows: month ends when the history gives at least ``test + calibration + 3`` of them after the
warm-up; otherwise (from about six months of invoices) weekly snapshots with a shorter held-out
period. Below that, training refuses with the reason, and the baseline serves.

Labels are read at the start of the next window, and only for invoices whose due date +
grace has passed by then (whether they were paid or not), so the label a row gets never depends
on how soon it was paid.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from dashboard.baseline import CustomerHistoryBaseline, fit_baseline_on
from dashboard.dates import latest_data_date, month_end, month_ends
from dashboard.errors import TrainingDataError
from dashboard.features import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    FeatureSpec,
    attach_labels,
    build_features,
    build_outcomes,
    closing_dates_sql,
)
from dashboard.progress import no_progress
from dashboard.recalibration import RECALIBRATION_TEXT
from dashboard.risk import (
    CARD_VERSION,
    RiskModel,
    category_vocabulary,
    classification_metrics,
    drift_reference,
    to_matrix,
    weekly_hazards,
)
from dashboard.scoring import (
    BaselineScorer,
    ModelScorer,
    quantile_days,
    score_features,
    survival_at_days,
)
from dashboard.store import Store

MIN_TRAINING_ROWS = 200
MIN_WEEKLY_SNAPSHOTS = 8  # the short plan's minimum: 4 to train, 2 to calibrate, 2 to test
SHORT_WARMUP_DAYS = 30
BOOTSTRAP_RESAMPLES = 200
NAIVE_SCORE_FEATURE = "history_mean_days_late"


@dataclass(frozen=True)
class TrainingConfig:
    """How to train: data window, split, LightGBM parameters. Stored in the model card.

    ``as_of`` is the data cut (default: the newest date in the store). The last test snapshot
    is at least ``label_lag_days`` before ``as_of`` so that its outcomes are known (default:
    from the data, the longest usual terms + grace + 10 days, between 30 and 75).
    ``baseline_margin``: the AUC the model must add over the customer-history baseline on the
    held-out invoices not yet due before it is used.
    """

    as_of: date | None = None
    grace_days: int = 5
    history_months: int = 30
    calibration_months: int = 3
    test_months: int = 4
    label_lag_days: int | None = None
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
    baseline_margin: float = 0.01
    random_state: int = 0
    n_jobs: int = 1  # OpenMP threads; 2 threads on a busy 2-core machine ran 10x slower (spin-waits)

    def validate(self) -> None:
        if self.calibration_method not in ("isotonic", "sigmoid"):
            msg = f"Calibration method must be 'isotonic' or 'sigmoid'; got {self.calibration_method!r}."
            raise TrainingDataError(msg)
        for name in ("history_months", "calibration_months", "test_months", "num_leaves", "n_estimators", "hazard_weeks"):
            if getattr(self, name) < 1:
                msg = f"{name.replace('_', ' ')} must be at least 1; got {getattr(self, name)!r}."
                raise TrainingDataError(msg)
        if not 0.0 <= self.baseline_margin < 0.5:
            msg = f"The margin over the baseline is an AUC difference between 0 and 0.5; got {self.baseline_margin!r}."
            raise TrainingDataError(msg)


def expand_person_weeks(
    matrix: np.ndarray, duration_days: np.ndarray, event: np.ndarray, *, weeks: int
) -> tuple[np.ndarray, np.ndarray]:
    """Person-period rows for the weekly hazard: features + week index, label per week.

    A row closed on day ``d`` after the snapshot (d >= 1) has its event in week ``(d-1)//7``
    and is at risk in every week before. A censored row observed ``d`` days is at risk in
    its ``d//7`` fully observed weeks. Weeks past the horizon are not expanded (the last
    week's hazard stands for the tail).
    """
    event_week, observed = _weeks_at_risk(duration_days, event, weeks=weeks)
    row = np.repeat(np.arange(len(observed)), observed)
    starts = np.cumsum(observed) - observed
    week = np.arange(len(row)) - np.repeat(starts, observed)
    y = (week == event_week[row]).astype(np.float64)
    # One allocation, filled in place (a gather then a column_stack copied it twice), in single
    # precision: millions of person-weeks × every feature is the largest array training makes,
    # and on this machine memory a process has not touched yet can cost up to ~8 ms/MB to touch
    # (a first pass over 1.2 GB took 0.1-9.5 s). LightGBM bins float32 input as it is.
    x = np.empty((len(row), matrix.shape[1] + 1), dtype=np.float32)
    rows = np.asarray(matrix, dtype=np.float32, order="C")  # Polars hands over column-major
    np.take(rows, row, axis=0, out=x[:, :-1], mode="clip")  # "clip": unbuffered; rows are in range
    x[:, -1] = week
    return x, y


def person_weeks(duration_days: np.ndarray, event: np.ndarray, *, weeks: int) -> int:
    """How many person-week rows :func:`expand_person_weeks` makes of these rows."""
    return int(_weeks_at_risk(duration_days, event, weeks=weeks)[1].sum())


def _weeks_at_risk(duration_days: np.ndarray, event: np.ndarray, *, weeks: int) -> tuple[np.ndarray, np.ndarray]:
    """(the week of each row's event, -1 if none; the weeks each row is expanded to)."""
    duration_days = np.maximum(duration_days.astype(np.int64), 0)
    event_week = np.where(event == 1, (np.maximum(duration_days, 1) - 1) // 7, -1)
    observed = np.where(event == 1, event_week + 1, duration_days // 7)
    return event_week, np.minimum(observed, weeks)


def _categorical_indices() -> list[int]:
    return [FEATURE_COLUMNS.index(c) for c in CATEGORICAL_FEATURES]


# --------------------------------------------------------------------------------------------
# pay-date intervals
# --------------------------------------------------------------------------------------------
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


def interval_target(customers: int, *, nominal: float = 0.8) -> float:
    """The coverage the interval levels aim for: the nominal 80%, widened when the levels are
    chosen on few customers (rows of one customer move together), up to 90%."""
    return float(min(0.9, nominal + 0.4 / np.sqrt(max(customers, 1))))


# --------------------------------------------------------------------------------------------
# windows
# --------------------------------------------------------------------------------------------
@dataclass
class TrainingWindows:
    """The snapshot dates of each split and the day their labels are read."""

    train: list[date]
    calibration: list[date]
    test: list[date]
    data_end: date
    plan: str = "monthly"  # or "weekly" for a short history
    first_invoice: date | None = None
    label_lag_days: int = 75

    def to_dict(self) -> dict[str, Any]:
        return {
            "train": [self.train[0].isoformat(), self.train[-1].isoformat(), len(self.train)],
            "calibration": [self.calibration[0].isoformat(), self.calibration[-1].isoformat(), len(self.calibration)],
            "test": [self.test[0].isoformat(), self.test[-1].isoformat(), len(self.test)],
            "data_end": self.data_end.isoformat(),
            "plan": self.plan,
            "first_invoice": self.first_invoice.isoformat() if self.first_invoice else None,
            "label_lag_days": self.label_lag_days,
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


def label_lag_from_data(store: Store, data_end: date, *, grace_days: int) -> int:
    """Days a snapshot's outcomes need: the 95th percentile of terms + grace + 10, in [30, 75]."""
    terms = store.scalar(
        """
        SELECT quantile_cont(due_date - invoice_date, 0.95) FROM invoices
        WHERE coalesce(doc_type, 'invoice') = 'invoice' AND amount > 0 AND invoice_date <= ?
        """,
        [data_end],
    )
    return int(np.clip((float(terms) if terms is not None else 30.0) + grace_days + 10, 30, 75))


def plan_windows(store: Store, config: TrainingConfig) -> TrainingWindows:
    """Snapshots for train / calibration / test, oldest first.

    Month ends (train also on the 15th of each month when ``config.mid_month_snapshots`` and
    the month ends give few rows) when the history allows; weekly snapshots otherwise; a
    :class:`TrainingDataError` naming what is missing below about six months of invoices.
    """
    data_end = config.as_of or latest_data_date(store)
    first = store.scalar(
        "SELECT min(invoice_date) FROM invoices WHERE coalesce(doc_type, 'invoice') = 'invoice' AND invoice_date <= ?",
        [data_end],
    ) if data_end is not None else None
    if data_end is None or first is None:
        msg = "There are no invoices in the store to train on; load data first."
        raise TrainingDataError(msg)
    closed = store.scalar(
        "SELECT count(*) FROM ledger_documents WHERE doc_type = 'invoice' AND paid_date <= ? AND invoice_date <= ?",
        [data_end, data_end],
    )
    if not closed:
        msg = (
            f"No invoice issued by {data_end} had been paid by then: there is no payment behaviour to learn from "
            "(load the payments, or a file with paid dates). Until then the customer-history baseline scores, "
            "and it has nothing to go on either."
        )
        raise TrainingDataError(msg)
    lag = config.label_lag_days if config.label_lag_days is not None else label_lag_from_data(
        store, data_end, grace_days=config.grace_days
    )
    last_test = data_end - timedelta(days=lag)
    monthly_last = last_test if month_end(last_test) == last_test else month_end(last_test.replace(day=1) - timedelta(days=1))
    earliest = month_end(first)
    for _ in range(config.warmup_months):
        earliest = month_end(earliest + timedelta(days=1))
    snapshots = [d for d in month_ends(monthly_last, config.history_months) if d >= earliest]
    needed = config.test_months + config.calibration_months + 3
    if len(snapshots) >= needed:
        test = snapshots[-config.test_months :]
        calibration = snapshots[-config.test_months - config.calibration_months : -config.test_months]
        train = snapshots[: -config.test_months - config.calibration_months]
        if config.mid_month_snapshots and _open_invoice_snapshots(store, train) * 2 <= config.max_snapshot_rows:
            # more (and differently placed) as-of dates for training only; calibration and test
            # stay at month ends, which is where the app scores
            train = sorted(train + [d.replace(day=15) for d in train])
        return TrainingWindows(train=train, calibration=calibration, test=test, data_end=data_end,
                               plan="monthly", first_invoice=first, label_lag_days=lag)
    # a short history: weekly snapshots after a month's warm-up, a shorter held-out period
    start = first + timedelta(days=SHORT_WARMUP_DAYS)
    weekly = []
    day = last_test
    while day >= start and len(weekly) < 4 * config.history_months:
        weekly.append(day)
        day -= timedelta(days=7)
    weekly.reverse()
    if len(weekly) < MIN_WEEKLY_SNAPSHOTS:
        months = (data_end - first).days / 30.4
        needed_days = SHORT_WARMUP_DAYS + 7 * (MIN_WEEKLY_SNAPSHOTS - 1) + lag
        msg = (
            f"Not enough history to train and test a model: the invoices run from {first} to {data_end} "
            f"({months:.1f} months); a model needs about {needed_days / 30.4:.0f} months ({SHORT_WARMUP_DAYS} days for "
            f"customers to build a record, {MIN_WEEKLY_SNAPSHOTS} weekly snapshots, and {lag} days for their outcomes "
            "to be known). Until then the customer-history baseline scores."
        )
        raise TrainingDataError(msg)
    n = len(weekly)
    n_test = max(2, round(0.25 * n))
    n_cal = max(2, round(0.2 * n))
    return TrainingWindows(
        train=weekly[: n - n_test - n_cal], calibration=weekly[n - n_test - n_cal : n - n_test], test=weekly[n - n_test :],
        data_end=data_end, plan="weekly", first_invoice=first, label_lag_days=lag,
    )


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


def undetermined(frame: pl.DataFrame, grace_days: int) -> pl.DataFrame:
    """Rows whose outcome the as-of date does not settle yet (not more than grace past due)."""
    return frame.filter(pl.col("days_past_due") <= grace_days)


def _refusal_for_labels(rows: pl.DataFrame, when: date) -> str | None:
    """Why these labelled rows cannot train a model (None when they can)."""
    if rows.height == 0:
        return (
            f"No invoice open at a training snapshot has a known outcome by {when}: there are no on-time or late "
            "payments to learn from yet."
        )
    classes = rows.get_column("late").n_unique()
    if classes < 2:
        kind = "late" if rows.get_column("late").max() == 1 else "paid on time"
        other = "paid on time" if kind == "late" else "late"
        return (
            f"Every one of the {rows.height:,} invoice snapshots with a known outcome before {when} was {kind}; "
            f"none was {other}, so a model cannot learn to tell them apart (one class)."
        )
    if rows.height < MIN_TRAINING_ROWS:
        return (
            f"Only {rows.height:,} invoice snapshots with a known outcome before {when}; a model needs at least "
            f"{MIN_TRAINING_ROWS}, with both on-time and late payments."
        )
    return None


@dataclass
class TrainingResult:
    """What :func:`train_model` returns: the model, its test predictions, and the timings.

    ``test_predictions``: the held-out snapshot rows with their labels, the model's scores
    (``p_late``, ``p_paid_30d``, pay dates) and the baseline's (``baseline_p_late``,
    ``baseline_p_paid_30d``, ``baseline_pay_date_p50``).
    """

    model: RiskModel
    test_predictions: pl.DataFrame
    timings: dict[str, float] = field(default_factory=dict)


def train_model(
    store: Store,
    config: TrainingConfig | None = None,
    *,
    progress: Any = None,
) -> TrainingResult:
    """Train, calibrate and test a payment-risk model on the store's history, next to the baseline.

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
        The :class:`RiskModel` (its card holds the held-out metrics next to the baseline's, and
        which of the two scores) and the test-window predictions.
    """
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
        return attach_labels(part, build_outcomes(store, known_by=known_by), known_by=known_by, grace_days=config.grace_days)

    train = labelled(windows.train, windows.calibration[0])
    calibration = labelled(windows.calibration, windows.test[0])
    test = labelled(windows.test, windows.data_end)
    if train.height > config.max_snapshot_rows:
        train = train.sample(config.max_snapshot_rows, seed=config.random_state)
    categories = category_vocabulary(train)

    # p_late: only rows whose outcome is still open at the snapshot -------------------------
    train_late = undetermined(train.filter(pl.col("late").is_not_null()), config.grace_days)
    calibration_late = undetermined(calibration.filter(pl.col("late").is_not_null()), config.grace_days)
    refusal = _refusal_for_labels(train_late, windows.calibration[0])
    if refusal is None and calibration_late.get_column("late").n_unique() < 2:
        refusal = (
            f"The calibration window ({windows.calibration[0]} to {windows.calibration[-1]}) has "
            f"{calibration_late.height:,} invoices with a known outcome, all of one kind: probabilities cannot be "
            "calibrated on it."
        )
    if refusal:
        raise TrainingDataError(refusal + " Until then the customer-history baseline scores.")
    say(0.2, f"Training the late-payment model on {train_late.height:,} invoice snapshots")
    t0 = time.perf_counter()
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
    calibration_map["determined_is_late"] = True
    calibration_map["at_scoring"] = RECALIBRATION_TEXT

    # hazard -----------------------------------------------------------------------------
    say(0.55, "Training the pay-date (weekly hazard) model, open invoices included as censored")
    t0 = time.perf_counter()
    hazard_weeks = config.hazard_weeks

    # The person-weeks of the training and calibration windows, expanded once: the training
    # window's rows come first, so its own person-weeks are the leading rows (a view, no copy).
    both = pl.concat([train, calibration])
    x_h, y_h = expand_person_weeks(
        to_matrix(both, categories, single=True),
        both.get_column("duration_days").to_numpy(),
        both.get_column("event").to_numpy(),
        weeks=hazard_weeks,
    )
    timings["hazard_rows"] = float(len(y_h))
    train_weeks = person_weeks(train.get_column("duration_days").to_numpy(), train.get_column("event").to_numpy(),
                               weeks=hazard_weeks)

    # One LightGBM dataset of both windows, binned once (lgb.train on it gives the booster
    # LGBMClassifier.fit gives on the same rows); the held-out model trains on its training-window
    # rows through those bins (bins are cut from features only, never from outcomes).
    params = _lgb_params(config, n_estimators=config.hazard_n_estimators)
    params["learning_rate"] = config.hazard_learning_rate
    rounds = params.pop("n_estimators")
    person_week_rows = lgb.Dataset(x_h, y_h, categorical_feature=_categorical_indices(), params=params)

    # Interval levels are chosen out of sample: a hazard model fitted on the training window
    # alone predicts the calibration window (outcomes as known at the start of the test
    # window); the final hazard model then learns from both windows.
    held_out = lgb.train(params, person_week_rows.subset(np.arange(train_weeks)), num_boost_round=rounds)
    del x_h, y_h  # binned now: the dataset holds what the refit needs
    level_rows = calibration.sample(min(calibration.height, 30_000), seed=config.random_state)
    x_cal_h = to_matrix(level_rows, categories)
    cal_hazards = weekly_hazards(held_out, x_cal_h, weeks=hazard_weeks)
    target = interval_target(level_rows.get_column("customer_id").n_unique())
    interval_levels, interval_coverage_cal = choose_interval_levels(
        cal_hazards,
        level_rows.get_column("duration_days").to_numpy(),
        level_rows.get_column("event").to_numpy(),
        target=target,
    )
    say(0.65, "Refitting the pay-date model on the training and calibration windows")
    hazard_booster = lgb.train(params, person_week_rows, num_boost_round=rounds)
    timings["hazard_fit_s"] = time.perf_counter() - t0

    model = RiskModel(
        late_booster=classifier.booster_,
        hazard_booster=hazard_booster,
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
                "interval_target": round(target, 3),
                "interval_coverage_on_calibration": interval_coverage_cal,
                "interval_note": (
                    "pay_date_p10 / pay_date_p90 are the survival-curve quantiles at interval_levels, "
                    "chosen on the calibration window (with a hazard model that had not seen it) so "
                    f"that {target:.0%} of outcomes fall inside (80%, widened when few customers are behind "
                    "the choice); pay_date_p50 is the median."
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

    # the customer-history baseline, fitted on the same windows ---------------------------
    say(0.7, "Fitting the customer-history baseline on the same windows")
    # its P(late) map on the window the model is calibrated on (the latest labelled months: the
    # book's share late moves over time), or on both windows when that one is too small
    enough = undetermined(calibration.filter(pl.col("late").is_not_null()), config.grace_days).height >= 100
    baseline = fit_baseline_on(
        calibration if enough else pl.concat([train, calibration], how="vertical_relaxed"), store=store,
        known_by=windows.test[0], grace_days=config.grace_days, weeks=config.hazard_weeks,
    )

    # test: the model and the baseline on the held-out window -----------------------------
    t0 = time.perf_counter()
    if test.height > config.max_test_rows:
        test = test.sample(config.max_test_rows, seed=config.random_state)
    say(0.75, f"Testing on {test.height:,} later snapshots next to the customer-history baseline")
    model_scores = score_features(test, scorer=ModelScorer(model=model, reason=""))
    baseline_scores = score_features(test, scorer=BaselineScorer(baseline=baseline, scorer_id="baseline", reason=""))
    test_predictions = test.select(
        "as_of", "invoice_id", "customer_id", "due_date", "days_to_due", "days_past_due", "history_share_late",
        "history_mean_days_late", "late", "closed_date", "event", "duration_days",
    ).with_columns(
        p_late=model_scores["p_late"], p_paid_30d=model_scores["p_paid_30d"],
        pay_date_p10=model_scores["pay_date_p10"], pay_date_p50=model_scores["pay_date_p50"],
        pay_date_p90=model_scores["pay_date_p90"],
        baseline_score=pl.Series(baseline.score(test), dtype=pl.Float64),
        baseline_p_late=baseline_scores["p_late"], baseline_p_paid_30d=baseline_scores["p_paid_30d"],
        baseline_pay_date_p50=baseline_scores["pay_date_p50"],
    )
    metrics = evaluate(test_predictions, data_end=windows.data_end)
    decision = decide_scorer(test_predictions, margin=config.baseline_margin, seed=config.random_state)
    evidence = evidence_of(windows, train_late=train_late, calibration_late=calibration_late, test=test)
    model.card.update(
        {
            "metrics": metrics,
            "windows": windows.to_dict(),
            "parameters": {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(config).items()},
            "lightgbm": {k: v for k, v in _lgb_params(config, n_estimators=config.n_estimators).items()},
            "data_fingerprint": data_fingerprint(store, as_of=windows.data_end),
            "training_rows": {"late": int(train_late.height), "calibration": int(calibration_late.height), "test": int(test.height)},
            "base_rate_late": float(y_train.mean()),
            "baseline": baseline.to_card(),
            "naive_score_feature": NAIVE_SCORE_FEATURE,
            "scoring": decision,
            "evidence": evidence,
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
        (model.card["data_fingerprint"] + json.dumps(model.card["parameters"], sort_keys=True) + created.isoformat()).encode()
    ).hexdigest()[:6]
    model.model_id = f"risk-{windows.data_end:%Y%m%d}-{digest}"
    model.card["model_id"] = model.model_id
    model.card["created"] = created.isoformat()
    timings["total_s"] = time.perf_counter() - started
    model.card["training_seconds"] = round(timings["total_s"], 1)
    say(1.0, f"Trained {model.model_id}: {decision['in_use']} in use")
    return TrainingResult(model=model, test_predictions=test_predictions, timings=timings)


# --------------------------------------------------------------------------------------------
# judging the model against the baseline
# --------------------------------------------------------------------------------------------
def rank_auc(y: np.ndarray, p: np.ndarray, weights: np.ndarray | None = None) -> float:
    """ROC AUC (ties count half), each row counting ``weights[i]`` (default 1); NaN with one class."""
    y = np.asarray(y, dtype=bool)
    _, code = np.unique(np.asarray(p, dtype=np.float64), return_inverse=True)
    return _auc_from_codes(y, code.ravel(), np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64))


def _auc_from_codes(y: np.ndarray, code: np.ndarray, weights: np.ndarray) -> float:
    """AUC from each row's rank among the distinct scores (``code``), in one pass of bincounts."""
    size = int(code.max()) + 1 if len(code) else 0
    positive = np.bincount(code, weights=weights * y, minlength=size)
    negative = np.bincount(code, weights=weights * ~y, minlength=size)
    total_positive, total_negative = positive.sum(), negative.sum()
    if total_positive <= 0 or total_negative <= 0:
        return float("nan")
    below = np.cumsum(negative) - negative
    return float((positive * (below + 0.5 * negative)).sum() / (total_positive * total_negative))


def bootstrap_gain(
    y: np.ndarray, model: np.ndarray, baseline: np.ndarray, cluster: np.ndarray, *, resamples: int, seed: int
) -> np.ndarray:
    """AUC(model) − AUC(baseline) on customer-bootstrap resamples (rows of a customer move
    together: each customer gets a Poisson(1) weight)."""
    y = np.asarray(y, dtype=bool)
    _, index = np.unique(cluster, return_inverse=True)
    index = index.ravel()
    n_clusters = int(index.max()) + 1 if len(index) else 0
    _, model_code = np.unique(model, return_inverse=True)
    _, baseline_code = np.unique(baseline, return_inverse=True)
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(resamples):
        weights = rng.poisson(1.0, n_clusters)[index].astype(np.float64)
        gains.append(_auc_from_codes(y, model_code.ravel(), weights) - _auc_from_codes(y, baseline_code.ravel(), weights))
    gains = np.asarray(gains)
    return gains[np.isfinite(gains)]


def decide_scorer(predictions: pl.DataFrame, *, margin: float, seed: int = 0) -> dict[str, Any]:
    """Model or baseline, from the held-out invoices not yet due (see the module docstring)."""
    rows = predictions.filter(pl.col("late").is_not_null() & (pl.col("days_to_due") >= 0))
    y = rows.get_column("late").to_numpy().astype(float)
    rule = (
        f"the model is used when its AUC on held-out invoices not yet due beats the customer-history baseline's by "
        f"at least {margin:.3f} at the 16th percentile of {BOOTSTRAP_RESAMPLES} customer-bootstrap resamples "
        "(one standard error below the measured gain); otherwise the baseline scores"
    )
    out: dict[str, Any] = {"margin": margin, "rule": rule, "rows": int(rows.height),
                           "customers": int(rows.get_column("customer_id").n_unique()), "bootstrap": BOOTSTRAP_RESAMPLES}
    if rows.height < 50 or len(np.unique(y)) < 2:
        out.update(in_use="baseline", auc_model=None, auc_baseline=None, gain=None, gain_low=None,
                   reason=(f"The held-out months hold {rows.height} invoices not yet due with a known outcome"
                           + ("" if len(np.unique(y)) > 1 else ", all of one kind")
                           + ": too few to show the model beats the customer-history baseline, so the baseline scores."))
        return out
    model_p = rows.get_column("p_late").to_numpy()
    baseline_p = rows.get_column("baseline_score").to_numpy()
    auc_model, auc_baseline = rank_auc(y, model_p), rank_auc(y, baseline_p)
    gains = bootstrap_gain(y, model_p, baseline_p, rows.get_column("customer_id").to_numpy(),
                           resamples=BOOTSTRAP_RESAMPLES, seed=seed)
    gain = auc_model - auc_baseline
    low = float(np.quantile(gains, 0.16)) if len(gains) else float("nan")
    use_model = bool(np.isfinite(low) and low >= margin)
    out.update(in_use="model" if use_model else "baseline", auc_model=auc_model, auc_baseline=auc_baseline,
               gain=gain, gain_low=low)
    where = f"on {rows.height:,} held-out invoices not yet due ({out['customers']:,} customers)"
    if use_model:
        out["reason"] = (
            f"The model beat the customer-history baseline {where}: AUC {auc_model:.3f} vs {auc_baseline:.3f} "
            f"({gain:+.3f}; at least {low:+.3f} in 84% of customer resamples, above the margin of {margin:.2f})."
        )
    else:
        out["reason"] = (
            f"The model did not beat the customer-history baseline by the margin of {margin:.2f} {where}: AUC "
            f"{auc_model:.3f} vs {auc_baseline:.3f} ({gain:+.3f}; {low:+.3f} at the 16th percentile of customer "
            "resamples). Scores come from the baseline."
        )
    return out


def evidence_of(windows: TrainingWindows, *, train_late: pl.DataFrame, calibration_late: pl.DataFrame,
                test: pl.DataFrame) -> dict[str, Any]:
    """How much data is behind the card's figures, and a plain word for it."""
    months = (windows.data_end - windows.first_invoice).days / 30.4 if windows.first_invoice else None
    customers = int(test.get_column("customer_id").n_unique()) if test.height else 0
    labelled_test = int(test.filter(pl.col("late").is_not_null() & (pl.col("days_to_due") >= 0)).height)
    if windows.plan == "weekly" or labelled_test < 1000 or customers < 100:
        strength = "thin"
    elif labelled_test < 5000 or customers < 500:
        strength = "moderate"
    else:
        strength = "ample"
    note = {
        "thin": "thin evidence: few customers or a short history; figures can move by several points from one "
                "training to the next, and intervals are widened",
        "moderate": "moderate evidence: figures are stable to a point or two",
        "ample": "ample evidence",
    }[strength]
    return {
        "strength": strength,
        "note": note,
        "plan": windows.plan,
        "months_of_invoices": None if months is None else round(months, 1),
        "snapshots": {"train": len(windows.train), "calibration": len(windows.calibration), "test": len(windows.test)},
        "labelled_rows": {"train": int(train_late.height), "calibration": int(calibration_late.height),
                          "test_not_yet_due": labelled_test},
        "test_customers": customers,
    }


def evaluate(predictions: pl.DataFrame, *, data_end: date) -> dict[str, Any]:
    """Held-out metrics for the model and the customer-history baseline, overall and by due status.

    Baseline: ``baseline_p_late`` (its calibrated P(late), ranking as the customer's mean days
    late) and its pay dates (``baseline_pay_date_p50``, ``baseline_p_paid_30d``).
    """
    known = predictions.filter(pl.col("late").is_not_null())
    out: dict[str, Any] = {"data_end": data_end.isoformat()}
    for name, subset in (
        ("all", known),
        ("not_yet_due", known.filter(pl.col("days_to_due") >= 0)),
        ("overdue", known.filter(pl.col("days_to_due") < 0)),
    ):
        y = subset.get_column("late").to_numpy().astype(float)
        out[name] = {
            "model": classification_metrics(y, subset.get_column("p_late").to_numpy()),
            "baseline": classification_metrics(y, subset.get_column("baseline_p_late").to_numpy()),
        }

    # pay dates: closed rows give the error; open rows past P90 count as misses
    never = date(9999, 12, 31)  # a null quantile means "not within three years"
    closed = predictions.filter(pl.col("event") == 1).with_columns(
        pl.col("pay_date_p10", "pay_date_p50", "pay_date_p90", "baseline_pay_date_p50").fill_null(never)
    )
    actual = closed.get_column("closed_date")
    error = (closed.get_column("pay_date_p50") - actual).dt.total_days().abs().clip(upper_bound=3 * 365)
    baseline_error = (closed.get_column("baseline_pay_date_p50") - actual).dt.total_days().abs().clip(upper_bound=3 * 365)
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
        "baseline_p_paid_30d": classification_metrics(y30, paid_30.get_column("baseline_p_paid_30d").to_numpy()),
    }
    return out


def with_config(config: TrainingConfig, **changes: Any) -> TrainingConfig:
    """A copy of ``config`` with ``changes`` (the page's parameter widgets)."""
    from dataclasses import replace

    return replace(config, **changes)


def baseline_of(model: RiskModel) -> CustomerHistoryBaseline | None:
    """The baseline kept in a model's card (None for cards written before it was kept)."""
    data = model.card.get("baseline")
    return CustomerHistoryBaseline.from_card(data) if data else None
