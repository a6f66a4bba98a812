"""Users and collector assignments in the store: sign-in, roles, activation, assignments.

Every change is authorized against the store and audited in its own transaction
(:func:`dashboard.access.authorize`, :func:`dashboard.audit.record`). Main entries:
:func:`sign_in` (the app, after the provider's sign-in), :func:`add_user`, :func:`change_user`,
:func:`assign` and :func:`unassign` (the Admin page and ``python -m dashboard user``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl

from dashboard import audit
from dashboard.access import ADMIN, VIEWER, Actor, authorize, check_role, role_from_claims
from dashboard.errors import AccessError
from dashboard.store import Store, utcnow

USER_COLUMNS: tuple[str, ...] = ("subject", "email", "name", "role", "active", "collector", "last_sign_in")
#: The subject of a user an admin added by email, until they first sign in.
EMAIL_PREFIX = "email:"


def _user(cur: Any, subject: str) -> dict[str, Any] | None:
    rows = cur.execute(f"SELECT {', '.join(USER_COLUMNS)} FROM users WHERE subject = ?", [subject]).fetchall()
    return dict(zip(USER_COLUMNS, rows[0], strict=True)) if rows else None


def _shown(user: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if user is None else {k: user[k] for k in ("subject", "email", "name", "role", "active", "collector")}


def find_user(store: Store, who: str) -> dict[str, Any] | None:
    """A user by subject or email (case-insensitive), or None."""
    frame = store.query(
        f"SELECT {', '.join(USER_COLUMNS)} FROM users WHERE subject = ? OR lower(email) = lower(?) "
        "ORDER BY (subject = ?) DESC LIMIT 1",
        [who, who, who],
    )
    return frame.to_dicts()[0] if frame.height else None


def list_users(store: Store) -> pl.DataFrame:
    return store.query(f"SELECT {', '.join(USER_COLUMNS)} FROM users ORDER BY role, coalesce(email, subject)")


def actor_for(user: Mapping[str, Any]) -> Actor:
    return Actor(subject=user["subject"], role=user["role"], email=user.get("email"), name=user.get("name"),
                 collector=user.get("collector"))


def sign_in(
    store: Store, *, subject: str, email: str | None, name: str | None, claims: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The store's user for a person the provider just signed in, created on first sign-in.

    A new user's role comes from a role claim (see :func:`dashboard.access.role_from_claims`),
    else viewer; a user an admin added by email takes the provider's subject at first sign-in.
    A sign-in (a new ``iat`` in the claims, or the first sign-in) is audited. The user is
    returned as the store holds it (``active`` may be false: the app then shows nothing).
    """
    claims = dict(claims or {})
    issued = claims.get("iat")
    signed_at = datetime.fromtimestamp(int(issued), UTC).replace(tzinfo=None) if isinstance(issued, (int, float)) else None
    with store.transaction() as cur:
        user = _user(cur, subject)
        created = False
        if user is None and email:
            rows = cur.execute(
                "SELECT subject FROM users WHERE subject = ? OR (subject LIKE 'email:%' AND lower(email) = lower(?))",
                [EMAIL_PREFIX + email.lower(), email],
            ).fetchall()
            if rows:  # added by an admin before their first sign-in: adopt the provider's subject
                cur.execute("UPDATE users SET subject = ?, name = coalesce(name, ?), updated = ? WHERE subject = ?",
                            [subject, name, utcnow(), rows[0][0]]).fetchall()
                user = _user(cur, subject)
        if user is None:
            role = role_from_claims(claims) or VIEWER
            now = utcnow()
            cur.execute(
                "INSERT INTO users (subject, email, name, role, active, collector, created, updated) "
                "VALUES (?, ?, ?, ?, true, ?, ?, ?)",
                [subject, email, name, role, name if role == "collector" else None, now, now],
            ).fetchall()
            user = _user(cur, subject)
            created = True
            audit.record(cur, actor_for(user), "user_create",
                         {"subject": subject, "email": email, "role_from": "claim" if role_from_claims(claims) else "default"},
                         after=_shown(user))
        if created or signed_at is None or user["last_sign_in"] != signed_at:
            cur.execute("UPDATE users SET last_sign_in = ? WHERE subject = ?", [signed_at or utcnow(), subject]).fetchall()
            audit.record(cur, actor_for(user), "sign_in", {"subject": subject, "email": email, "active": user["active"]})
            user = _user(cur, subject)
    return user


def add_user(
    store: Store, email: str, role: str, *, name: str | None = None, collector: str | None = None,
    actor: Actor | None = None,
) -> dict[str, Any]:
    """Add a person by email before they first sign in (their provider subject is taken then)."""
    check_role(role)
    email = email.strip()
    if "@" not in email:
        msg = f"{email!r} is not an email address."
        raise AccessError(msg)
    with store.transaction() as cur:
        actor = authorize(cur, actor, "manage_users")
        taken = cur.execute("SELECT subject FROM users WHERE lower(email) = lower(?)", [email]).fetchall()
        if taken:
            msg = f"There is already a user with the email {email!r}; change that user instead."
            raise AccessError(msg)
        now = utcnow()
        subject = EMAIL_PREFIX + email.lower()
        cur.execute(
            "INSERT INTO users (subject, email, name, role, active, collector, created, updated) "
            "VALUES (?, ?, ?, ?, true, ?, ?, ?)",
            [subject, email, name, role, collector or (name if role == "collector" else None), now, now],
        ).fetchall()
        user = _user(cur, subject)
        audit.record(cur, actor, "user_create", {"subject": subject, "email": email}, after=_shown(user))
    return user


def change_user(
    store: Store, who: str, *, role: str | None = None, active: bool | None = None, collector: str | None = None,
    actor: Actor | None = None,
) -> dict[str, Any]:
    """Change a user's role, activation or collector name (``who``: subject or email). The last
    active admin cannot be demoted or deactivated (somebody must be able to manage users)."""
    if role is not None:
        check_role(role)
    with store.transaction() as cur:
        actor = authorize(cur, actor, "manage_users")
        rows = cur.execute(
            "SELECT subject FROM users WHERE subject = ? OR lower(email) = lower(?) ORDER BY (subject = ?) DESC LIMIT 1",
            [who, who, who],
        ).fetchall()
        if not rows:
            msg = f"There is no user {who!r}; see the users list for their emails."
            raise AccessError(msg)
        before = _user(cur, rows[0][0])
        after = dict(before)
        if role is not None:
            after["role"] = role
        if active is not None:
            after["active"] = active
        if collector is not None:
            after["collector"] = collector.strip() or None
        if _shown(after) == _shown(before):
            return before
        losing_admin = before["role"] == ADMIN and before["active"] and (after["role"] != ADMIN or not after["active"])
        if losing_admin:
            admins = cur.execute("SELECT count(*) FROM users WHERE role = 'admin' AND active").fetchall()[0][0]
            if admins <= 1:
                msg = f"{before['email'] or before['subject']} is the last active admin; make someone else admin first."
                raise AccessError(msg)
        cur.execute(
            "UPDATE users SET role = ?, active = ?, collector = ?, updated = ? WHERE subject = ?",
            [after["role"], after["active"], after["collector"], utcnow(), before["subject"]],
        ).fetchall()
        audit.record(cur, actor, "user_change", {"subject": before["subject"], "email": before["email"]},
                     before=_shown(before), after=_shown(after))
    return after


def list_assignments(store: Store, *, collector: str | None = None) -> pl.DataFrame:
    """Assignments with the customer's name and owner, by collector then customer."""
    where, params = ("WHERE a.collector = ?", [collector]) if collector else ("", [])
    return store.query(
        f"""
        SELECT a.collector, a.customer_id, c.name AS customer_name, c.owner, a.assigned, a.assigned_by
        FROM assignments a LEFT JOIN customers c USING (customer_id) {where}
        ORDER BY a.collector, a.customer_id
        """,
        params,
    )


def collectors(store: Store) -> list[str]:
    """Every collector name known: assignments, customer owners and collector users."""
    return store.query(
        """
        SELECT DISTINCT name FROM (
            SELECT collector AS name FROM assignments UNION SELECT trim(owner) FROM customers
            UNION SELECT collector FROM users) WHERE nullif(name, '') IS NOT NULL ORDER BY 1
        """
    )["name"].to_list()


def _change_assignments(
    store: Store, collector: str, customer_ids: Sequence[str], *, add: bool, actor: Actor | None
) -> int:
    collector = collector.strip()
    if not collector:
        msg = "Name the collector the customers are assigned to."
        raise AccessError(msg)
    ids = sorted({str(c) for c in customer_ids})
    if not ids:
        return 0
    with store.transaction() as cur:
        actor = authorize(cur, actor, "manage_users")
        frame = pl.DataFrame({"customer_id": ids}, schema={"customer_id": pl.String})
        cur.register("recoup_assign", frame)
        try:
            before = cur.execute("SELECT count(*) FROM assignments WHERE collector = ?", [collector]).fetchall()[0][0]
            if add:
                unknown = cur.execute(
                    "SELECT customer_id FROM recoup_assign WHERE customer_id NOT IN (SELECT customer_id FROM customers)"
                ).fetchall()
                if unknown:
                    msg = f"There is no customer {unknown[0][0]!r} in the store ({len(unknown)} unknown id(s))."
                    raise AccessError(msg)
                cur.execute(
                    "INSERT INTO assignments SELECT ?, customer_id, ?, ? FROM recoup_assign ON CONFLICT DO NOTHING",
                    [collector, utcnow(), actor.label],
                ).fetchall()
            else:
                cur.execute(
                    "DELETE FROM assignments WHERE collector = ? AND customer_id IN (SELECT customer_id FROM recoup_assign)",
                    [collector],
                ).fetchall()
            after = cur.execute("SELECT count(*) FROM assignments WHERE collector = ?", [collector]).fetchall()[0][0]
        finally:
            cur.unregister("recoup_assign")
        changed = abs(int(after) - int(before))
        if changed:
            audit.record(cur, actor, "assignment_change",
                         {"collector": collector, "change": "assign" if add else "unassign", "customers": ids},
                         before={"assigned": int(before)}, after={"assigned": int(after)})
    return changed


def assign(store: Store, collector: str, customer_ids: Sequence[str], *, actor: Actor | None = None) -> int:
    """Assign customers to a collector (their other collectors keep them too); return how many were new."""
    return _change_assignments(store, collector, customer_ids, add=True, actor=actor)


def unassign(store: Store, collector: str, customer_ids: Sequence[str], *, actor: Actor | None = None) -> int:
    """Take customers off a collector; return how many were removed."""
    return _change_assignments(store, collector, customer_ids, add=False, actor=actor)
