"""KPI, history and segment-migration benchmark on a large store, against bare SQL.

    .venv/bin/python -m bench.bench_kpis --invoices 1000000

Builds a store from ``dashboard.synthetic`` (about ``--invoices`` invoices, with their
payments, adjustments, disputes and contacts, inserted straight into the tables), then in
the same run times, cold (first call after opening the store) and warm (repeated):

- what the Overview page computes (pages/overview.py on a cache miss), timed first so that its
  cold call is the first after opening the store, with each call's time: ``compute_kpis_many``
  for the as-of date and the previous month-end (the cards and the aging),
  ``kpi_history`` (24 months), ``top_overdue_customers``, ``roll_rate_matrices`` (12 months)
  with ``forward_roll_rates``;
- what the Segments page computes: ``segment_history`` (12 months) and ``migration``;
- bare SQL doing the nearest plain equivalent (aging by a GROUP BY on payments; 24
  month-end AR totals from cumulative flows; per-customer average days late for two
  month-ends) so the ratio shows what the full definitions cost.

A warm page load in the app is a ``st.cache_data`` hit; "warm" here is the uncached compute
with DuckDB's buffers warm, i.e. the worst case after a filter change.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import emit_result
from dashboard import metrics, segments
from dashboard.dates import latest_data_date
from dashboard.ledger import refresh_ledger
from dashboard.schema import LOAD_ORDER
from dashboard.store import Store
from dashboard.synthetic import WorldConfig, generate_world

MONTHS = 36


def build_store(path: Path, invoices: int, *, seed: int = 11) -> Store:
    customers = max(1, math.ceil(invoices / (MONTHS * 1.32)))
    t0 = time.perf_counter()
    world = generate_world(WorldConfig(seed=seed, n_customers=customers, months=MONTHS))
    print(f"generated {world.frames['invoices'].height:,} invoices for {customers:,} customers "
          f"in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    store = Store(path)
    for table in LOAD_ORDER:
        frame = world.frames.get(table)
        if frame is None or not frame.height:
            continue
        columns = ", ".join(frame.columns)
        with store.transaction() as cur:
            cur.register("incoming", frame)
            cur.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming").fetchall()
            cur.unregister("incoming")
    print(f"inserted in {time.perf_counter() - t0:.1f} s: {store.table_counts()['invoices']:,} invoices, "
          f"{store.table_counts()['payments']:,} payments")
    # The rows went in straight, not through a load: build the ledger as the loads would have.
    t0 = time.perf_counter()
    with store.transaction() as cur:
        documents = refresh_ledger(cur)
    seconds = time.perf_counter() - t0
    print(f"ledger built in {seconds:.2f} s for {documents:,} documents")
    emit_result("ledger built from scratch (refresh_ledger)", size=f"{documents:,} documents", seconds=seconds)
    return store


def timed(func: Callable[[], Any], repeat: int = 3) -> tuple[float, float]:
    """(first call, best of the next ``repeat``) in seconds."""
    t0 = time.perf_counter()
    func()
    cold = time.perf_counter() - t0
    warm = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        warm = min(warm, time.perf_counter() - t0)
    return cold, warm


def bare_aging(store: Store, day: str) -> Any:
    return store.query(f"""
        WITH p AS (SELECT invoice_id, sum(amount) AS paid FROM payments WHERE payment_date <= DATE '{day}' GROUP BY 1),
             a AS (SELECT invoice_id, sum(abs(amount)) AS adj FROM adjustments WHERE adjustment_date <= DATE '{day}' GROUP BY 1)
        SELECT CASE WHEN DATE '{day}' - due_date <= 0 THEN 0 WHEN DATE '{day}' - due_date <= 30 THEN 1
                    WHEN DATE '{day}' - due_date <= 60 THEN 2 WHEN DATE '{day}' - due_date <= 90 THEN 3
                    WHEN DATE '{day}' - due_date <= 120 THEN 4 ELSE 5 END AS bucket,
               sum(i.amount - coalesce(paid, 0) - coalesce(adj, 0))::DOUBLE AS amount
        FROM invoices i LEFT JOIN p USING (invoice_id) LEFT JOIN a USING (invoice_id)
        WHERE i.invoice_date <= DATE '{day}' GROUP BY 1""")


def bare_history(store: Store, day: str) -> Any:
    return store.query(f"""
        WITH flows AS (
            SELECT last_day(invoice_date) AS m, sum(amount) AS f FROM invoices GROUP BY 1
            UNION ALL SELECT last_day(payment_date), -sum(amount) FROM payments WHERE invoice_id IS NOT NULL GROUP BY 1
            UNION ALL SELECT last_day(adjustment_date), -sum(abs(amount)) FROM adjustments GROUP BY 1
        )
        SELECT m, sum(sum(f)) OVER (ORDER BY m)::DOUBLE AS ar FROM flows WHERE m <= DATE '{day}'
        GROUP BY m ORDER BY m DESC LIMIT 24""")


def bare_migration(store: Store, first: str, second: str) -> Any:
    return store.query(f"""
        WITH paid AS (SELECT invoice_id, max(payment_date) AS paid_date FROM payments GROUP BY 1),
             m AS (SELECT unnest([DATE '{first}', DATE '{second}']) AS month_end)
        SELECT m.month_end, i.customer_id,
               avg(greatest(least(coalesce(p.paid_date, m.month_end), m.month_end) - i.due_date, 0)) AS late
        FROM invoices i LEFT JOIN paid p USING (invoice_id)
        JOIN m ON i.due_date > m.month_end - INTERVAL 12 MONTH AND i.due_date <= m.month_end
        GROUP BY ALL""")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="reuse a store an earlier run built (skips building)")
    parser.add_argument("--skip-pages", action="store_true", help="do not time the pages with AppTest")
    args = parser.parse_args(argv)

    if args.db:
        path = Path(args.db)
    else:
        path = Path(tempfile.mkdtemp(prefix="recoup-bench-kpis-")) / "recoup.duckdb"
        build_store(path, args.invoices).close()

    store = Store(path)  # reopened: the first calls below are cold
    as_of = latest_data_date(store)
    assert as_of is not None
    previous = metrics.previous_month_end(as_of)
    months = segments.months_back(as_of, 12)
    day, first, second = as_of.isoformat(), months[-4].isoformat(), months[-1].isoformat()

    overview_parts: dict[str, Callable[[], Any]] = {  # what pages/overview.py computes on a cache miss
        "compute_kpis_many (as of, previous month-end)": lambda: metrics.compute_kpis_many(
            store, [as_of, previous], period="month"),  # the cards and their changes
        "kpi_history (24 months)": lambda: metrics.kpi_history(store, as_of, months=24),
        "top_overdue_customers": lambda: metrics.top_overdue_customers(store, as_of, limit=10),
        "roll_rate_matrices (12) + forward_roll_rates": lambda: metrics.forward_roll_rates(
            metrics.roll_rate_matrices(store, as_of, months=12)),
    }
    # wall and process CPU seconds (every DuckDB thread) per call: on a shared machine the CPU
    # seconds move much less with the other jobs than the wall seconds
    part_seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in overview_parts}

    def overview() -> None:
        for name, call in overview_parts.items():
            t0, c0 = time.perf_counter(), time.process_time()
            call()
            part_seconds[name].append((time.perf_counter() - t0, time.process_time() - c0))

    def segments_page() -> None:  # what pages/segments.py computes on a cache miss
        history = segments.segment_history(store, months)
        names = segments.customer_names(store)
        segments.migration_matrix(history, months[-4], months[-1])
        segments.worse_moves(history, months[-4], months[-1], names)

    rows = [  # the Overview first: its cold call is the first after opening the store
        ("Overview page (all calls)", overview, lambda: (bare_aging(store, day), bare_history(store, day))),
        ("compute_kpis", lambda: metrics.compute_kpis(store, as_of), lambda: bare_aging(store, day)),
        ("kpi_history 24 months", lambda: metrics.kpi_history(store, as_of, months=24), lambda: bare_history(store, day)),
        ("migration (2 months)", lambda: segments.migration(store, months[-4], months[-1]),
         lambda: bare_migration(store, first, second)),
        ("Segments page (all calls)", segments_page, lambda: bare_migration(store, first, second)),
    ]
    invoices = store.table_counts()["invoices"]
    print(f"as of {as_of}; {invoices:,} invoices")
    print(f"{'what':28} {'cold s':>8} {'warm s':>8} {'bare cold':>10} {'bare warm':>10} {'ratio warm':>10}")
    for name, ours, bare in rows:
        cold, warm = timed(ours)
        bare_cold, bare_warm = timed(bare)
        print(f"{name:28} {cold:8.3f} {warm:8.3f} {bare_cold:10.3f} {bare_warm:10.3f} {warm / bare_warm:10.1f}")
        emit_result(f"{name}, cold", size=f"{invoices:,} invoices", seconds=cold, baseline="bare DuckDB SQL, cold",
                    baseline_seconds=bare_cold)
        emit_result(f"{name}, warm (no page cache)", size=f"{invoices:,} invoices", seconds=warm,
                    baseline="bare DuckDB SQL, warm", baseline_seconds=bare_warm)
        if name.startswith("Overview"):
            cpu = [sum(seconds[i][1] for seconds in part_seconds.values()) for i in range(4)]
            print(f"  {'(process CPU seconds of the calls)':46} cold {cpu[0]:6.3f}  warm {min(cpu[1:]):6.3f}")
            for part, seconds in part_seconds.items():
                (wall, cpu_cold), best = seconds[0], min(seconds[1:])
                print(f"  {part:46} cold {wall:6.3f} (CPU {cpu_cold:5.3f})  warm {best[0]:6.3f} (CPU {best[1]:5.3f})")
                emit_result(f"Overview part: {part}, cold", size=f"{invoices:,} invoices", seconds=wall,
                            note=f"process CPU {cpu_cold:.3f} s")
    store.close()
    if not args.skip_pages:
        time_pages(path)
    print(f"store: {path} ({path.stat().st_size / 1e6:,.0f} MB); delete the folder when done")
    return 0


def time_pages(path: Path) -> None:
    """Render each page with Streamlit's AppTest on this store: the first run computes (cold,
    cache empty), the second is what a user sees on a rerun (st.cache_data hits)."""
    import os

    from streamlit.testing.v1 import AppTest

    os.environ["RECOUP_DB"] = str(path)
    root = Path(__file__).resolve().parent.parent
    at = AppTest.from_file(str(root / "app.py"), default_timeout=600)
    for page in ("pages/overview.py", "pages/segments.py"):  # overview is the default page
        t0 = time.perf_counter()
        if page == "pages/overview.py":
            at.run()
        else:
            at.switch_page(page).run()
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        at.run()
        warm = time.perf_counter() - t0
        status = "ok" if not at.exception else f"exception: {at.exception[0].value}"
        print(f"AppTest {page:22} cold {cold:6.2f} s  warm (cached rerun) {warm:6.2f} s  {status}")
        emit_result(f"{page} rendered (AppTest), first run", size=path.name, seconds=cold, note=status)
        emit_result(f"{page} rendered (AppTest), cached rerun", size=path.name, seconds=warm, note=status)


if __name__ == "__main__":
    raise SystemExit(main())
