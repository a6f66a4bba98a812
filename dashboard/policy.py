"""Collections policy as data: rules, validation, versions, and the shipped default policy.

A rule is a row (see DATA_MODEL.md "Collections policy as data"). Conditions: ``segment``,
``risk_tier``, ``min/max_days_past_due``, ``min/max_amount`` (open amount, base currency),
``dispute_open`` and ``strategic``; an empty condition matches anything. Outcome: ``action``,
``channel``, ``tone``, ``template_id``, ``cadence_days`` and ``requires_review``.

Matching: among the active rules whose conditions all hold, the one with the **smallest
priority number** wins (priority 1 is checked first); ``rule_id`` breaks no ties, because two
active rules of equal priority that can match the same case are an *overlap* and refused.
Day and amount ranges are inclusive at both ends (amounts to the cent).

Validation (:func:`validate_policy`) works on the exact "cells" the rules' boundaries cut the
condition space into, so it finds every overlap, every gap (an overdue case no rule covers)
and every unreachable rule (one that higher-priority rules shadow entirely, even when several
of them do it together), not just the obvious ones. Every save is a new ``policy_version``
(nothing is overwritten) with optimistic concurrency: saving on top of a version that is no
longer the latest raises :class:`~dashboard.errors.ConflictError`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from dashboard import audit
from dashboard.access import Actor, authorize
from dashboard.errors import ConflictError, PolicyError, PolicyValidationError
from dashboard.store import Store, utcnow
from dashboard.vocabulary import ACTIONS, AUTOMATED_CHANNELS, CHANNELS, RISK_TIERS, TONES

# -- vocabulary (dashboard.vocabulary): actions, channels, tones and risk tiers ----------------
# How much pressure an action puts on the customer: a broken promise moves one step up.
ESCALATION_ORDER: dict[str, int] = {action: i for i, action in enumerate(ACTIONS)}
# Actions that always need a person (they are never sent automatically).
PERSON_ACTIONS: frozenset[str] = frozenset({"call", "credit hold", "hand to credit manager"})
# What a person touch costs, in minutes: priority is cash accelerated per minute of effort.
EFFORT_MINUTES: dict[str, float] = {
    "gentle reminder": 2.0,
    "value-added follow-up": 4.0,
    "escalation notice": 4.0,
    "call": 12.0,
    "payment-plan offer": 15.0,
    "credit hold": 10.0,
    "hand to credit manager": 20.0,
}
# Gap checks cover every overdue case: at least 1 day past due, any positive open amount.
GAP_CHECK_FROM_DAYS_PAST_DUE = 1

RULE_SCHEMA: dict[str, pl.DataType] = {
    "rule_id": pl.String(),
    "active": pl.Boolean(),
    "priority": pl.Int64(),
    "segment": pl.String(),
    "risk_tier": pl.String(),
    "min_days_past_due": pl.Int64(),
    "max_days_past_due": pl.Int64(),
    "min_amount": pl.Float64(),
    "max_amount": pl.Float64(),
    "dispute_open": pl.Boolean(),
    "strategic": pl.Boolean(),
    "action": pl.String(),
    "channel": pl.String(),
    "tone": pl.String(),
    "template_id": pl.String(),
    "cadence_days": pl.Int64(),
    "requires_review": pl.Boolean(),
    "note": pl.String(),
}
RULE_COLUMNS: tuple[str, ...] = tuple(RULE_SCHEMA)

# Fault kinds reported by validate_policy.
FAULT_KINDS: tuple[str, ...] = (
    "missing_value",
    "duplicate_rule",
    "unknown_value",
    "bad_range",
    "unknown_template",
    "automated_sensitive",
    "overlap",
    "gap",
    "unreachable",
)

_DEFAULT_RULES: list[dict[str, Any]] = [
    # rule_id, priority, conditions..., action, channel, tone, template, cadence, review, note
    {"rule_id": "STRATEGIC", "priority": 1, "strategic": True, "min_days_past_due": 1,
     "action": "hand to credit manager", "channel": "person", "tone": "neutral",
     "template_id": "hand_to_credit_manager", "cadence_days": 14, "requires_review": True,
     "note": "Strategic customers are never contacted automatically."},
    {"rule_id": "DISPUTE", "priority": 2, "dispute_open": True, "min_days_past_due": 1,
     "action": "hand to credit manager", "channel": "person", "tone": "neutral",
     "template_id": "hand_to_credit_manager", "cadence_days": 14, "requires_review": True,
     "note": "Open disputes go to a person until resolved."},
    {"rule_id": "EARLY-LOW", "priority": 10, "min_days_past_due": 1, "max_days_past_due": 30,
     "risk_tier": "low", "action": "gentle reminder", "channel": "email", "tone": "friendly",
     "template_id": "gentle_reminder", "cadence_days": 10, "note": "Low risk: a light touch."},
    {"rule_id": "EARLY", "priority": 20, "min_days_past_due": 1, "max_days_past_due": 30,
     "action": "value-added follow-up", "channel": "email", "tone": "friendly",
     "template_id": "value_added_follow_up", "cadence_days": 7,
     "note": "Offer help (copy invoice, remittance details) before asking harder."},
    {"rule_id": "MID-HIGH", "priority": 10, "min_days_past_due": 31, "max_days_past_due": 60,
     "risk_tier": "high", "action": "call", "channel": "call", "tone": "neutral",
     "template_id": "call", "cadence_days": 7, "note": "High risk: call early."},
    {"rule_id": "MID", "priority": 20, "min_days_past_due": 31, "max_days_past_due": 60,
     "action": "escalation notice", "channel": "email", "tone": "neutral",
     "template_id": "escalation_notice", "cadence_days": 7},
    {"rule_id": "LATE-LARGE", "priority": 10, "min_days_past_due": 61, "max_days_past_due": 90,
     "min_amount": 10000.0, "action": "payment-plan offer", "channel": "call", "tone": "neutral",
     "template_id": "payment_plan_offer", "cadence_days": 10,
     "note": "Large and late: a plan recovers more than pressure."},
    {"rule_id": "LATE", "priority": 20, "min_days_past_due": 61, "max_days_past_due": 90,
     "action": "call", "channel": "call", "tone": "firm", "template_id": "call", "cadence_days": 7},
    {"rule_id": "SEVERE", "priority": 20, "min_days_past_due": 91, "max_days_past_due": 180,
     "action": "credit hold", "channel": "letter", "tone": "firm", "template_id": "credit_hold",
     "cadence_days": 14, "requires_review": True, "note": "A person confirms the hold first."},
    {"rule_id": "WRITE-OFF-RISK", "priority": 20, "min_days_past_due": 181,
     "action": "hand to credit manager", "channel": "person", "tone": "firm",
     "template_id": "hand_to_credit_manager", "cadence_days": 14, "requires_review": True},
]


# -- rule frames ----------------------------------------------------------------------------
def empty_rules() -> pl.DataFrame:
    """A rule frame with no rows and the rule columns."""
    return pl.DataFrame(schema=RULE_SCHEMA)


def normalize_rules(rules: pl.DataFrame | Iterable[dict[str, Any]]) -> pl.DataFrame:
    """Coerce a frame (or records, e.g. from a data editor) to the rule columns and types.

    Missing optional columns become empty; ``active`` defaults to true and
    ``requires_review`` to false; blank strings become empty conditions.
    """
    frame = rules if isinstance(rules, pl.DataFrame) else pl.DataFrame(list(rules), infer_schema_length=None)
    columns = []
    for name, dtype in RULE_SCHEMA.items():
        if name in frame.columns:
            column = frame[name]
            if dtype == pl.String():
                column = column.cast(pl.String).str.strip_chars()
                column = pl.when(column == "").then(None).otherwise(column)
                columns.append(pl.select(column).to_series().alias(name))
                continue
            columns.append(column.cast(dtype, strict=False).alias(name))
        else:
            columns.append(pl.Series(name, [None] * frame.height, dtype=dtype))
    out = pl.DataFrame(columns)
    return out.with_columns(
        pl.col("active").fill_null(True),
        pl.col("requires_review").fill_null(False),
    )


def default_policy() -> pl.DataFrame:
    """The policy Recoup ships with (validated by the tests: no overlaps, gaps or dead rules)."""
    return normalize_rules(_DEFAULT_RULES)


# -- validation -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyFault:
    """One thing wrong with a policy.

    ``kind`` is one of :data:`FAULT_KINDS`; ``rule_ids`` names the rules involved (empty for a
    gap); ``message`` is written for the person editing the policy.
    """

    kind: str
    rule_ids: tuple[str, ...]
    message: str


def _known_templates() -> frozenset[str]:
    from dashboard.messages import available_templates

    return frozenset(available_templates())


def _fmt_days(low: float, high: float) -> str:
    if np.isinf(high):
        return f"{int(low)}+ days past due"
    if np.isinf(low):
        return f"up to {int(high)} days past due"
    if low == high:
        return f"{int(low)} days past due"
    return f"{int(low)}–{int(high)} days past due"


def _fmt_amount(low_cents: float, high_cents: float) -> str:
    low = "any" if np.isinf(low_cents) else f"{low_cents / 100:,.2f}"
    if np.isinf(high_cents):
        return f"from {low}" if low != "any" else "any amount"
    return f"{low}–{high_cents / 100:,.2f}"


class _Grid:
    """The condition space cut into cells at every rule boundary.

    Each rule is a box: one boolean mask per dimension over that dimension's elementary
    values/intervals. Cells are the cartesian product, small (rules are few), so coverage
    questions become exact numpy mask operations.
    """

    OTHER_SEGMENT = "(any other segment)"

    def __init__(self, rules: pl.DataFrame) -> None:
        records = rules.to_dicts()
        segments = sorted({r["segment"] for r in records if r["segment"] is not None})
        self.segments = [*segments, self.OTHER_SEGMENT]
        self.tiers = list(RISK_TIERS)
        self.days = self._intervals(
            [(r["min_days_past_due"], r["max_days_past_due"]) for r in records],
            extra=[GAP_CHECK_FROM_DAYS_PAST_DUE],
        )
        self.amounts = self._intervals(
            [(_cents(r["min_amount"]), _cents(r["max_amount"])) for r in records], extra=[1]
        )
        self.booleans = [False, True]
        self.masks: dict[str, tuple[np.ndarray, ...]] = {}
        for record in records:
            self.masks[record["rule_id"]] = (
                self._categorical(self.segments, record["segment"], other=self.OTHER_SEGMENT),
                self._categorical(self.tiers, record["risk_tier"]),
                self._ranged(self.days, record["min_days_past_due"], record["max_days_past_due"]),
                self._ranged(self.amounts, _cents(record["min_amount"]), _cents(record["max_amount"])),
                self._categorical(self.booleans, record["dispute_open"]),
                self._categorical(self.booleans, record["strategic"]),
            )
        # The part of the space a policy must cover: overdue, positive amount.
        self.scope = (
            np.ones(len(self.segments), bool),
            np.ones(len(self.tiers), bool),
            np.array([low >= GAP_CHECK_FROM_DAYS_PAST_DUE for low, _ in self.days]),
            np.array([low >= 1 for low, _ in self.amounts]),
            np.ones(2, bool),
            np.ones(2, bool),
        )

    @staticmethod
    def _intervals(bounds: list[tuple[Any, Any]], *, extra: list[int]) -> list[tuple[float, float]]:
        cuts = set(extra)
        for low, high in bounds:
            if low is not None:
                cuts.add(int(low))
            if high is not None:
                cuts.add(int(high) + 1)
        edges = [-np.inf, *sorted(cuts), np.inf]
        # Closed integer intervals [edge_i, edge_{i+1} - 1].
        return [(edges[i], edges[i + 1] - 1) for i in range(len(edges) - 1)]

    @staticmethod
    def _ranged(intervals: list[tuple[float, float]], low: Any, high: Any) -> np.ndarray:
        low_v = -np.inf if low is None else low
        high_v = np.inf if high is None else high
        return np.array([a >= low_v and b <= high_v for a, b in intervals])

    @staticmethod
    def _categorical(domain: list[Any], value: Any, *, other: Any = None) -> np.ndarray:
        if value is None:
            return np.ones(len(domain), bool)
        return np.array([d == value for d in domain])

    def box(self, rule_id: str) -> np.ndarray:
        return _outer(self.masks[rule_id])

    def describe_cell(self, index: tuple[int, ...]) -> str:
        segment, tier, days, amount, dispute, strategic = index
        return (
            f"segment {self.segments[segment]!r}, risk tier {self.tiers[tier]!r}, "
            f"amount {_fmt_amount(*self.amounts[amount])}, "
            f"{'open dispute' if self.booleans[dispute] else 'no open dispute'}, "
            f"{'strategic' if self.booleans[strategic] else 'not strategic'}"
        )


def _outer(masks: Sequence[np.ndarray]) -> np.ndarray:
    out = masks[0]
    for mask in masks[1:]:
        out = np.multiply.outer(out, mask)
    return out.astype(bool)


def _cents(value: Any) -> int | None:
    return None if value is None else round(float(value) * 100)


def validate_policy(
    rules: pl.DataFrame | Iterable[dict[str, Any]], *, known_templates: Iterable[str] | None = None
) -> list[PolicyFault]:
    """Every fault in a policy, most basic first; an empty list means it can be saved.

    Parameters
    ----------
    rules
        The rule rows (any subset of the rule columns; see :func:`normalize_rules`).
    known_templates
        Template ids that exist; default: the templates shipped in ``dashboard/templates``.

    Returns
    -------
    list[PolicyFault]
        Field faults (missing values, unknown actions/channels/tones/tiers, bad ranges,
        duplicate ids, unknown templates, automated outreach to strategic customers or open
        disputes), then structural ones: overlaps, gaps and unreachable rules.
    """
    frame = normalize_rules(rules)
    templates = frozenset(known_templates) if known_templates is not None else _known_templates()
    faults: list[PolicyFault] = []
    broken: set[int] = set()
    seen: dict[str, int] = {}
    for index, rule in enumerate(frame.to_dicts()):
        rid = rule["rule_id"]
        label = f"Rule {rid!r}" if rid else f"Rule in row {index + 1}"
        for field in ("rule_id", "priority", "action"):
            if rule[field] is None:
                faults.append(PolicyFault("missing_value", (rid or f"row {index + 1}",), f"{label} has no {field}."))
                broken.add(index)
        if rid is not None:
            if rid in seen:
                faults.append(PolicyFault(
                    "duplicate_rule", (rid,), f"Rule id {rid!r} is used twice (rows {seen[rid] + 1} and {index + 1})."
                ))
                broken.add(index)
            seen.setdefault(rid, index)
        for field, allowed in (("action", ACTIONS), ("channel", CHANNELS), ("tone", TONES), ("risk_tier", RISK_TIERS)):
            value = rule[field]
            if value is not None and value not in allowed:
                faults.append(PolicyFault(
                    "unknown_value", (rid,), f"{label}: {field} {value!r} is not one of {', '.join(allowed)}."
                ))
                broken.add(index)
        for low_field, high_field, unit in (
            ("min_days_past_due", "max_days_past_due", "days past due"),
            ("min_amount", "max_amount", "amount"),
        ):
            low, high = rule[low_field], rule[high_field]
            if low is not None and high is not None and low > high:
                faults.append(PolicyFault(
                    "bad_range", (rid,), f"{label}: {unit} range is empty (from {low} to {high}); the minimum must not exceed the maximum."
                ))
                broken.add(index)
        for field in ("min_amount", "max_amount", "cadence_days"):
            if rule[field] is not None and rule[field] < 0:
                faults.append(PolicyFault("bad_range", (rid,), f"{label}: {field} cannot be negative (got {rule[field]})."))
                broken.add(index)
        template = rule["template_id"]
        if template is not None and template not in templates:
            faults.append(PolicyFault(
                "unknown_template", (rid,),
                f"{label} uses template {template!r}, which does not exist. Known templates: {', '.join(sorted(templates))}.",
            ))
        elif template is None and rule["active"] and rule["action"] not in PERSON_ACTIONS and rule["action"] is not None:
            faults.append(PolicyFault("unknown_template", (rid,), f"{label} sends a {rule['action']!r} but names no template."))
        sensitive = rule["strategic"] is True or rule["dispute_open"] is True
        automated = not rule["requires_review"] and (rule["channel"] in AUTOMATED_CHANNELS) and rule["action"] not in PERSON_ACTIONS
        if rule["active"] and sensitive and automated:
            what = "strategic customers" if rule["strategic"] else "open disputes"
            faults.append(PolicyFault(
                "automated_sensitive", (rid,),
                f"{label} sends automated {rule['channel']} outreach for {what}; they must go to a person "
                "(set requires_review, or hand to credit manager).",
            ))
    if broken:
        return faults
    faults.extend(_structural_faults(frame))
    return faults


def _structural_faults(frame: pl.DataFrame) -> list[PolicyFault]:
    active = frame.filter(pl.col("active")).sort("priority", "rule_id")
    if active.height == 0:
        return [PolicyFault("gap", (), "The policy has no active rule: no overdue invoice would get an action.")]
    grid = _Grid(active)
    records = active.to_dicts()
    faults: list[PolicyFault] = []
    boxes = {r["rule_id"]: grid.box(r["rule_id"]) for r in records}
    scope = _outer(grid.scope)
    # Overlaps: equal priority, intersecting boxes.
    for a, b in itertools.combinations(records, 2):
        if a["priority"] == b["priority"]:
            both = boxes[a["rule_id"]] & boxes[b["rule_id"]]
            if both.any():
                # Prefer an example an overdue invoice can hit (not a negative amount).
                in_scope = both & scope
                cell = np.argwhere(in_scope if in_scope.any() else both)[0]
                example = grid.describe_cell(tuple(int(i) for i in cell))
                days = grid.days[int(cell[2])]
                faults.append(PolicyFault(
                    "overlap", (a["rule_id"], b["rule_id"]),
                    f"Rules {a['rule_id']!r} and {b['rule_id']!r} have the same priority ({a['priority']}) and both "
                    f"match invoices {_fmt_days(*days)} ({example}); give one a different priority or narrow it.",
                ))
    # Unreachable: fully covered by rules checked before it.
    covered = np.zeros_like(next(iter(boxes.values())))
    by_priority = itertools.groupby(records, key=lambda r: r["priority"])
    for _, group in by_priority:
        group = list(group)
        for rule in group:
            box = boxes[rule["rule_id"]]
            if not box.any():
                faults.append(PolicyFault(
                    "unreachable", (rule["rule_id"],), f"Rule {rule['rule_id']!r} can never match any invoice."
                ))
            elif not (box & ~covered).any():
                shadows = [
                    r["rule_id"] for r in records
                    if r["priority"] < rule["priority"] and (boxes[r["rule_id"]] & box).any()
                ]
                faults.append(PolicyFault(
                    "unreachable", (rule["rule_id"], *shadows),
                    f"Rule {rule['rule_id']!r} never applies: every case it matches is already taken by "
                    f"higher-priority rule(s) {', '.join(repr(s) for s in shadows)}.",
                ))
        for rule in group:
            covered = covered | boxes[rule["rule_id"]]
    # Gaps: overdue cells no active rule covers, reported as days-past-due ranges.
    uncovered = scope & ~covered
    if uncovered.any():
        day_has_gap = uncovered.any(axis=(0, 1, 3, 4, 5))
        index = 0
        while index < len(grid.days):
            if not day_has_gap[index]:
                index += 1
                continue
            start = index
            while index + 1 < len(grid.days) and day_has_gap[index + 1]:
                index += 1
            low, high = grid.days[start][0], grid.days[index][1]
            cell = np.argwhere(uncovered[:, :, start])[0]
            example = grid.describe_cell((int(cell[0]), int(cell[1]), start, *(int(c) for c in cell[2:])))
            faults.append(PolicyFault(
                "gap", (), f"No active rule covers invoices {_fmt_days(low, high)} (for example: {example})."
            ))
            index += 1
    return faults


def check_policy(rules: pl.DataFrame | Iterable[dict[str, Any]], *, known_templates: Iterable[str] | None = None) -> pl.DataFrame:
    """Validate and raise :class:`PolicyValidationError` listing every fault; return the normalized rules."""
    frame = normalize_rules(rules)
    faults = validate_policy(frame, known_templates=known_templates)
    if faults:
        lines = "\n".join(f"- {f.message}" for f in faults)
        msg = f"The policy was not saved: {len(faults)} problem(s) to fix first.\n{lines}"
        raise PolicyValidationError(msg, faults=faults)
    return frame


def _shown(value: Any) -> str:
    return "(any)" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def policy_changes(before: pl.DataFrame | Iterable[dict[str, Any]], after: pl.DataFrame | Iterable[dict[str, Any]]) -> pl.DataFrame:
    """What differs between two versions of a policy, one row per changed setting.

    Rules are matched by ``rule_id``; a rule only in ``after`` is "added", one only in
    ``before`` "removed", and each setting that differs in a rule in both is "changed", with
    its value before (``was``) and after (``now``). Empty conditions read "(any)". Rows come
    in the order of ``after``'s rules, removed rules last; no rows means no change.
    """
    old = {r["rule_id"]: r for r in normalize_rules(before).to_dicts()}
    new = normalize_rules(after).to_dicts()
    rows: list[dict[str, str]] = []
    for rule in new:
        rule_id = rule["rule_id"]
        was = old.get(rule_id)
        if was is None:
            rows.append({"rule_id": _shown(rule_id), "change": "added", "setting": "", "was": "", "now": ""})
            continue
        for name in RULE_COLUMNS[1:]:
            if rule[name] != was[name]:
                rows.append({"rule_id": rule_id, "change": "changed", "setting": name,
                             "was": _shown(was[name]), "now": _shown(rule[name])})
    kept = {r["rule_id"] for r in new}
    rows += [{"rule_id": rule_id, "change": "removed", "setting": "", "was": "", "now": ""}
             for rule_id in old if rule_id not in kept]
    return pl.DataFrame(rows, schema={c: pl.String for c in ("rule_id", "change", "setting", "was", "now")})


# -- versions -------------------------------------------------------------------------------
def latest_policy_version(store: Store) -> int | None:
    """The newest saved version number, or ``None`` when no policy was ever saved."""
    return store.scalar("SELECT max(policy_version) FROM policy_versions")


def active_policy_version(store: Store) -> int | None:
    """The version the worklist uses (the newest saved one unless an older one was re-activated)."""
    return store.scalar("SELECT max(policy_version) FROM policy_versions WHERE active")


def list_policy_versions(store: Store) -> pl.DataFrame:
    """Every saved version, newest first, with its rule count."""
    return store.query(
        """
        SELECT v.policy_version, v.created, v.author, v.comment, v.active,
               count(r.rule_id)::BIGINT AS rules
        FROM policy_versions v LEFT JOIN policy_rules r USING (policy_version)
        GROUP BY ALL ORDER BY v.policy_version DESC
        """
    )


def load_policy(store: Store, version: int | None = None) -> pl.DataFrame:
    """The rules of ``version`` (default: the active one), sorted by priority.

    Raises :class:`PolicyError` when that version does not exist.
    """
    version = active_policy_version(store) if version is None else version
    if version is None or not store.scalar("SELECT count(*) FROM policy_versions WHERE policy_version = ?", [version]):
        msg = f"There is no saved collections policy version {version!r}." if version is not None else (
            "No collections policy has been saved yet."
        )
        raise PolicyError(msg)
    frame = store.query(
        f"SELECT {', '.join(RULE_COLUMNS)} FROM policy_rules WHERE policy_version = ? ORDER BY priority, rule_id",
        [version],
    )
    return normalize_rules(frame)


def save_policy(
    store: Store,
    rules: pl.DataFrame | Iterable[dict[str, Any]],
    *,
    based_on_version: int | None,
    author: str | None = None,
    comment: str | None = None,
    known_templates: Iterable[str] | None = None,
    actor: Actor | None = None,
) -> int:
    """Validate ``rules`` and save them as a new, active policy version (audited, with the rule
    changes); return its number.

    ``based_on_version`` is the version the editor started from (``None`` for the first
    policy). If someone saved a newer version in between, nothing is written and
    :class:`ConflictError` says so. Invalid rules raise :class:`PolicyValidationError`.
    """
    frame = check_policy(rules, known_templates=known_templates)
    with store.transaction() as cur:
        actor = authorize(cur, actor, "policy_edit")
        latest = cur.execute("SELECT max(policy_version) FROM policy_versions").fetchall()[0][0]
        if latest != based_on_version:
            info = cur.execute(
                "SELECT created, coalesce(author, 'someone') FROM policy_versions WHERE policy_version = ?", [latest]
            ).fetchall()
            when, who = info[0] if info else (None, "someone")
            msg = (
                f"The policy changed while you were editing: you started from version {based_on_version}, "
                f"but version {latest} (saved {when:%Y-%m-%d %H:%M} UTC by {who}) is now the latest. "
                "Reload the policy, re-apply your changes and save again."
            ) if when is not None else (
                f"The policy changed while you were editing: you started from version {based_on_version}, "
                f"but the latest is {latest}. Reload the policy and save again."
            )
            raise ConflictError(msg)
        version = (latest or 0) + 1
        cur.execute("UPDATE policy_versions SET active = false WHERE active")
        cur.execute(
            "INSERT INTO policy_versions VALUES (?, ?, ?, ?, true)", [version, utcnow(), author, comment]
        )
        cur.register("rules_frame", frame)
        cur.execute(
            f"INSERT INTO policy_rules (policy_version, {', '.join(RULE_COLUMNS)}) "
            f"SELECT ?, {', '.join(RULE_COLUMNS)} FROM rules_frame",
            [version],
        )
        cur.unregister("rules_frame")
        before = _rules_on(cur, latest)
        audit.record(
            cur, actor, "policy_save",
            {"policy_version": version, "based_on_version": based_on_version, "author": author, "comment": comment,
             "changes": policy_changes(before, frame).to_dicts() if before is not None else None},
            before=None if before is None else {"policy_version": latest, "rules": before.to_dicts()},
            after={"policy_version": version, "rules": frame.to_dicts()},
        )
    return version


def _rules_on(cur: Any, version: int | None) -> pl.DataFrame | None:
    """A saved version's rules, read on the transaction's cursor (None for no version)."""
    if version is None:
        return None
    rows = cur.execute(
        f"SELECT {', '.join(RULE_COLUMNS)} FROM policy_rules WHERE policy_version = ? ORDER BY priority, rule_id",
        [version],
    ).fetchall()
    return normalize_rules([dict(zip(RULE_COLUMNS, row, strict=True)) for row in rows])


def activate_policy_version(store: Store, version: int, *, actor: Actor | None = None) -> None:
    """Make an older (or the latest) saved version the one the worklist uses (audited)."""
    with store.transaction() as cur:
        actor = authorize(cur, actor, "policy_edit")
        exists = cur.execute("SELECT count(*) FROM policy_versions WHERE policy_version = ?", [version]).fetchall()[0][0]
        if not exists:
            msg = f"There is no saved collections policy version {version!r}."
            raise PolicyError(msg)
        was = cur.execute("SELECT max(policy_version) FROM policy_versions WHERE active").fetchall()[0][0]
        cur.execute("UPDATE policy_versions SET active = (policy_version = ?)", [version])
        audit.record(cur, actor, "policy_activate", {"policy_version": version},
                     before={"active_version": was}, after={"active_version": version})


def current_policy(store: Store) -> tuple[int | None, pl.DataFrame]:
    """The active version and its rules, or ``(None, default_policy())`` when no policy was
    ever saved. Reading never writes: the default is saved when it is first used for real
    (an export, or a save on the Strategy page)."""
    version = active_policy_version(store)
    if version is None and latest_policy_version(store) is None:
        return None, default_policy()
    if version is None:  # versions exist but none is active: use the newest
        version = latest_policy_version(store)
    return version, load_policy(store, version)


def ensure_default_policy(store: Store) -> int:
    """The active version, saving the shipped default policy first if none was ever saved."""
    current = active_policy_version(store)
    if current is not None:
        return current
    if latest_policy_version(store) is None:
        try:
            return save_policy(
                store, default_policy(), based_on_version=None, author="recoup",
                comment="Shipped default policy",
            )
        except ConflictError:  # another session saved the default at the same moment
            pass
    latest = latest_policy_version(store)
    activate_policy_version(store, latest)
    return latest


# -- matching -------------------------------------------------------------------------------
def match_rules_sql(cases: str, rules: str) -> str:
    """SQL that picks, for every row of relation ``cases``, the winning rule of ``rules``.

    ``cases`` needs ``case_key, segment, risk_tier, days_past_due, open_amount, dispute_open,
    strategic``; the result is ``case_key`` plus the rule columns (prefixed ``rule_``),
    one row per case that some active rule matches.
    """
    return f"""
        SELECT c.case_key, {', '.join(f'r.{col} AS rule_{col}' for col in RULE_COLUMNS)}
        FROM {cases} c JOIN {rules} r
          ON r.active
         AND (r.segment IS NULL OR r.segment = c.segment)
         AND (r.risk_tier IS NULL OR r.risk_tier = c.risk_tier)
         AND (r.min_days_past_due IS NULL OR c.days_past_due >= r.min_days_past_due)
         AND (r.max_days_past_due IS NULL OR c.days_past_due <= r.max_days_past_due)
         AND (r.min_amount IS NULL OR round(c.open_amount, 2) >= r.min_amount)
         AND (r.max_amount IS NULL OR round(c.open_amount, 2) <= r.max_amount)
         AND (r.dispute_open IS NULL OR r.dispute_open = c.dispute_open)
         AND (r.strategic IS NULL OR r.strategic = c.strategic)
        QUALIFY row_number() OVER (PARTITION BY c.case_key ORDER BY r.priority, r.rule_id) = 1
    """


def match_rules(cases: pl.DataFrame, rules: pl.DataFrame) -> pl.DataFrame:
    """The winning rule for each case (a small-frame convenience around :func:`match_rules_sql`)."""
    import duckdb

    con = duckdb.connect()
    con.register("rules_frame", normalize_rules(rules))
    con.register("cases_frame", cases)
    try:
        return con.sql(match_rules_sql("cases_frame", "rules_frame")).pl()
    finally:
        con.close()
