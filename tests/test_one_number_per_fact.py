"""Totals that should agree do, or the page says in one line what each counts; probabilities
and model results in words. Each test is one of the disagreements a new user met on the
sample data (Overview vs forecast vs aging, negative buckets, the simulated DSO, the Data page
vs health, a 'high' risk tier at 86% paid within 30 days) or one of the answers they missed."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from dashboard import explain, metrics, vocabulary
from dashboard.dates import latest_data_date
from dashboard.forecast import forecast_cash
from dashboard.store import Store
from dashboard.worklist import build_worklist

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sample(seeded_db_path: Path) -> tuple[Store, date]:
    store = Store(seeded_db_path)
    yield store, latest_data_date(store)
    store.close()


def test_open_ar_the_forecast_and_the_aging_count_the_same_documents(sample: tuple[Store, date]) -> None:
    store, as_of = sample
    kpis = metrics.compute_kpis(store, as_of)
    forecast = forecast_cash(store, as_of, n_paths=50)
    # the forecast collects the invoices owed: the same amount and count as the Overview's split
    assert forecast.open_amount == pytest.approx(kpis.owed_total, abs=0.01)
    assert forecast.open_invoice_count == kpis.owed_count
    # open AR = invoices owed + credits (negative); the open documents are both
    assert kpis.owed_total + kpis.credits_total == pytest.approx(kpis.ar_total, abs=0.01)
    assert kpis.open_invoices == kpis.owed_count + kpis.credit_documents
    assert kpis.credits_total < 0 < kpis.credit_documents  # the sample has credit notes and unapplied cash
    # and the one line the Overview shows says so with those numbers
    note = kpis.open_ar_note()
    assert f"{kpis.ar_total:,.2f} USD" in note and f"{kpis.owed_count:,} invoices" in note
    assert f"{kpis.open_invoices:,} open documents" in note and f"{kpis.credit_documents:,} documents" in note


def test_no_aging_bucket_reads_negative(sample: tuple[Store, date]) -> None:
    store, as_of = sample
    kpis = metrics.compute_kpis(store, as_of)
    net = kpis.aging_frame()
    assert (net["amount"] < 0).any()  # netting credits into their buckets made some negative ("61-90 −2,574.27")
    table = kpis.aging_table()
    buckets = table.filter(pl.col("bucket") != metrics.CREDITS)
    assert (buckets["amount"] >= 0).all() and buckets["bucket"].to_list() == metrics.bucket_labels()
    assert table["bucket"][-1] == metrics.CREDITS and table["amount"][-1] == pytest.approx(kpis.credits_total)
    assert metrics.aging_reconciliation(table, kpis.ar_total)["reconciles"]
    assert int(table["invoices"].sum()) == kpis.open_invoices
    history = metrics.kpi_history(store, as_of, months=6)
    owed = history.select([c for c in history.columns if c.startswith("owed_")])
    assert (owed.min_horizontal() >= 0).all()
    assert (history["ar_total"] - owed.sum_horizontal() - history["credits"]).abs().max() < 0.01


def test_a_risk_tier_agrees_with_the_chance_of_payment_beside_it(sample: tuple[Store, date]) -> None:
    store, as_of = sample
    result = build_worklist(store, as_of)
    # a line's tier comes from its invoice; with one invoice, its chance sits in that tier's band
    cuts = [(0.0, *vocabulary.RISK_TIER_CUTS[0])] + [
        (vocabulary.RISK_TIER_CUTS[i - 1][0], *vocabulary.RISK_TIER_CUTS[i])
        for i in range(1, len(vocabulary.RISK_TIER_CUTS))
    ]
    band = {tier: (low, high) for low, high, tier in cuts}
    lines = result.lines.filter(pl.col("invoice_count") == 1)
    assert lines.height > 0
    for tier, p_paid in lines.select("risk_tier", "p_paid_horizon").iter_rows():
        low, high = band[tier]
        assert low <= 1 - p_paid < high, (tier, p_paid)
    # no line reads "high" while the invoice is very likely to be paid within 30 days
    assert result.lines.filter((pl.col("risk_tier") == "high") & (pl.col("p_paid_horizon") >= 0.65)).is_empty()


def test_the_simulated_dso_starts_from_the_open_invoices_over_91_days_of_sales(sample: tuple[Store, date]) -> None:
    from dashboard.simulate import build_book, current_strategy, dso_on_book, measure_effects

    store, as_of = sample
    effects = measure_effects(store, as_of, strategy_a=current_strategy(), n_boot=2)
    book = build_book(store, as_of, effects)
    sales = store.scalar(
        "SELECT sum(amount_base)::DOUBLE FROM ledger_documents WHERE doc_type = 'invoice' "
        "AND invoice_date > ? AND invoice_date <= ?",
        [as_of - timedelta(days=91), as_of],
    )
    kpis = metrics.compute_kpis(store, as_of)
    # invoices owed (no credits) over the last 91 days of credit sales: not the Overview's month DSO
    assert dso_on_book(book) == pytest.approx(kpis.owed_total / sales * 91, rel=0.01)
    assert abs(dso_on_book(book) - kpis.dso) > 1  # they differ, so the Strategy page says why (test_simulate)


def test_probabilities_in_words() -> None:
    overdue = {
        "invoice_id": "INV-1", "open_amount": 6804.58, "due_date": date(2026, 9, 4), "p_late": 0.9999,
        "p_paid_30d": 0.86, "pay_date_p10": date(2026, 10, 2), "pay_date_p50": date(2026, 10, 12),
        "pay_date_p90": date(2026, 11, 2),
    }
    assert explain.probability_sentence(overdue, as_of=date(2026, 9, 30)) == (
        "INV-1 (6,804.58 USD, due 4 Sep 2026, 26 days past due): the model gives it an 86% chance of being paid "
        "within the next 30 days (about 9 in 10 invoices like it are). It is already late, so what matters is "
        "when it will be paid. Expected pay date: 12 Oct 2026 (8 in 10 between 2 Oct 2026 and 2 Nov 2026)."
    )
    not_due = {**overdue, "due_date": date(2026, 10, 15), "p_late": 0.34, "p_paid_30d": 0.71, "pay_date_p50": None}
    sentence = explain.probability_sentence(not_due, as_of=date(2026, 9, 30))
    assert "due 15 Oct 2026, in 15 days" in sentence and "The chance it is paid after its due date is 34%." in sentence
    assert "unlikely to be paid within the 26 weeks" in sentence


def test_the_model_verdict_comes_from_its_card() -> None:
    card = {"metrics": {
        "not_yet_due": {"model": {"auc": 0.949, "ece": 0.036}, "baseline": {"auc": 0.906, "ece": 0.042}},
        "pay_date": {"p50_mae_days": 6.88, "baseline_p50_mae_days": 8.58},
    }}
    verdict = explain.model_verdict(card)
    assert "better than the naive baseline" in verdict and "AUC 0.949 against 0.906 (+0.043" in verdict
    assert "off by 3.6 points on average, the baseline's by 4.2" in verdict and "miss by 6.9 days" in verdict
    card["metrics"]["not_yet_due"]["model"]["auc"] = 0.904
    assert "no better than the naive baseline" in explain.model_verdict(card)


def test_the_explain_tab_states_the_probability_in_words_and_the_disclaimer_once(app_env: Path) -> None:
    from streamlit.testing.v1 import AppTest

    from dashboard import scoring, ui
    from dashboard.registry import load_active_model

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/risk.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    invoice_id = at.selectbox(key="risk_invoice").value
    with Store(app_env) as store:
        as_of = latest_data_date(store)
        model = load_active_model(db=app_env)
        scorer = scoring.scorer_for(model, store=store, as_of=as_of)
        scores = scoring.score_invoices(store, as_of, scorer=scorer, with_reasons=False)
    row = scores.filter(pl.col("invoice_id") == invoice_id).row(0, named=True)
    in_words = [m.value.replace("\\", "") for m in at.markdown if m.value.startswith("**In words:**")]
    assert in_words == [f"**In words:** {explain.probability_sentence(row, as_of=as_of)}"]
    assert "chance of being paid within the next 30 days" in in_words[0]
    # the list starts with the invoice least likely to be paid soon
    assert row["p_paid_30d"] == pytest.approx(scores["p_paid_30d"].min())
    assert sum(ui.PROBABILITY_NOTE in c.value for c in at.caption) == 1
    # the Performance tab's verdict line is the card's
    assert any(m.value.replace("\\", "") == explain.model_verdict(model.card) for m in at.info)


def test_every_table_on_every_page_is_labelled_in_words(app_env: Path) -> None:
    import json

    from streamlit.testing.v1 import AppTest

    for page in ("overview", "segments", "risk", "strategy", "worklist", "data"):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
        at.run()
        at.switch_page(f"pages/{page}.py")
        at.run()
        assert not at.exception, (page, [e.message for e in at.exception])
        for frame in at.dataframe:
            config = json.loads(frame.proto.columns or "{}")
            shown = [c for c in frame.value.columns if not config.get(c, {}).get("hidden")]
            labels = [config.get(c, {}).get("label") or c for c in shown]
            assert not [label for label in labels if vocabulary.readable(label) != label], (page, labels)
            for column in shown:  # no datetime shown with its midnight time
                if str(frame.value[column].dtype).startswith("datetime"):
                    assert config.get(column, {}).get("type_config", {}).get("format"), (page, column)


@pytest.mark.parametrize(
    ("fixture", "adds_up"),
    [("sample_data/extracts/qbo_ar_aging_detail_2026-09-30.csv", True),
     ("tests/fixtures/formats/qbo_open_invoices.csv", True),
     ("tests/fixtures/formats/qbo_open_invoices_bad_total.csv", False)],
)
def test_a_report_that_adds_up_is_confirmed_not_warned_about(fixture: str, adds_up: bool) -> None:
    from dashboard.ingest import preview_file
    from dashboard.lineage import preview_messages

    path = ROOT / fixture
    messages = preview_messages(preview_file(path.read_bytes(), file_name=path.name))
    if adds_up:  # a fully reconciled QuickBooks report used to be one yellow warning
        assert len(messages.confirmations) == 1 and "add up to its TOTAL line" in messages.confirmations[0]
        assert messages.warnings == []
    else:
        assert messages.confirmations == []
        assert len(messages.warnings) == 1 and "does not add up" in messages.warnings[0]


def test_the_worklist_names_the_currency_of_every_amount(sample: tuple[Store, date]) -> None:
    store, as_of = sample
    result = build_worklist(store, as_of)
    invoices = result.lines.select("line_id", "open_amount", "invoices").explode("invoices")
    detail = invoices.with_columns(pl.col("invoices").struct.field("open_amount_base"),
                                   pl.col("invoices").struct.field("currency"))
    # a line's amount is in the base currency: the sum of its invoices' base amounts, whatever they bill in
    per_line = detail.group_by("line_id").agg(pl.col("open_amount").first(), pl.col("open_amount_base").sum())
    assert (per_line["open_amount"] - per_line["open_amount_base"]).abs().max() < 0.01
    assert detail["currency"].null_count() == 0 and detail["currency"].n_unique() >= 1
    assert vocabulary.column_label("open_amount") == "Open amount (USD)"
