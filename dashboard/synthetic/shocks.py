"""A second sample world, built on different mechanisms than :mod:`dashboard.synthetic.generator`.

It exists so that models and forecasts are judged on a world they were not designed around
(docs: VALIDATION.md). What differs from the first world, on purpose:

- **No month-end payment runs, weekly rhythm instead**: each customer has an accounts-payable
  weekday and most of its payments wait for it; invoices are issued on working days, most on
  Mondays.
- **Heavy tails**: an invoice's days after due = the customer's lateness + its spread × a
  Student-t draw (3 degrees of freedom), so a few payments come months late.
- **Shocks that hit many customers at once**: a few episodes of 4–10 weeks in which every
  customer of one industry (or all customers) pays later, by an amount scaled by each
  customer's sensitivity; bad debt rises with them.
- **Churn and growth**: customers start and stop buying over the years (no invoices after their
  last month), and new ones keep arriving.
- **Credit notes and partial payments**: part of an invoice credited (an adjustment), and
  invoices paid in two or three instalments.
- **A plain book**: customers, invoices, payments and adjustments only — no contacts, notes or
  disputes, like most real extracts.

Nothing here is tuned to what the risk model or the forecast reads. ``truth`` holds each
customer's lateness, spread, sensitivity, AP weekday and lifetime, the shock episodes, and each
invoice's intended pay day (``truth_invoices``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from dashboard.dates import add_months
from dashboard.errors import SyntheticConfigError
from dashboard.schema import CANONICAL_COLUMNS
from dashboard.synthetic import words
from dashboard.synthetic.generator import EPOCH, World
from dashboard.synthetic.model import no_touch_policy

TERMS_DAYS: tuple[tuple[int, float], ...] = ((14, 0.15), (30, 0.55), (45, 0.15), (60, 0.15))
BILLING_WEEKDAY = np.array([0.34, 0.20, 0.18, 0.16, 0.12, 0.0, 0.0])  # Monday .. Sunday
WRITE_OFF_DAYS = 180


@dataclass(frozen=True)
class ShockWorldConfig:
    """Size and shape of the second world; the same config always gives the same world."""

    seed: int = 7
    n_customers: int = 400
    start: date = date(2022, 1, 1)
    months: int = 30
    invoices_per_customer_week: float = 0.35
    churn_per_year: float = 0.25  # share of active customers that stop buying each year
    late_joiner_share: float = 0.35  # customers whose first invoice comes after the start
    shocks: int = 3
    credit_note_rate: float = 0.06
    partial_payment_rate: float = 0.15
    weekday_payer_share: float = 0.75  # customers who pay only on their AP weekday

    @property
    def end_date(self) -> date:
        return add_months(self.start, self.months) - timedelta(days=1)

    def validate(self) -> None:
        if self.n_customers < 1 or not 1 <= self.months <= 240:
            msg = f"The second world needs customers and 1 to 240 months; got {self.n_customers!r}, {self.months!r}."
            raise SyntheticConfigError(msg)
        for name in ("churn_per_year", "late_joiner_share", "credit_note_rate", "partial_payment_rate",
                     "weekday_payer_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                msg = f"{name} is a share between 0 and 1; got {getattr(self, name)!r}."
                raise SyntheticConfigError(msg)


def _stream(config: ShockWorldConfig, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([config.seed, 9001, zlib.crc32(name.encode())]))


def _day(value: date) -> int:
    return (value - EPOCH).days


def _dates(days: np.ndarray) -> pl.Series:
    return pl.Series(np.asarray(days).astype(np.int32)).cast(pl.Date)


def _ids(prefix: str, count: int, width: int = 6) -> pl.Series:
    return pl.Series([f"{prefix}{i:0{width}d}" for i in range(1, count + 1)], dtype=pl.String)


def _weekday(days: np.ndarray) -> np.ndarray:
    return (days + 3) % 7  # 0 = Monday; 1970-01-01 was a Thursday


def generate_shock_world(config: ShockWorldConfig = ShockWorldConfig()) -> World:
    """Generate the second world (canonical frames and ground truth)."""
    config.validate()
    start_day, end_day = _day(config.start), _day(config.end_date)
    n = config.n_customers
    weeks = (end_day - start_day) // 7 + 1

    # ---- customers: lateness, spread, sensitivity to shocks, AP weekday, lifetime --------------
    rng = _stream(config, "customers")
    industries = np.array(words.INDUSTRIES)
    industry = rng.integers(0, len(industries), n)
    lateness = np.exp(rng.normal(np.log(9.0), 0.85, n)) - 7.0  # median 2 days late, a long right tail
    spread = rng.gamma(2.0, 2.5, n) + 1.0
    sensitivity = rng.gamma(2.0, 0.5, n)  # days of a shock's size felt, per unit
    ap_weekday = rng.choice([1, 3, 4], size=n, p=[0.4, 0.35, 0.25])  # Tue, Thu, Fri
    weekday_payer = rng.random(n) < config.weekday_payer_share
    rate = config.invoices_per_customer_week * np.exp(rng.normal(-0.3, 0.75, n))
    amount_scale = np.exp(rng.normal(np.log(1800.0), 1.0, n))
    terms = rng.choice([t for t, _ in TERMS_DAYS], size=n, p=[s for _, s in TERMS_DAYS])
    joins_late = rng.random(n) < config.late_joiner_share
    first_week = np.where(joins_late, rng.integers(0, weeks, n), 0)
    life_weeks = rng.exponential(52.0 / max(config.churn_per_year, 1e-6), n)
    last_week = np.minimum(first_week + life_weeks.astype(np.int64), weeks - 1)
    bad_debt_base = 0.002 + 0.01 * (lateness > 25)

    # ---- shocks: industry-wide (or book-wide) episodes of later payment ------------------------
    rng = _stream(config, "shocks")
    shock_start = np.sort(rng.integers(start_day + 120, end_day - 60, config.shocks))
    shock_length = rng.integers(28, 71, config.shocks)
    shock_size = rng.uniform(12.0, 35.0, config.shocks)
    shock_industry = np.where(rng.random(config.shocks) < 0.3, -1, rng.integers(0, len(industries), config.shocks))

    # ---- invoices: weekly Poisson, working days (mostly Mondays), growth and mild seasons ------
    rng = _stream(config, "invoices")
    week_index = np.arange(weeks)
    season = 1.0 + 0.15 * np.sin(2 * np.pi * (week_index / 52.0 - 0.2)) + 0.004 * week_index / 4.3
    active = (week_index[None, :] >= first_week[:, None]) & (week_index[None, :] <= last_week[:, None])
    counts = rng.poisson(rate[:, None] * season[None, :] * active)
    cust = np.repeat(np.repeat(np.arange(n), weeks), counts.ravel())
    week_of = np.repeat(np.tile(week_index, n), counts.ravel())
    weekday = rng.choice(7, size=len(cust), p=BILLING_WEEKDAY)
    first_monday = start_day - _weekday(np.array([start_day]))[0]
    inv_day = first_monday + 7 * week_of + weekday
    keep = (inv_day >= start_day) & (inv_day <= end_day)
    cust, inv_day = cust[keep], inv_day[keep]
    order = np.lexsort((cust, inv_day))
    cust, inv_day = cust[order], inv_day[order]
    m = len(cust)
    amount = np.round(amount_scale[cust] * np.exp(rng.normal(0.0, 0.6, m)), 2)
    due_day = inv_day + terms[cust]

    # ---- pay day: lateness + heavy-tailed spread + shocks, then the AP weekday -------------------
    rng = _stream(config, "payments")
    shock_days = np.zeros(m)
    in_shock = np.zeros(m, dtype=bool)
    for s in range(config.shocks):
        hit = (due_day >= shock_start[s]) & (due_day < shock_start[s] + shock_length[s])
        if shock_industry[s] >= 0:
            hit &= industry[cust] == shock_industry[s]
        shock_days += np.where(hit, shock_size[s] * sensitivity[cust], 0.0)
        in_shock |= hit
    delay = lateness[cust] + spread[cust] * rng.standard_t(3.0, m) + shock_days
    intended = np.maximum(due_day + np.round(delay).astype(np.int64), inv_day + 1)
    wait = (ap_weekday[cust] - _weekday(intended)) % 7
    intended = np.where(weekday_payer[cust], intended + wait, intended)
    bad_debt = rng.random(m) < np.clip(bad_debt_base[cust] * (1 + 4 * in_shock) + 0.002 * sensitivity[cust], 0, 0.5)
    pay_day = np.where(bad_debt, np.iinfo(np.int64).max // 4, intended)

    # credit notes: part of the invoice credited soon after issue; the rest is paid
    credited = rng.random(m) < config.credit_note_rate
    credit_share = np.where(rng.random(m) < 0.3, 1.0, rng.uniform(0.05, 0.5, m))
    credit_amount = np.where(credited, np.round(amount * credit_share, 2), 0.0)
    credit_day = inv_day + rng.integers(3, 35, m)
    payable = np.round(amount - credit_amount, 2)
    # partial payments: two or three instalments, the last on the pay day
    partial = (rng.random(m) < config.partial_payment_rate) & (payable > 1.0) & ~bad_debt
    parts = np.where(partial, rng.integers(2, 4, m), 1)

    ids = _ids("INV2-", m, 7)
    customer_ids = _ids("K", n, 5)
    pay_rows_inv, pay_rows_day, pay_rows_amount = [], [], []
    for k in range(3):  # instalment k of each invoice that has one; the last lands on the pay day
        has = (parts > k) & (payable > 0.004) & ~bad_debt
        last = parts - 1 == k
        piece = np.round(payable / parts, 2)
        day = np.where(last, pay_day, inv_day + ((pay_day - inv_day) * (k + 1)) // np.maximum(parts, 1))
        part_amount = np.where(last, np.round(payable - piece * (parts - 1), 2), piece)
        rows = np.flatnonzero(has & (day <= end_day))
        pay_rows_inv.append(rows)
        pay_rows_day.append(day[rows])
        pay_rows_amount.append(part_amount[rows])
    pay_inv = np.concatenate(pay_rows_inv)
    pay_day_rows = np.concatenate(pay_rows_day)
    pay_amount = np.concatenate(pay_rows_amount)
    order = np.lexsort((pay_inv, pay_day_rows))
    pay_inv, pay_day_rows, pay_amount = pay_inv[order], pay_day_rows[order], pay_amount[order]

    # write-offs of bad debt, and the credit notes, as adjustments
    write_off = np.flatnonzero(bad_debt & (due_day + WRITE_OFF_DAYS <= end_day) & (payable > 0.004))
    credit_rows = np.flatnonzero(credited & (credit_day <= end_day))
    adj_inv = np.concatenate([credit_rows, write_off])
    adj_day = np.concatenate([credit_day[credit_rows], due_day[write_off] + WRITE_OFF_DAYS])
    adj_amount = np.concatenate([-credit_amount[credit_rows], -payable[write_off]])
    adj_kind = np.concatenate([np.full(len(credit_rows), "credit_note"), np.full(len(write_off), "write_off")])
    order = np.lexsort((adj_inv, adj_day))
    adj_inv, adj_day, adj_amount, adj_kind = adj_inv[order], adj_day[order], adj_amount[order], adj_kind[order]

    names = [f"{words.INDUSTRIES[industry[i]].split()[0]} Buyer {i + 1:04d}" for i in range(n)]
    customers = pl.DataFrame({
        "customer_id": customer_ids, "name": names, "parent_id": pl.Series([None] * n, dtype=pl.String),
        "industry": industries[industry], "region": pl.Series(["North America"] * n), "country": pl.Series(["US"] * n),
        "currency": pl.Series(["USD"] * n), "credit_limit": np.round(amount_scale * 6, -2),
        "default_terms": [f"NET{t}" for t in terms], "owner": np.array(words.COLLECTORS)[np.arange(n) % len(words.COLLECTORS)],
        "strategic": np.zeros(n, dtype=bool), "preferred_channel": pl.Series(["email"] * n),
        "email": [f"ap{i + 1:04d}@buyer.example.com" for i in range(n)], "phone": pl.Series([None] * n, dtype=pl.String),
    })
    invoices = pl.DataFrame({
        "invoice_id": ids, "customer_id": customer_ids.gather(cust), "doc_type": pl.Series(["invoice"] * m),
        "invoice_date": _dates(inv_day), "due_date": _dates(due_day), "terms_code": [f"NET{t}" for t in terms[cust]],
        "terms_days": terms[cust].astype(np.int32), "amount": amount, "currency": pl.Series(["USD"] * m),
        "amount_base": amount, "po_number": pl.Series([None] * m, dtype=pl.String),
        "source_system": pl.Series(["second-world"] * m),
    })
    payments = pl.DataFrame({
        "payment_id": _ids("PAY2-", len(pay_inv), 7), "customer_id": customer_ids.gather(cust[pay_inv]),
        "invoice_id": ids.gather(pay_inv), "payment_date": _dates(pay_day_rows), "amount": pay_amount,
        "currency": pl.Series(["USD"] * len(pay_inv)), "method": pl.Series(["ach"] * len(pay_inv)),
    })
    adjustments = pl.DataFrame({
        "adjustment_id": _ids("ADJ2-", len(adj_inv), 6), "invoice_id": ids.gather(adj_inv),
        "customer_id": customer_ids.gather(cust[adj_inv]), "adjustment_date": _dates(adj_day), "amount": adj_amount,
        "kind": adj_kind, "reason": np.where(adj_kind == "credit_note", "returned goods", "uncollectible"),
    })
    frames = {
        "customers": customers,
        "invoices": invoices,
        "payments": payments,
        "adjustments": adjustments,
    }
    frames = {name: frame.select(list(CANONICAL_COLUMNS[name])) for name, frame in frames.items()}
    truth = {
        "truth_customers": pl.DataFrame({
            "customer_id": customer_ids, "industry": industries[industry], "lateness_days": lateness,
            "spread_days": spread, "shock_sensitivity": sensitivity, "ap_weekday": ap_weekday,
            "pays_on_weekday": weekday_payer, "first_invoice_week": first_week, "last_invoice_week": last_week,
        }),
        "truth_shocks": pl.DataFrame({
            "start": _dates(shock_start), "end": _dates(shock_start + shock_length - 1),
            "industry": np.where(shock_industry >= 0, industries[np.maximum(shock_industry, 0)], "all"),
            "days_later_per_sensitivity": shock_size,
        }),
        "truth_invoices": pl.DataFrame({
            "invoice_id": ids, "intended_pay_date": _dates(np.where(bad_debt, end_day + 10_000, intended)),
            "never_paid": bad_debt, "in_shock": in_shock, "instalments": parts, "credited": credit_amount,
        }),
    }
    return World(config=config, policy=no_touch_policy(), frames=frames, truth=truth)  # type: ignore[arg-type]
