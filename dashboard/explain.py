"""Why an invoice got its score: LightGBM ``pred_contrib`` -> families -> plain sentences.

``pred_contrib=True`` gives exact TreeSHAP contributions on the log-odds scale of the
late-payment model (one column per feature plus the expected value). Contributions are summed
per feature family (:data:`dashboard.features.FEATURE_FAMILIES`), the two or three families
that move the score most become sentences built from the invoice's own feature values
("Customer paid 7 of its last 10 invoices late, by 18 days on average after the due date").

Reasons cost ~0.2 ms per row with 15-leaf trees: compute them only for the rows that need
them. ``shap`` is used only to wrap these numbers for plots (``to_shap_explanation``);
``shap.TreeExplainer`` mishandles LightGBM categorical splits.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
import polars as pl

from dashboard.display import day, days, money, percent
from dashboard.features import FAMILY_OF, FEATURE_COLUMNS, FEATURE_FAMILIES, RECENT_INVOICES
from dashboard.vocabulary import EMPTY, SEGMENTS, feature_label, words

if TYPE_CHECKING:
    from dashboard.risk import RiskModel

FAMILY_LABELS: dict[str, str] = {
    "invoice_timing": "Due date and age",
    "invoice_size": "Invoice size",
    "payment_history": "Payment history",
    "payment_recency": "Payment recency and tenure",
    "exposure": "Open balance and overdue share",
    "disputes": "Disputes",
    "contacts": "Collection contacts and promises",
    "notes": "Notes (sentiment, distress and dispute cues)",
    "segment": "Segment and currency",
}
MIN_REASON_LOG_ODDS = 0.05  # smaller pushes are not worth a sentence
FAMILIES: tuple[str, ...] = tuple(FEATURE_FAMILIES)


def contributions(model: RiskModel, features: pl.DataFrame) -> np.ndarray:
    """Exact TreeSHAP contributions (log-odds), shape (rows, features + 1); last column = base value."""
    return np.asarray(model.late_booster.predict(model.matrix(features), pred_contrib=True, num_threads=model.threads))


def family_contributions(contrib: np.ndarray) -> np.ndarray:
    """Sum feature contributions per family, shape (rows, families) in ``FAMILIES`` order."""
    out = np.zeros((contrib.shape[0], len(FAMILIES)))
    for j, column in enumerate(FEATURE_COLUMNS):
        out[:, FAMILIES.index(FAMILY_OF[column])] += contrib[:, j]
    return out


def _int(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Float64).round(0).cast(pl.Int64).cast(pl.String)


def _pct(column: str) -> pl.Expr:
    return (pl.col(column).cast(pl.Float64) * 100).round(0).cast(pl.Int64).cast(pl.String) + pl.lit("%")


def _abs_int(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Float64).abs().round(0).cast(pl.Int64).cast(pl.String)


def family_sentences() -> dict[str, pl.Expr]:
    """One Polars expression per family producing that family's sentence from the feature row."""
    history = (
        pl.when(pl.col("last10_count") > 0)
        .then(
            pl.format(
                "Customer paid {} of its last {} invoices late, by {} days on average {} the due date.",
                _int("last10_late_count"),
                _int("last10_count"),
                _abs_int("last10_mean_days_late"),
                pl.when(pl.col("last10_mean_days_late") < 0).then(pl.lit("before")).otherwise(pl.lit("after")),
            )
        )
        .otherwise(pl.lit("No payment history yet: none of this customer's invoices has been paid."))
    )
    # customers who pay only on a month-end run, and customers whose recent payments moved away
    # from their long-run record, get that said in the same sentence
    history = (
        pl.when(
            (pl.col("last10_count") > 0)
            & (pl.col("history_share_paid_on_run") >= 0.5)
            & (pl.col("days_past_due") == 0)
            & pl.col("expected_days_late").is_not_null()
        )
        .then(
            pl.format(
                "{} It pays only on a month-end payment run ({} of its payments): at its usual pace, on the run {} days {} this invoice's due date.",
                history,
                _pct("history_share_paid_on_run"),
                _abs_int("expected_days_late"),
                pl.when(pl.col("expected_days_late") < 0).then(pl.lit("before")).otherwise(pl.lit("after")),
            )
        )
        .when((pl.col("last10_count") > 0) & (pl.col("history_share_paid_on_run") >= 0.5))
        .then(pl.format("{} It pays only on a month-end payment run ({} of its payments).", history, _pct("history_share_paid_on_run")))
        .when(
            (pl.col("last10_count") > 0)
            & ((pl.col("recent5_mean_days_late") - pl.col("history_mean_days_late")).abs() >= 7)
        )
        .then(
            pl.format(
                "{} Its last {} payments came {} days late on average, against {} over its whole record.",
                history,
                pl.min_horizontal(pl.col("history_invoices_closed"), pl.lit(RECENT_INVOICES)).cast(pl.String),
                _int("recent5_mean_days_late"),
                _int("history_mean_days_late"),
            )
        )
        .otherwise(history)
    )
    timing = (
        pl.when(pl.col("days_past_due") > 0)
        .then(pl.format("Invoice is {} days past due.", _int("days_past_due")))
        .when(pl.col("history_share_paid_on_run") >= 0.5)
        .then(
            pl.format(
                "Invoice is due in {} days (terms {} days); the next month-end payment run is {} days after the due date.",
                _int("days_to_due"),
                _int("terms_days"),
                _int("days_due_to_next_run"),
            )
        )
        .otherwise(pl.format("Invoice is due in {} days (terms {} days).", _int("days_to_due"), _int("terms_days")))
    )
    size = (
        pl.when(pl.col("share_still_open") < 0.99)
        .then(pl.format("Part-paid: {} of the invoice is still open.", _pct("share_still_open")))
        .otherwise(
            pl.format(
                "Invoice is {}x the customer's typical invoice amount.",
                pl.col("relative_size").cast(pl.Float64).round(1).cast(pl.String),
            )
        )
    )
    recency = (
        pl.when(pl.col("days_since_last_payment").is_null())
        .then(pl.lit("No payment received from this customer yet."))
        .otherwise(
            pl.format(
                "Last payment from this customer was {} days ago; a customer for {} days.",
                _int("days_since_last_payment"),
                _int("customer_tenure_days"),
            )
        )
    )
    exposure = (
        pl.when(pl.col("customer_share_overdue") > 0)
        .then(
            pl.format(
                "{} of the customer's open balance is overdue, the oldest by {} days.",
                _pct("customer_share_overdue"),
                _int("customer_max_days_past_due"),
            )
        )
        .otherwise(pl.format("None of the customer's {} open invoices is overdue.", _int("customer_open_invoices")))
    )
    exposure = (
        pl.when(pl.col("credit_limit_use") > 0.8)
        .then(pl.format("Open balance is {} of the customer's credit limit.", _pct("credit_limit_use")))
        .otherwise(exposure)
    )
    disputes = (
        pl.when(pl.col("dispute_open") > 0)
        .then(
            pl.format(
                "A {} dispute has been open on this invoice for {} days.",
                pl.col("dispute_category").fill_null("dispute"),
                _int("dispute_open_days"),
            )
        )
        .when(pl.col("customer_disputes_past_year") > 0)
        .then(pl.format("Customer raised {} disputes in the past year.", _int("customer_disputes_past_year")))
        .otherwise(pl.lit("No disputes on record for this customer in the past year."))
    )
    contacts = (
        pl.when(pl.col("promises_broken") > 0)
        .then(pl.format("Customer broke {} payment promises in the last 6 months.", _int("promises_broken")))
        .when((pl.col("promise_pending") > 0) & pl.col("promised_days_late").is_not_null())
        .then(
            pl.format(
                "Customer promised to pay this invoice {} days {} the due date.",
                _abs_int("promised_days_late"),
                pl.when(pl.col("promised_days_late") < 0).then(pl.lit("before")).otherwise(pl.lit("after")),
            )
        )
        .when(pl.col("promise_pending") > 0)
        .then(pl.lit("A promise to pay this invoice is pending."))
        .when(pl.col("last_contact_action").is_not_null())
        .then(
            pl.format(
                "Last contact {} days ago: {}, outcome {}.",
                _int("days_since_last_contact"),
                pl.col("last_contact_action"),
                pl.col("last_contact_outcome").fill_null("not recorded"),
            )
        )
        .when(pl.col("customer_share_contacts_answered").is_not_null())
        .then(
            pl.format(
                "No collection contact on this invoice yet; the customer answered {} of reminders in the past year.",
                _pct("customer_share_contacts_answered"),
            )
        )
        .otherwise(pl.lit("No collection contact on this invoice yet."))
    )
    notes = (
        pl.when(pl.col("notes_distress") > 0)
        .then(pl.format("{} recent notes mention financial difficulty.", _int("notes_distress")))
        .when(pl.col("notes_dispute_cues") > 0)
        .then(pl.format("{} recent notes mention a complaint or dispute.", _int("notes_dispute_cues")))
        .when(pl.col("notes_recent") > 0)
        .then(
            pl.format(
                "Recent notes are {} in tone.",
                pl.when(pl.col("notes_mean_sentiment") < -0.05)
                .then(pl.lit("negative"))
                .when(pl.col("notes_mean_sentiment") > 0.05)
                .then(pl.lit("positive"))
                .otherwise(pl.lit("neutral")),
            )
        )
        .otherwise(pl.lit("No recent notes about this customer."))
    )
    segment = (
        pl.when(pl.col("segment").is_not_null())
        .then(
            pl.format(
                "Customer is in the '{}' segment; invoice in {}.",
                pl.col("segment").replace({s: words(s) for s in SEGMENTS}),
                pl.col("currency_code").fill_null("?"),
            )
        )
        .otherwise(pl.format("Invoice is in {}.", pl.col("currency_code").fill_null("an unknown currency")))
    )
    return {
        "invoice_timing": timing,
        "invoice_size": size,
        "payment_history": history,
        "payment_recency": recency,
        "exposure": exposure,
        "disputes": disputes,
        "contacts": contacts,
        "notes": notes,
        "segment": segment,
    }


def reasons_for(model: RiskModel, features: pl.DataFrame, *, top: int = 3) -> pl.DataFrame:
    """2-3 plain sentences per invoice, strongest push in the score's direction first.

    Returns ``invoice_id, reasons, top_family`` (``reasons`` joined by spaces).
    """
    contrib = contributions(model, features)
    families = family_contributions(contrib[:, :-1])
    sentences = features.select(**family_sentences()).select(list(FAMILIES)).to_numpy().astype(object)
    # Explain in the direction of the score: a riskier-than-average invoice gets the families
    # that raise its risk, a safer one those that lower it; the other direction fills in.
    direction_of_score = np.where(families.sum(axis=1) >= 0, 1.0, -1.0)[:, None]
    aligned = families * direction_of_score
    order = np.argsort(-aligned, axis=1)[:, :top]
    rows = np.arange(features.height)[:, None]
    chosen_text = sentences[rows, order]
    chosen_value = families[rows, order]
    keep = aligned[rows, order] >= MIN_REASON_LOG_ODDS
    keep[:, 0] = True  # always at least one reason
    direction = np.where(chosen_value > 0, " (raises risk)", " (lowers risk)")
    parts = {}
    for k in range(order.shape[1]):
        text = np.where(keep[:, k], chosen_text[:, k].astype(str) + direction[:, k], None)
        parts[f"r{k}"] = pl.Series(text.tolist(), dtype=pl.String)
    frame = pl.DataFrame(parts)
    reasons = frame.select(pl.concat_str(list(frame.columns), separator=" ", ignore_nulls=True).alias("reasons"))
    return pl.DataFrame(
        {
            "invoice_id": features.get_column("invoice_id"),
            "reasons": reasons.get_column("reasons"),
            "top_family": [FAMILIES[i] for i in order[:, 0]],
        }
    )


def global_importance(model: RiskModel, features: pl.DataFrame) -> pl.DataFrame:
    """Mean |contribution| (log-odds) per feature on ``features``, largest first.

    Columns: ``feature, family, mean_abs_contribution, family_mean_abs_contribution``.
    """
    if features.height == 0:
        return pl.DataFrame(schema={"feature": pl.String, "family": pl.String, "mean_abs_contribution": pl.Float64,
                                    "family_mean_abs_contribution": pl.Float64})
    contrib = contributions(model, features)[:, :-1]
    families = np.abs(family_contributions(contrib)).mean(axis=0)
    frame = pl.DataFrame(
        {
            "feature": list(FEATURE_COLUMNS),
            "family": [FAMILY_OF[c] for c in FEATURE_COLUMNS],
            "mean_abs_contribution": np.abs(contrib).mean(axis=0),
        }
    ).with_columns(
        family_mean_abs_contribution=pl.col("family").replace_strict(
            {f: float(families[i]) for i, f in enumerate(FAMILIES)}, return_dtype=pl.Float64
        )
    )
    return frame.sort("mean_abs_contribution", descending=True)


def family_ranking(importance: pl.DataFrame | list[dict[str, Any]]) -> list[str]:
    """Families ordered by their mean |contribution| (from a card's stored importance)."""
    frame = importance if isinstance(importance, pl.DataFrame) else pl.DataFrame(importance)
    return (
        frame.group_by("family")
        .agg(pl.col("family_mean_abs_contribution").first())
        .sort("family_mean_abs_contribution", descending=True)
        .get_column("family")
        .to_list()
    )


def invoice_waterfall(model: RiskModel, features: pl.DataFrame, invoice_id: str) -> pl.DataFrame:
    """One invoice's contributions per feature (log-odds), largest |value| first, with the base value.

    Columns: ``feature, family, value, contribution``; the first row is ``base value``.
    """
    row = features.filter(pl.col("invoice_id") == invoice_id).head(1)
    if row.height == 0:
        msg = f"Invoice {invoice_id!r} is not open at this date, so it has no score."
        raise KeyError(msg)
    contrib = contributions(model, row)[0]
    values = [str(v) for v in row.select(list(FEATURE_COLUMNS)).row(0)]
    frame = pl.DataFrame(
        {
            "feature": list(FEATURE_COLUMNS),
            "family": [FAMILY_OF[c] for c in FEATURE_COLUMNS],
            "value": values,
            "contribution": contrib[:-1],
        }
    ).sort(pl.col("contribution").abs(), descending=True)
    base = pl.DataFrame({"feature": ["base value"], "family": [""], "value": [""], "contribution": [float(contrib[-1])]})
    return pl.concat([base, frame])


def dependence(model: RiskModel, features: pl.DataFrame, feature: str) -> pl.DataFrame:
    """Feature value vs its contribution on ``features`` (the SHAP dependence view)."""
    index = FEATURE_COLUMNS.index(feature)
    contrib = contributions(model, features)[:, index]
    return pl.DataFrame({"value": features.get_column(feature).cast(pl.Float64, strict=False), "contribution": contrib})


def to_shap_explanation(model: RiskModel, features: pl.DataFrame) -> Any:
    """The contributions wrapped in ``shap.Explanation`` (for shap's own plots)."""
    import shap

    contrib = contributions(model, features)
    return shap.Explanation(
        values=contrib[:, :-1],
        base_values=contrib[:, -1],
        data=model.matrix(features),
        feature_names=list(FEATURE_COLUMNS),
    )


# --------------------------------------------------------------------------------------------
# figures (data in, figure out; pages draw them)
# --------------------------------------------------------------------------------------------
def importance_chart(importance: pl.DataFrame, *, top: int = 15) -> go.Figure:
    """Horizontal bars of mean |contribution| for the top features."""
    head = importance.sort("mean_abs_contribution", descending=True).head(top).reverse()
    fig = go.Figure(go.Bar(x=head["mean_abs_contribution"].to_list(),
                           y=[feature_label(f) for f in head["feature"].to_list()], orientation="h",
                           hovertemplate="%{y}: %{x:.2f}<extra></extra>"))
    fig.update_layout(title="What moves the chance of paying late most", height=420,
                      xaxis_title="average push on the score (log-odds)", margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def waterfall_chart(waterfall: pl.DataFrame, *, top: int = 10) -> go.Figure:
    """Waterfall from the base value through the largest contributions (log-odds)."""
    base = waterfall.head(1)
    body = waterfall.slice(1)
    shown = body.head(top)
    rest = float(body.slice(top)["contribution"].sum())
    labels = (
        ["an average invoice"]
        + [f"{feature_label(f)}: {_value_words(v)}" for f, v in zip(shown["feature"], shown["value"], strict=True)]
        + ["everything else"]
    )
    values = [float(base["contribution"][0])] + shown["contribution"].to_list() + [rest]
    measures = ["absolute"] + ["relative"] * (len(values) - 1)
    fig = go.Figure(go.Waterfall(x=values, y=labels, measure=measures, orientation="h"))
    fig.update_layout(title="What pushes this invoice towards paying late (right) or on time (left)", height=480,
                      xaxis_title="push on the late-payment score (log-odds)",
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, yaxis={"autorange": "reversed"})
    return fig


def _value_words(value: str) -> str:
    """A feature value as a person reads it: 37.388084665 → "37.4", "None" → "—", "true" → "yes"."""
    if value in ("None", "", "nan", "NaN"):
        return EMPTY
    if value.lower() in ("true", "false"):
        return "yes" if value.lower() == "true" else "no"
    try:
        number = float(value)
    except ValueError:
        return words(value)
    return f"{number:,.0f}" if number.is_integer() else f"{number:,.2f}".rstrip("0").rstrip(".")


def dependence_chart(frame: pl.DataFrame, feature: str) -> go.Figure:
    """Scatter of a feature's value against its contribution."""
    fig = go.Figure(go.Scattergl(x=frame["value"].to_list(), y=frame["contribution"].to_list(), mode="markers",
                                 marker={"size": 4, "opacity": 0.5}))
    fig.update_layout(title=f"How {feature_label(feature).lower()} moves the score", xaxis_title=feature_label(feature),
                      yaxis_title="push on the late-payment score (log-odds)",
                      height=380, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def calibration_chart(metrics: dict[str, Any]) -> go.Figure:
    """Predicted vs observed share late per bin, model and baseline, with the diagonal."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Perfect", line={"dash": "dot", "color": "grey"}))
    for name in ("model", "baseline"):
        curve = metrics.get(name, {}).get("curve") or []
        fig.add_trace(
            go.Scatter(
                x=[c["predicted"] for c in curve],
                y=[c["observed"] for c in curve],
                mode="lines+markers",
                name={"model": "Model", "baseline": "Naive baseline"}[name],
                text=[f"{c['count']} invoices" for c in curve],
            )
        )
    fig.update_layout(title="Predicted against observed, on the test period", xaxis_title="predicted chance of paying late",
                      yaxis_title="share that paid late", xaxis_tickformat=".0%", yaxis_tickformat=".0%", height=380, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


# --------------------------------------------------------------------------------------------
# the model and one invoice, in words
# --------------------------------------------------------------------------------------------
#: How the pay dates are modelled, for a finance reader (the card's formulation is the
#: technical version, shown under it).
PAY_DATE_MODEL_TEXT = (
    "For each open invoice the model estimates, week by week, the chance that it is paid that week if it has not "
    "been paid yet, from how the customer and similar invoices paid before. Chaining the weeks gives the chance "
    "it is still unpaid after any number of days: the expected pay date is where that chance falls to one half, "
    "and the early and late pay dates (P10 and P90) are set so that 8 in 10 invoices were paid between them in a "
    "period the model had not seen. Invoices that were still unpaid when the model learnt count for the weeks "
    "they were seen open, so slow payers are not left out."
)


def model_verdict(card: dict[str, Any]) -> str:
    """What the card says about the model against the naive baseline, in one or two sentences
    (from its test metrics on a later, held-out period)."""
    nyd = card["metrics"]["not_yet_due"]
    model, baseline = nyd["model"], nyd["baseline"]
    parts = []
    if model.get("auc") is not None and baseline.get("auc") is not None:
        gain = model["auc"] - baseline["auc"]
        better = "better than" if gain > 0.005 else "no better than" if gain > -0.005 else "worse than"
        what = (
            "how many days late the customer paid, on average, the invoices paid by then"
            if card.get("baseline")
            else "each customer's past share of late invoices"
        )
        parts.append(
            f"On invoices not yet due, the model tells late payers from on-time ones {better} the naive baseline "
            f"({what}): AUC {model['auc']:.3f} against {baseline['auc']:.3f} "
            f"({gain:+.3f}; 0.5 is a coin toss, 1 is perfect)."
        )
    if model.get("ece") is not None and baseline.get("ece") is not None:
        parts.append(
            f"Its probabilities are off by {model['ece'] * 100:.1f} points on average, the baseline's by "
            f"{baseline['ece'] * 100:.1f}."
        )
    pay = card["metrics"].get("pay_date", {})
    if pay.get("p50_mae_days") is not None and pay.get("baseline_p50_mae_days") is not None:
        parts.append(
            f"Its expected pay dates miss by {pay['p50_mae_days']:.1f} days (median), the baseline's by "
            f"{pay['baseline_p50_mae_days']:.1f}."
        )
    return " ".join(parts) or "The model card has no test metrics to compare with the naive baseline."


def pay_date_cards(card: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The card's pay-date figures as (label, value, help) for metric cards."""
    pay = card["metrics"].get("pay_date", {})
    ece = pay.get("p_paid_30d", {}).get("ece")
    coverage = pay.get("p10_p90_coverage")
    return [
        ("Pay date error, model", days(pay.get("p50_mae_days")),
         "How far the expected pay date (P50) was from the real one, typically, on the test period."),
        ("Pay date error, baseline", days(pay.get("baseline_p50_mae_days")),
         "The same for the naive baseline (the customer's usual days late)."),
        ("Paid between P10 and P90", percent(coverage, share=True, decimals=0),
         "Share of test invoices paid between the early and late pay dates; 80% is the aim."),
        ("P(paid within 30 days) off by", EMPTY if ece is None else f"{ece * 100:.1f} points",
         "Average gap between the predicted and the observed share paid within 30 days (calibration error)."),
    ]


def _a(probability: float) -> str:
    """ "a 34%", "an 86%", "an 11%": the article as the percentage is spoken."""
    text = f"{probability:.0%}"
    return f"an {text}" if text.startswith("8") or text[:2] in ("11", "18") else f"a {text}"


def probability_sentence(score: dict[str, Any], *, as_of: date) -> str:
    """One invoice's probabilities in words, from a row of
    :func:`dashboard.risk.score_open_invoices` (invoice_id, open_amount, due_date, p_late,
    p_paid_30d, pay_date_p10/p50/p90)."""
    due = score.get("due_date")
    late_by = (as_of - due).days if due is not None else None
    head = f"{score['invoice_id']} ({money(score.get('open_amount'))}"
    if due is None:
        head += ")"
    elif late_by > 0:
        head += f", due {day(due)}, {late_by:,} days past due)"
    else:
        head += f", due {day(due)}{', today' if late_by == 0 else f', in {-late_by:,} days'})"
    p_paid = score.get("p_paid_30d")
    sentences = []
    if p_paid is not None:
        sentences.append(
            f"{head}: the model gives it {_a(p_paid)} chance of being paid within the next 30 days "
            f"(about {round(p_paid * 10):.0f} in 10 invoices like it are)."
        )
    else:
        sentences.append(f"{head}: the model gives no 30-day estimate for it.")
    p_late = score.get("p_late")
    if late_by is not None and late_by <= 0 and p_late is not None:
        sentences.append(f"The chance it is paid after its due date is {p_late:.0%}.")
    elif late_by is not None and late_by > 0:
        sentences.append("It is already late, so what matters is when it will be paid.")
    p10, p50, p90 = score.get("pay_date_p10"), score.get("pay_date_p50"), score.get("pay_date_p90")
    if p50 is not None:
        spread = f" (8 in 10 between {day(p10)} and {day(p90)})" if p10 is not None and p90 is not None else ""
        sentences.append(f"Expected pay date: {day(p50)}{spread}.")
    else:
        sentences.append("It is unlikely to be paid within the 26 weeks the pay-date model looks ahead.")
    return " ".join(sentences)
