"""Who may do what: roles, the permission each write needs, the pages each role opens, and the
person (:class:`Actor`) every write is done by.

Roles live in the store (``users``), never in the sign-in cookie: a role changed or a user
deactivated here takes effect at the next write, even in a session that is already open,
because :func:`authorize` reads the role from the store inside the write's own transaction.

Without sign-in (local mode, the command line) the actor is the operating-system user, as an
admin: the single-user app behaves as it always did.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import duckdb

from dashboard.errors import AccessDeniedError

VIEWER, ANALYST, COLLECTOR, ADMIN = "viewer", "analyst", "collector", "admin"
ROLES: tuple[str, ...] = (VIEWER, ANALYST, COLLECTOR, ADMIN)
ROLE_LABELS: dict[str, str] = {
    VIEWER: "Viewer (CFO)",
    ANALYST: "Analyst",
    COLLECTOR: "Collector",
    ADMIN: "Admin",
}
#: The prefix of a subject that is an operating-system user (local mode, the command line).
LOCAL_PREFIX = "os:"

#: What each write (and each read that is not for everyone) needs: the roles allowed.
PERMISSIONS: dict[str, frozenset[str]] = {
    "view_dashboards": frozenset({VIEWER, ANALYST, ADMIN}),
    "policy_edit": frozenset({ANALYST, ADMIN}),
    "simulate": frozenset({ANALYST, ADMIN}),
    "pilot": frozenset({ANALYST, ADMIN}),
    "model_train": frozenset({ANALYST, ADMIN}),
    "model_activate": frozenset({ANALYST, ADMIN}),
    "model_recalibrate": frozenset({ANALYST, ADMIN}),
    "worklist": frozenset({COLLECTOR, ADMIN}),
    "worklist_export": frozenset({COLLECTOR, ADMIN}),
    "outcomes_import": frozenset({COLLECTOR, ADMIN}),
    "load": frozenset({ADMIN}),
    "undo_load": frozenset({ADMIN}),
    "manage_users": frozenset({ADMIN}),
    "read_audit": frozenset({ADMIN}),
}
#: What a person would call each permission, for refusals.
PERMISSION_WORDS: dict[str, str] = {
    "view_dashboards": "see the dashboards",
    "policy_edit": "change the collections policy",
    "simulate": "run simulations",
    "pilot": "start or cancel a pilot",
    "model_train": "train a risk model",
    "model_activate": "change the active risk model",
    "model_recalibrate": "recalibrate the risk model",
    "worklist": "open the worklist",
    "worklist_export": "export the worklist",
    "outcomes_import": "record outcomes",
    "load": "load files",
    "undo_load": "undo a load",
    "manage_users": "manage users and assignments",
    "read_audit": "read the audit log",
}
#: The pages (file stems under pages/) and the permission that opens each.
PAGE_PERMISSIONS: dict[str, str] = {
    "overview": "view_dashboards",
    "segments": "view_dashboards",
    "risk": "view_dashboards",
    "strategy": "policy_edit",
    "worklist": "worklist",
    "data": "load",
    "admin": "manage_users",
}
#: Claims a sign-in provider may send a new user's role in (a list or one value), and the
#: values read as each role ("recoup-analyst" or "analyst").
ROLE_CLAIMS: tuple[str, ...] = ("roles", "groups", "role")


@dataclass(frozen=True)
class Actor:
    """The person a change is done by, passed explicitly to every write."""

    subject: str
    role: str
    email: str | None = None
    name: str | None = None
    collector: str | None = None  # the name the worklist and customers.owner use for them

    @property
    def label(self) -> str:
        """How the person is named in messages and in the load history."""
        return self.email or self.name or self.subject.removeprefix(LOCAL_PREFIX)

    @property
    def is_local(self) -> bool:
        """An operating-system user (no sign-in): trusted as an admin."""
        return self.subject.startswith(LOCAL_PREFIX)

    def can(self, permission: str) -> bool:
        return can(self.role, permission)


def os_user() -> str:
    """The operating-system user running this process (``unknown`` when there is none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container without a passwd entry or $USER
        return "unknown"


def local_actor() -> Actor:
    """The command line's (and the single-user app's) actor: the OS user, an admin."""
    user = os_user()
    return Actor(subject=f"{LOCAL_PREFIX}{user}", role=ADMIN, name=user)


def check_role(role: object) -> str:
    if role not in ROLES:
        msg = f"Unknown role {role!r}; use one of {', '.join(ROLES)}."
        raise AccessDeniedError(msg)
    return str(role)


def can(role: str, permission: str) -> bool:
    """Whether ``role`` has ``permission`` (an unknown permission is a programming error)."""
    return role in PERMISSIONS[permission]


def pages_for(role: str) -> list[str]:
    """The pages ``role`` may open, in the app's order."""
    return [page for page, permission in PAGE_PERMISSIONS.items() if can(role, permission)]


def role_from_claims(claims: Mapping[str, Any]) -> str | None:
    """A role named in the sign-in claims (``roles``, ``groups`` or ``role``), the strongest one
    when several are; None when none is."""
    named: set[str] = set()
    for claim in ROLE_CLAIMS:
        value = claims.get(claim)
        values: Iterable[Any] = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if isinstance(item, str):
                word = item.strip().lower().removeprefix("recoup-").removeprefix("recoup_")
                if word in ROLES:
                    named.add(word)
                elif word == "cfo":
                    named.add(VIEWER)
    for role in (ADMIN, ANALYST, COLLECTOR, VIEWER):
        if role in named:
            return role
    return None


def refusal(actor: Actor, permission: str) -> str:
    return (
        f"{actor.label} ({ROLE_LABELS.get(actor.role, actor.role)}) may not {PERMISSION_WORDS[permission]}; "
        f"ask an admin if you need to. Nothing was changed."
    )


def authorize(
    cur: duckdb.DuckDBPyConnection,
    actor: Actor | None,
    permission: str,
    *,
    customers: Iterable[str | None] | None = None,
) -> Actor:
    """The actor, with the role the store holds for them now, if it allows ``permission`` (and,
    for a collector, every one of ``customers`` is theirs); :class:`AccessDeniedError`
    otherwise. Call it inside the write's transaction, on its cursor.

    ``None`` is the local user (the command line). A signed-in person must be an active user
    of the store: the role they signed in with is not trusted, the store's is.
    """
    actor = actor or local_actor()
    if not actor.is_local:
        rows = cur.execute(
            "SELECT role, active, email, name, collector FROM users WHERE subject = ?", [actor.subject]
        ).fetchall()
        if not rows or not rows[0][1]:
            msg = f"{actor.label} is not an active user of this Recoup; ask an admin. Nothing was changed."
            raise AccessDeniedError(msg)
        role, _, email, name, collector = rows[0]
        actor = replace(actor, role=role, email=email or actor.email, name=name or actor.name, collector=collector)
    if not actor.can(permission):
        raise AccessDeniedError(refusal(actor, permission))
    scope = customer_scope(cur, actor) if customers is not None else None
    if scope is not None:
        outside = sorted({str(c) for c in customers or () if c is not None} - set(scope))
        if outside:
            msg = (
                f"Customer {outside[0]!r} is not assigned to {actor.label} ({len(outside)} customer(s) outside "
                "their assignments); nothing was changed."
            )
            raise AccessDeniedError(msg)
    return actor


def customer_scope(cur: duckdb.DuckDBPyConnection, actor: Actor | None) -> tuple[str, ...] | None:
    """The customers ``actor`` may work on: None for everyone but a collector, whose scope is the
    customers assigned to their collector name (an empty tuple when none are)."""
    if actor is None or actor.role != COLLECTOR:
        return None
    if not actor.collector:
        return ()
    rows = cur.execute(
        "SELECT DISTINCT customer_id FROM assignments WHERE collector = ? ORDER BY 1", [actor.collector]
    ).fetchall()
    return tuple(r[0] for r in rows)


def seed_assignments(cur: duckdb.DuckDBPyConnection) -> int:
    """Assign every customer that has no collector yet to its ``owner`` (run inside each
    customers load); return how many were assigned."""
    before = cur.execute("SELECT count(*) FROM assignments").fetchall()[0][0]
    cur.execute(
        """
        INSERT INTO assignments
        SELECT DISTINCT trim(c.owner), c.customer_id, now()::TIMESTAMP, 'customers.owner'
        FROM customers c
        WHERE nullif(trim(c.owner), '') IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.customer_id = c.customer_id)
        ON CONFLICT DO NOTHING
        """
    ).fetchall()
    return int(cur.execute("SELECT count(*) FROM assignments").fetchall()[0][0] - before)
