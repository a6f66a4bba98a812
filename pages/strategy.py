"""Strategy & simulation: the collections policy as data (edit, validate, save a version),
message templates with a live preview, and the strategy simulator (A vs B with measured vs assumed effects)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import ui
from dashboard.config import base_currency
from dashboard.errors import ConflictError, PolicyValidationError
from dashboard.messages import MERGE_FIELDS, available_templates, render_message, sample_context
from dashboard.policy import (
    RULE_COLUMNS,
    activate_policy_version,
    active_policy_version,
    default_policy,
    latest_policy_version,
    list_policy_versions,
    load_policy,
    normalize_rules,
    policy_changes,
    save_policy,
    validate_policy,
)
from dashboard.ui import signin
from dashboard.vocabulary import ACTIONS, CHANNELS, RISK_TIERS, SEGMENTS, TONES, label, readable
from pages._pilot_panel import render as render_pilot
from pages._simulator_panel import render as render_simulator

signin.require_page("strategy", "Strategy & simulation")  # first: with sign-in on, nobody gets past it unasked

PAGE = "strategy"
DRAFT = f"{PAGE}_draft"
BASE = f"{PAGE}_base_version"
NONCE = f"{PAGE}_editor_nonce"
NOTICE = f"{PAGE}_notice"
LATEST_AT_LOAD = f"{PAGE}_latest_at_load"
PENDING = f"{PAGE}_pending_version"
OPEN_VERSION = f"{PAGE}_open_version"
SAVED_RULES = f"{PAGE}_saved_rules"
CONFIRM_DISCARD = f"{PAGE}_confirm_discard"


def load_draft(version: int | None) -> None:
    """Put a saved version (or, before any save, the shipped default) into the editor."""
    st.session_state[DRAFT] = default_policy() if version is None else load_policy(ui.get_store(), version)
    st.session_state[SAVED_RULES] = st.session_state[DRAFT]  # what "unsaved changes" compares against
    st.session_state[BASE] = version
    # Saving checks against the newest version that existed when editing started: if someone
    # saves in between, the save is refused with a ConflictError instead of overwriting theirs.
    st.session_state[LATEST_AT_LOAD] = latest_policy_version(ui.get_store())
    st.session_state[NONCE] = st.session_state.get(NONCE, 0) + 1


def editor_frame(rules: pl.DataFrame):
    return rules.select(RULE_COLUMNS).to_pandas()


CHANGE_LABELS = {"rule_id": "Rule", "change": "Change", "setting": "Setting", "was": "Was", "now": "Now"}
VERSION_LABELS = {"policy_version": "Version", "created": "Saved", "author": "By", "comment": "What changed",
                  "active": "Active", "rules": "Rules"}


def _changes_for_people(changes: pl.DataFrame) -> pl.DataFrame:
    """Changed settings named as the editor names them, values in words."""
    headers = {"min_days_past_due": "From days past due", "max_days_past_due": "To days past due",
               "min_amount": "From amount", "max_amount": "To amount", "template_id": "Message template",
               "cadence_days": "Cadence (days)", "requires_review": "Needs a person", "rule_id": "Rule",
               "dispute_open": "Open dispute", "strategic": "Strategic customer", "risk_tier": "Risk tier"}
    return changes.with_columns(
        pl.col("setting").map_elements(lambda v: headers.get(v) or readable(v).capitalize(), return_dtype=pl.String),
        pl.col("was", "now").cast(pl.String).map_elements(label, return_dtype=pl.String),
    )


st.title("Strategy & simulation")
store = ui.get_store()
active = active_policy_version(store)
versions = list_policy_versions(store)
latest = int(versions["policy_version"].max()) if versions.height else None
if PENDING in st.session_state:  # set by save/discard: reload before the widgets exist
    pending = st.session_state.pop(PENDING)
    load_draft(pending)
    st.session_state[OPEN_VERSION] = pending
if DRAFT not in st.session_state:
    load_draft(latest)
    st.session_state[OPEN_VERSION] = latest

as_of = ui.as_of_control(PAGE, store=store)
currency = base_currency()

policy_tab, templates_tab, simulator_tab, pilot_tab = st.tabs(
    ["Collections policy", "Message templates", "Simulator", "Pilot"]
)

with policy_tab:
    st.markdown(
        "Each row is a rule: its conditions (empty = any) pick the invoices, the rule with the "
        "**smallest priority number** wins, and the action, channel, tone, template and cadence say "
        "what to do. Strategic customers and open disputes always go to a person. Every save is a "
        "new version; older versions stay available to explain past worklists."
    )
    if NOTICE in st.session_state:
        st.success(st.session_state.pop(NOTICE), icon=":material/check_circle:")
    base = st.session_state[BASE]
    left, right = st.columns([3, 2])
    if base is None:
        left.caption("Editing the shipped default policy: nothing is saved yet. Saving makes it version 1.")
    else:
        uses = "the shipped default" if active is None else f"version {active}"
        left.caption(f"Editing a copy of version {base}; the worklist uses {uses}. Latest saved: {latest}.")
    if versions.height:
        right.selectbox(
            "Open version",
            versions["policy_version"].to_list(),
            key=OPEN_VERSION,
            format_func=lambda v: f"v{v}" + (" (active)" if v == active else ""),
            on_change=lambda: load_draft(st.session_state[OPEN_VERSION]),
        )

    edited_frame = st.data_editor(
        editor_frame(st.session_state[DRAFT]),
        key=f"{PAGE}_rules_editor_{st.session_state[NONCE]}",
        num_rows="dynamic",
        width="stretch",
        hide_index=True,
        column_config={
            "rule_id": st.column_config.TextColumn("Rule", help="A short name; the worklist quotes it."),
            "active": st.column_config.CheckboxColumn("Active"),
            "priority": st.column_config.NumberColumn("Priority", help="The smallest number wins."),
            "segment": st.column_config.SelectboxColumn("Segment", options=list(SEGMENTS), format_func=label),
            "risk_tier": st.column_config.SelectboxColumn(
                "Risk tier", options=list(RISK_TIERS), format_func=label,
                help="From the chance the invoice is not paid within 30 days.",
            ),
            "min_days_past_due": st.column_config.NumberColumn("From days past due"),
            "max_days_past_due": st.column_config.NumberColumn("To days past due"),
            "min_amount": st.column_config.NumberColumn(f"From amount ({currency})", format="%,.2f"),
            "max_amount": st.column_config.NumberColumn(f"To amount ({currency})", format="%,.2f"),
            "dispute_open": st.column_config.CheckboxColumn("Open dispute"),
            "strategic": st.column_config.CheckboxColumn("Strategic customer"),
            "action": st.column_config.SelectboxColumn("Action", options=list(ACTIONS), required=True, format_func=label),
            "channel": st.column_config.SelectboxColumn("Channel", options=list(CHANNELS), format_func=label),
            "tone": st.column_config.SelectboxColumn("Tone", options=list(TONES), format_func=label),
            "template_id": st.column_config.SelectboxColumn(
                "Message template", options=available_templates(), format_func=readable
            ),
            "cadence_days": st.column_config.NumberColumn("Cadence (days)", help="Days before the next touch."),
            "requires_review": st.column_config.CheckboxColumn("Needs a person"),
            "note": st.column_config.TextColumn("Note"),
        },
    )
    edited = normalize_rules(pl.from_pandas(edited_frame))

    with st.expander("Quick edit one rule", expanded=False):
        rule_ids = [r for r in edited["rule_id"].to_list() if r]
        rule_id = st.selectbox("Rule", rule_ids, key=f"{PAGE}_quick_rule")
        current = edited.filter(pl.col("rule_id") == rule_id).to_dicts()[0] if rule_id else {}
        # Widgets are keyed by rule (and draft) so that choosing another rule shows its values.
        suffix = f"{rule_id}_{st.session_state[NONCE]}"
        with st.form(f"{PAGE}_quick_edit_{suffix}"):
            c1, c2, c3 = st.columns(3)
            action = c1.selectbox(
                "Action",
                ACTIONS,
                index=ACTIONS.index(current.get("action") or ACTIONS[0]),
                format_func=label,
                key=f"{PAGE}_quick_action_{suffix}",
            )
            tone = c2.selectbox(
                "Tone",
                TONES,
                index=TONES.index(current.get("tone") or "neutral"),
                format_func=label,
                key=f"{PAGE}_quick_tone_{suffix}",
            )
            cadence = c3.number_input(
                "Cadence (days)",
                min_value=0,
                step=1,
                value=int(current.get("cadence_days") or 0),
                key=f"{PAGE}_quick_cadence_{suffix}",
            )
            d1, d2, d3 = st.columns(3)
            min_days = d1.number_input(
                "Min days past due",
                step=1,
                value=current.get("min_days_past_due"),
                key=f"{PAGE}_quick_min_days_{suffix}",
            )
            max_days = d2.number_input(
                "Max days past due",
                step=1,
                value=current.get("max_days_past_due"),
                key=f"{PAGE}_quick_max_days_{suffix}",
            )
            priority = d3.number_input(
                "Priority", step=1, value=int(current.get("priority") or 1), key=f"{PAGE}_quick_priority_{suffix}"
            )
            if st.form_submit_button("Apply to the draft") and rule_id:
                is_rule = pl.col("rule_id") == rule_id
                st.session_state[DRAFT] = edited.with_columns(
                    action=pl.when(is_rule).then(pl.lit(action)).otherwise(pl.col("action")),
                    tone=pl.when(is_rule).then(pl.lit(tone)).otherwise(pl.col("tone")),
                    cadence_days=pl.when(is_rule).then(pl.lit(int(cadence))).otherwise(pl.col("cadence_days")),
                    min_days_past_due=pl.when(is_rule)
                    .then(pl.lit(min_days, pl.Int64))
                    .otherwise(pl.col("min_days_past_due")),
                    max_days_past_due=pl.when(is_rule)
                    .then(pl.lit(max_days, pl.Int64))
                    .otherwise(pl.col("max_days_past_due")),
                    priority=pl.when(is_rule).then(pl.lit(int(priority))).otherwise(pl.col("priority")),
                )
                st.session_state[NONCE] += 1
                st.rerun()

    faults = validate_policy(edited)
    if faults:
        st.warning(f"{len(faults)} problem(s) to fix before this policy can be saved:", icon=":material/rule:")
        ui.table(
            pl.DataFrame(
                {
                    "problem": [f.kind.replace("_", " ").capitalize() for f in faults],
                    "rules": [", ".join(f.rule_ids) for f in faults],
                    "details": [f.message for f in faults],
                }
            ),
            labels={"problem": "Problem", "rules": "Rules", "details": "Details"},
            width="stretch",
        )
    else:
        st.success("No overlaps, gaps, unreachable rules or unknown templates.", icon=":material/verified:")

    changes = policy_changes(st.session_state[SAVED_RULES], edited)
    if changes.height:
        opened = "the shipped default" if base is None else f"version {base}"
        st.info(f"{changes.height} unsaved change(s) to {opened}:", icon=":material/edit_note:")
        ui.table(_changes_for_people(changes), labels=CHANGE_LABELS, width="stretch")
    else:
        st.caption("No unsaved changes.")

    s1, s2 = st.columns(2)
    author = s1.text_input("Your name", key=f"{PAGE}_author")
    comment = s2.text_input("What changed", key=f"{PAGE}_comment")
    b1, b2, b3 = st.columns(3)
    unchanged = base is not None and changes.is_empty()  # saving would only repeat version `base`
    if b1.button(
        "Save as a new version",
        type="primary",
        disabled=bool(faults) or unchanged,
        key=f"{PAGE}_save",
        help="Nothing to save: the rules are those of the version you opened." if unchanged else None,
    ):
        try:
            version = save_policy(
                store,
                edited,
                based_on_version=st.session_state[LATEST_AT_LOAD],
                author=author or None,
                comment=comment or None,
                actor=ui.current_actor(),
            )
        except ConflictError as exc:
            st.error(ui.md(exc, keep_lines=True), icon=":material/sync_problem:")
        except PolicyValidationError as exc:
            st.error(ui.md(exc, keep_lines=True), icon=":material/error:")
        else:
            st.session_state[NOTICE] = f"Saved as version {version}; the worklist now uses it."
            st.session_state[PENDING] = version
            st.rerun()
    if b2.button("Discard changes", key=f"{PAGE}_discard", disabled=changes.is_empty()):
        st.session_state[CONFIRM_DISCARD] = True
    if st.session_state.get(CONFIRM_DISCARD) and changes.height:
        st.warning(
            f"Discard the {changes.height} unsaved change(s) listed above? They cannot be brought back.",
            icon=":material/warning:",
        )
        yes, no = st.columns(2)
        if yes.button("Yes, discard them", key=f"{PAGE}_discard_yes"):
            del st.session_state[CONFIRM_DISCARD]
            st.session_state[PENDING] = base
            st.rerun()
        if no.button("Keep editing", key=f"{PAGE}_discard_no"):
            del st.session_state[CONFIRM_DISCARD]
            st.rerun()
    else:
        st.session_state.pop(CONFIRM_DISCARD, None)
    if base is not None and base != active and b3.button(f"Make v{base} the active policy", key=f"{PAGE}_activate"):
        with ui.user_errors():
            activate_policy_version(store, base, actor=ui.current_actor())
            st.session_state[NOTICE] = f"Version {base} is now the active policy."
            st.rerun()

    with st.expander("Version history"):
        ui.table(versions, labels=VERSION_LABELS, kinds={"rules": "count"}, width="stretch")
        # read only on request: the expander's body runs on every rerun of the page, open or not
        if versions.height > 1 and st.toggle("Compare two versions", key=f"{PAGE}_compare"):
            numbers = versions["policy_version"].to_list()  # newest first
            c1, c2 = st.columns(2)
            older = c1.selectbox(
                "Compare version", numbers, index=1, key=f"{PAGE}_compare_old", format_func=lambda v: f"v{v}"
            )
            newer = c2.selectbox(
                "with version", numbers, index=0, key=f"{PAGE}_compare_new", format_func=lambda v: f"v{v}"
            )
            between = policy_changes(load_policy(store, older), load_policy(store, newer))
            if between.height:
                st.caption(f"From v{older} to v{newer}: {between.height} change(s).")
                ui.table(_changes_for_people(between), labels=CHANGE_LABELS, width="stretch")
            else:
                st.caption(f"v{older} and v{newer} have the same rules.")

with templates_tab:
    st.markdown("One template per action; each has a friendly, neutral and firm wording, in plain text and HTML.")
    t1, t2 = st.columns(2)
    template_id = t1.selectbox("Template", available_templates(), format_func=readable, key=f"{PAGE}_template")
    tone_choice = t2.selectbox("Tone", TONES, index=1, format_func=label, key=f"{PAGE}_template_tone")
    with ui.user_errors():
        message = render_message(template_id, tone=tone_choice, context=sample_context(), to="ap@example.com")
        st.markdown(f"**Subject:** {ui.md(message.subject)}")
        text_tab, html_tab = st.tabs(["Plain text", "HTML"])
        text_tab.code(message.text, language=None)
        html_tab.html(message.html)
    with st.expander("Merge fields"):
        st.caption("Write a field in a template as {{ field }}; the names below are what templates use.")
        ui.table(
            pl.DataFrame({"field": list(MERGE_FIELDS), "holds": list(MERGE_FIELDS.values())}),
            labels={"field": "Merge field", "holds": "Holds"},
            width="stretch",
        )

with simulator_tab:
    if as_of is None:
        ui.empty_state("No invoices in the store yet: the simulator needs a history to measure effects from.")
    else:
        render_simulator(store, as_of)

with pilot_tab:
    if as_of is None:
        ui.empty_state("No invoices in the store yet: a pilot needs customers and their history.")
    else:
        render_pilot(store, as_of)
