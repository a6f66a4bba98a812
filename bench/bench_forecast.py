"""Benchmark: the 13-week forecast and a 1,000-path strategy simulation for ~100k open invoices.

Target (issue 7): forecast + 1,000-path simulation for 100k open invoices under 10 s on the
2-core machine. Builds (once) a generator world big enough to hold ~100k open invoices on
the as-of date, loads it into a DuckDB file, then times each stage and prints the figures.

Warm figures are the median of ``--repeat`` runs after one warm-up (the compiled simulator
kernels loaded from numba's cache). The cold cost is printed separately: a child process
with an empty numba cache (``NUMBA_CACHE_DIR`` in a temporary folder, the repo's cache is
not touched) runs the simulation once and again; the difference is the first call's
compile time. Skip it with ``--skip-cold``. Bare baselines run on the same data in the same
run (:func:`bare_baselines`); each row's ratio is ours ÷ that baseline.

    .venv/bin/python -m bench.bench_forecast [--customers 54000] [--months 14] [--db PATH] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from bench.common import emit_result
from dashboard import _simulate_kernels as kernels
from dashboard.forecast import forecast_cash
from dashboard.paydist import read_as_of_inputs
from dashboard.simulate import build_book, current_strategy, measure_effects, simulate_strategies, strategy_from_policy
from dashboard.store import Store
from dashboard.synthetic import CollectionsPolicy, WorldConfig, default_policy, generate_world

TARGET_SECONDS = 10.0
ROOT = Path(__file__).resolve().parent.parent


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


def strategy_b():  # noqa: ANN201
    return strategy_from_policy(CollectionsPolicy(steps=default_policy().steps, daily_capacity=2000), name="capacity")


def one_run(store: Store, as_of: date, *, paths: int, sim_paths: int) -> tuple[dict[str, float], object, object]:
    """Every stage once, timed: shared reads, forecast, effects, book, simulation."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    inputs = read_as_of_inputs(store, as_of)
    t1 = time.perf_counter()
    forecast = forecast_cash(store, as_of, n_paths=paths, inputs=inputs)
    t2 = time.perf_counter()
    strategy_a = current_strategy()
    effects = measure_effects(store, as_of, strategy_a=strategy_a, inputs=inputs)
    t3 = time.perf_counter()
    book = build_book(store, as_of, effects, inputs=inputs)
    t4 = time.perf_counter()
    sim = simulate_strategies(store, as_of, strategy_b(), strategy_a=strategy_a, n_paths=sim_paths, effects=effects, book=book)
    t5 = time.perf_counter()
    times.update(read=t1 - t0, forecast=t2 - t1, effects=t3 - t2, book=t4 - t3, simulate=t5 - t4)
    return times, forecast, (sim, book)


BARE_READ = """
SELECT i.invoice_id, i.customer_id, i.due_date,
       i.amount - coalesce(p.paid, 0) - coalesce(a.adjusted, 0) AS open_amount, p.last_paid
FROM invoices i
LEFT JOIN (SELECT invoice_id, sum(amount) AS paid, max(payment_date) AS last_paid FROM payments
           WHERE payment_date <= ?::DATE GROUP BY 1) p ON p.invoice_id = i.invoice_id
LEFT JOIN (SELECT invoice_id, sum(abs(amount)) AS adjusted FROM adjustments
           WHERE adjustment_date <= ?::DATE GROUP BY 1) a ON a.invoice_id = i.invoice_id
WHERE i.invoice_date <= ?::DATE
"""


def bare_baselines(store: Store, as_of: date, *, paths: int, repeat: int) -> dict[str, float]:
    """The nearest bare-library equivalents on the same data, timed in the same run (medians):

    - ``read``: bare DuckDB, one query for each invoice's open amount and last payment date
      on ``as_of`` (no settlement dates, segments or history: the least a forecast reads);
    - ``forecast``: bare NumPy, the forecast's own per-invoice window draws (the same lookup
      table) with ``rng.integers`` / ``take`` / ``bincount``, no buckets, no customer draws;
    - ``simulate``: bare NumPy, each invoice's no-touch payment day drawn from the simulator's
      own delay tables on ``paths`` paths for both plans and summed per week: no touches.
    """
    import numpy as np

    from dashboard.forecast import window_edges
    from dashboard.paydist import empirical_pay_dates, fit_pay_delay_curves
    from dashboard.simulate import _delay_tables

    inputs = read_as_of_inputs(store, as_of)
    curves = fit_pay_delay_curves(store, as_of, groups=inputs.groups, history=inputs.history)
    sampler = empirical_pay_dates(curves, inputs.invoices)
    edges = window_edges(as_of)
    lookup, lot = sampler.week_lookup(edges), sampler.lot.astype(np.int64)
    amount = inputs.invoices["open_amount"].to_numpy()
    effects = measure_effects(store, as_of, strategy_a=current_strategy(), inputs=inputs)
    book = build_book(store, as_of, effects, inputs=inputs)
    tables, sim_lot = _delay_tables(book, effects)

    def bare_read() -> None:
        con = store.cursor()  # a plain DuckDB connection to the same file (the store holds it open)
        try:
            con.sql(BARE_READ, params=[as_of, as_of, as_of]).pl()
        finally:
            con.close()

    def bare_forecast() -> None:
        rng = np.random.default_rng(0)
        n_windows = int(lookup.max()) + 1
        for done in range(0, paths, 50):
            p = min(50, paths - done)
            window = lookup[lot[None, :], rng.integers(0, lookup.shape[1], size=(p, len(lot)))]
            key = (np.arange(p)[:, None] * n_windows + window).ravel()
            np.bincount(key, weights=np.broadcast_to(amount, (p, len(lot))).ravel(), minlength=p * n_windows)

    def bare_simulate() -> None:
        rng = np.random.default_rng(0)
        weeks = len(edges) + 1
        for done in range(0, paths, 50):
            p = min(50, paths - done)
            replicate = (np.arange(done, done + p) % tables.shape[0])[:, None]
            delay = tables[replicate, sim_lot[None, :], rng.integers(0, tables.shape[2], size=(p, book.size))]
            for _plan in range(2):
                window = np.searchsorted(edges, book.due_day[None, :] + delay)
                key = (np.arange(p)[:, None] * weeks + window).ravel()
                np.bincount(key, weights=np.broadcast_to(book.amount, (p, book.size)).ravel(), minlength=p * weeks)

    timed = {}
    bare_read()  # warm DuckDB's buffers, as the timed runs of ours are (NumPy has nothing to warm)
    for name, work in (("read", bare_read), ("forecast", bare_forecast), ("simulate", bare_simulate)):
        seconds = []
        for _ in range(max(1, repeat)):
            started = time.perf_counter()
            work()
            seconds.append(time.perf_counter() - started)
        timed[name] = statistics.median(seconds)
    return timed


def cold_child(db: str, as_of: date) -> None:
    """In a process with an empty numba cache: the simulation's first call, then a second."""
    with Store(db) as store:
        inputs = read_as_of_inputs(store, as_of)
        rounds = []
        for _ in range(2):
            started = time.perf_counter()
            effects = measure_effects(store, as_of, strategy_a=current_strategy(), inputs=inputs)
            book = build_book(store, as_of, effects, inputs=inputs)
            simulate_strategies(store, as_of, strategy_b(), n_paths=10, chunk_paths=10, effects=effects, book=book)
            rounds.append(time.perf_counter() - started)
    print("COLD " + json.dumps({"first": rounds[0], "second": rounds[1]}), flush=True)


def measure_cold(db: str, as_of: date) -> dict[str, float] | None:
    with tempfile.TemporaryDirectory(prefix="recoup_numba_cold_") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-m", "bench.bench_forecast", "--db", db, "--cold-child", as_of.isoformat()],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )
    for line in done.stdout.splitlines():
        if line.startswith("COLD "):
            return json.loads(line[5:])
    print(f"cold run failed: {done.stderr[-2000:]}")
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=54000)
    parser.add_argument("--months", type=int, default=14)
    parser.add_argument("--paths", type=int, default=1000, help="forecast paths")
    parser.add_argument("--sim-paths", type=int, default=1000, help="simulation paths")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs after the warm-up; medians are reported")
    parser.add_argument("--skip-cold", action="store_true", help="do not measure the numba compile of a cold start")
    parser.add_argument("--db", default="/tmp/recoup_bench_forecast.duckdb")
    parser.add_argument("--cold-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_child:
        cold_child(args.db, date.fromisoformat(args.cold_child))
        return
    as_of = build(Path(args.db), args.customers, args.months)
    cold = None if args.skip_cold else measure_cold(args.db, as_of)
    with Store(args.db) as store:

        def small_run() -> float:
            started = time.perf_counter()
            inputs = read_as_of_inputs(store, as_of)
            effects = measure_effects(store, as_of, strategy_a=current_strategy(), inputs=inputs)
            book = build_book(store, as_of, effects, inputs=inputs)
            simulate_strategies(store, as_of, strategy_b(), n_paths=10, chunk_paths=10, effects=effects, book=book)
            return time.perf_counter() - started

        # The first call in a process loads the compiled kernels from numba's cache (or, in a
        # fresh checkout whose cache is still empty, compiles them: said so in the output).
        line = kernels.simulate_chunk.py_func.__code__.co_firstlineno  # numba names its cache index by it
        cached = any((ROOT / "dashboard" / "__pycache__").glob(f"_simulate_kernels.simulate_chunk-{line}.*nbi"))
        first_small, second_small = small_run(), small_run()
        first_what = "loading the compiled kernels from numba's cache" if cached else "compiling the kernels (numba's cache was empty)"
        runs = []
        for k in range(max(1, args.repeat)):
            times, forecast, (sim, book) = one_run(store, as_of, paths=args.paths, sim_paths=args.sim_paths)
            runs.append(times)
            print(f"run {k + 1}: " + ", ".join(f"{name} {value:.2f} s" for name, value in times.items())
                  + f"; total {sum(times.values()):.2f} s", flush=True)
        bare = bare_baselines(store, as_of, paths=args.sim_paths, repeat=args.repeat)
    median = {name: statistics.median(run[name] for run in runs) for name in runs[0]}
    per_path = median["simulate"] / args.sim_paths
    simulate_1000 = per_path * 1000
    total = median["read"] + median["forecast"] + median["effects"] + median["book"] + simulate_1000
    print(f"open invoices on {as_of}: {forecast.open_invoice_count:,} ({forecast.open_amount:,.0f} open); "
          f"simulation book: {book.size:,} invoices ({int(book.is_new.sum()):,} new)")
    print(f"medians of {len(runs)} runs: shared reads (history, segments, payers, open invoices) {median['read']:.2f} s, "
          f"forecast_cash ({args.paths} paths) {median['forecast']:.2f} s, measure effects {median['effects']:.2f} s, "
          f"build book {median['book']:.2f} s, {args.sim_paths} paths A and B {median['simulate']:.2f} s "
          f"({per_path * 1000:.1f} ms per path)")
    low, mid, high = sim.effect("cash_collected")
    print(f"  capacity 2000/day vs none: cash in 13 weeks {mid:+,.0f} ({low:+,.0f} .. {high:+,.0f})")
    print(f"first call in this process (reads + effects + book + 10-path simulation) {first_small:.2f} s, "
          f"second {second_small:.2f} s -> {first_what} "
          f"{first_small - second_small:.2f} s (not in the total)")
    if cold is not None:
        print(f"cold start, empty numba cache: first effects + book + 10-path simulation {cold['first']:.2f} s, "
              f"second {cold['second']:.2f} s -> compile {cold['first'] - cold['second']:.2f} s (once; cached in __pycache__)")
    print(f"forecast + 1,000-path simulation (warm): {total:.1f} s (target {TARGET_SECONDS:.0f} s; "
          f"ratio {total / TARGET_SECONDS:.2f})")
    size = f"{forecast.open_invoice_count:,} open invoices"
    print(f"bare baselines (same data, this run): DuckDB open amounts {bare['read']:.2f} s, "
          f"NumPy forecast draws {bare['forecast']:.2f} s, NumPy no-touch simulation draws {bare['simulate']:.2f} s")
    emit_result("shared as-of reads (history, segments, payers, open invoices)", size=size, seconds=median["read"],
                baseline="DuckDB: open amount + last payment per invoice", baseline_seconds=bare["read"])
    emit_result(f"forecast_cash ({args.paths} paths)", size=size, seconds=median["forecast"],
                baseline="NumPy: the same window draws, integers/take/bincount", baseline_seconds=bare["forecast"],
                note="with the shared reads passed in")
    emit_result("simulation: measure effects + build book", size=size, seconds=median["effects"] + median["book"],
                note=f"effects {median['effects']:.2f} s, book {median['book']:.2f} s")
    emit_result(f"simulation A vs B, {args.sim_paths} paths", size=size, seconds=median["simulate"],
                baseline="NumPy: no-touch payment days of both plans, no touches", baseline_seconds=bare["simulate"],
                note=f"{per_path * 1000:.1f} ms/path")
    emit_result(f"first call in a process: {first_what}", size=size,
                seconds=first_small - second_small, note="not in the total")
    if cold is not None:
        emit_result("numba compile on a cold start (once)", size=size, seconds=cold["first"] - cold["second"],
                    note="not in the total; cached in __pycache__ afterwards")
    emit_result("forecast + 1,000-path simulation" + ("" if args.sim_paths == 1000 else " (extrapolated from the per-path time)"),
                size=size, seconds=total, note=f"target {TARGET_SECONDS:.0f} s; median of {len(runs)} warm runs")


if __name__ == "__main__":
    main()
