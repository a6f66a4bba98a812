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


class SyntheticConfigError(RecoupError):
    """The sample-world generator was given a setting or policy it cannot apply."""


class PolicyError(RecoupError):
    """A collections policy version is missing or cannot be used."""


class PolicyValidationError(PolicyError):
    """A policy has faults (overlaps, gaps, unreachable rules, unknown templates, bad ranges).

    ``faults`` holds every :class:`dashboard.policy.PolicyFault` found, not just the first.
    """

    def __init__(self, message: str, *, faults: list | None = None) -> None:  # noqa: ANN001
        super().__init__(message)
        self.faults = list(faults or [])


class MessageTemplateError(RecoupError):
    """A message template is unknown, broken, or needs a merge field that was not given."""


class WorklistError(RecoupError):
    """A worklist cannot be built, exported, or an outcome cannot be recorded."""


class MetricError(RecoupError):
    """A receivables measure was asked for with settings it cannot use (period, buckets, dates)."""


class TrainingDataError(ModelError):
    """The store's history cannot support training (too short, no outcomes, bad settings)."""


class ModelCardError(ModelError):
    """A model card is corrupt, incomplete or from a newer Recoup than this one."""


class NeedsConfirmationError(UnknownColumnError):
    """A required column was matched only by a guess (fuzzy match) that nobody confirmed."""


class SampleDataMissingError(IngestError):
    """There is no sample data to seed a new store from."""


class RiskArgumentError(ModelError):
    """A train/score option (date, model id) cannot be used."""


class ForecastError(RecoupError):
    """A cash forecast or its backtest cannot be made with these dates or this history."""


class SimulationError(RecoupError):
    """A strategy simulation was given a setting it cannot apply, or was cancelled."""


class AsOfDateNeededError(IngestError):
    """A snapshot (open balances) was loaded without the date it describes."""


class HeaderDriftError(IngestError):
    """A vendor export's columns differ from the saved profile for that source (renamed, missing, added).

    ``drift`` holds the :class:`dashboard.ingest.formats.loading.HeaderDrift` found.
    """

    def __init__(self, message: str, *, drift: object | None = None) -> None:
        super().__init__(message)
        self.drift = drift


class HealthError(RecoupError):
    """A data-health report was asked for something that does not exist (an unknown load, a bad date)."""


class CommandLineError(RecoupError):
    """A command-line option's value cannot be used (it is quoted in the message)."""


class UndoLoadError(IngestError):
    """A load cannot be undone (other loads depend on it, or it is not in the store)."""


class SummaryReportError(IngestError):
    """A per-customer summary (an aging summary) where invoices are needed: says which report to export instead."""


class PilotError(RecoupError):
    """A pilot cannot be planned, started or reported with these settings (they are quoted)."""


class AccessDeniedError(RecoupError):
    """The signed-in person's role does not allow this (or they are not an active user)."""


class AccessError(RecoupError):
    """A user or an assignment cannot be changed as asked (unknown role, unknown user, last admin)."""
