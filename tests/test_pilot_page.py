"""The Pilot view (Strategy page) and the Worklist page's holdout, under AppTest on a copy of the
seeded store: plan (balance and power shown first), start, read the report; the worklist then
lists the holdout apart."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def writable_env(seeded_db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "recoup.duckdb"
    shutil.copy(seeded_db_path, path)
    monkeypatch.setenv("RECOUP_DB", str(path))
    return path


def _texts(at: AppTest) -> str:
    parts = [e.value for kind in (at.info, at.success, at.warning, at.caption, at.markdown) for e in kind]
    return "\n".join(str(p) for p in parts).replace("\\", "")  # ui.md escapes Markdown characters


def test_plan_start_and_read_a_pilot_on_the_strategy_page(writable_env: Path) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    at.switch_page("pages/strategy.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert "No pilot yet" in _texts(at)
    at.text_input(key="strategy_pilot_name").input("Page pilot")
    at.button(key="strategy_pilot_plan_button").click().run()
    assert not at.exception, [e.message for e in at.exception]
    texts = _texts(at)
    assert "80% power" in texts and "keep the usual cadence" in texts
    at.button(key="strategy_pilot_start_button").click().run()
    assert not at.exception, [e.message for e in at.exception]
    texts = _texts(at)
    assert "Started: Page pilot" in texts
    # its first day: nothing has been due long enough to measure days to pay, and it says so
    assert any(v in texts for v in ("Too early to measure", "No measurable change", "The worklist group paid"))
    assert "censored" in texts
    at.switch_page("pages/worklist.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("Pilot 'Page pilot'" in str(e.value) for e in at.info)
    assert "Pilot holdout" in [t.label for t in at.tabs]
