"""The one UI-glue module: the only place in dashboard/ that imports Streamlit.

Pages call these to get the shared store, the as-of date and the filters (widgets own their
state: one initialiser, page-prefixed keys, a returned value), and to show errors and empty
states the same way everywhere. :func:`page_errors` wraps every page once (app.py): whatever a
page raises becomes a plain message on the page and a log line with the traceback, never a
traceback on screen. :func:`md` makes a value from the data literal text inside Markdown.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import polars as pl
import streamlit as st

from dashboard.access import COLLECTOR, Actor, local_actor
from dashboard.access import customer_scope as customer_scope_for
from dashboard.config import resolve_db_path
from dashboard.dates import latest_data_date
from dashboard.display import PeopleTable, TableColumn, table_for_people
from dashboard.errors import RecoupError
from dashboard.filters import FILTER_COLUMNS, Filters, filter_options
from dashboard.store import Store

LOG = logging.getLogger("recoup.pages")
if not LOG.handlers:  # Streamlit configures its own loggers only: give ours a line format on stderr
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    LOG.addHandler(_handler)
    LOG.propagate = False
# The characters that give inline Markdown a meaning: links and images ([]()!), emphasis and
# code (*_`~), HTML and entities (<>&), tables (|), math ($), Streamlit's :color[...] directives
# and :emoji: shortcodes (:), email autolinks (@), escapes (\\); at the start of a value, also
# the list, heading and quote markers.
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\](){}<>!|~$:@&])")
_MARKDOWN_LEADING = re.compile(r"^([-+#=>])|^(\d{1,9})\.(?=\s|$)")
# GitHub-flavoured Markdown turns URLs and email addresses in plain text into links *after*
# escapes are read, so an escaped "http://" still becomes a link: an invisible word joiner
# after the scheme, "www" or "@" stops that and leaves the text as it reads.
_AUTOLINK_STARTS = re.compile(r"(?i)\b(https?|ftp|mailto|xmpp|www)(?=\\?[:.])|(?<=\\@)")
WORD_JOINER = "\u2060"
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


#: Where app.py's sign-in gate keeps the session's :class:`~dashboard.access.Actor` (read again
#: from the store on every run).
ACTOR_KEY = "recoup_actor"


def current_actor() -> Actor:
    """The person this session acts as: pass it to every write (``actor=``), which checks it
    again against the store. Without sign-in, the local user (an admin)."""
    actor = st.session_state.get(ACTOR_KEY)
    return actor if isinstance(actor, Actor) else local_actor()


def can(permission: str) -> bool:
    """Whether this session's person may do ``permission`` (to hide a control; the write checks again)."""
    return current_actor().can(permission)


def customer_scope() -> tuple[str, ...] | None:
    """The customers this session may see: None (all), or a collector's assigned customers."""
    actor = current_actor()
    if actor.role != COLLECTOR:
        return None
    cur = get_store().cursor()
    try:
        return customer_scope_for(cur, actor)
    finally:
        cur.close()


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
    scope = customer_scope()
    options = _filter_options(data_version(), scope)
    chosen: dict[str, tuple[str, ...]] = {}
    with st.sidebar.expander("Filters", expanded=False):
        for column in FILTER_COLUMNS:
            values = st.multiselect(column.capitalize(), options.get(column, []), key=f"{page}_filter_{column}")
            chosen[column] = tuple(values)
    return Filters(**chosen, customer_ids=scope)


@_when_running(st.cache_data(show_spinner=False))
def _filter_options(version: str, scope: tuple[str, ...] | None) -> dict[str, list[str]]:
    return filter_options(get_store(), customer_ids=scope)


def md(value: object, *, keep_lines: bool = False) -> str:
    """``value`` (a name, a reason, an error message quoting a file) as literal text in Markdown.

    Every character with a Markdown meaning is backslash-escaped and URLs and email addresses get an
    invisible word joiner (see :data:`WORD_JOINER`), so a customer named
    ``Acme [pay here](http://evil.example/pay) ![t](http://evil.example/p.png)`` is shown as
    written: no link, no image fetched, no autolinked URL or email. Line breaks become spaces
    (or Markdown line breaks with ``keep_lines``), so a value cannot start a heading or a list.
    """
    lines = str(value).splitlines() if keep_lines else [str(value)]
    escaped = [
        _MARKDOWN_LEADING.sub(_escape_leading, _MARKDOWN_INLINE.sub(r"\\\1", " ".join(line.split()))) for line in lines
    ]
    return "  \n".join(_AUTOLINK_STARTS.sub(lambda m: (m.group(1) or "") + WORD_JOINER, line) for line in escaped)


def _escape_leading(match: re.Match[str]) -> str:
    return "\\" + match.group(1) if match.group(1) else match.group(2) + "\\."


def empty_state(message: str) -> None:
    st.info(md(message), icon=":material/inbox:")


def probability_note() -> None:
    st.caption(PROBABILITY_NOTE)


def show_failure(exc: BaseException, *, where: str) -> None:
    """A failure Recoup did not expect, as a plain message on the page and a log line with the
    traceback and a reference that ties the two together."""
    reference = uuid.uuid4().hex[:8]
    LOG.error("%s failed (reference %s)", where, reference, exc_info=exc)
    detail = " ".join(str(exc).split())
    detail = detail if len(detail) <= 200 else detail[:197] + "..."
    st.error(
        f"Something went wrong in {md(where)}: {md(type(exc).__name__)}{': ' + md(detail) if detail else ''}. "
        f"The rest of the app still works; the details are in the server log (reference {reference}).",
        icon=":material/error:",
    )


@contextmanager
def user_errors(where: str = "this part of the page") -> Iterator[None]:
    """Turn a failure inside the block into a message, not a traceback, and go on with the page.

    A Recoup error is shown as it is worded (it says what to fix); anything else as a plain
    message plus a log line (see :func:`show_failure`). ``st.stop()`` and ``st.rerun()`` pass
    through (they are not exceptions of the ``Exception`` kind).
    """
    try:
        yield
    except RecoupError as exc:
        st.error(md(exc, keep_lines=True), icon=":material/error:")
    except Exception as exc:  # the page boundary: whatever failed, the user gets a sentence
        show_failure(exc, where=where)


@contextmanager
def page_errors(title: str) -> Iterator[None]:
    """Wrap one page's whole run (app.py does, for every page): the page boundary."""
    with user_errors(f"the {title} page"):
        yield


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
        st.warning(f"Data health: {md(banner)} (see the Data page)", icon=":material/warning:")


_NUMBER_FORMATS = {
    "money": "%,.2f",
    "document_money": "%,.2f",
    "number": "%,.2f",
    "days": "%,.1f",
    "score": "%.3f",
    "count": "%,d",
    "share": "%.1f%%",
    "percent": "%.1f%%",
}


def _column_config(column: TableColumn) -> Any:
    kind, label, help_text = column.kind, column.label, column.help
    if kind in _NUMBER_FORMATS:
        return st.column_config.NumberColumn(label, help=help_text, format=_NUMBER_FORMATS[kind])
    if kind == "probability":
        return st.column_config.ProgressColumn(label, help=help_text, format="%.0f%%", min_value=0.0, max_value=100.0)
    if kind == "date":
        return st.column_config.DateColumn(label, help=help_text, format="D MMM YYYY")
    if kind == "datetime":
        return st.column_config.DatetimeColumn(label, help=help_text, format="D MMM YYYY, HH:mm")
    if kind == "flag":
        return st.column_config.CheckboxColumn(label, help=help_text)
    numeric_text = kind.startswith("text_") and kind[5:] in (*_NUMBER_FORMATS, "probability")
    return st.column_config.TextColumn(label, help=help_text, alignment="right" if numeric_text else None)


def table(
    frame: pl.DataFrame | PeopleTable,
    *,
    columns: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    kinds: Mapping[str, str] | None = None,
    helps: Mapping[str, str] | None = None,
    currency: str | None = None,
    **kwargs: Any,
) -> Any:
    """``st.dataframe`` of a frame as people read it (:func:`dashboard.display.table_for_people`):
    labelled columns (money naming its currency), values in words, dates as dates, "—" for
    nothing. Other keyword arguments go to ``st.dataframe`` (``hide_index`` defaults to True)."""
    people = (
        frame
        if isinstance(frame, PeopleTable)
        else table_for_people(frame, columns=columns, labels=labels, kinds=kinds, helps=helps, currency=currency)
    )
    kwargs.setdefault("hide_index", True)
    config = {column.name: _column_config(column) for column in people.columns}
    return st.dataframe(people.frame, column_config=config, **kwargs)


#: The widest screen (CSS px) on which the sidebar starts collapsed. Streamlit collapses it only
#: below 768 px, so at 800–1024 px it took 300 px of a narrow window and squeezed every card.
NARROW_SCREEN_PX = 1024
# A fixed script (no data in it): on a narrow window's first page of the session, fold the
# sidebar away once; the user can open it again and it stays as they leave it.
_NARROW_SCREEN_SCRIPT = f"""<script>
(function () {{
  var flag = "recoup-narrow-sidebar";
  if (window.innerWidth > {NARROW_SCREEN_PX} || window.sessionStorage.getItem(flag)) return;
  var tries = 0;
  var timer = setInterval(function () {{
    tries += 1;
    var sidebar = document.querySelector("[data-testid='stSidebar']");
    var button = document.querySelector("[data-testid='stSidebarCollapseButton'] button");
    if (sidebar && button && sidebar.getAttribute("data-collapsed") === "false") {{
      button.click();
      window.sessionStorage.setItem(flag, "collapsed");
      clearInterval(timer);
    }} else if (tries > 100) {{
      clearInterval(timer);
    }}
  }}, 100);
}})();
</script>"""


def narrow_screen_layout() -> None:
    """Start with the sidebar folded away on a window narrower than :data:`NARROW_SCREEN_PX`
    (called once by app.py, for every page)."""
    with st.sidebar:
        st.html(_NARROW_SCREEN_SCRIPT, unsafe_allow_javascript=True)
