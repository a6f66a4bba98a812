"""Overview section: the 13-week cash forecast with its backtest.

Not a page of its own (the leading underscore keeps it out of navigation): the Overview
calls ``render(store, as_of)``. The forecast is cached per (data version, as-of date); the
backtest runs once per data version with a progress bar and can be stopped.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from dashboard import ui
from dashboard.charts_forecast import backtest_chart, forecast_chart
from dashboard.forecast import BacktestResult, CashForecast, backtest_forecast, forecast_cash
from dashboard.store import Store

KEY = "overview_forecast"


@st.cache_data(show_spinner="Simulating 1,000 paths of every open invoice...", max_entries=16)
def _forecast(_store: Store, version: str, as_of: date) -> CashForecast:
    return forecast_cash(_store, as_of, n_paths=1000)


def _money_table(weeks: pl.DataFrame) -> pl.DataFrame:
    return weeks.select(
        pl.col("week_start").alias("Week of"),
        pl.col("p10").round(0).alias("Open invoices P10"),
        pl.col("p50").round(0).alias("Open invoices P50"),
        pl.col("p90").round(0).alias("Open invoices P90"),
        pl.col("new_p50").round(0).alias("Not issued yet P50"),
        pl.col("total_p50").round(0).alias("Total P50"),
    )


@st.cache_resource
def _finished_backtests() -> dict[str, BacktestResult]:
    """Finished backtests by data version, shared by every session: the first visitor pays, not each."""
    return {}


def _backtest(store: Store, version: str) -> BacktestResult | None:
    finished = _finished_backtests()
    if version in finished:
        return finished[version]
    stop = st.button("Stop the backtest", key=f"{KEY}_stop")
    if stop:
        st.session_state[f"{KEY}_stopped"] = True
    if st.session_state.get(f"{KEY}_stopped"):
        if st.button("Run the backtest", key=f"{KEY}_run"):
            st.session_state[f"{KEY}_stopped"] = False
            st.rerun()
        st.caption("Backtest stopped.")
        return None
    bar = st.progress(0.0, text="Backtesting the forecast at past dates...")
    result = backtest_forecast(
        store,
        n_paths=300,
        progress=lambda fraction, stage: bar.progress(min(fraction, 1.0), text=f"Backtest: {stage}"),
        should_cancel=lambda: bool(st.session_state.get(f"{KEY}_stopped")),
    )
    bar.empty()
    finished[version] = result
    return result


def render(store: Store, as_of: date) -> None:
    """Draw the forecast and its backtest for ``as_of``."""
    st.subheader("Cash forecast — next 13 weeks")
    version = store.data_version()
    with ui.user_errors():
        result = _forecast(store, version, as_of)
        if result.open_invoice_count == 0:
            ui.empty_state(f"No open invoices as of {as_of.isoformat()}: nothing to forecast.")
            return
        weeks = result.weeks
        open_total = float(weeks["p50"].sum())
        new_total = float(weeks["new_p50"].sum())
        low, high = float(weeks["p10"].sum()), float(weeks["p90"].sum())
        left, middle, right = st.columns(3)
        left.metric("From open invoices (P50)", f"{open_total:,.0f}", help=f"Weekly P10–P90 summed: {low:,.0f} – {high:,.0f}")
        middle.metric("From invoices not issued yet (P50)", f"{new_total:,.0f}")
        right.metric("Open now", f"{result.open_amount:,.0f}", help=f"{result.open_invoice_count} open invoices")
        st.plotly_chart(forecast_chart(weeks), key=f"{KEY}_chart")
        st.caption(
            "Bars: median cash per calendar week; whiskers and the shaded band: 80% intervals (P10–P90) "
            f"from {result.n_paths:,} Monte Carlo paths of each invoice's pay date, learned from payment "
            "history known on the as-of date."
        )
        st.dataframe(_money_table(weeks), hide_index=True, key=f"{KEY}_table")
        with st.expander("How accurate has this forecast been? (backtest)", expanded=True):
            backtest = _backtest(store, version)
            if backtest is not None:
                four = backtest.wape_at(min(4, backtest.table.height))
                st.write(
                    f"Forecasts made every 4 weeks from {backtest.as_of_dates[0]:%d %b %Y} to "
                    f"{backtest.as_of_dates[-1]:%d %b %Y}, with only the data known then: 4 weeks ahead the "
                    f"weighted error was **{four['wape_forecast']:.0%}**, against {four['wape_last_13_weeks']:.0%} "
                    f"for repeating the last 13 weeks and {four['wape_due_dates']:.0%} for taking due dates at "
                    f"face value. The 80% interval held the actual **{backtest.coverage:.0%}** of the time."
                )
                st.plotly_chart(backtest_chart(backtest.table), key=f"{KEY}_backtest_chart")
                st.dataframe(
                    backtest.table.select(
                        pl.col("horizon").alias("Weeks ahead"),
                        pl.col("wape_forecast").round(3).alias("WAPE forecast"),
                        pl.col("wape_last_13_weeks").round(3).alias("WAPE last 13 weeks"),
                        pl.col("wape_due_dates").round(3).alias("WAPE due dates"),
                        pl.col("coverage_80").round(2).alias("Inside P10–P90"),
                    ),
                    hide_index=True,
                    key=f"{KEY}_backtest_table",
                )
