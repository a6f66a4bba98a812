"""Strategy simulator: small hand-worked pieces, common random numbers, assumptions, and the
issue's done-when tests — the simulated effect of a strategy change against the generator's
ground-truth replay of the same world under that strategy.

Ground truth: the world (seed 7, 300 customers, 2024-01 .. 2026-06) is generated under the
default policy A and again under policy B with the same seed; only policy-driven mechanisms
differ. The store holds only what was known on AS_OF (2025-06-29). The measure compared is
the mean days to pay after due (capped at 120; never paid = 120) of the invoices issued in
the 13 weeks after AS_OF, B minus A. The simulator forecasts the same quantity for the next
13 weeks of billing and must hold the replayed difference inside its own 90% interval.

Known limit (see the report): the pull-forward days are measured per lateness band, not per
channel, so a change that only swaps a channel or adds a reminder ten days before due is
under-estimated by about 0.2–0.3 days on this world; those are not among the tests.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dashboard.errors import ForecastError, SimulationError
from dashboard.forecast import window_edges
from dashboard.paydist import DELAY_MIN
from dashboard.simulate import (
    DAYS_TO_PAY_CAP,
    SimulationResult,
    Strategy,
    Touch,
    _restricted_mean,
    _weighted_km,
    current_strategy,
    measure_effects,
    simulate_strategies,
    strategy_from_policy,
)
from dashboard.store import Store
from dashboard.synthetic import (
    CollectionsPolicy,
    TouchStep,
    WorldConfig,
    default_policy,
    generate_world,
    no_touch_policy,
)

AS_OF = date(2025, 6, 29)
CONFIG = WorldConfig(seed=7, n_customers=300, months=30, start=date(2024, 1, 1))


# ---------------------------------------------------------------------------------------
# hand-worked pieces
# ---------------------------------------------------------------------------------------
def test_weighted_kaplan_meier_and_restricted_mean_by_hand() -> None:
    # Two invoices paid at delay 0 (weights 1 and 3) and one at 10 (weight 1): the weighted
    # share paid at 0 is 4/5, so S(0) = 0.2 and S(10) = 0.
    survival = _weighted_km(
        np.zeros(3, dtype=np.int64), np.array([0, 0, 10]), np.ones(3, dtype=bool), np.array([1.0, 3.0, 1.0]), 1, 0.0
    )
    assert survival[0, -DELAY_MIN] == pytest.approx(0.2)
    assert survival[0, 10 - DELAY_MIN] == pytest.approx(0.0)
    # E[min(D, 120)] = 0.8 * 0 + 0.2 * 10 = 2.
    assert _restricted_mean(survival)[0] == pytest.approx(2.0)
    # Never paid: the restricted mean is the cap.
    never = np.ones((1, survival.shape[1]))
    assert _restricted_mean(never)[0] == pytest.approx(DAYS_TO_PAY_CAP)


def test_strategy_validation_quotes_the_bad_value() -> None:
    with pytest.raises(SimulationError, match="'fax'"):
        Strategy(steps=(Touch(1, "fax", "friendly"),)).validate()
    with pytest.raises(SimulationError, match="got -5"):
        Strategy(daily_capacity=-5).validate()
    with pytest.raises(SimulationError, match="'random'"):
        Strategy(priority="random").validate()
    with pytest.raises(SimulationError, match="0.3"):
        Strategy(early_pay_discount={"slow": 0.3}).validate()


def test_strategy_from_policy_keeps_cadence_capacity_and_discounts() -> None:
    policy = CollectionsPolicy(
        steps=(TouchStep(-3, "reminder", "email", "friendly"),), daily_capacity=7, early_pay_discount={"slow": 0.02}
    )
    strategy = strategy_from_policy(policy, name="B")
    assert strategy.steps == (Touch(-3, "email", "friendly", "reminder"),)
    assert strategy.daily_capacity == 7
    assert strategy.early_pay_discount == {"slow": 0.02}
    assert len(current_strategy().steps) == len(default_policy().steps)
    assert strategy.assumptions(0.02) == []  # the measured rate: nothing assumed
    assert "2.5%" in strategy_from_policy(
        CollectionsPolicy(early_pay_discount={"slow": 0.025}), name="B"
    ).assumptions(0.02)[0]


# ---------------------------------------------------------------------------------------
# the generator world, known up to AS_OF
# ---------------------------------------------------------------------------------------
def known_on(frames: dict[str, pl.DataFrame], day: date) -> dict[str, pl.DataFrame]:
    """The extracts as they would have been on ``day``: nothing dated after it."""
    disputes = frames["disputes"].filter(pl.col("opened_date") <= day)
    resolved = pl.col("resolved_date") <= day
    return {
        "customers": frames["customers"],
        "invoices": frames["invoices"].filter(pl.col("invoice_date") <= day),
        "payments": frames["payments"].filter(pl.col("payment_date") <= day),
        "adjustments": frames["adjustments"].filter(pl.col("adjustment_date") <= day),
        "disputes": disputes.with_columns(
            pl.when(resolved).then(pl.col("resolved_date")).alias("resolved_date"),
            pl.when(resolved).then(pl.col("resolution")).alias("resolution"),
        ),
        "contacts": frames["contacts"].filter(pl.col("ts").dt.date() <= day),
        "notes": frames["notes"].filter(pl.col("ts").dt.date() <= day),
        "fx_rates": frames["fx_rates"].filter(pl.col("date") <= day),
    }


def replayed_days_to_pay(policy: CollectionsPolicy) -> tuple[float, int]:
    """Ground truth: mean capped days to pay of invoices issued in the 13 weeks after AS_OF."""
    world = generate_world(CONFIG, policy)
    truth = world.truth["truth_invoices"].join(
        world.frames["invoices"].select("invoice_id", "invoice_date", "due_date"), on="invoice_id"
    )
    cohort = truth.filter(
        pl.col("is_invoice")
        & pl.col("needs_payment")
        & (pl.col("invoice_date") > AS_OF)
        & (pl.col("invoice_date") <= AS_OF + timedelta(days=91))
    )
    days = cohort.select(
        pl.when(pl.col("latent_pay_date").is_null())
        .then(DAYS_TO_PAY_CAP)
        .otherwise((pl.col("latent_pay_date") - pl.col("due_date")).dt.total_days().clip(upper_bound=DAYS_TO_PAY_CAP))
    ).to_series()
    return float(days.mean()), cohort.height


@pytest.fixture(scope="module")
def world_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    from dashboard.ingest import load_world

    world = generate_world(CONFIG, default_policy())
    path: Path = tmp_path_factory.mktemp("simulate") / "world.duckdb"
    store = Store(path)
    load_world(store, known_on(world.frames, AS_OF))
    yield store
    store.close()


@pytest.fixture(scope="module")
def effects(world_store: Store):  # noqa: ANN201
    return measure_effects(world_store, AS_OF, strategy_a=current_strategy())


@pytest.fixture(scope="module")
def truth_a() -> float:
    return replayed_days_to_pay(default_policy())[0]


def _check_against_replay(world_store: Store, effects, truth_a: float, policy: CollectionsPolicy) -> None:  # noqa: ANN001
    truth_b, cohort = replayed_days_to_pay(policy)
    replayed = truth_b - truth_a
    result = simulate_strategies(world_store, AS_OF, strategy_from_policy(policy), n_paths=400, effects=effects)
    low, mid, high = result.effect("days_to_pay_new")
    print(
        f"{policy.name}: replayed effect {replayed:+.2f} days on {cohort} invoices; "
        f"simulated {mid:+.2f} (90% interval {low:+.2f} .. {high:+.2f})"
    )
    assert low <= replayed <= high
    # And it is a real effect, not an interval so wide it says nothing.
    assert high - low < max(2.0, abs(mid))


def test_no_touches_against_replay(world_store: Store, effects, truth_a: float) -> None:  # noqa: ANN001
    _check_against_replay(world_store, effects, truth_a, no_touch_policy())


def test_later_first_touch_against_replay(world_store: Store, effects, truth_a: float) -> None:  # noqa: ANN001
    # Cadence change: drop the two reminders around the due date, start a week late.
    later = CollectionsPolicy(steps=default_policy().steps[2:], name="start_a_week_late")
    _check_against_replay(world_store, effects, truth_a, later)


def test_early_payment_discount_against_replay(world_store: Store, effects, truth_a: float) -> None:  # noqa: ANN001
    # 2/10 offered to every segment (the generator names its classes; "all" covers ours).
    truth_b, cohort = replayed_days_to_pay(
        CollectionsPolicy(
            steps=default_policy().steps,
            early_pay_discount=dict.fromkeys(("prompt", "on_time", "slow", "chronic_late", "disputer"), 0.02),
            name="discount_2_10",
        )
    )
    strategy = dataclasses.replace(current_strategy(), name="discount_2_10", early_pay_discount={"all": 0.02})
    result = simulate_strategies(world_store, AS_OF, strategy, n_paths=400, effects=effects)
    low, mid, high = result.effect("days_to_pay_new")
    print(f"discount_2_10: replayed {truth_b - truth_a:+.2f} days on {cohort} invoices; simulated {mid:+.2f} ({low:+.2f} .. {high:+.2f})")
    assert low <= truth_b - truth_a <= high
    assert result.effect("discount_cost")[1] > 0
    assert not result.assumptions  # 2% is the measured rate: nothing assumed


def test_lower_daily_capacity_against_replay(world_store: Store, effects, truth_a: float) -> None:  # noqa: ANN001
    capacity = CollectionsPolicy(steps=default_policy().steps, daily_capacity=8, name="capacity_8")
    _check_against_replay(world_store, effects, truth_a, capacity)


def test_same_strategy_gives_exactly_zero_difference(world_store: Store, effects) -> None:  # noqa: ANN001
    # Common random numbers: A against itself differs by nothing, path by path. Without
    # strategy_a, A is the cadence the contact history shows: B is that same cadence here.
    from dashboard.cadence import observed_strategy

    observed = observed_strategy(world_store, AS_OF).strategy
    result = simulate_strategies(world_store, AS_OF, observed, n_paths=20, effects=effects)
    assert result.strategy_a == observed
    for values in result.paths.values():
        finite = np.isfinite(values).all(axis=1)
        assert np.array_equal(values[finite, 0], values[finite, 1])
    assert result.effect("cash_collected") == (0.0, 0.0, 0.0)


def test_capacity_loop_matches_invoice_loop_and_chunking(world_store: Store, effects) -> None:  # noqa: ANN001
    # A capacity that never binds sends exactly what no capacity sends: the day-by-day loop
    # (used when a capacity is set) and the invoice-by-invoice loop agree path by path, also
    # when two steps land on the same business day (steps 1 and 2 days after due). A path's
    # draws do not depend on how the paths are chunked.
    base = current_strategy()
    a = dataclasses.replace(base, name="doubled", steps=(*base.steps, Touch(2, "email", "friendly")))
    b = dataclasses.replace(a, name="huge_capacity", daily_capacity=10**6)
    result = simulate_strategies(world_store, AS_OF, b, strategy_a=a, n_paths=20, chunk_paths=7, effects=effects)
    assert result.effect("touches")[1] == 0.0 and result.paths["touches"][:, 0].min() > 0
    for values in result.paths.values():
        assert np.array_equal(values[:, 0], values[:, 1], equal_nan=True)
    again = simulate_strategies(world_store, AS_OF, b, strategy_a=a, n_paths=20, chunk_paths=20, effects=effects)
    for metric, values in result.paths.items():
        assert np.array_equal(values, again.paths[metric], equal_nan=True)


def test_simulations_in_parallel_threads_match(world_store: Store, effects) -> None:  # noqa: ANN001
    # Streamlit runs each session in its own thread: two runs at once must not disturb each
    # other (the compiled kernel is shared) and give what one run alone gives.
    from concurrent.futures import ThreadPoolExecutor

    from dashboard.simulate import build_book

    book = build_book(world_store, AS_OF, effects)
    b = dataclasses.replace(current_strategy(), name="capacity_5", daily_capacity=5)

    def run() -> dict[str, np.ndarray]:
        return simulate_strategies(world_store, AS_OF, b, n_paths=20, chunk_paths=5, effects=effects, book=book).paths

    alone = run()
    with ThreadPoolExecutor(2) as pool:
        together = [future.result() for future in [pool.submit(run), pool.submit(run)]]
    for paths in together:
        for metric, values in alone.items():
            assert np.array_equal(values, paths[metric], equal_nan=True)
    assert alone["touches_over_capacity"][:, 1].min() > 0


def test_shared_inputs_give_the_same_effects_book_and_paths(world_store: Store, effects) -> None:  # noqa: ANN001
    # The as-of reads shared with the forecast give the same measured effects and book as
    # reading them here, and so the same simulated paths.
    from dashboard.paydist import read_as_of_inputs
    from dashboard.simulate import build_book

    inputs = read_as_of_inputs(world_store, AS_OF)
    shared = measure_effects(world_store, AS_OF, strategy_a=current_strategy(), inputs=inputs)
    for name in ("response", "pull_mean", "baseline", "discount_take"):
        assert np.array_equal(getattr(shared, name), getattr(effects, name), equal_nan=True)
    book = build_book(world_store, AS_OF, effects)
    shared_book = build_book(world_store, AS_OF, effects, inputs=inputs)
    assert np.array_equal(book.invoice_id, shared_book.invoice_id)
    assert np.array_equal(book.amount, shared_book.amount) and np.array_equal(book.due_day, shared_book.due_day)
    b = dataclasses.replace(current_strategy(), name="capacity_5", daily_capacity=5)
    one = simulate_strategies(world_store, AS_OF, b, n_paths=10, effects=effects, book=book)
    two = simulate_strategies(world_store, AS_OF, b, n_paths=10, effects=shared, book=shared_book)
    for metric, values in one.paths.items():
        assert np.array_equal(values, two.paths[metric], equal_nan=True)
    with pytest.raises(ForecastError, match="2025-06-22"):
        build_book(world_store, AS_OF, effects, inputs=read_as_of_inputs(world_store, AS_OF - timedelta(days=7)))


def test_touches_over_capacity_are_counted_consistently(world_store: Store, effects) -> None:  # noqa: ANN001
    # The kernel stops reading a day once every path is at capacity and counts the touches
    # over it afterwards, from the final payment days (a touch is over capacity when its
    # invoice is unpaid that day and the day's capacity went to touches ahead of it).
    from dashboard.simulate import _plan, build_book

    book = build_book(world_store, AS_OF, effects)
    capacity = 3
    b = dataclasses.replace(current_strategy(), name="capacity_3", daily_capacity=capacity)
    result = simulate_strategies(world_store, AS_OF, b, strategy_a=b, n_paths=10, effects=effects, book=book)
    over = result.paths["touches_over_capacity"][:, 1]
    sent = result.paths["touches"][:, 1]
    assert over.min() > 0 and np.array_equal(result.paths["touches"][:, 0], sent)
    # With capacity c, no day sends more than c: sent <= c x days with touches.
    end_day = 91 + int(book.terms_days.max(initial=0)) + DAYS_TO_PAY_CAP + 1
    plan = _plan(b, book, effects, end_day)
    assert (sent <= capacity * len(plan.day_values)).all()
    # Every touch row is sent, over capacity, or for an invoice already paid that day.
    assert ((sent + over) <= len(plan.touch_invoice)).all()
    # A capacity of zero sends nothing and counts every touch of an unpaid invoice as over.
    zero = dataclasses.replace(b, name="capacity_0", daily_capacity=0)
    none = dataclasses.replace(b, name="no_touches", steps=())
    result = simulate_strategies(world_store, AS_OF, zero, strategy_a=none, n_paths=10, effects=effects, book=book)
    assert result.paths["touches"][:, 1].max() == 0
    assert np.array_equal(result.paths["cash_collected"][:, 0], result.paths["cash_collected"][:, 1])
    assert result.paths["touches_over_capacity"][:, 1].min() > 0


def test_capacity_is_respected_and_outputs_are_complete(world_store: Store, effects) -> None:  # noqa: ANN001
    b = dataclasses.replace(current_strategy(), name="capacity_5", daily_capacity=5)
    result = simulate_strategies(world_store, AS_OF, b, n_paths=40, effects=effects)
    assert result.touches["b_mean"].max() <= 5.0
    assert result.touches["a_mean"].max() > 5.0
    low, mid, high = result.effect("touches_over_capacity")
    assert mid > 0
    # "Touches sent in 13 weeks" is the touches-per-day chart summed: the same 13 weeks.
    assert result.touches["day"].max() == int(window_edges(AS_OF, 13)[-1])
    for column, which in (("a_mean", 0), ("b_mean", 1)):
        assert result.touches[column].sum() == pytest.approx(result.paths["touches"][:, which].mean())
    assert set(result.metrics["metric"]) >= {
        "cash_collected", "overdue_balance_end", "dso_end", "touches", "discount_cost", "write_offs",
    }
    assert set(result.weekly["metric"]) == {"cash_collected", "overdue_balance", "dso"}
    assert result.weekly.filter(pl.col("metric") == "cash_collected").height == 13
    assert not result.assumptions
    assert (result.effects["source"] == "measured").all()


def test_highest_risk_priority_takes_its_scores_from_the_one_scoring_path(world_store: Store, effects) -> None:  # noqa: ANN001
    """Touches ordered by P(late) come from dashboard.scoring with the scorer given explicitly;
    the result says which scorer that was. Here the customer-history baseline (no model)."""
    from dashboard.scoring import scorer_for, scores_for
    from dashboard.simulate import _plan, build_book, with_risk

    scorer = scorer_for(None, store=world_store, as_of=AS_OF, problem="none trained in this test")
    book = build_book(world_store, AS_OF, effects)
    scores = scores_for(world_store, AS_OF, scorer=scorer)
    risky = with_risk(book, scores, source="test")
    by_id = dict(zip(scores["invoice_id"], scores["p_late"], strict=True))
    opened = ~book.is_new
    assert np.allclose(risky.risk[opened], [by_id[i] for i in book.invoice_id[opened]])
    assert np.isfinite(risky.risk).all()
    b = dataclasses.replace(current_strategy(), name="risk_first", daily_capacity=5, priority="highest_risk")
    amount_first = dataclasses.replace(b, name="amount_first", priority="largest_amount")
    result = simulate_strategies(world_store, AS_OF, b, strategy_a=amount_first, n_paths=20, effects=effects,
                                 scorer=scorer)
    assert "customer-history baseline" in result.risk_source and "none trained in this test" in result.risk_source
    assert result.touches["b_mean"].max() <= 5.0
    end_day = 91 + int(book.terms_days.max(initial=0)) + DAYS_TO_PAY_CAP + 1
    plan = _plan(b, risky, effects, end_day)
    # within a day, touches are sent riskiest invoice first
    first = plan.touch_invoice[plan.touch_day == plan.touch_day[0]]
    assert len(first) > 1 and (np.diff(risky.risk[first]) <= 1e-12).all()


def test_hand_set_effect_is_marked_an_assumption(world_store: Store, effects) -> None:  # noqa: ANN001
    sms = dataclasses.replace(
        current_strategy(), name="sms_nudge", steps=(Touch(2, "sms", "friendly"), *current_strategy().steps)
    )
    with pytest.raises(SimulationError, match="'sms'"):
        simulate_strategies(world_store, AS_OF, sms, n_paths=20, effects=effects)
    assumed = dataclasses.replace(sms, assumed_effects={("sms", "friendly"): (0.3, 5.0)})
    result = simulate_strategies(world_store, AS_OF, assumed, n_paths=20, effects=effects)
    assert result.assumptions and "friendly SMS" in result.assumptions[0]
    assert result.metrics["uses_assumptions"].all()
    assert result.weekly["uses_assumptions"].all()
    assert "assumption (sms_nudge)" in result.effects["source"].to_list()
    assert result.to_dict()["assumptions"] == result.assumptions


def test_progress_and_cancel(world_store: Store, effects) -> None:  # noqa: ANN001
    seen: list[float] = []
    simulate_strategies(
        world_store, AS_OF, current_strategy(), n_paths=20, chunk_paths=10, effects=effects,
        progress=lambda f, _s: seen.append(f),
    )
    assert seen[-1] == pytest.approx(1.0)
    with pytest.raises(SimulationError, match="cancelled"):
        simulate_strategies(world_store, AS_OF, current_strategy(), n_paths=20, effects=effects, should_cancel=lambda: True)


# ---------------------------------------------------------------------------------------
# chart builders and the Strategy page panel
# ---------------------------------------------------------------------------------------
def test_simulation_charts_carry_the_numbers(world_store: Store, effects) -> None:  # noqa: ANN001
    from dashboard.charts_forecast import effect_chart, strategy_weekly_chart, touches_chart

    b = dataclasses.replace(current_strategy(), name="capacity_5", daily_capacity=5)
    result = simulate_strategies(world_store, AS_OF, b, n_paths=20, effects=effects)
    fig = strategy_weekly_chart(result.weekly, "cash_collected", names=("current", "capacity_5"))
    medians = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in medians] == ["current", "capacity_5"]
    cash = result.weekly.filter(pl.col("metric") == "cash_collected").sort("week")
    assert list(medians[1].y) == pytest.approx(cash["b_p50"].to_list())
    fig = touches_chart(result.touches)
    assert any(shape.y0 == 5 for shape in fig.layout.shapes)
    days = result.metrics.filter(pl.col("unit") == "days")
    fig = effect_chart(days)
    assert list(fig.data[0].x) == pytest.approx(days["diff_p50"].to_list())


def _simulator_panel_app() -> None:
    from dashboard import ui
    from dashboard.dates import latest_data_date
    from pages._simulator_panel import render

    store = ui.get_store()
    render(store, latest_data_date(store))


def test_simulator_panel_runs_and_shows_measured_vs_assumed(app_env: Path) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_simulator_panel_app, default_timeout=120).run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.subheader[0].value == "Strategy simulator"
    assert any("press Run simulation" in i.value for i in at.info)
    at.checkbox(key="strategy_sim_limit").check().run()
    at.number_input(key="strategy_sim_capacity").set_value(10).run()
    at.select_slider(key="strategy_sim_paths").set_value(100).run()
    at.button(key="strategy_sim_run").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("Every effect in this run is measured" in s.value for s in at.success)
    assert any("Measured vs assumed" in m.value for m in at.markdown)
    assert len(at.dataframe) >= 2
    # the run ends in a one-line verdict: B against A on cash, DSO and workload, with intervals
    result = at.session_state["strategy_sim_result"]
    shown = [i.value.replace("\\", "") for i in at.info]
    verdict = next(v for v in shown if v.startswith("**Verdict:**"))
    assert verdict == f"**Verdict:** {result.verdict(currency='USD')}"
    assert "in 13 weeks" in verdict and "DSO at week 13" in verdict and "touches" in verdict
    assert "every effect measured from your contact history" in verdict
    # the simulated DSO starts where it says, and the page says why that is not the Overview's DSO
    from dashboard import metrics
    from dashboard.dates import latest_data_date

    with Store(app_env) as store:
        overview_dso = metrics.compute_kpis(store, latest_data_date(store)).dso
    captions = [c.value.replace("\\", "") for c in at.caption]
    assert result.dso_basis(overview_dso) in captions
    assert f"{result.dso_start:,.1f} days" in result.dso_basis(overview_dso)
    assert f"{overview_dso:,.1f} days" in result.dso_basis(overview_dso)


def _result_with(cash: tuple[float, float, float], dso: tuple[float, float, float], touches: tuple[float, float],
                 assumptions: list[str] | None = None) -> SimulationResult:
    rows = []
    for metric, unit, (low, mid, high), (a, b) in (
        ("cash_collected", "base currency", cash, (1_000_000.0, 1_000_000.0 + cash[1])),
        ("dso_end", "days", dso, (40.0, 40.0 + dso[1])),
        ("touches", "touches", (touches[1] - touches[0] - 5, touches[1] - touches[0], touches[1] - touches[0] + 5),
         touches),
        ("discount_cost", "base currency", (0.0, 0.0, 0.0), (0.0, 0.0)),
    ):
        rows.append({"metric": metric, "label": metric, "unit": unit, "a_low": a, "a_p50": a, "a_high": a,
                     "b_low": b, "b_p50": b, "b_high": b, "diff_low": low, "diff_p50": mid, "diff_high": high,
                     "uses_assumptions": bool(assumptions)})
    return SimulationResult(
        as_of=AS_OF, strategy_a=current_strategy(), strategy_b=current_strategy(), n_paths=100, interval=0.9,
        metrics=pl.DataFrame(rows), weekly=pl.DataFrame(), touches=pl.DataFrame(), effects=pl.DataFrame(),
        assumptions=assumptions or [], paths={},
    )


def test_the_verdict_says_b_against_a_in_one_line() -> None:
    result = _result_with(cash=(110_000.0, 157_000.0, 220_000.0), dso=(-6.1, -4.4, -2.8), touches=(8_000.0, 9_240.0))
    assert result.verdict(currency="USD") == (
        "B collects 157k USD more than A in 13 weeks (110k to 220k USD, 90% interval), DSO at week 13 −4.4 days "
        "(−6.1 to −2.8), 1,240 more touches (+16%); every effect measured from your contact history."
    )
    # an interval across zero is no verdict for either: it says so; typed numbers are named
    even = _result_with(cash=(-20_000.0, 5_000.0, 30_000.0), dso=(-0.5, 0.1, 0.6), touches=(8_000.0, 8_000.0),
                        assumptions=["B: the answer to a friendly SMS is set by hand to 30%"])
    assert even.verdict(currency="EUR") == (
        "B and A collect about the same in 13 weeks (B − A between −20k EUR and +30k EUR, 90% interval), DSO at "
        "week 13 +0.1 days (−0.5 to +0.6), the same number of touches; uses 1 number(s) typed by hand (marked "
        "below as assumptions)."
    )
    table = result.outcomes_table(currency="USD")
    assert table.row(0, named=True)["B − A (median)"] == "+157,000.00 USD"
    assert table.row(1, named=True)["B − A, 90% interval"] == "−6.1 days to −2.8 days"


def test_touch_rows_by_hand() -> None:
    # As of a Sunday (day 6 is a Saturday, day 7 a Sunday: both move to Monday, day 8).
    # Steps 0 and +2 days from due; invoices in priority order i2, i0, i1 (earliest due first).
    from dashboard import _simulate_kernels as kernels

    due = np.array([5, 6, 2, 3])
    issue = np.array([-10, -10, -10, 9])  # i3 is issued on day 9: its touches (days 3, 5) come before that
    is_new = np.array([True, False, False, False])
    steps = (np.zeros(1, dtype=np.int64), np.array([0, 2]))

    def plan(horizon_end: int) -> tuple[np.ndarray, ...]:
        return kernels.plan_rows(
            due, issue, is_new, steps[0].repeat(4), np.ones(4, dtype=np.bool_), np.array([2, 0, 1, 3]),
            np.array([0, 2]), steps[1], 6, 30, horizon_end, DAYS_TO_PAY_CAP,
        )

    def rows(horizon_end: int) -> list[tuple[int, int, int]]:
        inv, day, step, _, _ = plan(horizon_end)
        return list(zip(inv.tolist(), day.tolist(), step.tolist(), strict=True))

    # (invoice, day, step): by day, then priority, then step; weekends moved to Monday.
    assert rows(-1) == [(2, 2, 0), (2, 4, 1), (0, 5, 0), (0, 8, 1), (1, 8, 0), (1, 8, 1)]
    # Touches after the horizon (day 4) stay only for a new invoice inside its days-to-pay cap.
    assert rows(4) == [(2, 2, 0), (2, 4, 1), (0, 5, 0), (0, 8, 1)]
    # The send days and each one's first row (and the row count).
    assert [a.tolist() for a in plan(-1)[3:]] == [[2, 4, 5, 8], [0, 1, 2, 3, 6]]
    assert [a.tolist() for a in plan(4)[3:]] == [[2, 4, 5, 8], [0, 1, 2, 3, 4]]

    # The rows as the simulation kernel reads them. Step 0 has a measured effect, (channel,
    # tone) cell 3; step 1 a hand-set one, column 40. Invoice 1 is in lateness band 1, the
    # others in band 0: a measured touch's column is band × 15 + cell. Invoice 1's two touches
    # on day 8: the first is sent but only the last decides (stored as -1 - column).
    inv, day, step, _, day_starts = plan(-1)

    def layout(capped: bool) -> dict[str, list[int]]:
        out = [np.empty(6, dtype=np.int32) for _ in range(6)]
        starts = np.empty(5, dtype=np.int64)
        kernels.touch_layout(
            inv, day, step, day_starts, np.arange(4), np.array([0, 1, 0, 0]), np.array([0, 1]), 2, np.array([-4, 40]),
            15, capped, 0, 0, *out, starts,
        )
        names = ("invoice", "day", "key", "column", "by_invoice", "day_index")
        return {**{name: a.tolist() for name, a in zip(names, out, strict=True)}, "starts": starts.tolist()}

    # Without a capacity: grouped by invoice (0, 1, 2), each invoice's days in order; the
    # draw key is invoice × 2 + slot.
    assert layout(False) == {
        "invoice": [0, 0, 1, 1, 2, 2], "day": [5, 8, 8, 8, 2, 4], "key": [0, 1, 2, 3, 4, 5],
        "column": [3, 40, -19, 40, 3, 40], "by_invoice": [0, 1, 2, 3, 4, 5], "day_index": [2, 3, 3, 3, 0, 1],
        "starts": [0, 2, 4, 6, 6],
    }
    # With one: rows stay in send order; by_invoice lists them grouped by invoice.
    assert layout(True) == {
        "invoice": [2, 2, 0, 0, 1, 1], "day": [2, 4, 5, 8, 8, 8], "key": [4, 5, 0, 1, 2, 3],
        "column": [3, 40, 3, 40, -19, 40], "by_invoice": [2, 3, 4, 5, 0, 1], "day_index": [2, 3, 3, 3, 0, 1],
        "starts": [0, 2, 4, 6, 6],
    }


def test_weekly_balances_by_hand() -> None:
    # The compiled kernel itself, on three invoices and one path, as of a Sunday (week ends on
    # days 7, 14, ..., 91), with no touches and no-touch delay tables that hold one value each:
    #   I0 open since before as_of, due day -5, 100, paid day 20 (week 3);
    #   I1 issued day 10, due day 40, 200, paid day 50 (week 8);
    #   I2 due day -300, 50, never paid: overdue all along, written off (240+ days past due).
    # Plan A has no capacity, plan B a capacity of 0 (its send loop, with nothing to send):
    # both must give the same outcomes.
    from dashboard import _simulate_kernels as kernels
    from dashboard.paydist import NEVER

    edges = np.arange(7, 92, 7, dtype=np.int64)
    tables = np.empty((1, 3, 512), dtype=np.int32)
    tables[0, 0], tables[0, 1], tables[0, 2] = 25, 10, NEVER  # I0: -5 + 25 = 20; I1: 40 + 10 = 50
    issue, due = np.array([-305, 10, -300 - 30]), np.array([-5, 40, -300])
    two = lambda a: np.stack([a, a])  # noqa: E731 - both plans alike
    issued_week = np.searchsorted(edges, issue, side="left")
    none_i, none_t = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
    metrics, weekly = np.zeros((1, 2, kernels.N_METRICS)), np.zeros((1, 2, 3, 13))
    kernels.simulate_chunk(
        kernels.stream_keys(np.random.default_rng(0), 1), np.zeros(1, dtype=np.int64), tables,
        np.arange(3, dtype=np.int64), np.arange(3, dtype=np.int64), np.zeros(3, dtype=np.int64), issue,
        np.maximum(issue, 1), np.zeros((1, 1)), 0.02, NEVER, two(due), np.zeros((2, 3)),
        two(np.array([100.0, 200.0, 50.0])), two(np.array([False, True, False])),
        two(due + 240 <= edges[-1]), two(np.maximum(issued_week, np.searchsorted(edges, due, side="right"))),
        issued_week, np.full((2, 13), 1000.0), edges, none_t, none_t, none_t, none_t, none_i,
        np.zeros(1, dtype=np.int64), np.zeros((2, 2), dtype=np.int64), np.zeros((2, 4), dtype=np.int64), none_t,
        none_t, np.array([-1, 0]), np.zeros((1, 1), dtype=np.uint64), np.zeros((1, 1)), np.zeros(3, dtype=np.bool_),
        DAYS_TO_PAY_CAP, 240, 91, 1, np.empty((1, 6), dtype=np.int32), np.empty((1, 6), dtype=np.bool_), metrics, weekly,
        np.zeros((1, 2, 92), dtype=np.int64),
    )
    for which in (0, 1):
        cash, overdue, dso = weekly[0, which]
        assert cash[2] == 100.0 and cash[7] == 200.0 and cash.sum() == 300.0
        assert overdue.tolist() == [150, 150, 50, 50, 50, 250, 250, 50, 50, 50, 50, 50, 50]
        # Open AR: I0 in weeks 1-2, I1 from its issue (week 2) to its payment (week 8), I2 all along.
        open_ar = np.array([150, 350, 250, 250, 250, 250, 250, 50, 50, 50, 50, 50, 50])
        assert dso == pytest.approx(open_ar / 1000.0 * 91)
        cash_total, days_new, overdue_end, dso_end, touches, over, discount, write_offs = metrics[0, which]
        assert (cash_total, days_new, overdue_end, touches, over, discount, write_offs) == (300, 10, 50, 0, 0, 0, 50)
        assert dso_end == pytest.approx(50 / 1000.0 * 91)


def test_compile_all_covers_the_types_the_product_passes(world_store: Store) -> None:
    # The server compiles (or loads) every kernel in the background when it starts; that only
    # helps if the product's own calls then need no other compiled version of any kernel.
    from dashboard import _simulate_kernels as kernels
    from dashboard.forecast import forecast_cash

    names = [
        "window_cash", "plan_rows", "touch_layout", "delay_tables", "bootstrap_cell_counts",
        "inverse_probability_weights", "weighted_counts", "simulate_chunk",
    ]
    kernels.compile_all()
    compiled = {name: set(getattr(kernels, name).signatures) for name in names}
    assert all(compiled.values())
    forecast_cash(world_store, AS_OF, n_paths=10)
    capped = dataclasses.replace(current_strategy(), name="capacity_5", daily_capacity=5)
    simulate_strategies(world_store, AS_OF, capped, n_paths=10)
    assert {name: set(getattr(kernels, name).signatures) for name in names} == compiled
