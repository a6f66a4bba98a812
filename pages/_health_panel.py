"""Data-health view for the Data page: ``render(store, as_of)`` (called from pages/data.py).

Not a page of its own (the leading underscore keeps it out of navigation). It reads one
widget (which load to look at), asks :mod:`dashboard.health` for the report, and draws it.
"""

from __future__ import annotations

from datetime import date

import streamlit as st

from dashboard import display, ui
from dashboard.health import HealthReport, health_report, load_health
from dashboard.lineage import load_history
from dashboard.store import Store

_WHOLE_STORE = 0  # selectbox value for "the whole store"


@st.cache_data(show_spinner=False, max_entries=32)
def _report(_store: Store, version: str, as_of: date, load_id: int) -> HealthReport:
    # Keyed by the data version: every load changes it, so a new upload never shows a stale view.
    if load_id == _WHOLE_STORE:
        return health_report(_store, as_of)
    return load_health(_store, load_id)


def render(store: Store, as_of: date | None) -> None:
    """Draw the data-health view: banners, checks against thresholds, currency mix, payment history."""
    st.subheader("Data health")
    if as_of is None or not store.scalar("SELECT count(*) FROM loads"):
        ui.empty_state("Nothing loaded yet: data health is checked after the first load.")
        return
    loads = load_history(store, limit=200)
    names = dict(zip(loads["load_id"].to_list(), loads["file_name"].to_list(), strict=True))
    choice = st.selectbox(
        "Check",
        [_WHOLE_STORE, *names],
        format_func=lambda i: f"The whole store (as of {display.day(as_of)})" if i == _WHOLE_STORE else f"Load #{i}: {names[i]}",
        key="data_health_scope",
    )
    report = None
    with ui.user_errors():
        report = _report(store, store.data_version(), as_of, int(choice))
    if report is None:
        return
    if report.banners:
        for banner in report.banners:
            st.warning(ui.md(banner), icon=":material/warning:")
    else:
        st.success(f"No data problem over its threshold in {report.scope}.", icon=":material/check_circle:")

    history = report.payment_history
    cols = st.columns(4)
    cols[0].metric("Invoices", f"{history.get('invoices', 0):,}")
    cols[1].metric("Settled invoices", f"{history.get('settled', 0):,}")
    share = report.exact_payment_share
    cols[2].metric(
        "With a real payment date",
        "—" if share is None else f"{share:.0%}",
        help="The rest are known only to have been paid between two dated snapshots (interval-censored).",
    )
    cols[3].metric("Dated snapshots", f"{history.get('snapshots', 0):,}")

    checks = report.to_frame()
    ui.table(
        checks,
        columns=["status", "check", "affected", "of", "share", "threshold", "detail"],
        labels={"status": "Status", "check": "Check", "affected": "Affected", "of": "Out of", "share": "Share",
                "threshold": "Limit", "detail": "Detail"},
        kinds={"affected": "count", "of": "count", "share": "share", "threshold": "share"},
        width="stretch",
    )
    if report.currency_mix.height:
        st.caption("Currency mix")
        ui.table(
            report.currency_mix,
            labels={"documents": "Documents", "amount": "Amount (document currency)",
                    "without_base_amount": "Without a base-currency amount"},
            kinds={"documents": "count", "amount": "document_money", "without_base_amount": "count"},
        )
