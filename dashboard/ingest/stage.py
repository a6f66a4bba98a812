"""A load's typed rows, staged in the load's own transaction and checked there.

A file is read and typed chunk by chunk (:func:`dashboard.ingest.validate.prepare_rows`); each
chunk's good rows are kept in memory up to :data:`SPILL_MEMORY_BYTES` and beyond that spilled to
Parquet parts beside the store (:class:`Spill`), so a load of ten million rows holds one chunk in
Python at a time (and a part is written in the background while the next chunk is typed). In
the load's transaction DuckDB reads the rows (the frames held, or the parts)
as the staged rows (:class:`Stage`) — natively, out of core when it must, which appending chunk
after chunk from Python into an open transaction is not. What needs the
whole file — numbers several customers use, voided zero copies, repeated rows, rows that
contradict each other or the store, payments that overpay — is then one SQL pass over the
staged rows, and the rows that pass are inserted from there. Nothing here commits: a refusal
raised anywhere rolls the whole transaction back.
"""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from dashboard.errors import StoreError, ValidationError
from dashboard.ingest import normalize as nz
from dashboard.ingest.read import ROW_COLUMN
from dashboard.ingest.validate import (
    ENTITY,
    KEYS,
    NUMBER_CUSTOMER_SEPARATOR,
    PROBLEM,
    PreparedRows,
    contradiction_message,
)
from dashboard.store import disk_full_message, is_disk_full, release

STAGE = "recoup_stage"
PROBLEMS = "recoup_problems"  # row, problem, raw (JSON of the row as read)
EXCLUDED = "recoup_excluded"  # row, reason (drafts, voids, voided copies: not receivables)
SKIPPED = "recoup_skipped"  # rows already in the store with the same values
SPILLED_ROWS = "recoup_spilled_rows"  # the typed rows held in memory, as DuckDB reads them
#: Typed rows a load holds in memory before it spills (a million canonical invoices take about
#: 106 MB): a smaller file never writes and re-reads its rows through the disk. A bigger one
#: writes what was held and every later chunk to Parquet parts, so its memory stays that of
#: one chunk once it spills.
SPILL_MEMORY_BYTES = 128 * 1024 * 1024
#: The spill is scratch, read once and removed: written uncompressed (lz4 costs CPU to write
#: and again to read, for a file that lives a few seconds).
SPILL_COMPRESSION = "uncompressed"


@dataclass
class Spill:
    """A load's typed chunks, before its transaction: good rows held in memory while they fit
    :data:`SPILL_MEMORY_BYTES`, else as Parquet parts in a scratch folder (beside the store);
    problems and excluded rows (small) in memory."""

    folder: Path
    store_path: Path = Path(":memory:")
    parts: list[Path] = field(default_factory=list)
    held: list[pl.DataFrame] = field(default_factory=list)  # good rows, while nothing went to disk
    held_bytes: int = 0
    problems: list[pl.DataFrame] = field(default_factory=list)
    excluded: list[pl.DataFrame] = field(default_factory=list)
    rows_read: int = 0
    # a hash of each good row's id (8 bytes a row, held or spilled), until finish() has compared them
    key_hashes: list[pl.Series] = field(default_factory=list)
    distinct: bool | None = None  # finish(): whether no two good rows can share an id

    hold: bool = True  # False: every chunk goes to disk (a file known to be over the budget)
    # one part written in the background while the next chunk is typed (at most one in flight)
    _writer: ThreadPoolExecutor | None = None
    _pending: Future[None] | None = None

    @classmethod
    def beside(cls, store_path: Path, *, source_bytes: int | None = None) -> Spill:
        """A scratch folder next to the store file (the same disk), or a temporary one.
        ``source_bytes``: the size of a file streamed from disk; one over the memory budget
        spills from its first chunk (its typed rows take about as much as its text)."""
        parent = store_path.parent if str(store_path) != ":memory:" else None
        hold = source_bytes is None or source_bytes <= SPILL_MEMORY_BYTES
        return cls(Path(tempfile.mkdtemp(prefix=".recoup-load-", dir=parent)), store_path, hold=hold)

    def add(self, prepared: PreparedRows, source: pl.DataFrame) -> None:
        """One chunk: its good rows held (or, over the budget, to a Parquet part), its problems
        (with the row as read) and its excluded rows kept."""
        self.rows_read += source.height
        good = prepared.frame.join(prepared.problems.select(ROW_COLUMN), on=ROW_COLUMN, how="anti") if prepared.problems.height else prepared.frame
        size = good.estimated_size()
        keys = list(KEYS[prepared.table])
        self.key_hashes.append(good.select(pl.struct(keys).hash() if len(keys) > 1 else pl.col(keys[0]).hash()).to_series())
        if self.hold and not self.parts and self.held_bytes + size <= SPILL_MEMORY_BYTES:
            self.held.append(good)
            self.held_bytes += size
        else:  # over the budget: what was held goes to disk first (rows stay in file order)
            for frame in [*self.held, good]:
                self._write_part(frame)
            self.held, self.held_bytes = [], 0
        if prepared.problems.height:
            columns = [c for c in source.columns if not c.startswith("__")]
            self.problems.append(
                source.join(prepared.problems, on=ROW_COLUMN, how="inner").select(
                    pl.col(ROW_COLUMN).alias("row"),
                    pl.col(PROBLEM).alias("problem"),
                    pl.struct(pl.col(columns).cast(pl.String)).struct.json_encode().alias("raw"),
                )
            )
        if prepared.excluded.height:
            self.excluded.append(prepared.excluded.select(pl.col(ROW_COLUMN).alias("row"), pl.col(PROBLEM).alias("reason")))

    def finish(self) -> None:
        """After the last chunk, before the load's transaction: wait for the part being written
        (raising what went wrong there), and compare the ids' hashes once, then let them go
        (8 bytes a row: 80 MB at ten million rows, released before DuckDB's work starts)."""
        self._wait()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        if self.distinct is None:
            self.distinct = self._hashes_distinct()
            self.key_hashes = []

    def _hashes_distinct(self) -> bool:
        if not self.key_hashes:
            return False
        hashes = pl.concat(self.key_hashes)
        return hashes.n_unique() == hashes.len()

    def ids_distinct(self) -> bool:
        """Whether no two good rows can share an id: their ids' hashes all differ (equal ids
        hash alike, so this never misses a repeat; a collision only means the exact check runs)."""
        self.finish()
        return bool(self.distinct)

    def _write_part(self, frame: pl.DataFrame) -> None:
        """Write ``frame`` as the next part, in the background: the previous part is finished
        first, so at most one chunk waits in memory for the disk while the next is typed."""
        self._wait()
        part = self.folder / f"{len(self.parts):06d}.parquet"
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recoup-spill")
        self._pending = self._writer.submit(self._write, frame, part)
        self.parts.append(part)

    def _write(self, frame: pl.DataFrame, part: Path) -> None:
        try:
            frame.write_parquet(part, compression=SPILL_COMPRESSION, statistics=False)
        except Exception as exc:
            if is_disk_full(exc):  # the spill is beside the store: its disk is full, nothing written yet
                raise StoreError(disk_full_message(self.store_path)) from exc
            raise

    def _wait(self) -> None:
        """Finish the part being written; its error (a full disk ...) is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def rows_sql(self, cur: duckdb.DuckDBPyConnection) -> str:
        """What DuckDB reads the good rows from: the Parquet parts, or the frames held
        (registered on ``cur`` as :data:`SPILLED_ROWS`, without a copy)."""
        self.finish()
        if self.parts:
            return "read_parquet([" + ", ".join(f"'{p}'" for p in self.parts) + "])"
        held = pl.concat(self.held, how="vertical", rechunk=False)
        cur.register(SPILLED_ROWS, held.to_arrow(compat_level=pl.CompatLevel.newest()))
        return SPILLED_ROWS

    def remove(self) -> None:
        if self._writer is not None:  # a load refused mid-way: let the part being written end first
            self._writer.shutdown(wait=True)
            self._writer, self._pending = None, None
        self.held, self.held_bytes, self.key_hashes = [], 0, []
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Stage:
    """The staged rows of one load, in temporary tables of its transaction (see the module docstring)."""

    cur: duckdb.DuckDBPyConnection
    table: str
    compared: list[str] = field(default_factory=list)  # columns the source supplies (compared with the store)
    rows_read: int = 0
    writable: bool = False
    ids_distinct: bool = False  # the spill showed every staged id once (no repeat rule can apply)

    @classmethod
    def from_spill(cls, cur: duckdb.DuckDBPyConnection, spill: Spill, *, table: str, compared: list[str]) -> Stage:
        """Stage the spilled chunks in the transaction (DuckDB reads the frames held, or the
        Parquet parts itself, out of core when it must)."""
        # a view on the rows: read where the checks need it; copied into a table only when a
        # rule has to change or take out rows (most files: never)
        _drop_stage(cur)
        cur.execute(f"CREATE TEMP VIEW {STAGE} AS SELECT * FROM {spill.rows_sql(cur)}").fetchall()
        problems = pl.concat(spill.problems) if spill.problems else pl.DataFrame(
            schema={"row": pl.Int64, "problem": pl.String, "raw": pl.String}
        )
        excluded = pl.concat(spill.excluded) if spill.excluded else pl.DataFrame(schema={"row": pl.Int64, "reason": pl.String})
        cur.register("recoup_spilled_problems", problems)
        cur.register("recoup_spilled_excluded", excluded)
        try:
            cur.execute(f"CREATE OR REPLACE TEMP TABLE {PROBLEMS} AS SELECT * FROM recoup_spilled_problems").fetchall()
            cur.execute(f"CREATE OR REPLACE TEMP TABLE {EXCLUDED} AS SELECT * FROM recoup_spilled_excluded").fetchall()
        finally:
            release(cur, "recoup_spilled_problems", "recoup_spilled_excluded")
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {SKIPPED} ({ROW_COLUMN} BIGINT)").fetchall()
        return cls(cur, table, compared, spill.rows_read, ids_distinct=spill.ids_distinct())

    def drop(self) -> None:
        _drop_stage(self.cur)
        for name in (PROBLEMS, EXCLUDED, SKIPPED):
            self.cur.execute(f"DROP TABLE IF EXISTS {name}").fetchall()
        release(self.cur, SPILLED_ROWS)

    def _writable(self) -> None:
        """Make the staged rows a table (from the view on the spilled rows) before a rule changes them."""
        if self.writable:
            return
        self.cur.execute(f"CREATE TEMP TABLE {STAGE}_rows AS SELECT * FROM {STAGE}").fetchall()
        self.cur.execute(f"DROP VIEW {STAGE}").fetchall()
        self.cur.execute(f"ALTER TABLE {STAGE}_rows RENAME TO {STAGE}").fetchall()
        self.writable = True

    # -- reading ---------------------------------------------------------------------------
    def scalar(self, sql: str, params: list[object] | dict[str, object] | None = None) -> object:
        rows = self.cur.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None

    def frame(self, sql: str, params: list[object] | dict[str, object] | None = None) -> pl.DataFrame:
        return self.cur.sql(sql, params=params).pl() if params else self.cur.sql(sql).pl()

    @property
    def columns(self) -> list[str]:
        return [r[0] for r in self.cur.execute(f"SELECT column_name FROM (DESCRIBE {STAGE})").fetchall()]

    def count(self, what: str = STAGE) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {what}") or 0)

    #: The staged rows: only rows that passed every check stay in the stage (set_aside takes
    #: the others out), so they are what a load writes.
    KEPT = STAGE

    def inserted(self) -> str:
        """The staged rows to insert: those not already in the store unchanged."""
        if not self.count(SKIPPED):
            return STAGE
        return f"(SELECT * FROM {STAGE} WHERE {ROW_COLUMN} NOT IN (SELECT {ROW_COLUMN} FROM {SKIPPED}))"

    def repeated_ids(self) -> bool:
        """Whether any id appears more than once in the file (then the repeat rules run)."""
        if self.ids_distinct and not self.writable:
            return False
        keys = ", ".join(KEYS[self.table])
        return bool(self.scalar(f"SELECT count(*) FROM (SELECT {keys} FROM {STAGE} GROUP BY ALL HAVING count(*) > 1)"))

    # -- checks that need the whole file -----------------------------------------------------
    def qualify_shared_numbers(self, warnings: list[str]) -> None:
        """Invoice numbers several customers' invoices use (QuickBooks allows it, for sub-jobs)
        become ``number · customer``: each invoice is kept as its own document."""
        shared = self.frame(
            f"SELECT invoice_id FROM {STAGE} GROUP BY 1 HAVING count(DISTINCT customer_id) > 1 ORDER BY 1"
        )["invoice_id"].to_list()
        if not shared:
            return
        self._writable()
        self.cur.execute(
            f"""
            UPDATE {STAGE} SET invoice_id = invoice_id || '{NUMBER_CUSTOMER_SEPARATOR}' || customer_id
            WHERE invoice_id IN (SELECT invoice_id FROM {STAGE} GROUP BY 1 HAVING count(DISTINCT customer_id) > 1)
            """
        ).fetchall()
        warnings.append(
            f"{len(shared):,} invoice number{'s are' if len(shared) != 1 else ' is'} used by more than one customer "
            f"({', '.join(shared[:5])}{' ...' if len(shared) > 5 else ''}): each invoice was kept as its own, numbered "
            f"'number{NUMBER_CUSTOMER_SEPARATOR}customer'"
        )

    def drop_zero_copies(self) -> None:
        """A 0.00 row with the number of another invoice is a voided copy (accounting packages
        keep voided invoices in their lists at zero): left out, said."""
        copies = self.frame(
            f"""
            SELECT {ROW_COLUMN} AS row, invoice_id FROM {STAGE}
            WHERE amount = 0 AND invoice_id IN (
                SELECT invoice_id FROM {STAGE} GROUP BY 1 HAVING count(*) > 1 AND bool_or(amount <> 0))
            """
        )
        if copies.height == 0:
            return
        self._writable()
        self.cur.register("recoup_copies", copies)
        try:
            self.cur.execute(
                f"INSERT INTO {EXCLUDED} SELECT row, 'voided zero-amount copy' FROM recoup_copies"
            ).fetchall()
            self.cur.execute(f"DELETE FROM {STAGE} WHERE {ROW_COLUMN} IN (SELECT row FROM recoup_copies)").fetchall()
        finally:
            release(self.cur, "recoup_copies")
        # said with the other documents left out (excluded_warning)

    def drop_exact_repeats(self, content: list[str], warnings: list[str]) -> None:
        """A row repeating an earlier row in every column is loaded once."""
        keys = list(KEYS[self.table])
        columns = [c for c in content if c in self.columns]
        key_list = ", ".join(keys)
        if not self.scalar(f"SELECT count(*) FROM (SELECT {key_list} FROM {STAGE} GROUP BY ALL HAVING count(*) > 1)"):
            return
        partition = ", ".join(columns)
        repeats = self.frame(
            f"""
            SELECT {ROW_COLUMN} FROM (
                SELECT {ROW_COLUMN}, row_number() OVER (PARTITION BY {partition} ORDER BY {ROW_COLUMN}) AS n FROM {STAGE}
                WHERE ({key_list}) IN (SELECT ({key_list}) FROM {STAGE} GROUP BY ALL HAVING count(*) > 1)
            ) WHERE n > 1
            """
        )
        if repeats.height:
            self._writable()
            self.cur.register("recoup_repeats", repeats)
            try:
                self.cur.execute(f"DELETE FROM {STAGE} WHERE {ROW_COLUMN} IN (SELECT {ROW_COLUMN} FROM recoup_repeats)").fetchall()
            finally:
                release(self.cur, "recoup_repeats")
            warnings.append(
                f"{repeats.height:,} row{'s were exact repeats' if repeats.height != 1 else ' was an exact repeat'} of an "
                "earlier row and loaded once"
            )

    def refuse_contradictions(self, file_name: str, content: list[str]) -> None:
        """One id with two versions in the file: the file is refused, quoting the first ones."""
        keys = list(KEYS[self.table])
        key_list = ", ".join(keys)
        clashing = self.frame(
            f"""
            SELECT * FROM {STAGE}
            WHERE ({key_list}) IN (SELECT ({key_list}) FROM {STAGE} GROUP BY ALL HAVING count(*) > 1)
            ORDER BY {ROW_COLUMN}
            """
        )
        if clashing.height:
            raise ValidationError(contradiction_message(clashing, table=self.table, file_name=file_name, content=content))

    def match_store_numbers(self, warnings: list[str]) -> None:
        """Invoice numbers as the store already knows them: a number another customer's invoice
        holds in the store becomes ``number · customer``, and so does a number the store keeps
        in that form for this customer (next week's export of the same invoice)."""
        if not self.scalar("SELECT count(*) FROM invoices"):
            return  # nothing in the store to clash with
        sep = NUMBER_CUSTOMER_SEPARATOR
        renamed = int(
            self.scalar(
                f"""
                SELECT count(*) FROM {STAGE} f
                WHERE EXISTS (SELECT 1 FROM invoices t WHERE t.invoice_id = f.invoice_id AND t.customer_id <> f.customer_id)
                   OR EXISTS (SELECT 1 FROM invoices t WHERE t.invoice_id = f.invoice_id || '{sep}' || f.customer_id)
                """
            )
            or 0
        )
        if not renamed:
            return
        self._writable()
        self.cur.execute(
            f"""
            UPDATE {STAGE} AS f SET invoice_id = f.invoice_id || '{sep}' || f.customer_id
            WHERE EXISTS (SELECT 1 FROM invoices t WHERE t.invoice_id = f.invoice_id AND t.customer_id <> f.customer_id)
               OR EXISTS (SELECT 1 FROM invoices t WHERE t.invoice_id = f.invoice_id || '{sep}' || f.customer_id)
            """
        ).fetchall()
        warnings.append(
            f"{renamed:,} invoice number{'s' if renamed != 1 else ''} already used by another customer's invoice in the "
            f"store: kept as 'number{sep}customer'"
        )

    def set_aside(self, bad: pl.DataFrame) -> None:
        """Rows the checks against the store set aside: (row, problem), the row shown as staged."""
        if bad.height == 0:
            return
        bad = bad.group_by(ROW_COLUMN, maintain_order=True).agg(pl.col(PROBLEM).str.join("; "))
        self._writable()
        self.cur.register("recoup_bad", bad)
        try:
            columns = [c for c in self.columns if not c.startswith("__")]
            self.cur.execute(
                f"""
                INSERT INTO {PROBLEMS}
                SELECT b.{ROW_COLUMN}, b.{PROBLEM}, to_json(struct_pack({", ".join(f'"{c}" := s."{c}"' for c in columns)}))::VARCHAR
                FROM recoup_bad b JOIN {STAGE} s USING ({ROW_COLUMN})
                """
            ).fetchall()
            self.cur.execute(f"DELETE FROM {STAGE} WHERE {ROW_COLUMN} IN (SELECT {ROW_COLUMN} FROM recoup_bad)").fetchall()
        finally:
            release(self.cur, "recoup_bad")

    def mark_skipped(self, skipped: pl.DataFrame) -> None:
        if skipped.height == 0:
            return
        self.cur.register("recoup_skip", skipped.select(ROW_COLUMN))
        try:
            self.cur.execute(f"INSERT INTO {SKIPPED} SELECT {ROW_COLUMN} FROM recoup_skip").fetchall()
        finally:
            release(self.cur, "recoup_skip")

    def problems(self) -> pl.DataFrame:
        """Every row set aside: row_number, reason ("row N: ..."), raw (JSON)."""
        return self.frame(
            f"""
            SELECT row AS row_number, 'row ' || row || ': ' || string_agg(problem, '; ') AS reason, any_value(raw) AS raw
            FROM {PROBLEMS} GROUP BY row ORDER BY row
            """
        )

    def excluded(self) -> pl.DataFrame:
        return self.frame(f"SELECT row AS {ROW_COLUMN}, reason AS {PROBLEM} FROM {EXCLUDED} ORDER BY row")

    def store_clashes(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Staged rows that contradict the store (row, problem) and rows already there unchanged."""
        table = self.table
        keys = list(KEYS[table])
        entity = ENTITY[table]
        compared = [c for c in self.compared if c in self.columns]
        empty_bad = pl.DataFrame(schema={ROW_COLUMN: pl.Int64, PROBLEM: pl.String})
        skipped = pl.DataFrame(schema={ROW_COLUMN: pl.Int64})
        if not self.scalar(f"SELECT count(*) FROM {table}"):
            return empty_bad, skipped
        on = " AND ".join(f"f.{k} = t.{k}" for k in keys)
        if table == "customers":
            # A customer an invoice file created (id and name only) is completed by the
            # customers file, not contradicted by it.
            on += f" AND NOT ({PLACEHOLDER_CUSTOMER})"
        diff_cols = ", ".join(
            f"(f.{c} IS DISTINCT FROM t.{c}) AS d_{c}, CAST(t.{c} AS VARCHAR) AS o_{c}, CAST(f.{c} AS VARCHAR) AS n_{c}"
            for c in compared
        ) or "NULL AS nothing"
        ident = " || ' ' || ".join(f"CAST(f.{k} AS VARCHAR)" for k in keys)
        clash = self.frame(f"SELECT f.{ROW_COLUMN}, {ident} AS ident, {diff_cols} FROM {self.KEPT} f JOIN {table} t ON {on}")
        if clash.height == 0:
            return empty_bad, skipped
        differs = pl.any_horizontal([pl.col(f"d_{c}") for c in compared]) if compared else pl.lit(False)
        skipped = clash.filter(~differs).select(ROW_COLUMN)
        reason = pl.coalesce(
            [
                pl.when(pl.col(f"d_{c}")).then(
                    pl.format(
                        "{} {} is already in the store with {} {}, but this file says {}",
                        pl.lit(entity), pl.col("ident"), pl.lit(nz.label(c)),
                        pl.col(f"o_{c}").fill_null("(blank)"), pl.col(f"n_{c}").fill_null("(blank)"),
                    )
                )
                for c in compared
            ]
        ) if compared else pl.lit(None, dtype=pl.String)
        return clash.filter(differs).select(ROW_COLUMN, reason.alias(PROBLEM)), skipped

    def orphans(self) -> pl.DataFrame:
        """Payments and adjustments for invoices the store does not hold."""
        keys = list(KEYS[self.table])
        found = self.frame(
            f"""
            SELECT f.{ROW_COLUMN}, f.{keys[0]} AS ident, f.invoice_id FROM {self.KEPT} f
            WHERE f.invoice_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.invoice_id = f.invoice_id)
            """
        )
        return found.select(
            ROW_COLUMN,
            pl.format(
                "{} {} is for invoice {}, which is not in the store (load the invoices first)",
                pl.lit(ENTITY[self.table]), pl.col("ident"), pl.col("invoice_id"),
            ).alias(PROBLEM),
        )

    def payments_to_look_at(self, snapshot_method: str) -> pl.DataFrame:
        """Payments a finance person must look at: a negative amount, a payment dated before its
        invoice, and payments beyond what no payment has covered yet (an overpayment)."""
        found = self.frame(
            f"""
            WITH incoming AS (
                SELECT f.{ROW_COLUMN}, f.payment_id, f.invoice_id, f.payment_date, f.amount,
                       sum(f.amount) OVER (PARTITION BY f.invoice_id) AS incoming_total
                FROM {self.KEPT} f
                WHERE NOT EXISTS (SELECT 1 FROM payments p WHERE p.payment_id = f.payment_id)  -- already applied
            )
            SELECT f.{ROW_COLUMN},
                   CASE
                     WHEN f.amount < 0 THEN
                       'payment ' || f.payment_id || ' has a negative amount (' || f.amount || '): a refund or reversal is '
                       || 'not a payment; load it as an adjustment'
                     WHEN f.payment_date < i.invoice_date THEN
                       'payment ' || f.payment_id || ' is dated ' || f.payment_date || ', before its invoice ' || f.invoice_id
                       || ' was issued (' || i.invoice_date || '): check the dates or the invoice it was applied to'
                     WHEN i.amount > 0 AND f.incoming_total > i.amount - coalesce(c.cash, 0) + 0.005 THEN
                       'payments on invoice ' || f.invoice_id || ' add up to ' || f.incoming_total || ', more than the '
                       || (i.amount - coalesce(c.cash, 0)) || ' no payment has covered yet (an overpayment): record the '
                       || 'excess as an unapplied payment'
                   END AS problem
            FROM incoming f
            LEFT JOIN invoices i ON i.invoice_id = f.invoice_id
            -- cash already recorded on the invoice (payments inferred from snapshots are presumptions, not cash)
            LEFT JOIN (
                SELECT invoice_id, sum(amount) AS cash FROM payments
                WHERE invoice_id IS NOT NULL AND method IS DISTINCT FROM '{snapshot_method}' GROUP BY 1
            ) c ON c.invoice_id = f.invoice_id
            WHERE f.amount < 0 OR f.payment_date < i.invoice_date
               OR (i.amount > 0 AND f.incoming_total > i.amount - coalesce(c.cash, 0) + 0.005)
            """
        )
        return found.select(pl.col(ROW_COLUMN), pl.col("problem").alias(PROBLEM))


def _drop_stage(cur: duckdb.DuckDBPyConnection) -> None:
    """Drop the staged rows, a view on the parts or the table they became."""
    kinds = cur.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main' "
        "AND table_catalog = 'temp'",
        [STAGE],
    ).fetchall()
    for (kind,) in kinds:
        cur.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} {STAGE}").fetchall()


# A customers row made by an invoice load (so it holds only an id and a name).
PLACEHOLDER_CUSTOMER = "EXISTS (SELECT 1 FROM loads l WHERE l.load_id = t.load_id AND l.target_table <> 'customers')"
