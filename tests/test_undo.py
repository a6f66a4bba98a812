"""Undoing a load: every row of that file goes, in one transaction, or nothing does and we say why."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.errors import UndoLoadError
from dashboard.ingest import load_file
from dashboard.ingest.undo import plan_undo, undo_load, undoable_loads
from dashboard.store import Store
from tests.rows import ledger_is_rebuilt_identically

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
QBO_WEEK_1 = FIXTURES / "qbo_ar_aging_detail_2026-11-25.csv"
QBO_WEEK_2 = FIXTURES / "qbo_ar_aging_detail_2026-12-02.csv"


def _three_loads(store: Store) -> tuple[int, int, int]:
    customers = load_file(store, FIXTURES / "customers.csv").load_id
    invoices = load_file(store, FIXTURES / "invoices.csv").load_id
    payments = load_file(store, FIXTURES / "payments.csv").load_id
    return customers, invoices, payments


def test_a_load_others_depend_on_is_refused_with_the_loads_to_undo_first(store: Store) -> None:
    customers, invoices, payments = _three_loads(store)
    plan = plan_undo(store, invoices)
    assert not plan.possible
    assert plan.rows["invoices"] == store.scalar("SELECT count(*) FROM invoices WHERE load_id = ?", [invoices])
    assert plan.blockers == [
        f"2 payments from load #{payments} (payments.csv) refer to invoices this load brought in; undo load #{payments} first."
    ]
    before = store.fingerprint()
    with pytest.raises(UndoLoadError, match=rf"cannot be undone yet: 2 payments from load #{payments}"):
        undo_load(store, invoices)
    assert store.fingerprint() == before  # nothing written
    # the customers file: the invoices (and payments) of other loads point at its customers
    assert any(f"from load #{invoices} (invoices.csv) refer to customers" in b for b in plan_undo(store, customers).blockers)


def test_undo_in_reverse_order_takes_back_exactly_each_files_rows_and_the_file_can_load_again(store: Store) -> None:
    customers, invoices, payments = _three_loads(store)
    counts = store.table_counts()
    version = store.data_version()

    gone = undo_load(store, payments, who="ana")
    assert gone.rows["payments"] == 2 and gone.total_rows == 2
    # the two payments were the only events on their invoices: their ledger balances go too
    assert store.table_counts() == {**counts, "payments": 0, "ledger_balances": 0}
    assert ledger_is_rebuilt_identically(store)
    load = store.query("SELECT status, message FROM loads WHERE load_id = ?", [payments]).row(0, named=True)
    assert load["status"] == "undone" and load["message"].endswith("by ana.")
    assert store.data_version() != version  # every cached figure is recomputed
    assert payments not in undoable_loads(store)["load_id"].to_list()

    undo_load(store, invoices)
    undo_load(store, customers)
    assert store.scalar("SELECT count(*) FROM invoices") == 0
    assert store.scalar("SELECT count(*) FROM customers") == 0
    assert store.scalar("SELECT count(*) FROM ledger_documents") == 0

    # an undone load is not a duplicate any more: the same file loads again, whole
    again = load_file(store, FIXTURES / "customers.csv")
    assert again.status == "loaded" and again.rows_loaded == counts["customers"]
    with pytest.raises(UndoLoadError, match="is undone; there is nothing to undo"):
        undo_load(store, customers)
    with pytest.raises(UndoLoadError, match="There is no load #99"):
        plan_undo(store, 99)


def test_a_snapshot_whose_successor_inferred_payments_from_it_waits_for_the_successor(store: Store) -> None:
    week_1 = load_file(store, QBO_WEEK_1).load_id
    week_2_result = load_file(store, QBO_WEEK_2)
    week_2 = week_2_result.load_id
    assert week_2_result.inferred_payments == 4
    blockers = plan_undo(store, week_1).blockers
    assert any(f"the open-balance list of load #{week_2}" in b and "worked out payments from this one" in b for b in blockers)

    plan = undo_load(store, week_2)
    assert (plan.rows["invoices"], plan.rows["snapshots"], plan.rows["payments"]) == (1, 7, 4)
    assert store.scalar("SELECT count(*) FROM payments") == 0  # the inferred payments went with it
    assert store.scalar("SELECT count(DISTINCT as_of_date) FROM snapshots") == 1
    undo_load(store, week_1)
    assert store.table_counts()["invoices"] == 0 and store.table_counts()["snapshots"] == 0


def test_a_later_file_that_repeated_rows_is_named_as_a_caution(store: Store, tmp_path: Path) -> None:
    first = load_file(store, FIXTURES / "customers.csv").load_id
    repeat = tmp_path / "customers_again.csv"
    repeat.write_bytes((FIXTURES / "customers.csv").read_bytes() + b"00085009,Gamma Co,,,,,,,,,,,,\n")
    second = load_file(store, repeat)
    assert second.rows_skipped == 2 and second.rows_loaded == 1
    plan = plan_undo(store, first)
    assert plan.possible
    assert f"Load #{second.load_id} (customers_again.csv) skipped 2 rows" in plan.summary()


def test_the_seeded_sample_can_lose_its_notes_and_nothing_else(seeded_db_path: Path, tmp_path: Path) -> None:
    copy = tmp_path / "sample.duckdb"
    copy.write_bytes(seeded_db_path.read_bytes())
    with Store(copy) as store:
        notes = store.scalar("SELECT load_id FROM loads WHERE target_table = 'notes'")
        counts = store.table_counts()
        plan = undo_load(store, notes)
        assert plan.rows["notes"] == counts["notes"] > 0
        assert store.table_counts() == {**counts, "notes": 0}


def test_undo_load_command_asks_before_it_acts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dashboard.cli import main

    db = tmp_path / "cli.duckdb"
    with Store(db) as store:
        customers, invoices, payments = _three_loads(store)
    assert main(["undo-load", str(payments), "--db", str(db)]) == 3
    out = capsys.readouterr().out
    assert "takes back 2 payments" in out and "Nothing was changed. Run again with --yes" in out
    with Store(db) as store:
        assert store.scalar("SELECT count(*) FROM payments") == 2
    assert main(["undo-load", str(invoices), "--db", str(db), "--yes"]) == 3  # refused: payments depend on it
    assert "undo load #" in capsys.readouterr().out
    assert main(["undo-load", str(payments), "--db", str(db), "--yes", "--who", "ana"]) == 0
    assert capsys.readouterr().out.startswith(f"Undid load #{payments} (payments.csv) took back 2 payments")
    with Store(db) as store:
        assert store.scalar("SELECT count(*) FROM payments") == 0


def test_the_data_page_undoes_a_load_only_after_the_user_confirms(
    seeded_db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    copy = tmp_path / "sample.duckdb"
    copy.write_bytes(seeded_db_path.read_bytes())
    with Store(copy) as store:
        notes = store.scalar("SELECT load_id FROM loads WHERE target_table = 'notes'")
        invoices = store.scalar("SELECT load_id FROM loads WHERE target_table = 'invoices'")
        n_notes = store.table_counts()["notes"]
    monkeypatch.setenv("RECOUP_DB", str(copy))
    at = AppTest.from_file("../app.py", default_timeout=120).run()
    at.switch_page("pages/data.py").run()
    assert not at.exception, [e.message for e in at.exception]

    # a load others depend on: explained, and no button
    at.selectbox(key="data_undo_load").set_value(invoices).run()
    assert any("cannot be undone yet" in w.value for w in at.warning), [w.value for w in at.warning]
    assert not [b for b in at.button if b.key == "data_undo_button"]

    at.selectbox(key="data_undo_load").set_value(notes).run()
    assert any(f"takes back {n_notes:,} notes" in i.value for i in at.info), [i.value for i in at.info]
    button = at.button(key="data_undo_button")
    assert button.disabled  # not before the box is ticked
    at.checkbox(key=f"data_undo_sure_{notes}").check().run()
    at.button(key="data_undo_button").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any(f"Load #{notes} (notes.csv) was undone: {n_notes:,} rows taken back." in s.value for s in at.success), (
        [s.value for s in at.success]
    )
    with Store(copy) as store:  # the same configuration as the app's connection in this process
        assert store.table_counts()["notes"] == 0
        assert store.scalar("SELECT status FROM loads WHERE load_id = ?", [notes]) == "undone"
