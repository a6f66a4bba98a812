"""Judging the product on a store it was not built around: risk scores and the cash forecast
at several as-of dates, each next to its naive baseline (docs: VALIDATION.md).

:func:`evaluate_risk` does at each as-of date what a user's store would: train with only the
data known then (or fall back to the customer-history baseline when training refuses), let the
card choose the scorer, score the open invoices, and — once their outcomes are known at the end
of the data — measure the product's P(late) on the invoices not yet due next to the baseline
score (the customer's mean days late over its invoices paid by the as-of date). Pooled over the
dates too. :func:`evaluate_forecast` is the forecast's backtest (calibrated band, naive
run-rate). Nothing here is tuned: it reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from dashboard.errors import TrainingDataError
from dashboard.features import FeatureSpec, attach_labels, build_features, build_outcomes
from dashboard.forecast import BacktestResult, backtest_forecast
from dashboard.risk import expected_calibration_error
from dashboard.scoring import BaselineScorer, ModelScorer, Scorer, score_features, scorer_for
from dashboard.store import Store
from dashboard.training import TrainingConfig, rank_auc, train_model


def ece_noise_floor(p: np.ndarray, *, draws: int = 200, seed: int = 0) -> float:
    """The ECE a perfectly calibrated score would show on these rows (outcomes drawn from ``p``):
    how much of a measured ECE is the sample's noise."""
    if len(p) == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    return float(np.mean([expected_calibration_error((rng.random(len(p)) < p).astype(float), p) for _ in range(draws)]))


@dataclass(frozen=True)
class RiskEvaluation:
    """Per as-of date and pooled: the product's scores next to the customer-history baseline.

    ``per_date`` columns: as_of, scorer (model / baseline), why, trained (a model exists),
    rows, share_late, auc_product, auc_baseline, auc_model (the model's own, used or not),
    gain (product − baseline), ece_product, ece_stored_map (the same scorer without the
    recalibration on recent outcomes), recent_shift, recent_rows, ece_noise_floor, meets
    (gain ≥ margin, or the baseline was chosen). ``rows``: every scored, labelled invoice not
    yet due (``p_stored_map``: the product's P(late) before the recent-outcome shift).
    """

    per_date: pl.DataFrame
    rows: pl.DataFrame
    margin: float

    def pooled(self) -> dict[str, Any]:
        y = self.rows["late"].to_numpy().astype(float)
        product = self.rows["p_product"].to_numpy()
        model = self.rows["p_model"].drop_nulls().to_numpy()
        with_model = self.rows.filter(pl.col("p_model").is_not_null())
        return {
            "rows": int(self.rows.height),
            "dates": int(self.per_date.height),
            "share_late": float(y.mean()) if len(y) else None,
            "auc_product": rank_auc(y, product),
            "auc_baseline": rank_auc(y, self.rows["baseline_score"].to_numpy()),
            "auc_model": rank_auc(with_model["late"].to_numpy(), model) if len(model) else None,
            "auc_baseline_where_model": rank_auc(with_model["late"].to_numpy(), with_model["baseline_score"].to_numpy())
            if len(model) else None,
            "ece_product": expected_calibration_error(y, product),
            "ece_stored_map": expected_calibration_error(y, self.rows["p_stored_map"].to_numpy()),
            "ece_noise_floor": ece_noise_floor(product),
            "dates_model": int((self.per_date["scorer"] == "model").sum()),
            "dates_baseline": int((self.per_date["scorer"] == "baseline").sum()),
            "all_dates_meet": bool(self.per_date["meets"].all()),
        }

    def summary(self) -> str:
        pooled = self.pooled()
        lines = [
            f"{row['as_of']}: scored by the {row['scorer']:8s}: AUC {row['auc_product']:.3f} vs the customer-history "
            f"score {row['auc_baseline']:.3f} "
            f"({row['gain']:+.3f}; model's own {'—' if row['auc_model'] is None else format(row['auc_model'], '.3f')}), "
            f"ECE {row['ece_product']:.3f} (stored map {row['ece_stored_map']:.3f}, recent shift {row['recent_shift']:+.2f} "
            f"on {row['recent_rows']} rows; noise floor {row['ece_noise_floor']:.3f}), {row['rows']} invoices not yet due"
            f"{'' if row['meets'] else '  <- model in use but below baseline + margin'}"
            for row in self.per_date.iter_rows(named=True)
        ]
        lines.append(
            f"pooled over {pooled['dates']} dates, {pooled['rows']} invoices: AUC product {pooled['auc_product']:.3f} vs "
            f"baseline {pooled['auc_baseline']:.3f}; ECE {pooled['ece_product']:.3f} (stored map without the "
            f"recent-outcome shift {pooled['ece_stored_map']:.3f}; noise floor {pooled['ece_noise_floor']:.3f}); model in use at {pooled['dates_model']} dates, baseline at "
            f"{pooled['dates_baseline']}"
        )
        return "\n".join(lines)


def evaluate_risk(
    store: Store,
    as_of_dates: Sequence[date],
    *,
    config: TrainingConfig | None = None,
    outcomes_by: date | None = None,
) -> RiskEvaluation:
    """Train (or fall back) at each date with the data known then; score; judge on outcomes
    known at ``outcomes_by`` (default: the newest payment in the store)."""
    config = config or TrainingConfig()
    end = outcomes_by or store.scalar("SELECT max(payment_date) FROM payments")
    per_date, parts = [], []
    for as_of in as_of_dates:
        model = None
        problem = None
        try:
            model = train_model(store, replace(config, as_of=as_of)).model
        except TrainingDataError as exc:
            problem = str(exc)
        scorer = scorer_for(model, store=store, as_of=as_of, problem=problem)
        spec = scorer.feature_spec if model is not None else FeatureSpec(grace_days=config.grace_days)
        features = build_features(store, as_of, spec=spec)
        if features.is_empty():
            continue
        scored = score_features(features, scorer=scorer)
        stored_map, shift, shift_rows = _stored_map_p_late(scorer, features)
        own = score_features(features, scorer=ModelScorer(model=model, reason="")) if model is not None else None
        labelled = attach_labels(features, build_outcomes(store, known_by=end), known_by=end, grace_days=spec.grace_days)
        history = features["history_mean_days_late"]
        fill = float(history.mean()) if history.drop_nulls().len() else 0.0
        frame = labelled.select("as_of", "invoice_id", "customer_id", "days_to_due", "late").with_columns(
            p_product=scored["p_late"],
            p_stored_map=pl.Series(stored_map, dtype=pl.Float64),
            p_model=own["p_late"] if own is not None else pl.lit(None, dtype=pl.Float64),
            baseline_score=history.fill_null(fill),
        ).filter(pl.col("late").is_not_null() & (pl.col("days_to_due") >= 0))
        if frame.is_empty():
            continue
        y = frame["late"].to_numpy().astype(float)
        product = frame["p_product"].to_numpy()
        auc_product, auc_baseline = rank_auc(y, product), rank_auc(y, frame["baseline_score"].to_numpy())
        gain = auc_product - auc_baseline
        per_date.append({
            "as_of": as_of, "scorer": scorer.kind, "why": scorer.reason, "trained": model is not None,
            "rows": frame.height, "share_late": float(y.mean()), "auc_product": auc_product,
            "auc_baseline": auc_baseline, "auc_model": rank_auc(y, frame["p_model"].to_numpy()) if own is not None else None,
            "gain": gain, "ece_product": expected_calibration_error(y, product),
            "ece_stored_map": expected_calibration_error(y, frame["p_stored_map"].to_numpy()),
            "recent_shift": shift, "recent_rows": shift_rows,
            "ece_noise_floor": ece_noise_floor(product),
            "meets": bool(scorer.kind == "baseline" or gain >= config.baseline_margin),
        })
        parts.append(frame)
    schema = {"as_of": pl.Date, "scorer": pl.String, "why": pl.String, "trained": pl.Boolean, "rows": pl.Int64,
              "share_late": pl.Float64, "auc_product": pl.Float64, "auc_baseline": pl.Float64, "auc_model": pl.Float64,
              "gain": pl.Float64, "ece_product": pl.Float64, "ece_stored_map": pl.Float64, "recent_shift": pl.Float64,
              "recent_rows": pl.Int64, "ece_noise_floor": pl.Float64, "meets": pl.Boolean}
    return RiskEvaluation(
        per_date=pl.DataFrame(per_date, schema=schema),
        rows=pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame(),
        margin=config.baseline_margin,
    )


def _stored_map_p_late(scorer: Scorer, features: pl.DataFrame) -> tuple[np.ndarray, float, int]:
    """The scorer's P(late) with its stored map alone (no recent-outcome shift), the shift and
    the rows it was fitted on."""
    if isinstance(scorer, ModelScorer):
        recent = scorer.recent
        model = scorer.model
        return (model.p_late(model.matrix(features)), recent.shift if recent else 0.0, recent.rows if recent else 0)
    if isinstance(scorer, BaselineScorer):
        baseline = scorer.baseline
        return (replace(baseline, recent_shift=0.0).p_late(features), baseline.recent_shift, baseline.recent_rows)
    msg = f"Unknown scorer {scorer!r}"
    raise TypeError(msg)


@dataclass(frozen=True)
class ForecastEvaluation:
    """The forecast's backtest on a store: WAPE over the first 4 weeks and over 13, of the
    forecast in use (our pay-date model blended with the run-rate by weights chosen on earlier
    forecasts), of our model alone and of the naive run-rate, and the calibrated band's
    coverage, pooled over the backtest dates."""

    backtest: BacktestResult

    def figures(self) -> dict[str, Any]:
        details = self.backtest.details
        first4, all13 = self.backtest.wape_first(4), self.backtest.wape_first(13)
        totals = details.group_by("as_of").agg(pl.col("actual", "p50", "last_13_weeks").sum())
        actual = float(totals["actual"].sum())
        return {
            "dates": len(self.backtest.as_of_dates),
            "first": self.backtest.as_of_dates[0].isoformat(),
            "last": self.backtest.as_of_dates[-1].isoformat(),
            "wape_4w": first4["wape_forecast"],
            "wape_4w_run_rate": first4["wape_last_13_weeks"],
            "wape_4w_model": first4["wape_model"],
            "weight_4w": self.backtest.mean_weight(4),
            "wape_week4": self.backtest.wape_at(4)["wape_forecast"],
            "wape_week4_run_rate": self.backtest.wape_at(4)["wape_last_13_weeks"],
            "wape_13w": all13["wape_forecast"],
            "wape_13w_run_rate": all13["wape_last_13_weeks"],
            "wape_13w_total": float((totals["actual"] - totals["p50"]).abs().sum()) / actual,
            "wape_13w_total_run_rate": float((totals["actual"] - totals["last_13_weeks"]).abs().sum()) / actual,
            "coverage": self.backtest.coverage,
            "coverage_monte_carlo": self.backtest.coverage_monte_carlo,
            "weeks": int(details.height),
        }

    def summary(self) -> str:
        f = self.figures()
        return (
            f"{f['dates']} backtest dates {f['first']}..{f['last']} ({f['weeks']} weeks): WAPE weeks 1-4 "
            f"{f['wape_4w']:.2%} vs run-rate {f['wape_4w_run_rate']:.2%} (our pay-date model alone "
            f"{f['wape_4w_model']:.1%}; the forecast in use puts {f['weight_4w']:.0%} on it); week 4 alone {f['wape_week4']:.1%} vs "
            f"{f['wape_week4_run_rate']:.1%}; weeks 1-13 {f['wape_13w']:.1%} vs {f['wape_13w_run_rate']:.1%}; "
            f"13-week totals {f['wape_13w_total']:.1%} vs {f['wape_13w_total_run_rate']:.1%}; P10-P90 held the actual "
            f"{f['coverage']:.0%} of weeks (Monte Carlo band before calibration: {f['coverage_monte_carlo']:.0%})"
        )


def evaluate_forecast(store: Store, *, as_of_dates: Sequence[date] | None = None, n_paths: int = 200) -> ForecastEvaluation:
    """The forecast's backtest (:func:`dashboard.forecast.backtest_forecast`) as a report."""
    return ForecastEvaluation(backtest=backtest_forecast(store, as_of_dates=as_of_dates, n_paths=n_paths))
