"""Strategy A as observed in the contact history (dashboard.cadence)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from dashboard.cadence import observed_strategy
from dashboard.simulate import Touch, current_strategy
from dashboard.store import Store
from tests.rows import insert_rows

AS_OF = date(2026, 6, 30)


def _insert(store: Store, new_invoices: pl.DataFrame, new_contacts: pl.DataFrame) -> None:
    # (a frame named like its table would read the table itself)
    insert_rows(store, "invoices", new_invoices)
    insert_rows(store, "contacts", new_contacts)
    assert store.table_counts()["contacts"] == new_contacts.height


def _world(n: int, steps: list[tuple[int, str, str, str, int]], *, spread: int = 20) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``n`` invoices due over ``spread`` days from 2026-05-01; a step is (days_from_due, channel,
    tone, action, how many invoices get it)."""
    due = [date(2026, 5, 1) + timedelta(days=i % spread) for i in range(n)]
    invoices = pl.DataFrame(
        {
            "invoice_id": [f"I{i}" for i in range(n)],
            "customer_id": [f"C{i % 7}" for i in range(n)],
            "invoice_date": [d - timedelta(days=30) for d in due],
            "due_date": due,
            "amount": [100.0] * n,
        }
    )
    rows = []
    for k, (days, channel, tone, action, count) in enumerate(steps):
        for i in range(count):
            rows.append(
                {
                    "contact_id": f"K{k}-{i}",
                    "customer_id": f"C{i % 7}",
                    "invoice_id": f"I{i}",
                    "ts": pl.datetime(2026, 1, 1),  # replaced below
                    "day": due[i] + timedelta(days=days),
                    "channel": channel,
                    "tone": tone,
                    "action": action,
                    "outcome": "no response",
                }
            )
    contacts = pl.DataFrame(rows).with_columns(ts=pl.col("day").cast(pl.Datetime) + pl.duration(hours=9)).drop("day")
    return invoices, contacts


def test_the_observed_cadence_is_the_median_day_and_commonest_style_of_each_touch(store: Store) -> None:
    invoices, contacts = _world(
        100,
        [
            (-3, "email", "friendly", "reminder", 100),  # every invoice
            (2, "sms", "neutral", "reminder", 60),  # 60 still unpaid two days late
            (10, "call", "firm", "call", 25),
            (30, "letter", "firm", "escalation", 10),  # too few: 10 < MIN_STEP_INVOICES
        ],
    )
    # a few second touches sent a day later than the rest, by email: the median day and the
    # commonest channel still win
    late = contacts.filter(pl.col("contact_id").is_in([f"K1-{i}" for i in range(20)])).with_columns(
        ts=pl.col("ts") + pl.duration(days=1), channel=pl.lit("email")
    )
    contacts = pl.concat([contacts.filter(~pl.col("contact_id").is_in(late["contact_id"].to_list())), late])
    _insert(store, invoices, contacts)

    observed = observed_strategy(store, AS_OF)
    assert not observed.assumed
    assert observed.touched_invoices == 100
    assert observed.strategy.steps == (
        Touch(-3, "email", "friendly", "reminder"),
        Touch(2, "sms", "neutral", "reminder"),
        Touch(10, "call", "firm", "call"),
    )
    assert observed.steps["invoices"].to_list() == [100, 60, 25]
    assert "-3, +2, +10 days" in observed.summary()


def test_touches_before_the_cut_off_and_on_invoices_whose_sequence_started_earlier_are_left_out(store: Store) -> None:
    invoices, contacts = _world(
        60, [(-3, "email", "friendly", "reminder", 60), (2, "sms", "neutral", "reminder", 60)], spread=1
    )
    _insert(store, invoices, contacts)
    # the day before the due date only the first touch has been sent: nothing after as_of counts
    observed = observed_strategy(store, date(2026, 4, 30))
    assert [s.days_from_due for s in observed.strategy.steps] == [-3]
    assert observed.touched_invoices == 60
    # a window that opens after the first touches sees no sequence from its start: thin history
    late_window = observed_strategy(store, date(2026, 5, 10), months=0)
    assert late_window.assumed and late_window.touched_invoices == 0


def test_thin_history_falls_back_to_the_default_cadence_and_says_so(store: Store) -> None:
    invoices, contacts = _world(30, [(-3, "email", "friendly", "reminder", 30)])
    _insert(store, invoices, contacts)
    observed = observed_strategy(store, AS_OF)
    assert observed.assumed and observed.touched_invoices == 30
    assert observed.strategy.steps == current_strategy().steps
    assert "an assumption" in observed.summary()


def test_a_generated_world_shows_the_cadence_it_was_generated_with(tmp_path) -> None:
    from dashboard.ingest import load_world
    from dashboard.synthetic import CollectionsPolicy, TouchStep, WorldConfig, generate_world

    policy = CollectionsPolicy(
        steps=(
            TouchStep(-5, "reminder", "email", "friendly"),
            TouchStep(4, "follow-up", "sms", "neutral"),
            TouchStep(20, "call", "call", "firm"),
        ),
        name="three-step",
    )
    config = WorldConfig(n_customers=150, months=12, seed=5)
    world = generate_world(config, policy)
    with Store(tmp_path / "w.duckdb") as store:
        load_world(store, world.frames)
        observed = observed_strategy(store, config.end_date)
    print(f"\n{observed.summary()}\n{observed.steps}")
    assert not observed.assumed
    assert [(s.channel, s.tone, s.action) for s in observed.strategy.steps] == [
        ("email", "friendly", "reminder"), ("sms", "neutral", "follow-up"), ("call", "firm", "call"),
    ]
    # touches go out on the next business day: at most two days after the step
    for seen, step in zip(observed.strategy.steps, policy.steps, strict=True):
        assert 0 <= seen.days_from_due - step.days_from_due <= 2


def _panel_app() -> None:
    from dashboard import ui
    from dashboard.dates import latest_data_date
    from pages._simulator_panel import render

    store = ui.get_store()
    render(store, latest_data_date(store))


def test_the_simulator_starts_from_the_observed_cadence(app_env) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_panel_app, default_timeout=120).run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("as your contact history shows it" in c.value for c in at.caption), [c.value for c in at.caption]
    # strategy B starts as a copy of A: the step editor holds the observed steps
    with Store(app_env) as store:
        from dashboard.dates import latest_data_date

        observed = observed_strategy(store, latest_data_date(store))
    steps = [s.days_from_due for s in observed.strategy.steps]
    assert steps[:5] == [-3, 1, 7, 15, 30]  # the sample world's collectors' cadence
    assert list(at.dataframe[0].value["days_from_due"]) == steps
