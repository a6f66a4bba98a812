"""``python -m dashboard COMMAND ...``: scheduled, headless jobs.

Every command takes ``--db``, prints a one-line summary (or ``--json``), and exits non-zero
with a plain reason on stderr when it fails. Each concern registers its own subcommands in
its own module (``add_commands(subparsers)``); this file only wires them and turns domain
errors into messages.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from datetime import date

from dashboard.errors import CommandLineError, RecoupError

# Modules that define ``add_commands(subparsers) -> None``; each subparser sets
# ``func(args) -> int`` with ``set_defaults``.
COMMAND_MODULES: tuple[str, ...] = (
    "dashboard.cli_store",
    "dashboard.synthetic.cli",
    "dashboard.ingest.cli",
    "dashboard.metrics_cli",
    "dashboard.risk_cli",
    "dashboard.worklist_cli",
    "dashboard.pilot_cli",
    "dashboard.forecast_cli",
    "dashboard.health_cli",
    "dashboard.access_cli",
)


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--db`` option every command takes."""
    parser.add_argument(
        "--db",
        default=None,
        help="DuckDB store file (default: $RECOUP_DB, else data/recoup.duckdb)",
    )


def parse_as_of(text: str | None, *, option: str = "--as-of") -> date | None:
    """An ISO date typed on the command line (None stays None), or an error quoting it."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        msg = f"{option} must be a date like 2025-06-30 (YYYY-MM-DD); got {text!r}"
        raise CommandLineError(msg) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dashboard", description="Recoup command line")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RecoupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
