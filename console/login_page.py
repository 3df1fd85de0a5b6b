"""The login form: fields `Username` and `Password`, button `Log in` (DESIGN.md: browser
tests rely on these labels)."""

from __future__ import annotations

import streamlit as st

from console import state
from console.api_client import ApiError


def render() -> None:
    st.title("Event review console")
    state.show_notices()
    with st.form("login"):
        username = st.text_input("Username", key="login_username")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        _log_in(username.strip(), password)


def _log_in(username: str, password: str) -> None:
    """Start a session through the API and show the user's page; else say why not."""
    if not username or not password:
        st.error("Enter your username and password.")
        return
    try:
        answer = state.client().login(username, password)
    except ApiError as error:
        st.error(error.message)
        return
    state.start(answer)
    st.rerun()
