"""Store commands: ``status`` and ``init``."""

from __future__ import annotations

import argparse
import json

from dashboard.cli import add_db_argument
from dashboard.lineage import load_history
from dashboard.store import open_store


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    status = subparsers.add_parser("status", help="row counts per table and the last loads")
    add_db_argument(status)
    status.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    status.add_argument("--loads", type=int, default=10, help="how many recent loads to list")
    status.set_defaults(func=run_status)

    init = subparsers.add_parser("init", help="create or migrate the store file")
    add_db_argument(init)
    init.set_defaults(func=run_init)


def store_status(store, *, last_loads: int = 10) -> dict:  # noqa: ANN001 - Store
    """Row counts per table and the most recent loads, as plain data (JSON-ready)."""
    loads = load_history(store, limit=last_loads)
    return {
        "db": str(store.path),
        "schema_version": store.schema_version(),
        "tables": store.table_counts(),
        "loads": json.loads(loads.write_json()) if loads.height else [],
    }


def run_status(args: argparse.Namespace) -> int:
    with open_store(args.db, read_only=False) as store:
        status = store_status(store, last_loads=args.loads)
    if args.as_json:
        print(json.dumps(status, indent=2, default=str))
    else:
        tables = status["tables"]
        print(
            f"{status['db']}: {tables['invoices']} invoices, {tables['payments']} payments, "
            f"{tables['customers']} customers, {tables['loads']} loads"
        )
    return 0


def run_init(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
        print(f"{store.path}: schema version {store.schema_version()}")
    return 0
