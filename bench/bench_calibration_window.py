"""How P(late)'s recalibration on recent outcomes is set (dashboard.recalibration): the window,
the recency weights and the share of the shift applied.

Chosen on stores the product is NOT judged on — second-world stores with seeds 1-4, 10, 21, 31
and 11 and the generator's own world (seeds 11 and 23), checked on second-world seeds 41-45 — never
on the stores tests/test_judged_elsewhere.py reports (the second world's default seed 7, IBM,
Yellevate); bench/RESULTS.md has the table and the order in which it was done. At each date: train as evaluate_risk does,
score the open invoices not yet due with the stored map, then with its level refitted on the last
8 weeks of outcomes known then — uniformly weighted or weighted exp(-age / L) by the age of each
invoice's due date, and PERSISTENCE × that shift applied; also a shift decaying with each scored
invoice's days to due (exp(-days / T): it re-ranks invoices, so its worst AUC change at a date is
printed) and a level fitted on the judged outcomes themselves ("oracle": not available at the
as-of date). Prints the ECE pooled over each store's dates for every variant.

    python -m bench.bench_calibration_window shock1 shock2 shock3 shock4 world11
    python -m bench.bench_calibration_window shock10 shock21 shock31 shock11 world23
    python -m bench.bench_calibration_window shock41 shock42 shock43 shock44 shock45
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

SHOCK_DATES = [date(2023, 6, 30), date(2023, 8, 31), date(2023, 10, 31), date(2023, 12, 31), date(2024, 2, 29),
               date(2024, 3, 31)]
WORLD_DATES = [date(2025, 2, 28), date(2025, 4, 30), date(2025, 6, 30), date(2025, 8, 31), date(2025, 10, 31)]
REPORTED = {"shock7"}  # the second world tests/test_judged_elsewhere.py reports: never used to choose
RECENCY = (None, 14, 21, 28)  # days; None: every row of the window weighs the same
PERSISTENCE = (0.4, 0.5, 0.6, 0.8, 1.0)
HORIZON_DAYS = (30, 60, 90)


def _store(name: str, folder: Path) -> Path:
    from dashboard.ingest import load_world
    from dashboard.store import Store

    db = folder / f"{name}.duckdb"
    if db.exists():
        return db
    seed = int(name.removeprefix("shock").removeprefix("world"))
    if name.startswith("shock"):
        from dashboard.synthetic.shocks import ShockWorldConfig, generate_shock_world

        world = generate_shock_world(ShockWorldConfig(seed=seed))
    else:
        from dashboard.synthetic import WorldConfig, generate_world

        world = generate_world(WorldConfig(seed=seed, n_customers=400, months=30))
    with Store(db) as store:
        load_world(store, world.frames, name=name)
    return db


def window_figures(name: str, folder: Path) -> dict[str, float]:
    from dashboard import recalibration as rc
    from dashboard.errors import TrainingDataError
    from dashboard.evaluation import _stored_map_p_late
    from dashboard.features import attach_labels, build_features, build_outcomes
    from dashboard.risk import expected_calibration_error as ece
    from dashboard.scoring import scorer_for
    from dashboard.store import Store
    from dashboard.training import TrainingConfig, rank_auc, train_model

    if name in REPORTED:
        msg = f"{name} is a store the product is judged on: the recalibration is not chosen on it."
        raise SystemExit(msg)
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    worst_auc: dict[str, float] = {}
    with Store(_store(name, folder)) as store:
        end = store.scalar("SELECT max(payment_date) FROM payments")
        outcomes = build_outcomes(store, known_by=end)
        for as_of in SHOCK_DATES if name.startswith("shock") else WORLD_DATES:
            model = problem = None
            try:
                model = train_model(store, TrainingConfig(as_of=as_of)).model
            except TrainingDataError as exc:
                problem = str(exc)
            scorer = scorer_for(model, store=store, as_of=as_of, problem=problem)
            spec = scorer.feature_spec
            features = build_features(store, as_of, spec=spec)
            labelled = attach_labels(features, outcomes, known_by=end, grace_days=spec.grace_days)
            keep = (labelled["late"].is_not_null() & (labelled["days_to_due"] >= 0)).to_numpy()
            y = labelled["late"].to_numpy()[keep].astype(float)
            p0 = _stored_map_p_late(scorer, features)[0][keep]
            days = np.maximum(labelled["days_to_due"].to_numpy()[keep], 0).astype(float)
            rows = rc.recent_outcomes(store, as_of, spec=spec)
            p_rows = _stored_map_p_late(scorer, rows)[0] if rows.height else np.zeros(0)
            y_rows = rows["late"].to_numpy().astype(float) if rows.height else np.zeros(0)
            usable = rows.height >= rc.MIN_ROWS and len(np.unique(y_rows)) == 2
            variants = {"stored map": p0, "oracle level": rc.shifted(p0, rc.fit_shift(p0, y, prior_sd=100.0))}
            line = f"{name} {as_of} {scorer.kind:8s} {len(y)} invoices, {y.mean():.0%} late: stored map {ece(y, p0):.3f}"
            for recency in RECENCY:
                weights = None if recency is None else rc.recency_weights(rows, as_of=as_of, grace_days=spec.grace_days,
                                                                          days=recency)
                fitted = rc.fit_shift(p_rows, y_rows, weights=weights) if usable else 0.0
                tag = "uniform" if recency is None else f"L={recency}d"
                for share in PERSISTENCE:
                    variants[f"{tag} x{share}"] = rc.shifted(p0, share * fitted)
                for horizon in HORIZON_DAYS:
                    key = f"{tag} decay T={horizon}d"
                    variants[key] = rc.shifted(p0, fitted * np.exp(-days / horizon))
                    change = rank_auc(y, variants[key]) - rank_auc(y, p0)
                    worst_auc[key] = min(worst_auc.get(key, 0.0), change)
                line += f"; {tag} shift {fitted:+.2f}"
            for key, p in variants.items():
                pooled.setdefault(key, []).append((y, p))
            print(line + f"; oracle {ece(y, variants['oracle level']):.3f}", flush=True)
    out = {}
    for key, parts in pooled.items():
        out[key] = ece(np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts]))
    for key, change in worst_auc.items():
        out[f"worst AUC change: {key}"] = change
    return out


def main(argv: list[str]) -> int:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="calibration-window-"))
    results = {name: window_figures(name, folder) for name in argv}
    table = pl.DataFrame([
        {"variant": key, **{name: r[key] for name, r in results.items()}, "mean": float(np.mean([r[key] for r in results.values()]))}
        for key in next(iter(results.values()))
    ])
    ece_rows = table.filter(~pl.col("variant").str.starts_with("worst")).sort("mean")
    auc_rows = table.filter(pl.col("variant").str.starts_with("worst"))
    with pl.Config(tbl_rows=200, float_precision=3, tbl_width_chars=200, fmt_str_lengths=60):
        print("pooled ECE per store, mean over the stores (best first)")
        print(ece_rows)
        print("worst change of AUC at a date against the stored map (a shift decaying with days to due re-ranks)")
        print(auc_rows.with_columns(pl.min_horizontal(*results).alias("worst")).select("variant", "worst"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
