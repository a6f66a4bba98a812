"""Shared fixtures. Stores are real DuckDB files in pytest's tmp_path, never mocks."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty, migrated store file."""
    s = Store(tmp_path / "recoup.duckdb")
    yield s
    s.close()


@pytest.fixture(scope="session")
def seeded_db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store file seeded from the committed sample_data/, exactly as `make run` seeds it.

    Session-scoped and closed after seeding: AppTests open it through dashboard.ui with
    RECOUP_DB pointing here. Tests must not change its data (use `store` for that); the pages
    keep what they compute once per load in it, as they do for a user: scores (Risk, Worklist)
    and the forecast backtest (Overview), so the pages read back the same figures in any order.
    """
    from dashboard.config import SAMPLE_DATA_DIR
    from dashboard.ingest import seed_store

    path = tmp_path_factory.mktemp("seeded") / "recoup.duckdb"
    with Store(path) as s:
        results = seed_store(s, SAMPLE_DATA_DIR)
        assert results, "sample_data/ produced no loads"
    return path


@pytest.fixture
def server_db(seeded_db_path: Path, tmp_path: Path) -> Path:
    """A copy of the seeded store a test's own app server may write to."""
    copy = tmp_path / "server.duckdb"
    shutil.copy(seeded_db_path, copy)
    return copy


@pytest.fixture
def app_env(seeded_db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the app (dashboard.ui.get_store) at the seeded store for one AppTest."""
    monkeypatch.setenv("RECOUP_DB", str(seeded_db_path))
    return seeded_db_path
