"""Loading a parsed vendor export through the canonical pipeline, with the checks reports need.

Before anything is written: the columns are compared with the saved profile of that source
(header drift stops the load unless accepted), the data lines must add up to the report's
TOTAL, and base-currency amounts are worked out from loaded exchange rates. The load itself
is :func:`dashboard.ingest.load._load_raw` — the same validation, the same one transaction,
the same ``loads`` row and rejected rows — with one addition inside that transaction
(:func:`_write_extras`): the source's column profile and the payments the source dates itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import duckdb
import polars as pl
from rapidfuzz import fuzz

from dashboard.access import Actor
from dashboard.config import base_currency
from dashboard.errors import HeaderDriftError, ValidationError
from dashboard.ingest.formats.base import ParsedReport, normalize_header
from dashboard.ingest.load import FilePreview, LoadResult, _load_raw, _preview
from dashboard.ingest.read import RawExtract
from dashboard.progress import Progress, no_progress
from dashboard.store import Store, utcnow

PROFILE_PREFIX = "format:"


# -- header drift --------------------------------------------------------------------------
@dataclass
class HeaderDrift:
    """How a file's columns differ from the profile saved for its source."""

    source_format: str
    saved_on: str
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (saved header, header in this file)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    @property
    def has_drift(self) -> bool:
        return bool(self.renamed or self.missing or self.added)

    def describe(self) -> str:
        """``renamed 'Num' -> 'No.'; missing 'Amount'; added 'Memo'``."""
        parts = [f"renamed {_shown(a)} -> {_shown(b)}" for a, b in self.renamed]
        parts += [f"missing {_shown(h)}" for h in self.missing]
        parts += [f"added {_shown(h)}" for h in self.added]
        return "; ".join(parts)


def _shown(header: str) -> str:
    return repr(header) if header else "(the unnamed first column)"


def compare_headers(saved: list[str], current: list[str], *, source_format: str, saved_on: str) -> HeaderDrift:
    """Renamed, missing and added columns between a saved profile and a file."""
    missing = [h for h in saved if h not in current]
    added = [h for h in current if h not in saved]
    renamed: list[tuple[str, str]] = []
    for old in list(missing):
        # Same place in the file, or a close spelling: a rename rather than a swap of columns.
        same_place = saved.index(old) < len(current) and current[saved.index(old)] in added
        candidate = current[saved.index(old)] if same_place else None
        if candidate is None and added:
            best = max(added, key=lambda h: fuzz.ratio(normalize_header(old), normalize_header(h)))
            if fuzz.ratio(normalize_header(old), normalize_header(best)) >= 70:
                candidate = best
        if candidate is not None:
            renamed.append((old, candidate))
            missing.remove(old)
            added.remove(candidate)
    return HeaderDrift(source_format, saved_on, renamed, missing, added)


def saved_profile(store: Store, source_format: str) -> tuple[list[str], str] | None:
    """The headers last loaded for ``source_format`` and when, or None."""
    cur = store.cursor()
    try:
        rows = cur.execute(
            "SELECT headers, strftime(updated, '%Y-%m-%d') FROM mapping_profiles WHERE profile_id = ?",
            [PROFILE_PREFIX + source_format],
        ).fetchall()
    finally:
        cur.close()
    if not rows:
        return None
    return json.loads(rows[0][0]), rows[0][1]


def check_drift(store: Store | None, parsed: ParsedReport) -> HeaderDrift | None:
    """The drift of this file's columns against the saved profile; None without a profile."""
    if store is None:
        return None
    saved = saved_profile(store, parsed.source_format)
    if saved is None:
        return None
    drift = compare_headers(saved[0], parsed.source_headers, source_format=parsed.source_format, saved_on=saved[1])
    return drift if drift.has_drift else None


def drift_message(file_name: str, parsed: ParsedReport, drift: HeaderDrift) -> str:
    return (
        f"{file_name} has different columns from the {parsed.label or parsed.source_format} loaded on {drift.saved_on}: "
        f"{drift.describe()}. Check the export settings in the source system, or load it anyway with --accept-drift "
        "(its columns then become the saved profile). Nothing was written."
    )


# -- currency ------------------------------------------------------------------------------
def apply_fx(store: Store | None, frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Fill ``amount_base`` from loaded exchange rates (the rate on or before the invoice date).

    Documents in the base currency are their own base amount. Without a rate, figures stay in
    their own currency and a warning says so.
    """
    if "currency" not in frame.columns or "amount_base" not in frame.columns or frame.height == 0:
        return frame, []
    base = base_currency()
    need = frame.filter(pl.col("amount_base").is_null() & pl.col("currency").is_not_null())
    if need.height == 0:
        return frame, []
    rates = store.query("SELECT date, currency, rate_to_base FROM fx_rates ORDER BY date") if store is not None else pl.DataFrame()
    frame = frame.with_columns(
        pl.when(pl.col("amount_base").is_null() & (pl.col("currency") == base)).then(pl.col("amount")).otherwise(pl.col("amount_base")).alias("amount_base")
    )
    if rates.height:
        keyed = frame.with_row_index("__fx_order").sort("invoice_date")
        looked_up = keyed.join_asof(
            rates.rename({"date": "invoice_date", "rate_to_base": "__rate"}).sort("invoice_date"),
            on="invoice_date", by="currency", strategy="backward", check_sortedness=False,
        )
        frame = looked_up.sort("__fx_order").with_columns(
            pl.when(pl.col("amount_base").is_null() & pl.col("__rate").is_not_null())
            .then((pl.col("amount").cast(pl.Float64) * pl.col("__rate")).round(2).cast(pl.Decimal(18, 2)))
            .otherwise(pl.col("amount_base")).alias("amount_base")
        ).drop("__fx_order", "__rate")
    without = frame.filter(pl.col("amount_base").is_null() & pl.col("currency").is_not_null())
    if without.height == 0:
        return frame, []
    currencies = ", ".join(sorted(without["currency"].unique().to_list()))
    reason = "no exchange rates are loaded" if rates.height == 0 else "no exchange rate on or before their dates is loaded"
    return frame, [
        f"{without.height} document(s) in {currencies} have no {base} amount: {reason}, so their figures stay in their "
        "own currency (load an exchange-rate file to see them in the base currency)"
    ]


# -- preview -------------------------------------------------------------------------------
@dataclass
class ReportPreview(FilePreview):
    """A :class:`FilePreview` of a vendor export, with what the report said about itself."""

    report: ParsedReport | None = None
    drift: HeaderDrift | None = None
    warnings: list[str] = field(default_factory=list)

    def stated_as_of_date(self) -> date | None:
        return self.report.as_of_date if self.report is not None else None


def _handed_over(frame: pl.DataFrame) -> pl.DataFrame:
    # The canonical validator reads extra columns (open_amount) as text only.
    if "open_amount" in frame.columns and frame.schema["open_amount"] != pl.String:
        return frame.with_columns(pl.col("open_amount").cast(pl.String))
    return frame


def _raw(parsed: ParsedReport, *, file_name: str, sha256: str) -> RawExtract:
    return RawExtract(file_name, sha256, parsed.source_format, _handed_over(parsed.frame))


def preview_parsed(parsed: ParsedReport, *, file_name: str, sha256: str, store: Store | None) -> ReportPreview:
    """How a vendor export would load, writing nothing; problems are warnings here, refusals on load."""
    frame, fx_warnings = apply_fx(store, parsed.frame)
    raw = _raw(parsed, file_name=file_name, sha256=sha256)
    raw.frame = _handed_over(frame)
    base = _preview(raw, store=store, table=parsed.table, mapping=None)
    warnings = [parsed.summary(), *parsed.warnings, *fx_warnings]
    if not parsed.reconciles:
        warnings.append(parsed.reconciliation_message(file_name))
    drift = check_drift(store, parsed)
    if drift is not None:
        warnings.append(drift_message(file_name, parsed, drift).replace(" Nothing was written.", ""))
    if parsed.as_of_date is None and "open_amount" in frame.columns:
        warnings.append("the file does not say which date its balances are for: give the as-of date when loading it")
    values = {name: getattr(base, name) for name in FilePreview.__dataclass_fields__}
    values.update(drift=drift, warnings=[*base.warnings, *warnings])
    return ReportPreview(**values, report=parsed)


# -- load ----------------------------------------------------------------------------------
def load_parsed(
    store: Store,
    parsed: ParsedReport,
    *,
    file_name: str,
    sha256: str,
    as_of_date: date | None = None,
    mapping: dict[str, str] | None = None,
    accept_fuzzy: bool = False,
    accept_drift: bool = False,
    max_reject_share: float = 0.2,
    progress: Progress | None = None,
    who: str | None = None,
    actor: Actor | None = None,
) -> LoadResult:
    """Load a parsed vendor export in one transaction, or refuse it writing nothing.

    Refuses with :class:`HeaderDriftError` when the columns differ from the saved profile
    (unless ``accept_drift``), and with :class:`ValidationError` when the data lines do not
    add up to the report's TOTAL. ``mapping`` (the preview's columns, as the Data page
    confirms them) passes through to the canonical loader.
    """
    progress = progress or no_progress
    already = store.scalar("SELECT count(*) FROM loads WHERE sha256 = ? AND status = 'loaded'", [sha256])
    if not already:
        drift = check_drift(store, parsed)
        if drift is not None and not accept_drift:
            raise HeaderDriftError(drift_message(file_name, parsed, drift), drift=drift)
        if not parsed.reconciles:
            raise ValidationError(parsed.reconciliation_message(file_name) + " Nothing was written.")
    frame, fx_warnings = apply_fx(store, parsed.frame)
    raw = _raw(parsed, file_name=file_name, sha256=sha256)
    raw.frame = _handed_over(frame)
    # The date the report states wins over one given for a whole batch of files.
    as_of = parsed.as_of_date or as_of_date
    as_of_note = []
    if parsed.as_of_date and as_of_date and as_of_date != parsed.as_of_date:
        as_of_note.append(
            f"the report says it is as of {parsed.as_of_date} (its {parsed.as_of_source}); that date was used, not {as_of_date}"
        )
    result = _load_raw(
        store, raw, table=parsed.table, mapping=mapping or None, as_of_date=as_of, accept_fuzzy=accept_fuzzy,
        max_reject_share=max_reject_share, progress=progress, who=who,
        extra_writes=lambda cur, _load_id: _write_profile(cur, parsed), actor=actor,
    )
    if result.status != "loaded":
        return result
    result.warnings = [*as_of_note, *parsed.warnings, *fx_warnings, *result.warnings]
    return result


def _write_profile(cur: duckdb.DuckDBPyConnection, parsed: ParsedReport) -> None:
    """Inside the load's transaction: the source's column profile (to see header drift next time)."""
    now = utcnow()
    cur.execute(
        """
        INSERT INTO mapping_profiles (profile_id, source_format, target_table, headers, mapping, created, updated)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (profile_id) DO UPDATE SET headers = excluded.headers, mapping = excluded.mapping, updated = excluded.updated
        """,
        [
            PROFILE_PREFIX + parsed.source_format, parsed.source_format, parsed.table, json.dumps(parsed.source_headers),
            json.dumps({"source_format": parsed.source_format, "columns": [c for c in parsed.frame.columns if not c.startswith("__")]}),
            now, now,
        ],
    ).fetchall()
