"""Sign-in settings: the ``[auth]`` section of ``.streamlit/secrets.toml`` that Streamlit's
``st.login`` reads (OpenID Connect), where that file is, and the rule for serving.

The file is ``.streamlit/secrets.toml`` at the repository root, or ``$RECOUP_SECRETS``. It holds
the provider's client secret and the cookie secret, so it is never committed (``.gitignore``).
:func:`write_auth` makes it (``python -m dashboard auth init``) with a generated cookie secret;
:func:`serving_refusal` is why the app will not serve on a network address without it.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dashboard.config import ROOT
from dashboard.errors import CommandLineError

SECRETS_ENV_VAR = "RECOUP_SECRETS"
REQUIRED_KEYS: tuple[str, ...] = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")
DEFAULT_REDIRECT_URI = "http://localhost:8501/oauth2callback"
SIGN_IN_OFF = "sign-in is off: single-user mode, every page and action, for this machine only"


def secrets_path() -> Path:
    """The secrets file the app and ``st.login`` read: ``$RECOUP_SECRETS``, else
    ``.streamlit/secrets.toml`` at the repository root."""
    env = os.environ.get(SECRETS_ENV_VAR)
    return Path(env) if env else ROOT / ".streamlit" / "secrets.toml"


@dataclass(frozen=True)
class AuthSettings:
    """What the secrets file says about sign-in."""

    path: Path
    section: dict[str, Any]

    @property
    def present(self) -> bool:
        return bool(self.section)

    @property
    def missing(self) -> list[str]:
        return [key for key in REQUIRED_KEYS if not self.section.get(key)]

    @property
    def complete(self) -> bool:
        return self.present and not self.missing


def read_auth(path: Path | None = None) -> AuthSettings:
    """The ``[auth]`` section of the secrets file (empty when the file or the section is absent)."""
    path = path or secrets_path()
    if not path.is_file():
        return AuthSettings(path, {})
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        msg = f"The secrets file {str(path)!r} cannot be read as TOML ({exc})."
        raise CommandLineError(msg) from None
    section = data.get("auth")
    return AuthSettings(path, dict(section) if isinstance(section, dict) else {})


def is_loopback(address: str) -> bool:
    """Whether ``address`` (a host name or an IP) only reaches this machine."""
    host = address.strip().strip("[]").lower()
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serving_refusal(address: str | None, settings: AuthSettings) -> str | None:
    """Why the app must not start on ``address`` with these settings, or None when it may.

    A loopback address may serve without sign-in (one person, this machine). Any other
    address (``0.0.0.0``, a LAN or public IP, a host name) needs a complete ``[auth]``; a
    half-filled ``[auth]`` is refused everywhere, naming what is missing.
    """
    if settings.present and settings.missing:
        return (
            f"The [auth] section of {str(settings.path)!r} is missing {', '.join(settings.missing)}; "
            "complete it (python -m dashboard auth init ...) or remove the section to run without sign-in."
        )
    if settings.complete:
        return None
    if address is None or is_loopback(address):
        return None
    return (
        f"Refusing to serve on {address!r} without sign-in: anyone who can reach that address would get every page "
        f"and every action. Configure sign-in first (python -m dashboard auth init --client-id ... --client-secret ... "
        f"--metadata-url ... writes [auth] to {str(settings.path)!r}; see the README, 'Sign-in'), or serve on "
        "127.0.0.1 for single-user use."
    )


def ensure_cookie_secret(settings: AuthSettings) -> AuthSettings:
    """Give an ``[auth]`` that has everything but a cookie secret a new random one, written into
    the file (the first start after someone filled in the provider's settings by hand)."""
    if not settings.present or settings.missing != ["cookie_secret"]:
        return settings
    lines = settings.path.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().replace(" ", "") == "[auth]")
    lines.insert(at + 1, f"cookie_secret = {_toml_string(secrets.token_urlsafe(32))}")
    scratch = settings.path.with_name(settings.path.name + ".tmp")
    scratch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    scratch.chmod(0o600)
    os.replace(scratch, settings.path)
    return read_auth(settings.path)


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_auth(
    *,
    client_id: str,
    client_secret: str,
    metadata_url: str,
    redirect_uri: str = DEFAULT_REDIRECT_URI,
    path: Path | None = None,
    extra: dict[str, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the ``[auth]`` section (with a new random cookie secret) to the secrets file,
    keeping whatever else the file holds; private to its owner (mode 600)."""
    path = path or secrets_path()
    current = read_auth(path)
    if current.present and not overwrite:
        msg = f"{str(path)!r} already has an [auth] section; pass --overwrite to replace it (the cookie secret changes: everyone signs in again)."
        raise CommandLineError(msg)
    if not metadata_url.startswith(("https://", "http://")):
        msg = f"--metadata-url must be the provider's https://.../.well-known/openid-configuration URL; got {metadata_url!r}"
        raise CommandLineError(msg)
    kept: list[str] = []
    if path.is_file():  # keep the other sections: drop the old [auth] and its sub-tables only
        skipping = False
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith("["):
                name = stripped.strip("[] ")
                skipping = name == "auth" or name.startswith("auth.")
            if not skipping:
                kept.append(line)
    values = {
        "redirect_uri": redirect_uri,
        "cookie_secret": secrets.token_urlsafe(32),
        "client_id": client_id,
        "client_secret": client_secret,
        "server_metadata_url": metadata_url,
        **(extra or {}),
    }
    section = ["[auth]", *(f"{key} = {_toml_string(value)}" for key, value in values.items())]
    text = "\n".join([*kept, *([""] if kept and kept[-1].strip() else []), *section]) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(text, encoding="utf-8")
    scratch.chmod(0o600)
    os.replace(scratch, path)
    return path
