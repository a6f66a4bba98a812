"""What a restart costs the Overview and the ``forecast`` command, on a fresh sample store.

Not in ``make bench``. Seeds two fresh stores from sample_data/, then, each in its own process (as
after a restart): the Overview's first visit (AppTest of app.py, the whole page) twice on one store,
and ``python -m dashboard forecast --json`` twice on the other. With the backtest kept in the store
(dashboard/forecast_kept.py) the second of each reads it back; run from a checkout of an earlier
commit (``git archive <commit> | tar -x -C DIR``; ``cd DIR``), the same script measures the code
before it. Usage: ``.venv/bin/python -m bench.bench_backtest_kept [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VISIT = """
import sys, time
from pathlib import Path
from streamlit.testing.v1 import AppTest
started = time.perf_counter()
at = AppTest.from_file(str(Path.cwd() / "app.py"), default_timeout=300).run()
seconds = time.perf_counter() - started
assert not at.exception, [e.message for e in at.exception]
assert at.title[0].value == "Overview" and "held the actual" in " ".join(m.value for m in at.markdown)
ran = any(b.key == "overview_forecast_stop" for b in at.button)
print(f"{seconds:.1f} s, backtest {'run on this visit' if ran else 'read from the store'}")
"""


def _run(args: list[str], env: dict[str, str]) -> tuple[float, str, str]:
    """Wall seconds, the last line of stdout, and what stderr said about the backtest."""
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    said = " ".join(line for line in done.stderr.splitlines() if line.startswith("backtest:"))
    return time.perf_counter() - started, (done.stdout.strip().splitlines() or [""])[-1], said or "(nothing said)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the stores (default: a temporary one)")
    out = parser.parse_args().out or Path(tempfile.mkdtemp(prefix="backtest-kept-"))
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    page, cli = out / "page.duckdb", out / "cli.duckdb"
    for db in (page, cli):
        subprocess.run([sys.executable, "-m", "dashboard", "seed", "--db", str(db)], env=env, check=True,
                       capture_output=True)
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores")
    for i in (1, 2):
        seconds, visit, _ = _run([sys.executable, "-c", VISIT], {**env, "RECOUP_DB": str(page)})
        print(f"Overview first visit, process {i}: {visit} (whole process {seconds:.1f} s)")
    for i in (1, 2):
        seconds, _, said = _run([sys.executable, "-m", "dashboard", "forecast", "--db", str(cli), "--json"], env)
        print(f"forecast --json, call {i}: {seconds:.2f} s wall; stderr: {said}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
