"""Recoup: accounts-receivable collections cockpit (logic layer, no Streamlit)."""

__version__ = "0.1.0"
