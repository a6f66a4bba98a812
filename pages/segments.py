"""Segments (analyst): segment mix over time, migration between two months, customers that
got worse, and a customer drill-down timeline."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date

import polars as pl
import streamlit as st

from dashboard import charts, display, segments, ui
from dashboard.config import base_currency
from dashboard.filters import Filters
from dashboard.ui import signin
from dashboard.vocabulary import SEGMENT_RULE_LABELS

signin.require_page("segments", "Segments")  # first: with sign-in on, nobody gets past it unasked

PAGE = "segments"


@ui.cached
def load_history(version: str, months: tuple[date, ...], filters: Filters,
                 rules: segments.SegmentRules = segments.DEFAULT_RULES) -> pl.DataFrame:
    return segments.segment_history(ui.get_store(), list(months), rules=rules, filters=filters)


@ui.cached
def load_names(version: str) -> pl.DataFrame:
    return segments.customer_names(ui.get_store())


@ui.cached
def load_timeline(version: str, customer_id: str, as_of: date) -> pl.DataFrame:
    return segments.customer_timeline(ui.get_store(), customer_id, as_of=as_of)


st.title("Segments")
store = ui.get_store()
if ui.no_data_guard(store):
    st.stop()

as_of = ui.as_of_control(PAGE, store=store)
ui.health_banners(as_of)
filters = ui.filters_control(PAGE, store=store)
months_shown = st.sidebar.slider("Months of history", 3, 24, 12, key=f"{PAGE}_months")
measure = st.sidebar.radio("Measure", ["customers", "ar_amount"], key=f"{PAGE}_measure",
                           format_func={"customers": "Customers", "ar_amount": "Open AR"}.get)
version = ui.data_version()
months = tuple(segments.months_back(as_of, months_shown))

TRIAL = f"{PAGE}_trial_rules"
shipped_settings = {name: value for name, value in asdict(segments.DEFAULT_RULES).items() if name != "rule_version"}
if ui.can("simulate"):  # what-ifs are the analyst's (and the single user's)
    with st.sidebar.expander("Segment rules", expanded=TRIAL in st.session_state):
        st.caption(f"Shipped rules ({segments.DEFAULT_RULES.rule_version}): plain thresholds, the first rule that "
                   "matches wins. Try other thresholds here to see what they would change; the risk model, the worklist "
                   "and the simulator keep the shipped rules.")
        current = st.session_state.get(TRIAL, shipped_settings)
        with st.form(f"{PAGE}_rules_form", border=False):
            entered = {
                name: st.number_input(
                    SEGMENT_RULE_LABELS[name], value=current[name], min_value=0 if isinstance(value, int) else 0.0,
                    step=1 if isinstance(value, int) else 0.5, key=f"{PAGE}_rule_{name}",
                )
                for name, value in shipped_settings.items()
            }
            tried = st.form_submit_button("Try these thresholds", type="primary", key=f"{PAGE}_rules_try")
        if tried:
            st.session_state[TRIAL] = entered
        if TRIAL in st.session_state and st.button("Back to the shipped rules", key=f"{PAGE}_rules_reset"):
            del st.session_state[TRIAL]
            for name in shipped_settings:
                st.session_state.pop(f"{PAGE}_rule_{name}", None)
            st.rerun()

rules = segments.DEFAULT_RULES
with ui.user_errors():
    rules = segments.what_if_rules(st.session_state.get(TRIAL, {}))
what_if = rules is not segments.DEFAULT_RULES
if what_if:
    changed = ", ".join(f"{SEGMENT_RULE_LABELS[name].lower()} {getattr(segments.DEFAULT_RULES, name)} → "
                        f"{getattr(rules, name)}"
                        for name in shipped_settings if getattr(rules, name) != getattr(segments.DEFAULT_RULES, name))
    st.info(f"**What-if thresholds** ({changed}). Nothing is saved: the risk model, the worklist and the "
            "simulator keep the shipped rules.", icon=":material/science:")

with ui.user_errors():
    history = load_history(version, months, filters, rules)
    if history.is_empty():
        ui.empty_state(f"No billed customers up to {display.day(months[-1])}.")
        st.stop()
    mix = segments.segment_mix(history)
    st.caption(f"Month-ends {months[0]:%b %Y} – {months[-1]:%b %Y}; each month uses only what was known on its last day.")
    st.plotly_chart(charts.segment_mix_chart(mix, measure=measure), key=f"{PAGE}_mix")

    if what_if:
        st.subheader(f"What these thresholds change on {months[-1]:%b %Y}")
        changes = segments.rules_comparison(load_history(version, months, filters), history, months[-1],
                                            load_names(version))
        total_ar = float(history.filter(pl.col("month") == months[-1])["open_amount"].sum())
        c1, c2 = st.columns(2)
        c1.metric("Customers changing segment", f"{changes.height:,}")
        c2.metric(f"Their open AR ({base_currency()})", display.money(float(changes["ar_amount"].sum()), unit=False),
                  help=f"Out of {display.money(total_ar)} open AR on {display.day(months[-1])}.")
        if changes.is_empty():
            ui.empty_state("No customer changes segment under these thresholds.")
        else:
            ui.table(changes)

    st.subheader("Migration between two months")
    pick = st.columns(2)
    from_month = pick[0].selectbox("From the end of", months[:-1], index=max(0, len(months) - 4), key=f"{PAGE}_from",
                                   format_func=lambda d: f"{d:%b %Y}")
    later = [m for m in months if m > from_month]
    to_month = pick[1].selectbox("To the end of", later, index=len(later) - 1, key=f"{PAGE}_to",
                                 format_func=lambda d: f"{d:%b %Y}")
    # one segments pass feeds the mix, the matrix and the list (no second query per month pair)
    matrix = segments.migration_matrix(history, from_month, to_month)
    left, right = st.columns(2)
    left.plotly_chart(charts.migration_sankey(matrix, measure=measure), key=f"{PAGE}_sankey")
    right.plotly_chart(charts.migration_heatmap(matrix, measure=measure), key=f"{PAGE}_heatmap")

    st.subheader("Customers that moved to a worse segment")
    names_frame = load_names(version)
    worse = segments.worse_moves(history, from_month, to_month, names_frame)
    if worse.is_empty():
        ui.empty_state(f"No customer moved to a worse segment between {from_month:%b %Y} and {to_month:%b %Y}.")
    else:
        ui.table(worse, labels={"reason": "Why (at the later month)"})

    st.subheader("Customer drill-down")
    names = dict(names_frame.rows())
    choices = worse["customer_id"].to_list() + sorted(
        set(history.filter(pl.col("month") == to_month)["customer_id"].to_list()) - set(worse["customer_id"].to_list())
    )
    customer = st.selectbox("Customer", choices, key=f"{PAGE}_customer",
                            format_func=lambda c: f"{names.get(c) or c} ({c})")
    if customer:
        path = history.filter(pl.col("customer_id") == customer).select(
            "month", "segment", "reason", "invoices_due", "avg_days_late", "disputes", "open_amount"
        )
        ui.table(path, labels={"month": "Month-end", "open_amount": "Open AR"})
        timeline = load_timeline(version, customer, as_of)
        if timeline.is_empty():
            ui.empty_state(f"Nothing recorded for {customer} up to {display.day(as_of)}.")
        else:
            st.plotly_chart(charts.customer_timeline_chart(timeline), key=f"{PAGE}_timeline")
            ui.table(timeline, labels={"amount": "Amount"}, kinds={"amount": "document_money"})
