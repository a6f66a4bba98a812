"""The receivables ledger: what each document owes, was paid and when, as of any date.

This is the only place that says what is *open*. Every consumer — KPIs, aging, features,
segments, worklist, pay-date curves, forecast, simulator — reads open amounts, paid dates and
settlement state through the SQL built here, never from ``invoices``/``payments`` directly.

What feeds it
-------------
- **Documents**: every ``invoices`` row (invoices, credit memos, unapplied payments,
  journals, with their signed amounts) and every payment without an invoice (unapplied cash:
  a credit balance dated the day it arrived, id = payment id).
- **Events**, per document and day: cash applied (``payments``), adjustments (credit notes,
  discounts, write-offs: they always shrink a balance towards zero, whatever sign the file
  gave them), and **statements**: the open balance a file stated for a date (an aging
  report, an open-invoice list, an invoice list's "Amount due", a status of *paid*), kept
  in ``snapshots``. A statement is the truth for its date: the balance on that day is what
  the file said, and later events count from there.

What it keeps (maintained inside every load's and undo's transaction)
---------------------------------------------------------------------
``ledger_documents``: one row per document with its base-currency amount (the one FX rule:
the document's own base amount when the file gave one; else 1 for the base currency; else
the exchange rate on or before the document date; unknown rates are flagged and read at
par), the open amount after every known event, ``paid_date`` (the first day its balance
reached zero, or below for an overpaid invoice), ``paid_by_cash`` (cash applied by then),
``settled_from`` (settled for good from that day), and ``known_from`` (before this day its
balance is not known: the first statement that changed it came with no dated events).
It is a view: the stored rows, plus the rows of documents a load of invoices created and
nothing has happened to since, read from ``invoices`` as they are (open for their amount) —
such a load writes no ledger rows of its own; the next load or undo that changes the ledger
stores them (:func:`refresh_load`).

``ledger_balances``: the balance at the end of each day something happened to a document.
The open amount on date D is the balance of the last such day ≤ D (an ASOF join), or the
document's amount when nothing happened yet. Every balance depends only on what is dated on
or before its day, so every figure read from here can be recomputed for any past date.

Spans: each balance row also keeps ``until_date`` (the document's next event day) and each
document its ``first_event``, so a document's history is a list of spans — its amount from
its date until its first event, then each balance until the next — and the open items at
many dates (a 24-month history) are read by placing the non-zero spans on the dates they
cover, without a join per date. Both are written with the rows, by the same statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import duckdb
import polars as pl

from dashboard.config import base_currency
from dashboard.errors import MetricError
from dashboard.filters import Filters
from dashboard.store import release

#: A balance within half a cent of zero is settled.
SETTLED_TOLERANCE = 0.005
CURRENT = "Current"
DEFAULT_BUCKETS: tuple[int, ...] = (30, 60, 90, 120)
_FAR_FUTURE = "DATE '9999-12-31'"
_SCOPE = "recoup_ledger_scope"
#: The stored ledger rows; ``ledger_documents`` (what every reader reads) is a view adding the
#: rows of the plain loads' documents, read from ``invoices`` (see :func:`refresh_load`).
STORED = "ledger_stored_documents"
#: Loads of invoices whose documents have no stored rows yet (load_id, base_currency).
PLAIN_LOADS = "ledger_plain_loads"
PLAIN_VIEW = "ledger_plain_documents"



# ---------------------------------------------------------------------------------------
# maintenance
# ---------------------------------------------------------------------------------------
def _docs_sql(
    scoped: bool, scope: str = _SCOPE, *, load: int | None = None, rates: bool = True, plain: bool = False
) -> str:
    """Every document (or those in the scope table, or the new ones of ``load``) with its
    base-currency rate resolved (``rates`` False: no exchange rates are loaded at all).
    ``plain``: the invoices of the plain loads (:data:`PLAIN_LOADS`), each with the base
    currency its load was read in, for the view of their rows (no rates: see :func:`refresh_load`)."""
    inv_scope = f" WHERE i.invoice_id IN (SELECT document_id FROM {scope})" if scoped else ""
    pay_scope = f" AND p.payment_id IN (SELECT document_id FROM {scope})" if scoped else ""
    if load is not None:
        inv_scope, pay_scope = f" WHERE i.load_id = {int(load)}", f" AND p.load_id = {int(load)}"
    base, pay_base = "$base", "$base"
    if plain:
        inv_scope = f" JOIN {PLAIN_LOADS} pl ON pl.load_id = i.load_id"
        pay_scope, base, pay_base = " AND FALSE", "pl.base_currency", "NULL"
        rates = False
    rated = (
        """rated AS (
        SELECT d.*, r.rate_to_base
        FROM raw_docs d ASOF LEFT JOIN fx_rates r
          ON r.currency = d.currency AND d.invoice_date >= r.date
    ),"""
        if rates
        else "rated AS (SELECT d.*, NULL::DOUBLE AS rate_to_base FROM raw_docs d),"
    )
    return f"""
    raw_docs AS (
        SELECT i.invoice_id AS document_id, i.customer_id, coalesce(i.doc_type, 'invoice') AS doc_type,
               i.invoice_date, i.due_date, upper(i.currency) AS currency, i.amount, i.amount_base,
               {base}::VARCHAR AS base
        FROM invoices i{inv_scope}
        UNION ALL
        SELECT p.payment_id, p.customer_id, 'unapplied_payment', p.payment_date, p.payment_date,
               upper(p.currency), -p.amount, NULL, {pay_base}::VARCHAR
        FROM payments p WHERE p.invoice_id IS NULL{pay_scope}
    ),
    {rated}
    docs AS (
        SELECT document_id, customer_id, doc_type, invoice_date, due_date, currency, amount,
               CASE WHEN amount_base IS NOT NULL AND amount <> 0 THEN amount_base::DOUBLE / amount::DOUBLE
                    WHEN amount_base IS NOT NULL THEN 1.0
                    WHEN currency IS NULL OR currency = base THEN 1.0
                    ELSE rate_to_base END AS fx_rate,
               coalesce(amount_base, round(amount::DOUBLE * coalesce(
                   CASE WHEN currency IS NULL OR currency = base THEN 1.0 ELSE rate_to_base END, 1.0), 2)
               )::DECIMAL(18,2) AS amount_base
        FROM rated
    )"""


def _events_sql(scoped: bool) -> str:
    """Per document and day: cash applied, adjustments (absolute), and the stated balance."""
    scope = f" AND invoice_id IN (SELECT document_id FROM {_SCOPE})" if scoped else ""
    return f"""
    events AS (
        SELECT invoice_id AS document_id, payment_date AS d, amount AS cash, 0::DECIMAL(18,2) AS adjusted,
               NULL::DECIMAL(18,2) AS stated, NULL::INTEGER AS stated_load
        FROM payments WHERE invoice_id IS NOT NULL{scope}
        UNION ALL
        SELECT invoice_id, adjustment_date, 0, abs(amount), NULL, NULL
        FROM adjustments WHERE invoice_id IS NOT NULL{scope}
        UNION ALL
        SELECT invoice_id, as_of_date, 0, 0, open_amount, load_id
        FROM snapshots WHERE TRUE{scope}
    ),
    days AS (
        SELECT document_id, d, sum(cash) AS cash, sum(adjusted) AS adjusted,
               arg_max(stated, stated_load) FILTER (WHERE stated IS NOT NULL) AS stated
        FROM events GROUP BY 1, 2
    ),
    moves AS (  -- a day's change without statements: cash and adjustments shrink the balance
        SELECT y.*, x.amount, x.invoice_date,
               (-y.cash - sign(x.amount) * y.adjusted) AS delta,
               count(y.stated) OVER (PARTITION BY y.document_id ORDER BY y.d ROWS UNBOUNDED PRECEDING) AS segment
        FROM days y JOIN docs x USING (document_id)
    ),
    balances AS (  -- a statement starts a segment at what it said; other days add their change
        SELECT document_id, d, amount, invoice_date, cash, stated, delta, segment,
               CASE WHEN segment = 0 THEN amount
                    ELSE first_value(stated) OVER seg END
               + sum(CASE WHEN stated IS NOT NULL THEN 0 ELSE delta END) OVER seg AS open_amount
        FROM moves
        WINDOW seg AS (PARTITION BY document_id, segment ORDER BY d ROWS UNBOUNDED PRECEDING)
    ),
    corrected AS (  -- what a statement changed: the balance it said minus the one events gave
        SELECT *,
               CASE WHEN stated IS NOT NULL
                    THEN stated - (coalesce(lag(open_amount) OVER doc, amount) + delta) END AS correction,
               lead(d) OVER doc AS until_date  -- the day this balance stops holding (NULL: the last)
        FROM balances
        WINDOW doc AS (PARTITION BY document_id ORDER BY d)
    ),
    running AS (
        SELECT *,
               sum(cash + CASE WHEN sign(amount) * correction < 0 THEN abs(correction) ELSE 0 END)
                   OVER (PARTITION BY document_id ORDER BY d ROWS UNBOUNDED PRECEDING) AS paid_cash
        FROM corrected
    )"""


def _summary_sql() -> str:
    tol = SETTLED_TOLERANCE
    settled = f"((amount > 0 AND open_amount <= {tol}) OR (amount <= 0 AND abs(open_amount) <= {tol}))"
    return f"""
    summary AS (
        SELECT document_id,
               arg_max(open_amount, d) AS final_open,
               max(d) AS last_event,
               min(d) FILTER (WHERE {settled}) AS paid_on,
               arg_min(paid_cash, d) FILTER (WHERE {settled}) AS paid_by_cash,
               max(d) FILTER (WHERE abs(open_amount) > {tol}) AS last_open_day,
               bool_or(stated IS NOT NULL) AS stated,
               min(d) FILTER (WHERE correction IS NOT NULL AND abs(correction) > {tol}) AS first_correction,
               min(d) FILTER (WHERE stated IS NULL) AS first_dated_event,
               min(d) AS first_event
        FROM running GROUP BY 1
    ),
    after_open AS (
        SELECT r.document_id, min(r.d) AS settled_from
        FROM running r JOIN summary s USING (document_id)
        WHERE abs(s.final_open) <= {tol} AND r.d > coalesce(s.last_open_day, DATE '0001-01-01')
        GROUP BY 1
    )"""


def _write_sql(scoped: bool) -> list[str]:
    """The statements that (re)write the ledger rows of every document, or of the scope."""
    tol = SETTLED_TOLERANCE
    head = f"WITH {_docs_sql(scoped)}, {_events_sql(scoped)}"
    balances = f"""
    INSERT INTO ledger_balances (document_id, event_date, open_amount, paid_cash, until_date)
    {head}
    SELECT document_id, d, open_amount, paid_cash, until_date FROM running
    """
    documents = f"""
    INSERT INTO ledger_stored_documents
    {head}, {_summary_sql()}
    SELECT x.document_id, x.customer_id, x.doc_type, x.invoice_date, x.due_date, x.currency, x.amount,
           x.fx_rate, x.amount_base,
           coalesce(s.final_open, x.amount) AS open_amount,
           CASE WHEN s.paid_on IS NOT NULL THEN greatest(s.paid_on, x.invoice_date) END AS paid_date,  -- greatest() skips NULLs
           s.paid_by_cash,
           CASE WHEN s.document_id IS NULL AND abs(x.amount) <= {tol} THEN x.invoice_date
                ELSE a.settled_from END AS settled_from,
           -- a statement that changed the balance before any dated event: unknown before it
           CASE WHEN s.first_correction IS NOT NULL
                     AND s.first_correction <= coalesce(s.first_dated_event, DATE '9999-12-31')
                THEN greatest(s.first_correction, x.invoice_date) ELSE x.invoice_date END AS known_from,
           s.last_event,
           coalesce(s.stated, false),
           s.first_event
    FROM docs x LEFT JOIN summary s USING (document_id) LEFT JOIN after_open a USING (document_id)
    """
    return [balances, documents]


def refresh_ledger(cur: duckdb.DuckDBPyConnection, document_ids: pl.DataFrame | None = None) -> int:
    """Rewrite the ledger rows of ``document_ids`` (a frame with a ``document_id`` column), or
    of every document when None, on the caller's cursor and inside its transaction.
    Returns the number of documents rewritten."""
    if document_ids is None:
        cur.execute("DELETE FROM ledger_balances").fetchall()
        cur.execute(f"DELETE FROM {STORED}").fetchall()
        cur.execute(f"DELETE FROM {PLAIN_LOADS}").fetchall()  # every document is written in full below
        for sql in _write_sql(scoped=False):
            cur.execute(sql, {"base": base_currency()}).fetchall()
        return int(cur.execute(f"SELECT count(*) FROM {STORED}").fetchall()[0][0])
    if document_ids.height == 0:
        return 0
    cur.register("recoup_ledger_ids", document_ids.select("document_id"))
    try:
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {_SCOPE} AS SELECT DISTINCT document_id FROM recoup_ledger_ids "
            "WHERE document_id IS NOT NULL"
        ).fetchall()
    finally:
        release(cur, "recoup_ledger_ids")
    _write_plain_loads(cur, rewritten=f"SELECT document_id FROM {_SCOPE}")
    return _rewrite_scope(cur, existing=f"SELECT document_id FROM {_SCOPE}")


#: Documents rewritten per pass. The rewrite holds its documents' events in memory (windows,
#: joins), and a big load runs under ``Store.bounded_memory`` (512 MB): a payments load touching
#: 5M invoices at once ran out of memory. Each document's rows depend only on its own events.
REWRITE_PASS_DOCUMENTS = 1_000_000


def _rewrite_scope(cur: duckdb.DuckDBPyConnection, *, existing: str | None) -> int:
    """Rewrite the documents in the scope table, in passes of at most
    :data:`REWRITE_PASS_DOCUMENTS`; ``existing`` selects those that may already have ledger rows
    (the only ones whose old rows need deleting)."""
    whole = f"{_SCOPE}_whole"
    try:
        if existing is not None:
            for table in ("ledger_balances", STORED):
                cur.execute(f"DELETE FROM {table} WHERE document_id IN ({existing})").fetchall()
        total = int(cur.execute(f"SELECT count(*) FROM {_SCOPE}").fetchall()[0][0])
        passes = max(1, -(-total // REWRITE_PASS_DOCUMENTS))
        if passes > 1:
            cur.execute(f"CREATE OR REPLACE TEMP TABLE {whole} AS SELECT document_id FROM {_SCOPE}").fetchall()
        for part in range(passes):
            if passes > 1:
                cur.execute(
                    f"CREATE OR REPLACE TEMP TABLE {_SCOPE} AS SELECT document_id FROM {whole} "
                    f"WHERE hash(document_id) % {passes} = {part}"
                ).fetchall()
            for sql in _write_sql(scoped=True):
                cur.execute(sql, {"base": base_currency()}).fetchall()
        return total
    finally:
        for table in (_SCOPE, f"{_SCOPE}_touched", whole):
            cur.execute(f"DROP TABLE IF EXISTS {table}").fetchall()


def _touched_sql(load: int) -> str:
    """Documents that already existed whose rows ``load`` changed: its payments, adjustments
    and statements on them, and (new exchange rates) documents without a base amount of their own."""
    base = base_currency().replace("'", "")
    return f"""
        SELECT invoice_id AS document_id FROM payments WHERE load_id = {load} AND invoice_id IS NOT NULL
        UNION SELECT invoice_id FROM adjustments WHERE load_id = {load} AND invoice_id IS NOT NULL
        UNION SELECT invoice_id FROM snapshots WHERE load_id = {load}
        UNION SELECT i.invoice_id FROM invoices i
              WHERE i.amount_base IS NULL AND upper(i.currency) <> '{base}'
                AND upper(i.currency) IN (SELECT upper(currency) FROM fx_rates WHERE load_id = {load})
        UNION SELECT p.payment_id FROM payments p
              WHERE p.invoice_id IS NULL AND upper(p.currency) <> '{base}'
                AND upper(p.currency) IN (SELECT upper(currency) FROM fx_rates WHERE load_id = {load})
    """


def _new_sql(load: int) -> str:
    """Documents ``load`` created: its invoices and its unapplied payments (new ids: a load never
    inserts an id the store holds)."""
    return f"""
        SELECT invoice_id AS document_id FROM invoices WHERE load_id = {load}
        UNION ALL SELECT payment_id FROM payments WHERE load_id = {load} AND invoice_id IS NULL
    """


def touched_documents(cur: duckdb.DuckDBPyConnection, load_id: int) -> pl.DataFrame:
    """Every document whose ledger rows depend on what ``load_id`` wrote (read before an undo
    deletes its rows)."""
    load = int(load_id)
    return cur.sql(f"SELECT document_id FROM ({_new_sql(load)} UNION {_touched_sql(load)})").pl()


def refresh_load(cur: duckdb.DuckDBPyConnection, load_id: int) -> int:
    """Bring the ledger up to date with what ``load_id`` wrote, inside the load's transaction.

    Documents with events to work through — those the load touched (its payments, credits,
    statements, rates) — are rewritten in full; the load's other new documents have nothing
    yet but their amount, and go in as they are (a million-invoice file, mostly).

    A load of invoices that touched nothing, in a store without exchange rates, writes no
    ledger rows at all: it becomes a plain load (:data:`PLAIN_LOADS`), whose documents'
    rows ``ledger_documents`` reads from ``invoices`` (:data:`PLAIN_VIEW`). Any other
    maintenance first writes the plain loads' rows (:func:`_write_plain_loads`), so no
    document is ever both read from ``invoices`` and stored."""
    load = int(load_id)
    touched_table, plain_table = f"{_SCOPE}_touched", f"{_SCOPE}_plain"
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {touched_table} AS {_touched_sql(load)}").fetchall()
    touched = cur.execute(f"SELECT count(*) FROM {touched_table}").fetchall()[0][0]
    if not touched:
        new = int(cur.execute(f"SELECT count(*) FROM ({_new_sql(load)})").fetchall()[0][0])
        if not new or _plain(cur, load):  # nothing for the ledger (customers, notes ...), or a plain load
            cur.execute(f"DROP TABLE IF EXISTS {touched_table}").fetchall()
            if new:
                cur.execute(f"INSERT INTO {PLAIN_LOADS} VALUES (?, ?)", [load, base_currency()]).fetchall()
            return new
    _write_plain_loads(cur, rewritten=f"SELECT document_id FROM {touched_table}" if touched else None)
    if touched:
        cur.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {plain_table} AS
            SELECT document_id FROM ({_new_sql(load)}) WHERE document_id NOT IN (SELECT document_id FROM {touched_table})
            """
        ).fetchall()
    try:
        # nothing touched: the new documents are simply this load's (no scope to join)
        written = _insert_without_events(cur, plain_table, load=None if touched else load)
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {plain_table}").fetchall()
    if not touched:
        cur.execute(f"DROP TABLE IF EXISTS {touched_table}").fetchall()
        return written
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {_SCOPE} AS SELECT DISTINCT document_id FROM {touched_table}").fetchall()
    return written + _rewrite_scope(cur, existing=f"SELECT document_id FROM {touched_table}")


def _plain(cur: duckdb.DuckDBPyConnection, load: int) -> bool:
    """Whether ``load``'s new documents can be read from ``invoices`` as they are: it created
    no unapplied payments, and no exchange rate is loaded (their rows need none)."""
    return bool(
        cur.execute(
            f"""
            SELECT NOT EXISTS (SELECT 1 FROM fx_rates)
               AND NOT EXISTS (SELECT 1 FROM payments WHERE load_id = {load} AND invoice_id IS NULL)
            """
        ).fetchall()[0][0]
    )


def _write_plain_loads(cur: duckdb.DuckDBPyConnection, *, rewritten: str | None) -> None:
    """Store the rows of the plain loads' documents, except those ``rewritten`` selects (about
    to be rewritten in full), and end the plain loads: from now on every row is stored."""
    if not cur.execute(f"SELECT count(*) FROM {PLAIN_LOADS}").fetchall()[0][0]:
        return
    skip = f" WHERE document_id NOT IN ({rewritten})" if rewritten else ""
    cur.execute(f"INSERT INTO {STORED} SELECT * FROM {PLAIN_VIEW}{skip}").fetchall()
    cur.execute(f"DELETE FROM {PLAIN_LOADS}").fetchall()


def _plain_rows_sql(docs: str) -> str:
    """The ledger row of a document nothing has happened to yet, from ``docs`` (see _docs_sql):
    open for its amount."""
    return f"""
        SELECT document_id, customer_id, doc_type, invoice_date, due_date, currency, amount, fx_rate, amount_base,
               amount AS open_amount, NULL::DATE AS paid_date, NULL::DECIMAL(18,2) AS paid_by_cash,
               CASE WHEN abs(amount) <= {SETTLED_TOLERANCE} THEN invoice_date END AS settled_from,
               invoice_date AS known_from, NULL::DATE AS last_event, false AS stated, NULL::DATE AS first_event
        FROM {docs}
    """


def _insert_without_events(cur: duckdb.DuckDBPyConnection, scope: str, *, load: int | None) -> int:
    """Ledger rows of new documents nothing has happened to yet: open for their amount (the
    documents in ``scope``, or all new documents of ``load``)."""
    rates = bool(cur.execute("SELECT count(*) FROM fx_rates").fetchall()[0][0])
    before = cur.execute(f"SELECT count(*) FROM {STORED}").fetchall()[0][0]
    cur.execute(
        f"INSERT INTO {STORED} WITH {_docs_sql(scoped=True, scope=scope, load=load, rates=rates)} {_plain_rows_sql('docs')}",
        {"base": base_currency()},
    ).fetchall()
    return int(cur.execute(f"SELECT count(*) FROM {STORED}").fetchall()[0][0] - before)


def create_views(cur: duckdb.DuckDBPyConnection) -> None:
    """(Re)create ``ledger_documents``: the stored rows and the plain loads' rows read from
    ``invoices`` (schema version 7; run again by any later version that changes these rows)."""
    cur.execute(f"CREATE OR REPLACE VIEW {PLAIN_VIEW} AS WITH {_docs_sql(scoped=False, plain=True)} {_plain_rows_sql('docs')}")
    cur.execute(f"CREATE OR REPLACE VIEW ledger_documents AS SELECT * FROM {STORED} UNION ALL SELECT * FROM {PLAIN_VIEW}")


# ---------------------------------------------------------------------------------------
# reading: open items, paid dates
# ---------------------------------------------------------------------------------------
def date_literal(day: date) -> str:
    """``DATE 'YYYY-MM-DD'`` for SQL. Safe to inline: a ``date`` formats itself, no user text."""
    return f"DATE '{day.isoformat()}'"


def customer_filter_clause(filters: Filters, column: str) -> tuple[str, list[Any]]:
    """`` AND <column> IN (customers kept by the filters)`` and its parameters ("" when none)."""
    if filters.is_empty:
        return "", []
    sub, params = filters.customer_ids_sql()
    return f" AND {column} IN ({sub})", params


def validate_buckets(buckets: Sequence[int]) -> tuple[int, ...]:
    """Check bucket bounds are positive whole days in increasing order; return them as a tuple."""
    values = tuple(buckets)
    if not values or any(not isinstance(b, int) or isinstance(b, bool) or b <= 0 for b in values):
        msg = f"Aging buckets must be positive whole numbers of days past due; got {list(values)!r}"
        raise MetricError(msg)
    if any(b >= c for b, c in zip(values, values[1:], strict=False)):
        msg = f"Aging bucket bounds must increase (e.g. 30, 60, 90, 120); got {list(values)!r}"
        raise MetricError(msg)
    return values


def bucket_labels(buckets: Sequence[int] = DEFAULT_BUCKETS) -> list[str]:
    """Bucket labels in order: ``Current``, ``1-30``, ``31-60``, ..., ``120+``."""
    values = validate_buckets(buckets)
    labels = [CURRENT]
    lower = 1
    for upper in values:
        labels.append(f"{lower}-{upper}")
        lower = upper + 1
    labels.append(f"{values[-1]}+")
    return labels


def bucket_case_sql(days_past_due: str, buckets: Sequence[int] = DEFAULT_BUCKETS) -> str:
    """SQL ``CASE`` turning a days-past-due expression into its bucket label (≤ 0: ``Current``)."""
    values = validate_buckets(buckets)
    labels = bucket_labels(values)
    parts = [f"WHEN {days_past_due} <= 0 THEN '{CURRENT}'"]
    for upper, label in zip(values, labels[1:], strict=False):
        parts.append(f"WHEN {days_past_due} <= {upper} THEN '{label}'")
    return f"CASE {' '.join(parts)} ELSE '{labels[-1]}' END"


#: The base-currency amount and rate of an invoice, for queries over ``invoices {alias}``: the
#: ledger's (one FX rule: the invoice's own base amount, else the loaded rate of its currency on
#: its date, else par), never a second rule in the query.
def fx_join_sql(alias: str = "i") -> str:
    """``LEFT JOIN`` giving ``fx.amount_base`` (DECIMAL) and ``fx.fx_rate`` (base per unit) of
    ``{alias}.invoice_id``; read them through :func:`invoice_base_sql` / :func:`cash_base_sql`."""
    return f"LEFT JOIN ledger_documents fx ON fx.document_id = {alias}.invoice_id"


def invoice_base_sql(alias: str = "i") -> str:
    """An invoice's amount in base currency (DOUBLE), with :func:`fx_join_sql` joined."""
    return f"coalesce(fx.amount_base, {alias}.amount)::DOUBLE"


def cash_base_sql(cash: str) -> str:
    """Cash in the invoice's currency converted at the invoice's rate (DOUBLE), with
    :func:`fx_join_sql` joined."""
    return f"({cash}::DOUBLE * coalesce(fx.fx_rate, 1.0))"


def open_base_sql(open_doc: str, fx_rate: str = "fx_rate", amount_base: str = "amount_base", amount: str = "amount") -> str:
    """The one FX expression: a document-currency balance in base currency, to the cent.

    A balance equal to the amount is the base amount itself, so buckets add up to the cent.
    """
    return (
        f"(CASE WHEN {open_doc} = {amount} THEN {amount_base} "
        f"ELSE round({open_doc}::DOUBLE * coalesce({fx_rate}, 1.0), 2) END)::DECIMAL(18,2)"
    )


def _item_columns(as_of_column: str, buckets: Sequence[int]) -> str:
    days = f"({as_of_column} - due_date)"
    return f"""
        document_id AS invoice_id, customer_id, doc_type, invoice_date, due_date, currency,
        amount_base::DOUBLE AS amount,
        {open_base_sql("open_doc")} AS open_amount,
        open_doc,
        {days}::INTEGER AS days_past_due,
        {bucket_case_sql(days, buckets)} AS bucket,
        known_from > {as_of_column} AS balance_unknown
    """


def open_items_sql(
    as_of: date, *, filters: Filters = Filters(), buckets: Sequence[int] = DEFAULT_BUCKETS
) -> tuple[str, list[Any]]:
    """SQL (and its parameters) for every document open at the end of ``as_of``.

    Open = the ledger balance on ``as_of`` more than half a cent from zero (credit memos and
    unapplied cash stay open as negative balances); documents dated after ``as_of`` do not
    exist yet. Columns: invoice_id (the document id), customer_id, doc_type, invoice_date,
    due_date, currency, amount (base, DOUBLE), open_amount (base, DECIMAL(18,2)), open_doc
    (document currency), days_past_due (as_of − due_date; ≤ 0 = not yet due), bucket,
    balance_unknown (true when no file says what this document's balance was on ``as_of``:
    its first statement came later, with no dated events before it).

    This is the definition, read for one date: the balance of the last event day ≤ ``as_of``
    (an ASOF join), or the amount when nothing happened yet. :func:`open_items_at_dates_sql`
    reads the same for many dates at once and is tested against it.
    """
    clause, params = customer_filter_clause(filters, "l.customer_id")
    day = date_literal(as_of)
    sql = f"""
    WITH present AS (
        SELECT {day} AS as_of, l.*
        FROM ledger_documents l
        WHERE l.invoice_date <= {day} AND coalesce(l.settled_from, {_FAR_FUTURE}) > {day}{clause}
    ),
    valued AS (  -- nothing ever happened to a document without a last event: open for its amount
        SELECT p.*, p.amount AS open_doc FROM present p WHERE p.last_event IS NULL
        UNION ALL  -- the others: only their balances, so the ASOF join sorts thousands, not millions
        SELECT p.*, coalesce(b.open_amount, p.amount) AS open_doc
        FROM (SELECT * FROM present WHERE last_event IS NOT NULL) p ASOF LEFT JOIN (
            SELECT * FROM ledger_balances
            WHERE document_id IN (SELECT document_id FROM present WHERE last_event IS NOT NULL)
        ) b ON p.document_id = b.document_id AND p.as_of >= b.event_date
    )
    SELECT {_item_columns("as_of", buckets)}
    FROM valued
    WHERE abs(open_doc) > {SETTLED_TOLERANCE}
    """
    return sql, params


def open_items_at_dates_sql(
    dates: Sequence[date],
    *,
    filters: Filters = Filters(),
    buckets: Sequence[int] = DEFAULT_BUCKETS,
    carry: Sequence[str] = (),
) -> tuple[str, list[Any]]:
    """:func:`open_items_sql` for several as-of dates in one pass (column ``as_of`` first).

    Read from the ledger's spans, not by a join per date: a document's amount holds from its
    date until its first event (``first_event``), each balance from its day until the next
    (``until_date``), and nothing after the document is settled for good (``settled_from``).
    Only spans more than half a cent from zero are open, and each is placed on the as-of dates
    it covers. The rows are exactly those of :func:`open_items_sql` on each date.

    ``carry``: more ``ledger_documents`` columns to pass through (e.g. ``last_event``), after
    the usual ones, so a caller needs no second join on the ledger.
    """
    if not dates:
        msg = "At least one as-of date is needed"
        raise MetricError(msg)
    clause, params = customer_filter_clause(filters, "l.customer_id")
    ordered = sorted(set(dates))
    date_list = f"[{', '.join(date_literal(d) for d in ordered)}]"
    first, last = date_literal(ordered[0]), date_literal(ordered[-1])
    tol = SETTLED_TOLERANCE
    sql = f"""
    WITH as_of_dates AS (SELECT unnest({date_list}) AS as_of),
    days AS (  -- each day from the first as-of date to the day after the last: how many dates come before it
        SELECT t.day::DATE AS day, count(a.as_of) AS position
        FROM range({first}, {last} + 2, INTERVAL 1 DAY) t(day) LEFT JOIN as_of_dates a ON a.as_of < t.day::DATE
        GROUP BY 1
    ),
    docs AS NOT MATERIALIZED (  -- documents issued by the last date and not settled for good before the first
        SELECT l.* FROM ledger_documents l
        WHERE l.invoice_date <= {last} AND coalesce(l.settled_from, {_FAR_FUTURE}) > {first}{clause}
    ),
    balances AS (  -- the balances more than half a cent from zero that hold on some day of the range
        SELECT document_id, open_amount, event_date, coalesce(until_date, {_FAR_FUTURE}) AS until_date
        FROM ledger_balances
        WHERE abs(open_amount) > {tol} AND event_date <= {last} AND coalesce(until_date, {_FAR_FUTURE}) > {first}
    ),
    spans AS (  -- [span_from, span_until): the document's own amount, then each of those balances
        SELECT *, amount AS open_doc, invoice_date AS span_from, coalesce(first_event, {_FAR_FUTURE}) AS span_until
        FROM docs WHERE abs(amount) > {tol}
        UNION ALL BY NAME
        SELECT x.*, b.open_amount AS open_doc, b.event_date AS span_from, b.until_date AS span_until
        FROM balances b JOIN docs x USING (document_id)
    ),
    clipped AS (  -- within the document's life and the dates' range
        SELECT * REPLACE (greatest(span_from, invoice_date, {first}) AS span_from,
                          least(span_until, coalesce(settled_from, {_FAR_FUTURE}), {last} + 1) AS span_until)
        FROM spans
    ),
    placed AS (
        SELECT c.*, f.position AS first_position, u.position AS end_position
        FROM clipped c JOIN days f ON f.day = c.span_from JOIN days u ON u.day = c.span_until
        WHERE c.span_from < c.span_until
    ),
    valued AS (
        SELECT unnest(list_slice({date_list}, first_position + 1, end_position)) AS as_of, *
        FROM placed WHERE end_position > first_position
    )
    SELECT as_of, {_item_columns("as_of", buckets)}{"".join(f", {c}" for c in carry)}
    FROM valued
    """
    return sql, params


def open_items(
    store: Any, as_of: date, *, filters: Filters = Filters(), buckets: Sequence[int] = DEFAULT_BUCKETS
) -> pl.DataFrame:
    """Every document open on ``as_of`` (columns as in :func:`open_items_sql`)."""
    sql, params = open_items_sql(as_of, filters=filters, buckets=buckets)
    return store.query(sql + " ORDER BY days_past_due DESC, invoice_id", params)


def open_amount_on(store: Any, document_id: str, as_of: date) -> float:
    """One document's open amount in base currency on ``as_of`` (0.0 when settled or not yet issued)."""
    sql, params = open_items_sql(as_of)
    value = store.scalar(f"SELECT open_amount::DOUBLE FROM ({sql}) WHERE invoice_id = ?", [*params, document_id])
    return float(value) if value is not None else 0.0


#: The name a frame of already-read paid dates is registered under for a query (Store.query(frames=...)).
PAID_FRAME = "paid_known"


def paid_dates_sql(
    upto: date, *, since: date | None = None, due_after: date | None = None, filters: Filters = Filters()
) -> tuple[str, list[Any]]:
    """SQL for the date each document was paid: the first day its balance came within half a
    cent of zero (or below zero for an overpaid invoice), known by ``upto``. Documents not
    paid by then are absent; with ``since`` only documents paid on or after it, with
    ``due_after`` only documents due after that date.

    Columns: invoice_id (document id), customer_id, doc_type, invoice_date, due_date, amount
    (base, DOUBLE), paid_date, paid_by_payments (cash applied by then, document currency; 0
    for a document fully credited or written off). Outcome labels: never use them in a
    feature for a date before ``paid_date``.
    """
    clause, params = customer_filter_clause(filters, "customer_id")
    conditions = [f"paid_date <= {date_literal(upto)}"]
    if since is not None:
        conditions.append(f"paid_date >= {date_literal(since)}")
    if due_after is not None:
        conditions.append(f"due_date > {date_literal(due_after)}")
    sql = f"""
    SELECT document_id AS invoice_id, customer_id, doc_type, invoice_date, due_date,
           amount_base::DOUBLE AS amount, paid_date, coalesce(paid_by_cash, 0)::DOUBLE AS paid_by_payments
    FROM ledger_documents
    WHERE {" AND ".join(conditions)}{clause}
    """
    return sql, params


def paid_dates_source(as_of: date, paid: pl.DataFrame | None) -> tuple[str, list[Any], dict[str, pl.DataFrame] | None]:
    """Where a query reads the paid dates of ``as_of`` from: (SQL, parameters, frames for
    ``Store.query(frames=...)``). :func:`paid_dates_sql` computes them; ``paid`` (the same
    dates already read) is read instead when given."""
    if paid is None:
        sql, params = paid_dates_sql(as_of)
        return sql, params, None
    return f"SELECT * FROM {PAID_FRAME}", [], {PAID_FRAME: paid}


def documents_sql() -> str:
    """The ledger's documents as a relation for joins (document_id, customer_id, doc_type,
    invoice_date, due_date, currency, amount, fx_rate, amount_base, paid_date, ...)."""
    return "SELECT * FROM ledger_documents"
