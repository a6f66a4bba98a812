"""The seeded sample-world generator: a believable receivables history with known causes.

Every draw that does not depend on the collections policy comes from a named random stream
(``_stream``) sized only by the config, and every per-touch draw comes from a counter-based
hash of (seed, invoice, step slot), so replaying the same seed under another policy changes
the world *only* through the policy's mechanism (common random numbers).

Dates are handled as int day numbers (days since 1970-01-01) in numpy until the frames are
built; ``NEVER`` marks a pay date that never comes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from dashboard.dates import add_months
from dashboard.schema import CANONICAL_COLUMNS
from dashboard.synthetic import words
from dashboard.synthetic.model import (
    ACTIONS,
    BEHAVIOUR,
    CHANNELS,
    DISPUTE_CATEGORIES,
    MAX_STEPS,
    RESOLUTIONS,
    SEGMENTS,
    TONES,
    WRITE_OFF_AFTER_DAYS,
    CollectionsPolicy,
    WorldConfig,
    default_policy,
    pull_forward_days_mean,
    response_probability,
)

NEVER = 10**7  # a day number far beyond any world: "never paid"
EPOCH = date(1970, 1, 1)

TERMS: tuple[tuple[str, int, float], ...] = (  # code, days, share of customers' default terms
    ("NET30", 30, 0.45),
    ("NET15", 15, 0.10),
    ("NET45", 45, 0.15),
    ("NET60", 60, 0.10),
    ("2-10-NET30", 30, 0.10),
    ("DUE_ON_RECEIPT", 0, 0.10),
)
DISCOUNT_TERMS_INDEX = 4
CURRENCIES: tuple[tuple[str, str, str, float], ...] = (  # currency, country, region, start rate (USD/unit)
    ("EUR", "DE", "EMEA", 1.08),
    ("GBP", "GB", "EMEA", 1.27),
    ("CAD", "CA", "Canada", 0.74),
)
CHANNEL_SHARES = {"email": 0.60, "portal": 0.15, "call": 0.10, "sms": 0.10, "letter": 0.05}
SEASONALITY = np.array([0.85, 0.85, 1.0, 1.0, 1.0, 1.05, 0.95, 0.9, 1.05, 1.2, 1.25, 1.3])  # Jan..Dec
NOTE_MIX = {  # positive, neutral, distress, dispute cue shares per behaviour class
    "prompt": (0.45, 0.50, 0.00, 0.05),
    "on_time": (0.30, 0.60, 0.05, 0.05),
    "slow": (0.10, 0.55, 0.25, 0.10),
    "chronic_late": (0.02, 0.38, 0.50, 0.10),
    "disputer": (0.05, 0.45, 0.10, 0.40),
}


@dataclass
class World:
    """A generated world: canonical ``frames`` (columns exactly as ``CANONICAL_COLUMNS``) and ``truth``."""

    config: WorldConfig
    policy: CollectionsPolicy
    frames: dict[str, pl.DataFrame]
    truth: dict[str, pl.DataFrame]


def _day(value: date) -> int:
    return (value - EPOCH).days


def _stream(config: WorldConfig, name: str) -> np.random.Generator:
    """An independent random stream per concern, so adding draws to one never shifts another."""
    return np.random.default_rng(np.random.SeedSequence([config.seed, zlib.crc32(name.encode())]))


def _hash_uniform(seed: int, invoice: np.ndarray, slot: np.ndarray, stream: int) -> np.ndarray:
    """Counter-based uniforms in [0, 1) keyed by (seed, invoice, slot, stream): splitmix64."""
    with np.errstate(over="ignore"):
        x = (invoice.astype(np.uint64) * np.uint64(MAX_STEPS) + slot.astype(np.uint64)) * np.uint64(8) + np.uint64(
            stream
        )
        z = x + np.uint64((seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _weekday(days: np.ndarray) -> np.ndarray:
    return (days + 3) % 7  # 0 = Monday; 1970-01-01 was a Thursday


def _last_business_day(days: np.ndarray) -> np.ndarray:
    month = days.astype("datetime64[D]").astype("datetime64[M]")
    end = ((month + 1).astype("datetime64[D]") - np.timedelta64(1, "D")).astype(np.int64)
    weekday = _weekday(end)
    return end - np.where(weekday == 5, 1, np.where(weekday == 6, 2, 0))


def _snap_to_run(days: np.ndarray) -> np.ndarray:
    """The first month-end payment run (last business day of a month) on or after ``days``."""
    run = _last_business_day(days)
    late = run < days
    if late.any():
        run[late] = _last_business_day(days[late] + 7)
    return run


def _next_business_day(days: np.ndarray) -> np.ndarray:
    weekday = _weekday(days)
    return days + np.where(weekday == 5, 2, np.where(weekday == 6, 1, 0))


def _choice(rng: np.random.Generator, shares: np.ndarray, size: int) -> np.ndarray:
    cumulative = np.cumsum(shares / shares.sum())
    return np.minimum(np.searchsorted(cumulative, rng.random(size), side="right"), len(shares) - 1)


def _ids(prefix: str, count: int, width: int = 6) -> pl.Series:
    width = max(width, len(str(count)))
    frame = pl.DataFrame({"i": np.arange(1, count + 1, dtype=np.int64)})
    return frame.select(
        pl.concat_str(pl.lit(prefix), pl.col("i").cast(pl.String).str.zfill(width)).alias("id")
    ).to_series()


def _dates(days: np.ndarray) -> pl.Series:
    return pl.Series(days.astype(np.int32)).cast(pl.Date)


def _masked(mask: np.ndarray, values: pl.Series | np.ndarray) -> pl.Series:
    """``values`` where ``mask`` holds, null elsewhere."""
    frame = pl.DataFrame({"v": values if isinstance(values, pl.Series) else pl.Series(values), "m": mask})
    return frame.select(pl.when(pl.col("m")).then(pl.col("v")).alias("v")).to_series()


def _money(values: np.ndarray) -> np.ndarray:
    return np.round(values, 2)


def _as_canonical(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(list(CANONICAL_COLUMNS[table]))


def generate_world(config: WorldConfig = WorldConfig(), policy: CollectionsPolicy | None = None) -> World:
    """Generate the world for ``config`` as collected under ``policy`` (default: ``default_policy()``).

    The same config gives the same customers, invoices, amounts, base delays, disputes and notes
    whatever the policy; only touches, responses, discounts taken and so pay dates differ.
    """
    config.validate()
    policy = default_policy() if policy is None else policy
    policy.validate()
    start_day, end_day = _day(config.start), _day(config.end_date)
    n_seg = len(SEGMENTS)
    seg_table = {
        name: np.array([getattr(BEHAVIOUR[s], name) for s in SEGMENTS])
        for name in BEHAVIOUR["prompt"].__dataclass_fields__
    }

    # ---- customers -------------------------------------------------------------------------
    rng = _stream(config, "customers")
    n = config.n_customers
    segment = _choice(rng, seg_table["share"], n)
    z = rng.standard_normal(n)
    latent = seg_table["propensity_mean"][segment] + z * seg_table["propensity_spread"][segment]
    change_u = rng.random(n)
    kind_u = rng.random(n)
    change_month = rng.integers(max(1, config.months // 4), max(2, config.months - config.months // 4), n)
    run_u = rng.random(n)
    currency_u = rng.random(n)
    currency_idx = rng.integers(0, len(CURRENCIES), n)
    size_mu = rng.normal(7.4, 0.9, n)
    rate = config.invoices_per_customer_month * np.exp(rng.normal(-0.18, 0.6, n))
    onboard = np.where(rng.random(n) < 0.75, 0, rng.integers(0, max(1, int(config.months * 0.8)), n))
    terms_idx = _choice(rng, np.array([t[2] for t in TERMS]), n)
    strategic = rng.random(n) < config.strategic_share
    channel_idx = _choice(rng, np.array(list(CHANNEL_SHARES.values())), n)
    owner_idx = rng.integers(0, len(words.COLLECTORS), n)
    name_parts = (
        rng.integers(0, len(words.NAME_FIRST), n),
        rng.integers(0, len(words.NAME_SECOND), n),
        rng.integers(0, len(words.NAME_SUFFIX), n),
    )
    industry_idx = rng.integers(0, len(words.INDUSTRIES), n)
    region_idx = rng.integers(0, len(words.US_REGIONS), n)
    method_idx = rng.integers(0, len(words.PAYMENT_METHODS), n)
    phone_number = rng.integers(1000000, 9999999, n)

    # Behaviour change: a new CFO makes slow payers better; a cash squeeze makes good ones worse.
    seg_names = np.array(SEGMENTS)
    improvable = np.isin(seg_names[segment], ["slow", "chronic_late", "disputer"])
    worsenable = np.isin(seg_names[segment], ["prompt", "on_time", "slow"])
    wants_change = change_u < config.behaviour_change_share
    is_cfo = wants_change & improvable & (~worsenable | (kind_u < 0.5))
    is_squeeze = wants_change & worsenable & ~is_cfo
    has_change = is_cfo | is_squeeze
    segment_after = segment.copy()
    segment_after[is_cfo] = np.where(kind_u[is_cfo] < 0.25, 0, 1)  # prompt or on_time
    segment_after[is_squeeze] = SEGMENTS.index("chronic_late")
    latent_after = seg_table["propensity_mean"][segment_after] + z * seg_table["propensity_spread"][segment_after]
    change_first_day = np.array([_day(add_months(config.start, int(m))) for m in range(config.months + 1)])
    change_day = np.where(has_change, change_first_day[np.minimum(change_month, config.months)], NEVER)
    pays_on_run = run_u < seg_table["month_end_run_share"][segment]
    is_foreign = currency_u < config.foreign_currency_share

    customer_ids = _ids("C", n)
    currency = np.where(is_foreign, np.array([c[0] for c in CURRENCIES])[currency_idx], config.base_currency)
    country = np.where(is_foreign, np.array([c[1] for c in CURRENCIES])[currency_idx], "US")
    region = np.where(
        is_foreign, np.array([c[2] for c in CURRENCIES])[currency_idx], np.array(words.US_REGIONS)[region_idx]
    )
    names = (
        pl.Series(np.array(words.NAME_FIRST)[name_parts[0]])
        + " "
        + pl.Series(np.array(words.NAME_SECOND)[name_parts[1]])
    )
    slugs = names.str.to_lowercase().str.replace_all(r"[^a-z]", "")
    names = names + " " + pl.Series(np.array(words.NAME_SUFFIX)[name_parts[2]])
    monthly_volume = config.invoices_per_customer_month * np.exp(size_mu + 0.245)
    credit_limit = np.maximum(
        5000.0, np.round(monthly_volume * rate / config.invoices_per_customer_month * 3 / 1000) * 1000
    )
    phone_text = pl.Series(phone_number).cast(pl.String)
    customers = pl.DataFrame(
        {
            "customer_id": customer_ids,
            "name": names,
            "parent_id": pl.Series([None] * n, dtype=pl.String),
            "industry": np.array(words.INDUSTRIES)[industry_idx],
            "region": region,
            "country": country,
            "currency": currency,
            "credit_limit": credit_limit,
            "default_terms": np.array([t[0] for t in TERMS])[terms_idx],
            "owner": np.array(words.COLLECTORS)[owner_idx],
            "strategic": strategic,
            "preferred_channel": np.array(list(CHANNEL_SHARES))[channel_idx],
            "email": "ap@" + slugs + pl.Series(customer_ids.str.slice(-4)) + ".example.com",
            "phone": "+1-555-" + phone_text.str.slice(0, 3) + "-" + phone_text.str.slice(3),
        }
    )
    # A few subsidiaries roll up to a parent account.
    parent_pick = rng.random(n) < 0.04
    parent_of = rng.integers(0, n, n)
    parent_ok = parent_pick & (parent_of != np.arange(n)) & ~parent_pick[parent_of]
    customers = customers.with_columns(_masked(parent_ok, customer_ids.gather(parent_of)).alias("parent_id"))

    # ---- fx rates ---------------------------------------------------------------------------
    rng = _stream(config, "fx")
    all_days = np.arange(start_day, end_day + 1)
    fx_rate = np.empty((len(CURRENCIES), len(all_days)))
    for i, (_, _, _, first_rate) in enumerate(CURRENCIES):
        fx_rate[i] = np.round(first_rate * np.exp(np.cumsum(rng.normal(0.0, 0.004, len(all_days)))), 6)
    fx_rates = pl.DataFrame(
        {
            "date": _dates(np.tile(all_days, len(CURRENCIES))),
            "currency": np.repeat([c[0] for c in CURRENCIES], len(all_days)),
            "rate_to_base": fx_rate.ravel(),
        }
    ).sort("date", "currency")

    # ---- invoices ---------------------------------------------------------------------------
    rng = _stream(config, "invoices")
    bucket_start = change_first_day[:-1]
    bucket_len = np.diff(change_first_day)
    calendar_month = np.array([add_months(config.start, m).month for m in range(config.months)]) - 1
    expected = rate[:, None] * SEASONALITY[calendar_month][None, :]
    expected[np.arange(config.months)[None, :] < onboard[:, None]] = 0.0
    counts = rng.poisson(expected)
    cust = np.repeat(np.repeat(np.arange(n), config.months), counts.ravel())
    month = np.repeat(np.tile(np.arange(config.months), n), counts.ravel())
    m_total = len(cust)
    near_month_end = rng.random(m_total) < 0.3  # month-end billing runs
    offset = np.where(
        near_month_end,
        bucket_len[month] - 1 - rng.integers(0, 3, m_total),
        (rng.random(m_total) * bucket_len[month]).astype(np.int64),
    )
    inv_day = bucket_start[month] + offset
    order = np.lexsort((rng.random(m_total), cust, inv_day))
    cust, inv_day = cust[order], inv_day[order]
    m_total = len(cust)

    rng = _stream(config, "invoice_attributes")
    keep_default_terms = rng.random(m_total) < 0.9
    inv_terms = np.where(keep_default_terms, terms_idx[cust], _choice(rng, np.array([t[2] for t in TERMS]), m_total))
    terms_days = np.array([t[1] for t in TERMS])[inv_terms]
    due_day = inv_day + terms_days
    is_credit_memo = rng.random(m_total) < config.credit_memo_rate
    is_invoice = ~is_credit_memo
    amount = _money(np.maximum(25.0, np.exp(rng.normal(size_mu[cust], 0.7))))
    amount = np.where(is_credit_memo, -_money(np.maximum(10.0, amount * 0.3)), amount)
    has_po = rng.random(m_total) < 0.7
    po_number = rng.integers(100000, 999999, m_total)
    inv_currency = currency[cust]
    rate_at = np.ones(m_total)
    inv_foreign = is_foreign[cust]
    rate_at[inv_foreign] = fx_rate[currency_idx[cust][inv_foreign], inv_day[inv_foreign] - start_day]
    amount_base = _money(amount * rate_at)

    invoice_ids = _ids("INV-", m_total)
    invoices = pl.DataFrame(
        {
            "invoice_id": invoice_ids,
            "customer_id": customer_ids.gather(cust),
            "doc_type": np.where(is_credit_memo, "credit_memo", "invoice"),
            "invoice_date": _dates(inv_day),
            "due_date": _dates(due_day),
            "terms_code": np.array([t[0] for t in TERMS])[inv_terms],
            "terms_days": terms_days.astype(np.int32),
            "amount": amount,
            "currency": inv_currency,
            "amount_base": amount_base,
            "po_number": _masked(has_po, "PO-" + pl.Series(po_number).cast(pl.String)),
            "source_system": "recoup-sample",
        }
    )
    invoices = invoices.with_columns(pl.col("po_number").cast(pl.String))

    # ---- payment mechanism (policy-independent draws) -----------------------------------------
    rng = _stream(config, "delays")
    after_change = inv_day >= change_day[cust]
    seg_inv = np.where(after_change, segment_after[cust], segment[cust])
    latent_inv = np.where(after_change, latent_after[cust], latent[cust])
    noise = rng.standard_normal(m_total) * seg_table["noise_sd"][seg_inv]
    run_inv = pays_on_run[cust]
    base_pay = np.maximum(inv_day, due_day + np.round(latent_inv + noise).astype(np.int64))
    base_pay = np.where(run_inv, _snap_to_run(base_pay), base_pay)
    base_pay = np.maximum(base_pay, inv_day)
    uncollectible = is_invoice & (rng.random(m_total) < seg_table["uncollectible_rate"][seg_inv])

    dispute_u = rng.random(m_total)
    category_idx = _choice(rng, np.array([c["share"] for c in DISPUTE_CATEGORIES.values()]), m_total)
    resolution_u = rng.random(m_total)
    opened_lag = rng.integers(2, 13, m_total)
    resolve_means = np.array([c["resolve_days"] for c in DISPUTE_CATEGORIES.values()])
    resolve_days = np.maximum(1, np.round(rng.gamma(2.0, resolve_means[category_idx] / 2.0))).astype(np.int64)
    pay_after_resolution_lag = rng.integers(2, 11, m_total)
    disputed_share = rng.uniform(0.1, 0.5, m_total)
    discount_u = rng.random(m_total)
    discount_day = (rng.random(m_total) * 10).astype(np.int64)
    partial_u = rng.random(m_total)
    partial_share = rng.uniform(0.3, 0.7, m_total)
    partial_gap = rng.integers(5, 31, m_total)

    disputed = is_invoice & (dispute_u < seg_table["dispute_rate"][seg_inv])
    resolution_shares = np.array([c["resolution"] for c in DISPUTE_CATEGORIES.values()])
    resolution_idx = (resolution_u[:, None] > np.cumsum(resolution_shares[category_idx], axis=1)[:, :]).sum(axis=1)
    resolution_idx = np.minimum(resolution_idx, len(RESOLUTIONS) - 1)
    opened_day = _next_business_day(inv_day + opened_lag)
    resolved_day = opened_day + resolve_days
    is_duplicate = category_idx == list(DISPUTE_CATEGORIES).index("duplicate billing")
    dispute_amount = np.where(is_duplicate, amount, _money(amount * disputed_share))
    reduces = disputed & (resolution_idx != RESOLUTIONS.index("customer paid"))
    payable = np.where(reduces, _money(amount - dispute_amount), amount)
    payable = np.where(is_invoice, payable, 0.0)
    threshold = resolved_day + pay_after_resolution_lag
    threshold = np.where(run_inv, _snap_to_run(threshold), threshold)
    after_dispute = np.where(disputed, np.maximum(base_pay, threshold), base_pay)
    dispute_delay = after_dispute - base_pay
    needs_payment = is_invoice & (payable > 0.004)
    pay = np.where(uncollectible | ~needs_payment, NEVER, after_dispute)

    # Early-payment discount: 2/10 Net 30 terms, or the policy's offer for the segment.
    offered = np.zeros(n_seg)
    for seg_name, discount in policy.early_pay_discount.items():
        offered[SEGMENTS.index(seg_name)] = discount
    discount_rate = np.maximum(np.where(inv_terms == DISCOUNT_TERMS_INDEX, 0.02, 0.0), offered[seg_inv])
    take_probability = np.minimum(0.95, seg_table["discount_take_rate"][seg_inv] * discount_rate / 0.02)
    took_discount = needs_payment & ~disputed & ~uncollectible & (discount_rate > 0) & (discount_u < take_probability)
    discount_pay = np.minimum(pay, inv_day + discount_day)
    discount_pull = np.where(took_discount, pay - discount_pay, 0)
    pay = np.where(took_discount, discount_pay, pay)
    discount_amount = np.where(took_discount, _money(payable * discount_rate), 0.0)
    payable = payable - discount_amount

    # ---- touches: the policy's cadence, day by day, respecting capacity -------------------------
    pre_touch_pay = pay.copy()
    p_table = np.array([[[response_probability(s, c, t) for t in TONES] for c in CHANNELS] for s in SEGMENTS])
    pull_table = np.array([[[pull_forward_days_mean(s, c, t) for t in TONES] for c in CHANNELS] for s in SEGMENTS])
    eligible = is_invoice & (amount_base >= policy.min_amount)
    if not policy.touch_strategic:
        eligible &= ~strategic[cust]
    parts: list[tuple[np.ndarray, ...]] = []
    for s, seg_name in enumerate(SEGMENTS):
        members = np.flatnonzero(eligible & (seg_inv == s))
        for k, step in enumerate(policy.steps_for(seg_name)):
            touch_day = _next_business_day(due_day[members] + step.days_from_due)
            ok = (touch_day >= inv_day[members]) & (touch_day <= end_day)
            count = int(ok.sum())
            parts.append(
                (
                    members[ok],
                    np.full(count, k),
                    touch_day[ok],
                    np.full(count, CHANNELS.index(step.channel)),
                    np.full(count, TONES.index(step.tone)),
                    np.full(count, ACTIONS.index(step.action)),
                )
            )
    if parts:
        c_inv, c_slot, c_day, c_channel, c_tone, c_action = (np.concatenate(p) for p in zip(*parts, strict=True))
    else:
        c_inv = c_slot = c_day = c_channel = c_tone = c_action = np.zeros(0, dtype=np.int64)
    order = np.lexsort((c_inv, -amount_base[c_inv], c_day))
    c_inv, c_slot, c_day, c_channel, c_tone, c_action = (
        a[order] for a in (c_inv, c_slot, c_day, c_channel, c_tone, c_action)
    )
    c_u_response = _hash_uniform(config.seed, c_inv, c_slot, 0)
    c_u_pull = _hash_uniform(config.seed, c_inv, c_slot, 1)
    c_seg = seg_inv[c_inv]
    c_p = p_table[c_seg, c_channel, c_tone]
    c_pull = np.round(-np.log1p(-c_u_pull) * pull_table[c_seg, c_channel, c_tone]).astype(np.int64)
    c_dispute_open = disputed[c_inv] & (opened_day[c_inv] <= c_day) & (c_day < resolved_day[c_inv])
    c_responds = ~c_dispute_open & ~uncollectible[c_inv] & (c_u_response < c_p)
    c_floor = np.maximum(c_day + 1, np.where(disputed[c_inv], threshold[c_inv], inv_day[c_inv]))
    c_run = run_inv[c_inv]
    c_sent = np.zeros(len(c_inv), dtype=bool)
    c_pay_after = np.zeros(len(c_inv), dtype=np.int64)
    touch_count = np.zeros(m_total, dtype=np.int32)
    day_values, day_starts = np.unique(c_day, return_index=True)
    day_stops = np.append(day_starts[1:], len(c_day))[: len(day_starts)]
    capacity = policy.daily_capacity
    for day_value, lo, hi in zip(day_values, day_starts, day_stops, strict=True):
        rows = np.arange(lo, hi)
        rows = rows[pay[c_inv[rows]] > day_value]
        if not policy.touch_disputed:
            rows = rows[~c_dispute_open[rows]]
        if capacity is not None:
            rows = rows[:capacity]
        if len(rows) == 0:
            continue
        c_sent[rows] = True
        inv_rows = c_inv[rows]
        respond = c_responds[rows]
        current = pay[inv_rows]
        proposed = np.maximum(current - c_pull[rows], c_floor[rows])
        run_rows = c_run[rows] & respond
        if run_rows.any():
            proposed[run_rows] = _snap_to_run(proposed[run_rows])
        new_pay = np.where(respond, np.minimum(current, proposed), current)
        pay[inv_rows] = new_pay
        c_pay_after[rows] = new_pay
        touch_count[inv_rows] += 1
    touch_pull = np.where(pay < NEVER, pre_touch_pay - pay, 0)

    # ---- contacts -------------------------------------------------------------------------------
    sent = np.flatnonzero(c_sent)
    s_inv, s_day, s_seg = c_inv[sent], c_day[sent], c_seg[sent]
    s_channel = c_channel[sent]
    u_outcome = _hash_uniform(config.seed, s_inv, c_slot[sent], 2)
    u_time = _hash_uniform(config.seed, s_inv, c_slot[sent], 3)
    responded = c_responds[sent]
    pay_after = c_pay_after[sent]
    broken_rate = seg_table["broken_promise_rate"][s_seg]
    outcome = np.full(len(sent), "no response", dtype=object)
    promise_day = np.full(len(sent), -1, dtype=np.int64)
    is_bounce_channel = np.isin(s_channel, [CHANNELS.index("email"), CHANNELS.index("sms")])
    is_wrong_channel = np.isin(s_channel, [CHANNELS.index("call"), CHANNELS.index("letter")])
    glitch = (~responded) & (u_outcome >= broken_rate) & (u_outcome < broken_rate + 0.03)
    outcome[glitch & is_bounce_channel] = "bounced"
    outcome[glitch & is_wrong_channel] = "wrong contact"
    empty_promise = (~responded) & (u_outcome < broken_rate)
    outcome[empty_promise] = "promise to pay"
    promise_day[empty_promise] = _next_business_day(s_day[empty_promise] + 7)
    paid_soon = responded & (pay_after - s_day <= 2)
    outcome[paid_soon] = "paid"
    promised = responded & ~paid_soon
    outcome[promised] = "promise to pay"
    promise_day[promised] = pay_after[promised]
    dispute_raised = c_dispute_open[sent]
    outcome[dispute_raised] = "dispute raised"
    promise_day[dispute_raised] = -1
    has_promise = promise_day >= 0
    seconds = s_day * 86400 + 13 * 3600 + (u_time * 8 * 3600).astype(np.int64)
    contact_order = np.lexsort((s_inv, seconds))
    contacts = pl.DataFrame(
        {
            "customer_id": customer_ids.gather(cust[s_inv]),
            "invoice_id": invoice_ids.gather(s_inv),
            "ts": pl.from_epoch(pl.Series(seconds), time_unit="s"),
            "channel": np.array(CHANNELS)[s_channel],
            "action": np.array(ACTIONS)[c_action[sent]],
            "template_id": pl.Series(np.array(ACTIONS)[c_action[sent]]).str.replace_all(r"[ -]", "_")
            + "_"
            + pl.Series(np.array(TONES)[c_tone[sent]]),
            "tone": np.array(TONES)[c_tone[sent]],
            "collector": np.array(words.COLLECTORS)[owner_idx[cust[s_inv]]],
            "outcome": pl.Series(outcome.astype(str)),
            "promise_date": _masked(has_promise, _dates(promise_day)),
            "promise_amount": np.where(has_promise, payable[s_inv], np.nan),
            "_kept": has_promise & (pay[s_inv] <= promise_day + 2),
            "_has_promise": has_promise,
            "_segment": np.array(SEGMENTS)[s_seg],
            "_responded": responded,
        }
    )[contact_order]
    contacts = contacts.with_columns(pl.col("promise_amount").fill_nan(None), contact_id=_ids("CON-", len(sent), 7))

    # ---- payments -------------------------------------------------------------------------------
    paid = pay <= end_day
    is_partial = needs_payment & ~took_discount & (partial_u < config.partial_payment_rate) & (pay < NEVER)
    first_day = np.maximum(inv_day, pay - partial_gap)
    first_amount = _money(payable * partial_share)
    final_amount = np.where(is_partial, _money(payable - first_amount), payable)
    first_rows = np.flatnonzero(is_partial & (first_day <= end_day) & (first_day < pay))
    final_rows = np.flatnonzero(paid)
    final_amount = np.where(is_partial & (first_day >= pay), payable, final_amount)
    rng = _stream(config, "unapplied")
    n_unapplied = int(round(m_total * config.unapplied_payment_rate))
    un_cust = rng.integers(0, n, n_unapplied)
    un_day = _next_business_day(rng.integers(start_day, end_day + 1, n_unapplied))
    un_day = np.minimum(un_day, end_day)
    un_amount = _money(np.exp(rng.normal(5.5, 1.0, n_unapplied)))
    pay_inv = np.concatenate([first_rows, final_rows, np.full(n_unapplied, -1)])
    pay_cust = np.concatenate([cust[first_rows], cust[final_rows], un_cust])
    pay_day = np.concatenate([first_day[first_rows], pay[final_rows], un_day])
    pay_amount = np.concatenate([first_amount[first_rows], final_amount[final_rows], un_amount])
    pay_key = np.concatenate([first_rows * 2, final_rows * 2 + 1, 2 * m_total + np.arange(n_unapplied)])
    order = np.lexsort((pay_key, pay_day))
    pay_inv, pay_cust, pay_day, pay_amount = pay_inv[order], pay_cust[order], pay_day[order], pay_amount[order]
    payments = pl.DataFrame(
        {
            "payment_id": _ids("PAY-", len(order), 7),
            "customer_id": customer_ids.gather(pay_cust),
            "invoice_id": _masked(pay_inv >= 0, invoice_ids.gather(np.maximum(pay_inv, 0))),
            "payment_date": _dates(pay_day),
            "amount": pay_amount,
            "currency": currency[pay_cust],
            "method": np.array(words.PAYMENT_METHODS)[method_idx[pay_cust]],
        }
    )

    # ---- adjustments and disputes ---------------------------------------------------------------
    credit_rows = np.flatnonzero(disputed & (resolution_idx == 0) & (resolved_day <= end_day))
    dispute_write_rows = np.flatnonzero(disputed & (resolution_idx == 2) & (resolved_day <= end_day))
    write_off_day = _next_business_day(due_day + WRITE_OFF_AFTER_DAYS)
    bad_rows = np.flatnonzero(uncollectible & (payable > 0.004) & (write_off_day <= end_day))
    discount_rows = np.flatnonzero(took_discount & paid)
    # Credit memos are applied to the account a few weeks after issue (closing them out).
    memo_apply_day = _next_business_day(inv_day + _stream(config, "credit_memos").integers(5, 41, m_total))
    memo_rows = np.flatnonzero(is_credit_memo & (memo_apply_day <= end_day))
    adj_inv = np.concatenate([discount_rows, credit_rows, dispute_write_rows, bad_rows, memo_rows])
    adj_day = np.concatenate(
        [
            pay[discount_rows],
            resolved_day[credit_rows],
            resolved_day[dispute_write_rows],
            write_off_day[bad_rows],
            memo_apply_day[memo_rows],
        ]
    )
    adj_amount = np.concatenate(
        [
            -discount_amount[discount_rows],
            -dispute_amount[credit_rows],
            -dispute_amount[dispute_write_rows],
            -payable[bad_rows],
            -amount[memo_rows],
        ]
    )
    adj_kind = np.concatenate(
        [
            np.full(len(discount_rows), 0),
            np.full(len(credit_rows), 1),
            np.full(len(dispute_write_rows), 2),
            np.full(len(bad_rows), 3),
            np.full(len(memo_rows), 4),
        ]
    )
    kinds = np.array(["discount", "credit_note", "write_off", "write_off", "credit_note"])
    reasons = np.array(
        [
            "early-payment discount taken",
            "dispute resolved with a credit",
            "disputed amount written off",
            f"uncollectible, over {WRITE_OFF_AFTER_DAYS} days past due",
            "credit memo applied to the account",
        ]
    )
    order = np.lexsort((adj_kind, adj_inv, adj_day))
    adj_inv, adj_day, adj_amount, adj_kind = adj_inv[order], adj_day[order], adj_amount[order], adj_kind[order]
    adjustments = pl.DataFrame(
        {
            "adjustment_id": _ids("ADJ-", len(order)),
            "invoice_id": invoice_ids.gather(adj_inv),
            "customer_id": customer_ids.gather(cust[adj_inv]),
            "adjustment_date": _dates(adj_day),
            "amount": adj_amount,
            "kind": kinds[adj_kind],
            "reason": reasons[adj_kind],
        }
    )
    dispute_rows = np.flatnonzero(disputed & (opened_day <= end_day))
    dispute_rows = dispute_rows[np.lexsort((dispute_rows, opened_day[dispute_rows]))]
    is_resolved = resolved_day[dispute_rows] <= end_day
    disputes = pl.DataFrame(
        {
            "dispute_id": _ids("DSP-", len(dispute_rows)),
            "invoice_id": invoice_ids.gather(dispute_rows),
            "customer_id": customer_ids.gather(cust[dispute_rows]),
            "opened_date": _dates(opened_day[dispute_rows]),
            "resolved_date": _masked(is_resolved, _dates(resolved_day[dispute_rows])),
            "category": np.array(list(DISPUTE_CATEGORIES))[category_idx[dispute_rows]],
            "amount": dispute_amount[dispute_rows],
            "resolution": _masked(is_resolved, np.array(RESOLUTIONS)[resolution_idx[dispute_rows]]),
        }
    )

    # ---- notes ----------------------------------------------------------------------------------
    notes = _notes(
        config,
        customer_ids,
        invoice_ids,
        segment,
        segment_after,
        change_day,
        is_cfo,
        is_squeeze,
        cust,
        dispute_rows,
        opened_day,
        category_idx,
        start_day,
        end_day,
    )

    # ---- truth ----------------------------------------------------------------------------------
    truth = _truth(
        customer_ids=customer_ids,
        invoice_ids=invoice_ids,
        segment=segment,
        segment_after=segment_after,
        latent=latent,
        latent_after=latent_after,
        change_day=change_day,
        is_cfo=is_cfo,
        has_change=has_change,
        pays_on_run=pays_on_run,
        cust=cust,
        seg_inv=seg_inv,
        is_invoice=is_invoice,
        due_day=due_day,
        base_pay=base_pay,
        dispute_delay=dispute_delay,
        disputed=disputed,
        touch_pull=touch_pull,
        discount_pull=discount_pull,
        touch_count=touch_count,
        took_discount=took_discount,
        uncollectible=uncollectible,
        needs_payment=needs_payment,
        pay=pay,
        end_day=end_day,
        contacts=contacts,
        p_table=p_table,
        pull_table=pull_table,
        policy=policy,
    )
    contacts = contacts.drop("_kept", "_has_promise", "_segment", "_responded")
    frames = {
        "customers": _as_canonical("customers", customers),
        "invoices": _as_canonical("invoices", invoices),
        "payments": _as_canonical("payments", payments),
        "adjustments": _as_canonical("adjustments", adjustments),
        "disputes": _as_canonical("disputes", disputes),
        "contacts": _as_canonical("contacts", contacts),
        "notes": _as_canonical("notes", notes),
        "fx_rates": _as_canonical("fx_rates", fx_rates),
    }
    return World(config=config, policy=policy, frames=frames, truth=truth)


def _notes(
    config: WorldConfig,
    customer_ids: pl.Series,
    invoice_ids: pl.Series,
    segment: np.ndarray,
    segment_after: np.ndarray,
    change_day: np.ndarray,
    is_cfo: np.ndarray,
    is_squeeze: np.ndarray,
    cust: np.ndarray,
    dispute_rows: np.ndarray,
    opened_day: np.ndarray,
    category_idx: np.ndarray,
    start_day: int,
    end_day: int,
) -> pl.DataFrame:
    """CRM and support notes whose tone follows the customer's behaviour at the time."""
    rng = _stream(config, "notes")
    n = len(segment)
    per_customer = rng.poisson(config.notes_per_customer_year * config.months / 12.0, n)
    note_cust = np.repeat(np.arange(n), per_customer)
    total = len(note_cust)
    note_day = rng.integers(start_day, end_day + 1, total)
    note_seg = np.where(note_day >= change_day[note_cust], segment_after[note_cust], segment[note_cust])
    mix = np.array([NOTE_MIX[s] for s in SEGMENTS])
    kind_u = rng.random(total)
    kind = (kind_u[:, None] > np.cumsum(mix[note_seg], axis=1)).sum(axis=1).clip(0, 3)
    pick_u = rng.random(total)
    hour_u = rng.random(total)
    pools = (words.NOTE_POSITIVE, words.NOTE_NEUTRAL, words.NOTE_DISTRESS, words.NOTE_DISPUTE)
    texts = np.empty(total, dtype=object)
    for k, pool in enumerate(pools):
        mask = kind == k
        texts[mask] = np.array(pool, dtype=object)[(pick_u[mask] * len(pool)).astype(np.int64)]
    source = np.where(kind == 3, "support", "crm")
    change_rows = np.flatnonzero((is_cfo | is_squeeze) & (change_day <= end_day))
    change_text = np.where(is_cfo[change_rows], words.CHANGE_NOTE["new_cfo"], words.CHANGE_NOTE["cash_squeeze"])
    open_rows = dispute_rows  # already limited to disputes opened by end_day
    dispute_text = np.array([words.DISPUTE_NOTE_BY_CATEGORY[c] for c in DISPUTE_CATEGORIES], dtype=object)[
        category_idx[open_rows]
    ]
    all_cust = np.concatenate([note_cust, change_rows, cust[open_rows]])
    all_inv = np.concatenate([np.full(total + len(change_rows), -1), open_rows])
    all_day = np.concatenate([note_day, change_day[change_rows] + 3, opened_day[open_rows]])
    all_day = np.minimum(all_day, end_day)
    all_seconds = (
        all_day * 86400
        + 8 * 3600
        + (np.concatenate([hour_u, np.full(len(change_rows), 0.3), np.full(len(open_rows), 0.1)]) * 10 * 3600).astype(
            np.int64
        )
    )
    all_text = np.concatenate([texts, change_text.astype(object), dispute_text]).astype(str)
    all_source = np.concatenate([source, np.full(len(change_rows), "crm"), np.full(len(open_rows), "support")])
    tie = np.arange(len(all_cust))
    order = np.lexsort((tie, all_cust, all_seconds))
    all_inv = all_inv[order]
    return pl.DataFrame(
        {
            "note_id": _ids("NOTE-", len(order), 7),
            "customer_id": customer_ids.gather(all_cust[order]),
            "invoice_id": _masked(all_inv >= 0, invoice_ids.gather(np.maximum(all_inv, 0))),
            "ts": pl.from_epoch(pl.Series(all_seconds[order]), time_unit="s"),
            "source": all_source[order],
            "text": all_text[order],
        }
    )


def _truth(
    *,
    customer_ids: pl.Series,
    invoice_ids: pl.Series,
    segment: np.ndarray,
    segment_after: np.ndarray,
    latent: np.ndarray,
    latent_after: np.ndarray,
    change_day: np.ndarray,
    is_cfo: np.ndarray,
    has_change: np.ndarray,
    pays_on_run: np.ndarray,
    cust: np.ndarray,
    seg_inv: np.ndarray,
    is_invoice: np.ndarray,
    due_day: np.ndarray,
    base_pay: np.ndarray,
    dispute_delay: np.ndarray,
    disputed: np.ndarray,
    touch_pull: np.ndarray,
    discount_pull: np.ndarray,
    touch_count: np.ndarray,
    took_discount: np.ndarray,
    uncollectible: np.ndarray,
    needs_payment: np.ndarray,
    pay: np.ndarray,
    end_day: int,
    contacts: pl.DataFrame,
    p_table: np.ndarray,
    pull_table: np.ndarray,
    policy: CollectionsPolicy,
) -> dict[str, pl.DataFrame]:
    seg_names = np.array(SEGMENTS)
    truth_customers = pl.DataFrame(
        {
            "customer_id": customer_ids,
            "behaviour_class": seg_names[segment],
            "latent_propensity": np.round(latent, 4),
            "change_month": _masked(has_change, _dates(np.where(has_change, change_day, 0))),
            "change_kind": _masked(has_change, np.where(is_cfo, "new_cfo", "cash_squeeze")),
            "class_after_change": _masked(has_change, pl.Series(seg_names[segment_after])),
            "latent_propensity_after_change": _masked(has_change, np.round(latent_after, 4)),
            "pays_on_month_end_run": pays_on_run,
        }
    )
    settled = is_invoice & needs_payment & (pay <= end_day)
    latent_known = is_invoice & needs_payment & (pay < NEVER)
    truth_invoices = pl.DataFrame(
        {
            "invoice_id": invoice_ids,
            "customer_id": customer_ids.gather(cust),
            "segment": seg_names[seg_inv],
            "is_invoice": is_invoice,
            "base_delay_days": _masked(is_invoice, pl.Series(base_pay - due_day)),
            "dispute_delay_days": _masked(is_invoice, pl.Series(dispute_delay)),
            "touch_pull_forward_days": _masked(is_invoice, pl.Series(touch_pull)),
            "discount_pull_forward_days": _masked(is_invoice, pl.Series(discount_pull)),
            "touches_sent": touch_count,
            "disputed": disputed,
            "discount_taken": took_discount,
            "uncollectible": uncollectible,
            "needs_payment": needs_payment,
            "latent_pay_date": _masked(latent_known, _dates(np.where(latent_known, pay, 0))),
            "final_pay_date": _masked(settled, _dates(np.where(settled, pay, 0))),
            "days_late": _masked(settled, pl.Series(pay - due_day)),
        }
    )
    effects = [
        {
            "segment": s,
            "channel": c,
            "tone": t,
            "response_probability": round(float(p_table[i, j, k]), 4),
            "pull_forward_days_mean": round(float(pull_table[i, j, k]), 4),
        }
        for i, s in enumerate(SEGMENTS)
        for j, c in enumerate(CHANNELS)
        for k, t in enumerate(TONES)
    ]
    truth_effects = pl.DataFrame(effects)
    truth_segments = pl.DataFrame(
        [
            {
                "segment": s,
                "propensity_mean": b.propensity_mean,
                "propensity_spread": b.propensity_spread,
                "noise_sd": b.noise_sd,
                "dispute_rate": b.dispute_rate,
                "uncollectible_rate": b.uncollectible_rate,
                "month_end_run_share": b.month_end_run_share,
                "discount_take_rate_at_2pct": b.discount_take_rate,
                "broken_promise_rate": b.broken_promise_rate,
            }
            for s, b in BEHAVIOUR.items()
        ]
    )
    truth_disputes = pl.DataFrame(
        [
            {
                "category": name,
                "share": spec["share"],
                "resolve_days_mean": spec["resolve_days"],
                **{f"p_{r.replace(' ', '_')}": share for r, share in zip(RESOLUTIONS, spec["resolution"], strict=True)},
            }
            for name, spec in DISPUTE_CATEGORIES.items()
        ]
    )
    truth_promises = contacts.filter(pl.col("_has_promise")).select(
        "contact_id", "invoice_id", "promise_date", "promise_amount", kept=pl.col("_kept")
    )
    # Channel, tone and invoice of each touch are in contacts; the truth adds what is hidden.
    truth_touches = contacts.select("contact_id", segment=pl.col("_segment"), responded=pl.col("_responded"))
    return {
        "truth_customers": truth_customers,
        "truth_invoices": truth_invoices,
        "truth_effects": truth_effects,
        "truth_segments": truth_segments,
        "truth_disputes": truth_disputes,
        "truth_promises": truth_promises,
        "truth_touches": truth_touches,
    }
