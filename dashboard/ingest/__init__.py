"""Canonical ingest: read an extract, match its headers, normalize, validate, load in one transaction.

The Data page and the CLI use exactly these names. The flow::

    preview = preview_file(data, file_name=name, store=store)       # writes nothing
    # show preview.matches; let the user fix targets (options: target_columns(preview.table),
    # "" = ignore the header); ask for confirmation when preview.needs_confirmation
    result = load_file(store, data, file_name=name, table=preview.table,
                       mapping={m.source: target_or_empty, ...}, accept_fuzzy=confirmed)
    result.message, result.warnings, result.rejected                # what happened

Refusals raise an ``IngestError`` subclass (``dashboard.errors``) with a sentence to show as is.
"""

from __future__ import annotations

from dashboard.ingest.headers import ColumnMatch, detect_table, match_headers, required_columns, target_columns
from dashboard.ingest.load import (
    FilePreview,
    LoadResult,
    load_file,
    load_frame,
    load_world,
    preview_file,
    seed_store,
)

__all__ = [
    "ColumnMatch",
    "FilePreview",
    "LoadResult",
    "detect_table",
    "load_file",
    "load_frame",
    "load_world",
    "match_headers",
    "preview_file",
    "required_columns",
    "seed_store",
    "target_columns",
]
