"""Worklist exports kept beside the store: written first, recorded after, downloadable again.

:func:`save_export` is the one way the day's lines are exported. It writes the export's files
(the worklist as CSV, XLSX and JSON, and the email drafts) into the store's export history —
``<store>.exports/<as_of>/<export id>/`` beside the store, e.g. ``data/recoup.exports/`` for
``data/recoup.duckdb`` — and any copy asked for (the command line's ``--out``), and only when
every file is on disk records the lines in ``actions``. A file that cannot be written records
nothing; a record that fails removes the files again. Each export's manifest (``export.json``:
who, when, how many lines, which files) is what :func:`export_history` lists, so the day's
files can be downloaded again after a page reload.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from dashboard.access import Actor
from dashboard.csv_writer import to_csv_bytes, write_file_atomically
from dashboard.errors import RecoupError, WorklistError
from dashboard.exports import FORMATS, export_worklist
from dashboard.messages import Message, eml_zip, message_for_line
from dashboard.pilot import holdout_file_name, holdout_flat
from dashboard.policy import ensure_default_policy
from dashboard.store import Store, utcnow
from dashboard.worklist import WorklistResult, record_export

MANIFEST = "export.json"
DRAFTS_SUFFIX = ".zip"


@dataclass(frozen=True)
class ExportFiles:
    """An export's files by name, built but not yet written, and what a person should know."""

    files: dict[str, bytes]
    lines: pl.DataFrame
    drafts: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExportRecord:
    """One recorded export of a day's lines (a manifest in the export history)."""

    export_id: str
    as_of: date
    created: datetime  # UTC
    author: str
    lines: int
    newly_recorded: int
    export_format: str
    files: tuple[str, ...]
    folder: Path

    def read(self, name: str) -> bytes:
        """The bytes of one of this export's files."""
        if name not in self.files:
            msg = f"Export {self.export_id!r} has no file {name!r}; it has {', '.join(self.files)}."
            raise WorklistError(msg)
        return (self.folder / name).read_bytes()

    def label(self) -> str:
        return f"{self.created:%H:%M:%S} UTC by {self.author}: {self.lines} line(s), {len(self.files)} file(s)"


def exports_dir(store: Store) -> Path | None:
    """The folder beside ``store`` that keeps its exports (``data/recoup.duckdb`` ->
    ``data/recoup.exports``); None for an in-memory store."""
    if str(store.path) == ":memory:":
        return None
    return store.path.with_name(f"{store.path.stem}.exports")


def file_name(as_of: date, export_format: str) -> str:
    """The name of the worklist file in one format (``worklist-2026-09-30.csv``)."""
    return f"worklist-{as_of:%Y-%m-%d}.{export_format}"


def build_export_files(
    store: Store, result: WorklistResult, *, lines: pl.DataFrame | None = None, include_holdout: bool = True
) -> ExportFiles:
    """The worklist in every format and a zip of email drafts for its automated lines.

    A line whose message cannot be rendered (or whose email was left out) is exported without
    a draft or recipient, and a note says so; building never records anything. With a running
    pilot, its holdout customers (never worklist lines) go in a separate, marked file
    (``pilot-holdout-<date>.csv``) unless ``include_holdout`` is false; they are never recorded.
    """
    chosen = result.today() if lines is None else lines
    if result.policy_version is None and chosen.height:
        # the shipped default policy was used: save it as a version so the files can name it
        result = replace(result, policy_version=ensure_default_policy(store))
    files = {
        file_name(result.as_of, f): export_worklist(store, result, export_format=f, lines=chosen, record=False)
        for f in FORMATS
    }
    messages: list[Message] = []
    notes: list[str] = []
    automated = chosen.filter(pl.col("automated")) if chosen.height else chosen
    for line in automated.to_dicts():
        try:
            message = message_for_line(line)
        except RecoupError as exc:
            notes.append(f"{line['customer_name']}: no draft ({exc})")
            continue
        messages.append(message)
        notes.extend(f"{line['customer_name']}: {note}" for note in message.notes)
    if messages:
        files[f"drafts-{result.as_of:%Y-%m-%d}{DRAFTS_SUFFIX}"] = eml_zip(messages)
    if include_holdout and result.holdout.height:
        files[holdout_file_name(result.as_of)] = to_csv_bytes(holdout_flat(result.holdout))
    return ExportFiles(files=files, lines=chosen, drafts=len(messages), notes=tuple(notes))


def save_export(
    store: Store,
    result: WorklistResult,
    prepared: ExportFiles,
    *,
    export_format: str,
    author: str,
    copy_to: str | Path | None = None,
    actor: Actor | None = None,
    filters: Mapping[str, Any] | None = None,
) -> ExportRecord:
    """Write ``prepared``'s files (and the ``export_format`` file to ``copy_to``), then record
    its lines in ``actions``, then the manifest; see the module docstring.

    Raises :class:`WorklistError` with nothing recorded when a file cannot be written. The record
    is authorized for ``actor`` and audited with ``filters`` (:func:`dashboard.worklist.record_export`);
    a refusal removes the files again.
    """
    if export_format not in FORMATS:
        msg = f"Unknown export format {export_format!r}; use one of {', '.join(FORMATS)}."
        raise WorklistError(msg)
    root = exports_dir(store)
    if root is None:
        msg = "An in-memory store keeps no export history; export from a store file."
        raise WorklistError(msg)
    created = utcnow()
    export_id = f"{created:%Y%m%dT%H%M%S%f}"
    day = root / f"{result.as_of:%Y-%m-%d}"
    folder = day / export_id
    copy = Path(copy_to) if copy_to is not None else None
    target = folder
    try:
        day.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{export_id}-", dir=day))
        try:
            for name, data in prepared.files.items():
                write_file_atomically(data, staging / name)
            staging.chmod(0o755)
            staging.rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if copy is not None:
            target = copy
            copy.parent.mkdir(parents=True, exist_ok=True)
            write_file_atomically(prepared.files[file_name(result.as_of, export_format)], copy)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        reason = exc.strerror or str(exc)
        if exc.filename and str(exc.filename) != str(target):
            reason += f": {str(exc.filename)!r}"
        msg = f"The worklist could not be written to {str(target)!r} ({reason}); no line was recorded."
        raise WorklistError(msg) from None
    done_today = (
        prepared.lines.filter(pl.col("scheduled_date") == result.as_of) if prepared.lines.height else prepared.lines
    )
    try:
        newly = record_export(store, result, done_today, export_format=export_format, actor=actor, filters=filters)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        if copy is not None:
            copy.unlink(missing_ok=True)
        raise
    record = ExportRecord(
        export_id=export_id,
        as_of=result.as_of,
        created=created,
        author=author.strip() or "not given",
        lines=prepared.lines.height,
        newly_recorded=newly,
        export_format=export_format,
        files=tuple(prepared.files),
        folder=folder,
    )
    manifest = {
        "export_id": export_id,
        "as_of": record.as_of.isoformat(),
        "created": created.isoformat(),
        "author": record.author,
        "lines": record.lines,
        "newly_recorded": newly,
        "export_format": export_format,
        "files": list(record.files),
        "line_ids": prepared.lines["line_id"].to_list() if prepared.lines.height else [],
        "notes": list(prepared.notes),
    }
    try:
        write_file_atomically(json.dumps(manifest, indent=2).encode("utf-8"), folder / MANIFEST)
    except OSError:
        pass  # the lines are recorded and the files written; only the listing of this export is lost
    return record


def export_history(store: Store, as_of: date) -> list[ExportRecord]:
    """The recorded exports of ``as_of``, newest first (folders without a manifest are
    exports that were never recorded and are not listed)."""
    root = exports_dir(store)
    day = root / f"{as_of:%Y-%m-%d}" if root is not None else None
    if day is None or not day.is_dir():
        return []
    records = []
    for folder in day.iterdir():
        if folder.name.startswith(".") or not (folder / MANIFEST).is_file():
            continue
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            files = tuple(name for name in manifest["files"] if (folder / name).is_file())
            records.append(
                ExportRecord(
                    export_id=str(manifest["export_id"]),
                    as_of=date.fromisoformat(manifest["as_of"]),
                    created=datetime.fromisoformat(manifest["created"]),
                    author=str(manifest["author"]),
                    lines=int(manifest["lines"]),
                    newly_recorded=int(manifest["newly_recorded"]),
                    export_format=str(manifest["export_format"]),
                    files=files,
                    folder=folder,
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged manifest: the export's files are still in its folder
    return sorted(records, key=lambda r: r.created, reverse=True)
