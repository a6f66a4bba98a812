"""Model registry and the train/score CLI: text artifacts, cards, one active model, fallbacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from dashboard.cli import main
from dashboard.errors import ModelCardError, ModelError
from dashboard.registry import (
    active_model_id,
    list_models,
    load_active_model,
    load_model,
    set_active,
)
from dashboard.risk import CARD_VERSION
from dashboard.store import Store


@pytest.fixture(scope="module")
def world_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dashboard.ingest.load import load_world
    from dashboard.synthetic.generator import generate_world
    from dashboard.synthetic.model import WorldConfig

    world = generate_world(WorldConfig(seed=3, n_customers=300, months=30))
    path = tmp_path_factory.mktemp("registry") / "world.duckdb"
    with Store(path) as store:
        load_world(store, world.frames)
    return path


@pytest.fixture(scope="module")
def registry_dir(world_db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Train once through the CLI into a fresh registry folder."""
    models = tmp_path_factory.mktemp("models")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["train", "--db", str(world_db), "--models-dir", str(models), "--n-estimators", "60"])
    assert code == 0
    printed = json.loads(out.getvalue())
    return models, printed["model_id"]


def _copy(registry: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    models, model_id = registry
    target = tmp_path / "models"
    shutil.copytree(models, target)
    return target, model_id


def test_train_cli_writes_text_model_and_card(registry_dir, capsys) -> None:
    models, model_id = registry_dir
    folder = models / model_id
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "hazard.txt", "model.txt"]
    assert (models / "ACTIVE").read_text().strip() == model_id
    assert (folder / "model.txt").read_text().startswith("tree")
    card = json.loads((folder / "card.json").read_text())
    assert card["card_version"] == CARD_VERSION and card["model_id"] == model_id
    assert card["calibration"]["method"] in ("sigmoid", "isotonic")
    assert isinstance(card["calibration"].get("a", card["calibration"].get("x")), (float, list))
    assert card["metrics"]["not_yet_due"]["baseline"]["auc"] is not None
    assert "censored" in card["hazard"]["formulation"]
    assert len(card["data_fingerprint"]) == 16 and card["windows"]["data_end"]
    assert not list(models.rglob("*.pkl")) and not list(models.rglob("*.pickle"))
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"\nmodel folder {size / 1024:.0f} KB")


def test_score_cli_writes_csv_and_stores_scores(registry_dir, world_db, tmp_path, capsys) -> None:
    models, model_id = registry_dir
    out = tmp_path / "scores.csv"
    code = main(["score", "--db", str(world_db), "--models-dir", str(models), "--as-of", "2025-12-31", "--out", str(out)])
    assert code == 0
    line = capsys.readouterr().out
    assert model_id in line and "2025-12-31" in line
    scores = pl.read_csv(out, try_parse_dates=True)
    assert scores.columns == [
        "invoice_id", "customer_id", "open_amount", "due_date", "p_late", "p_paid_30d",
        "pay_date_p10", "pay_date_p50", "pay_date_p90", "reasons",
    ]
    assert scores.height > 50 and scores["reasons"].is_not_null().all()
    with Store(world_db, read_only=True) as store:
        stored = store.scalar("SELECT count(*) FROM scores WHERE model_id = ? AND as_of = DATE '2025-12-31'", [model_id])
    assert stored == scores.height
    # the model loaded from text scores exactly as written
    reloaded = load_model(model_id, models_dir=models)
    from dashboard.risk import score_open_invoices

    with Store(world_db, read_only=True) as store:
        again = score_open_invoices(store, pl.Series(["2025-12-31"]).str.to_date()[0], model=reloaded, with_reasons=False)
    assert again.sort("invoice_id")["p_late"].to_list() == pytest.approx(scores.sort("invoice_id")["p_late"].to_list())


def test_score_cli_refuses_a_bad_date(registry_dir, world_db, capsys) -> None:
    models, _ = registry_dir
    code = main(["score", "--db", str(world_db), "--models-dir", str(models), "--as-of", "31/12/2025"])
    assert code == 2
    assert "'31/12/2025'" in capsys.readouterr().err


def test_train_cli_explains_too_little_history(tmp_path, capsys) -> None:
    with Store(tmp_path / "empty.duckdb"):
        pass
    code = main(["train", "--db", str(tmp_path / "empty.duckdb"), "--models-dir", str(tmp_path / "m")])
    assert code == 2
    assert "no invoices" in capsys.readouterr().err.lower()


def test_corrupt_active_card_falls_back_to_last_good_model(registry_dir, tmp_path) -> None:
    models, model_id = _copy(registry_dir, tmp_path)
    # a second, newer model whose card is then corrupted
    newer = "risk-29991231-ffffff"
    shutil.copytree(models / model_id, models / newer)
    card = json.loads((models / newer / "card.json").read_text())
    card.update(model_id=newer, created="2999-12-31T00:00:00+00:00")
    (models / newer / "card.json").write_text(json.dumps(card))
    set_active(newer, models_dir=models)
    assert load_active_model(models_dir=models).model_id == newer

    (models / newer / "card.json").write_text('{"card_version": 1, "model_id": ')  # truncated
    with pytest.raises(ModelCardError, match="corrupt"):
        load_model(newer, models_dir=models)
    model = load_active_model(models_dir=models)
    assert model.model_id == model_id
    assert "corrupt" in model.notice and model_id in model.notice
    listing = list_models(models_dir=models)
    assert listing.filter(pl.col("model_id") == newer)["usable"].to_list() == [False]


def test_future_card_version_is_refused_with_a_message(registry_dir, tmp_path) -> None:
    models, model_id = _copy(registry_dir, tmp_path)
    card_path = models / model_id / "card.json"
    card = json.loads(card_path.read_text())
    card["card_version"] = CARD_VERSION + 1
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match=f"card version {CARD_VERSION + 1}"):
        load_model(model_id, models_dir=models)
    with pytest.raises(ModelError, match="No usable payment-risk model"):
        load_active_model(models_dir=models)


def test_missing_active_model_and_set_active(registry_dir, tmp_path) -> None:
    models, model_id = _copy(registry_dir, tmp_path)
    (models / "ACTIVE").write_text("risk-gone\n")
    model = load_active_model(models_dir=models)
    assert model.model_id == model_id and "risk-gone" in model.notice
    with pytest.raises(ModelError, match="no model 'nope'"):
        set_active("nope", models_dir=models)
    set_active(model_id, models_dir=models)
    assert active_model_id(models_dir=models) == model_id


def test_shipped_default_model_loads() -> None:
    from dashboard.config import MODELS_DIR

    model = load_active_model(models_dir=MODELS_DIR)
    assert model.notice is None
    assert model.card["metrics"]["not_yet_due"]["model"]["auc"] > model.card["metrics"]["not_yet_due"]["baseline"]["auc"]
    size = sum(p.stat().st_size for p in Path(model.path).iterdir())
    assert size < 1_000_000


def test_risk_page_trains_and_registers_a_model(app_env: Path, tmp_path, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    models = tmp_path / "models"
    monkeypatch.setenv("RECOUP_MODELS_DIR", str(models))
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/risk.py")
    at.run()
    assert not at.exception, at.exception
    # no model yet in this registry: the page says so and still offers training
    assert any("No usable payment-risk model" in i.value for i in at.info)
    train = next(b for b in at.button if b.label == "Train")
    train.click()
    at.run()
    assert not at.exception, at.exception
    assert any("Saved risk-" in s.value for s in at.success)
    assert active_model_id(models_dir=models) is not None


def test_recalibration_makes_a_new_model_with_its_own_card(registry_dir, world_db, tmp_path) -> None:
    from datetime import date

    from dashboard.registry import save_model
    from dashboard.risk import recalibrate

    models, model_id = _copy(registry_dir, tmp_path)
    model = load_model(model_id, models_dir=models)
    with Store(world_db, read_only=True) as store:
        end = date.fromisoformat(model.card["windows"]["data_end"])
        new = recalibrate(store, model, as_of=end)
    fit = new.card["recalibration_fit"]
    print(f"\nrecalibration on {fit['rows']} recent snapshots: {fit}")
    assert new.model_id == f"{model_id}-recal{end:%Y%m%d}" and new.card["recalibrated_from"] == model_id
    # Platt scaling on the raw scores can only lower the log loss of a sigmoid map on its own window
    assert fit["log_loss_after"] <= fit["log_loss_before"] + 1e-9
    save_model(new, models_dir=models)
    reloaded = load_active_model(models_dir=models)
    assert reloaded.model_id == new.model_id
    assert reloaded.card["calibration"] == pytest.approx(new.card["calibration"])
    assert reloaded.card["calibration"] != model.card["calibration"]
