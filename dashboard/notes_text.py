"""What a CRM note or support ticket says about getting paid: sentiment and flags.

Sentiment is VADER's compound score (-1 very negative .. +1 very positive; the lexicon ships
inside the vaderSentiment wheel, so nothing is downloaded). Flags are cue-word matches,
comma-separated in a fixed order: ``distress`` (the customer is short of cash), ``dispute``
(they contest the bill), ``promise`` (they said when they will pay).
"""

from __future__ import annotations

from functools import lru_cache

import polars as pl

FLAG_CUES: dict[str, tuple[str, ...]] = {
    "distress": (
        "cash flow", "cashflow", "cash crunch", "cash squeeze", "tight on cash", "short on cash", "can't pay",
        "cannot pay", "unable to pay", "no funds", "insufficient funds", "bankrupt", "insolven", "administration",
        "layoff", "laid off", "restructur", "financial difficult", "struggling", "payment plan", "extension",
        "defer", "hardship", "overdraft", "bounced",
    ),
    "dispute": (
        "dispute", "disputed", "wrong price", "pricing error", "overcharg", "incorrect", "not received", "never received",
        "damaged", "defective", "short shipped", "short-shipped", "quantity", "missing po", "no po", "purchase order",
        "duplicate", "billed twice", "credit note", "credit memo", "refund", "complain", "quality", "contest",
    ),
    "promise": (
        "will pay", "we'll pay", "will be paid", "payment on", "pay by", "paying on", "promise", "promised", "scheduled",
        "in the next run", "next payment run", "payment run", "cheque is in the post", "check is in the mail",
        "processing payment", "approved for payment", "remittance", "wire on", "transfer on",
    ),
}


@lru_cache(maxsize=1)
def _analyzer():  # noqa: ANN202 - vaderSentiment has no type hints
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_score(text: str | None) -> float | None:
    """VADER compound score of one text, or None for a blank one."""
    if text is None or not text.strip():
        return None
    return float(_analyzer().polarity_scores(text)["compound"])


def sentiment_expr(text: pl.Expr) -> pl.Expr:
    """Compound sentiment per note.

    VADER scores one text at a time, so this is the one per-row Python call in ingest; notes
    are thousands, not millions, of rows.
    """
    return text.map_elements(sentiment_score, return_dtype=pl.Float64, skip_nulls=True)


def flags_expr(text: pl.Expr) -> pl.Expr:
    """``"distress,promise"`` style flags from cue words (vectorized); null when none."""
    lowered = text.str.to_lowercase()
    parts = [
        pl.when(pl.any_horizontal([lowered.str.contains(cue, literal=True) for cue in cues])).then(pl.lit(flag))
        for flag, cues in FLAG_CUES.items()
    ]
    joined = pl.concat_str(parts, separator=",", ignore_nulls=True)
    return pl.when(joined == "").then(None).otherwise(joined)


def note_flags(text: str) -> list[str]:
    """The flags of one text (for tests and the invoice detail view)."""
    value = pl.select(flags_expr(pl.lit(text, dtype=pl.String))).item()
    return value.split(",") if value else []
