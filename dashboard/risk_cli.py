"""Risk-model commands: ``train`` and ``score``.

``python -m dashboard train [--db] [--as-of]`` trains, tests and registers a model and prints
its id, its held-out metrics next to the customer-history baseline's and which of the two scores
(and why) as JSON; the scores for the data's last date are computed and kept. ``python -m
dashboard score --as-of YYYY-MM-DD --out FILE.csv`` scores every open invoice with the scorer in
use (the active model, or the baseline it chose, or the baseline when there is no model), writes
the CSV and stores the scores.
``python -m dashboard check-model [--recalibrate]`` says whether the active model still fits
the data (exit 0 when it does or was recalibrated, 3 when it needs action).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import polars as pl

from dashboard.cli import add_db_argument, parse_as_of
from dashboard.dates import latest_data_date
from dashboard.errors import RiskArgumentError
from dashboard.store import open_store


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train, test and register a payment-risk model")
    add_db_argument(train)
    train.add_argument("--as-of", default=None, help="data cut YYYY-MM-DD (default: newest date in the store)")
    train.add_argument(
        "--models-dir",
        default=None,
        help="model registry folder (default: $RECOUP_MODELS_DIR, else <store>.models/ beside the store; the shipped models/ is the read-only default)",
    )
    train.add_argument("--calibration", choices=("isotonic", "sigmoid"), default="sigmoid")
    train.add_argument("--num-leaves", type=int, default=15)
    train.add_argument("--n-estimators", type=int, default=300)
    train.add_argument("--no-activate", action="store_true", help="register without making it the active model")
    train.set_defaults(func=run_train)

    score = subparsers.add_parser("score", help="score open invoices with the active model")
    add_db_argument(score)
    score.add_argument("--as-of", default=None, help="score date YYYY-MM-DD (default: newest date in the store)")
    score.add_argument("--out", default=None, help="CSV file to write (one row per open invoice)")
    score.add_argument(
        "--models-dir",
        default=None,
        help="model registry folder (default: $RECOUP_MODELS_DIR, else <store>.models/ beside the store; the shipped models/ is the read-only default)",
    )
    score.add_argument("--model", default=None, help="model id (default: the active model)")
    score.add_argument("--no-reasons", action="store_true", help="skip the plain-language reasons (faster)")
    score.add_argument("--json", action="store_true", dest="as_json", help="print a JSON summary")
    score.set_defaults(func=run_score)

    check = subparsers.add_parser(
        "check-model", help="does the active model still fit the data? (after a load: ok, recalibrate or retrain)"
    )
    add_db_argument(check)
    check.add_argument("--as-of", default=None, help="date YYYY-MM-DD (default: newest date in the store)")
    check.add_argument(
        "--models-dir",
        default=None,
        help="model registry folder (default: $RECOUP_MODELS_DIR, else <store>.models/ beside the store; the shipped models/ is the read-only default)",
    )
    check.add_argument(
        "--recalibrate",
        action="store_true",
        help="when the check says recalibrate, do it: save and activate the recalibrated model",
    )
    check.add_argument("--json", action="store_true", dest="as_json", help="print the verdict as JSON")
    check.set_defaults(func=run_check_model)


def run_train(args: argparse.Namespace) -> int:
    from dashboard.registry import save_model
    from dashboard.scoring import scorer_for, scores_for
    from dashboard.training import TrainingConfig, train_model

    config = TrainingConfig(
        as_of=parse_as_of(args.as_of),
        calibration_method=args.calibration,
        num_leaves=args.num_leaves,
        n_estimators=args.n_estimators,
    )
    with open_store(args.db) as store:
        result = train_model(store, config)
        path = save_model(result.model, models_dir=args.models_dir, db=args.db, activate=not args.no_activate)
        latest = latest_data_date(store)
        if not args.no_activate and latest is not None:  # the pages' default date: scored once, kept
            scores_for(store, latest, scorer=scorer_for(result.model, store=store, as_of=latest))
    card = result.model.card
    print(
        json.dumps(
            {
                "model_id": result.model.model_id,
                "path": str(path),
                "scoring": card["scoring"],
                "evidence": card["evidence"],
                "metrics": summary_metrics(card),
            },
            indent=2,
            default=str,
        )
    )
    return 0


def summary_metrics(card: dict[str, Any]) -> dict[str, Any]:
    """The headline test figures of a card, model next to baseline (no curves)."""
    metrics = card["metrics"]
    out: dict[str, Any] = {}
    for part in ("all", "not_yet_due", "overdue"):
        out[part] = {
            who: {k: v for k, v in metrics[part][who].items() if k != "curve"} for who in ("model", "baseline")
        }
    pay = dict(metrics["pay_date"])
    for key in ("p_paid_30d", "baseline_p_paid_30d"):
        if key in pay:
            pay[key] = {k: v for k, v in pay[key].items() if k != "curve"}
    out["pay_date"] = pay
    out["windows"] = card["windows"]
    return out


def run_score(args: argparse.Namespace) -> int:
    from dashboard.errors import ModelError
    from dashboard.registry import load_active_model, load_model
    from dashboard.scoring import SCORE_COLUMNS, save_scores, score_invoices, scorer_for

    model, problem = None, None
    if args.model:
        model = load_model(args.model, models_dir=args.models_dir, db=args.db)
    else:
        try:
            model = load_active_model(models_dir=args.models_dir, db=args.db)
        except ModelError as exc:  # no usable model: the baseline scores, and says so
            problem = str(exc)
    if model is not None and model.notice:
        print(f"note: {model.notice}", file=sys.stderr)
    with open_store(args.db) as store:
        as_of = parse_as_of(args.as_of) or latest_data_date(store)
        if as_of is None:
            msg = "The store holds no invoices, so there is nothing to score; load data first."
            raise RiskArgumentError(msg)
        scorer = scorer_for(model, store=store, as_of=as_of, problem=problem)
        scores = score_invoices(store, as_of, scorer=scorer, with_reasons=not args.no_reasons, keep_hazards=True)
        if args.out:  # the file first: a scoring run is stored only when its file was written
            write_scores_csv(scores.select(*SCORE_COLUMNS, "scorer"), Path(args.out))
        saved = save_scores(store, scores)
        scores = scores.drop("hazards")
    summary = {
        "model_id": scorer.model_id,
        "scorer": scorer.kind,
        "scorer_id": scorer.scorer_id,
        "why": scorer.reason,
        "as_of": as_of.isoformat(),
        "open_invoices": scores.height,
        "stored": saved,
        "out": args.out,
        "mean_p_late": float(scores["p_late"].mean()) if scores.height else None,
        "notice": model.notice if model is not None else problem,
    }
    if args.as_json:
        print(json.dumps(summary, indent=2))
    else:
        where = f", written to {args.out}" if args.out else ""
        print(f"Scored {scores.height:,} open invoices as of {as_of} with the {scorer.label}{where}. {scorer.reason}")
    return 0


def write_scores_csv(scores: pl.DataFrame, path: Path) -> Path:
    """The scores as CSV through the one CSV writer (formula-safe); a plain error when the
    file cannot be written."""
    from dashboard.csv_writer import write_csv

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_csv(scores, path)
    except OSError as exc:
        msg = f"Cannot write the scores to {str(path)!r} ({exc.strerror or exc}); nothing was stored."
        raise RiskArgumentError(msg) from None


def run_check_model(args: argparse.Namespace) -> int:
    from dashboard.model_check import check_model
    from dashboard.registry import load_active_model, save_model
    from dashboard.risk import recalibrate

    model = load_active_model(models_dir=args.models_dir, db=args.db)
    if model.notice:
        print(f"note: {model.notice}", file=sys.stderr)
    recalibrated = None
    with open_store(args.db) as store:
        as_of = parse_as_of(args.as_of) or latest_data_date(store)
        if as_of is None:
            msg = "The store holds no invoices, so there is nothing to check the model against; load data first."
            raise RiskArgumentError(msg)
        check = check_model(store, as_of, model=model)
        if args.recalibrate and check.advice == "recalibrate":
            recalibrated = recalibrate(store, model, as_of=as_of)
            save_model(recalibrated, models_dir=args.models_dir, db=args.db)
    if args.as_json:
        print(
            json.dumps(
                {
                    "model_id": check.model_id,
                    "as_of": as_of.isoformat(),
                    "advice": check.advice,
                    "reasons": check.reasons,
                    "drift": check.drift.to_dicts(),
                    "live": check.live,
                    "recalibrated_to": recalibrated.model_id if recalibrated else None,
                },
                indent=2,
                default=str,
            )
        )
    else:
        print(check.headline())
        if recalibrated is not None:
            fit = recalibrated.card["recalibration_fit"]
            print(
                f"Saved and activated {recalibrated.model_id} (calibration error {fit['ece_before']:.3f} -> {fit['ece_after']:.3f})."
            )
    return 0 if check.advice == "ok" or recalibrated is not None else 3
