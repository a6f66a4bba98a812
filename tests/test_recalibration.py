"""P(late)'s level refitted on recent outcomes (dashboard.recalibration): what it reads, that
nothing after the as-of date leaks in, that the shift is the one the outcomes call for (the
freshest weighing most), and that the share of it applied is the stated one."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dashboard.dates import latest_data_date
from dashboard.features import FeatureSpec
from dashboard.recalibration import (
    PERSISTENCE,
    RECENCY_DAYS,
    RECENT_WEEKS,
    RecentShift,
    fit_shift,
    recency_weights,
    recent_outcomes,
    recent_shift,
)
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
    assert recent_shift(few, np.full(20, 0.5), as_of=date(2024, 6, 30), grace_days=5).shift == 0.0
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
    p = np.full(before.height, 0.5)
    shift = recent_shift(before, p, as_of=as_of, grace_days=spec.grace_days)
    assert shift.rows == before.height and "last 8 weeks" in shift.describe()
    # the weights come from due dates known at the as-of date, so the shift is the same too
    again = recent_shift(after.sort(key), p, as_of=as_of, grace_days=spec.grace_days)
    assert again.fitted == pytest.approx(shift.fitted) and shift.shift == pytest.approx(PERSISTENCE * shift.fitted)


def test_the_freshest_outcomes_weigh_most_and_only_part_of_the_shift_is_applied() -> None:
    as_of, grace = date(2024, 6, 30), 5
    newest = as_of - timedelta(days=grace)
    rng = np.random.default_rng(1)
    # 3,000 old outcomes (due 6-8 weeks before) as the map predicts, 3,000 fresh ones (due in
    # the last week) far later than it predicts
    due = [newest - timedelta(days=int(d)) for d in np.r_[rng.integers(42, 56, 3000), rng.integers(0, 7, 3000)]]
    p = np.full(6000, 0.3)
    truth = np.r_[np.full(3000, 0.3), np.full(3000, 0.7)]
    late = (rng.random(6000) < truth).astype(np.int8)
    rows = pl.DataFrame({"due_date": due, "late": late})
    weights = recency_weights(rows, as_of=as_of, grace_days=grace)
    assert weights.max() <= 1.0 and weights[3000:].min() > np.exp(-7 / RECENCY_DAYS) - 1e-9
    assert weights[:3000].max() < np.exp(-42 / RECENCY_DAYS) + 1e-9
    assert recency_weights(rows.head(1).with_columns(due_date=pl.lit(newest)), as_of=as_of, grace_days=grace)[0] == 1.0
    shift = recent_shift(rows, p, as_of=as_of, grace_days=grace)
    uniform = fit_shift(p, late)
    fresh = fit_shift(p[3000:], late[3000:])
    # weighted, the fit follows the fresh outcomes (~logit 0.7 - logit 0.3 = 1.69), not the average
    assert uniform < shift.fitted < fresh and abs(shift.fitted - fresh) < abs(shift.fitted - uniform)
    assert shift.shift == pytest.approx(PERSISTENCE * shift.fitted) and 0 < shift.shift < shift.fitted
    assert f"{PERSISTENCE:.0%} is applied" in shift.describe() and shift.to_dict()["fitted"] == round(shift.fitted, 4)
