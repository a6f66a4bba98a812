"""Model registry: ``models/<model_id>/{model.txt, hazard.txt, card.json}`` and ``models/ACTIVE``.

A model is data: two LightGBM text files and a JSON card (training window, data fingerprint,
features, parameters, metrics next to the naive baseline, the calibration map as numbers,
created, card version). Nothing is pickled. ``ACTIVE`` holds the active model's id; when the
active model cannot be read (corrupt card, card from a newer Recoup, missing file), the
newest model that can be read is used instead and the reason is kept on the model
(``RiskModel.notice``) for the Risk page to show.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import lightgbm as lgb
import polars as pl

from dashboard.config import MODELS_DIR
from dashboard.errors import ModelCardError, ModelError
from dashboard.features import FEATURE_COLUMNS
from dashboard.risk import CARD_VERSION, RiskModel

MODELS_DIR_ENV_VAR = "RECOUP_MODELS_DIR"
ACTIVE_FILE = "ACTIVE"
REQUIRED_CARD_KEYS: tuple[str, ...] = (
    "card_version",
    "model_id",
    "created",
    "features",
    "categories",
    "feature_spec",
    "calibration",
    "hazard",
    "metrics",
    "windows",
    "parameters",
    "data_fingerprint",
)


def resolve_models_dir(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """The registry folder: argument, else ``$RECOUP_MODELS_DIR``, else ``models/``."""
    if models_dir:
        return Path(models_dir)
    env = os.environ.get(MODELS_DIR_ENV_VAR)
    return Path(env) if env else MODELS_DIR


def save_model(model: RiskModel, *, models_dir: str | os.PathLike[str] | None = None, activate: bool = True) -> Path:
    """Write the model's two boosters and its card; make it active unless told not to."""
    root = resolve_models_dir(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    if not model.model_id:
        msg = "This model has no id; it was not produced by train_model."
        raise ModelError(msg)
    target = root / model.model_id
    staging = Path(tempfile.mkdtemp(prefix=f".{model.model_id}-", dir=root))
    try:
        model.late_booster.save_model(str(staging / "model.txt"))
        model.hazard_booster.save_model(str(staging / "hazard.txt"))
        (staging / "card.json").write_text(json.dumps(model.card, indent=2, default=str), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.chmod(0o755)  # mkdtemp makes it private; models are shared files
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    model.path = str(target)
    if activate:
        set_active(model.model_id, models_dir=root)
    return target


def read_card(model_dir: Path) -> dict[str, Any]:
    """Read and check a card; refuse corrupt, incomplete, foreign or future cards."""
    path = model_dir / "card.json"
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        msg = f"Model {model_dir.name!r} has no card.json; it cannot be used."
        raise ModelCardError(msg) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"The card of model {model_dir.name!r} is corrupt ({exc}); it cannot be used."
        raise ModelCardError(msg) from exc
    if not isinstance(card, dict):
        msg = f"The card of model {model_dir.name!r} is not a JSON object; got {type(card).__name__}."
        raise ModelCardError(msg)
    version = card.get("card_version")
    if not isinstance(version, int):
        msg = f"The card of model {model_dir.name!r} has no valid card_version; got {version!r}."
        raise ModelCardError(msg)
    if version > CARD_VERSION:
        msg = (
            f"Model {model_dir.name!r} was saved by a newer Recoup (card version {version}; this one "
            f"reads up to {CARD_VERSION}). Upgrade Recoup to use it."
        )
        raise ModelCardError(msg)
    missing = [k for k in REQUIRED_CARD_KEYS if k not in card]
    if missing:
        msg = f"The card of model {model_dir.name!r} is incomplete: missing {missing!r}."
        raise ModelCardError(msg)
    if list(card["features"]) != list(FEATURE_COLUMNS):
        msg = (
            f"Model {model_dir.name!r} was trained on different features than this Recoup builds "
            f"({len(card['features'])} vs {len(FEATURE_COLUMNS)}); retrain it."
        )
        raise ModelCardError(msg)
    return card


def load_model(model_id: str, *, models_dir: str | os.PathLike[str] | None = None) -> RiskModel:
    """Load one model by id; raises ModelCardError when it cannot be used."""
    model_dir = resolve_models_dir(models_dir) / model_id
    if not model_dir.is_dir():
        msg = f"There is no model {model_id!r} in {str(model_dir.parent)!r}."
        raise ModelError(msg)
    card = read_card(model_dir)
    try:
        late = lgb.Booster(model_file=str(model_dir / "model.txt"))
        hazard = lgb.Booster(model_file=str(model_dir / "hazard.txt"))
    except (lgb.basic.LightGBMError, OSError) as exc:
        msg = f"The model files of {model_id!r} are missing or corrupt ({exc})."
        raise ModelCardError(msg) from exc
    if late.num_feature() != len(FEATURE_COLUMNS) or hazard.num_feature() != len(FEATURE_COLUMNS) + 1:
        msg = f"The model files of {model_id!r} do not match its card (feature counts differ)."
        raise ModelCardError(msg)
    return RiskModel(late_booster=late, hazard_booster=hazard, card=card, model_id=model_id, path=str(model_dir))


def set_active(model_id: str, *, models_dir: str | os.PathLike[str] | None = None) -> None:
    """Make ``model_id`` the active model (it must load)."""
    root = resolve_models_dir(models_dir)
    load_model(model_id, models_dir=root)
    (root / ACTIVE_FILE).write_text(model_id + "\n", encoding="utf-8")


def active_model_id(*, models_dir: str | os.PathLike[str] | None = None) -> str | None:
    """The id in ``ACTIVE`` (not checked), or None."""
    path = resolve_models_dir(models_dir) / ACTIVE_FILE
    if not path.exists():
        return None
    value = path.read_text(encoding="utf-8").strip()
    return value or None


def registry_stamp(*, models_dir: str | os.PathLike[str] | None = None) -> str:
    """Changes when a model is saved or another model is made active (a cache key)."""
    root = resolve_models_dir(models_dir)
    active = root / ACTIVE_FILE
    parts = [str(root)]
    if active.exists():
        parts.append(f"{active.read_text(encoding='utf-8').strip()}@{active.stat().st_mtime_ns}")
    return "|".join(parts)


def _model_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]


def list_models(*, models_dir: str | os.PathLike[str] | None = None) -> pl.DataFrame:
    """Every model folder, newest first: id, created, usable, problem, active, headline metrics."""
    root = resolve_models_dir(models_dir)
    active = active_model_id(models_dir=root)
    rows = []
    for model_dir in _model_dirs(root):
        row: dict[str, Any] = {"model_id": model_dir.name, "created": None, "usable": True, "problem": None,
                               "active": model_dir.name == active, "data_end": None, "auc_not_yet_due": None,
                               "baseline_auc_not_yet_due": None, "ece": None, "p10_p90_coverage": None}
        try:
            card = read_card(model_dir)
            metrics = card.get("metrics", {})
            row.update(
                created=card.get("created"),
                data_end=card.get("windows", {}).get("data_end"),
                auc_not_yet_due=metrics.get("not_yet_due", {}).get("model", {}).get("auc"),
                baseline_auc_not_yet_due=metrics.get("not_yet_due", {}).get("baseline", {}).get("auc"),
                ece=metrics.get("all", {}).get("model", {}).get("ece"),
                p10_p90_coverage=metrics.get("pay_date", {}).get("p10_p90_coverage"),
            )
        except ModelError as exc:
            row.update(usable=False, problem=str(exc))
        rows.append(row)
    schema = {"model_id": pl.String, "created": pl.String, "usable": pl.Boolean, "problem": pl.String,
              "active": pl.Boolean, "data_end": pl.String, "auc_not_yet_due": pl.Float64,
              "baseline_auc_not_yet_due": pl.Float64, "ece": pl.Float64, "p10_p90_coverage": pl.Float64}
    frame = pl.DataFrame(rows, schema=schema)
    return frame.sort(["created", "model_id"], descending=True, nulls_last=True)


def load_active_model(*, models_dir: str | os.PathLike[str] | None = None) -> RiskModel:
    """The active model; if it cannot be used, the newest usable one (with ``notice`` saying why).

    Raises ModelError when no model in the registry can be used.
    """
    root = resolve_models_dir(models_dir)
    wanted = active_model_id(models_dir=root)
    problem = None
    if wanted:
        try:
            return load_model(wanted, models_dir=root)
        except ModelError as exc:
            problem = str(exc)
    else:
        problem = f"No active model is set in {str(root)!r}."
    for model_id in list_models(models_dir=root).filter(pl.col("usable"))["model_id"].to_list():
        if model_id == wanted:
            continue
        try:
            model = load_model(model_id, models_dir=root)
        except ModelError:
            continue
        model.notice = f"{problem} Using the last good model {model_id!r} instead."
        return model
    msg = (
        f"No usable payment-risk model in {str(root)!r}. {problem or ''} "
        "Train one on the Risk page or with `python -m dashboard train`."
    ).replace("  ", " ")
    raise ModelError(msg)
