"""Every domain error Recoup raises, in one place.

Each message is written for a finance person and quotes the bad value. They are caught
only at the page or CLI boundary (``dashboard.cli``, ``dashboard.ui``).
"""

from __future__ import annotations


class RecoupError(Exception):
    """Base class: anything the user can act on."""


class StoreError(RecoupError):
    """The DuckDB store cannot be opened or used."""


class SchemaTooNewError(StoreError):
    """The store file was written by a newer Recoup than this one."""


class StoreLockedError(StoreError):
    """Another process (usually the running app) holds the store file."""


class IngestError(RecoupError):
    """An extract was refused; nothing was written."""


class UnreadableFileError(IngestError):
    """The file is empty, binary, or in an encoding/format we cannot read."""


class UnknownColumnError(IngestError):
    """Required columns could not be matched to the canonical schema."""


class ValidationError(IngestError):
    """Too many rows failed validation, or the file contradicts itself."""


class DuplicateLoadError(IngestError):
    """The same file (same sha256) was already loaded."""


class ConflictError(RecoupError):
    """Someone else changed the same thing first; reload and retry."""


class ModelError(RecoupError):
    """A model artifact or card is missing, corrupt, or from a future version."""
