"""Plotly builders for the cash forecast, its backtest and the strategy simulator.

Data in (the frames of :class:`dashboard.forecast.CashForecast`,
:class:`dashboard.forecast.BacktestResult`, :class:`dashboard.simulate.SimulationResult`),
``go.Figure`` out. They never draw and never query the store.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from dashboard.charts import TEMPLATE, money_title
from dashboard.config import base_currency
from dashboard.display import week_label

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


def forecast_weeks(weeks: pl.DataFrame) -> list[str]:
    """The forecast's week labels: "5–11 Oct 2026"; a part of a week says how many days it has
    ("1–4 Oct 2026 (4 days)"), so a short first or last week does not read as a bad week."""
    return [week_label(start, end) for start, end in weeks.select("week_start", "week_end").iter_rows()]


def forecast_chart(weeks: pl.DataFrame) -> go.Figure:
    """Weekly cash: open invoices' median (bars) with their P10–P90 band (error bars), new
    billing's median stacked on top, the total's P10–P90 as a shaded band, the forecast in
    use as a solid line (when ``weeks`` has ``point``: our model blended with the run-rate,
    :func:`dashboard.forecast.calibrate_forecast`), and the naive run-rate as a dashed line
    beside them (when ``weeks`` has ``run_rate``). Weeks are labelled by their days; a partial
    week says so."""
    x = forecast_weeks(weeks) if "week_end" in weeks.columns else weeks["week_start"].to_list()
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
            hovertemplate="%{x}: %{y:,.2f}<extra>open invoices</extra>",
        )
    )
    fig.add_trace(
        go.Bar(x=x, y=weeks["new_p50"].to_list(), name="Invoices not issued yet (P50)", marker_color=NEW_COLOUR,
               hovertemplate="%{x}: %{y:,.2f}<extra>new billing</extra>")
    )
    if "point" in weeks.columns:
        fig.add_trace(
            go.Scatter(x=x, y=weeks["point"].to_list(), mode="lines+markers", name="Forecast in use",
                       line={"color": "#0d47a1", "width": 3},
                       hovertemplate="%{x}: %{y:,.0f}<extra>forecast in use</extra>")
        )
    if "run_rate" in weeks.columns:
        fig.add_trace(
            go.Scatter(x=x, y=weeks["run_rate"].to_list(), mode="lines", name="Naive run-rate (last 13 weeks)",
                       line={"color": NAIVE_COLOURS[0], "dash": "dash", "width": 2},
                       hovertemplate="%{x}: %{y:,.0f}<extra>naive run-rate</extra>")
        )
    fig.update_layout(barmode="stack", yaxis_title=money_title("cash collected"))
    fig.update_xaxes(type="category", tickangle=-30)
    return _layout(fig, "13-week cash forecast")


def backtest_chart(table: pl.DataFrame) -> go.Figure:
    """Forecast error (WAPE) by weeks ahead for the forecast and the two naive forecasts
    (columns of :attr:`dashboard.forecast.BacktestResult.table`). Error only, on one axis:
    how often the interval held is a different question, drawn by :func:`coverage_chart`."""
    x = table["horizon"].to_list()
    fig = go.Figure()
    hover = "%{x} weeks ahead: %{y:.0%} error<extra>%{fullData.name}</extra>"
    fig.add_trace(go.Scatter(x=x, y=table["wape_forecast"].to_list(), name="Forecast (P50)", mode="lines+markers",
                             line={"color": OPEN_COLOUR, "width": 3}, hovertemplate=hover))
    fig.add_trace(go.Scatter(x=x, y=table["wape_last_13_weeks"].to_list(), name="Naive: last 13 weeks repeated",
                             mode="lines", line={"color": NAIVE_COLOURS[0], "dash": "dash"}, hovertemplate=hover))
    fig.add_trace(go.Scatter(x=x, y=table["wape_due_dates"].to_list(), name="Naive: due dates at face value",
                             mode="lines", line={"color": NAIVE_COLOURS[1], "dash": "dot"}, hovertemplate=hover))
    fig.update_layout(
        xaxis={"title": "Weeks ahead", "dtick": 1},
        yaxis={"title": "Weighted error (lower is better)", "tickformat": ".0%", "rangemode": "tozero"},
    )
    return _layout(fig, "Forecast error by weeks ahead")


def coverage_chart(table: pl.DataFrame, *, target: float = 0.8) -> go.Figure:
    """How often the actual cash fell inside the forecast's P10–P90 interval, by weeks ahead,
    against the ``target`` it should hold (80%)."""
    x = table["horizon"].to_list()
    fig = go.Figure(
        go.Bar(x=x, y=table["coverage_80"].to_list(), name="Actual inside P10–P90", marker_color="#81c784",
               hovertemplate="%{x} weeks ahead: inside the interval %{y:.0%} of the time<extra></extra>")
    )
    fig.add_hline(y=target, line={"color": "#2e7d32", "dash": "dash"}, annotation_text=f"target {target:.0%}")
    fig.update_layout(
        xaxis={"title": "Weeks ahead", "dtick": 1},
        yaxis={"title": "Share of past forecasts", "tickformat": ".0%", "range": [0, 1]},
        showlegend=False,
    )
    return _layout(fig, "How often the 80% interval held")


def strategy_weekly_chart(
    weekly: pl.DataFrame, metric: str, *, names: tuple[str, str] = ("A", "B"), currency: str | None = None
) -> go.Figure:
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
    titles = {"cash_collected": "Cash collected per week", "overdue_balance": "Overdue balance at each week's end",
              "dso": "DSO at each week's end"}
    money = currency or base_currency()
    units = {"cash_collected": f"cash ({money})", "overdue_balance": f"overdue ({money})", "dso": "days"}
    fig.update_layout(yaxis_title=units.get(metric), xaxis={"tickformat": "%-d %b"})
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


def effect_chart(metrics: pl.DataFrame, *, unit: str | None = None) -> go.Figure:
    """B − A for each outcome with its interval, one row per metric (hand-set assumptions
    are marked in the label); ``unit`` names the axis ("days", "USD")."""
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
    if unit:
        fig.update_layout(xaxis_title=f"B − A ({unit})")
    return _layout(fig, "Effect of B against A (median and interval)")


def _rgba(hex_colour: str, alpha: float) -> str:
    value = hex_colour.lstrip("#")
    red, green, blue = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red}, {green}, {blue}, {alpha})"
