"""Risk model (analyst): which scorer is in use and why, how it compares with the customer-history
baseline, why it scores an invoice, retraining."""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from dashboard import display, explain, registry, risk, scoring, training, ui
from dashboard.errors import ModelError
from dashboard.ui import signin
from dashboard.vocabulary import feature_label
from pages import _model_panel

signin.require_page("risk", "Risk model")  # first: with sign-in on, nobody gets past it unasked

PAGE = "risk"


@st.cache_resource(show_spinner="Choosing the scorer...", max_entries=8)
def _scorer(version: str, stamp: str, as_of: date, problem: str) -> scoring.Scorer:
    """The scorer in use for ``as_of`` (a baseline is fitted from the store, hence the cache)."""
    model = None if problem else ui.active_model()
    return scoring.scorer_for(model, store=ui.get_store(), as_of=as_of, problem=problem or None)


def active_scorer(problem: str | None, stamp: str, as_of: date) -> scoring.Scorer:
    return _scorer(ui.data_version(), stamp, as_of, problem or "")


@ui.cached
def load_scores(version: str, scorer_id: str, stamp: str, as_of: date, _scorer: scoring.Scorer) -> pl.DataFrame:
    return scoring.scores_for(ui.get_store(), as_of, scorer=_scorer)


def show_scorer(scorer: scoring.Scorer) -> None:
    """Which scorer every score on this page comes from, and why."""
    text = (f"Scores on this page come from the **{ui.md(scorer.label)}**. {ui.md(scorer.reason)} "
            f"Probabilities: {ui.md(scorer.calibration)}")
    if scorer.kind == "model":
        st.info(text, icon=":material/model_training:")
    else:
        st.warning(text, icon=":material/balance:")


def _day(text: str) -> str:
    """A card's ISO date as people read it ("2026-09-30" → "30 Sep 2026")."""
    try:
        return display.day(date.fromisoformat(str(text)[:10]))
    except ValueError:
        return str(text)


def show_performance(model: risk.RiskModel) -> None:
    card = model.card
    decision = card.get("scoring")
    if decision:
        verdict = "in use" if decision["in_use"] == "model" else "not in use: the customer-history baseline scores"
        st.markdown(f"**Model {ui.md(model.model_id)} is {verdict}.** {ui.md(decision['reason'])}")
        st.caption(f"The rule: {ui.md(decision['rule'])}.")
    evidence = card.get("evidence")
    if evidence:
        labelled = evidence["labelled_rows"]
        st.caption(
            f"Evidence: **{evidence['strength']}** ({ui.md(evidence['note'])}). {evidence['months_of_invoices']} months of "
            f"invoices, {evidence['plan']} snapshots ({evidence['snapshots']['train']} to train, "
            f"{evidence['snapshots']['calibration']} to calibrate, {evidence['snapshots']['test']} held out); "
            f"{labelled['train']:,} labelled training rows, {labelled['test_not_yet_due']:,} held-out invoices not yet "
            f"due from {evidence['test_customers']:,} customers."
        )
    windows = card["windows"]
    st.markdown(  # the card is a file: its words are shown as written
        f"Model **{ui.md(model.model_id)}**: "
        + ui.md(
            f"learnt from invoices open between {_day(windows['train'][0])} and {_day(windows['train'][1])}, its "
            f"probabilities tuned ({card['calibration']['method']}) on {_day(windows['calibration'][0])} to "
            f"{_day(windows['calibration'][1])}, and tested on {_day(windows['test'][0])} to "
            f"{_day(windows['test'][1])} with outcomes known by {_day(windows['data_end'])}. "
            + card["calibration"].get("at_scoring", "")
        )
    )
    st.info(ui.md(explain.model_verdict(card)), icon=":material/balance:")  # driven by the card
    ui.table(
        risk.metrics_table(card),
        kinds={"test rows": "count", "share late": "share", "AUC": "score", "PR-AUC": "score", "Brier": "score",
               "ECE": "score"},
        labels={"invoices": "Invoices", "scored by": "Scored by", "test rows": "Test invoices",
                "share late": "Paid late", "AUC": "AUC (ranking)", "PR-AUC": "PR-AUC", "Brier": "Brier score",
                "ECE": "Calibration error"},
        helps={"AUC": "Chance that a late payer is scored above an on-time one: 0.5 is a coin toss, 1 is perfect.",
               "Brier": "Mean squared error of the probabilities: lower is better.",
               "ECE": "Average gap between predicted and observed share late: lower is better."},
        width="stretch",
    )
    cards = st.container(horizontal=True)
    for label, value, help_text in explain.pay_date_cards(card):
        cards.metric(label, value, help=help_text, border=True, width="stretch")
    left, right = st.columns(2)
    left.plotly_chart(explain.calibration_chart(card["metrics"]["not_yet_due"]), key=f"{PAGE}_calibration")
    importance = pl.DataFrame(card.get("importance") or [])
    if importance.height:
        right.plotly_chart(explain.importance_chart(importance), key=f"{PAGE}_importance")
    with st.expander("How the pay dates are modelled"):
        st.markdown(explain.PAY_DATE_MODEL_TEXT)
        st.caption("Technical detail, from the model card: " + ui.md(card["hazard"]["formulation"]))


def show_invoice(model: risk.RiskModel | None, scorer: scoring.Scorer, stamp: str, as_of: date) -> None:
    store = ui.get_store()
    scores = load_scores(ui.data_version(), scorer.scorer_id, stamp, as_of, scorer)
    if scores.height == 0:
        ui.empty_state(f"No open invoices as of {display.day(as_of)}.")
        return
    # what a collector acts on: the chance of being paid soon, and when (P(late) is ~1 for any
    # overdue invoice, so it is shown only for invoices not yet due)
    ranked = scores.sort(["p_paid_30d", "open_amount"], descending=[False, True], nulls_last=True)
    shown = ranked.head(200).with_columns(
        pl.col("due_date", "pay_date_p10", "pay_date_p50", "pay_date_p90").cast(pl.Date),
        days_past_due=(pl.lit(as_of) - pl.col("due_date").cast(pl.Date)).dt.total_days().clip(lower_bound=0),
        p_late=pl.when(pl.col("due_date").cast(pl.Date) >= as_of).then(pl.col("p_late")),
    )
    ui.table(
        shown,
        columns=["invoice_id", "customer_id", "open_amount", "due_date", "days_past_due", "p_paid_30d",
                 "pay_date_p50", "pay_date_p10", "pay_date_p90", "p_late"],
        labels={"p_late": "P(paid late), not yet due"},
        width="stretch",
    )
    st.caption("Least likely to be paid within 30 days first. Expected pay date: the day by which half of invoices "
               "like it are paid; 8 in 10 are paid between the early (P10) and late (P90) dates.")
    invoice_id = st.selectbox("Explain invoice", ranked["invoice_id"].to_list(), key=f"{PAGE}_invoice")
    if invoice_id:
        from dashboard.features import build_features

        row = ranked.filter(pl.col("invoice_id") == invoice_id).row(0, named=True)
        st.markdown("**In words:** " + ui.md(explain.probability_sentence(row, as_of=as_of)))
        explained = scoring.score_invoices(store, as_of, scorer=scorer, invoice_ids=[invoice_id], with_reasons=True)
        why = explained["reasons"][0] if explained.height else ""
        # reasons quote dispute categories from files: shown as text
        st.markdown("**Why:** " + ui.md(why) + " — " + ui.md(scorer.label))
        if scorer.kind != "model" or model is None:
            return
        features = build_features(store, as_of, spec=model.feature_spec, invoice_ids=[invoice_id])
        st.plotly_chart(
            explain.waterfall_chart(explain.invoice_waterfall(model, features, invoice_id)), key=f"{PAGE}_waterfall"
        )
    if scorer.kind != "model" or model is None:
        return
    importance = pl.DataFrame(model.card.get("importance") or [])
    if importance.height:
        feature = st.selectbox(
            "How one input moves the score", importance["feature"].head(10).to_list(), format_func=feature_label,
            key=f"{PAGE}_dependence",
        )
        sample_ids = ranked["invoice_id"].head(2000).to_list()
        from dashboard.features import build_features

        sample = build_features(store, as_of, spec=model.feature_spec, invoice_ids=sample_ids)
        st.plotly_chart(
            explain.dependence_chart(explain.dependence(model, sample, feature), feature),
            key=f"{PAGE}_dependence_chart",
        )


def show_training(default_end: date | None) -> None:
    store = ui.get_store()
    with st.form(f"{PAGE}_train_form"):
        st.write("Train a new model on the store's history (time-based split, calibration on a later window).")
        c1, c2, c3 = st.columns(3)
        data_end = c1.date_input("Data up to", key=f"{PAGE}_train_as_of", value=default_end)
        test_months = c2.number_input("Test months", min_value=1, max_value=12, value=4, key=f"{PAGE}_test_months")
        calibration = c3.selectbox(
            "Probability tuning", ["sigmoid", "isotonic"], key=f"{PAGE}_calibration_method",
            format_func={"sigmoid": "Smooth (sigmoid)", "isotonic": "Stepwise (isotonic)"}.get,
        )
        c4, c5, c6 = st.columns(3)
        num_leaves = c4.selectbox(
            "Leaves per tree",
            [15, 31],
            key=f"{PAGE}_leaves",
            help="15 leaves explain 6x faster than 31 at about the same accuracy",
        )
        trees = c5.number_input("Trees", min_value=50, max_value=1000, value=300, step=50, key=f"{PAGE}_trees")
        activate = c6.checkbox("Make it the active model", value=True, key=f"{PAGE}_activate")
        submitted = st.form_submit_button("Train")
    if not submitted:
        return
    config = training.TrainingConfig(
        as_of=data_end,
        test_months=int(test_months),
        calibration_method=calibration,
        num_leaves=int(num_leaves),
        max_depth=4 if num_leaves == 15 else -1,
        n_estimators=int(trees),
    )
    with st.status("Training the payment-risk model...", expanded=True) as status:
        bar = st.progress(0.0)
        with ui.user_errors():
            result = training.train_model(store, config, progress=lambda f, m: bar.progress(min(f, 1.0), text=m))
            registry.save_model(result.model, activate=activate, db=store.path, store=store, actor=ui.current_actor())
            status.update(label=f"Trained {result.model.model_id}", state="complete")
            # rerun so every tab shows the new model; the notice survives the rerun
            st.session_state[f"{PAGE}_trained"] = f"Saved {result.model.model_id}" + (
                " and made it active." if activate else "."
            ) + " " + result.model.card["scoring"]["reason"]
            st.rerun()


def show_history_and_drift(model: risk.RiskModel, stamp: str, as_of: date) -> None:
    models = registry.list_models(db=ui.get_store().path)
    ui.table(
        models.with_columns(pl.col("created", "data_end").cast(pl.String).str.slice(0, 10).str.to_date(strict=False)),
        labels={"model_id": "Model", "created": "Saved", "usable": "Usable", "problem": "Problem", "active": "Active",
                "shipped": "Shipped with Recoup", "data_end": "Data up to",
                "auc_not_yet_due": "AUC, not yet due", "baseline_auc_not_yet_due": "Baseline AUC, not yet due",
                "ece": "Calibration error", "p10_p90_coverage": "Paid between P10 and P90"},
        kinds={"auc_not_yet_due": "score", "baseline_auc_not_yet_due": "score", "ece": "score",
               "p10_p90_coverage": "share"},
        width="stretch",
    )
    usable = models.filter(pl.col("usable"))["model_id"].to_list()
    if usable and ui.can("model_activate"):
        chosen = st.selectbox(
            "Active model",
            usable,
            index=usable.index(model.model_id) if model.model_id in usable else 0,
            key=f"{PAGE}_active",
        )
        if chosen != model.model_id and ui.can("model_activate") and st.button("Make active", key=f"{PAGE}_make_active"):
            with ui.user_errors():
                registry.set_active(chosen, db=ui.get_store().path, store=ui.get_store(), actor=ui.current_actor())
                st.rerun()
    st.subheader("Drift since training")
    _model_panel.render(ui.get_store(), as_of, key=PAGE)


st.title("Risk model")
ui.probability_note()
if f"{PAGE}_trained" in st.session_state:
    st.success(st.session_state.pop(f"{PAGE}_trained"), icon=":material/check_circle:")
store = ui.get_store()
if ui.no_data_guard(store):
    st.stop()
as_of = ui.as_of_control(PAGE, store=store)
ui.health_banners(as_of)
stamp = ui.model_stamp()
model, problem = None, None
try:
    model = ui.active_model()
except ModelError as exc:
    problem = str(exc)
    ui.empty_state(f"{exc}")
if model is not None and model.notice:
    st.warning(ui.md(model.notice), icon=":material/warning:")
elif model is not None and registry.is_shipped(model):
    st.info(
        f"Using the shipped default model {model.model_id} (trained on the sample data). Train one on this "
        "store's data in the Train tab; it is kept beside the store.",
        icon=":material/info:",
    )
scorer = None
if as_of is not None:
    with ui.user_errors():
        scorer = active_scorer(problem, stamp, as_of)
        show_scorer(scorer)

can_train = ui.can("model_train")  # a viewer reads the model; training is an analyst's
tabs = st.tabs(["Performance", "Explain an invoice", "History & drift", *(["Train"] if can_train else [])])
performance, invoice, history = tabs[:3]
if can_train:
    with tabs[3]:
        show_training(as_of)
if as_of is not None and scorer is not None:
    with invoice, ui.user_errors():
        show_invoice(model, scorer, stamp, as_of)
if model is not None and as_of is not None:
    with performance, ui.user_errors():
        show_performance(model)
    with history, ui.user_errors():
        show_history_and_drift(model, stamp, as_of)
