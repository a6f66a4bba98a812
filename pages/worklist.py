"""Worklist (collections team): today's prioritized queue under capacity, the reasons and the
message for each line, a per-collector view, exports (recorded) and outcomes coming back."""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from dashboard import display, scoring, ui
from dashboard.config import base_currency
from dashboard.errors import ModelError
from dashboard.export_history import build_export_files, export_history, save_export
from dashboard.exports import FORMATS, outcomes_template_csv, read_outcomes_csv
from dashboard.filters import Filters
from dashboard.messages import message_for_line, to_eml
from dashboard.pilot import holdout_file_name
from dashboard.ui import signin
from dashboard.vocabulary import OUTCOMES, label
from dashboard.worklist import build_worklist, line_risk_reasons, record_outcomes, recorded_actions

signin.require_page("worklist", "Worklist")  # first: with sign-in on, nobody gets past it unasked

PAGE = "worklist"
EXPORT = f"{PAGE}_export"
MIME = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
QUEUE_LABELS = {"max_days_past_due": "Days past due (oldest)"}
HOLDOUT_PREFIX = holdout_file_name(date(2000, 1, 1)).split("2000")[0]
HOLDOUT_SHOWN = [
    "collector", "customer_name", "invoice_count", "open_amount", "max_days_past_due", "usual_touch_today",
    "usual_action", "usual_channel", "usual_tone",
]
QUEUE_HELP = {
    "queue_position": "The line's place in its collector's queue today: each collector starts at 1.",
    "p_paid_horizon": "A probability indicator, not a verdict: see the reasons.",
    "response_rate": "Measured from the contact history for this action and segment.",
}
QUEUE_COLUMNS = [
    "collector",
    "queue_position",
    "customer_name",
    "action",
    "channel",
    "tone",
    "invoice_count",
    "open_amount",
    "max_days_past_due",
    "p_paid_horizon",
    "response_rate",
    "expected_cash_accelerated",
    "priority",
    "requires_review",
    "reasons",
]


@st.cache_resource(show_spinner="Choosing the scorer...", max_entries=8)
def _scorer(version: str, stamp: str, as_of: date) -> scoring.Scorer:
    """The scorer in use: the active model, the baseline its card chose, or the baseline fitted
    from the store when no model can be used (cached: the baseline is fitted from the store)."""
    model, problem = None, None
    try:
        model = ui.active_model()
    except ModelError as exc:
        problem = str(exc)
    return scoring.scorer_for(model, store=ui.get_store(), as_of=as_of, problem=problem)


def active_scorer(as_of: date) -> scoring.Scorer:
    return _scorer(ui.data_version(), ui.model_stamp(), as_of)


@ui.cached
def load_worklist(version: str, model_stamp: str, as_of: date, filters: Filters, capacity: int | None, use_model: bool):
    scorer = active_scorer(as_of) if use_model else None
    return build_worklist(
        ui.get_store(), as_of, filters=filters, capacity_per_collector=capacity, use_model=use_model, scorer=scorer
    )


@ui.cached
def load_line_reasons(version: str, model_stamp: str, as_of: date, line_id: str, _line: dict):
    return line_risk_reasons(ui.get_store(), as_of, _line, scorer=active_scorer(as_of))


st.title("Worklist")
store = ui.get_store()
if ui.no_data_guard(store):
    st.stop()
as_of = ui.as_of_control(PAGE, store=store)
ui.health_banners(as_of)
filters = ui.filters_control(PAGE, store=store)  # a collector's: their assigned customers only
actor = ui.current_actor()
capacity = st.sidebar.number_input(
    "Contacts per collector per day",
    min_value=1,
    value=25,
    step=1,
    key=f"{PAGE}_capacity",
    help="What does not fit today is scheduled on the next business days, not dropped.",
)
use_model = st.sidebar.toggle(
    "Use risk scores",
    value=True,
    key=f"{PAGE}_use_model",
    help="The risk model when it beat the customer-history baseline on its held-out months, else that "
    "baseline. Off: priority from a plain rule by days past due.",
)

result = None
with ui.user_errors():
    result = load_worklist(ui.data_version(), ui.model_stamp(), as_of, filters, int(capacity), use_model)
if result is None:
    st.stop()

summary = result.summary()
currency = base_currency()
cards = st.container(horizontal=True)
cards.metric("Lines today", f"{summary['lines_today']:,}", border=True, width="stretch",
             help="One line per customer, grouping its actionable invoices.")
cards.metric("Scheduled later", f"{summary['lines_later']:,}", border=True, width="stretch",
             help="Lines that did not fit today's capacity, on the next business days.")
cards.metric("Held", f"{summary['held']:,}", border=True, width="stretch",
             help="Promises to pay not yet due, or touched more recently than the cadence allows.")
cards.metric(f"Cash brought forward today ({currency})",
             display.money(summary["expected_cash_accelerated_today"], unit=False), border=True, width="stretch",
             help="Expected cash today's touches bring forward: open amount × P(payment still to come) × response rate.")
st.caption(
    f"{result.policy_label().capitalize()}. Priority = expected cash brought forward per minute of effort; "
    f"{result.probability_source}. Amounts in {currency}."
)
for note in result.notes:
    if note != result.probability_source:  # e.g. the active model could not be used, and why
        st.warning(ui.md(note), icon=":material/warning:")
if result.scorer == "model":
    st.info(f"Risk scores from the risk model {result.model_id or result.scorer_id}. {ui.md(result.scorer_reason)}",
            icon=":material/model_training:")
elif result.scorer == "baseline":
    st.warning(f"Risk scores from the customer-history baseline. {ui.md(result.scorer_reason)}",
               icon=":material/balance:")
else:
    st.caption("Risk scores are switched off: P(paid within 30 days) comes from a rule by days past due.")
ui.probability_note()
if result.pilot_note:
    st.info(ui.md(result.pilot_note), icon=":material/science:")

today = result.today()
queue_tab, collector_tab, held_tab, holdout_tab, rates_tab, outcomes_tab = st.tabs(
    ["Today's queue", "Per collector", "Held", "Pilot holdout", "Response rates", "Outcomes"]
)

with queue_tab:
    if today.is_empty():
        ui.empty_state(f"Nothing to do as of {display.day(as_of)}: no customer is due a touch under the active policy.")
    else:
        actions = sorted(today["action"].unique().to_list())
        chosen_actions = st.multiselect("Actions", actions, format_func=label, key=f"{PAGE}_actions")
        review_only = st.checkbox("Only lines that need a person", key=f"{PAGE}_review_only")
        shown = today
        if chosen_actions:
            shown = shown.filter(pl.col("action").is_in(chosen_actions))
        if review_only:
            shown = shown.filter(pl.col("requires_review"))
        ui.table(shown, columns=QUEUE_COLUMNS, labels=QUEUE_LABELS, helps=QUEUE_HELP, width="stretch")
        if shown.height:
            labels = {
                row["line_id"]: f"{row['collector']} #{row['queue_position']}: {row['customer_name']} — "
                f"{label(row['action'])}"
                for row in shown.select("line_id", "collector", "queue_position", "customer_name", "action").to_dicts()
            }
            line_id = st.selectbox("Line", list(labels), format_func=labels.get, key=f"{PAGE}_line")
            line = shown.filter(pl.col("line_id") == line_id).to_dicts()[0]
            st.markdown(f"**Why:** {ui.md(line['reasons'])}")
            ui.table(pl.DataFrame(line["invoices"]), labels={"open_amount": "Open amount (invoice currency)"},
                     kinds={"open_amount": "document_money"}, width="stretch")
            if result.scorer in ("model", "baseline"):
                with ui.user_errors("this line's risk reasons"):  # the scorer's reasons, for this line only
                    risk = load_line_reasons(ui.data_version(), ui.model_stamp(), as_of, line_id, line)
                    if risk.height:
                        who = "risk model" if result.scorer == "model" else "customer-history baseline"
                        st.markdown(f"**Risk, by the {who}:**")
                        ui.table(risk, width="stretch")
            with ui.user_errors("this line's message"):
                message = message_for_line(line)
                for note in message.notes:
                    st.warning(ui.md(note), icon=":material/mail:")
                st.markdown(
                    f"**{'Draft for review' if line['requires_review'] else 'Message'}:** {ui.md(message.subject)}"
                )
                text_tab, html_tab = st.tabs(["Plain text", "HTML"])
                text_tab.code(message.text, language=None)
                html_tab.html(message.html)
                st.download_button(
                    "Download this message (.eml)",
                    to_eml(message),
                    file_name=f"{line_id}.eml",
                    mime="message/rfc822",
                    key=f"{PAGE}_eml_one",
                )

    st.subheader("Export today's lines")
    st.caption(
        "Exporting writes the files first, then records the lines as done for today: building the worklist again "
        "today will not recommend the same touches twice. The day's exports stay below, to download again."
    )
    e1, e2, e3 = st.columns([1, 1, 1])
    export_format = e1.radio("Format", FORMATS, horizontal=True, key=f"{PAGE}_format", format_func=str.upper)
    if actor.is_local:
        author = e2.text_input("Exported by", key=f"{PAGE}_author", placeholder="your name")
    else:  # signed in: the export is theirs
        author = actor.label
        e2.caption(f"Exported by {ui.md(author)}")
    include_holdout = True
    if result.holdout.height:
        include_holdout = e1.checkbox(
            "Export the pilot's holdout customers in a separate, marked file",
            value=True,
            key=f"{PAGE}_include_holdout",
            help="They keep the usual cadence: never worklist lines, never recorded as work.",
        )
    if e3.button("Record and prepare the export", type="primary", key=f"{PAGE}_prepare", disabled=today.is_empty()):
        with ui.user_errors("the export"):
            prepared = build_export_files(store, result, lines=today, include_holdout=include_holdout)
            record = save_export(store, result, prepared, export_format=export_format, author=author, actor=actor,
                                 filters=filters.to_dict())
            st.session_state[EXPORT] = {"as_of": as_of, "lines": record.lines, "notes": prepared.notes}
            st.rerun()
    done = st.session_state.get(EXPORT)
    if done and done["as_of"] == as_of:
        st.success(f"{done['lines']} line(s) recorded for {display.day(as_of)}.", icon=":material/task_alt:")
        for note in done["notes"]:
            st.warning(ui.md(note), icon=":material/mail:")
    history = export_history(store, as_of)
    if filters.customer_ids is not None:  # a collector downloads their own exports again, not others'
        history = [record for record in history if record.author == actor.label]
    if history:
        st.markdown(f"**Exports of {display.day(as_of)}** (newest first)")
    for index, record in enumerate(history[:10]):
        st.caption(ui.md(record.label()))
        columns = st.columns(max(len(record.files), 1))
        for column, name in zip(columns, record.files, strict=False):
            suffix = name.rsplit(".", 1)[-1]
            if index == 0:  # the newest export's buttons keep the plain names
                if name.startswith(HOLDOUT_PREFIX):
                    button_label = "Download the pilot's holdout (CSV)"
                elif suffix in FORMATS:
                    button_label = f"Download worklist ({suffix.upper()})"
                else:
                    button_label = "Download the email drafts (.eml, zip)"
            else:
                button_label = f"{name} ({record.created:%H:%M:%S})"
            column.download_button(
                button_label,
                record.read(name),
                file_name=name,
                mime=MIME.get(suffix, "application/zip"),
                key=f"{PAGE}_download_{record.export_id}_{name}",
                type="primary" if index == 0 and suffix == record.export_format else "secondary",
            )

with collector_tab:
    per_collector = result.collectors()
    if per_collector.is_empty():
        ui.empty_state("No collector has work under the active policy.")
    else:
        ui.table(per_collector, width="stretch")
        collector = st.selectbox("Collector", per_collector["collector"].to_list(), key=f"{PAGE}_collector")
        ui.table(
            result.for_collector(collector),
            columns=["scheduled_date", *QUEUE_COLUMNS],
            labels=QUEUE_LABELS,
            helps=QUEUE_HELP,
            width="stretch",
        )

with held_tab:
    if result.held.is_empty():
        ui.empty_state("No customer is held: no promise to pay is pending and no cadence is running.")
    else:
        ui.table(result.held, width="stretch")

with holdout_tab:
    if result.holdout.is_empty():
        ui.empty_state("No pilot holdout today: no pilot is running, or none of its holdout customers has open invoices.")
    else:
        st.caption(
            "These customers are the pilot's holdout: they keep the usual cadence your contact history shows, not "
            "the worklist's priority and actions. They are never worklist lines and never count as work left undone."
        )
        ui.table(result.holdout, columns=HOLDOUT_SHOWN, width="stretch")

with rates_tab:
    st.caption(
        "Share of past touches answered by a promise to pay or a payment, by action and segment. "
        "Rates from few contacts lean on the assumed rate, and say so."
    )
    ui.table(
        result.response_rates,
        columns=["action", "segment", "contacts", "responded", "measured_rate", "assumed_rate", "rate", "note"],
        labels={"segment": "Segment (— = all)"},
        width="stretch",
    )

with outcomes_tab:
    recorded = recorded_actions(store, as_of=as_of)
    if filters.customer_ids is not None:
        recorded = recorded.filter(pl.col("customer_id").is_in(list(filters.customer_ids)))
    if recorded.is_empty():
        ui.empty_state(f"No exported lines for {display.day(as_of)} yet.")
    else:
        ui.table(
            recorded,
            columns=["action_id", "customer_id", "action", "collector", "status", "outcome", "override_reason"],
            width="stretch",
        )
        with st.form(f"{PAGE}_outcome_form"):
            action_id = st.selectbox("Line", recorded["action_id"].to_list(), key=f"{PAGE}_outcome_line")
            outcome = st.selectbox("Outcome", OUTCOMES, format_func=label, key=f"{PAGE}_outcome")
            reason = st.text_input("Reason (required when overridden)", key=f"{PAGE}_outcome_reason")
            promise_date = st.date_input("Promised date (for a promise)", value=None, key=f"{PAGE}_promise_date")
            if st.form_submit_button("Record outcome"):
                with ui.user_errors():
                    record_outcomes(
                        store,
                        pl.DataFrame(
                            {
                                "action_id": [action_id],
                                "outcome": [outcome],
                                "reason": [reason or None],
                                "promise_date": [promise_date],
                            },
                            schema={
                                "action_id": pl.String,
                                "outcome": pl.String,
                                "reason": pl.String,
                                "promise_date": pl.Date,
                            },
                        ),
                        actor=actor,
                    )
                    st.success(ui.md(f"Recorded '{label(outcome)}' for {action_id}."))
    upload = st.file_uploader(
        "Import outcomes from a CSV file (download the template below: it has the columns the file needs)",
        type=["csv"],
        help="Columns (the file keeps Recoup's column names): action_id or line_id, outcome, reason, promise_date.",
        key=f"{PAGE}_outcomes_file",
    )
    if upload is not None and st.button("Import outcomes", key=f"{PAGE}_import"):
        with ui.user_errors():
            count = record_outcomes(store, read_outcomes_csv(upload.getvalue()), actor=actor)
            st.success(f"{count} outcome(s) recorded.")
    if not recorded.is_empty():
        st.download_button(
            "Download an outcomes template for these lines (CSV)",
            outcomes_template_csv(recorded),
            file_name=f"outcomes-{as_of:%Y-%m-%d}.csv",
            mime="text/csv",
            key=f"{PAGE}_outcome_template",
        )
