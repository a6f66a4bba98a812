"""The one UI-glue module: the only place in dashboard/ that imports Streamlit.

Pages call these to get the shared store, the as-of date and the filters (widgets own their
state: one initialiser, page-prefixed keys, a returned value), and to show errors and empty
states the same way everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import streamlit as st

from dashboard.config import resolve_db_path
from dashboard.dates import latest_data_date
from dashboard.errors import RecoupError
from dashboard.filters import FILTER_COLUMNS, Filters, filter_options
from dashboard.store import Store

PROBABILITY_NOTE = (
    "Scores are probability indicators that guide your judgement, not verdicts. Each comes with the reasons behind it."
)


def _when_running(make_cache: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Callable[..., Any]:
    """Apply a Streamlit cache decorator on first call, not at import.

    ``python -m dashboard.ui.serve`` imports this module before Streamlit's runtime exists;
    decorating then makes Streamlit log "No runtime found" and fall back to a private cache.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        cached: list[Callable[..., Any]] = []

        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            if not cached:
                cached.append(make_cache(func))
            return cached[0](*args, **kwargs)

        return call

    return decorate


@_when_running(st.cache_resource(show_spinner="Opening the receivables store..."))
def _shared_store(path: str) -> Store:
    # One process-wide connection; sessions take cursors from it (see Store.cursor).
    return Store(path)


def get_store() -> Store:
    """The process-wide store (path from $RECOUP_DB or the default)."""
    return _shared_store(str(resolve_db_path()))


def data_version() -> str:
    """Cache key part that changes with every load, policy save or score."""
    return get_store().data_version()


def cached(func: Callable[..., Any]) -> Callable[..., Any]:
    """``st.cache_data`` for small results; callers pass ``data_version()`` as an argument."""
    return st.cache_data(show_spinner=False, max_entries=64)(func)


def as_of_control(page: str, *, store: Store | None = None) -> date | None:
    """Sidebar as-of date, defaulting to the newest date in the data (never the wall clock)."""
    store = store or get_store()
    latest = latest_data_date(store)
    if latest is None:
        return None
    key = f"{page}_as_of"
    if key not in st.session_state:
        st.session_state[key] = latest
    return st.sidebar.date_input("As of", key=key, help="Every figure on this page is computed as of this date.")


def filters_control(page: str, *, store: Store | None = None) -> Filters:
    """Sidebar multiselects for region, industry, owner and currency."""
    store = store or get_store()
    options = _filter_options(data_version())
    chosen: dict[str, tuple[str, ...]] = {}
    with st.sidebar.expander("Filters", expanded=False):
        for column in FILTER_COLUMNS:
            values = st.multiselect(column.capitalize(), options.get(column, []), key=f"{page}_filter_{column}")
            chosen[column] = tuple(values)
    return Filters(**chosen)


@_when_running(st.cache_data(show_spinner=False))
def _filter_options(version: str) -> dict[str, list[str]]:
    return filter_options(get_store())


def empty_state(message: str) -> None:
    st.info(message, icon=":material/inbox:")


def probability_note() -> None:
    st.caption(PROBABILITY_NOTE)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn domain errors into a message a finance person understands, not a traceback."""
    try:
        yield
    except RecoupError as exc:
        st.error(str(exc), icon=":material/error:")


def no_data_guard(store: Store) -> bool:
    """Show the empty state and return True when the store holds no invoices yet."""
    if not store.scalar("SELECT count(*) FROM invoices"):
        empty_state("No invoices in the store yet. Load an extract on the Data page.")
        return True
    return False


@_when_running(st.cache_resource(show_spinner="Loading the payment-risk model...", max_entries=4))
def _active_model(stamp: str, db: str) -> Any:
    from dashboard.registry import load_active_model

    return load_active_model(db=db)


def model_stamp() -> str:
    """Cache key part that changes when a model is saved or another one is made active (pass it
    to every cached function whose result depends on the active model)."""
    from dashboard.registry import registry_stamp

    return registry_stamp(db=str(resolve_db_path()))


def active_model() -> Any:
    """The active :class:`~dashboard.risk.RiskModel` of the store's registry (raises
    :class:`~dashboard.errors.ModelError` when no model is usable). Loaded once per registry
    stamp: saving a model or switching the active one changes the stamp, so no clearing is needed."""
    return _active_model(model_stamp(), str(resolve_db_path()))


@_when_running(st.cache_data(show_spinner=False, max_entries=16))
def _health_banners(version: str, as_of: date) -> list[str]:
    from dashboard.health import health_report

    return health_report(get_store(), as_of).banners


def health_banners(as_of: date | None) -> None:
    """Data-health problems over their thresholds, shown before any figure computed from them."""
    if as_of is None:
        return
    for banner in _health_banners(data_version(), as_of):
        st.warning(f"Data health: {banner} (see the Data page)", icon=":material/warning:")
