"""The product judged on data it was not built around, next to naive baselines.

- the public IBM accounts-receivable sample (tests/fixtures/public, 2,466 invoices of 100
  customers) and its Yellevate derivative (the same invoices re-dated: not independent);
- the second sample world (dashboard.synthetic.shocks: no payment runs, heavy tails, weekly
  rhythm, shocks across customers, churn, credit notes, partial payments);
- short histories: six months trains, two months scores with the labelled baseline.

At each as-of date the store is trained with only the data known then (dashboard.evaluation),
the card chooses the scorer, and the open invoices not yet due are judged once their outcomes
are known. Each test prints its figures (``pytest -s``); bench/RESULTS.md quotes them. Nothing
is tuned on these stores: where a target is missed the test says so and checks that the product
says so too.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from dashboard.dates import month_ends
from dashboard.errors import TrainingDataError
from dashboard.evaluation import evaluate_forecast, evaluate_risk
from dashboard.scoring import score_invoices, scorer_for
from dashboard.store import Store
from dashboard.training import TrainingConfig, train_model
from tests.rows import insert_rows

PUBLIC = Path(__file__).resolve().parent / "fixtures" / "public"
IBM = PUBLIC / "ibm_watson__WA_Fn-UseC_-Accounts-Receivable.csv"
YELLEVATE = PUBLIC / "yellevate__Yellevate Invoices.csv"
MONTH_ENDS_2013 = [date(2013, m, d) for m, d in ((4, 30), (5, 31), (6, 30), (7, 31), (8, 31), (9, 30), (10, 31))]
# IBM's calibration is judged on every month end from the first with six months of invoices
# (2012-06-30: the product trains from about six months) to the last whose invoices not yet due
# have known outcomes (2013-11-30; payments run to 2014-01-09). With 30-day terms an invoice is
# open and not yet due at one month end only, so each added month end adds other invoices: ~80
# a month, and the noise floor of ECE falls as 1/sqrt(rows). The AUC rule is judged at each date.
MONTH_ENDS_IBM = month_ends(date(2013, 11, 30), 18)


def _loaded(tmp_path_factory: pytest.TempPathFactory, path: Path) -> Path:
    from dashboard.ingest import load_file

    db = tmp_path_factory.mktemp("public") / "store.duckdb"
    with Store(db) as store:
        load_file(store, path)
    return db


@pytest.fixture(scope="module")
def ibm_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _loaded(tmp_path_factory, IBM)


@pytest.fixture(scope="module")
def second_world_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dashboard.ingest import load_world
    from dashboard.synthetic.shocks import ShockWorldConfig, generate_shock_world

    world = generate_shock_world(ShockWorldConfig())
    db = tmp_path_factory.mktemp("second") / "store.duckdb"
    with Store(db) as store:
        load_world(store, world.frames, name="second-world")
    return db


def _print_and_check_risk(label: str, evaluation) -> dict:  # noqa: ANN001
    pooled = evaluation.pooled()
    print(f"\n{label}\n{evaluation.summary()}")
    assert evaluation.per_date.height >= 6
    # the done-when rule, at every date: the product's scores beat the customer-history
    # baseline by the margin, or the product chose the baseline and said why
    assert evaluation.per_date["meets"].all(), evaluation.per_date
    baseline_dates = evaluation.per_date.filter(pl.col("scorer") == "baseline")
    assert baseline_dates["why"].str.contains("baseline").all()
    return pooled


# ---------------------------------------------------------------------------------------------
# public data
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "dates"), [
    ("IBM", MONTH_ENDS_IBM),
    ("Yellevate (the IBM invoices re-dated by +8 years)", [d.replace(year=2021) for d in MONTH_ENDS_2013]),
])
def test_public_dataset_scores_are_never_worse_than_the_customer_history_baseline(
    name: str, dates: list[date], ibm_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    db = ibm_db if name == "IBM" else _loaded(tmp_path_factory, YELLEVATE)
    with Store(db) as store:
        evaluation = evaluate_risk(store, dates)
    pooled = _print_and_check_risk(f"{name}: p_late on open invoices not yet due, {len(dates)} month ends", evaluation)
    assert set(MONTH_ENDS_2013) <= {d.replace(year=2013) for d in dates}
    # P(late) is the baseline's, its level refitted at each date on the last 8 weeks' outcomes, the
    # freshest weighing most, 80% of the shift applied (dashboard.recalibration). On IBM's 18 month
    # ends (1,480 invoices) the 0.03 target is met (measured 0.022; a perfectly calibrated score
    # would show ~0.023 on these rows, printed as the noise floor). Yellevate is the same invoices
    # re-dated, judged at the 7 month ends only (its loader is what it adds): there ~80 invoices a
    # month give a noise floor of ~0.04, at or above the target, so it is checked against gross
    # miscalibration only (measured 0.035).
    assert pooled["ece_product"] < 2 * pooled["ece_noise_floor"]
    if name == "IBM":
        assert pooled["ece_product"] <= 0.03


def test_public_dataset_forecast_beats_the_run_rate_with_a_band_that_holds(ibm_db: Path) -> None:
    with Store(ibm_db) as store:
        evaluation = evaluate_forecast(store)
    figures = evaluation.figures()
    print(f"\nIBM forecast: {evaluation.summary()}")
    assert figures["dates"] == 13
    # Met: 15.3% vs 16.6% (our model alone 15.9%; Monte Carlo seeds 1000 / 2000: 15.0%, 15.4%). The
    # forecast in use blends our model, its level corrected on its own last 13 forecasts at each
    # week ahead, with the run-rate by weights chosen on earlier forecasts; without the level
    # correction it was met by a hair (16.56%).
    assert figures["wape_4w"] < figures["wape_4w_run_rate"]
    assert 0.70 <= figures["coverage"] <= 0.90


# ---------------------------------------------------------------------------------------------
# the second world
# ---------------------------------------------------------------------------------------------
def test_second_world_scores_are_never_worse_than_the_customer_history_baseline(second_world_db: Path) -> None:
    dates = [date(2023, 6, 30), date(2023, 8, 31), date(2023, 10, 31), date(2023, 12, 31), date(2024, 2, 29),
             date(2024, 3, 31)]
    with Store(second_world_db) as store:
        evaluation = evaluate_risk(store, dates)
    pooled = _print_and_check_risk("Second world: p_late on open invoices not yet due, 6 dates", evaluation)
    # Shocks that hit every customer move the share paid late between the months a map is fitted
    # on (months before the held-out window) and the months it scores. Refitting the map's level
    # on the last 8 weeks' outcomes known at each date, the freshest weighing most, and applying
    # 80% of that shift (dashboard.recalibration; chosen on other seeds of this world and on the
    # generator's world, bench/bench_calibration_window.py) follows a shock once its outcomes are
    # known; nothing known at the as-of date foretells a shock's start or end, which is what is
    # left: measured 0.065 against a noise floor of 0.019, target missed (bench/RESULTS.md has the
    # figures by date).
    met = pooled["ece_product"] <= 0.03
    print(f"ECE {pooled['ece_product']:.3f} (stored map alone {pooled['ece_stored_map']:.3f}) against a noise floor of "
          f"{pooled['ece_noise_floor']:.3f}: target 0.03 {'met' if met else 'missed'}")
    assert pooled["ece_product"] < pooled["ece_stored_map"]  # the recent outcomes moved P(late) the right way
    assert pooled["ece_product"] < 0.1  # no gross miscalibration: under 10 points on average


def test_second_world_forecast_says_when_it_loses_to_the_run_rate(second_world_db: Path) -> None:
    with Store(second_world_db) as store:
        evaluation = evaluate_forecast(store)
    figures = evaluation.figures()
    print(f"\nSecond world forecast: {evaluation.summary()}")
    assert figures["dates"] == 13
    # The band is met: split-conformal on how many times off, either way, the forecast in use was
    # over its last 13 weekly forecasts, it holds the actual in 70-90% of backtest weeks.
    assert 0.70 <= figures["coverage"] <= 0.90
    # The WAPE bar is not met (21.8% vs 20.9%; Monte Carlo seeds 1000 / 2000: 21.7%, 21.7%). Our pay
    # dates come from past behaviour: when a shock delays every customer's payments for weeks, our
    # model keeps expecting the piled-up invoices to pay and over-forecasts; after it, curves that
    # learned the slow weeks under-forecast. Correcting our model's level on its last 13 forecasts
    # and blending in the run-rate by weights chosen on earlier forecasts recovers most of the gap
    # (printed: our model alone vs the blend), not all of it - and the page says so (the warning in
    # show_backtest). On the nine seeds of this world we do not report (1-6, 8-10) the forecast in
    # use beats the run-rate on each (bench/RESULTS.md); this seed is the hard draw.
    print(f"WAPE weeks 1-4 {figures['wape_4w']:.1%} vs run-rate {figures['wape_4w_run_rate']:.1%}: target missed; "
          f"our model alone {figures['wape_4w_model']:.1%}")
    assert not evaluation.backtest.beats_run_rate(4)
    assert figures["wape_4w"] < figures["wape_4w_model"]  # the blend moved the right way


def test_the_second_world_is_built_on_its_own_mechanisms() -> None:
    from dashboard.synthetic.shocks import ShockWorldConfig, generate_shock_world

    world = generate_shock_world(ShockWorldConfig(n_customers=120, months=24))
    invoices, payments = world.frames["invoices"], world.frames["payments"]
    assert world.frames.keys() == {"customers", "invoices", "payments", "adjustments"}
    # no month-end runs: hardly any more payments on a month's last business days than others
    last_days = payments.filter(pl.col("payment_date").dt.month_end() - pl.col("payment_date") <= pl.duration(days=2))
    assert last_days.height / payments.height < 0.2
    # weekly rhythm: AP weekdays (Tue/Thu/Fri) carry most payments; no invoices at weekends
    weekday = payments["payment_date"].dt.weekday()
    assert weekday.is_in([2, 4, 5]).mean() > 0.6
    assert not invoices["invoice_date"].dt.weekday().is_in([6, 7]).any()
    # partial payments, credit notes and churn
    assert payments.group_by("invoice_id").len()["len"].max() >= 2
    assert (world.frames["adjustments"]["kind"] == "credit_note").sum() > 0
    customers = world.truth["truth_customers"]
    assert (customers["last_invoice_week"] < customers["last_invoice_week"].max()).any()
    assert world.truth["truth_shocks"].height == 3


# ---------------------------------------------------------------------------------------------
# short histories and the reasons a model cannot be trained
# ---------------------------------------------------------------------------------------------
def _world_store(tmp_path: Path, months: int) -> tuple[Store, date]:
    from dashboard.ingest import load_world
    from dashboard.synthetic import WorldConfig, generate_world

    world = generate_world(WorldConfig(seed=5, n_customers=200, months=months))
    store = Store(tmp_path / f"{months}m.duckdb")
    load_world(store, world.frames)
    return store, world.config.end_date


def test_six_months_of_history_trains_a_model_and_says_how_thin_the_evidence_is(tmp_path: Path) -> None:
    store, _ = _world_store(tmp_path, 6)
    with store:
        card = train_model(store, TrainingConfig()).model.card
    print(f"\n6 months: windows {card['windows']}\nevidence {card['evidence']}\nscoring {card['scoring']['reason']}")
    assert card["windows"]["plan"] == "weekly"
    assert card["evidence"]["strength"] == "thin"
    assert card["hazard"]["interval_target"] > 0.8  # wider intervals on few customers
    assert card["scoring"]["in_use"] in ("model", "baseline") and card["scoring"]["reason"]


def test_two_months_of_history_scores_with_the_labelled_baseline(tmp_path: Path) -> None:
    from dashboard.worklist import build_worklist

    store, end = _world_store(tmp_path, 2)
    with store:
        with pytest.raises(TrainingDataError, match=r"Not enough history.*2\.0 months.*baseline scores") as refusal:
            train_model(store, TrainingConfig())
        scorer = scorer_for(None, store=store, as_of=end, problem=str(refusal.value))
        scores = score_invoices(store, end, scorer=scorer, with_reasons=True)
        result = build_worklist(store, end, scorer=scorer)
    assert scorer.kind == "baseline" and "Not enough history" in scorer.reason
    assert scores.height > 50 and scores["p_late"].is_between(0, 1).all() and scores["p_paid_30d"].is_between(0, 1).all()
    assert (scores["scorer"] == "baseline").all()
    assert scores.filter(pl.col("days_to_due") >= 0)["reasons"].str.contains("customer-history baseline").all()
    assert result.scorer == "baseline" and "customer-history baseline" in result.probability_source


def test_refusals_name_the_real_reason(store: Store) -> None:
    customers = [{"customer_id": f"C{i}", "name": f"C{i}"} for i in range(20)]
    insert_rows(store, "customers", customers)
    invoices = [
        {"invoice_id": f"I{i}-{m}", "customer_id": f"C{i}", "invoice_date": date(2024, m, 1),
         "due_date": date(2024, m, 28), "amount": 100.0, "currency": "USD"}
        for i in range(20) for m in range(1, 11)
    ]
    insert_rows(store, "invoices", invoices)
    with pytest.raises(TrainingDataError, match="had been paid by then: there is no payment behaviour"):
        train_model(store, TrainingConfig(as_of=date(2024, 12, 31)))
    # every invoice paid 40 days late: one class
    insert_rows(store, "payments", [
        {"payment_id": f"P{r['invoice_id']}", "customer_id": r["customer_id"], "invoice_id": r["invoice_id"],
         "payment_date": date(2024, r["due_date"].month, 28).replace(day=28) + (date(2024, 2, 7) - date(2024, 1, 1)),
         "amount": 100.0}
        for r in invoices
    ])
    with pytest.raises(TrainingDataError, match="was late; none was paid on time.*one class"):
        train_model(store, TrainingConfig(as_of=date(2024, 12, 31)))
