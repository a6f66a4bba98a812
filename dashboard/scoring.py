"""One scoring path: P(late), P(paid within 30 days), survival and pay-date quantiles.

Every consumer — the Worklist, the Risk page, ``python -m dashboard score`` and the simulator —
gets its scores from :func:`score_invoices`, which takes the scorer explicitly:

- :class:`ModelScorer`: a trained :class:`dashboard.risk.RiskModel` whose card says it beat
  the customer-history baseline on its held-out months;
- :class:`BaselineScorer`: the customer-history baseline (:mod:`dashboard.baseline`) — the one
  stored in a model's card when the model did not beat it, or one fitted from the store when
  there is no model at all (too little history, no payments...).

:func:`scorer_for` picks between them and every scorer says which it is and why
(``kind``, ``label``, ``reason``): every place that shows a score shows that too.

Both give a P(late) and weekly hazards of being paid; everything else (survival at any day,
P(paid within 30 days), the P10/P50/P90 pay dates) is derived here, the same way for both.
Scoring runs in chunks of rows so memory follows the open book, not history × features.
:func:`scores_for` keeps the result in the ``scores`` table per (scorer, as-of date, data
version), so a page reads them back instead of scoring again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl

from dashboard.baseline import CustomerHistoryBaseline, fit_baseline
from dashboard.features import FeatureSpec, build_features
from dashboard.recalibration import METHOD_ID, RecentShift, recent_outcomes, recent_shift
from dashboard.schema import PAID_WITHIN_DAYS
from dashboard.store import Store

if TYPE_CHECKING:
    from dashboard.risk import RiskModel

MAX_TAIL_WEEKS = 156  # quantiles past three years are reported as three years (null date)
CHUNK_ROWS = 50_000  # rows predicted at once: the hazard matrix is rows x weeks x features
SCORE_COLUMNS: tuple[str, ...] = (
    "invoice_id",
    "customer_id",
    "open_amount",
    "due_date",
    "p_late",
    "p_paid_30d",
    "pay_date_p10",
    "pay_date_p50",
    "pay_date_p90",
    "reasons",
)


# ------------------------------------------------------------------------------------------
# survival arithmetic (weekly hazards -> curve, quantiles)
# ------------------------------------------------------------------------------------------
def survival_at(hazards: np.ndarray, days: float) -> np.ndarray:
    """P(still open ``days`` after the as-of date), constant hazard within each week; past the
    last week its hazard continues."""
    weeks = hazards.shape[1]
    full = int(days // 7)
    frac = (days - 7 * full) / 7
    log_keep = np.log1p(-hazards)
    if full >= weeks:
        total = log_keep.sum(axis=1) + log_keep[:, -1] * (days / 7 - weeks)
    else:
        total = log_keep[:, :full].sum(axis=1) + log_keep[:, full] * frac
    return np.exp(total)


def survival_at_days(hazards: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Per-row P(still open ``days[i]`` after as-of) (same curve as :func:`survival_at`)."""
    n, weeks = hazards.shape
    log_keep = np.log1p(-hazards)
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(log_keep, axis=1)], axis=1)
    days = np.maximum(np.asarray(days, dtype=np.float64), 0.0)
    full = np.minimum((days // 7).astype(np.int64), weeks)
    rows = np.arange(n)
    inside = cum[rows, full] + log_keep[rows, np.minimum(full, weeks - 1)] * (days / 7 - full)
    return np.exp(np.where(full < weeks, inside, cum[:, -1] + log_keep[:, -1] * (days / 7 - weeks)))


def quantile_days(hazards: np.ndarray, level: float) -> np.ndarray:
    """Days after as-of by which the invoice is paid with probability ``level``."""
    n, weeks = hazards.shape
    log_keep = np.log1p(-hazards)
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(log_keep, axis=1)], axis=1)  # log S at week ends
    target = np.log1p(-level)
    reached = cum[:, 1:] <= target
    has = reached.any(axis=1)
    k = np.where(has, reached.argmax(axis=1), weeks - 1)
    start = cum[np.arange(n), k]
    rate = log_keep[np.arange(n), k]
    within = np.where(has, (target - start) / rate, 0.0)
    days = 7 * (k + np.clip(within, 0, 1))
    tail_weeks = np.where(has, 0.0, (target - cum[:, -1]) / log_keep[:, -1])
    days = np.where(has, days, 7 * (weeks + np.minimum(tail_weeks, MAX_TAIL_WEEKS - weeks)))
    return np.maximum(days, 1.0)


# ------------------------------------------------------------------------------------------
# scorers
# ------------------------------------------------------------------------------------------
class Scorer(Protocol):
    """What :func:`score_invoices` needs: P(late) and weekly hazards from feature rows."""

    kind: str  # "model" or "baseline"
    scorer_id: str  # stored with the scores
    model_id: str | None  # the registry model behind it (None: fitted from the store)
    reason: str  # why this scorer is the one in use, in plain words
    feature_spec: FeatureSpec
    interval_levels: tuple[float, float]

    @property
    def label(self) -> str: ...

    @property
    def calibration(self) -> str: ...

    def predict(self, features: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]: ...

    def reasons(self, features: pl.DataFrame) -> pl.Series: ...


@dataclass(frozen=True)
class ModelScorer:
    """A trained risk model as a scorer (its card says it beat the baseline).

    With ``store`` and ``as_of`` (what :func:`scorer_for` passes), P(late)'s level is refitted
    on the outcomes known at ``as_of`` of the last weeks' snapshots
    (:mod:`dashboard.recalibration`), once, the first time it scores: a page reading kept
    scores never pays for it. Without them, the card's map stands (the held-out test in
    training, the model's own score in the evaluation).
    """

    model: RiskModel
    reason: str
    kind: str = "model"
    store: Store | None = field(default=None, compare=False, repr=False)
    as_of: date | None = None

    @property
    def scorer_id(self) -> str:
        base = self.model.model_id or "model"
        return f"{base}:{METHOD_ID}" if self.recalibrates else base

    @property
    def recalibrates(self) -> bool:
        return self.store is not None and self.as_of is not None

    @property
    def model_id(self) -> str | None:
        return self.model.model_id or None

    @property
    def feature_spec(self) -> FeatureSpec:
        return self.model.feature_spec

    @property
    def interval_levels(self) -> tuple[float, float]:
        low, high = self.model.card["hazard"].get("interval_levels", [0.1, 0.9])
        return float(low), float(high)

    @property
    def label(self) -> str:
        return f"risk model {self.model.model_id or 'model'}"

    @cached_property
    def recent(self) -> RecentShift | None:
        """The shift of P(late) on recent outcomes (None when the scorer does not recalibrate)."""
        if self.store is None or self.as_of is None:
            return None
        rows = recent_outcomes(self.store, self.as_of, spec=self.feature_spec)
        p = self.model.p_late(self.model.matrix(rows)) if rows.height else np.zeros(0)
        return recent_shift(rows, p, as_of=self.as_of, grace_days=self.feature_spec.grace_days)

    @property
    def calibration(self) -> str:
        """How this scorer's probabilities are calibrated, in plain words."""
        stored = self.model.card.get("calibration", {})
        text = (f"P(late) mapped ({stored.get('method', '?')}) on the {stored.get('fitted_on_rows', '?')} "
                "calibration-window outcomes of the model's training")
        recent = self.recent
        return f"{text}; {recent.describe()}" if recent is not None else f"{text} (not recalibrated on recent outcomes)."

    def predict(self, features: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        matrix = self.model.matrix(features)
        p = self.model.p_late(matrix)
        if self.recent is not None:
            p = self.recent.apply(p, determined=features.get_column("days_past_due").to_numpy() > self.model.grace_days)
        return p, self.model.hazards(matrix)

    def reasons(self, features: pl.DataFrame) -> pl.Series:
        from dashboard.explain import reasons_for

        return reasons_for(self.model, features).get_column("reasons")


@dataclass(frozen=True)
class BaselineScorer:
    """The customer-history baseline as a scorer."""

    baseline: CustomerHistoryBaseline
    scorer_id: str
    reason: str
    model_id: str | None = None
    feature_spec: FeatureSpec = field(default_factory=FeatureSpec)
    interval_levels: tuple[float, float] = (0.1, 0.9)
    kind: str = "baseline"

    @property
    def label(self) -> str:
        return "customer-history baseline" + (f" (instead of model {self.model_id})" if self.model_id else "")

    @property
    def calibration(self) -> str:
        """How this scorer's probabilities are calibrated, in plain words."""
        return self.baseline.calibration_text()

    def predict(self, features: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return self.baseline.p_late(features), self.baseline.hazards(features)

    def reasons(self, features: pl.DataFrame) -> pl.Series:
        fill = round(self.baseline.fill_days_late, 1)
        late = pl.col("history_mean_days_late").round(1)
        return features.select(
            pl.when(pl.col("days_past_due") > self.baseline.grace_days)
            .then(pl.format("Invoice is {} days past due: it is already late.", pl.col("days_past_due")))
            .when(pl.col("history_invoices_closed") > 0)
            .then(pl.format(
                "Scored by the customer-history baseline: the customer's {} closed invoices were paid {} days "
                f"after due on average (the book's average is {fill}).",
                pl.col("history_invoices_closed"), late,
            ))
            .otherwise(pl.lit(
                f"Scored by the customer-history baseline: no closed invoice of this customer yet, so the book's "
                f"average of {fill} days after due is used."
            ))
            .alias("reasons")
        ).get_column("reasons")


def scorer_for(
    model: RiskModel | None,
    *,
    store: Store | None = None,
    as_of: date | None = None,
    problem: str | None = None,
) -> ModelScorer | BaselineScorer:
    """The scorer to use: ``model`` when its card says it beat the baseline; the baseline when it
    did not (refitted on the outcomes known on ``as_of`` when ``store`` and ``as_of`` are given,
    else the one kept in the card); without a model, a baseline fitted from ``store`` as of
    ``as_of`` (``problem`` says why there is no model)."""
    if model is not None:
        decision = model.card.get("scoring") or {}
        baseline = model.card.get("baseline")
        if decision.get("in_use") == "baseline" and baseline:
            # the card's baseline is the one the model was judged against; scoring on a later date
            # refits its maps on the outcomes known then (the book's share late moves)
            refit = store is not None and as_of is not None
            fitted = (fit_baseline(store, as_of, spec=model.feature_spec) if refit
                      else CustomerHistoryBaseline.from_card(baseline))
            return BaselineScorer(
                baseline=fitted,
                # refitted, it is recalibrated on recent outcomes: the method in the id, so kept scores follow it
                scorer_id=f"{model.model_id}:baseline:{METHOD_ID}" if refit else f"{model.model_id}:baseline",
                reason=decision.get("reason", ""),
                model_id=model.model_id or None,
                feature_spec=model.feature_spec,
            )
        reason = decision.get("reason") or (
            f"Model {model.model_id} was trained before models were judged against the customer-history baseline: "
            "its card has no verdict. Retrain it to have it checked."
        )
        return ModelScorer(model=model, reason=reason, store=store, as_of=as_of)
    if store is None or as_of is None:
        msg = "Without a model, the baseline needs the store and the as-of date to be fitted."
        raise ValueError(msg)
    why = problem or "no risk model has been trained"
    baseline = fit_baseline(store, as_of)
    reason = f"No risk model in use ({why.rstrip('.')}). Scores come from the customer-history baseline"
    reason += f"; {baseline.note}." if baseline.note else "."
    return BaselineScorer(baseline=baseline, scorer_id=f"baseline-{as_of:%Y%m%d}:{METHOD_ID}", reason=reason)


def active_scorer(
    store: Store, as_of: date, *, model: RiskModel | None = None, models_dir: str | None = None
) -> ModelScorer | BaselineScorer:
    """:func:`scorer_for` the given model, else the active one of the store's registry (or of
    ``models_dir``), else (no usable model, the reason kept) the baseline fitted from the store."""
    problem = None
    if model is None:
        from dashboard.errors import RecoupError
        from dashboard.registry import load_active_model

        try:
            model = load_active_model(models_dir=models_dir, db=store.path)
        except (RecoupError, FileNotFoundError) as exc:
            problem = str(exc)
    return scorer_for(model, store=store, as_of=as_of, problem=problem)


# ------------------------------------------------------------------------------------------
# scoring
# ------------------------------------------------------------------------------------------
def _derived(
    keys: pl.DataFrame,
    p_late: np.ndarray,
    hazards: np.ndarray,
    *,
    interval_levels: tuple[float, float],
    survival_days: Sequence[float],
    keep_hazards: bool,
) -> pl.DataFrame:
    low, high = interval_levels
    quantiles = {"p10": low, "p50": 0.5, "p90": high}
    columns: dict[str, Any] = {
        "p_late": pl.Series(p_late, dtype=pl.Float64),
        "p_paid_30d": pl.Series(1.0 - survival_at(hazards, float(PAID_WITHIN_DAYS)), dtype=pl.Float64),
    }
    for days in survival_days:
        columns[survival_column(days)] = pl.Series(survival_at(hazards, float(days)), dtype=pl.Float64)
    for name, level in quantiles.items():
        days = quantile_days(hazards, level)
        # past the three-year tail cap there is no expected pay date: null, not a made-up date
        columns[f"_days_{name}"] = (
            pl.Series(np.where(days >= 7 * MAX_TAIL_WEEKS, np.nan, np.ceil(days)), dtype=pl.Float64)
            .fill_nan(None).cast(pl.Int64)
        )
    if keep_hazards:
        columns["hazards"] = pl.Series(hazards.astype(np.float32)).cast(pl.List(pl.Float32))
    frame = keys.with_columns(**columns)
    return frame.with_columns(
        (pl.col("as_of") + pl.duration(days=pl.col(f"_days_{name}"))).alias(f"pay_date_{name}") for name in quantiles
    ).drop([f"_days_{name}" for name in quantiles])


def survival_column(days: float) -> str:
    """Name of the column holding P(still unpaid ``days`` after the as-of date)."""
    return f"survival_{int(days)}d" if float(days).is_integer() else f"survival_{days}d"


def score_features(
    features: pl.DataFrame,
    *,
    scorer: Scorer,
    survival_days: Sequence[float] = (),
    with_reasons: bool = False,
    keep_hazards: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> pl.DataFrame:
    """Score feature rows (:func:`dashboard.features.build_features`) with ``scorer``, in chunks."""
    keys = ["as_of", "invoice_id", "customer_id", "open_amount", "due_date", "days_to_due"]
    parts = []
    for start in range(0, max(features.height, 1), chunk_rows):
        chunk = features.slice(start, chunk_rows)
        if chunk.is_empty() and parts:
            break
        p_late, hazards = scorer.predict(chunk) if chunk.height else (np.zeros(0), np.zeros((0, 1)))
        part = _derived(chunk.select(keys), p_late, hazards, interval_levels=scorer.interval_levels,
                        survival_days=survival_days, keep_hazards=keep_hazards)
        if with_reasons and chunk.height:
            part = part.with_columns(reasons=scorer.reasons(chunk))
        else:
            part = part.with_columns(reasons=pl.lit(None, dtype=pl.String))
        parts.append(part)
    scored = pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame()
    return scored.with_columns(
        scorer=pl.lit(scorer.kind), scorer_id=pl.lit(scorer.scorer_id),
        model_id=pl.lit(scorer.model_id, dtype=pl.String),
    )


def score_invoices(
    store: Store,
    as_of: date,
    *,
    scorer: Scorer,
    invoice_ids: Sequence[str] | None = None,
    survival_days: Sequence[float] = (),
    with_reasons: bool = False,
    keep_hazards: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> pl.DataFrame:
    """Score every invoice open at the end of ``as_of`` (or only ``invoice_ids``).

    Parameters
    ----------
    scorer
        :func:`scorer_for` (a model, or the customer-history baseline): always explicit.
    survival_days
        Also return P(still unpaid after d days) for each d, as ``survival_<d>d`` columns.
    with_reasons
        Add 2-3 plain-language reasons per invoice (a model's cost ~0.2 ms per row: ask only
        for the rows shown).
    keep_hazards
        Keep the weekly hazards (a list column), e.g. to store them.

    Returns
    -------
    pl.DataFrame
        ``as_of, invoice_id, customer_id, open_amount, due_date, days_to_due, p_late,
        p_paid_30d, [survival_*], [hazards], pay_date_p10, pay_date_p50, pay_date_p90, reasons,
        scorer, scorer_id, model_id``.
    """
    features = build_features(store, as_of, spec=scorer.feature_spec, invoice_ids=invoice_ids)
    return score_features(features, scorer=scorer, survival_days=survival_days, with_reasons=with_reasons,
                          keep_hazards=keep_hazards, chunk_rows=chunk_rows)


# ------------------------------------------------------------------------------------------
# kept in the store
# ------------------------------------------------------------------------------------------
def scores_data_version(store: Store) -> str:
    """The part of the data version scores depend on: the loads (not policies, actions or scores)."""
    return store.loads_version()


def save_scores(store: Store, scores: pl.DataFrame, *, data_version: str | None = None) -> int:
    """Write scores to the ``scores`` table, replacing earlier rows of the same scorer and date."""
    if scores.height == 0:
        return 0
    version = data_version or scores_data_version(store)
    hazards = scores["hazards"] if "hazards" in scores.columns else pl.lit(None, dtype=pl.List(pl.Float32))
    frame = scores.select(
        pl.col("scorer_id").alias("model_id"), "as_of", "invoice_id", "p_late", "p_paid_30d", "pay_date_p10",
        "pay_date_p50", "pay_date_p90", "reasons", pl.col("scorer"), pl.lit(version).alias("data_version"),
    ).with_columns(hazards=hazards)
    pairs = frame.select("model_id", "as_of").unique().rows()
    with store.transaction() as cur:
        cur.register("score_rows", frame)
        for model_id, day in pairs:
            cur.execute("DELETE FROM scores WHERE model_id = ? AND as_of = ?", [model_id, day]).fetchall()
        cur.execute("INSERT INTO scores BY NAME SELECT * FROM score_rows").fetchall()
        cur.unregister("score_rows")
    return frame.height


def stored_scores(
    store: Store,
    as_of: date,
    *,
    scorer: Scorer,
    survival_days: Sequence[float] = (),
    invoice_ids: Sequence[str] | None = None,
) -> pl.DataFrame | None:
    """The scores kept for ``scorer`` on ``as_of`` at the current data version, with the same
    columns as :func:`score_invoices` (the survival columns re-derived from the stored hazards);
    None when there are none (or they are stale). With ``invoice_ids``: only those invoices'
    scores, without the ledger's key columns (customer_id, open_amount, due_date, days_to_due)."""
    only = "" if invoice_ids is None else " AND invoice_id IN (SELECT unnest(?::VARCHAR[]))"
    rows = store.query(
        f"""
        SELECT as_of, invoice_id, p_late, p_paid_30d, pay_date_p10, pay_date_p50, pay_date_p90, reasons, hazards
        FROM scores WHERE model_id = ? AND as_of = ? AND data_version = ? AND hazards IS NOT NULL{only}
        """,
        [scorer.scorer_id, as_of, scores_data_version(store)] + ([] if invoice_ids is None else [list(invoice_ids)]),
    )
    if rows.is_empty():
        return None
    if invoice_ids is not None:
        return rows.drop("hazards")
    if survival_days:
        weeks = int(rows["hazards"].list.len().max())
        hazards = rows["hazards"].cast(pl.Array(pl.Float32, weeks)).to_numpy().astype(np.float64)
        rows = rows.with_columns(
            pl.Series(survival_column(d), survival_at(hazards, float(d)), dtype=pl.Float64) for d in survival_days
        )
    from dashboard.ledger import open_items_sql

    items_sql, params = open_items_sql(as_of)
    keys = store.query(
        f"""
        SELECT invoice_id, customer_id, open_doc::DOUBLE AS open_amount, due_date, (-days_past_due)::INTEGER AS days_to_due
        FROM ({items_sql}) WHERE doc_type = 'invoice'
        """,
        params or None,
    )
    rows = rows.drop("hazards").join(keys, on="invoice_id", how="left")
    return rows.with_columns(
        scorer=pl.lit(scorer.kind), scorer_id=pl.lit(scorer.scorer_id), model_id=pl.lit(scorer.model_id, dtype=pl.String)
    )


def scores_for(
    store: Store,
    as_of: date,
    *,
    scorer: Scorer,
    survival_days: Sequence[float] = (),
    keep: bool = True,
) -> pl.DataFrame:
    """Every open invoice's scores on ``as_of`` by ``scorer``: read back when already kept for the
    current data version, else computed once (no reasons) and kept."""
    stored = stored_scores(store, as_of, scorer=scorer, survival_days=survival_days)
    if stored is not None:
        return stored
    scored = score_invoices(store, as_of, scorer=scorer, survival_days=survival_days, keep_hazards=keep)
    if keep and scored.height:
        save_scores(store, scored)
    return scored.drop("hazards", strict=False)
