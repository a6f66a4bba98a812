"""The collections vocabulary, defined once: stable keys and the names people read.

Keys (``chronic_late``, ``gentle reminder``, ``sms``) are what the store, policy files,
exports meant as data and the code use; they never change. Display names ("Chronically
late", "SMS") are what pages, messages and reasons show. Everything else imports its
vocabulary from here: policy, worklist, simulator, cadence, segments, metrics and the pages.

Main entries: :data:`SEGMENTS`, :data:`ACTIONS`, :data:`CONTACT_ACTIONS`, :data:`CHANNELS`,
:data:`TONES`, :data:`RISK_TIERS`, :data:`OUTCOMES`, :data:`PROMISE_GRACE_DAYS`,
:data:`COLUMNS` (column labels and units), and :func:`label` / :func:`column_label` /
:func:`readable` to turn any key into words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dashboard.config import base_currency

# -- segments ---------------------------------------------------------------------------------
#: Behavioural segments, best to worst behaviour; ``new`` has no rank (:mod:`dashboard.segments`).
SEGMENTS: tuple[str, ...] = ("prompt", "on_time", "slow", "disputer", "deteriorating", "chronic_late", "new")
#: A customer with no segment that month (not billed yet).
NO_SEGMENT = "none"
SEGMENT_LABELS: dict[str, str] = {
    "prompt": "Prompt payer",
    "on_time": "On time",
    "slow": "Slow payer",
    "disputer": "Disputer",
    "deteriorating": "Deteriorating",
    "chronic_late": "Chronically late",
    "new": "New customer",
    NO_SEGMENT: "Not billed yet",
    "all": "All segments",
}

#: The segment rules' thresholds in words (:class:`dashboard.segments.SegmentRules`).
SEGMENT_RULE_LABELS: dict[str, str] = {
    "window_months": "Months of history judged",
    "recent_months": "Recent months (deteriorating)",
    "min_invoices": "Fewest invoices due to be judged",
    "min_tenure_days": "Fewest days as a customer",
    "disputer_rate": "Disputes per invoice due (disputer)",
    "disputer_min_disputes": "Fewest disputes (disputer)",
    "prompt_days_early": "Days early on average (prompt)",
    "prompt_max_late_share": "Most invoices late, share (prompt)",
    "on_time_max_days_late": "Most days late on average (on time)",
    "slow_max_days_late": "Most days late on average (slow)",
    "deteriorating_increase_days": "Rise in days late (deteriorating)",
    "deteriorating_min_days_late": "Fewest days late recently (deteriorating)",
    "deteriorating_min_recent_invoices": "Fewest recent invoices (deteriorating)",
}

# -- actions ----------------------------------------------------------------------------------
#: What the collections policy and the worklist can ask for, gentlest first (a broken promise
#: moves one step up this order).
ACTIONS: tuple[str, ...] = (
    "gentle reminder",
    "value-added follow-up",
    "escalation notice",
    "call",
    "payment-plan offer",
    "credit hold",
    "hand to credit manager",
)
#: The contact history's shorter words for the same actions (DATA_MODEL.md ``contacts.action``),
#: which the simulator's cadence steps also use.
CONTACT_ACTION: dict[str, str] = {
    "gentle reminder": "reminder",
    "value-added follow-up": "follow-up",
    "escalation notice": "escalation",
    "call": "call",
    "payment-plan offer": "payment plan",
    "credit hold": "credit hold",
    "hand to credit manager": "credit manager",
}
CONTACT_ACTIONS: tuple[str, ...] = tuple(CONTACT_ACTION.values())
ACTION_LABELS: dict[str, str] = {
    "gentle reminder": "Gentle reminder",
    "value-added follow-up": "Value-added follow-up",
    "escalation notice": "Escalation notice",
    "call": "Phone call",
    "payment-plan offer": "Payment-plan offer",
    "credit hold": "Credit hold",
    "hand to credit manager": "Hand to the credit manager",
    # contact-history words
    "reminder": "Gentle reminder",
    "follow-up": "Value-added follow-up",
    "escalation": "Escalation notice",
    "payment plan": "Payment-plan offer",
    "credit manager": "Hand to the credit manager",
}

# -- channels and tones ---------------------------------------------------------------------
#: How a touch reaches the customer. ``person``: a credit manager handles the case.
CHANNELS: tuple[str, ...] = ("email", "sms", "call", "letter", "portal", "person")
#: Channels a machine can send without a person reading the case first.
AUTOMATED_CHANNELS: frozenset[str] = frozenset({"email", "sms", "letter", "portal"})
CHANNEL_LABELS: dict[str, str] = {
    "email": "Email",
    "sms": "SMS",
    "call": "Phone call",
    "letter": "Letter",
    "portal": "Customer portal",
    "person": "Credit manager",
}
TONES: tuple[str, ...] = ("friendly", "neutral", "firm")
TONE_LABELS: dict[str, str] = {"friendly": "Friendly", "neutral": "Neutral", "firm": "Firm"}

# -- risk tiers -------------------------------------------------------------------------------
RISK_TIERS: tuple[str, ...] = ("low", "medium", "high")
RISK_TIER_LABELS: dict[str, str] = {"low": "Low", "medium": "Medium", "high": "High"}
#: Days the risk tier looks ahead: the tier is the chance an invoice is *not* paid within them.
RISK_TIER_HORIZON_DAYS = 30
#: Upper bounds of P(not paid within 30 days) per tier (the last catches the rest).
RISK_TIER_CUTS: tuple[tuple[float, str], ...] = ((0.35, "low"), (0.6, "medium"), (1.01, "high"))

# -- outcomes ---------------------------------------------------------------------------------
#: What a collector records against an exported worklist line.
OUTCOMES: tuple[str, ...] = ("done", "skipped", "overridden", "promise", "paid")
OUTCOME_LABELS: dict[str, str] = {
    "done": "Done, no answer yet",
    "skipped": "Skipped",
    "overridden": "Overridden (say why)",
    "promise": "Promise to pay",
    "paid": "Paid",
    "exported": "Exported",
}
#: Contact-history outcomes that count as the customer answering a touch.
RESPONDED_OUTCOMES: tuple[str, ...] = ("promise to pay", "paid")
#: A promise to pay is kept when the payment arrives between the day it was made and this many
#: days after the promised date; after that it is broken. Metrics, worklist and simulator all
#: use this one window.
PROMISE_GRACE_DAYS = 3

# -- pilots -------------------------------------------------------------------------------------
#: The two groups of a pilot (:mod:`dashboard.pilot`): the worklist, and the holdout that keeps
#: the usual cadence the contact history shows.
PILOT_ARMS: tuple[str, ...] = ("worklist", "holdout")
PILOT_ARM_LABELS: dict[str, str] = {"worklist": "Worklist group", "holdout": "Holdout (usual cadence)"}
PILOT_SCOPE_LABELS: dict[str, str] = {"all": "All customers", "segment": "One segment", "collector": "One collector"}

# -- simulator ----------------------------------------------------------------------------------
PRIORITY_RULES: tuple[str, ...] = ("largest_amount", "most_overdue", "smallest_amount", "highest_risk")
PRIORITY_LABELS: dict[str, str] = {
    "largest_amount": "Largest amount first",
    "most_overdue": "Most overdue first",
    "smallest_amount": "Smallest amount first",
    "highest_risk": "Highest P(late) first (risk scores)",
}

#: What each kind of audit-log row records, in words (dashboard.audit writes only these).
AUDIT_ACTIONS: dict[str, str] = {
    "sign_in": "signed in",
    "load": "loaded a file",
    "undo_load": "undid a load",
    "policy_save": "saved a policy version",
    "policy_activate": "made a policy version active",
    "model_train": "saved a trained model",
    "model_activate": "made a model active",
    "model_recalibrate": "saved a recalibrated model",
    "worklist_export": "exported the worklist",
    "outcomes_import": "recorded outcomes",
    "user_create": "added a user",
    "user_change": "changed a user",
    "assignment_change": "changed assignments",
    "pilot_start": "started a pilot",
    "pilot_cancel": "cancelled a pilot",
}

#: Kinds of document and event in the ledger and a customer's timeline.
DOCUMENT_LABELS: dict[str, str] = {
    "invoice": "Invoice",
    "credit_memo": "Credit note",
    "unapplied_payment": "Unapplied payment",
    "journal": "Journal entry",
    "payment": "Payment",
    "adjustment": "Adjustment",
    "dispute opened": "Dispute opened",
    "dispute resolved": "Dispute resolved",
    "contact": "Contact",
    "note": "Note",
}

#: The store's tables a file can load into, by name.
TABLE_LABELS: dict[str, str] = {
    "invoices": "Invoices",
    "payments": "Payments",
    "customers": "Customers",
    "disputes": "Disputes",
    "contacts": "Contact history",
    "notes": "Notes",
    "fx_rates": "FX rates",
    "adjustments": "Adjustments",
    "snapshots": "Balance snapshots",
}

STATUS_LABELS: dict[str, str] = {
    "exported": "Exported",
    "done": "Done",
    "skipped": "Skipped",
    "overridden": "Overridden",
}

# "call" is both an action and a channel: both read "Phone call".
_LABELS: dict[str, str] = {
    **SEGMENT_LABELS,
    **ACTION_LABELS,
    **CHANNEL_LABELS,
    **TONE_LABELS,
    **RISK_TIER_LABELS,
    **OUTCOME_LABELS,
    **PRIORITY_LABELS,
    **PILOT_ARM_LABELS,
}


def label(key: object) -> str:
    """The display name of a vocabulary key (``chronic_late`` → "Chronically late"); a value
    outside the vocabulary is made readable (:func:`readable`); ``None`` → "—"."""
    if key is None:
        return EMPTY
    text = str(key)
    return _LABELS.get(text) or _LABELS.get(text.lower()) or readable(text)


def words(key: object) -> str:
    """A key's display name inside a sentence: "chronically late", "phone call", "SMS"."""
    name = label(key)
    return name if name.split(" ")[0].isupper() else name[:1].lower() + name[1:]


#: What an empty cell or a missing figure shows.
EMPTY = "—"
_SNAKE = re.compile(r"[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+")


def readable(text: str) -> str:
    """``customer_share_overdue`` → "Customer share overdue": identifiers as words (other text
    is left as it is)."""
    if _SNAKE.fullmatch(text):
        words = text.replace("_", " ").strip()
        return words[:1].upper() + words[1:]
    return text


# -- columns and units --------------------------------------------------------------------------
#: Kinds of column, each shown one way: money in the base currency with two decimals, money in
#: the document's currency, days with one decimal, whole counts, shares (0–1) and percentages
#: (0–100) as percentages, probabilities, model scores (three decimals), dates as dates, and text.
KINDS: tuple[str, ...] = (
    "money",
    "score",
    "document_money",
    "days",
    "count",
    "share",
    "percent",
    "probability",
    "date",
    "text",
    "flag",
    "number",
)


@dataclass(frozen=True)
class Column:
    """How one column is shown: its label, its kind (see :data:`KINDS`) and an optional help."""

    label: str
    kind: str = "text"
    help: str | None = None


#: Column labels for the frames pages show, by their stable column name.
COLUMNS: dict[str, Column] = {
    # ids and names
    "customer_id": Column("Customer id"),
    "customer_name": Column("Customer"),
    "name": Column("Customer"),
    "invoice_id": Column("Invoice"),
    "invoice_ids": Column("Invoices"),
    "document": Column("Document"),
    "collector": Column("Collector"),
    "line_id": Column("Line"),
    "action_id": Column("Line"),
    "rule_id": Column("Rule"),
    "template_id": Column("Message template"),
    "currency": Column("Currency"),
    "email": Column("Email"),
    "file_name": Column("File"),
    "load_id": Column("Load"),
    # vocabulary values
    "segment": Column("Segment"),
    "from_segment": Column("Segment before"),
    "to_segment": Column("Segment after"),
    "shipped_segment": Column("Segment (shipped rules)"),
    "trial_segment": Column("Segment (what-if)"),
    "action": Column("Action"),
    "policy_action": Column("Policy action"),
    "channel": Column("Channel"),
    "tone": Column("Tone"),
    "risk_tier": Column("Risk tier", help="From the chance the invoice is not paid within 30 days."),
    "outcome": Column("Outcome"),
    "status": Column("Status"),
    "kind": Column("What happened"),
    # money (base currency unless said)
    "amount": Column("Open amount", "money"),
    "open_amount": Column("Open amount", "money"),
    "open_amount_base": Column("Open amount", "money"),
    "open_amount_document": Column("Open amount (invoice currency)", "document_money"),
    "open_amount_today": Column("Open amount today", "money"),
    "overdue_amount": Column("Overdue", "money"),
    "ar_amount": Column("Open AR", "money"),
    "expected_cash_accelerated": Column(
        "Cash brought forward", "money", "Expected cash a touch brings forward: open amount × P(payment still to "
        "come) × response rate."
    ),
    "expected_cash_accelerated_today": Column("Cash brought forward today", "money"),
    # days
    "days_past_due": Column("Days past due", "count"),
    "max_days_past_due": Column("Days past due (oldest)", "count"),
    "oldest_days_past_due": Column("Days past due (oldest)", "count"),
    "avg_days_late": Column("Average days late", "days"),
    "days_from_due": Column("Days from due", "count"),
    "cadence_days": Column("Cadence (days)", "count"),
    "min_days_past_due": Column("From days past due", "count"),
    "max_days_past_due_rule": Column("To days past due", "count"),
    "effort_minutes": Column("Effort (minutes)", "number"),
    # counts
    "invoice_count": Column("Invoices", "count"),
    "invoices": Column("Invoices", "count"),
    "invoices_due": Column("Invoices due", "count"),
    "disputes": Column("Disputes", "count"),
    "contacts": Column("Contacts", "count"),
    "responded": Column("Answered", "count"),
    "response_contacts": Column("Contacts measured", "count"),
    "today": Column("Lines today", "count"),
    "later": Column("Lines later", "count"),
    "customers": Column("Customers", "count"),
    "queue_position": Column(
        "Queue position", "count", "The line's place in its collector's queue (each collector starts at 1)."
    ),
    "priority": Column("Priority", "number", "Cash brought forward per minute of effort."),
    "step": Column("Step", "count"),
    # shares and probabilities
    "share": Column("Share", "share"),
    "p_paid_horizon": Column("P(paid within 30 days)", "probability"),
    "p_paid_30d": Column("P(paid within 30 days)", "probability"),
    "p_late": Column("P(paid late)", "probability"),
    "response_rate": Column("Response rate", "share", "Share of past touches answered by a promise or a payment."),
    "rate": Column("Response rate used", "share"),
    "measured_rate": Column("Measured rate", "share"),
    "assumed_rate": Column("Assumed rate", "share"),
    # dates
    "date": Column("Date", "date"),
    "month": Column("Month", "date"),
    "month_end": Column("Month-end", "date"),
    "as_of": Column("As of", "date"),
    "due_date": Column("Due date", "date"),
    "invoice_date": Column("Invoice date", "date"),
    "oldest_due_date": Column("Oldest due date", "date"),
    "scheduled_date": Column("Scheduled for", "date"),
    "until": Column("Held until", "date"),
    "promise_date": Column("Promised date", "date"),
    "pay_date_p10": Column("Pay date, early (P10)", "date"),
    "pay_date_p50": Column("Expected pay date (P50)", "date"),
    "pay_date_p90": Column("Pay date, late (P90)", "date"),
    # flags and text
    "requires_review": Column("Needs a person", "flag"),
    "dispute_open": Column("Open dispute", "flag"),
    "broken_promise": Column("Broken promise", "flag"),
    "strategic": Column("Strategic", "flag"),
    "active": Column("Active", "flag"),
    "reason": Column("Why"),
    "reasons": Column("Reasons"),
    "detail": Column("Detail"),
    "note": Column("Note"),
    "override_reason": Column("Why overridden"),
    "probability_source": Column("Probability from"),
    "action_source": Column("Why this action"),
    # pilots
    "arm": Column("Group"),
    "stratum": Column("Stratum", help="Segment and open-amount band at the pilot's start."),
    "usual_touch_today": Column("Usual cadence touches today", "flag"),
    "usual_action": Column("Usual action today"),
    "usual_channel": Column("Usual channel"),
    "usual_tone": Column("Usual tone"),
    "variable": Column("Compared on"),
    "worklist": Column("Worklist group", "number"),
    "holdout": Column("Holdout group", "number"),
    "standardized_difference": Column(
        "Standardized difference", "score", "Difference of the means over their pooled spread; near 0 is alike."
    ),
    "z": Column("Against chance", "score", "The difference over what chance alone gives it; beyond about ±3 is unusual."),
    "unusual": Column("More than chance allows", "flag"),
    "figure": Column("Figure"),
    "worklist_group": Column("Worklist group"),
    "holdout_group": Column("Holdout group"),
    "difference": Column("Difference (worklist − holdout)"),
    "interval": Column("90% interval"),
    "measurable": Column("Measurable"),
}

#: Columns whose values are vocabulary keys, with the display names of those values.
VALUE_LABELS: dict[str, dict[str, str]] = {
    "segment": SEGMENT_LABELS,
    "from_segment": SEGMENT_LABELS,
    "to_segment": SEGMENT_LABELS,
    "shipped_segment": SEGMENT_LABELS,
    "trial_segment": SEGMENT_LABELS,
    "action": ACTION_LABELS,
    "policy_action": ACTION_LABELS,
    "channel": CHANNEL_LABELS,
    "tone": TONE_LABELS,
    "risk_tier": RISK_TIER_LABELS,
    "outcome": OUTCOME_LABELS,
    "status": STATUS_LABELS,
    "kind": DOCUMENT_LABELS,
    "doc_type": DOCUMENT_LABELS,
    "arm": PILOT_ARM_LABELS,
    "usual_action": ACTION_LABELS,
    "usual_channel": CHANNEL_LABELS,
    "usual_tone": TONE_LABELS,
}


def column_label(name: str, *, currency: str | None = None) -> str:
    """The label of a column (``open_amount`` → "Open amount (USD)"): money columns name the
    base currency; an unknown column is made readable."""
    column = COLUMNS.get(name)
    if column is None:
        return readable(name)
    if column.kind == "money":
        return f"{column.label} ({currency or base_currency()})"
    return column.label


def column_kind(name: str) -> str:
    """The kind of a column (:data:`KINDS`); ``text`` when it is not in :data:`COLUMNS`."""
    column = COLUMNS.get(name)
    return column.kind if column is not None else "text"


# -- model inputs, in words -------------------------------------------------------------------
#: Display names of the risk model's inputs (:data:`dashboard.features.FEATURE_COLUMNS`); a
#: feature added later without a name here is still shown in words (:func:`feature_label`).
FEATURE_LABELS: dict[str, str] = {
    "days_to_due": "Days until due",
    "days_past_due": "Days past due",
    "invoice_age_days": "Invoice age (days)",
    "terms_days": "Payment terms (days)",
    "due_day_of_month": "Day of the month it falls due",
    "due_at_month_end": "Falls due at a month-end",
    "days_due_to_month_end": "Days from due date to month-end",
    "days_due_to_next_run": "Days from due date to the customer's next payment run",
    "amount_base": "Invoice amount",
    "relative_size": "Size against the customer's usual invoice",
    "share_still_open": "Share of the invoice still open",
    "history_invoices_closed": "Invoices the customer has paid so far",
    "history_share_late": "Share of past invoices paid late",
    "history_mean_days_late": "Average days late in the past",
    "history_amount_weighted_days_late": "Average days late, weighted by amount",
    "history_days_late_trend": "Trend of days late",
    "history_days_late_sd": "Spread of days late",
    "history_share_paid_month_end": "Share paid at a month-end",
    "last10_count": "Invoices among the last 10 paid",
    "last10_late_count": "Late among the last 10 paid",
    "last10_mean_days_late": "Average days late, last 10 invoices",
    "clean_invoices_closed": "Paid invoices without dispute or credit",
    "clean_median_days_late": "Median days late, undisputed invoices",
    "clean_mean_days_late": "Average days late, undisputed invoices",
    "recent5_clean_median_days_late": "Median days late, last 5 undisputed invoices",
    "recent5_mean_days_late": "Average days late, last 5 invoices",
    "history_share_paid_on_run": "Share paid on the customer's payment run",
    "history_share_late_same_run_position": "Share late when due at the same point of the payment run",
    "expected_days_late": "Expected days late from the customer's habits",
    "expected_pay_days_from_now": "Expected days until paid from the customer's habits",
    "days_since_last_payment": "Days since the customer last paid",
    "customer_tenure_days": "Days since the first invoice to this customer",
    "customer_open_balance": "Customer's open balance",
    "customer_open_invoices": "Customer's open invoices",
    "customer_share_overdue": "Share of the customer's balance overdue",
    "customer_max_days_past_due": "Customer's oldest days past due",
    "credit_limit_use": "Use of the credit limit",
    "dispute_open": "Invoice disputed",
    "dispute_open_days": "Days the dispute has been open",
    "dispute_category": "Dispute category",
    "customer_open_disputes": "Customer's open disputes",
    "customer_disputes_past_year": "Customer's disputes in the past year",
    "contacts_on_invoice": "Contacts about this invoice",
    "last_contact_action": "Last contact: action",
    "last_contact_outcome": "Last contact: outcome",
    "days_since_last_contact": "Days since the last contact",
    "promise_pending": "Promise to pay pending",
    "promises_broken": "Promises broken",
    "promises_kept": "Promises kept",
    "promised_days_late": "Days past due at the promised date",
    "customer_share_contacts_answered": "Share of contacts the customer answered",
    "notes_recent": "Recent notes",
    "notes_mean_sentiment": "Tone of recent notes",
    "notes_distress": "Notes mentioning financial difficulty",
    "notes_dispute_cues": "Notes mentioning a complaint",
    "segment": "Segment",
    "currency_code": "Invoice currency",
}


def feature_label(feature: str) -> str:
    """A risk-model input in words (``history_share_late`` → "Share of past invoices paid late")."""
    return FEATURE_LABELS.get(feature) or readable(feature)
