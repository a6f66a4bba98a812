"""Ingest commands: ``load FILE...``, ``undo-load N`` and ``seed``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dashboard.cli import add_db_argument, parse_as_of
from dashboard.config import SAMPLE_DATA_DIR
from dashboard.errors import RecoupError, UnknownColumnError
from dashboard.ingest.load import LoadResult, load_file, preview_file, seed_store
from dashboard.schema import LOAD_ORDER
from dashboard.store import Store, open_store


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    load = subparsers.add_parser("load", help="load extract files (CSV, XLSX, Parquet) into the store")
    add_db_argument(load)
    load.add_argument("files", nargs="+", metavar="FILE", help="extract files; parents are loaded before children")
    load.add_argument("--table", default=None, help="target table (default: detected from the headers)")
    load.add_argument(
        "--map", action="append", default=[], metavar='"Source Header=canonical_column"',
        help="map a source header to a canonical column (repeatable); '=' with nothing after ignores the header",
    )
    load.add_argument("--accept-fuzzy", action="store_true", help="use guessed (fuzzy) header matches without asking")
    load.add_argument(
        "--accept-drift", action="store_true",
        help="load a vendor export even though its columns differ from the last one loaded from that source",
    )
    load.add_argument("--as-of", default=None, metavar="YYYY-MM-DD", help="the date the extract describes")
    load.add_argument("--max-reject-share", type=float, default=0.2, help="refuse a file when more rows than this share fail")
    load.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    load.set_defaults(func=run_load)

    undo = subparsers.add_parser("undo-load", help="take back every row one load brought in (asks for --yes)")
    add_db_argument(undo)
    undo.add_argument("load_id", type=int, metavar="N", help="the load number (see `python -m dashboard status`)")
    undo.add_argument("--yes", action="store_true", help="do it; without --yes only say what would go")
    undo.add_argument("--who", default=None, help="your name, recorded with the undo")
    undo.set_defaults(func=run_undo)

    seed = subparsers.add_parser("seed", help="create the store and load sample_data/ if it has no invoices")
    add_db_argument(seed)
    seed.add_argument("--sample-dir", default=str(SAMPLE_DATA_DIR), help="folder of canonical sample CSVs")
    seed.set_defaults(func=run_seed)


def parse_mapping(items: list[str]) -> dict[str, str]:
    """``["Inv #=invoice_id", "Notes="]`` -> ``{"Inv #": "invoice_id", "Notes": ""}``."""
    mapping: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            msg = f"--map {item!r} needs the form \"Source Header=canonical_column\""
            raise UnknownColumnError(msg)
        source, target = item.rsplit("=", 1)
        mapping[source.strip()] = target.strip()
    return mapping




def run_undo(args: argparse.Namespace) -> int:
    from dashboard.ingest.undo import plan_undo, undo_load

    with open_store(args.db) as store:
        plan = plan_undo(store, args.load_id)
        if not args.yes or not plan.possible:
            print(plan.summary())
            if plan.possible:
                print("Nothing was changed. Run again with --yes to undo it.")
            return 0 if plan.possible and args.yes else 3
        done = undo_load(store, args.load_id, who=args.who)
    print(done.summary().replace("Undoing", "Undid", 1).replace("takes back", "took back", 1))
    return 0


def run_load(args: argparse.Namespace) -> int:
    mapping = parse_mapping(args.map) or None
    as_of = parse_as_of(args.as_of)
    paths = [Path(f) for f in args.files]
    failures = 0
    results: list[dict[str, object]] = []
    with open_store(args.db) as store:
        # Parents first: order files by the table their headers say they are for.
        order: list[tuple[int, int, Path]] = []
        for position, path in enumerate(paths):
            try:
                table = args.table or (_table_of(path, store) if len(paths) > 1 else None)
                rank = LOAD_ORDER.index(table) if table in LOAD_ORDER else len(LOAD_ORDER)
            except RecoupError:
                rank = len(LOAD_ORDER)  # reported when it is loaded
            order.append((rank, position, path))
        for _rank, _position, path in sorted(order):
            try:
                result = load_file(
                    store, path, table=args.table, mapping=mapping, as_of_date=as_of, accept_fuzzy=args.accept_fuzzy,
                    accept_drift=args.accept_drift,
                    max_reject_share=args.max_reject_share, who="cli",
                )
            except RecoupError as exc:
                failures += 1
                print(f"error: {exc}", file=sys.stderr)
                results.append({"file_name": path.name, "status": "refused", "message": str(exc)})
                continue
            results.append(result.to_dict())
            if not args.as_json:
                print(_line(result))
    if args.as_json:
        print(json.dumps({"files": results, "refused": failures}, indent=2, default=str))
    return 1 if failures else 0


_SAMPLE_BYTES = 65536


def _table_of(path: Path, store: Store) -> str:
    """The table a file is for, from its headers; a large CSV is judged by its first lines."""
    if path.suffix.lower() in (".csv", ".tsv", ".txt") and path.is_file() and path.stat().st_size > 16 * _SAMPLE_BYTES:
        with path.open("rb") as handle:
            head = handle.read(_SAMPLE_BYTES)
        return preview_file(head[: head.rfind(b"\n") + 1], file_name=path.name, store=store).table
    return preview_file(path, store=store).table


def _line(result: LoadResult) -> str:
    line = result.message
    if result.warnings:
        line += f" ({len(result.warnings)} warning{'s' if len(result.warnings) != 1 else ''}: {result.warnings[0]}"
        line += "; ...)" if len(result.warnings) > 1 else ")"
    return line


def run_seed(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
        invoices = int(store.scalar("SELECT count(*) FROM invoices"))
        if invoices:
            print(f"{store.path}: store already has {invoices:,} invoices; nothing loaded")
            return 0
        results = seed_store(store, Path(args.sample_dir))
        counts = store.table_counts()
    loaded = sum(r.rows_loaded for r in results)
    rejected = sum(r.rows_rejected for r in results)
    print(
        f"{store.path}: seeded {loaded:,} rows from {len(results)} sample files "
        f"({counts['invoices']:,} invoices, {counts['customers']:,} customers, {counts['payments']:,} payments)"
        + (f"; {rejected:,} rows rejected" if rejected else "")
    )
    return 0
