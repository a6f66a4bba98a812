"""Plotly builders for the cash forecast, its backtest and the strategy simulator.

Data in (the frames of :class:`dashboard.forecast.CashForecast`,
:class:`dashboard.forecast.BacktestResult`, :class:`dashboard.simulate.SimulationResult`),
``go.Figure`` out. They never draw and never query the store.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from dashboard.charts import TEMPLATE

OPEN_COLOUR = "#1565c0"
NEW_COLOUR = "#90caf9"
BAND_COLOUR = "rgba(21, 101, 192, 0.18)"
A_COLOUR = "#546e7a"
B_COLOUR = "#e65100"
NAIVE_COLOURS = ("#9e9e9e", "#bdbdbd")


def _layout(fig: go.Figure, title: str, **kwargs: object) -> go.Figure:
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": -0.18},
        **kwargs,
    )
    return fig


def forecast_chart(weeks: pl.DataFrame) -> go.Figure:
    """Weekly cash: open invoices' median (bars) with their P10–P90 band (error bars), new
    billing's median stacked on top, and the total's P10–P90 as a shaded band."""
    x = weeks["week_start"].to_list()
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=x, y=weeks["total_p90"].to_list(), mode="lines", line={"width": 0}, showlegend=False,
                   hoverinfo="skip")
    )
    fig.add_trace(
        go.Scatter(x=x, y=weeks["total_p10"].to_list(), mode="lines", line={"width": 0}, fill="tonexty",
                   fillcolor=BAND_COLOUR, name="Total, P10–P90", hoverinfo="skip")
    )
    fig.add_trace(
        go.Bar(
            x=x,
            y=weeks["p50"].to_list(),
            name="Open invoices (P50)",
            marker_color=OPEN_COLOUR,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": (weeks["p90"] - weeks["p50"]).to_list(),
                "arrayminus": (weeks["p50"] - weeks["p10"]).to_list(),
                "color": "#0d47a1",
            },
            hovertemplate="Week of %{x|%d %b}: %{y:,.0f}<extra>open invoices</extra>",
        )
    )
    fig.add_trace(
        go.Bar(x=x, y=weeks["new_p50"].to_list(), name="Invoices not issued yet (P50)", marker_color=NEW_COLOUR,
               hovertemplate="Week of %{x|%d %b}: %{y:,.0f}<extra>new billing</extra>")
    )
    fig.update_layout(barmode="stack", yaxis_title="Cash collected (base currency)")
    return _layout(fig, "13-week cash forecast")


def backtest_chart(table: pl.DataFrame) -> go.Figure:
    """WAPE by horizon for the forecast and the two naive forecasts, with 80% coverage on a
    second axis (columns of :attr:`dashboard.forecast.BacktestResult.table`)."""
    x = table["horizon"].to_list()
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=table["wape_forecast"].to_list(), name="Forecast (P50)", mode="lines+markers",
                             line={"color": OPEN_COLOUR, "width": 3}))
    fig.add_trace(go.Scatter(x=x, y=table["wape_last_13_weeks"].to_list(), name="Naive: last 13 weeks repeated",
                             mode="lines", line={"color": NAIVE_COLOURS[0], "dash": "dash"}))
    fig.add_trace(go.Scatter(x=x, y=table["wape_due_dates"].to_list(), name="Naive: due dates at face value",
                             mode="lines", line={"color": NAIVE_COLOURS[1], "dash": "dot"}))
    fig.add_trace(go.Bar(x=x, y=table["coverage_80"].to_list(), name="Actual inside P10–P90", yaxis="y2",
                         marker_color="rgba(46, 125, 50, 0.25)"))
    fig.update_layout(
        xaxis_title="Weeks ahead",
        yaxis={"title": "WAPE", "tickformat": ".0%"},
        yaxis2={"title": "Interval coverage", "overlaying": "y", "side": "right", "range": [0, 1], "tickformat": ".0%"},
    )
    return _layout(fig, "Backtest: forecast error by horizon")


def strategy_weekly_chart(weekly: pl.DataFrame, metric: str, *, names: tuple[str, str] = ("A", "B")) -> go.Figure:
    """One weekly outcome (cash_collected, overdue_balance, dso) under A and B, each with
    its interval band (rows of :attr:`dashboard.simulate.SimulationResult.weekly`)."""
    rows = weekly.filter(pl.col("metric") == metric).sort("week")
    x = rows["week_start"].to_list()
    fig = go.Figure()
    for prefix, colour, name in (("a", A_COLOUR, names[0]), ("b", B_COLOUR, names[1])):
        fig.add_trace(go.Scatter(x=x, y=rows[f"{prefix}_high"].to_list(), mode="lines", line={"width": 0},
                                 showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=rows[f"{prefix}_low"].to_list(), mode="lines", line={"width": 0},
                                 fill="tonexty", fillcolor=_rgba(colour, 0.15), showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=rows[f"{prefix}_p50"].to_list(), mode="lines+markers", name=name,
                                 line={"color": colour, "width": 2}))
    titles = {"cash_collected": "Cash collected per week", "overdue_balance": "Overdue balance", "dso": "DSO (days)"}
    return _layout(fig, titles.get(metric, metric))


def touches_chart(touches: pl.DataFrame, *, names: tuple[str, str] = ("A", "B")) -> go.Figure:
    """Mean touches per day under A and B against each one's daily capacity."""
    x = touches["date"].to_list()
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=touches["a_mean"].to_list(), name=f"{names[0]}: touches per day",
                             line={"color": A_COLOUR}))
    fig.add_trace(go.Scatter(x=x, y=touches["b_mean"].to_list(), name=f"{names[1]}: touches per day",
                             line={"color": B_COLOUR}))
    for column, colour, name in (("a_capacity", A_COLOUR, names[0]), ("b_capacity", B_COLOUR, names[1])):
        capacity = touches[column].drop_nulls()
        if capacity.len():
            fig.add_hline(y=float(capacity[0]), line={"color": colour, "dash": "dash"},
                          annotation_text=f"{name} capacity")
    return _layout(fig, "Touches per day against capacity", yaxis_title="touches")


def effect_chart(metrics: pl.DataFrame) -> go.Figure:
    """B − A for each outcome with its interval, one row per metric (hand-set assumptions
    are marked in the label)."""
    labels = [
        f"{label}{' (uses assumptions)' if assumed else ''}"
        for label, assumed in zip(metrics["label"].to_list(), metrics["uses_assumptions"].to_list(), strict=True)
    ]
    fig = go.Figure(
        go.Scatter(
            x=metrics["diff_p50"].to_list(),
            y=labels,
            mode="markers",
            marker={"color": B_COLOUR, "size": 10},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": (metrics["diff_high"] - metrics["diff_p50"]).to_list(),
                "arrayminus": (metrics["diff_p50"] - metrics["diff_low"]).to_list(),
            },
            hovertemplate="%{y}: %{x:,.2f}<extra>B − A</extra>",
        )
    )
    fig.add_vline(x=0, line={"color": "#9e9e9e"})
    return _layout(fig, "Effect of B against A (median and interval)")


def _rgba(hex_colour: str, alpha: float) -> str:
    value = hex_colour.lstrip("#")
    red, green, blue = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red}, {green}, {blue}, {alpha})"
