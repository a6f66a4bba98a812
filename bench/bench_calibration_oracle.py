"""How low could any recalibration of the product's P(late) take ECE on the second world's reported rows?

For information only, never to choose anything: every map below is fitted on the judged outcomes
themselves (not known at the as-of date). At each of tests/test_judged_elsewhere.py's six dates,
the product's scores (``evaluate_risk``, as the test computes them) are refitted on that date's
own outcomes by

- a level (intercept shift on the logit; the family dashboard.recalibration fits on known outcomes),
- a level and a slope (Platt: logistic regression of the outcome on the logit of the score),
- isotonic regression (any monotone map: in sample its ECE is 0 by construction — every bin is a
  union of blocks whose mean prediction is their share late — so it bounds nothing; only its
  out-of-fold figure is shown),

in sample and out of fold (each date's rows split in two halves at random, each half mapped by
the fit on the other, 20 splits). Prints ECE per date and pooled, next to the product's and the
noise floor (the ECE a perfectly calibrated score shows on the same rows).

    python -m bench.bench_calibration_oracle          # the reported second world (seed 7)
    python -m bench.bench_calibration_oracle 3        # another seed of the second world
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

DATES = [date(2023, 6, 30), date(2023, 8, 31), date(2023, 10, 31), date(2023, 12, 31), date(2024, 2, 29),
         date(2024, 3, 31)]
SPLITS = 20


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def _level(p_fit: np.ndarray, y_fit: np.ndarray, p: np.ndarray) -> np.ndarray:
    from dashboard import recalibration as rc

    return rc.shifted(p, rc.fit_shift(p_fit, y_fit, prior_sd=100.0))


def _platt_coefficients(p_fit: np.ndarray, y_fit: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of the outcome's logistic regression on logit p (maximum likelihood)."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p_fit)[:, None], y_fit)
    return float(fit.intercept_[0]), float(fit.coef_[0, 0])


def _platt(p_fit: np.ndarray, y_fit: np.ndarray, p: np.ndarray) -> np.ndarray:
    intercept, slope = _platt_coefficients(p_fit, y_fit)
    return 1.0 / (1.0 + np.exp(-(intercept + slope * _logit(p))))


def _isotonic(p_fit: np.ndarray, y_fit: np.ndarray, p: np.ndarray) -> np.ndarray:
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p_fit, y_fit).predict(p)


MAPS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "level": _level, "level+slope": _platt, "isotonic": _isotonic}


def _out_of_fold(fit: Callable, p: np.ndarray, y: np.ndarray, split: int) -> np.ndarray:
    half = np.random.default_rng(split).integers(0, 2, len(p)) == 1
    q = np.empty(len(p))
    for part in (half, ~half):
        q[part] = fit(p[~part], y[~part], p[part])
    return q


def rows_of(seed: int, folder: Path) -> pl.DataFrame:
    from dashboard.evaluation import evaluate_risk
    from dashboard.ingest import load_world
    from dashboard.store import Store
    from dashboard.synthetic.shocks import ShockWorldConfig, generate_shock_world

    db = folder / f"shock{seed}.duckdb"
    with Store(db) as store:
        load_world(store, generate_shock_world(ShockWorldConfig(seed=seed)).frames, name="second-world")
        evaluation = evaluate_risk(store, DATES)
    print(evaluation.summary(), flush=True)
    return evaluation.rows


def main(argv: list[str]) -> int:
    from dashboard.evaluation import ece_noise_floor
    from dashboard.risk import expected_calibration_error as ece

    seed = int(argv[0]) if argv else 7
    rows = rows_of(seed, Path(tempfile.mkdtemp(prefix="calibration-oracle-")))
    ys, products, in_sample = [], [], {name: [] for name in ("level", "level+slope")}
    out_of_fold: dict[str, list[list[np.ndarray]]] = {name: [[] for _ in range(SPLITS)] for name in MAPS}
    print(f"\nsecond world seed {seed}: ECE fitted on the judged outcomes themselves (not knowable at the as-of date)")
    for as_of in DATES:
        frame = rows.filter(pl.col("as_of") == as_of)
        if frame.is_empty():
            continue
        y, p = frame["late"].to_numpy().astype(float), frame["p_product"].to_numpy()
        ys.append(y)
        products.append(p)
        line = f"{as_of} {len(y)} invoices, {y.mean():.0%} late, mean P(late) {p.mean():.0%}: product {ece(y, p):.3f}"
        for name in in_sample:
            q = MAPS[name](p, y, p)
            in_sample[name].append(q)
            line += f"; {name} {ece(y, q):.3f}"
        for name, fit in MAPS.items():
            folds = [_out_of_fold(fit, p, y, split) for split in range(SPLITS)]
            for split, q in enumerate(folds):
                out_of_fold[name][split].append(q)
            line += f"; {name} out of fold {np.mean([ece(y, q) for q in folds]):.3f}"
        intercept, slope = _platt_coefficients(p, y)
        print(line + f"; noise floor {ece_noise_floor(p):.3f}; in-sample level+slope: intercept {intercept:+.2f}, "
              f"slope {slope:.2f}", flush=True)
    y = np.concatenate(ys)
    print(f"pooled, {len(y)} invoices: product {ece(y, np.concatenate(products)):.3f}; noise floor "
          f"{ece_noise_floor(np.concatenate(products)):.3f}")
    for name, parts in in_sample.items():
        print(f"  {name}, in sample: {ece(y, np.concatenate(parts)):.3f}")
    for name, splits in out_of_fold.items():
        values = [ece(y, np.concatenate(parts)) for parts in splits]
        print(f"  {name}, out of fold: mean {np.mean(values):.3f} over {SPLITS} splits "
              f"(range {min(values):.3f}-{max(values):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
