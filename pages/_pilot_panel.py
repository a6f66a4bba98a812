"""Strategy page section: the pilot — prove the worklist on your own data against a holdout.

Not a page of its own: the Strategy page calls ``render(store, as_of)``. Widgets build the
pilot's settings; :mod:`dashboard.pilot` plans it (assignment, balance check, power), stores it,
and reports on it. The plan is shown before anything is stored.
"""

from __future__ import annotations

from datetime import date

import streamlit as st

from dashboard import display, ui
from dashboard.pilot import (
    DEFAULT_HOLDOUT_SHARE,
    DEFAULT_KILL_DAYS,
    PILOT_LENGTHS,
    cancel_pilot,
    get_pilot,
    latest_pilot,
    list_pilots,
    plan_pilot,
    start_pilot,
)
from dashboard.pilot_report import PilotReport, pilot_report
from dashboard.store import Store
from dashboard.vocabulary import PILOT_SCOPE_LABELS, SEGMENTS, label

KEY = "strategy_pilot"
PLAN = f"{KEY}_plan"
NOTICE = f"{KEY}_notice"
CONFIRM_CANCEL = f"{KEY}_confirm_cancel"


@ui.cached
def _report(version: str, pilot_id: str, as_of: date) -> PilotReport:
    store = ui.get_store()
    return pilot_report(store, get_pilot(store, pilot_id), as_of)


def _report_section(store: Store, as_of: date) -> None:
    pilots = list_pilots(store)
    default = latest_pilot(store, as_of)
    ids = [p.pilot_id for p in pilots]
    names = {p.pilot_id: p.describe() for p in pilots}
    chosen = st.selectbox(
        "Pilot", ids, index=ids.index(default.pilot_id) if default else 0, format_func=names.get, key=f"{KEY}_chosen"
    )
    pilot = next(p for p in pilots if p.pilot_id == chosen)
    if as_of < pilot.start:
        ui.empty_state(f"This pilot starts on {display.day(pilot.start)}: its report begins then.")
        return
    report = _report(ui.data_version(), pilot.pilot_id, as_of)
    counts = report.customers
    st.caption(
        ui.md(
            f"Report as of {display.day(as_of)}, after {report.days_run} of {pilot.days} days: "
            f"{counts['worklist']:,} customers in the worklist group, {counts['holdout']:,} in the holdout "
            f"(the usual cadence); {report.invoices['worklist'] + report.invoices['holdout']:,} invoices came due."
        )
    )
    verdict = report.verdict()
    if verdict.startswith("No measurable"):
        st.info(ui.md(verdict), icon=":material/balance:")
    else:
        st.success(ui.md(verdict), icon=":material/insights:")
    ui.table(report.table(), width="stretch")
    medians = report.medians
    st.caption(
        ui.md(
            f"Median days to pay: worklist group {display.days(medians['worklist'])}, holdout "
            f"{display.days(medians['holdout'])}. {report.censoring_note()} Intervals: {report.resamples:,} "
            "bootstrap resamples of customers within the strata of the assignment. These are measurements with "
            "intervals, not guarantees."
        )
    )
    for note in report.notes:
        st.warning(ui.md(note), icon=":material/info:")
    if pilot.cancelled is None and not report.finished:
        if st.button("Cancel this pilot", key=f"{KEY}_cancel"):
            st.session_state[CONFIRM_CANCEL] = pilot.pilot_id
        if st.session_state.get(CONFIRM_CANCEL) == pilot.pilot_id:
            st.warning("Cancel the pilot? From then on the worklist covers its holdout customers again.")
            if st.button("Yes, cancel it", key=f"{KEY}_cancel_yes"):
                with ui.user_errors("cancelling the pilot"):
                    cancel_pilot(store, pilot.pilot_id, actor=ui.current_actor())
                    st.session_state.pop(CONFIRM_CANCEL, None)
                    st.rerun()


def _plan_section(store: Store, as_of: date) -> None:
    owners = [v for v in store.query("SELECT DISTINCT owner FROM customers WHERE owner IS NOT NULL ORDER BY 1")["owner"]]
    c1, c2, c3 = st.columns(3)
    name = c1.text_input("Name", key=f"{KEY}_name", placeholder="e.g. Worklist pilot, spring")
    start = c2.date_input("First day", value=as_of, key=f"{KEY}_start", format="YYYY-MM-DD")
    days = c3.radio("Length (days)", PILOT_LENGTHS, index=len(PILOT_LENGTHS) - 1, horizontal=True, key=f"{KEY}_days")
    c4, c5, c6 = st.columns(3)
    share = c4.slider(
        "Holdout share", min_value=5, max_value=50, value=round(DEFAULT_HOLDOUT_SHARE * 100), step=5, format="%d%%",
        key=f"{KEY}_share", help="Customers kept on the usual cadence (the contact history's), to compare against.",
    )
    scope_kind = c5.radio("Covers", list(PILOT_SCOPE_LABELS), format_func=PILOT_SCOPE_LABELS.get, horizontal=True,
                          key=f"{KEY}_scope")
    scope_value = None
    if scope_kind == "segment":
        scope_value = c5.selectbox("Segment", list(SEGMENTS), format_func=label, key=f"{KEY}_segment")
    elif scope_kind == "collector":
        scope_value = c5.selectbox("Collector", owners, key=f"{KEY}_collector") if owners else None
    kill = c6.number_input(
        "Kill criterion: paid at least this many days sooner", min_value=0.0, value=DEFAULT_KILL_DAYS, step=0.5,
        key=f"{KEY}_kill", help="Judged at the end of the pilot: the worklist group must pay this much sooner, measurably.",
    )
    if st.button("Check balance and power", key=f"{KEY}_plan_button"):
        with ui.user_errors("planning the pilot"):
            st.session_state[PLAN] = plan_pilot(
                store, name=name, start=start, days=int(days), holdout_share=share / 100, scope_kind=scope_kind,
                scope_value=scope_value, kill_days=float(kill),
            )
    plan = st.session_state.get(PLAN)
    if plan is None:
        st.caption("Check the plan first: the groups, how alike they are, and the smallest effect the pilot can see.")
        return
    counts = plan.counts()
    st.markdown(
        ui.md(
            f"**{plan.pilot.describe()}** — {counts['worklist']:,} customers get the worklist, "
            f"{counts['holdout']:,} keep the usual cadence."
        )
    )
    st.info(ui.md(plan.power["text"]), icon=":material/bolt:")
    if plan.balance_warning:
        st.warning(ui.md(plan.balance_warning), icon=":material/warning:")
    else:
        st.caption("The groups are as alike as chance allows on every variable below.")
    ui.table(plan.balance, width="stretch")
    if st.button("Start this pilot", type="primary", key=f"{KEY}_start_button"):
        with ui.user_errors("starting the pilot"):
            actor = ui.current_actor()
            pilot = start_pilot(store, plan, created_by=actor.label, actor=actor)
            st.session_state.pop(PLAN, None)
            st.session_state[NOTICE] = f"Started: {pilot.describe()}."
            st.rerun()


def render(store: Store, as_of: date) -> None:
    st.caption(
        "A pilot proves the worklist on your own data: a random share of customers (the holdout) keeps the usual "
        "cadence your contact history shows, the rest get the worklist, and the report compares days to pay, cash "
        "collected, DSO, broken promises and the effort spent."
    )
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        st.success(ui.md(notice), icon=":material/task_alt:")
    if list_pilots(store):
        _report_section(store, as_of)
    else:
        ui.empty_state("No pilot yet: plan one below.")
    with st.expander("Plan a new pilot", expanded=not list_pilots(store)):
        _plan_section(store, as_of)
