"""Team-use commands: ``audit [--verify]``, ``user list|add|set|assign|unassign`` and ``auth init``.

The command line acts as the operating-system user, an admin (``dashboard.access.local_actor``).
"""

from __future__ import annotations

import argparse
import json
import sys

from dashboard.cli import add_db_argument, parse_as_of
from dashboard.store import open_store


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    audit = subparsers.add_parser("audit", help="list the audit log, or --verify its hash chain")
    add_db_argument(audit)
    audit.add_argument("--verify", action="store_true", help="check the hash chain; exit 1 naming the first broken row")
    audit.add_argument("--action", default=None, help="only this action (load, undo_load, policy_save, ...)")
    audit.add_argument("--user", default=None, help="only rows by this person (part of their email or subject)")
    audit.add_argument("--since", default=None, metavar="YYYY-MM-DD")
    audit.add_argument("--until", default=None, metavar="YYYY-MM-DD")
    audit.add_argument("--limit", type=int, default=50)
    audit.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    audit.set_defaults(func=run_audit)

    user = subparsers.add_parser("user", help="users, roles and collector assignments (sign-in mode)")
    add_db_argument(user)
    verbs = user.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="every user and role")
    listing.add_argument("--json", action="store_true", dest="as_json")
    add = verbs.add_parser("add", help="add a person by email before their first sign-in")
    add.add_argument("email")
    add.add_argument("--role", required=True, choices=("viewer", "analyst", "collector", "admin"))
    add.add_argument("--name", default=None)
    add.add_argument("--collector", default=None, help="their name as the customers' owner column writes it")
    change = verbs.add_parser("set", help="change a user's role, activation or collector name")
    change.add_argument("who", help="email or subject")
    change.add_argument("--role", default=None, choices=("viewer", "analyst", "collector", "admin"))
    state = change.add_mutually_exclusive_group()
    state.add_argument("--active", dest="active", action="store_const", const=True, default=None)
    state.add_argument("--inactive", dest="active", action="store_const", const=False)
    change.add_argument("--collector", default=None)
    for verb, text in (("assign", "assign customers to a collector"), ("unassign", "take customers off a collector")):
        sub = verbs.add_parser(verb, help=text)
        sub.add_argument("collector")
        sub.add_argument("customer_ids", nargs="+", metavar="CUSTOMER_ID")
    user.set_defaults(func=run_user)

    auth = subparsers.add_parser("auth", help="sign-in settings (.streamlit/secrets.toml)")
    auth_verbs = auth.add_subparsers(dest="verb", required=True)
    init = auth_verbs.add_parser("init", help="write [auth] with a generated cookie secret")
    init.add_argument("--client-id", required=True)
    init.add_argument("--client-secret", required=True)
    init.add_argument("--metadata-url", required=True, help="the provider's .well-known/openid-configuration URL")
    init.add_argument("--redirect-uri", default=None, help="default http://localhost:8501/oauth2callback")
    init.add_argument("--secrets", default=None, help="the file to write (default $RECOUP_SECRETS, else .streamlit/secrets.toml)")
    init.add_argument("--overwrite", action="store_true", help="replace an existing [auth] (new cookie secret)")
    status = auth_verbs.add_parser("status", help="say whether sign-in is configured")
    status.add_argument("--secrets", default=None)
    auth.set_defaults(func=run_auth)


def run_audit(args: argparse.Namespace) -> int:
    from dashboard.audit import read_audit, verify

    with open_store(args.db) as store:
        if args.verify:
            result = verify(store)
            if args.as_json:
                print(json.dumps(result.to_dict(), indent=2))
            else:
                print(result.summary(), file=sys.stdout if result.ok else sys.stderr)
            return 0 if result.ok else 1
        rows = read_audit(store, action=args.action, who=args.user, since=parse_as_of(args.since, option="--since"),
                          until=parse_as_of(args.until, option="--until"), limit=args.limit)
    if args.as_json:
        print(json.dumps(json.loads(rows.write_json()) if rows.height else [], indent=2))
    else:
        for row in rows.iter_rows(named=True):
            print(f"#{row['seq']} {row['ts']:%Y-%m-%d %H:%M:%S} {row['email'] or row['subject']} ({row['role']}) "
                  f"{row['action']} {row['details']}")
        if not rows.height:
            print("no audit rows match")
    return 0


def run_user(args: argparse.Namespace) -> int:
    from dashboard import users

    with open_store(args.db) as store:
        if args.verb == "list":
            frame = users.list_users(store)
            if args.as_json:
                print(json.dumps(json.loads(frame.write_json()) if frame.height else [], indent=2, default=str))
            else:
                for row in frame.iter_rows(named=True):
                    print(f"{row['email'] or row['subject']}: {row['role']}{'' if row['active'] else ' (inactive)'}"
                          + (f", collector {row['collector']}" if row["collector"] else ""))
                if not frame.height:
                    print("no users yet (sign-in is off, or nobody has signed in)")
        elif args.verb == "add":
            user = users.add_user(store, args.email, args.role, name=args.name, collector=args.collector)
            print(f"added {user['email']} as {user['role']}")
        elif args.verb == "set":
            user = users.change_user(store, args.who, role=args.role, active=args.active, collector=args.collector)
            print(f"{user['email'] or user['subject']}: {user['role']}{'' if user['active'] else ' (inactive)'}")
        else:
            change = users.assign if args.verb == "assign" else users.unassign
            count = change(store, args.collector, args.customer_ids)
            print(f"{args.verb}ed {count} customer(s) {'to' if args.verb == 'assign' else 'from'} {args.collector}")
    return 0


def run_auth(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dashboard.auth_config import DEFAULT_REDIRECT_URI, SIGN_IN_OFF, read_auth, write_auth

    path = Path(args.secrets) if args.secrets else None
    if args.verb == "status":
        settings = read_auth(path)
        if settings.complete:
            print(f"sign-in is on ({settings.path})")
        elif settings.present:
            print(f"[auth] in {settings.path} is missing {', '.join(settings.missing)}")
            return 1
        else:
            print(f"{SIGN_IN_OFF} (no [auth] in {settings.path})")
        return 0
    written = write_auth(
        client_id=args.client_id, client_secret=args.client_secret, metadata_url=args.metadata_url,
        redirect_uri=args.redirect_uri or DEFAULT_REDIRECT_URI, path=path, overwrite=args.overwrite,
    )
    print(f"wrote [auth] to {written} (private to you; never commit it). Sign-in is on at the next start.")
    return 0
