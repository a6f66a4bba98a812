"""The payment-risk model: two LightGBM boosters, their card, metrics, drift and recalibration.

Two LightGBM boosters share the as-of features of :mod:`dashboard.features`:

- ``p_late``: binary, "closed after due date + grace, or still open at due + grace", learnt on
  the invoices whose outcome a snapshot does not settle yet; an invoice already more than grace
  past due is late whatever happens and gets 1 (cards since version 2). Calibrated on a later
  window (isotonic or sigmoid) with the map stored as numbers in the model card.
- pay date: a discrete-time hazard over weekly bins. Each snapshot row contributes one row per
  week it was observed still open ("person-period" data): label 1 in the week it closed, 0 in
  earlier weeks; rows still open when the labels were read (censored) contribute their at-risk
  weeks and no event, so slow payers are not dropped. The survival curve
  ``S(k) = prod(1 - h_j)`` gives ``p_paid_30d`` and the P10/P50/P90 pay dates
  (:mod:`dashboard.scoring`).

Training and the judgement against the customer-history baseline are in
:mod:`dashboard.training`; scoring in :mod:`dashboard.scoring`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from dashboard.dates import month_end, month_ends
from dashboard.errors import ModelError, TrainingDataError
from dashboard.features import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    FeatureSpec,
    attach_labels,
    build_features,
    build_outcomes,
)
from dashboard.store import Store

# 2: the card keeps the customer-history baseline, which of the two scores and why, and the evidence
CARD_VERSION = 2


# --------------------------------------------------------------------------------------------
# matrices
# --------------------------------------------------------------------------------------------
def category_vocabulary(features: pl.DataFrame) -> dict[str, list[str]]:
    """Sorted distinct values of each categorical feature (stored in the card)."""
    return {
        c: sorted(v for v in features.get_column(c).unique().to_list() if v is not None) for c in CATEGORICAL_FEATURES
    }


def to_matrix(
    features: pl.DataFrame, categories: dict[str, list[str]], *, single: bool = False
) -> np.ndarray:
    """Feature frame -> float matrix in ``FEATURE_COLUMNS`` order; categories as codes, unknown NaN.

    ``single``: float32 in row order (what the hazard's person-week expansion gathers rows
    from), instead of float64 in column order.
    """
    dtype = pl.Float32 if single else pl.Float64
    exprs = []
    for column in FEATURE_COLUMNS:
        if column in categories:
            mapping = {value: float(i) for i, value in enumerate(categories[column])}
            exprs.append(pl.col(column).replace_strict(mapping, default=None, return_dtype=dtype))
        else:
            exprs.append(pl.col(column).cast(dtype))
    if single:
        return features.select(exprs).to_numpy(order="c").astype(np.float32, copy=False)
    return features.select(exprs).to_numpy().astype(np.float64, copy=False)


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
        """Calibrated probability of late payment (1 for an invoice already past due + grace,
        for cards that say so)."""
        p = apply_calibration(self.raw_late_score(matrix), self.card["calibration"])
        if self.card["calibration"].get("determined_is_late"):
            past_due = matrix[:, FEATURE_COLUMNS.index("days_past_due")]
            p = np.where(past_due > self.grace_days, 1.0, p)
        return p

    def hazards(self, matrix: np.ndarray) -> np.ndarray:
        """Weekly hazard of closing, shape (rows, hazard_weeks)."""
        return weekly_hazards(self.hazard_booster, matrix, weeks=int(self.card["hazard"]["weeks"]), threads=self.threads)


HAZARD_BLOCK_ROWS = 65_536  # person-week rows predicted per call (about 20 MB of features)


def weekly_hazards(booster: lgb.Booster, matrix: np.ndarray, *, weeks: int, threads: int = 0) -> np.ndarray:
    """A hazard booster's weekly hazard for each row, shape (rows, weeks), clipped to (0, 1).

    The booster reads the features plus the week index: each row is predicted once per week.
    The person-week rows are built a block of rows at a time in one reused buffer: stacking
    every row at once (rows × weeks × features) was the largest array scoring and training's
    interval levels made, and fresh memory is slow to touch on this machine.
    """
    n, width = matrix.shape
    block = max(1, HAZARD_BLOCK_ROWS // weeks)
    buffer = np.empty((min(n, block), weeks, width + 1), dtype=np.float64)
    buffer[:, :, -1] = np.arange(weeks, dtype=np.float64)
    out = np.empty((n, weeks), dtype=np.float64)
    for start in range(0, n, block):
        rows = matrix[start : start + block]
        view = buffer[: len(rows)]
        view[:, :, :-1] = rows[:, None, :]
        out[start : start + len(rows)] = booster.predict(
            view.reshape(len(rows) * weeks, width + 1), num_threads=threads
        ).reshape(len(rows), weeks)
    return np.clip(out, 1e-6, 1 - 1e-6)


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
    if model.card["calibration"].get("determined_is_late"):  # the map applies to open outcomes only
        labelled = labelled.filter(pl.col("days_past_due") <= model.grace_days)
    y = labelled.get_column("late").to_numpy()
    if labelled.height < 200 or len(np.unique(y)) < 2:
        msg = (
            f"Only {labelled.height} recent invoices with a known outcome between {dates[0]} and {dates[-1]}; "
            "recalibration needs a few hundred with both on-time and late payments."
        )
        raise TrainingDataError(msg)
    raw = model.raw_late_score(model.matrix(labelled)).reshape(-1, 1)
    fit = LogisticRegression(C=1e6).fit(raw, y)
    calibration = {"method": "sigmoid", "a": float(-fit.coef_[0][0]), "b": float(-fit.intercept_[0]),
                   "fitted_on_rows": int(labelled.height),
                   "determined_is_late": bool(model.card["calibration"].get("determined_is_late"))}
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
