"""Model registry and the train/score CLI: text artifacts, cards, one active model, fallbacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from dashboard.cli import main
from dashboard.errors import ModelCardError, ModelError
from dashboard.registry import (
    active_model_id,
    is_shipped,
    list_models,
    load_active_model,
    load_model,
    set_active,
)
from dashboard.risk import CARD_VERSION
from dashboard.store import Store

ROOT = Path(__file__).resolve().parent.parent


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
    code = main(
        ["score", "--db", str(world_db), "--models-dir", str(models), "--as-of", "2025-12-31", "--out", str(out)]
    )
    assert code == 0
    line = capsys.readouterr().out
    assert model_id in line and "2025-12-31" in line
    scores = pl.read_csv(out, try_parse_dates=True)
    assert scores.columns == [
        "invoice_id", "customer_id", "open_amount", "due_date", "p_late", "p_paid_30d",
        "pay_date_p10", "pay_date_p50", "pay_date_p90", "reasons", "scorer",
    ]
    assert scores.height > 50 and scores["reasons"].is_not_null().all()
    # the model loaded from text scores exactly as written, through the one scoring path
    reloaded = load_model(model_id, models_dir=models)
    from dashboard.scoring import score_invoices, scorer_for

    day = pl.Series(["2025-12-31"]).str.to_date()[0]
    with Store(world_db, read_only=True) as store:
        scorer = scorer_for(reloaded, store=store, as_of=day)
        assert set(scores["scorer"]) == {scorer.kind}
        stored = store.scalar("SELECT count(*) FROM scores WHERE model_id = ? AND as_of = DATE '2025-12-31'",
                              [scorer.scorer_id])
        again = score_invoices(store, day, scorer=scorer)
    assert stored == scores.height
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
    # nothing else in this registry: the shipped default is used, and the notice says why
    fallback = load_active_model(models_dir=models)
    assert is_shipped(fallback)
    assert f"card version {CARD_VERSION + 1}" in fallback.notice and "the shipped default model" in fallback.notice


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
    assert (
        model.card["metrics"]["not_yet_due"]["model"]["auc"] > model.card["metrics"]["not_yet_due"]["baseline"]["auc"]
    )
    size = sum(p.stat().st_size for p in Path(model.path).iterdir())
    assert size < 1_000_000


def test_risk_page_trains_and_registers_a_model_beside_the_store(seeded_db_path: Path, tmp_path, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    db = tmp_path / "books" / "recoup.duckdb"
    db.parent.mkdir()
    shutil.copy(seeded_db_path, db)
    monkeypatch.setenv("RECOUP_DB", str(db))
    monkeypatch.delenv("RECOUP_MODELS_DIR", raising=False)
    shipped_before = _shipped_state()
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/risk.py")
    at.run()
    assert not at.exception, at.exception
    # no model of this store's own yet: the page says it uses the shipped default and offers training
    assert any("Using the shipped default model" in i.value for i in at.info), [i.value for i in at.info]
    train = next(b for b in at.button if b.label == "Train")
    train.click()
    at.run()
    assert not at.exception, at.exception
    assert any("Saved risk-" in s.value for s in at.success)
    trained = active_model_id(db=db)
    assert trained is not None and (db.parent / "recoup.models" / trained / "model.txt").is_file()
    assert _shipped_state() == shipped_before, "training from the page wrote into the repository's models/"


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


def _shipped_state() -> tuple[str, list[str]]:
    from dashboard.registry import SHIPPED_MODELS_DIR

    return (SHIPPED_MODELS_DIR / "ACTIVE").read_text(), sorted(p.name for p in SHIPPED_MODELS_DIR.iterdir())


def test_training_keeps_the_model_beside_the_store_and_never_writes_the_shipped_models(
    world_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.delenv("RECOUP_MODELS_DIR", raising=False)
    db = tmp_path / "books" / "recoup.duckdb"
    db.parent.mkdir()
    shutil.copy(world_db, db)
    shipped_before = _shipped_state()
    assert main(["train", "--db", str(db), "--n-estimators", "30"]) == 0
    model_id = json.loads(capsys.readouterr().out)["model_id"]
    beside = tmp_path / "books" / "recoup.models"
    assert (beside / model_id / "model.txt").is_file() and (beside / "ACTIVE").read_text().strip() == model_id
    assert _shipped_state() == shipped_before, "training wrote into the repository's models/"
    # the store's own model is the active one for this store; another store still gets the shipped default
    assert load_active_model(db=db).model_id == model_id
    other = load_active_model(db=tmp_path / "elsewhere.duckdb")
    assert is_shipped(other) and other.notice is None
    listing = list_models(db=db)
    assert listing.filter(pl.col("active"))["model_id"].to_list() == [model_id]
    assert listing.filter(pl.col("shipped")).height >= 1


@pytest.mark.parametrize("wanted", ["../../../etc", "../models/x", "/etc", "a/b", ".."])
def test_model_ids_cannot_leave_the_registry(registry_dir, tmp_path, wanted: str) -> None:
    models, model_id = _copy(registry_dir, tmp_path)
    with pytest.raises(ModelError, match="is not a model id"):
        load_model(wanted, models_dir=models)
    with pytest.raises(ModelError, match="is not a model id"):
        set_active(wanted, models_dir=models)
    # an ACTIVE file pointing outside is not followed: the last good model is used, and says why
    (models / "ACTIVE").write_text(wanted + "\n")
    model = load_active_model(models_dir=models)
    assert model.model_id == model_id
    assert "is not a model id" in model.notice and "last good model" in model.notice


def test_score_cli_refuses_a_model_outside_the_registry(registry_dir, world_db, capsys) -> None:
    models, _ = registry_dir
    code = main(["score", "--db", str(world_db), "--models-dir", str(models), "--model", "../../../etc"])
    assert code == 2
    assert "'../../../etc' is not a model id" in capsys.readouterr().err


# -- damaged model files and cards: checked before use, with a fallback and a reason --------------
def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process: LightGBM aborts the whole process on a cut-off model file."""
    env = {k: v for k, v in os.environ.items() if k != "RECOUP_MODELS_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "dashboard", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def _own_store(world_db: Path, tmp_path: Path) -> Path:
    db = tmp_path / "world.duckdb"
    shutil.copy(world_db, db)
    with Store(db) as store, store.transaction() as cur:
        cur.execute("DELETE FROM scores")  # the worklist must score with the active model itself
    return db


@pytest.mark.parametrize("share", [0.05, 0.5, 0.999])
def test_a_cut_off_model_file_falls_back_instead_of_killing_score(registry_dir, world_db, tmp_path, share) -> None:
    models, model_id = _copy(registry_dir, tmp_path)
    path = models / model_id / "model.txt"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])  # as `head -c` would
    done = _run(
        "score",
        "--db",
        str(_own_store(world_db, tmp_path)),
        "--models-dir",
        str(models),
        "--as-of",
        "2025-11-30",
        "--no-reasons",
        "--json",
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    summary = json.loads(done.stdout)
    assert summary["model_id"] != model_id and summary["open_invoices"] > 0
    assert f"The file model.txt of model {model_id!r} is not the one its card describes" in summary["notice"]
    assert "Using the shipped default model" in summary["notice"]
    assert "note:" in done.stderr


def test_a_cut_off_model_file_falls_back_in_the_worklist_command(registry_dir, world_db, tmp_path) -> None:
    models, model_id = _copy(registry_dir, tmp_path)
    path = models / model_id / "hazard.txt"
    path.write_bytes(path.read_bytes()[: 200_000 // 4])
    out = tmp_path / "today.csv"
    done = _run(
        "worklist",
        "--db",
        str(_own_store(world_db, tmp_path)),
        "--models-dir",
        str(models),
        "--as-of",
        "2025-11-28",
        "--out",
        str(out),
        "--json",
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert f"The file hazard.txt of model {model_id!r}" in done.stderr
    assert json.loads(done.stdout)["model_id"] != model_id and out.exists()


def test_a_card_without_digests_still_refuses_a_cut_off_file(registry_dir, world_db, tmp_path) -> None:
    # cards written before the digests: a structural check (LightGBM writes its parameters last)
    models, model_id = _copy(registry_dir, tmp_path)
    card_path = models / model_id / "card.json"
    card = json.loads(card_path.read_text())
    del card["files"]
    card_path.write_text(json.dumps(card))
    assert load_model(model_id, models_dir=models).model_id == model_id  # whole files still load
    path = models / model_id / "model.txt"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ModelCardError, match="model.txt of model .* is cut off"):
        load_model(model_id, models_dir=models)


def _edit_card(models: Path, model_id: str, edit) -> None:  # noqa: ANN001
    card_path = models / model_id / "card.json"
    text = edit(card_path.read_text())
    card_path.write_text(text)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        # a 5,000-digit number: Python's JSON reader refuses to convert it (a raw ValueError before)
        (lambda t: t.replace('"weeks": 26', '"weeks": ' + "9" * 5000), "is corrupt"),
        (lambda t: t.replace('"weeks": 26', '"weeks": ' + "9" * 40), "weeks = 9999"),
        # a Platt map this steep turns every probability into exactly 0 or 1
        (lambda t: _set_calibration(t, a=1e308), "calibration.a = 1e+308; expected a number between -100 and 100"),
        (lambda t: _set_calibration(t, b=float("nan")), "calibration.b = nan"),
        (lambda t: _swap_features(t), "the same 57 features in another order: feature 1 is"),
    ],
    ids=["5000-digit", "40-digit", "calibration-1e308", "calibration-nan", "features-reordered"],
)
def test_a_card_with_numbers_out_of_range_falls_back_with_the_reason(
    registry_dir, world_db, tmp_path, edit, reason
) -> None:
    models, model_id = _copy(registry_dir, tmp_path)
    _edit_card(models, model_id, edit)
    with pytest.raises(ModelCardError) as refused:
        load_model(model_id, models_dir=models)
    assert reason in str(refused.value)
    done = _run(
        "score",
        "--db",
        str(_own_store(world_db, tmp_path)),
        "--models-dir",
        str(models),
        "--as-of",
        "2025-11-30",
        "--no-reasons",
        "--json",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["model_id"] != model_id and reason in summary["notice"]
    assert 0.0 < summary["mean_p_late"] < 1.0


def _set_calibration(text: str, **values: float) -> str:
    card = json.loads(text)
    card["calibration"] = {"method": "sigmoid", "a": -1.0, "b": 0.0, **values}
    return json.dumps(card)


def _swap_features(text: str) -> str:
    card = json.loads(text)
    features = card["features"]
    features[0], features[1] = features[1], features[0]
    return json.dumps(card)
