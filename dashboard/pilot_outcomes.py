"""What happened to a pilot's customers, and the bootstrap over them.

:func:`customer_outcomes` reads, per invoice that came due in a window and summed per customer,
days to pay (censoring-aware), cash collected within 30/60/90 days of due, DSO, promises kept
and broken, touches and collector minutes — from the ledger and the contact history.
:func:`bootstrap_sums` resamples customers within cells (the strata of the assignment).
:data:`METRICS` names each reported figure as a ratio of two per-customer sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from dashboard.ledger import date_literal, open_items_sql
from dashboard.policy import EFFORT_MINUTES
from dashboard.store import Store
from dashboard.vocabulary import CONTACT_ACTION, PILOT_ARMS, PROMISE_GRACE_DAYS

#: Resamples of the customer bootstrap, and the interval the verdict reads.
BOOTSTRAP_RESAMPLES = 2_000
INTERVAL = 0.90
#: Cash collected within these many days of the due date, as a share of the amount due.
CASH_HORIZONS: tuple[int, ...] = (30, 60, 90)
#: Days to pay are counted up to this many days past due (a restricted mean: an invoice unpaid
#: by then counts as this many days); shorter when the pilot's follow-up cannot support it.
DAYS_TO_PAY_CAP = 60
CAP_FALLBACKS: tuple[int, ...] = (60, 30, 14, 7)
#: The cap needs at least this share of the cohort followed that long (IPCW weights ≤ 1 / share).
MIN_FOLLOW_UP_SHARE = 0.3
#: Strata with fewer customers than this in either group are resampled together (per group): a
#: stratum with one holdout customer would otherwise add no variance at all.
MIN_BOOTSTRAP_CELL = 5
#: Cells larger than this draw each resample's sums from a normal with the bootstrap's exact
#: mean and covariance (its large-sample limit): O(resamples) instead of O(resamples × customers).
NORMAL_BOOTSTRAP_ABOVE = 500


@dataclass(frozen=True)
class Outcomes:
    """The pilot's outcomes: per invoice that came due, and summed per customer."""

    invoices: pl.DataFrame
    customers: pl.DataFrame
    cap: int | None  # None: too early, no cap is followed long enough to measure days to pay
    follow_up: pl.Series  # days each cohort invoice was followed after its due date


def _minutes_case(action: str, channel: str) -> str:
    """SQL: the collector minutes a contact took (its action's effort; a call by channel)."""
    parts = [
        f"WHEN {action} = '{contact}' THEN {EFFORT_MINUTES[policy_action]}"
        for policy_action, contact in CONTACT_ACTION.items()
        if policy_action in EFFORT_MINUTES
    ]
    return (
        f"CASE {' '.join(parts)} WHEN {channel} = 'call' THEN {EFFORT_MINUTES['call']} "
        f"ELSE {EFFORT_MINUTES['gentle reminder']} END"
    )


def _choose_cap(follow_up: np.ndarray, cap: int | None) -> int | None:
    """The cap of days to pay: ``cap`` when given, else the longest fallback followed by at least
    :data:`MIN_FOLLOW_UP_SHARE` of the cohort; None when even the shortest is not (too early)."""
    if cap is not None:
        return cap
    for candidate in CAP_FALLBACKS:
        if follow_up.size and (follow_up >= candidate).mean() >= MIN_FOLLOW_UP_SHARE:
            return candidate
    return None


def customer_outcomes(
    store: Store, customers: pl.DataFrame, *, first: date, last: date, as_of: date, cap: int | None = None
) -> Outcomes:
    """What happened to ``customers`` (customer_id, arm) between ``first`` and ``last``, as known on ``as_of``.

    Read from the ledger (base currency) and the contact history (including worklist outcomes):

    - the **cohort**: invoices that came due from ``first`` to ``min(last, as_of)``;
    - **days to pay** (paid date − due date, negative when early), counted up to ``cap`` days
      (a restricted mean). An invoice still open on ``as_of`` is *censored*, not dropped: it is
      known to take at least its days since due. Each invoice whose capped time is observed is
      weighted by 1 / G(t), G(t) = the share of the cohort followed at least t days after due
      (inverse probability of censoring weighting; follow-up depends only on the due date, so it
      is the same in both groups). ``cap`` None: 60 days, or the longest of 30, 14, 7 days that at
      least 30% of the cohort was followed;
    - **cash collected within 30/60/90 days of due** (cash applied by then over the amount due),
      for invoices due at least that many days before ``as_of`` (defined for each of them);
    - **DSO**: open AR on ``as_of`` over the average day's sales from ``first`` to ``min(last, as_of)``;
    - **promises** made from ``first`` on whose deadline (promised date + grace) passed by
      ``as_of``, and those **broken** (not paid by the deadline); **touches** (contacts) and the
      **collector minutes** they took (each action's effort).

    ``customers`` gets columns ``<metric>_num`` / ``<metric>_den`` (sums per customer).
    """
    window_end = min(last, as_of)
    elapsed = max((window_end - first).days + 1, 1)
    ids = customers.select("customer_id").unique()
    grace = PROMISE_GRACE_DAYS
    cash_columns = ", ".join(
        f"least(coalesce(arg_max(b.paid_cash, b.event_date) FILTER (WHERE b.event_date <= c.due_date + {n}), 0)::DOUBLE "
        f"* any_value(c.fx), any_value(c.amount_due)) AS cash{n}"
        for n in CASH_HORIZONS
    )
    invoices = store.query(
        f"""
        WITH cohort AS (
            SELECT l.document_id, l.customer_id, l.due_date, l.amount_base::DOUBLE AS amount_due,
                   coalesce(l.fx_rate, 1.0) AS fx,
                   CASE WHEN l.paid_date <= {date_literal(as_of)} THEN (l.paid_date - l.due_date) END AS days_to_pay,
                   ({date_literal(as_of)} - l.due_date) AS follow_up
            FROM ledger_documents l SEMI JOIN pilot_ids p ON p.customer_id = l.customer_id
            WHERE l.doc_type = 'invoice' AND l.amount > 0
              AND l.due_date >= {date_literal(first)} AND l.due_date <= {date_literal(window_end)}
        ),
        by_document AS (  -- cash applied by due + n days: the ledger's last balance on or before that day
            SELECT c.document_id, {cash_columns}
            FROM cohort c JOIN ledger_balances b ON b.document_id = c.document_id
            WHERE b.event_date <= c.due_date + {max(CASH_HORIZONS)}
            GROUP BY 1
        )
        SELECT c.document_id, c.customer_id, c.due_date, c.amount_due, c.days_to_pay, c.follow_up,
               {", ".join(f"CASE WHEN c.follow_up >= {n} THEN coalesce(d.cash{n}, 0) END AS cash{n}" for n in CASH_HORIZONS)}
        FROM cohort c LEFT JOIN by_document d USING (document_id)
        """,
        frames={"pilot_ids": ids},
    )
    follow = invoices["follow_up"].cast(pl.Int64).to_numpy()
    chosen = _choose_cap(follow, cap)
    # too early (no cap is followed long enough): every weight 0, so days to pay is not reported yet
    invoices = _weighted_days_to_pay(invoices, follow, chosen if chosen is not None else CAP_FALLBACKS[-1])
    if chosen is None:
        invoices = invoices.with_columns(weight=pl.lit(0.0))
    open_sql, open_params = open_items_sql(as_of)
    extra = store.query(
        f"""
        WITH open_ar AS (
            SELECT customer_id, sum(open_amount)::DOUBLE AS open_end
            FROM ({open_sql}) o SEMI JOIN pilot_ids p ON p.customer_id = o.customer_id GROUP BY 1
        ),
        sales AS (
            SELECT l.customer_id, sum(l.amount_base)::DOUBLE AS sales
            FROM ledger_documents l SEMI JOIN pilot_ids p ON p.customer_id = l.customer_id
            WHERE l.doc_type = 'invoice' AND l.amount > 0
              AND l.invoice_date >= {date_literal(first)} AND l.invoice_date <= {date_literal(window_end)}
            GROUP BY 1
        ),
        touches AS (
            SELECT c.customer_id, c.invoice_id, c.ts::DATE AS d, c.outcome, c.promise_date,
                   {_minutes_case("c.action", "c.channel")} AS minutes
            FROM contacts c SEMI JOIN pilot_ids p ON p.customer_id = c.customer_id
            WHERE c.ts::DATE >= {date_literal(first)} AND c.ts::DATE <= {date_literal(window_end)}
        ),
        promises AS (
            SELECT t.*, t.promise_date + {grace} AS deadline FROM touches t
            WHERE t.outcome = 'promise to pay' AND t.promise_date IS NOT NULL
              AND t.promise_date + {grace} <= {date_literal(as_of)}
        ),
        judged AS (
            SELECT p.customer_id, coalesce(l.paid_date <= p.deadline, false) AS kept
            FROM promises p LEFT JOIN ledger_documents l ON l.document_id = p.invoice_id
            WHERE p.invoice_id IS NOT NULL
            UNION ALL  -- a promise about no invoice in particular: kept by any payment until the deadline
            SELECT p.customer_id, EXISTS (SELECT 1 FROM payments y WHERE y.customer_id = p.customer_id
                                          AND y.payment_date >= p.d AND y.payment_date <= p.deadline)
            FROM promises p WHERE p.invoice_id IS NULL
        ),
        contact_sums AS (
            SELECT customer_id, count(*)::DOUBLE AS touches, sum(minutes)::DOUBLE AS minutes FROM touches GROUP BY 1
        ),
        promise_sums AS (
            SELECT customer_id, count(*)::DOUBLE AS promises, count(*) FILTER (WHERE NOT kept)::DOUBLE AS broken
            FROM judged GROUP BY 1
        )
        SELECT p.customer_id, coalesce(o.open_end, 0) AS open_end, coalesce(s.sales, 0) AS sales,
               coalesce(t.touches, 0) AS touches, coalesce(t.minutes, 0) AS minutes,
               coalesce(q.promises, 0) AS promises, coalesce(q.broken, 0) AS broken
        FROM pilot_ids p LEFT JOIN open_ar o USING (customer_id) LEFT JOIN sales s USING (customer_id)
        LEFT JOIN contact_sums t USING (customer_id) LEFT JOIN promise_sums q USING (customer_id)
        """,
        open_params,
        frames={"pilot_ids": ids},
    )
    per_customer = invoices.group_by("customer_id").agg(
        dtp_num=(pl.col("weight") * pl.col("capped_days")).sum(),
        dtp_den=pl.col("weight").sum(),
        invoices_due=pl.len().cast(pl.Float64),
        still_open=pl.col("days_to_pay").is_null().sum().cast(pl.Float64),
        **{f"cash{n}_num": pl.col(f"cash{n}").sum() for n in CASH_HORIZONS},
        **{
            f"cash{n}_den": pl.col("amount_due").filter(pl.col(f"cash{n}").is_not_null()).sum()
            for n in CASH_HORIZONS
        },
    )
    frame = (
        customers.join(extra, on="customer_id", how="left")
        .join(per_customer, on="customer_id", how="left")
        .with_columns(
            dso_num=pl.col("open_end") * elapsed,
            dso_den=pl.col("sales"),
            one=pl.lit(1.0),
        )
        .fill_null(0.0)
    )
    return Outcomes(invoices=invoices, customers=frame, cap=chosen, follow_up=invoices["follow_up"])


def _weighted_days_to_pay(invoices: pl.DataFrame, follow: np.ndarray, cap: int) -> pl.DataFrame:
    """Capped days to pay with their censoring weights (see :func:`customer_outcomes`)."""
    paid = invoices["days_to_pay"]
    observed_paid = paid.is_not_null().to_numpy()
    t = paid.fill_null(0).cast(pl.Int64).to_numpy()
    capped = np.where(observed_paid, np.minimum(t, cap), cap)
    observed = observed_paid | (follow >= cap)
    ordered = np.sort(follow)
    at = np.maximum(capped, 0)
    share_followed = 1.0 - np.searchsorted(ordered, at, side="left") / max(len(ordered), 1)
    weight = np.where(observed & (share_followed > 0), 1.0 / np.maximum(share_followed, 1e-12), 0.0)
    return invoices.with_columns(
        capped_days=pl.Series(capped.astype(np.float64)),
        observed=pl.Series(observed),
        weight=pl.Series(weight),
    )


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float | None:
    """The weighted median (the first value whose cumulative weight reaches half)."""
    keep = weights > 0
    if not keep.any():
        return None
    order = np.argsort(values[keep], kind="stable")
    v, w = values[keep][order], weights[keep][order]
    cumulative = np.cumsum(w)
    return float(v[np.searchsorted(cumulative, 0.5 * cumulative[-1])])


# ---------------------------------------------------------------------------------------
# the bootstrap
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A reported figure: ``sum(num) / sum(den) × scale`` per group."""

    key: str
    label: str
    num: str
    den: str
    kind: str  # days, share, count, minutes
    better: str  # lower, higher or neutral
    scale: float = 1.0


METRICS: tuple[Metric, ...] = (
    Metric("days_to_pay", "Days to pay (mean, from due date)", "dtp_num", "dtp_den", "days", "lower"),
    *(
        Metric(f"cash_{n}", f"Cash collected within {n} days of due", f"cash{n}_num", f"cash{n}_den", "share", "higher")
        for n in CASH_HORIZONS
    ),
    Metric("dso", "DSO (open AR over the average day's sales)", "dso_num", "dso_den", "days", "lower"),
    Metric("broken_promises", "Broken promises per 100 customers", "broken", "one", "count", "lower", 100.0),
    Metric("touches", "Touches per customer", "touches", "one", "count", "neutral"),
    Metric("minutes", "Collector minutes per customer", "minutes", "one", "minutes", "neutral"),
)


def bootstrap_cells(customers: pl.DataFrame) -> pl.Series:
    """Resampling cell of each customer: its group and stratum, with strata that have fewer than
    :data:`MIN_BOOTSTRAP_CELL` customers in either group pooled (per group)."""
    sizes = customers.group_by("stratum").agg(
        **{arm: (pl.col("arm") == arm).sum() for arm in PILOT_ARMS}
    )
    small = sizes.filter(pl.min_horizontal(*PILOT_ARMS) < MIN_BOOTSTRAP_CELL)["stratum"]
    return customers.select(
        pl.format("{} / {}", pl.col("arm"), pl.when(pl.col("stratum").is_in(small.implode())).then(pl.lit("pooled"))
                  .otherwise(pl.col("stratum")))
    ).to_series().alias("cell")


def bootstrap_sums(values: np.ndarray, cells: np.ndarray, *, resamples: int, seed: int) -> np.ndarray:
    """Sums of ``values`` (customers × columns) over customers resampled with replacement within
    each cell, per resample: an array (resamples × columns). Cells above
    :data:`NORMAL_BOOTSTRAP_ABOVE` customers draw their sums from a normal with the bootstrap's
    exact mean (n × mean) and covariance (n × the cell's covariance, divided by n)."""
    rng = np.random.default_rng(seed)
    total = np.zeros((resamples, values.shape[1]))
    order = np.argsort(cells, kind="stable")
    bounds = np.flatnonzero(np.r_[True, cells[order][1:] != cells[order][:-1], True])
    for begin_cell, end_cell in zip(bounds[:-1], bounds[1:], strict=True):
        x = values[order[begin_cell:end_cell]]
        n = x.shape[0]
        if n > NORMAL_BOOTSTRAP_ABOVE:
            mean = n * x.mean(axis=0)
            cov = n * np.cov(x, rowvar=False, bias=True).reshape(values.shape[1], values.shape[1])
            cov = (cov + cov.T) / 2  # exactly symmetric; eigh copes with the rounding below zero
            total += rng.multivariate_normal(mean, cov, size=resamples, method="eigh", check_valid="ignore")
            continue
        block = max(1, 4_000_000 // max(n, 1))
        for begin in range(0, resamples, block):
            b = min(block, resamples - begin)
            picks = rng.integers(0, n, size=(b, n), dtype=np.int64) + (np.arange(b)[:, None] * n)
            counts = np.bincount(picks.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
            total[begin : begin + b] += counts @ x
    return total


