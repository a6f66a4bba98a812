"""The command line's shared rules: one date parser for every --as-of, plain errors, exit codes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from dashboard.cli import main, parse_as_of
from dashboard.errors import CommandLineError


def test_parse_as_of_reads_iso_dates_and_keeps_none() -> None:
    assert parse_as_of("2026-06-30") == date(2026, 6, 30)
    assert parse_as_of(None) is None


def test_parse_as_of_quotes_what_was_typed() -> None:
    with pytest.raises(CommandLineError, match=r"got '30/06/2026'"):
        parse_as_of("30/06/2026")


@pytest.mark.parametrize("command", ["kpis", "forecast", "worklist", "score", "health"])
def test_every_dated_command_refuses_a_bad_date_with_exit_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [command, "--db", str(tmp_path / "s.duckdb"), "--as-of", "2026-02-30"]
    if command == "worklist":
        argv += ["--out", str(tmp_path / "w.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "2026-02-30" in err and "YYYY-MM-DD" in err
    assert "Traceback" not in err
