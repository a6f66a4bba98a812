"""Exports: CSV is formula-safe with a BOM, XLSX is formatted, JSON validates against the
documented schema, and exporting records the lines; the ``worklist`` command end to end."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import jsonschema
import polars as pl
import pytest

from dashboard.csv_writer import FORMULA_PREFIXES, neutralize_cell, to_csv_bytes
from dashboard.errors import WorklistError
from dashboard.export_history import build_export_files, export_history, save_export
from dashboard.exports import (
    SCHEMA_PATH,
    export_worklist,
    flat_lines,
    format_from_path,
    load_json_schema,
    outcomes_template_csv,
    read_outcomes_csv,
    to_json_dict,
    to_xlsx_bytes,
)
from dashboard.store import Store
from dashboard.worklist import build_worklist, record_outcomes
from tests.rows import insert_rows

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2025, 6, 10)
NASTY_NAMES = [
    '=HYPERLINK("http://evil.test","x")',
    "+SUM(A1:A9)",
    "-2+3",
    "@cmd",
    "\tTabbed",
    "\rReturn",
    "Plain & Co",
]


@pytest.fixture
def nasty(store: Store) -> Store:
    """Seven customers with names a spreadsheet would run as formulas, one overdue invoice each."""
    customers = pl.DataFrame({
        "customer_id": [f"C{i}" for i in range(len(NASTY_NAMES))],
        "name": NASTY_NAMES,
        "owner": ["ana"] * len(NASTY_NAMES),
        "strategic": [False] * len(NASTY_NAMES),
        "email": [f"c{i}@example.test" for i in range(len(NASTY_NAMES))],
    })
    invoices = pl.DataFrame({
        "invoice_id": [f"=INV{i}" if i == 0 else f"INV{i}" for i in range(len(NASTY_NAMES))],
        "customer_id": [f"C{i}" for i in range(len(NASTY_NAMES))],
        "doc_type": ["invoice"] * len(NASTY_NAMES),
        "invoice_date": [date(2025, 4, 1)] * len(NASTY_NAMES),
        "due_date": [date(2025, 5, 1)] * len(NASTY_NAMES),
        "amount": [100.0 * (i + 1) for i in range(len(NASTY_NAMES))],
        "currency": ["USD"] * len(NASTY_NAMES),
    })
    insert_rows(store, "customers", customers)
    insert_rows(store, "invoices", invoices)
    return store


def is_number(text: str) -> bool:
    return re.fullmatch(r"-?\d+(\.\d+)?", text) is not None


def test_neutralize_cell() -> None:
    assert neutralize_cell("=1+1") == "'=1+1"
    assert neutralize_cell("Acme") == "Acme"
    assert all(neutralize_cell(p + "x").startswith("'") for p in FORMULA_PREFIXES)


def test_csv_has_bom_and_no_cell_a_spreadsheet_would_run(nasty: Store) -> None:
    result = build_worklist(nasty, AS_OF, use_model=False)
    data = export_worklist(nasty, result, export_format="csv")
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], rows[1:]
    assert len(body) == len(NASTY_NAMES)
    for row in body:
        for cell in row:
            assert not cell.startswith(FORMULA_PREFIXES) or is_number(cell), f"formula-like cell {cell!r}"
    names = [row[header.index("customer_name")] for row in body]
    assert '\'=HYPERLINK("http://evil.test","x")' in names and "Plain & Co" in names and "'\tTabbed" in names
    assert "'=INV0" in [row[header.index("invoice_ids")] for row in body]


def test_xlsx_is_formatted_with_frozen_header_and_autofilter(nasty: Store) -> None:
    result = build_worklist(nasty, AS_OF, use_model=False)
    data = export_worklist(nasty, result, export_format="xlsx", record=False)
    back = pl.read_excel(io.BytesIO(data))
    assert back.height == len(NASTY_NAMES)
    assert back["open_amount"].sum() == pytest.approx(sum(100.0 * (i + 1) for i in range(len(NASTY_NAMES))))
    assert '=HYPERLINK("http://evil.test","x")' in back["customer_name"].to_list()  # kept as text
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert 'ySplit="1"' in sheet and 'state="frozen"' in sheet
    assert '<autoFilter ref="A1:' in sheet
    assert "<f>" not in sheet  # no cell is a formula, even "=HYPERLINK(...)"
    assert "#,##0.00" in zipfile.ZipFile(io.BytesIO(data)).read("xl/styles.xml").decode()


def test_json_validates_against_the_documented_schema(nasty: Store) -> None:
    result = build_worklist(nasty, AS_OF, capacity_per_collector=3, use_model=False)
    document = json.loads(export_worklist(nasty, result, export_format="json", lines=result.lines, record=False))
    schema = load_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)
    assert document["as_of"] == "2025-06-10" and len(document["lines"]) == len(NASTY_NAMES)
    assert document["capacity_per_collector"] == 3
    assert {line["scheduled_date"] for line in document["lines"]} == {"2025-06-10", "2025-06-11", "2025-06-12"}
    # the schema bites: a line without its invoices, or an unknown action, is invalid
    broken = json.loads(json.dumps(document))
    del broken["lines"][0]["invoices"]
    with pytest.raises(jsonschema.ValidationError, match="invoices"):
        jsonschema.validate(broken, schema)
    broken = json.loads(json.dumps(document))
    broken["lines"][0]["action"] = "send flowers"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    assert SCHEMA_PATH == ROOT / "docs" / "worklist.schema.json"


def test_empty_worklist_exports_are_still_valid(store: Store) -> None:
    result = build_worklist(store, AS_OF, use_model=False)
    assert result.lines.is_empty()
    jsonschema.validate(to_json_dict(result, result.today()), load_json_schema())
    assert to_csv_bytes(flat_lines(result.today())).decode("utf-8-sig").startswith("line_id,")
    assert pl.read_excel(io.BytesIO(to_xlsx_bytes(flat_lines(result.today())))).height == 0


def test_exports_are_recorded_in_actions_once(nasty: Store) -> None:
    result = build_worklist(nasty, AS_OF, use_model=False)
    export_worklist(nasty, result, export_format="csv")
    export_worklist(nasty, result, export_format="json")
    recorded = nasty.query("SELECT action_id, status, export_format, policy_version FROM actions")
    assert recorded.height == len(NASTY_NAMES)
    assert set(recorded["status"]) == {"exported"} and set(recorded["export_format"]) == {"csv"}
    assert set(recorded["policy_version"]) == {1}  # the shipped default, saved by the first export


def test_export_format_comes_from_the_file_name() -> None:
    assert format_from_path("out/today.XLSX") == "xlsx"
    with pytest.raises(WorklistError, match="'today.pdf'"):
        format_from_path("today.pdf")


def test_outcomes_csv_round_trip(nasty: Store) -> None:
    result = build_worklist(nasty, AS_OF, use_model=False)
    exported = export_worklist(nasty, result, export_format="csv").decode("utf-8-sig")
    frame = pl.read_csv(io.StringIO(exported), infer_schema=False)
    filled = frame.select("line_id").with_columns(
        outcome=pl.Series(["done", "paid", "skipped", "", "promise", "done", "done"]),
        promise_date=pl.Series([None, None, None, None, "2025-06-20", None, None]),
    )
    outcomes = read_outcomes_csv(("\ufeff" + filled.write_csv()).encode("utf-8"))
    assert outcomes.height == 6  # the row without an outcome is skipped
    assert record_outcomes(nasty, outcomes) == 6
    statuses = nasty.query("SELECT status, count(*)::INT AS n FROM actions GROUP BY 1 ORDER BY 1")
    assert dict(statuses.iter_rows()) == {"done": 5, "exported": 1, "skipped": 1}
    assert nasty.scalar("SELECT count(*) FROM contacts") == 5  # done, paid, promise: touches that happened
    with pytest.raises(WorklistError, match="missing \\['outcome'\\]"):
        read_outcomes_csv(b"line_id,comment\nx,y\n")


def test_worklist_command_writes_the_file_and_records_it(nasty: Store, tmp_path: Path) -> None:
    nasty.close()
    out = tmp_path / "today.json"
    command = [
        sys.executable,
        "-m",
        "dashboard",
        "worklist",
        "--db",
        str(nasty.path),
        "--as-of",
        "2025-06-10",
        "--out",
        str(out),
        "--capacity",
        "2",
        "--no-model",
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert "2025-06-10: 2 lines today" in done.stdout and "5 scheduled later" in done.stdout
    document = json.loads(out.read_text(encoding="utf-8"))
    jsonschema.validate(document, load_json_schema())
    assert len(document["lines"]) == 2
    bad = subprocess.run(
        [*command[:-5], "--capacity", "2", "--out", str(tmp_path / "x.pdf")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert bad.returncode == 2 and "x.pdf" in bad.stderr
    with Store(nasty.path) as store:
        assert store.scalar("SELECT count(*) FROM actions") == 2


def test_outcomes_and_policy_commands(nasty: Store, tmp_path: Path) -> None:
    result = build_worklist(nasty, AS_OF, use_model=False)
    export_worklist(nasty, result, export_format="csv")
    first = result.today()["line_id"][0]
    nasty.close()
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text(f"line_id,outcome,promise_date\n{first},promise,2025-06-20\n", encoding="utf-8")
    run = [sys.executable, "-m", "dashboard"]
    done = subprocess.run(
        [*run, "outcomes", str(outcomes), "--db", str(nasty.path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1 outcome(s) recorded" in done.stdout
    with Store(nasty.path) as store:
        assert store.scalar("SELECT outcome FROM actions WHERE action_id = ?", [first]) == "promise"
        assert store.scalar("SELECT promise_date FROM contacts") == date(2025, 6, 20)

    policy_file = tmp_path / "policy.csv"
    policy_file.write_text(
        "rule_id,priority,min_days_past_due,max_days_past_due,action,channel,tone,template_id\n"
        "A,10,1,30,gentle reminder,email,friendly,gentle_reminder\n"
        "B,10,20,,call,call,firm,call\n",
        encoding="utf-8",
    )
    bad = subprocess.run(
        [*run, "policy", "--validate", str(policy_file), "--db", str(nasty.path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert bad.returncode == 2
    assert "Rules 'A' and 'B' have the same priority (10)" in bad.stderr
    shown = subprocess.run(
        [*run, "policy", "--db", str(nasty.path)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert shown.returncode == 0 and "policy version 1 (of 1): 10 rules, 10 active" in shown.stdout


def test_score_command_writes_a_formula_safe_csv(nasty: Store, tmp_path: Path, monkeypatch, capsys) -> None:
    from dashboard.cli import main

    monkeypatch.delenv("RECOUP_MODELS_DIR", raising=False)  # the shipped default model scores
    db = nasty.path
    nasty.close()
    out = tmp_path / "scores.csv"
    assert main(["score", "--db", str(db), "--as-of", AS_OF.isoformat(), "--out", str(out), "--no-reasons"]) == 0
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig"), newline="")))
    assert rows[0][:2] == ["invoice_id", "customer_id"]
    ids = sorted(r[0] for r in rows[1:])
    assert ids[0] == "'=INV0" and "=INV0" not in ids  # the invoice id a spreadsheet would run
    assert len(ids) == len(NASTY_NAMES)


def test_score_command_that_cannot_write_its_file_stores_nothing(
    nasty: Store, tmp_path: Path, monkeypatch, capsys
) -> None:
    from dashboard.cli import main

    monkeypatch.delenv("RECOUP_MODELS_DIR", raising=False)
    db = nasty.path
    nasty.close()
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    code = main(
        ["score", "--db", str(db), "--as-of", AS_OF.isoformat(), "--out", str(blocked / "s.csv"), "--no-reasons"]
    )
    assert code == 2
    assert f"Cannot write the scores to {str(blocked / 's.csv')!r}" in capsys.readouterr().err
    with Store(db) as s:
        assert s.scalar("SELECT count(*) FROM scores") == 0


def test_the_outcomes_template_is_formula_safe() -> None:
    recorded = pl.DataFrame(
        {
            "action_id": ["20250610-=C1", "=20250610-C2"],
            "customer_id": ['=HYPERLINK("http://evil.test","x")', "@cmd"],
            "action": ["call", "-2+3"],
        }
    )
    rows = list(csv.reader(io.StringIO(outcomes_template_csv(recorded).decode("utf-8-sig"), newline="")))
    assert rows == [
        ["action_id", "customer_id", "action", "outcome", "reason", "promise_date"],
        ["20250610-=C1", '\'=HYPERLINK("http://evil.test","x")', "call", "", "", ""],
        ["'=20250610-C2", "'@cmd", "'-2+3", "", "", ""],
    ]
    # filled in, it reads back: the guard's quote is taken off the ids
    filled = outcomes_template_csv(recorded).replace(b'"call",,,', b'"call",done,,')
    filled = filled.decode("utf-8-sig").replace(",,,\r\n", ",done,,\r\n").encode()
    assert read_outcomes_csv(filled)["action_id"].to_list() == ["20250610-=C1", "=20250610-C2"]


# -- written first, recorded after; the day's exports can be downloaded again -------------------
def _worklist_command(db: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "dashboard",
        "worklist",
        "--db",
        str(db),
        "--as-of",
        "2025-06-10",
        "--capacity",
        "2",
        "--no-model",
        "--out",
        str(out),
        *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)


def test_a_worklist_file_that_cannot_be_written_records_nothing(nasty: Store, tmp_path: Path) -> None:
    nasty.close()
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where a folder was expected")
    failed = _worklist_command(nasty.path, blocked / "t.csv")
    assert failed.returncode == 2, failed.stderr
    assert "Traceback" not in failed.stderr
    assert f"could not be written to {str(blocked / 't.csv')!r}" in failed.stderr
    assert "no line was recorded" in failed.stderr
    with Store(nasty.path) as store:
        assert store.scalar("SELECT count(*) FROM actions") == 0
        assert export_history(store, AS_OF) == []
    # so the next run still has the day's two lines (it said "0 lines today" before)
    done = _worklist_command(nasty.path, tmp_path / "t.csv", "--by", "Ana")
    assert done.returncode == 0, done.stderr
    assert "2025-06-10: 2 lines today" in done.stdout


def test_an_export_is_kept_beside_the_store_with_who_when_and_its_files(nasty: Store, tmp_path: Path) -> None:
    nasty.close()
    out = tmp_path / "today.csv"
    done = _worklist_command(nasty.path, out, "--by", "Ana Lima", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["recorded"] == 2
    with Store(nasty.path) as store:
        (record,) = export_history(store, AS_OF)
        recorded = sorted(store.query("SELECT action_id FROM actions")["action_id"].to_list())
    assert record.folder.parent.parent == nasty.path.with_name(f"{nasty.path.stem}.exports")
    assert (record.author, record.lines, record.newly_recorded, record.export_format) == ("Ana Lima", 2, 2, "csv")
    assert set(record.files) >= {"worklist-2025-06-10.csv", "worklist-2025-06-10.xlsx", "worklist-2025-06-10.json"}
    assert record.read("worklist-2025-06-10.csv") == out.read_bytes()  # the file handed out is the one kept
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig"), newline="")))
    assert sorted(r[0] for r in rows[1:]) == recorded
    json_lines = json.loads(record.read("worklist-2025-06-10.json"))["lines"]
    assert sorted(line["line_id"] for line in json_lines) == recorded


def test_a_record_that_fails_takes_the_written_files_back(nasty: Store, tmp_path: Path, monkeypatch) -> None:
    import dashboard.export_history as history

    result = build_worklist(nasty, AS_OF, use_model=False, capacity_per_collector=2)
    prepared = build_export_files(nasty, result)

    def broken(*args, **kwargs) -> int:
        raise WorklistError("the store refused the record")

    monkeypatch.setattr(history, "record_export", broken)
    out = tmp_path / "today.xlsx"
    with pytest.raises(WorklistError, match="refused the record"):
        save_export(nasty, result, prepared, export_format="xlsx", author="Ana", copy_to=out)
    assert not out.exists()
    assert export_history(nasty, AS_OF) == []
    day = history.exports_dir(nasty) / "2025-06-10"
    assert not [p for p in day.iterdir()], "an unrecorded export was left in the history"
    assert nasty.scalar("SELECT count(*) FROM actions") == 0
