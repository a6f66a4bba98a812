"""The model check after a load: ok, recalibrate (probabilities off) or retrain (ranking off)."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from dashboard.ingest import load_file
from dashboard.model_check import ECE_RECALIBRATE, check_model
from dashboard.risk import RiskModel, recalibrate
from dashboard.store import Store
from dashboard.training import TrainingConfig, train_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RiskModel, date]:
    """A world, and a model trained on it as of six months before its end (so invoices have
    closed since training)."""
    from dashboard.ingest import load_world
    from dashboard.synthetic import WorldConfig, generate_world

    config = WorldConfig(seed=3, n_customers=300, months=30)
    world = generate_world(config)
    path = tmp_path_factory.mktemp("check") / "world.duckdb"
    cut = config.end_date - timedelta(days=182)
    with Store(path) as store:
        load_world(store, world.frames)
        result = train_model(store, TrainingConfig(as_of=cut, n_estimators=80, hazard_n_estimators=40))
    return path, result.model, config.end_date


def _shifted(model: RiskModel, by: float) -> RiskModel:
    """The same trees with the probability map moved: the ranking is unchanged, the probabilities are not."""
    card = copy.deepcopy(model.card)
    assert card["calibration"]["method"] == "sigmoid"
    card["calibration"]["b"] += by
    card["model_id"] = model.model_id + "-shifted"
    return RiskModel(late_booster=model.late_booster, hazard_booster=model.hazard_booster, card=card,
                     model_id=card["model_id"])


def test_a_model_that_still_fits_is_left_alone(trained) -> None:
    path, model, end = trained
    with Store(path, read_only=True) as store:
        check = check_model(store, end, model=model)
    print(f"\n{check.headline()} live: {check.live}\n{check.drift}")
    assert check.live["rows"] >= 200
    assert check.advice == "ok", check.reasons
    assert check.live["ece"] <= ECE_RECALIBRATE


def test_probabilities_off_but_ranking_intact_asks_for_recalibration_and_recalibration_cures_it(trained) -> None:
    path, model, end = trained
    shifted = _shifted(model, 1.2)  # every probability pushed well below what happens
    with Store(path, read_only=True) as store:
        check = check_model(store, end, model=shifted)
        print(f"\n{check.headline()}")
        assert check.advice == "recalibrate"
        assert check.live["auc"] == pytest.approx(check_model(store, end, model=model).live["auc"])
        assert "probabilities are off by" in check.headline()

        cured = recalibrate(store, shifted, as_of=end)
        after = check_model(store, end, model=cured)
    print(f"after recalibration: ECE {check.live['ece']:.3f} -> {after.live['ece']:.3f}; {after.headline()}")
    assert after.advice == "ok"
    assert after.live["ece"] < check.live["ece"]


def test_a_load_of_very_different_invoices_asks_for_retraining(trained, tmp_path: Path) -> None:
    path, model, end = trained
    copy_path = tmp_path / "moved.duckdb"
    copy_path.write_bytes(path.read_bytes())
    n = 3000  # a new business line: open invoices a hundred times larger than anything trained on
    extract = tmp_path / "new_business_line.csv"
    pl.DataFrame(
        {
            "invoice_id": [f"NEW-{i}" for i in range(n)],
            "customer_id": [f"BIG-{i % 40}" for i in range(n)],
            "invoice_date": [end - timedelta(days=10 + i % 40) for i in range(n)],
            "due_date": [end + timedelta(days=20 - i % 40) for i in range(n)],
            "amount": [250_000.0 + i for i in range(n)],
        }
    ).write_csv(extract)
    with Store(copy_path) as store:
        assert load_file(store, extract).rows_loaded == n  # through the real load path
        check = check_model(store, end, model=model)
    print(f"\n{check.headline()}\n{check.drift}")
    assert check.advice == "retrain"
    assert "invoice amount (PSI" in check.headline()  # the input by name, not its identifier


def test_the_data_page_offers_recalibration_in_one_click(trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from dashboard.registry import MODELS_DIR_ENV_VAR, active_model_id, save_model

    path, model, end = trained
    models = tmp_path / "models"
    save_model(_shifted(model, 1.2), models_dir=models)
    monkeypatch.setenv(MODELS_DIR_ENV_VAR, str(models))
    monkeypatch.setenv("RECOUP_DB", str(path))

    at = AppTest.from_file("../app.py", default_timeout=120).run()
    at.switch_page("pages/data.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert "Risk model against this data" in [s.value for s in at.subheader]
    # no load in this session yet: the check waits to be asked (it takes seconds on a big store)
    assert not any(w.value.startswith("Recalibrate the risk model") for w in at.warning)
    at.button(key="data_check_model_button").click().run()
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("Recalibrate the risk model") for w in warnings), warnings
    at.button(key="data_recalibrate").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("Saved and activated" in s.value for s in at.success), [s.value for s in at.success]
    assert active_model_id(models_dir=models) == f"{model.model_id}-shifted-recal{end:%Y%m%d}"
    # the next run checks the recalibrated model, which fits
    at.run()
    assert any("still fits the data" in s.value for s in at.success), [s.value for s in at.success]


def test_check_model_command_says_and_cures(trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from dashboard.cli import main
    from dashboard.registry import active_model_id, save_model

    path, model, end = trained
    models = tmp_path / "models"
    save_model(_shifted(model, 1.2), models_dir=models)
    args = ["check-model", "--db", str(path), "--models-dir", str(models)]
    assert main([*args, "--json"]) == 3  # needs action
    said = json.loads(capsys.readouterr().out)
    assert said["advice"] == "recalibrate" and said["recalibrated_to"] is None
    assert main([*args, "--recalibrate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Recalibrate the risk model") and "Saved and activated" in out
    assert active_model_id(models_dir=models).endswith(f"-shifted-recal{end:%Y%m%d}")
    assert main(args) == 0
    assert "still fits the data" in capsys.readouterr().out
