"""The worklist with the risk model on a plain canonical book (customers, invoices, payments).

    .venv/bin/python -m bench.bench_book_worklist --invoices 1000000

1. Writes the book (bench/book.py) and loads its three files with ``load_file`` into a store
   (both cached under bench/out/);
2. trains the risk model once on the 1M book (cached under bench/out/book-models) — the model
   every size is scored with;
3. runs ``python -m dashboard worklist`` as a separate process, with the model and with
   ``--no-model``, and reads each one's time and peak memory from the kernel (the first run with
   the model computes every open invoice's scores and keeps them in the store; scores are
   computed in chunks of rows, so memory follows the open book);
4. in this process, the Worklist page's first build once the scores are kept: ``build_worklist``
   reading them back, plus the scorer's reasons for the line shown (``line_risk_reasons``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.book import write_book
from bench.common import emit_result

OUT = Path(__file__).resolve().parent / "out"
MODELS = OUT / "book-models"
TRAIN_SIZE = 1_000_000


def store_path(invoices: int) -> Path:
    return OUT / f"book-{invoices}.duckdb"


def build_store(invoices: int) -> Path:
    """The book loaded through ingest, as a user would (cached)."""
    from dashboard.ingest import load_file
    from dashboard.store import Store

    db = store_path(invoices)
    if db.exists():
        return db
    files = write_book(OUT / f"book-{invoices}", invoices)
    t0 = time.perf_counter()
    with Store(db) as store:
        for table in ("customers", "invoices", "payments"):
            load_file(store, files[table], table=table)
    print(f"loaded the {invoices:,}-invoice book in {time.perf_counter() - t0:.1f} s")
    return db


def build_store_in_child(invoices: int) -> Path:
    """Build the store in a child process: a process forked from a big one starts with its
    memory counted (ru_maxrss), so this one stays small for the children it times."""
    if not store_path(invoices).exists():
        code = subprocess.call([sys.executable, "-m", "bench.bench_book_worklist", "--invoices", str(invoices),
                                "--build-only"])
        if code:
            raise SystemExit(f"building the {invoices:,}-invoice book failed (exit {code})")
    return store_path(invoices)


def ensure_model() -> None:
    """Train on the 1M book once; every size is scored with that model."""
    if (MODELS / "ACTIVE").exists():
        return
    db = build_store_in_child(TRAIN_SIZE)
    code = subprocess.call([sys.executable, "-m", "dashboard", "train", "--db", str(db), "--models-dir", str(MODELS)],
                           stdout=subprocess.DEVNULL)
    if code:
        raise SystemExit(f"training on the {TRAIN_SIZE:,} book failed (exit {code})")


def run_child(args: list[str]) -> tuple[float, float, int]:
    """Run ``python -m dashboard ...`` in its own process: (seconds, peak MB from the kernel, exit code)."""
    env = {**os.environ, "RECOUP_MODELS_DIR": str(MODELS)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dashboard", *args], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--skip-page", action="store_true", help="skip the in-process page build")
    parser.add_argument("--build-only", action="store_true", help="only write and load the book")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    if args.build_only:
        build_store(args.invoices)
        return 0
    ensure_model()
    db = build_store_in_child(args.invoices)
    from dashboard.dates import latest_data_date
    from dashboard.store import Store

    with Store(db) as store:
        as_of = latest_data_date(store)
        open_count = int(store.scalar(
            "SELECT count(*) FROM ledger_documents WHERE doc_type = 'invoice' AND (paid_date IS NULL OR paid_date > ?)",
            [as_of],
        ))
    with Store(db) as store, store.transaction() as cur:
        cur.execute("DELETE FROM scores")  # cold: the first run computes and keeps the scores
    size = f"{args.invoices:,} invoices ({open_count:,} open)"
    out_csv = OUT / f"book-{args.invoices}-worklist.csv"
    common = ["worklist", "--db", str(db), "--as-of", as_of.isoformat(), "--out", str(out_csv), "--capacity", "25"]
    runs = (
        ("worklist CLI --no-model", [*common, "--no-model"]),
        ("worklist CLI with the model, cold (scores computed in chunks and kept)", common),
        ("worklist CLI with the model, scores kept", common),
    )
    for step, command in runs:
        with Store(db) as store, store.transaction() as cur:
            cur.execute("DELETE FROM actions")  # each run exports today's lines: start each from the same state
        seconds, peak, code = run_child(command)
        emit_result(step, size=size, seconds=seconds, peak_mb=peak, note=f"exit {code}")
    if args.skip_page:
        return 0
    # the Worklist page's first build in a fresh process once the scores are kept
    from dashboard.registry import load_active_model
    from dashboard.scoring import scorer_for
    from dashboard.worklist import build_worklist, line_risk_reasons

    os.environ["RECOUP_MODELS_DIR"] = str(MODELS)
    with Store(db) as store:
        t0 = time.perf_counter()
        scorer = scorer_for(load_active_model(), store=store, as_of=as_of)
        result = build_worklist(store, as_of, capacity_per_collector=25, scorer=scorer)
        built = time.perf_counter() - t0
        line = result.today().row(0, named=True)
        t0 = time.perf_counter()
        reasons = line_risk_reasons(store, as_of, line, scorer=scorer)
        explained = time.perf_counter() - t0
    emit_result("Worklist page first build with the model (kept scores + reasons for the line shown)", size=size,
                seconds=built + explained,
                note=f"build {built:.2f} s ({result.today().height} lines today, {result.scorer} scores), "
                     f"reasons {explained:.2f} s for {reasons.height} invoices")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
