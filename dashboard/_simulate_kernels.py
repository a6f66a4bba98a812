"""Compiled kernels (numba): the strategy simulator's paths — every path of a chunk, both
strategies — and its inputs (touch rows, bootstrap counts, weights), and the cash forecast's
Monte Carlo (:func:`window_cash`), all drawing from one counter-based generator.

The day-by-day send loop is sequential by nature (whether a touch goes out depends on the
payments earlier touches pulled forward, and on the day's capacity), so it is written as a
plain loop and compiled. Paths are independent: blocks of ``BLOCK`` paths run in parallel,
and inside a block the paths sit side by side in memory (``pay[invoice, path]``), so one
read of the touch tables serves every path of the block.

Invoices arrive grouped by their no-touch delay table (so a table's rows stay in cache);
each keeps its own ``draw_id`` as its key in the random streams, so the order changes no
draw. A plan without a capacity is simulated invoice by invoice in the same pass that draws
the no-touch payment days (an invoice identical under A and B is simulated once when
neither plan has a capacity), each touch sent to every path of the block at once. A plan
with a capacity keeps the block's payment days (in scratch the caller allocates once) for
the day-by-day loop, which asks the CPU for the payment days of a row a few rows ahead (the
rows come in priority order, so their invoices are scattered), stops reading a day once
every path is at capacity and counts the touches over capacity afterwards from the final
payment days.

The passes over the paths of a block are written without a branch that depends on the path
(whether it is still unpaid, whether it responds, which week it pays in), so LLVM vectorizes
them (AVX-512 on the machine the benchmarks ran on); the paths that respond to a touch come
out as the set bits of one word, and only they draw a pull-forward.

Random numbers are counter-based: the draw for a key (an invoice, or an invoice × step day)
is a hash of the path's stream key and that key. A draw therefore does not depend on when
or whether it is computed (a response draw may be computed for a path where the touch was
not sent, and ignored there; a pull-forward draw only when a response happens), and is the
same whichever strategy asks for it — common random numbers by construction.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

BLOCK = 32  # at most this many paths per parallel block (a chunk of 50 runs as two blocks of 25)
GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
MIX_2 = np.uint64(0x94D049BB133111EB)
SHIFT_30, SHIFT_27, SHIFT_31 = np.uint64(30), np.uint64(27), np.uint64(31)
SHIFT_11, SHIFT_32 = np.uint64(11), np.uint64(32)
TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53
PREFETCH_ROWS = 8  # the send loop asks for the payment days of the row this far ahead
N_METRICS = 8  # METRICS order in dashboard.simulate
STREAMS = 5  # base delay, discount take-up, discount day, response, pull-forward days
# The standard exponential at the middle of each of 4,096 equal-probability slices: a response's
# pull-forward days are a table lookup instead of a logarithm (like the delay tables, whose
# quantiles come in 512 slices; the largest draw is 9.0 mean pulls, and rounding to whole
# days hides the rest of the difference).
EXPONENTIAL_SHIFT = np.uint64(52)  # top 12 bits of a 64-bit draw
EXPONENTIAL = -np.log1p(-(np.arange(4096) + 0.5) / 4096)


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


@njit(inline="always", cache=True)
def _exponential(stream_key: np.uint64, key: np.int64) -> float:
    """Standard exponential for ``key`` in the stream ``stream_key``, in 4,096 slices."""
    return EXPONENTIAL[_bits(stream_key, key) >> EXPONENTIAL_SHIFT]


@intrinsic
def _prefetch(typingctx, array, which, row):  # noqa: ANN001, ANN202, ARG001
    """Ask the CPU to start loading ``array[which, row, 0]`` (a hint: no effect on results)."""

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202, ARG001
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        index = [context.cast(builder, args[k], signature.args[k], types.intp) for k in (1, 2)]
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, [*index, zero])
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        hint = ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32])
        function = cgutils.get_or_insert_function(builder.module, hint, "llvm.prefetch.p0")
        # read, keep in all cache levels, data cache
        builder.call(function, [builder.bitcast(pointer, byte_pointer), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, which, row), codegen


@intrinsic
def _lowest_bit(typingctx, bits):  # noqa: ANN001, ANN202, ARG001
    """Index of the lowest set bit of a nonzero ``bits`` (one instruction: count trailing zeros)."""

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202, ARG001
        i64 = ir.IntType(64)
        count = ir.FunctionType(i64, [i64, ir.IntType(1)])
        function = cgutils.get_or_insert_function(builder.module, count, "llvm.cttz.i64")
        return builder.call(function, [args[0], ir.IntType(1)(1)])

    return types.uint64(types.uint64), codegen


def stream_keys(rng: np.random.Generator, n_paths: int, streams: int = STREAMS) -> np.ndarray:
    """Per path, one 64-bit key per random stream (``streams`` columns), from ``rng``."""
    raw = rng.integers(0, np.iinfo(np.int64).max, size=(n_paths, streams), dtype=np.int64)
    return raw.view(np.uint64)


@njit(parallel=True, cache=True, nogil=True)
def window_cash(  # noqa: PLR0913
    keys: np.ndarray,  # (P, 2) uint64: the invoice stream, the customer stream
    lookup: np.ndarray,  # (lots, levels) window of a quantized uniform (levels a power of two)
    lot: np.ndarray,  # (n,) row of lookup
    amount: np.ndarray,  # (n,) float64
    bucket: np.ndarray,  # (n,) int64
    draw_key: np.ndarray,  # (n,) int64: the invoice's own key, or its customer's
    shared: np.ndarray,  # (n,) bool: draws its customer's uniform (customer stream)
    out: np.ndarray,  # (P, buckets, windows) float64, zeros
) -> None:
    """The forecast's Monte Carlo: per path, each invoice's amount added to the window its
    draw falls in. An invoice draws from the invoice stream with its own key, or — a share of
    invoices, so one customer's invoices pay together — from the customer stream with its
    customer's key (every such invoice of a customer gets the same uniform on a path)."""
    levels = lookup.shape[1]
    level_shift = np.uint64(64 - int(np.log2(levels)))
    for p in prange(keys.shape[0]):
        for i in range(lot.shape[0]):
            stream = keys[p, 1] if shared[i] else keys[p, 0]
            level = np.int64(_bits(stream, draw_key[i]) >> level_shift)
            out[p, bucket[i], lookup[lot[i], level]] += amount[i]


@njit(inline="always", cache=True)
def _add_outcome(  # noqa: PLR0913
    i: int,
    which: int,
    values: np.ndarray,  # (width,) payment day of invoice i on each path of the block
    took: np.ndarray,  # (width,) took the early-payment discount
    width: int,
    amount: np.ndarray,
    discount_rate: np.ndarray,
    due_day: np.ndarray,
    overdue_week: np.ndarray,
    is_new_active: np.ndarray,
    crosses: np.ndarray,
    first_edge: int,
    last_edge: int,
    week_of: np.ndarray,
    days_to_pay_cap: int,
    write_off_days: int,
    leaves_open: np.ndarray,  # (2, width, weeks + 1): amount settled per week (cash before discounts)
    leaves_overdue: np.ndarray,  # (2, width, weeks + 1): amount leaving the overdue balance per week
    discount_by_week: np.ndarray,  # (2, width, weeks + 1)
    days_sum: np.ndarray,  # (2, width)
    discount_cost: np.ndarray,
    write_offs: np.ndarray,
    window: np.ndarray,  # (width,) scratch
) -> None:
    """Add invoice ``i``'s outcome under plan ``which`` to the block's per-path totals.

    Only what depends on the path is added here. An invoice joins the open balance in its
    issue week and the overdue balance in its overdue week on every path (summed once for
    all paths: ``joins_open`` / ``joins_overdue`` in :func:`simulate_chunk`); it
    leaves the open balance in the week it is settled and the overdue balance in the later
    of that week and its overdue week (so an invoice settled before it is overdue never counts).
    """
    money = amount[which, i]
    rate = discount_rate[which, i]
    due = due_day[which, i]
    overdue_from = overdue_week[which, i]
    counts_days = is_new_active[which, i]
    write_off_from = due + write_off_days if crosses[which, i] else np.iinfo(np.int64).max
    # Without a branch (LLVM vectorizes it): the week of each path, days to pay, write-offs.
    for j in range(width):
        value = values[j]
        window[j] = week_of[min(max(value, first_edge), last_edge + 1) - first_edge]
        days_sum[which, j] += counts_days * min(value - due, days_to_pay_cap)
        write_offs[which, j] += money * (value > write_off_from)
    for j in range(width):
        leaves_open[which, j, window[j]] += money
        leaves_overdue[which, j, max(window[j], overdue_from)] += money
    if rate > 0:
        for j in range(width):
            if took[j]:
                discount_by_week[which, j, window[j]] += money * rate
                discount_cost[which, j] += money * rate


@njit(parallel=True, cache=True, nogil=True)
def simulate_chunk(  # noqa: PLR0913, PLR0915, PLR0912, C901
    keys: np.ndarray,  # (P, STREAMS) uint64
    replicate: np.ndarray,  # (P,) int64
    tables: np.ndarray,  # (R, lots, levels) int32: no-touch delay quantiles
    lot: np.ndarray,  # (n,) int64
    draw_id: np.ndarray,  # (n,) int64: the invoice's key in the random streams
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
    touch_day: np.ndarray,  # (T,) int32
    touch_key: np.ndarray,  # (T,) int32: draw key (invoice × step day)
    touch_column: np.ndarray,  # (T,) int32: column of the effect tables; -1 - column = no write
    day_values: np.ndarray,  # (D,) int64, both plans one after the other
    day_starts: np.ndarray,  # (D + 1,) int64, absolute rows of touch_*
    plan_days: np.ndarray,  # (2, 2) int64: first and end day index of each plan
    invoice_starts: np.ndarray,  # (2, n + 1) int64: first row of each invoice (of by_invoice with a capacity)
    by_invoice: np.ndarray,  # (T,) int32: with a capacity, the plan's rows regrouped by invoice
    touch_day_index: np.ndarray,  # (T,) int32: entry in day_values of each row (of by_invoice with a capacity)
    capacity: np.ndarray,  # (2,) int64, -1 = none
    response_threshold: np.ndarray,  # (R, columns) uint64: a touch responds when its 53 random bits are below
    pull_mean: np.ndarray,  # (R, columns) mean days a response pulls payment forward
    same: np.ndarray,  # (n,) bool: the invoice and its touches are identical under A and B
    days_to_pay_cap: int,
    write_off_days: int,
    touch_days: int,
    block_size: int,
    pay_buffer: np.ndarray,  # (blocks, 2 * n * block_size) int32 scratch when a plan has a capacity, else (blocks, 0)
    takes_buffer: np.ndarray,  # the same shape, bool
    metrics: np.ndarray,  # out (P, 2, N_METRICS)
    weekly: np.ndarray,  # out (P, 2, 3, weeks): cash, overdue balance, DSO
    touches_per_day: np.ndarray,  # out (blocks, 2, touch_days + 1): touches sent per day, summed over the block's paths
) -> None:
    """Simulate paths ``keys`` under both plans; write per-path outcomes to the out arrays.

    One pass over the invoices draws each one's no-touch payment day (shared by both plans)
    and, for a plan without a capacity, runs its touches and adds its outcome at once (an
    invoice identical under both plans, when neither has a capacity, is simulated once and
    counted for both). A plan with a capacity keeps every payment day of the block and runs
    the day-by-day send loop afterwards.
    """
    n_paths = keys.shape[0]
    n = lot.shape[0]
    levels = tables.shape[2]
    level_shift = np.uint64(64 - int(np.log2(levels)))
    weeks = edges.shape[0]
    first_edge, last_edge = edges[0], edges[weeks - 1]
    # The week a day falls in (weeks: after the horizon), for days first_edge .. last_edge + 1.
    week_of = np.searchsorted(edges, np.arange(first_edge, last_edge + 2), side="left")
    n_blocks = (n_paths + block_size - 1) // block_size
    capped = capacity >= 0
    share_same = not capped[0] and not capped[1]
    most_touches = 0  # touch rows of the invoice with the most
    for which in range(2):
        for i in range(n):
            most_touches = max(most_touches, invoice_starts[which, i + 1] - invoice_starts[which, i])
    kept = n if (capped[0] or capped[1]) else 0  # rows of the payment days kept for the send loop
    days_count = np.zeros(2, dtype=np.int64)
    # What joins the open and the overdue balance each week, the same on every path.
    joins_open = np.zeros((2, weeks + 1))
    joins_overdue = np.zeros((2, weeks + 1))
    for which in range(2):
        for i in range(n):
            days_count[which] += is_new_active[which, i]
            joins_open[which, issued_week[i]] += amount[which, i]
            joins_overdue[which, overdue_week[which, i]] += amount[which, i]
    for block in prange(n_blocks):
        p0 = block * block_size
        width = min(block_size, n_paths - p0)
        rep = np.empty(width, dtype=np.int64)
        k0, k1, k2 = np.empty(width, dtype=np.uint64), np.empty(width, dtype=np.uint64), np.empty(width, dtype=np.uint64)
        k3, k4 = np.empty(width, dtype=np.uint64), np.empty(width, dtype=np.uint64)
        for j in range(width):
            rep[j] = replicate[p0 + j]
            k0[j], k1[j], k2[j], k3[j], k4[j] = keys[p0 + j, 0], keys[p0 + j, 1], keys[p0 + j, 2], keys[p0 + j, 3], keys[p0 + j, 4]
        # This block's payment days and discounts (a plan with a capacity: every row written
        # in pass 1 before the send loop reads it), in memory the caller reuses chunk after chunk.
        pay = pay_buffer[block, : 2 * kept * width].reshape((2, kept, width))
        takes = takes_buffer[block, : 2 * kept * width].reshape((2, kept, width))
        delay = np.empty(width, dtype=np.int64)
        values = np.empty(width, dtype=np.int64)
        took = np.zeros(width, dtype=np.bool_)
        count = np.zeros(width, dtype=np.int64)
        sent_total = np.zeros((2, width), dtype=np.int64)
        over_capacity = np.zeros((2, width), dtype=np.int64)
        leaves_open = np.zeros((2, width, weeks + 1))
        leaves_overdue = np.zeros((2, width, weeks + 1))
        discount_by_week = np.zeros((2, width, weeks + 1))
        days_sum = np.zeros((2, width))
        discount_cost = np.zeros((2, width))
        write_offs = np.zeros((2, width))
        per_day = touches_per_day[block]
        stopped_at = np.zeros(most_touches + 1, dtype=np.int64)
        stop = np.empty(width, dtype=np.int64)
        # Each path's response thresholds (its replicate's), laid out path after path per column.
        threshold_by_column = np.empty((response_threshold.shape[1], width), dtype=np.uint64)
        for column in range(response_threshold.shape[1]):
            for j in range(width):
                threshold_by_column[column, j] = response_threshold[rep[j], column]
        window = np.empty(width, dtype=np.int64)
        pull_by_column = np.empty((pull_mean.shape[1], width))
        for column in range(pull_mean.shape[1]):
            for j in range(width):
                pull_by_column[column, j] = pull_mean[rep[j], column]
        # -- pass 1: no-touch payment day, discounts; plans without capacity to the end ----
        for i in range(n):
            invoice_lot = lot[i]
            key_mix = np.uint64(draw_id[i]) * GAMMA
            for j in range(width):  # vectorized: the hashes
                delay[j] = np.int64(_mix(k0[j] + key_mix) >> level_shift)
            for j in range(width):  # the table lookups
                delay[j] = tables[rep[j], invoice_lot, delay[j]]
            both = share_same and same[i]
            for which in range(2):
                if which == 1 and both:
                    break
                last = 1 if both else which  # plans that get this outcome: which .. last
                rate = discount_rate[which, i]
                due = due_day[which, i]
                floor = floor_day[i]
                for j in range(width):
                    d = delay[j]
                    values[j] = max(never if d >= never else due + d, floor)
                    took[j] = False
                if rate > 0:  # an early-payment discount: some paths take it
                    for j in range(width):
                        if values[j] >= never:
                            continue
                        threshold = min(0.95, take_rate[rep[j], segment[i]] * rate / max(measured_rate, 1e-9))
                        if _uniform(k1[j], draw_id[i]) < threshold:
                            took[j] = True
                            day = np.int64((_bits(k2[j], draw_id[i]) >> SHIFT_32) * np.uint64(10) >> SHIFT_32)
                            values[j] = min(values[j], issue_day[i] + day)
                if capped[which]:
                    for j in range(width):
                        pay[which, i, j] = values[j]
                        takes[which, i, j] = took[j]
                    continue
                # -- no capacity: the invoice's touches in day order, then its outcome ------
                first_touch, end_touch = invoice_starts[which, i], invoice_starts[which, i + 1]
                if first_touch < end_touch:
                    n_touches = end_touch - first_touch
                    inside = 0  # the invoice's touches inside the horizon (its first rows)
                    for k in range(n_touches + 1):
                        stopped_at[k] = 0
                        if k < n_touches and touch_day[first_touch + k] <= touch_days:
                            inside += 1
                    # Touch by touch, every path of the block at once, without a branch that
                    # depends on the path (whether it is still unpaid, whether it responds);
                    # the responding paths are bits of one word, their pull-forward drawn afterwards.
                    for j in range(width):
                        stop[j] = end_touch
                    for t in range(first_touch, end_touch):
                        day_value = touch_day[t]
                        column = touch_column[t]
                        writes = column >= 0
                        if not writes:
                            column = -1 - column
                        key_mix = np.uint64(touch_key[t]) * GAMMA
                        unpaid = 0
                        responded = np.uint64(0)  # bit j: path j responded
                        for j in range(width):
                            still = values[j] > day_value
                            unpaid += still
                            stop[j] = min(stop[j], t + still * (end_touch - t))  # the first touch not sent
                            hit = still & ((_mix(k3[j] + key_mix) >> SHIFT_11) < threshold_by_column[column, j])
                            responded |= np.uint64(hit) << np.uint64(j)
                        if unpaid == 0:
                            break  # paid on every path: no later touch is sent
                        if not writes:
                            continue  # the invoice's later touch that day decides
                        while responded:
                            j = np.int64(_lowest_bit(responded))
                            responded &= responded - np.uint64(1)
                            current = values[j]
                            pull = np.int64(_exponential(k4[j], touch_key[t]) * pull_by_column[column, j] + 0.5)
                            values[j] = min(current, max(current - pull, day_value + 1))
                    for j in range(width):
                        stopped_at[stop[j] - first_touch] += 1
                        for w in range(which, last + 1):
                            sent_total[w, j] += min(stop[j] - first_touch, inside)
                    # Touch k was sent on the paths that stopped after it.
                    sending = 0
                    for k in range(n_touches - 1, -1, -1):
                        sending += stopped_at[k + 1]
                        day_value = touch_day[first_touch + k]
                        if day_value <= touch_days:
                            for w in range(which, last + 1):
                                per_day[w, day_value] += sending
                for w in range(which, last + 1):
                    _add_outcome(
                        i, w, values, took, width, amount, discount_rate, due_day, overdue_week, is_new_active, crosses,
                        first_edge, last_edge, week_of, days_to_pay_cap, write_off_days, leaves_open,
                        leaves_overdue, discount_by_week, days_sum, discount_cost, write_offs, window,
                    )
        # -- pass 2, plans with a capacity: day by day, in priority order, up to the capacity --
        for which in range(2):
            if not capped[which]:
                continue
            cap = capacity[which]
            # An invoice paid on every path of the block stays paid: skip its touches.
            settled = np.zeros(n, dtype=np.bool_)
            # The last row each path sent on each day (rows after it that were due went over
            # the capacity); once every path is full the rest of the day is not read.
            last_sent = np.empty((day_values.shape[0], width), dtype=np.int64)
            for d_index in range(plan_days[which, 0], plan_days[which, 1]):
                day_value = day_values[d_index]
                first_row, end_row = day_starts[d_index], day_starts[d_index + 1]
                full = 0
                for j in range(width):
                    count[j] = 0
                    last_sent[d_index, j] = end_row
                    if cap == 0:
                        last_sent[d_index, j] = first_row - 1
                        full += 1
                for t in range(first_row, end_row):
                    if full == width:
                        break
                    if t + PREFETCH_ROWS < end_row:
                        _prefetch(pay, which, touch_invoice[t + PREFETCH_ROWS])
                    inv = touch_invoice[t]
                    if settled[inv]:
                        continue
                    column = touch_column[t]
                    writes = column >= 0
                    if not writes:
                        column = -1 - column
                    key = touch_key[t]
                    key_mix = np.uint64(key) * GAMMA
                    # Every path at once, without a branch that depends on the path; the
                    # responses' pull-forward is drawn afterwards.
                    unpaid = 0
                    responded = np.uint64(0)  # bit j: path j responded
                    for j in range(width):
                        still = pay[which, inv, j] > day_value
                        unpaid += still
                        send = still & (count[j] < cap)
                        count[j] += send
                        now_full = send & (count[j] == cap)
                        last_sent[d_index, j] = t if now_full else last_sent[d_index, j]
                        full += now_full
                        hit = send & ((_mix(k3[j] + key_mix) >> SHIFT_11) < threshold_by_column[column, j])
                        responded |= np.uint64(hit) << np.uint64(j)
                    if unpaid == 0:
                        settled[inv] = True
                    if not writes:
                        continue  # the invoice's later touch that day decides
                    while responded:
                        j = np.int64(_lowest_bit(responded))
                        responded &= responded - np.uint64(1)
                        current = pay[which, inv, j]
                        pull = np.int64(_exponential(k4[j], key) * pull_by_column[column, j] + 0.5)
                        pay[which, inv, j] = min(current, max(current - pull, day_value + 1))
                if day_value <= touch_days:
                    for j in range(width):
                        sent_total[which, j] += count[j]
                        per_day[which, day_value] += count[j]
            # Touches over the capacity: rows after the day's last sent one whose invoice was
            # unpaid that day. A payment day only moves to after the day of the touch that
            # moved it, so "unpaid on day d" is "final payment day after d": counted here,
            # invoice by invoice.
            first_over = np.empty(day_values.shape[0], dtype=np.int64)  # no path went over before this row
            for d_index in range(plan_days[which, 0], plan_days[which, 1]):
                first_over[d_index] = day_starts[d_index + 1]
                for j in range(width):
                    first_over[d_index] = min(first_over[d_index], last_sent[d_index, j] + 1)
            for i in range(n):
                for q in range(invoice_starts[which, i], invoice_starts[which, i + 1]):
                    t = by_invoice[q]
                    d_index = touch_day_index[q]
                    if t < first_over[d_index]:
                        continue
                    day_value = day_values[d_index]
                    if day_value > touch_days:
                        continue  # counted only inside the horizon, like the touches sent
                    for j in range(width):
                        if t > last_sent[d_index, j] and pay[which, i, j] > day_value:
                            over_capacity[which, j] += 1
            for i in range(n):
                for j in range(width):
                    values[j] = pay[which, i, j]
                    took[j] = takes[which, i, j]
                _add_outcome(
                    i, which, values, took, width, amount, discount_rate, due_day, overdue_week, is_new_active, crosses,
                    first_edge, last_edge, week_of, days_to_pay_cap, write_off_days, leaves_open,
                    leaves_overdue, discount_by_week, days_sum, discount_cost, write_offs, window,
                )
        # -- outcomes of each path ------------------------------------------------------------
        for which in range(2):
            for j in range(width):
                p = p0 + j
                open_ar = 0.0
                overdue = 0.0
                total_cash = 0.0
                for k in range(weeks):
                    open_ar += joins_open[which, k] - leaves_open[which, j, k]
                    overdue += joins_overdue[which, k] - leaves_overdue[which, j, k]
                    week_cash = leaves_open[which, j, k] - discount_by_week[which, j, k]
                    total_cash += week_cash
                    weekly[p, which, 0, k] = week_cash
                    weekly[p, which, 1, k] = overdue
                    weekly[p, which, 2, k] = open_ar / sales[which, k] * 91 if sales[which, k] > 0 else np.nan
                metrics[p, which, 0] = total_cash
                metrics[p, which, 1] = days_sum[which, j] / days_count[which] if days_count[which] > 0 else np.nan
                metrics[p, which, 2] = weekly[p, which, 1, weeks - 1]
                metrics[p, which, 3] = weekly[p, which, 2, weeks - 1]
                metrics[p, which, 4] = sent_total[which, j]
                metrics[p, which, 5] = over_capacity[which, j]
                metrics[p, which, 6] = discount_cost[which, j]
                metrics[p, which, 7] = write_offs[which, j]


def response_thresholds(response: np.ndarray) -> np.ndarray:
    """Integer form of the response probabilities: a uniform ``x * 2**-53`` (``x`` the top 53
    random bits) is below ``q`` exactly when ``x < ceil(q * 2**53)`` (NaN never responds)."""
    scaled = np.ceil(np.clip(np.nan_to_num(response, nan=0.0), 0.0, 1.0) * 9007199254740992.0)
    return scaled.astype(np.uint64)


def block_size(n_paths: int, threads: int) -> int:
    """Paths per block: at most ``BLOCK``, and a whole number of blocks per thread."""
    blocks = -(-n_paths // BLOCK)
    blocks = -(-blocks // threads) * threads
    return max(1, -(-n_paths // blocks))


@njit(cache=True, nogil=True)
def touch_layout(  # noqa: PLR0913
    book_invoice: np.ndarray,  # (T,) a plan's rows in send order: the invoice (book numbering)
    day: np.ndarray,  # (T,) send day
    step: np.ndarray,  # (T,) the plan's step
    day_starts: np.ndarray,  # (D + 1,) the plan's first row of each send day
    position: np.ndarray,  # (n,) each book invoice's number in the kernel's order
    segment: np.ndarray,  # (n,) each book invoice's lateness band
    step_slot: np.ndarray,  # per step: its draw slot (steps on the same day from due share one)
    n_slots: int,
    step_column: np.ndarray,  # per step: its hand-set effect column, or -1 - its (channel, tone) cell
    n_cells: int,
    capped: bool,
    offset: int,  # rows of the plans before this one in the out arrays
    day_offset: int,  # send days of the plans before this one
    touch_invoice: np.ndarray,  # out (all rows,) int32
    touch_day: np.ndarray,  # out int32
    touch_key: np.ndarray,  # out int32
    touch_column: np.ndarray,  # out int32
    by_invoice: np.ndarray,  # out int32
    touch_day_index: np.ndarray,  # out int32
    invoice_starts: np.ndarray,  # out (n + 1,) int64
) -> None:
    """One plan's rows as :func:`simulate_chunk` reads them, written at ``offset``: in send
    order with a capacity, else grouped by invoice (a stable counting sort: days stay in
    order). ``by_invoice``: with a capacity, the send-order rows regrouped by invoice, else
    the rows themselves; ``touch_day_index``: the send day of each regrouped row;
    ``invoice_starts``: the first regrouped row of each invoice.

    A row's draw key is (invoice, slot): the same touch gets the same draws under A and B. Its
    column is the step's hand-set one or the invoice's band × the step's cell; when the
    invoice has a later touch on the same day (the next row in send order), it is stored as
    ``-1 - column``: sent and counted, but the day's last touch decides the payment day.
    """
    n = position.shape[0]
    rows = book_invoice.shape[0]
    for i in range(n + 1):
        invoice_starts[i] = 0
    for t in range(rows):
        invoice_starts[position[book_invoice[t]] + 1] += 1
    invoice_starts[0] = offset
    for i in range(n):
        invoice_starts[i + 1] += invoice_starts[i]
    fill = invoice_starts[:n].copy()
    send_day = 0
    for t in range(rows):
        while day_starts[send_day + 1] <= t:
            send_day += 1
        book_i = book_invoice[t]
        i = position[book_i]
        grouped = fill[i]
        fill[i] += 1
        s = step[t]
        column = step_column[s] if step_column[s] >= 0 else segment[book_i] * n_cells - 1 - step_column[s]
        if t + 1 < rows and book_invoice[t + 1] == book_i and day[t + 1] == day[t]:
            column = -1 - column
        target = offset + t if capped else grouped
        touch_invoice[target] = i
        touch_day[target] = day[t]
        touch_key[target] = book_i * n_slots + step_slot[s]
        touch_column[target] = column
        by_invoice[grouped] = offset + t if capped else grouped
        touch_day_index[grouped] = day_offset + send_day


@njit(parallel=True, cache=True)
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
    for r in prange(n_boot):
        cdf = np.empty(width)
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


@njit(inline="always", cache=True)
def _step_day(due: int, days_from_due: int, weekday_of_day_0: int) -> int:
    """``due + days_from_due`` moved off Saturday/Sunday (to the Monday)."""
    day = due + days_from_due
    weekday = ((weekday_of_day_0 + day) % 7 + 7) % 7
    if weekday == 5:
        return day + 2
    if weekday == 6:
        return day + 1
    return day


@njit(inline="always", cache=True)
def _step_kept(  # noqa: PLR0913
    day: int, issue: int, due: int, is_new: bool, end_day: int, horizon_end: int, days_to_pay_cap: int
) -> bool:
    if day <= 0 or day < issue or day > end_day:
        return False
    # horizon_end < 0: every touch stays (a plan with a capacity)
    return horizon_end < 0 or day <= horizon_end or (is_new and day < due + days_to_pay_cap)


@njit(cache=True, nogil=True)
def plan_rows(  # noqa: PLR0913
    due: np.ndarray,  # (n,) due day under the plan
    issue: np.ndarray,  # (n,) issue day
    is_new: np.ndarray,  # (n,) bool
    segment: np.ndarray,  # (n,) the invoice's business segment (row of step_starts)
    active: np.ndarray,  # (n,) bool: exists under the plan
    by_rank: np.ndarray,  # (n,) invoices in priority order
    step_starts: np.ndarray,  # (segments + 1,) the segment's steps are step_days[start:end]
    step_days: np.ndarray,  # days from due of each step
    weekday_of_day_0: int,
    end_day: int,
    horizon_end: int,  # -1: keep touches after the horizon
    days_to_pay_cap: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A plan's touch rows in send order — by day, then priority rank, then step — as
    (invoice, day, step index), and the days with rows and the first row of each (one more
    entry: the row count): a counting sort by day of the rows generated in rank order.
    A row is kept when its day is after day 0, on or after the issue, at most ``end_day``,
    and (``horizon_end`` >= 0) inside the horizon or, for a new invoice, before its
    days-to-pay cap."""
    counts = np.zeros(end_day + 2, dtype=np.int64)
    for i in range(due.shape[0]):
        if not active[i]:
            continue
        for k in range(step_starts[segment[i]], step_starts[segment[i] + 1]):
            day = _step_day(due[i], step_days[k], weekday_of_day_0)
            if _step_kept(day, issue[i], due[i], is_new[i], end_day, horizon_end, days_to_pay_cap):
                counts[day + 1] += 1
    send_days = 0
    for d in range(end_day + 1):
        send_days += counts[d + 1] > 0
        counts[d + 1] += counts[d]
    total = counts[end_day + 1]
    day_values = np.empty(send_days, dtype=np.int64)
    day_starts = np.empty(send_days + 1, dtype=np.int64)
    day_starts[send_days] = total
    k = 0
    for d in range(end_day + 1):
        if counts[d + 1] > counts[d]:
            day_values[k], day_starts[k] = d, counts[d]
            k += 1
    invoice = np.empty(total, dtype=np.int64)
    days = np.empty(total, dtype=np.int64)
    step = np.empty(total, dtype=np.int64)
    for position in range(by_rank.shape[0]):
        i = by_rank[position]
        if not active[i]:
            continue
        for k in range(step_starts[segment[i]], step_starts[segment[i] + 1]):
            day = _step_day(due[i], step_days[k], weekday_of_day_0)
            if _step_kept(day, issue[i], due[i], is_new[i], end_day, horizon_end, days_to_pay_cap):
                row = counts[day]
                counts[day] += 1
                invoice[row], days[row], step[row] = i, day, k
    return invoice, days, step, day_values, day_starts


@njit(parallel=True, cache=True)
def weighted_counts(key: np.ndarray, is_event: np.ndarray, weights: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per replicate ``r``: the weights of the events and of all rows per ``key`` (the same
    sums, in the same order, as ``np.bincount(key[is_event], weights[r][is_event])`` and
    ``np.bincount(key, weights[r])``)."""
    n_boot = weights.shape[0]
    events = np.zeros((n_boot, size))
    leaving = np.zeros((n_boot, size))
    for r in prange(n_boot):
        for k in range(key.shape[0]):
            w = weights[r, k]
            leaving[r, key[k]] += w
            if is_event[k]:
                events[r, key[k]] += w
    return events, leaving


@njit(parallel=True, cache=True)
def bootstrap_cell_counts(
    weights: np.ndarray, customer: np.ndarray, cell: np.ndarray, responded: np.ndarray, n_cells: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per bootstrap replicate ``r``: touches and responses per cell, each touch weighted by
    its customer's ``weights[r, customer]`` (the same sums as ``np.bincount`` per replicate)."""
    n_boot = weights.shape[0]
    sent = np.zeros((n_boot, n_cells))
    got = np.zeros((n_boot, n_cells))
    for r in prange(n_boot):
        for k in range(cell.shape[0]):
            w = weights[r, customer[k]]
            sent[r, cell[k]] += w
            if responded[k]:
                got[r, cell[k]] += w
    return sent, got


@njit(parallel=True, cache=True)
def inverse_probability_weights(  # noqa: PLR0913
    weights: np.ndarray,  # (R, customers) bootstrap weights
    response: np.ndarray,  # (R, S, channels, tones) response probability (0 where never tried)
    segment: np.ndarray,  # per touch on a history invoice: its band, channel, tone, customer, invoice
    channel: np.ndarray,
    tone: np.ndarray,
    customer: np.ndarray,
    invoice: np.ndarray,
    responded: np.ndarray,
    invoice_customer: np.ndarray,  # (H,) customer of each history invoice
    hopeless: np.ndarray,  # (H,) never had a chance to respond: weight 1
    responded_invoice: np.ndarray,  # (H,) got a response: weight 0
    max_weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per replicate: each history invoice's bootstrap weight and its inverse-probability
    weight (1 / P(no response to the touches it was sent), the touch probabilities scaled by
    the customer's own observed / expected responses shrunk with 5 pseudo-responses, each
    capped at 0.95; the weight capped at ``max_weight``)."""
    n_boot, n_customers = weights.shape
    n_invoices = invoice_customer.shape[0]
    n_touches = segment.shape[0]
    skip = hopeless | responded_invoice
    ipw = np.empty((n_boot, n_invoices))
    plain = np.empty((n_boot, n_invoices))
    # Each customer's touches per (channel, tone) cell and responses: a customer's expected
    # responses in a replicate are then a sum over its cells, not over its touches.
    n_tones = response.shape[3]
    customer_band = np.full(n_customers, -1, dtype=np.int64)
    cell_touches = np.zeros((n_customers, response.shape[2] * n_tones))
    customer_responses = np.zeros(n_customers)
    for k in range(n_touches):
        c = customer[k]
        if customer_band[c] >= 0 and customer_band[c] != segment[k]:
            raise ValueError("a customer's touches are in two lateness bands")
        customer_band[c] = segment[k]
        cell_touches[c, channel[k] * n_tones + tone[k]] += 1.0
        customer_responses[c] += responded[k]
    for r in prange(n_boot):
        expected = np.zeros(n_customers)
        got = np.zeros(n_customers)
        for c in range(n_customers):
            band = customer_band[c]
            if band < 0:
                continue
            total = 0.0
            for cell in range(cell_touches.shape[1]):
                total += cell_touches[c, cell] * response[r, band, cell // n_tones, cell % n_tones]
            expected[c] = weights[r, c] * total
            got[c] = weights[r, c] * customer_responses[c]
        no_response = np.ones(n_invoices)  # P(no response to any of the invoice's touches)
        for k in range(n_touches):
            if skip[invoice[k]]:
                continue  # its weight does not use the product
            factor = (got[customer[k]] + 5.0) / (expected[customer[k]] + 5.0)
            p = min(response[r, segment[k], channel[k], tone[k]] * factor, 0.95)  # read again: no per-touch array
            p = min(max(p, 0.0), 0.95)
            no_response[invoice[k]] *= 1.0 - p
        for h in range(n_invoices):
            w = weights[r, invoice_customer[h]]
            plain[r, h] = w
            if hopeless[h]:
                inverse = 1.0
            elif no_response[h] * max_weight <= 1.0:
                inverse = max_weight
            else:
                inverse = 1.0 / no_response[h]
            ipw[r, h] = 0.0 if responded_invoice[h] else w * inverse
    return ipw, plain


def compile_all() -> None:
    """Call every kernel once on tiny inputs of the types the product passes, so numba compiles
    them (about 30 s, once per machine: the result is cached in ``__pycache__``) or loads them
    from its cache (under a second) before anyone waits on a forecast or a simulation. The
    server runs this in the background when it starts (:mod:`dashboard.ui.serve`)."""
    i64, none_i, none_t = np.int64, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
    keys = stream_keys(np.random.default_rng(0), 1)
    window_cash(
        stream_keys(np.random.default_rng(0), 1, streams=2), np.zeros((1, 256), dtype=np.uint8), np.zeros(1, dtype=i64),
        np.ones(1), np.zeros(1, dtype=i64), np.zeros(1, dtype=i64), np.zeros(1, dtype=np.bool_), np.zeros((1, 1, 1)),
    )
    plan_rows(
        np.array([5]), np.array([-10]), np.array([True]), np.zeros(1, dtype=i64), np.ones(1, dtype=np.bool_),
        np.zeros(1, dtype=i64), np.array([0, 1]), np.array([0]), 6, 30, -1, 120,
    )
    one_i = np.zeros(1, dtype=i64)
    touch_layout(
        one_i, one_i, one_i, np.array([0, 1]), one_i, one_i, one_i, 1, np.array([-1]), 15, True, 0, 0,
        *(np.zeros(1, dtype=np.int32) for _ in range(6)), np.zeros(2, dtype=i64),
    )
    delay_tables(np.ones((1, 1, 3)), np.zeros(1, dtype=i64), np.zeros(1, dtype=i64), -1, 10**6, 4)
    weights = np.ones((1, 1))
    bootstrap_cell_counts(weights, np.zeros(1, dtype=i64), np.zeros(1, dtype=i64), np.zeros(1, dtype=np.bool_), 1)
    inverse_probability_weights(
        weights, np.zeros((1, 1, 1, 1)), *(np.zeros(1, dtype=i64) for _ in range(5)), np.zeros(1, dtype=np.bool_),
        np.zeros(1, dtype=i64), np.zeros(1, dtype=np.bool_), np.zeros(1, dtype=np.bool_), 20.0,
    )
    weighted_counts(np.zeros(1, dtype=i64), np.zeros(1, dtype=np.bool_), weights, 1)
    two = np.zeros((2, 1), dtype=i64)
    simulate_chunk(
        keys, np.zeros(1, dtype=i64), np.zeros((1, 1, 4), dtype=np.int32), np.zeros(1, dtype=i64),
        np.zeros(1, dtype=i64), np.zeros(1, dtype=i64), np.zeros(1, dtype=i64), np.ones(1, dtype=i64), np.zeros((1, 1)),
        0.02, 10**6, two, np.zeros((2, 1)), np.ones((2, 1)), np.zeros((2, 1), dtype=np.bool_),
        np.zeros((2, 1), dtype=np.bool_), two, np.zeros(1, dtype=i64), np.ones((2, 1)), np.array([7]), none_t, none_t,
        none_t, none_t, none_i, np.zeros(1, dtype=i64), np.zeros((2, 2), dtype=i64), np.zeros((2, 2), dtype=i64),
        none_t, none_t, np.array([-1, 0]), np.zeros((1, 1), dtype=np.uint64), np.zeros((1, 1)),
        np.zeros(1, dtype=np.bool_), 120, 240, 7, 1, np.zeros((1, 2), dtype=np.int32), np.zeros((1, 2), dtype=np.bool_),
        np.zeros((1, 2, N_METRICS)), np.zeros((1, 2, 3, 1)),
        np.zeros((1, 2, 8), dtype=i64),
    )
