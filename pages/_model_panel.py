"""Section shared by the Data and Risk pages: does the active risk model still fit the data?

Not a page (the leading underscore keeps it out of navigation). After a load the data
version changes, so the check runs again; when the probabilities have drifted it offers to
recalibrate in one click, and when the ranking has drifted it sends the user to retrain.
``dashboard.model_check`` decides; this only draws.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from dashboard import registry, risk, ui
from dashboard.errors import ModelError
from dashboard.model_check import ModelCheck, check_model
from dashboard.store import Store
from dashboard.vocabulary import feature_label


def _measure(name: str) -> str:
    return "The score itself" if name == "score" else feature_label(name)


@ui.cached
def _check(version: str, stamp: str, as_of: date) -> ModelCheck:
    return check_model(ui.get_store(), as_of, model=ui.active_model())


def render(store: Store, as_of: date, *, key: str, show_details: bool = True) -> None:
    """Draw the verdict on the active model at ``as_of`` (widget keys prefixed by ``key``)."""
    try:
        model = ui.active_model()
    except ModelError as exc:
        ui.empty_state(f"No risk model to check: {exc}")
        return
    with st.spinner("Checking the risk model against the data..."):
        check = _check(ui.data_version(), ui.model_stamp(), as_of)
    if check.advice == "ok":
        st.success(ui.md(check.headline()), icon=":material/check_circle:")
    else:
        st.warning(ui.md(check.headline()), icon=":material/warning:")
    if check.advice == "retrain":
        st.page_link("pages/risk.py", label="Retrain on the Risk page (Train tab)", icon=":material/model_training:")
    live = check.live
    if show_details:
        if check.drift.height:
            ui.table(
                check.drift.with_columns(pl.col("measure").map_elements(_measure, return_dtype=pl.String)),
                labels={"measure": "What is compared with training", "psi": "Shift (PSI)", "status": "Status"},
                kinds={"psi": "score"},
                helps={"psi": "Population stability index: under 0.1 stable, 0.1–0.25 moving, above 0.25 moved."},
                width="stretch",
            )
        if live.get("rows"):
            st.caption(
                f"Live performance on {live['rows']:,} invoices open at {live['since']}: AUC {live['auc']:.3f} "
                f"(test AUC {live['test_auc']:.3f}), calibration error {live['ece']:.3f}."
            )
        else:
            st.caption(ui.md(live.get("message", "")))
    label = "Recalibrate now" if check.advice == "recalibrate" else "Recalibrate on recent outcomes"
    if ui.can("model_recalibrate") and st.button(
        label,
        key=f"{key}_recalibrate",
        type="primary" if check.advice == "recalibrate" else "secondary",
        help="Keeps the trees, refits the probability map on the last three months with known outcomes; "
        "saves it as a new model (the old one stays in the history and can be made active again)",
    ):
        with ui.user_errors(), st.spinner("Recalibrating..."):
            new = risk.recalibrate(store, model, as_of=as_of)
            registry.save_model(new, db=store.path, store=store, actor=ui.current_actor())
            fit = new.card["recalibration_fit"]
            st.success(
                f"Saved and activated {new.model_id} (calibration error on {fit['rows']:,} recent invoices "
                f"{fit['ece_before']:.3f} -> {fit['ece_after']:.3f})."
            )
