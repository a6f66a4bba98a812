"""The forecast's backtest, computed once per loaded data and kept in the store.

:func:`dashboard.forecast.backtest_forecast` makes about a hundred past forecasts (11–15 s on the
sample store on this 2-core machine): the Overview and ``python -m dashboard forecast`` both need it, to choose the blend and
calibrate the band of the forecast in use. :func:`backtest_for` reads it back when it was kept for
the same key, else runs it and keeps it — like :func:`dashboard.scoring.scores_for` for scores.

The key is what determines the result:

- the loaded data: :meth:`Store.loads_version` (every load or undo changes it). Not
  :meth:`Store.data_version`, which also changes with a policy save, a score, an action, a segment
  snapshot or a pilot: none of them is read by the forecast (it reads invoices, payments, the
  ledger and the customer groups computed from them), and the Risk and Worklist pages keep scores
  on their first visit at a date, so that key would throw the backtest away whenever they are opened;
- the parameters: weeks, paths, seed, customer correlation, and the backtest dates and forecast
  origins as resolved (the defaults are read from the data, so equal dates share one backtest);
- :data:`dashboard.forecast.METHOD_ID`: a backtest kept by another version of the forecast's
  method is never read back.

The three frames are kept as Parquet bytes (their dtypes come back exactly). A keep deletes kept
backtests of other loads or methods and keeps the :data:`KEEP_AT_MOST` newest of the current
loads, so the file does not grow with every load. A failed or cancelled backtest keeps nothing; a
store opened read-only is read but never written.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from dashboard.forecast import (
    HORIZON_WEEKS,
    METHOD_ID,
    BacktestResult,
    backtest_forecast,
    backtest_plan,
)
from dashboard.progress import Progress, ShouldCancel, never_cancel, no_progress
from dashboard.store import Store, utcnow

#: Kept backtests of the current loads and method (different parameters) left after a keep.
KEEP_AT_MOST = 4


@dataclass(frozen=True)
class KeptBacktest:
    """A backtest with when it finished (UTC) and how long it took; ``computed``: run by this call
    (not read back); ``kept``: in the store (False when the store is read-only)."""

    result: BacktestResult
    created: datetime
    seconds: float
    computed: bool
    kept: bool

    def describe(self) -> str:
        """One line for the command line: read back or computed, and when."""
        when = f"{self.created:%Y-%m-%d %H:%M} UTC"
        if not self.computed:
            return f"backtest: kept from {when} (computed in {self.seconds:.1f} s), not recomputed"
        return f"backtest: computed in {self.seconds:.1f} s" + (", kept in the store" if self.kept else ", not kept")


def backtest_key(
    store: Store,
    *,
    as_of_dates: Sequence[date] | None = None,
    weeks: int = HORIZON_WEEKS,
    n_paths: int = 500,
    seed: int = 0,
    customer_correlation: float = 0.5,
    calibrate_from: Sequence[date] | None = None,
) -> tuple[str, str, str]:
    """(loads version, method id, parameters as canonical JSON) of the backtest those arguments of
    :func:`dashboard.forecast.backtest_forecast` give."""
    dates, origins = backtest_plan(store, as_of_dates=as_of_dates, weeks=weeks, calibrate_from=calibrate_from)
    params = {
        "weeks": int(weeks),
        "n_paths": int(n_paths),
        "seed": int(seed),
        "customer_correlation": float(customer_correlation),
        "as_of_dates": [d.isoformat() for d in dates],
        "origins": [d.isoformat() for d in origins],
    }
    return store.loads_version(), METHOD_ID, json.dumps(params, sort_keys=True, separators=(",", ":"))


def kept_backtest(
    store: Store,
    *,
    as_of_dates: Sequence[date] | None = None,
    weeks: int = HORIZON_WEEKS,
    n_paths: int = 500,
    seed: int = 0,
    customer_correlation: float = 0.5,
    calibrate_from: Sequence[date] | None = None,
) -> KeptBacktest | None:
    """The backtest kept for these arguments on the current loads by the current method, or None."""
    return _read(store, backtest_key(store, as_of_dates=as_of_dates, weeks=weeks, n_paths=n_paths, seed=seed,
                                     customer_correlation=customer_correlation, calibrate_from=calibrate_from))


def backtest_for(
    store: Store,
    *,
    as_of_dates: Sequence[date] | None = None,
    weeks: int = HORIZON_WEEKS,
    n_paths: int = 500,
    seed: int = 0,
    customer_correlation: float = 0.5,
    calibrate_from: Sequence[date] | None = None,
    progress: Progress = no_progress,
    should_cancel: ShouldCancel = never_cancel,
) -> KeptBacktest:
    """The backtest :func:`dashboard.forecast.backtest_forecast` gives for these arguments: read back
    when kept for the current loads, else computed (``progress``, ``should_cancel`` as there) and
    kept unless the store is read-only. A backtest that fails or is cancelled raises and keeps
    nothing."""
    key = backtest_key(store, as_of_dates=as_of_dates, weeks=weeks, n_paths=n_paths, seed=seed,
                       customer_correlation=customer_correlation, calibrate_from=calibrate_from)
    kept = _read(store, key)
    if kept is not None:
        return kept
    started = time.perf_counter()
    result = backtest_forecast(store, as_of_dates=as_of_dates, weeks=weeks, n_paths=n_paths, seed=seed,
                               customer_correlation=customer_correlation, calibrate_from=calibrate_from,
                               progress=progress, should_cancel=should_cancel)
    seconds, created = time.perf_counter() - started, utcnow()
    # kept only under the loads it was computed on: not when the store is read-only or a load or
    # an undo came in while it ran
    keep = not store.read_only and store.loads_version() == key[0]
    if keep:
        keep_backtest(store, result, key=key, created=created, seconds=seconds)
    return KeptBacktest(result=result, created=created, seconds=seconds, computed=True, kept=keep)


def keep_backtest(
    store: Store, result: BacktestResult, *, key: tuple[str, str, str], created: datetime, seconds: float
) -> None:
    """Write ``result`` under ``key`` (:func:`backtest_key`), replacing one kept under it, and delete
    kept backtests of other loads or methods and all but the :data:`KEEP_AT_MOST` newest of these."""
    version, method, params = key
    blobs = [_parquet(result.details), _parquet(result.table), _parquet(result.runs)]
    with store.transaction() as cur:
        cur.execute(
            "DELETE FROM kept_backtests WHERE data_version <> ? OR method_id <> ? OR params = ?",
            [version, method, params],
        ).fetchall()
        cur.execute(
            "INSERT INTO kept_backtests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [version, method, params, created, float(seconds), list(result.as_of_dates), *blobs],
        ).fetchall()
        cur.execute(
            "DELETE FROM kept_backtests WHERE params NOT IN "
            "(SELECT params FROM kept_backtests ORDER BY created DESC LIMIT ?)",
            [KEEP_AT_MOST],
        ).fetchall()


def _read(store: Store, key: tuple[str, str, str]) -> KeptBacktest | None:
    cur = store.cursor()
    try:
        rows = cur.execute(
            """
            SELECT created, seconds, as_of_dates, details, summary, runs FROM kept_backtests
            WHERE data_version = ? AND method_id = ? AND params = ?
            """,
            list(key),
        ).fetchall()
    finally:
        cur.close()
    if not rows:
        return None
    created, seconds, dates, details, summary, runs = rows[0]
    result = BacktestResult(as_of_dates=list(dates), details=_frame(details), table=_frame(summary), runs=_frame(runs))
    return KeptBacktest(result=result, created=created, seconds=float(seconds), computed=False, kept=True)


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _frame(blob: bytes) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(blob))
