"""Strategy page section: the simulator — current strategy (A) against the user's edits (B).

Not a page of its own (the leading underscore keeps it out of navigation): the Strategy page
calls ``render(store, as_of)``. Widgets only build a :class:`dashboard.simulate.Strategy`;
``dashboard.simulate`` decides. A run shows progress and can be stopped; its result stays in
the session until the inputs change.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import polars as pl
import streamlit as st

from dashboard import display, metrics, ui
from dashboard.cadence import ObservedCadence, observed_strategy, steps_frame
from dashboard.charts_forecast import effect_chart, strategy_weekly_chart, touches_chart
from dashboard.config import base_currency
from dashboard.simulate import SimulationResult, Strategy, Touch, simulate_strategies
from dashboard.store import Store
from dashboard.vocabulary import CHANNELS, CONTACT_ACTIONS, PRIORITY_RULES, SEGMENTS, TONES, label

KEY = "strategy_sim"
NOBODY = "(none)"


def _read_steps(edited: pl.DataFrame) -> tuple[Touch, ...]:
    rows = edited.drop_nulls().sort("days_from_due").unique("days_from_due", keep="first", maintain_order=True)
    return tuple(
        Touch(int(r["days_from_due"]), str(r["channel"]), str(r["tone"]), str(r["action"]))
        for r in rows.iter_rows(named=True)
    )


def _who(value: str) -> str:
    return {"all": "All customers", NOBODY: "Nobody"}.get(value) or label(value)


def strategy_controls(current: Strategy) -> Strategy:
    """The widgets that turn the current strategy into B; returns B."""
    st.markdown("**Strategy B — your edits** (A is the current cadence, as your contact history shows it)")
    steps = st.data_editor(
        steps_frame(current.steps),
        num_rows="dynamic",
        key=f"{KEY}_steps",
        column_config={
            "days_from_due": st.column_config.NumberColumn(
                "Days from due", min_value=-60, max_value=365, step=1, help="−3 = three days before the due date"
            ),
            "action": st.column_config.SelectboxColumn("Action", options=list(CONTACT_ACTIONS), format_func=label),
            "channel": st.column_config.SelectboxColumn("Channel", options=list(CHANNELS), format_func=label),
            "tone": st.column_config.SelectboxColumn("Tone", options=list(TONES), format_func=label),
        },
        hide_index=True,
    )
    left, right = st.columns(2)
    limit = left.checkbox("Limit touches per day", key=f"{KEY}_limit")
    capacity = (
        int(left.number_input("Touches per day (whole team)", min_value=0, value=20, step=1, key=f"{KEY}_capacity"))
        if limit
        else None
    )
    priority = right.selectbox("When capacity binds, touch", PRIORITY_RULES, format_func=label, key=f"{KEY}_priority")
    segments = list(SEGMENTS)
    discount_segments = left.multiselect(
        "Offer an early-payment discount to", ["all", *segments], format_func=_who, key=f"{KEY}_disc_seg"
    )
    discount_percent = left.slider(
        "Discount for paying within 10 days", 0.0, 5.0, 2.0, 0.5, format="%.1f%%", key=f"{KEY}_disc_rate"
    )
    discount_rate = round(discount_percent / 100, 4)
    terms_segment = right.selectbox(
        "Tighter terms for", [NOBODY, "all", *segments], format_func=_who, key=f"{KEY}_terms_seg"
    )
    terms_days = int(right.number_input("New terms (days)", min_value=0, max_value=180, value=15, key=f"{KEY}_terms"))
    hold = right.multiselect("Credit hold (no new invoices) for", segments, format_func=label, key=f"{KEY}_hold")
    st.markdown("**Assumed effects** — only for a channel and tone never used in history; marked as assumptions")
    assumed = st.data_editor(
        pl.DataFrame(
            schema={"channel": pl.String, "tone": pl.String, "response_probability": pl.Float64, "days_pulled_forward": pl.Float64}
        ),
        num_rows="dynamic",
        key=f"{KEY}_assumed",
        column_config={
            "channel": st.column_config.SelectboxColumn("Channel", options=list(CHANNELS), format_func=label),
            "tone": st.column_config.SelectboxColumn("Tone", options=list(TONES), format_func=label),
            "response_probability": st.column_config.NumberColumn(
                "Chance of an answer (0–1)", min_value=0.0, max_value=1.0
            ),
            "days_pulled_forward": st.column_config.NumberColumn("Days paid earlier when answered", min_value=0.0),
        },
        hide_index=True,
    )
    assumed_effects = {
        (r["channel"], r["tone"]): (float(r["response_probability"]), float(r["days_pulled_forward"]))
        for r in pl.DataFrame(assumed).drop_nulls().iter_rows(named=True)
    }
    return dataclasses.replace(
        current,
        name="B",
        steps=_read_steps(pl.DataFrame(steps)),
        daily_capacity=capacity,
        priority=priority,
        early_pay_discount=dict.fromkeys(discount_segments, discount_rate) if discount_rate > 0 else {},
        terms_days={} if terms_segment == NOBODY else {terms_segment: terms_days},
        credit_hold=tuple(hold),
        assumed_effects=assumed_effects,
    )


@ui.cached
def _overview_dso(version: str, as_of: date) -> float | None:
    return metrics.compute_kpis(ui.get_store(), as_of).dso


def show_result(result: SimulationResult) -> None:
    """The verdict, the measured-vs-assumed panel, the A/B/difference table and the charts."""
    currency = base_currency()
    (st.warning if result.assumptions else st.info)(
        f"**Verdict:** {ui.md(result.verdict(currency=currency))}", icon=":material/balance:"
    )
    overview_dso = _overview_dso(ui.data_version(), result.as_of)
    st.caption(ui.md(result.dso_basis(overview_dso)))
    st.markdown("#### Measured vs assumed")
    if result.assumptions:
        for note in result.assumptions:
            st.warning(f"Assumption: {ui.md(note)}", icon=":material/edit_note:")
    else:
        st.success("Every effect in this run is measured from the contact history (no hand-set numbers).")
    ui.table(
        result.effects,
        labels={
            "lateness_band": "Customers who pay",
            "touches": "Touches",
            "responses": "Answered",
            "response_probability": "Chance of an answer",
            "response_p10": "Chance, low (P10)",
            "response_p90": "Chance, high (P90)",
            "source": "Source",
            "pull_forward_days_mean": "Days paid earlier when answered",
            "pull_forward_p10": "Days earlier, low (P10)",
            "pull_forward_p90": "Days earlier, high (P90)",
        },
        kinds={
            "touches": "count",
            "responses": "count",
            "response_probability": "share",
            "response_p10": "share",
            "response_p90": "share",
            "pull_forward_days_mean": "days",
            "pull_forward_p10": "days",
            "pull_forward_p90": "days",
        },
        key=f"{KEY}_effects",
    )
    if result.risk_source:
        st.info(f"'Highest P(late) first' ranks touches with risk scores from the {ui.md(result.risk_source)}",
                icon=":material/balance:")
    st.caption(
        "Chance of an answer: share of touches followed by a payment or a promise to pay that was kept, by how late "
        "the customer usually pays; low and high from resampling customers. Days paid earlier are calibrated so that "
        "the current strategy reproduces the days to pay your history shows."
    )
    level = f"{result.interval:.0%}"
    st.markdown(f"#### A against B ({level} intervals, {result.n_paths:,} paths with the same random draws)")
    ui.table(result.outcomes_table(currency=currency), key=f"{KEY}_metrics")
    days = result.metrics.filter(pl.col("unit") == "days")
    money = result.metrics.filter(pl.col("unit") == "base currency")
    left, right = st.columns(2)
    left.plotly_chart(effect_chart(days, unit="days"), key=f"{KEY}_effect_days")
    right.plotly_chart(effect_chart(money, unit=currency), key=f"{KEY}_effect_money")
    names = (result.strategy_a.name, result.strategy_b.name)
    for metric in ("cash_collected", "overdue_balance", "dso"):
        st.plotly_chart(
            strategy_weekly_chart(result.weekly, metric, names=names, currency=currency), key=f"{KEY}_{metric}"
        )
    st.plotly_chart(touches_chart(result.touches, names=names), key=f"{KEY}_touches")


@ui.cached
def _observed(version: str, as_of: date) -> ObservedCadence:
    return observed_strategy(ui.get_store(), as_of)


def render(store: Store, as_of: date) -> None:
    """Draw the simulator for ``as_of``: controls, run with progress and stop, results."""
    st.subheader("Strategy simulator")
    observed = _observed(ui.data_version(), as_of)
    if observed.assumed:
        st.warning(ui.md(observed.summary()), icon=":material/edit_note:")
    else:
        st.caption(observed.summary())
    current = observed.strategy
    strategy_b = strategy_controls(current)
    paths = st.select_slider("Monte Carlo paths", options=[100, 200, 400, 1000], value=400, key=f"{KEY}_paths")
    run, stop = st.columns(2)
    if stop.button("Stop", key=f"{KEY}_stop"):
        st.session_state[f"{KEY}_stopped"] = True
    if run.button("Run simulation", type="primary", key=f"{KEY}_run"):
        st.session_state[f"{KEY}_stopped"] = False
        bar = st.progress(0.0, text="Measuring effects from the contact history...")
        with ui.user_errors():
            result = simulate_strategies(
                store,
                as_of,
                strategy_b,
                strategy_a=current,
                n_paths=paths,
                progress=lambda fraction, stage: bar.progress(min(fraction, 1.0), text=stage),
                should_cancel=lambda: bool(st.session_state.get(f"{KEY}_stopped")),
            )
            st.session_state[f"{KEY}_result"] = result
        bar.empty()
    result = st.session_state.get(f"{KEY}_result")
    if result is None:
        ui.empty_state("Edit strategy B and press Run simulation to compare it with the current strategy.")
        return
    if result.as_of != as_of:
        st.info(f"These results are as of {display.day(result.as_of)}; run again for {display.day(as_of)}.")
    show_result(result)
