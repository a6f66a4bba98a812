"""Stripe API JSON that is not shaped like a Stripe export: refused (or read) with a plain reason.

A recognised ``{"object": "list", "data": [...]}`` whose items are not all invoice objects, or
that nests far deeper than Stripe does, used to escape as a TypeError / RecursionError.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from dashboard.errors import UnreadableFileError
from dashboard.ingest import load_file
from dashboard.store import Store

AS_OF = date(2026, 9, 30)


def _invoice(number: int, **fields: object) -> dict[str, object]:
    # 12,000 cents = 120.00 due; created 2026-09-03, due 2026-10-03 (Unix seconds, UTC)
    return {
        "id": f"in_{number}",
        "object": "invoice",
        "customer": f"cus_{number}",
        "customer_name": f"Customer {number}",
        "amount_due": 12000,
        "amount_paid": 0,
        "amount_remaining": 12000,
        "currency": "usd",
        "created": 1788445320,
        "due_date": 1791037320,
        "status": "open",
        "status_transitions": {"paid_at": None},
        **fields,
    }


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_deeply_nested_stripe_like_file_is_refused_with_a_reason(store: Store, tmp_path: Path) -> None:
    nested = "[" * 100_000 + "]" * 100_000
    text = '{"object": "list", "data": [{"object": "invoice", "id": "in_1", "metadata": ' + nested + "}]}"
    path = _write(tmp_path, "deep.json", text)
    before = store.fingerprint()
    with pytest.raises(UnreadableFileError, match=r"deep\.json is nested far deeper than a Stripe export"):
        load_file(store, path, as_of_date=AS_OF)
    assert store.fingerprint() == before


def test_a_list_with_items_that_are_not_invoices_is_refused_naming_the_first(store: Store, tmp_path: Path) -> None:
    items = [_invoice(1), 5, "in_3", ["in_4"]]
    path = _write(tmp_path, "mixed.json", json.dumps({"object": "list", "data": items}))
    before = store.fingerprint()
    with pytest.raises(UnreadableFileError) as refused:
        load_file(store, path, as_of_date=AS_OF)
    message = str(refused.value)
    assert "item 2 of the invoice list is a number (5), not a Stripe invoice object" in message
    assert "(3 of 4 items are not)" in message
    assert store.fingerprint() == before


def test_a_field_of_another_kind_is_left_empty_with_a_warning_and_the_rest_loads(store: Store, tmp_path: Path) -> None:
    # an expanded customer object is a real Stripe shape: its id is the customer id;
    # a name given as a list is not: it is left empty (the customer id stands in) and said so
    odd = _invoice(2, customer={"id": "cus_2", "object": "customer"}, customer_name=["not", "a", "name"])
    path = _write(tmp_path, "odd.json", json.dumps({"object": "list", "data": [_invoice(1), odd]}))
    result = load_file(store, path, as_of_date=AS_OF)
    assert (result.rows_loaded, result.rows_rejected) == (2, 0)
    assert any(
        "1 value(s) in odd.json" in w and "invoice 2: 'customer_name' is a list" in w for w in result.warnings
    ), result.warnings
    rows = store.query(
        "SELECT invoice_id, customer_id, amount::DOUBLE AS amount FROM invoices ORDER BY invoice_id"
    ).rows()
    assert rows == [("in_1", "cus_1", 120.0), ("in_2", "cus_2", 120.0)]
