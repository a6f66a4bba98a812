"""Plotly figure builders: a frame in, a ``go.Figure`` out. They never draw (pages call
``st.plotly_chart``) and never query the store, so tests can assert on the figure's data.

Colours are fixed per aging bucket and per segment so a bucket looks the same on every chart.
A month-end figure is drawn on its own month (30 Sep under "Sep 2026", not under the "Oct 2026"
tick that follows it): :func:`month_axis`. Names on charts are display names
(:mod:`dashboard.vocabulary`); money axes name the base currency.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import plotly.graph_objects as go
import polars as pl

from dashboard.config import base_currency
from dashboard.dates import month_start
from dashboard.vocabulary import DOCUMENT_LABELS, NO_SEGMENT, SEGMENTS, label

TEMPLATE = "plotly_white"
#: Green (not yet due) through red (oldest); extra buckets reuse the last colour.
BUCKET_COLOURS: tuple[str, ...] = ("#2e7d32", "#9ccc65", "#fdd835", "#fb8c00", "#e53935", "#8e0000")
SEGMENT_COLOURS: dict[str, str] = {
    "prompt": "#2e7d32",
    "on_time": "#81c784",
    "slow": "#fdd835",
    "disputer": "#8e24aa",
    "deteriorating": "#fb8c00",
    "chronic_late": "#c62828",
    "new": "#90a4ae",
    NO_SEGMENT: "#cfd8dc",
}
PAID_COLOUR = "#1565c0"
MEASURE_LABELS = {"customers": "Customers", "ar_amount": "Open AR", "amount": "Open AR", "share": "% of bucket"}
MEASURE_WORDS = {"customers": "number of customers", "ar_amount": "open AR"}
CREDIT_COLOUR = "#78909c"
#: The aging row of credit notes and unapplied cash (:meth:`dashboard.metrics.KpiResult.aging_table`).
CREDITS = "Credits and unapplied cash"


def money_title(what: str) -> str:
    """An axis title for money: "Open amount (USD)"."""
    return f"{what} ({base_currency()})"


def month_axis(month_ends: Sequence[date]) -> dict[str, Any]:
    """Trace arguments that put month-end figures on their own month: x is the first day of
    the month (the month's tick, labelled "Sep 2026"), the hover shows the month-end itself."""
    return {
        "x": [month_start(d) for d in month_ends],
        "customdata": [f"{d:%-d %b %Y}" for d in month_ends],
    }


def _month_ticks(fig: go.Figure, month_ends: Sequence[date]) -> go.Figure:
    """Ticks on month starts, labelled "Sep 2026", the newest month always one of them."""
    if month_ends:
        fig.update_xaxes(tickformat="%b %Y", tick0=month_start(max(month_ends)),
                         dtick="M1" if len(set(month_ends)) <= 12 else "M3")
    return fig


def _layout(fig: go.Figure, title: str, **kwargs: Any) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=title, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      legend={"orientation": "h", "y": -0.15}, **kwargs)
    return fig


def bucket_colour(position: int) -> str:
    return BUCKET_COLOURS[min(position, len(BUCKET_COLOURS) - 1)]


def sparkline(dates: Sequence[date], values: Sequence[float | None], *, name: str = "") -> go.Figure:
    """A tiny line without axes, for a KPI card."""
    fig = go.Figure(go.Scatter(**month_axis(dates), y=list(values), mode="lines", name=name, line={"width": 2},
                               hovertemplate="%{customdata}: %{y:,.1f}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, height=70, margin={"l": 0, "r": 0, "t": 0, "b": 0}, showlegend=False,
                      xaxis={"visible": False}, yaxis={"visible": False})
    return fig


def dso_trend_chart(history: pl.DataFrame) -> go.Figure:
    """DSO, best possible DSO and ADD per month from :func:`dashboard.metrics.kpi_history`
    (columns month_end, dso, best_possible_dso, add; dso_countback drawn dotted if present)."""
    fig = go.Figure()
    months = month_axis(history["month_end"].to_list())
    hover = "%{customdata}: %{y:,.1f} days<extra>%{fullData.name}</extra>"
    fig.add_trace(go.Bar(**months, y=history["add"].to_list(), name="Average days delinquent",
                         marker_color="#ef9a9a", opacity=0.7, hovertemplate=hover))
    fig.add_trace(go.Scatter(**months, y=history["dso"].to_list(), name="DSO", mode="lines+markers",
                             line={"color": "#1565c0", "width": 3}, hovertemplate=hover))
    fig.add_trace(go.Scatter(**months, y=history["best_possible_dso"].to_list(), name="Best possible DSO",
                             mode="lines", line={"color": "#2e7d32", "dash": "dash"}, hovertemplate=hover))
    if "dso_countback" in history.columns:
        fig.add_trace(go.Scatter(**months, y=history["dso_countback"].to_list(), name="DSO (countback)",
                                 mode="lines", line={"color": "#5c6bc0", "dash": "dot"}, hovertemplate=hover))
    return _month_ticks(_layout(fig, "DSO, best possible DSO and average days delinquent, at each month-end",
                                yaxis_title="days"), history["month_end"].to_list())


def aging_chart(aging_frame: pl.DataFrame) -> go.Figure:
    """Open AR per aging bucket (columns bucket, amount[, invoices]) as coloured bars; a
    :data:`CREDITS` row (credit notes and unapplied cash) is drawn in grey below zero."""
    buckets = aging_frame["bucket"].to_list()
    custom = aging_frame["invoices"].to_list() if "invoices" in aging_frame.columns else None
    colours = [CREDIT_COLOUR if b == CREDITS else bucket_colour(i) for i, b in enumerate(buckets)]
    fig = go.Figure(go.Bar(
        x=buckets, y=aging_frame["amount"].to_list(), customdata=custom, marker_color=colours,
        hovertemplate="%{x}: %{y:,.2f}" + (" on %{customdata} documents" if custom else "") + "<extra></extra>",
    ))
    return _layout(fig, "Open AR by days past due", yaxis_title=money_title("open amount"), showlegend=False)


def aging_over_time_chart(history: pl.DataFrame, bucket_labels: Sequence[str]) -> go.Figure:
    """Stacked open AR per bucket per month-end from :func:`dashboard.metrics.kpi_history`
    (invoices owed per bucket when it has ``owed_<bucket>`` columns, and credit notes and
    unapplied cash below zero as their own bar when it has ``credits``)."""
    fig = go.Figure()
    months = month_axis(history["month_end"].to_list())
    hover = "%{customdata}: %{y:,.2f}<extra>%{fullData.name}</extra>"
    for position, bucket in enumerate(bucket_labels):
        column = f"owed_{bucket}" if f"owed_{bucket}" in history.columns else bucket
        fig.add_trace(go.Bar(**months, y=history[column].to_list(), name=bucket, marker_color=bucket_colour(position),
                             hovertemplate=hover))
    if "credits" in history.columns:
        fig.add_trace(go.Bar(**months, y=history["credits"].to_list(), name=CREDITS, marker_color=CREDIT_COLOUR,
                             hovertemplate=hover))
    return _month_ticks(_layout(fig, "Aging at each month-end", barmode="relative",
                                yaxis_title=money_title("open amount")), history["month_end"].to_list())


def top_overdue_chart(top: pl.DataFrame) -> go.Figure:
    """Horizontal bars of the customers with the most overdue AR (largest on top)."""
    labels = [f"{n or c}" for c, n in zip(top["customer_id"], top["name"], strict=True)]
    fig = go.Figure(go.Bar(
        x=top["overdue_amount"].to_list()[::-1], y=labels[::-1], orientation="h", marker_color="#e53935",
        customdata=top["oldest_days_past_due"].to_list()[::-1],
        hovertemplate="%{y}: %{x:,.2f} overdue, oldest %{customdata} days<extra></extra>",
    ))
    return _layout(fig, "Top overdue customers", xaxis_title=money_title("overdue amount"), showlegend=False)


def roll_rate_heatmap(rates: pl.DataFrame, bucket_labels: Sequence[str]) -> go.Figure:
    """From-bucket × to-bucket matrix of :func:`dashboard.metrics.roll_rates` (% of the
    from-bucket amount), ``paid`` as the last column."""
    rows = [b for b in bucket_labels if b in set(rates["from_bucket"].to_list())]
    columns = [*bucket_labels, "paid"]
    lookup = {(f, t): s for f, t, s in rates.select("from_bucket", "to_bucket", "share").iter_rows()}
    z = [[lookup.get((f, t), 0.0) for t in columns] for f in rows]
    fig = go.Figure(go.Heatmap(
        z=z, x=columns, y=rows, colorscale="Reds", zmin=0, zmax=100,
        text=[[f"{v:.0f}%" for v in row] for row in z], texttemplate="%{text}",
        hovertemplate="%{y} -> %{x}: %{z:.1f}% of the amount<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", title="bucket at the start")
    fig.update_xaxes(title="bucket at the end")
    return _layout(fig, "Roll rates")


def roll_rate_trend_chart(history: pl.DataFrame) -> go.Figure:
    """Forward roll rate per bucket over time from :func:`dashboard.metrics.roll_rate_history`."""
    fig = go.Figure()
    for position, bucket in enumerate(history["from_bucket"].unique(maintain_order=True).to_list()):
        part = history.filter(pl.col("from_bucket") == bucket)
        fig.add_trace(go.Scatter(**month_axis(part["month_end"].to_list()), y=part["roll_rate"].to_list(),
                                 name=f"{bucket} rolled on", mode="lines+markers",
                                 line={"color": bucket_colour(position)},
                                 hovertemplate="month to %{customdata}: %{y:.1f}%<extra>%{fullData.name}</extra>"))
    return _month_ticks(_layout(fig, "Share of each bucket that rolled to an older bucket, by month",
                                yaxis_title="% of the bucket's amount"), history["month_end"].to_list())


def segment_mix_chart(mix: pl.DataFrame, *, measure: str = "customers") -> go.Figure:
    """Stacked segment mix per month from :func:`dashboard.segments.segment_mix`;
    ``measure`` is ``customers`` or ``ar_amount``."""
    _check_measure(measure)
    fig = go.Figure()
    hover = "%{customdata}: %{y:,.0f}<extra>%{fullData.name}</extra>"
    for segment in SEGMENTS:
        part = mix.filter(pl.col("segment") == segment)
        fig.add_trace(go.Bar(**month_axis(part["month"].to_list()), y=part[measure].to_list(), name=label(segment),
                             marker_color=SEGMENT_COLOURS[segment], hovertemplate=hover))
    title = money_title(MEASURE_LABELS[measure]) if measure == "ar_amount" else MEASURE_LABELS[measure]
    return _month_ticks(_layout(fig, "Segment mix at each month-end", barmode="stack", yaxis_title=title),
                        mix["month"].to_list())


def _check_measure(measure: str) -> None:
    if measure not in ("customers", "ar_amount"):
        msg = f"measure must be 'customers' or 'ar_amount'; got {measure!r}"
        raise ValueError(msg)


def _segment_order(values: Sequence[str]) -> list[str]:
    known = [NO_SEGMENT, *SEGMENTS]
    return [s for s in known if s in set(values)] + sorted(set(values) - set(known))


def migration_sankey(matrix: pl.DataFrame, *, measure: str = "customers") -> go.Figure:
    """Sankey of :func:`dashboard.segments.migration`: left nodes are the first month's
    segments, right nodes the second month's; link values are ``measure``."""
    _check_measure(measure)
    sources = _segment_order(matrix["from_segment"].to_list())
    targets = _segment_order(matrix["to_segment"].to_list())
    index = {("from", s): i for i, s in enumerate(sources)}
    index |= {("to", s): len(sources) + i for i, s in enumerate(targets)}
    links = matrix.filter(pl.col(measure) > 0)
    fig = go.Figure(go.Sankey(
        node={"label": [label(s) for s in [*sources, *targets]],
              "color": [SEGMENT_COLOURS.get(s, "#bdbdbd") for s in [*sources, *targets]], "pad": 15},
        link={"source": [index[("from", s)] for s in links["from_segment"]],
              "target": [index[("to", s)] for s in links["to_segment"]],
              "value": links[measure].to_list()},
    ))
    return _layout(fig, f"Migration between segments, by {MEASURE_WORDS[measure]}")


def migration_heatmap(matrix: pl.DataFrame, *, measure: str = "customers") -> go.Figure:
    """From-segment × to-segment matrix of :func:`dashboard.segments.migration`."""
    _check_measure(measure)
    rows = _segment_order(matrix["from_segment"].to_list())
    columns = _segment_order(matrix["to_segment"].to_list())
    lookup = {(f, t): v for f, t, v in matrix.select("from_segment", "to_segment", measure).iter_rows()}
    z = [[lookup.get((f, t), 0) for t in columns] for f in rows]
    fmt = "{:,.0f}"
    fig = go.Figure(go.Heatmap(
        z=z, x=[label(c) for c in columns], y=[label(r) for r in rows], colorscale="Blues",
        text=[[fmt.format(v) for v in row] for row in z],
        texttemplate="%{text}", hovertemplate="%{y} -> %{x}: %{z:,.0f}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", title="segment in the first month")
    fig.update_xaxes(title="segment in the second month")
    return _layout(fig, f"Migration matrix, by {MEASURE_WORDS[measure]}")


TIMELINE_KINDS: dict[str, str] = {
    "invoice": "#1565c0", "credit_memo": "#00897b", "unapplied_payment": "#00897b", "journal": "#757575",
    "payment": "#2e7d32", "adjustment": "#6d4c41", "dispute opened": "#8e24aa", "dispute resolved": "#ce93d8",
    "contact": "#fb8c00", "note": "#546e7a",
}


def customer_timeline_chart(timeline: pl.DataFrame) -> go.Figure:
    """One row of markers per event kind over time from
    :func:`dashboard.segments.customer_timeline` (size grows with the amount)."""
    fig = go.Figure()
    for kind in [k for k in TIMELINE_KINDS if k in set(timeline["kind"].to_list())] + sorted(
        set(timeline["kind"].to_list()) - set(TIMELINE_KINDS)
    ):
        part = timeline.filter(pl.col("kind") == kind)
        amounts = part["amount"].fill_null(0).abs()
        top = float(amounts.max() or 0) or 1.0
        fig.add_trace(go.Scatter(
            x=part["date"].to_list(), y=[DOCUMENT_LABELS.get(kind, label(kind))] * part.height, mode="markers",
            name=DOCUMENT_LABELS.get(kind, label(kind)),
            marker={"size": [8 + 16 * float(a) / top for a in amounts], "color": TIMELINE_KINDS.get(kind, "#9e9e9e")},
            customdata=list(zip(part["document"].fill_null("").to_list(), part["detail"].fill_null("").to_list(),
                                strict=True)),
            text=part["amount"].to_list(),
            hovertemplate="%{x|%-d %b %Y} %{customdata[0]} %{text:,.2f}<br>%{customdata[1]}<extra></extra>",
        ))
    return _layout(fig, "Customer timeline", showlegend=False, height=360)
