"""Pilot benchmark: the pilot report for 100k customers (target: under 2 s), vs bare DuckDB.

    .venv/bin/python -m bench.bench_pilot --customers 100000

Writes a book of 100k customers with about one invoice a month each over 18 months (1.8M invoices),
their payments and a contact history (reminders, calls, promises to pay), loads it with
``load_file`` into a store once (cached under bench/out/), starts a 90-day
pilot with a 10% holdout on all customers (timed: assignment, balance check, power), then times
``pilot_report`` a month after the pilot's end: the cohort's days to pay with censoring weights,
cash within 30/60/90 days from the ledger's balances, DSO, promises, touches, and the customer
bootstrap (2,000 resamples) of every difference. The bare baseline computes the same per-group
aggregates (mean days to pay, cash within 30/60/90 days of due over the amount due, open AR,
sales) in one DuckDB query on the raw invoices and payments, with no censoring weights and no
interval.
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from bench.common import emit_result, peak_rss_mb
from dashboard.pilot import list_pilots, plan_pilot, start_pilot
from dashboard.pilot_report import pilot_report
from dashboard.store import Store

OUT = Path(__file__).resolve().parent / "out"
START = date(2024, 1, 1)
DAYS = 540
PILOT_START = START + timedelta(days=DAYS - 180)  # three months of follow-up left after a 90-day pilot

BARE = """
WITH arms AS (SELECT customer_id, arm FROM pilot_assignments WHERE pilot_id = $pilot),
cohort AS (
    SELECT i.invoice_id, i.customer_id, i.due_date, i.amount::DOUBLE AS amount FROM invoices i
    WHERE i.due_date BETWEEN $first AND $last
),
paid AS (
    SELECT c.invoice_id, sum(p.amount)::DOUBLE AS cash_total, max(p.payment_date) AS paid_date,
           sum(p.amount) FILTER (WHERE p.payment_date <= c.due_date + 30)::DOUBLE AS cash30,
           sum(p.amount) FILTER (WHERE p.payment_date <= c.due_date + 60)::DOUBLE AS cash60,
           sum(p.amount) FILTER (WHERE p.payment_date <= c.due_date + 90)::DOUBLE AS cash90
    FROM cohort c JOIN payments p ON p.invoice_id = c.invoice_id AND p.payment_date <= $as_of
    GROUP BY 1
),
per_arm AS (
    SELECT a.arm, avg(least(x.paid_date - c.due_date, 60)) AS mean_days_to_pay,
           sum(coalesce(x.cash30, 0)) / sum(c.amount) AS cash30, sum(coalesce(x.cash60, 0)) / sum(c.amount) AS cash60,
           sum(coalesce(x.cash90, 0)) / sum(c.amount) AS cash90, sum(c.amount) AS sales
    FROM cohort c JOIN arms a USING (customer_id) LEFT JOIN paid x USING (invoice_id) GROUP BY 1
),
open_ar AS (
    SELECT a.arm, sum(i.amount - coalesce(p.paid, 0))::DOUBLE AS open_ar
    FROM invoices i JOIN arms a USING (customer_id)
    LEFT JOIN (SELECT invoice_id, sum(amount) AS paid FROM payments WHERE payment_date <= $as_of GROUP BY 1) p USING (invoice_id)
    WHERE i.invoice_date <= $as_of AND i.amount - coalesce(p.paid, 0) > 0.005
    GROUP BY 1
)
SELECT * FROM per_arm JOIN open_ar USING (arm)
"""


def write_book(out: Path, customers: int, *, seed: int = 19) -> dict[str, Path]:
    """Customers, invoices, payments and contacts Parquet files (canonical columns)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.parquet" for name in ("customers", "invoices", "payments", "contacts")}
    if all(p.exists() for p in paths.values()):
        return paths
    rng = np.random.default_rng(seed)
    invoices = customers * DAYS // 30
    lateness = np.exp(rng.normal(np.log(8.0), 0.8, customers)) - 6.0
    spread = rng.gamma(2.0, 2.0, customers) + 0.5
    ids = pl.Series([f"C{i:07d}" for i in range(customers)])
    owner = np.array([f"collector-{k:02d}" for k in range(1, 41)])[rng.integers(0, 40, customers)]
    pl.DataFrame({"customer_id": ids, "name": "Customer " + ids, "owner": owner}).write_parquet(paths["customers"])
    start = (START - date(1970, 1, 1)).days
    cust = rng.integers(0, customers, invoices)
    issued = start + np.sort(rng.integers(0, DAYS, invoices))
    due = issued + 30
    paid_day = np.maximum(due + np.round(lateness[cust] + spread[cust] * rng.standard_t(4.0, invoices)), issued + 1)
    paid = (rng.random(invoices) >= 0.05) & (paid_day <= start + DAYS - 1)
    amount = np.round(np.exp(rng.normal(np.log(1500.0), 1.0, invoices)), 2)
    numbers = pl.Series(np.arange(invoices)).cast(pl.String).str.zfill(8)
    pl.DataFrame({
        "invoice_id": "INV" + numbers, "customer_id": ids.gather(cust),
        "invoice_date": pl.Series(issued.astype(np.int32)).cast(pl.Date),
        "due_date": pl.Series(due.astype(np.int32)).cast(pl.Date), "amount": amount,
    }).write_parquet(paths["invoices"])
    rows = np.flatnonzero(paid)
    pl.DataFrame({
        "payment_id": "PAY" + numbers.gather(rows), "customer_id": ids.gather(cust[rows]),
        "invoice_id": "INV" + numbers.gather(rows),
        "payment_date": pl.Series(paid_day[rows].astype(np.int32)).cast(pl.Date), "amount": amount[rows],
    }).write_parquet(paths["payments"])
    late = np.flatnonzero(~paid | (paid_day > due + 3))  # a reminder 3 days after due; a third promise to pay
    promise = rng.random(late.size) < 0.33
    pl.DataFrame({
        "contact_id": "K" + numbers.gather(late), "customer_id": ids.gather(cust[late]), "invoice_id": "INV" + numbers.gather(late),
        "ts": pl.Series((due[late] + 3).astype(np.int32)).cast(pl.Date).cast(pl.Datetime("us")),
        "channel": np.where(promise, "call", "email"), "action": np.where(promise, "call", "reminder"),
        "tone": "neutral", "outcome": np.where(promise, "promise to pay", "no response"),
        "promise_date": pl.Series(np.where(promise, due[late] + 10, 0).astype(np.int32)).cast(pl.Date),
    }).with_columns(
        promise_date=pl.when(pl.col("outcome") == "promise to pay").then(pl.col("promise_date"))
    ).write_parquet(paths["contacts"])
    return paths


def build(customers: int) -> Path:
    db = OUT / f"pilot-{customers}.duckdb"
    if db.exists():
        return db
    from dashboard.ingest import load_file

    started = time.perf_counter()
    files = write_book(OUT / f"pilot-book-{customers}", customers)
    with Store(db) as store:
        for table in ("customers", "invoices", "payments", "contacts"):
            load_file(store, files[table], table=table)
        invoices = store.scalar("SELECT count(*) FROM invoices")
    print(f"built {invoices:,} invoices for {customers:,} customers in {time.perf_counter() - started:.1f} s", flush=True)
    return db


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    db = build(args.customers)
    size = f"{args.customers // 1000}k customers"
    with Store(db) as store:
        pilot = next((p for p in list_pilots(store) if p.start == PILOT_START), None)
        if pilot is None:
            started = time.perf_counter()
            plan = plan_pilot(store, name="bench", start=PILOT_START, days=90)
            pilot = start_pilot(store, plan)
            seconds = time.perf_counter() - started
            print(plan.summary(), flush=True)
            emit_result("pilot start (assignment, balance, power)", size=size, seconds=seconds)
        as_of = pilot.last_day + timedelta(days=30)
        timings, bare = [], []
        report = None
        for _ in range(args.repeat):  # alternate ours and bare, keep the best of each
            started = time.perf_counter()
            report = pilot_report(store, pilot, as_of)
            timings.append(time.perf_counter() - started)
            started = time.perf_counter()
            rows = store.query(BARE, {"pilot": pilot.pilot_id, "first": pilot.start, "last": pilot.last_day, "as_of": as_of})
            bare.append(time.perf_counter() - started)
        assert report is not None
        print(report.verdict(), flush=True)
        print(report.table(), flush=True)
        print(rows, flush=True)
        print(f"report: {', '.join(f'{t:.2f}' for t in timings)} s; bare: {', '.join(f'{t:.2f}' for t in bare)} s; "
              f"peak {peak_rss_mb():,.0f} MB", flush=True)
        emit_result(
            "pilot report (2,000 resamples)",
            size=size,
            seconds=min(timings),
            baseline="DuckDB: per-group days to pay, cash 30/60/90, open AR, sales (no weights, no interval)",
            baseline_seconds=min(bare),
            note=f"first call {timings[0]:.2f} s; {sum(report.invoices.values()):,} invoices due in the pilot",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
