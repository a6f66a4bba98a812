"""Worklist commands: ``worklist`` (build and export the day's work), ``outcomes`` (import
what happened) and ``policy`` (show, validate, or save the default collections policy)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import polars as pl

from dashboard.cli import add_db_argument, parse_as_of
from dashboard.dates import latest_data_date
from dashboard.errors import PolicyValidationError, WorklistError
from dashboard.export_history import build_export_files, save_export
from dashboard.exports import format_from_path, read_outcomes_csv
from dashboard.filters import Filters
from dashboard.policy import (
    current_policy,
    list_policy_versions,
    normalize_rules,
    validate_policy,
)
from dashboard.store import open_store
from dashboard.worklist import build_worklist, record_outcomes


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    worklist = subparsers.add_parser(
        "worklist", help="build the prioritized collections worklist for a day and export it (csv, xlsx, json)"
    )
    add_db_argument(worklist)
    worklist.add_argument("--as-of", default=None, help="YYYY-MM-DD (default: the newest date in the data)")
    worklist.add_argument("--out", required=True, help="output file: .csv, .xlsx or .json")
    worklist.add_argument(
        "--capacity", type=int, default=None, help="most contacts per collector per day (default: no limit)"
    )
    worklist.add_argument("--owner", action="append", default=[], help="only this collector's customers (repeatable)")
    worklist.add_argument(
        "--all-days",
        action="store_true",
        help="export the lines scheduled for later days too (only today's are recorded)",
    )
    worklist.add_argument(
        "--no-model", action="store_true", help="ignore the risk model: priority from the days-past-due rule"
    )
    worklist.add_argument(
        "--models-dir",
        default=None,
        help="model registry folder (default: $RECOUP_MODELS_DIR, else <store>.models/ beside the store; "
        "the shipped models/ is the read-only default)",
    )
    worklist.add_argument(
        "--by",
        default=os.environ.get("USER") or "command line",
        help="who exports (kept in the export history; default: $USER)",
    )
    worklist.add_argument(
        "--leave-out-holdout",
        action="store_true",
        help="with a running pilot: do not export its holdout customers (default: a separate, marked file)",
    )
    worklist.add_argument("--json", action="store_true", dest="as_json", help="print the summary as JSON")
    worklist.set_defaults(func=run_worklist)

    outcomes = subparsers.add_parser(
        "outcomes", help="import worklist outcomes (done, skipped, overridden, promise, paid)"
    )
    add_db_argument(outcomes)
    outcomes.add_argument(
        "file", help="CSV with action_id (or line_id) and outcome; optional reason, promise_date, promise_amount"
    )
    outcomes.set_defaults(func=run_outcomes)

    policy = subparsers.add_parser("policy", help="show or validate the collections policy")
    add_db_argument(policy)
    policy.add_argument("--validate", default=None, metavar="FILE.csv", help="validate a policy CSV without saving it")
    policy.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    policy.set_defaults(func=run_policy)


def run_worklist(args: argparse.Namespace) -> int:
    export_format = format_from_path(args.out)
    if args.capacity is not None and args.capacity < 1:
        msg = f"--capacity must be at least 1 contact per collector per day; got {args.capacity!r}"
        raise WorklistError(msg)
    as_of = parse_as_of(args.as_of)
    with open_store(args.db) as store:
        if as_of is None:
            as_of = latest_data_date(store)
            if as_of is None:
                msg = f"The store {str(store.path)!r} holds no invoices yet; load data or give --as-of."
                raise WorklistError(msg)
        result = build_worklist(
            store,
            as_of,
            filters=Filters(owner=tuple(args.owner)),
            capacity_per_collector=args.capacity,
            use_model=not args.no_model,
            models_dir=args.models_dir,
        )
        prepared = build_export_files(
            store, result, lines=result.lines if args.all_days else None, include_holdout=not args.leave_out_holdout
        )
        # the files first (the history beside the store, and --out), the record after
        record = save_export(store, result, prepared, export_format=export_format, author=args.by, copy_to=args.out,
                             filters=Filters(owner=tuple(args.owner)).to_dict())
    for note in (*result.notes, *([result.pilot_note] if result.pilot_note else []), *prepared.notes):
        print(f"note: {note}", file=sys.stderr)
    summary = {
        **result.summary(),
        "pilot_holdout": result.holdout.height,
        "out": str(args.out),
        "format": export_format,
        "recorded": record.newly_recorded,
        "export_folder": str(record.folder),
    }
    if args.as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{result.summary_line()} -> {args.out}")
    return 0


def run_outcomes(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        msg = f"The outcomes file {str(path)!r} does not exist."
        raise WorklistError(msg)
    frame = read_outcomes_csv(path)
    with open_store(args.db) as store:
        count = record_outcomes(store, frame)
    print(f"{count} outcome(s) recorded from {path.name}")
    return 0


def run_policy(args: argparse.Namespace) -> int:
    if args.validate:
        rules = normalize_rules(pl.read_csv(args.validate, infer_schema_length=None))
        faults = validate_policy(rules)
        if args.as_json:
            print(
                json.dumps(
                    [{"kind": f.kind, "rules": list(f.rule_ids), "message": f.message} for f in faults], indent=2
                )
            )
        if faults:
            lines = "\n".join(f"- {f.message}" for f in faults)
            raise PolicyValidationError(f"{args.validate}: {len(faults)} problem(s):\n{lines}", faults=faults)
        if not args.as_json:
            print(f"{args.validate}: {rules.height} rules, no problems found")
        return 0
    with open_store(args.db) as store:
        version, rules = current_policy(store)
        versions = list_policy_versions(store)
    if args.as_json:
        print(
            json.dumps(
                {"active_version": version, "versions": versions.height, "rules": json.loads(rules.write_json())},
                indent=2,
                default=str,
            )
        )
    else:
        label = (
            f"policy version {version} (of {versions.height})" if version else "shipped default policy (not saved yet)"
        )
        print(f"{label}: {rules.height} rules, {rules.filter(pl.col('active')).height} active")
    return 0
