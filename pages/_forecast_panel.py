"""Overview section: the 13-week cash forecast with its backtest, next to the naive run-rate.

Not a page of its own (the leading underscore keeps it out of navigation): the Overview
calls ``render(store, as_of)``. The forecast is cached per (data version, as-of date); the
backtest is read from the store when kept for the current loads (:mod:`dashboard.forecast_kept`),
else it runs with a progress bar, can be stopped, and is kept, so a restart does not pay it
again. Once it has run, the forecast in use is our model blended with the run-rate by weights chosen on the backtest's
past forecasts, its P10–P90 band is calibrated on their errors
(``dashboard.forecast.calibrate_forecast``), and the page says which forecast is in use and whether
it beat the run-rate on this business's own past.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from dashboard import display, ui
from dashboard.charts_forecast import backtest_chart, coverage_chart, forecast_chart, forecast_weeks
from dashboard.config import base_currency
from dashboard.forecast import (
    BACKTEST_PATHS,
    LEVEL_ERRORS,
    BacktestResult,
    CashForecast,
    calibrate_forecast,
    forecast_cash,
)
from dashboard.forecast_kept import backtest_for, kept_backtest
from dashboard.metrics import KpiResult
from dashboard.store import Store

KEY = "overview_forecast"


@st.cache_data(show_spinner="Simulating 1,000 paths of every open invoice...", max_entries=16)
def _forecast(_store: Store, version: str, as_of: date) -> CashForecast:
    return forecast_cash(_store, as_of, n_paths=1000)


def _money_table(weeks: pl.DataFrame) -> pl.DataFrame:
    columns = [c for c in _WEEK_LABELS if c in weeks.columns or c == "week"]
    return weeks.with_columns(pl.Series("week", forecast_weeks(weeks))).select(*columns)


_WEEK_LABELS = {
    "week": "Week",
    "p10": "Open invoices, low (P10)",
    "p50": "Open invoices (P50)",
    "p90": "Open invoices, high (P90)",
    "new_p50": "Not issued yet (P50)",
    "total_p10": "Total, low (P10)",
    "total_p50": "Total (P50)",
    "total_p90": "Total, high (P90)",
    "point": "Forecast in use",
    "run_rate": "Naive run-rate",
}


def _backtest(store: Store) -> BacktestResult | None:
    """The backtest kept in the store for the current loads; else run here, with a progress bar and
    a Stop button, and kept: the first visitor after a load pays, not each visitor or restart."""
    kept = kept_backtest(store, n_paths=BACKTEST_PATHS)
    if kept is not None:
        return kept.result
    stop = st.button("Stop the backtest", key=f"{KEY}_stop")
    if stop:
        st.session_state[f"{KEY}_stopped"] = True
    if st.session_state.get(f"{KEY}_stopped"):
        if st.button("Run the backtest", key=f"{KEY}_run"):
            st.session_state[f"{KEY}_stopped"] = False
            st.rerun()
        st.caption("Backtest stopped.")
        return None
    bar = st.progress(0.0, text="Checking the forecast against past dates...")
    result = backtest_for(
        store,
        n_paths=BACKTEST_PATHS,
        progress=lambda fraction, stage: bar.progress(min(fraction, 1.0), text=f"Backtest: {stage}"),
        should_cancel=lambda: bool(st.session_state.get(f"{KEY}_stopped")),
    ).result
    bar.empty()
    return result


def render(store: Store, as_of: date, *, open_ar: KpiResult | None = None) -> None:
    """Draw the forecast and its backtest for ``as_of``; ``open_ar`` (the Overview's figures for
    the same date) lets the section say how its open amount relates to the Overview's open AR."""
    st.subheader("Cash forecast — next 13 weeks")
    version = store.data_version()
    currency = base_currency()
    with ui.user_errors():
        result = _forecast(store, version, as_of)
        if result.open_invoice_count == 0:
            ui.empty_state(f"No open invoices as of {display.day(as_of)}: nothing to forecast.")
            return
        with st.expander("How accurate has this forecast been? (backtest)", expanded=True):
            backtest = _backtest(store)
            if backtest is not None:
                result = calibrate_forecast(result, backtest)
                show_backtest(backtest)
        weeks = result.weeks
        open_total = float(weeks["p50"].sum())
        new_total = float(weeks["new_p50"].sum())
        naive_total = float(weeks["run_rate"].sum())
        low, high = float(weeks["p10"].sum()), float(weeks["p90"].sum())
        cards = st.container(horizontal=True)
        cards.metric(f"From open invoices, median ({currency})", display.money(open_total, unit=False),
                     help=f"Weekly P10–P90 summed: {display.money(low)} – {display.money(high)}", width="stretch")
        cards.metric(f"From invoices not issued yet, median ({currency})", display.money(new_total, unit=False),
                     width="stretch")
        cards.metric(f"Owed on open invoices now ({currency})", display.money(result.open_amount, unit=False),
                     help=f"{result.open_invoice_count:,} invoices with a balance to collect", width="stretch")
        if "point" in weeks.columns:  # the backtest has chosen the blend: its total is the forecast stated
            cards.metric(f"Forecast in use, 13 weeks ({currency})", display.money(float(weeks["point"].sum()), unit=False),
                         help=f"Its weekly P10–P90 summed: {display.money(float(weeks['total_p10'].sum()))} – "
                              f"{display.money(float(weeks['total_p90'].sum()))}. {result.point_note}", width="stretch")
        cards.metric(f"Naive run-rate, 13 weeks ({currency})", display.money(naive_total, unit=False),
                     help="The average daily cash of the 13 weeks before the as-of date × the days of each week",
                     width="stretch")
        if open_ar is not None:
            st.caption(
                f"The forecast collects the {result.open_invoice_count:,} invoices with a balance "
                f"({display.money(result.open_amount)}); the Overview's open AR ({display.money(open_ar.ar_total)}) "
                f"also nets {open_ar.credit_documents:,} credit notes and unapplied payments "
                f"({display.money(open_ar.credits_total)})."
            )
        st.plotly_chart(forecast_chart(weeks), key=f"{KEY}_chart")
        first_start, first_end = weeks["week_start"][0], weeks["week_end"][0]
        partial = (
            f" The first week is only {(first_end - first_start).days + 1} days "
            f"({display.day_range(first_start, first_end)}): from the day after the as-of date to Sunday."
            if (first_end - first_start).days < 6
            else ""
        )
        st.caption(
            "Bars: median cash per calendar week (Monday to Sunday); whiskers: the open invoices' P10–P90 from "
            f"{result.n_paths:,} Monte Carlo paths of each invoice's pay date, learned from payment history known "
            f"on the as-of date; shaded band: the total's P10–P90. {result.point_note} {result.band_note} "
            f"Dashed line: the naive run-rate.{partial}"
        )
        table = _money_table(weeks)
        ui.table(table, labels={c: _WEEK_LABELS[c] for c in table.columns},
                 kinds=dict.fromkeys(set(table.columns) - {"week"}, "money"), key=f"{KEY}_table")


def show_backtest(backtest: BacktestResult) -> None:
    """What the backtest says, with our forecast next to the naive ones, and a warning when ours
    did not beat the run-rate."""
    first = backtest.wape_first(4)
    st.write(
        f"Forecasts made every 4 weeks from {display.day(backtest.as_of_dates[0])} to "
        f"{display.day(backtest.as_of_dates[-1])}, with only the data known then: over the first 4 weeks the "
        f"forecast in use had a weighted error of **{first['wape_forecast']:.1%}**, against "
        f"**{first['wape_last_13_weeks']:.1%}** for the naive run-rate and {first['wape_due_dates']:.1%} for taking "
        f"due dates at face value. The forecast in use blends our pay-date model (alone: "
        f"{first['wape_model']:.1%}), its level corrected by how far its last {LEVEL_ERRORS} forecasts at each week "
        f"ahead were off, with the run-rate, {backtest.mean_weight(4):.0%} on our model on average, "
        f"each week's correction and weight chosen on the forecasts before it. The P10–P90 band, calibrated on how far "
        f"earlier forecasts were off, either way, held the actual **{backtest.coverage:.0%}** of the time (an 80% band should hold about 80%; "
        f"the Monte Carlo band before calibration: {backtest.coverage_monte_carlo:.0%})."
    )
    if not backtest.beats_run_rate(4):
        st.warning(
            f"On this business's own past, our forecast did not beat the naive run-rate over the first 4 weeks "
            f"({first['wape_forecast']:.1%} vs {first['wape_last_13_weeks']:.1%} weighted error): read the run-rate "
            "line as at least as good a guide.",
            icon=":material/warning:",
        )
    left, right = st.columns(2)
    left.plotly_chart(backtest_chart(backtest.table), key=f"{KEY}_backtest_chart")
    right.plotly_chart(coverage_chart(backtest.table), key=f"{KEY}_coverage_chart")
    ui.table(
        backtest.table.select("horizon", "wape_forecast", "wape_model", "wape_last_13_weeks", "wape_due_dates",
                              "coverage_80"),
        labels={
            "horizon": "Weeks ahead",
            "wape_forecast": "Error: forecast in use",
            "wape_model": "Error: our pay-date model alone",
            "wape_last_13_weeks": "Error: naive run-rate (last 13 weeks)",
            "wape_due_dates": "Error: due dates at face value",
            "coverage_80": "Actual inside P10–P90",
        },
        kinds={"horizon": "count", "wape_forecast": "share", "wape_model": "share", "wape_last_13_weeks": "share",
               "wape_due_dates": "share", "coverage_80": "share"},
        key=f"{KEY}_backtest_table",
    )
    st.caption("Error: weighted absolute percentage error (WAPE) of the weekly cash, lower is better.")
