"""The worklist: grouping, person-only routing, priority, capacity, promises, cadence, response
rates, outcomes, the generator's ground truth, and the Worklist page (AppTest)."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from itertools import product
from pathlib import Path

import polars as pl
import pytest

from dashboard.errors import WorklistError
from dashboard.filters import Filters
from dashboard.schema import PAID_WITHIN_DAYS
from dashboard.store import Store
from dashboard.worklist import (
    COLLECTION_HORIZON_DAYS,
    MIN_CONTACTS_FOR_RATE,
    PRIOR_CONTACTS,
    RESPONSE_DAYS,
    build_worklist,
    measure_response_rates,
    record_export,
    record_outcomes,
)
from tests.rows import insert_rows

AS_OF = date(2025, 6, 10)  # a Tuesday


_insert = insert_rows


def contact(customer: str, invoice: str | None, day: date, *, outcome: str = "no response", action: str = "reminder",
            promise_date: date | None = None, contact_id: str | None = None) -> dict:
    return {"contact_id": contact_id or f"K-{customer}-{invoice}-{day}-{outcome}", "customer_id": customer,
            "invoice_id": invoice, "ts": f"{day} 10:00:00", "channel": "email", "action": action,
            "outcome": outcome, "promise_date": promise_date}


@pytest.fixture
def tiny(store: Store) -> Store:
    """Five customers of two collectors, as of Tuesday 2025-06-10:

    C1 (ana)   I1 1,000 due 05-01, 200 paid -> 800 open, 40 days past due; I2 500 due 05-31, 10 days
    C2 (ana)   I3 20,000 due 03-31, 71 days past due
    C3 (bo)    I4 7,000 due 05-01, strategic customer
    C4 (bo)    I5 3,000 EUR (3,300 base) due 05-01 with an open dispute; I6 not yet due
    C5 (ana)   I7 800 due 06-05, 5 days past due
    """
    _insert(store, "customers", [
        {"customer_id": "C1", "name": "Acme", "owner": "ana", "strategic": False, "email": "ap@acme.test"},
        {"customer_id": "C2", "name": "Beta", "owner": "ana", "strategic": False, "email": "ap@beta.test"},
        {"customer_id": "C3", "name": "Gamma", "owner": "bo", "strategic": True, "email": "ap@gamma.test"},
        {"customer_id": "C4", "name": "Delta", "owner": "bo", "strategic": False, "email": None},
        {"customer_id": "C5", "name": "Echo", "owner": "ana", "strategic": False, "email": "ap@echo.test"},
    ])
    invoice = {"doc_type": "invoice", "invoice_date": date(2025, 3, 1), "currency": "USD"}
    _insert(store, "invoices", [
        {**invoice, "invoice_id": "I1", "customer_id": "C1", "due_date": date(2025, 5, 1), "amount": 1000.0, "amount_base": 1000.0},
        {**invoice, "invoice_id": "I2", "customer_id": "C1", "due_date": date(2025, 5, 31), "amount": 500.0, "amount_base": 500.0},
        {**invoice, "invoice_id": "I3", "customer_id": "C2", "due_date": date(2025, 3, 31), "amount": 20000.0, "amount_base": 20000.0},
        {**invoice, "invoice_id": "I4", "customer_id": "C3", "due_date": date(2025, 5, 1), "amount": 7000.0, "amount_base": 7000.0},
        {**invoice, "invoice_id": "I5", "customer_id": "C4", "due_date": date(2025, 5, 1), "amount": 3000.0, "amount_base": 3300.0, "currency": "EUR"},
        {**invoice, "invoice_id": "I6", "customer_id": "C4", "due_date": date(2025, 7, 1), "amount": 100.0, "amount_base": 110.0, "currency": "EUR"},
        {**invoice, "invoice_id": "I7", "customer_id": "C5", "due_date": date(2025, 6, 5), "amount": 800.0, "amount_base": 800.0},
    ])
    _insert(store, "payments", [{"payment_id": "P1", "customer_id": "C1", "invoice_id": "I1",
                                 "payment_date": date(2025, 6, 1), "amount": 200.0}])
    _insert(store, "disputes", [{"dispute_id": "D1", "invoice_id": "I5", "customer_id": "C4",
                                 "opened_date": date(2025, 5, 10)}])
    return store


def line_of(result, customer: str) -> dict:  # noqa: ANN001
    rows = result.lines.filter(pl.col("customer_id") == customer).to_dicts()
    assert len(rows) == 1, f"expected one line for {customer}, got {len(rows)}"
    return rows[0]


def test_one_line_per_customer_groups_its_invoices(tiny: Store) -> None:
    result = build_worklist(tiny, AS_OF, use_model=False)
    assert sorted(result.lines["customer_id"]) == ["C1", "C2", "C3", "C4", "C5"]
    c1 = line_of(result, "C1")
    assert c1["invoice_count"] == 2
    assert c1["open_amount"] == pytest.approx(800.0 + 500.0)
    assert c1["max_days_past_due"] == 40
    # I2 (10 days, low risk) alone would get a gentle reminder; I1 (40 days) an escalation notice:
    # the line takes the more pressing action, and one message covers both invoices.
    assert (c1["action"], c1["template_id"], c1["rule_id"]) == ("escalation notice", "escalation_notice", "MID")
    assert [i["invoice_id"] for i in c1["invoices"]] == ["I1", "I2"]
    # C4's invoice I6 is not yet due: no rule covers it, so only I5 is on the line
    assert [i["invoice_id"] for i in line_of(result, "C4")["invoices"]] == ["I5"]
    assert result.unmatched_invoices == 1


def test_strategic_and_disputed_customers_go_to_a_person(tiny: Store) -> None:
    result = build_worklist(tiny, AS_OF, use_model=False)
    for customer, why in (("C3", "strategic"), ("C4", "open dispute")):
        line = line_of(result, customer)
        assert line["action"] == "hand to credit manager"
        assert line["channel"] == "person"
        assert line["requires_review"] is True
        assert line["automated"] is False
        assert why in line["action_source"]
    automated = result.lines.filter(pl.col("automated"))
    assert not set(automated["customer_id"]) & {"C3", "C4"}


def test_priority_is_expected_cash_accelerated_per_minute(tiny: Store) -> None:
    result = build_worklist(tiny, AS_OF, use_model=False)
    line = line_of(result, "C5")
    # I7: 5 days past due -> rule P(paid within 30 days) = 0.70 -> low risk -> gentle reminder,
    # assumed response rate 25% (no contacts yet), 2 minutes of effort. The payment still to come:
    # with a constant daily hazard, P(unpaid after 1 day) - P(unpaid after 182 days)
    # = 0.3 ** (1/30) - 0.3 ** (182/30) = 0.96066 - 0.00067 = 0.95999.
    hazard = -math.log(1 - 0.70) / PAID_WITHIN_DAYS
    gain = math.exp(-hazard * RESPONSE_DAYS) - math.exp(-hazard * COLLECTION_HORIZON_DAYS)
    assert gain == pytest.approx(0.95999, abs=1e-5)
    assert line["action"] == "gentle reminder"
    assert line["p_paid_horizon"] == pytest.approx(0.70)
    assert line["response_rate"] == pytest.approx(0.25)
    assert line["expected_cash_accelerated"] == pytest.approx(800 * 0.25 * gain)
    assert line["priority"] == pytest.approx(800 * 0.25 * gain / 2.0)
    assert "risk scores switched off" in result.probability_source
    assert "days-past-due rule" in line["reasons"]
    assert "96% of the open amount still to come" in line["reasons"]


def test_given_scores_without_a_curve_extend_it_from_p_paid_30d(tiny: Store) -> None:
    scores = pl.DataFrame({"invoice_id": ["I7"], "p_late": [0.9], "p_paid_30d": [0.2], "model_id": ["m-given"]})
    result = build_worklist(tiny, AS_OF, scores=scores)
    line = line_of(result, "C5")
    assert result.model_id == "m-given"
    assert "extended from P(paid within 30 days)" in result.probability_source
    # 0.8 ** (1/30) - 0.8 ** (182/30) = 0.99259 - 0.25827 = 0.73432 of I7's 800 is still to come
    still_to_come = 0.8 ** (RESPONSE_DAYS / PAID_WITHIN_DAYS) - 0.8 ** (COLLECTION_HORIZON_DAYS / PAID_WITHIN_DAYS)
    assert still_to_come == pytest.approx(0.73432, abs=1e-5)
    assert line["p_paid_horizon"] == pytest.approx(0.2)
    assert line["expected_cash_accelerated"] == pytest.approx(800 * still_to_come * line["response_rate"])


def test_scores_are_computed_once_and_kept_for_the_scorer(tiny: Store) -> None:
    """Without a usable model the customer-history baseline scores, says so, and its scores are
    kept in the store per data version: the second build reads them back."""
    from dashboard.scoring import scorer_for, scores_data_version

    scorer = scorer_for(None, store=tiny, as_of=AS_OF, problem="no model in this test")
    first = build_worklist(tiny, AS_OF, scorer=scorer)
    assert first.scorer == "baseline" and "no model in this test" in first.scorer_reason
    assert "customer-history baseline" in first.probability_source
    assert "from its survival curve" in first.probability_source
    kept = tiny.query("SELECT model_id, data_version, len(hazards) AS weeks FROM scores")
    assert kept.height == 7 and set(kept["model_id"]) == {scorer.scorer_id}
    assert set(kept["data_version"]) == {scores_data_version(tiny)} and set(kept["weeks"]) == {26}
    with tiny.transaction() as cur:  # a kept score is read back, not recomputed
        cur.execute("UPDATE scores SET p_late = 0.99 WHERE invoice_id = 'I7'")
    again = build_worklist(tiny, AS_OF, scorer=scorer)
    assert line_of(again, "C5")["risk_tier"] == "high"
    from dashboard.scoring import score_invoices, scores_for

    kept, fresh = scores_for(tiny, AS_OF, scorer=scorer), score_invoices(tiny, AS_OF, scorer=scorer)
    assert set(fresh.drop("hazards", strict=False).columns) <= set(kept.columns)  # read back like computed
    assert kept.sort("invoice_id")["customer_id"].to_list() == fresh.sort("invoice_id")["customer_id"].to_list()
    assert line_of(first, "C5")["p_paid_horizon"] == pytest.approx(line_of(again, "C5")["p_paid_horizon"])
    # the line's reasons come with its kept scores: nothing is scored again for them
    from dashboard.worklist import line_risk_reasons

    explained = line_risk_reasons(tiny, AS_OF, line_of(again, "C5"), scorer=scorer)
    assert explained.filter(pl.col("invoice_id") == "I7")["p_late"].to_list() == [0.99]
    assert explained["reasons"].str.contains("customer-history baseline|already late").all()


def test_debt_that_will_not_be_paid_and_payments_due_tomorrow_gain_little(tiny: Store) -> None:
    """A touch brings forward only a payment still to come: not one arriving tomorrow anyway,
    not debt that is never paid. The survival columns of the model are used when given."""
    scores = pl.DataFrame({
        "invoice_id": ["I7", "I3"],
        "p_paid_30d": [0.5, 0.5],
        "p_open_after_touch": [0.30, 0.99],  # I7: 70% of it is paid by tomorrow anyway
        "p_open_at_horizon": [0.05, 0.90],  # I3: 90% still unpaid after 26 weeks: mostly never
        "model_id": ["m-curve", "m-curve"],
    })
    result = build_worklist(tiny, AS_OF, scores=scores)
    c5, c2 = line_of(result, "C5"), line_of(result, "C2")
    # C5 (I7 800 open): 800 x (0.30 - 0.05) x response rate
    assert c5["expected_cash_accelerated"] == pytest.approx(800 * 0.25 * c5["response_rate"])
    # C2 (I3 20,000 open): 20,000 x (0.99 - 0.90) x response rate
    assert c2["expected_cash_accelerated"] == pytest.approx(20000 * 0.09 * c2["response_rate"])
    assert "from its survival curve" in result.probability_source
    # unscored invoices (I1, I2, ...) extend the rule's P(paid within 30 days) instead
    c1 = line_of(result, "C1")
    hazard = {days: -math.log(1 - p) / PAID_WITHIN_DAYS for days, p in ((40, 0.50), (10, 0.70))}
    still_to_come = {days: math.exp(-h * RESPONSE_DAYS) - math.exp(-h * COLLECTION_HORIZON_DAYS) for days, h in hazard.items()}
    assert c1["expected_cash_accelerated"] == pytest.approx(
        (800 * still_to_come[40] + 500 * still_to_come[10]) * c1["response_rate"]
    )


def test_model_probabilities_are_used_when_given(tiny: Store) -> None:
    scores = pl.DataFrame({"invoice_id": ["I7"], "p_paid_30d": [0.2], "p_late": [0.9], "model_id": ["m-test"]})
    result = build_worklist(tiny, AS_OF, scores=scores)
    line = line_of(result, "C5")
    assert line["p_paid_horizon"] == pytest.approx(0.2)
    assert line["risk_tier"] == "high"  # from the model's P(late) 0.9
    assert "model m-test" in result.probability_source
    # seven open invoices, one scored: the other six fall back to the rule, and it says so
    assert "6 unscored invoices use the days-past-due rule" in result.probability_source


@pytest.mark.parametrize("capacity", [1, 2, 3, 5])
def test_capacity_is_never_exceeded_at_any_capacity(tiny: Store, capacity: int) -> None:
    result = build_worklist(tiny, AS_OF, capacity_per_collector=capacity, use_model=False)
    assert result.lines.group_by("collector", "scheduled_date").len()["len"].max() <= capacity
    assert result.lines.height == 5  # overflow is scheduled, never dropped
    assert result.today().height == min(capacity, 3) + min(capacity, 2)


def test_capacity_is_never_exceeded_and_overflow_is_scheduled(tiny: Store) -> None:
    result = build_worklist(tiny, AS_OF, capacity_per_collector=1, use_model=False)
    per_day = result.lines.group_by("collector", "scheduled_date").len()
    assert per_day["len"].max() == 1
    # nothing is lost: ana's three customers fill Tue, Wed, Thu; bo's two Tue and Wed
    assert result.lines.height == 5
    ana = result.for_collector("ana").sort("queue_position")
    assert ana["scheduled_date"].to_list() == [date(2025, 6, 10), date(2025, 6, 11), date(2025, 6, 12)]
    assert ana["priority"].to_list() == sorted(ana["priority"].to_list(), reverse=True)
    assert result.today().height == 2


def test_capacity_skips_weekends(tiny: Store) -> None:
    friday = date(2025, 6, 13)
    result = build_worklist(tiny, friday, capacity_per_collector=1, use_model=False)
    ana = result.for_collector("ana").sort("queue_position")
    assert ana["scheduled_date"].to_list() == [friday, date(2025, 6, 16), date(2025, 6, 17)]


def test_promise_to_pay_snoozes_then_a_broken_promise_escalates(tiny: Store) -> None:
    _insert(tiny, "contacts", [contact("C5", "I7", date(2025, 6, 6), outcome="promise to pay",
                                       promise_date=date(2025, 6, 12))])
    snoozed = build_worklist(tiny, AS_OF, use_model=False)
    assert "C5" not in snoozed.lines["customer_id"].to_list()
    held = snoozed.held.filter(pl.col("customer_id") == "C5").to_dicts()[0]
    assert "promise to pay on 12 Jun 2025" in held["reason"]
    assert held["until"] == date(2025, 6, 15)  # promised date + 3 days grace

    broken = build_worklist(tiny, date(2025, 6, 20), use_model=False)
    line = line_of(broken, "C5")
    assert line["broken_promise"] is True
    assert line["action"] == "escalation notice"  # one step up from the rule's gentle reminder
    assert line["tone"] == "firm"
    assert "broken promise" in line["reasons"]


def test_cadence_holds_a_recently_touched_customer(tiny: Store) -> None:
    _insert(tiny, "contacts", [contact("C2", "I3", date(2025, 6, 8))])
    result = build_worklist(tiny, AS_OF, use_model=False)
    assert "C2" not in result.lines["customer_id"].to_list()
    held = result.held.filter(pl.col("customer_id") == "C2").to_dicts()[0]
    # C2's rule is LATE-LARGE (cadence 10 days): touched on 06-08, next touch from 06-18
    assert held["until"] == date(2025, 6, 18)
    assert line_of(build_worklist(tiny, date(2025, 6, 18), use_model=False), "C2")["rule_id"] == "LATE-LARGE"


def test_building_twice_the_same_day_recommends_no_touch_twice(tiny: Store) -> None:
    first = build_worklist(tiny, AS_OF, capacity_per_collector=1, use_model=False)
    assert first.policy_version is None  # built from the shipped default: nothing written yet
    assert tiny.scalar("SELECT count(*) FROM policy_versions") == 0
    assert record_export(tiny, first, first.today(), export_format="csv") == 2
    # exporting saved the default as version 1, and the actions name it
    assert tiny.query("SELECT DISTINCT policy_version FROM actions")["policy_version"].to_list() == [1]
    assert record_export(tiny, first, first.today(), export_format="csv") == 0  # recorded once
    second = build_worklist(tiny, AS_OF, capacity_per_collector=1, use_model=False)
    exported = set(first.today()["customer_id"])
    assert not exported & set(second.lines["customer_id"])
    assert exported <= set(second.held["customer_id"])
    # what was overflow yesterday moves up to today
    assert second.today().height == 2


def test_response_rates_say_when_the_sample_is_small(tiny: Store) -> None:
    outcomes = ["paid", "paid", "promise to pay", "promise to pay"] + ["no response"] * 6
    _insert(tiny, "contacts", [
        contact("C9", None, date(2025, 1, 1) + timedelta(days=i), outcome=o, contact_id=f"R{i}")
        for i, o in enumerate(outcomes)
    ])
    rates = measure_response_rates(tiny, AS_OF)
    row = rates.filter((pl.col("action") == "gentle reminder") & pl.col("segment").is_null()).to_dicts()[0]
    assert (row["contacts"], row["responded"]) == (10, 4)
    assert row["measured_rate"] == pytest.approx(0.4)
    # shrunk towards the assumed 25% by 20 pseudo-contacts: (4 + 20 * 0.25) / (10 + 20) = 0.30
    assert row["rate"] == pytest.approx((4 + PRIOR_CONTACTS * 0.25) / (10 + PRIOR_CONTACTS))
    assert "only 10 contacts" in row["note"] and "too few" in row["note"]
    untouched = rates.filter((pl.col("action") == "credit hold") & pl.col("segment").is_null()).to_dicts()[0]
    assert "no contacts yet" in untouched["note"]


def test_a_measurably_better_action_replaces_the_policy_action(tiny: Store) -> None:
    _insert(tiny, "contacts", [
        contact("C9", None, date(2025, 1, 1) + timedelta(days=i), outcome="paid", action="follow-up", contact_id=f"F{i}")
        for i in range(MIN_CONTACTS_FOR_RATE + 10)
    ])
    line = line_of(build_worklist(tiny, AS_OF, use_model=False), "C5")
    # follow-ups: (40 + 20 * 0.25) / 60 = 75% in 4 minutes beats reminders' 25% in 2 minutes by far
    assert line["action"] == "value-added follow-up"
    assert line["template_id"] == "value_added_follow_up"
    assert line["response_contacts"] == 40
    assert "instead of the policy's gentle reminder" in line["action_source"]


def test_filters_keep_one_collector(tiny: Store) -> None:
    result = build_worklist(tiny, AS_OF, filters=Filters(owner=("bo",)), use_model=False)
    assert sorted(result.lines["customer_id"]) == ["C3", "C4"]


def test_bad_capacity_is_refused(tiny: Store) -> None:
    with pytest.raises(WorklistError, match="got 0"):
        build_worklist(tiny, AS_OF, capacity_per_collector=0, use_model=False)


def test_outcomes_feed_contacts_and_are_validated(tiny: Store) -> None:
    result = build_worklist(tiny, AS_OF, use_model=False)
    record_export(tiny, result, result.today(), export_format="json")
    c5 = line_of(result, "C5")["line_id"]
    c1 = line_of(result, "C1")["line_id"]
    with pytest.raises(WorklistError, match="without a reason"):
        record_outcomes(tiny, pl.DataFrame({"action_id": [c1], "outcome": ["overridden"]}))
    with pytest.raises(WorklistError, match="'nope'"):
        record_outcomes(tiny, pl.DataFrame({"action_id": ["nope"], "outcome": ["done"]}))
    with pytest.raises(WorklistError, match="'maybe'"):
        record_outcomes(tiny, pl.DataFrame({"action_id": [c5], "outcome": ["maybe"]}))
    count = record_outcomes(tiny, pl.DataFrame({
        "action_id": [c5, c1], "outcome": ["promise", "overridden"], "reason": [None, "customer called us first"],
        "promise_date": [date(2025, 6, 25), None],
    }))
    assert count == 2
    actions = tiny.query("SELECT action_id, status, outcome, override_reason FROM actions ORDER BY action_id")
    assert actions.filter(pl.col("action_id") == c1)["override_reason"][0] == "customer called us first"
    # the promise is now a contact: it snoozes C5 until 06-28 and counts in the response rates
    contacts = tiny.query("SELECT customer_id, outcome, promise_date, ts FROM contacts")
    assert contacts.to_dicts() == [{"customer_id": "C5", "outcome": "promise to pay",
                                    "promise_date": date(2025, 6, 25), "ts": contacts["ts"][0]}]
    later = build_worklist(tiny, date(2025, 6, 24), use_model=False)
    assert later.held.filter(pl.col("customer_id") == "C5")["until"].to_list() == [date(2025, 6, 28)]


TOP_SHARE = 0.10
ORDERINGS = ("priority", "amount", "days_past_due")


def _first_tenth_shares(frames: list[pl.DataFrame], orderings: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Share of the accelerated cash in the first 10% of each day's work, per ordering, pooled
    over the days: cut at the same line count, and at the same effort (10% of the day's minutes)."""
    taken = {"lines": dict.fromkeys(orderings, 0.0), "effort": dict.fromkeys(orderings, 0.0)}
    total = 0.0
    for lines in frames:
        budget = TOP_SHARE * lines["effort"].sum()
        count = max(1, round(TOP_SHARE * lines.height))
        for key in orderings:
            ordered = lines.sort([key, "line_id"], descending=[True, False])
            taken["lines"][key] += ordered.head(count)["accelerated"].sum()
            taken["effort"][key] += ordered.filter(pl.col("effort").cum_sum() <= budget)["accelerated"].sum()
        total += lines["accelerated"].sum()
    return {cut: {key: round(value / total, 3) for key, value in shares.items()} for cut, shares in taken.items()}


def test_top_decile_of_the_work_holds_more_of_the_cash_reminders_accelerate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Done-when: on the generator's world, compare the first 10% of the work taken by
    priority, by amount and by days past due — without a model and with a risk model trained
    on the same world (on data up to the first worklist day only).

    "The cash reminders accelerate" is measured two ways from the generator's truth:

    - ``realised``: the open amount of invoices whose ``touch_pull_forward_days`` > 0 (a
      reminder did pull them forward, at some point of their life);
    - ``expected``: what the generator says the line's recommended touch would do today: the
      open amount × the generator's true response probability for the customer's behaviour
      class, channel and tone × whether the invoice is collectible and still unpaid the day
      after the touch (a response cannot pull a payment before that day).

    Priority is cash accelerated *per minute of effort*, so the natural cut is the same effort
    for each ordering (10% of the day's minutes): there priority must clearly win on both
    measures. The same 10% of *lines* is printed too, with references that show why no ranking
    can clearly win at equal line count: the amount varies far more across lines than any
    response probability, so at equal line count even the ``expected`` measure ranked by
    itself (an oracle) holds only about 1.1-1.25x what the amount does. Pooled over six as-of
    dates. The model is trained on data up to the first date and made the active model (in a
    private registry), so the worklist finds it as the product does. The cadence is off
    (``respect_cadence=False``) because the generator's own policy touched nearly every
    overdue customer in the days before each date, which would hold most of the book.
    """
    from dashboard.ingest import load_world
    from dashboard.registry import MODELS_DIR_ENV_VAR, save_model
    from dashboard.synthetic import WorldConfig, default_policy, generate_world
    from dashboard.training import TrainingConfig, train_model

    config = WorldConfig(n_customers=1500, months=24, seed=3)
    world = generate_world(config, default_policy())
    truth = world.truth["truth_invoices"].select(
        "invoice_id", "touch_pull_forward_days", "uncollectible", "final_pay_date", true_class="segment"
    )
    true_response = world.truth["truth_effects"].select("segment", "channel", "tone", "response_probability")
    days = [config.end_date - timedelta(days=30 * k) for k in range(6, 0, -1)]
    frames: dict[str, list[pl.DataFrame]] = {"rule": [], "model": []}
    with Store(tmp_path / "world.duckdb") as store:
        load_world(store, world.frames)
        monkeypatch.setenv(MODELS_DIR_ENV_VAR, str(tmp_path / "models"))
        model = train_model(store, TrainingConfig(as_of=days[0])).model
        save_model(model, activate=True)
        for as_of in days:
            for source in ("rule", "model"):
                result = build_worklist(store, as_of, respect_cadence=False, use_model=source == "model")
                assert (result.model_id == model.model_id) == (source == "model"), result.model_id
                assert ("from its survival curve" in result.probability_source) == (source == "model")
                unpaid_after_touch = ~pl.col("uncollectible") & (
                    pl.col("final_pay_date").is_null() | (pl.col("final_pay_date") > as_of + timedelta(days=1))
                )
                frames[source].append(
                    result.lines.select(
                        "line_id", "priority", "expected_cash_accelerated", "effort_minutes", "channel", "tone", "invoices"
                    )
                    .explode("invoices").unnest("invoices")
                    .join(truth, on="invoice_id")
                    # a hand-over to the credit manager is a person on the phone: the generator's "call"
                    .with_columns(true_channel=pl.col("channel").replace({"person": "call"}))
                    .join(true_response, left_on=["true_class", "true_channel", "tone"],
                          right_on=["segment", "channel", "tone"], how="left", validate="m:1")
                    .group_by("line_id")
                    .agg(
                        pl.col("priority").first(), pl.col("expected_cash_accelerated").first(),
                        effort=pl.col("effort_minutes").first(),
                        amount=pl.col("open_amount_base").sum(), days_past_due=pl.col("days_past_due").max(),
                        realised=(pl.col("open_amount_base") * (pl.col("touch_pull_forward_days") > 0)).sum(),
                        expected=(pl.col("open_amount_base") * pl.col("response_probability") * unpaid_after_touch).sum(),
                        unmatched=pl.col("response_probability").is_null().sum(),
                    )
                )
    assert all(frame["unmatched"].sum() == 0 for frame in frames["rule"] + frames["model"])
    print()
    shares: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    oracle_per_minute: dict[str, float] = {}
    for source, measure in product(("rule", "model"), ("realised", "expected")):
        pooled = [
            frame.with_columns(accelerated=pl.col(measure), oracle=pl.col("expected"),
                               oracle_per_minute=pl.col("expected") / pl.col("effort"))
            for frame in frames[source]
        ]
        shares[source, measure] = _first_tenth_shares(pooled, ORDERINGS)
        reference = _first_tenth_shares(pooled, ("expected_cash_accelerated", "oracle", "oracle_per_minute"))
        oracle_per_minute[source] = reference["effort"]["oracle_per_minute"]
        label = "no model (days-past-due rule)" if source == "rule" else "risk model"
        print(f"{label}, {measure}: share of the cash reminders accelerate in the first 10% of the work")
        print(f"  same effort (10% of the minutes): {shares[source, measure]['effort']}")
        print(f"  same line count (10% of the lines): {shares[source, measure]['lines']}")
        if measure == "expected":
            print(f"  for reference: ranked by the generator's expected cash per minute (oracle), same effort "
                  f"{reference['effort']['oracle_per_minute']}; same line count, ranked by the generator's expected "
                  f"cash per line (oracle) {reference['lines']['oracle']}, by our expected cash accelerated per line "
                  f"{reference['lines']['expected_cash_accelerated']}")
    for (source, measure), cuts in shares.items():
        effort, lines = cuts["effort"], cuts["lines"]
        assert effort["priority"] >= 1.2 * effort["amount"], (source, measure, effort)
        assert effort["priority"] >= effort["days_past_due"] + 0.3, (source, measure, effort)
        assert lines["priority"] > lines["days_past_due"], (source, measure, lines)
    # on the generator's own expectation, priority gets most of what knowing it would get
    for source in ("rule", "model"):
        assert shares[source, "expected"]["effort"]["priority"] >= 0.8 * oracle_per_minute[source], source


# -- the Worklist page --------------------------------------------------------------------------
@pytest.fixture
def app_store(seeded_db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private copy of the seeded store (the page writes actions when exporting)."""
    path = tmp_path / "app.duckdb"
    shutil.copy(seeded_db_path, path)
    monkeypatch.setenv("RECOUP_DB", str(path))
    yield path


def test_worklist_page_builds_and_exports(app_store: Path) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/worklist.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    lines_today = int(metrics["Lines today"])
    assert lines_today > 0
    assert at.dataframe, "the queue table is shown"
    # which scorer gives the risk scores, and why, is said on the page
    said = " ".join(x.value for x in [*at.info, *at.warning])
    assert "Risk scores from the" in said and ("risk model" in said or "customer-history baseline" in said)
    assert any("Risk, by the" in m.value for m in at.markdown), "the selected line's risk reasons are shown"
    at.radio(key="worklist_format").set_value("csv")
    at.button(key="worklist_prepare").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"{lines_today} line(s) recorded" in s.value for s in at.success)
    # the export is recorded, so the rebuilt worklist does not recommend those touches again
    assert int({m.label: m.value for m in at.metric}["Lines today"]) == 0
    with Store(app_store) as store:
        assert store.scalar("SELECT count(*) FROM actions WHERE export_format = 'csv'") == lines_today


@pytest.mark.browser
def test_browser_exports_the_worklist_and_the_download_is_the_recorded_csv(seeded_db_path: Path, tmp_path: Path) -> None:
    """Journey: open /worklist in Chromium, record and prepare a CSV export, click download,
    read the downloaded file: UTF-8 BOM, one row per recorded action, no formula-like cell."""
    import csv
    import io

    from tests.browser import browser_page, require_chromium, screenshot, streamlit_server, wait_for_app

    require_chromium()
    db = tmp_path / "browser.duckdb"
    shutil.copy(seeded_db_path, db)
    with streamlit_server(db) as url, browser_page() as page:
        page.goto(f"{url}/worklist")
        wait_for_app(page, marker="[data-testid='stMetric']")
        page.get_by_role("heading", name="Worklist").wait_for()
        page.get_by_text("CSV", exact=True).click()
        wait_for_app(page)
        page.get_by_role("button", name="Record and prepare the export").click()
        page.get_by_role("button", name="Download worklist (CSV)").wait_for(timeout=60_000)
        wait_for_app(page)
        with page.expect_download() as info:
            page.get_by_role("button", name="Download worklist (CSV)").click()
        download = info.value
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        screenshot(page, "journey-worklist-export")
    data = saved.read_bytes()
    assert saved.suffix == ".csv" and data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0][:3] == ["line_id", "scheduled_date", "queue_position"]
    for row in rows[1:]:
        assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in row)
    with Store(db) as store:
        recorded = store.query("SELECT action_id FROM actions WHERE export_format = 'csv'")["action_id"].to_list()
    assert sorted(row[0] for row in rows[1:]) == sorted(recorded)
    assert len(recorded) > 0
