"""Configuration, collections policies and the known behavioural mechanisms of the sample world.

Everything a tester needs to know about *why* an invoice was paid when it was lives here as
plain tables (``BEHAVIOUR_CLASSES``, ``response_probability``, ...) so the generator and the
ground truth it writes cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from dashboard.dates import add_months
from dashboard.errors import SyntheticConfigError

# Behaviour classes (the ground-truth segments), in the order of expected lateness except the
# disputer, who pays moderately late and disputes a lot.
SEGMENTS: tuple[str, ...] = ("prompt", "on_time", "slow", "chronic_late", "disputer")
CHANNELS: tuple[str, ...] = ("email", "sms", "call", "letter", "portal")
TONES: tuple[str, ...] = ("friendly", "neutral", "firm")
ACTIONS: tuple[str, ...] = ("reminder", "follow-up", "escalation", "call", "payment plan", "credit hold")
MAX_STEPS = 16  # touch slots per invoice; the common-random-number keys are sized for this


@dataclass(frozen=True)
class SegmentBehaviour:
    """The known payment mechanism of one behaviour class."""

    share: float  # share of customers
    propensity_mean: float  # mean latent days paid after due (negative = before due)
    propensity_spread: float  # spread of the per-customer latent propensity
    noise_sd: float  # per-invoice noise around the customer's propensity (days)
    dispute_rate: float  # probability an invoice is disputed
    uncollectible_rate: float  # probability an invoice is never paid
    month_end_run_share: float  # share of customers paying only on the month's last business day
    discount_take_rate: float  # probability of taking a 2% early-payment discount
    base_response: float  # response probability to a friendly email
    pull_forward_mean: float  # mean days a response pulls the payment forward
    broken_promise_rate: float  # non-responders who promise anyway (and usually break it)


BEHAVIOUR: dict[str, SegmentBehaviour] = {
    "prompt": SegmentBehaviour(0.20, -4.0, 1.5, 2.0, 0.02, 0.0005, 0.10, 0.80, 0.55, 3.0, 0.02),
    "on_time": SegmentBehaviour(0.35, 0.0, 1.5, 3.0, 0.03, 0.001, 0.25, 0.60, 0.45, 5.0, 0.05),
    "slow": SegmentBehaviour(0.25, 12.0, 4.0, 6.0, 0.04, 0.004, 0.30, 0.25, 0.30, 10.0, 0.12),
    "chronic_late": SegmentBehaviour(0.10, 35.0, 10.0, 12.0, 0.05, 0.02, 0.20, 0.05, 0.15, 20.0, 0.20),
    "disputer": SegmentBehaviour(0.10, 6.0, 3.0, 5.0, 0.18, 0.003, 0.15, 0.30, 0.20, 8.0, 0.08),
}

# Response multipliers by channel and tone, with segment-specific interactions.
CHANNEL_MULTIPLIER: dict[str, float] = {"email": 1.0, "sms": 0.9, "call": 1.5, "letter": 0.7, "portal": 0.8}
CHANNEL_SEGMENT_MULTIPLIER: dict[tuple[str, str], float] = {
    ("prompt", "email"): 1.2,
    ("slow", "sms"): 1.3,
    ("chronic_late", "call"): 1.6,
    ("disputer", "call"): 0.8,
}
TONE_MULTIPLIER: dict[tuple[str, str], float] = {
    ("prompt", "firm"): 0.8,
    ("on_time", "firm"): 0.9,
    ("slow", "firm"): 1.15,
    ("chronic_late", "firm"): 1.4,
    ("disputer", "firm"): 0.7,
    ("disputer", "friendly"): 1.1,
}
NEUTRAL_TONE_MULTIPLIER = 0.95
PULL_FORWARD_TONE: dict[str, float] = {"friendly": 1.0, "neutral": 1.0, "firm": 1.2}
PULL_FORWARD_CHANNEL: dict[str, float] = {"email": 1.0, "sms": 1.0, "call": 1.2, "letter": 0.9, "portal": 1.0}
MAX_RESPONSE_PROBABILITY = 0.9

# Disputes: mean days to resolve, category shares, resolution shares (credit issued, customer
# paid, written off) and the disputed share of the invoice.
DISPUTE_CATEGORIES: dict[str, dict[str, Any]] = {
    "pricing": {"share": 0.30, "resolve_days": 20.0, "resolution": (0.55, 0.40, 0.05)},
    "quantity": {"share": 0.20, "resolve_days": 15.0, "resolution": (0.60, 0.35, 0.05)},
    "quality": {"share": 0.20, "resolve_days": 35.0, "resolution": (0.50, 0.30, 0.20)},
    "missing PO": {"share": 0.20, "resolve_days": 10.0, "resolution": (0.0, 1.0, 0.0)},
    "duplicate billing": {"share": 0.10, "resolve_days": 8.0, "resolution": (1.0, 0.0, 0.0)},
}
RESOLUTIONS: tuple[str, ...] = ("credit issued", "customer paid", "written off")
WRITE_OFF_AFTER_DAYS = 240  # uncollectible invoices are written off this long after due


def response_probability(segment: str, channel: str, tone: str) -> float:
    """Probability that one touch on ``channel`` in ``tone`` makes a ``segment`` customer pay sooner."""
    behaviour = BEHAVIOUR[segment]
    multiplier = CHANNEL_MULTIPLIER[channel] * CHANNEL_SEGMENT_MULTIPLIER.get((segment, channel), 1.0)
    tone_multiplier = NEUTRAL_TONE_MULTIPLIER if tone == "neutral" else TONE_MULTIPLIER.get((segment, tone), 1.0)
    return min(MAX_RESPONSE_PROBABILITY, behaviour.base_response * multiplier * tone_multiplier)


def pull_forward_days_mean(segment: str, channel: str, tone: str) -> float:
    """Mean days a response pulls the pay date forward (exponentially distributed, capped by the calendar)."""
    return BEHAVIOUR[segment].pull_forward_mean * PULL_FORWARD_TONE[tone] * PULL_FORWARD_CHANNEL[channel]


@dataclass(frozen=True)
class WorldConfig:
    """Size and shape of a sample world; the same config always gives the same world.

    The world runs from ``start`` for ``months`` months and is observed at ``end_date``.
    """

    seed: int = 42
    n_customers: int = 300
    start: date = date(2023, 10, 1)
    months: int = 36
    invoices_per_customer_month: float = 1.4  # mean issuance rate before seasonality
    foreign_currency_share: float = 0.15  # customers billed in EUR/GBP/CAD
    behaviour_change_share: float = 0.12  # customers whose behaviour changes (new CFO, cash squeeze)
    strategic_share: float = 0.03
    credit_memo_rate: float = 0.02
    partial_payment_rate: float = 0.05
    unapplied_payment_rate: float = 0.005  # unapplied cash rows per invoice
    notes_per_customer_year: float = 3.0
    base_currency: str = "USD"

    @property
    def end_date(self) -> date:
        """Last day of the world (inclusive): ``start + months - 1 day``."""
        return add_months(self.start, self.months) - timedelta(days=1)

    def validate(self) -> None:
        """Raise SyntheticConfigError when a knob is out of range."""
        if self.n_customers < 1:
            msg = f"The sample world needs at least one customer; got n_customers={self.n_customers!r}."
            raise SyntheticConfigError(msg)
        if self.months < 1 or self.months > 240:
            msg = f"The sample world spans 1 to 240 months; got months={self.months!r}."
            raise SyntheticConfigError(msg)
        for name in (
            "foreign_currency_share",
            "behaviour_change_share",
            "strategic_share",
            "credit_memo_rate",
            "partial_payment_rate",
            "unapplied_payment_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                msg = f"{name} is a share between 0 and 1; got {value!r}."
                raise SyntheticConfigError(msg)


@dataclass(frozen=True)
class TouchStep:
    """One step of a collections cadence, relative to the invoice's due date."""

    days_from_due: int  # -3 = three days before due, 7 = a week late
    action: str  # reminder, follow-up, escalation, call, payment plan, credit hold
    channel: str  # email, sms, call, letter, portal
    tone: str  # friendly, neutral, firm

    @property
    def template_id(self) -> str:
        return f"{self.action.replace(' ', '_').replace('-', '_')}_{self.tone}"


@dataclass(frozen=True)
class CollectionsPolicy:
    """The strategy the world's collectors apply; replaying a world under another policy is the
    ground truth a strategy simulator is judged by.

    ``segment_steps`` overrides ``steps`` per behaviour class; ``daily_capacity`` caps touches
    per day for the whole team (the smallest open amounts are dropped first);
    ``early_pay_discount`` offers a discount (0.02 = 2%) for paying within 10 days per segment;
    ``min_amount`` skips touches on invoices below that base amount; strategic customers are
    touched only when ``touch_strategic``; invoices with an open dispute only when ``touch_disputed``.
    """

    steps: tuple[TouchStep, ...] = ()
    segment_steps: dict[str, tuple[TouchStep, ...]] = field(default_factory=dict)
    daily_capacity: int | None = None
    early_pay_discount: dict[str, float] = field(default_factory=dict)
    min_amount: float = 0.0
    touch_strategic: bool = True
    touch_disputed: bool = True
    name: str = "custom"

    def steps_for(self, segment: str) -> tuple[TouchStep, ...]:
        return self.segment_steps.get(segment, self.steps)

    def validate(self) -> None:
        """Raise SyntheticConfigError when the policy cannot be applied."""
        for segment in self.segment_steps:
            if segment not in SEGMENTS:
                msg = f"Unknown customer segment {segment!r} in the policy; use one of {list(SEGMENTS)}."
                raise SyntheticConfigError(msg)
        for segment, discount in self.early_pay_discount.items():
            if segment not in SEGMENTS:
                msg = (
                    f"Unknown customer segment {segment!r} in the early-payment discount; use one of {list(SEGMENTS)}."
                )
                raise SyntheticConfigError(msg)
            if not 0.0 <= discount < 0.2:
                msg = f"An early-payment discount must be between 0 and 0.2 (20%); got {discount!r} for {segment!r}."
                raise SyntheticConfigError(msg)
        if self.daily_capacity is not None and self.daily_capacity < 0:
            msg = f"Daily touch capacity cannot be negative; got {self.daily_capacity!r}."
            raise SyntheticConfigError(msg)
        for segment in SEGMENTS:
            steps = self.steps_for(segment)
            if len(steps) > MAX_STEPS:
                msg = f"A cadence has at most {MAX_STEPS} steps; got {len(steps)} for {segment!r}."
                raise SyntheticConfigError(msg)
            days = [step.days_from_due for step in steps]
            if days != sorted(set(days)):
                msg = f"Cadence steps must be on distinct days in increasing order; got days {days!r} for {segment!r}."
                raise SyntheticConfigError(msg)
            for step in steps:
                for value, allowed, what in (
                    (step.action, ACTIONS, "action"),
                    (step.channel, CHANNELS, "channel"),
                    (step.tone, TONES, "tone"),
                ):
                    if value not in allowed:
                        msg = f"Unknown {what} {value!r} in a cadence step; use one of {list(allowed)}."
                        raise SyntheticConfigError(msg)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the format ``generate --policy FILE.json`` reads)."""
        return {
            "name": self.name,
            "steps": [asdict(step) for step in self.steps],
            "segment_steps": {seg: [asdict(step) for step in steps] for seg, steps in self.segment_steps.items()},
            "daily_capacity": self.daily_capacity,
            "early_pay_discount": dict(self.early_pay_discount),
            "min_amount": self.min_amount,
            "touch_strategic": self.touch_strategic,
            "touch_disputed": self.touch_disputed,
        }


def policy_from_dict(data: dict[str, Any]) -> CollectionsPolicy:
    """Build a policy from its ``to_dict`` form; unknown keys are refused."""
    known = {
        "name",
        "steps",
        "segment_steps",
        "daily_capacity",
        "early_pay_discount",
        "min_amount",
        "touch_strategic",
        "touch_disputed",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        msg = f"Unknown policy settings {unknown!r}; expected some of {sorted(known)}."
        raise SyntheticConfigError(msg)
    try:

        def to_steps(items: list[dict[str, Any]]) -> tuple[TouchStep, ...]:
            return tuple(TouchStep(**item) for item in items)

        policy = CollectionsPolicy(
            steps=to_steps(data.get("steps", [])),
            segment_steps={seg: to_steps(items) for seg, items in data.get("segment_steps", {}).items()},
            daily_capacity=data.get("daily_capacity"),
            early_pay_discount={k: float(v) for k, v in data.get("early_pay_discount", {}).items()},
            min_amount=float(data.get("min_amount", 0.0)),
            touch_strategic=bool(data.get("touch_strategic", True)),
            touch_disputed=bool(data.get("touch_disputed", True)),
            name=str(data.get("name", "custom")),
        )
    except TypeError as exc:
        msg = f"A cadence step needs days_from_due, action, channel and tone; {exc}"
        raise SyntheticConfigError(msg) from exc
    policy.validate()
    return policy


def read_policy(path: Path) -> CollectionsPolicy:
    """Read a policy JSON file (see ``CollectionsPolicy.to_dict``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        msg = f"Cannot read the policy file {str(path)!r}: {exc}"
        raise SyntheticConfigError(msg) from exc
    if not isinstance(data, dict):
        msg = f"The policy file {str(path)!r} must hold a JSON object; got {type(data).__name__}."
        raise SyntheticConfigError(msg)
    return policy_from_dict(data)


def default_policy() -> CollectionsPolicy:
    """A sensible cadence: friendly reminders around due, calls and firm escalation later."""
    return CollectionsPolicy(
        steps=(
            TouchStep(-3, "reminder", "email", "friendly"),
            TouchStep(1, "reminder", "email", "friendly"),
            TouchStep(7, "follow-up", "email", "neutral"),
            TouchStep(15, "call", "call", "neutral"),
            TouchStep(30, "escalation", "email", "firm"),
            TouchStep(45, "call", "call", "firm"),
            TouchStep(60, "escalation", "letter", "firm"),
            TouchStep(90, "credit hold", "letter", "firm"),
        ),
        name="default",
    )


def no_touch_policy() -> CollectionsPolicy:
    """Collectors do nothing: the counterfactual every strategy is compared against."""
    return CollectionsPolicy(steps=(), name="no_touch")
