"""Data health: is the store (or one load) good enough to compute figures from?

One pass of SQL over the store gives a :class:`HealthReport`: completeness of required
fields (from the rows set aside at load), invalid dates, likely duplicates, negative and
outlying amounts, payments dated before their invoice, dates after the as-of date, the
currency mix and how much of the history has real payment dates. Each check has a
threshold; a check over its threshold becomes a plain sentence in ``banners``, which pages
show above any figure or score computed from the same data.

Computed once, rendered many ways: ``to_frame()`` for the Data page's table, ``to_dict()``
for JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import polars as pl

from dashboard.config import base_currency
from dashboard.errors import HealthError
from dashboard.schema import CANONICAL_COLUMNS
from dashboard.store import Store

__all__ = ["HealthCheck", "HealthError", "HealthReport", "health_report", "load_health"]

# Thresholds: the share of rows above which a check puts a banner on the pages.
MISSING_REQUIRED_SHARE = 0.10  # a required field missing (rows set aside for it) on > 10% of rows read
INVALID_DATE_SHARE = 0.02
DUPLICATE_SHARE = 0.02
NEGATIVE_INVOICE_SHARE = 0.005
OUTLIER_SHARE = 0.02
PAID_BEFORE_ISSUED_SHARE = 0.01
FUTURE_DATE_SHARE = 0.01
MIN_EXACT_PAYMENT_SHARE = 0.50  # of settled invoices, those with a real payment date
OUTLIER_ROBUST_Z = 4.0  # |log amount - median| / (1.4826 * MAD) above this is an outlier

# Required fields whose absence sets a row aside at load, as the loader names them ("no invoice
# date"). An invoice's due date is required in the store though the extract may give terms instead.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    table: tuple(
        column.replace("_", " ") for column, (_, required) in columns.items() if required or (table, column) == ("invoices", "due_date")
    )
    for table, columns in CANONICAL_COLUMNS.items()
}


@dataclass(frozen=True)
class HealthCheck:
    """One measured property of the data, against its threshold."""

    key: str  # "missing:invoices:invoice date", "duplicates:invoices", ...
    label: str  # "Invoices without an invoice date"
    table: str
    affected: int
    total: int
    threshold: float | None  # share; None = shown, never a banner
    detail: str = ""

    @property
    def share(self) -> float:
        return self.affected / self.total if self.total else 0.0

    @property
    def passed(self) -> bool:
        return self.threshold is None or self.share <= self.threshold


@dataclass
class HealthReport:
    """The health of the store as a whole (``load_id`` None) or of one load."""

    scope: str  # "the whole store" / "load #3 (aging.csv)"
    as_of: date
    load_id: int | None
    checks: list[HealthCheck]
    currency_mix: pl.DataFrame  # currency, documents, amount, without_base_amount
    payment_history: dict[str, int]  # settled, exact, interval_only, payments, snapshots
    banners: list[str] = field(default_factory=list)

    @property
    def is_healthy(self) -> bool:
        return not self.banners

    @property
    def exact_payment_share(self) -> float | None:
        settled = self.payment_history.get("settled", 0)
        return self.payment_history.get("exact", 0) / settled if settled else None

    def to_frame(self) -> pl.DataFrame:
        """One row per check: what, table, affected, of, share, threshold, status, detail."""
        return pl.DataFrame(
            {
                "check": [c.label for c in self.checks],
                "table": [c.table for c in self.checks],
                "affected": [c.affected for c in self.checks],
                "of": [c.total for c in self.checks],
                "share": [round(c.share, 4) for c in self.checks],
                "threshold": [c.threshold for c in self.checks],
                "status": ["ok" if c.passed else "over threshold" for c in self.checks],
                "detail": [c.detail for c in self.checks],
            },
            schema={
                "check": pl.String, "table": pl.String, "affected": pl.Int64, "of": pl.Int64, "share": pl.Float64,
                "threshold": pl.Float64, "status": pl.String, "detail": pl.String,
            },
        )

    def summary(self) -> str:
        """One line: the scope and what is over threshold."""
        head = f"Data health of {self.scope} as of {self.as_of}"
        if not self.banners:
            return f"{head}: no problem over its threshold ({len(self.checks)} checks)."
        return f"{head}: {len(self.banners)} problem(s) over threshold. " + " ".join(self.banners)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "scope": self.scope,
            "as_of": self.as_of.isoformat(),
            "load_id": self.load_id,
            "banners": self.banners,
            "checks": self.to_frame().to_dicts(),
            "currency_mix": self.currency_mix.to_dicts(),
            "payment_history": self.payment_history,
        }


# -- public --------------------------------------------------------------------------------
def health_report(store: Store, as_of: date) -> HealthReport:
    """The health of everything in the store, with dates judged against ``as_of``."""
    return _report(store, as_of=as_of, load_id=None, scope="the whole store")


def load_health(store: Store, load_id: int, *, as_of: date | None = None) -> HealthReport:
    """The health of what one load brought in.

    Dates are judged against ``as_of``; by default the date the file describes (its as-of
    date), else the day it was loaded.
    """
    rows = store.query("SELECT file_name, as_of_date, started::DATE AS loaded_on FROM loads WHERE load_id = ?", [load_id])
    if rows.height == 0:
        msg = f"there is no load #{load_id} in this store"
        raise HealthError(msg)
    file_name, file_as_of, loaded_on = rows.row(0)
    return _report(store, as_of=as_of or file_as_of or loaded_on, load_id=load_id, scope=f"load #{load_id} ({file_name})")


# -- the checks ----------------------------------------------------------------------------
def _report(store: Store, *, as_of: date, load_id: int | None, scope: str) -> HealthReport:
    params = {"load_id": load_id, "as_of": as_of}
    checks = [
        *_completeness(store, params),
        *_invalid_dates(store, params),
        *_duplicates(store, params),
        *_amounts(store, params),
        *_paid_before_issued(store, params),
        *_future_dates(store, params),
    ]
    currency_mix = _currency_mix(store, params)
    history = _payment_history(store, params)
    report = HealthReport(scope, as_of, load_id, checks, currency_mix, history)
    report.banners = _banners(report)
    if load_id is None:
        report.banners += implausible_figures(store, as_of)
    return report


#: DSO above this many days, several times what the history of payments says, cannot be right.
IMPLAUSIBLE_DSO_DAYS = 180
IMPLAUSIBLE_DSO_RATIO = 3.0
#: Open invoices older than this with no settlement information at all, as a share of open AR.
STALE_DAYS = 365
STALE_SHARE = 0.25


def implausible_figures(store: Store, as_of: date) -> list[str]:
    """Figures as of ``as_of`` that cannot be right, each as a plain sentence: negative overdue
    AR, CEI above 100%, open AR mostly made of old invoices nothing is known about, and DSO in
    the hundreds of days when the payments on record say customers pay far sooner. Pages show
    them above every figure; a load that leads to one says so in its message.

    The measures are the ones :mod:`dashboard.metrics` defines (month period), read in one pass
    over the ledger's open items at ``as_of`` and the day before the month."""
    from dashboard.ledger import date_literal, open_items_at_dates_sql
    from dashboard.metrics import collection_effectiveness_index, dso_standard, month_window

    start, end = month_window(as_of)
    before = start - timedelta(days=1)
    items_sql, params = open_items_at_dates_sql([before, as_of], carry=("last_event", "stated"))
    row = store.query(
        f"""
        WITH items AS ({items_sql})
        SELECT
          coalesce(sum(o.open_amount) FILTER (WHERE o.as_of = {date_literal(as_of)}), 0)::DOUBLE AS total,
          coalesce(sum(o.open_amount) FILTER (WHERE o.as_of = {date_literal(as_of)} AND o.days_past_due <= 0), 0)::DOUBLE
              AS current,
          coalesce(sum(o.open_amount) FILTER (WHERE o.as_of = {date_literal(before)}), 0)::DOUBLE AS beginning,
          coalesce(sum(o.open_amount) FILTER (
              WHERE o.as_of = {date_literal(as_of)} AND o.open_amount > 0 AND o.invoice_date < {date_literal(as_of)} - {STALE_DAYS}
                AND o.last_event IS NULL AND NOT o.stated), 0)::DOUBLE AS stale,
          count(*) FILTER (
              WHERE o.as_of = {date_literal(as_of)} AND o.open_amount > 0 AND o.invoice_date < {date_literal(as_of)} - {STALE_DAYS}
                AND o.last_event IS NULL AND NOT o.stated)::BIGINT AS stale_documents,
          (SELECT coalesce(sum(amount_base), 0)::DOUBLE FROM ledger_documents
            WHERE doc_type = 'invoice' AND invoice_date BETWEEN {date_literal(start)} AND {date_literal(end)}) AS sales,
          (SELECT sum((paid_date - invoice_date) * amount_base::DOUBLE) / nullif(sum(amount_base::DOUBLE), 0)
             FROM ledger_documents
            WHERE doc_type = 'invoice' AND amount > 0 AND paid_by_cash > 0
              AND paid_date > {date_literal(as_of)} - 365 AND paid_date <= {date_literal(as_of)}) AS paid_days
        FROM items o
        """,
        params,
    ).row(0, named=True)
    total, current = row["total"], row["current"]
    overdue = total - current
    dso = dso_standard(total, row["sales"], (end - start).days + 1)
    cei = collection_effectiveness_index(row["beginning"], row["sales"], total, current)
    found: list[str] = []
    if overdue < -0.005:
        found.append(
            f"Overdue AR is negative ({overdue:,.2f}) as of {as_of}: more has been paid or credited on overdue "
            "documents than they were for — an overpayment, a payment applied to the wrong invoice, unapplied cash, or "
            "a credit with the wrong sign. The figures below count it as it stands."
        )
    if cei is not None and cei > 100.05:
        found.append(
            f"The collection effectiveness index is {cei:,.1f}% as of {as_of}, above the 100% it can reach when the "
            "data is right; see the balances above."
        )
    if total > 0 and row["stale"] > STALE_SHARE * total:
        found.append(
            f"{row['stale'] / total:.0%} of open AR ({row['stale']:,.2f}) is {row['stale_documents']:,} invoices over a "
            f"year old that no file says anything about — no payment, credit, paid date or stated balance. If they were "
            "paid, what says so has not been loaded (a payments file, or a paid-date or balance column left unmapped)."
        )
    paid_days = row["paid_days"]
    if dso is not None and dso > IMPLAUSIBLE_DSO_DAYS:
        if paid_days is None:
            found.append(
                f"DSO is {dso:,.0f} days as of {as_of}, and no invoice was paid in the year before: nothing on record "
                "says when customers pay, so the open AR may hold invoices that were paid."
            )
        elif dso > IMPLAUSIBLE_DSO_RATIO * max(float(paid_days), 1.0):
            found.append(
                f"DSO is {dso:,.0f} days as of {as_of}, while invoices paid in the year before took {paid_days:,.0f} "
                "days on average: the open AR probably holds invoices that were paid."
            )
    return found


_IN_SCOPE = "($load_id IS NULL OR load_id = $load_id)"


def _query(store: Store, sql: str, params: dict[str, object]) -> pl.DataFrame:
    # DuckDB refuses named parameters a statement does not use.
    return store.query(sql, {k: v for k, v in params.items() if f"${k}" in sql})


def _completeness(store: Store, params: dict[str, object]) -> list[HealthCheck]:
    """Required fields missing: rows set aside for it, out of the rows read for that table."""
    checks = []
    for table, fields in REQUIRED_FIELDS.items():
        missing_counts = ", ".join(
            "(SELECT count(*) FROM rejected_rows r JOIN loads l USING (load_id) "
            f"WHERE l.target_table = '{table}' AND ($load_id IS NULL OR r.load_id = $load_id) "
            f"AND regexp_matches(r.reason, '(: |; )no {name}( or [^;]*)?($|;)'))::BIGINT AS \"{name}\""
            for name in fields
        )
        counts = _query(store,
            f"""
            SELECT coalesce(sum(rows_read), 0)::BIGINT AS rows_read, {missing_counts}
            FROM loads WHERE target_table = '{table}' AND status = 'loaded' AND {_IN_SCOPE}
            """,
            params,
        ).row(0, named=True)
        rows_read = int(counts.pop("rows_read"))
        if rows_read == 0:
            continue
        for name, missing in counts.items():
            checks.append(
                HealthCheck(
                    f"missing:{table}:{name}", f"{table.capitalize()} without {_article(name)}{name}", table, int(missing),
                    rows_read, MISSING_REQUIRED_SHARE, "rows set aside at load because this required field was blank",
                )
            )
    return checks


def _article(name: str) -> str:
    return "an " if name[0] in "aeiou" else "a "


def _invalid_dates(store: Store, params: dict[str, object]) -> list[HealthCheck]:
    row = _query(store,
        f"""
        SELECT
          (SELECT coalesce(sum(rows_read), 0) FROM loads WHERE status = 'loaded' AND {_IN_SCOPE})::BIGINT AS rows_read,
          (SELECT count(*) FROM rejected_rows WHERE {_IN_SCOPE}
             AND regexp_matches(reason, 'is not a date'))::BIGINT AS unreadable,
          (SELECT count(*) FROM invoices WHERE {_IN_SCOPE})::BIGINT AS invoices,
          (SELECT count(*) FROM invoices WHERE {_IN_SCOPE}
             AND (invoice_date < DATE '1990-01-01' OR due_date > invoice_date + INTERVAL 5 YEAR))::BIGINT AS implausible
        """,
        params,
    ).row(0, named=True)
    checks = []
    if row["rows_read"]:
        checks.append(
            HealthCheck(
                "invalid_dates:unreadable", "Rows with a date that could not be read", "all", row["unreadable"], row["rows_read"],
                INVALID_DATE_SHARE, "set aside at load: the value is not a date in any layout the column uses",
            )
        )
    if row["invoices"]:
        checks.append(
            HealthCheck(
                "invalid_dates:implausible", "Invoices dated before 1990 or due more than 5 years after issue", "invoices",
                row["implausible"], row["invoices"], INVALID_DATE_SHARE, "usually a day/month mix-up or a placeholder date",
            )
        )
    return checks


def _duplicates(store: Store, params: dict[str, object]) -> list[HealthCheck]:
    row = _query(store,
        f"""
        WITH scoped_invoices AS (SELECT * FROM invoices WHERE doc_type = 'invoice' AND {_IN_SCOPE}),
             invoice_groups AS (
                SELECT count(*) AS n FROM scoped_invoices GROUP BY customer_id, invoice_date, amount HAVING count(*) > 1),
             scoped_payments AS (SELECT * FROM payments WHERE invoice_id IS NOT NULL AND payment_date_lower IS NULL AND {_IN_SCOPE}),
             payment_groups AS (
                SELECT count(*) AS n FROM scoped_payments GROUP BY invoice_id, payment_date, amount HAVING count(*) > 1)
        SELECT (SELECT count(*) FROM scoped_invoices)::BIGINT AS invoices,
               (SELECT coalesce(sum(n - 1), 0) FROM invoice_groups)::BIGINT AS duplicate_invoices,
               (SELECT count(*) FROM scoped_payments)::BIGINT AS payments,
               (SELECT coalesce(sum(n - 1), 0) FROM payment_groups)::BIGINT AS duplicate_payments,
               (SELECT count(*) FROM rejected_rows WHERE {_IN_SCOPE}
                  AND regexp_matches(reason, 'is already in the store with'))::BIGINT AS conflicting
        """,
        params,
    ).row(0, named=True)
    checks = []
    if row["invoices"]:
        checks.append(
            HealthCheck(
                "duplicates:invoices", "Invoices that look like duplicates (same customer, date and amount, another number)",
                "invoices", row["duplicate_invoices"], row["invoices"], DUPLICATE_SHARE,
                f"{row['conflicting']} row(s) were also set aside for contradicting what the store already holds",
            )
        )
    if row["payments"]:
        checks.append(
            HealthCheck(
                "duplicates:payments", "Payments recorded twice (same invoice, date and amount)", "payments",
                row["duplicate_payments"], row["payments"], DUPLICATE_SHARE, "double-counted cash overstates collections",
            )
        )
    return checks


def _amounts(store: Store, params: dict[str, object]) -> list[HealthCheck]:
    row = _query(store,
        f"""
        WITH scoped AS (SELECT amount::DOUBLE AS amount, doc_type FROM invoices WHERE {_IN_SCOPE}),
             logs AS (SELECT ln(amount) AS x FROM scoped WHERE doc_type = 'invoice' AND amount > 0),
             centre AS (SELECT median(x) AS m, mad(x) AS d FROM logs)
        SELECT (SELECT count(*) FROM scoped WHERE doc_type = 'invoice')::BIGINT AS invoices,
               (SELECT count(*) FROM scoped WHERE doc_type = 'invoice' AND amount <= 0)::BIGINT AS not_positive,
               (SELECT count(*) FROM scoped WHERE doc_type <> 'invoice')::BIGINT AS other_documents,
               (SELECT count(*) FROM logs, centre
                  WHERE centre.d > 0 AND abs(x - centre.m) / (1.4826 * centre.d) > {OUTLIER_ROBUST_Z})::BIGINT AS outliers,
               (SELECT exp(m) FROM centre) AS typical
        """,
        params,
    ).row(0, named=True)
    if not row["invoices"]:
        return []
    typical = f"{row['typical']:,.2f}" if row["typical"] is not None else "n/a"
    return [
        HealthCheck(
            "amounts:negative", "Invoices with a zero or negative amount", "invoices", row["not_positive"], row["invoices"],
            NEGATIVE_INVOICE_SHARE,
            f"credits should be credit memos; {row['other_documents']} credit memos, unapplied payments and journals are kept apart",
        ),
        HealthCheck(
            "amounts:outliers", "Invoice amounts far from the usual size", "invoices", row["outliers"], row["invoices"],
            OUTLIER_SHARE, f"more than {OUTLIER_ROBUST_Z:g} robust deviations from a typical invoice of {typical} on a log scale",
        ),
    ]


def _paid_before_issued(store: Store, params: dict[str, object]) -> list[HealthCheck]:
    # loaded ones (older loads, other writers) and the ones the loader set aside for it
    row = _query(store,
        """
        WITH loaded AS (
            SELECT count(*)::BIGINT AS payments,
                   count(*) FILTER (WHERE p.payment_date < i.invoice_date)::BIGINT AS early
            FROM payments p JOIN invoices i ON i.invoice_id = p.invoice_id
            WHERE p.payment_date_lower IS NULL AND ($load_id IS NULL OR p.load_id = $load_id OR i.load_id = $load_id)
        ),
        set_aside AS (
            SELECT count(*)::BIGINT AS early FROM rejected_rows r JOIN loads l USING (load_id)
            WHERE l.target_table = 'payments' AND ($load_id IS NULL OR r.load_id = $load_id)
              AND regexp_matches(r.reason, 'before its invoice .* was issued')
        )
        SELECT loaded.payments + set_aside.early AS payments, loaded.early + set_aside.early AS early
        FROM loaded, set_aside
        """,
        params,
    ).row(0, named=True)
    if not row["payments"]:
        return []
    return [
        HealthCheck(
            "paid_before_issued", "Payments dated before their invoice", "payments", row["early"], row["payments"],
            PAID_BEFORE_ISSUED_SHARE,
            "a payment cannot come before the invoice (such rows are set aside at load): check the date columns or the "
            "invoice matched",
        )
    ]


def _future_dates(store: Store, params: dict[str, object]) -> list[HealthCheck]:
    row = _query(store,
        f"""
        SELECT (SELECT count(*) FROM invoices WHERE {_IN_SCOPE})::BIGINT AS invoices,
               (SELECT count(*) FROM invoices WHERE {_IN_SCOPE} AND invoice_date > $as_of)::BIGINT AS future_invoices,
               (SELECT count(*) FROM payments WHERE {_IN_SCOPE})::BIGINT AS payments,
               (SELECT count(*) FROM payments WHERE {_IN_SCOPE} AND payment_date > $as_of
                  AND payment_date_lower IS NULL)::BIGINT AS future_payments
        """,
        params,
    ).row(0, named=True)
    as_of = params["as_of"]
    checks = []
    if row["invoices"]:
        checks.append(
            HealthCheck(
                "future:invoices", f"Invoices dated after {as_of}", "invoices", row["future_invoices"], row["invoices"],
                FUTURE_DATE_SHARE, "issued after the as-of date: a wrong date, or the as-of date is too early",
            )
        )
    if row["payments"]:
        checks.append(
            HealthCheck(
                "future:payments", f"Payments dated after {as_of}", "payments", row["future_payments"], row["payments"],
                FUTURE_DATE_SHARE, "received after the as-of date: figures as of that date leave them out",
            )
        )
    return checks


def _currency_mix(store: Store, params: dict[str, object]) -> pl.DataFrame:
    """Documents and amount per currency; a document without a currency is in the base currency."""
    return _query(
        store,
        f"""
        SELECT coalesce(upper(i.currency), $base) AS currency, count(*)::BIGINT AS documents,
               sum(i.amount)::DOUBLE AS amount,
               -- no base amount of its own and no exchange rate loaded for its date: read at par
               count(*) FILTER (WHERE l.fx_rate IS NULL)::BIGINT AS without_base_amount
        FROM invoices i LEFT JOIN ledger_documents l ON l.document_id = i.invoice_id
        WHERE {_IN_SCOPE} GROUP BY 1 ORDER BY documents DESC, currency
        """,
        {**params, "base": base_currency()},
    )


def _payment_history(store: Store, params: dict[str, object]) -> dict[str, int]:
    row = _query(store,
        f"""
        WITH scoped AS (SELECT invoice_id FROM invoices WHERE doc_type = 'invoice' AND {_IN_SCOPE}),
             paid AS (
                SELECT p.invoice_id, bool_or(p.payment_date_lower IS NULL) AS exact
                FROM payments p JOIN scoped s USING (invoice_id) GROUP BY 1)
        SELECT (SELECT count(*) FROM scoped)::BIGINT AS invoices,
               (SELECT count(*) FROM paid)::BIGINT AS settled,
               (SELECT count(*) FROM paid WHERE exact)::BIGINT AS exact,
               (SELECT count(*) FROM paid WHERE NOT exact)::BIGINT AS interval_only,
               (SELECT count(*) FROM payments WHERE {_IN_SCOPE})::BIGINT AS payments,
               (SELECT count(DISTINCT as_of_date) FROM snapshots WHERE {_IN_SCOPE})::BIGINT AS snapshots
        """,
        params,
    ).row(0, named=True)
    return {k: int(v) for k, v in row.items()}


def _banners(report: HealthReport) -> list[str]:
    banners = []
    for check in report.checks:
        if not check.passed:
            banners.append(
                f"{check.label}: {check.affected:,} of {check.total:,} ({check.share:.1%}), over the "
                f"{check.threshold:.1%} that figures can bear. {check.detail[:1].upper() + check.detail[1:]}."
            )
    unconverted = report.currency_mix.filter(pl.col("without_base_amount") > 0)
    if unconverted.height:
        currencies = ", ".join(unconverted["currency"].to_list())
        banners.append(
            f"Invoices are in {report.currency_mix.height} currencies; {unconverted['without_base_amount'].sum():,} "
            f"in {currencies} have no {base_currency()} amount and no exchange rate for their date, so they are added to "
            f"{base_currency()} totals at par until rates are loaded."
        )
    history = report.payment_history
    if history.get("invoices") and history.get("payments", 0) == 0 and history.get("snapshots", 0) < 2:
        banners.append(
            "There is no payment history yet (no payments, and fewer than two dated snapshots): risk scores, "
            "pay-date estimates and forecasts cannot be learned from this data."
        )
    elif history.get("settled") and (report.exact_payment_share or 0) < MIN_EXACT_PAYMENT_SHARE:
        banners.append(
            f"Only {history['exact']:,} of {history['settled']:,} settled invoices ({report.exact_payment_share:.0%}) have a "
            "real payment date; the rest are known only to have been paid between two snapshots, so days-to-pay "
            "figures are approximate."
        )
    return banners
