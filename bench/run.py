"""``make bench``: run every benchmark at each size and write bench/RESULTS.md.

    .venv/bin/python -m bench.run                    # 100k and 1M invoices
    .venv/bin/python -m bench.run --sizes 100000     # one size
    .venv/bin/python -m bench.run --only ingest,kpis

Each benchmark runs in its own process (so its peak memory is its own, read from the kernel's
rusage of that child) and prints ``RESULT {...}`` lines (bench/common.py). Nothing here
depends on anything outside the repo and the pinned requirements.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


# Largest size each benchmark runs at on this 24 GiB machine ("5M where memory allows"): the
# generator needs ~2.7 GB per million invoices and training ~5 GB at 1M, so only ingest goes to 5M;
# the plain book (bench/book.py) is cheap to make, so the model-backed worklist goes to 10M.
MAX_SIZE = {"ingest": 5_000_000, "ingest_memory": 10_000_000, "book_worklist": 10_000_000, "pilot": 1_000_000}
# The pilot report is measured once, for 100k customers (its own book of 1.8M invoices), in the 1M round.
MIN_SIZE = {"ingest_memory": 10_000_000, "book_worklist": 1_000_000, "pilot": 1_000_000}
DEFAULT_MAX = 1_000_000


def _commands(size: int) -> dict[str, list[str]]:
    py = sys.executable
    customers = max(50, round(size / 45))  # the generator makes ~45 invoices per customer over 36 months
    return {
        "ingest": [py, "-m", "bench.bench_ingest", "--rows", str(size), "--repeat", "3"],
        # the load's peak memory against a bare read_csv of the same file, each in its own process
        "ingest_memory": [py, "-m", "bench.bench_ingest", "--rows", str(size), "--repeat", "0", "--memory"],
        "kpis": [py, "-m", "bench.bench_kpis", "--invoices", str(size), "--skip-pages"],
        "risk": [py, "-m", "bench.bench_risk", "--invoices", str(size)],
        # ~18.5 invoices per customer over 14 months: the 1M world has the issue's ~100k open invoices
        "forecast": [py, "-m", "bench.bench_forecast", "--customers", str(max(50, round(size / 18.5))),
                     "--sim-paths", "1000", "--db", str(OUT / f"forecast-{size}.duckdb")],
        "worklist": [py, "-m", "bench.bench_worklist", "--customers", str(customers)],
        "book_worklist": [py, "-m", "bench.bench_book_worklist", "--invoices", str(size)],
        "pilot": [py, "-m", "bench.bench_pilot", "--customers", "100000"],
        "sessions": [py, "-m", "bench.bench_sessions", "--customers", str(customers), "--sessions", "8"],
    }


def run_one(name: str, command: list[str], size: int) -> tuple[list[dict], float, float, int, Path]:
    """Run one benchmark process; return its RESULT rows, wall seconds, peak MB, exit code, log."""
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / f"{name}-{size}.log"
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    rows = [
        json.loads(line[len("RESULT "):])
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith("RESULT ")
    ]
    return rows, wall, usage.ru_maxrss / 1024, code, log


def _fmt(value: object, spec: str = "") -> str:
    if value is None or value == "":
        return "—"
    return format(value, spec) if spec else str(value)


BEGIN = "<!-- make bench: the table below is rewritten by each run of bench/run.py -->"
END = "<!-- make bench: end of the rewritten table -->"


def write_results(sections: list[dict], path: Path) -> None:
    """Write the run's table into ``path`` between :data:`BEGIN` and :data:`END`, keeping every
    other line (the hand-written sections measured with their own commands); appended at the end
    when the markers are missing."""
    table = "\n".join([BEGIN, *_table(sections), END])
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + table + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + table + "\n"
    path.write_text(text, encoding="utf-8")


def _table(sections: list[dict]) -> list[str]:
    lines = [
        "## Latest `make bench` run",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, by `make bench` "
        f"(`{' '.join(['.venv/bin/python', '-m', 'bench.run', *sys.argv[1:]])}`).",
        "",
        "**Ratio** = ours ÷ the bare library doing the nearest equivalent on the same data in the same run "
        "(1.0 = no overhead; bench/README.md names each baseline). **Peak MB** is the benchmark process's own "
        "high-water mark. Each benchmark skips sizes over its memory budget on this machine: only ingest goes to "
        "5M (the generator needs ~2.7 GB per million invoices, training peaks at ~6 GB at 1M).",
        "\"warm (no page cache)\" = the same call again in the same process, DuckDB buffers warm, no Streamlit "
        "cache (the pages cache results per data version; a rerun served from that cache is what a user sees "
        "after the first visit). \"sessions\": 8 concurrent headless-Chromium sessions, each visiting every page "
        "twice, against one real server (the same 2 cores also run the 8 browsers). \"forecast\" sizes are the "
        "open invoices at the as-of date of a world of about that many invoices (the issue's 100k open invoices "
        "are the 1M world).",
        "",
        "| benchmark | size | step | seconds | peak MB | bare baseline | baseline s | ratio | note |",
        "|---|---|---|---:|---:|---|---:|---:|---|",
    ]
    for section in sections:
        if not section["rows"]:
            lines.append(
                f"| {section['name']} | {section['size']:,} | (no result: exit {section['code']}, "
                f"see bench/out/{section['log'].name}) | {section['wall']:.1f} | {section['peak_mb']:,.0f} | — | — | — | |"
            )
        for row in section["rows"]:
            lines.append(
                f"| {section['name']} | {row.get('size', section['size'])} | {row['step']} | "
                f"{_fmt(row.get('seconds'), '.2f')} | {_fmt(row.get('peak_mb'), ',.0f')} | {_fmt(row.get('baseline'))} | "
                f"{_fmt(row.get('baseline_seconds'), '.2f')} | {_fmt(row.get('ratio'), '.2f')} | {_fmt(row.get('note'))} |"
            )
    lines += ["", "Full output of each run: `bench/out/<benchmark>-<size>.log` (not committed)."]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks and write bench/RESULTS.md")
    parser.add_argument("--sizes", default="100000,1000000,5000000,10000000",
                        help="invoice counts, comma-separated (each benchmark skips sizes above its MAX_SIZE)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    only = {s for s in args.only.split(",") if s}
    sections: list[dict] = []
    failed = 0
    for size in sizes:
        for name, command in _commands(size).items():
            if only and name not in only:
                continue
            if size > MAX_SIZE.get(name, DEFAULT_MAX):
                print(f"== {name} at {size:,} invoices: skipped (over its memory budget on this machine)", flush=True)
                continue
            if size < MIN_SIZE.get(name, 0):
                continue
            print(f"== {name} at {size:,} invoices: {' '.join(command[1:])}", flush=True)
            rows, wall, peak, code, log = run_one(name, command, size)
            failed += code != 0
            for row in rows:
                print(f"   {row['step']}: {row['seconds']} s, ratio {row.get('ratio')}", flush=True)
            print(f"   done in {wall:.1f} s, peak {peak:,.0f} MB, exit {code} (log {log})", flush=True)
            sections.append({"name": name, "size": size, "rows": rows, "wall": wall, "peak_mb": peak, "code": code, "log": log})
            write_results(sections, args.out)
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
