"""Data health (dashboard.health) and its panel: tiny stores whose problems are counted by hand."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from dashboard.health import HealthError, health_report, load_health
from dashboard.ingest import load_file
from dashboard.store import Store

AS_OF = date(2026, 6, 30)
HEADER = "invoice_id,customer_id,invoice_date,due_date,amount,currency\n"
# 10 rows: 2 without an invoice date (set aside), INV-2 repeats INV-1 under another number,
# INV-5 is in EUR with no rate, INV-7 is a million among ~100s, INV-8 is dated after AS_OF.
INVOICES = HEADER + "\n".join([
    "INV-1,C1,2026-01-05,2026-02-04,100.00,USD",
    "INV-2,C1,2026-01-05,2026-02-04,100.00,USD",
    "INV-3,C2,2026-02-01,2026-03-03,120.00,USD",
    "INV-4,C2,2026-02-10,2026-03-12,90.00,USD",
    "INV-5,C3,2026-03-01,2026-03-31,110.00,EUR",
    "INV-6,C3,2026-03-15,2026-04-14,95.00,USD",
    "INV-7,C4,2026-04-01,2026-05-01,1000000.00,USD",
    "INV-8,C4,2026-12-01,2026-12-31,105.00,USD",
    "INV-9,C5,,2026-05-01,80.00,USD",
    "INV-10,C5,,2026-05-02,85.00,USD",
]) + "\n"
# P1 is dated before its invoice (INV-3 issued 2026-02-01): set aside at load, and counted by the health view.
PAYMENTS = "payment_id,invoice_id,payment_date,amount\nP1,INV-3,2026-01-20,120.00\nP2,INV-4,2026-03-01,90.00\nP3,INV-1,2026-02-01,100.00\n"


@pytest.fixture
def messy(store: Store) -> Store:
    load_file(store, INVOICES.encode(), file_name="invoices.csv", max_reject_share=0.5)
    load_file(store, PAYMENTS.encode(), file_name="payments.csv", max_reject_share=0.5)  # P1 is set aside
    return store


def _check(report, key: str):  # noqa: ANN001, ANN202
    return next(c for c in report.checks if c.key == key)


def test_each_problem_is_counted_against_its_threshold(messy: Store) -> None:
    report = health_report(messy, AS_OF)
    missing = _check(report, "missing:invoices:invoice date")
    assert (missing.affected, missing.total, missing.passed) == (2, 10, False)  # 20% > 10%
    assert (_check(report, "missing:invoices:amount").affected, _check(report, "missing:invoices:amount").passed) == (
        0,
        True,
    )
    assert (_check(report, "duplicates:invoices").affected, _check(report, "duplicates:invoices").total) == (1, 8)
    assert _check(report, "amounts:outliers").affected == 1  # the million
    assert _check(report, "amounts:negative").affected == 0
    assert (_check(report, "future:invoices").affected, _check(report, "future:invoices").total) == (1, 8)
    early = _check(report, "paid_before_issued")
    assert (early.affected, early.total, early.passed) == (1, 3, False)
    assert report.currency_mix.rows() == [("USD", 7, 1000610.0, 0), ("EUR", 1, 110.0, 1)]
    assert report.payment_history == {"invoices": 8, "settled": 2, "exact": 2, "interval_only": 0, "payments": 2, "snapshots": 0}
    assert report.exact_payment_share == 1.0


def test_problems_over_threshold_become_banners_in_plain_words(messy: Store) -> None:
    banners = health_report(messy, AS_OF).banners
    assert banners[0] == (
        "Invoices without an invoice date: 2 of 10 (20.0%), over the 10.0% that figures can bear. "
        "Rows set aside at load because this required field was blank."
    )
    assert any(b.startswith("Payments dated before their invoice: 1 of 3 (33.3%)") for b in banners)
    assert any(b.startswith("Invoices dated after 2026-06-30: 1 of 8") for b in banners)
    assert any("1 in EUR have no USD amount" in b for b in banners)
    assert len(banners) == 6  # missing dates, duplicates, outliers, paid before issued, future invoices, currency


def test_a_later_as_of_date_clears_the_future_date_check(messy: Store) -> None:
    assert _check(health_report(messy, date(2026, 12, 31)), "future:invoices").affected == 0


def test_one_load_is_judged_on_its_own_rows(messy: Store) -> None:
    invoices = load_health(messy, 1, as_of=AS_OF)
    payments = load_health(messy, 2, as_of=AS_OF)
    assert invoices.scope == "load #1 (invoices.csv)" and invoices.load_id == 1
    assert _check(invoices, "missing:invoices:invoice date").affected == 2
    assert not any(c.key == "missing:invoices:invoice date" for c in payments.checks)
    assert _check(payments, "paid_before_issued").affected == 1
    with pytest.raises(HealthError, match="no load #99"):
        load_health(messy, 99)


def test_a_clean_store_has_no_banner_and_an_empty_one_says_there_is_no_history(store: Store) -> None:
    clean = HEADER + "A-1,C1,2026-01-05,2026-02-04,100.00,USD\nA-2,C2,2026-02-05,2026-03-07,120.00,USD\n"
    load_file(store, clean.encode(), file_name="clean.csv")
    report = health_report(store, AS_OF)
    assert report.banners == [
        "There is no payment history yet (no payments, and fewer than two dated snapshots): risk scores, "
        "pay-date estimates and forecasts cannot be learned from this data."
    ]
    load_file(store, b"payment_id,invoice_id,payment_date,amount\nQ1,A-1,2026-02-01,100.00\n", file_name="paid.csv")
    assert health_report(store, AS_OF).is_healthy
    assert health_report(store, AS_OF).to_dict()["payment_history"]["exact"] == 1


def test_snapshot_only_history_is_flagged_as_approximate(store: Store) -> None:
    fixtures = Path(__file__).parent / "fixtures" / "formats"
    load_file(store, fixtures / "qbo_ar_aging_detail_2026-09-30.csv")
    load_file(store, fixtures / "qbo_ar_aging_detail_2026-10-07.csv")
    report = health_report(store, date(2026, 10, 7))
    assert report.payment_history["interval_only"] == 3 and report.payment_history["snapshots"] == 2
    assert any(b.startswith("Only 0 of 3 settled invoices (0%) have a real payment date") for b in report.banners)


def test_the_panel_draws_banners_and_checks(messy: Store) -> None:
    from streamlit.testing.v1 import AppTest

    path = str(messy.path)
    messy.close()

    def panel_script() -> None:
        import importlib.util
        from datetime import date

        from dashboard.store import Store

        spec = importlib.util.spec_from_file_location("health_panel", PANEL)  # noqa: F821
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.render(Store(DB), date(2026, 6, 30))  # noqa: F821

    # The script's inputs (panel file, store file) are prepended as globals.
    app = AppTest.from_string(
        f"PANEL = {str(Path(__file__).parent.parent / 'pages' / '_health_panel.py')!r}\nDB = {path!r}\n"
        + _function_body(panel_script),
        default_timeout=30,
    )
    app.run()
    assert not app.exception
    # banners can quote the data (currency codes from files): drawn as text, their Markdown is escaped
    assert [w.value for w in app.warning][0].startswith("Invoices without an invoice date\\: 2 of 10 \\(20.0%\\)")
    assert len(app.dataframe) == 2  # the checks and the currency mix


def _function_body(function) -> str:  # noqa: ANN001
    import inspect
    import textwrap

    source = inspect.getsource(function)
    return textwrap.dedent(source.split(":\n", 1)[1])


def test_the_health_command_prints_one_line_or_json(messy: Store) -> None:
    import json
    import subprocess
    import sys

    path = str(messy.path)
    messy.close()
    root = Path(__file__).parent.parent
    line = subprocess.run(
        [sys.executable, "-m", "dashboard", "health", "--db", path, "--as-of", "2026-06-30"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert line.startswith("Data health of the whole store as of 2026-06-30: 6 problem(s) over threshold.")
    as_json = subprocess.run(
        [sys.executable, "-m", "dashboard", "health", "--db", path, "--load", "2", "--as-of", "2026-06-30", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(as_json)["scope"] == "load #2 (payments.csv)"
    refused = subprocess.run(
        [sys.executable, "-m", "dashboard", "health", "--db", path, "--load", "9"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "there is no load #9 in this store" in refused.stderr
