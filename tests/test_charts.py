"""Chart builders: frames in, figures out. The tests read the figures' data back."""

from __future__ import annotations

from datetime import date

import plotly.graph_objects as go
import polars as pl
import pytest

from dashboard import charts
from dashboard.metrics import bucket_labels

LABELS = bucket_labels()
MONTHS = [date(2025, 4, 30), date(2025, 5, 31), date(2025, 6, 30)]


def history() -> pl.DataFrame:
    return pl.DataFrame({
        "month_end": MONTHS,
        "dso": [30.0, 35.0, 28.0],
        "best_possible_dso": [20.0, 21.0, 20.0],
        "add": [10.0, 14.0, 8.0],
        "dso_countback": [29.0, 33.0, 28.0],
        **{label: [float(i), float(i) * 2, float(i) * 3] for i, label in enumerate(LABELS)},
    })


def test_dso_trend_chart() -> None:
    fig = charts.dso_trend_chart(history())
    assert isinstance(fig, go.Figure)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["DSO"].y) == [30.0, 35.0, 28.0]
    assert list(by_name["Best possible DSO"].y) == [20.0, 21.0, 20.0]
    assert list(by_name["Average days delinquent"].y) == [10.0, 14.0, 8.0]
    # each month-end sits on its own month's tick (30 Jun under "Jun 2025", not "Jul 2025"),
    # and the hover names the month-end itself
    assert list(by_name["DSO"].x) == [date(2025, 4, 1), date(2025, 5, 1), date(2025, 6, 1)]
    assert list(by_name["DSO"].customdata) == ["30 Apr 2025", "31 May 2025", "30 Jun 2025"]
    assert fig.layout.xaxis.tickformat == "%b %Y" and fig.layout.xaxis.tick0 == date(2025, 6, 1)


def test_every_month_end_chart_draws_the_point_on_its_own_month() -> None:
    month_starts = [date(2025, 4, 1), date(2025, 5, 1), date(2025, 6, 1)]
    figures = [
        charts.dso_trend_chart(history()),
        charts.aging_over_time_chart(history(), LABELS),
        charts.roll_rate_trend_chart(pl.DataFrame({"month_end": MONTHS, "from_bucket": ["Current"] * 3,
                                                   "roll_rate": [1.0, 2.0, 3.0]})),
        charts.segment_mix_chart(pl.DataFrame({"month": MONTHS, "segment": ["slow"] * 3, "customers": [1, 2, 3],
                                               "ar_amount": [1.0, 2.0, 3.0]})),
    ]
    for fig in figures:
        drawn = [t for t in fig.data if len(t.x)]
        assert drawn and all(list(t.x) == month_starts for t in drawn), fig.layout.title.text
        assert fig.layout.xaxis.tickformat == "%b %Y"


def test_aging_charts() -> None:
    frame = pl.DataFrame({"bucket": LABELS, "amount": [2000.0, 300.0, 0.0, 0.0, 500.0, 0.0], "invoices": [1, 2, 0, 0, 1, 0]})
    fig = charts.aging_chart(frame)
    assert list(fig.data[0].x) == LABELS
    assert list(fig.data[0].y) == [2000.0, 300.0, 0.0, 0.0, 500.0, 0.0]
    assert fig.data[0].marker.color[0] == charts.BUCKET_COLOURS[0]
    stacked = charts.aging_over_time_chart(history(), LABELS)
    assert [t.name for t in stacked.data] == LABELS
    assert list(stacked.data[2].y) == [2.0, 4.0, 6.0]
    assert stacked.layout.barmode == "relative"  # credit balances stack below zero
    # with the invoices owed per bucket and the credits apart, the credits are their own bar
    split = history().with_columns(
        *[pl.lit(10.0).alias(f"owed_{label}") for label in LABELS], credits=pl.lit(-5.0)
    )
    stacked = charts.aging_over_time_chart(split, LABELS)
    assert [t.name for t in stacked.data] == [*LABELS, charts.CREDITS]
    assert list(stacked.data[0].y) == [10.0] * 3 and list(stacked.data[-1].y) == [-5.0] * 3
    assert stacked.layout.yaxis.title.text.endswith("(USD)")


def test_sparkline_and_top_overdue() -> None:
    spark = charts.sparkline(MONTHS, [1.0, None, 3.0])
    assert list(spark.data[0].y) == [1.0, None, 3.0]
    top = pl.DataFrame({"customer_id": ["C1", "C2"], "name": ["Alpha", None], "overdue_amount": [600.0, 200.0],
                        "oldest_days_past_due": [21, 91]})
    fig = charts.top_overdue_chart(top)
    # largest on top: plotly draws horizontal bars bottom-up, so the order is reversed
    assert list(fig.data[0].y) == ["C2", "Alpha"]
    assert list(fig.data[0].x) == [200.0, 600.0]


def test_roll_rate_charts() -> None:
    rates = pl.DataFrame({
        "from_bucket": ["Current", "Current", "1-30"], "to_bucket": ["1-30", "paid", "paid"],
        "amount": [1000.0, 1200.0, 800.0], "invoices": [1, 1, 1], "share": [45.0, 55.0, 100.0],
    })
    fig = charts.roll_rate_heatmap(rates, LABELS)
    heat = fig.data[0]
    assert list(heat.y) == ["Current", "1-30"]
    assert list(heat.x) == [*LABELS, "paid"]
    assert heat.z[0][1] == 45.0 and heat.z[0][-1] == 55.0 and heat.z[1][-1] == 100.0 and heat.z[1][0] == 0.0
    trend = charts.roll_rate_trend_chart(pl.DataFrame({
        "month_end": [MONTHS[1], MONTHS[1], MONTHS[2]], "from_bucket": ["Current", "1-30", "Current"],
        "roll_rate": [10.0, 20.0, 12.0]}))
    assert [t.name for t in trend.data] == ["Current rolled on", "1-30 rolled on"]
    assert list(trend.data[0].y) == [10.0, 12.0]


MATRIX = pl.DataFrame({
    "from_segment": ["none", "on_time", "on_time", "slow"],
    "to_segment": ["new", "on_time", "deteriorating", "slow"],
    "customers": [1, 5, 2, 3],
    "ar_amount": [0.0, 500.0, 250.0, 0.0],
})


def test_migration_sankey() -> None:
    fig = charts.migration_sankey(MATRIX, measure="customers")
    sankey = fig.data[0]
    labels = list(sankey.node.label)
    assert labels == ["Not billed yet", "On time", "Slow payer", "On time", "Slow payer", "Deteriorating", "New customer"]
    # none -> new is 1 customer: source 0, target index of the right-hand "new" (6)
    links = list(zip(sankey.link.source, sankey.link.target, sankey.link.value, strict=True))
    assert (0, 6, 1) in links and (1, 5, 2) in links and len(links) == 4
    by_amount = charts.migration_sankey(MATRIX, measure="ar_amount")
    assert sorted(by_amount.data[0].link.value) == [250.0, 500.0]  # zero-amount links are dropped
    with pytest.raises(ValueError, match="'balance'"):
        charts.migration_sankey(MATRIX, measure="balance")


def test_migration_heatmap_and_mix() -> None:
    fig = charts.migration_heatmap(MATRIX, measure="ar_amount")
    heat = fig.data[0]
    assert list(heat.y) == ["Not billed yet", "On time", "Slow payer"]
    assert list(heat.x) == ["On time", "Slow payer", "Deteriorating", "New customer"]
    assert [list(row) for row in heat.z] == [[0, 0, 0, 0.0], [500.0, 0, 250.0, 0], [0, 0.0, 0, 0]]  # none->new, on_time->..., slow->slow
    mix = pl.DataFrame({"month": [MONTHS[2]] * 2, "segment": ["prompt", "slow"], "customers": [4, 1],
                        "ar_amount": [100.0, 900.0]})
    chart = charts.segment_mix_chart(mix, measure="ar_amount")
    by_name = {t.name: t for t in chart.data}
    assert list(by_name["Slow payer"].y) == [900.0] and list(by_name["Prompt payer"].y) == [100.0]
    assert list(by_name["New customer"].y) == []


def test_customer_timeline_chart() -> None:
    timeline = pl.DataFrame({
        "date": [date(2025, 5, 1), date(2025, 5, 20), date(2025, 6, 1)],
        "kind": ["invoice", "payment", "contact"], "document": ["I1", "I1", None],
        "amount": [1000.0, 500.0, None], "detail": ["due 2025-05-31", "wire", "email"],
    })
    fig = charts.customer_timeline_chart(timeline)
    assert [t.name for t in fig.data] == ["Invoice", "Payment", "Contact"]
    assert list(fig.data[1].x) == [date(2025, 5, 20)]
    assert list(fig.data[0].marker.size) == [24.0]  # the largest amount of its kind gets the biggest marker
