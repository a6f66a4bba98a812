"""Model registry: ``<model_id>/{model.txt, hazard.txt, card.json}`` folders and an ``ACTIVE`` file.

A model is data: two LightGBM text files and a JSON card (training window, data fingerprint,
features, parameters, metrics next to the naive baseline, the calibration map as numbers,
created, card version, and the SHA-256 of each model file). Nothing is pickled.

Where models live: a store keeps the models trained on it beside it — the store
``data/recoup.duckdb`` keeps them in ``data/recoup.models/`` — unless ``--models-dir`` or
``$RECOUP_MODELS_DIR`` names another folder. The repository's ``models/`` holds the shipped
default model: read when a store has no usable model of its own, never written (except when
named explicitly, to regenerate it).

``ACTIVE`` holds the active model's id. When the active model cannot be used (corrupt or
truncated file, corrupt card, card from a newer Recoup, numbers out of range), the newest
model that can be used is taken instead and the reason is kept on the model
(``RiskModel.notice``). Every model file is checked against the card's digest *before*
LightGBM parses it: LightGBM kills the process on a cut-off model file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import lightgbm as lgb
import polars as pl

from dashboard import audit
from dashboard.access import Actor, authorize
from dashboard.config import MODELS_DIR, resolve_db_path
from dashboard.errors import ModelCardError, ModelError
from dashboard.features import FEATURE_COLUMNS
from dashboard.risk import CARD_VERSION, RiskModel
from dashboard.store import Store

MODELS_DIR_ENV_VAR = "RECOUP_MODELS_DIR"
SHIPPED_MODELS_DIR = MODELS_DIR
ACTIVE_FILE = "ACTIVE"
MODEL_FILES: tuple[str, ...] = ("model.txt", "hazard.txt")
# A model id is one folder name: letters, digits, dot, dash, underscore; never a path.
MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
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
# Bounds on the card's numbers that scoring uses. A Platt map with |a| or |b| beyond 100 turns
# every raw score into exactly 0 or 1; no trained map comes near (the shipped one: a = -1.04).
MAX_SIGMOID_PARAMETER = 100.0
MAX_CARD_INTEGER = 10**12
MAX_WINDOW_DAYS = 10 * 366
MAX_HAZARD_WEEKS = 520


def check_model_id(model_id: object) -> str:
    """``model_id`` if it names a model folder; a ModelError quoting it otherwise (``../x``, ``a/b``)."""
    if not isinstance(model_id, str) or not MODEL_ID.fullmatch(model_id) or ".." in model_id:
        msg = (
            f"{str(model_id)[:120]!r} is not a model id (letters, digits, '.', '-' and '_', naming a folder "
            "of the model registry)."
        )
        raise ModelError(msg)
    return model_id


def store_models_dir(db: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder beside a store that keeps its models (``data/recoup.duckdb`` ->
    ``data/recoup.models``); None for an in-memory store."""
    path = resolve_db_path(db) if str(db) != ":memory:" else None
    if path is None:
        return None
    return path.with_name(f"{path.stem}.models")


def resolve_models_dir(
    models_dir: str | os.PathLike[str] | None = None, *, db: str | os.PathLike[str] | None = None
) -> Path | None:
    """The registry folder models are saved to and read from first: ``models_dir``, else
    ``$RECOUP_MODELS_DIR``, else beside the store ``db`` (see :func:`store_models_dir`)."""
    if models_dir:
        return Path(models_dir)
    env = os.environ.get(MODELS_DIR_ENV_VAR)
    if env:
        return Path(env)
    return store_models_dir(db)


def _is_shipped_dir(root: Path | None) -> bool:
    return root is not None and root.resolve() == SHIPPED_MODELS_DIR.resolve()


def is_shipped(model: RiskModel) -> bool:
    """Whether ``model`` is the read-only default shipped in the repository's ``models/``."""
    return model.path is not None and _is_shipped_dir(Path(model.path).parent)


def _file_digest(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}


def save_model(
    model: RiskModel,
    *,
    models_dir: str | os.PathLike[str] | None = None,
    db: str | os.PathLike[str] | None = None,
    activate: bool = True,
    store: Store | None = None,
    actor: Actor | None = None,
) -> Path:
    """Write the model's two boosters and its card (with each file's SHA-256) into the store's
    registry (see :func:`resolve_models_dir`); make it active unless told not to.

    With ``store``, the change is authorized and audited there (``model_train``, or
    ``model_recalibrate`` for a recalibrated model): see :func:`_audited`.
    """
    recalibrated = "recalibration_fit" in model.card
    action = "model_recalibrate" if recalibrated else "model_train"
    details = {"model_id": model.model_id, "activated": activate,
               "data_end": (model.card.get("windows") or {}).get("data_end") if isinstance(model.card.get("windows"), dict) else None}
    with _audited(store, actor, action, details, after={"active": model.model_id} if activate else None,
                  before={"active": active_model_id(models_dir=models_dir, db=db)} if activate else None):
        return _save_model(model, models_dir=models_dir, db=db, activate=activate)


def _save_model(
    model: RiskModel, *, models_dir: str | os.PathLike[str] | None, db: str | os.PathLike[str] | None, activate: bool
) -> Path:
    root = resolve_models_dir(models_dir, db=db)
    if root is None:
        msg = "An in-memory store has no folder to keep models in; give a models folder (--models-dir)."
        raise ModelError(msg)
    if not model.model_id:
        msg = "This model has no id; it was not produced by train_model."
        raise ModelError(msg)
    check_model_id(model.model_id)
    root.mkdir(parents=True, exist_ok=True)
    target = root / model.model_id
    staging = Path(tempfile.mkdtemp(prefix=f".{model.model_id}-", dir=root))
    try:
        model.late_booster.save_model(str(staging / "model.txt"))
        model.hazard_booster.save_model(str(staging / "hazard.txt"))
        model.card["files"] = {name: _file_digest(staging / name) for name in MODEL_FILES}
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
        _set_active(model.model_id, models_dir=root, db=None)
    return target


@contextmanager
def _audited(
    store: Store | None, actor: Actor | None, action: str, details: dict[str, Any], *, before: Any, after: Any
) -> Iterator[None]:
    """Run a registry change (files) inside a store transaction that authorizes it and holds its
    audit row; the files are changed last, so a failed change rolls the row back. (A commit
    that fails after the files changed would leave them changed without a row: DuckDB and a
    folder share no transaction.) Without a store nothing is audited (tests, tools)."""
    if store is None:
        yield
        return
    with store.transaction() as cur:
        actor = authorize(cur, actor, action)
        audit.record(cur, actor, action, details, before=before, after=after)
        yield


def read_card(model_dir: Path) -> dict[str, Any]:
    """Read and check a card; refuse corrupt, incomplete, foreign or future cards, and cards
    whose numbers scoring would use are out of range."""
    path = model_dir / "card.json"
    name = model_dir.name
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        msg = f"Model {name!r} has no card.json; it cannot be used."
        raise ModelCardError(msg) from exc
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError: bad JSON, and also a number with thousands of digits
        msg = f"The card of model {name!r} is corrupt ({str(exc)[:200]}); it cannot be used."
        raise ModelCardError(msg) from None
    if not isinstance(card, dict):
        msg = f"The card of model {name!r} is not a JSON object; got {type(card).__name__}."
        raise ModelCardError(msg)
    version = card.get("card_version")
    if not isinstance(version, int) or isinstance(version, bool):
        msg = f"The card of model {name!r} has no valid card_version; got {_short(version)}."
        raise ModelCardError(msg)
    if version > CARD_VERSION:
        msg = (
            f"Model {name!r} was saved by a newer Recoup (card version {_short(version)}; this one "
            f"reads up to {CARD_VERSION}). Upgrade Recoup to use it."
        )
        raise ModelCardError(msg)
    missing = [k for k in REQUIRED_CARD_KEYS if k not in card]
    if missing:
        msg = f"The card of model {name!r} is incomplete: missing {missing!r}."
        raise ModelCardError(msg)
    features = card["features"]
    if not isinstance(features, list) or features != list(FEATURE_COLUMNS):
        msg = (
            f"Model {name!r} was trained on different features than this Recoup builds "
            f"({_feature_difference(features)}); retrain it."
        )
        raise ModelCardError(msg)
    _check_card_values(card, name)
    return card


def _short(value: object, limit: int = 60) -> str:
    """``repr`` of a card value, cut short (a card can hold a 5,000-digit number)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        return "a number too long to print"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _feature_difference(features: object) -> str:
    if not isinstance(features, list):
        return f"the card's feature list is {_short(features)}"
    wanted, got = list(FEATURE_COLUMNS), [str(f) for f in features]
    missing = [f for f in wanted if f not in got]
    extra = [f for f in got if f not in wanted]
    parts = []
    if missing:
        parts.append(
            f"missing {', '.join(missing[:5])}" + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        )
    if extra:
        parts.append(f"unknown {', '.join(extra[:5])}" + (f" and {len(extra) - 5} more" if len(extra) > 5 else ""))
    if not parts:
        position = next(i for i, (a, b) in enumerate(zip(got, wanted, strict=False)) if a != b)
        if len(got) != len(wanted):
            parts.append(f"{len(got)} features listed, {len(wanted)} expected")
        else:
            parts.append(
                f"the same {len(wanted)} features in another order: feature {position + 1} is "
                f"{got[position]!r}, expected {wanted[position]!r}"
            )
    return "; ".join(parts)


def _bad_number(name: str, field: str, value: object, expected: str) -> ModelCardError:
    return ModelCardError(
        f"The card of model {name!r} has {field} = {_short(value)}; expected {expected}. It cannot be used."
    )


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_card_values(card: dict[str, Any], name: str) -> None:
    """Refuse a card whose numbers scoring uses are of the wrong kind or out of range."""
    stack: list[tuple[str, object]] = [("card", card)]
    while stack:  # no number anywhere in a card needs more than 12 digits
        where, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{where}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_CARD_INTEGER:
            raise _bad_number(name, where.removeprefix("card."), value, f"a number below {MAX_CARD_INTEGER:,}")
    calibration = card["calibration"]
    method = calibration.get("method") if isinstance(calibration, dict) else None
    if method == "sigmoid":
        for key in ("a", "b"):
            value = calibration.get(key)
            if not _number(value) or abs(value) > MAX_SIGMOID_PARAMETER:
                raise _bad_number(
                    name,
                    f"calibration.{key}",
                    value,
                    f"a number between -{MAX_SIGMOID_PARAMETER:g} and {MAX_SIGMOID_PARAMETER:g}",
                )
    elif method == "isotonic":
        xs, ys = calibration.get("x"), calibration.get("y")
        if not (isinstance(xs, list) and isinstance(ys, list) and len(xs) == len(ys) >= 2):
            raise _bad_number(name, "calibration.x/y", (xs, ys), "two lists of the same length (at least 2)")
        if not all(_number(x) for x in xs) or any(b < a for a, b in zip(xs, xs[1:], strict=False)):
            raise _bad_number(name, "calibration.x", xs, "finite, increasing raw scores")
        if not all(_number(y) and 0.0 <= y <= 1.0 for y in ys):
            raise _bad_number(name, "calibration.y", ys, "probabilities between 0 and 1")
    elif method != "none":
        raise _bad_number(name, "calibration.method", method, "'sigmoid', 'isotonic' or 'none'")
    hazard = card["hazard"]
    weeks = hazard.get("weeks") if isinstance(hazard, dict) else None
    if not _whole(weeks, 1, MAX_HAZARD_WEEKS):
        raise _bad_number(name, "hazard.weeks", weeks, f"a whole number of weeks from 1 to {MAX_HAZARD_WEEKS}")
    levels = hazard.get("interval_levels", [0.1, 0.9])
    if not (
        isinstance(levels, list)
        and len(levels) == 2
        and all(_number(v) for v in levels)
        and 0 < levels[0] < levels[1] < 1
    ):
        raise _bad_number(name, "hazard.interval_levels", levels, "two probabilities, low then high")
    spec = card["feature_spec"]
    if not isinstance(spec, dict):
        raise _bad_number(name, "feature_spec", spec, "an object")
    for key, value in spec.items():
        if key != "segment_rules" and not _whole(value, 0, MAX_WINDOW_DAYS):
            raise _bad_number(name, f"feature_spec.{key}", value, f"a whole number of days from 0 to {MAX_WINDOW_DAYS}")
    threads = card.get("lightgbm", {}).get("n_jobs", 1) if isinstance(card.get("lightgbm", {}), dict) else None
    if not _whole(threads, -1, 256):
        raise _bad_number(name, "lightgbm.n_jobs", threads, "a thread count")
    categories = card["categories"]
    if not isinstance(categories, dict) or not all(
        isinstance(v, list) and all(isinstance(c, str) for c in v) for v in categories.values()
    ):
        raise _bad_number(name, "categories", categories, "lists of category names")
    windows = card["windows"]
    try:
        date.fromisoformat(windows["data_end"])
    except (TypeError, KeyError, ValueError):
        raise _bad_number(
            name,
            "windows.data_end",
            windows.get("data_end") if isinstance(windows, dict) else windows,
            "a date like 2026-09-30",
        ) from None


def _check_model_file(model_dir: Path, file_name: str, expected: object) -> None:
    """Refuse a model file that is not the one the card describes, before LightGBM reads it.

    LightGBM does not fail on a cut-off or altered model file: it aborts or crashes the whole
    process (the Streamlit server included). Cards record each file's SHA-256 and size; a card
    written before that gets a structural check (a complete file ends with the parameters
    section LightGBM writes last).
    """
    path = model_dir / file_name
    if not path.is_file():
        msg = f"Model {model_dir.name!r} has no {file_name}; it cannot be used."
        raise ModelCardError(msg)
    if isinstance(expected, dict):
        actual = _file_digest(path)
        if actual["bytes"] != expected.get("bytes") or actual["sha256"] != expected.get("sha256"):
            msg = (
                f"The file {file_name} of model {model_dir.name!r} is not the one its card describes "
                f"({actual['bytes']:,} bytes, expected {_short(expected.get('bytes'))}): it is cut off or was "
                "changed, so it is not used."
            )
            raise ModelCardError(msg)
        return
    with path.open("rb") as handle:
        handle.seek(max(path.stat().st_size - 4096, 0))
        tail = handle.read()
    if b"\nend of parameters\n" not in tail or not re.search(rb"\npandas_categorical:[^\n]*\S", tail):
        msg = f"The file {file_name} of model {model_dir.name!r} is cut off (it does not end as LightGBM writes it), so it is not used."
        raise ModelCardError(msg)


def _model_folder(model_id: str, root: Path | None) -> Path:
    """Where ``model_id`` lives: the store's registry first, then the shipped models."""
    check_model_id(model_id)
    for folder in (root, SHIPPED_MODELS_DIR):
        if folder is not None and (folder / model_id).is_dir():
            return folder / model_id
    where = " or ".join(repr(str(f)) for f in (root, SHIPPED_MODELS_DIR) if f is not None)
    msg = f"There is no model {model_id!r} in {where}."
    raise ModelError(msg)


def load_model(
    model_id: str, *, models_dir: str | os.PathLike[str] | None = None, db: str | os.PathLike[str] | None = None
) -> RiskModel:
    """Load one model by id (from the store's registry, else the shipped models); raises
    ModelError when the id is not a model folder and ModelCardError when the model cannot be used."""
    model_dir = _model_folder(model_id, resolve_models_dir(models_dir, db=db))
    card = read_card(model_dir)
    files = card.get("files") if isinstance(card.get("files"), dict) else {}
    for file_name in MODEL_FILES:
        _check_model_file(model_dir, file_name, files.get(file_name))
    try:
        late = lgb.Booster(model_file=str(model_dir / "model.txt"))
        hazard = lgb.Booster(model_file=str(model_dir / "hazard.txt"))
    except (lgb.basic.LightGBMError, OSError, ValueError) as exc:
        msg = f"The model files of {model_id!r} are missing or corrupt ({str(exc)[:200]})."
        raise ModelCardError(msg) from exc
    if late.num_feature() != len(FEATURE_COLUMNS) or hazard.num_feature() != len(FEATURE_COLUMNS) + 1:
        msg = f"The model files of {model_id!r} do not match its card (feature counts differ)."
        raise ModelCardError(msg)
    return RiskModel(late_booster=late, hazard_booster=hazard, card=card, model_id=model_id, path=str(model_dir))


def set_active(
    model_id: str,
    *,
    models_dir: str | os.PathLike[str] | None = None,
    db: str | os.PathLike[str] | None = None,
    store: Store | None = None,
    actor: Actor | None = None,
) -> None:
    """Make ``model_id`` (it must load) the active model of the store's registry; with
    ``store``, authorized and audited there (``model_activate``)."""
    before = {"active": active_model_id(models_dir=models_dir, db=db)}
    with _audited(store, actor, "model_activate", {"model_id": model_id}, before=before, after={"active": model_id}):
        _set_active(model_id, models_dir=models_dir, db=db)


def _set_active(
    model_id: str, *, models_dir: str | os.PathLike[str] | None, db: str | os.PathLike[str] | None
) -> None:
    root = resolve_models_dir(models_dir, db=db)
    if root is None:
        msg = "An in-memory store has no folder to keep its active model in; give a models folder (--models-dir)."
        raise ModelError(msg)
    load_model(model_id, models_dir=root)
    root.mkdir(parents=True, exist_ok=True)
    (root / ACTIVE_FILE).write_text(model_id + "\n", encoding="utf-8")


def _read_active(root: Path | None) -> str | None:
    path = root / ACTIVE_FILE if root is not None else None
    if path is None or not path.is_file():
        return None
    try:
        value = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return value or None


def active_model_id(
    *, models_dir: str | os.PathLike[str] | None = None, db: str | os.PathLike[str] | None = None
) -> str | None:
    """The id in the store registry's ``ACTIVE`` (not checked), or None."""
    return _read_active(resolve_models_dir(models_dir, db=db))


def registry_stamp(
    *, models_dir: str | os.PathLike[str] | None = None, db: str | os.PathLike[str] | None = None
) -> str:
    """Changes when a model is saved or another model is made active (a cache key)."""
    root = resolve_models_dir(models_dir, db=db)
    parts = []
    for folder in (root, SHIPPED_MODELS_DIR):
        if folder is None:
            continue
        active = folder / ACTIVE_FILE
        parts.append(str(folder))
        if active.is_file():
            parts.append(f"{_read_active(folder)}@{active.stat().st_mtime_ns}")
        parts.extend(
            f"{p.name}@{(p / 'card.json').stat().st_mtime_ns if (p / 'card.json').exists() else 0}"
            for p in _model_dirs(folder)
        )
    return "|".join(parts)


def _model_dirs(root: Path | None) -> list[Path]:
    if root is None or not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _registries(root: Path | None) -> list[Path]:
    """The store's registry, then the shipped models (once, when they are the same folder)."""
    folders = [root] if root is not None else []
    if not _is_shipped_dir(root):
        folders.append(SHIPPED_MODELS_DIR)
    return folders


def list_models(
    *, models_dir: str | os.PathLike[str] | None = None, db: str | os.PathLike[str] | None = None
) -> pl.DataFrame:
    """Every model folder of the store's registry and the shipped models, newest first: id,
    created, usable, problem, active, shipped (read-only default), headline metrics."""
    root = resolve_models_dir(models_dir, db=db)
    active = _read_active(root) or _read_active(SHIPPED_MODELS_DIR)
    rows = []
    for folder in _registries(root):
        shipped = _is_shipped_dir(folder)
        for model_dir in _model_dirs(folder):
            row: dict[str, Any] = {
                "model_id": model_dir.name,
                "created": None,
                "usable": True,
                "problem": None,
                "active": model_dir.name == active,
                "shipped": shipped,
                "data_end": None,
                "auc_not_yet_due": None,
                "baseline_auc_not_yet_due": None,
                "ece": None,
                "p10_p90_coverage": None,
            }
            try:
                check_model_id(model_dir.name)
                card = read_card(model_dir)
                metrics = card.get("metrics", {})
                row.update(
                    created=str(card.get("created")),
                    data_end=card.get("windows", {}).get("data_end"),
                    auc_not_yet_due=metrics.get("not_yet_due", {}).get("model", {}).get("auc"),
                    baseline_auc_not_yet_due=metrics.get("not_yet_due", {}).get("baseline", {}).get("auc"),
                    ece=metrics.get("all", {}).get("model", {}).get("ece"),
                    p10_p90_coverage=metrics.get("pay_date", {}).get("p10_p90_coverage"),
                )
            except (ModelError, AttributeError, TypeError) as exc:
                row.update(usable=False, problem=str(exc) if isinstance(exc, ModelError) else "the card is malformed")
            rows.append(row)
    schema = {
        "model_id": pl.String,
        "created": pl.String,
        "usable": pl.Boolean,
        "problem": pl.String,
        "active": pl.Boolean,
        "shipped": pl.Boolean,
        "data_end": pl.String,
        "auc_not_yet_due": pl.Float64,
        "baseline_auc_not_yet_due": pl.Float64,
        "ece": pl.Float64,
        "p10_p90_coverage": pl.Float64,
    }
    frame = pl.DataFrame(rows, schema=schema, strict=False)
    # the store's own models first, newest first; the shipped default after them
    return frame.sort(["shipped", "created", "model_id"], descending=[False, True, True], nulls_last=True)


def load_active_model(
    *, models_dir: str | os.PathLike[str] | None = None, db: str | os.PathLike[str] | None = None
) -> RiskModel:
    """The active model of the store's registry; if it cannot be used, the newest usable one
    there (with ``notice`` saying why); with none there, the shipped default.

    Raises ModelError when no model can be used.
    """
    root = resolve_models_dir(models_dir, db=db)
    problem = None
    wanted = _read_active(root)
    if wanted:
        try:
            return load_model(wanted, models_dir=root)
        except ModelError as exc:
            problem = str(exc)
    elif _model_dirs(root):
        problem = f"No active model is set in {str(root)!r}."
    for folder in _registries(root):
        shipped = _is_shipped_dir(folder)
        default = _read_active(folder) if shipped and folder != root else None
        candidates = [default] if default else []
        candidates += [p.name for p in reversed(_newest_last(folder))]
        for model_id in dict.fromkeys(candidates):
            if model_id == wanted:
                continue
            try:
                model = load_model(model_id, models_dir=folder)
            except ModelError:
                continue
            if problem:
                kind = "the shipped default model" if shipped and folder != root else "the last good model"
                model.notice = f"{problem} Using {kind} {model_id!r} instead."
            return model
    where = " or ".join(repr(str(f)) for f in _registries(root))
    msg = (
        f"No usable payment-risk model in {where}. {problem or ''} "
        "Train one on the Risk page or with `python -m dashboard train`."
    ).replace("  ", " ")
    raise ModelError(msg)


def _newest_last(folder: Path) -> list[Path]:
    """Model folders by their card's ``created`` (unreadable cards first, so tried last)."""

    def created(model_dir: Path) -> str:
        try:
            value = json.loads((model_dir / "card.json").read_text(encoding="utf-8")).get("created")
        except (OSError, ValueError, RecursionError, AttributeError):
            return ""
        return str(value) if value else ""

    return sorted(_model_dirs(folder), key=lambda p: (created(p), p.name))
