"""Is the active risk model still fit for the data? One verdict for the Risk and Data pages.

After every load the data can move away from what the model was trained on. Two things can
go wrong, with different cures:

- the **ranking** degrades (a score or a top feature has shifted, PSI >= 0.25; or the AUC on
  invoices closed since training is clearly below the test AUC): the trees no longer fit —
  **retrain**;
- the ranking holds but the **probabilities** are off (ECE on recently closed invoices above
  ``ECE_RECALIBRATE``): the trees are fine, the probability map is not — **recalibrate**
  (:func:`dashboard.risk.recalibrate`: keeps the trees, refits the map on recent outcomes,
  saves a new model with its own card), which takes seconds, not minutes.

:func:`check_model` measures both and says which, in words, with the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import polars as pl

from dashboard.display import day
from dashboard.risk import PSI_RETRAIN_THRESHOLD, RiskModel, drift_report, live_performance
from dashboard.store import Store
from dashboard.vocabulary import feature_label

AUC_DROP_RETRAIN = 0.05  # live AUC this far below the test AUC: the ranking no longer holds
ECE_RECALIBRATE = 0.05  # live calibration error above this: the probabilities are off
MIN_LIVE_ROWS = 200  # fewer recently closed invoices than this: too few to judge calibration

Advice = Literal["ok", "recalibrate", "retrain"]


@dataclass(frozen=True)
class ModelCheck:
    """The verdict on the active model at ``as_of``, with the measurements behind it."""

    model_id: str
    as_of: date
    advice: Advice
    reasons: list[str] = field(default_factory=list)
    drift: pl.DataFrame = field(default_factory=pl.DataFrame)
    live: dict[str, Any] = field(default_factory=dict)

    def headline(self) -> str:
        if self.advice == "retrain":
            return f"Retrain the risk model: {'; '.join(self.reasons)}."
        if self.advice == "recalibrate":
            return (
                f"Recalibrate the risk model: {'; '.join(self.reasons)}. The ranking still holds, so refitting "
                "the probability map on recent outcomes is enough."
            )
        return f"The risk model {self.model_id} still fits the data as of {day(self.as_of)}."


def check_model(store: Store, as_of: date, *, model: RiskModel) -> ModelCheck:
    """Drift of the scored population and live accuracy since training, and what to do about it."""
    drift = drift_report(store, as_of, model=model)
    live = live_performance(store, as_of, model=model)
    reasons_retrain: list[str] = []
    reasons_recalibrate: list[str] = []
    moved = drift.filter(pl.col("psi") >= PSI_RETRAIN_THRESHOLD)
    if moved.height:
        listed = ", ".join(
            f"{_measure_words(m)} (PSI {p:.2f})" for m, p in moved.select("measure", "psi").iter_rows()
        )
        reasons_retrain.append(f"the open invoices have moved away from the training data on {listed}")
    rows = int(live.get("rows") or 0)
    if rows >= MIN_LIVE_ROWS:
        auc, test_auc, ece = live.get("auc"), live.get("test_auc"), live.get("ece")
        if auc is not None and test_auc is not None and auc < test_auc - AUC_DROP_RETRAIN:
            reasons_retrain.append(
                f"on {rows:,} invoices closed since training its AUC is {auc:.3f} against {test_auc:.3f} in testing"
            )
        elif ece is not None and ece > ECE_RECALIBRATE:
            reasons_recalibrate.append(
                f"on {rows:,} invoices closed since training its probabilities are off by {ece:.3f} on average "
                f"(calibration error; {ECE_RECALIBRATE:.2f} is the limit)"
            )
    advice: Advice = "retrain" if reasons_retrain else ("recalibrate" if reasons_recalibrate else "ok")
    return ModelCheck(
        model_id=model.model_id,
        as_of=as_of,
        advice=advice,
        reasons=reasons_retrain or reasons_recalibrate,
        drift=drift,
        live=live,
    )


def _measure_words(measure: str) -> str:
    """A drift measure in a sentence: "the score itself", "invoice amount"."""
    return "the score itself" if measure == "score" else feature_label(measure).lower()
