"""Overview (CFO): KPI cards, DSO family over 24 months, aging, roll rates, top overdue customers."""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from dashboard import charts, metrics, ui
from dashboard.filters import Filters
from pages._forecast_panel import render as render_forecast

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


def money(value: float) -> str:
    return f"{value:,.2f}"


def days(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}%"


def change(now: float | None, before: float | None, unit: str = "days") -> str | None:
    """The change against the previous month, formatted like the value it sits under."""
    if now is None or before is None:
        return None
    difference = now - before
    if unit == "money":
        return f"{difference:+,.2f}"
    if unit == "points":
        return f"{difference:+,.1f} pts"
    return f"{difference:+,.1f}"


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
                 "trailing90": "Trailing 90 days"}.get,
)
version = ui.data_version()

with ui.user_errors():
    kpis, previous = load_kpis(version, as_of, period, filters)
    previous_as_of = previous.as_of
    history = load_history(version, as_of, filters)

    st.caption(
        f"As of {as_of:%d %b %Y} · period {kpis.period_start:%d %b %Y} – {kpis.period_end:%d %b %Y} · "
        f"changes are against {previous_as_of:%d %b %Y} · amounts in base currency"
    )
    if kpis.open_invoices == 0:
        ui.empty_state(f"No open invoices as of {as_of.isoformat()}.")

    def trend(column: str) -> list[float]:
        return [v for v in history[column].to_list() if v is not None]

    row1 = st.columns(4)
    row1[0].metric("Open AR", money(kpis.ar_total), change(kpis.ar_total, previous.ar_total, "money"), delta_color="off",
                   chart_data=trend("ar_total"), border=True, help="Every open document, credit balances included")
    row1[1].metric("Overdue AR", money(kpis.ar_overdue), change(kpis.ar_overdue, previous.ar_overdue, "money"),
                   delta_color="inverse", chart_data=trend("ar_overdue"), border=True)
    row1[2].metric("% current", percent(kpis.pct_current), change(kpis.pct_current, previous.pct_current, "points"),
                   chart_data=trend("pct_current"), border=True, help="Share of open AR not yet due")
    row1[3].metric("Invoices", f"{kpis.invoice_count:,}", f"{kpis.invoice_count - previous.invoice_count:+,}",
                   delta_color="off", border=True,
                   help=f"Documents issued up to the as-of date; {kpis.open_invoices:,} still open")
    row2 = st.columns(4)
    row2[0].metric("DSO", days(kpis.dso), change(kpis.dso, previous.dso), delta_color="inverse",
                   chart_data=trend("dso"), border=True,
                   help="Ending AR / credit sales in the period × days in the period")
    row2[1].metric("Best possible DSO", days(kpis.best_possible_dso),
                   change(kpis.best_possible_dso, previous.best_possible_dso), delta_color="inverse",
                   chart_data=trend("best_possible_dso"), border=True)
    row2[2].metric("Average days delinquent", days(kpis.add), change(kpis.add, previous.add), delta_color="inverse",
                   chart_data=trend("add"), border=True, help="DSO − best possible DSO")
    row2[3].metric("CEI", percent(kpis.cei), change(kpis.cei, previous.cei, "points"), chart_data=trend("cei"), border=True,
                   help="Collection effectiveness index: share of what was collectible that was collected")
    row3 = st.columns(4)
    row3[0].metric("DSO (countback)", days(kpis.dso_countback), change(kpis.dso_countback, previous.dso_countback),
                   delta_color="inverse", chart_data=trend("dso_countback"), border=True)
    row3[1].metric("Average days to pay", days(kpis.avg_days_to_pay),
                   change(kpis.avg_days_to_pay, previous.avg_days_to_pay), delta_color="inverse", border=True,
                   help=f"Invoices paid in the period; amount-weighted: {days(kpis.avg_days_to_pay_weighted)}")
    row3[2].metric("Average days late", days(kpis.avg_days_late), change(kpis.avg_days_late, previous.avg_days_late),
                   delta_color="inverse", border=True,
                   help=f"Paid invoices, early counts as 0; amount-weighted: {days(kpis.avg_days_late_weighted)}")
    row3[3].metric("Promises kept", percent(kpis.promise_kept_rate),
                   change(kpis.promise_kept_rate, previous.promise_kept_rate, "points"), border=True,
                   help=f"Dispute rate {percent(kpis.dispute_rate)}, days to resolve {days(kpis.avg_days_to_resolve)}")

    st.plotly_chart(charts.dso_trend_chart(history), key=f"{PAGE}_dso_chart")

    left, right = st.columns(2)
    aging_frame = kpis.aging_frame()
    with left:
        st.plotly_chart(charts.aging_chart(aging_frame), key=f"{PAGE}_aging_chart")
        st.dataframe(aging_frame, hide_index=True, column_config={
            "amount": st.column_config.NumberColumn("Open amount", format="localized"),
            "share": st.column_config.NumberColumn("% of AR", format="%.1f"),
        })
        check = metrics.aging_reconciliation(aging_frame, kpis.ar_total)
        if check["reconciles"]:
            st.success(f"Buckets sum to {money(check['bucket_sum'])} = open AR {money(check['ar_total'])}.",
                       icon=":material/check_circle:")
        else:
            st.error(f"Buckets sum to {money(check['bucket_sum'])} but open AR is {money(check['ar_total'])} "
                     f"(difference {money(check['difference'])}).", icon=":material/error:")
    with right:
        st.plotly_chart(charts.aging_over_time_chart(history, metrics.bucket_labels()), key=f"{PAGE}_aging_history")

    left, right = st.columns(2)
    with left:
        top = load_top(version, as_of, filters)
        if top.is_empty():
            ui.empty_state(f"No overdue customers as of {as_of.isoformat()}.")
        else:
            st.plotly_chart(charts.top_overdue_chart(top), key=f"{PAGE}_top_chart")
            st.dataframe(top, hide_index=True, column_config={
                "overdue_amount": st.column_config.NumberColumn("Overdue", format="localized"),
                "open_amount": st.column_config.NumberColumn("Open", format="localized"),
            })
    with right:
        matrices = load_roll_matrices(version, as_of, filters)
        rates = matrices.filter(pl.col("to_date") == as_of) if not matrices.is_empty() else matrices
        if rates.is_empty():
            ui.empty_state(f"No open balances on {previous_as_of.isoformat()} to follow.")
        else:
            st.plotly_chart(charts.roll_rate_heatmap(rates, metrics.bucket_labels()), key=f"{PAGE}_roll_rates")
            st.caption(f"Where the balances open on {previous_as_of:%d %b %Y} stood on {as_of:%d %b %Y}.")

    roll_history = metrics.forward_roll_rates(matrices)
    if not roll_history.is_empty():
        st.plotly_chart(charts.roll_rate_trend_chart(roll_history), key=f"{PAGE}_roll_rate_trend")

    render_forecast(store, as_of)
