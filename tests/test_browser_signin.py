"""Browser journeys with sign-in: Streamlit's own st.login against a local OpenID provider.

The provider is ``oidc-provider-mock`` (PyPI), run by the tests on 127.0.0.1 with one predefined
person per role; the app is served by ``dashboard.ui.serve`` with an ``[auth]`` written for it
($RECOUP_SECRETS). Each person signs in in a fresh browser context (their own cookie), by the
provider's real redirect, consent form and token exchange. What the journeys changed is read
from the store after the server stops (the server holds the file).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard import audit, users
from dashboard.store import Store
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    GRIDS,
    free_port,
    require_chromium,
    screenshot,
    streamlit_server,
    wait_for_app,
)

pytestmark = pytest.mark.browser

PEOPLE = {  # provider subject: (email, name, role in the store)
    "cfo": ("cfo@example.com", "Carla Fo", "viewer"),
    "ann": ("ann@example.com", "Ann Alyst", "analyst"),
    "marcus": ("marcus@example.com", "Marcus Lee", "collector"),
    "ada": ("ada@example.com", "Ada Min", "admin"),
    "gone": ("gone@example.com", "Gone Away", "analyst"),
}


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    from oidc_provider_mock import User, run_server_in_thread

    people = [User(sub=sub, claims={"email": email, "name": name}) for sub, (email, name, _) in PEOPLE.items()]
    with run_server_in_thread(port=free_port(), user_claims=people) as server:
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.fixture(scope="module")
def signin_app(seeded_db_path: Path, provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The app with sign-in on, against a copy of the seeded store that knows the five people."""
    require_chromium()
    folder = tmp_path_factory.mktemp("signin-browser")
    db = folder / "recoup.duckdb"
    shutil.copy(seeded_db_path, db)
    with Store(db) as s:
        for email, name, role in PEOPLE.values():
            users.add_user(s, email, role, name=name)
        users.change_user(s, "gone@example.com", active=False)
    port = free_port()
    secrets = folder / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        'cookie_secret = "a-browser-journey-cookie-secret-0123456789"\n'
        'client_id = "recoup"\n'
        'client_secret = "journeys"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n',
        encoding="utf-8",
    )
    with streamlit_server(db, env={"RECOUP_SECRETS": str(secrets)}, port=port) as url:
        yield url, db


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _person(chromium: object) -> object:
    context = chromium.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page


def _sign_in(page: object, url: str, sub: str, *, path: str = "") -> None:
    page.goto(url + "/" + path)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/oauth2/authorize**")
    page.get_by_role("button", name=sub, exact=True).click()  # the provider's one-click person
    page.wait_for_url(url + "/**")
    wait_for_app(page, marker="[data-testid='stMain'] h1", timeout_s=180)


def _nav(page: object) -> list[str]:
    # each link's text is its icon's name, then its title
    return [t.strip().splitlines()[-1] for t in page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()]


def test_a_signed_out_visitor_sees_only_the_sign_in_page(signin_app: tuple[str, Path], chromium: object) -> None:
    url, _ = signin_app
    page = _person(chromium)
    for path in ("", "data", "worklist"):
        page.goto(f"{url}/{path}")
        wait_for_app(page, marker="[data-testid='stMain'] h1")
        body = page.inner_text("[data-testid='stMain']")
        assert "Sign in" in body and "Overview" not in body and "Worklist" not in body, body[:500]
        assert _nav(page) == []
    screenshot(page, "journey-signin-signed-out")
    page.context.close()


def test_a_cfo_sees_the_dashboards_and_no_write_control(signin_app: tuple[str, Path], chromium: object) -> None:
    url, _ = signin_app
    page = _person(chromium)
    _sign_in(page, url, "cfo")
    page.get_by_role("heading", name="Overview", exact=True).wait_for()
    assert _nav(page) == ["Overview", "Segments", "Risk model"]
    # what the README says about the sign-in cookie (HTTPS belongs at the reverse proxy)
    cookies = {c["name"]: c for c in page.context.cookies()}
    user_cookie = next(c for name, c in cookies.items() if name.startswith("_streamlit_user"))
    assert user_cookie["httpOnly"] and not user_cookie["secure"], user_cookie
    page.goto(f"{url}/risk")
    wait_for_app(page, marker="[data-testid='stMain'] h1", timeout_s=180)
    page.get_by_role("heading", name="Risk model", exact=True).wait_for()
    tabs = page.locator("[data-baseweb='tab']").all_inner_texts()
    assert "Train" not in [t.strip() for t in tabs], tabs
    for label in ("Train", "Make active", "Recalibrate now", "Recalibrate on recent outcomes"):
        assert page.get_by_role("button", name=label, exact=True).count() == 0, label
    screenshot(page, "journey-signin-cfo-risk")
    page.goto(f"{url}/strategy")
    wait_for_app(page, marker="[data-testid='stMain'] h1")
    assert "does not open the Strategy" in page.inner_text("[data-testid='stMain']")
    page.context.close()


def test_an_analyst_saves_a_policy(signin_app: tuple[str, Path], chromium: object) -> None:
    url, _ = signin_app
    page = _person(chromium)
    _sign_in(page, url, "ann", path="strategy")
    page.goto(f"{url}/strategy")
    wait_for_app(page, marker="[data-testid='stMain'] h1", timeout_s=180)
    page.get_by_role("heading", name="Strategy & simulation", exact=True).wait_for()
    page.get_by_role("button", name="Save as a new version").click()
    page.get_by_text("Saved as version").first.wait_for(timeout=60_000)
    screenshot(page, "journey-signin-analyst-saved")
    page.context.close()


def test_a_collector_sees_only_their_customers_and_exports_them(signin_app: tuple[str, Path], chromium: object) -> None:
    url, _ = signin_app
    page = _person(chromium)
    _sign_in(page, url, "marcus")
    page.get_by_role("heading", name="Worklist", exact=True).wait_for()
    assert _nav(page) in ([], ["Worklist"])  # one visible page: Streamlit shows no menu
    page.locator("[data-testid='stDataFrame'] table").first.wait_for(state="attached")
    cells = [c for grid in page.evaluate(GRIDS) for c in grid["cells"]]
    assert "Marcus Lee" in cells
    others = {"Tom Okafor", "Elena Garcia", "Priya Raman", "Dana Whitfield"} & set(cells)
    assert not others, f"another collector's lines are on Marcus's worklist: {others}"
    page.get_by_role("button", name="Record and prepare the export").click()
    page.get_by_text("line(s) recorded for").first.wait_for(timeout=120_000)
    page.get_by_role("button", name="Download worklist (CSV)").wait_for()
    screenshot(page, "journey-signin-collector-export")
    # a direct URL to the Data page is refused, and its code does not run
    page.goto(f"{url}/data")
    wait_for_app(page, marker="[data-testid='stMain'] h1")
    main = page.inner_text("[data-testid='stMain']")
    assert "does not open the Data page" in main and "Load history" not in main, main[:500]
    screenshot(page, "journey-signin-collector-data-refused")
    page.context.close()


def test_an_admin_undoes_a_load(signin_app: tuple[str, Path], chromium: object) -> None:
    url, _ = signin_app
    page = _person(chromium)
    _sign_in(page, url, "ada", path="data")
    assert "Admin" in _nav(page) and "Data" in _nav(page)
    page.goto(f"{url}/data")
    wait_for_app(page, marker="[data-testid='stMain'] h1", timeout_s=180)
    page.get_by_role("heading", name="Data", exact=True).wait_for()
    page.get_by_text("Undo a load", exact=True).click()
    box = page.locator("[data-testid='stSelectbox']").filter(has_text="Load to take back")
    confirm = page.get_by_text("Remove these", exact=False).first
    for attempt in range(3):  # the option list is redrawn while it filters: choose again if it did not take
        try:
            box.locator("input").click()
            page.keyboard.press("Control+a")
            page.keyboard.press("Backspace")
            page.keyboard.type("notes.csv")  # the newest load: nothing depends on it
            page.get_by_role("option", name=re.compile(r"notes\.csv")).first.wait_for(timeout=20_000)
            page.keyboard.press("Enter")
            wait_for_app(page)
            confirm.wait_for(timeout=15_000)
            break
        except Exception:
            if attempt == 2:
                screenshot(page, "journey-signin-admin-undo-failed")
                raise
    confirm.click()  # the confirmation
    wait_for_app(page)
    page.get_by_role("button", name="Undo load #").click()
    page.get_by_text("was undone").first.wait_for(timeout=120_000)
    screenshot(page, "journey-signin-admin-undo")
    page.context.close()


def test_a_deactivated_user_sees_nothing(signin_app: tuple[str, Path], chromium: object) -> None:
    url, _ = signin_app
    page = _person(chromium)
    _sign_in(page, url, "gone")
    main = page.inner_text("[data-testid='stMain']")
    assert "not an active user" in main and _nav(page) == []
    page.goto(f"{url}/overview")
    wait_for_app(page, marker="[data-testid='stMain'] h1")
    assert "not an active user" in page.inner_text("[data-testid='stMain']")
    screenshot(page, "journey-signin-deactivated")
    page.context.close()


def test_the_journeys_are_in_the_audit_log(signin_app: tuple[str, Path]) -> None:
    """Read after the journeys above (module order); the server still runs, so read a copy."""
    _, db = signin_app
    copy = db.with_name("audit-copy.duckdb")
    shutil.copy(db, copy)
    wal = db.with_name(db.name + ".wal")
    if wal.exists():
        shutil.copy(wal, copy.with_name(copy.name + ".wal"))
    with Store(copy) as s:
        rows = audit.read_audit(s, limit=1000).to_dicts()
        assert audit.verify(s).ok
    done = {(r["email"], r["action"]) for r in rows}
    assert ("ann@example.com", "policy_save") in done
    assert ("marcus@example.com", "worklist_export") in done
    assert ("ada@example.com", "undo_load") in done
    signed_in = {r["email"] for r in rows if r["action"] == "sign_in"}
    assert {"cfo@example.com", "ann@example.com", "marcus@example.com", "ada@example.com", "gone@example.com"} <= signed_in
    export = next(r for r in rows if r["action"] == "worklist_export")
    assert json.loads(export["details"])["filters"]["assigned_customers"] > 0
