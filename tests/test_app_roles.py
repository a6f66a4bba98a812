"""AppTest with sign-in on: every page per role (``at.user``), signed out, and a deactivated user.

Sign-in is on when the secrets file ($RECOUP_SECRETS here) has a complete ``[auth]``. AppTest
cannot run the provider's redirect, so ``at.user`` stands in for what ``st.user`` holds after
it (the browser journeys in tests/test_browser_signin.py do the real sign-in).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import users
from dashboard.store import Store
from dashboard.ui import md

ROOT = Path(__file__).resolve().parent.parent
PAGES = {
    "overview": "Overview",
    "segments": "Segments",
    "risk": "Risk model",
    "strategy": "Strategy & simulation",
    "worklist": "Worklist",
    "data": "Data",
    "admin": "Admin",
}
OPENS = {
    "viewer": {"overview", "segments", "risk"},
    "analyst": {"overview", "segments", "risk", "strategy"},
    "collector": {"worklist"},
    "admin": set(PAGES),
}
PEOPLE = {
    "viewer": ("cfo@example.com", "Carla Fo"),
    "analyst": ("ann@example.com", "Ann Alyst"),
    "collector": ("marcus@example.com", "Marcus Lee"),
    "admin": ("ada@example.com", "Ada Min"),
}
# Buttons that change something: none may be on a page for a role that may not do it.
WRITE_BUTTONS = {
    "Train", "Make active", "Recalibrate now", "Recalibrate on recent outcomes", "Save as a new version",
    "Load into store", "Record and prepare the export", "Record outcome", "Import outcomes", "Save the change", "Add",
}
AUTH = """[auth]
redirect_uri = "http://localhost:8501/oauth2callback"
cookie_secret = "an-apptest-cookie-secret-0123456789"
client_id = "recoup"
client_secret = "apptest"
server_metadata_url = "http://127.0.0.1:9/.well-known/openid-configuration"
"""


@pytest.fixture(scope="module")
def signin_db(seeded_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the seeded store with one person per role (and one deactivated), added by an admin."""
    folder = tmp_path_factory.mktemp("signin")
    db = folder / "recoup.duckdb"
    shutil.copy(seeded_db_path, db)
    (folder / "secrets.toml").write_text(AUTH, encoding="utf-8")
    with Store(db) as s:
        for role, (email, name) in PEOPLE.items():
            users.add_user(s, email, role, name=name)
        users.add_user(s, "gone@example.com", "analyst", name="Gone")
        users.change_user(s, "gone@example.com", active=False)
    return db


@pytest.fixture
def signin_env(signin_db: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECOUP_DB", str(signin_db))
    monkeypatch.setenv("RECOUP_SECRETS", str(signin_db.parent / "secrets.toml"))
    return signin_db


def _app(user: dict | None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.user = user if user is not None else {"is_logged_in": False}
    return at


def _signed_in(role: str) -> dict:
    email, name = PEOPLE[role]
    return {"is_logged_in": True, "sub": f"sub-{role}", "email": email, "name": name, "iat": 1_800_000_000}


def _texts(at: AppTest) -> str:
    return " ".join([*(e.value for e in at.error), *(e.value for e in at.markdown), *(t.value for t in at.title)])


def test_a_signed_out_visitor_sees_only_the_sign_in_page(signin_env: Path) -> None:
    at = _app(None).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Recoup"]
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.metric and not at.dataframe and not at.tabs
    # a deep link does not get past the gate either
    at.switch_page("pages/data.py").run()
    assert [t.value for t in at.title] == ["Recoup"] and [b.label for b in at.button] == ["Sign in"]


def test_a_deactivated_user_sees_nothing_but_a_message(signin_env: Path) -> None:
    at = _app({"is_logged_in": True, "sub": "sub-gone", "email": "gone@example.com", "name": "Gone", "iat": 1}).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Recoup"]
    assert any("not an active user" in e.value for e in at.error)
    assert [b.label for b in at.button] == ["Sign out"]
    assert not at.metric and not at.dataframe


def test_a_first_sign_in_without_a_role_claim_is_a_viewer(signin_env: Path) -> None:
    at = _app({"is_logged_in": True, "sub": "sub-new", "email": "new@example.com", "name": "New", "iat": 7}).run()
    assert not at.exception
    assert at.title[0].value == "Overview"
    with Store(signin_env) as s:
        assert users.find_user(s, "sub-new")["role"] == "viewer"


@pytest.mark.parametrize("role", list(PEOPLE))
@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_per_role(signin_env: Path, role: str, page: str) -> None:
    at = _app(_signed_in(role))
    if page in OPENS[role]:  # from the first page, through the role's navigation
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        at.switch_page(f"pages/{page}.py")
    else:  # not in the role's navigation (AppTest cannot switch to it): its URL as a session's first request
        at.switch_page(f"pages/{page}.py")
    at.run()
    assert any(f"Signed in as {md(PEOPLE[role][0])}" in c.value for c in at.sidebar.caption)
    assert not at.exception, [e.message for e in at.exception]
    assert at.title and at.title[0].value == PAGES[page]
    refused = any("does not open the" in e.value for e in at.error)
    if page in OPENS[role]:
        assert not refused, _texts(at)
        writes = {b.label for b in at.button} & WRITE_BUTTONS
        if role == "viewer":
            assert not writes, f"a viewer sees write controls on {page}: {writes}"
        if role == "analyst" and page == "strategy":
            assert "Save as a new version" in {b.label for b in at.button}
        if page == "segments":  # a what-if is an analyst's tool
            assert ("Try these thresholds" in {b.label for b in at.button}) is (role != "viewer")
        if role in ("analyst", "admin") and page == "risk":
            assert "Train" in {b.label for b in at.button}  # the check above sees write buttons
        if role in ("collector", "admin") and page == "worklist":
            assert "Record and prepare the export" in {b.label for b in at.button}
        if role == "admin" and page == "admin":
            assert len(at.tabs) == 3 and at.dataframe  # users, assignments, audit
    else:
        assert refused, f"{role} opened {page}: {_texts(at)[:300]}"
        assert len(at.title) == 1 and not at.dataframe and not at.metric, "the refused page's code ran"


def test_a_collectors_worklist_holds_only_their_customers(signin_env: Path) -> None:
    at = _app(_signed_in("collector")).run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.title[0].value == "Worklist"  # a collector's first page
    collectors = {
        value for frame in at.dataframe for column in frame.value.columns if column == "collector"
        for value in frame.value[column]
    }
    assert collectors == {"Marcus Lee"}, collectors
    assert any(m.label == "Lines today" and m.value != "0" for m in at.metric)
    assert not any(t.label == "Exported by" for t in at.text_input), "a signed-in export is the person's own"
    # the sidebar's filter drop-downs name only what the collector's customers have
    owner_choices = {o for m in at.sidebar.multiselect if m.label == "Owner" for o in m.options}
    with Store(signin_env) as s:
        every_owner = set(s.query("SELECT DISTINCT owner FROM customers WHERE owner IS NOT NULL")["owner"].to_list())
    assert owner_choices == {"Marcus Lee"} and len(every_owner) > 1, (owner_choices, every_owner)


def test_a_role_changed_by_an_admin_applies_at_the_next_run(signin_env: Path) -> None:
    at = _app(_signed_in("analyst")).run()
    at.switch_page("pages/strategy.py").run()
    assert not any("does not open the" in e.value for e in at.error)
    with Store(signin_env) as s:
        users.change_user(s, "ann@example.com", role="viewer")
    try:
        at.run()
        assert any("does not open the" in e.value for e in at.error)
        with Store(signin_env) as s:
            users.change_user(s, "ann@example.com", active=False)
        at.run()
        assert any("not an active user" in e.value for e in at.error)
    finally:
        with Store(signin_env) as s:
            users.change_user(s, "ann@example.com", role="analyst", active=True)
