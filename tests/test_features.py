"""As-of features: hand-worked numbers on a tiny store, and the leakage test on a generated world."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import polars as pl
import pytest

from dashboard.errors import ModelCardError
from dashboard.features import FEATURE_COLUMNS, KEY_COLUMNS, FeatureSpec, build_features, build_outcomes
from dashboard.store import Store
from tests.rows import insert_rows

insert = insert_rows


@pytest.fixture
def tiny(store: Store) -> Store:
    """One customer, four invoices (see the test for the story)."""
    insert(store, "customers", [{"customer_id": "C1", "name": "Acme", "credit_limit": 1000.0, "currency": "USD"}])
    insert(
        store,
        "invoices",
        [
            {"invoice_id": "A", "customer_id": "C1", "invoice_date": date(2024, 1, 1), "due_date": date(2024, 1, 31), "terms_days": 30, "amount": 100.0, "currency": "USD"},
            {"invoice_id": "B", "customer_id": "C1", "invoice_date": date(2024, 2, 1), "due_date": date(2024, 3, 2), "terms_days": 30, "amount": 200.0, "currency": "USD"},
            {"invoice_id": "C", "customer_id": "C1", "invoice_date": date(2024, 3, 1), "due_date": date(2024, 3, 31), "terms_days": 30, "amount": 300.0, "currency": "USD"},
            {"invoice_id": "D", "customer_id": "C1", "invoice_date": date(2024, 4, 1), "due_date": date(2024, 5, 1), "terms_days": 30, "amount": 400.0, "currency": "USD"},
        ],
    )
    insert(
        store,
        "payments",
        [
            {"payment_id": "P1", "customer_id": "C1", "invoice_id": "A", "payment_date": date(2024, 2, 20), "amount": 100.0},
            {"payment_id": "P2", "customer_id": "C1", "invoice_id": "B", "payment_date": date(2024, 3, 1), "amount": 200.0},
            {"payment_id": "P3", "customer_id": "C1", "invoice_id": "C", "payment_date": date(2024, 3, 20), "amount": 100.0},
            {"payment_id": "P4", "customer_id": "C1", "invoice_id": "C", "payment_date": date(2024, 5, 10), "amount": 200.0},
        ],
    )
    insert(store, "disputes", [{"dispute_id": "D1", "invoice_id": "D", "customer_id": "C1", "opened_date": date(2024, 4, 10), "resolved_date": date(2024, 6, 15), "category": "pricing"}])
    insert(
        store,
        "contacts",
        [
            {"contact_id": "K1", "customer_id": "C1", "invoice_id": "C", "ts": datetime(2024, 4, 5, 10), "action": "call", "channel": "call", "outcome": "promise to pay", "promise_date": date(2024, 4, 15)},
            {"contact_id": "K2", "customer_id": "C1", "invoice_id": "D", "ts": datetime(2024, 5, 2, 9), "action": "reminder", "channel": "email", "outcome": "no response"},
        ],
    )
    insert(
        store,
        "notes",
        [
            {"note_id": "N1", "customer_id": "C1", "ts": datetime(2024, 4, 20, 9), "text": "cash is tight", "sentiment": -0.5, "flags": "distress"},
            {"note_id": "N2", "customer_id": "C1", "ts": datetime(2024, 5, 5, 9), "text": "all good now", "sentiment": 0.8, "flags": ""},
        ],
    )
    return store


def test_tiny_store_features_match_hand_worked_numbers(tiny: Store) -> None:
    features = build_features(tiny, date(2024, 4, 30))
    assert features.columns == list(KEY_COLUMNS) + list(FEATURE_COLUMNS)
    # A and B are paid by 30 April; C is part-paid (200 open); D is open and disputed.
    assert features["invoice_id"].to_list() == ["C", "D"]
    c, d = features.to_dicts()
    assert c["open_amount"] == pytest.approx(200.0)
    assert c["share_still_open"] == pytest.approx(200 / 300)
    assert c["days_to_due"] == -30 and c["days_past_due"] == 30 and c["invoice_age_days"] == 60
    assert d["days_to_due"] == 1 and d["days_past_due"] == 0
    # History: A paid 20 days late, B paid 1 day early -> 1 of 2 late (grace 5), mean 9.5 days.
    assert c["history_invoices_closed"] == 2
    assert c["history_share_late"] == pytest.approx(0.5)
    assert c["history_mean_days_late"] == pytest.approx(9.5)
    assert c["history_amount_weighted_days_late"] == pytest.approx((100 * 20 + 200 * 0) / 300)
    assert (c["last10_count"], c["last10_late_count"]) == (2, 1)
    assert c["days_since_last_payment"] == 41  # 20 March -> 30 April
    assert c["customer_tenure_days"] == 120  # 1 January -> 30 April
    # Exposure: 600 open, 200 of it (C) overdue; credit limit 1000.
    assert c["customer_open_balance"] == pytest.approx(600.0)
    assert c["customer_share_overdue"] == pytest.approx(200 / 600)
    assert c["customer_max_days_past_due"] == 30
    assert c["credit_limit_use"] == pytest.approx(0.6)
    # D is 400 against a geometric mean of 100, 200, 300, 400.
    assert d["relative_size"] == pytest.approx(400 / (100 * 200 * 300 * 400) ** 0.25)
    # Dispute on D opened 10 April, resolved only in June: open as of 30 April.
    assert (d["dispute_open"], d["dispute_open_days"], d["dispute_category"]) == (1, 20, "pricing")
    assert c["dispute_open"] == 0 and c["customer_open_disputes"] == 1
    # Promise for 15 April on C was broken (C still open then); the 2 May reminder is in the future.
    assert c["promises_broken"] == 1 and c["promises_kept"] == 0
    assert (c["last_contact_action"], c["last_contact_outcome"]) == ("call", "promise to pay")
    assert d["contacts_on_invoice"] == 0 and d["last_contact_action"] is None
    # Notes: only the 20 April distress note is known.
    assert (c["notes_recent"], c["notes_distress"]) == (1, 1)
    assert c["notes_mean_sentiment"] == pytest.approx(-0.5)


def test_a_model_trained_with_other_segment_rules_is_refused_with_what_to_do(tiny: Store) -> None:
    assert FeatureSpec().segment_rules == "v1"  # recorded in every new model card
    with pytest.raises(ModelCardError, match=r"segment rules 'v0'.*Train a new model"):
        build_features(tiny, date(2026, 3, 31), spec=FeatureSpec(segment_rules="v0"))


def test_payment_run_and_clean_history_features_by_hand(tiny: Store) -> None:
    features = build_features(tiny, date(2024, 4, 30))
    c, d = features.to_dicts()
    # C is due Sunday 31 March 2024; March's last business day (29th) is before it, so the next
    # month-end run is Tuesday 30 April: 30 days. D is due 1 May; May's run is Friday 31 May.
    assert c["days_due_to_next_run"] == 30 and d["days_due_to_next_run"] == 30
    # A (due on a run day, 20 days late) and B (due 2 March, far from a run, 1 day early) are
    # both clean (no dispute, no answered contact, no discount) and neither was paid on a run day.
    assert (c["clean_invoices_closed"], c["clean_median_days_late"], c["clean_mean_days_late"]) == (2, 9.5, 9.5)
    assert c["recent5_clean_median_days_late"] == 9.5 and c["recent5_mean_days_late"] == 9.5
    assert c["history_share_paid_on_run"] == 0.0
    # C and D are due far from a run; the only past invoice due far from a run (B) was on time.
    assert c["history_share_late_same_run_position"] == 0.0 and d["history_share_late_same_run_position"] == 0.0
    # not a run payer: expected days late = the recent clean median 9.5, rounded half away from zero
    assert c["expected_days_late"] == 10.0
    assert c["expected_pay_days_from_now"] == pytest.approx(-30 + 9.5)
    assert d["expected_pay_days_from_now"] == pytest.approx(1 + 9.5)
    # the 5 April call on C promised 15 April, 15 days after its due date; D's reminder is later
    assert c["promised_days_late"] == 15 and d["promised_days_late"] is None
    assert c["customer_share_contacts_answered"] == 1.0  # K1 answered; K2 (2 May) not yet known

    # By 30 June C is paid (10 May, 40 days late) but its pay date followed a promise: it counts
    # in the history, not in the clean history.
    (later,) = build_features(tiny, date(2024, 6, 30)).to_dicts()
    assert later["invoice_id"] == "D"
    assert later["history_invoices_closed"] == 3 and later["clean_invoices_closed"] == 2
    assert later["clean_median_days_late"] == 9.5
    assert later["recent5_mean_days_late"] == pytest.approx((20 - 1 + 40) / 3)


def test_next_payment_run_is_the_last_business_day_on_or_after(store: Store) -> None:
    from dashboard.features import next_run_sql

    cases = {
        date(2024, 3, 29): date(2024, 3, 29),  # Friday, March's last business day: that day
        date(2024, 3, 30): date(2024, 4, 30),  # Saturday after it: April's run
        date(2024, 3, 31): date(2024, 4, 30),
        date(2024, 6, 3): date(2024, 6, 28),  # 30 June 2024 is a Sunday
        date(2024, 12, 31): date(2024, 12, 31),
    }
    for day, run in cases.items():
        literal = f"DATE '{day.isoformat()}'"
        assert store.scalar(f"SELECT {next_run_sql(literal)}") == run, day


def test_outcomes_are_read_as_known_at_a_date(tiny: Store) -> None:
    early = dict(build_outcomes(tiny, known_by=date(2024, 4, 30)).select("invoice_id", "closed_date").iter_rows())
    late = dict(build_outcomes(tiny, known_by=date(2024, 6, 30)).select("invoice_id", "closed_date").iter_rows())
    assert early["C"] is None and late["C"] == date(2024, 5, 10)
    assert early["A"] == date(2024, 2, 20) and early["D"] is None and late["D"] is None


def test_several_as_of_dates_in_one_query_match_single_dates(tiny: Store) -> None:
    both = build_features(tiny, [date(2024, 3, 15), date(2024, 4, 30)])
    for day in (date(2024, 3, 15), date(2024, 4, 30)):
        single = build_features(tiny, day)
        assert both.filter(pl.col("as_of") == day).equals(single)


# ---------------------------------------------------------------------------------------------
# leakage: changing anything dated after as_of changes no feature
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world_frames() -> tuple[dict[str, pl.DataFrame], date]:
    from dashboard.synthetic.generator import generate_world
    from dashboard.synthetic.model import WorldConfig

    world = generate_world(WorldConfig(seed=5, n_customers=250, months=24))
    return world.frames, world.config.end_date


def _load(store: Store, frames: dict[str, pl.DataFrame]) -> None:
    from dashboard.ingest.load import load_world

    load_world(store, frames)


def _scramble_after(frames: dict[str, pl.DataFrame], as_of: date, seed: int = 0) -> dict[str, pl.DataFrame]:
    """Alter every field of every record dated after ``as_of`` (keeping it after ``as_of``)."""
    rng = np.random.default_rng(seed)
    cut = datetime(as_of.year, as_of.month, as_of.day) + pl.duration(days=1)
    out = dict(frames)

    def shift(col: str, frame: pl.DataFrame) -> pl.Expr:
        return pl.col(col) + pl.duration(days=pl.Series(rng.integers(1, 40, frame.height)))

    p = frames["payments"]
    after = pl.col("payment_date") > as_of
    out["payments"] = p.with_columns(
        payment_date=pl.when(after).then(shift("payment_date", p)).otherwise(pl.col("payment_date")),
        amount=pl.when(after).then(pl.col("amount") * 0.37).otherwise(pl.col("amount")),
    ).filter(~(after & (pl.Series(rng.random(p.height)) < 0.3)))
    a = frames["adjustments"]
    out["adjustments"] = a.with_columns(
        amount=pl.when(pl.col("adjustment_date") > as_of).then(pl.col("amount") * 2).otherwise(pl.col("amount"))
    )
    k = frames["contacts"]
    k_after = pl.col("ts") >= cut
    out["contacts"] = k.with_columns(
        outcome=pl.when(k_after).then(pl.lit("promise to pay")).otherwise(pl.col("outcome")),
        action=pl.when(k_after).then(pl.lit("escalation")).otherwise(pl.col("action")),
        promise_date=pl.when(k_after).then(pl.lit(as_of)).otherwise(pl.col("promise_date")),
        ts=pl.when(k_after).then(pl.col("ts") + pl.duration(days=3)).otherwise(pl.col("ts")),
    )
    n = frames["notes"]
    out["notes"] = n.with_columns(
        text=pl.when(pl.col("ts") >= cut).then(pl.lit("We are bankrupt, cannot pay, furious about a dispute")).otherwise(pl.col("text"))
    )
    d = frames["disputes"]
    out["disputes"] = d.with_columns(
        resolved_date=pl.when(pl.col("resolved_date") > as_of)
        .then(pl.when(pl.Series(rng.random(d.height)) < 0.5).then(None).otherwise(pl.col("resolved_date") + pl.duration(days=30)))
        .otherwise(pl.col("resolved_date")),
        category=pl.when(pl.col("opened_date") > as_of).then(pl.lit("quality")).otherwise(pl.col("category")),
    )
    i = frames["invoices"]
    out["invoices"] = i.with_columns(
        amount=pl.when(pl.col("invoice_date") > as_of).then(pl.col("amount") * 3).otherwise(pl.col("amount")),
        amount_base=pl.when(pl.col("invoice_date") > as_of).then(pl.col("amount_base") * 3).otherwise(pl.col("amount_base")),
    )
    return out


def test_changing_anything_after_as_of_changes_no_feature(tmp_path, world_frames) -> None:
    frames, end = world_frames
    as_of = date(end.year - 1, 6, 30)
    original = Store(tmp_path / "original.duckdb")
    changed = Store(tmp_path / "changed.duckdb")
    try:
        _load(original, frames)
        _load(changed, _scramble_after(frames, as_of))
        # the scramble really changed the data after as_of ...
        assert original.scalar("SELECT sum(amount)::DOUBLE FROM payments") != changed.scalar(
            "SELECT sum(amount)::DOUBLE FROM payments"
        )
        dates = [date(end.year - 1, 3, 31), as_of]
        before = build_features(original, dates)
        after = build_features(changed, dates)
        print(f"\nleakage check: {before.height} feature rows at {[str(d) for d in dates]}")
        assert before.height > 500
        # ... and no feature of any invoice open at or before as_of moved.
        assert before.equals(after)
    finally:
        original.close()
        changed.close()


def test_the_leakage_check_would_notice_a_change_before_as_of(tmp_path, world_frames) -> None:
    frames, end = world_frames
    as_of = date(end.year - 1, 6, 30)
    altered = dict(frames)
    altered["payments"] = frames["payments"].with_columns(
        payment_date=pl.when(pl.col("payment_date") <= as_of)
        .then(pl.col("payment_date") + pl.duration(days=-3))
        .otherwise(pl.col("payment_date"))
    )
    first = Store(tmp_path / "a.duckdb")
    second = Store(tmp_path / "b.duckdb")
    try:
        _load(first, frames)
        _load(second, altered)
        assert not build_features(first, as_of).equals(build_features(second, as_of))
    finally:
        first.close()
        second.close()


def test_recency_ranks_by_hand_with_same_day_closings(store: Store) -> None:
    """The last 10 / last 5 closed invoices at each as-of date: latest closing first, the same day
    to the lower invoice id first; the 5 recent clean ones skip invoices a dispute moved."""
    insert(store, "customers", [{"customer_id": "C1", "name": "Acme", "currency": "USD"}])
    # I01..I12 are due 1 Jan and I0k is paid k days late, except I05, I06 and I07, all paid on
    # 20 Jan (19 days late); O1 stays open to be scored.
    paid_on = {f"I{k:02d}": date(2024, 1, 1 + k) for k in range(1, 13)}
    paid_on.update({"I05": date(2024, 1, 20), "I06": date(2024, 1, 20), "I07": date(2024, 1, 20)})
    rows = [{"invoice_id": i, "customer_id": "C1", "invoice_date": date(2023, 12, 1), "due_date": date(2024, 1, 1),
             "amount": 100.0, "currency": "USD"} for i in paid_on]
    rows.append({"invoice_id": "O1", "customer_id": "C1", "invoice_date": date(2024, 1, 1), "due_date": date(2024, 3, 1),
                 "amount": 100.0, "currency": "USD"})
    insert(store, "invoices", rows)
    insert(store, "payments", [{"payment_id": f"P{i}", "customer_id": "C1", "invoice_id": i, "payment_date": d,
                                "amount": 100.0} for i, d in paid_on.items()])
    # I12 was disputed before it was paid: not a clean payment
    insert(store, "disputes", [{"dispute_id": "D1", "invoice_id": "I12", "customer_id": "C1",
                                "opened_date": date(2024, 1, 5), "resolved_date": date(2024, 1, 12), "category": "pricing"}])
    late = {i: (d - date(2024, 1, 1)).days for i, d in paid_on.items()}
    # closing order, latest first: 20 Jan (I05, I06, I07 by id), 13 Jan I12, 12 Jan I11, ... 2 Jan I01
    order = ["I05", "I06", "I07", "I12", "I11", "I10", "I09", "I08", "I04", "I03", "I02", "I01"]
    row = build_features(store, date(2024, 1, 31)).row(0, named=True)
    assert row["invoice_id"] == "O1"
    assert row["last10_count"] == 10
    assert row["last10_late_count"] == sum(late[i] > 5 for i in order[:10])
    assert row["last10_mean_days_late"] == pytest.approx(np.mean([late[i] for i in order[:10]]))
    assert row["recent5_mean_days_late"] == pytest.approx(np.mean([late[i] for i in order[:5]]))
    clean5 = [i for i in order if i != "I12"][:5]
    assert row["recent5_clean_median_days_late"] == pytest.approx(np.median([late[i] for i in clean5]))
    # earlier, on 12 Jan: I11 (12 Jan) first, then I10 ... I01; the 20 Jan payments are not known yet
    early = build_features(store, date(2024, 1, 12)).filter(pl.col("invoice_id") == "O1").row(0, named=True)
    known = ["I11", "I10", "I09", "I08", "I04", "I03", "I02", "I01"]
    assert early["last10_count"] == len(known)
    assert early["recent5_mean_days_late"] == pytest.approx(np.mean([late[i] for i in known[:5]]))
