"""Where things live. The store path is resolved once: --db flag, then $RECOUP_DB, then default."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_PATH = ROOT / "data" / "recoup.duckdb"
SAMPLE_DATA_DIR = ROOT / "sample_data"
MODELS_DIR = ROOT / "models"
DB_ENV_VAR = "RECOUP_DB"
# Uploads above this size are refused before parsing (bytes); override with $RECOUP_MAX_UPLOAD_MB.
MAX_UPLOAD_BYTES = int(float(os.environ.get("RECOUP_MAX_UPLOAD_MB", "200")) * 1024 * 1024)


def resolve_db_path(db: str | os.PathLike[str] | None = None) -> Path:
    """Return the store file to use: explicit argument, else $RECOUP_DB, else data/recoup.duckdb."""
    if db:
        return Path(db)
    env = os.environ.get(DB_ENV_VAR)
    if env:
        return Path(env)
    return DEFAULT_DB_PATH
BASE_CURRENCY_ENV = "RECOUP_BASE_CURRENCY"


def base_currency() -> str:
    """The currency figures are reported in: ``$RECOUP_BASE_CURRENCY``, else USD.

    Documents without a currency are taken to be in it.
    """
    return os.environ.get(BASE_CURRENCY_ENV, "USD").strip().upper() or "USD"
