"""The embedded receivables store: one DuckDB file, versioned DDL, short write transactions.

One process holds one ``Store`` (one shared DuckDB connection). Each Streamlit session or
thread takes its own cursor with :meth:`Store.cursor`; every write goes through
:meth:`Store.transaction`, which commits whole or rolls back whole.

DuckDB 2.0 note: always finish a result (``fetchall()``) before the next statement on the
same cursor; use :meth:`Store.query` for frames and :meth:`Store.scalar` for one value.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from dashboard.config import resolve_db_path
from dashboard.errors import SchemaTooNewError, StoreError, StoreLockedError
from dashboard.schema import DATA_TABLES, LEDGER_VERSION, LEDGER_VIEW_VERSION, MIGRATIONS, SCHEMA_VERSION

# The loads a store holds, as text: the newest load, how many, how many undone.
_LOADS_VERSION_SQL = """(SELECT coalesce(max(load_id), 0) FROM loads) || '-' || (SELECT count(*) FROM loads) || '-'
    || (SELECT count(*) FROM loads WHERE status <> 'loaded')"""

#: DuckDB's memory while a big file loads (read in chunks): past it, DuckDB works out of core.
BIG_LOAD_MEMORY = "512MB"


class Store:
    """An open Recoup store.

    Parameters
    ----------
    path
        The DuckDB file; ``None`` resolves ``$RECOUP_DB`` then ``data/recoup.duckdb``.
        ``":memory:"`` gives a throw-away store (tests).
    read_only
        Open without taking the write lock (reporting from a second process).
    """

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False) -> None:
        self.path = Path(path) if str(path) == ":memory:" else resolve_db_path(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        on_disk = str(self.path) != ":memory:"
        if on_disk:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # A store this process creates and cannot finish (full disk) is removed again: a stub
        # left behind would fail to open later with a message about bytes, not about the disk.
        creating = on_disk and not read_only and not self.path.exists()
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            if creating:
                _remove_store_files(self.path)
            if is_disk_full(exc):
                raise StoreError(disk_full_message(self.path, created=creating)) from exc
            if "lock" in str(exc).lower():
                msg = (
                    f"The store {str(self.path)!r} is in use by another Recoup process "
                    "(probably the running app). Stop it, or point this command at another "
                    "file with --db."
                )
                raise StoreLockedError(msg) from exc
            msg = f"Cannot open the store {str(self.path)!r}: {exc}"
            raise StoreError(msg) from exc
        except duckdb.Error as exc:
            if creating:
                _remove_store_files(self.path)
            msg = f"{str(self.path)!r} is not a Recoup store (DuckDB could not open it: {exc})"
            raise StoreError(msg) from exc
        try:
            self._migrate()
        except BaseException as exc:
            if creating:
                with contextlib.suppress(duckdb.Error):
                    self._con.close()
                _remove_store_files(self.path)
                if isinstance(exc, StoreError) and is_disk_full(exc):
                    raise StoreError(disk_full_message(self.path, created=True)) from exc
            raise

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor on the shared connection: one per session or thread."""
        return self._con.cursor()

    # -- schema ----------------------------------------------------------------------------
    def schema_version(self) -> int:
        cur = self.cursor()
        exists = cur.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchall()[0][0]
        if not exists:
            return 0
        return int(cur.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0])

    def _migrate(self) -> None:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            msg = (
                f"The store {str(self.path)!r} was written by a newer Recoup (schema version "
                f"{current}; this Recoup understands up to {SCHEMA_VERSION}). Upgrade Recoup "
                "to open it; the file was not changed."
            )
            raise SchemaTooNewError(msg)
        if current == SCHEMA_VERSION:
            return
        if self.read_only:
            msg = f"The store {str(self.path)!r} needs an upgrade and was opened read-only."
            raise StoreError(msg)
        with self.transaction() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied TIMESTAMP NOT NULL)"
            )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                cur.execute(MIGRATIONS[version - 1])
                cur.execute("INSERT INTO schema_version VALUES (?, ?)", [version, utcnow()])
                if version == LEDGER_VIEW_VERSION:
                    from dashboard.ledger import create_views  # the view reads the store's tables

                    create_views(cur)
            # a store created just now has no documents: its ledger is empty as created; an older
            # store gets it built, or rebuilt with the columns a later version added
            if 0 < current < LEDGER_VERSION <= SCHEMA_VERSION:
                from dashboard.ledger import refresh_ledger  # the ledger reads the store's tables

                refresh_ledger(cur)

    # -- reads -----------------------------------------------------------------------------
    def query(
        self,
        sql: str,
        params: Sequence[Any] | dict[str, Any] | None = None,
        *,
        frames: Mapping[str, pl.DataFrame] | None = None,
    ) -> pl.DataFrame:
        """Run a read query and return a Polars frame. ``frames``: Polars frames the query
        reads by name (registered on this query's cursor only), e.g. a result read once and
        shared by several queries."""
        cur = self.cursor()
        try:
            for name, frame in (frames or {}).items():
                cur.register(name, frame)
            return cur.sql(sql, params=params).pl() if params else cur.sql(sql).pl()
        finally:
            cur.close()

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """Run a query that returns one value."""
        cur = self.cursor()
        try:
            rows = cur.execute(sql, params or []).fetchall()
        finally:
            cur.close()
        return rows[0][0] if rows else None

    def table_counts(self) -> dict[str, int]:
        """Row count of every data table."""
        sql = " UNION ALL ".join(f"SELECT '{t}' AS t, count(*)::BIGINT AS n FROM {t}" for t in DATA_TABLES)
        cur = self.cursor()
        try:
            rows = cur.execute(sql).fetchall()
        finally:
            cur.close()
        return {t: int(n) for t, n in rows}

    def fingerprint(self) -> str:
        """A hash of every data table's full contents (tests: "the store is exactly as it was")."""
        digest = hashlib.sha256()
        cur = self.cursor()
        try:
            for table in DATA_TABLES:
                rows = cur.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
                digest.update(f"{table}:{len(rows)}:{rows!r}".encode())
        finally:
            cur.close()
        return digest.hexdigest()

    def loads_version(self) -> str:
        """Changes with every load or undo, and only then: the key of what is computed from the
        loaded data alone and kept in the store (scores, the forecast's backtest)."""
        return str(self.scalar(f"SELECT {_LOADS_VERSION_SQL}"))

    def data_version(self) -> str:
        """Changes with every load (or undo), policy save, score, action or pilot: the cache key for figures."""
        sql = f"""
            SELECT {_LOADS_VERSION_SQL} || '-'
                || (SELECT coalesce(max(policy_version), 0) FROM policy_versions) || '-'
                || (SELECT count(*) FROM scores) || '-'
                || (SELECT count(*) FROM actions) || '-'
                || (SELECT count(*) FROM customer_segments) || '-'
                || (SELECT count(*) FROM pilots) || '-'
                || (SELECT count(cancelled) FROM pilots)
        """
        return str(self.scalar(sql))

    @contextmanager
    def bounded_memory(self, *, big: bool, limit: str = BIG_LOAD_MEMORY) -> Iterator[None]:
        """While a big load runs, keep DuckDB's memory to ``limit`` (it spills to disk beyond
        it), then give back the setting it had. Does nothing for a small load."""
        if not big:
            yield
            return
        cur = self.cursor()
        try:
            before = cur.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
            cur.execute(f"SET memory_limit = '{limit}'").fetchall()
            try:
                yield
            finally:
                cur.execute(f"SET memory_limit = '{before}'").fetchall()
        finally:
            cur.close()

    # -- writes ----------------------------------------------------------------------------
    @property
    def write_lock(self) -> threading.RLock:
        """The one writer's lock (re-entrant): hold it around anything that must not interleave
        with another session's write, such as a load's journal and its transaction."""
        return self._lock

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short write transaction on its own cursor: commits whole or rolls back whole.

        A full disk (during the writes or at commit), or DuckDB running out of the memory it may
        use, rolls back and raises :class:`StoreError` saying so, instead of DuckDB's
        ``IOException`` / ``OutOfMemoryException`` / ``TransactionException``.
        """
        if self.read_only:
            msg = f"The store {str(self.path)!r} is open read-only; nothing can be written."
            raise StoreError(msg)
        cur = self.cursor()
        try:
            with self._lock:
                cur.execute("BEGIN TRANSACTION")
                try:
                    yield cur
                except BaseException as exc:
                    _rollback_quietly(cur)
                    if isinstance(exc, (duckdb.Error, StoreError)) and is_disk_full(exc):
                        raise StoreError(disk_full_message(self.path)) from exc
                    if isinstance(exc, duckdb.Error) and is_out_of_memory(exc):
                        raise StoreError(out_of_memory_message(self.path)) from exc
                    raise
                try:
                    cur.execute("COMMIT")
                except duckdb.Error as exc:
                    _rollback_quietly(cur)
                    if is_disk_full(exc):
                        raise StoreError(disk_full_message(self.path)) from exc
                    raise
        finally:
            cur.close()


# What the operating system says, through DuckDB, when a write does not fit.
_DISK_FULL_MARKERS = ("no space left on device", "disk quota exceeded", "file too large")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors it was raised from or while handling (a later statement on the
    aborted transaction can hide the first one)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` or an error in its chain says the disk is full."""
    return any(marker in str(e).lower() for e in _chain(exc) for marker in _DISK_FULL_MARKERS)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` or an error in its chain is DuckDB running out of the memory it may use."""
    return any(isinstance(e, duckdb.OutOfMemoryException) for e in _chain(exc))


def out_of_memory_message(path: Path) -> str:
    """A plain reason for a write that did not fit in the memory DuckDB may use."""
    return (
        f"Writing to the store {str(path)!r} needed more memory than it may use on this machine: the change "
        "was rolled back and the store is as it was. Load the file in smaller parts (for example a year at "
        "a time), or run it where more memory is free."
    )


def disk_full_message(path: Path, *, created: bool = False) -> str:
    """A plain reason for a write that did not fit on the disk."""
    where = f"{str(path.parent)!r}" if str(path) != ":memory:" else "memory"
    if created:
        return (
            f"The disk holding {where} is full, so the store {str(path)!r} could not be created; "
            "nothing was left behind. Free some space and try again."
        )
    return (
        f"The disk holding the store {str(path)!r} is full: the change was rolled back and the "
        "store is as it was. Free some space and try again."
    )


def _rollback_quietly(cur: duckdb.DuckDBPyConnection) -> None:
    # After a failed commit DuckDB has already rolled back; a second ROLLBACK then says
    # "no transaction is active", which must not hide the reason the write failed.
    with contextlib.suppress(duckdb.Error):
        cur.execute("ROLLBACK")


def _remove_store_files(path: Path) -> None:
    for stale in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def release(cur: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Unregister frames registered on ``cur`` for a statement. Never raises: after a failed
    statement the transaction is aborted and DuckDB refuses even this, which would hide the
    real error behind "Current transaction is aborted"."""
    for name in names:
        with suppress(duckdb.Error):
            cur.unregister(name)


def utcnow() -> datetime:
    """Now in UTC, as the naive timestamp DuckDB's TIMESTAMP stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def open_store(db: str | Path | None = None, *, read_only: bool = False) -> Store:
    """Open (creating and migrating if needed) the store at ``db`` or the default path."""
    return Store(db, read_only=read_only)
