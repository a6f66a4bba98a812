"""Roles, pages and serving: who opens what, and why the app will not serve a network without sign-in."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dashboard.access import (
    ADMIN,
    ANALYST,
    COLLECTOR,
    PAGE_PERMISSIONS,
    PERMISSIONS,
    VIEWER,
    can,
    pages_for,
    role_from_claims,
)
from dashboard.auth_config import is_loopback, read_auth, serving_refusal, write_auth
from dashboard.cli import main
from dashboard.ui.serve import check_sign_in

ROOT = Path(__file__).resolve().parent.parent
AUTH = """[auth]
redirect_uri = "http://localhost:8501/oauth2callback"
cookie_secret = "a-test-cookie-secret-of-some-length"
client_id = "recoup"
client_secret = "s"
server_metadata_url = "http://127.0.0.1:9/.well-known/openid-configuration"
"""


def test_each_role_opens_its_pages() -> None:
    assert pages_for(VIEWER) == ["overview", "segments", "risk"]
    assert pages_for(ANALYST) == ["overview", "segments", "risk", "strategy"]
    assert pages_for(COLLECTOR) == ["worklist"]
    assert pages_for(ADMIN) == list(PAGE_PERMISSIONS)  # the single-user app's actor: everything


def test_writes_per_role() -> None:
    assert {p for p in PERMISSIONS if can(VIEWER, p)} == {"view_dashboards"}
    assert {p for p in PERMISSIONS if can(ANALYST, p)} == {
        "view_dashboards", "policy_edit", "simulate", "pilot", "model_train", "model_activate", "model_recalibrate",
    }
    assert {p for p in PERMISSIONS if can(COLLECTOR, p)} == {"worklist", "worklist_export", "outcomes_import"}
    assert all(can(ADMIN, p) for p in PERMISSIONS)


@pytest.mark.parametrize(
    ("claims", "role"),
    [
        ({"roles": ["recoup-analyst"]}, ANALYST),
        ({"groups": ["staff", "Recoup-Collector"]}, COLLECTOR),
        ({"groups": ["viewer", "admin"]}, ADMIN),
        ({"role": "CFO"}, VIEWER),
        ({"groups": ["staff"]}, None),
        ({}, None),
    ],
)
def test_a_role_claim_seeds_a_new_users_role(claims: dict, role: str | None) -> None:
    assert role_from_claims(claims) == role


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.1.2.3", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("recoup.example.com", False)],
)
def test_loopback_addresses(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_serving_rules(tmp_path: Path) -> None:
    none = read_auth(tmp_path / "absent.toml")
    assert serving_refusal("127.0.0.1", none) is None
    assert "Refusing to serve on '0.0.0.0' without sign-in" in serving_refusal("0.0.0.0", none)
    half = tmp_path / "half.toml"
    half.write_text('[auth]\nclient_id = "x"\n', encoding="utf-8")
    refusal = serving_refusal("127.0.0.1", read_auth(half))
    assert refusal is not None and "missing redirect_uri, cookie_secret, client_secret, server_metadata_url" in refusal
    full = tmp_path / "full.toml"
    full.write_text(AUTH, encoding="utf-8")
    assert serving_refusal("0.0.0.0", read_auth(full)) is None


def test_starting_on_every_address_without_sign_in_is_refused_with_the_reason(tmp_path: Path) -> None:
    env = {**os.environ, "RECOUP_SECRETS": str(tmp_path / "secrets.toml"), "RECOUP_DB": str(tmp_path / "r.duckdb")}
    done = subprocess.run(
        [sys.executable, "-m", "dashboard.ui.serve", "--server.address", "0.0.0.0", "--server.port", "8599",
         "--server.headless", "true"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "Refusing to serve on '0.0.0.0' without sign-in" in done.stderr and "auth init" in done.stderr
    assert not (tmp_path / "r.duckdb").exists(), "nothing was started"


def test_the_local_start_says_sign_in_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOUP_SECRETS", str(tmp_path / "secrets.toml"))
    refusal, notice = check_sign_in(["--server.address", "127.0.0.1"])
    assert refusal is None and "sign-in is off" in notice
    refusal, _ = check_sign_in([])  # Streamlit's own default is every address
    assert refusal is not None
    (tmp_path / "secrets.toml").write_text(AUTH, encoding="utf-8")
    refusal, notice = check_sign_in(["--server.address=0.0.0.0"])
    assert refusal is None and "Sign-in is on" in notice


def test_auth_init_writes_a_private_secrets_file_with_a_new_cookie_secret(tmp_path: Path) -> None:
    path = tmp_path / ".streamlit" / "secrets.toml"
    path.parent.mkdir()
    path.write_text('[other]\nkey = "kept"\n', encoding="utf-8")
    argv = ["auth", "init", "--client-id", "cid", "--client-secret", "c\"s", "--secrets", str(path),
            "--metadata-url", "https://accounts.google.com/.well-known/openid-configuration"]
    assert main(argv) == 0
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["other"] == {"key": "kept"}
    assert data["auth"]["client_secret"] == 'c"s' and len(data["auth"]["cookie_secret"]) >= 40
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert read_auth(path).complete
    assert main(argv) == 2, "an existing [auth] is not replaced without --overwrite"
    first = data["auth"]["cookie_secret"]
    assert main([*argv, "--overwrite"]) == 0
    assert tomllib.loads(path.read_text(encoding="utf-8"))["auth"]["cookie_secret"] != first


def test_the_secrets_file_is_git_ignored() -> None:
    assert ".streamlit/secrets.toml" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_write_auth_refuses_a_metadata_url_that_is_not_one(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="metadata-url"):
        write_auth(client_id="a", client_secret="b", metadata_url="accounts.google.com", path=tmp_path / "s.toml")


def test_the_first_start_generates_a_missing_cookie_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secrets.toml"
    path.write_text(AUTH.replace('cookie_secret = "a-test-cookie-secret-of-some-length"\n', "") + '\n[other]\nk = 1\n',
                    encoding="utf-8")
    assert read_auth(path).missing == ["cookie_secret"]
    monkeypatch.setenv("RECOUP_SECRETS", str(path))
    refusal, notice = check_sign_in(["--server.address", "0.0.0.0"])
    assert refusal is None and "Sign-in is on" in notice
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert len(data["auth"]["cookie_secret"]) >= 40 and data["other"] == {"k": 1}
    assert data["auth"]["client_id"] == "recoup" and oct(path.stat().st_mode & 0o777) == "0o600"
