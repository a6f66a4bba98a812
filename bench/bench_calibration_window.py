"""How many weeks of recent outcomes the P(late) recalibration uses (dashboard.recalibration).

Chosen on stores the product is NOT judged on — second-world stores with other seeds (10, 21 and
31 have a book-wide shock inside the dates judged, like the reported seed 7; 11 has industry
shocks only) and the generator's own world (seed 23) — never on the stores
tests/test_judged_elsewhere.py reports. At each date: train as evaluate_risk does, score the open
invoices not yet due with the stored map, then with the map's level refitted on the last W weeks
of outcomes known then; print the ECE pooled over the dates for each W, and a shift fitted on the
judged outcomes themselves ("oracle": not available at the as-of date; the floor for any
level-only recalibration).

    python -m bench.bench_calibration_window shock10 shock21 shock31 shock11 world23
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

WEEKS = (4, 8, 12, 26)
SHOCK_DATES = [date(2023, 6, 30), date(2023, 8, 31), date(2023, 10, 31), date(2023, 12, 31), date(2024, 2, 29),
               date(2024, 3, 31)]
WORLD_DATES = [date(2025, 2, 28), date(2025, 4, 30), date(2025, 6, 30), date(2025, 8, 31), date(2025, 10, 31)]
REPORTED = {"shock7"}  # the second world tests/test_judged_elsewhere.py reports: never used to choose


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
    from dashboard.evaluation import _stored_map_p_late, ece_noise_floor
    from dashboard.features import attach_labels, build_features, build_outcomes
    from dashboard.risk import expected_calibration_error as ece
    from dashboard.scoring import scorer_for
    from dashboard.store import Store
    from dashboard.training import TrainingConfig, train_model

    if name in REPORTED:
        msg = f"{name} is a store the product is judged on: the window is not chosen on it."
        raise SystemExit(msg)
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"stored map": [], "oracle": []}
    pooled.update({f"{w} weeks": [] for w in WEEKS})
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
            pooled["stored map"].append((y, p0))
            recent = rc.recent_outcomes(store, as_of, spec=spec, weeks=max(WEEKS))
            line = f"{name} {as_of} {scorer.kind:8s} {len(y)} invoices, {y.mean():.0%} late: stored map {ece(y, p0):.3f}"
            for w in WEEKS:
                rows = recent.filter(pl.col("as_of") >= rc.recent_snapshots(as_of, w)[0])
                shift = rc.recent_shift(rows, _stored_map_p_late(scorer, rows)[0] if rows.height else np.zeros(0),
                                        as_of=as_of, weeks=w)
                p = shift.apply(p0)
                pooled[f"{w} weeks"].append((y, p))
                line += f"; {w}w {ece(y, p):.3f} (shift {shift.shift:+.2f})"
            oracle = rc.RecentShift(shift=rc.fit_shift(p0, y, prior_sd=100.0)).apply(p0)
            pooled["oracle"].append((y, oracle))
            print(line + f"; oracle {ece(y, oracle):.3f}; noise floor {ece_noise_floor(p0):.3f}", flush=True)
    out = {}
    for key, parts in pooled.items():
        y = np.concatenate([a for a, _ in parts])
        p = np.concatenate([b for _, b in parts])
        out[key] = ece(y, p)
    print(f"{name} pooled ECE: " + ", ".join(f"{k} {v:.3f}" for k, v in out.items()), flush=True)
    return out


def main(argv: list[str]) -> int:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="calibration-window-"))
    results = {name: window_figures(name, folder) for name in argv}
    keys = next(iter(results.values())).keys()
    print("mean pooled ECE over the stores: " + ", ".join(
        f"{k} {np.mean([r[k] for r in results.values()]):.3f}" for k in keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
