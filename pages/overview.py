"""Overview (CFO): KPI cards, DSO family over 24 months, aging, roll rates, top overdue customers."""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from dashboard import charts, display, metrics, ui
from dashboard.config import base_currency
from dashboard.filters import Filters
from dashboard.ui import signin
from dashboard.vocabulary import PROMISE_GRACE_DAYS
from pages._forecast_panel import render as render_forecast

signin.require_page("overview", "Overview")  # first: with sign-in on, nobody gets past it unasked

PAGE = "overview"
HISTORY_MONTHS = 24


@ui.cached
def load_kpis(version: str, as_of: date, period: str, filters: Filters) -> list[metrics.KpiResult]:
    """The measures as of ``as_of`` and as of the previous month-end, in one pass."""
    previous = metrics.previous_month_end(as_of)
    return metrics.compute_kpis_many(ui.get_store(), [as_of, previous], period=period, filters=filters)


@ui.cached
def load_history(version: str, as_of: date, filters: Filters):
    return metrics.kpi_history(ui.get_store(), as_of, months=HISTORY_MONTHS, filters=filters)


@ui.cached
def load_top(version: str, as_of: date, filters: Filters):
    return metrics.top_overdue_customers(ui.get_store(), as_of, limit=10, filters=filters)


@ui.cached
def load_roll_matrices(version: str, as_of: date, filters: Filters):
    return metrics.roll_rate_matrices(ui.get_store(), as_of, months=12, filters=filters)


def change(now: float | None, before: float | None, unit: str = "days") -> str | None:
    """The change against the previous month-end, in the unit of the value it sits under (with
    an ASCII minus: Streamlit reads the sign of a delta to choose its arrow and colour)."""
    if now is None or before is None:
        return None
    difference = now - before
    if unit == "money":
        text = display.money(difference, signed=True, unit=False)
    elif unit == "points":
        text = display.points(difference)
    elif unit == "count":
        text = f"{difference:+,.0f}"
    else:
        text = display.days(difference, signed=True)
    return text.replace("−", "-")


st.title("Overview")
store = ui.get_store()
if ui.no_data_guard(store):
    st.stop()

as_of = ui.as_of_control(PAGE, store=store)
ui.health_banners(as_of)
filters = ui.filters_control(PAGE, store=store)
period = st.sidebar.selectbox(
    "Period for DSO and CEI", metrics.PERIODS, key=f"{PAGE}_period",
    format_func={"month": "Month ending on the as-of date", "quarter": "Quarter (3 months)",
                 "trailing90": "Last 90 days"}.get,
)
version = ui.data_version()

with ui.user_errors():
    kpis, previous = load_kpis(version, as_of, period, filters)
    previous_as_of = previous.as_of
    history = load_history(version, as_of, filters)
    currency = base_currency()

    st.caption(
        f"As of {display.day(as_of)} · DSO and CEI over {display.day_range(kpis.period_start, kpis.period_end)} · "
        f"changes against {display.day(previous_as_of)} · amounts in {currency}"
    )
    if kpis.open_invoices == 0:
        ui.empty_state(f"No open invoices as of {display.day(as_of)}.")

    def trend(column: str) -> list[float]:
        return [v for v in history[column].to_list() if v is not None]

    cards = st.container(horizontal=True)  # cards wrap onto more rows on a narrow screen
    card = {"border": True, "width": "stretch"}
    cards.metric(f"Open AR ({currency})", display.money(kpis.ar_total, unit=False),
                 change(kpis.ar_total, previous.ar_total, "money"), delta_color="off", chart_data=trend("ar_total"),
                 help="Every open document: invoices owed, less credit notes and unapplied cash", **card)
    cards.metric(f"Overdue AR ({currency})", display.money(kpis.ar_overdue, unit=False),
                 change(kpis.ar_overdue, previous.ar_overdue, "money"), delta_color="inverse",
                 chart_data=trend("ar_overdue"), help="Open AR past its due date", **card)
    cards.metric("Current (not yet due)", display.percent(kpis.pct_current),
                 change(kpis.pct_current, previous.pct_current, "points"), chart_data=trend("pct_current"),
                 help="Share of open AR not yet due", **card)
    cards.metric("Invoices and credit notes", f"{kpis.invoice_count:,}",
                 change(kpis.invoice_count, previous.invoice_count, "count"), delta_color="off",
                 help=kpis.documents_note(), **card)
    cards.metric("DSO", display.days(kpis.dso), change(kpis.dso, previous.dso), delta_color="inverse",
                 chart_data=trend("dso"), help="Days sales outstanding: ending AR ÷ credit sales in the period × days "
                 "in the period", **card)
    cards.metric("Best possible DSO", display.days(kpis.best_possible_dso),
                 change(kpis.best_possible_dso, previous.best_possible_dso), delta_color="inverse",
                 chart_data=trend("best_possible_dso"), help="Current (not yet due) AR ÷ credit sales × days", **card)
    cards.metric("Average days delinquent", display.days(kpis.add), change(kpis.add, previous.add),
                 delta_color="inverse", chart_data=trend("add"), help="DSO − best possible DSO", **card)
    cards.metric("Collection effectiveness (CEI)", display.percent(kpis.cei), change(kpis.cei, previous.cei, "points"),
                 chart_data=trend("cei"), help="Share of what was collectible in the period that was collected", **card)
    cards.metric("DSO (countback)", display.days(kpis.dso_countback),
                 change(kpis.dso_countback, previous.dso_countback), delta_color="inverse",
                 chart_data=trend("dso_countback"), help="Days of the latest months' sales that make up open AR", **card)
    cards.metric("Average days to pay", display.days(kpis.avg_days_to_pay),
                 change(kpis.avg_days_to_pay, previous.avg_days_to_pay), delta_color="inverse",
                 help=f"Invoices paid in the period; weighted by amount: {display.days(kpis.avg_days_to_pay_weighted)}",
                 **card)
    cards.metric("Average days late", display.days(kpis.avg_days_late),
                 change(kpis.avg_days_late, previous.avg_days_late), delta_color="inverse",
                 help=f"Paid invoices, early counts as 0; weighted by amount: {display.days(kpis.avg_days_late_weighted)}",
                 **card)
    cards.metric("Promises kept", display.percent(kpis.promise_kept_rate),
                 change(kpis.promise_kept_rate, previous.promise_kept_rate, "points"),
                 help=f"Promises to pay whose money came by the promised date + {PROMISE_GRACE_DAYS} days. "
                 f"Disputes: {display.percent(kpis.dispute_rate)} of invoices, resolved in "
                 f"{display.days(kpis.avg_days_to_resolve)}", **card)

    st.plotly_chart(charts.dso_trend_chart(history), key=f"{PAGE}_dso_chart")

    left, right = st.columns(2)
    aging_table = kpis.aging_table()
    with left:
        st.plotly_chart(charts.aging_chart(aging_table), key=f"{PAGE}_aging_chart")
        ui.table(aging_table, labels={"bucket": "Days past due", "invoices": "Documents", "share": "% of open AR"},
                 kinds={"share": "percent"})
        check = metrics.aging_reconciliation(aging_table, kpis.ar_total)
        if check["reconciles"]:
            st.success(ui.md(kpis.open_ar_note()), icon=":material/check_circle:")
        else:
            st.error(f"Buckets sum to {display.money(check['bucket_sum'])} but open AR is "
                     f"{display.money(check['ar_total'])} (difference {display.money(check['difference'])}).",
                     icon=":material/error:")
    with right:
        st.plotly_chart(charts.aging_over_time_chart(history, metrics.bucket_labels()), key=f"{PAGE}_aging_history")

    left, right = st.columns(2)
    with left:
        top = load_top(version, as_of, filters)
        if top.is_empty():
            ui.empty_state(f"No overdue customers as of {display.day(as_of)}.")
        else:
            st.plotly_chart(charts.top_overdue_chart(top), key=f"{PAGE}_top_chart")
            ui.table(top, columns=["name", "overdue_amount", "open_amount", "overdue_invoices", "oldest_days_past_due"],
                     labels={"overdue_invoices": "Overdue invoices"}, kinds={"overdue_invoices": "count"})
    with right:
        matrices = load_roll_matrices(version, as_of, filters)
        rates = matrices.filter(pl.col("to_date") == as_of) if not matrices.is_empty() else matrices
        if rates.is_empty():
            ui.empty_state(f"No open balances on {display.day(previous_as_of)} to follow.")
        else:
            st.plotly_chart(charts.roll_rate_heatmap(rates, metrics.bucket_labels()), key=f"{PAGE}_roll_rates")
            st.caption(f"Where the balances open on {display.day(previous_as_of)} stood on {display.day(as_of)}.")

    roll_history = metrics.forward_roll_rates(matrices)
    if not roll_history.is_empty():
        st.plotly_chart(charts.roll_rate_trend_chart(roll_history), key=f"{PAGE}_roll_rate_trend")

    render_forecast(store, as_of, open_ar=kpis)
