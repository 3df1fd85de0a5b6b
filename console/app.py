"""The operators' and supervisors' console: `streamlit run console/app.py` (port 3001).

It talks only to the HTTP API (settings.API_URL), never to the databases. Pages come from
st.navigation, built from the role: logged out, the login form; an operator, their queue;
a supervisor, their region and its audit trail. Each page checks the role again.
"""

from __future__ import annotations

import streamlit as st

from common import logs
from common.domain.routing import served_region
from common.production import startup_refusal
from common.settings import load_settings
from console import audit_page, login_page, operator_page, state, supervisor_page
from console.api_client import ApiError, SessionEnded


@st.cache_resource
def _logging() -> None:
    """Once per console server: the log format of every process (common/logs.py)."""
    logs.configure("console", load_settings())


def main() -> None:
    _logging()
    st.set_page_config(page_title="Event review console", layout="wide")
    refusal = startup_refusal(load_settings(), accounts=False)
    if refusal:
        st.error(refusal)
        st.stop()
    me = state.user()
    if me is None:
        pages = [st.Page(login_page.render, title="Log in", url_path="login")]
    elif me["role"] == "operator":
        pages = [st.Page(operator_page.render, title="Queue", url_path="queue")]
    else:
        pages = [st.Page(supervisor_page.render, title="Region", url_path="region"),
                 st.Page(audit_page.render, title="Audit trail", url_path="audit")]
    page = st.navigation(pages, position="top" if me else "hidden")
    if me is not None:
        _header(me)
    page.run()


def _header(me: dict) -> None:
    title, out = st.columns([6, 1], vertical_alignment="center")
    title.title(me["name"])
    title.caption(f"{me['role'].capitalize()} · {me['username']} · region {me['region']}"
                  f" (events of {served_region(me['region'])})")
    out.button("Log out", on_click=_log_out)


def _log_out() -> None:
    """End the session through the API (an operator's pending work goes back to waiting);
    a session the API already ended counts as logged out."""
    me = state.user()
    client = state.client()
    try:
        client.logout()
    except SessionEnded:
        pass
    except ApiError as error:
        state.notify("error", f"Could not log out: {error.message}")
        return
    state.end()
    released = me["role"] == "operator"
    state.notify("info", "You are logged out." + (
        " Your pending assignments went back to the waiting queue." if released else ""))


main()
