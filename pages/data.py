"""Data page: upload extracts, confirm the column mapping, load, and see what was loaded or set aside."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import display, ui
from dashboard.config import MAX_UPLOAD_BYTES
from dashboard.dates import latest_data_date
from dashboard.ingest import load_file, preview_file, target_columns
from dashboard.ingest.journal import dismiss_interrupted_load, interrupted_load
from dashboard.ingest.undo import plan_undo, undo_load, undoable_loads
from dashboard.lineage import load_history, preview_messages, rejected_rows, store_summary
from dashboard.schema import CANONICAL_COLUMNS
from dashboard.ui import signin
from dashboard.vocabulary import TABLE_LABELS, readable
from pages import _health_panel, _model_panel

signin.require_page("data", "Data")  # first: with sign-in on, nobody gets past it unasked

LOAD_LABELS = {
    "load_id": "Load", "source_format": "Format", "target_table": "Into", "as_of_date": "Balances as of",
    "rows_read": "Rows read", "rows_loaded": "Loaded", "rows_rejected": "Set aside", "status": "Status",
    "message": "Message", "who": "By", "started": "Started", "finished": "Finished",
}
LOAD_KINDS = {"rows_read": "count", "rows_loaded": "count", "rows_rejected": "count", "load_id": "count"}

st.title("Data")
store = ui.get_store()
if "data_undone" in st.session_state:
    st.success(st.session_state.pop("data_undone"), icon=":material/undo:")

stopped = interrupted_load(store)
if stopped is not None:
    (st.info if stopped.kept else st.warning)(stopped.message, icon=":material/history:")
    if st.button("Understood, hide this notice", key="data_dismiss_interrupted"):
        dismiss_interrupted_load(store)
        st.rerun()

# -- what the store holds (drawn at the end of the run, so a load made below is counted) ------
holds = st.container()

# -- upload ----------------------------------------------------------------------------------
st.subheader("Load an extract")
st.caption(
    "CSV, Excel (.xlsx) or Parquet: invoices, payments, customers, disputes, contact history, "
    "notes or FX rates. Each file loads whole or not at all; rows that need fixing are kept "
    f"aside with the reason. Files up to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
)
uploads = st.file_uploader(
    "Extract files", type=["csv", "txt", "xlsx", "parquet", "json"], accept_multiple_files=True, key="data_uploads"
)

for upload in uploads or []:
    data = upload.getvalue()
    with st.container(border=True):
        st.markdown(f"**{ui.md(upload.name)}** · {len(data) / 1024:,.1f} KB")
        preview = None
        with ui.user_errors():
            preview = preview_file(data, file_name=upload.name, store=store, max_bytes=MAX_UPLOAD_BYTES)
        if preview is None:
            continue
        if preview.already_loaded:
            st.info(f"{upload.name} was already loaded; loading it again changes nothing.", icon=":material/info:")
        tables = list(CANONICAL_COLUMNS)
        table = st.selectbox(
            "This file holds",
            tables,
            index=tables.index(preview.table) if preview.table in tables else 0,
            format_func=lambda t: TABLE_LABELS.get(t, readable(t)),
            key=f"data_table_{preview.sha256}",
            help=f"Detected {TABLE_LABELS.get(preview.table, preview.table).lower()} from its headers.",
        )
        if table != preview.table:
            with ui.user_errors():
                preview = preview_file(data, file_name=upload.name, store=store, table=table, max_bytes=MAX_UPLOAD_BYTES)
        report = getattr(preview, "report", None)
        st.caption(f"{preview.rows:,} rows · detected format: {ui.md(getattr(report, 'label', '') or preview.source_format)}")
        messages = preview_messages(preview)
        for confirmation in messages.confirmations:
            st.success(ui.md(confirmation), icon=":material/check_circle:")
        for note in messages.notes:
            st.info(ui.md(note), icon=":material/info:")
        for warning in messages.warnings:
            st.warning(ui.md(warning), icon=":material/warning:")  # warnings quote the file's values
        as_of_date = None
        if preview.needs_as_of_date:
            as_of_date = st.date_input(
                "This file says what is open or paid but not on which date. As of:",
                value=None,
                key=f"data_as_of_{preview.sha256}",
            )
        accept_drift = False
        if preview.drift is not None:
            accept_drift = st.checkbox(
                "The columns differ from the last file of this kind (see above). Load it anyway.",
                key=f"data_drift_{preview.sha256}",
            )
        mapping_frame = pl.DataFrame(
            {
                "file column": [m.source for m in preview.matches],
                "Recoup column": [m.target or "" for m in preview.matches],
                "how matched": [readable(m.method) for m in preview.matches],
                "confidence": [round(m.score) for m in preview.matches],
            }
        )
        targets = ["", *target_columns(table)]
        edited = st.data_editor(
            mapping_frame.to_pandas(),
            key=f"data_mapping_{preview.sha256}_{table}",
            disabled=["file column", "how matched", "confidence"],
            column_config={
                "file column": st.column_config.TextColumn("File column"),
                "Recoup column": st.column_config.SelectboxColumn(
                    "Recoup column", options=targets, format_func=lambda c: readable(c) if c else "(ignore)"
                ),
                "how matched": st.column_config.TextColumn("How matched"),
                "confidence": st.column_config.NumberColumn("Confidence (%)"),
            },
            hide_index=True,
            width="stretch",
        )
        # A cleared cell means "ignore this column" ("" keeps the automatic match from putting it back).
        mapping = {
            str(src): str(dst or "") for src, dst in zip(edited["file column"], edited["Recoup column"], strict=True)
        }
        if preview.missing_required:
            st.warning("Required columns not found: " + ", ".join(readable(c) for c in preview.missing_required),
                       icon=":material/warning:")
        confirmed = True
        if preview.needs_confirmation:
            confirmed = st.checkbox(
                "Some columns were matched by similarity only. I checked the mapping above.",
                key=f"data_confirm_{preview.sha256}",
            )
        with st.expander("First rows as read"):
            st.dataframe(preview.sample, hide_index=True)
        if st.button("Load into store", key=f"data_load_{preview.sha256}", disabled=not confirmed, type="primary"):
            bar = st.progress(0.0, text="Starting...")
            with ui.user_errors():
                result = load_file(
                    store,
                    data,
                    file_name=upload.name,
                    table=table,
                    mapping=mapping,
                    accept_fuzzy=confirmed,
                    as_of_date=as_of_date,
                    accept_drift=accept_drift,
                    max_bytes=MAX_UPLOAD_BYTES,
                    progress=lambda fraction, step, bar=bar: bar.progress(min(max(fraction, 0.0), 1.0), text=step),
                    actor=ui.current_actor(),
                )
                bar.progress(1.0, text="Done")
                if result.status == "loaded":
                    st.session_state["data_check_model"] = True  # a new load: check the risk model against it
                (st.success if result.rows_rejected == 0 else st.warning)(ui.md(result.message))
                for warning in result.warnings:
                    st.caption(f"Note: {ui.md(warning)}")
                if result.rows_rejected:
                    ui.table(result.rejected)

# -- health ----------------------------------------------------------------------------------
latest = latest_data_date(store)  # after any load above
_health_panel.render(store, latest)

# -- the risk model against the data as loaded ---------------------------------------------
if latest is not None and store.scalar("SELECT count(*) FROM invoices"):
    st.subheader("Risk model against this data")
    # checked by itself after a load in this session (seconds at a million invoices), else on request
    if st.session_state.get("data_check_model") or st.button(
        "Check the risk model against this data", key="data_check_model_button"
    ):
        st.session_state["data_check_model"] = True
        _model_panel.render(store, latest, key="data", show_details=False)

# -- history ---------------------------------------------------------------------------------
st.subheader("Load history")
history = load_history(store, limit=200)
if history.is_empty():
    ui.empty_state("Nothing loaded yet.")
else:
    ui.table(
        history.drop("sha256").with_columns(
            pl.col("target_table").map_elements(lambda t: TABLE_LABELS.get(t, readable(t)), return_dtype=pl.String)
        ),
        labels=LOAD_LABELS,
        kinds=LOAD_KINDS,
    )
    with_rejects = history.filter(pl.col("rows_rejected") > 0)
    if not with_rejects.is_empty():
        choice = st.selectbox(
            "Rows set aside by load",
            with_rejects["load_id"].to_list(),
            format_func=lambda i: f"#{i} {with_rejects.filter(pl.col('load_id') == i)['file_name'][0]}",
            key="data_rejects_load",
        )
        ui.table(rejected_rows(store, int(choice)), labels={"row_number": "Row", "reason": "Why", "raw": "As read"},
                 kinds={"row_number": "count"})

    # -- undo a load (asks first) ----------------------------------------------------------
    undoable = undoable_loads(store)
    if not undoable.is_empty():
        with st.expander("Undo a load"):
            labels = {
                r["load_id"]: f"#{r['load_id']} {r['file_name']} ({r['rows_loaded']:,} "
                f"{TABLE_LABELS.get(r['target_table'], r['target_table']).lower()})"
                for r in undoable.iter_rows(named=True)
            }
            chosen = st.selectbox(
                "Load to take back",
                list(labels),
                format_func=labels.get,
                index=None,
                placeholder="Choose a load",
                key="data_undo_load",
            )
            if chosen is not None:
                plan = plan_undo(store, int(chosen))
                if not plan.possible:
                    st.warning(plan.summary(), icon=":material/block:")
                else:
                    st.info(plan.summary(), icon=":material/undo:")
                    sure = st.checkbox(
                        f"Remove these {plan.total_rows:,} rows from the store. The load stays in the history as undone.",
                        key=f"data_undo_sure_{chosen}",
                    )
                    if st.button(f"Undo load #{chosen}", type="primary", disabled=not sure, key="data_undo_button"):
                        with ui.user_errors():
                            done = undo_load(store, int(chosen), actor=ui.current_actor())
                            st.session_state["data_undone"] = (
                                f"Load #{done.load_id} ({done.file_name}) was undone: "
                                f"{done.total_rows:,} rows taken back."
                            )
                            st.rerun()


with holds:
    summary = store_summary(store)
    cards = st.container(horizontal=True)
    cards.metric("Invoices", f"{summary.invoices:,}", width="stretch")
    cards.metric("Credit notes and other documents", f"{summary.other_documents:,}", width="stretch")
    cards.metric("Payments", f"{summary.payments:,}", width="stretch")
    cards.metric("Customers", f"{summary.customers:,}", width="stretch")
    cards.metric("Loads", f"{summary.loads:,}", width="stretch")
    cards.metric("Data as of", display.day(latest), width="stretch")
    st.caption(summary.documents_note())
