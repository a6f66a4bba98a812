"""``python -m dashboard kpis``: the CFO measures as of a date, as one line or JSON."""

from __future__ import annotations

import argparse
import json

from dashboard.cli import add_db_argument, parse_as_of
from dashboard.dates import latest_data_date
from dashboard.errors import MetricError
from dashboard.metrics import DEFAULT_BUCKETS, PERIODS, compute_kpis
from dashboard.store import open_store


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    kpis = subparsers.add_parser("kpis", help="AR, aging, DSO family and CEI as of a date")
    add_db_argument(kpis)
    kpis.add_argument("--as-of", default=None, help="YYYY-MM-DD (default: the newest date in the data)")
    kpis.add_argument("--period", default="month", choices=PERIODS,
                      help="period of DSO, CEI and turnover (default: the month ending on the as-of date)")
    kpis.add_argument("--buckets", default=",".join(str(b) for b in DEFAULT_BUCKETS),
                      help="aging bucket bounds in days past due (default: 30,60,90,120)")
    kpis.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    kpis.set_defaults(func=run_kpis)




def parse_buckets(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        msg = f"Aging buckets must be whole days separated by commas (e.g. 30,60,90,120); got {text!r}"
        raise MetricError(msg) from None


def run_kpis(args: argparse.Namespace) -> int:
    buckets = parse_buckets(args.buckets)
    as_of = parse_as_of(args.as_of)
    with open_store(args.db, read_only=False) as store:
        if as_of is None:
            as_of = latest_data_date(store)
            if as_of is None:
                msg = f"The store {str(store.path)!r} holds no invoices or payments yet; give --as-of or load data."
                raise MetricError(msg)
        result = compute_kpis(store, as_of, period=args.period, buckets=buckets)
    if args.as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.summary())
    return 0
