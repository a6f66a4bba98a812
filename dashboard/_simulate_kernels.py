"""Compiled kernel of the strategy simulator (numba): every path of a chunk, both strategies.

The day-by-day send loop is sequential by nature (whether a touch goes out depends on the
payments earlier touches pulled forward, and on the day's capacity), so it is written as a
plain loop and compiled. Paths are independent: blocks of ``BLOCK`` paths run in parallel,
and inside a block the paths sit side by side in memory (``pay[invoice, path]``), so one
read of the touch tables serves every path of the block.

Random numbers are counter-based: the draw for a key (an invoice, or an invoice × step day)
is a hash of the path's stream key and that key. A draw is therefore computed only when it
is needed (a touch that is sent, a response that happens) and is the same whichever
strategy asks for it — common random numbers by construction.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

BLOCK = 8  # at most this many paths per parallel block
GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
MIX_2 = np.uint64(0x94D049BB133111EB)
SHIFT_30, SHIFT_27, SHIFT_31 = np.uint64(30), np.uint64(27), np.uint64(31)
SHIFT_11, SHIFT_32, SHIFT_55 = np.uint64(11), np.uint64(32), np.uint64(55)
TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53
N_METRICS = 8  # METRICS order in dashboard.simulate
STREAMS = 5  # base delay, discount take-up, discount day, response, pull-forward days


@njit(inline="always", cache=True)
def _mix(z: np.uint64) -> np.uint64:
    """splitmix64 finaliser: a well-mixed 64-bit hash of ``z``."""
    z = (z ^ (z >> SHIFT_30)) * MIX_1
    z = (z ^ (z >> SHIFT_27)) * MIX_2
    return z ^ (z >> SHIFT_31)


@njit(inline="always", cache=True)
def _bits(stream_key: np.uint64, key: np.int64) -> np.uint64:
    return _mix(stream_key + np.uint64(key) * GAMMA)


@njit(inline="always", cache=True)
def _uniform(stream_key: np.uint64, key: np.int64) -> float:
    """Uniform on [0, 1) for ``key`` in the stream ``stream_key``."""
    return float(_bits(stream_key, key) >> SHIFT_11) * TO_UNIT


def stream_keys(rng: np.random.Generator, n_paths: int) -> np.ndarray:
    """Per path, one 64-bit key per random stream (``STREAMS`` columns), from ``rng``."""
    raw = rng.integers(0, np.iinfo(np.int64).max, size=(n_paths, STREAMS), dtype=np.int64)
    return raw.view(np.uint64)


@njit(parallel=True, cache=True, nogil=True)
def simulate_chunk(  # noqa: PLR0913, PLR0915, C901
    keys: np.ndarray,  # (P, STREAMS) uint64
    replicate: np.ndarray,  # (P,) int64
    tables: np.ndarray,  # (R, lots, levels) int32: no-touch delay quantiles
    lot: np.ndarray,  # (n,) int64
    segment: np.ndarray,  # (n,) int64
    issue_day: np.ndarray,  # (n,) int64
    floor_day: np.ndarray,  # (n,) int64: max(issue_day, 1)
    take_rate: np.ndarray,  # (R, S) measured discount take-up
    measured_rate: float,
    never: int,
    due_day: np.ndarray,  # (2, n) int64
    discount_rate: np.ndarray,  # (2, n) float64
    amount: np.ndarray,  # (2, n) float64, zero where the invoice is not active
    is_new_active: np.ndarray,  # (2, n) bool
    crosses: np.ndarray,  # (2, n) bool: reaches write-off age inside the horizon
    overdue_week: np.ndarray,  # (2, n) int64
    issued_week: np.ndarray,  # (n,) int64
    sales: np.ndarray,  # (2, weeks): credit sales of the 91 days to each week end
    edges: np.ndarray,  # (weeks,) int64 week-end days
    touch_invoice: np.ndarray,  # (T,) int32, both plans one after the other
    touch_day: np.ndarray,  # (T,) int64
    touch_key: np.ndarray,  # (T,) int64: draw key (invoice × step day)
    touch_column: np.ndarray,  # (T,) int32: column of the effect tables; -1 - column = no write
    day_values: np.ndarray,  # (D,) int64, both plans one after the other
    day_starts: np.ndarray,  # (D + 1,) int64, absolute rows of touch_*
    plan_days: np.ndarray,  # (2, 2) int64: first and end day index of each plan
    invoice_starts: np.ndarray,  # (2, n + 1) int64: first row of each invoice (plans without capacity)
    capacity: np.ndarray,  # (2,) int64, -1 = none
    response: np.ndarray,  # (R, columns) probability of a response
    pull_mean: np.ndarray,  # (R, columns) mean days a response pulls payment forward
    days_to_pay_cap: int,
    write_off_days: int,
    touch_days: int,
    block_size: int,
    metrics: np.ndarray,  # out (P, 2, N_METRICS)
    weekly: np.ndarray,  # out (P, 2, 3, weeks): cash, overdue balance, DSO
    touches_per_day: np.ndarray,  # out (P, 2, touch_days + 1)
) -> None:
    n_paths = keys.shape[0]
    n = lot.shape[0]
    levels = tables.shape[2]
    level_shift = np.uint64(64 - int(np.log2(levels)))
    weeks = edges.shape[0]
    first_edge, last_edge = edges[0], edges[weeks - 1]
    week_of = np.searchsorted(edges, np.arange(first_edge, last_edge + 1), side="left")
    n_blocks = (n_paths + block_size - 1) // block_size
    for block in prange(n_blocks):
        p0 = block * block_size
        width = min(block_size, n_paths - p0)
        delay = np.empty((n, width), dtype=np.int32)
        for i in range(n):
            for j in range(width):
                p = p0 + j
                level = np.int64(_bits(keys[p, 0], i) >> level_shift)
                delay[i, j] = tables[replicate[p], lot[i], level]
        pay = np.empty((n, width), dtype=np.int32)
        takes = np.zeros((n, width), dtype=np.bool_)
        count = np.zeros(width, dtype=np.int64)
        sent_total = np.zeros(width, dtype=np.int64)
        over_capacity = np.zeros(width, dtype=np.int64)
        for which in range(2):
            # -- no-touch payment day and early-payment discounts ------------------------
            for i in range(n):
                rate = discount_rate[which, i]
                for j in range(width):
                    p = p0 + j
                    d = np.int64(delay[i, j])
                    value = never if d >= never else due_day[which, i] + d
                    value = max(value, floor_day[i])
                    took = False
                    if rate > 0 and value < never:
                        threshold = min(0.95, take_rate[replicate[p], segment[i]] * rate / max(measured_rate, 1e-9))
                        if _uniform(keys[p, 1], i) < threshold:
                            took = True
                            day = np.int64((_bits(keys[p, 2], i) >> SHIFT_32) * np.uint64(10) >> SHIFT_32)
                            value = min(value, issue_day[i] + day)
                    takes[i, j] = took
                    pay[i, j] = value
            cap = capacity[which]
            for j in range(width):
                sent_total[j] = 0
                over_capacity[j] = 0
            if cap < 0:
                # -- no capacity: invoices are independent; each one's touches in day order --
                for i in range(n):
                    first_touch, end_touch = invoice_starts[which, i], invoice_starts[which, i + 1]
                    if first_touch == end_touch:
                        continue
                    for j in range(width):
                        p = p0 + j
                        r = replicate[p]
                        current = pay[i, j]
                        for t in range(first_touch, end_touch):
                            day_value = touch_day[t]
                            if current <= day_value:
                                break  # paid: no later touch is sent either
                            sent_total[j] += 1
                            if day_value <= touch_days:
                                touches_per_day[p, which, day_value] += 1
                            column = touch_column[t]
                            writes = column >= 0
                            if not writes:
                                column = -1 - column
                            if _uniform(keys[p, 3], touch_key[t]) < response[r, column]:
                                u = _uniform(keys[p, 4], touch_key[t])
                                pull = np.int64(math.floor(-math.log1p(-u) * pull_mean[r, column] + 0.5))
                                proposed = max(current - pull, day_value + 1)
                                if writes and proposed < current:
                                    current = proposed
                        pay[i, j] = current
            else:
                # -- capacity: day by day, in priority order, up to the capacity -------------
                # An invoice paid on every path of the block stays paid: skip its touches.
                settled = np.zeros(n, dtype=np.bool_)
                for d_index in range(plan_days[which, 0], plan_days[which, 1]):
                    day_value = day_values[d_index]
                    for j in range(width):
                        count[j] = 0
                    for t in range(day_starts[d_index], day_starts[d_index + 1]):
                        inv = touch_invoice[t]
                        if settled[inv]:
                            continue
                        column = touch_column[t]
                        writes = column >= 0
                        if not writes:
                            column = -1 - column
                        unpaid = False
                        for j in range(width):
                            current = pay[inv, j]
                            if current <= day_value:
                                continue
                            unpaid = True
                            if count[j] >= cap:
                                over_capacity[j] += 1
                                continue
                            count[j] += 1
                            p = p0 + j
                            r = replicate[p]
                            if _uniform(keys[p, 3], touch_key[t]) < response[r, column]:
                                u = _uniform(keys[p, 4], touch_key[t])
                                pull = np.int64(math.floor(-math.log1p(-u) * pull_mean[r, column] + 0.5))
                                proposed = max(current - pull, day_value + 1)
                                if writes and proposed < current:
                                    pay[inv, j] = proposed
                        if not unpaid:
                            settled[inv] = True
                    for j in range(width):
                        sent_total[j] += count[j]
                        if day_value <= touch_days:
                            touches_per_day[p0 + j, which, day_value] += count[j]
            # -- outcomes of each path (invoice by invoice, every path of the block) -------
            cash = np.zeros((width, weeks + 1))
            open_change = np.zeros((width, weeks + 1))
            overdue_change = np.zeros((width, weeks + 1))
            days_sum = np.zeros(width)
            discount_cost = np.zeros(width)
            write_offs = np.zeros(width)
            days_count = 0
            for i in range(n):
                money = amount[which, i]
                rate = discount_rate[which, i]
                due = due_day[which, i]
                issued = issued_week[i]
                overdue_from = overdue_week[which, i]
                counts_days = is_new_active[which, i]
                can_write_off = crosses[which, i]
                days_count += counts_days
                for j in range(width):
                    value = np.int64(pay[i, j])
                    if value <= first_edge:
                        window = 0
                    elif value > last_edge:
                        window = weeks
                    else:
                        window = week_of[value - first_edge]
                    if takes[i, j]:
                        cash[j, window] += money * (1.0 - rate)
                        discount_cost[j] += money * rate
                    else:
                        cash[j, window] += money
                    if issued < window:
                        open_change[j, issued] += money
                        open_change[j, window] -= money
                    if overdue_from < window:
                        overdue_change[j, overdue_from] += money
                        overdue_change[j, window] -= money
                    if counts_days:
                        days_sum[j] += min(value - due, days_to_pay_cap)
                    if can_write_off and value > due + write_off_days:
                        write_offs[j] += money
            for j in range(width):
                p = p0 + j
                open_ar = 0.0
                overdue = 0.0
                total_cash = 0.0
                for k in range(weeks):
                    open_ar += open_change[j, k]
                    overdue += overdue_change[j, k]
                    total_cash += cash[j, k]
                    weekly[p, which, 0, k] = cash[j, k]
                    weekly[p, which, 1, k] = overdue
                    weekly[p, which, 2, k] = open_ar / sales[which, k] * 91 if sales[which, k] > 0 else np.nan
                metrics[p, which, 0] = total_cash
                metrics[p, which, 1] = days_sum[j] / days_count if days_count > 0 else np.nan
                metrics[p, which, 2] = weekly[p, which, 1, weeks - 1]
                metrics[p, which, 3] = weekly[p, which, 2, weeks - 1]
                metrics[p, which, 4] = sent_total[j]
                metrics[p, which, 5] = over_capacity[j]
                metrics[p, which, 6] = discount_cost[j]
                metrics[p, which, 7] = write_offs[j]

def block_size(n_paths: int, threads: int) -> int:
    """Paths per block: at most ``BLOCK``, and a whole number of blocks per thread."""
    blocks = -(-n_paths // BLOCK)
    blocks = -(-blocks // threads) * threads
    return max(1, -(-n_paths // blocks))


@njit(cache=True)
def group_by_invoice(touch_invoice: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ordered by invoice, keeping their order within an invoice (a stable counting
    sort), and the first row of each invoice (``n + 1`` entries)."""
    starts = np.zeros(n + 1, dtype=np.int64)
    for t in range(touch_invoice.shape[0]):
        starts[touch_invoice[t] + 1] += 1
    for i in range(n):
        starts[i + 1] += starts[i]
    fill = starts[:n].copy()
    order = np.empty(touch_invoice.shape[0], dtype=np.int64)
    for t in range(touch_invoice.shape[0]):
        i = touch_invoice[t]
        order[fill[i]] = t
        fill[i] += 1
    return order, starts


@njit(cache=True)
def delay_tables(
    baseline: np.ndarray, lot_segment: np.ndarray, lot_condition: np.ndarray, delay_min: int, never: int, levels: int
) -> np.ndarray:
    """No-touch delay quantiles: ``out[r, lot, k]`` is the delay at probability
    (k + 0.5) / levels of the replicate's curve for the lot's segment, conditioned on a
    delay above the lot's condition (``never`` past the end of the curve)."""
    n_boot, width = baseline.shape[0], baseline.shape[2]
    n_lots = lot_segment.shape[0]
    points = (np.arange(levels) + 0.5) / levels
    out = np.empty((n_boot, n_lots, levels), dtype=np.int32)
    cdf = np.empty(width)
    for r in range(n_boot):
        for j in range(n_lots):
            survival = baseline[r, lot_segment[j]]
            condition = lot_condition[j]
            column = min(max(condition - delay_min, -1), width - 1)
            base = 1.0 if column < 0 else survival[column]
            denominator = max(base, 1e-12)
            for w in range(width):
                cdf[w] = 1.0 - (survival[w] if delay_min + w > condition else base) / denominator
            positions = np.searchsorted(cdf, points, side="left")
            for k in range(levels):
                position = positions[k]
                out[r, j, k] = max(delay_min + position, condition + 1) if position < width else never
    return out


@njit(cache=True)
def _stable_counting_order(keys: np.ndarray, n_keys: int, rows: np.ndarray) -> np.ndarray:
    """``rows`` reordered by ``keys[rows]`` (0 <= key < n_keys), ties kept in order."""
    starts = np.zeros(n_keys + 1, dtype=np.int64)
    for t in range(rows.shape[0]):
        starts[keys[rows[t]] + 1] += 1
    for k in range(n_keys):
        starts[k + 1] += starts[k]
    out = np.empty(rows.shape[0], dtype=np.int64)
    for t in range(rows.shape[0]):
        key = keys[rows[t]]
        out[starts[key]] = rows[t]
        starts[key] += 1
    return out


@njit(cache=True)
def send_order(day: np.ndarray, rank: np.ndarray, n_ranks: int) -> np.ndarray:
    """Rows sorted by day, then rank, then row (two stable counting sorts): the same as
    ``np.lexsort((np.arange(len(day)), rank, day))``."""
    first_day = day.min() if day.shape[0] else 0
    day_key = day - first_day
    n_days = (day_key.max() + 1) if day.shape[0] else 1
    by_rank = _stable_counting_order(rank, n_ranks, np.arange(day.shape[0]))
    return _stable_counting_order(day_key, n_days, by_rank)
