"""Benchmark: the 13-week forecast and a 1,000-path strategy simulation for ~100k open invoices.

Target (issue 7): forecast + 1,000-path simulation for 100k open invoices under 10 s on the
2-core machine. Builds (once) a generator world big enough to hold ~100k open invoices on
the as-of date, loads it into a DuckDB file, then times each stage and prints the figures.

    .venv/bin/python bench/bench_forecast.py [--customers 45000] [--months 14] [--db PATH]
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta
from pathlib import Path

from bench.common import emit_result
from dashboard.forecast import forecast_cash
from dashboard.paydist import fit_pay_delay_curves, open_invoices
from dashboard.simulate import build_book, current_strategy, measure_effects, simulate_strategies, strategy_from_policy
from dashboard.store import Store
from dashboard.synthetic import CollectionsPolicy, WorldConfig, default_policy, generate_world

TARGET_SECONDS = 10.0


def build(db: Path, customers: int, months: int) -> date:
    config = WorldConfig(seed=5, n_customers=customers, months=months, start=date(2024, 1, 1))
    as_of = config.end_date - timedelta(days=1)
    if db.exists():
        return as_of
    from dashboard.ingest import load_world

    started = time.perf_counter()
    world = generate_world(config, default_policy())
    generated = time.perf_counter()
    with Store(db) as store:
        load_world(store, world.frames)
    print(
        f"built world: {world.frames['invoices'].height:,} invoices, {world.frames['contacts'].height:,} contacts "
        f"(generate {generated - started:.1f} s, load {time.perf_counter() - generated:.1f} s)"
    )
    return as_of


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=45000)
    parser.add_argument("--months", type=int, default=14)
    parser.add_argument("--paths", type=int, default=1000, help="forecast paths")
    parser.add_argument("--sim-paths", type=int, default=1000, help="simulation paths")
    parser.add_argument("--db", default="/tmp/recoup_bench_forecast.duckdb")
    args = parser.parse_args()
    as_of = build(Path(args.db), args.customers, args.months)
    with Store(args.db) as store:
        t0 = time.perf_counter()
        result = forecast_cash(store, as_of, n_paths=args.paths)
        t3 = time.perf_counter()
        print(f"open invoices on {as_of}: {result.open_invoice_count:,} ({result.open_amount:,.0f} open)")
        print(f"forecast_cash end to end ({args.paths} paths): {t3 - t0:.2f} s")
        s0 = time.perf_counter()
        invoices = open_invoices(store, as_of)
        s1 = time.perf_counter()
        curves = fit_pay_delay_curves(store, as_of)
        s2 = time.perf_counter()
        forecast_cash(store, as_of, n_paths=args.paths, invoices=invoices, curves=curves, include_new=False)
        s3 = time.perf_counter()
        print(f"  parts: read open invoices {s1 - s0:.2f} s, fit pay-delay curves {s2 - s1:.2f} s, "
              f"Monte Carlo of open invoices {s3 - s2:.2f} s")

        strategy_a = current_strategy()
        t4 = time.perf_counter()
        effects = measure_effects(store, as_of, strategy_a=strategy_a)
        t5 = time.perf_counter()
        book = build_book(store, as_of, effects)
        t6 = time.perf_counter()
        b = strategy_from_policy(CollectionsPolicy(steps=default_policy().steps, daily_capacity=2000), name="capacity")
        sim = simulate_strategies(
            store, as_of, b, strategy_a=strategy_a, n_paths=args.sim_paths, effects=effects, book=book, chunk_paths=20
        )
        t7 = time.perf_counter()
        print(f"simulation book: {book.size:,} invoices ({int(book.is_new.sum()):,} new)")
        print(f"simulation: measure effects {t5 - t4:.2f} s, build book {t6 - t5:.2f} s, "
              f"{args.sim_paths} paths A and B {t7 - t6:.2f} s; total {t7 - t4:.2f} s")
        per_path = (t7 - t6) / args.sim_paths
        print(f"  {per_path * 1000:.0f} ms per path -> 1,000 paths ~ {per_path * 1000:.0f} s")
        low, mid, high = sim.effect("cash_collected")
        print(f"  capacity 2000/day vs none: cash in 13 weeks {mid:+,.0f} ({low:+,.0f} .. {high:+,.0f})")
        total = (t3 - t0) + (t6 - t4) + per_path * 1000
        print(f"forecast + 1,000-path simulation: {total:.1f} s (target {TARGET_SECONDS:.0f} s; "
              f"ratio {total / TARGET_SECONDS:.2f})")
        size = f"{result.open_invoice_count:,} open invoices"
        emit_result(f"forecast_cash ({args.paths} paths)", size=size, seconds=t3 - t0,
                    note="of which Monte Carlo of open invoices " f"{s3 - s2:.2f} s")
        emit_result("simulation: measure effects + build book", size=size, seconds=t6 - t4)
        emit_result(f"simulation A vs B, {args.sim_paths} paths", size=size, seconds=t7 - t6,
                    note=f"{per_path * 1000:.0f} ms/path")
        emit_result("forecast + 1,000-path simulation" + ("" if args.sim_paths == 1000 else " (extrapolated from the per-path time)"), size=size,
                    seconds=total, note=f"target {TARGET_SECONDS:.0f} s")


if __name__ == "__main__":
    main()
