"""Forecast commands: ``forecast`` (13 weeks of expected cash) and ``backtest-forecast``.

``python -m dashboard forecast --as-of YYYY-MM-DD [--db] [--json] [--no-backtest]`` prints 13
weeks, each with week_start, p10, p50, p90 (our model's cash from invoices open on the as-of
date), new_p50 (from invoices not issued yet) and, after the backtest the Overview also runs,
the forecast in use (``forecast``, our model blended with the run-rate) with its calibrated
``forecast_p10`` / ``forecast_p90``; the backtest is read from the store when kept for the loaded
data (:mod:`dashboard.forecast_kept`), else run and kept, and stderr says which.
``python -m dashboard backtest-forecast [--db] [--json]`` prints WAPE per horizon next to the two
naive forecasts, and the interval coverage (computed on every call: its parameters are its own).
"""

from __future__ import annotations

import argparse
import json
import sys

from dashboard.cli import add_db_argument, parse_as_of
from dashboard.dates import latest_data_date
from dashboard.errors import ForecastError
from dashboard.store import open_store


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    forecast = subparsers.add_parser("forecast", help="13-week cash-collection forecast with P10/P50/P90")
    add_db_argument(forecast)
    forecast.add_argument("--as-of", default=None, help="YYYY-MM-DD (default: the newest date in the data)")
    forecast.add_argument("--weeks", type=int, default=13, help="weeks to forecast (default: 13)")
    forecast.add_argument("--paths", type=int, default=1000, help="Monte Carlo paths (default: 1000)")
    forecast.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    forecast.add_argument("--json", action="store_true", dest="as_json", help="print the weeks as JSON")
    forecast.add_argument(
        "--no-backtest", action="store_false", dest="backtest",
        help="skip the backtest: print our model's forecast alone with its uncalibrated Monte Carlo band "
             "(by default the forecast in use is printed, as on the Overview: our model blended with the run-rate "
             "and its band calibrated on this business's own past forecasts)",
    )
    forecast.add_argument("--backtest-paths", type=int, default=None,
                          help="Monte Carlo paths per past forecast in the backtest (default: as the Overview, so "
                               "both read the same backtest, kept in the store once computed for the loaded data)")
    forecast.set_defaults(func=run_forecast)

    backtest = subparsers.add_parser(
        "backtest-forecast", help="the forecast made at past dates against the cash that came in"
    )
    add_db_argument(backtest)
    backtest.add_argument("--every-weeks", type=int, default=4, help="weeks between as-of dates (default: 4)")
    backtest.add_argument("--span-weeks", type=int, default=52, help="weeks of history to cover (default: 52)")
    backtest.add_argument("--paths", type=int, default=500, help="Monte Carlo paths per forecast (default: 500)")
    backtest.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    backtest.set_defaults(func=run_backtest)




def run_forecast(args: argparse.Namespace) -> int:
    from dashboard.forecast import BACKTEST_PATHS, calibrate_forecast, forecast_cash
    from dashboard.forecast_kept import backtest_for
    from dashboard.progress import printed_progress

    as_of = parse_as_of(args.as_of)
    with open_store(args.db) as store:
        if as_of is None:
            as_of = latest_data_date(store)
            if as_of is None:
                msg = f"The store {str(store.path)!r} holds no invoices or payments yet; give --as-of or load data."
                raise ForecastError(msg)
        result = forecast_cash(store, as_of, weeks=args.weeks, n_paths=args.paths, seed=args.seed)
        if args.backtest and result.open_invoice_count:
            # the same backtest and calibration as the Overview's, so both state the same forecast;
            # kept in the store once computed, so the next call (or the Overview) reads it back
            backtest = backtest_for(store, weeks=args.weeks, n_paths=args.backtest_paths or BACKTEST_PATHS,
                                    progress=printed_progress())
            print(backtest.describe(), file=sys.stderr)
            result = calibrate_forecast(result, backtest.result)
    if args.as_json:
        print(json.dumps(result.to_rows(), indent=2))
    else:
        print(result.summary())
    return 0


def run_backtest(args: argparse.Namespace) -> int:
    from dashboard.forecast import backtest_dates, backtest_forecast

    with open_store(args.db) as store:
        dates = backtest_dates(store, every_weeks=args.every_weeks, span_weeks=args.span_weeks)
        result = backtest_forecast(store, as_of_dates=dates, n_paths=args.paths)
    if args.as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        four = result.wape_first(min(4, result.table.height))
        verdict = "" if result.beats_run_rate(4) else " Our forecast did NOT beat the naive run-rate here."
        print(
            f"{len(result.as_of_dates)} forecasts from {result.as_of_dates[0].isoformat()} to "
            f"{result.as_of_dates[-1].isoformat()}: WAPE over the first 4 weeks {four['wape_forecast']:.1%} for the "
            f"forecast in use ({result.mean_weight(4):.0%} our pay-date model, level-corrected on its recent record, alone "
            f"{four['wape_model']:.1%}; the rest "
            f"the run-rate) (naive run-rate {four['wape_last_13_weeks']:.1%}, due-date naive {four['wape_due_dates']:.1%}); "
            f"the calibrated P10-P90 band held the actual {result.coverage:.0%} of the time.{verdict}"
        )
    return 0
