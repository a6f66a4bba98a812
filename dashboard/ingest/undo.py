"""Undo a load: take back every row one file brought in, in one transaction, or refuse and say why.

Every row in the store carries the ``load_id`` it came from, so a load can be taken back
exactly. :func:`plan_undo` says what would go (rows per table) and what stands in the way;
:func:`undo_load` does it only when nothing does. In the way are:

- rows from *other* loads that refer to this load's invoices (payments, credit notes,
  disputes, contacts, notes or snapshot lines on them) or to the customers this load created
  — undoing would leave them pointing at nothing, so those loads must be undone first;
- a later open-balance snapshot whose inferred payments were worked out from this snapshot.

The load stays in the history with status ``undone`` (who and when in its message), and its
set-aside rows stay for the record; the same file can then be loaded again. Derived records
(risk scores, exported worklist actions, segment assignments) are history of what was shown
and done at the time, and are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from dashboard import audit
from dashboard.access import Actor, authorize
from dashboard.errors import UndoLoadError
from dashboard.ledger import refresh_ledger, touched_documents
from dashboard.store import Store, utcnow

# The tables a load writes rows to (each has a load_id column).
LOADED_TABLES: tuple[str, ...] = (
    "customers", "invoices", "payments", "adjustments", "disputes", "contacts", "notes", "fx_rates", "snapshots",
)
# Tables whose rows point at an invoice, and what a finance person calls them.
_INVOICE_REFERENCES: dict[str, str] = {
    "payments": "payments",
    "adjustments": "credit notes and adjustments",
    "disputes": "disputes",
    "contacts": "contact records",
    "notes": "notes",
    "snapshots": "open-balance snapshot lines",
}
_CUSTOMER_REFERENCES: dict[str, str] = {"invoices": "invoices", **_INVOICE_REFERENCES}


@dataclass(frozen=True)
class UndoPlan:
    """What undoing ``load_id`` would take back, and what stands in the way (empty: it can go)."""

    load_id: int
    file_name: str
    status: str
    rows: dict[str, int] = field(default_factory=dict)
    blockers: list[str] = field(default_factory=list)
    cautions: list[str] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def possible(self) -> bool:
        return self.status == "loaded" and not self.blockers

    def summary(self) -> str:
        if self.status != "loaded":
            return f"Load #{self.load_id} ({self.file_name}) is {self.status}; there is nothing to undo."
        parts = ", ".join(f"{n:,} {table}" for table, n in self.rows.items() if n)
        what = parts or "no rows (every row was set aside or already in the store)"
        if self.blockers:
            return f"Load #{self.load_id} ({self.file_name}) cannot be undone yet: " + " ".join(self.blockers)
        return " ".join([f"Undoing load #{self.load_id} ({self.file_name}) takes back {what}.", *self.cautions])


def plan_undo(store: Store, load_id: int) -> UndoPlan:
    """What undoing ``load_id`` would remove, and the loads that must be undone before it."""
    load = store.query("SELECT file_name, status, as_of_date FROM loads WHERE load_id = ?", [load_id])
    if load.height == 0:
        msg = f"There is no load #{load_id} in the store; see the load history for the numbers."
        raise UndoLoadError(msg)
    file_name, status, _ = load.row(0)
    rows = {
        table: int(store.scalar(f"SELECT count(*) FROM {table} WHERE load_id = ?", [load_id]))
        for table in LOADED_TABLES
    }
    blockers: list[str] = []
    if status == "loaded":
        blockers += _references(store, load_id, "invoices", "invoice_id", _INVOICE_REFERENCES)
        blockers += _references(store, load_id, "customers", "customer_id", _CUSTOMER_REFERENCES)
        blockers += _later_snapshots(store, load_id)
    return UndoPlan(load_id=load_id, file_name=file_name, status=status, rows=rows, blockers=blockers,
                    cautions=_later_repeats(store, load_id))


def _references(store: Store, load_id: int, table: str, key: str, referrers: dict[str, str]) -> list[str]:
    """One sentence per other load whose rows point at this load's ``table`` rows."""
    parts = [
        f"SELECT '{name}' AS what, r.load_id, count(*) AS n FROM {name} r "
        f"WHERE r.load_id <> $load_id AND r.{key} IN (SELECT {key} FROM {table} WHERE load_id = $load_id) "
        "GROUP BY r.load_id"
        for name in referrers
    ]
    found = store.query(
        f"""
        SELECT x.what, x.load_id, x.n::BIGINT AS n, l.file_name
        FROM ({' UNION ALL '.join(parts)}) x JOIN loads l ON l.load_id = x.load_id
        WHERE l.status = 'loaded'
        ORDER BY x.load_id, x.what
        """,
        {"load_id": load_id},
    )
    noun = "invoices" if table == "invoices" else "customers"
    return [
        f"{n:,} {referrers[what]} from load #{other} ({file_name}) refer to {noun} this load brought in; "
        f"undo load #{other} first."
        for what, other, n, file_name in found.iter_rows()
    ]


def _later_snapshots(store: Store, load_id: int) -> list[str]:
    """A later snapshot inferred its payments from this one."""
    later = store.query(
        """
        SELECT l.load_id, l.file_name, l.as_of_date
        FROM loads l
        WHERE l.status = 'loaded' AND l.load_id <> $load_id
          AND EXISTS (SELECT 1 FROM snapshots WHERE load_id = $load_id)
          AND l.as_of_date > (SELECT max(as_of_date) FROM snapshots WHERE load_id = $load_id)
          AND EXISTS (SELECT 1 FROM snapshots s WHERE s.load_id = l.load_id)
        ORDER BY l.load_id
        """,
        {"load_id": load_id},
    )
    return [
        f"the open-balance list of load #{other} ({file_name}, as of {as_of}) worked out payments from this one; "
        f"undo load #{other} first."
        for other, file_name, as_of in later.iter_rows()
    ]


def _later_repeats(store: Store, load_id: int) -> list[str]:
    """Later loads into the same table skipped rows already in the store: some may be this load's."""
    later = store.query(
        """
        SELECT l.load_id, l.file_name, (l.rows_read - l.rows_loaded - l.rows_rejected)::BIGINT AS skipped
        FROM loads l, loads me
        WHERE me.load_id = $load_id AND l.load_id > me.load_id AND l.status = 'loaded'
          AND l.target_table = me.target_table AND l.rows_read > l.rows_loaded + l.rows_rejected
        ORDER BY l.load_id
        """,
        {"load_id": load_id},
    )
    return [
        f"Load #{other} ({file_name}) skipped {skipped:,} rows that were already in the store; any of them that came "
        f"from this load go too (to keep them, undo load #{other} as well and load both files again)."
        for other, file_name, skipped in later.iter_rows()
    ]


def undo_load(store: Store, load_id: int, *, who: str | None = None, actor: Actor | None = None) -> UndoPlan:
    """Take back every row of ``load_id`` in one transaction, with its audit row; return what went.

    Raises :class:`~dashboard.errors.UndoLoadError` with the reasons when the plan has blockers
    or the load is not (or no longer) loaded. Nothing is written then.
    """
    stamp = utcnow().isoformat(timespec="seconds")
    with store.transaction() as cur:
        actor = authorize(cur, actor, "undo_load")
        who = who or (actor.label if not actor.is_local else None)
        note = f" Undone {stamp} UTC" + (f" by {who}" if who else "") + "."
        # planned holding the write lock, so no other session's load can slip in between
        plan = plan_undo(store, load_id)
        if not plan.possible:
            raise UndoLoadError(plan.summary())
        touched = touched_documents(cur, load_id)
        for table in LOADED_TABLES:
            cur.execute(f"DELETE FROM {table} WHERE load_id = ?", [load_id]).fetchall()
        refresh_ledger(cur, touched)
        cur.execute(
            "UPDATE loads SET status = 'undone', message = coalesce(message, '') || ? WHERE load_id = ?",
            [note, load_id],
        ).fetchall()
        audit.record(cur, actor, "undo_load", {"load_id": load_id, "file_name": plan.file_name, "who": who},
                     before={"status": "loaded", "rows": plan.rows}, after={"status": "undone"})
    return plan


def undoable_loads(store: Store) -> pl.DataFrame:
    """Loads still in the store, newest first (``load_id, file_name, target_table, rows_loaded, finished``)."""
    return store.query(
        "SELECT load_id, file_name, target_table, rows_loaded, finished FROM loads WHERE status = 'loaded' "
        "ORDER BY load_id DESC"
    )
