"""Worklist benchmark: build the prioritized worklist and export it, vs the bare DuckDB query.

    .venv/bin/python -m bench.bench_worklist --customers 22000     # ~1M invoices

Builds a generated world (``dashboard.synthetic``) into a store once (cached under bench/out/),
then times ``build_worklist`` (policy match, response rates, snoozes, cadence, priority,
capacity; no risk model, so the transparent fallback probability) and the three exports. The
bare baseline is the nearest thing a spreadsheet user would run: open invoices per customer,
ordered by amount, in one DuckDB query on the same store.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta
from pathlib import Path

from bench.common import emit_result, peak_rss_mb
from dashboard.csv_writer import to_csv_bytes
from dashboard.dates import latest_data_date
from dashboard.exports import to_json_bytes, to_xlsx_bytes
from dashboard.store import Store
from dashboard.worklist import build_worklist

OUT = Path(__file__).resolve().parent / "out"


def build(db: Path, customers: int) -> None:
    if db.exists():
        return
    from dashboard.ingest import load_world
    from dashboard.synthetic import WorldConfig, generate_world

    started = time.perf_counter()
    world = generate_world(WorldConfig(seed=11, n_customers=customers))
    with Store(db) as store:
        load_world(store, world.frames)
    print(f"built {world.frames['invoices'].height:,} invoices in {time.perf_counter() - started:.1f} s")


BARE = """
WITH paid AS (SELECT invoice_id, sum(amount) AS paid FROM payments WHERE payment_date <= ? GROUP BY 1),
open AS (
    SELECT i.customer_id, i.invoice_id, i.amount - coalesce(p.paid, 0) AS open_amount, ? - i.due_date AS days_past_due
    FROM invoices i LEFT JOIN paid p USING (invoice_id)
    WHERE i.invoice_date <= ? AND i.amount - coalesce(p.paid, 0) > 0.005
)
SELECT customer_id, sum(open_amount) AS open_amount, max(days_past_due) AS days_past_due, count(*) AS invoices
FROM open WHERE days_past_due > 0 GROUP BY 1 ORDER BY open_amount DESC
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=22_000)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    db = args.db or OUT / f"worklist-{args.customers}.duckdb"
    build(db, args.customers)
    with Store(db) as store:
        invoices = store.table_counts()["invoices"]
        as_of = latest_data_date(store) - timedelta(days=14)  # a working day inside the history
        size = f"{invoices:,} invoices"

        t0 = time.perf_counter()
        result = build_worklist(store, as_of, use_model=False)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        bare = store.query(BARE, [as_of, as_of, as_of])
        bare_seconds = time.perf_counter() - t0
        print(
            f"as of {as_of}: {result.lines.height:,} worklist lines, {result.held.height:,} held; "
            f"bare query {bare.height:,} overdue customers"
        )
        emit_result(
            "build_worklist (no model)",
            size=size,
            seconds=built,
            baseline="DuckDB: overdue customers by amount",
            baseline_seconds=bare_seconds,
            note=f"{result.lines.height:,} lines",
        )
        for name, export in (("CSV", to_csv_bytes), ("XLSX", to_xlsx_bytes)):
            t0 = time.perf_counter()
            data = export(result.lines)
            emit_result(
                f"export {name}",
                size=f"{result.lines.height:,} lines",
                seconds=time.perf_counter() - t0,
                note=f"{len(data):,} bytes",
            )
        t0 = time.perf_counter()
        data = to_json_bytes(result, result.lines)
        emit_result(
            "export JSON",
            size=f"{result.lines.height:,} lines",
            seconds=time.perf_counter() - t0,
            note=f"{len(data):,} bytes",
        )
    print(f"peak RSS {peak_rss_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
