"""One collections vocabulary: every module takes its segments, actions, channels, tones, risk
tiers, outcomes and promise window from dashboard.vocabulary, and every key has words."""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from dashboard import cadence, metrics, policy, segments, simulate, vocabulary, worklist
from dashboard.display import day, day_range, days, money, percent, short_money, table_for_people

ROOT = Path(__file__).resolve().parent.parent
VOCABULARY_NAMES = {
    "SEGMENTS",
    "NO_SEGMENT",
    "ACTIONS",
    "CONTACT_ACTION",
    "CONTACT_ACTIONS",
    "CHANNELS",
    "AUTOMATED_CHANNELS",
    "TONES",
    "RISK_TIERS",
    "RISK_TIER_CUTS",
    "OUTCOMES",
    "RESPONDED_OUTCOMES",
    "PROMISE_GRACE_DAYS",
    "DEFAULT_PROMISE_GRACE_DAYS",
    "PRIORITY_RULES",
    "PRIORITY_LABELS",
}


def test_policy_simulator_and_cadence_share_one_channel_and_tone_list() -> None:
    assert policy.CHANNELS is simulate.CHANNELS is cadence.CHANNELS is vocabulary.CHANNELS
    assert policy.TONES is simulate.TONES is cadence.TONES is vocabulary.TONES
    assert policy.ACTIONS is worklist.ACTIONS is vocabulary.ACTIONS
    assert policy.RISK_TIERS is vocabulary.RISK_TIERS
    assert segments.SEGMENTS is vocabulary.SEGMENTS
    assert worklist.OUTCOMES is vocabulary.OUTCOMES
    assert simulate.PRIORITY_RULES is vocabulary.PRIORITY_RULES
    assert simulate.N_CELLS == len(vocabulary.CHANNELS) * len(vocabulary.TONES)


def test_a_promise_is_kept_within_one_window_everywhere() -> None:
    assert metrics.PROMISE_GRACE_DAYS is vocabulary.PROMISE_GRACE_DAYS
    assert simulate.PROMISE_GRACE_DAYS is vocabulary.PROMISE_GRACE_DAYS
    grace = ast.parse((ROOT / "dashboard" / "worklist.py").read_text())
    build = next(n for n in grace.body if isinstance(n, ast.FunctionDef) and n.name == "build_worklist")
    defaults = {a.arg: d for a, d in zip(build.args.kwonlyargs, build.args.kw_defaults, strict=True)}
    assert ast.unparse(defaults["promise_grace_days"]) == "PROMISE_GRACE_DAYS"
    # the simulator's SQL reads the same constant (no second window typed into the query)
    source = (ROOT / "dashboard" / "simulate.py").read_text()
    assert "promise_date + 2" not in source and "promise_date - 2" not in source
    assert source.count("{PROMISE_GRACE_DAYS}") >= 2


def _module_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def test_no_module_defines_its_own_vocabulary() -> None:
    # dashboard/synthetic/ is the sample world's generator: its hidden behaviour segments and
    # channel mix are the ground truth the product is measured against, not product vocabulary
    files = [
        p
        for folder in ("dashboard", "pages")
        for p in (ROOT / folder).rglob("*.py")
        if "synthetic" not in p.parts and p.name != "vocabulary.py"
    ]
    redefined = {str(p.relative_to(ROOT)): sorted(_module_level_names(p) & VOCABULARY_NAMES) for p in files}
    assert {path: names for path, names in redefined.items() if names} == {}


@pytest.mark.parametrize(
    "keys",
    [
        vocabulary.SEGMENTS,
        vocabulary.ACTIONS,
        vocabulary.CONTACT_ACTIONS,
        vocabulary.CHANNELS,
        vocabulary.TONES,
        vocabulary.RISK_TIERS,
        vocabulary.OUTCOMES,
        vocabulary.PRIORITY_RULES,
    ],
)
def test_every_key_has_a_display_name_in_words(keys: tuple[str, ...]) -> None:
    for key in keys:
        name = vocabulary.label(key)
        assert name and "_" not in name and name[0].isupper(), (key, name)


def test_identifiers_read_as_words() -> None:
    assert vocabulary.label("chronic_late") == "Chronically late"
    assert vocabulary.label("call") == "Phone call"  # an action and a channel, one name
    assert vocabulary.label(None) == "—"
    assert vocabulary.readable("history_amount_weighted_days_late") == "History amount weighted days late"
    assert vocabulary.feature_label("history_share_late") == "Share of past invoices paid late"
    assert vocabulary.feature_label("a_feature_added_later") == "A feature added later"
    assert vocabulary.column_label("open_amount", currency="EUR") == "Open amount (EUR)"
    assert vocabulary.column_label("queue_position") == "Queue position"


def test_figures_carry_their_units() -> None:
    assert money(1612032.47, currency="USD") == "1,612,032.47 USD"
    assert money(-2574.27, currency="USD") == "−2,574.27 USD"
    assert money(157432.0, currency="USD", signed=True, unit=False) == "+157,432.00"
    assert short_money(157432.0, currency="USD", signed=True) == "+157k USD"
    assert short_money(1612032.47, currency="EUR") == "1.61M EUR"
    assert days(34.758) == "34.8 days"
    assert days(-4.44, signed=True) == "−4.4 days"
    assert percent(0.02, share=True) == "2.0%"
    assert day(date(2026, 9, 30)) == "30 Sep 2026"


def test_a_date_range_names_each_end_once() -> None:

    assert day_range(date(2026, 10, 1), date(2026, 10, 4)) == "1–4 Oct 2026"
    assert day_range(date(2026, 9, 28), date(2026, 10, 4)) == "28 Sep – 4 Oct 2026"
    assert day_range(date(2026, 12, 28), date(2027, 1, 3)) == "28 Dec 2026 – 3 Jan 2027"


def test_a_table_for_people_speaks_the_vocabulary() -> None:
    from datetime import datetime

    frame = pl.DataFrame(
        {
            "customer_id": ["C1", "C2"],
            "segment": ["chronic_late", None],
            "open_amount": [1234.5, None],
            "due_date": [datetime(2026, 10, 1), datetime(2026, 10, 2)],
            "p_paid_horizon": [0.86, 0.5],
            "reasons": ["x", None],
            "ratio": [float("nan"), 1.0],
        }
    )
    table = table_for_people(frame, currency="USD")
    shown = table.frame
    labels = dict(zip(shown.columns, table.labels(), strict=True))
    assert labels["open_amount"] == "Open amount (USD)" and labels["customer_id"] == "Customer id"
    assert shown["segment"].to_list() == ["Chronically late", "—"]
    assert shown["open_amount"].to_list() == ["1,234.50", "—"]  # an empty number cell reads "—", not "None"
    assert shown.schema["due_date"] == pl.Date  # midnight timestamps are dates
    assert shown["p_paid_horizon"].to_list() == pytest.approx([86.0, 50.0])
    assert shown["reasons"].to_list() == ["x", "—"]
    assert shown["ratio"].to_list() == ["—", "1.00"]  # NaN is empty too
    kinds = {c.name: c.kind for c in table.columns}
    assert kinds["due_date"] == "date" and kinds["p_paid_horizon"] == "probability"


def test_every_segment_threshold_has_a_name_in_words() -> None:
    from dataclasses import fields

    from dashboard.segments import SegmentRules

    settings = {f.name for f in fields(SegmentRules)} - {"rule_version"}
    assert set(vocabulary.SEGMENT_RULE_LABELS) == settings
    assert all("_" not in name for name in vocabulary.SEGMENT_RULE_LABELS.values())
