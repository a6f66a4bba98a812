"""Recoup: the Streamlit entry point. `streamlit run app.py`.

Navigation uses st.navigation + st.Page (sections per persona) over the files in pages/;
see README "Why st.navigation". With sign-in configured (README "Sign-in"), a signed-out
visitor sees only the sign-in page and the pages are those the person's role opens
(dashboard.ui.signin); without it, every page is there for the local user.
"""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.ui import signin

st.set_page_config(page_title="Recoup — AR collections", page_icon=":material/payments:", layout="wide")

SECTIONS: dict[str, list[signin.PageSpec]] = {
    "Cash (CFO)": [("pages/overview.py", "Overview", ":material/monitoring:")],
    "Strategy (analyst)": [
        ("pages/segments.py", "Segments", ":material/groups:"),
        ("pages/risk.py", "Risk model", ":material/insights:"),
        ("pages/strategy.py", "Strategy & simulation", ":material/tune:"),
    ],
    "Collections (team)": [("pages/worklist.py", "Worklist", ":material/checklist:")],
    "Data": [("pages/data.py", "Data", ":material/upload_file:")],
}
if signin.enabled():  # users, assignments and the audit log matter once people sign in
    SECTIONS["Admin"] = [("pages/admin.py", "Admin", ":material/admin_panel_settings:")]

actor = None
with ui.page_errors("sign-in"):
    actor = signin.gate()  # stops here on the sign-in page, or for a user who is not active
if actor is None:  # the store could not be read: page_errors said why
    st.stop()
page = st.navigation(signin.navigation(SECTIONS, actor))
ui.narrow_screen_layout()  # the sidebar starts folded away on a narrow window
with ui.page_errors(page.title), signin.routed():  # whatever a page raises: a plain message and a log line
    page.run()
