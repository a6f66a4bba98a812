"""Risk model page (placeholder: replaced by the feature that builds it)."""

import streamlit as st

st.title("Risk model")
st.info("Coming soon: this page is being built.", icon=":material/construction:")
