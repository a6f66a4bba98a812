"""P(late)'s level refitted on recent outcomes (dashboard.recalibration): what it reads, that
nothing after the as-of date leaks in, and that the shift is the one the outcomes call for."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dashboard.dates import latest_data_date
from dashboard.features import FeatureSpec
from dashboard.recalibration import RECENT_WEEKS, RecentShift, fit_shift, recent_outcomes, recent_shift
from dashboard.store import Store


def test_the_shift_is_the_one_the_outcomes_call_for() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.6, 20_000)
    logit = np.log(p / (1 - p))
    y = (rng.random(len(p)) < 1 / (1 + np.exp(-(logit + 0.8)))).astype(float)
    delta = fit_shift(p, y)
    assert delta == pytest.approx(0.8, abs=0.08)
    moved = RecentShift(shift=delta).apply(p, determined=np.zeros(len(p), dtype=bool))
    assert abs(moved.mean() - y.mean()) < 0.01 < abs(p.mean() - y.mean())
    # the prior holds a few rows back; below MIN_ROWS (or with one class) there is no shift at all
    assert 0 < fit_shift(p[:10], np.ones(10)) < fit_shift(p[:10], np.ones(10), prior_sd=100.0)
    few = pl.DataFrame({"late": [1, 0] * 10})
    assert recent_shift(few, np.full(20, 0.5), as_of=date(2024, 6, 30)).shift == 0.0
    # rows already late stay at 1
    assert RecentShift(shift=-1.0).apply(np.array([1.0, 0.5]), determined=np.array([True, False]))[0] == 1.0


def test_recent_outcomes_are_known_at_the_as_of_date_and_nothing_later_leaks(
    seeded_db_path: Path, tmp_path: Path
) -> None:
    db = tmp_path / "copy.duckdb"
    shutil.copy(seeded_db_path, db)
    spec = FeatureSpec()
    with Store(db) as store:
        as_of = latest_data_date(store) - timedelta(days=90)
        before = recent_outcomes(store, as_of, spec=spec)
        assert before.height >= 30 and before["late"].n_unique() == 2
        # every row: an invoice open at a weekly snapshot of the window, not more than grace past
        # due then, whose due date + grace had passed by the as-of date
        assert before["as_of"].min() >= as_of - timedelta(weeks=RECENT_WEEKS) and before["as_of"].max() < as_of
        assert (before["days_past_due"] <= spec.grace_days).all()
        assert before.select((pl.col("due_date") + pl.duration(days=spec.grace_days) < as_of).all()).item()
        # payments after the as-of date change nothing
        from dashboard.ledger import refresh_ledger

        with store.transaction() as cur:
            cur.execute("DELETE FROM payments WHERE payment_date > ?", [as_of]).fetchall()
            refresh_ledger(cur)
        after = recent_outcomes(store, as_of, spec=spec)
    key = ["as_of", "invoice_id"]
    assert before.sort(key).select(*key, "late").equals(after.sort(key).select(*key, "late"))
    shift = recent_shift(before, np.full(before.height, 0.5), as_of=as_of)
    assert shift.rows == before.height and "last 8 weeks" in shift.describe()
