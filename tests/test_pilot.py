"""Pilots: the assignment (stable, balanced by construction), the worklist's holdout, the report's
figures worked out by hand on a tiny ledger, the command line, and replays with a known effect."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dashboard.cli import main
from dashboard.errors import PilotError
from dashboard.export_history import build_export_files, save_export
from dashboard.ingest import load_world
from dashboard.ingest.load import load_frame
from dashboard.pilot import (
    Pilot,
    PilotPlan,
    assign_arms,
    assignments,
    balance_table,
    balance_warning,
    cancel_pilot,
    hash_unit,
    holdout_file_name,
    list_pilots,
    plan_pilot,
    start_pilot,
)
from dashboard.pilot_outcomes import bootstrap_sums
from dashboard.pilot_report import pilot_report
from dashboard.store import Store
from dashboard.synthetic import WorldConfig, default_policy, generate_world
from dashboard.synthetic.pilot_replay import replay_pilot
from dashboard.synthetic.shocks import ShockWorldConfig, generate_shock_world
from dashboard.worklist import build_worklist
from tests.rows import insert_rows

WORLD = WorldConfig(seed=5, n_customers=200, start=date(2024, 1, 1), months=18)
START = date(2025, 1, 6)


# -- assignment ---------------------------------------------------------------------------------
def test_assignment_is_balanced_by_construction() -> None:
    # 3 strata of 37, 50 and 13 customers; a 10% holdout: 10 in all, each stratum within one of its share
    ids = [f"C{i:03d}" for i in range(100)]
    strata = ["slow | Q1"] * 37 + ["prompt | Q2"] * 50 + ["new | no open balance"] * 13
    customers = pl.DataFrame({"customer_id": ids, "stratum": strata})
    assigned = assign_arms(customers, "pilot-a", 0.10)
    per_stratum = assigned.group_by("stratum").agg(n=pl.len(), held=(pl.col("arm") == "holdout").sum())
    assert int(per_stratum["held"].sum()) == 10
    for row in per_stratum.to_dicts():
        assert abs(row["held"] - 0.10 * row["n"]) <= 1, row
    # inside a stratum the holdout is the customers with the smallest hashes
    slow = assigned.filter(pl.col("stratum") == "slow | Q1").with_columns(
        u=pl.Series(hash_unit("pilot-a", assigned.filter(pl.col("stratum") == "slow | Q1")["customer_id"].to_list()))
    )
    assert slow.filter(pl.col("arm") == "holdout")["u"].max() < slow.filter(pl.col("arm") == "worklist")["u"].min()
    # deterministic for a pilot id, different for another
    again = assign_arms(customers.reverse(), "pilot-a", 0.10)
    assert again.sort("customer_id")["arm"].to_list() == assigned.sort("customer_id")["arm"].to_list()
    other = assign_arms(customers, "pilot-b", 0.10)
    assert other.sort("customer_id")["arm"].to_list() != assigned.sort("customer_id")["arm"].to_list()


def test_the_hash_is_sha256_of_pilot_and_customer() -> None:
    # sha256("p:c1") starts with 6f0d... -> the first 13 hex digits over 16**13
    import hashlib

    expected = int(hashlib.sha256(b"p:c1").hexdigest()[:13], 16) / 16**13
    assert hash_unit("p", ["c1"])[0] == pytest.approx(expected)
    assert 0.0 <= expected < 1.0


def test_balance_check_warns_beyond_chance_only() -> None:
    rng = np.random.default_rng(3)
    n = 400
    arm = np.where(np.arange(n) < 40, "holdout", "worklist")
    alike = pl.DataFrame(
        {"arm": arm, "segment": ["slow"] * n, "open_amount": rng.normal(1000, 100, n),
         "avg_days_late": rng.normal(10, 3, n), "invoiced_year": rng.normal(5000, 500, n)}
    )
    assert balance_warning(balance_table(alike)) is None
    skewed = alike.with_columns(pl.when(pl.col("arm") == "holdout").then(pl.col("open_amount") + 300)
                                .otherwise(pl.col("open_amount")).alias("open_amount"))
    table = balance_table(skewed)
    row = table.filter(pl.col("variable") == "Open AR at the start").to_dicts()[0]
    assert row["standardized_difference"] < -2 and row["unusual"]
    assert "Open AR at the start" in (balance_warning(table) or "")


def test_normal_limit_of_the_bootstrap_matches_resampling() -> None:
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.exponential(10, 3000), np.ones(3000)])
    exact = bootstrap_sums(x[:1500], np.zeros(1500), resamples=2000, seed=2)  # resampled
    normal = bootstrap_sums(x, np.zeros(3000), resamples=2000, seed=2)  # above the threshold: the normal limit
    assert exact[:, 1].std() == pytest.approx(0.0, abs=1e-9)  # every resample has exactly n customers
    # the spread of a sum of n draws is sqrt(n) × sd: both ways agree within sampling error
    assert exact[:, 0].std() == pytest.approx(np.sqrt(1500) * x[:1500, 0].std(), rel=0.08)
    assert normal[:, 0].std() == pytest.approx(np.sqrt(3000) * x[:, 0].std(), rel=0.08)
    assert normal[:, 0].mean() == pytest.approx(x[:, 0].sum(), rel=0.01)


# -- a generated world --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pilot-world") / "recoup.duckdb"
    with Store(path) as s:
        load_world(s, generate_world(WORLD, default_policy()).frames)
    return path


@pytest.fixture
def world(world_db: Path, tmp_path: Path) -> Iterator[Store]:
    path = tmp_path / "recoup.duckdb"
    shutil.copy(world_db, path)
    s = Store(path)
    yield s
    s.close()


def test_plan_refuses_settings_it_cannot_use(world: Store) -> None:
    with pytest.raises(PilotError, match="30, 60 or 90 days; got 45"):
        plan_pilot(world, name="x", start=START, days=45)
    with pytest.raises(PilotError, match="got 0.7"):
        plan_pilot(world, name="x", start=START, holdout_share=0.7)
    with pytest.raises(PilotError, match="'nobody'"):
        plan_pilot(world, name="x", start=START, scope_kind="collector", scope_value="nobody")


def test_assignment_is_stored_once_and_stable_across_restarts_and_loads(world: Store) -> None:
    plan = plan_pilot(world, name="Stable", start=START, days=90)
    assert plan.power["days_to_pay_days"] > 0 and "80% power" in plan.power["text"]
    assert not list_pilots(world) and world.query("SELECT * FROM pilot_assignments").is_empty()  # a plan stores nothing
    pilot = start_pilot(world, plan)
    before = assignments(world, pilot.pilot_id)
    assert before.height == plan.customers.height
    assert before.sort("customer_id")["arm"].to_list() == plan.customers.sort("customer_id")["arm"].to_list()
    held = int((before["arm"] == "holdout").sum())
    assert held == round(0.10 * before.height)
    path = world.path
    world.close()
    with Store(path) as again:  # a restart
        assert assignments(again, pilot.pilot_id).equals(before)
        # planning the same pilot again gives the same groups (the hash, not a random draw)
        replan = plan_pilot(again, name="Stable", start=START, days=90)
        assert replan.customers.sort("customer_id")["arm"].to_list() == before["arm"].to_list()
        with pytest.raises(PilotError, match="exists already"):
            start_pilot(again, replan)
        # a later load brings a new customer: existing arms stay, the newcomer is assigned on first sight
        load_frame(again, pl.DataFrame({"customer_id": ["NEW-1"], "name": ["Newcomer Ltd"], "owner": ["ana"]}),
                   table="customers", file_name="new-customers.csv")
        load_frame(again, pl.DataFrame({"invoice_id": ["NEW-INV-1"], "customer_id": ["NEW-1"],
                                        "invoice_date": [START + timedelta(days=5)],
                                        "due_date": [START + timedelta(days=20)], "amount": [500.0]}),
                   table="invoices", file_name="new-invoices.csv")
        pilot_report(again, pilot, START + timedelta(days=40), resamples=200)
        after = assignments(again, pilot.pilot_id)
        newcomer = after.filter(pl.col("customer_id") == "NEW-1").to_dicts()[0]
        assert newcomer["arm"] == ("holdout" if hash_unit(pilot.pilot_id, ["NEW-1"])[0] < 0.10 else "worklist")
        assert "first seen after the start" in newcomer["stratum"]
        assert after.filter(pl.col("customer_id") != "NEW-1").equals(before)
    with Store(path) as third:
        assert assignments(third, pilot.pilot_id).equals(after)


def test_holdout_customers_never_appear_as_actionable_worklist_lines(world: Store) -> None:
    pilot = start_pilot(world, plan_pilot(world, name="Holdout", start=START, days=90, holdout_share=0.3))
    holdout_ids = set(assignments(world, pilot.pilot_id).filter(pl.col("arm") == "holdout")["customer_id"])
    as_of = START + timedelta(days=14)
    result = build_worklist(world, as_of, use_model=False, respect_cadence=False, capacity_per_collector=5)
    assert result.lines.height and result.holdout.height
    assert not holdout_ids & set(result.lines["customer_id"])  # today's lines and those scheduled later
    assert set(result.holdout["customer_id"]) <= holdout_ids
    assert set(result.holdout["arm"]) == {"holdout"}
    assert result.holdout["note"].str.contains("pilot holdout").all()
    # each holdout line says what the usual cadence (the contact history before the start) has for today
    due = result.holdout.filter(pl.col("usual_touch_today"))
    assert due.height and due["usual_action"].is_not_null().all()
    assert result.pilot_note and "Holdout" in result.pilot_note
    # capacity is spent on worklist customers only: each collector's first day is full
    per_collector = result.today().group_by("collector").len()
    assert per_collector["len"].max() <= 5
    # the export: a separate, marked holdout file; only worklist lines are recorded as work
    prepared = build_export_files(world, result)
    name = holdout_file_name(as_of)
    assert name in prepared.files
    text = prepared.files[name].decode("utf-8-sig")
    assert "usual_touch_today" in text.splitlines()[0] and text.count("pilot holdout") == result.holdout.height
    save_export(world, result, prepared, export_format="csv", author="test")
    recorded = set(world.query("SELECT customer_id FROM actions")["customer_id"])
    assert recorded and not recorded & holdout_ids
    left_out = build_export_files(world, result, include_holdout=False)
    assert name not in left_out.files
    # after the pilot, the holdout customers are worklist customers again
    later = build_worklist(world, pilot.last_day + timedelta(days=1), use_model=False, respect_cadence=False)
    assert later.holdout.is_empty() and later.pilot_note is None


def test_one_pilot_at_a_time(world: Store) -> None:
    start_pilot(world, plan_pilot(world, name="First", start=START, days=30))
    with pytest.raises(PilotError, match="one pilot at a time"):
        start_pilot(world, plan_pilot(world, name="Second", start=START + timedelta(days=29), days=30))
    start_pilot(world, plan_pilot(world, name="Second", start=START + timedelta(days=30), days=30))


def test_starting_and_cancelling_need_an_analyst_and_are_audited(world: Store) -> None:
    from dashboard import users
    from dashboard.access import Actor
    from dashboard.errors import AccessDeniedError

    users.add_user(world, "cole@example.com", "collector")
    collector = users.actor_for(users.sign_in(world, subject="sub-cole", email="cole@example.com", name="Cole"))
    plan = plan_pilot(world, name="Spring", start=START, days=30)
    with pytest.raises(AccessDeniedError, match="may not start or cancel a pilot"):
        start_pilot(world, plan, actor=collector)
    assert world.scalar("SELECT count(*) FROM pilots") == 0  # refused: nothing written, no audit row
    assert world.scalar("SELECT count(*) FROM audit_log WHERE action LIKE 'pilot%'") == 0
    users.add_user(world, "ann@example.com", "analyst")
    analyst = users.actor_for(users.sign_in(world, subject="sub-ann", email="ann@example.com", name="Ann"))
    pilot = start_pilot(world, plan, actor=analyst)
    cancel_pilot(world, pilot.pilot_id, actor=Actor("sub-ann", "analyst", email="ann@example.com"))
    rows = world.query("SELECT action, subject, details FROM audit_log WHERE action LIKE 'pilot%' ORDER BY seq")
    assert rows["action"].to_list() == ["pilot_start", "pilot_cancel"]
    assert set(rows["subject"]) == {"sub-ann"}
    assert json.loads(rows["details"][0])["customers"] == assignments(world, pilot.pilot_id).height


# -- the report, worked out by hand -------------------------------------------------------------
@pytest.fixture
def tiny_pilot(store: Store) -> tuple[Store, Pilot]:
    """Two worklist customers (A1, A2) and two holdout customers (B1, B2); a 30-day pilot from
    1 Jan 2026. Invoices of 100 USD, issued 7 days before due:

    A1  a1 due 01-10 paid 01-14 (4 days)        a2 due 01-20 paid 01-20 (0)
    A2  a3 due 01-15 paid 01-25 (10)
    B1  b1 due 01-10: 50 paid 01-30, 50 paid 03-15 (64 days)
    B2  b2 due 01-12 never paid                  b3 due 01-25 paid 01-21 (4 days early)
    Contacts: A1 an email reminder (2 min) and a call (12 min) on 01-12; B1 an escalation (4 min)
    on 01-15 with a promise to pay on 01-20 that was broken (b1 was not paid by 01-23).
    """
    due = {"a1": (1, 10), "a2": (1, 20), "a3": (1, 15), "b1": (1, 10), "b2": (1, 12), "b3": (1, 25)}
    owner = {"a1": "A1", "a2": "A1", "a3": "A2", "b1": "B1", "b2": "B2", "b3": "B2"}
    insert_rows(store, "customers", [{"customer_id": c, "name": f"Customer {c}", "owner": "ana"}
                                     for c in ("A1", "A2", "B1", "B2")])
    insert_rows(store, "invoices", [
        {"invoice_id": i, "customer_id": owner[i], "doc_type": "invoice", "invoice_date": date(2026, *d) - timedelta(days=7),
         "due_date": date(2026, *d), "amount": 100.0, "amount_base": 100.0, "currency": "USD"}
        for i, d in due.items()
    ])
    paid = [("a1", (1, 14), 100.0), ("a2", (1, 20), 100.0), ("a3", (1, 25), 100.0), ("b1", (1, 30), 50.0),
            ("b1", (3, 15), 50.0), ("b3", (1, 21), 100.0)]
    insert_rows(store, "payments", [
        {"payment_id": f"P{k}", "customer_id": owner[i], "invoice_id": i, "payment_date": date(2026, *d), "amount": a}
        for k, (i, d, a) in enumerate(paid)
    ])
    insert_rows(store, "contacts", [
        {"contact_id": "K1", "customer_id": "A1", "invoice_id": "a1", "ts": "2026-01-12 09:00:00", "channel": "email",
         "action": "reminder", "outcome": "no response"},
        {"contact_id": "K2", "customer_id": "A1", "invoice_id": "a1", "ts": "2026-01-12 15:00:00", "channel": "call",
         "action": "call", "outcome": "no response"},
        {"contact_id": "K3", "customer_id": "B1", "invoice_id": "b1", "ts": "2026-01-15 10:00:00", "channel": "email",
         "action": "escalation", "outcome": "promise to pay", "promise_date": date(2026, 1, 20)},
    ])
    pilot = Pilot(pilot_id="tiny-20260101", name="Tiny", start=date(2026, 1, 1), days=30, holdout_share=0.5,
                  kill_days=2.0)
    customers = pl.DataFrame({"customer_id": ["A1", "A2", "B1", "B2"], "arm": ["worklist", "worklist", "holdout", "holdout"],
                              "stratum": ["s"] * 4})
    return store, start_pilot(store, PilotPlan(pilot=pilot, customers=customers, balance=pl.DataFrame(), power={}))


def test_report_figures_by_hand_with_full_follow_up(tiny_pilot: tuple[Store, Pilot]) -> None:
    store, pilot = tiny_pilot
    report = pilot_report(store, pilot, date(2026, 3, 31), resamples=500)
    f = {r["metric"]: r for r in report.figures.to_dicts()}
    # every invoice followed >= 60 days: capped days, no weighting
    assert report.cap == 60
    assert f["days_to_pay"]["worklist"] == pytest.approx((4 + 0 + 10) / 3)
    assert f["days_to_pay"]["holdout"] == pytest.approx((60 + 60 - 4) / 3)  # b1 64 -> 60, b2 never -> 60
    assert f["days_to_pay"]["difference"] == pytest.approx(14 / 3 - 116 / 3)
    assert report.medians == {"worklist": 4.0, "holdout": 60.0}
    # cash within 30 days of due: b1 50 of 100, b2 nothing; within 60: the same; 90: no invoice followed that long
    assert f["cash_30"]["worklist"] == pytest.approx(1.0)
    assert f["cash_30"]["holdout"] == pytest.approx(150 / 300)
    assert f["cash_60"]["holdout"] == pytest.approx(150 / 300)
    assert f["cash_90"]["worklist"] is None and f["cash_90"]["difference"] is None
    # DSO: open on 03-31 (b2: 100) over the average day's sales of the 30 days (300 / 30)
    assert f["dso"]["worklist"] == pytest.approx(0.0)
    assert f["dso"]["holdout"] == pytest.approx(100 / (300 / 30))
    assert f["broken_promises"]["holdout"] == pytest.approx(50.0) and f["broken_promises"]["worklist"] == 0.0
    assert f["touches"]["worklist"] == pytest.approx(1.0) and f["touches"]["holdout"] == pytest.approx(0.5)
    assert f["minutes"]["worklist"] == pytest.approx(7.0) and f["minutes"]["holdout"] == pytest.approx(2.0)
    assert report.invoices == {"worklist": 3, "holdout": 3} and report.still_open == {"worklist": 0, "holdout": 1}
    low, high = f["days_to_pay"]["low"], f["days_to_pay"]["high"]
    assert low <= f["days_to_pay"]["difference"] <= high
    assert report.verdict().startswith(("The worklist group paid 34.0 days sooner", "No measurable change"))
    assert "At 30 days this" in report.verdict()


def test_open_invoices_are_censored_not_dropped(tiny_pilot: tuple[Store, Pilot]) -> None:
    store, pilot = tiny_pilot
    report = pilot_report(store, pilot, date(2026, 2, 15), resamples=200)
    # follow-up since due: a1 36, a2 26, a3 31, b1 36, b2 34, b3 21 days -> 60 is too long, 30 days
    # is followed by 4 of 6 (>= 30%): cap 30; b1 and b2 are still open, followed past 30 days, so
    # they count 30 days with weight 1 / (4/6); the rest are paid, weight 1
    assert report.cap == 30
    f = report.figure("days_to_pay")
    assert f["worklist"] == pytest.approx(14 / 3)
    assert f["holdout"] == pytest.approx((1.5 * 30 + 1.5 * 30 - 4) / 4)
    assert report.still_open == {"worklist": 0, "holdout": 2}
    assert "still open" in report.censoring_note() and "censored" in report.censoring_note()
    assert "At 30 days this" in report.verdict() and "not 60" in " ".join(report.notes)
    # on its first day nothing has been due long enough: days to pay is not guessed from early payers
    first = pilot_report(store, pilot, date(2026, 1, 10), resamples=200)
    assert first.cap is None and first.figure("days_to_pay")["worklist"] is None
    assert first.verdict().startswith("Too early to measure days to pay")
    assert first.still_open == {"worklist": 1, "holdout": 1}  # a1 and b1, due that day: censored, counted
    # during the pilot the kill criterion waits for the end
    early = pilot_report(store, pilot, date(2026, 1, 25), resamples=200)
    assert early.days_run == 25 and "judged at the end, on 30 Jan 2026" in early.verdict()
    with pytest.raises(PilotError, match="starts on 1 Jan 2026"):
        pilot_report(store, pilot, date(2025, 12, 31))


# -- the command line ---------------------------------------------------------------------------
def test_pilot_commands_start_status_report(world: Store, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(world.path)
    world.close()
    assert main(["pilot", "start", "--db", db, "--name", "CLI pilot", "--start", "2025-01-06", "--days", "60",
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "80% power" in out and "standardized difference" in out and "dry run" in out
    assert main(["pilot", "start", "--db", db, "--name", "CLI pilot", "--start", "2025-01-06", "--days", "60",
                 "--segment", "slow"]) == 0
    assert "started: cli-pilot-20250106" in capsys.readouterr().out
    assert main(["pilot", "status", "--db", db, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status[0]["pilot_id"] == "cli-pilot-20250106" and status[0]["scope_value"] == "slow"
    assert main(["pilot", "report", "--db", db, "--as-of", "2025-02-28", "--resamples", "200", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["finished"] is False and "interval" in report["verdict"]
    assert main(["pilot", "report", "--db", db, "--as-of", "2025-03-31", "--resamples", "200"]) == 0
    assert "Days to pay" in capsys.readouterr().out
    assert main(["pilot", "start", "--db", db, "--name", "Bad", "--holdout", "0.9"]) == 2
    assert "got 0.9" in capsys.readouterr().err


# -- replays with a known effect ----------------------------------------------------------------
REPLICATIONS = 20


def _replays(make_world, start_before_end: int = 180) -> list:  # noqa: ANN001
    results = []
    for r in range(REPLICATIONS):
        world, end = make_world(r)
        results.append(
            replay_pilot(world, start=end - timedelta(days=start_before_end), effect_days=4, replication=r, resamples=2000)
        )
    return results


def _print_counts(name: str, results: list) -> tuple[int, int]:  # noqa: ANN001
    covered = sum(r.effect_covered for r in results)
    no_change = sum(r.null_no_change for r in results)
    for i, r in enumerate(results):
        print(f"{name} replication {i}: {r.summary()}")
    print(
        f"{name}: the 90% interval held the true effect (4 days sooner, floored: "
        f"{np.mean([r.true_effect for r in results]):.2f} on average) in {covered} of {len(results)}; "
        f"with no effect the verdict was 'no measurable change' in {no_change} of {len(results)}"
    )
    return covered, no_change


@pytest.mark.slow
def test_a_replayed_pilot_recovers_a_known_effect_on_the_generators_world() -> None:
    def make(r: int):  # noqa: ANN202
        config = WorldConfig(seed=100 + r, n_customers=400, start=date(2024, 1, 1), months=18)
        return generate_world(config, default_policy()), config.end_date

    covered, no_change = _print_counts("generator world", _replays(make))
    assert 16 <= covered <= 20
    assert no_change >= 17


@pytest.mark.slow
def test_a_replayed_pilot_recovers_a_known_effect_on_the_second_world() -> None:
    def make(r: int):  # noqa: ANN202
        config = ShockWorldConfig(seed=100 + r, n_customers=400, start=date(2023, 1, 1), months=18)
        return generate_shock_world(config), config.end_date

    covered, no_change = _print_counts("second world", _replays(make))
    assert 16 <= covered <= 20
    assert no_change >= 17
