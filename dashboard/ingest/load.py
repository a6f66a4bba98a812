"""Preview and load extracts: one file = one transaction, with lineage, or nothing at all.

A load writes the good rows into the target table (each with its ``load_id``), the rows a
finance person must fix into ``rejected_rows`` (reason + raw row), the ``loads`` row and the
``mapping_profiles`` upsert — all in one transaction. A refusal (an exception) writes nothing,
not even a ``loads`` row. The same file (same sha256) twice is a no-op that says so.

Invoices whose customer is unknown get a minimal customer (id + name) in the same
transaction; a later customers file completes those rows instead of contradicting them. A
file with open balances (an aging report, an open-invoice list) is also a dated snapshot:
its lines go to ``snapshots``, and invoices that left (or shrank) since the previous snapshot
get interval-censored payments (``payment_date_lower`` .. ``payment_date``).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from dashboard import audit
from dashboard.access import Actor, authorize, seed_assignments
from dashboard.config import SAMPLE_DATA_DIR
from dashboard.errors import (
    AsOfDateNeededError,
    NeedsConfirmationError,
    SampleDataMissingError,
    StoreError,
    UnknownColumnError,
    UnreadableFileError,
    ValidationError,
)
from dashboard.ingest import normalize as nz
from dashboard.ingest.grid import shown
from dashboard.ingest.guesses import GUESSES, check_guesses, describe_guess
from dashboard.ingest.headers import (
    ColumnMatch,
    detect_table,
    is_statement,
    match_headers,
    missing_required,
    required_columns,
    states_balances,
    target_columns,
)
from dashboard.ingest.journal import load_journal
from dashboard.ingest.read import EXTRA_VALUES, ROW_COLUMN, RawExtract, chunked, read_bytes, read_extract, streams
from dashboard.ingest.stage import EXCLUDED, PLACEHOLDER_CUSTOMER, SKIPPED, Spill, Stage
from dashboard.ingest.validate import (
    ENTITY,
    PROBLEM,
    STATUS_WORDS,
    PreparedRows,
    excluded_warning,
    file_content,
    prepare_rows,
    tally_warnings,
)
from dashboard.ledger import refresh_load
from dashboard.progress import Progress, no_progress
from dashboard.schema import CANONICAL_COLUMNS, LOAD_ORDER
from dashboard.store import Store, out_of_memory_message, release, utcnow

PREVIEW_ROWS = 20
#: A vendor format's own writes inside a load's transaction: (cursor, load_id) -> None.
ExtraWrites = Callable[[duckdb.DuckDBPyConnection, int], None]


@dataclass
class FilePreview:
    """What a file is and how its headers map, before anything is written."""

    file_name: str
    sha256: str
    source_format: str
    table: str
    table_scores: dict[str, float]
    matches: list[ColumnMatch]
    needs_confirmation: bool
    missing_required: list[str]
    sample: pl.DataFrame
    already_loaded: bool
    rows: int
    warnings: list[str] = field(default_factory=list)
    drift: object | None = None  # vendor exports: how the columns differ from the saved profile
    stated_as_of: date | None = None  # the date the file's title or footer gives
    states_balances: bool = False  # some row says what was open or paid, with no date of its own

    def mapping(self) -> dict[str, str]:
        """Source header -> canonical column, for every matched header (fuzzy ones included)."""
        return {m.source: m.target for m in self.matches if m.target}

    def stated_as_of_date(self) -> date | None:
        """The date the file says it describes (its title or footer); None when it says none."""
        return self.stated_as_of

    @property
    def needs_as_of_date(self) -> bool:
        """The file says what is open or paid but not on which date: the load must be told."""
        return self.states_balances and self.stated_as_of_date() is None


@dataclass
class LoadResult:
    """What one load did (or, for a duplicate, did not do)."""

    load_id: int | None
    file_name: str
    table: str
    status: str  # "loaded", "duplicate"
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rejected: pl.DataFrame  # row_number, reason, raw
    warnings: list[str] = field(default_factory=list)
    message: str = ""
    rows_skipped: int = 0  # already in the store with the same values
    snapshot_rows: int = 0  # open items recorded in `snapshots` (aging reports, open-invoice lists)
    inferred_payments: int = 0  # payments inferred from the previous snapshot (interval-censored)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (the CLI's --json)."""
        return {
            "load_id": self.load_id,
            "file_name": self.file_name,
            "table": self.table,
            "status": self.status,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "rows_skipped": self.rows_skipped,
            "snapshot_rows": self.snapshot_rows,
            "inferred_payments": self.inferred_payments,
            "warnings": self.warnings,
            "message": self.message,
            "rejected": self.rejected.head(100).to_dicts(),
        }


def _empty_rejected() -> pl.DataFrame:
    return pl.DataFrame(schema={"row_number": pl.Int64, "reason": pl.String, "raw": pl.String})


# -- mapping -------------------------------------------------------------------------------
def _headers(raw: RawExtract) -> list[str]:
    return [c for c in raw.frame.columns if c not in (ROW_COLUMN, EXTRA_VALUES)]


def _profile_id(table: str, headers: list[str]) -> str:
    digest = hashlib.sha256(json.dumps([table, headers]).encode()).hexdigest()[:16]
    return f"{table}-{digest}"


def _saved_date_layouts(store: Store | None, table: str, headers: list[str]) -> dict[str, str]:
    """The date layouts this source's earlier files showed (column -> layout)."""
    if store is None:
        return {}
    text = store.scalar("SELECT date_layouts FROM mapping_profiles WHERE profile_id = ?", [_profile_id(table, headers)])
    return json.loads(text) if text else {}


def _saved_mapping(store: Store | None, table: str, headers: list[str]) -> dict[str, str] | None:
    if store is None:
        return None
    text = store.scalar("SELECT mapping FROM mapping_profiles WHERE profile_id = ?", [_profile_id(table, headers)])
    return json.loads(text) if text else None


def _resolve(
    raw: RawExtract, *, store: Store | None, table: str | None, mapping: dict[str, str] | None
) -> tuple[str, dict[str, float], list[ColumnMatch]]:
    headers = _headers(raw)
    if table is not None and table not in CANONICAL_COLUMNS:
        msg = f"unknown table {table!r}; choose one of {', '.join(CANONICAL_COLUMNS)}"
        raise UnknownColumnError(msg)
    if mapping:
        bad = {h: t for h, t in mapping.items() if h not in headers}
        if bad:
            msg = f"{raw.file_name}: the mapping names header {next(iter(bad))!r}, which is not in the file; got headers {shown(headers)}"
            raise UnknownColumnError(msg)
    if table is None:
        detected, scores = detect_table(headers)
        if mapping:
            # The user's mapping says which table by the columns it names.
            named = {t for t in mapping.values() if t}
            fits = [t for t in CANONICAL_COLUMNS if named <= set(target_columns(t))]
            if fits and detected not in fits:
                detected = max(fits, key=lambda t: scores[t])
        table = detected
    else:
        scores = {table: 100.0}
    if mapping is None:
        # A mapping someone confirmed for these exact headers before is reused; only where it
        # differs from the automatic match does it count as the user's choice.
        saved = _saved_mapping(store, table, headers) or {}
        automatic = {m.source: m for m in match_headers(headers, table)}
        mapping = {
            h: t for h, t in saved.items()
            if h not in automatic or automatic[h].target != t or automatic[h].method == "fuzzy"
        }
    matches = match_headers(headers, table, mapping=mapping)
    known = set(target_columns(table))
    for m in matches:
        if m.target and m.target not in known:
            msg = f"{m.target!r} (mapped from {m.source!r}) is not a column of {table}; columns are {', '.join(CANONICAL_COLUMNS[table])}"
            raise UnknownColumnError(msg)
    matches = check_guesses(raw.frame, matches, table, notes=raw.warnings)
    return table, scores, matches


def _missing_message(file_name: str, table: str, missing: list[str], headers: list[str]) -> str:
    what = ", ".join(f"no {nz.label(c)} column" for c in missing)
    return (
        f"{file_name} cannot be loaded as {table}: {what}; got headers {shown(headers)}. "
        "Rename the column, or map it (--map \"Header=column\" on the command line)."
    )


def preview_file(
    source: Path | bytes,
    *,
    file_name: str | None = None,
    store: Store | None = None,
    table: str | None = None,
    max_bytes: int | None = None,
) -> FilePreview:
    """Read a file and show how it would load, writing nothing.

    Raises :class:`UnreadableFileError` for files that are not tables of rows (or bigger than
    ``max_bytes``, the browser-upload limit); an unmatched required column is reported in
    ``missing_required``, not raised, so a page can offer the mapping step.
    """
    data, name, whole = _probe(source, file_name=file_name, max_bytes=max_bytes)
    known = _known_format_preview(data, name, store=store, table=table, source=None if whole else source)
    if known is not None:
        return known
    raw = read_extract(data if whole else source, file_name=name)
    return _preview(raw, store=store, table=table, mapping=None)


def _probe(source: Path | bytes, *, file_name: str | None, max_bytes: int | None) -> tuple[bytes, str, bool]:
    """(bytes, display name, whether they are the whole file): the whole file, except a big
    CSV on disk, of which only the first lines are read (enough to tell a vendor layout)."""
    if streams(source, max_bytes=max_bytes):
        path = Path(source)  # type: ignore[arg-type]
        with open(path, "rb") as handle:
            return handle.read(64 * 1024), file_name or path.name, False
    data, name = read_bytes(source, file_name=file_name, max_bytes=max_bytes)
    return data, name, True


def _preview(raw: RawExtract, *, store: Store | None, table: str | None, mapping: dict[str, str] | None) -> FilePreview:
    table, scores, matches = _resolve(raw, store=store, table=table, mapping=mapping)
    required = set(required_columns(table))
    needs_confirmation = any(m.method in GUESSES and m.target in required for m in matches)
    already = False
    if store is not None:
        already = bool(store.scalar("SELECT count(*) FROM loads WHERE sha256 = ? AND status = 'loaded'", [raw.sha256]))
    source_format = raw.source_format
    if source_format == "csv" and all(m.method == "exact" for m in matches):
        source_format = "canonical-csv"
    return FilePreview(
        file_name=raw.file_name,
        sha256=raw.sha256,
        source_format=source_format,
        table=table,
        table_scores=scores,
        matches=matches,
        needs_confirmation=needs_confirmation,
        missing_required=missing_required(table, matches),
        sample=raw.frame.drop(ROW_COLUMN, EXTRA_VALUES, strict=False).head(PREVIEW_ROWS),
        already_loaded=already,
        rows=raw.frame.height,
        warnings=list(raw.warnings),
        stated_as_of=raw.stated_as_of,
        states_balances=table == "invoices" and _says_what_is_open(raw.frame, matches),
    )


def _says_what_is_open(frame: pl.DataFrame, matches: list[ColumnMatch]) -> bool:
    """Before parsing: does some row state a balance that only the file's date can place?
    (an open balance; an amount paid or a paid status without a paid date)."""
    source = {m.target: m.source for m in matches if m.target}
    if not states_balances(set(source)):
        return False

    def filled(target: str) -> pl.Expr:
        if target not in source:
            return pl.lit(False)
        value = pl.col(source[target]).cast(pl.String).str.strip_chars()
        return value.is_not_null() & (value != "")

    undated = ~filled("paid_date")
    paid_words = [w for w in STATUS_WORDS["paid"]]
    status_paid = (
        pl.col(source["status"]).cast(pl.String).str.to_lowercase().str.strip_chars().is_in(paid_words)
        if "status" in source else pl.lit(False)
    )
    says = filled("open_amount") | (undated & filled("amount_paid")) | (undated & status_paid.fill_null(False))
    return bool(frame.select(says.any()).item())


def _known_format_preview(
    data: bytes, name: str, *, store: Store | None, table: str | None, source: Path | bytes | None = None
) -> FilePreview | None:
    """The preview of a vendor export (dashboard.ingest.formats); None for other files.
    ``data`` may be only the file's first lines (``source`` then gives the whole file)."""
    if table not in (None, "invoices"):
        return None
    from dashboard.ingest.formats.detect import detect_format, parse_known_format
    from dashboard.ingest.formats.loading import preview_parsed

    if source is not None:
        if detect_format(data, name) is None:
            return None
        data = read_bytes(source, file_name=name)[0]
    parsed = parse_known_format(data, name)
    if parsed is None:
        return None
    return preview_parsed(parsed, file_name=name, sha256=hashlib.sha256(data).hexdigest(), store=store)


# -- loading -------------------------------------------------------------------------------
def load_file(
    store: Store,
    source: Path | bytes,
    *,
    file_name: str | None = None,
    table: str | None = None,
    mapping: dict[str, str] | None = None,
    as_of_date: date | None = None,
    accept_fuzzy: bool = False,
    max_reject_share: float = 0.2,
    progress: Progress | None = None,
    who: str | None = None,
    accept_drift: bool = False,
    max_bytes: int | None = None,
    actor: Actor | None = None,
) -> LoadResult:
    """Read, map, validate and load one extract in one transaction.

    Parameters
    ----------
    mapping
        Source header -> canonical column (``""`` ignores a header); overrides matching.
    accept_fuzzy
        Use fuzzy header matches without asking (otherwise a fuzzily matched required column
        refuses the file with :class:`NeedsConfirmationError`).
    max_reject_share
        Refuse the whole file when more than this share of its rows has problems.
    accept_drift
        Load a vendor export whose columns differ from the profile saved for its source
        (otherwise :class:`HeaderDriftError` shows the drift and nothing is written).
    max_bytes
        Refuse a bigger file unread (browser uploads); None (the command line) has no limit.

    Returns a :class:`LoadResult`; status ``"duplicate"`` (nothing written) when the same
    file was loaded before. Raises an :class:`IngestError` subclass, writing nothing, when
    the file is refused.
    """
    progress = progress or no_progress
    progress(0.0, "reading")
    data, name, whole = _probe(source, file_name=file_name, max_bytes=max_bytes)
    if table in (None, "invoices"):
        # Vendor exports (QuickBooks, Xero, SAP, Stripe ...: dashboard.ingest.formats).
        from dashboard.ingest.formats.detect import detect_format, parse_known_format
        from dashboard.ingest.formats.loading import load_parsed

        if not whole and detect_format(data, name) is not None:
            data, whole = read_bytes(source, file_name=name)[0], True
        parsed = parse_known_format(data, name) if whole else None
        if parsed is not None:
            return load_parsed(
                store, parsed, file_name=name, sha256=hashlib.sha256(data).hexdigest(), as_of_date=as_of_date,
                mapping=mapping, accept_fuzzy=accept_fuzzy, accept_drift=accept_drift, max_reject_share=max_reject_share,
                progress=progress, who=who, actor=actor,
            )
    raw = read_extract(data if whole else source, file_name=name)
    return _load_raw(
        store, raw, table=table, mapping=mapping, as_of_date=as_of_date, accept_fuzzy=accept_fuzzy,
        max_reject_share=max_reject_share, progress=progress, who=who, actor=actor,
    )


def load_frame(
    store: Store,
    frame: pl.DataFrame,
    *,
    table: str,
    file_name: str,
    mapping: dict[str, str] | None = None,
    as_of_date: date | None = None,
    accept_fuzzy: bool = False,
    max_reject_share: float = 0.2,
    progress: Progress | None = None,
    who: str | None = None,
    actor: Actor | None = None,
) -> LoadResult:
    """Validate and load an in-memory frame (canonical columns; text or already typed).

    The same checks and the same one-transaction load as :func:`load_file`; the frame's
    content hash stands in for the file's sha256.
    """
    progress = progress or no_progress
    if frame.height == 0:
        msg = f"{file_name} has no rows"
        raise UnreadableFileError(msg)
    sha256 = hashlib.sha256(frame.write_csv().encode()).hexdigest()
    data = frame.with_row_index(ROW_COLUMN, offset=1).with_columns(pl.col(ROW_COLUMN).cast(pl.Int64))
    raw = chunked(RawExtract(file_name, sha256, "frame", data))
    return _load_raw(
        store, raw, table=table, mapping=mapping, as_of_date=as_of_date, accept_fuzzy=accept_fuzzy,
        max_reject_share=max_reject_share, progress=progress, who=who, actor=actor,
    )


def _duplicate_result(store: Store, raw: RawExtract, table: str) -> LoadResult | None:
    cur = store.cursor()
    try:
        rows = cur.execute(
            "SELECT load_id, started FROM loads WHERE sha256 = ? AND status = 'loaded' ORDER BY load_id LIMIT 1",
            [raw.sha256],
        ).fetchall()
    finally:
        cur.close()
    if not rows:
        return None
    load_id, started = rows[0]
    message = f"{raw.file_name} was already loaded on {started:%Y-%m-%d} (load #{load_id}); nothing changed."
    return LoadResult(None, raw.file_name, table, "duplicate", raw.frame.height, 0, 0, _empty_rejected(), [], message)


def _refusing_out_of_memory(load: Callable[..., LoadResult]) -> Callable[..., LoadResult]:
    """DuckDB running out of the memory it may use, before or during the writes of a load, is
    refused in plain words (the store is as it was); inside the writes the store's transaction
    already says so."""

    @functools.wraps(load)
    def refusing(store: Store, *args: Any, **kwargs: Any) -> LoadResult:
        try:
            return load(store, *args, **kwargs)
        except duckdb.OutOfMemoryException as exc:
            raise StoreError(out_of_memory_message(store.path)) from exc

    return refusing


@_refusing_out_of_memory
def _load_raw(
    store: Store,
    raw: RawExtract,
    *,
    table: str | None,
    mapping: dict[str, str] | None,
    as_of_date: date | None,
    accept_fuzzy: bool,
    max_reject_share: float,
    progress: Progress,
    who: str | None,
    extra_writes: ExtraWrites | None = None,
    actor: Actor | None = None,
) -> LoadResult:
    """The canonical load of a read extract. ``extra_writes(cur, load_id)`` (vendor formats:
    their column profile, the payments they date) runs inside the same transaction, after the
    rows and before the ledger is brought up to date."""
    started = utcnow()
    table_given = table
    preview = _preview(raw, store=store, table=table, mapping=mapping)
    table = preview.table
    duplicate = _duplicate_result(store, raw, table)
    if duplicate is not None:
        progress(1.0, "writing")
        return duplicate

    headers = _headers(raw)
    warnings: list[str] = []
    matches = list(preview.matches)
    if preview.missing_required:
        if table_given is None and max(preview.table_scores.values()) == 0:
            msg = (
                f"{raw.file_name}: none of its headers looks like a Recoup column, so it is not clear what the file "
                f"holds (invoices, payments, customers ...); got headers {shown(headers)}. Rename the headers, or map them "
                "(--map \"Header=column\" and --table on the command line)."
            )
            raise UnknownColumnError(msg)
        raise UnknownColumnError(_missing_message(raw.file_name, table, preview.missing_required, headers))
    fuzzy = [m for m in matches if m.method in GUESSES]
    if fuzzy and not accept_fuzzy:
        required = set(required_columns(table))
        guessed_required = [m for m in fuzzy if m.target in required]
        if guessed_required:
            guesses = "; ".join(describe_guess(m) for m in guessed_required)
            maps = " ".join(f'--map "{m.source}={m.target}"' for m in guessed_required)
            msg = f"{raw.file_name}: please confirm the column mapping: {guesses}. Confirm it with {maps} or --accept-fuzzy."
            raise NeedsConfirmationError(msg)
        for m in fuzzy:
            warnings.append(f"column {describe_guess(m)} but was not used; confirm the mapping to load it")
        matches = [ColumnMatch(m.source, None, "unmatched", 0.0) if m.method in GUESSES else m for m in matches]
    unmatched = [m.source for m in matches if m.target is None]
    if unmatched:
        warnings.append(f"{len(unmatched)} column{'s' if len(unmatched) != 1 else ''} not loaded: {', '.join(unmatched[:8])}{' ...' if len(unmatched) > 8 else ''}")

    warnings += raw.warnings
    if as_of_date is None and raw.stated_as_of is not None:
        as_of_date = raw.stated_as_of
        if is_statement(matches):
            warnings.append(f"balances taken as of {raw.stated_as_of}, the date the file's {raw.stated_as_of_source} gives")
    progress(0.2, "validating")
    first = prepare_rows(
        raw.frame, table=table, matches=matches, source_format=raw.source_format, delimiter=raw.delimiter,
        remembered_dates=_saved_date_layouts(store, table, headers),
    )
    mapping_used = {m.source: m.target for m in matches if m.target}
    spill = Spill.beside(store.path, source_bytes=raw.streamed_bytes)
    try:
        with load_journal(store, file_name=raw.file_name, sha256=raw.sha256):
            # typed chunk by chunk before the transaction: the write lock is held for SQL only
            spill.add(first, raw.frame)
            notes, tallies = list(first.warnings), dict(first.tallies)
            for chunk in raw.chunks():
                progress(0.3, f"validating ({spill.rows_read:,} rows read)")
                prepared = prepare_rows(
                    chunk, table=table, matches=matches, source_format=raw.source_format, delimiter=raw.delimiter,
                    decided=first,
                )
                notes += [w for w in prepared.warnings if w not in notes]
                for key, n in prepared.tallies.items():
                    tallies[key] = tallies.get(key, 0) + n
                spill.add(prepared, chunk)
            spill.finish()  # the last part on disk and the ids compared, before the write lock is taken
            warnings += notes + tally_warnings(tallies)
            with store.bounded_memory(big=raw.rest is not None), store.transaction() as cur:
                result = _write_load(
                    cur, raw, first, spill, table=table, preview=preview, headers=headers, mapping_used=mapping_used,
                    as_of_date=as_of_date, max_reject_share=max_reject_share, progress=progress, who=who,
                    started=started, warnings=warnings, extra_writes=extra_writes, actor=actor,
                )
    except _AlreadyLoaded:
        # Another session loaded the same file while this one was validating: nothing was written.
        result = _duplicate_result(store, raw, table)
        if result is None:  # pragma: no cover - the row was there a moment ago
            raise
    finally:
        spill.remove()
    if result.status == "loaded" and table in ("invoices", "payments", "adjustments", "fx_rates"):
        progress(0.95, "checking the figures")
        with store.bounded_memory(big=raw.rest is not None):
            result.warnings += _implausible_after_load(store)
    progress(1.0, "writing")
    return result


def _implausible_after_load(store: Store) -> list[str]:
    """Figures that cannot be right now, said in the load's message (the pages say it too)."""
    from dashboard.dates import latest_data_date
    from dashboard.health import implausible_figures

    latest = latest_data_date(store)
    return implausible_figures(store, latest) if latest is not None else []


class _AlreadyLoaded(Exception):
    """Raised inside the load transaction to roll it back when the file turned out loaded."""


def _write_load(
    cur: duckdb.DuckDBPyConnection,
    raw: RawExtract,
    first: PreparedRows,
    spill: Spill,
    *,
    table: str,
    preview: FilePreview,
    headers: list[str],
    mapping_used: dict[str, str | None],
    as_of_date: date | None,
    max_reject_share: float,
    progress: Progress,
    who: str | None,
    started: datetime,
    warnings: list[str],
    extra_writes: ExtraWrites | None = None,
    actor: Actor | None = None,
) -> LoadResult:
    """Everything a load writes, on the load transaction's cursor: the file staged chunk by
    chunk and checked as a whole, its rows, set-aside rows, paid dates and stated balances, the
    ``loads`` row, the mapping profile, then the ledger of what it touched, and its audit row."""
    actor = authorize(cur, actor, "load")
    who = who or (actor.label if not actor.is_local else None)
    if cur.execute("SELECT count(*) FROM loads WHERE sha256 = ? AND status = 'loaded'", [raw.sha256]).fetchall()[0][0]:
        raise _AlreadyLoaded
    progress(0.5, "checking the file as a whole")
    stage = Stage.from_spill(cur, spill, table=table, compared=list(first.compared_columns))
    date_layouts = dict(first.date_layouts)
    content = file_content(first)
    if stage.repeated_ids():
        if table == "invoices":
            stage.qualify_shared_numbers(warnings)
            stage.drop_zero_copies()
        stage.drop_exact_repeats(content, warnings)
        stage.refuse_contradictions(raw.file_name, content)
    warnings += excluded_warning(stage.excluded())
    if table == "invoices":
        stage.match_store_numbers(warnings)
    if table == "invoices" and as_of_date is None and stage.scalar(f"SELECT count(*) FROM {_stated_sql(stage)}"):
        msg = (
            f"{raw.file_name} says what is open or paid but does not say on which date; load it with "
            "--as-of YYYY-MM-DD (or pick the date on the Data page). Nothing was written."
        )
        raise AsOfDateNeededError(msg)

    # against the store
    bad, skipped = stage.store_clashes()
    parts = [bad]
    if table in ("payments", "adjustments"):
        parts.append(stage.orphans())
    if table == "payments" and {"amount", "payment_date"} <= set(stage.columns):
        parts.append(stage.payments_to_look_at(SNAPSHOT_METHOD))
    stage.set_aside(pl.concat(parts))
    stage.mark_skipped(skipped)
    rejected = stage.problems()
    rows_read = stage.rows_read
    if rows_read and rejected.height / rows_read > max_reject_share:
        raise ValidationError(_too_many_message(raw.file_name, table, rejected, rows_read, max_reject_share))
    load_id = int(cur.execute("SELECT coalesce(max(load_id), 0) + 1 FROM loads").fetchall()[0][0])
    progress(0.7, "writing")
    inserted = _insert_rows(cur, stage, first, load_id)
    if rejected.height:
        cur.register("recoup_rejected", rejected)
        try:
            cur.execute(
                "INSERT INTO rejected_rows SELECT ?, row_number, raw, reason FROM recoup_rejected", [load_id]
            ).fetchall()
        finally:
            release(cur, "recoup_rejected")
    excluded = stage.count(EXCLUDED)
    message = _loaded_message(raw.file_name, table, inserted, rejected.height, stage.count(SKIPPED), excluded)
    snapshot_rows = inferred = 0
    if table == "invoices":
        paid = _record_paid_dates(cur, stage, load_id=load_id)
        if paid:
            message = message[:-1] + f"; {paid:,} payment{'s' if paid != 1 else ''} dated by the file's paid dates."
    if table == "invoices" and as_of_date is not None and stage.scalar(f"SELECT count(*) FROM {_stated_sql(stage)}"):
        lists_open_items = not stage.scalar(f"SELECT count(*) FROM {_stated_sql(stage)} WHERE open_amount = 0")
        snapshot_rows, inferred, since = _record_snapshot(
            cur, stage, load_id=load_id, as_of_date=as_of_date, source_format=preview.source_format,
            infer_missing=lists_open_items,
        )
        what = "open items" if lists_open_items else "stated balances"
        message = message[:-1] + f"; {snapshot_rows:,} {what} as of {as_of_date}"
        if since is not None:
            message += f"; {inferred:,} payment{'s' if inferred != 1 else ''} inferred between {since} and {as_of_date}"
        elif inferred < 0:
            warnings.append("an equal or later snapshot from this source is already loaded: no payments were inferred from this one")
        elif not lists_open_items:
            message += "; invoices missing from it are not taken as paid (it lists paid invoices too: it covers a period, not every open item)"
        else:
            message += "; no payments inferred (no earlier list of open items from this source)"
        message += "."
        if lists_open_items and _other_sources_listed(cur, preview.source_format, as_of_date):
            warnings.append(
                "invoices on other sources' open-item lists are not in this file; they were not taken as paid "
                "(a file only speaks for its own source)"
            )
    cur.execute(
        """
        INSERT INTO loads (load_id, file_name, sha256, source_format, target_table, mapping, as_of_date,
                           rows_read, rows_loaded, rows_rejected, started, finished, status, message, who)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'loaded', ?, ?)
        """,
        [
            load_id, raw.file_name, raw.sha256, preview.source_format, table, json.dumps(mapping_used), as_of_date,
            rows_read, inserted, rejected.height, started, utcnow(), message, who,
        ],
    ).fetchall()
    now = utcnow()
    cur.execute(
        """
        INSERT INTO mapping_profiles (profile_id, source_format, target_table, headers, mapping, created, updated, date_layouts)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (profile_id) DO UPDATE SET mapping = excluded.mapping, updated = excluded.updated,
            date_layouts = coalesce(excluded.date_layouts, mapping_profiles.date_layouts)
        """,
        [
            _profile_id(table, headers), preview.source_format, table, json.dumps(headers), json.dumps(mapping_used), now, now,
            json.dumps(date_layouts) if date_layouts else None,
        ],
    ).fetchall()
    if extra_writes is not None:
        extra_writes(cur, load_id)
    if table == "customers":
        seed_assignments(cur)
    progress(0.9, "updating the ledger")
    refresh_load(cur, load_id)
    audit.record(cur, actor, "load", {
        "load_id": load_id, "file_name": raw.file_name, "sha256": raw.sha256, "table": table,
        "rows_read": rows_read, "rows_loaded": inserted, "rows_rejected": rejected.height, "as_of_date": as_of_date,
    })
    skipped_count = stage.count(SKIPPED)
    stage.drop()
    progress(0.93, "saving")
    return LoadResult(
        load_id, raw.file_name, table, "loaded", rows_read, inserted, rejected.height, rejected,
        warnings, message, skipped_count, snapshot_rows, max(inferred, 0),
    )


SNAPSHOT_METHOD = "inferred from aging snapshots"
PAID_DATE_METHOD = "paid date stated in the file"


def _stated_sql(stage: Stage) -> str:
    """What each kept staged row says was open on the file's date: its open balance, else its
    amount less what it says was paid, else 0 when its status is paid — as a relation
    (invoice_id, customer_id, open_amount). What a paid date already says (the payment it
    dates) needs no statement of its own; rows that say nothing are left out."""
    columns = set(stage.columns)
    undated = "paid_date IS NULL" if "paid_date" in columns else "TRUE"
    stated = ["open_amount"] if "open_amount" in columns else []
    if "amount_paid" in columns:
        stated.append(f"CASE WHEN {undated} THEN amount - amount_paid END")
    if "status" in columns:
        stated.append(f"CASE WHEN {undated} AND status = 'paid' THEN 0 END")
    if not stated:
        return "(SELECT NULL::VARCHAR AS invoice_id, NULL::VARCHAR AS customer_id, NULL::DECIMAL(18,2) AS open_amount LIMIT 0)"
    return (
        f"(SELECT * FROM (SELECT invoice_id, customer_id, coalesce({', '.join(stated)})::DECIMAL(18,2) AS open_amount "
        f"FROM {Stage.KEPT}) WHERE open_amount IS NOT NULL)"
    )


def _record_paid_dates(cur: duckdb.DuckDBPyConnection, stage: Stage, *, load_id: int) -> int:
    """A paid date on an invoice row is a payment on that date: of the amount paid when the
    file gives it, else of the amount less the open balance, else of the whole amount (unless
    the status says only part was paid). One such payment per invoice: a later file that
    repeats the invoice adds nothing. Returns the payments written."""
    columns = set(stage.columns)
    if "paid_date" not in columns:
        return 0
    candidates = ["amount_paid"] if "amount_paid" in columns else []
    if "open_amount" in columns:
        candidates.append("amount - open_amount")
    candidates.append("CASE WHEN status IS NULL OR status = 'paid' THEN amount END" if "status" in columns else "amount")
    before = cur.execute("SELECT count(*) FROM payments").fetchall()[0][0]
    cur.execute(
        f"""
        INSERT INTO payments (payment_id, customer_id, invoice_id, payment_date, amount, currency, method, load_id)
        SELECT r.invoice_id || ' paid ' || strftime(r.paid_date, '%Y-%m-%d'), r.customer_id, r.invoice_id,
               r.paid_date, r.paid, r.currency, '{PAID_DATE_METHOD}', $load_id
        FROM (
            SELECT invoice_id, customer_id, currency, paid_date, coalesce({", ".join(candidates)})::DECIMAL(18,2) AS paid
            FROM {Stage.KEPT} WHERE paid_date IS NOT NULL AND doc_type = 'invoice'
        ) r
        WHERE r.paid > 0
          AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.invoice_id = r.invoice_id AND p.method = '{PAID_DATE_METHOD}')
        """,
        {"load_id": load_id},
    ).fetchall()
    return int(cur.execute("SELECT count(*) FROM payments").fetchall()[0][0] - before)


def _other_sources_listed(cur: duckdb.DuckDBPyConnection, source_format: str, as_of_date: date) -> bool:
    """An earlier open-item list from another source exists (its invoices are not this file's business)."""
    return bool(
        cur.execute(
            "SELECT count(*) FROM snapshots s JOIN loads l ON l.load_id = s.load_id "
            "WHERE l.source_format <> ? AND s.as_of_date < ? AND l.status = 'loaded'",
            [source_format, as_of_date],
        ).fetchall()[0][0]
    )


def _record_snapshot(
    cur: duckdb.DuckDBPyConnection,
    stage: Stage,
    *,
    load_id: int,
    as_of_date: date,
    source_format: str,
    infer_missing: bool = True,
) -> tuple[int, int, date | None]:
    """Store the stated balances as a dated snapshot (the ledger takes them as the truth for
    that date) and, for a list of open items, infer the payments since the last one.

    An invoice open in the previous snapshot that is gone from this one (or is open for less)
    was paid between the two dates: a payment row with ``payment_date`` = this date (the
    latest it can have been) and ``payment_date_lower`` = the previous date (interval-censored).
    Inferred only when this snapshot is the newest and ``infer_missing`` (the file lists every
    open item, as an aging report does; an invoice list that also shows paid invoices covers
    some period only, so an invoice missing from it says nothing). Returns (lines stored,
    payments inferred or -1 when a later snapshot exists, previous date or None).
    """
    cur.execute(
        "INSERT INTO snapshots (load_id, as_of_date, invoice_id, customer_id, open_amount) "
        f"SELECT ?, ?, invoice_id, customer_id, open_amount FROM {_stated_sql(stage)}",
        [load_id, as_of_date],
    ).fetchall()
    stated = int(cur.execute("SELECT count(*) FROM snapshots WHERE load_id = ?", [load_id]).fetchall()[0][0])
    if not infer_missing:
        return stated, 0, None
    # Compared with this source's own previous list: another system's invoices are simply not in it.
    own = (
        "SELECT s.load_id, s.as_of_date FROM snapshots s JOIN loads l ON l.load_id = s.load_id "
        "WHERE l.source_format = $format AND l.status = 'loaded' AND s.load_id <> $load_id"
    )
    params = {"format": source_format, "load_id": load_id, "as_of": as_of_date}
    later = cur.execute(f"SELECT count(*) FROM ({own}) WHERE as_of_date >= $as_of", params).fetchall()[0][0]
    if later:
        return stated, -1, None
    previous = cur.execute(
        f"SELECT as_of_date, max(load_id) FROM ({own}) WHERE as_of_date < $as_of GROUP BY 1 ORDER BY 1 DESC LIMIT 1", params
    ).fetchall()
    if not previous:
        return stated, 0, None
    since, previous_load = previous[0]
    cur.execute(
        f"""
        INSERT INTO payments (payment_id, customer_id, invoice_id, payment_date, payment_date_lower, amount, method, load_id)
        SELECT 'SNAP-' || $load_id || '-' || p.invoice_id, i.customer_id, p.invoice_id, $as_of, $since,
               p.open_amount - coalesce(n.open_amount, 0), '{SNAPSHOT_METHOD}', $load_id
        FROM snapshots p
        JOIN invoices i ON i.invoice_id = p.invoice_id AND i.doc_type = 'invoice'
        LEFT JOIN snapshots n ON n.invoice_id = p.invoice_id AND n.load_id = $load_id
        WHERE p.load_id = $previous AND p.open_amount > 0 AND coalesce(n.open_amount, 0) < p.open_amount
          -- the file dates this invoice's payment itself: nothing to infer
          AND p.invoice_id NOT IN (SELECT invoice_id FROM payments WHERE load_id = $load_id AND method = '{PAID_DATE_METHOD}')
        """,
        {"load_id": load_id, "as_of": as_of_date, "since": since, "previous": previous_load},
    ).fetchall()
    inferred = cur.execute("SELECT count(*) FROM payments WHERE load_id = ? AND method = ?", [load_id, SNAPSHOT_METHOD]).fetchall()[0][0]
    return stated, int(inferred), since


def _loaded_message(file_name: str, table: str, loaded: int, rejected: int, skipped: int, excluded: int = 0) -> str:
    noun = ENTITY[table] if loaded == 1 else f"{ENTITY[table]}s"
    text = f"Loaded {loaded:,} {noun} from {file_name}"
    if skipped:
        text += f"; {skipped:,} {'were' if skipped != 1 else 'was'} already in the store"
    if excluded:
        text += f"; {excluded:,} draft or void document{'s' if excluded != 1 else ''} left out (not receivables)"
    if rejected:
        text += f"; {rejected:,} row{'s need' if rejected != 1 else ' needs'} fixing"
    return text + "."


def _too_many_message(file_name: str, table: str, rejected: pl.DataFrame, rows_read: int, max_share: float) -> str:
    """The refusal of a file with too many rows to fix (``rejected``: row_number, reason "row N: ...")."""
    bad = rejected.select(
        pl.col("row_number").alias(ROW_COLUMN), pl.col("reason").str.replace(r"^row \d+: ", "").alias(PROBLEM)
    )
    kinds = (
        bad.with_columns(
            # one kind per wording: quoted values, dates, amounts and ids left out
            pl.col(PROBLEM).str.split("; ").list.first()
            .str.replace_all(r"'[^']*'", "'…'")
            .str.replace_all(r"\d{4}-\d{2}-\d{2}", "…")
            .str.replace_all(r"-?\d[\d,]*(\.\d+)?", "…")
            .alias("kind")
        )
        .group_by("kind")
        .agg(pl.len().alias("n"), pl.col(ROW_COLUMN).min().alias("first_row"), pl.col(PROBLEM).first().alias("example"))
        .sort(["n", "first_row"], descending=[True, False])
        .head(3)
    )
    parts = [f"{n:,} × {example.split('; ')[0]} (first at row {first})" for _kind, n, first, example in kinds.iter_rows()]
    return (
        f"{file_name} was not loaded: {bad.height:,} of {rows_read:,} rows ({bad.height / rows_read:.0%}) have problems, "
        f"more than the {max_share:.0%} allowed. Most common: {'; '.join(parts)}. Nothing was written."
    )


def _insert_rows(cur: duckdb.DuckDBPyConnection, stage: Stage, prepared: PreparedRows, load_id: int) -> int:
    """Insert the staged rows that passed (not set aside, not already in the store); returns how many."""
    table = prepared.table
    columns = prepared.store_columns
    rows = stage.inserted()
    count = int(cur.execute(f"SELECT count(*) FROM {rows}").fetchall()[0][0])
    if count == 0:
        return 0
    if table == "invoices":
        name = "coalesce(first(customer_name), customer_id)" if prepared.has_customer_name else "customer_id"
        cur.execute(
            f"""
            INSERT INTO customers (customer_id, name, load_id)
            SELECT customer_id, {name}, ? FROM {rows}
            WHERE customer_id NOT IN (SELECT customer_id FROM customers)
            GROUP BY customer_id
            """,
            [load_id],
        ).fetchall()
    select = ", ".join(f"r.{c}" for c in columns)
    join = ""
    if table == "customers":
        assignments = ", ".join(f"{c} = r.{c}" for c in columns if c != "customer_id")
        cur.execute(
            f"""
            UPDATE customers AS t SET {assignments}, load_id = ? FROM {rows} r
            WHERE t.customer_id = r.customer_id AND {PLACEHOLDER_CUSTOMER}
            """,
            [load_id],
        ).fetchall()
        join = "WHERE r.customer_id NOT IN (SELECT customer_id FROM customers)"
    if "customer_id" in columns and "invoice_id" in columns and table != "invoices":
        # An applied payment (or note, dispute...) without a customer takes its invoice's customer.
        select = select.replace("r.customer_id", "coalesce(r.customer_id, i.customer_id)")
        join = "LEFT JOIN invoices i ON i.invoice_id = r.invoice_id"
    cur.execute(
        f"INSERT INTO {table} ({', '.join(columns)}, load_id) SELECT {select}, ? FROM {rows} r {join}", [load_id]
    ).fetchall()
    return count


# -- several files -------------------------------------------------------------------------
def load_world(store: Store, frames: dict[str, pl.DataFrame], *, name: str = "world") -> list[LoadResult]:
    """Load a generated world (table -> canonical frame) in ``LOAD_ORDER``, one transaction per table."""
    unknown = [t for t in frames if t not in LOAD_ORDER]
    if unknown:
        msg = f"cannot load {unknown[0]!r}: tables that can be loaded are {', '.join(LOAD_ORDER)}"
        raise UnknownColumnError(msg)
    return [
        load_frame(store, frames[table], table=table, file_name=f"{name}/{table}")
        for table in LOAD_ORDER
        if table in frames and frames[table].height
    ]


def seed_store(store: Store, sample_dir: Path = SAMPLE_DATA_DIR) -> list[LoadResult]:
    """First run: load ``sample_dir/<table>.csv`` in ``LOAD_ORDER`` when the store has no invoices.

    Returns the load results (empty when the store already had invoices).
    """
    if int(store.scalar("SELECT count(*) FROM invoices")):
        return []
    sample_dir = Path(sample_dir)
    files = [sample_dir / f"{table}.csv" for table in LOAD_ORDER if (sample_dir / f"{table}.csv").is_file()]
    if not any(p.name == "invoices.csv" for p in files):
        msg = f"no sample data to seed from: {str(sample_dir / 'invoices.csv')!r} does not exist"
        raise SampleDataMissingError(msg)
    return [load_file(store, path, table=path.stem, who="seed") for path in files]
