"""Cash forecast: Kaplan–Meier pay-delay curves, the Monte Carlo forecast, the CLI, and the
backtest against two naive forecasts on a generator world (the issue's done-when test).

Hand-worked world (``tiny``), as of Sunday 2025-06-29:

    customer C1, ten invoices issued 2025-01-05 .. 2025-03-15, due 30 days later, each paid
    exactly 10 days after its due date  -> every pay delay is 10 days: S(9) = 1, S(10) = 0.
    open invoice O1: issued 2025-05-30, due 2025-06-29 (0 days past due), 1,000 open
       -> pays on 2025-07-09 = as_of + 10 days = week 2 (2025-07-07 .. 07-13), every path.
    open invoice O2: 2,000, due 2025-07-20 (-21 days past due) -> pays 07-30 = week 5.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dashboard import forecast
from dashboard.cli import main as cli_main
from dashboard.errors import ForecastError
from dashboard.paydist import (
    DELAY_MIN,
    EmpiricalPayDates,
    PayDelayCurves,
    _km_survival,
    fit_pay_delay_curves,
    last_business_days,
    open_invoices,
    snap_to_run,
)
from dashboard.store import Store
from tests.rows import insert_rows

AS_OF = date(2025, 6, 29)  # a Sunday


insert = insert_rows


@pytest.fixture
def tiny(store: Store) -> Store:
    insert(store, "customers", [{"customer_id": "C1", "name": "Alpha", "currency": "USD"}])
    invoices, payments = [], []
    for k in range(10):
        issued = date(2025, 1, 5) + timedelta(days=7 * k)
        due = issued + timedelta(days=30)
        invoices.append(
            {"invoice_id": f"H{k}", "customer_id": "C1", "doc_type": "invoice", "invoice_date": issued,
             "due_date": due, "amount": 500.0, "amount_base": 500.0, "currency": "USD"}
        )
        payments.append(
            {"payment_id": f"P{k}", "customer_id": "C1", "invoice_id": f"H{k}",
             "payment_date": due + timedelta(days=10), "amount": 500.0}
        )
    invoices += [
        {"invoice_id": "O1", "customer_id": "C1", "doc_type": "invoice", "invoice_date": date(2025, 5, 30),
         "due_date": date(2025, 6, 29), "amount": 1000.0, "amount_base": 1000.0, "currency": "USD"},
        {"invoice_id": "O2", "customer_id": "C1", "doc_type": "invoice", "invoice_date": date(2025, 6, 20),
         "due_date": date(2025, 7, 20), "amount": 2000.0, "amount_base": 2000.0, "currency": "USD"},
    ]
    insert(store, "invoices", invoices)
    insert(store, "payments", payments)
    return store


def test_kaplan_meier_by_hand() -> None:
    # Delays 0, 0, 5 paid; one censored at 10 (still open): S(0) = 1 - 2/4 = 0.5,
    # S(5) = 0.5 * (1 - 1/2) = 0.25, and nothing more is learned after: S(10) = 0.25.
    group = np.zeros(4, dtype=np.int64)
    survival, counts = _km_survival(
        group, np.array([0, 0, 5, 10]), np.array([True, True, True, False]), 1, shrinkage=0.0
    )
    curve = survival[0]
    assert curve[0 - DELAY_MIN - 1] == pytest.approx(1.0)
    assert curve[0 - DELAY_MIN] == pytest.approx(0.5)
    assert curve[5 - DELAY_MIN] == pytest.approx(0.25)
    assert curve[10 - DELAY_MIN] == pytest.approx(0.25)
    assert counts.tolist() == [4, 4]  # the group and the pooled row


def test_shrinkage_pulls_a_small_group_towards_the_pool() -> None:
    # Group 0: 1 invoice paid at 0. Group 1: 9 invoices, none paid at 0 (all at 20).
    # Pooled hazard at 0 = 1/10. With k = 10: h_0(0) = (1 + 10 * 0.1) / (1 + 10) = 2/11.
    group = np.array([0] + [1] * 9)
    delay = np.array([0] + [20] * 9)
    survival, _ = _km_survival(group, delay, np.ones(10, dtype=bool), 2, shrinkage=10.0)
    assert 1 - survival[0, -DELAY_MIN] == pytest.approx(2 / 11)
    assert 1 - survival[1, -DELAY_MIN] == pytest.approx((0 + 10 * 0.1) / (9 + 10))


def test_forecast_windows_are_calendar_weeks() -> None:
    windows = forecast.forecast_windows(date(2025, 6, 25))  # a Wednesday
    assert windows[0] == (date(2025, 6, 26), date(2025, 6, 29))  # short first week to Sunday
    assert windows[1] == (date(2025, 6, 30), date(2025, 7, 6))
    assert len(windows) == 13
    assert forecast.window_edges(date(2025, 6, 25))[:2].tolist() == [4, 11]
    with pytest.raises(ForecastError, match="got weeks=0"):
        forecast.forecast_windows(AS_OF, 0)


def test_month_end_runs() -> None:
    # 2026-01-31 is a Saturday: January's run is Friday the 30th, 3 days after the 27th.
    runs = last_business_days(date(2026, 1, 27), 40)
    assert runs[0] == 3
    assert snap_to_run(np.array([1, 3, 4]), runs).tolist() == [3, 3, runs[1]]
    assert date(2026, 1, 27) + timedelta(days=int(runs[1])) == date(2026, 2, 27)  # Friday


def test_conditional_pay_dates_given_days_past_due() -> None:
    # One curve: 50% pay at delay 0, the rest at delay 20. An invoice 5 days past due has
    # already missed the first mass: it pays at 20 with certainty, i.e. 15 days after as_of.
    delays = np.arange(DELAY_MIN, 401)
    survival = np.where(delays < 0, 1.0, np.where(delays < 20, 0.5, 0.0))
    curves = PayDelayCurves(
        as_of=AS_OF, groups=("g", "all"), delays=delays, survival=np.vstack([survival, survival]),
        invoices=np.array([2, 2]),
    )
    sampler = EmpiricalPayDates(curves, group=np.array([0, 0]), days_past_due=np.array([5, -10]))
    probabilities = sampler.week_probabilities(np.array([7, 14, 21, 28]))
    assert probabilities[0].tolist() == pytest.approx([0, 0, 1, 0, 0])  # day 15 -> third window
    assert probabilities[1].tolist() == pytest.approx([0, 0.5, 0, 0, 0.5])  # day 10 or day 30
    draws = sampler.sample_delays(np.random.default_rng(1), 200)
    assert set(np.unique(draws[:, 0])) == {20}
    assert set(np.unique(draws[:, 1])) == {0, 20}


def test_forecast_on_the_hand_worked_world(tiny: Store) -> None:
    curves = fit_pay_delay_curves(tiny, AS_OF)
    everyone = curves.groups.index("all")
    assert curves.survival[everyone, 9 - DELAY_MIN] == pytest.approx(1.0)
    assert curves.survival[everyone, 10 - DELAY_MIN] == pytest.approx(0.0)
    result = forecast.forecast_cash(tiny, AS_OF, n_paths=50, include_new=False)
    weeks = result.weeks
    assert weeks["week_start"][1] == date(2025, 7, 7)
    # O1 pays 07-09 (week 2), O2 pays 07-30 (week 5), in every path.
    assert weeks["p10"][1] == pytest.approx(1000.0)
    assert weeks["p90"][1] == pytest.approx(1000.0)
    assert weeks["p50"][4] == pytest.approx(2000.0)
    assert float(weeks["p50"].sum()) == pytest.approx(3000.0)
    assert result.open_amount == pytest.approx(3000.0)
    assert result.by_group["currency"].unique().to_list() == ["USD"]
    # Naive due-date forecast without billing would put O1 in week 1 (due on the as-of day).
    invoices = open_invoices(tiny, AS_OF)
    assert sorted(invoices["invoice_id"].to_list()) == ["O1", "O2"]


def test_shared_as_of_inputs_give_the_same_forecast(tiny: Store) -> None:
    # Reading the history, segments, payers and open invoices once for the forecast and the
    # simulator changes nothing: the same invoices, the same weeks, path for path.
    from dashboard.paydist import read_as_of_inputs

    inputs = read_as_of_inputs(tiny, AS_OF)
    assert sorted(inputs.invoices["invoice_id"].to_list()) == ["O1", "O2"]
    alone = forecast.forecast_cash(tiny, AS_OF, n_paths=50)
    shared = forecast.forecast_cash(tiny, AS_OF, n_paths=50, inputs=inputs)
    assert shared.weeks.equals(alone.weeks)
    assert np.array_equal(shared.open_paths, alone.open_paths)
    assert shared.weeks["p50"][1] == pytest.approx(1000.0)  # O1 in week 2, as worked out above
    stale = read_as_of_inputs(tiny, AS_OF - timedelta(days=7))
    with pytest.raises(ForecastError, match="2025-06-22"):
        forecast.forecast_cash(tiny, AS_OF, n_paths=50, inputs=stale)


def test_forecast_cancel_and_progress(tiny: Store) -> None:
    stages: list[float] = []
    forecast.forecast_cash(tiny, AS_OF, n_paths=20, include_new=False, progress=lambda f, _s: stages.append(f))
    assert stages[-1] == 1.0 and stages == sorted(stages)
    with pytest.raises(ForecastError, match="cancelled"):
        forecast.forecast_cash(tiny, AS_OF, n_paths=20, include_new=False, should_cancel=lambda: True)
    with pytest.raises(ForecastError, match="n_paths=3"):
        forecast.forecast_cash(tiny, AS_OF, n_paths=3)


def test_no_history_is_a_plain_error(store: Store) -> None:
    with pytest.raises(ForecastError, match="no invoice history"):
        fit_pay_delay_curves(store, AS_OF)


# ---------------------------------------------------------------------------------------
# the generator world: backtest (done-when) and the CLI
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dashboard.ingest import load_world
    from dashboard.synthetic import WorldConfig, default_policy, generate_world

    world = generate_world(WorldConfig(seed=7, n_customers=300, months=30, start=date(2024, 1, 1)), default_policy())
    path = tmp_path_factory.mktemp("forecast") / "world.duckdb"
    with Store(path) as s:
        load_world(s, world.frames)
    return path


def test_backtest_beats_both_naives_with_calibrated_intervals(world_db: Path) -> None:
    with Store(world_db) as s:
        result = forecast.backtest_forecast(s, n_paths=400)
    four = result.wape_at(4)
    print(result.table)
    print(f"4-week WAPE {four}; 80% interval coverage {result.coverage:.3f} over {len(result.as_of_dates)} as-of dates")
    print(f"weeks 1-4 pooled {result.wape_first(4)}; weight on our model {result.mean_weight(4):.2f}")
    assert len(result.as_of_dates) == 13
    assert four["wape_forecast"] < four["wape_last_13_weeks"]
    assert four["wape_forecast"] < four["wape_due_dates"]
    assert 0.70 <= result.coverage <= 0.90
    assert set(result.to_dict()) == {"as_of_dates", "coverage_80", "by_horizon"}


def test_forecast_cli_json(world_db: Path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(["forecast", "--as-of", "2026-01-31", "--db", str(world_db), "--json", "--paths", "200",
                         "--no-backtest"])
    assert code == 0
    weeks = json.loads(out.getvalue())
    assert len(weeks) == 13
    assert weeks[0]["week_start"] == "2026-02-01"
    for week in weeks:
        assert {"week_start", "p10", "p50", "p90", "new_p50"} <= set(week)
        assert week["p10"] <= week["p50"] <= week["p90"]
        assert "forecast" not in week  # our model alone: no backtest has judged it
    # New billing only starts paying after its terms: week 1 gets far less than week 13.
    assert weeks[0]["new_p50"] < weeks[12]["new_p50"]


def test_forecast_cli_states_the_forecast_in_use_as_the_overview_does(
    world_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """By default the CLI runs the Overview's backtest and prints the same forecast in use (our
    model blended with the run-rate) with the same calibrated band, not our model alone."""
    as_of = date(2026, 1, 31)
    code = cli_main(["forecast", "--as-of", as_of.isoformat(), "--db", str(world_db), "--json", "--paths", "200",
                     "--backtest-paths", "100"])
    assert code == 0
    captured = capsys.readouterr()
    weeks = json.loads(captured.out)
    assert "%] " in captured.err  # progress went to stderr, the JSON on stdout stayed clean
    with Store(world_db) as s:
        expected = forecast.calibrate_forecast(
            forecast.forecast_cash(s, as_of, n_paths=200), forecast.backtest_forecast(s, n_paths=100))
    assert [w["forecast"] for w in weeks] == pytest.approx(expected.weeks["point"].to_list(), abs=0.01)
    assert [w["forecast_p90"] for w in weeks] == pytest.approx(expected.weeks["total_p90"].to_list(), abs=0.01)
    for week in weeks:
        assert week["forecast_p10"] <= week["forecast"] <= week["forecast_p90"]
    assert "backtest: computed in" in captured.err and "kept in the store" in captured.err
    with Store(world_db) as s:
        kept_at = s.query("SELECT created, params FROM kept_backtests").rows()
    assert len(kept_at) == 1
    # a second call (another process, a scheduled job) reads the kept backtest back: no progress,
    # the same forecast, and the kept row is the one the first call wrote
    with contextlib.redirect_stdout(io.StringIO()) as text:
        cli_main(["forecast", "--as-of", as_of.isoformat(), "--db", str(world_db), "--paths", "200",
                  "--backtest-paths", "100"])
    again = capsys.readouterr().err
    assert "backtest: kept from" in again and "%] " not in again
    assert "Forecast in use:" in text.getvalue() and expected.point_note in text.getvalue()
    with Store(world_db) as s:
        assert s.query("SELECT created, params FROM kept_backtests").rows() == kept_at


def _copy(path: Path, tmp_path: Path) -> Path:
    """A copy of ``path`` without the backtests other tests kept in it."""
    copy = tmp_path / "copy.duckdb"
    shutil.copy(path, copy)
    with Store(copy) as s, s.transaction() as cur:
        cur.execute("DELETE FROM kept_backtests").fetchall()
    return copy


def test_a_kept_backtest_reads_back_exactly_and_only_for_the_same_loads(world_db: Path, tmp_path: Path) -> None:
    """Kept then read equals the computed backtest, dtypes included; a policy save or a score
    leaves it (they change the data version, not the loads the forecast reads); a new load makes it
    stale, and keeping the next one deletes it."""
    from dashboard.forecast_kept import backtest_for, backtest_key, keep_backtest, kept_backtest
    from dashboard.ingest import load_frame
    from dashboard.policy import default_policy, save_policy

    path = _copy(world_db, tmp_path)
    with Store(path) as s:
        computed = backtest_for(s, n_paths=100)
        assert computed.computed and computed.kept
        read = kept_backtest(s, n_paths=100)
        assert read is not None and not read.computed
        assert read.created == computed.created
        assert read.result.as_of_dates == computed.result.as_of_dates
        for name in ("details", "table", "runs"):
            frame, back = getattr(computed.result, name), getattr(read.result, name)
            assert back.schema == frame.schema, name
            assert back.equals(frame), name
        assert {pl.Date, pl.Float64, pl.Int64, pl.Boolean} <= set(read.result.details.schema.values())
        # other parameters are another backtest
        assert kept_backtest(s, n_paths=101) is None
        assert kept_backtest(s, n_paths=100, as_of_dates=computed.result.as_of_dates[-3:]) is None
        # the default dates resolved are the same backtest
        assert kept_backtest(s, n_paths=100, as_of_dates=computed.result.as_of_dates) is not None

        version = s.data_version()
        save_policy(s, default_policy(), based_on_version=None)
        assert s.data_version() != version
        assert backtest_for(s, n_paths=100).created == computed.created  # read back, not recomputed

        load_frame(s, pl.DataFrame({"customer_id": ["NEW1"], "name": ["A new customer"]}), table="customers",
                   file_name="late/customers.csv")
        assert kept_backtest(s, n_paths=100) is None
        key = backtest_key(s, n_paths=100)
        keep_backtest(s, computed.result, key=key, created=computed.created, seconds=computed.seconds)
        assert s.query("SELECT data_version FROM kept_backtests").rows() == [(key[0],)]
        assert kept_backtest(s, n_paths=100) is not None
        # one kept by another version of the forecast's method is never read back
        version, _, params = key
        keep_backtest(s, computed.result, key=(version, "fc0-older", params), created=computed.created, seconds=1.0)
        assert kept_backtest(s, n_paths=100) is None


def test_a_stopped_backtest_keeps_nothing_and_a_read_only_store_is_not_written(
    world_db: Path, tmp_path: Path
) -> None:
    from dashboard.forecast_kept import KEEP_AT_MOST, backtest_for, kept_backtest

    path = _copy(world_db, tmp_path)
    with Store(path) as s:
        last = forecast.backtest_dates(s)[-1]
        small = {"as_of_dates": [last], "calibrate_from": [], "n_paths": 50}
        with pytest.raises(ForecastError, match="cancelled"):
            backtest_for(s, **small, should_cancel=lambda: True)
        assert s.scalar("SELECT count(*) FROM kept_backtests") == 0
        for seed in range(KEEP_AT_MOST + 2):
            backtest_for(s, **small, seed=seed)
        kept = s.query("SELECT params FROM kept_backtests").rows()
        assert len(kept) == KEEP_AT_MOST  # the newest few only
        assert kept_backtest(s, **small, seed=0) is None  # the oldest went
        assert kept_backtest(s, **small, seed=KEEP_AT_MOST + 1) is not None
    with Store(path, read_only=True) as s:
        assert kept_backtest(s, **small, seed=KEEP_AT_MOST + 1) is not None
        fresh = backtest_for(s, **small, seed=99)
        assert fresh.computed and not fresh.kept
        assert s.scalar("SELECT count(*) FROM kept_backtests") == KEEP_AT_MOST


def test_forecast_cli_bad_date(world_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["forecast", "--as-of", "2026-13-01", "--db", str(world_db)])
    assert code == 2
    assert "'2026-13-01'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# chart builders and the Overview panel
# ---------------------------------------------------------------------------------------
def test_forecast_and_backtest_charts_carry_the_numbers(tiny: Store) -> None:
    from dashboard.charts_forecast import backtest_chart, coverage_chart, forecast_chart

    result = forecast.forecast_cash(tiny, AS_OF, n_paths=20, include_new=False)
    fig = forecast_chart(result.weeks)
    bars = [t for t in fig.data if t.type == "bar"]
    assert bars[0].name == "Open invoices (P50)"
    naive = [t for t in fig.data if t.name == "Naive run-rate (last 13 weeks)"]
    assert len(naive) == 1 and list(naive[0].y) == result.weeks["run_rate"].to_list()
    assert list(bars[0].y)[1] == pytest.approx(1000.0)
    assert sum(bars[0].y) == pytest.approx(3000.0)
    table = pl.DataFrame(
        {"horizon": [1, 2], "wape_forecast": [0.1, 0.2], "wape_last_13_weeks": [0.3, 0.3],
         "wape_due_dates": [0.4, 0.5], "coverage_80": [0.8, 0.75]}
    )
    fig = backtest_chart(table)
    assert [t.name for t in fig.data][:3] == [
        "Forecast (P50)", "Naive: last 13 weeks repeated", "Naive: due dates at face value",
    ]
    # error and interval coverage are two charts: a coverage bar on a second axis read as 80% error
    assert len(fig.data) == 3 and fig.layout.yaxis.tickformat == ".0%" and "yaxis2" not in fig.layout.to_plotly_json()
    coverage = coverage_chart(table)
    assert list(coverage.data[0].y) == [0.8, 0.75] and coverage.layout.yaxis.range == (0, 1)
    assert any(shape.y0 == 0.8 for shape in coverage.layout.shapes)  # the 80% it should hold


def test_a_partial_forecast_week_says_how_many_days_it_has() -> None:
    from dashboard.charts_forecast import forecast_chart, forecast_weeks

    weeks = pl.DataFrame({
        "week_start": [date(2026, 10, 1), date(2026, 10, 5)], "week_end": [date(2026, 10, 4), date(2026, 10, 11)],
        **{c: [1.0, 2.0] for c in ("p10", "p50", "p90", "new_p50", "total_p10", "total_p90")},
    })
    assert forecast_weeks(weeks) == ["1–4 Oct 2026 (4 days)", "5–11 Oct 2026"]
    bars = [t for t in forecast_chart(weeks).data if t.type == "bar"]
    assert list(bars[0].x) == ["1–4 Oct 2026 (4 days)", "5–11 Oct 2026"]


def test_conformal_band_by_hand() -> None:
    # 9 past ratios actual / forecast, off by 1.0, 1.1, ... 1.8 times, alternately above and below.
    # The (n+1)·80% = 8th smallest "times off" is 1.7: a forecast of 1,000 gets 1,000 / 1.7 .. 1,700.
    ratios = np.array([1.0, 1.1, 1 / 1.2, 1.3, 1 / 1.4, 1.5, 1 / 1.6, 1.7, 1 / 1.8])
    assert forecast.conformal_ratio_band(ratios) == pytest.approx((1 / 1.7, 1.7))
    # Every past forecast too low (ratios 1.1 .. 1.9): the band still reaches below the point, as
    # far as it reaches above — the next miss can be the other way (a shock's end).
    assert forecast.conformal_ratio_band(np.arange(11, 20) / 10) == pytest.approx((1 / 1.8, 1.8))
    # Interpolated in log when (n+1)·80% is not whole: 14 ratios 1.1 .. 2.4, the 12th smallest, 2.2;
    # 13 ratios 1.1 .. 2.3, rank 11.2: 2.1 × (2.2 / 2.1) ** 0.2
    assert forecast.conformal_ratio_band(np.arange(11, 25) / 10)[1] == pytest.approx(2.2)
    assert forecast.conformal_ratio_band(np.arange(11, 24) / 10)[1] == pytest.approx(2.1 * (2.2 / 2.1) ** 0.2)
    # No cash where some was forecast is infinitely off: when the rank falls on such a week the
    # band runs from zero to the largest ratio seen.
    assert forecast.conformal_ratio_band(np.array([0.0, 0.0] + [1.1] * 6 + [1.3])) == pytest.approx((0.0, 1.3))
    assert forecast.conformal_ratio_band(np.array([0.0] + [1.1] * 8)) == pytest.approx((1 / 1.1, 1.1))


def test_a_band_is_calibrated_only_on_forecasts_whose_week_had_ended() -> None:
    """The band of a forecast made on 2025-06-01 uses past forecasts' errors whose week ended by
    then — never its own outcome or a later one."""
    runs = pl.DataFrame({
        "as_of": [date(2025, 1, 5) + timedelta(days=7 * i) for i in range(30)],
        "horizon": [1] * 30,
        "week_end": [date(2025, 1, 12) + timedelta(days=7 * i) for i in range(30)],
        "actual": [1000.0 + 10 * i for i in range(30)],
        "p50": [1000.0] * 30,
    })
    errors = forecast.band_errors(runs, date(2025, 6, 1), weeks=1)
    # week ends 2025-01-12 .. 2025-06-01 (21 of them); none later; the 13 most recent calibrate
    assert len(errors[1]) == forecast.BAND_ERRORS == 13
    assert errors[1].min() == pytest.approx(1.08) and errors[1].max() == pytest.approx(1.2)
    low, high, used = forecast.calibrated_band(np.array([500.0]), errors)
    # every one of them was too low, yet the band reaches below the point as far as above it
    assert used[0] == 13 and low[0] == pytest.approx(500.0 * 500.0 / high[0]) and 500.0 / 1.2 <= low[0] < 500.0
    assert 500.0 < high[0] <= 600.0


def test_the_blend_weight_is_chosen_on_earlier_forecasts_by_hand() -> None:
    """Ten past forecasts at horizon 1 where the actual was always 1,000: our model said 1,200,
    the run-rate 700. Absolute error of w·1,200 + (1−w)·700 = |500w − 300|: smallest at w = 0.6.
    A forecast whose week had not ended by the as-of date is not used, and with no judged
    forecast yet the blend is our model alone."""
    runs = pl.DataFrame({
        "as_of": [date(2025, 1, 5) + timedelta(days=7 * i) for i in range(12)],
        "horizon": [1] * 12,
        "week_end": [date(2025, 1, 12) + timedelta(days=7 * i) for i in range(12)],
        "actual": [1000.0] * 10 + [5000.0, 5000.0],
        "p50": [1200.0] * 12,
        "last_13_weeks": [700.0] * 12,
    })
    as_of = date(2025, 3, 16)  # the 10th forecast's week (ending 03-16) is known; the 11th's (03-23) is not
    plain = runs.with_columns(model_point=pl.col("p50"))  # our model with no level correction
    assert forecast.combination_weights(plain, as_of, weeks=1).tolist() == [0.6]
    assert forecast.combination_weights(plain, date(2025, 1, 5), weeks=1).tolist() == [1.0]
    # rolling: each origin's weight comes from the origins before it only; before 8 past
    # forecasts are judged our model's level is not corrected
    blended = forecast.blend_runs(runs, weeks=1)
    assert blended["weight"][0] == 1.0 and blended["point"][0] == pytest.approx(1200.0)
    assert blended["level"][:8].to_list() == [1.0] * 8
    # the band is calibrated on the errors of that blend: ratios actual / point
    errors = forecast.band_errors(blended, date(2025, 4, 6), weeks=1)
    assert len(errors[1]) == 12 and errors[1].max() <= 5000.0 / 900.0 + 1e-9
    note = forecast.blend_note(np.array([0.6]))
    assert "blend of our pay-date model (60%" in note and "naive run-rate" in note
    assert "run-rate alone" in forecast.blend_note(np.array([0.0, 0.0]))


def test_our_models_level_is_corrected_on_its_own_recent_forecasts_by_hand() -> None:
    """15 past forecasts at horizon 1 of 800 where 1,000 came in, the first two 5,000: the last
    13 judged say actual / forecast = 1.25, shrunk to 1.25 ** 0.75. The blend then chooses
    between the corrected model and the run-rate, and the note says by how much it scaled."""
    runs = pl.DataFrame({
        "as_of": [date(2025, 1, 5) + timedelta(days=7 * i) for i in range(16)],
        "horizon": [1] * 16,
        "week_end": [date(2025, 1, 12) + timedelta(days=7 * i) for i in range(16)],
        "actual": [5000.0, 5000.0] + [1000.0] * 14,
        "p50": [800.0] * 16,
        "last_13_weeks": [700.0] * 16,
    })
    last = date(2025, 4, 20)  # 15 forecasts judged: the 13 most recent are all 1,000 / 800
    factor = 1.25 ** forecast.LEVEL_SHRINK
    assert forecast.level_factors(runs, last, weeks=1) == pytest.approx([factor])
    assert forecast.level_factors(runs, date(2025, 2, 23), weeks=1).tolist() == [1.0]  # 7 judged: too few
    blended = forecast.blend_runs(runs, weeks=1).filter(pl.col("as_of") == last)
    assert blended["model_point"][0] == pytest.approx(800.0 * factor)
    # the blend is of the corrected model and the run-rate
    weight = blended["weight"][0]
    assert blended["point"][0] == pytest.approx(weight * 800.0 * factor + (1 - weight) * 700.0)
    note = forecast.blend_note(np.array([1.0]), level=np.array([factor]))
    assert "scaled by 1.18" in note


def _forecast_panel_app() -> None:
    from dashboard import ui
    from dashboard.dates import latest_data_date
    from pages._forecast_panel import render

    store = ui.get_store()
    render(store, latest_data_date(store))


def test_forecast_panel_renders_on_the_sample_store(app_env: Path) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_forecast_panel_app, default_timeout=120).run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.subheader[0].value.startswith("Cash forecast")
    assert at.metric[0].label == "From open invoices, median (USD)"
    assert float(at.metric[0].value.replace(",", "")) > 0
    text = " ".join(m.value for m in at.markdown)
    assert "weighted error" in text and "naive run-rate" in text and "held the actual" in text
    assert any(m.label.startswith("Naive run-rate, 13 weeks") for m in at.metric)
    # the blend's own total is a card of its own (the medians above are our model's parts)
    assert any(m.label.startswith("Forecast in use, 13 weeks") for m in at.metric)
    caption = " ".join(c.value for c in at.caption)
    assert "calibrated on this business's own past forecasts" in caption or "Monte Carlo" in caption
    assert "The forecast in use" in caption or "our pay-date model alone" in caption  # which forecast is in use


def test_the_overview_reads_the_kept_backtest_after_a_restart(
    server_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first visit runs the backtest (Stop button, progress) and keeps it; after the process's
    caches are gone (a restart), the panel shows it from the store without running it again."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("RECOUP_DB", str(server_db))
    first = AppTest.from_function(_forecast_panel_app, default_timeout=180).run()
    assert not first.exception, [e.message for e in first.exception]
    assert [b.key for b in first.button] == ["overview_forecast_stop"]  # it ran here
    with Store(server_db) as s:
        kept = s.query("SELECT created, data_version FROM kept_backtests").rows()
        assert [version for _, version in kept] == [s.loads_version()]
    st.cache_resource.clear()
    st.cache_data.clear()
    again = AppTest.from_function(_forecast_panel_app, default_timeout=60).run()
    assert not again.exception, [e.message for e in again.exception]
    assert not again.button  # read from the store: nothing to stop
    shown = " ".join(m.value for m in again.markdown)
    assert shown == " ".join(m.value for m in first.markdown) and "held the actual" in shown
    assert [m.value for m in again.metric] == [m.value for m in first.metric]
    with Store(server_db) as s:
        assert s.query("SELECT created, data_version FROM kept_backtests").rows() == kept


def test_another_model_plugs_in_through_week_probabilities(tiny: Store) -> None:
    # A stand-in for the risk model: O1 pays in week 1 for sure, O2 half in week 3, half never.
    from dashboard.paydist import WeekProbabilitySampler

    invoices = open_invoices(tiny, AS_OF)  # sorted by invoice_id: O1, O2
    probabilities = np.zeros((2, 14))
    probabilities[0, 0] = 1.0
    probabilities[1, 2] = probabilities[1, 13] = 0.5
    result = forecast.forecast_cash(
        tiny, AS_OF, n_paths=400, invoices=invoices, sampler=WeekProbabilitySampler(probabilities), include_new=False
    )
    assert result.weeks["p50"][0] == pytest.approx(1000.0)
    assert result.weeks["mean"][2] == pytest.approx(1000.0, rel=0.15)  # 0.5 x 2,000
    assert result.later_or_never_p50 in (0.0, 2000.0)
    with pytest.raises(ForecastError, match="summing to 1"):
        WeekProbabilitySampler(np.full((1, 14), 0.5))
