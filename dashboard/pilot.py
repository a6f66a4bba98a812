"""Pilots: measure what the worklist does to cash and DSO on the user's own data.

A pilot is a named trial over 30, 60 or 90 days. Each customer it covers (all, one segment or
one collector's) is assigned once, at the start, to the **worklist** group (today's prioritized
lines) or the **holdout** group (the usual cadence the contact history shows: strategy A, as in
:mod:`dashboard.cadence`). The assignment is stratified by the segment at the start and the
open-amount band at the start, and inside each stratum ordered by SHA-256 of
``"<pilot id>:<customer id>"``: the first ``round(share × n)`` customers (allocated across strata
so the total is exact) are the holdout. It is written in one transaction and never changes; a
customer first seen after the start is assigned by the same hash (holdout when its hash, read
as a number in [0, 1), is below the share) and stored on first sight.

Main entries: :func:`plan_pilot` (assignment, balance check and power, nothing stored),
:func:`start_pilot` (stores a plan), :func:`split_pilot_holdout` (the worklist's hook: holdout
customers leave the actionable lines and are listed apart).

What happened to each group is read by :mod:`dashboard.pilot_outcomes`; the report is
:func:`dashboard.pilot_report.pilot_report`.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import NormalDist
from typing import Any

import numpy as np
import polars as pl

from dashboard import audit
from dashboard.access import Actor, authorize
from dashboard.display import day, days, percent
from dashboard.errors import PilotError, RecoupError
from dashboard.ledger import date_literal
from dashboard.pilot_outcomes import DAYS_TO_PAY_CAP, INTERVAL, customer_outcomes
from dashboard.store import Store, utcnow
from dashboard.vocabulary import PILOT_ARMS, label

ARMS: tuple[str, ...] = PILOT_ARMS
PILOT_LENGTHS: tuple[int, ...] = (30, 60, 90)
SCOPES: tuple[str, ...] = ("all", "segment", "collector")
DEFAULT_HOLDOUT_SHARE = 0.10
MAX_HOLDOUT_SHARE = 0.5
DEFAULT_KILL_DAYS = 2.0
#: Power is computed for a test at the verdict's level (a 90% interval: two-sided 10%).
POWER = 0.80
#: Days before the start whose invoices describe the customers (size, days late history).
HISTORY_DAYS = 365
NO_OPEN_BAND = "no open balance"
_SLUG = re.compile(r"[^a-z0-9]+")

PILOT_COLUMNS: dict[str, pl.DataType] = {
    "pilot_id": pl.String(),
    "name": pl.String(),
    "start_date": pl.Date(),
    "days": pl.Int32(),
    "holdout_share": pl.Float64(),
    "scope_kind": pl.String(),
    "scope_value": pl.String(),
    "kill_days": pl.Float64(),
    "created": pl.Datetime("us"),
    "created_by": pl.String(),
    "cancelled": pl.Datetime("us"),
}
ASSIGNMENT_SCHEMA: dict[str, pl.DataType] = {
    "pilot_id": pl.String(),
    "customer_id": pl.String(),
    "arm": pl.String(),
    "stratum": pl.String(),
    "assigned": pl.Date(),
}
HOLDOUT_COLUMNS: tuple[str, ...] = (
    "line_id",
    "as_of",
    "pilot_id",
    "arm",
    "collector",
    "customer_id",
    "customer_name",
    "email",
    "segment",
    "invoice_count",
    "open_amount",
    "currency",
    "max_days_past_due",
    "oldest_due_date",
    "usual_touch_today",
    "usual_action",
    "usual_channel",
    "usual_tone",
    "note",
    "invoices",
)
HOLDOUT_FLAT_COLUMNS: tuple[str, ...] = tuple(c for c in HOLDOUT_COLUMNS if c not in ("as_of", "invoices")) + (
    "invoice_ids",
)
HOLDOUT_NOTE = "pilot holdout: usual cadence, not a worklist line"


# ---------------------------------------------------------------------------------------
# the pilot
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pilot:
    """A pilot's definition (one row of ``pilots``)."""

    pilot_id: str
    name: str
    start: date
    days: int
    holdout_share: float
    scope_kind: str = "all"
    scope_value: str | None = None
    kill_days: float | None = DEFAULT_KILL_DAYS
    created: datetime | None = None
    created_by: str | None = None
    cancelled: datetime | None = None

    @property
    def last_day(self) -> date:
        """The pilot's last day (inclusive)."""
        return self.start + timedelta(days=self.days - 1)

    def running_on(self, as_of: date) -> bool:
        """Whether the pilot steers the worklist of ``as_of``."""
        return self.cancelled is None and self.start <= as_of <= self.last_day

    def scope_label(self) -> str:
        if self.scope_kind == "segment":
            return f"customers in the segment {label(self.scope_value)} at the start"
        if self.scope_kind == "collector":
            return f"{self.scope_value}'s customers"
        return "all customers"

    def describe(self) -> str:
        kill = f"; kill criterion: at least {days(self.kill_days)} sooner" if self.kill_days is not None else ""
        state = " (cancelled)" if self.cancelled is not None else ""
        return (
            f"{self.name}{state}: {day(self.start)} to {day(self.last_day)} ({self.days} days), "
            f"{self.scope_label()}, {percent(self.holdout_share, share=True, decimals=0)} held out{kill}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "pilot_id": self.pilot_id,
            "name": self.name,
            "start": self.start.isoformat(),
            "last_day": self.last_day.isoformat(),
            "days": self.days,
            "holdout_share": self.holdout_share,
            "scope_kind": self.scope_kind,
            "scope_value": self.scope_value,
            "kill_days": self.kill_days,
            "cancelled": self.cancelled.isoformat() if self.cancelled else None,
        }


def pilot_id_for(name: str, start: date) -> str:
    """A stable id from the name and start (``"Q1 worklist" 2026-01-05`` → ``q1-worklist-20260105``)."""
    slug = _SLUG.sub("-", name.lower()).strip("-")[:40] or "pilot"
    return f"{slug}-{start:%Y%m%d}"


def validate_pilot(pilot: Pilot) -> None:
    """Raise :class:`PilotError` quoting the setting that cannot be used."""
    if not pilot.name.strip():
        msg = "A pilot needs a name; got an empty one."
        raise PilotError(msg)
    if pilot.days not in PILOT_LENGTHS:
        msg = f"A pilot runs 30, 60 or 90 days; got {pilot.days!r}."
        raise PilotError(msg)
    if not 0.0 < pilot.holdout_share <= MAX_HOLDOUT_SHARE:
        msg = f"The holdout share is above 0 and at most {MAX_HOLDOUT_SHARE:.0%} (0.10 = 10%); got {pilot.holdout_share!r}."
        raise PilotError(msg)
    if pilot.scope_kind not in SCOPES:
        msg = f"A pilot covers all customers, a segment or a collector; got {pilot.scope_kind!r}."
        raise PilotError(msg)
    if pilot.scope_kind != "all" and not (pilot.scope_value or "").strip():
        msg = f"A pilot scoped to a {pilot.scope_kind} needs its name; got {pilot.scope_value!r}."
        raise PilotError(msg)
    if pilot.kill_days is not None and not math.isfinite(pilot.kill_days):
        msg = f"The kill criterion is a number of days; got {pilot.kill_days!r}."
        raise PilotError(msg)


def _pilot_from_row(row: dict[str, Any]) -> Pilot:
    return Pilot(
        pilot_id=row["pilot_id"],
        name=row["name"],
        start=row["start_date"],
        days=int(row["days"]),
        holdout_share=float(row["holdout_share"]),
        scope_kind=row["scope_kind"],
        scope_value=row["scope_value"],
        kill_days=row["kill_days"],
        created=row["created"],
        created_by=row["created_by"],
        cancelled=row["cancelled"],
    )


def list_pilots(store: Store) -> list[Pilot]:
    """Every pilot, newest start first."""
    rows = store.query(f"SELECT {', '.join(PILOT_COLUMNS)} FROM pilots ORDER BY start_date DESC, created DESC")
    return [_pilot_from_row(r) for r in rows.to_dicts()]


def get_pilot(store: Store, pilot_id: str) -> Pilot:
    """The pilot ``pilot_id``, or :class:`PilotError` naming the pilots there are."""
    pilots = list_pilots(store)
    for pilot in pilots:
        if pilot.pilot_id == pilot_id:
            return pilot
    known = ", ".join(p.pilot_id for p in pilots) or "none yet"
    msg = f"No pilot has the id {pilot_id!r}; the store has: {known}."
    raise PilotError(msg)


def running_pilot(store: Store, as_of: date) -> Pilot | None:
    """The pilot that steers the worklist of ``as_of`` (at most one runs on a day)."""
    for pilot in list_pilots(store):
        if pilot.running_on(as_of):
            return pilot
    return None


def latest_pilot(store: Store, as_of: date | None = None) -> Pilot | None:
    """The running pilot on ``as_of``, else the newest one that started by then (else the newest)."""
    pilots = [p for p in list_pilots(store) if p.cancelled is None]
    if as_of is not None:
        running = [p for p in pilots if p.running_on(as_of)]
        if running:
            return running[0]
        started = [p for p in pilots if p.start <= as_of]
        if started:
            return started[0]
    return pilots[0] if pilots else None


def cancel_pilot(store: Store, pilot_id: str, *, actor: Actor | None = None) -> Pilot:
    """Stop a pilot: from now on the worklist covers its holdout again (its record stays).
    Needs the ``pilot`` permission; recorded in the audit log in the same transaction."""
    pilot = get_pilot(store, pilot_id)
    if pilot.cancelled is not None:
        return pilot
    with store.transaction() as cur:
        actor = authorize(cur, actor, "pilot")
        cur.execute("UPDATE pilots SET cancelled = ? WHERE pilot_id = ?", [utcnow(), pilot_id]).fetchall()
        audit.record(cur, actor, "pilot_cancel", {"pilot_id": pilot_id, "name": pilot.name})
    return get_pilot(store, pilot_id)


# ---------------------------------------------------------------------------------------
# assignment
# ---------------------------------------------------------------------------------------
def hash_unit(pilot_id: str, customer_ids: Iterable[str]) -> np.ndarray:
    """SHA-256 of ``"<pilot id>:<customer id>"`` read as a number in [0, 1) (stable across
    processes, versions and machines, unlike Python's or DuckDB's ``hash``)."""
    return np.array(
        [int(hashlib.sha256(f"{pilot_id}:{c}".encode()).hexdigest()[:13], 16) / 16**13 for c in customer_ids],
        dtype=np.float64,
    )


def assign_arms(customers: pl.DataFrame, pilot_id: str, holdout_share: float) -> pl.DataFrame:
    """Stratified assignment: inside each ``stratum``, customers ordered by :func:`hash_unit`;
    the first ones are the holdout. Holdout counts are allocated across strata (sorted by name)
    by cumulative rounding, so the total is ``round(share × n)`` and each stratum holds within
    one customer of its share. Returns ``customers`` with ``arm`` added (same row order not kept)."""
    if customers.is_empty():
        return customers.with_columns(arm=pl.lit(None, pl.String))
    ranked = customers.with_columns(
        _u=pl.Series(hash_unit(pilot_id, customers["customer_id"].to_list()))
    ).sort(["stratum", "_u", "customer_id"])
    sizes = ranked.group_by("stratum", maintain_order=True).len()
    cumulative = np.cumsum(sizes["len"].to_numpy())
    quota_to = np.floor(holdout_share * cumulative + 0.5).astype(np.int64)
    quotas = np.diff(np.concatenate([[0], quota_to]))
    quota = sizes.select("stratum", _quota=pl.Series(quotas))
    return (
        ranked.join(quota, on="stratum", how="left")
        .with_columns(_rank=pl.int_range(pl.len()).over("stratum"))
        .with_columns(arm=pl.when(pl.col("_rank") < pl.col("_quota")).then(pl.lit("holdout")).otherwise(pl.lit("worklist")))
        .drop("_u", "_rank", "_quota")
    )


def _customers_at(store: Store, as_of: date) -> pl.DataFrame:
    """Every customer known by ``as_of`` with what describes it then: segment, open AR, owner,
    days late history and size (invoiced in the year before)."""
    from dashboard.segments import assign_segments

    try:
        segments = assign_segments(store, as_of, with_open_amount=True).select(
            "customer_id",
            "segment",
            pl.col("open_amount").cast(pl.Float64),
            pl.when(pl.col("paid_invoices") > 0).then(pl.col("avg_days_late")).cast(pl.Float64).alias("avg_days_late"),
        )
    except RecoupError:
        segments = pl.DataFrame(
            schema={"customer_id": pl.String, "segment": pl.String, "open_amount": pl.Float64, "avg_days_late": pl.Float64}
        )
    known = store.query(
        f"""
        WITH ids AS (
            SELECT customer_id FROM customers
            UNION SELECT customer_id FROM ledger_documents
            WHERE customer_id IS NOT NULL AND invoice_date <= {date_literal(as_of)}
        ), size AS (
            SELECT customer_id, sum(amount_base)::DOUBLE AS invoiced_year
            FROM ledger_documents
            WHERE doc_type = 'invoice' AND amount > 0
              AND invoice_date > {date_literal(as_of - timedelta(days=HISTORY_DAYS))} AND invoice_date <= {date_literal(as_of)}
            GROUP BY 1
        )
        SELECT i.customer_id, c.owner, coalesce(s.invoiced_year, 0) AS invoiced_year
        FROM ids i LEFT JOIN customers c USING (customer_id) LEFT JOIN size s USING (customer_id)
        """
    )
    return known.join(segments, on="customer_id", how="left").with_columns(
        segment=pl.col("segment").fill_null("none"), open_amount=pl.col("open_amount").fill_null(0.0)
    )


def _in_scope(customers: pl.DataFrame, pilot: Pilot) -> pl.DataFrame:
    if pilot.scope_kind == "segment":
        return customers.filter(pl.col("segment") == pilot.scope_value)
    if pilot.scope_kind == "collector":
        return customers.filter(pl.col("owner") == pilot.scope_value)
    return customers


def _with_strata(customers: pl.DataFrame) -> pl.DataFrame:
    """Stratum = segment | open-amount band (quartiles of the positive open amounts in scope)."""
    positive = customers.filter(pl.col("open_amount") > 0)["open_amount"]
    if positive.len() >= 4:
        cuts = [float(positive.quantile(q, interpolation="linear") or 0.0) for q in (0.25, 0.5, 0.75)]
        band = (
            pl.when(pl.col("open_amount") <= 0)
            .then(pl.lit(NO_OPEN_BAND))
            .when(pl.col("open_amount") <= cuts[0])
            .then(pl.lit("open amount Q1"))
            .when(pl.col("open_amount") <= cuts[1])
            .then(pl.lit("open amount Q2"))
            .when(pl.col("open_amount") <= cuts[2])
            .then(pl.lit("open amount Q3"))
            .otherwise(pl.lit("open amount Q4"))
        )
    else:
        band = pl.when(pl.col("open_amount") <= 0).then(pl.lit(NO_OPEN_BAND)).otherwise(pl.lit("open balance"))
    return customers.with_columns(stratum=pl.format("{} | {}", pl.col("segment"), band))


@dataclass(frozen=True)
class PilotPlan:
    """What starting a pilot would do, before anything is stored.

    Attributes
    ----------
    pilot
        The definition.
    customers
        One row per covered customer: customer_id, owner, segment, open_amount, avg_days_late,
        invoiced_year, stratum, arm.
    balance
        The balance check (:func:`balance_table`).
    power
        Smallest effects detectable at 80% power (:func:`minimum_detectable_effects`).
    """

    pilot: Pilot
    customers: pl.DataFrame
    balance: pl.DataFrame
    power: dict[str, Any]

    def counts(self) -> dict[str, int]:
        return {arm: int((self.customers["arm"] == arm).sum()) for arm in ARMS}

    @property
    def balance_warning(self) -> str | None:
        return balance_warning(self.balance)

    def summary(self) -> str:
        n = self.counts()
        text = (
            f"{self.pilot.describe()}. {n['worklist']:,} customers get the worklist, {n['holdout']:,} keep the "
            f"usual cadence. {self.power['text']}"
        )
        return f"{text} {self.balance_warning}" if self.balance_warning else text

    def to_dict(self) -> dict[str, Any]:
        return {
            "pilot": self.pilot.to_dict(),
            "customers": self.counts(),
            "balance": self.balance.to_dicts(),
            "balance_warning": self.balance_warning,
            "power": self.power,
        }


def plan_pilot(
    store: Store,
    *,
    name: str,
    start: date,
    days: int = 90,
    holdout_share: float = DEFAULT_HOLDOUT_SHARE,
    scope_kind: str = "all",
    scope_value: str | None = None,
    kill_days: float | None = DEFAULT_KILL_DAYS,
    pilot_id: str | None = None,
) -> PilotPlan:
    """The assignment, balance check and power of a pilot, computed from what the store knew on
    the day before ``start``; nothing is written (see :func:`start_pilot`)."""
    pilot = Pilot(
        pilot_id=pilot_id or pilot_id_for(name, start),
        name=name.strip(),
        start=start,
        days=int(days),
        holdout_share=float(holdout_share),
        scope_kind=scope_kind,
        scope_value=(scope_value or None) if scope_kind != "all" else None,
        kill_days=None if kill_days is None else float(kill_days),
    )
    validate_pilot(pilot)
    known = _customers_at(store, start - timedelta(days=1))
    scoped = _in_scope(known, pilot)
    if scoped.is_empty():
        if pilot.scope_kind == "segment":
            present = sorted(known["segment"].unique().to_list())
            msg = f"No customer is in the segment {pilot.scope_value!r} on {day(start)}; segments there: {present!r}."
        elif pilot.scope_kind == "collector":
            present = sorted(v for v in known["owner"].unique().to_list() if v is not None)
            msg = f"No customer belongs to the collector {pilot.scope_value!r}; collectors: {present!r}."
        else:
            msg = f"The store knows no customer by {day(start)}: load data before planning a pilot."
        raise PilotError(msg)
    customers = assign_arms(_with_strata(scoped), pilot.pilot_id, pilot.holdout_share)
    counts = {arm: int((customers["arm"] == arm).sum()) for arm in ARMS}
    if min(counts.values()) < 2:
        msg = (
            f"With {scoped.height} customers and a {pilot.holdout_share:.0%} holdout, one group would have "
            f"{min(counts.values())} customer(s): cover more customers or hold out a larger share."
        )
        raise PilotError(msg)
    balance = balance_table(customers)
    power = minimum_detectable_effects(store, customers, pilot)
    return PilotPlan(pilot=pilot, customers=customers, balance=balance, power=power)


def start_pilot(
    store: Store, plan: PilotPlan, *, created_by: str | None = None, actor: Actor | None = None
) -> Pilot:
    """Store ``plan``: the pilot and every assignment, in one transaction (with its audit row;
    needs the ``pilot`` permission).

    Refused (nothing written) when the id exists or another pilot runs on any of its days.
    """
    pilot = plan.pilot
    existing = list_pilots(store)
    if any(p.pilot_id == pilot.pilot_id for p in existing):
        msg = f"A pilot with the id {pilot.pilot_id!r} exists already; give this one another name or start."
        raise PilotError(msg)
    for other in existing:
        if other.cancelled is None and other.start <= pilot.last_day and pilot.start <= other.last_day:
            msg = (
                f"The pilot {other.name!r} runs from {day(other.start)} to {day(other.last_day)}: one pilot at a "
                f"time steers the worklist. Start after {day(other.last_day)} or cancel it first."
            )
            raise PilotError(msg)
    rows = plan.customers.select(
        pl.lit(pilot.pilot_id).alias("pilot_id"), "customer_id", "arm", "stratum", pl.lit(pilot.start).alias("assigned")
    )
    with store.transaction() as cur:
        actor = authorize(cur, actor, "pilot")
        cur.execute(
            "INSERT INTO pilots VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            [
                pilot.pilot_id, pilot.name, pilot.start, pilot.days, pilot.holdout_share, pilot.scope_kind,
                pilot.scope_value, pilot.kill_days, utcnow(), created_by,
            ],
        ).fetchall()
        cur.register("pilot_rows", rows)
        try:
            cur.execute("INSERT INTO pilot_assignments SELECT * FROM pilot_rows").fetchall()
        finally:
            cur.unregister("pilot_rows")
        audit.record(
            cur, actor, "pilot_start",
            {"pilot_id": pilot.pilot_id, "name": pilot.name, "start": pilot.start, "days": pilot.days,
             "holdout_share": pilot.holdout_share, "scope": [pilot.scope_kind, pilot.scope_value],
             "customers": rows.height},
        )
    return get_pilot(store, pilot.pilot_id)


def assignments(store: Store, pilot_id: str) -> pl.DataFrame:
    """The stored assignment of a pilot (columns of ``pilot_assignments``)."""
    return store.query(
        "SELECT * FROM pilot_assignments WHERE pilot_id = ? ORDER BY customer_id", [pilot_id]
    ).cast(ASSIGNMENT_SCHEMA)  # type: ignore[arg-type]


def ensure_assigned(store: Store, pilot: Pilot, customer_ids: Sequence[str] | pl.Series, as_of: date) -> pl.DataFrame:
    """The arm of each of ``customer_ids`` the pilot covers (customer_id, arm).

    A customer the pilot has not seen yet (first billed after the start) gets the same hash
    rule — holdout when :func:`hash_unit` is below the share — and is stored then, so its arm
    never changes. Customers outside the pilot's scope (judged at the start, or for a newcomer
    on first sight) are left out.
    """
    wanted = pl.DataFrame({"customer_id": pl.Series(list(customer_ids), dtype=pl.String)}).unique()
    stored = assignments(store, pilot.pilot_id).select("customer_id", "arm")
    new = wanted.join(stored, on="customer_id", how="anti")
    if new.height:  # customers billed before the start were judged then (in scope or not): not new
        known = store.query(
            f"""
            SELECT DISTINCT customer_id FROM ledger_documents
            WHERE invoice_date < {date_literal(pilot.start)} AND customer_id IN (SELECT customer_id FROM new_ids)
            """,
            frames={"new_ids": new},
        )
        new = new.join(known, on="customer_id", how="anti")
    if new.height:
        described = new.join(_describe_new(store, new, as_of), on="customer_id", how="left").with_columns(
            segment=pl.col("segment").fill_null("new")
        )
        described = _in_scope(described, pilot)
        if described.height:
            u = hash_unit(pilot.pilot_id, described["customer_id"].to_list())
            rows = described.select(
                pl.lit(pilot.pilot_id).alias("pilot_id"),
                "customer_id",
                pl.Series("arm", np.where(u < pilot.holdout_share, "holdout", "worklist")),
                pl.format("{} | first seen after the start", pl.col("segment")).alias("stratum"),
                pl.lit(as_of).alias("assigned"),
            )
            if not store.read_only:
                with store.transaction() as cur:
                    cur.register("pilot_rows", rows)
                    try:
                        cur.execute("INSERT INTO pilot_assignments SELECT * FROM pilot_rows ON CONFLICT DO NOTHING").fetchall()
                    finally:
                        cur.unregister("pilot_rows")
            stored = pl.concat([stored, rows.select("customer_id", "arm")])
    return wanted.join(stored, on="customer_id", how="inner")


def _describe_new(store: Store, new: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Owner and segment on ``as_of`` of customers first seen after a pilot's start."""
    from dashboard.segments import assign_segments

    owners = store.query("SELECT customer_id, owner FROM customers WHERE customer_id IN (SELECT customer_id FROM new_ids)",
                         frames={"new_ids": new})
    try:
        segments = assign_segments(store, as_of, with_open_amount=False).select("customer_id", "segment")
    except RecoupError:
        segments = pl.DataFrame(schema={"customer_id": pl.String, "segment": pl.String})
    return new.join(owners, on="customer_id", how="left").join(segments, on="customer_id", how="left")


# ---------------------------------------------------------------------------------------
# balance at the start, and power
# ---------------------------------------------------------------------------------------
BALANCE_VARIABLES: dict[str, str] = {
    "open_amount": "Open AR at the start",
    "avg_days_late": "Average days late (history)",
    "invoiced_year": "Invoiced in the year before",
}


def balance_table(customers: pl.DataFrame) -> pl.DataFrame:
    """Per variable: the mean in each group, the standardized difference
    ``(mean_w − mean_h) / sqrt((var_w + var_h) / 2)`` and ``z`` = that difference over the
    spread chance alone gives it under random assignment, ``sqrt(1/n_w + 1/n_h)``.

    Variables: open AR at the start, average days late over the history (customers with paid
    invoices), invoiced amount in the year before (size), and the share in each segment.
    Columns: variable, worklist, holdout, standardized_difference, z, unusual (|z| beyond the
    Bonferroni-corrected 5% bound over all variables).
    """
    columns = dict(BALANCE_VARIABLES)
    frame = customers.select("arm", *[c for c in columns if c in customers.columns], "segment")
    for segment in sorted(frame["segment"].unique().to_list()):
        name = f"segment_{segment}"
        frame = frame.with_columns((pl.col("segment") == segment).cast(pl.Float64).alias(name))
        columns[name] = f"Share {label(segment)}"
    rows = []
    for column, text in columns.items():
        if column not in frame.columns:
            continue
        w = frame.filter(pl.col("arm") == "worklist")[column].drop_nulls().cast(pl.Float64).to_numpy()
        h = frame.filter(pl.col("arm") == "holdout")[column].drop_nulls().cast(pl.Float64).to_numpy()
        if len(w) < 2 or len(h) < 2:
            continue
        spread = math.sqrt((w.var(ddof=1) + h.var(ddof=1)) / 2)
        smd = float((w.mean() - h.mean()) / spread) if spread > 0 else 0.0
        chance = math.sqrt(1 / len(w) + 1 / len(h))
        rows.append(
            {
                "variable": text,
                "worklist": float(w.mean()),
                "holdout": float(h.mean()),
                "standardized_difference": smd,
                "z": smd / chance,
            }
        )
    table = pl.DataFrame(
        rows,
        schema={
            "variable": pl.String,
            "worklist": pl.Float64,
            "holdout": pl.Float64,
            "standardized_difference": pl.Float64,
            "z": pl.Float64,
        },
    )
    bound = NormalDist().inv_cdf(1 - 0.05 / (2 * max(table.height, 1)))
    return table.with_columns(unusual=pl.col("z").abs() > bound)


def balance_warning(balance: pl.DataFrame) -> str | None:
    """A warning when a variable differs between the groups more than chance allows."""
    unusual = balance.filter(pl.col("unusual"))
    if unusual.is_empty():
        return None
    names = ", ".join(unusual["variable"].to_list())
    return (
        f"The groups differ more than chance allows on: {names}. Read the results with care, or start the pilot "
        "under another name (a new assignment)."
    )


def minimum_detectable_effects(store: Store, customers: pl.DataFrame, pilot: Pilot) -> dict[str, Any]:
    """The smallest effects the pilot can detect at 80% power with a two-sided test at the
    verdict's level (10%): ``(z_0.95 + z_0.80) × sqrt(var/n_w + var/n_h)``, with ``var`` the
    customer-level variance of the linearized ratio (the customer is the unit of randomization,
    so invoices clustered in customers are accounted for) measured on the invoices that came due
    in the ``days`` before the start's last 90 (all followed 90 days by the day before the start).
    """
    z = NormalDist().inv_cdf(1 - (1 - INTERVAL) / 2) + NormalDist().inv_cdf(POWER)
    n = {arm: int((customers["arm"] == arm).sum()) for arm in ARMS}
    as_of = pilot.start - timedelta(days=1)
    first = pilot.start - timedelta(days=pilot.days + 90)
    last = pilot.start - timedelta(days=91)
    outcomes = customer_outcomes(
        store, customers.select("customer_id", "arm"), first=first, last=last, as_of=as_of, cap=DAYS_TO_PAY_CAP
    )
    frame = customers.select("customer_id").join(outcomes.customers, on="customer_id", how="left").fill_null(0.0)

    def mde(num: str, den: str) -> float | None:
        x, m = frame[num].to_numpy(), frame[den].to_numpy()
        if m.sum() <= 0:
            return None
        ratio = x.sum() / m.sum()
        u = (x - ratio * m) / m.mean()
        return float(z * math.sqrt(u.var(ddof=1) * (1 / n["worklist"] + 1 / n["holdout"])))

    days_mde, cash_mde = mde("dtp_num", "dtp_den"), mde("cash30_num", "cash30_den")
    invoices = int(outcomes.invoices.height)
    text = (
        f"With {n['worklist']:,} worklist and {n['holdout']:,} holdout customers and the spread of the "
        f"{invoices:,} invoices that came due from {day(first)} to {day(last)}, the pilot can detect (80% power) "
        + (
            f"a change of {days(days_mde)} in days to pay and {cash_mde * 100:.1f} percentage points in cash "
            "collected within 30 days of due; smaller effects may go unseen."
            if days_mde is not None and cash_mde is not None
            else "nothing yet: no invoice came due in that period to measure the spread from."
        )
    )
    return {
        "days_to_pay_days": days_mde,
        "cash_30_share": cash_mde,
        "customers": n,
        "history_invoices": invoices,
        "history_from": first.isoformat(),
        "history_to": last.isoformat(),
        "text": text,
    }


# ---------------------------------------------------------------------------------------
# the worklist's hook
# ---------------------------------------------------------------------------------------
def empty_holdout() -> pl.DataFrame:
    """A holdout frame with no lines (the columns of :data:`HOLDOUT_COLUMNS`)."""
    return pl.DataFrame(
        schema={
            "line_id": pl.String,
            "as_of": pl.Date,
            "pilot_id": pl.String,
            "arm": pl.String,
            "collector": pl.String,
            "customer_id": pl.String,
            "customer_name": pl.String,
            "email": pl.String,
            "segment": pl.String,
            "invoice_count": pl.UInt32,
            "open_amount": pl.Float64,
            "currency": pl.String,
            "max_days_past_due": pl.Int64,
            "oldest_due_date": pl.Date,
            "usual_touch_today": pl.Boolean,
            "usual_action": pl.String,
            "usual_channel": pl.String,
            "usual_tone": pl.String,
            "note": pl.String,
            "invoices": pl.List(pl.Struct({"invoice_id": pl.String})),
        }
    )


def split_pilot_holdout(store: Store, as_of: date, lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, str | None]:
    """Take a running pilot's holdout customers out of the worklist's lines.

    Returns (the lines left to prioritize, the holdout customers as :data:`HOLDOUT_COLUMNS` with
    the step the usual cadence — strategy A, :func:`dashboard.cadence.observed_strategy`, read
    from the contact history before the pilot's start — has for them today, a note). Holdout customers are never actionable worklist lines, are not recorded
    as exported, and are not work left undone: they keep what the team did before.
    """
    pilot = running_pilot(store, as_of)
    if pilot is None or lines.is_empty():
        return lines, empty_holdout(), None
    arms = ensure_assigned(store, pilot, lines["customer_id"], as_of)
    held_out = arms.filter(pl.col("arm") == "holdout").select("customer_id")
    kept = lines.join(held_out, on="customer_id", how="anti")
    holdout = lines.join(held_out, on="customer_id", how="semi")
    note = (
        f"Pilot {pilot.name!r} ({day(pilot.start)} to {day(pilot.last_day)}): {holdout.height:,} customer(s) in its "
        "holdout keep the usual cadence and are listed apart, not as worklist lines."
    )
    return kept, _holdout_frame(store, pilot, as_of, holdout), note


def _holdout_frame(store: Store, pilot: Pilot, as_of: date, holdout: pl.DataFrame) -> pl.DataFrame:
    if holdout.is_empty():
        return empty_holdout()
    from dashboard.cadence import observed_strategy

    # the cadence before the pilot: the worklist's own touches during it must not become "usual"
    steps = observed_strategy(store, min(as_of, pilot.start - timedelta(days=1))).steps.select(
        pl.col("days_from_due").cast(pl.Int64), "action", "channel", "tone"
    )
    due_today = (
        holdout.select("customer_id", "invoices")
        .explode("invoices")
        .select("customer_id", pl.col("invoices").struct.field("days_past_due").cast(pl.Int64).alias("days_from_due"))
        .join(steps, on="days_from_due", how="inner")
        .sort("days_from_due", descending=True)
        .group_by("customer_id", maintain_order=True)
        .first()
        .select(
            "customer_id",
            pl.col("action").alias("usual_action"),
            pl.col("channel").alias("usual_channel"),
            pl.col("tone").alias("usual_tone"),
        )
    )
    return (
        holdout.join(due_today, on="customer_id", how="left")
        .with_columns(
            line_id=pl.format("{}-{}-holdout", pl.lit(as_of.strftime("%Y%m%d")), pl.col("customer_id")),
            as_of=pl.lit(as_of),
            pilot_id=pl.lit(pilot.pilot_id),
            arm=pl.lit("holdout"),
            usual_touch_today=pl.col("usual_action").is_not_null(),
            note=pl.when(pl.col("usual_action").is_not_null())
            .then(pl.lit(f"{HOLDOUT_NOTE}; the usual cadence has a touch today"))
            .otherwise(pl.lit(f"{HOLDOUT_NOTE}; the usual cadence has no touch today")),
        )
        .select(HOLDOUT_COLUMNS)
        .sort("collector", "customer_id")
    )


def holdout_flat(holdout: pl.DataFrame) -> pl.DataFrame:
    """The holdout customers as a flat table for the export file (invoice ids joined by ``;``)."""
    return holdout.with_columns(
        invoice_ids=pl.col("invoices").list.eval(pl.element().struct.field("invoice_id")).list.join("; "),
        open_amount=pl.col("open_amount").round(2),
    ).select(HOLDOUT_FLAT_COLUMNS)


def holdout_file_name(as_of: date) -> str:
    """The name of the holdout file in an export (``pilot-holdout-2026-09-30.csv``)."""
    return f"pilot-holdout-{as_of:%Y-%m-%d}.csv"
