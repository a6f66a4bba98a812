"""``python -m dashboard generate``: write a seeded sample world (or rewrite sample_data/)."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from dashboard.cli import add_db_argument
from dashboard.config import SAMPLE_DATA_DIR
from dashboard.errors import SyntheticConfigError
from dashboard.synthetic.generator import generate_world
from dashboard.synthetic.model import WorldConfig, default_policy, read_policy
from dashboard.synthetic.writer import FILE_FORMATS, SAMPLE_CONFIG, write_world


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("generate", help="write a seeded sample world with known ground truth")
    add_db_argument(parser)  # accepted like every command; the generator does not touch the store
    parser.add_argument("--out", default=None, help="output folder (required unless --sample)")
    parser.add_argument("--sample", action="store_true", help=f"rewrite the committed sample in {SAMPLE_DATA_DIR}")
    parser.add_argument("--customers", type=int, default=None, help="number of customers (default 300)")
    parser.add_argument("--months", type=int, default=None, help="months of history (default 36)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 42)")
    parser.add_argument("--start", default=None, help="first day of the world, YYYY-MM-DD (default 2023-10-01)")
    parser.add_argument("--format", dest="file_format", choices=FILE_FORMATS, default="csv", help="file format")
    parser.add_argument("--policy", default=None, help="collections policy JSON file (default: the default cadence)")
    parser.add_argument("--no-truth", dest="include_truth", action="store_false", help="do not write truth/")
    parser.add_argument("--json", action="store_true", dest="as_json", help="print the summary as JSON")
    parser.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.sample:
        config = SAMPLE_CONFIG
        out_dir = SAMPLE_DATA_DIR
    else:
        if not args.out:
            msg = "Say where to write the world with --out FOLDER (or use --sample to rewrite sample_data/)."
            raise SyntheticConfigError(msg)
        config = WorldConfig()
        out_dir = Path(args.out)
    changes: dict[str, object] = {}
    if args.customers is not None:
        changes["n_customers"] = args.customers
    if args.months is not None:
        changes["months"] = args.months
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.start is not None:
        try:
            changes["start"] = date.fromisoformat(args.start)
        except ValueError as exc:
            msg = f"--start must be a date like 2023-10-01; got {args.start!r}."
            raise SyntheticConfigError(msg) from exc
    if args.sample and (changes or args.policy or args.file_format != "csv" or not args.include_truth):
        msg = "--sample rewrites sample_data/ from its fixed seed; it takes no other generation options."
        raise SyntheticConfigError(msg)
    config = replace(config, **changes)
    policy = read_policy(Path(args.policy)) if args.policy else default_policy()
    world = generate_world(config, policy)
    paths = write_world(world, out_dir, file_format=args.file_format, include_truth=args.include_truth)
    seconds = time.perf_counter() - started
    summary = {
        "out": str(out_dir),
        "customers": world.frames["customers"].height,
        "invoices": world.frames["invoices"].height,
        "payments": world.frames["payments"].height,
        "contacts": world.frames["contacts"].height,
        "files": len(paths),
        "start": config.start.isoformat(),
        "end_date": config.end_date.isoformat(),
        "seed": config.seed,
        "policy": policy.name,
        "seconds": round(seconds, 2),
    }
    if args.as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{summary['out']}: {summary['customers']} customers, {summary['invoices']} invoices, "
            f"{summary['payments']} payments ({config.start} to {config.end_date}, seed {config.seed}) "
            f"in {seconds:.1f} s"
        )
    return 0
