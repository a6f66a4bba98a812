"""The day's collections work: next best action, priority, grouping per customer, capacity.

:func:`build_worklist` turns the open invoices on ``as_of`` into one line per customer:

1. **Policy.** Each open invoice gets the action of the first matching rule of the active
   policy (see :mod:`dashboard.policy`). Strategic customers and customers with an open
   dispute are always routed to a person (hand to credit manager, requires review), whatever
   the rule says.
2. **Promises.** An invoice with a promise to pay is snoozed until the promised date plus
   ``promise_grace_days``; a promise whose deadline passed with no touch since escalates the
   action one step (:data:`BROKEN_PROMISE_ESCALATION`).
3. **One touch per customer.** A customer's actionable invoices form one line and one message;
   the line takes the most pressing of their actions.
4. **Cadence.** A customer touched (contacts, or worklist actions exported or done) less than the
   line's ``cadence_days`` ago is held, so building the worklist twice for the same day never
   recommends the same touch twice.
5. **What worked.** Response rates by action × segment are measured from the contact history
   (a touch "responded" when its outcome was a promise to pay or a payment), shrunk towards an
   assumed rate by :data:`PRIOR_CONTACTS` pseudo-contacts so a rate from few contacts is not
   trusted (and says so). When another action of the same kind measurably works better for the
   segment, it replaces the policy's (the line says why).
6. **Priority** = expected cash accelerated per minute of effort:
   ``Σ open amount × response rate × P(payment still to come) / effort minutes``, where
   P(payment still to come) = P(not paid by the day after the touch, but paid within
   :data:`COLLECTION_HORIZON_DAYS`) — the chance that a response can bring the payment forward:
   an invoice that pays tomorrow anyway, or old debt that will not be paid at all, gains little
   from a touch. It comes from the survival curve of the scorer in use
   (:func:`dashboard.scoring.scores_for`: the risk model when it beat the customer-history
   baseline on its held-out months, else that baseline; computed once per data version and
   kept in the store). With scores given without a curve, the curve is extended from
   P(paid within 30 days) with a constant daily hazard; with scoring switched off, a rule by
   days past due (:data:`FALLBACK_PAY_PROBABILITY`) gives P(paid within 30 days). The result
   says which was used and why.
7. **Capacity.** Lines are assigned to the customer's owner; each collector gets at most
   ``capacity_per_collector`` lines per business day, by priority. What does not fit today is
   scheduled on the next business days, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from dashboard import audit
from dashboard.access import Actor, authorize
from dashboard.display import count, money
from dashboard.errors import RecoupError, WorklistError
from dashboard.filters import Filters
from dashboard.ledger import open_items_sql
from dashboard.pilot import empty_holdout, split_pilot_holdout
from dashboard.policy import (
    EFFORT_MINUTES,
    ESCALATION_ORDER,
    RULE_COLUMNS,
    current_policy,
    ensure_default_policy,
    load_policy,
    match_rules_sql,
)
from dashboard.schema import PAID_WITHIN_DAYS
from dashboard.scoring import Scorer, active_scorer, scores_for, survival_column
from dashboard.store import Store, utcnow
from dashboard.vocabulary import (
    ACTIONS,
    AUTOMATED_CHANNELS,
    CONTACT_ACTION,
    OUTCOMES,
    PROMISE_GRACE_DAYS,
    RESPONDED_OUTCOMES,
    RISK_TIER_CUTS,
    words,
)

if TYPE_CHECKING:
    from dashboard.risk import RiskModel

UNASSIGNED = "unassigned"
PERSON_ACTION = "hand to credit manager"
# Probability of payment within 30 days when no model is active: a plain rule by days past
# due (upper bound of the band, probability). Older debt is less likely to pay by itself.
FALLBACK_PAY_PROBABILITY: tuple[tuple[int, float], ...] = (
    (0, 0.85),
    (15, 0.70),
    (30, 0.60),
    (45, 0.50),
    (60, 0.40),
    (90, 0.25),
    (180, 0.12),
    (10**9, 0.04),
)
# A touch can only bring forward a payment that is still to come: not paid by the day after the
# touch (the earliest a response can pay), and paid within the collection horizon (26 weeks, the
# risk model's hazard horizon; later or never is debt a reminder does not move).
RESPONSE_DAYS = 1
COLLECTION_HORIZON_DAYS = 182
# Response rates assumed before any contact history (share of touches answered by a promise
# to pay or a payment); measured rates are shrunk towards these.
ASSUMED_RESPONSE_RATE: dict[str, float] = {
    "gentle reminder": 0.25,
    "value-added follow-up": 0.25,
    "escalation notice": 0.20,
    "call": 0.35,
    "payment-plan offer": 0.30,
    "credit hold": 0.30,
    "hand to credit manager": 0.35,
}
PRIOR_CONTACTS = 20.0  # weight of the assumed rate, in contacts
MIN_CONTACTS_FOR_RATE = 30  # below this a measured rate "is mostly the assumption"
# Actions of the same kind the measured response rates may swap in for the policy's action.
ALTERNATIVE_ACTIONS: dict[str, tuple[str, ...]] = {
    "gentle reminder": ("value-added follow-up",),
    "value-added follow-up": ("gentle reminder",),
    "escalation notice": ("call",),
    "call": ("escalation notice", "payment-plan offer"),
    "payment-plan offer": ("call",),
}
SWITCH_MARGIN = 1.2  # an alternative must beat the policy action's value per minute by 20%
# Channel and template an action uses when the worklist (not a rule) chose it.
ACTION_STYLE: dict[str, tuple[str, str]] = {
    "gentle reminder": ("email", "gentle_reminder"),
    "value-added follow-up": ("email", "value_added_follow_up"),
    "escalation notice": ("email", "escalation_notice"),
    "call": ("call", "call"),
    "payment-plan offer": ("call", "payment_plan_offer"),
    "credit hold": ("letter", "credit_hold"),
    "hand to credit manager": ("person", "hand_to_credit_manager"),
}
BROKEN_PROMISE_ESCALATION: dict[str, str] = {
    "gentle reminder": "escalation notice",
    "value-added follow-up": "escalation notice",
    "escalation notice": "call",
    "call": "hand to credit manager",
    "payment-plan offer": "hand to credit manager",
    "credit hold": "hand to credit manager",
    "hand to credit manager": "hand to credit manager",
}
_CONTACT_TO_POLICY_ACTION = {v: k for k, v in CONTACT_ACTION.items()}
_DAY = "%-d %b %Y"  # dates in sentences, as dashboard.display.day writes them
_RESPONDED_SQL = ", ".join(f"'{outcome}'" for outcome in RESPONDED_OUTCOMES)

LINE_COLUMNS: tuple[str, ...] = (
    "line_id",
    "as_of",
    "scheduled_date",
    "day_offset",
    "queue_position",
    "collector",
    "customer_id",
    "customer_name",
    "email",
    "segment",
    "risk_tier",
    "action",
    "channel",
    "tone",
    "template_id",
    "rule_id",
    "requires_review",
    "automated",
    "invoice_count",
    "open_amount",
    "currency",
    "max_days_past_due",
    "oldest_due_date",
    "p_paid_horizon",
    "response_rate",
    "response_contacts",
    "expected_cash_accelerated",
    "effort_minutes",
    "priority",
    "probability_source",
    "broken_promise",
    "action_source",
    "reasons",
    "invoices",
)


@dataclass(frozen=True)
class WorklistResult:
    """A built worklist: compute once, render as a table, a message, CSV, XLSX or JSON.

    Attributes
    ----------
    as_of
        The day the worklist is for.
    lines
        One row per customer to touch (all of them, today's and those scheduled later), sorted
        by scheduled date then priority; columns :data:`LINE_COLUMNS` (``invoices`` is a list of
        structs: invoice_id, invoice_date, due_date, open_amount (document currency), currency
        (the document's), open_amount_base, days_past_due, dispute_open, p_paid_horizon, rule_id).
    held
        Customers and invoices deliberately not touched, with the reason and until when.
    response_rates
        The response rates used, by action × segment, with sample size and a note.
    """

    as_of: date
    lines: pl.DataFrame
    held: pl.DataFrame
    response_rates: pl.DataFrame
    policy_version: int | None  # None: the shipped default policy, saved as version 1 on first export
    model_id: str | None
    probability_source: str
    capacity_per_collector: int | None
    open_invoices: int = 0
    unmatched_invoices: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
    scorer: str | None = None  # "model", "baseline", "given scores" or None (the days-past-due rule)
    scorer_id: str | None = None
    scorer_reason: str = ""
    holdout: pl.DataFrame = field(default_factory=empty_holdout)  # a running pilot's holdout (dashboard.pilot)
    pilot_note: str | None = None

    def today(self) -> pl.DataFrame:
        """The lines scheduled for ``as_of`` (what fits today's capacity)."""
        return self.lines.filter(pl.col("scheduled_date") == self.as_of)

    def for_collector(self, collector: str) -> pl.DataFrame:
        """One collector's queue (all scheduled days)."""
        return self.lines.filter(pl.col("collector") == collector)

    def collectors(self) -> pl.DataFrame:
        """Per collector: lines today, lines scheduled later, open amount and priority today."""
        if self.lines.is_empty():
            return pl.DataFrame(
                schema={
                    "collector": pl.String,
                    "today": pl.UInt32,
                    "later": pl.UInt32,
                    "open_amount_today": pl.Float64,
                    "expected_cash_accelerated_today": pl.Float64,
                }
            )
        is_today = pl.col("scheduled_date") == self.as_of
        return (
            self.lines.group_by("collector")
            .agg(
                today=is_today.sum(),
                later=(~is_today).sum(),
                open_amount_today=pl.col("open_amount").filter(is_today).sum(),
                expected_cash_accelerated_today=pl.col("expected_cash_accelerated").filter(is_today).sum(),
            )
            .sort("collector")
        )

    def summary(self) -> dict[str, Any]:
        """Headline figures (JSON-ready)."""
        today = self.today()
        return {
            "as_of": self.as_of.isoformat(),
            "lines_today": today.height,
            "lines_later": self.lines.height - today.height,
            "collectors": int(self.lines["collector"].n_unique()) if self.lines.height else 0,
            "open_amount_today": round(float(today["open_amount"].sum() or 0.0), 2),
            "expected_cash_accelerated_today": round(float(today["expected_cash_accelerated"].sum() or 0.0), 2),
            "held": self.held.height,
            "open_invoices": self.open_invoices,
            "unmatched_invoices": self.unmatched_invoices,
            "policy_version": self.policy_version,
            "model_id": self.model_id,
            "scorer": self.scorer,
            "scorer_reason": self.scorer_reason,
            "probability_source": self.probability_source,
            "capacity_per_collector": self.capacity_per_collector,
        }

    def policy_label(self) -> str:
        if self.policy_version is None:
            return "shipped default policy (saved as a version on the first export)"
        return f"policy v{self.policy_version}"

    def summary_line(self) -> str:
        s = self.summary()
        return (
            f"{s['as_of']}: {s['lines_today']} lines today for {s['collectors']} collector(s), "
            f"{s['lines_later']} scheduled later, {s['held']} held; "
            f"{s['open_amount_today']:,.2f} open in today's lines; {self.policy_label()}; "
            f"{s['probability_source']}"
        )


# -- inputs -----------------------------------------------------------------------------------
def _band_sql(days: str, bands: Sequence[tuple[int, float]]) -> str:
    cases = " ".join(f"WHEN {days} <= {upper} THEN {p}" for upper, p in bands)
    return f"(CASE {cases} ELSE {bands[-1][1]} END)"


def _fallback_probability_sql(days: str) -> str:
    return _band_sql(days, FALLBACK_PAY_PROBABILITY)


def _constant_hazard_survival(p_paid: pl.Expr, days: int) -> pl.Expr:
    """P(still unpaid after ``days``) from P(paid within :data:`PAID_WITHIN_DAYS`), constant daily hazard."""
    return (1.0 - p_paid.clip(0.0, 0.999)) ** (days / PAID_WITHIN_DAYS)


def _gain_if_answered(still_open_after_touch: pl.Expr, still_open_at_horizon: pl.Expr) -> pl.Expr:
    """P(payment still to come): unpaid when a response can act, paid within the collection horizon.

    ``S(RESPONSE_DAYS) − S(COLLECTION_HORIZON_DAYS)`` for the survival curve S (probability the
    invoice is still unpaid after so many days without a touch). A response brings forward only
    such a payment: not one that comes by tomorrow anyway, and not debt that is never paid.
    """
    return (still_open_after_touch - still_open_at_horizon).clip(0.0, 1.0)


def _risk_tier_expr(column: str) -> pl.Expr:
    expr = pl.lit(RISK_TIER_CUTS[-1][1])
    for cut, tier in reversed(RISK_TIER_CUTS[:-1]):
        expr = pl.when(pl.col(column) < cut).then(pl.lit(tier)).otherwise(expr)
    return expr


def _scorer_scores(
    store: Store,
    as_of: date,
    *,
    use_model: bool,
    model: RiskModel | None,
    scorer: Scorer | None,
    models_dir: str | None = None,
) -> tuple[pl.DataFrame | None, Scorer | None]:
    """Every open invoice's P(late), P(paid within 30 days) and survival after the touch and at
    the horizon, from :func:`dashboard.scoring.scores_for` (kept in the store once computed).

    The scorer: ``scorer``, else ``model``'s (the model, or the baseline its card chose), else the
    active model's, else the customer-history baseline fitted from the store (labelled as such).
    ``use_model`` false: none (the days-past-due rule).
    """
    if not use_model:
        return None, None
    if scorer is None:
        scorer = active_scorer(store, as_of, model=model, models_dir=models_dir)
    scored = scores_for(store, as_of, scorer=scorer, survival_days=(RESPONSE_DAYS, COLLECTION_HORIZON_DAYS))
    if scored.is_empty():
        return None, scorer
    return scored.select(
        "invoice_id", "p_late", "p_paid_30d",
        pl.col(survival_column(RESPONSE_DAYS)).alias("p_open_after_touch"),
        pl.col(survival_column(COLLECTION_HORIZON_DAYS)).alias("p_open_at_horizon"),
    ), scorer


def _with_survival_columns(scores: pl.DataFrame) -> pl.DataFrame:
    """Scores with ``p_late`` and the survival columns present (null when the scores lack them)."""
    return scores.select(
        "invoice_id",
        *[
            pl.col(c) if c in scores.columns else pl.lit(None, pl.Float64).alias(c)
            for c in ("p_late", "p_paid_30d", "p_open_after_touch", "p_open_at_horizon")
        ],
    )


def _open_cases(store: Store, as_of: date, filters: Filters, segments: pl.DataFrame) -> pl.DataFrame:
    """Open invoices with customer, dispute, segment and promise facts (one DuckDB query)."""
    open_sql, params = open_items_sql(as_of, filters=filters)
    sql = f"""
    WITH o AS ({open_sql}),
    seg AS (SELECT customer_id, segment FROM segments_frame),
    disputed AS (
        SELECT DISTINCT invoice_id FROM disputes
        WHERE invoice_id IS NOT NULL AND opened_date <= $as_of
          AND (resolved_date IS NULL OR resolved_date > $as_of)
    ),
    promised AS (
        SELECT customer_id, invoice_id, ts, promise_date FROM contacts
        WHERE outcome = 'promise to pay' AND promise_date IS NOT NULL AND ts::DATE <= $as_of
    ),
    promises AS (  -- latest promise per invoice; a promise without invoice covers the customer
        SELECT invoice_id, arg_max(promise_date, ts) AS promise_date FROM (
            SELECT o2.invoice_id, k.ts, k.promise_date
            FROM o o2 JOIN promised k ON k.invoice_id = o2.invoice_id
            UNION ALL
            SELECT o2.invoice_id, k.ts, k.promise_date
            FROM o o2 JOIN promised k ON k.invoice_id IS NULL AND k.customer_id = o2.customer_id
        ) GROUP BY invoice_id
    )
    SELECT o.invoice_id, o.customer_id, o.invoice_date, o.due_date,
           o.open_amount::DOUBLE AS open_amount,
           o.open_doc::DOUBLE AS open_amount_document,
           coalesce(o.currency, c.currency) AS currency,
           o.days_past_due,
           coalesce(c.name, o.customer_id) AS customer_name,
           coalesce(nullif(trim(c.owner), ''), '{UNASSIGNED}') AS collector,
           coalesce(c.strategic, false) AS strategic,
           c.email,
           seg.segment,
           (d.invoice_id IS NOT NULL) AS dispute_open,
           p.promise_date,
           {_fallback_probability_sql("o.days_past_due")} AS p_paid_rule
    FROM o
    LEFT JOIN customers c ON c.customer_id = o.customer_id
    LEFT JOIN seg ON seg.customer_id = o.customer_id
    LEFT JOIN disputed d ON d.invoice_id = o.invoice_id
    LEFT JOIN promises p ON p.invoice_id = o.invoice_id
    WHERE o.doc_type = 'invoice' AND o.open_amount > 0
    """
    named = {"as_of": as_of}
    # open_items_sql uses positional '?' parameters only for filters; inline them as named ones.
    for index, value in enumerate(params):
        sql = sql.replace("?", f"$f{index}", 1)
        named[f"f{index}"] = value
    return _query_with(store, sql, named, segments_frame=segments)


def _query_with(store: Store, sql: str, params: dict[str, Any], **frames: pl.DataFrame) -> pl.DataFrame:
    """Run ``sql`` on a fresh cursor with Polars ``frames`` registered under their names."""
    cur = store.cursor()
    try:
        for name, frame in frames.items():
            cur.register(name, frame)
        return cur.sql(sql, params=params).pl() if params else cur.sql(sql).pl()
    finally:
        cur.close()


def customer_segments_as_of(store: Store, as_of: date) -> pl.DataFrame:
    """Each customer's behavioural segment on ``as_of`` (:func:`dashboard.segments.assign_segments`,
    the same segments the risk features and the pay-date curves use). Columns: customer_id, segment."""
    from dashboard.segments import assign_segments

    try:
        return assign_segments(store, as_of, with_open_amount=False).select("customer_id", "segment")
    except RecoupError:
        return pl.DataFrame(schema={"customer_id": pl.String, "segment": pl.String})


def _last_touches(store: Store, as_of: date) -> pl.DataFrame:
    """Last touch date per customer: contacts, and worklist actions not skipped."""
    return store.query(
        """
        SELECT customer_id, max(day) AS last_touch FROM (
            SELECT customer_id, ts::DATE AS day FROM contacts WHERE ts::DATE <= $as_of AND customer_id IS NOT NULL
            UNION ALL
            SELECT customer_id, as_of FROM actions
            WHERE as_of <= $as_of AND coalesce(status, 'exported') <> 'skipped' AND customer_id IS NOT NULL
        ) GROUP BY customer_id
        """,
        {"as_of": as_of},
    )


def measure_response_rates(store: Store, as_of: date, *, segments: pl.DataFrame | None = None) -> pl.DataFrame:
    """Response rate by action × segment from the contact history up to ``as_of``.

    Columns: action (policy vocabulary), segment (null = all segments), contacts, responded,
    measured_rate, assumed_rate, rate (measured shrunk towards assumed by
    :data:`PRIOR_CONTACTS`; a segment's rate is shrunk towards its action's rate), note.
    """
    if segments is None:
        segments = customer_segments_as_of(store, as_of)
    history = _query_with(
        store,
        f"""
        WITH seg AS (SELECT customer_id, segment FROM segments_frame)
        SELECT k.action AS contact_action, seg.segment,
               count(*)::BIGINT AS contacts,
               count(*) FILTER (WHERE k.outcome IN ({_RESPONDED_SQL}))::BIGINT AS responded
        FROM contacts k LEFT JOIN seg USING (customer_id)
        WHERE k.ts::DATE <= $as_of AND k.action IS NOT NULL AND k.outcome IS NOT NULL
        GROUP BY ALL
        """,
        {"as_of": as_of},
        segments_frame=segments,
    )
    history = history.with_columns(
        action=pl.col("contact_action").replace_strict(_CONTACT_TO_POLICY_ACTION, default=None)
    ).filter(pl.col("action").is_not_null())
    assumed = pl.DataFrame({"action": list(ACTIONS), "assumed_rate": [ASSUMED_RESPONSE_RATE[a] for a in ACTIONS]})
    by_action = (
        history.group_by("action")
        .agg(pl.col("contacts").sum(), pl.col("responded").sum())
        .join(assumed, on="action", how="right")
        .with_columns(pl.col("contacts").fill_null(0), pl.col("responded").fill_null(0))
        .with_columns(
            rate=(pl.col("responded") + PRIOR_CONTACTS * pl.col("assumed_rate"))
            / (pl.col("contacts") + PRIOR_CONTACTS),
            segment=pl.lit(None, dtype=pl.String),
        )
    )
    by_segment = (
        history.filter(pl.col("segment").is_not_null())
        .group_by("action", "segment")
        .agg(pl.col("contacts").sum(), pl.col("responded").sum())
        .join(by_action.select("action", "assumed_rate", pl.col("rate").alias("action_rate")), on="action")
        .with_columns(
            rate=(pl.col("responded") + PRIOR_CONTACTS * pl.col("action_rate")) / (pl.col("contacts") + PRIOR_CONTACTS)
        )
        .drop("action_rate")
    )
    columns = ["action", "segment", "contacts", "responded", "assumed_rate", "rate"]
    rates = pl.concat([by_action.select(columns), by_segment.select(columns)], how="vertical_relaxed")
    return rates.with_columns(
        measured_rate=pl.when(pl.col("contacts") > 0).then(pl.col("responded") / pl.col("contacts")),
        note=pl.when(pl.col("contacts") == 0)
        .then(pl.format("no contacts yet: assumed rate {}%", (pl.col("assumed_rate") * 100).round(0).cast(pl.Int64)))
        .when(pl.col("contacts") < MIN_CONTACTS_FOR_RATE)
        .then(pl.format("only {} contacts: too few to trust, mostly the assumed rate", pl.col("contacts")))
        .otherwise(pl.format("measured on {} contacts", pl.col("contacts"))),
    ).sort("action", "segment", nulls_last=False)


def _rate_lookup(rates: pl.DataFrame) -> dict[tuple[str, str | None], dict[str, Any]]:
    return {(r["action"], r["segment"]): r for r in rates.to_dicts()}


def _rate_for(lookup: dict[tuple[str, str | None], dict[str, Any]], action: str, segment: str | None) -> dict[str, Any]:
    return lookup.get((action, segment)) or lookup[(action, None)]


def _choose_actions(pairs: pl.DataFrame, lookup: dict[tuple[str, str | None], dict[str, Any]]) -> pl.DataFrame:
    """For each distinct (policy action, segment, may_adjust): the action to use, its rate and why."""
    rows = []
    for pair in pairs.to_dicts():
        action, segment, may_adjust = pair["policy_action"], pair["segment"], pair["may_adjust"]
        rate = _rate_for(lookup, action, segment)
        chosen, chosen_rate, source = action, rate, "policy"
        if may_adjust:
            best_value = rate["rate"] / EFFORT_MINUTES[action]
            for alternative in ALTERNATIVE_ACTIONS.get(action, ()):
                alt = _rate_for(lookup, alternative, segment)
                value = alt["rate"] / EFFORT_MINUTES[alternative]
                if alt["contacts"] >= MIN_CONTACTS_FOR_RATE and value > SWITCH_MARGIN * best_value:
                    chosen, chosen_rate, best_value = alternative, alt, value
                    source = (
                        f"{words(alternative)} instead of the policy's {words(action)}: "
                        f"it got an answer from {alt['rate']:.0%} of "
                        f"{_segment_words(segment)} ({alt['contacts']:,} contacts) against {rate['rate']:.0%} "
                        f"({rate['contacts']:,} contacts), and more per minute of effort"
                    )
        rows.append(
            {
                "policy_action": action,
                "segment": segment,
                "may_adjust": may_adjust,
                "action": chosen,
                "response_rate": float(chosen_rate["rate"]),
                "response_contacts": int(chosen_rate["contacts"]),
                "response_note": chosen_rate["note"],
                "action_source": source,
            }
        )
    schema = {
        "policy_action": pl.String,
        "segment": pl.String,
        "may_adjust": pl.Boolean,
        "action": pl.String,
        "response_rate": pl.Float64,
        "response_contacts": pl.Int64,
        "response_note": pl.String,
        "action_source": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def _segment_words(segment: str | None) -> str:
    """"chronically late customers", "customers" (all segments)."""
    if segment is None:
        return "customers"
    return f"{words(segment)} customers".replace("customer customers", "customers")


def _business_days_after(start: date, offsets: pl.Series) -> pl.Series:
    days = np.busday_offset(np.datetime64(start, "D"), offsets.to_numpy(), roll="forward")
    return pl.Series(days.astype("datetime64[D]")).cast(pl.Date)


# -- build ------------------------------------------------------------------------------------
def build_worklist(
    store: Store,
    as_of: date,
    *,
    filters: Filters = Filters(),
    capacity_per_collector: int | None = None,
    policy_version: int | None = None,
    promise_grace_days: int = PROMISE_GRACE_DAYS,
    use_model: bool = True,
    respect_cadence: bool = True,
    scores: pl.DataFrame | None = None,
    model: RiskModel | None = None,
    models_dir: str | None = None,
    scorer: Scorer | None = None,
) -> WorklistResult:
    """Build the prioritized worklist for ``as_of`` (see the module docstring for the steps).

    Parameters
    ----------
    store
        The receivables store.
    as_of
        The working day; nothing after it is used.
    filters
        Customers to cover (region, industry, owner, currency).
    capacity_per_collector
        Most lines per collector per business day; ``None`` = everything today.
    policy_version
        The policy to apply; default the active one (the shipped default is saved if none).
    promise_grace_days
        Days after a promised date before the promise counts as broken.
    use_model
        Score the invoices (with ``scorer``, ``model``, the active model, or the customer-history
        baseline when no model can be used; see :func:`dashboard.scoring.scorer_for`); false: the
        days-past-due rule.
    respect_cadence
        Hold customers touched less than the rule's cadence ago (default). ``False`` ranks
        every actionable customer as if nobody had been touched: for analysis, never for a
        worklist that is sent.
    scores
        Risk scores to use instead of looking them up (``invoice_id``, ``p_paid_30d``,
        optionally ``p_late``, ``model_id``, and the survival columns ``p_open_after_touch`` and
        ``p_open_at_horizon`` (P(still unpaid) 1 day and 182 days after ``as_of``); without them the
        survival curve is extended from ``p_paid_30d``).
    model
        A risk model whose scorer to use (the model, or the baseline its card chose) instead of
        the active one. Ignored when ``scores`` or ``scorer`` are given or ``use_model`` is false.
    scorer
        The scorer to use (:func:`dashboard.scoring.scorer_for`).
    models_dir
        The model registry to take the active model from (default: the store's; see
        :func:`dashboard.registry.resolve_models_dir`).
    """
    if capacity_per_collector is not None and capacity_per_collector < 1:
        msg = f"Capacity must be at least 1 contact per collector per day; got {capacity_per_collector!r}."
        raise WorklistError(msg)
    if policy_version is not None:
        version, rules = policy_version, load_policy(store, policy_version)
    else:
        version, rules = current_policy(store)
    segments = customer_segments_as_of(store, as_of)
    cases = _open_cases(store, as_of, filters, segments)
    open_count = cases.height

    used: Scorer | None = None
    model_notice = None
    if scores is not None:
        model_id = str(scores["model_id"][0]) if "model_id" in scores.columns and scores.height else "given scores"
        scores = _with_survival_columns(scores)
        scorer_kind, scorer_id, scorer_reason, scorer_label = "given scores", model_id, "scores given to the worklist", f"model {model_id}"
    else:
        scores, used = _scorer_scores(
            store, as_of, use_model=use_model, model=model, scorer=scorer, models_dir=models_dir
        )
        model_id = used.model_id if used is not None else None
        scorer_kind = used.kind if used is not None else None
        scorer_id = used.scorer_id if used is not None else None
        scorer_reason = used.reason if used is not None else ""
        scorer_label = used.label if used is not None else ""
        model_notice = getattr(getattr(used, "model", None), "notice", None)
    extended = (
        f"; the survival curve past {PAID_WITHIN_DAYS} days is extended from P(paid within {PAID_WITHIN_DAYS} days) "
        "with a constant daily hazard"
    )
    if scores is not None:
        cases = cases.join(scores, on="invoice_id", how="left")
        scored = cases["p_paid_30d"].is_not_null().sum()
        with_curve = cases["p_open_at_horizon"].is_not_null().sum()
        probability_source = (
            f"P(paid within {PAID_WITHIN_DAYS} days) from {scorer_label}"
            + (
                ""
                if scored == cases.height
                else f" ({cases.height - scored} unscored invoices use the days-past-due rule)"
            )
            + (
                f"; P(payment still to come) from its survival curve up to {COLLECTION_HORIZON_DAYS} days"
                if 0 < with_curve == scored
                else extended
            )
        )
    else:
        cases = cases.with_columns(
            p_late=pl.lit(None, pl.Float64),
            p_paid_30d=pl.lit(None, pl.Float64),
            p_open_after_touch=pl.lit(None, pl.Float64),
            p_open_at_horizon=pl.lit(None, pl.Float64),
        )
        probability_source = (
            f"risk scores switched off: P(paid within {PAID_WITHIN_DAYS} days) from a rule by days past due "
            f"({', '.join(f'≤{u}: {p:.0%}' if u < 10**9 else f'older: {p:.0%}' for u, p in FALLBACK_PAY_PROBABILITY)})"
            + extended
        )
    cases = (
        cases.with_columns(
            p_paid_horizon=pl.coalesce("p_paid_30d", "p_paid_rule"),
            probability_from=pl.when(pl.col("p_paid_30d").is_not_null())
            .then(pl.lit("model"))
            .otherwise(pl.lit("rule")),
        )
        .with_columns(
            # the tier a collector sees agrees with the probability beside it: the chance the
            # invoice is not paid within the next 30 days (P(late) is ~1 for any overdue invoice)
            risk_basis=1.0 - pl.col("p_paid_horizon"),
            # the model's curve when it scored the invoice; otherwise extended from P(paid within 30 days)
            p_gain_if_answered=_gain_if_answered(
                pl.coalesce("p_open_after_touch", _constant_hazard_survival(pl.col("p_paid_horizon"), RESPONSE_DAYS)),
                pl.coalesce(
                    "p_open_at_horizon", _constant_hazard_survival(pl.col("p_paid_horizon"), COLLECTION_HORIZON_DAYS)
                ),
            ),
        )
        .with_columns(risk_tier=_risk_tier_expr("risk_basis"))
    )

    # 1. policy rule per invoice
    matched = _query_with(
        store,
        match_rules_sql("cases_frame", "rules_frame"),
        {},
        rules_frame=rules,
        cases_frame=cases.select(
            pl.col("invoice_id").alias("case_key"),
            "segment",
            "risk_tier",
            "days_past_due",
            "open_amount",
            "dispute_open",
            "strategic",
        ),
    )
    invoices = cases.join(matched.rename({"case_key": "invoice_id"}), on="invoice_id", how="inner")
    unmatched = open_count - invoices.height

    # 2. promises: snooze, or escalate when broken and nobody followed up since
    touches = _last_touches(store, as_of)
    deadline = pl.col("promise_date") + pl.duration(days=promise_grace_days)
    invoices = invoices.join(touches, on="customer_id", how="left").with_columns(
        snoozed=pl.col("promise_date").is_not_null() & (pl.lit(as_of) <= deadline),
        broken_promise=pl.col("promise_date").is_not_null()
        & (pl.lit(as_of) > deadline)
        & (pl.col("last_touch").is_null() | (pl.col("last_touch") <= deadline)),
    )
    snoozed = invoices.filter(pl.col("snoozed"))
    actionable = (
        invoices.filter(~pl.col("snoozed"))
        .with_columns(
            invoice_action=pl.when(pl.col("broken_promise"))
            .then(pl.col("rule_action").replace_strict(BROKEN_PROMISE_ESCALATION, default=pl.col("rule_action")))
            .otherwise(pl.col("rule_action")),
        )
        .with_columns(severity=pl.col("invoice_action").replace_strict(ESCALATION_ORDER, default=0))
    )

    # 3. one line per customer: the most pressing invoice sets the action
    person_only = (pl.col("strategic").any() | pl.col("dispute_open").any()).over("customer_id")
    actionable = actionable.with_columns(person_only=person_only)
    lead = (
        actionable.sort(["severity", "open_amount", "invoice_id"], descending=[True, True, False])
        .group_by("customer_id", maintain_order=True)
        .first()
    )
    invoice_struct = pl.struct(
        "invoice_id",
        "invoice_date",
        "due_date",
        pl.col("open_amount_document").alias("open_amount"),
        "currency",
        pl.col("open_amount").alias("open_amount_base"),
        "days_past_due",
        "dispute_open",
        "p_paid_horizon",
        pl.col("rule_rule_id").alias("rule_id"),
    )
    grouped = (
        actionable.sort("days_past_due", "invoice_id", descending=[True, False])
        .group_by("customer_id")
        .agg(
            invoice_count=pl.len(),
            open_amount=pl.col("open_amount").sum(),
            open_moved=(pl.col("open_amount") * pl.col("p_gain_if_answered")).sum(),
            p_paid_horizon=(pl.col("open_amount") * pl.col("p_paid_horizon")).sum() / pl.col("open_amount").sum(),
            max_days_past_due=pl.col("days_past_due").max(),
            oldest_due_date=pl.col("due_date").min(),
            broken_promise=pl.col("broken_promise").any(),
            any_dispute=pl.col("dispute_open").any(),
            model_share=(pl.col("probability_from") == "model").mean(),
            invoices=invoice_struct,
        )
    )
    lines = lead.select(
        "customer_id",
        "customer_name",
        "collector",
        "email",
        "segment",
        "risk_tier",
        "strategic",
        "person_only",
        "last_touch",
        "currency",
        pl.col("invoice_action").alias("policy_action"),
        *[
            pl.col(f"rule_{c}").alias(c if c != "action" else "rule_action")
            for c in RULE_COLUMNS
            if c in ("rule_id", "channel", "tone", "template_id", "cadence_days", "requires_review", "action")
        ],
    ).join(grouped, on="customer_id")

    # 4. the person-only override, and escalated actions get that action's style
    lines = lines.with_columns(
        policy_action=pl.when(pl.col("person_only")).then(pl.lit(PERSON_ACTION)).otherwise(pl.col("policy_action")),
        may_adjust=~pl.col("person_only") & ~pl.col("requires_review"),
    )

    # 5. what worked: response rates, and a better action of the same kind when measured
    rates = measure_response_rates(store, as_of, segments=segments)
    lookup = _rate_lookup(rates)
    choices = _choose_actions(lines.select("policy_action", "segment", "may_adjust").unique(), lookup)
    lines = lines.join(choices, on=["policy_action", "segment", "may_adjust"], how="left", nulls_equal=True)
    restyled = pl.col("action") != pl.col("rule_action")
    style_channel = pl.col("action").replace_strict({a: s[0] for a, s in ACTION_STYLE.items()})
    style_template = pl.col("action").replace_strict({a: s[1] for a, s in ACTION_STYLE.items()})
    lines = lines.with_columns(
        channel=pl.when(restyled).then(style_channel).otherwise(pl.col("channel")),
        template_id=pl.when(restyled).then(style_template).otherwise(pl.col("template_id")),
        tone=pl.when(pl.col("broken_promise") & restyled)
        .then(pl.lit("firm"))
        .otherwise(pl.coalesce("tone", pl.lit("neutral"))),
        requires_review=pl.col("requires_review") | pl.col("person_only") | (pl.col("action") == PERSON_ACTION),
        action_source=pl.when(pl.col("person_only") & pl.col("strategic"))
        .then(pl.lit("strategic customer: never automated, goes to a person"))
        .when(pl.col("person_only"))
        .then(pl.lit("open dispute: goes to a person until resolved"))
        .when(pl.col("broken_promise") & (pl.col("policy_action") != pl.col("rule_action")))
        .then(pl.format("broken promise: escalated from rule {} ({})", pl.col("rule_id"), pl.col("rule_action")))
        .when(pl.col("action_source") == "policy")
        .then(pl.format("policy rule {}", pl.col("rule_id")))
        .otherwise(pl.col("action_source")),
    ).with_columns(
        automated=pl.col("channel").is_in(list(AUTOMATED_CHANNELS)) & ~pl.col("requires_review"),
    )

    # 6. cadence: never sooner than the rule's cadence after the last touch (and never twice a day)
    next_allowed = pl.col("last_touch") + pl.duration(
        days=pl.max_horizontal(pl.col("cadence_days").fill_null(0), pl.lit(1))
    )
    waiting = pl.col("last_touch").is_not_null() & (pl.lit(as_of) < next_allowed) & pl.lit(respect_cadence)
    lines = lines.with_columns(next_allowed=next_allowed, waiting=waiting)
    held_cadence = lines.filter(pl.col("waiting"))
    lines = lines.filter(~pl.col("waiting"))

    # 7. priority: expected cash accelerated per minute of effort
    lines = lines.with_columns(
        expected_cash_accelerated=pl.col("open_moved") * pl.col("response_rate"),
        effort_minutes=pl.col("action").replace_strict(EFFORT_MINUTES, return_dtype=pl.Float64),
    ).with_columns(priority=pl.col("expected_cash_accelerated") / pl.col("effort_minutes"))

    # a running pilot's holdout keeps the usual cadence: listed apart, never worklist lines
    lines, holdout, pilot_note = split_pilot_holdout(store, as_of, lines)

    # 8. capacity per collector per business day; overflow scheduled, never dropped
    lines = lines.sort(["priority", "customer_id"], descending=[True, False]).with_columns(
        queue_position=pl.int_range(1, pl.len() + 1).over("collector"),
    )
    if capacity_per_collector is None:
        lines = lines.with_columns(day_offset=pl.lit(0, pl.Int64))
    else:
        lines = lines.with_columns(day_offset=((pl.col("queue_position") - 1) // capacity_per_collector).cast(pl.Int64))
    lines = lines.with_columns(
        scheduled_date=_business_days_after(as_of, lines["day_offset"]) if lines.height else pl.lit(None, pl.Date),
    )
    # a weekend as_of rolls forward: today's lines are those with offset 0
    lines = lines.with_columns(
        scheduled_date=pl.when(pl.col("day_offset") == 0).then(pl.lit(as_of)).otherwise(pl.col("scheduled_date"))
    )

    lines = lines.with_columns(
        line_id=pl.format("{}-{}", pl.lit(as_of.strftime("%Y%m%d")), pl.col("customer_id")),
        as_of=pl.lit(as_of),
        probability_source=pl.when(pl.col("model_share") > 0)
        .then(pl.lit(scorer_label))
        .otherwise(pl.lit("days-past-due rule")),
    )
    lines = lines.with_columns(_reasons(lines, scorer_label if scorer_kind != "given scores" else "risk model"))
    lines = lines.select(LINE_COLUMNS).sort(
        ["scheduled_date", "priority", "customer_id"], descending=[False, True, False]
    )
    held = _held_frame(snoozed, held_cadence, promise_grace_days)
    notes = [model_notice] if model_notice else []
    if scores is None:
        notes.append(probability_source)
    return WorklistResult(
        as_of=as_of,
        lines=lines,
        held=held,
        response_rates=rates,
        policy_version=version,
        model_id=model_id,
        probability_source=probability_source,
        capacity_per_collector=capacity_per_collector,
        open_invoices=open_count,
        unmatched_invoices=unmatched,
        notes=tuple(notes),
        scorer=scorer_kind,
        scorer_id=scorer_id,
        scorer_reason=scorer_reason,
        holdout=holdout,
        pilot_note=pilot_note,
    )


def _reasons(lines: pl.DataFrame, scorer_label: str) -> pl.Series:
    """Each line's reasons in words (money with its currency, actions and segments by name;
    ``scorer_label`` names what gave the payment probabilities)."""
    texts = []
    columns = (
        "invoice_count", "open_amount", "max_days_past_due", "action_source", "p_paid_horizon", "model_share",
        "open_moved", "action", "response_rate", "response_note", "broken_promise", "any_dispute", "segment",
    )
    weeks = COLLECTION_HORIZON_DAYS // 7
    for r in lines.select(columns).iter_rows(named=True):
        still_to_come = r["open_moved"] / r["open_amount"] if r["open_amount"] else 0.0
        parts = [
            f"{count(r['invoice_count'], 'invoice')}, {money(r['open_amount'])} open, "
            f"oldest {r['max_days_past_due']:,} days past due",
            f"action: {r['action_source']}",
            f"P(paid within {PAID_WITHIN_DAYS} days) {r['p_paid_horizon']:.0%} "
            f"({scorer_label if r['model_share'] > 0 else 'days-past-due rule'})",
            f"{still_to_come:.0%} of the open amount still to come (not paid by tomorrow, paid within {weeks} weeks)",
            f"{words(r['action'])} gets an answer {r['response_rate']:.0%} of the time "
            f"({r['response_note']})",
        ]
        if r["broken_promise"]:
            parts.append("broken promise to pay")
        if r["any_dispute"]:
            parts.append("open dispute")
        if r["segment"] is not None:
            parts.append(f"segment: {words(r['segment'])}")
        texts.append("; ".join(parts))
    return pl.Series("reasons", texts, dtype=pl.String)


def _held_frame(snoozed: pl.DataFrame, waiting: pl.DataFrame, grace: int) -> pl.DataFrame:
    schema = {
        "customer_id": pl.String,
        "customer_name": pl.String,
        "collector": pl.String,
        "invoice_ids": pl.List(pl.String),
        "open_amount": pl.Float64,
        "reason": pl.String,
        "until": pl.Date,
    }
    parts = []
    if snoozed.height:
        parts.append(
            snoozed.group_by("customer_id", "customer_name", "collector", "promise_date")
            .agg(invoice_ids=pl.col("invoice_id").sort(), open_amount=pl.col("open_amount").sum())
            .with_columns(
                until=(pl.col("promise_date") + pl.duration(days=grace)).cast(pl.Date),
                reason=pl.format(
                    "promise to pay on {} (+{} days grace)", pl.col("promise_date").dt.strftime(_DAY), pl.lit(grace)
                ),
            )
            .select(list(schema))
        )
    if waiting.height:
        parts.append(
            waiting.with_columns(
                invoice_ids=pl.col("invoices").list.eval(pl.element().struct.field("invoice_id")),
                until=pl.col("next_allowed").cast(pl.Date),
                reason=pl.format(
                    "last touched on {}; the rule's cadence allows the next touch from {}",
                    pl.col("last_touch").dt.strftime(_DAY),
                    pl.col("next_allowed").cast(pl.Date).dt.strftime(_DAY),
                ),
            ).select(list(schema))
        )
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat([p.cast(schema) for p in parts]).sort("until", "customer_id")


# -- recording: exports and outcomes ------------------------------------------------------------
# What an outcome means in the contact history (None: no touch happened).
OUTCOME_TO_CONTACT: dict[str, str | None] = {
    "done": "no response",
    "skipped": None,
    "overridden": None,
    "promise": "promise to pay",
    "paid": "paid",
}


def record_export(
    store: Store, result: WorklistResult, lines: pl.DataFrame, *, export_format: str, actor: Actor | None = None,
    filters: Mapping[str, Any] | None = None,
) -> int:
    """Record exported lines in ``actions`` (status ``exported``), audited with ``filters`` and the
    line count; return how many were new. A collector may export only their customers' lines.

    A line already recorded (same ``line_id``: same day, same customer) is not recorded twice.
    """
    if lines.is_empty():
        return 0
    if result.policy_version is None:  # the shipped default was used: keep it as a version now
        result = replace(result, policy_version=ensure_default_policy(store))
    created = utcnow()
    rows = lines.select(
        pl.col("line_id").alias("action_id"),
        pl.lit(created).alias("created"),
        pl.col("as_of"),
        "customer_id",
        pl.col("invoices").list.eval(pl.element().struct.field("invoice_id")).list.join(",").alias("invoice_ids"),
        "action",
        "channel",
        "tone",
        "template_id",
        "collector",
        pl.lit(result.policy_version).alias("policy_version"),
        pl.lit(result.model_id, dtype=pl.String).alias("model_id"),
        "priority",
        pl.lit("exported").alias("status"),
        pl.lit(export_format).alias("export_format"),
    )
    with store.transaction() as cur:
        actor = authorize(cur, actor, "worklist_export", customers=lines["customer_id"].to_list())
        cur.register("rows", rows)
        before = cur.execute("SELECT count(*) FROM actions").fetchall()[0][0]
        cur.execute(
            """
            INSERT INTO actions (action_id, created, as_of, customer_id, invoice_ids, action, channel, tone,
                                 template_id, collector, policy_version, model_id, priority, status, export_format)
            SELECT action_id, created, as_of, customer_id, invoice_ids, action, channel, tone, template_id,
                   collector, policy_version, model_id, priority, status, export_format FROM rows
            ON CONFLICT DO NOTHING
            """
        )
        after = cur.execute("SELECT count(*) FROM actions").fetchall()[0][0]
        cur.unregister("rows")
        audit.record(cur, actor, "worklist_export", {"as_of": result.as_of, "format": export_format, "lines": lines.height,
                     "newly_recorded": int(after - before), "filters": dict(filters or {}), "policy_version": result.policy_version})
    return int(after - before)


def recorded_actions(store: Store, *, as_of: date | None = None) -> pl.DataFrame:
    """Worklist actions recorded (exported or with an outcome), newest first."""
    where, params = ("WHERE as_of = ?", [as_of]) if as_of is not None else ("", [])
    return store.query(f"SELECT * FROM actions {where} ORDER BY as_of DESC, priority DESC NULLS LAST", params)


def record_outcomes(
    store: Store, outcomes: pl.DataFrame, *, recorded_at: datetime | None = None, actor: Actor | None = None
) -> int:
    """Record what happened to exported lines; return how many actions were updated.

    ``outcomes`` columns: ``action_id``, ``outcome`` (one of :data:`OUTCOMES`), and optionally
    ``reason`` (required for ``overridden``), ``promise_date``, ``promise_amount``. A touch that
    happened (done, promise, paid) is also written to ``contacts``, dated the worklist day, so
    it feeds the response rates, the cadence and promise snoozes. Nothing is written when any
    row is invalid.
    """
    if outcomes.is_empty():
        return 0
    missing = [c for c in ("action_id", "outcome") if c not in outcomes.columns]
    if missing:
        msg = f"The outcomes need the columns action_id and outcome; missing {missing!r} (got {outcomes.columns!r})."
        raise WorklistError(msg)
    frame = outcomes.with_columns(
        pl.col("action_id").cast(pl.String).str.strip_chars(),
        pl.col("outcome").cast(pl.String).str.strip_chars().str.to_lowercase(),
        reason=(pl.col("reason").cast(pl.String) if "reason" in outcomes.columns else pl.lit(None, pl.String)),
        promise_date=_as_date(outcomes, "promise_date"),
        promise_amount=(
            pl.col("promise_amount").cast(pl.Float64, strict=False)
            if "promise_amount" in outcomes.columns
            else pl.lit(None, pl.Float64)
        ),
    )
    bad = frame.filter(~pl.col("outcome").is_in(list(OUTCOMES)) | pl.col("outcome").is_null())
    if bad.height:
        msg = (
            f"Unknown outcome {bad['outcome'][0]!r} for action {bad['action_id'][0]!r}; "
            f"use one of {', '.join(OUTCOMES)}."
        )
        raise WorklistError(msg)
    no_reason = frame.filter(
        (pl.col("outcome") == "overridden") & (pl.col("reason").is_null() | (pl.col("reason").str.strip_chars() == ""))
    )
    if no_reason.height:
        msg = f"Action {no_reason['action_id'][0]!r} was overridden without a reason; say why it was overridden."
        raise WorklistError(msg)
    no_date = frame.filter((pl.col("outcome") == "promise") & pl.col("promise_date").is_null())
    if no_date.height:
        msg = f"Action {no_date['action_id'][0]!r} has a promise to pay without a promised date."
        raise WorklistError(msg)
    recorded_at = recorded_at or utcnow()
    known = store.query(
        "SELECT action_id, as_of, customer_id, invoice_ids, action, channel, tone, template_id, collector FROM actions"
    )
    unknown = frame.join(known, on="action_id", how="anti")
    if unknown.height:
        msg = (
            f"No exported worklist line has the id {unknown['action_id'][0]!r} "
            f"({unknown.height} unknown id(s)); outcomes can only be recorded for exported lines."
        )
        raise WorklistError(msg)
    joined = frame.join(known, on="action_id").with_columns(
        status=pl.col("outcome").replace_strict({"skipped": "skipped", "overridden": "overridden"}, default="done"),
        contact_outcome=pl.col("outcome").replace_strict(OUTCOME_TO_CONTACT, default=None),
        contact_action=pl.col("action").replace_strict(CONTACT_ACTION, default=None),
        contact_channel=pl.when(pl.col("channel") == "person").then(pl.lit("call")).otherwise(pl.col("channel")),
        first_invoice=pl.when(pl.col("invoice_ids").str.contains(",")).then(None).otherwise(pl.col("invoice_ids")),
    )
    with store.transaction() as cur:
        actor = authorize(cur, actor, "outcomes_import", customers=joined["customer_id"].to_list())
        cur.register("updates", joined)
        cur.execute(
            """
            UPDATE actions a SET status = u.status, outcome = u.outcome, override_reason = u.reason, outcome_ts = ?
            FROM updates u WHERE a.action_id = u.action_id
            """,
            [recorded_at],
        )
        cur.execute(
            """
            INSERT INTO contacts (contact_id, customer_id, invoice_id, ts, channel, action, template_id, tone,
                                  collector, outcome, promise_date, promise_amount)
            SELECT 'worklist-' || action_id, customer_id, first_invoice, as_of::TIMESTAMP + INTERVAL 12 HOUR,
                   contact_channel, contact_action, template_id, tone, collector, contact_outcome,
                   promise_date, promise_amount
            FROM updates WHERE contact_outcome IS NOT NULL
            ON CONFLICT (contact_id) DO UPDATE SET outcome = excluded.outcome,
                promise_date = excluded.promise_date, promise_amount = excluded.promise_amount
            """
        )
        cur.unregister("updates")
        audit.record(cur, actor, "outcomes_import", {"outcomes": joined.height, "by_outcome": dict(
            joined.group_by("outcome").len().sort("outcome").iter_rows()), "action_ids": joined["action_id"].to_list()})
    return joined.height


def _as_date(frame: pl.DataFrame, column: str) -> pl.Expr:
    if column not in frame.columns:
        return pl.lit(None, pl.Date)
    if frame.schema[column] == pl.String:
        text = pl.col(column).str.strip_chars()
        return pl.when(text == "").then(None).otherwise(text).str.to_date("%Y-%m-%d", strict=False)
    return pl.col(column).cast(pl.Date, strict=False)


def lines_to_records(lines: pl.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready dicts of worklist lines (dates as ISO strings)."""
    return json.loads(lines.write_json())


def invoice_detail(lines: pl.DataFrame) -> pl.DataFrame:
    """One row per invoice of the given lines (exploded ``invoices``), with the line's columns."""
    keep: Sequence[str] = ("line_id", "customer_id", "customer_name", "collector", "action", "scheduled_date")
    if lines.is_empty():
        return pl.DataFrame()
    return lines.select(*keep, "invoices").explode("invoices").unnest("invoices")


def line_risk_reasons(store: Store, as_of: date, line: dict[str, Any], *, scorer: Scorer) -> pl.DataFrame:
    """The scorer's reasons for one line's invoices (computed for the lines shown, never for the
    whole book): invoice_id, p_late, p_paid_30d, pay_date_p50, reasons."""
    from dashboard.features import build_features
    from dashboard.scoring import score_invoices, stored_scores

    ids = [invoice["invoice_id"] for invoice in line.get("invoices") or []]
    if not ids:
        return pl.DataFrame(schema={"invoice_id": pl.String, "p_late": pl.Float64, "p_paid_30d": pl.Float64,
                                    "pay_date_p50": pl.Date, "reasons": pl.String})
    kept = stored_scores(store, as_of, scorer=scorer, invoice_ids=ids)
    if kept is not None and kept.height == len(set(ids)):
        # the line's scores as kept (the worklist was built from them); only the reasons are new,
        # so nothing is scored again (a model's P(late) recalibration is not redone)
        features = build_features(store, as_of, spec=scorer.feature_spec, invoice_ids=ids)
        reasons = features.select("invoice_id").with_columns(reasons=scorer.reasons(features))
        return kept.drop("reasons").join(reasons, on="invoice_id", how="left").select(
            "invoice_id", "p_late", "p_paid_30d", "pay_date_p50", "reasons")
    scored = score_invoices(store, as_of, scorer=scorer, invoice_ids=ids, with_reasons=True)
    return scored.select("invoice_id", "p_late", "p_paid_30d", "pay_date_p50", "reasons")
