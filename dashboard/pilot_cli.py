"""Pilot commands: ``pilot start`` (plan, show balance and power, store), ``pilot status`` and
``pilot report`` (per group, the difference with its 90% interval, and the verdict)."""

from __future__ import annotations

import argparse
import json
import os

from dashboard.cli import add_db_argument, parse_as_of
from dashboard.dates import latest_data_date
from dashboard.errors import CommandLineError, PilotError
from dashboard.pilot import (
    DEFAULT_HOLDOUT_SHARE,
    DEFAULT_KILL_DAYS,
    PILOT_LENGTHS,
    assignments,
    cancel_pilot,
    get_pilot,
    latest_pilot,
    list_pilots,
    plan_pilot,
    start_pilot,
)
from dashboard.pilot_report import pilot_report
from dashboard.store import open_store


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    pilot = subparsers.add_parser(
        "pilot", help="a pilot with a randomized holdout: start it, see its status, read its report"
    )
    actions = pilot.add_subparsers(dest="pilot_command", required=True)

    start = actions.add_parser("start", help="plan a pilot (balance check, power) and start it")
    add_db_argument(start)
    start.add_argument("--name", required=True, help="the pilot's name")
    start.add_argument("--start", default=None, help="first day YYYY-MM-DD (default: the newest date in the data)")
    start.add_argument("--days", type=int, default=90, choices=PILOT_LENGTHS, help="length in days (default 90)")
    start.add_argument(
        "--holdout", type=float, default=DEFAULT_HOLDOUT_SHARE, help="share of customers held out (default 0.10)"
    )
    scope = start.add_mutually_exclusive_group()
    scope.add_argument("--segment", default=None, help="only customers in this segment at the start (e.g. slow)")
    scope.add_argument("--collector", default=None, help="only this collector's customers")
    start.add_argument(
        "--kill-days",
        type=float,
        default=DEFAULT_KILL_DAYS,
        help=f"kill criterion: the worklist group must pay at least this many days sooner (default {DEFAULT_KILL_DAYS})",
    )
    start.add_argument("--dry-run", action="store_true", help="show the plan (balance, power) without starting it")
    start.add_argument("--by", default=os.environ.get("USER") or "command line", help="who starts it")
    start.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    start.set_defaults(func=run_start)

    status = actions.add_parser("status", help="the pilots in the store and their groups")
    add_db_argument(status)
    status.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    status.set_defaults(func=run_status)

    report = actions.add_parser("report", help="the pilot's report: per group, the difference, the verdict")
    add_db_argument(report)
    report.add_argument("--pilot", default=None, help="pilot id (default: the running or latest pilot)")
    report.add_argument("--as-of", default=None, help="YYYY-MM-DD (default: the newest date in the data)")
    report.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    report.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    report.set_defaults(func=run_report)

    cancel = actions.add_parser("cancel", help="stop a pilot: the worklist covers its holdout again")
    add_db_argument(cancel)
    cancel.add_argument("pilot_id", help="the pilot's id (see pilot status)")
    cancel.set_defaults(func=run_cancel)


def run_start(args: argparse.Namespace) -> int:
    start = parse_as_of(args.start, option="--start")
    scope_kind, scope_value = "all", None
    if args.segment:
        scope_kind, scope_value = "segment", args.segment
    elif args.collector:
        scope_kind, scope_value = "collector", args.collector
    with open_store(args.db) as store:
        if start is None:
            start = latest_data_date(store)
            if start is None:
                msg = f"The store {str(store.path)!r} holds no invoices yet; load data or give --start."
                raise CommandLineError(msg)
        plan = plan_pilot(
            store,
            name=args.name,
            start=start,
            days=args.days,
            holdout_share=args.holdout,
            scope_kind=scope_kind,
            scope_value=scope_value,
            kill_days=args.kill_days,
        )
        if not args.dry_run:
            start_pilot(store, plan, created_by=args.by)
    if args.as_json:
        print(json.dumps({**plan.to_dict(), "started": not args.dry_run}, indent=2, default=str))
        return 0
    print(plan.summary())
    for row in plan.balance.to_dicts():
        flag = "  <- more than chance allows" if row["unusual"] else ""
        print(
            f"  {row['variable']}: worklist {row['worklist']:,.2f}, holdout {row['holdout']:,.2f}, "
            f"standardized difference {row['standardized_difference']:+.3f}{flag}"
        )
    print(f"{'planned (dry run, nothing stored)' if args.dry_run else 'started'}: {plan.pilot.pilot_id}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
        pilots = list_pilots(store)
        rows = []
        for pilot in pilots:
            arms = assignments(store, pilot.pilot_id)["arm"].value_counts()
            counts = {r["arm"]: int(r["count"]) for r in arms.to_dicts()}
            rows.append({**pilot.to_dict(), "customers": counts, "text": pilot.describe()})
    if args.as_json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print("No pilot yet: start one with `python -m dashboard pilot start --name NAME`.")
    for row in rows:
        counts = row["customers"]
        print(
            f"{row['pilot_id']}: {row['text']}; {counts.get('worklist', 0):,} worklist and "
            f"{counts.get('holdout', 0):,} holdout customers"
        )
    return 0


def run_report(args: argparse.Namespace) -> int:
    as_of = parse_as_of(args.as_of)
    with open_store(args.db) as store:
        if as_of is None:
            as_of = latest_data_date(store)
        if as_of is None:
            msg = f"The store {str(store.path)!r} holds no data yet; give --as-of."
            raise CommandLineError(msg)
        pilot = get_pilot(store, args.pilot) if args.pilot else latest_pilot(store, as_of)
        if pilot is None:
            msg = "No pilot in this store yet: start one with `python -m dashboard pilot start --name NAME`."
            raise PilotError(msg)
        report = pilot_report(store, pilot, as_of, resamples=args.resamples)
    if args.as_json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
        return 0
    print(f"{pilot.describe()} — report as of {as_of.isoformat()}")
    print(report.verdict())
    for row in report.table().to_dicts():
        print(
            f"  {row['figure']}: worklist {row['worklist_group']}, holdout {row['holdout_group']}, "
            f"difference {row['difference']} ({row['interval']})"
        )
    print(report.censoring_note())
    for note in report.notes:
        print(f"note: {note}")
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
        pilot = cancel_pilot(store, args.pilot_id)
    print(f"cancelled: {pilot.describe()}")
    return 0
