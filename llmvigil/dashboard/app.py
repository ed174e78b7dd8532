"""The dashboard's entry script, run by Streamlit (``llmvigil dashboard`` starts it).

It draws what every page shares (the password form when one is set, the
sidebar with the time range and filters), then the page the URL names:
``/overview``, ``/metrics``, ``/quality``, ``/drift``, ``/traces``, ``/alerts``,
``/sessions``. The root URL opens the overview.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from llmvigil.dashboard.access import admits, gated
from llmvigil.dashboard.frame import auto_refresh, settings_and_source, sidebar
from llmvigil.dashboard.routes import PAGES

HERE = Path(__file__).parent


def _home() -> None:
    # The root URL: every page keeps its own path (/overview), so a link names its page.
    st.switch_page(listed[0], query_params=st.query_params.to_dict())


def _login(settings) -> bool:
    if st.session_state.get("llmvigil_admitted"):
        return True
    st.title("llmvigil")
    with st.form("login"):
        presented = st.text_input("Password or read key", type="password")
        if st.form_submit_button("Open"):
            if admits(settings, presented):
                st.session_state["llmvigil_admitted"] = True
                st.rerun()
            st.error("That password (or key) does not open this dashboard.")
    return False


st.set_page_config(page_title="llmvigil", layout="wide")
settings, source = settings_and_source()
if gated(settings) and not _login(settings):
    st.stop()
listed = [st.Page(HERE / file, title=title, url_path=path) for file, title, path in PAGES]
home = st.Page(_home, title="Home", url_path="home", default=True, visibility="hidden")
selected = st.navigation([home, *listed])
st.session_state["llmvigil_frame"] = sidebar(settings, source)
auto_refresh(settings)
selected.run()
