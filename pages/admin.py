"""Admin (sign-in mode): users and their roles, collector assignments, and the audit log."""

from __future__ import annotations

from datetime import date

import streamlit as st

from dashboard import access, audit, ui, users
from dashboard.ui import signin
from dashboard.vocabulary import AUDIT_ACTIONS

signin.require_page("admin", "Admin")  # first: with sign-in on, nobody gets past it unasked

PAGE = "admin"
NOTICE = f"{PAGE}_notice"

st.title("Admin")
store = ui.get_store()
actor = ui.current_actor()
if NOTICE in st.session_state:
    st.success(ui.md(st.session_state.pop(NOTICE)), icon=":material/check_circle:")

users_tab, assignments_tab, audit_tab = st.tabs(["Users", "Assignments", "Audit log"])

with users_tab:
    people = users.list_users(store)
    if people.is_empty():
        ui.empty_state("Nobody has signed in yet. Add people by email below, or they appear here at first sign-in.")
    else:
        ui.table(people, labels={"subject": "Provider id", "collector": "Collector name"}, width="stretch")
        with st.form(f"{PAGE}_change"):
            st.markdown("**Change a user**")
            names = people["subject"].to_list()
            shown = {row["subject"]: row["email"] or row["subject"] for row in people.to_dicts()}
            who = st.selectbox("User", names, format_func=shown.get, key=f"{PAGE}_who")
            current = people.filter(people["subject"] == who).to_dicts()[0] if who else {}
            role = st.selectbox("Role", access.ROLES, format_func=access.ROLE_LABELS.get, key=f"{PAGE}_role",
                                index=access.ROLES.index(current.get("role", access.VIEWER)))
            active = st.checkbox("Active (may sign in)", value=bool(current.get("active", True)), key=f"{PAGE}_active")
            collector = st.text_input("Collector name (as the customers' owner column writes it)",
                                      value=current.get("collector") or "", key=f"{PAGE}_collector")
            if st.form_submit_button("Save the change", type="primary"):
                with ui.user_errors():
                    changed = users.change_user(store, who, role=role, active=active, collector=collector, actor=actor)
                    st.session_state[NOTICE] = (
                        f"{changed['email'] or changed['subject']} is now {access.ROLE_LABELS[changed['role']]}"
                        + ("" if changed["active"] else " (inactive)") + "."
                    )
                    st.rerun()
    with st.form(f"{PAGE}_add", clear_on_submit=True):
        st.markdown("**Add a person** (before their first sign-in)")
        c1, c2, c3 = st.columns(3)
        email = c1.text_input("Email", key=f"{PAGE}_add_email")
        new_role = c2.selectbox("Role", access.ROLES, format_func=access.ROLE_LABELS.get, key=f"{PAGE}_add_role")
        name = c3.text_input("Name (a collector's: as the customers' owner column writes it)", key=f"{PAGE}_add_name")
        if st.form_submit_button("Add"):
            with ui.user_errors():
                added = users.add_user(store, email, new_role, name=name or None, actor=actor)
                st.session_state[NOTICE] = f"Added {added['email']} as {access.ROLE_LABELS[added['role']]}."
                st.rerun()

with assignments_tab:
    names = users.collectors(store)
    if not names:
        ui.empty_state("No collector yet: the customers' owner column is empty and no user is a collector.")
    else:
        collector = st.selectbox("Collector", names, key=f"{PAGE}_assign_collector")
        assigned = users.list_assignments(store, collector=collector)
        st.caption(f"{assigned.height:,} customer(s) assigned to {ui.md(collector)}. A collector's worklist holds "
                   "only their customers.")
        ui.table(assigned, columns=["customer_id", "customer_name", "owner", "assigned", "assigned_by"], width="stretch")
        customers = store.query("SELECT customer_id, name FROM customers ORDER BY name")
        labels = dict(customers.iter_rows())
        with st.form(f"{PAGE}_assign"):
            chosen = st.multiselect("Customers", list(labels), format_func=lambda c: f"{labels[c]} ({c})",
                                    key=f"{PAGE}_assign_customers")
            add, remove = st.columns(2)
            do_add = add.form_submit_button("Assign to this collector", type="primary")
            do_remove = remove.form_submit_button("Take off this collector")
            if (do_add or do_remove) and chosen:
                with ui.user_errors():
                    change = users.assign if do_add else users.unassign
                    count = change(store, collector, chosen, actor=actor)
                    st.session_state[NOTICE] = f"{count} customer(s) {'assigned to' if do_add else 'taken off'} {collector}."
                    st.rerun()

with audit_tab:
    st.caption("Every change, who made it, as which role and when (UTC), written with the change itself. "
               "Each row is chained to the one before by a hash, so an edit of a past row shows.")
    f1, f2, f3, f4 = st.columns(4)
    action = f1.selectbox("Action", ["", *AUDIT_ACTIONS], format_func=lambda a: AUDIT_ACTIONS.get(a, "every action"),
                          key=f"{PAGE}_audit_action")
    who = f2.text_input("Person (part of the email)", key=f"{PAGE}_audit_who")
    since = f3.date_input("From", value=None, key=f"{PAGE}_audit_since")
    until = f4.date_input("To", value=None, key=f"{PAGE}_audit_until")
    rows = audit.read_audit(store, action=action or None, who=who or None,
                            since=since if isinstance(since, date) else None,
                            until=until if isinstance(until, date) else None, limit=1000)
    if rows.is_empty():
        ui.empty_state("No audit rows match.")
    else:
        ui.table(rows, kinds={"ts": "datetime", "seq": "count"}, width="stretch")
    if st.button("Verify the chain", key=f"{PAGE}_verify"):
        check = audit.verify(store)
        (st.success if check.ok else st.error)(ui.md(check.summary()))
