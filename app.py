"""Recoup: the Streamlit entry point. `streamlit run app.py`.

Navigation uses st.navigation + st.Page (sections per persona) over the files in pages/;
see README "Why st.navigation".
"""

from __future__ import annotations

import streamlit as st

from dashboard import ui

st.set_page_config(page_title="Recoup — AR collections", page_icon=":material/payments:", layout="wide")

PAGES = {
    "Cash (CFO)": [
        st.Page("pages/overview.py", title="Overview", icon=":material/monitoring:", default=True),
    ],
    "Strategy (analyst)": [
        st.Page("pages/segments.py", title="Segments", icon=":material/groups:"),
        st.Page("pages/risk.py", title="Risk model", icon=":material/insights:"),
        st.Page("pages/strategy.py", title="Strategy & simulation", icon=":material/tune:"),
    ],
    "Collections (team)": [
        st.Page("pages/worklist.py", title="Worklist", icon=":material/checklist:"),
    ],
    "Data": [
        st.Page("pages/data.py", title="Data", icon=":material/upload_file:"),
    ],
}

page = st.navigation(PAGES)
ui.narrow_screen_layout()  # the sidebar starts folded away on a narrow window
with ui.page_errors(page.title):  # whatever a page raises: a plain message and a log line
    page.run()
