"""Sign-in and role-built navigation for app.py (Streamlit's ``st.login`` / ``st.user``, OIDC).

Without ``[auth]`` in the secrets file (see :mod:`dashboard.auth_config`) nothing here asks
anything: the actor is the local user, an admin, and every page is there, as in single-user
mode. With it: a signed-out visitor gets only the sign-in page; a signed-in person is looked up
in the store by the provider's subject (created on first sign-in, see
:func:`dashboard.users.sign_in`), an inactive one sees only a message, and the navigation holds
the pages their role opens. A page their role does not open is still routed (hidden), to a
refusal: its URL says why instead of silently showing another page, and its code never runs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard import access, users
from dashboard.auth_config import read_auth
from dashboard.ui import ACTOR_KEY, get_store, md

#: A page of app.py: (file, title, icon).
PageSpec = tuple[str, str, str]
_SIGNED_IN_KEY = "recoup_signed_in"


def enabled() -> bool:
    """Whether sign-in is configured (a complete ``[auth]`` in the secrets file)."""
    return read_auth().complete


def _claims() -> dict[str, Any]:
    claims = st.user.to_dict()
    claims.pop("tokens", None)
    return claims


def sign_in_page() -> None:
    """All a signed-out visitor sees."""
    st.title("Recoup")
    st.write("Accounts-receivable collections. Sign in with your organisation's account to continue.")
    st.button("Sign in", type="primary", on_click=st.login, key="recoup_sign_in")


def gate() -> access.Actor:
    """The person this session acts as; stops the script on the sign-in page, or with a
    message, when there is nobody allowed in."""
    if not enabled():
        actor = access.local_actor()
        st.session_state[ACTOR_KEY] = actor
        return actor
    st.session_state.pop(ACTOR_KEY, None)
    if not st.user.get("is_logged_in"):
        sign_in_page()
        st.stop()
    claims = _claims()
    subject = str(claims.get("sub") or claims.get("email") or "")
    if not subject:
        st.error("The sign-in provider sent no subject or email for you, so Recoup cannot tell who you are.")
        st.button("Sign out", on_click=st.logout, key="recoup_sign_out")
        st.stop()
    store = get_store()
    marker = (subject, claims.get("iat"))
    if st.session_state.get(_SIGNED_IN_KEY) != marker:
        user = users.sign_in(store, subject=subject, email=_text(claims.get("email")), name=_text(claims.get("name")),
                             claims=claims)
        st.session_state[_SIGNED_IN_KEY] = marker
    else:  # every run reads the role from the store: a change or a deactivation applies at once
        user = users.find_user(store, subject)
    if user is None or not user["active"]:
        st.title("Recoup")
        st.error(
            f"{md(claims.get('email') or subject)} is signed in but is not an active user of this Recoup. "
            "Ask an admin to give you access.",
            icon=":material/block:",
        )
        st.button("Sign out", on_click=st.logout, key="recoup_sign_out")
        st.stop()
    actor = users.actor_for(user)
    st.session_state[ACTOR_KEY] = actor
    with st.sidebar:
        st.caption(f"Signed in as {md(actor.label)} · {access.ROLE_LABELS.get(actor.role, actor.role)}")
        st.button("Sign out", on_click=st.logout, key="recoup_sign_out")
    return actor


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _refusal(title: str, actor: access.Actor) -> Any:
    def refuse() -> None:
        st.title(title)
        st.error(
            f"Your role ({access.ROLE_LABELS.get(actor.role, actor.role)}) does not open the {md(title)} page. "
            "Ask an admin if you need it.",
            icon=":material/block:",
        )

    return refuse


_ROUTED = threading.local()


@contextmanager
def routed() -> Iterator[None]:
    """app.py runs the chosen page inside this: the gate and the role's navigation have decided."""
    _ROUTED.active = True
    try:
        yield
    finally:
        _ROUTED.active = False


def require_page(page: str, title: str) -> None:
    """The first call of every page file: with sign-in on, a page run without app.py (Streamlit
    1.67 runs ``pages/<name>.py`` by itself for a deep link while the process is still in its
    "pages/ directory" mode, which ``streamlit run app.py`` is until the first run reaches
    ``st.navigation``, and AppTest always is) runs the sign-in gate itself and refuses a role
    that does not open it. Under app.py, or without sign-in, it does nothing."""
    if getattr(_ROUTED, "active", False) or not enabled():
        return
    actor = gate()
    if not actor.can(access.PAGE_PERMISSIONS[page]):
        _refusal(title, actor)()
        st.stop()


def navigation(sections: Mapping[str, Sequence[PageSpec]], actor: access.Actor) -> dict[str, list[Any]]:
    """``st.navigation``'s pages for ``actor``: the pages their role opens, and every other page
    hidden at its usual URL with a refusal in place of its code."""
    allowed = set(access.pages_for(actor.role))
    stems = [Path(path).stem for specs in sections.values() for path, _, _ in specs]
    default = next((stem for stem in ("overview", "worklist", *stems) if stem in allowed and stem in stems), None)
    pages: dict[str, list[Any]] = {}
    refused: list[Any] = []
    for section, specs in sections.items():
        for path, title, icon in specs:
            stem = Path(path).stem
            if stem in allowed:
                pages.setdefault(section, []).append(st.Page(path, title=title, icon=icon, default=stem == default))
            else:
                refused.append(st.Page(_refusal(title, actor), title=title, icon=icon, url_path=stem, visibility="hidden"))
    if not pages:  # a role with no page (cannot happen with the shipped roles): one that says so
        pages[""] = [st.Page(_refusal("Recoup", actor), title="Recoup", url_path="nothing", default=True)]
    first = next(iter(pages))
    pages[first].extend(refused)
    return pages
