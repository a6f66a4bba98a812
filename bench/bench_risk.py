"""Payment-risk benchmark: training on ~1M invoices, scoring + reasons for ~100k open invoices.

    .venv/bin/python -m bench.bench_risk --invoices 1000000

Builds a store from ``dashboard.synthetic`` (about ``--invoices`` invoices with their payments,
adjustments, disputes, contacts and notes, loaded through ingest), then in the same run:

1. ``train_model`` end to end (features for every snapshot, labels, p_late fit with early
   stopping, calibration, two hazard fits, test metrics, importance, drift reference);
2. bare LightGBM on the *same matrices* with the same parameters: the p_late fit, the two
   hazard fits (training rows, then training + calibration rows), nothing else;
3. scoring with reasons for ~100k open invoices (open invoices at the last month-ends, as many
   as needed): ``build_features`` + ``RiskModel.predict`` + ``reasons_for``;
4. bare LightGBM ``predict`` + hazard ``predict`` + ``pred_contrib`` on the same matrix.

Prints seconds, peak RSS and the ratios (issue target: our overhead within 1.5x of bare).
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl

from bench.common import emit_result
from dashboard.dates import month_ends
from dashboard.explain import reasons_for
from dashboard.features import FeatureSpec, attach_labels, build_features, build_outcomes
from dashboard.ingest.load import load_world
from dashboard.risk import to_matrix
from dashboard.scoring import ModelScorer, score_features
from dashboard.store import Store
from dashboard.synthetic.generator import generate_world
from dashboard.synthetic.model import WorldConfig
from dashboard.training import (
    TrainingConfig,
    _categorical_indices,
    _lgb_params,
    expand_person_weeks,
    plan_windows,
    train_model,
    undetermined,
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_store(path: Path, invoices: int, *, seed: int = 7) -> tuple[Store, date]:
    customers = max(50, math.ceil(invoices / (36 * 1.33)))
    t0 = time.perf_counter()
    world = generate_world(WorldConfig(seed=seed, n_customers=customers, months=36))
    store = Store(path)
    load_world(store, world.frames)
    print(
        f"world: {customers:,} customers, {world.frames['invoices'].height:,} invoices, "
        f"{world.frames['payments'].height:,} payments, {world.frames['contacts'].height:,} contacts "
        f"(generated and loaded in {time.perf_counter() - t0:.1f} s)"
    )
    return store, world.config.end_date


def bare_training(store: Store, config: TrainingConfig, categories: dict[str, list[str]]) -> dict[str, float]:
    """LightGBM alone on the same matrices train_model builds (matrix building not timed)."""
    windows = plan_windows(store, config)
    spec = FeatureSpec(grace_days=config.grace_days)
    features = build_features(store, windows.train + windows.calibration, spec=spec)
    train = attach_labels(
        features.filter(pl.col("as_of").is_in(windows.train)),
        build_outcomes(store, known_by=windows.calibration[0]),
        known_by=windows.calibration[0],
        grace_days=config.grace_days,
    )
    calibration = attach_labels(
        features.filter(pl.col("as_of").is_in(windows.calibration)),
        build_outcomes(store, known_by=windows.test[0]),
        known_by=windows.test[0],
        grace_days=config.grace_days,
    )
    if train.height > config.max_snapshot_rows:
        train = train.sample(config.max_snapshot_rows, seed=config.random_state)
    late = undetermined(train.filter(pl.col("late").is_not_null()), config.grace_days)
    x = to_matrix(late, categories)
    y = late["late"].to_numpy()
    cal = undetermined(calibration.filter(pl.col("late").is_not_null()), config.grace_days)
    xc, yc = to_matrix(cal, categories), cal["late"].to_numpy()
    out = {}
    t0 = time.perf_counter()
    lgb.LGBMClassifier(**_lgb_params(config, n_estimators=config.n_estimators)).fit(
        x, y, categorical_feature=_categorical_indices(), eval_X=(xc,), eval_y=(yc,),
        callbacks=[lgb.early_stopping(50, verbose=False)],
    )
    out["late_fit_s"] = time.perf_counter() - t0
    params = _lgb_params(config, n_estimators=config.hazard_n_estimators)
    params["learning_rate"] = config.hazard_learning_rate
    hazard_seconds = 0.0
    for rows in (train, pl.concat([train, calibration])):
        xh, yh = expand_person_weeks(
            to_matrix(rows, categories), rows["duration_days"].to_numpy(), rows["event"].to_numpy(), weeks=config.hazard_weeks
        )
        t0 = time.perf_counter()
        lgb.LGBMClassifier(**params).fit(xh, yh, categorical_feature=_categorical_indices())
        hazard_seconds += time.perf_counter() - t0
    out["hazard_fits_s"] = hazard_seconds
    out["total_s"] = out["late_fit_s"] + hazard_seconds
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--score-rows", type=int, default=100_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        store, end = build_store(Path(tmp) / "bench.duckdb", args.invoices)
        print(f"peak RSS after load: {peak_rss_mb():,.0f} MB")

        config = TrainingConfig()
        t0 = time.perf_counter()
        result = train_model(store, config)
        ours_train = time.perf_counter() - t0
        model = result.model
        print(f"train_model: {ours_train:.1f} s  {({k: round(v, 1) for k, v in result.timings.items()})}")
        print(f"  rows: {model.card['training_rows']}, hazard person-weeks {model.card['hazard']['training_rows']:,}")
        print(f"  peak RSS {peak_rss_mb():,.0f} MB")
        bare = bare_training(store, config, model.categories)
        print(f"bare LightGBM fits on the same matrices: {bare['total_s']:.1f} s  {({k: round(v, 1) for k, v in bare.items()})}")
        print(f"TRAIN ratio ours / bare = {ours_train / bare['total_s']:.2f}x")
        emit_result("train_model (features, p_late, hazard, calibration, evaluation)", size=f"{args.invoices:,} invoices",
                    seconds=ours_train, baseline="bare LightGBM fits on the same matrices",
                    baseline_seconds=bare["total_s"])

        # scoring + reasons for ~score_rows open invoices: as many month-ends as needed
        open_at_end = build_features(store, end, spec=model.feature_spec).height
        dates: list[date] = list(reversed(month_ends(end, max(1, math.ceil(args.score_rows / max(open_at_end, 1))))))
        t0 = time.perf_counter()
        features = build_features(store, dates, spec=model.feature_spec).head(args.score_rows)
        t_features = time.perf_counter() - t0
        t0 = time.perf_counter()
        predictions = score_features(features, scorer=ModelScorer(model=model, reason="bench"))
        t_predict = time.perf_counter() - t0
        t0 = time.perf_counter()
        reasons = reasons_for(model, features)
        t_reasons = time.perf_counter() - t0
        ours_score = t_features + t_predict + t_reasons
        print(
            f"scoring {features.height:,} open invoices ({len(dates)} as-of dates): features {t_features:.1f} s, "
            f"predict (p_late + hazard quantiles) {t_predict:.1f} s, reasons {t_reasons:.1f} s = {ours_score:.1f} s; "
            f"peak RSS {peak_rss_mb():,.0f} MB"
        )
        assert predictions.height == reasons.height == features.height

        matrix = model.matrix(features)
        weeks = int(model.card["hazard"]["weeks"])
        t0 = time.perf_counter()
        model.late_booster.predict(matrix, num_threads=model.threads)
        stacked = np.column_stack([np.repeat(matrix, weeks, axis=0), np.tile(np.arange(weeks, dtype=np.float64), len(matrix))])
        model.hazard_booster.predict(stacked, num_threads=model.threads)
        model.late_booster.predict(matrix, pred_contrib=True, num_threads=model.threads)
        bare_score = time.perf_counter() - t0
        print(f"bare LightGBM predict + hazard predict + pred_contrib on the same matrix: {bare_score:.1f} s")
        print(f"SCORE ratio ours / bare = {ours_score / bare_score:.2f}x  (without feature building: "
              f"{(t_predict + t_reasons) / bare_score:.2f}x)")
        emit_result("score + reasons (features, p_late, pay-date quantiles, plain-language reasons)",
                    size=f"{features.height:,} open invoices", seconds=ours_score,
                    baseline="bare LightGBM predict + hazard predict + pred_contrib", baseline_seconds=bare_score,
                    note=f"features {t_features:.1f} s, predict {t_predict:.1f} s, reasons {t_reasons:.1f} s")


if __name__ == "__main__":
    main()
