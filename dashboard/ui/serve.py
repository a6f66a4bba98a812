"""Start the app: ``python -m dashboard.ui.serve [streamlit options]`` (what `make run` calls).

Why not plain ``streamlit run app.py``: Streamlit 1.67 decides once per process whether the app
is a "pages/ directory" (v1) app, before app.py has run. Our pages live in the top-level
``pages/`` folder (fixed by the client) but navigation is ``st.navigation`` (v2). Under plain
``streamlit run``, a first request to a deep link such as ``/worklist`` runs ``pages/worklist.py``
on its own, without app.py's navigation, page config or sections. Declaring v2 up front
makes every URL go through app.py. The browser journeys test a deep link.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli as streamlit_cli

from dashboard.auth_config import SIGN_IN_OFF, ensure_cookie_secret, read_auth, secrets_path, serving_refusal
from dashboard.config import ROOT


def import_before_sessions() -> None:
    """Import pandas in the main thread before the server takes sessions.

    Plotly checks for pandas with ``sys.modules.get("pandas")`` without importing it. When one
    session's thread was still importing pandas (Streamlit does so lazily), a chart drawn in
    another session saw the half-initialised module and failed with "partially initialized
    module 'pandas' has no attribute 'Series'" (seen under 8 concurrent first visits).
    """
    import pandas  # noqa: F401, PLC0415


def compile_kernels_in_background() -> threading.Thread:
    """Compile (first start on a machine, ~30 s) or load (later starts, under a second) the
    forecast's and the simulator's numba kernels while the first pages are being looked at,
    so the first forecast or simulation does not wait for it. Numba holds its own lock: a
    simulation started meanwhile waits for the compile, it does not compile again."""
    from dashboard import _simulate_kernels  # noqa: PLC0415

    thread = threading.Thread(target=_simulate_kernels.compile_all, name="recoup-compile-kernels", daemon=True)
    thread.start()
    return thread


def _option(args: Sequence[str], name: str) -> str | None:
    """The value of a Streamlit option given as ``--name value`` or ``--name=value`` (the last one wins)."""
    value = None
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def check_sign_in(args: Sequence[str]) -> tuple[str | None, str]:
    """(why not to start, or None; what to say when starting) for these Streamlit options.

    Streamlit serves on every address (0.0.0.0) when no ``--server.address`` is given, so
    that counts as a network address too.
    """
    settings = ensure_cookie_secret(read_auth())  # generated on the first start, never committed
    address = _option(args, "--server.address") or os.environ.get("STREAMLIT_SERVER_ADDRESS") or "0.0.0.0"
    refusal = serving_refusal(address, settings)
    if settings.complete:
        return refusal, f"Sign-in is on ({settings.path}): people sign in with the provider; roles come from the store."
    return refusal, f"Recoup: {SIGN_IN_OFF} (no [auth] in {settings.path}); serving on {address} only."


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    refusal, notice = check_sign_in(args)
    if refusal is not None:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    print(notice, file=sys.stderr, flush=True)
    import_before_sessions()
    compile_kernels_in_background()
    PagesManager.uses_pages_directory = False
    # Streamlit reads secrets (and st.login its [auth]) from the same file this check read.
    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), f"--secrets.files={secrets_path()}", *args]
    return int(streamlit_cli.main() or 0)


if __name__ == "__main__":
    sys.exit(main())
