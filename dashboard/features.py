"""As-of features for the payment-risk model: one code path for training and scoring.

:func:`build_features` returns one row per (as-of date, invoice open at the end of that day)
with everything that was *known* at the end of that day and nothing later:

- events are known at the end of their day: payments and adjustments dated ``<= as_of``,
  contacts and notes stamped before ``as_of + 1 day``, disputes opened ``<= as_of`` (a
  dispute resolved after ``as_of`` is still open as of ``as_of``);
- an invoice's closing date (the day payments and credits first cover its amount) is only
  used when it is ``<= as_of``; that comparison depends on events up to ``as_of`` alone, so
  changing anything dated later changes no feature (``tests/test_features.py`` checks it).

Payment history is read two ways: over every closed invoice (share late, mean days late, last
10), and over the "clean" ones whose pay date no dispute, answered reminder or early-payment
discount moved (median and mean days late, the last ``RECENT_INVOICES`` of them for behaviour
that changed). Customers who pay only on a month-end payment run (the last business day of a
month) show up as ``history_share_paid_on_run``; for them the expected days late of this
invoice is the first run on or after its due date plus the customer's usual lateness, so an
invoice due just after a run waits almost a month.

Everything is one DuckDB query over whole tables (no loop per invoice); several as-of dates
(training snapshots) are computed in the same query.

Open amounts, paid (closing) dates and base-currency amounts come from the ledger
(:mod:`dashboard.ledger`), the one definition every page also reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from dashboard.errors import ModelCardError
from dashboard.ledger import open_items_at_dates_sql
from dashboard.segments import DEFAULT_RULES, segments_sql
from dashboard.store import Store

DEFAULT_GRACE_DAYS = 5
NOTES_WINDOW_DAYS = 90
PROMISE_WINDOW_DAYS = 180
DISPUTE_WINDOW_DAYS = 365
CONTACTS_WINDOW_DAYS = 365
RECENT_INVOICES = 5

# Columns that identify a row; never model inputs.
KEY_COLUMNS: tuple[str, ...] = (
    "as_of",
    "invoice_id",
    "customer_id",
    "invoice_date",
    "due_date",
    "amount",
    "open_amount",
    "currency",
)

# Model inputs, grouped by family. Each family becomes one plain-language reason.
FEATURE_FAMILIES: dict[str, tuple[str, ...]] = {
    "invoice_timing": (
        "days_to_due",
        "days_past_due",
        "invoice_age_days",
        "terms_days",
        "due_day_of_month",
        "due_at_month_end",
        "days_due_to_month_end",
        "days_due_to_next_run",
    ),
    "invoice_size": ("amount_base", "relative_size", "share_still_open"),
    "payment_history": (
        "history_invoices_closed",
        "history_share_late",
        "history_mean_days_late",
        "history_amount_weighted_days_late",
        "history_days_late_trend",
        "history_days_late_sd",
        "history_share_paid_month_end",
        "last10_count",
        "last10_late_count",
        "last10_mean_days_late",
        "clean_invoices_closed",
        "clean_median_days_late",
        "clean_mean_days_late",
        "recent5_clean_median_days_late",
        "recent5_mean_days_late",
        "history_share_paid_on_run",
        "history_share_late_same_run_position",
        "expected_days_late",
        "expected_pay_days_from_now",
    ),
    "payment_recency": ("days_since_last_payment", "customer_tenure_days"),
    "exposure": (
        "customer_open_balance",
        "customer_open_invoices",
        "customer_share_overdue",
        "customer_max_days_past_due",
        "credit_limit_use",
    ),
    "disputes": (
        "dispute_open",
        "dispute_open_days",
        "dispute_category",
        "customer_open_disputes",
        "customer_disputes_past_year",
    ),
    "contacts": (
        "contacts_on_invoice",
        "last_contact_action",
        "last_contact_outcome",
        "days_since_last_contact",
        "promise_pending",
        "promises_broken",
        "promises_kept",
        "promised_days_late",
        "customer_share_contacts_answered",
    ),
    "notes": ("notes_recent", "notes_mean_sentiment", "notes_distress", "notes_dispute_cues"),
    "segment": ("segment", "currency_code"),
}

FEATURE_COLUMNS: tuple[str, ...] = tuple(c for cols in FEATURE_FAMILIES.values() for c in cols)
CATEGORICAL_FEATURES: tuple[str, ...] = (
    "dispute_category",
    "last_contact_action",
    "last_contact_outcome",
    "segment",
    "currency_code",
)
FAMILY_OF: dict[str, str] = {c: fam for fam, cols in FEATURE_FAMILIES.items() for c in cols}


@dataclass(frozen=True)
class FeatureSpec:
    """Parameters of the feature definitions (stored in the model card)."""

    grace_days: int = DEFAULT_GRACE_DAYS
    notes_window_days: int = NOTES_WINDOW_DAYS
    promise_window_days: int = PROMISE_WINDOW_DAYS
    dispute_window_days: int = DISPUTE_WINDOW_DAYS
    contacts_window_days: int = CONTACTS_WINDOW_DAYS
    # The ``segment`` feature is the customer's segment under these rules (dashboard.segments);
    # cards written before this field existed used v1, the only rules shipped so far.
    segment_rules: str = DEFAULT_RULES.rule_version


def _date_list(as_of_dates: Sequence[date]) -> str:
    if not as_of_dates:
        msg = "No as-of dates were given; got an empty list."
        raise ValueError(msg)
    return ", ".join(f"DATE '{d.isoformat()}'" for d in sorted(set(as_of_dates)))


def closing_dates_sql() -> str:
    """SQL (a CTE body) giving each invoice's closing date from the ledger: the first day its
    balance reached zero (:mod:`dashboard.ledger`). NULL while still open. Only ever compared
    with ``<= as_of``."""
    return "SELECT document_id AS invoice_id, paid_date AS closed_date FROM ledger_documents WHERE paid_date IS NOT NULL"


def last_business_day_sql(day: str) -> str:
    """SQL for the last business day (Mon-Fri) of the month of ``day``: a month-end payment run."""
    end = f"last_day({day})"
    return f"({end} - CASE dayofweek({end}) WHEN 6 THEN 1 WHEN 0 THEN 2 ELSE 0 END)"


def next_run_sql(day: str) -> str:
    """SQL for the first month-end payment run (last business day of a month) on or after ``day``."""
    this_month = last_business_day_sql(day)
    return f"(CASE WHEN {this_month} >= {day} THEN {this_month} ELSE {last_business_day_sql(f'({day} + 7)')} END)"


def _features_sql(
    dates_sql: str, spec: FeatureSpec, invoice_filter: str, segment_sql: str, open_sql: str, customer_scope: str = ""
) -> str:
    grace = int(spec.grace_days)
    return f"""
WITH as_of_dates AS (SELECT unnest([{dates_sql}]) AS as_of),
inv AS (  -- invoices with what the ledger says: base amount, rate, paid date
    SELECT l.document_id AS invoice_id, l.customer_id, l.invoice_date, l.due_date,
           coalesce(i.terms_days, l.due_date - l.invoice_date)::INTEGER AS terms_days,
           l.amount::DOUBLE AS amount,
           l.amount_base::DOUBLE AS amount_base,
           coalesce(l.fx_rate, 1.0) AS fx,
           l.currency,
           l.paid_date AS closed_date
    FROM ledger_documents l JOIN invoices i ON i.invoice_id = l.document_id
    WHERE l.doc_type = 'invoice' AND l.amount > 0{customer_scope}
),
inv_c AS (SELECT * FROM inv),
-- open on each as-of date: the ledger's balance (document currency)
ledger_open AS ({open_sql}),
open_amt AS (
    SELECT o.as_of, i.*, o.open_doc::DOUBLE AS open_amount
    FROM ledger_open o JOIN inv i USING (invoice_id)
    WHERE o.open_doc > 0
),
pairs AS (SELECT * FROM open_amt WHERE {invoice_filter}),
cust_asof AS (SELECT DISTINCT as_of, customer_id FROM pairs),
-- running geometric-mean invoice size per customer, read as of each date
size_run AS (
    SELECT customer_id, invoice_date,
           avg(ln(greatest(amount_base, 0.01))) OVER (
               PARTITION BY customer_id ORDER BY invoice_date
               RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS mean_log_amount,
           min(invoice_date) OVER (PARTITION BY customer_id) AS first_invoice_date
    FROM inv
    QUALIFY row_number() OVER (PARTITION BY customer_id, invoice_date ORDER BY invoice_id) = 1
),
size_asof AS (
    SELECT c.as_of, c.customer_id, s.mean_log_amount, s.first_invoice_date
    FROM cust_asof c ASOF LEFT JOIN size_run s
      ON c.customer_id = s.customer_id AND s.invoice_date <= c.as_of
),
-- payment history: invoices of the customer closed by the as-of date. "Clean" ones are those
-- whose pay date no dispute, answered reminder or discount moved (every event read here is
-- dated on or before the closing date, itself <= as_of when used).
clean_inv AS (
    SELECT i.invoice_id, i.customer_id, i.amount_base, i.due_date, i.closed_date,
           (i.closed_date - i.due_date) AS days_late,
           ({next_run_sql("i.due_date")} - i.due_date <= {grace}) AS due_near_run,
           (i.closed_date = {last_business_day_sql("i.closed_date")}) AS paid_on_run,
           NOT EXISTS (SELECT 1 FROM disputes d WHERE d.invoice_id = i.invoice_id AND d.opened_date <= i.closed_date)
           AND NOT EXISTS (SELECT 1 FROM contacts k WHERE k.invoice_id = i.invoice_id
                           AND k.outcome IN ('paid', 'promise to pay') AND k.ts < i.closed_date + INTERVAL 1 DAY)
           AND NOT EXISTS (SELECT 1 FROM adjustments a WHERE a.invoice_id = i.invoice_id AND a.kind = 'discount'
                           AND a.adjustment_date <= i.closed_date) AS is_clean
    FROM inv_c i WHERE i.closed_date IS NOT NULL
),
-- Each closed invoice's place in its customer's closing order, oldest first (the same day: the
-- higher invoice id first), and how many clean ones up to it. At an as-of date the invoice's
-- recency rank (1 = the latest closed, ties to the lower id) is then how many had closed by
-- that date minus its place, plus one: no window over every (as-of date, closed invoice) pair.
clean_seq AS (
    SELECT *, row_number() OVER w AS seq, sum(is_clean::INTEGER) OVER w AS clean_seq
    FROM clean_inv
    WINDOW w AS (PARTITION BY customer_id ORDER BY closed_date, invoice_id DESC
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
closed_by_day AS (
    SELECT customer_id, closed_date, max(seq) AS closed_by, max(clean_seq) AS clean_by
    FROM clean_seq GROUP BY customer_id, closed_date
),
closed_count AS (
    SELECT c.as_of, c.customer_id, d.closed_by, d.clean_by
    FROM cust_asof c ASOF JOIN closed_by_day d
      ON c.customer_id = d.customer_id AND d.closed_date <= c.as_of
),
closed_join AS (
    SELECT c.as_of, c.customer_id, i.amount_base, i.days_late, i.closed_date, i.is_clean, i.due_near_run, i.paid_on_run,
           c.closed_by - i.seq + 1 AS recency_rank,
           CASE WHEN i.is_clean THEN c.clean_by - i.clean_seq + 1 END AS clean_rank
    FROM closed_count c JOIN clean_seq i
      ON i.customer_id = c.customer_id AND i.closed_date <= c.as_of
),
hist AS (
    SELECT as_of, customer_id,
        count(*)::INTEGER AS history_invoices_closed,
        avg((days_late > {grace})::INTEGER) AS history_share_late,
        avg(days_late)::DOUBLE AS history_mean_days_late,
        sum(amount_base * greatest(days_late, 0)) / nullif(sum(amount_base), 0) AS history_amount_weighted_days_late,
        avg(CASE WHEN closed_date > as_of - 90 THEN days_late END)
          - avg(CASE WHEN closed_date <= as_of - 90 THEN days_late END) AS history_days_late_trend,
        stddev_samp(days_late)::DOUBLE AS history_days_late_sd,
        avg((day(closed_date) >= day(last_day(closed_date)) - 3)::INTEGER)::DOUBLE AS history_share_paid_month_end,
        count(*) FILTER (WHERE recency_rank <= 10)::INTEGER AS last10_count,
        count(*) FILTER (WHERE recency_rank <= 10 AND days_late > {grace})::INTEGER AS last10_late_count,
        avg(CASE WHEN recency_rank <= 10 THEN days_late END)::DOUBLE AS last10_mean_days_late,
        count(*) FILTER (WHERE is_clean)::INTEGER AS clean_invoices_closed,
        quantile_cont(days_late, 0.5) FILTER (WHERE is_clean)::DOUBLE AS clean_median_days_late,
        avg(days_late) FILTER (WHERE is_clean)::DOUBLE AS clean_mean_days_late,
        quantile_cont(days_late, 0.5) FILTER (WHERE clean_rank <= {RECENT_INVOICES})::DOUBLE AS recent5_clean_median_days_late,
        avg(days_late) FILTER (WHERE recency_rank <= {RECENT_INVOICES})::DOUBLE AS recent5_mean_days_late,
        avg(paid_on_run::INTEGER)::DOUBLE AS history_share_paid_on_run,
        avg((days_late > {grace})::INTEGER) FILTER (WHERE due_near_run)::DOUBLE AS share_late_due_near_run,
        avg((days_late > {grace})::INTEGER) FILTER (WHERE NOT due_near_run)::DOUBLE AS share_late_due_far_from_run
    FROM closed_join GROUP BY as_of, customer_id
),
pay_days AS (SELECT DISTINCT customer_id, payment_date FROM payments WHERE customer_id IS NOT NULL),
last_pay AS (
    SELECT c.as_of, c.customer_id, p.payment_date AS last_payment_date
    FROM cust_asof c ASOF LEFT JOIN pay_days p
      ON c.customer_id = p.customer_id AND p.payment_date <= c.as_of
),
exposure AS (
    SELECT as_of, customer_id,
        sum(open_amount * fx) AS customer_open_balance,
        count(*)::INTEGER AS customer_open_invoices,
        sum(CASE WHEN due_date < as_of THEN open_amount * fx ELSE 0 END)
            / nullif(sum(open_amount * fx), 0) AS customer_share_overdue,
        greatest(max(as_of - due_date), 0)::INTEGER AS customer_max_days_past_due
    -- every open invoice of the customer, not only the ones asked for
    FROM open_amt SEMI JOIN cust_asof USING (as_of, customer_id)
    GROUP BY as_of, customer_id
),
disp AS (
    SELECT dispute_id, coalesce(d.customer_id, i.customer_id) AS customer_id, d.invoice_id,
           opened_date, resolved_date, category
    FROM disputes d LEFT JOIN inv i USING (invoice_id)
),
inv_dispute AS (
    SELECT p.as_of, p.invoice_id,
        1 AS dispute_open,
        max(p.as_of - d.opened_date)::INTEGER AS dispute_open_days,
        arg_max(d.category, d.opened_date) AS dispute_category
    FROM pairs p JOIN disp d
      ON d.invoice_id = p.invoice_id AND d.opened_date <= p.as_of
     AND (d.resolved_date IS NULL OR d.resolved_date > p.as_of)
    GROUP BY p.as_of, p.invoice_id
),
cust_dispute AS (
    SELECT c.as_of, c.customer_id,
        count(*) FILTER (WHERE d.resolved_date IS NULL OR d.resolved_date > c.as_of)::INTEGER AS customer_open_disputes,
        count(*) FILTER (WHERE d.opened_date > c.as_of - {int(spec.dispute_window_days)})::INTEGER
            AS customer_disputes_past_year
    FROM cust_asof c JOIN disp d ON d.customer_id = c.customer_id AND d.opened_date <= c.as_of
    GROUP BY c.as_of, c.customer_id
),
inv_contacts AS (
    SELECT p.as_of, p.invoice_id,
        count(*)::INTEGER AS contacts_on_invoice,
        arg_max(k.action, k.ts) AS last_contact_action,
        arg_max(k.outcome, k.ts) AS last_contact_outcome,
        (p.as_of - max(k.ts)::DATE)::INTEGER AS days_since_last_contact,
        max(CASE WHEN k.promise_date >= p.as_of THEN 1 ELSE 0 END) AS promise_pending,
        (arg_max(k.promise_date, k.ts) FILTER (WHERE k.promise_date IS NOT NULL) - any_value(p.due_date))::INTEGER AS promised_days_late
    FROM pairs p JOIN contacts k
      ON k.invoice_id = p.invoice_id AND k.ts < p.as_of + INTERVAL 1 DAY
    GROUP BY p.as_of, p.invoice_id
),
promises AS (
    SELECT c.as_of, c.customer_id,
        count(*) FILTER (WHERE i.closed_date IS NULL OR i.closed_date > k.promise_date)::INTEGER AS promises_broken,
        count(*) FILTER (WHERE i.closed_date <= k.promise_date)::INTEGER AS promises_kept
    FROM cust_asof c
    JOIN contacts k ON k.customer_id = c.customer_id
     AND k.promise_date IS NOT NULL
     AND k.ts < c.as_of + INTERVAL 1 DAY
     AND k.promise_date < c.as_of
     AND k.promise_date >= c.as_of - {int(spec.promise_window_days)}
    LEFT JOIN inv_c i ON i.invoice_id = k.invoice_id
    GROUP BY c.as_of, c.customer_id
),
answered AS (
    SELECT c.as_of, c.customer_id,
        avg((k.outcome IN ('paid', 'promise to pay'))::INTEGER)::DOUBLE AS customer_share_contacts_answered
    FROM cust_asof c JOIN contacts k
      ON k.customer_id = c.customer_id AND k.ts < c.as_of + INTERVAL 1 DAY
     AND k.ts >= c.as_of - {int(spec.contacts_window_days) - 1}
    GROUP BY c.as_of, c.customer_id
),
note_feats AS (
    SELECT c.as_of, c.customer_id,
        count(*)::INTEGER AS notes_recent,
        avg(n.sentiment)::DOUBLE AS notes_mean_sentiment,
        count(*) FILTER (WHERE n.flags LIKE '%distress%')::INTEGER AS notes_distress,
        count(*) FILTER (WHERE n.flags LIKE '%dispute%')::INTEGER AS notes_dispute_cues
    FROM cust_asof c JOIN notes n
      ON n.customer_id = c.customer_id
     AND n.ts < c.as_of + INTERVAL 1 DAY
     AND n.ts >= c.as_of - {int(spec.notes_window_days) - 1}
    GROUP BY c.as_of, c.customer_id
),
-- behavioural segment on the as-of date itself (dashboard.segments, shipped rules)
seg AS (SELECT month AS as_of, customer_id, segment FROM ({segment_sql}))
SELECT
    p.as_of, p.invoice_id, p.customer_id, p.invoice_date, p.due_date,
    p.amount, p.open_amount, p.currency,
    -- invoice timing
    (p.due_date - p.as_of)::INTEGER AS days_to_due,
    greatest(p.as_of - p.due_date, 0)::INTEGER AS days_past_due,
    (p.as_of - p.invoice_date)::INTEGER AS invoice_age_days,
    p.terms_days,
    day(p.due_date)::INTEGER AS due_day_of_month,
    (day(p.due_date) >= day(last_day(p.due_date)) - 2)::INTEGER AS due_at_month_end,
    (last_day(p.due_date) - p.due_date)::INTEGER AS days_due_to_month_end,
    ({next_run_sql("p.due_date")} - p.due_date)::INTEGER AS days_due_to_next_run,
    -- invoice size
    p.amount_base,
    p.amount_base / exp(sz.mean_log_amount) AS relative_size,
    p.open_amount / p.amount AS share_still_open,
    -- payment history
    coalesce(h.history_invoices_closed, 0) AS history_invoices_closed,
    h.history_share_late, h.history_mean_days_late, h.history_amount_weighted_days_late,
    h.history_days_late_trend, h.history_days_late_sd, h.history_share_paid_month_end,
    coalesce(h.last10_count, 0) AS last10_count,
    coalesce(h.last10_late_count, 0) AS last10_late_count,
    h.last10_mean_days_late,
    coalesce(h.clean_invoices_closed, 0) AS clean_invoices_closed,
    h.clean_median_days_late, h.clean_mean_days_late, h.recent5_clean_median_days_late,
    h.recent5_mean_days_late, h.history_share_paid_on_run,
    CASE WHEN {next_run_sql("p.due_date")} - p.due_date <= {grace} THEN h.share_late_due_near_run
         ELSE h.share_late_due_far_from_run END AS history_share_late_same_run_position,
    CASE WHEN h.history_share_paid_on_run >= 0.5
         THEN {next_run_sql("(p.due_date + round(coalesce(h.recent5_clean_median_days_late, h.clean_median_days_late))::INTEGER)")} - p.due_date
         ELSE round(coalesce(h.recent5_clean_median_days_late, h.clean_median_days_late)) END::DOUBLE AS expected_days_late,
    (p.due_date - p.as_of + coalesce(h.recent5_clean_median_days_late, h.clean_median_days_late))::DOUBLE
        AS expected_pay_days_from_now,
    -- recency
    (p.as_of - lp.last_payment_date)::INTEGER AS days_since_last_payment,
    (p.as_of - sz.first_invoice_date)::INTEGER AS customer_tenure_days,
    -- exposure
    e.customer_open_balance, e.customer_open_invoices, e.customer_share_overdue,
    e.customer_max_days_past_due,
    e.customer_open_balance / nullif(cu.credit_limit::DOUBLE, 0) AS credit_limit_use,
    -- disputes
    coalesce(idp.dispute_open, 0) AS dispute_open,
    idp.dispute_open_days,
    idp.dispute_category,
    coalesce(cd.customer_open_disputes, 0) AS customer_open_disputes,
    coalesce(cd.customer_disputes_past_year, 0) AS customer_disputes_past_year,
    -- contacts
    coalesce(ic.contacts_on_invoice, 0) AS contacts_on_invoice,
    ic.last_contact_action, ic.last_contact_outcome, ic.days_since_last_contact,
    coalesce(ic.promise_pending, 0) AS promise_pending,
    coalesce(pr.promises_broken, 0) AS promises_broken,
    coalesce(pr.promises_kept, 0) AS promises_kept,
    ic.promised_days_late,
    an.customer_share_contacts_answered,
    -- notes
    coalesce(nf.notes_recent, 0) AS notes_recent,
    nf.notes_mean_sentiment,
    coalesce(nf.notes_distress, 0) AS notes_distress,
    coalesce(nf.notes_dispute_cues, 0) AS notes_dispute_cues,
    -- segment
    sg.segment,
    p.currency AS currency_code
FROM pairs p
LEFT JOIN customers cu ON cu.customer_id = p.customer_id
LEFT JOIN size_asof sz ON sz.as_of = p.as_of AND sz.customer_id = p.customer_id
LEFT JOIN hist h ON h.as_of = p.as_of AND h.customer_id = p.customer_id
LEFT JOIN last_pay lp ON lp.as_of = p.as_of AND lp.customer_id = p.customer_id
LEFT JOIN exposure e ON e.as_of = p.as_of AND e.customer_id = p.customer_id
LEFT JOIN inv_dispute idp ON idp.as_of = p.as_of AND idp.invoice_id = p.invoice_id
LEFT JOIN cust_dispute cd ON cd.as_of = p.as_of AND cd.customer_id = p.customer_id
LEFT JOIN inv_contacts ic ON ic.as_of = p.as_of AND ic.invoice_id = p.invoice_id
LEFT JOIN promises pr ON pr.as_of = p.as_of AND pr.customer_id = p.customer_id
LEFT JOIN answered an ON an.as_of = p.as_of AND an.customer_id = p.customer_id
LEFT JOIN note_feats nf ON nf.as_of = p.as_of AND nf.customer_id = p.customer_id
LEFT JOIN seg sg ON sg.as_of = p.as_of AND sg.customer_id = p.customer_id
"""


def build_features(
    store: Store,
    as_of: date | Sequence[date],
    *,
    spec: FeatureSpec | None = None,
    invoice_ids: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Features of every invoice open at the end of ``as_of`` (one or several dates).

    Parameters
    ----------
    store
        The receivables store.
    as_of
        One date (scoring) or several (training snapshots); nothing dated later is read.
    spec
        Feature parameters (grace days, trailing windows).
    invoice_ids
        Restrict to these invoices (still only those open at ``as_of``).

    Returns
    -------
    pl.DataFrame
        ``KEY_COLUMNS`` then ``FEATURE_COLUMNS``; one row per (as_of, open invoice).
    """
    spec = spec or FeatureSpec()
    if spec.segment_rules != DEFAULT_RULES.rule_version:
        msg = (
            f"This model was trained with segment rules {spec.segment_rules!r}, but this version of Recoup "
            f"computes segments with rules {DEFAULT_RULES.rule_version!r}; its segment feature would not mean "
            "what it learnt. Train a new model (Risk page, or `python -m dashboard train`)."
        )
        raise ModelCardError(msg)
    dates = [as_of] if isinstance(as_of, date) else list(as_of)
    params: list[object] = []
    invoice_filter = "TRUE"
    scope, scope_params = "", []
    if invoice_ids is not None:
        invoice_filter = "invoice_id IN (SELECT unnest(?::VARCHAR[]))"
        params.append(list(invoice_ids))
        # every feature is per invoice or per customer: only the asked invoices' customers are read
        scope = " AND l.customer_id IN (SELECT customer_id FROM invoices WHERE invoice_id IN (SELECT unnest(?::VARCHAR[])))"
        scope_params = [list(invoice_ids)]
    segment_sql, segment_params = segments_sql(dates, with_open_amount=False)
    open_sql, open_params = open_items_at_dates_sql(dates)
    sql = _features_sql(_date_list(dates), spec, invoice_filter, segment_sql, open_sql, scope)
    frame = store.query(sql, [*scope_params, *open_params, *params, *segment_params] or None)
    # Sums of doubles depend on the order DuckDB's threads add them; rounding to 9 decimals
    # makes the same data give the same features on every run.
    floats = [c for c, t in frame.schema.items() if t == pl.Float64 and c in FEATURE_COLUMNS]
    frame = frame.with_columns(pl.col(floats).round(9))
    # Rows in (as_of, invoice_id) order, sorted here: DuckDB's ORDER BY carried every feature
    # column through its sort (13 of 50 CPU seconds of the query for 1M training snapshots).
    return frame.select(list(KEY_COLUMNS) + list(FEATURE_COLUMNS)).sort("as_of", "invoice_id")


def build_outcomes(store: Store, *, known_by: date) -> pl.DataFrame:
    """Each invoice's outcome as known at the end of ``known_by`` (labels only).

    Returns ``invoice_id, closed_date, written_off``: ``closed_date`` is NULL while the invoice
    was still open at ``known_by`` (a censored observation); ``written_off`` is true when a
    write-off (not a payment) closed it.
    """
    sql = f"""
        WITH closing AS ({closing_dates_sql()}),
        write_offs AS (
            SELECT invoice_id, min(adjustment_date) AS write_off_date
            FROM adjustments WHERE kind = 'write_off' AND invoice_id IS NOT NULL GROUP BY 1
        )
        SELECT i.invoice_id,
               CASE WHEN c.closed_date <= ?::DATE THEN c.closed_date END AS closed_date,
               coalesce(c.closed_date <= ?::DATE AND w.write_off_date <= c.closed_date, false) AS written_off
        FROM invoices i
        LEFT JOIN closing c USING (invoice_id)
        LEFT JOIN write_offs w USING (invoice_id)
    """
    return store.query(sql, [known_by, known_by])


def attach_labels(features: pl.DataFrame, outcomes: pl.DataFrame, *, known_by: date, grace_days: int) -> pl.DataFrame:
    """Add the labels as known at ``known_by``.

    ``late``: for invoices whose due date + grace is before ``known_by``, 1 when closed after
    it or still open, 0 when closed in time; null for the others (even when already paid). ``event``: 1 when paid (closed, not by a write-off), else 0
    (censored; a written-off invoice stays "not paid" up to ``known_by``). ``duration_days``:
    days from the snapshot to payment, or to ``known_by`` when censored.
    """
    frame = features.join(outcomes, on="invoice_id", how="left")
    late_line = pl.col("due_date") + pl.duration(days=grace_days)
    paid = pl.col("closed_date").is_not_null() & ~pl.col("written_off").fill_null(False)
    # Only invoices whose due date + grace has passed by known_by get a label, paid or not:
    # labelling early payers of the others too would make the label depend on how soon they paid.
    return frame.with_columns(
        late=pl.when(pl.lit(known_by) > late_line)
        .then((pl.col("closed_date").is_null() | (pl.col("closed_date") > late_line)).cast(pl.Int8))
        .otherwise(None),
        event=paid.cast(pl.Int8),
        duration_days=(
            pl.when(paid).then(pl.col("closed_date")).otherwise(pl.lit(known_by)) - pl.col("as_of")
        ).dt.total_days(),
    )
