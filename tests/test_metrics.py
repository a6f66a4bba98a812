"""Receivables measures against small hand-computed examples (the arithmetic is in the tests).

The June 2025 world (as of 2025-06-30, period = June, 30 days):

    doc  cust type         issued  due    amount  what happens by 06-30
    I1   C1   invoice      05-10   06-09   1000   400 paid 06-20            -> open 600, 21 days past due (1-30)
    I2   C1   invoice      06-05   07-05   2000   nothing                   -> open 2000, Current
    I3   C2   invoice      03-01   03-31    500   nothing                   -> open 500, 91 days (91-120)
    I4   C2   invoice      06-10   06-20   1000   paid in full 06-25        -> closed (15 days to pay, 5 late)
    CM1  C2   credit_memo  06-15   06-15   -300   nothing                   -> open -300, 15 days (1-30)
    I5   C1   invoice      04-01   05-01    800   written off 06-10 (-800)  -> closed, no cash
    I6   C1   invoice      05-20   06-19   1200   paid in full 06-10        -> closed (21 days to pay, 0 late)
    I7   C2   invoice      07-02   08-01    999   issued after the as-of    -> does not exist yet
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from dashboard import ledger, metrics
from dashboard.errors import MetricError
from dashboard.filters import Filters
from dashboard.store import Store
from tests.rows import insert_rows

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2025, 6, 30)
D = date


insert = insert_rows


def invoice(invoice_id, customer_id, issued, due, amount, *, doc_type="invoice", amount_base=None) -> dict:
    return {
        "invoice_id": invoice_id, "customer_id": customer_id, "doc_type": doc_type,
        "invoice_date": issued, "due_date": due, "amount": amount, "amount_base": amount_base,
    }


def seed_june(store: Store) -> None:
    insert(store, "customers", [
        {"customer_id": "C1", "name": "Alpha GmbH", "region": "EU"},
        {"customer_id": "C2", "name": "Beta Inc", "region": "US"},
    ])
    insert(store, "invoices", [
        invoice("I1", "C1", D(2025, 5, 10), D(2025, 6, 9), 1000.0),
        invoice("I2", "C1", D(2025, 6, 5), D(2025, 7, 5), 2000.0),
        invoice("I3", "C2", D(2025, 3, 1), D(2025, 3, 31), 500.0),
        invoice("I4", "C2", D(2025, 6, 10), D(2025, 6, 20), 1000.0),
        invoice("CM1", "C2", D(2025, 6, 15), D(2025, 6, 15), -300.0, doc_type="credit_memo"),
        invoice("I5", "C1", D(2025, 4, 1), D(2025, 5, 1), 800.0),
        invoice("I6", "C1", D(2025, 5, 20), D(2025, 6, 19), 1200.0),
        invoice("I7", "C2", D(2025, 7, 2), D(2025, 8, 1), 999.0),
    ])
    insert(store, "payments", [
        {"payment_id": "P1", "customer_id": "C1", "invoice_id": "I1", "payment_date": D(2025, 6, 20), "amount": 400.0},
        {"payment_id": "P2", "customer_id": "C2", "invoice_id": "I4", "payment_date": D(2025, 6, 25), "amount": 1000.0},
        {"payment_id": "P3", "customer_id": "C1", "invoice_id": "I6", "payment_date": D(2025, 6, 10), "amount": 1200.0},
        # after the as-of date: must not count on 06-30
        {"payment_id": "P4", "customer_id": "C1", "invoice_id": "I2", "payment_date": D(2025, 7, 3), "amount": 2000.0},
    ])
    insert(store, "adjustments", [
        {"adjustment_id": "A1", "invoice_id": "I5", "customer_id": "C1", "adjustment_date": D(2025, 6, 10),
         "amount": -800.0, "kind": "write_off"},
    ])
    insert(store, "disputes", [
        {"dispute_id": "DS1", "invoice_id": "I3", "customer_id": "C2", "opened_date": D(2025, 6, 5),
         "resolved_date": D(2025, 6, 25)},
        {"dispute_id": "DS2", "invoice_id": "I5", "customer_id": "C1", "opened_date": D(2025, 5, 5),
         "resolved_date": D(2025, 6, 10)},
        {"dispute_id": "DS3", "invoice_id": "I2", "customer_id": "C1", "opened_date": D(2025, 7, 1),
         "resolved_date": None},
    ])
    insert(store, "contacts", [
        # kept: 400 promised for 06-18, 400 arrived 06-20 (within the 3-day grace)
        {"contact_id": "K1", "customer_id": "C1", "invoice_id": "I1", "ts": datetime(2025, 6, 1, 9),
         "outcome": "promise to pay", "promise_date": D(2025, 6, 18), "promise_amount": 400.0},
        # broken: 500 promised for 06-10, nothing arrived
        {"contact_id": "K2", "customer_id": "C2", "invoice_id": "I3", "ts": datetime(2025, 6, 1, 9),
         "outcome": "promise to pay", "promise_date": D(2025, 6, 10), "promise_amount": 500.0},
        # grace runs to 07-02, after the as-of: not judged yet
        {"contact_id": "K3", "customer_id": "C1", "invoice_id": "I2", "ts": datetime(2025, 6, 20, 9),
         "outcome": "promise to pay", "promise_date": D(2025, 6, 29), "promise_amount": 2000.0},
    ])


@pytest.fixture
def june(store: Store) -> Store:
    seed_june(store)
    return store


# ---------------------------------------------------------------------------------------
# buckets, periods, pure formulas
# ---------------------------------------------------------------------------------------
def test_bucket_labels_and_validation() -> None:
    assert metrics.bucket_labels() == ["Current", "1-30", "31-60", "61-90", "91-120", "120+"]
    assert metrics.bucket_labels((15, 45)) == ["Current", "1-15", "16-45", "45+"]
    with pytest.raises(MetricError, match=r"\[30, 20\]"):
        metrics.validate_buckets((30, 20))
    with pytest.raises(MetricError, match=r"\[0, 30\]"):
        metrics.validate_buckets((0, 30))


def test_period_bounds() -> None:
    assert metrics.period_bounds(D(2025, 6, 30)) == (D(2025, 6, 1), D(2025, 6, 30))
    # mid-month: the month that ends on the as-of date
    assert metrics.period_bounds(D(2025, 6, 15)) == (D(2025, 5, 16), D(2025, 6, 15))
    assert metrics.period_bounds(D(2025, 6, 30), "quarter") == (D(2025, 4, 1), D(2025, 6, 30))
    # 90 days ending 06-30: 06-30 minus 89 days = 04-02
    assert metrics.period_bounds(D(2025, 6, 30), "trailing90") == (D(2025, 4, 2), D(2025, 6, 30))
    with pytest.raises(MetricError, match="'fortnight'"):
        metrics.period_bounds(AS_OF, "fortnight")


def test_pure_formulas() -> None:
    # DSO = 2800 / 3000 * 30 = 28; best = 2000 / 3000 * 30 = 20; ADD = 8
    assert metrics.dso_standard(2800, 3000, 30) == pytest.approx(28.0)
    assert metrics.best_possible_dso(2000, 3000, 30) == pytest.approx(20.0)
    assert metrics.average_days_delinquent(28.0, 20.0) == pytest.approx(8.0)
    # no sales in the month: None, not a division error
    assert metrics.dso_standard(2800, 0, 30) is None
    assert metrics.average_days_delinquent(None, 20.0) is None
    # CEI = (3500 + 3000 - 2800) / (3500 + 3000 - 2000) * 100 = 3700 / 4500 * 100 = 82.22
    assert metrics.collection_effectiveness_index(3500, 3000, 2800, 2000) == pytest.approx(82.2222, abs=1e-4)
    assert metrics.collection_effectiveness_index(0, 0, 0, 0) is None
    # countback: AR 5000 eats June (3000, 30 d) and May (1500, 31 d), leaves 500 of April's
    # 2000 (30 d): 30 + 31 + 500 / 2000 * 30 = 68.5
    assert metrics.dso_countback(5000, [(3000, 30), (1500, 31), (2000, 30)]) == pytest.approx(68.5)
    # a month with no sales counts whole: 30 + 100 / 1000 * 31 = 33.1
    assert metrics.dso_countback(100, [(0, 30), (1000, 31)]) == pytest.approx(33.1)
    assert metrics.dso_countback(-50, [(1000, 30)]) == 0.0  # credit balance
    assert metrics.dso_countback(5000, [(1000, 30)]) is None  # AR not explained by the sales given
    # turnover = 3000 / ((3500 + 2800) / 2) = 3000 / 3150 = 0.952
    assert metrics.receivables_turnover(3000, 3500, 2800) == pytest.approx(0.952381, abs=1e-6)
    assert metrics.receivables_turnover(3000, 0, 0) is None


# ---------------------------------------------------------------------------------------
# open items, aging, the KPI result
# ---------------------------------------------------------------------------------------
def test_open_items_as_of(june: Store) -> None:
    items = ledger.open_items(june, AS_OF)
    got = {r["invoice_id"]: (float(r["open_amount"]), r["days_past_due"], r["bucket"]) for r in items.iter_rows(named=True)}
    assert got == {
        "I1": (600.0, 21, "1-30"),  # 1000 - 400; 06-30 - 06-09 = 21 days
        "I2": (2000.0, -5, "Current"),  # due 07-05: not yet due; the 07-03 payment is in the future
        "I3": (500.0, 91, "91-120"),  # 06-30 - 03-31 = 91 days
        "CM1": (-300.0, 15, "1-30"),  # credit memo: a negative balance
    }
    # on 05-31: I1 1000 (due 06-09, Current), I3 500 (61 days), I5 800 (30 days), I6 1200 (Current)
    before = ledger.open_items(june, D(2025, 5, 31))
    assert dict(zip(before["invoice_id"], before["open_amount"].cast(pl.Float64), strict=True)) == {
        "I1": 1000.0, "I3": 500.0, "I5": 800.0, "I6": 1200.0,
    }


def test_multi_date_open_items_match_single_date(june: Store) -> None:
    # many dates are read from the ledger's spans; one date by the definition (an ASOF join)
    dates = [D(2025, 4, 30), D(2025, 5, 31), D(2025, 6, 15), AS_OF, D(2025, 7, 31)]
    for chosen in (dates, dates[2:4]):
        sql, params = ledger.open_items_at_dates_sql(chosen)
        together = june.query(sql, params)
        for day in chosen:
            one = ledger.open_items(june, day).sort("invoice_id")
            many = together.filter(pl.col("as_of") == day).drop("as_of").sort("invoice_id")
            assert one.height > 0 and one.equals(many), day


def test_aging_sums_to_total_and_keeps_every_bucket(june: Store) -> None:
    frame = metrics.aging(june, AS_OF)
    assert frame["bucket"].to_list() == metrics.bucket_labels()
    # Current 2000; 1-30: 600 - 300 = 300; 91-120: 500; the rest 0. Total 2800.
    assert frame["amount"].to_list() == [2000.0, 300.0, 0.0, 0.0, 500.0, 0.0]
    assert frame["invoices"].to_list() == [1, 2, 0, 0, 1, 0]
    check = metrics.aging_reconciliation(frame, 2800.0)
    assert check == {"bucket_sum": 2800.0, "ar_total": 2800.0, "difference": 0.0, "reconciles": True}
    assert metrics.aging_reconciliation(frame, 2800.5)["reconciles"] is False


def test_compute_kpis_june(june: Store) -> None:
    k = metrics.compute_kpis(june, AS_OF)
    assert k.aging_frame().equals(metrics.aging(june, AS_OF))  # the page's table is the aging
    assert (k.period_start, k.period_end) == (D(2025, 6, 1), AS_OF)
    # open: I1 600 + I2 2000 + I3 500 + CM1 -300 = 2800; current (not yet due) = I2 2000
    assert k.ar_total == pytest.approx(2800.0)
    assert k.ar_current == pytest.approx(2000.0)
    assert k.ar_overdue == pytest.approx(800.0)
    assert k.pct_current == pytest.approx(2000 / 2800 * 100)
    assert k.aging == {"Current": 2000.0, "1-30": 300.0, "31-60": 0.0, "61-90": 0.0, "91-120": 500.0, "120+": 0.0}
    # credit sales = invoices issued in June: I2 2000 + I4 1000 = 3000 (the credit memo is not a sale)
    assert k.credit_sales == pytest.approx(3000.0)
    # beginning AR (05-31) = I1 1000 + I3 500 + I5 800 + I6 1200 = 3500
    assert k.beginning_ar == pytest.approx(3500.0)
    assert k.dso == pytest.approx(28.0)  # 2800 / 3000 * 30
    assert k.best_possible_dso == pytest.approx(20.0)  # 2000 / 3000 * 30
    assert k.add == pytest.approx(8.0)
    assert k.dso_countback == pytest.approx(28.0)  # 2800 <= June's 3000: 2800 / 3000 * 30
    assert k.cei == pytest.approx(3700 / 4500 * 100)
    assert k.turnover == pytest.approx(3000 / 3150)
    # paid in June with cash: I4 (06-10 -> 06-25: 15 days, due 06-20: 5 late, 1000) and
    # I6 (05-20 -> 06-10: 21 days, due 06-19: 0 late, 1200); I5 was written off, not paid.
    assert k.avg_days_to_pay == pytest.approx(18.0)  # (15 + 21) / 2
    assert k.avg_days_to_pay_weighted == pytest.approx((15 * 1000 + 21 * 1200) / 2200)  # 18.27
    assert k.avg_days_late == pytest.approx(2.5)  # (5 + 0) / 2
    assert k.avg_days_late_weighted == pytest.approx(5 * 1000 / 2200)  # 2.27
    # disputes opened in June: DS1 (DS3 opens 07-01); invoices issued in June: I2, I4 -> 1 / 2
    assert k.dispute_rate == pytest.approx(50.0)
    # resolved in June: DS1 06-05 -> 06-25 = 20 days, DS2 05-05 -> 06-10 = 36 days -> 28
    assert k.avg_days_to_resolve == pytest.approx(28.0)
    # promises judged by 06-30: K1 kept, K2 broken (K3's grace ends 07-02) -> 50%
    assert k.promise_kept_rate == pytest.approx(50.0)
    assert k.open_invoices == 4
    assert k.invoice_count == 7  # I7 is issued after the as-of date


def test_compute_kpis_many_equals_one_at_a_time(june: Store) -> None:
    assert metrics.previous_month_end(AS_OF) == D(2025, 5, 31)
    assert metrics.previous_month_end(D(2025, 6, 15)) == D(2025, 5, 15)
    for period in metrics.PERIODS:
        dates = [AS_OF, metrics.previous_month_end(AS_OF), D(2025, 6, 15)]
        together = metrics.compute_kpis_many(june, dates, period=period)
        assert [k.as_of for k in together] == dates
        for day, k in zip(dates, together, strict=True):
            assert k.to_dict() == metrics.compute_kpis(june, day, period=period).to_dict(), (period, day)


def test_kpis_to_dict_is_json_with_the_issue_keys(june: Store) -> None:
    data = metrics.compute_kpis(june, AS_OF).to_dict()
    text = json.dumps(data)
    for key in ("ar_total", "ar_current", "ar_overdue", "aging", "dso", "dso_countback", "best_possible_dso",
                "add", "cei", "avg_days_to_pay", "avg_days_late"):
        assert key in data
    assert json.loads(text)["as_of"] == "2025-06-30"
    assert data["aging"]["91-120"] == 500.0


def test_filters_restrict_to_the_chosen_customers(june: Store) -> None:
    k = metrics.compute_kpis(june, AS_OF, filters=Filters(region=("EU",)))
    # C1 only: I1 600 + I2 2000 = 2600; June sales I2 2000 -> DSO 2600 / 2000 * 30 = 39
    assert k.ar_total == pytest.approx(2600.0)
    assert k.credit_sales == pytest.approx(2000.0)
    assert k.dso == pytest.approx(39.0)
    top = metrics.top_overdue_customers(june, AS_OF, filters=Filters(region=("US",)))
    # C2: overdue I3 500 + CM1 -300 = 200
    assert top.select("customer_id", "overdue_amount").rows() == [("C2", 200.0)]


def test_quarter_and_trailing_periods(june: Store) -> None:
    q = metrics.compute_kpis(june, AS_OF, period="quarter")
    # Q2 credit sales: I5 800 (04-01) + I1 1000 + I6 1200 (May) + I2 2000 + I4 1000 (June) = 6000
    assert q.credit_sales == pytest.approx(6000.0)
    # 91 days in April-June: DSO = 2800 / 6000 * 91 = 42.47
    assert q.dso == pytest.approx(2800 / 6000 * 91)
    # beginning AR on 03-31: I3 500
    assert q.beginning_ar == pytest.approx(500.0)
    t = metrics.compute_kpis(june, AS_OF, period="trailing90")
    # 04-02 .. 06-30: I5 (04-01) falls outside -> 5200
    assert t.credit_sales == pytest.approx(5200.0)


def test_edge_no_sales_in_the_month(store: Store) -> None:
    # One invoice issued in May, nothing in June: standard DSO is None, countback walks back.
    insert(store, "customers", [{"customer_id": "C1", "name": "A"}])
    insert(store, "invoices", [invoice("I1", "C1", D(2025, 5, 15), D(2025, 6, 14), 1000.0)])
    k = metrics.compute_kpis(store, AS_OF)
    assert k.credit_sales == 0.0
    assert k.dso is None and k.best_possible_dso is None and k.add is None
    # countback: June has no sales (30 days), May's 1000 covers the 1000: 30 + 31 = 61
    assert k.dso_countback == pytest.approx(61.0)
    # CEI = (1000 + 0 - 1000) / (1000 + 0 - 0) * 100 = 0: nothing collected
    assert k.cei == pytest.approx(0.0)


def test_edge_all_current_and_partial_payment(store: Store) -> None:
    insert(store, "customers", [{"customer_id": "C1", "name": "A"}])
    insert(store, "invoices", [
        invoice("I1", "C1", D(2025, 6, 10), D(2025, 7, 10), 1000.0),
        invoice("I2", "C1", D(2025, 6, 20), D(2025, 7, 20), 500.0),
    ])
    insert(store, "payments", [
        {"payment_id": "P1", "invoice_id": "I1", "customer_id": "C1", "payment_date": D(2025, 6, 25), "amount": 250.0}
    ])
    k = metrics.compute_kpis(store, AS_OF)
    # 1000 - 250 + 500 = 1250, all current; sales 1500
    assert k.ar_total == pytest.approx(1250.0)
    assert k.pct_current == pytest.approx(100.0)
    assert k.ar_overdue == 0.0
    assert k.dso == pytest.approx(1250 / 1500 * 30)  # 25.0
    assert k.add == pytest.approx(0.0)  # DSO equals best possible DSO
    # CEI = (0 + 1500 - 1250) / (0 + 1500 - 1250) * 100 = 100
    assert k.cei == pytest.approx(100.0)
    assert k.avg_days_to_pay is None  # nothing fully paid yet


def test_edge_credit_balance(store: Store) -> None:
    insert(store, "customers", [{"customer_id": "C1", "name": "A"}])
    insert(store, "invoices", [
        invoice("CM1", "C1", D(2025, 6, 1), D(2025, 6, 1), -400.0, doc_type="credit_memo"),
        invoice("U1", "C1", D(2025, 6, 2), D(2025, 6, 2), -100.0, doc_type="unapplied_payment"),
    ])
    # cash received without an invoice to apply it to: a credit balance dated the day it arrived
    insert(store, "payments", [
        {"payment_id": "P9", "invoice_id": None, "customer_id": "C1", "payment_date": D(2025, 5, 3), "amount": 50.0}
    ])
    k = metrics.compute_kpis(store, AS_OF)
    assert k.ar_total == pytest.approx(-550.0)  # credits count as negative AR: -400 - 100 - 50
    # the unapplied payment is 06-30 - 05-03 = 58 days old
    assert k.aging["31-60"] == pytest.approx(-50.0)
    items = ledger.open_items(store, AS_OF)
    assert items.filter(pl.col("invoice_id") == "P9")["doc_type"].item() == "unapplied_payment"
    assert k.pct_current is None  # no share of a credit balance
    assert k.dso is None and k.dso_countback == 0.0
    assert sum(k.aging.values()) == pytest.approx(k.ar_total)


def test_base_currency_uses_the_documents_own_rate(store: Store) -> None:
    insert(store, "customers", [{"customer_id": "C1", "name": "A"}])
    insert(store, "invoices", [invoice("I1", "C1", D(2025, 6, 1), D(2025, 7, 1), 1000.0, amount_base=1100.0)])
    insert(store, "payments", [
        {"payment_id": "P1", "invoice_id": "I1", "customer_id": "C1", "payment_date": D(2025, 6, 5), "amount": 400.0}
    ])
    # 600 of 1000 open in document currency -> 600 * 1100 / 1000 = 660 in base
    assert metrics.compute_kpis(store, AS_OF).ar_total == pytest.approx(660.0)


def test_kpi_history_last_row_equals_compute_kpis(june: Store) -> None:
    history = metrics.kpi_history(june, AS_OF, months=4)
    assert history["month_end"].to_list() == [D(2025, 3, 31), D(2025, 4, 30), D(2025, 5, 31), AS_OF]
    last = history.row(-1, named=True)
    k = metrics.compute_kpis(june, AS_OF)
    for key in ("ar_total", "ar_current", "dso", "dso_countback", "best_possible_dso", "add", "cei"):
        assert last[key] == pytest.approx(getattr(k, key)), key
    # 05-31: AR 3500, current = I1 1000 + I6 1200 = 2200; May sales I1 1000 + I6 1200 = 2200
    may = history.row(2, named=True)
    assert may["ar_total"] == pytest.approx(3500.0)
    assert may["dso"] == pytest.approx(3500 / 2200 * 31)
    # countback 05-31: May 2200 (31 d), April 800 (30 d), March 500 (31 d) = 3500 exactly -> 92
    assert may["dso_countback"] == pytest.approx(92.0)
    assert may["1-30"] == pytest.approx(800.0) and may["61-90"] == pytest.approx(500.0)


def test_roll_rates(june: Store) -> None:
    rates = metrics.roll_rates(june, D(2025, 5, 31), AS_OF)
    # 05-31 -> 06-30: I1 Current -> 1-30 (1000), I6 Current -> paid (1200),
    # I5 1-30 -> paid (written off, 800), I3 61-90 -> 91-120 (500)
    assert rates.select("from_bucket", "to_bucket", "amount").rows() == [
        ("Current", "1-30", 1000.0),
        ("Current", "paid", 1200.0),
        ("1-30", "paid", 800.0),
        ("61-90", "91-120", 500.0),
    ]
    assert rates["share"].to_list() == pytest.approx([1000 / 2200 * 100, 1200 / 2200 * 100, 100.0, 100.0])
    # from 06-15: I2 2000 Current -> Current, I4 1000 Current -> paid (06-25), I1 1000 (6 days,
    # 1-30) -> 1-30, I3 500 (76 days, 61-90) -> 91-120; CM1's -300 credit does not roll
    mid = metrics.roll_rates(june, D(2025, 6, 15), AS_OF)
    assert mid.select("from_bucket", "to_bucket", "amount").rows() == [
        ("Current", "Current", 2000.0),
        ("Current", "paid", 1000.0),
        ("1-30", "1-30", 1000.0),
        ("61-90", "91-120", 500.0),
    ]
    with pytest.raises(MetricError):
        metrics.roll_rates(june, AS_OF, AS_OF)
    history = metrics.roll_rate_history(june, AS_OF, months=1)
    june_rates = dict(zip(history["from_bucket"], history["roll_rate"], strict=True))
    # Current rolled forward: 1000 of 2200; 1-30: 0 of 800 (paid); 61-90: 500 of 500
    assert june_rates == pytest.approx({"Current": 1000 / 2200 * 100, "1-30": 0.0, "61-90": 100.0})
    # the one-pass matrices: the last step is roll_rates(05-31, 06-30); April -> May before it
    matrices = metrics.roll_rate_matrices(june, AS_OF, months=2)
    assert matrices["to_date"].unique().sort().to_list() == [D(2025, 5, 31), AS_OF]
    assert matrices.filter(pl.col("to_date") == AS_OF).drop("from_date", "to_date").equals(rates)
    # 04-30: I3 500 (30 days, 1-30), I5 800 (Current, due 05-01) -> 05-31: I5 30 days (1-30),
    # I3 61 days (61-90): it skipped a bucket in one month
    april = matrices.filter(pl.col("to_date") == D(2025, 5, 31)).select("from_bucket", "to_bucket", "amount")
    assert april.rows() == [("Current", "1-30", 800.0), ("1-30", "61-90", 500.0)]


def test_top_overdue_customers(june: Store) -> None:
    top = metrics.top_overdue_customers(june, AS_OF)
    # C1: I1 600 overdue (21 days); C2: I3 500 + CM1 -300 = 200 (oldest 91 days)
    assert top.select("customer_id", "name", "overdue_amount", "oldest_days_past_due").rows() == [
        ("C1", "Alpha GmbH", 600.0, 21),
        ("C2", "Beta Inc", 200.0, 91),
    ]


def test_empty_store_gives_zeroes_not_errors(store: Store) -> None:
    k = metrics.compute_kpis(store, AS_OF)
    assert k.ar_total == 0.0 and k.dso is None and k.open_invoices == 0 and k.invoice_count == 0
    assert metrics.kpi_history(store, AS_OF, months=3).height == 3
    assert metrics.roll_rates(store, D(2025, 5, 31), AS_OF).is_empty()


# ---------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------
def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dashboard", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_kpis_cli_json_matches_compute_kpis(june: Store) -> None:
    expected = metrics.compute_kpis(june, AS_OF).to_dict()
    path = str(june.path)
    june.close()
    done = _run_cli("kpis", "--db", path, "--as-of", "2025-06-30", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data == expected
    assert data["ar_total"] == 2800.0 and data["dso"] == 28.0
    summary = _run_cli("kpis", "--db", path)  # default as-of: the newest date in the data (07-03)
    assert summary.returncode == 0, summary.stderr
    assert summary.stdout.startswith("As of 2025-07-03: open AR") and summary.stdout.count("\n") == 1
    bad = _run_cli("kpis", "--db", path, "--as-of", "2025-06-30", "--period", "fortnight")
    assert bad.returncode != 0
    bad_date = _run_cli("kpis", "--db", path, "--as-of", "30/06/2025")
    assert bad_date.returncode == 2 and "30/06/2025" in bad_date.stderr


# ---------------------------------------------------------------------------------------
# the Overview page on the seeded sample store: the figures shown equal the CLI's
# ---------------------------------------------------------------------------------------
def test_overview_page_shows_the_cli_figures(app_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from streamlit.testing.v1 import AppTest

    from dashboard.cli import main

    assert main(["kpis", "--db", str(app_env), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/overview.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Overview"
    shown = {m.label: m.value for m in at.metric}
    # every figure with its unit: money names the base currency in its label, days say "days"
    assert shown["Open AR (USD)"] == f"{cli['ar_total']:,.2f}"
    assert shown["Overdue AR (USD)"] == f"{cli['ar_overdue']:,.2f}"
    assert shown["Invoices and credit notes"] == f"{cli['invoice_count']:,}"
    assert shown["DSO"] == f"{cli['dso']:,.1f} days"
    assert shown["Best possible DSO"] == f"{cli['best_possible_dso']:,.1f} days"
    assert shown["Average days delinquent"] == f"{cli['add']:,.1f} days"
    assert shown["Collection effectiveness (CEI)"] == f"{cli['cei']:,.1f}%"
    assert shown["DSO (countback)"] == f"{cli['dso_countback']:,.1f} days"
    # the seeded store: every invoices row is dated on or before the newest date in the data
    with Store(app_env) as s:
        assert cli["invoice_count"] == s.table_counts()["invoices"]
    assert cli["invoice_count"] > 0 and cli["ar_total"] > 0
    # the aging reconciliation check is shown and passes: invoices owed less credits = open AR
    assert any(f"Open AR {cli['ar_total']:,.2f} USD = " in s.value for s in at.success), [s.value for s in at.success]
    # the page wires the period control through to the measures
    at.sidebar.selectbox(key="overview_period").set_value("quarter").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Open AR (USD)"] == f"{cli['ar_total']:,.2f}"
    # and the filters: one region's figures are that region's compute_kpis
    region_box = at.multiselect(key="overview_filter_region")
    region = region_box.options[0]
    region_box.set_value([region]).run()
    assert not at.exception
    with Store(app_env) as s:
        as_of = date.fromisoformat(cli["as_of"])
        expected = metrics.compute_kpis(s, as_of, period="quarter", filters=Filters(region=(region,)))
    shown = {m.label: m.value for m in at.metric}
    assert shown["Open AR (USD)"] == f"{expected.ar_total:,.2f}"
    assert expected.ar_total < cli["ar_total"]
    assert shown["DSO"] == ("—" if expected.dso is None else f"{expected.dso:,.1f} days")


def test_overview_page_empty_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    Store(tmp_path / "empty.duckdb").close()
    monkeypatch.setenv("RECOUP_DB", str(tmp_path / "empty.duckdb"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/overview.py")
    at.run()
    assert not at.exception
    assert any("No invoices in the store yet" in i.value for i in at.info)
    assert not at.metric


# ---------------------------------------------------------------------------------------
# as-of correctness on the generator's history
# ---------------------------------------------------------------------------------------
def _known_on(frames: dict[str, pl.DataFrame], day: date) -> dict[str, pl.DataFrame]:
    """The rows a store loaded on ``day`` would have held: nothing dated later, disputes not
    yet resolved, contacts not yet made."""
    known = dict(frames)
    known["invoices"] = frames["invoices"].filter(pl.col("invoice_date") <= day)
    known["payments"] = frames["payments"].filter(pl.col("payment_date") <= day)
    known["adjustments"] = frames["adjustments"].filter(pl.col("adjustment_date") <= day)
    disputes = frames["disputes"].filter(pl.col("opened_date") <= day)
    later = pl.col("resolved_date") > day
    known["disputes"] = disputes.with_columns(
        pl.when(later).then(None).otherwise(pl.col("resolved_date")).alias("resolved_date"),
        pl.when(later).then(None).otherwise(pl.col("resolution")).alias("resolution"),
    )
    known["contacts"] = frames["contacts"].filter(pl.col("ts").cast(pl.Date) <= day)
    known["notes"] = frames["notes"].filter(pl.col("ts").cast(pl.Date) <= day)
    known["fx_rates"] = frames["fx_rates"].filter(pl.col("date") <= day)
    return known


def test_as_of_figures_equal_a_store_that_held_only_what_was_known(tmp_path: Path) -> None:
    from dashboard.dates import add_months, month_end
    from dashboard.ingest import load_world
    from dashboard.segments import assign_segments
    from dashboard.synthetic import WorldConfig, generate_world

    world = generate_world(WorldConfig(n_customers=80, months=20, seed=7))
    with Store(tmp_path / "full.duckdb") as full:
        load_world(full, world.frames)
        for months_back in (3, 9):
            day = month_end(add_months(world.config.end_date, -months_back))
            with Store(tmp_path / f"then-{months_back}.duckdb") as then:
                load_world(then, _known_on(world.frames, day))
                assert then.table_counts()["invoices"] < full.table_counts()["invoices"]
                now_view = metrics.compute_kpis(full, day).to_dict()
                then_view = metrics.compute_kpis(then, day).to_dict()
                assert now_view == then_view, day
                assert now_view["ar_total"] > 0 and now_view["dso"] is not None
                assert metrics.kpi_history(full, day, months=6).equals(metrics.kpi_history(then, day, months=6))
                assert metrics.roll_rates(full, add_months(day, -1), day).equals(
                    metrics.roll_rates(then, add_months(day, -1), day)
                )
                assert assign_segments(full, day).equals(assign_segments(then, day))
                mid = day - timedelta(days=12)  # a mid-month date uses nothing after it either
                assert metrics.compute_kpis(full, mid).to_dict() == metrics.compute_kpis(then, mid).to_dict()
                assert assign_segments(full, mid).equals(assign_segments(then, mid))


def seed_months(store: Store) -> None:
    """Seven months of a book whose balances move in every way the ledger knows (as of 2025-07-31):

        doc  cust  issued  due     amount      events
        A1   C1    01-10   02-09    1000       paid 300 on 02-15, 200 on 03-20, 500 on 05-05 (twice that day: 250 + 250)
        E1   C1    02-01   03-03     500 EUR   (rate 1.1: 550.00 base) paid 200 EUR 04-10, 300 EUR 06-15
        A3   C2    01-20   02-19     800       overpaid: 900 on 03-10 -> -100 open from then on
        CM1  C2    03-05   03-05    -250       credit memo, never used
        A4   C2    02-15   03-17     600       credit note written +150 on 04-01 -> 450; paid 450 on 06-30
        A5   C3    04-01   05-01    1200       a statement says 1000 open on 05-31 (nothing dated before it);
                                               paid 400 on 06-20
        A6   C3    03-01   03-31     400       100 paid 02-25, before it was issued; 300 on 05-10
        A7   C3    05-15   06-14     300       written off in full on 07-31
        U1   C1    (payment 03-15, 75, no invoice): unapplied cash, -75 open from 03-15
    """
    insert(store, "customers", [
        {"customer_id": "C1", "name": "Alpha GmbH", "region": "EU"},
        {"customer_id": "C2", "name": "Beta Inc", "region": "US"},
        {"customer_id": "C3", "name": "Gamma LLC", "region": "US"},
    ])
    insert(store, "fx_rates", [
        {"date": D(2025, 1, 1), "currency": "EUR", "rate_to_base": 1.1},
        {"date": D(2025, 4, 1), "currency": "EUR", "rate_to_base": 1.2},  # after E1's date: not E1's rate
    ])
    insert(store, "invoices", [
        invoice("A1", "C1", D(2025, 1, 10), D(2025, 2, 9), 1000.0),
        {**invoice("E1", "C1", D(2025, 2, 1), D(2025, 3, 3), 500.0), "currency": "EUR"},
        invoice("A3", "C2", D(2025, 1, 20), D(2025, 2, 19), 800.0),
        invoice("CM1", "C2", D(2025, 3, 5), D(2025, 3, 5), -250.0, doc_type="credit_memo"),
        invoice("A4", "C2", D(2025, 2, 15), D(2025, 3, 17), 600.0),
        invoice("A5", "C3", D(2025, 4, 1), D(2025, 5, 1), 1200.0),
        invoice("A6", "C3", D(2025, 3, 1), D(2025, 3, 31), 400.0),
        invoice("A7", "C3", D(2025, 5, 15), D(2025, 6, 14), 300.0),
    ])
    paid = [
        ("P1", "C1", "A1", D(2025, 2, 15), 300.0), ("P2", "C1", "A1", D(2025, 3, 20), 200.0),
        ("P3", "C1", "A1", D(2025, 5, 5), 250.0), ("P4", "C1", "A1", D(2025, 5, 5), 250.0),
        ("P5", "C1", "E1", D(2025, 4, 10), 200.0), ("P6", "C1", "E1", D(2025, 6, 15), 300.0),
        ("P7", "C2", "A3", D(2025, 3, 10), 900.0), ("P8", "C2", "A4", D(2025, 6, 30), 450.0),
        ("P9", "C3", "A5", D(2025, 6, 20), 400.0), ("P10", "C3", "A6", D(2025, 2, 25), 100.0),
        ("P11", "C3", "A6", D(2025, 5, 10), 300.0), ("U1", "C1", None, D(2025, 3, 15), 75.0),
    ]
    insert(store, "payments", [
        {"payment_id": p, "customer_id": c, "invoice_id": i, "payment_date": d, "amount": a,
         "currency": "EUR" if i == "E1" else None}
        for p, c, i, d, a in paid
    ])
    insert(store, "adjustments", [
        {"adjustment_id": "N1", "invoice_id": "A4", "customer_id": "C2", "adjustment_date": D(2025, 4, 1),
         "amount": 150.0, "kind": "credit_note"},
        {"adjustment_id": "W1", "invoice_id": "A7", "customer_id": "C3", "adjustment_date": D(2025, 7, 31),
         "amount": -300.0, "kind": "write_off"},
    ])
    insert(store, "snapshots", [
        {"load_id": 1, "as_of_date": D(2025, 5, 31), "invoice_id": "A5", "customer_id": "C3", "open_amount": 1000.0},
    ])


def test_history_at_many_dates_equals_the_per_date_definition(store: Store) -> None:
    """The multi-date reading (spans) gives, on every date, exactly the open items of the one-date
    definition (the balance of the last event day on or before it): every day of the book, so
    each event's day and the day before it are both checked; then the history's month-end
    figures against aging built from the one-date items."""
    seed_months(store)
    last = D(2025, 7, 31)
    days = [D(2025, 1, 1) + timedelta(days=n) for n in range((D(2025, 8, 2) - D(2025, 1, 1)).days)]
    seen: set[str] = set()
    for filters in (Filters(), Filters(region=("US",))):
        sql, params = ledger.open_items_at_dates_sql(days, filters=filters)
        together = store.query(sql, params)
        for day in days:
            one = ledger.open_items(store, day, filters=filters).sort("invoice_id")
            many = together.filter(pl.col("as_of") == day).drop("as_of").sort("invoice_id")
            assert one.equals(many), (day, filters)
            for row in one.iter_rows(named=True):  # what the book put on the dates (checked below)
                seen.add(f"{row['invoice_id']} {row['open_amount']} {row['balance_unknown']}")

        history = metrics.kpi_history(store, last, months=7, filters=filters)
        assert history["month_end"].to_list() == [metrics.month_end(D(2025, m, 1)) for m in range(1, 8)]
        labels = metrics.bucket_labels()
        for row in history.iter_rows(named=True):
            items = ledger.open_items(store, row["month_end"], filters=filters)
            owed = (pl.col("doc_type") == "invoice") & (pl.col("open_amount") > 0)
            per = items.group_by("bucket", owed.alias("owed")).agg(pl.col("open_amount").sum())
            for label in labels:
                in_bucket = per.filter(pl.col("bucket") == label)
                assert row[label] == pytest.approx(float(in_bucket["open_amount"].sum()), abs=1e-9), (row, label)
                assert row[f"owed_{label}"] == pytest.approx(
                    float(in_bucket.filter("owed")["open_amount"].sum()), abs=1e-9), (row, label)
            assert row["credits"] == pytest.approx(float(per.filter(~pl.col("owed"))["open_amount"].sum()), abs=1e-9)
            assert row["ar_total"] == pytest.approx(float(items["open_amount"].sum()), abs=1e-9)
            kpis = metrics.compute_kpis(store, row["month_end"], filters=filters)
            for key in ("ar_total", "ar_current", "ar_overdue", "dso", "dso_countback", "best_possible_dso", "cei"):
                assert row[key] == getattr(kpis, key), key  # the same figures, not merely close
    # the book did put every case on some date: a partly paid foreign invoice at its own rate
    # (300 EUR x 1.1), an overpayment, a credit memo, unapplied cash, a statement's unknown past
    for case in ("A1 700.00 False", "A1 500.00 False", "E1 330.00 False", "A3 -100.00 False", "CM1 -250.00 False",
                 "U1 -75.00 False", "A5 1200.00 True", "A5 1000.00 False", "A5 600.00 False", "A4 450.00 False",
                 "A6 300.00 False", "A7 300.00 False"):
        assert case in seen, case
