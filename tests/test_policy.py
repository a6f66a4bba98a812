"""Collections policy as data: validation catches each kind of fault; versions; matching."""

from __future__ import annotations

import shutil

import polars as pl
import pytest

from dashboard.errors import ConflictError, PolicyError, PolicyValidationError
from dashboard.policy import (
    activate_policy_version,
    active_policy_version,
    current_policy,
    default_policy,
    ensure_default_policy,
    latest_policy_version,
    list_policy_versions,
    load_policy,
    match_rules,
    policy_changes,
    save_policy,
    validate_policy,
)
from dashboard.store import Store

TEMPLATES = {"gentle_reminder", "call", "hand_to_credit_manager"}


def rule(rule_id: str, priority: int, **fields: object) -> dict:
    base = {"rule_id": rule_id, "priority": priority, "action": "gentle reminder", "channel": "email",
            "tone": "friendly", "template_id": "gentle_reminder", "cadence_days": 7}
    return {**base, **fields}


def catch_all() -> list[dict]:
    """A minimal valid policy: people for strategic/disputes, a reminder for everyone else."""
    return [
        rule("PEOPLE", 1, strategic=True, action="hand to credit manager", channel="person",
             template_id="hand_to_credit_manager", requires_review=True),
        rule("DISPUTE", 2, dispute_open=True, action="hand to credit manager", channel="person",
             template_id="hand_to_credit_manager", requires_review=True),
        rule("EARLY", 10, min_days_past_due=1, max_days_past_due=30),
        rule("LATE", 10, min_days_past_due=31, action="call", channel="call", template_id="call"),
    ]


def kinds(faults: list) -> list[str]:
    return [f.kind for f in faults]


def test_shipped_default_policy_is_valid() -> None:
    assert validate_policy(default_policy()) == []


def test_minimal_policy_is_valid() -> None:
    assert validate_policy(catch_all(), known_templates=TEMPLATES) == []


def test_overlap_of_equal_priority_rules_is_caught_with_both_names() -> None:
    rules = [*catch_all(), rule("BIG", 10, min_days_past_due=20, max_days_past_due=40, min_amount=5000)]
    faults = validate_policy(rules, known_templates=TEMPLATES)
    overlaps = [f for f in faults if f.kind == "overlap"]
    # BIG (20-40 days) overlaps EARLY (1-30) on days 20-30 and LATE (31+) on days 31-40
    assert {f.rule_ids for f in overlaps} == {("EARLY", "BIG"), ("LATE", "BIG")} or \
        {tuple(sorted(f.rule_ids)) for f in overlaps} == {("BIG", "EARLY"), ("BIG", "LATE")}
    assert "same priority (10)" in overlaps[0].message


def test_gap_in_days_past_due_is_caught_and_named() -> None:
    rules = catch_all()
    rules[3] = rule("LATE", 10, min_days_past_due=46, action="call", channel="call", template_id="call")
    faults = validate_policy(rules, known_templates=TEMPLATES)
    assert kinds(faults) == ["gap"]
    assert "31–45 days past due" in faults[0].message


def test_gap_for_one_risk_tier_only_is_caught() -> None:
    rules = catch_all()
    rules[2] = rule("EARLY", 10, min_days_past_due=1, max_days_past_due=30, risk_tier="low")
    rules.append(rule("EARLY-HIGH", 10, min_days_past_due=1, max_days_past_due=30, risk_tier="high"))
    faults = validate_policy(rules, known_templates=TEMPLATES)
    assert kinds(faults) == ["gap"]
    assert "1–30 days past due" in faults[0].message and "'medium'" in faults[0].message


def test_rule_shadowed_by_one_higher_priority_rule_is_unreachable() -> None:
    rules = [*catch_all(), rule("NEVER", 20, min_days_past_due=5, max_days_past_due=10)]
    faults = validate_policy(rules, known_templates=TEMPLATES)
    assert kinds(faults) == ["unreachable"]
    assert faults[0].rule_ids[0] == "NEVER" and "EARLY" in faults[0].rule_ids


def test_rule_shadowed_by_several_rules_together_is_unreachable() -> None:
    # EARLY covers 1-30 and LATE 31+: together they shadow a 25-35 rule neither covers alone.
    rules = [*catch_all(), rule("SPLIT", 20, min_days_past_due=25, max_days_past_due=35)]
    faults = validate_policy(rules, known_templates=TEMPLATES)
    assert kinds(faults) == ["unreachable"]
    assert faults[0].rule_ids[0] == "SPLIT"
    assert {"EARLY", "LATE"} <= set(faults[0].rule_ids[1:])


def test_partly_shadowed_rule_is_fine() -> None:
    rules = [*catch_all(), rule("LOW-RISK", 5, min_days_past_due=1, max_days_past_due=30, risk_tier="low")]
    assert validate_policy(rules, known_templates=TEMPLATES) == []


def test_unknown_template_is_caught_with_its_name() -> None:
    rules = catch_all()
    rules[2]["template_id"] = "gentle_remindr"
    faults = validate_policy(rules, known_templates=TEMPLATES)
    assert kinds(faults) == ["unknown_template"]
    assert "'gentle_remindr'" in faults[0].message


def test_real_template_list_is_used_by_default() -> None:
    rules = catch_all()
    rules[2]["template_id"] = "no_such_template"
    assert kinds(validate_policy(rules)) == ["unknown_template"]


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"min_days_past_due": 30, "max_days_past_due": 1}, "from 30 to 1"),
        ({"min_amount": 5000.0, "max_amount": 100.0}, "from 5000.0 to 100.0"),
        ({"cadence_days": -3}, "cadence_days cannot be negative (got -3)"),
    ],
)
def test_bad_ranges_are_caught_quoting_the_values(fields: dict, text: str) -> None:
    rules = catch_all()
    rules[2] = {**rules[2], **fields}
    faults = validate_policy(rules, known_templates=TEMPLATES)
    assert kinds(faults) == ["bad_range"]
    assert text in faults[0].message


def test_unknown_action_and_duplicate_ids_and_missing_priority() -> None:
    rules = [*catch_all(), rule("EARLY", 30, action="send flowers"), rule("X", None)]
    found = kinds(validate_policy(rules, known_templates=TEMPLATES))
    assert "duplicate_rule" in found and "unknown_value" in found and "missing_value" in found


def test_automated_outreach_to_strategic_customers_is_refused() -> None:
    rules = catch_all()
    rules[0] = rule("PEOPLE", 1, strategic=True)  # an automated email to strategic customers
    faults = validate_policy(rules, known_templates=TEMPLATES)
    assert kinds(faults) == ["automated_sensitive"]
    assert "strategic customers" in faults[0].message


def test_inactive_rules_are_ignored_for_structure() -> None:
    rules = [*catch_all(), rule("OFF", 10, min_days_past_due=1, max_days_past_due=30, active=False)]
    assert validate_policy(rules, known_templates=TEMPLATES) == []


def test_save_keeps_every_version_and_refuses_a_stale_base(store: Store) -> None:
    v1 = save_policy(store, default_policy(), based_on_version=None, author="ana", comment="first")
    edited = default_policy().with_columns(
        cadence_days=pl.when(pl.col("rule_id") == "EARLY").then(5).otherwise(pl.col("cadence_days"))
    )
    v2 = save_policy(store, edited, based_on_version=v1, author="bo")
    assert (v1, v2) == (1, 2)
    assert active_policy_version(store) == 2
    assert load_policy(store, 1).filter(pl.col("rule_id") == "EARLY")["cadence_days"][0] == 7
    assert load_policy(store).filter(pl.col("rule_id") == "EARLY")["cadence_days"][0] == 5
    # a second editor who opened version 1 cannot overwrite version 2
    with pytest.raises(ConflictError, match="you started from version 1, but version 2 .* by bo"):
        save_policy(store, default_policy(), based_on_version=1)
    assert list_policy_versions(store)["policy_version"].to_list() == [2, 1]
    activate_policy_version(store, 1)
    assert active_policy_version(store) == 1


def test_invalid_policy_is_not_saved(store: Store) -> None:
    rules = catch_all()
    rules[2]["template_id"] = "missing_template"
    with pytest.raises(PolicyValidationError, match="1 problem") as info:
        save_policy(store, rules, based_on_version=None, known_templates=TEMPLATES)
    assert info.value.faults[0].kind == "unknown_template"
    assert store.scalar("SELECT count(*) FROM policy_versions") == 0


def test_reading_the_policy_never_writes(store: Store) -> None:
    before = store.fingerprint()
    version, rules = current_policy(store)
    assert version is None and rules.equals(default_policy())
    assert store.fingerprint() == before


def test_ensure_default_policy_saves_once(store: Store) -> None:
    assert ensure_default_policy(store) == 1
    assert ensure_default_policy(store) == 1
    assert store.scalar("SELECT count(*) FROM policy_rules") == default_policy().height
    with pytest.raises(PolicyError, match="version 9"):
        load_policy(store, 9)


def test_matching_takes_the_smallest_priority_number() -> None:
    cases = pl.DataFrame({
        "case_key": ["a", "b", "c", "d", "e"],
        "segment": [None, None, None, None, None],
        "risk_tier": ["low", "high", "high", "low", "low"],
        "days_past_due": [10, 10, 45, 0, 45],
        "open_amount": [100.0, 100.0, 100.0, 100.0, 100.0],
        "dispute_open": [False, False, False, False, True],
        "strategic": [False, False, False, False, False],
    })
    rules = [*catch_all(), rule("LOW-RISK", 5, min_days_past_due=1, max_days_past_due=30, risk_tier="low")]
    matched = match_rules(cases, pl.DataFrame(rules)).sort("case_key")
    # d is not yet due: no rule; e has an open dispute: the DISPUTE rule wins over LATE
    assert dict(zip(matched["case_key"], matched["rule_rule_id"], strict=True)) == {
        "a": "LOW-RISK", "b": "EARLY", "c": "LATE", "e": "DISPUTE",
    }


def test_amount_bounds_are_inclusive_to_the_cent() -> None:
    cases = pl.DataFrame({
        "case_key": ["at", "above"], "segment": [None, None], "risk_tier": ["low", "low"],
        "days_past_due": [70, 70], "open_amount": [9999.99, 10000.0],
        "dispute_open": [False, False], "strategic": [False, False],
    })
    matched = match_rules(cases, default_policy()).sort("case_key")
    # LATE-LARGE starts at 10,000.00: one cent less is an ordinary late invoice
    assert dict(zip(matched["case_key"], matched["rule_rule_id"], strict=True)) == {"at": "LATE", "above": "LATE-LARGE"}


def test_policy_changes_lists_each_changed_setting_and_added_or_removed_rules() -> None:
    before = catch_all()
    after = [dict(r) for r in before if r["rule_id"] != "LATE"]
    after[2] |= {"cadence_days": 9, "min_amount": 500.0}  # EARLY
    after.append(rule("NEW", 30, min_days_past_due=91))
    changes = policy_changes(before, after)
    assert changes.rows() == [
        ("EARLY", "changed", "min_amount", "(any)", "500"),
        ("EARLY", "changed", "cadence_days", "7", "9"),
        ("NEW", "added", "", "", ""),
        ("LATE", "removed", "", "", ""),
    ]
    assert policy_changes(before, before).is_empty()
    assert policy_changes(default_policy(), default_policy()).is_empty()


# -- the Strategy page ----------------------------------------------------------------------------
@pytest.fixture
def app_store(seeded_db_path, tmp_path, monkeypatch):
    """A private copy of the seeded store (the page saves policy versions)."""
    path = tmp_path / "app.duckdb"
    shutil.copy(seeded_db_path, path)
    monkeypatch.setenv("RECOUP_DB", str(path))
    return path


def number(at, label: str):
    return next(n for n in at.number_input if n.label == label)


def open_strategy_page():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/strategy.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_strategy_page_edits_validates_and_saves_a_new_version(app_store) -> None:
    at = open_strategy_page()
    assert any("No overlaps, gaps" in s.value for s in at.success)
    # quick edit: make rule EARLY start at day 5, which opens a gap at days 1-4 for medium/high risk
    at.selectbox(key="strategy_quick_rule").set_value("EARLY")
    at.run()
    number(at, "Min days past due").set_value(5)
    at.button[[b.label for b in at.button].index("Apply to the draft")].click()
    at.run()
    assert any("1 problem(s)" in w.value for w in at.warning)
    assert at.button(key="strategy_save").disabled
    # fix it: back to day 1 with a shorter cadence, then save
    at.selectbox(key="strategy_quick_rule").set_value("EARLY")
    at.run()
    number(at, "Min days past due").set_value(1)
    number(at, "Cadence (days)").set_value(5)
    at.button[[b.label for b in at.button].index("Apply to the draft")].click()
    at.run()
    assert any("1 unsaved change(s) to" in i.value for i in at.info)
    unsaved = next(d.value for d in at.dataframe if "setting" in d.value.columns)
    assert unsaved[["rule_id", "setting", "was", "now"]].values.tolist() == [["EARLY", "Cadence (days)", "7", "5"]]
    at.text_input(key="strategy_author").input("ana")
    at.text_input(key="strategy_comment").input("faster early follow-ups")
    with Store(app_store) as store:
        expected = (latest_policy_version(store) or 0) + 1
    at.button(key="strategy_save").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"Saved as version {expected}" in s.value for s in at.success)
    assert any(c.value == "No unsaved changes." for c in at.caption)
    assert at.button(key="strategy_save").disabled  # saving again would only repeat the version
    with Store(app_store) as store:
        assert active_policy_version(store) == expected
        assert load_policy(store).filter(pl.col("rule_id") == "EARLY")["cadence_days"][0] == 5
        assert store.scalar("SELECT author FROM policy_versions WHERE policy_version = ?", [expected]) == "ana"


def test_strategy_page_asks_before_discarding_unsaved_changes(app_store) -> None:
    at = open_strategy_page()
    assert at.button(key="strategy_discard").disabled  # nothing to discard yet
    at.selectbox(key="strategy_quick_rule").set_value("MID")
    at.run()
    number(at, "Cadence (days)").set_value(3)
    at.button[[b.label for b in at.button].index("Apply to the draft")].click()
    at.run()
    at.button(key="strategy_discard").click()
    at.run()
    assert any("Discard the 1 unsaved change(s)" in w.value for w in at.warning)
    at.button(key="strategy_discard_no").click()  # keep editing: the change stays
    at.run()
    assert any("1 unsaved change(s) to" in i.value for i in at.info)
    assert not any("Discard the" in w.value for w in at.warning)
    at.button(key="strategy_discard").click()
    at.run()
    at.button(key="strategy_discard_yes").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(c.value == "No unsaved changes." for c in at.caption)
    assert not any("unsaved change(s) to" in i.value for i in at.info)


def test_strategy_page_compares_two_saved_versions(app_store) -> None:
    with Store(app_store) as store:
        first = save_policy(store, default_policy(), based_on_version=latest_policy_version(store), author="ana")
        edited = default_policy().with_columns(
            cadence_days=pl.when(pl.col("rule_id") == "MID").then(3).otherwise(pl.col("cadence_days"))
        ).filter(pl.col("rule_id") != "LATE-LARGE")
        second = save_policy(store, edited, based_on_version=first, author="bo")
    at = open_strategy_page()
    at.toggle(key="strategy_compare").set_value(True)
    at.run()
    assert any(c.value == f"From v{first} to v{second}: 2 change(s)." for c in at.caption), [c.value for c in at.caption]
    between = next(d.value for d in at.dataframe if "setting" in d.value.columns)
    assert between[["rule_id", "change", "setting", "was", "now"]].values.tolist() == [
        ["MID", "changed", "Cadence (days)", "7", "3"],  # settings named as the editor names them
        ["LATE-LARGE", "removed", "", "", ""],
    ]
    at.selectbox(key="strategy_compare_new").set_value(first)
    at.run()
    assert any(c.value == f"v{first} and v{first} have the same rules." for c in at.caption)


def test_strategy_page_refuses_to_overwrite_someone_elses_save(app_store) -> None:
    at = open_strategy_page()
    with Store(app_store) as store:  # a colleague saves a version while this page is open
        theirs = save_policy(store, default_policy(), based_on_version=latest_policy_version(store), author="bo")
    at.text_input(key="strategy_author").input("ana")
    at.button(key="strategy_save").click()
    at.run()
    assert any("changed while you were editing" in e.value for e in at.error)
    with Store(app_store) as store:
        assert latest_policy_version(store) == theirs  # ana's save did not overwrite bo's
