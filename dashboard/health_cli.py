"""``python -m dashboard health``: the data-health report as one line or JSON."""

from __future__ import annotations

import argparse
import json

from dashboard.cli import add_db_argument, parse_as_of
from dashboard.dates import latest_data_date
from dashboard.errors import HealthError
from dashboard.health import health_report, load_health
from dashboard.store import open_store


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    health = subparsers.add_parser("health", help="data health: completeness, bad dates, duplicates, outliers, currency mix")
    add_db_argument(health)
    health.add_argument("--as-of", default=None, help="YYYY-MM-DD (default: the newest date in the data)")
    health.add_argument("--load", type=int, default=None, metavar="LOAD_ID", help="check one load instead of the whole store")
    health.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    health.set_defaults(func=run_health)




def run_health(args: argparse.Namespace) -> int:
    as_of = parse_as_of(args.as_of)
    with open_store(args.db, read_only=True) as store:
        if args.load is not None:
            report = load_health(store, args.load, as_of=as_of)
        else:
            as_of = as_of or latest_data_date(store)
            if as_of is None:
                msg = f"The store {str(store.path)!r} holds no data yet; load an extract first."
                raise HealthError(msg)
            report = health_report(store, as_of)
    print(json.dumps(report.to_dict(), indent=2, default=str) if args.as_json else report.summary())
    return 0
