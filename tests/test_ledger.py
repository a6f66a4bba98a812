"""The ledger: one open amount per document per date, read by every consumer, kept up at load.

A tiny book, worked by hand (as of 2025-06-30 unless said otherwise):

    doc  cust  issued  due    amount  events                                   open on 06-30
    I1   C1    05-01   05-31   100    credit note CN1 +30 (a positive amount) 06-10   70
    I2   C1    06-01   07-01   200    nothing                                        200
    I3   C2    04-01   05-01   300    paid 300 on 05-20                                0 (paid 05-20)
"""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from dashboard import ledger, metrics
from dashboard.features import build_features
from dashboard.ingest import load_frame
from dashboard.ingest.undo import undo_load
from dashboard.paydist import open_invoices
from dashboard.segments import assign_segments
from dashboard.store import Store
from dashboard.worklist import build_worklist
from tests.rows import as_before_the_ledger_view, ledger_is_rebuilt_identically

D = date
AS_OF = D(2025, 6, 30)
ROOT = Path(__file__).resolve().parent.parent


def _invoices(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema=["invoice_id", "customer_id", "invoice_date", "due_date", "amount", "currency"],
        orient="row",
    )


def _book(store: Store) -> None:
    load_frame(store, pl.DataFrame({"customer_id": ["C1", "C2"], "name": ["Alpha", "Beta"]}),
               table="customers", file_name="customers")
    load_frame(store, _invoices([
        ("I1", "C1", D(2025, 5, 1), D(2025, 5, 31), 100.0, "USD"),
        ("I2", "C1", D(2025, 6, 1), D(2025, 7, 1), 200.0, "USD"),
        ("I3", "C2", D(2025, 4, 1), D(2025, 5, 1), 300.0, "USD"),
    ]), table="invoices", file_name="invoices")
    load_frame(store, pl.DataFrame({
        "payment_id": ["P3"], "customer_id": ["C2"], "invoice_id": ["I3"], "payment_date": [D(2025, 5, 20)], "amount": [300.0],
    }), table="payments", file_name="payments")
    # a credit note written with a positive amount: it still reduces what is owed
    load_frame(store, pl.DataFrame({
        "adjustment_id": ["CN1"], "invoice_id": ["I1"], "customer_id": ["C1"], "adjustment_date": [D(2025, 6, 10)],
        "amount": [30.0], "kind": ["credit_note"],
    }), table="adjustments", file_name="credit notes")


@pytest.fixture
def book(store: Store) -> Store:
    _book(store)
    return store


def test_a_credit_note_gives_the_same_open_amount_to_every_consumer(book: Store) -> None:
    # I1: 100 − 30 = 70 open, 30 days past due on 06-30
    items = {r["invoice_id"]: r for r in ledger.open_items(book, AS_OF).iter_rows(named=True)}
    assert float(items["I1"]["open_amount"]) == 70.0 and "I3" not in items
    # the KPIs: 70 + 200 = 270 open, 200 current
    kpis = metrics.compute_kpis(book, AS_OF)
    assert (kpis.ar_total, kpis.ar_current, kpis.open_invoices) == (270.0, 200.0, 2)
    # the risk model's features: 70 open of 100 (share 0.7), the customer's balance 270
    features = {r["invoice_id"]: r for r in build_features(book, AS_OF).iter_rows(named=True)}
    assert features["I1"]["open_amount"] == 70.0 and features["I1"]["share_still_open"] == pytest.approx(0.7)
    assert features["I1"]["customer_open_balance"] == pytest.approx(270.0)
    # the forecast's and simulator's open invoices
    forecast = {r["invoice_id"]: r["open_amount"] for r in open_invoices(book, AS_OF).iter_rows(named=True)}
    assert forecast == {"I1": 70.0, "I2": 200.0}
    # segments' AR per customer
    segments = {r["customer_id"]: r["open_amount"] for r in assign_segments(book, AS_OF).iter_rows(named=True)}
    assert segments["C1"] == pytest.approx(270.0)
    # the worklist's line for the overdue invoice
    lines = build_worklist(book, AS_OF, use_model=False).lines
    invoices = lines.select(pl.col("invoices").explode()).unnest("invoices")
    assert invoices.filter(pl.col("invoice_id") == "I1")["open_amount_base"].to_list() == [70.0]
    # and paid dates: I3 on 05-20, by cash
    paid_sql, params = ledger.paid_dates_sql(AS_OF)
    paid = book.query(paid_sql, params)
    assert paid.select("invoice_id", "paid_date", "paid_by_payments").rows() == [("I3", D(2025, 5, 20), 300.0)]


def test_features_hold_no_open_amount_sql_of_their_own() -> None:
    source = (ROOT / "dashboard" / "features.py").read_text()
    # the ledger's tables are read; the payments and adjustments are never summed into a balance here
    assert "ledger_documents" in source and "open_items_at_dates_sql" in source
    assert "FROM payments WHERE invoice_id IS NOT NULL" not in source
    assert "FROM adjustments WHERE invoice_id IS NOT NULL" not in source


def test_a_stated_balance_is_the_truth_for_its_date_and_later_events_count_from_it(store: Store) -> None:
    load_frame(store, _invoices([("S1", "C1", D(2025, 1, 10), D(2025, 2, 9), 1000.0, "USD")]),
               table="invoices", file_name="invoices")
    # an open-invoice list as of 03-31 says 400 is still open: 600 was paid, nobody said when
    statement = pl.DataFrame({"invoice_id": ["S1"], "customer_id": ["C1"], "invoice_date": [D(2025, 1, 10)],
                              "due_date": [D(2025, 2, 9)], "open_amount": [400.0]})
    load_frame(store, statement, table="invoices", file_name="open invoices 03-31", as_of_date=D(2025, 3, 31))
    on = {d: ledger.open_items(store, d) for d in (D(2025, 3, 1), D(2025, 3, 31), D(2025, 4, 30))}
    assert float(on[D(2025, 3, 31)]["open_amount"][0]) == 400.0
    # before the statement the balance is not known: shown at its amount and flagged
    assert float(on[D(2025, 3, 1)]["open_amount"][0]) == 1000.0 and on[D(2025, 3, 1)]["balance_unknown"][0]
    assert not on[D(2025, 3, 31)]["balance_unknown"][0]
    # a payment after the statement counts from the stated 400: 400 − 150 = 250
    load_frame(store, pl.DataFrame({"payment_id": ["P1"], "invoice_id": ["S1"], "payment_date": [D(2025, 4, 15)],
                                    "amount": [150.0]}), table="payments", file_name="april payments")
    assert float(ledger.open_items(store, D(2025, 4, 30))["open_amount"][0]) == 250.0
    # the 600 arrives later with its real date (02-20): now every date is known, and 03-31 still says 400
    load_frame(store, pl.DataFrame({"payment_id": ["P0"], "invoice_id": ["S1"], "payment_date": [D(2025, 2, 20)],
                                    "amount": [600.0]}), table="payments", file_name="february payments")
    feb = ledger.open_items(store, D(2025, 2, 28))
    assert float(feb["open_amount"][0]) == 400.0 and not feb["balance_unknown"][0]
    assert float(ledger.open_items(store, D(2025, 3, 31))["open_amount"][0]) == 400.0
    assert ledger_is_rebuilt_identically(store)


def test_a_statement_of_zero_settles_the_invoice_as_paid(store: Store) -> None:
    load_frame(store, _invoices([("Z1", "C1", D(2025, 1, 10), D(2025, 2, 9), 500.0, "USD")]),
               table="invoices", file_name="invoices")
    statement = pl.DataFrame({"invoice_id": ["Z1"], "customer_id": ["C1"], "invoice_date": [D(2025, 1, 10)],
                              "due_date": [D(2025, 2, 9)], "open_amount": [0.0]})
    load_frame(store, statement, table="invoices", file_name="list 03-31", as_of_date=D(2025, 3, 31))
    assert ledger.open_items(store, D(2025, 3, 31)).is_empty()
    row = store.query("SELECT paid_date, paid_by_cash::DOUBLE AS cash, settled_from FROM ledger_documents").row(0, named=True)
    # paid by the statement's date at the latest, presumed in cash (not credited)
    assert row == {"paid_date": D(2025, 3, 31), "cash": 500.0, "settled_from": D(2025, 3, 31)}


def test_foreign_documents_use_the_loaded_rate_even_when_it_comes_later(store: Store) -> None:
    load_frame(store, _invoices([("E1", "C1", D(2025, 6, 2), D(2025, 7, 2), 100.0, "EUR")]),
               table="invoices", file_name="eur invoices")
    assert metrics.compute_kpis(store, AS_OF).ar_total == 100.0  # no rate yet: at par (health flags it)
    load_frame(store, pl.DataFrame({"date": [D(2025, 6, 1)], "currency": ["EUR"], "rate_to_base": [1.1]}),
               table="fx_rates", file_name="rates")
    # the rate on or before the document date: 100 EUR = 110.00 base
    assert metrics.compute_kpis(store, AS_OF).ar_total == pytest.approx(110.0)
    assert ledger_is_rebuilt_identically(store)


def test_forecast_and_pay_history_read_foreign_amounts_at_the_ledgers_rate(store: Store) -> None:
    from dashboard.forecast import actual_collections, naive_last_13_weeks
    from dashboard.paydist import pay_history

    load_frame(store, _invoices([("E1", "C1", D(2025, 5, 2), D(2025, 6, 1), 100.0, "EUR")]),
               table="invoices", file_name="eur invoices")
    load_frame(store, pl.DataFrame({"date": [D(2025, 5, 1)], "currency": ["EUR"], "rate_to_base": [1.1]}),
               table="fx_rates", file_name="rates")
    load_frame(store, pl.DataFrame({"payment_id": ["PE"], "customer_id": ["C1"], "invoice_id": ["E1"],
                                    "payment_date": [D(2025, 6, 20)], "amount": [100.0]}),
               table="payments", file_name="eur payment")
    # one FX rule: 100 EUR billed and collected are 110.00 base wherever they are read
    assert pay_history(store, AS_OF)["amount"].to_list() == [pytest.approx(110.0)]
    assert actual_collections(store, D(2025, 6, 15)).sum() == pytest.approx(110.0)
    assert naive_last_13_weeks(store, AS_OF)[-1] == pytest.approx(110.0 / 91 * 7)  # a full week


@pytest.mark.parametrize("pass_documents", [ledger.REWRITE_PASS_DOCUMENTS, 2], ids=["one pass", "passes of 2"])
def test_loads_and_undos_in_any_order_keep_the_ledger_equal_to_a_rebuild(
    store: Store, pass_documents: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a big load rewrites its documents in passes (memory): passes of 2 documents give the same ledger
    monkeypatch.setattr(ledger, "REWRITE_PASS_DOCUMENTS", pass_documents)
    rng = random.Random(7)
    invoices = [(f"R{i}", f"C{i % 4}", D(2025, 1, 1 + i), D(2025, 2, 1 + i), float(100 + 10 * i), "USD") for i in range(20)]
    load_frame(store, _invoices(invoices), table="invoices", file_name="invoices")
    loads: list[int] = []
    for step in range(12):
        picks = rng.sample(range(20), 5)
        kind = step % 3
        if kind == 0:
            frame = pl.DataFrame({"payment_id": [f"P{step}-{i}" for i in picks], "invoice_id": [f"R{i}" for i in picks],
                                  "payment_date": [D(2025, 3, 1 + rng.randrange(20)) for _ in picks],
                                  "amount": [float(rng.choice([5, 10, 20])) for _ in picks]})
            result = load_frame(store, frame, table="payments", file_name=f"payments {step}")
        elif kind == 1:
            frame = pl.DataFrame({"adjustment_id": [f"A{step}-{i}" for i in picks], "invoice_id": [f"R{i}" for i in picks],
                                  "adjustment_date": [D(2025, 3, 1 + rng.randrange(20)) for _ in picks],
                                  "amount": [float(-rng.choice([5, 25])) for _ in picks], "kind": ["credit_note"] * 5})
            result = load_frame(store, frame, table="adjustments", file_name=f"credits {step}")
        else:
            frame = pl.DataFrame({"invoice_id": [f"R{i}" for i in picks], "customer_id": [f"C{i % 4}" for i in picks],
                                  "invoice_date": [D(2025, 1, 1 + i) for i in picks],
                                  "due_date": [D(2025, 2, 1 + i) for i in picks],
                                  "open_amount": [float(rng.choice([0, 40, 90])) for _ in picks]})
            result = load_frame(store, frame, table="invoices", file_name=f"statement {step}",
                                as_of_date=D(2025, 3, 10 + step))
        loads.append(result.load_id)
        assert ledger_is_rebuilt_identically(store), f"after load {step}"
    for load_id in reversed(loads[-4:]):
        undo_load(store, load_id)
        assert ledger_is_rebuilt_identically(store), f"after undoing load {load_id}"


def test_a_store_from_before_the_spans_gets_them_when_opened(tmp_path: Path) -> None:
    """A store written at schema version 5 (no until_date / first_event) is migrated on opening
    and its ledger rebuilt: the spans' bounds are filled and the open items read the same."""
    from dashboard.schema import LEDGER_VERSION

    path = tmp_path / "v5.duckdb"
    with Store(path) as store:
        _book(store)
        before = ledger.open_items(store, AS_OF)
        kept = store.query("SELECT document_id, event_date, until_date FROM ledger_balances ORDER BY ALL").rows()
    assert kept == [("I1", D(2025, 6, 10), None), ("I3", D(2025, 5, 20), None)]
    import duckdb

    con = duckdb.connect(str(path))  # as version 5 left it
    as_before_the_ledger_view(con)  # version 8: a view on the stored rows
    con.execute("DROP TABLE kept_backtests").fetchall()  # version 7
    con.execute("ALTER TABLE ledger_balances DROP COLUMN until_date").fetchall()
    con.execute("ALTER TABLE ledger_documents DROP COLUMN first_event").fetchall()
    con.execute("DELETE FROM schema_version WHERE version >= ?", [LEDGER_VERSION]).fetchall()
    con.close()
    with Store(path) as store:
        assert store.query("SELECT document_id, first_event FROM ledger_documents ORDER BY 1").rows() == [
            ("I1", D(2025, 6, 10)), ("I2", None), ("I3", D(2025, 5, 20)),
        ]
        assert ledger.open_items(store, AS_OF).equals(before)
        sql, params = ledger.open_items_at_dates_sql([D(2025, 5, 31), AS_OF])
        assert store.query(sql, params).filter(pl.col("as_of") == AS_OF).drop("as_of").equals(before)
        assert ledger_is_rebuilt_identically(store)


def test_invoices_nothing_happened_to_are_read_from_invoices_until_the_next_change_stores_them(store: Store) -> None:
    """An invoices load that touches nothing stores no ledger rows (its documents' rows are read
    from ``invoices``); a load that changes the ledger stores them first. Every step reads
    exactly what a rebuild from scratch stores."""
    stored = "SELECT count(*) FROM ledger_stored_documents"
    load_frame(store, _invoices([
        ("I1", "C1", D(2025, 5, 1), D(2025, 5, 31), 100.0, "USD"),
        ("I2", "C1", D(2025, 6, 1), D(2025, 7, 1), 0.0, None),
        ("E1", "C2", D(2025, 6, 2), D(2025, 7, 2), 50.0, "eur"),  # no rate: at par, fx_rate unknown
    ]), table="invoices", file_name="invoices")
    second = load_frame(store, _invoices([("I3", "C2", D(2025, 4, 1), D(2025, 5, 1), 300.0, "USD")]),
                        table="invoices", file_name="more invoices")
    assert (store.scalar(stored), store.scalar("SELECT count(*) FROM ledger_plain_loads")) == (0, 2)
    assert store.query("SELECT document_id, currency, fx_rate, amount_base, open_amount, settled_from FROM ledger_documents "
                       "ORDER BY 1").rows() == [
        ("E1", "EUR", None, 50.0, 50.0, None), ("I1", "USD", 1.0, 100.0, 100.0, None),
        ("I2", None, 1.0, 0.0, 0.0, D(2025, 6, 1)), ("I3", "USD", 1.0, 300.0, 300.0, None),
    ]
    assert ledger_is_rebuilt_identically(store)
    load_frame(store, pl.DataFrame({"customer_id": ["C3"], "name": ["Gamma"]}), table="customers", file_name="customers")
    assert store.scalar(stored) == 0  # nothing for the ledger: still read from invoices
    paid = load_frame(store, pl.DataFrame({"payment_id": ["P1"], "invoice_id": ["I1"], "payment_date": [D(2025, 5, 20)],
                                           "amount": [100.0]}), table="payments", file_name="payments")
    assert (store.scalar(stored), store.scalar("SELECT count(*) FROM ledger_plain_loads")) == (4, 0)
    assert store.scalar("SELECT paid_date FROM ledger_documents WHERE document_id = 'I1'") == D(2025, 5, 20)
    assert ledger_is_rebuilt_identically(store)
    for load_id in (paid.load_id, second.load_id):
        undo_load(store, load_id)
        assert ledger_is_rebuilt_identically(store), f"after undoing load {load_id}"
    assert store.query("SELECT document_id, open_amount FROM ledger_documents ORDER BY 1").rows() == [
        ("E1", 50.0), ("I1", 100.0), ("I2", 0.0),
    ]
