"""Write a generated world as canonical CSV or Parquet files (plus its ground truth)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from pathlib import Path

import polars as pl

from dashboard.config import SAMPLE_DATA_DIR
from dashboard.errors import SyntheticConfigError
from dashboard.schema import CANONICAL_COLUMNS
from dashboard.synthetic.generator import World, generate_world
from dashboard.synthetic.model import WorldConfig

# The committed sample_data/: small enough to commit, big enough to show every mechanism.
SAMPLE_CONFIG = WorldConfig(seed=20231001, n_customers=300, start=date(2023, 10, 1), months=36)
FILE_FORMATS = ("csv", "parquet")
# Decimals written per float column: money with cents, fx rates with six places, truth with four.
_FLOAT_PRECISION = {"fx_rates": 6}
_TRUTH_FLOAT_PRECISION = 4


def _write_csv(frame: pl.DataFrame, path: Path, *, float_precision: int) -> None:
    # Written through bytes with "\n" line ends so files are byte-identical on every platform.
    frame.write_csv(
        path,
        float_precision=float_precision,
        date_format="%Y-%m-%d",
        datetime_format="%Y-%m-%d %H:%M:%S",
        null_value="",
        line_terminator="\n",
    )


def write_world(world: World, out_dir: Path, *, file_format: str = "csv", include_truth: bool = True) -> list[Path]:
    """Write ``world.frames`` as ``<out_dir>/<table>.<format>`` and the truth under ``<out_dir>/truth/``.

    Returns the paths written, in a stable order. CSV output is deterministic: the same world
    always gives byte-identical files.
    """
    if file_format not in FILE_FORMATS:
        msg = f"The sample world can be written as csv or parquet; got file format {file_format!r}."
        raise SyntheticConfigError(msg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for table in CANONICAL_COLUMNS:
        frame = world.frames[table]
        path = out_dir / f"{table}.{file_format}"
        if file_format == "csv":
            _write_csv(frame, path, float_precision=_FLOAT_PRECISION.get(table, 2))
        else:
            frame.write_parquet(path, statistics=False)
        written.append(path)
    if include_truth:
        truth_dir = out_dir / "truth"
        truth_dir.mkdir(exist_ok=True)
        for name, frame in world.truth.items():
            path = truth_dir / f"{name}.{file_format}"
            if file_format == "csv":
                _write_csv(frame, path, float_precision=_TRUTH_FLOAT_PRECISION)
            else:
                frame.write_parquet(path, statistics=False)
            written.append(path)
        config = {
            key: str(value) if not isinstance(value, int | float) else value
            for key, value in asdict(world.config).items()
        }
        config["end_date"] = world.config.end_date.isoformat()
        for name, data in (("config.json", config), ("policy.json", world.policy.to_dict())):
            path = truth_dir / name
            path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8", newline="\n")
            written.append(path)
    return written


def write_sample_data(out_dir: Path = SAMPLE_DATA_DIR) -> list[Path]:
    """Regenerate the committed sample (``SAMPLE_CONFIG`` under the default policy) as CSV in ``out_dir``."""
    return write_world(generate_world(SAMPLE_CONFIG), Path(out_dir), file_format="csv", include_truth=True)
