"""Risk model (analyst): how good the payment-risk model is, why it scores an invoice, retraining."""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from dashboard import explain, registry, risk, ui
from dashboard.errors import ModelError
from pages import _model_panel

PAGE = "risk"


@ui.cached
def load_scores(version: str, model_id: str, stamp: str, as_of: date) -> pl.DataFrame:
    return risk.score_open_invoices(ui.get_store(), as_of, model=ui.active_model(), with_reasons=False)


def show_performance(model: risk.RiskModel) -> None:
    card = model.card
    windows = card["windows"]
    st.markdown(  # the card is a file: its words are shown as written
        f"Model **{ui.md(model.model_id)}**, "
        + ui.md(
            f"trained on snapshots {windows['train'][0]} to {windows['train'][1]}, "
            f"calibrated ({card['calibration']['method']}) on {windows['calibration'][0]} to "
            f"{windows['calibration'][1]}, tested on {windows['test'][0]} to {windows['test'][1]} with outcomes "
            f"known by {windows['data_end']}."
        )
    )
    table = risk.metrics_table(card)
    st.dataframe(table, hide_index=True, width="stretch")
    nyd = card["metrics"]["not_yet_due"]
    if nyd["model"]["auc"] is not None and nyd["baseline"]["auc"] is not None:
        st.caption(
            f"On invoices not yet due the model's AUC is {nyd['model']['auc'] - nyd['baseline']['auc']:+.3f} "
            "against the naive baseline (each customer's historical share of late invoices)."
        )
    cols = st.columns(4)
    for col, (label, value) in zip(cols, risk.pay_date_summary(card).items(), strict=True):
        shown = "n/a" if value is None else (f"{value:.0%}" if "coverage" in label else f"{value:.2f}")
        col.metric(label, shown)
    left, right = st.columns(2)
    left.plotly_chart(explain.calibration_chart(card["metrics"]["not_yet_due"]), key=f"{PAGE}_calibration")
    importance = pl.DataFrame(card.get("importance") or [])
    if importance.height:
        right.plotly_chart(explain.importance_chart(importance), key=f"{PAGE}_importance")
    with st.expander("How the pay dates are modelled"):
        st.markdown(ui.md(card["hazard"]["formulation"]))
        st.markdown(ui.md(card["hazard"].get("interval_note", "")))


def show_invoice(model: risk.RiskModel, stamp: str, as_of: date) -> None:
    store = ui.get_store()
    scores = load_scores(ui.data_version(), model.model_id, stamp, as_of)
    if scores.height == 0:
        ui.empty_state(f"No open invoices as of {as_of}.")
        return
    ui.probability_note()
    ranked = scores.sort("p_late", descending=True)
    st.dataframe(
        ranked.select(
            "invoice_id",
            "customer_id",
            "open_amount",
            "due_date",
            "p_late",
            "p_paid_30d",
            "pay_date_p10",
            "pay_date_p50",
            "pay_date_p90",
        )
        .head(200)
        .with_columns(pl.col("due_date", "pay_date_p10", "pay_date_p50", "pay_date_p90").cast(pl.Date)),
        hide_index=True,
        width="stretch",
    )
    invoice_id = st.selectbox("Explain invoice", ranked["invoice_id"].to_list(), key=f"{PAGE}_invoice")
    if invoice_id:
        from dashboard.features import build_features

        features = build_features(store, as_of, spec=model.feature_spec, invoice_ids=[invoice_id])
        reasons = explain.reasons_for(model, features)
        st.markdown("**Why:** " + ui.md(reasons["reasons"][0]))  # reasons quote dispute categories from files
        st.plotly_chart(
            explain.waterfall_chart(explain.invoice_waterfall(model, features, invoice_id)), key=f"{PAGE}_waterfall"
        )
    importance = pl.DataFrame(model.card.get("importance") or [])
    if importance.height:
        feature = st.selectbox("Dependence of", importance["feature"].head(10).to_list(), key=f"{PAGE}_dependence")
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
        calibration = c3.selectbox("Calibration", ["sigmoid", "isotonic"], key=f"{PAGE}_calibration_method")
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
    config = risk.TrainingConfig(
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
            result = risk.train_model(store, config, progress=lambda f, m: bar.progress(min(f, 1.0), text=m))
            registry.save_model(result.model, activate=activate, db=store.path)
            status.update(label=f"Trained {result.model.model_id}", state="complete")
            # rerun so every tab shows the new model; the notice survives the rerun
            st.session_state[f"{PAGE}_trained"] = f"Saved {result.model.model_id}" + (
                " and made it active." if activate else "."
            )
            st.rerun()


def show_history_and_drift(model: risk.RiskModel, stamp: str, as_of: date) -> None:
    models = registry.list_models(db=ui.get_store().path)
    st.dataframe(models, hide_index=True, width="stretch")
    usable = models.filter(pl.col("usable"))["model_id"].to_list()
    if usable:
        chosen = st.selectbox(
            "Active model",
            usable,
            index=usable.index(model.model_id) if model.model_id in usable else 0,
            key=f"{PAGE}_active",
        )
        if chosen != model.model_id and st.button("Make active", key=f"{PAGE}_make_active"):
            with ui.user_errors():
                registry.set_active(chosen, db=ui.get_store().path)
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
model = None
try:
    model = ui.active_model()
except ModelError as exc:
    ui.empty_state(f"{exc}")
if model is not None and model.notice:
    st.warning(ui.md(model.notice), icon=":material/warning:")
elif model is not None and registry.is_shipped(model):
    st.info(
        f"Using the shipped default model {model.model_id} (trained on the sample data). Train one on this "
        "store's data in the Train tab; it is kept beside the store.",
        icon=":material/info:",
    )

performance, invoice, history, training = st.tabs(["Performance", "Explain an invoice", "History & drift", "Train"])
with training:
    show_training(as_of)
if model is not None and as_of is not None:
    with performance, ui.user_errors():
        show_performance(model)
    with invoice, ui.user_errors():
        show_invoice(model, stamp, as_of)
    with history, ui.user_errors():
        show_history_and_drift(model, stamp, as_of)
