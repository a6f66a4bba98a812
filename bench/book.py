"""A plain canonical receivables book of any size, fast: customers, invoices and payments files.

    .venv/bin/python -m bench.book --invoices 10000000 --out bench/out/book-10000000

What a user with only an ERP extract has (no contacts, notes or disputes): 36 months of
invoices of about 45 per customer, each customer with its own lateness and spread, ~6% never
paid, payments on the pay date. Written as Parquet in the canonical columns, so ``load_file``
reads it like any extract. The sample-world generator needs ~2.7 GB per million invoices; this
needs a few hundred MB, so 10M books fit on this machine.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

START = date(2023, 1, 1)
MONTHS_DAYS = 1095


def write_book(out: Path, invoices: int, *, seed: int = 3) -> dict[str, Path]:
    """Write customers / invoices / payments Parquet files for a book of ``invoices`` invoices."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.parquet" for name in ("customers", "invoices", "payments")}
    if all(p.exists() for p in paths.values()):
        return paths
    rng = np.random.default_rng(seed)
    n_customers = max(50, invoices // 45)
    lateness = np.exp(rng.normal(np.log(8.0), 0.8, n_customers)) - 6.0
    spread = rng.gamma(2.0, 2.0, n_customers) + 0.5
    terms = rng.choice(np.array([30, 45, 60], dtype=np.int32), n_customers, p=[0.6, 0.25, 0.15])
    never = np.clip(0.05 + 0.002 * np.maximum(lateness, 0), 0, 0.3)
    owner = np.array([f"collector-{k:02d}" for k in range(1, 41)])[rng.integers(0, 40, n_customers)]
    customer_ids = pl.Series([f"C{i:07d}" for i in range(n_customers)])
    pl.DataFrame({"customer_id": customer_ids, "name": "Customer " + customer_ids, "owner": owner,
                  "currency": ["USD"] * n_customers}).write_parquet(paths["customers"])

    start = (START - date(1970, 1, 1)).days
    cust = rng.integers(0, n_customers, invoices)
    issued = start + np.sort(rng.integers(0, MONTHS_DAYS, invoices))
    due = issued + terms[cust]
    delay = np.round(lateness[cust] + spread[cust] * rng.standard_t(4.0, invoices)).astype(np.int64)
    paid_day = np.maximum(due + delay, issued + 1)
    end = start + MONTHS_DAYS - 1
    paid = (rng.random(invoices) >= never[cust]) & (paid_day <= end)
    amount = np.round(np.exp(rng.normal(np.log(1500.0), 1.0, invoices)), 2)
    ids = pl.Series(np.arange(invoices)).cast(pl.String).str.zfill(9)
    pl.DataFrame({
        "invoice_id": "INV" + ids, "customer_id": customer_ids.gather(cust),
        "invoice_date": pl.Series(issued.astype(np.int32)).cast(pl.Date),
        "due_date": pl.Series(due.astype(np.int32)).cast(pl.Date), "amount": amount,
    }).with_columns(currency=pl.lit("USD")).write_parquet(paths["invoices"])
    rows = np.flatnonzero(paid)
    pl.DataFrame({
        "payment_id": "PAY" + ids.gather(rows), "customer_id": customer_ids.gather(cust[rows]),
        "invoice_id": "INV" + ids.gather(rows), "payment_date": pl.Series(paid_day[rows].astype(np.int32)).cast(pl.Date),
        "amount": amount[rows],
    }).write_parquet(paths["payments"])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    t0 = time.perf_counter()
    paths = write_book(args.out, args.invoices)
    print(f"wrote {', '.join(str(p) for p in paths.values())} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
