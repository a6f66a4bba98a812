"""The unified receivables schema (see ../shared/design/DATA_MODEL.md), as versioned DDL.

``MIGRATIONS[i]`` takes a store from schema version ``i`` to ``i + 1``. Never edit a
migration that has shipped: append a new one. ``CANONICAL_COLUMNS`` is the contract between
the sample-world generator, ingest and everything that reads the store.

Conventions: money is ``DECIMAL(18,2)``, signed (credits negative); dates are ``DATE``,
timestamps are UTC ``TIMESTAMP``; ids are text (leading zeros matter). Every data row
carries the ``load_id`` it came from (lineage).
"""

from __future__ import annotations

MONEY = "DECIMAL(18,2)"
PAID_WITHIN_DAYS = 30  # the horizon of scores.p_paid_30d: P(paid within this many days of the as-of date)

_V1 = f"""
CREATE TABLE customers (
    customer_id       VARCHAR PRIMARY KEY,
    name              VARCHAR NOT NULL,
    parent_id         VARCHAR,
    industry          VARCHAR,
    region            VARCHAR,
    country           VARCHAR,
    currency          VARCHAR,
    credit_limit      {MONEY},
    default_terms     VARCHAR,
    owner             VARCHAR,
    strategic         BOOLEAN NOT NULL DEFAULT false,
    preferred_channel VARCHAR,
    email             VARCHAR,
    phone             VARCHAR,
    load_id           INTEGER
);

-- invoices and payments carry no PRIMARY KEY index: their ids are unique by construction of
-- the one writer (dashboard.ingest checks every incoming id against the file and the store, in
-- the load's transaction, under Store's write lock; a second process cannot open the file). The
-- ART index cost 0.5-0.7 s per million rows loaded, a third of a bulk load, for a guarantee the
-- loader already gives; tests/test_ingest*.py and the `duplicates` data-health check cover it.
CREATE TABLE invoices (
    invoice_id    VARCHAR NOT NULL,
    customer_id   VARCHAR NOT NULL,
    doc_type      VARCHAR NOT NULL DEFAULT 'invoice',  -- invoice, credit_memo, unapplied_payment, journal
    invoice_date  DATE NOT NULL,
    due_date      DATE NOT NULL,
    terms_code    VARCHAR,
    terms_days    INTEGER,
    amount        {MONEY} NOT NULL,
    currency      VARCHAR,
    amount_base   {MONEY},
    po_number     VARCHAR,
    source_system VARCHAR,
    load_id       INTEGER
);

CREATE TABLE payments (
    payment_id         VARCHAR NOT NULL,
    customer_id        VARCHAR,
    invoice_id         VARCHAR,          -- NULL when unapplied
    payment_date       DATE NOT NULL,    -- for interval-censored rows: the latest it can have been
    payment_date_lower DATE,             -- interval-censored rows only: paid after this date
    amount             {MONEY} NOT NULL,
    currency           VARCHAR,
    method             VARCHAR,
    load_id            INTEGER
);

CREATE TABLE adjustments (
    adjustment_id   VARCHAR PRIMARY KEY,
    invoice_id      VARCHAR,
    customer_id     VARCHAR,
    adjustment_date DATE NOT NULL,
    amount          {MONEY} NOT NULL,   -- reduces the open amount when negative
    kind            VARCHAR,            -- credit_note, write_off, discount
    reason          VARCHAR,
    load_id         INTEGER
);

CREATE TABLE disputes (
    dispute_id    VARCHAR PRIMARY KEY,
    invoice_id    VARCHAR,
    customer_id   VARCHAR,
    opened_date   DATE NOT NULL,
    resolved_date DATE,
    category      VARCHAR,
    amount        {MONEY},
    resolution    VARCHAR,
    load_id       INTEGER
);

CREATE TABLE contacts (
    contact_id     VARCHAR PRIMARY KEY,
    customer_id    VARCHAR,
    invoice_id     VARCHAR,
    ts             TIMESTAMP NOT NULL,
    channel        VARCHAR,   -- email, sms, call, letter, portal
    action         VARCHAR,   -- reminder, follow-up, escalation, call, payment plan, credit hold
    template_id    VARCHAR,
    tone           VARCHAR,
    collector      VARCHAR,
    outcome        VARCHAR,   -- no response, promise to pay, paid, dispute raised, bounced, wrong contact
    promise_date   DATE,
    promise_amount {MONEY},
    load_id        INTEGER
);

CREATE TABLE notes (
    note_id     VARCHAR PRIMARY KEY,
    customer_id VARCHAR,
    invoice_id  VARCHAR,
    ts          TIMESTAMP NOT NULL,
    source      VARCHAR,   -- crm, support
    text        VARCHAR,
    sentiment   DOUBLE,    -- derived
    flags       VARCHAR,   -- derived: comma-separated distress, dispute, promise
    load_id     INTEGER
);

CREATE TABLE fx_rates (
    date         DATE NOT NULL,
    currency     VARCHAR NOT NULL,
    rate_to_base DOUBLE NOT NULL,
    load_id      INTEGER,
    PRIMARY KEY (date, currency)
);

CREATE TABLE snapshots (
    load_id     INTEGER NOT NULL,
    as_of_date  DATE NOT NULL,
    invoice_id  VARCHAR NOT NULL,
    customer_id VARCHAR,
    open_amount {MONEY} NOT NULL,
    PRIMARY KEY (load_id, invoice_id)
);

CREATE TABLE customer_segments (
    customer_id  VARCHAR NOT NULL,
    month        DATE NOT NULL,     -- month end
    segment      VARCHAR NOT NULL,
    rule_version VARCHAR NOT NULL,
    PRIMARY KEY (customer_id, month, rule_version)
);

CREATE TABLE scores (
    model_id     VARCHAR NOT NULL,
    as_of        DATE NOT NULL,
    invoice_id   VARCHAR NOT NULL,
    p_late       DOUBLE,
    p_paid_30d   DOUBLE,
    pay_date_p10 DATE,
    pay_date_p50 DATE,
    pay_date_p90 DATE,
    reasons      VARCHAR,
    PRIMARY KEY (model_id, as_of, invoice_id)
);

CREATE TABLE policy_versions (
    policy_version INTEGER PRIMARY KEY,
    created        TIMESTAMP NOT NULL,
    author         VARCHAR,
    comment        VARCHAR,
    active         BOOLEAN NOT NULL DEFAULT false
);

CREATE TABLE policy_rules (
    policy_version    INTEGER NOT NULL,
    rule_id           VARCHAR NOT NULL,
    active            BOOLEAN NOT NULL DEFAULT true,
    priority          INTEGER NOT NULL,
    segment           VARCHAR,
    risk_tier         VARCHAR,
    min_days_past_due INTEGER,
    max_days_past_due INTEGER,
    min_amount        {MONEY},
    max_amount        {MONEY},
    dispute_open      BOOLEAN,
    strategic         BOOLEAN,
    action            VARCHAR NOT NULL,
    channel           VARCHAR,
    tone              VARCHAR,
    template_id       VARCHAR,
    cadence_days      INTEGER,
    requires_review   BOOLEAN NOT NULL DEFAULT false,
    note              VARCHAR,
    PRIMARY KEY (policy_version, rule_id)
);

CREATE TABLE actions (
    action_id       VARCHAR PRIMARY KEY,
    created         TIMESTAMP NOT NULL,
    as_of           DATE NOT NULL,
    customer_id     VARCHAR,
    invoice_ids     VARCHAR,
    action          VARCHAR,
    channel         VARCHAR,
    tone            VARCHAR,
    template_id     VARCHAR,
    collector       VARCHAR,
    policy_version  INTEGER,
    model_id        VARCHAR,
    priority        DOUBLE,
    status          VARCHAR,   -- exported, done, skipped, overridden
    override_reason VARCHAR,
    outcome         VARCHAR,
    outcome_ts      TIMESTAMP,
    export_format   VARCHAR
);

CREATE TABLE loads (
    load_id       INTEGER PRIMARY KEY,
    file_name     VARCHAR NOT NULL,
    sha256        VARCHAR NOT NULL,
    source_format VARCHAR,
    target_table  VARCHAR,
    mapping       VARCHAR,   -- JSON: source header -> canonical column
    as_of_date    DATE,
    rows_read     INTEGER,
    rows_loaded   INTEGER,
    rows_rejected INTEGER,
    started       TIMESTAMP NOT NULL,
    finished      TIMESTAMP,
    status        VARCHAR NOT NULL,   -- loaded
    message       VARCHAR,
    who           VARCHAR
);

CREATE TABLE rejected_rows (
    load_id    INTEGER NOT NULL,
    row_number INTEGER NOT NULL,
    raw        VARCHAR,   -- JSON of the row as read
    reason     VARCHAR NOT NULL
);

CREATE TABLE mapping_profiles (
    profile_id    VARCHAR PRIMARY KEY,
    source_format VARCHAR NOT NULL,
    target_table  VARCHAR NOT NULL,
    headers       VARCHAR NOT NULL,   -- JSON list, to detect schema drift
    mapping       VARCHAR NOT NULL,   -- JSON: source header -> canonical column
    created       TIMESTAMP NOT NULL,
    updated       TIMESTAMP NOT NULL
);
"""

_V2 = """
-- The ledger (dashboard.ledger): derived from the tables above, rewritten for the documents
-- each load or undo touches, inside its transaction.
CREATE TABLE ledger_documents (
    document_id   VARCHAR NOT NULL,  -- invoice_id, or payment_id for unapplied cash
    customer_id   VARCHAR,
    doc_type      VARCHAR NOT NULL,
    invoice_date  DATE NOT NULL,
    due_date      DATE NOT NULL,
    currency      VARCHAR,
    amount        DECIMAL(18,2) NOT NULL,   -- document currency, signed
    fx_rate       DOUBLE,                   -- base currency per unit; NULL = no rate known (read at par)
    amount_base   DECIMAL(18,2) NOT NULL,
    open_amount   DECIMAL(18,2) NOT NULL,   -- after every known event, document currency
    paid_date     DATE,                     -- first day the balance reached zero
    paid_by_cash  DECIMAL(18,2),            -- cash applied (or presumed from a statement) by paid_date
    settled_from  DATE,                     -- settled for good from this day (NULL: still open)
    known_from    DATE NOT NULL,            -- the balance before this day is not known
    last_event    DATE,
    stated        BOOLEAN NOT NULL          -- a file stated this document's balance at least once
);
CREATE TABLE ledger_balances (
    document_id VARCHAR NOT NULL,
    event_date  DATE NOT NULL,
    open_amount DECIMAL(18,2) NOT NULL,     -- at the end of event_date, document currency
    paid_cash   DECIMAL(18,2) NOT NULL      -- cumulative cash applied (or presumed) by then
);
-- the date layout each column of a source was read with (JSON: column -> layout), so a later
-- file from it whose days are all 12 or less is read the same way
ALTER TABLE mapping_profiles ADD COLUMN date_layouts VARCHAR;
"""

_V3 = """
-- Scores are kept per scorer (a model, or the customer-history baseline standing in for it),
-- as-of date and data version, with the weekly hazards every derived figure is read from.
ALTER TABLE scores ADD COLUMN scorer VARCHAR;        -- 'model' or 'baseline'
ALTER TABLE scores ADD COLUMN data_version VARCHAR;  -- the loads the scores were computed on
ALTER TABLE scores ADD COLUMN hazards FLOAT[];       -- weekly hazards of being paid after as_of
"""

_V4 = """
-- Pilots (dashboard.pilot): a named trial of the worklist against a randomized holdout that keeps
-- the usual cadence. A pilot and its assignments are written once, at its start, in one transaction;
-- a customer first seen later is added by the same hash rule and never changes arm.
CREATE TABLE pilots (
    pilot_id      VARCHAR PRIMARY KEY,
    name          VARCHAR NOT NULL,
    start_date    DATE NOT NULL,
    days          INTEGER NOT NULL,         -- 30, 60 or 90
    holdout_share DOUBLE NOT NULL,          -- 0.10 = one customer in ten keeps the usual cadence
    scope_kind    VARCHAR NOT NULL,         -- all, segment, collector
    scope_value   VARCHAR,
    kill_days     DOUBLE,                   -- the worklist group must pay at least this many days sooner
    created       TIMESTAMP NOT NULL,
    created_by    VARCHAR,
    cancelled     TIMESTAMP
);
CREATE TABLE pilot_assignments (
    pilot_id    VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    arm         VARCHAR NOT NULL,           -- worklist, holdout
    stratum     VARCHAR NOT NULL,           -- segment at start | open-amount band at start
    assigned    DATE NOT NULL,              -- the pilot's start, or the day a later customer was first seen
    PRIMARY KEY (pilot_id, customer_id)
);
"""

_V5_ACCESS = """
-- Team use (dashboard.access, dashboard.audit): who may do what, each collector's customers, and
-- an append-only, hash-chained record of every change.
CREATE TABLE users (
    subject      VARCHAR PRIMARY KEY,   -- the sign-in provider's stable id (st.user.sub); 'email:<address>' until first sign-in
    email        VARCHAR,
    name         VARCHAR,
    role         VARCHAR NOT NULL,      -- viewer, analyst, collector, admin
    active       BOOLEAN NOT NULL DEFAULT true,
    collector    VARCHAR,               -- the name customers.owner and the worklist use for this person
    created      TIMESTAMP NOT NULL,
    updated      TIMESTAMP NOT NULL,
    last_sign_in TIMESTAMP
);
CREATE TABLE assignments (
    collector   VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    assigned    TIMESTAMP NOT NULL,
    assigned_by VARCHAR,
    PRIMARY KEY (collector, customer_id)
);
INSERT INTO assignments
SELECT DISTINCT trim(owner), customer_id, now()::TIMESTAMP, 'customers.owner'
FROM customers WHERE nullif(trim(owner), '') IS NOT NULL;
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    ts        TIMESTAMP NOT NULL,       -- UTC
    subject   VARCHAR NOT NULL,
    email     VARCHAR,
    role      VARCHAR NOT NULL,
    action    VARCHAR NOT NULL,
    details   VARCHAR NOT NULL,         -- canonical JSON
    before    VARCHAR,                  -- canonical JSON, where it applies
    after     VARCHAR,
    prev_hash VARCHAR NOT NULL,
    hash      VARCHAR NOT NULL          -- sha256(prev_hash + canonical JSON of this row)
);
"""

_V6_SPANS = """
-- The ledger's balances as spans (dashboard.ledger): each balance holds from its day until the
-- document's next event, and a document's amount until its first, so open items at many dates
-- are read from the rows as they are instead of rebuilding every document's history per query.
ALTER TABLE ledger_balances ADD COLUMN until_date DATE;    -- the document's next event day (NULL: none yet)
ALTER TABLE ledger_documents ADD COLUMN first_event DATE;  -- the document's first event day (NULL: none yet)
"""

_V7_KEPT_BACKTESTS = """
-- The forecast's backtest, kept once computed (dashboard.forecast_kept): it takes seconds to
-- minutes and depends only on the loaded data, its parameters and the forecast's method. Derived
-- like the ledger and the scores, but a cache rather than user data: not in DATA_TABLES. Only the
-- newest few of the current loads are kept; a keep deletes the others.
CREATE TABLE kept_backtests (
    data_version  VARCHAR NOT NULL,    -- Store.loads_version() it was computed on
    method_id     VARCHAR NOT NULL,    -- dashboard.forecast.METHOD_ID of the code that computed it
    params        VARCHAR NOT NULL,    -- canonical JSON: weeks, paths, seed, correlation, dates, origins
    created       TIMESTAMP NOT NULL,  -- UTC, when it finished
    seconds       DOUBLE NOT NULL,     -- how long it took
    as_of_dates   DATE[] NOT NULL,
    details       BLOB NOT NULL,       -- Parquet of BacktestResult.details
    summary       BLOB NOT NULL,       -- Parquet of BacktestResult.table
    runs          BLOB NOT NULL,       -- Parquet of BacktestResult.runs
    PRIMARY KEY (data_version, method_id, params)
);
"""
_V8_PLAIN_LOADS = """
-- The ledger rows of documents nothing has happened to are not written by the load of their
-- invoices (dashboard.ledger.refresh_load): the rows are stored apart, and ledger_documents
-- becomes a view (created by dashboard.ledger.create_views) adding those documents' rows, read
-- from invoices, until any other change to the ledger stores them.
ALTER TABLE ledger_documents RENAME TO ledger_stored_documents;
CREATE TABLE ledger_plain_loads (
    load_id       INTEGER PRIMARY KEY,   -- an invoices load whose documents have no stored rows
    base_currency VARCHAR NOT NULL       -- the base currency the load was read in
);
"""

MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4, _V5_ACCESS, _V6_SPANS, _V7_KEPT_BACKTESTS, _V8_PLAIN_LOADS]
#: The schema version from which ``ledger_documents`` is a view (dashboard.ledger.create_views).
LEDGER_VIEW_VERSION = 8
#: The latest schema version that changed what the ledger keeps: a store migrated from before it
#: gets its ledger (re)built (version 2 created it, version 6 added the spans' bounds).
LEDGER_VERSION = 6
SCHEMA_VERSION = len(MIGRATIONS)

# Tables that hold user data or its lineage (what `status` counts and what a refused load
# must leave untouched).
DATA_TABLES: tuple[str, ...] = (
    "customers",
    "invoices",
    "payments",
    "adjustments",
    "disputes",
    "contacts",
    "notes",
    "fx_rates",
    "snapshots",
    "customer_segments",
    "scores",
    "policy_versions",
    "policy_rules",
    "actions",
    "loads",
    "rejected_rows",
    "mapping_profiles",
    "ledger_documents",
    "ledger_balances",
    "pilots",
    "pilot_assignments",
)

# Who may do what and the record of what was done: not user data (`status` counts them apart,
# a store's fingerprint leaves them out).
ACCESS_TABLES: tuple[str, ...] = ("users", "assignments", "audit_log")

# The canonical extract columns per loadable table, in file order, with their DuckDB type and
# whether the column is required in an extract. The generator writes exactly these columns;
# ingest maps any source onto them.
CANONICAL_COLUMNS: dict[str, dict[str, tuple[str, bool]]] = {
    "customers": {
        "customer_id": ("VARCHAR", True),
        "name": ("VARCHAR", True),
        "parent_id": ("VARCHAR", False),
        "industry": ("VARCHAR", False),
        "region": ("VARCHAR", False),
        "country": ("VARCHAR", False),
        "currency": ("VARCHAR", False),
        "credit_limit": (MONEY, False),
        "default_terms": ("VARCHAR", False),
        "owner": ("VARCHAR", False),
        "strategic": ("BOOLEAN", False),
        "preferred_channel": ("VARCHAR", False),
        "email": ("VARCHAR", False),
        "phone": ("VARCHAR", False),
    },
    "invoices": {
        "invoice_id": ("VARCHAR", True),
        "customer_id": ("VARCHAR", True),
        "doc_type": ("VARCHAR", False),
        "invoice_date": ("DATE", True),
        "due_date": ("DATE", False),  # derived from terms when absent
        "terms_code": ("VARCHAR", False),
        "terms_days": ("INTEGER", False),
        "amount": (MONEY, True),
        "currency": ("VARCHAR", False),
        "amount_base": (MONEY, False),
        "po_number": ("VARCHAR", False),
        "source_system": ("VARCHAR", False),
    },
    "payments": {
        "payment_id": ("VARCHAR", True),
        "customer_id": ("VARCHAR", False),
        "invoice_id": ("VARCHAR", False),
        "payment_date": ("DATE", True),
        "amount": (MONEY, True),
        "currency": ("VARCHAR", False),
        "method": ("VARCHAR", False),
    },
    "adjustments": {
        "adjustment_id": ("VARCHAR", True),
        "invoice_id": ("VARCHAR", False),
        "customer_id": ("VARCHAR", False),
        "adjustment_date": ("DATE", True),
        "amount": (MONEY, True),
        "kind": ("VARCHAR", False),
        "reason": ("VARCHAR", False),
    },
    "disputes": {
        "dispute_id": ("VARCHAR", True),
        "invoice_id": ("VARCHAR", False),
        "customer_id": ("VARCHAR", False),
        "opened_date": ("DATE", True),
        "resolved_date": ("DATE", False),
        "category": ("VARCHAR", False),
        "amount": (MONEY, False),
        "resolution": ("VARCHAR", False),
    },
    "contacts": {
        "contact_id": ("VARCHAR", True),
        "customer_id": ("VARCHAR", False),
        "invoice_id": ("VARCHAR", False),
        "ts": ("TIMESTAMP", True),
        "channel": ("VARCHAR", False),
        "action": ("VARCHAR", False),
        "template_id": ("VARCHAR", False),
        "tone": ("VARCHAR", False),
        "collector": ("VARCHAR", False),
        "outcome": ("VARCHAR", False),
        "promise_date": ("DATE", False),
        "promise_amount": (MONEY, False),
    },
    "notes": {
        "note_id": ("VARCHAR", True),
        "customer_id": ("VARCHAR", False),
        "invoice_id": ("VARCHAR", False),
        "ts": ("TIMESTAMP", True),
        "source": ("VARCHAR", False),
        "text": ("VARCHAR", True),
    },
    "fx_rates": {
        "date": ("DATE", True),
        "currency": ("VARCHAR", True),
        "rate_to_base": ("DOUBLE", True),
    },
}

# Load order when several canonical files arrive together: parents before children.
LOAD_ORDER: tuple[str, ...] = (
    "fx_rates",
    "customers",
    "invoices",
    "payments",
    "adjustments",
    "disputes",
    "contacts",
    "notes",
)
