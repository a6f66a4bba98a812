"""Pages follow the state they depend on: a newly activated model is used at once, not after
the next data change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.registry import SHIPPED_MODELS_DIR, active_model_id, set_active

ROOT = Path(__file__).resolve().parent.parent


def _worklist_caption(db: Path) -> str:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()  # a new session
    at.switch_page("pages/worklist.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return " ".join(c.value for c in at.caption)


def test_a_new_session_uses_a_model_activated_after_the_worklist_was_cached(
    seeded_db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "books" / "recoup.duckdb"
    db.parent.mkdir()
    shutil.copy(seeded_db_path, db)
    monkeypatch.setenv("RECOUP_DB", str(db))
    monkeypatch.delenv("RECOUP_MODELS_DIR", raising=False)
    shipped = active_model_id(models_dir=SHIPPED_MODELS_DIR)
    assert f"model {shipped}" in _worklist_caption(db)

    # "train" a model for this store: a copy of the shipped one under a new id, made active
    own = db.parent / "recoup.models"
    own.mkdir()
    shutil.copytree(SHIPPED_MODELS_DIR / shipped, own / "risk-20261001-own")
    card = json.loads((own / "risk-20261001-own" / "card.json").read_text())
    card["model_id"] = "risk-20261001-own"
    (own / "risk-20261001-own" / "card.json").write_text(json.dumps(card))
    set_active("risk-20261001-own", db=db)

    # the data did not change; the worklist must still be rebuilt with the new model
    caption = _worklist_caption(db)
    assert "model risk-20261001-own" in caption, caption
