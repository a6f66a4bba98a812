"""The audit trail: one row per change, in the change's own transaction, hash-chained.

Each write path is run for real on a store file; a change that fails (refused, conflicting,
not allowed, killed mid-transaction) leaves no row; an edited row is found by ``--verify``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from dashboard import audit, users
from dashboard.access import ADMIN, Actor, local_actor
from dashboard.cli import main
from dashboard.errors import AccessDeniedError, ConflictError, ModelError, UndoLoadError, ValidationError
from dashboard.ingest import load_file
from dashboard.ingest.undo import undo_load
from dashboard.policy import activate_policy_version, default_policy, save_policy
from dashboard.store import Store

ROOT = Path(__file__).resolve().parent.parent
INVOICES = "invoice_id,customer_id,invoice_date,due_date,amount\nA-1,C1,2026-01-02,2026-02-01,100.00\nA-2,C2,2026-01-05,2026-02-04,250.00\n"
CUSTOMERS = "customer_id,name,owner\nC1,Acme,Dana Whitfield\nC2,Bolt,Marcus Lee\n"


def _actions(store: Store) -> list[str]:
    return store.query("SELECT action FROM audit_log ORDER BY seq")["action"].to_list()


def _rows(store: Store) -> list[dict]:
    return store.query("SELECT * FROM audit_log ORDER BY seq").to_dicts()


@pytest.fixture
def loaded(tmp_path: Path) -> Store:
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "invoices.csv").write_text(INVOICES, encoding="utf-8")
    s = Store(tmp_path / "recoup.duckdb")
    load_file(s, tmp_path / "customers.csv")
    load_file(s, tmp_path / "invoices.csv")
    yield s
    s.close()


def test_a_load_and_its_undo_write_one_row_each_with_the_command_line_user(loaded: Store) -> None:
    rows = _rows(loaded)
    assert [r["action"] for r in rows] == ["load", "load"]
    details = json.loads(rows[1]["details"])
    assert details["file_name"] == "invoices.csv" and details["rows_loaded"] == 2 and details["table"] == "invoices"
    assert rows[1]["subject"] == local_actor().subject and rows[1]["role"] == ADMIN
    undo_load(loaded, details["load_id"])
    undo = _rows(loaded)[-1]
    assert undo["action"] == "undo_load"
    assert json.loads(undo["before"])["rows"]["invoices"] == 2 and json.loads(undo["after"]) == {"status": "undone"}
    assert audit.verify(loaded).ok


def test_a_customers_load_seeds_the_collector_assignments_from_the_owner_column(loaded: Store) -> None:
    assigned = loaded.query("SELECT collector, customer_id FROM assignments ORDER BY 1").rows()
    assert assigned == [("Dana Whitfield", "C1"), ("Marcus Lee", "C2")]


def test_refused_or_failed_changes_leave_no_row(loaded: Store, tmp_path: Path) -> None:
    before = _rows(loaded)
    bad = tmp_path / "bad.csv"
    bad.write_text("invoice_id,customer_id,invoice_date,due_date,amount\nX,C1,not a date,2026-01-01,1\n", encoding="utf-8")
    with pytest.raises(ValidationError):
        load_file(loaded, bad)
    # an undo that is blocked (the invoices load refers to the customers load's customers)
    with pytest.raises(UndoLoadError):
        undo_load(loaded, 1)
    # a policy save that lost a race
    save_policy(loaded, default_policy(), based_on_version=None)
    after_save = _rows(loaded)
    with pytest.raises(ConflictError):
        save_policy(loaded, default_policy(), based_on_version=None)
    # a person whose role does not allow it
    viewer = users.add_user(loaded, "cfo@example.com", "viewer")
    with pytest.raises(AccessDeniedError, match="may not change the collections policy"):
        save_policy(loaded, default_policy(), based_on_version=1, actor=users.actor_for(viewer))
    with pytest.raises(AccessDeniedError, match="may not undo a load"):
        undo_load(loaded, 2, actor=users.actor_for(viewer))
    assert loaded.scalar("SELECT status FROM loads WHERE load_id = 2") == "loaded"
    rows = _rows(loaded)
    assert [r["action"] for r in rows] == [*(r["action"] for r in before), "policy_save", "user_create"]
    assert rows[: len(after_save)] == after_save
    assert audit.verify(loaded).ok


def test_a_signed_in_person_is_checked_against_the_store_not_the_role_they_claim(loaded: Store) -> None:
    users.add_user(loaded, "ann@example.com", "analyst")
    analyst = users.actor_for(users.sign_in(loaded, subject="sub-ann", email="ann@example.com", name="Ann"))
    version = save_policy(loaded, default_policy(), based_on_version=None, actor=analyst)
    row = _rows(loaded)[-1]
    assert (row["action"], row["subject"], row["email"], row["role"]) == ("policy_save", "sub-ann", "ann@example.com", "analyst")
    assert json.loads(row["after"])["policy_version"] == version
    # claiming admin in the actor does not make one; deactivation applies to an open session
    with pytest.raises(AccessDeniedError):
        undo_load(loaded, 2, actor=Actor("sub-ann", ADMIN, email="ann@example.com"))
    users.change_user(loaded, "ann@example.com", active=False)
    with pytest.raises(AccessDeniedError, match="not an active user"):
        activate_policy_version(loaded, version, actor=analyst)
    assert [a for a in _actions(loaded)][-2:] == ["policy_save", "user_change"]


def test_policy_save_and_activation_record_before_and_after(loaded: Store) -> None:
    first = save_policy(loaded, default_policy(), based_on_version=None, author="Ann")
    rules = default_policy().with_columns(pl.col("cadence_days") + 1)
    second = save_policy(loaded, rules, based_on_version=first)
    activate_policy_version(loaded, first)
    saves = [r for r in _rows(loaded) if r["action"].startswith("policy")]
    assert [r["action"] for r in saves] == ["policy_save", "policy_save", "policy_activate"]
    assert saves[0]["before"] is None and json.loads(saves[1]["before"])["policy_version"] == first
    assert json.loads(saves[1]["details"])["changes"], "the rule changed is listed"
    assert json.loads(saves[2]["before"]) == {"active_version": second}
    assert json.loads(saves[2]["after"]) == {"active_version": first}


def test_model_save_activate_and_recalibrate_are_recorded_when_the_registry_changes(loaded: Store, tmp_path: Path) -> None:
    from dashboard.registry import SHIPPED_MODELS_DIR, active_model_id, load_model, save_model, set_active

    shipped = active_model_id(models_dir=SHIPPED_MODELS_DIR)
    registry = tmp_path / "models"
    model = load_model(shipped, models_dir=SHIPPED_MODELS_DIR)
    save_model(model, models_dir=registry, store=loaded)
    model.model_id = f"{shipped}-recal"
    model.card = {**model.card, "model_id": model.model_id, "recalibration_fit": {"rows": 1}}
    save_model(model, models_dir=registry, store=loaded)
    set_active(shipped, models_dir=registry, store=loaded)
    with pytest.raises(ModelError):
        set_active("no-such-model", models_dir=registry, store=loaded)
    rows = [r for r in _rows(loaded) if r["action"].startswith("model")]
    assert [r["action"] for r in rows] == ["model_train", "model_recalibrate", "model_activate"]
    assert json.loads(rows[1]["before"]) == {"active": shipped} and json.loads(rows[1]["after"]) == {"active": model.model_id}
    assert json.loads(rows[2]["after"]) == {"active": shipped}
    assert active_model_id(models_dir=registry) == shipped
    # a viewer cannot change the active model: refused before the file changes
    viewer = users.actor_for(users.add_user(loaded, "cfo@example.com", "viewer"))
    with pytest.raises(AccessDeniedError):
        set_active(model.model_id, models_dir=registry, store=loaded, actor=viewer)
    assert active_model_id(models_dir=registry) == shipped


def test_user_changes_are_recorded_with_before_and_after(loaded: Store) -> None:
    users.add_user(loaded, "col@example.com", "collector", name="Marcus Lee")
    users.change_user(loaded, "col@example.com", role="analyst")
    users.assign(loaded, "Marcus Lee", ["C1"])
    users.unassign(loaded, "Marcus Lee", ["C1"])
    rows = _rows(loaded)[-4:]
    assert [r["action"] for r in rows] == ["user_create", "user_change", "assignment_change", "assignment_change"]
    assert json.loads(rows[1]["before"])["role"] == "collector" and json.loads(rows[1]["after"])["role"] == "analyst"
    assert json.loads(rows[2]["after"]) == {"assigned": 2} and json.loads(rows[3]["after"]) == {"assigned": 1}
    # the last active admin stays an admin
    users.add_user(loaded, "boss@example.com", "admin")
    with pytest.raises(Exception, match="last active admin"):
        users.change_user(loaded, "boss@example.com", role="viewer")


def test_sign_in_is_recorded_once_per_sign_in_and_a_claim_seeds_a_new_role(loaded: Store) -> None:
    first = users.sign_in(loaded, subject="s1", email="a@example.com", name="A", claims={"iat": 1000, "groups": ["recoup-analyst"]})
    again = users.sign_in(loaded, subject="s1", email="a@example.com", name="A", claims={"iat": 1000, "groups": ["admin"]})
    later = users.sign_in(loaded, subject="s1", email="a@example.com", name="A", claims={"iat": 2000})
    assert first["role"] == again["role"] == later["role"] == "analyst"  # a claim seeds a new user only
    assert _actions(loaded)[-3:] == ["user_create", "sign_in", "sign_in"]
    stranger = users.sign_in(loaded, subject="s2", email="b@example.com", name="B", claims={"iat": 5})
    assert stranger["role"] == "viewer" and stranger["active"]


# -- the worklist ---------------------------------------------------------------------------------
@pytest.fixture
def sample_store(seeded_db_path: Path, tmp_path: Path) -> Store:
    copy = tmp_path / "recoup.duckdb"
    shutil.copy(seeded_db_path, copy)
    s = Store(copy)
    yield s
    s.close()


def test_export_and_outcomes_are_recorded_with_filter_line_count_and_scope(sample_store: Store) -> None:
    from dashboard.access import customer_scope
    from dashboard.dates import latest_data_date
    from dashboard.export_history import build_export_files, save_export
    from dashboard.filters import Filters
    from dashboard.worklist import build_worklist, record_outcomes

    as_of = latest_data_date(sample_store)
    users.add_user(sample_store, "marcus@example.com", "collector", name="Marcus Lee")
    marcus = users.actor_for(users.sign_in(sample_store, subject="sub-marcus", email="marcus@example.com", name="Marcus Lee"))
    cur = sample_store.cursor()
    scope = customer_scope(cur, marcus)
    cur.close()
    assert scope and len(scope) == sample_store.scalar("SELECT count(*) FROM customers WHERE owner = 'Marcus Lee'")

    everyone = build_worklist(sample_store, as_of, use_model=False)
    others = everyone.today().filter(pl.col("collector") != "Marcus Lee")
    assert others.height
    prepared = build_export_files(sample_store, everyone, lines=others)  # saves the shipped policy as version 1
    before = (_rows(sample_store), sample_store.scalar("SELECT count(*) FROM actions"))
    with pytest.raises(AccessDeniedError, match="not assigned"):
        save_export(sample_store, everyone, prepared, export_format="csv", author="marcus@example.com", actor=marcus)
    assert (_rows(sample_store), sample_store.scalar("SELECT count(*) FROM actions")) == before

    mine = build_worklist(sample_store, as_of, filters=Filters(customer_ids=scope), use_model=False)
    assert mine.today().height and set(mine.today()["customer_id"]) <= set(scope)
    assert set(mine.lines["collector"]) == {"Marcus Lee"}
    filters = Filters(customer_ids=scope, region=()).to_dict()
    record = save_export(sample_store, mine, build_export_files(sample_store, mine), export_format="csv",
                         author=marcus.label, actor=marcus, filters=filters)
    export = [r for r in _rows(sample_store) if r["action"] == "worklist_export"]
    assert len(export) == 1
    details = json.loads(export[0]["details"])
    assert details["lines"] == record.lines == mine.today().height
    assert details["filters"] == {"assigned_customers": len(scope)} and details["as_of"] == as_of.isoformat()
    assert (export[0]["subject"], export[0]["role"]) == ("sub-marcus", "collector")

    line = mine.today()["line_id"][0]
    record_outcomes(sample_store, pl.DataFrame({"action_id": [line], "outcome": ["done"]}), actor=marcus)
    outcome = _rows(sample_store)[-1]
    assert outcome["action"] == "outcomes_import"
    assert json.loads(outcome["details"]) == {"outcomes": 1, "by_outcome": {"done": 1}, "action_ids": [line]}
    assert audit.verify(sample_store).ok


# -- the chain ------------------------------------------------------------------------------------
def test_verify_finds_an_edited_a_removed_and_a_reordered_row(loaded: Store, capsys: pytest.CaptureFixture[str]) -> None:
    users.add_user(loaded, "x@example.com", "viewer")
    users.change_user(loaded, "x@example.com", role="analyst")
    path = loaded.path
    loaded.close()
    assert main(["audit", "--verify", "--db", str(path)]) == 0
    assert "intact: 4 row(s)" in capsys.readouterr().out

    con = duckdb.connect(str(path))
    con.execute("""UPDATE audit_log SET details = replace(details, '"x@example.com"', '"y@example.com"') WHERE seq = 3""")
    con.close()
    assert main(["audit", "--verify", "--db", str(path)]) == 1
    err = capsys.readouterr().err
    assert "BROKEN at row 3" in err and "content was changed" in err
    with Store(path) as s:
        check = audit.verify(s)
        assert (check.ok, check.broken_seq) == (False, 3)

    con = duckdb.connect(str(path))
    con.execute("""UPDATE audit_log SET details = replace(details, '"y@example.com"', '"x@example.com"') WHERE seq = 3""")
    con.execute("DELETE FROM audit_log WHERE seq = 2")
    con.close()
    with Store(path) as s:
        check = audit.verify(s)
        assert (check.ok, check.broken_seq) == (False, 3) and "jump" in check.reason

    # the JSON form and the listing
    assert main(["audit", "--verify", "--json", "--db", str(path)]) == 1
    assert json.loads(capsys.readouterr().out)["broken_seq"] == 3
    assert main(["audit", "--db", str(path), "--action", "user_change", "--json"]) == 0
    assert [r["action"] for r in json.loads(capsys.readouterr().out)] == ["user_change"]


def test_audit_rows_filter_by_person_action_and_day(loaded: Store) -> None:
    users.add_user(loaded, "x@example.com", "viewer")
    users.sign_in(loaded, subject="sx", email="x@example.com", name="X", claims={"iat": 1})
    assert audit.read_audit(loaded, who="x@example").height == 1  # the sign-in; the add was by the CLI user
    assert audit.read_audit(loaded, action="load").height == 2
    today = loaded.scalar("SELECT max(ts)::DATE FROM audit_log")
    assert audit.read_audit(loaded, since=today, until=today).height == 4
    assert audit.read_audit(loaded, until=date(2000, 1, 1)).height == 0


# -- killed mid-change ----------------------------------------------------------------------------
_KILLED_CHILD = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from dashboard import audit
import dashboard.ingest.load as load
from dashboard.store import Store

original = audit.record
def record_then_hang(cur, *args, **kwargs):
    seq = original(cur, *args, **kwargs)
    print(f"in transaction: audit row {seq} written, not committed", flush=True)
    time.sleep(600)
load.audit.record = record_then_hang
with Store(Path(sys.argv[2])) as s:
    load.load_file(s, Path(sys.argv[3]))
"""


def test_a_process_killed_mid_load_leaves_neither_the_load_nor_its_audit_row(loaded: Store, tmp_path: Path) -> None:
    path = loaded.path
    before_rows, before = _rows(loaded), loaded.fingerprint()
    loaded.close()
    more = tmp_path / "more.csv"
    more.write_text("invoice_id,customer_id,invoice_date,due_date,amount\nB-1,C1,2026-03-02,2026-04-01,75.00\n",
                    encoding="utf-8")
    child = tmp_path / "child.py"
    child.write_text(_KILLED_CHILD, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(child), str(ROOT), str(path), str(more)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    line = proc.stdout.readline()
    assert "in transaction" in line, (line, proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
    assert time.monotonic() < deadline
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with Store(path) as s:
        assert s.fingerprint() == before, "a partial load survived the crash"
        assert _rows(s) == before_rows, "an audit row survived without its change"
        assert audit.verify(s).ok
        load_file(s, more)  # and the same load then lands, with its row
        assert _actions(s)[-1] == "load" and audit.verify(s).ok
