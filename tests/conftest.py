"""Shared fixtures. Stores are real DuckDB files in pytest's tmp_path, never mocks."""

from __future__ import annotations

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
