"""Behavioural segments on a hand-made world whose answer is worked out below.

Every customer gets one invoice of 100 due on the 15th of each month from 2024-10-15 to
2025-06-15 (nine invoices), issued 30 days before, paid ``days late`` after the due date
(None = never paid). Segments on 2025-06-30 (window: due after 2024-06-30) and 2025-03-31:

    customer  days late per invoice            06-30                           03-31
    P         -5 x 9                            prompt (5 days early)           prompt
    O          0 x 9                            on_time                         on_time
    S         10 x 9                            slow (10)                       slow
    L         30 x 9 (06-15 paid 07-15)         chronic (8x30 + 15 open)/9=28.3  chronic (5x30 + 16 open)/6=27.7
    X          0 x 6, 20, 20, None              deteriorating (recent 18.3)     on_time
    D          0 x 9, disputes 05-01 and 06-01  disputer (2 on 9)               on_time
    N          invoices due 05-15 and 06-15     new (2 invoices)                -- (not billed yet)
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from dashboard import segments
from dashboard.errors import MetricError
from dashboard.filters import Filters
from dashboard.segments import SegmentRules
from dashboard.store import Store
from tests.rows import insert_rows

D = date
JUNE = D(2025, 6, 30)
MARCH = D(2025, 3, 31)
DUES = [D(2024, 10, 15), D(2024, 11, 15), D(2024, 12, 15), D(2025, 1, 15), D(2025, 2, 15), D(2025, 3, 15),
        D(2025, 4, 15), D(2025, 5, 15), D(2025, 6, 15)]
PATTERNS: dict[str, list[int | None]] = {
    "P": [-5] * 9,
    "O": [0] * 9,
    "S": [10] * 9,
    "L": [30] * 9,
    "X": [0] * 6 + [20, 20, None],
    "D": [0] * 9,
}


insert = insert_rows


def seed(store: Store) -> None:
    invoices, payments = [], []

    def add(customer: str, due: date, late: int | None) -> None:
        invoice_id = f"{customer}-{due:%y%m}"
        invoices.append({"invoice_id": invoice_id, "customer_id": customer, "doc_type": "invoice",
                         "invoice_date": due - timedelta(days=30), "due_date": due, "amount": 100.0})
        if late is not None:
            payments.append({"payment_id": f"p-{invoice_id}", "customer_id": customer, "invoice_id": invoice_id,
                             "payment_date": due + timedelta(days=late), "amount": 100.0})

    for customer, pattern in PATTERNS.items():
        for due, late in zip(DUES, pattern, strict=True):
            add(customer, due, late)
    add("N", D(2025, 5, 15), 0)
    add("N", D(2025, 6, 15), 0)
    insert(store, "customers", [
        {"customer_id": c, "name": f"Customer {c}", "region": "EU" if c in "PXN" else "US"} for c in [*PATTERNS, "N"]
    ])
    insert(store, "invoices", invoices)
    insert(store, "payments", payments)
    insert(store, "disputes", [
        {"dispute_id": "d1", "invoice_id": "D-2504", "customer_id": "D", "opened_date": D(2025, 5, 1)},
        {"dispute_id": "d2", "invoice_id": "D-2505", "customer_id": "D", "opened_date": D(2025, 6, 1)},
    ])


@pytest.fixture
def world(store: Store) -> Store:
    seed(store)
    return store


def test_assign_segments_june(world: Store) -> None:
    got = segments.assign_segments(world, JUNE)
    assert dict(zip(got["customer_id"], got["segment"], strict=True)) == {
        "D": "disputer", "L": "chronic_late", "N": "new", "O": "on_time", "P": "prompt", "S": "slow",
        "X": "deteriorating",
    }
    row = {r["customer_id"]: r for r in got.iter_rows(named=True)}
    # L: eight invoices 30 days late, the 06-15 one still open on 06-30 (15 days): 255 / 9
    assert row["L"]["avg_days_late"] == pytest.approx(255 / 9)
    assert row["L"]["paid_invoices"] == 8 and row["L"]["open_amount"] == pytest.approx(100.0)
    # X: recent (due after 03-30) 20, 20 and 15 open -> 55 / 3; before that 0
    assert row["X"]["recent_avg_days_late"] == pytest.approx(55 / 3)
    assert row["X"]["prior_avg_days_late"] == pytest.approx(0.0)
    assert row["P"]["avg_days_relative"] == pytest.approx(-5.0)
    assert row["D"]["disputes"] == 2
    assert row["N"]["invoices_due"] == 2
    assert set(got["rule_version"]) == {"v1"}
    assert "days late" in row["L"]["reason"]


def test_segments_only_use_what_was_known(world: Store) -> None:
    # On 06-10 L's 05-15 invoice (paid 06-14) is still open: 06-10 - 05-15 = 26 days, not 30;
    # the 06-15 invoice is not due yet. (7 x 30 + 26) / 8 = 29.5
    got = segments.assign_segments(world, D(2025, 6, 10))
    l_row = got.filter(pl.col("customer_id") == "L").row(0, named=True)
    assert l_row["invoices_due"] == 8
    assert l_row["avg_days_late"] == pytest.approx((7 * 30 + 26) / 8)
    # N's first invoice is issued 04-15; on 04-14 it is not a customer yet
    assert "N" not in segments.assign_segments(world, D(2025, 4, 14))["customer_id"].to_list()


def test_march_segments_and_migration(world: Store) -> None:
    march = segments.assign_segments(world, MARCH)
    assert dict(zip(march["customer_id"], march["segment"], strict=True)) == {
        "D": "on_time", "L": "chronic_late", "O": "on_time", "P": "prompt", "S": "slow", "X": "on_time",
    }
    # L on 03-31: five invoices 30 late + 03-15 open 16 days -> 166 / 6
    assert march.filter(pl.col("customer_id") == "L")["avg_days_late"].item() == pytest.approx(166 / 6)
    matrix = segments.migration(world, MARCH, JUNE)
    assert matrix.rows() == [
        ("none", "new", 1, 0.0),
        ("prompt", "prompt", 1, 0.0),
        ("on_time", "on_time", 1, 0.0),
        ("on_time", "disputer", 1, 0.0),
        ("on_time", "deteriorating", 1, 100.0),  # X's 06-15 invoice is open on 06-30
        ("slow", "slow", 1, 0.0),
        ("chronic_late", "chronic_late", 1, 100.0),
    ]
    assert matrix.columns == ["from_segment", "to_segment", "customers", "ar_amount"]
    worse = segments.moved_to_worse(world, MARCH, JUNE)
    assert worse.select("customer_id", "from_segment", "to_segment", "ar_amount").rows() == [
        ("X", "on_time", "deteriorating", 100.0),
        ("D", "on_time", "disputer", 0.0),
    ]
    with pytest.raises(MetricError):
        segments.migration(world, JUNE, MARCH)


def test_history_mix_and_filters(world: Store) -> None:
    history = segments.segment_history(world, [MARCH, JUNE])
    assert history.height == 6 + 7
    mix = segments.segment_mix(history)
    june = mix.filter(pl.col("month") == JUNE)
    assert june["segment"].to_list() == list(segments.SEGMENTS)
    assert june["customers"].to_list() == [1, 1, 1, 1, 1, 1, 1]
    march = dict(zip(*mix.filter(pl.col("month") == MARCH).select("segment", "customers").to_dict().values(),
                     strict=True))
    assert march["on_time"] == 3 and march["new"] == 0
    eu = segments.assign_segments(world, JUNE, filters=Filters(region=("EU",)))
    assert sorted(eu["customer_id"]) == ["N", "P", "X"]


def test_rules_are_editable_and_validated(world: Store) -> None:
    # Raise the chronic threshold to 30 days: L (28.3) becomes slow; X's increase (18.3)
    # is below a 20-day bar so it falls back to slow (overall (20 + 20 + 15) / 9 = 6.1)
    rules = SegmentRules(rule_version="v1-lenient", slow_max_days_late=30, deteriorating_increase_days=20)
    got = segments.assign_segments(world, JUNE, rules=rules)
    seg = dict(zip(got["customer_id"], got["segment"], strict=True))
    assert seg["L"] == "slow" and seg["X"] == "slow"
    assert set(got["rule_version"]) == {"v1-lenient"}
    with pytest.raises(MetricError, match="-1"):
        SegmentRules(min_invoices=-1)
    with pytest.raises(MetricError, match="12"):
        SegmentRules(recent_months=12)


def test_what_if_thresholds_and_what_they_change(world: Store) -> None:
    # the same lenient thresholds as above, tried as a what-if against the shipped rules
    rules = segments.what_if_rules({"slow_max_days_late": 30, "deteriorating_increase_days": 20.0, "min_invoices": 4})
    assert rules.rule_version == segments.WHAT_IF_VERSION
    assert (rules.slow_max_days_late, rules.deteriorating_increase_days, rules.min_invoices) == (30.0, 20.0, 4)
    shipped = segments.segment_history(world, [MARCH, JUNE])
    trial = segments.segment_history(world, [MARCH, JUNE], rules=rules)
    names = pl.DataFrame({"customer_id": ["L", "X"], "name": ["Late Ltd", "Xeno plc"]})
    changes = segments.rules_comparison(shipped, trial, JUNE, names)
    assert changes.select("customer_id", "name", "shipped_segment", "trial_segment").rows() == [
        ("L", "Late Ltd", "chronic_late", "slow"), ("X", "Xeno plc", "deteriorating", "slow"),
    ]
    # L holds its open 06-15 invoice on 06-30; X its unpaid 06-15 one
    assert changes["ar_amount"].to_list() == [100.0, 100.0]
    assert "days late on average" in changes["reason"][0]
    # nothing changed: the shipped rules themselves, not a copy called what-if
    assert segments.what_if_rules({"min_invoices": 4, "slow_max_days_late": 15}) is segments.DEFAULT_RULES
    assert segments.what_if_rules({}) is segments.DEFAULT_RULES
    with pytest.raises(MetricError, match="no segment threshold called 'late_days'"):
        segments.what_if_rules({"late_days": 3})
    with pytest.raises(MetricError, match="min_invoices is a whole number; got 2.5"):
        segments.what_if_rules({"min_invoices": 2.5})
    with pytest.raises(MetricError, match="slow_max_days_late must be a number"):
        segments.what_if_rules({"slow_max_days_late": float("nan")})
    with pytest.raises(MetricError, match="No customer could be slow"):
        segments.what_if_rules({"on_time_max_days_late": 20})


def test_store_segments_writes_in_one_transaction(world: Store) -> None:
    assert segments.store_segments(world, JUNE) == 7
    assert segments.store_segments(world, JUNE) == 7  # replaces, does not duplicate
    stored = world.query("SELECT customer_id, segment FROM customer_segments ORDER BY customer_id")
    assert stored.height == 7
    assert dict(stored.rows())["X"] == "deteriorating"


def test_customer_timeline(world: Store) -> None:
    timeline = segments.customer_timeline(world, "D", as_of=D(2025, 5, 20))
    kinds = timeline["kind"].to_list()
    # invoices issued up to 05-20 (issued 30 days before the due date: the 06-15 one on 05-16,
    # so all 9), payments on the due date up to 05-15 (8), one dispute opened 05-01
    assert kinds.count("invoice") == 9 and kinds.count("payment") == 8 and kinds.count("dispute opened") == 1
    assert timeline["date"].is_sorted()
    assert timeline["date"].max() <= D(2025, 5, 20)


def test_months_back() -> None:
    assert segments.months_back(D(2025, 6, 15), 3) == [D(2025, 3, 31), D(2025, 4, 30), D(2025, 5, 31)]
    assert segments.months_back(JUNE, 2) == [D(2025, 5, 31), JUNE]


def _segments_page():  # noqa: ANN202
    """The app on the Segments page, run once (AppTest)."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("pages/segments.py")
    return at.run()


def test_segments_page_on_the_seeded_store(app_env) -> None:
    from dashboard.dates import latest_data_date

    at = _segments_page()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Segments"
    from_month = at.selectbox(key="segments_from").value
    to_month = at.selectbox(key="segments_to").value
    assert from_month < to_month
    with Store(app_env) as s:
        as_of = latest_data_date(s)
        months = segments.months_back(as_of, 12)
        expected = segments.moved_to_worse(s, from_month, to_month)
    assert to_month == months[-1]
    if expected.is_empty():
        assert any("No customer moved" in i.value for i in at.info)
    else:
        tables = [d.value for d in at.dataframe if "from_segment" in d.value.columns]
        assert len(tables) == 1
        shown = tables[0]
        assert shown["customer_id"].tolist() == expected["customer_id"].to_list()
        assert at.selectbox(key="segments_customer").value == expected["customer_id"][0]
    at.sidebar.radio(key="segments_measure").set_value("ar_amount").run()
    assert not at.exception


def test_segments_page_what_if_thresholds(app_env) -> None:
    from dashboard.dates import latest_data_date

    at = _segments_page()
    assert not any("What-if" in i.value for i in at.info)
    at.sidebar.number_input(key="segments_rule_slow_max_days_late").set_value(30.0)
    at.sidebar.button(key="segments_rules_try").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("What-if thresholds" in i.value and "most days late on average (slow) 15.0 → 30.0" in i.value for i in at.info)
    with Store(app_env) as s:
        months = segments.months_back(latest_data_date(s), 12)
        rules = segments.what_if_rules({"slow_max_days_late": 30.0})
        expected = segments.rules_comparison(
            segments.segment_history(s, months[-1:]), segments.segment_history(s, months[-1:], rules=rules),
            months[-1], segments.customer_names(s),
        )
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Customers changing segment"] == f"{expected.height:,}"
    assert expected.height > 0 and set(expected["trial_segment"]) == {"slow"}
    shown = [d.value for d in at.dataframe if "trial_segment" in d.value.columns]
    assert shown[0]["customer_id"].tolist() == expected["customer_id"].to_list()
    # back to the shipped rules: the banner and the comparison go, the inputs show the shipped values
    at.sidebar.button(key="segments_rules_reset").click().run()
    assert not at.exception
    assert not any("What-if" in i.value for i in at.info)
    assert "Customers changing segment" not in {m.label for m in at.metric}
    assert at.sidebar.number_input(key="segments_rule_slow_max_days_late").value == 15.0


def test_segments_page_empty_store(tmp_path, monkeypatch) -> None:
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    Store(tmp_path / "empty.duckdb").close()
    monkeypatch.setenv("RECOUP_DB", str(tmp_path / "empty.duckdb"))
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/segments.py")
    at.run()
    assert not at.exception
    assert any("No invoices in the store yet" in i.value for i in at.info)
