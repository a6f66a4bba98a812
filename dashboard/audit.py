"""The audit trail: one append-only, hash-chained row per change, written in the change's own
transaction (a change that rolls back leaves no row; a row never describes a change that did
not happen).

Each row stores ``hash = sha256(prev_hash + canonical JSON of the row)``, the first row's
``prev_hash`` being 64 zeros, so editing, inserting or deleting a past row breaks the chain
from that row on: :func:`verify` finds the first broken row (``python -m dashboard audit
--verify``). DuckDB has no triggers, so nothing stops a raw UPDATE; the chain makes it visible.
Removing the newest rows leaves a valid shorter chain: keep a copy of :func:`head` elsewhere
(a log line, a ticket) to detect that.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import duckdb
import polars as pl

from dashboard.access import Actor, local_actor
from dashboard.store import Store, utcnow
from dashboard.vocabulary import AUDIT_ACTIONS

GENESIS = "0" * 64
COLUMNS: tuple[str, ...] = ("seq", "ts", "subject", "email", "role", "action", "details", "before", "after")
#: What people call each action (the admin page's filter).


def canonical(value: Any) -> str:
    """The one JSON text of ``value`` (sorted keys, no spaces, dates as ISO text)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_plain, ensure_ascii=False)


def _plain(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    return str(value)


def _row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(row)).encode("utf-8")).hexdigest()


def _row(seq: int, ts: datetime, subject: str, email: str | None, role: str, action: str,
         details: str, before: str | None, after: str | None) -> dict[str, Any]:
    return {
        "seq": int(seq), "ts": ts.isoformat(timespec="microseconds"), "subject": subject, "email": email,
        "role": role, "action": action, "details": details, "before": before, "after": after,
    }


def record(
    cur: duckdb.DuckDBPyConnection,
    actor: Actor | None,
    action: str,
    details: dict[str, Any] | None = None,
    *,
    before: Any = None,
    after: Any = None,
) -> int:
    """Append one row on ``cur`` (the change's own transaction cursor); return its number.

    ``actor`` None is the command line's user. ``before``/``after``: the state the change
    replaced and the one it made, where it applies (a policy's rules, a user's role).
    """
    if action not in AUDIT_ACTIONS:
        msg = f"unknown audit action {action!r}"
        raise ValueError(msg)
    actor = actor or local_actor()
    last = cur.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchall()
    seq, prev_hash = (int(last[0][0]) + 1, last[0][1]) if last else (1, GENESIS)
    row = _row(
        seq, utcnow(), actor.subject, actor.email, actor.role, action, canonical(details or {}),
        None if before is None else canonical(before), None if after is None else canonical(after),
    )
    cur.execute(
        f"INSERT INTO audit_log ({', '.join(COLUMNS)}, prev_hash, hash) VALUES ({', '.join('?' * (len(COLUMNS) + 2))})",
        [*(row[c] if c != "ts" else datetime.fromisoformat(row["ts"]) for c in COLUMNS), prev_hash, _row_hash(prev_hash, row)],
    ).fetchall()
    return seq


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found: ``ok``, how many rows were checked, the first broken row."""

    ok: bool
    rows: int
    head: str  # the newest row's hash (GENESIS for an empty log)
    broken_seq: int | None = None
    reason: str = ""

    def summary(self) -> str:
        if self.ok:
            return f"audit log intact: {self.rows:,} row(s), newest hash {self.head[:16]}"
        return f"audit log BROKEN at row {self.broken_seq}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "head": self.head, "broken_seq": self.broken_seq,
                "reason": self.reason}


def verify(store: Store) -> Verification:
    """Recompute the chain from the first row; stop at the first row that does not match."""
    cur = store.cursor()
    try:
        rows = cur.execute(f"SELECT {', '.join(COLUMNS)}, prev_hash, hash FROM audit_log ORDER BY seq").fetchall()
    finally:
        cur.close()
    prev = GENESIS
    for index, values in enumerate(rows, start=1):
        *fields, prev_hash, stored = values
        row = _row(*fields)
        if row["seq"] != index:
            return Verification(False, len(rows), prev, row["seq"],
                                f"row numbers jump from {index - 1} to {row['seq']} (rows were removed or inserted)")
        if prev_hash != prev:
            return Verification(False, len(rows), prev, row["seq"], "it does not follow the row before it")
        if _row_hash(prev, row) != stored:
            return Verification(False, len(rows), prev, row["seq"], "its content was changed after it was written")
        prev = stored
    return Verification(True, len(rows), prev)


def head(store: Store) -> str:
    """The newest row's hash: keep a copy elsewhere to detect the newest rows being removed."""
    return str(store.scalar("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1") or GENESIS)


def read_audit(
    store: Store,
    *,
    action: str | None = None,
    who: str | None = None,
    since: date | None = None,
    until: date | None = None,
    limit: int = 500,
) -> pl.DataFrame:
    """Audit rows, newest first: filtered by action, by person (subject or email, part of it),
    and by UTC day (``since``..``until`` inclusive)."""
    clauses, params = ["TRUE"], []
    if action:
        clauses.append("action = ?")
        params.append(action)
    if who:
        clauses.append("(subject ILIKE ? OR coalesce(email, '') ILIKE ?)")
        params += [f"%{who}%", f"%{who}%"]
    if since:
        clauses.append("ts >= ?")
        params.append(datetime.combine(since, datetime.min.time()))
    if until:
        clauses.append("ts < ?::TIMESTAMP + INTERVAL 1 DAY")
        params.append(datetime.combine(until, datetime.min.time()))
    params.append(int(limit))
    return store.query(
        f"SELECT {', '.join(COLUMNS)} FROM audit_log WHERE {' AND '.join(clauses)} ORDER BY seq DESC LIMIT ?",
        params,
    )
