"""From mapped text columns to typed canonical rows, with a plain-words problem per row.

Nothing here touches the store: checks that need it (ids already loaded, payments for
unknown invoices) live in :mod:`dashboard.ingest.load`, inside the load's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from dashboard.errors import ValidationError
from dashboard.ingest import normalize as nz
from dashboard.ingest.headers import EXTRA_COLUMNS, EXTRA_TYPES, ColumnMatch
from dashboard.ingest.read import EXTRA_VALUES, ROW_COLUMN
from dashboard.notes_text import flags_expr, sentiment_expr
from dashboard.schema import CANONICAL_COLUMNS, MONEY

PROBLEM = "__problem"

# Primary key per loadable table, and what one row is called in messages.
KEYS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "invoices": ("invoice_id",),
    "payments": ("payment_id",),
    "adjustments": ("adjustment_id",),
    "disputes": ("dispute_id",),
    "contacts": ("contact_id",),
    "notes": ("note_id",),
    "fx_rates": ("date", "currency"),
}
ENTITY: dict[str, str] = {
    "customers": "customer",
    "invoices": "invoice",
    "payments": "payment",
    "adjustments": "adjustment",
    "disputes": "dispute",
    "contacts": "contact",
    "notes": "note",
    "fx_rates": "exchange rate",
}
DOC_TYPES = ("invoice", "credit_memo", "unapplied_payment", "journal")
_DOC_TYPE_ALIASES = {
    "inv": "invoice", "invoice": "invoice", "bill": "invoice", "sales invoice": "invoice",
    "credit memo": "credit_memo", "credit_memo": "credit_memo", "creditmemo": "credit_memo", "cm": "credit_memo",
    "credit note": "credit_memo", "credit": "credit_memo", "cn": "credit_memo",
    "unapplied payment": "unapplied_payment", "unapplied_payment": "unapplied_payment", "payment": "unapplied_payment",
    "unapplied cash": "unapplied_payment", "journal": "journal", "journal entry": "journal", "je": "journal",
}
# Columns ingest computes that are stored alongside the canonical ones.
DERIVED_COLUMNS: dict[str, tuple[str, ...]] = {"notes": ("sentiment", "flags")}


@dataclass
class PreparedRows:
    """Typed canonical rows and the problems of the rows that failed."""

    table: str
    frame: pl.DataFrame  # ROW_COLUMN + canonical (+ derived) columns, every row
    problems: pl.DataFrame  # ROW_COLUMN + PROBLEM, the rows that failed a check
    compared_columns: list[str]  # the columns this source really supplies (compared with the store)
    warnings: list[str] = field(default_factory=list)
    has_customer_name: bool = False
    # rows that are not receivables (draft or void documents): left out, counted, with the reason
    excluded: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema={ROW_COLUMN: pl.Int64, PROBLEM: pl.String}))
    # the layout each date column was read with, when its values showed it (remembered for the source)
    date_layouts: dict[str, str] = field(default_factory=dict)

    @property
    def store_columns(self) -> list[str]:
        return list(CANONICAL_COLUMNS[self.table]) + list(DERIVED_COLUMNS.get(self.table, ()))


def _is_text(dtype: pl.DataType) -> bool:
    return dtype == pl.String or dtype == pl.Categorical or isinstance(dtype, pl.Enum)


@dataclass(frozen=True)
class Check:
    """One row rule: ``failed`` is cheap and runs on every row; ``message`` runs only on the
    rows that failed (formatting a million messages nobody reads is most of the cost)."""

    failed: pl.Expr
    message: pl.Expr


_PLAIN_MONEY = r"^-?\d{1,16}(\.\d{1,2})?$"
# Above this share of distinct values, parsing each distinct value once stops paying off.
_DISTINCT_SHARE_FOR_LOOKUP = 0.3


def _nonblank(src: str) -> pl.Expr:
    return (pl.col(src).str.strip_chars() != "").fill_null(False)


def _parse_value(
    work: pl.DataFrame,
    src: str,
    column: str,
    duckdb_type: str,
    *,
    source_format: str,
    warnings: list[str],
    header: str,
    money_style: str | None = None,
    remembered_dates: dict[str, str] | None = None,
    chosen_dates: dict[str, str] | None = None,
) -> tuple[pl.Expr, bool] | tuple[pl.Expr, bool, pl.Expr]:
    """Typed expression for one mapped column, whether a value can fail to parse, and (money)
    the message for a value that failed, when it is more precise than "not a number"."""
    dtype = work.schema[src]
    col = pl.col(src)
    # Typed frames (a generated world, Parquet) skip the text round-trip where the type already fits.
    if duckdb_type == "DATE" and dtype == pl.Date:
        return col, False
    if duckdb_type == "DATE" and isinstance(dtype, pl.Datetime):
        return col.dt.date(), False
    if duckdb_type == "TIMESTAMP" and isinstance(dtype, pl.Datetime):
        return (col.dt.replace_time_zone(None) if dtype.time_zone else col).cast(pl.Datetime("us")), False
    if duckdb_type == "TIMESTAMP" and dtype == pl.Date:
        return col.cast(pl.Datetime("us")), False
    if duckdb_type == MONEY and dtype.is_numeric():
        if dtype.is_float():
            return col.cast(pl.Decimal(24, 4), strict=False).round(2).cast(nz.MONEY_DTYPE, strict=False), True
        return col.cast(nz.MONEY_DTYPE, strict=False), True
    if duckdb_type in ("DOUBLE", "INTEGER") and dtype.is_numeric():
        return col.cast(pl.Float64 if duckdb_type == "DOUBLE" else pl.Int32, strict=False), True
    if duckdb_type == "BOOLEAN" and dtype == pl.Boolean:
        return col.fill_null(False), False
    if duckdb_type == "VARCHAR":
        text = col.cast(pl.String)
        # Spreadsheets keep leading zeros by writing ids as formulas: ="00085001".
        if work.select(text.str.starts_with('="').any()).item():
            text = text.str.replace(r'^="(.*)"$', "$1")
        return nz.clean_text(text), False
    if duckdb_type == MONEY:
        # Most extracts write plain amounts ("1234.50"): one regex pass proves it, then a cast.
        if work.select((col.str.contains(_PLAIN_MONEY) | col.is_null()).all()).item():
            return col.cast(nz.MONEY_DTYPE, strict=False), False  # every value proven readable
        value, too_precise, ambiguous = nz.money_parts(col, style=money_style, spreadsheet=source_format == "xlsx")
        shown = col.str.strip_chars()
        message = (
            pl.when(too_precise).then(pl.format(
                f"{nz.label(column)} '{{}}' has more than two decimals; money is kept to the cent, so round it in the "
                "source (nothing is rounded silently)", shown))
            .when(ambiguous).then(pl.format(
                f"{nz.label(column)} '{{}}' could be read two ways (thousands or decimals) and the file does not show "
                "which separator it uses for decimals; write it with two decimals", shown))
            .otherwise(pl.format(f"{nz.label(column)} '{{}}' is not a number", shown))
        )
        return value, True, message
    if duckdb_type == "DOUBLE":
        return nz.parse_double(col, column)[0], True
    if duckdb_type == "INTEGER":
        direct = col.cast(pl.Int32, strict=False)
        if work.select((col.is_not_null() & direct.is_null()).sum()).item() == 0:
            return direct, False  # plain whole numbers: the cast is the parse, and none failed
        return nz.parse_integer(col, column)[0], True
    if duckdb_type == "BOOLEAN":
        return nz.parse_boolean(col, column)[0], True
    is_timestamp = duckdb_type == "TIMESTAMP"
    remembered_dates = remembered_dates if remembered_dates is not None else {}
    chosen_dates = chosen_dates if chosen_dates is not None else {}
    distinct = work.select(col.unique()).drop_nulls()
    choice = nz.choose_date_family(distinct, src, allow_excel_serial=source_format == "xlsx", timestamp=is_timestamp)
    if choice.ambiguous_with and remembered_dates.get(column) in (choice.family, choice.ambiguous_with):
        # Every day is 12 or less: read as this source's earlier files were (they showed which).
        known = remembered_dates[column]
        choice = nz.DateChoice(choice.column, known, None, 0, choice.time_layouts)
        warnings.append(f"{nz.label(column)} ('{header}') read as {known}, as this source's earlier files were")
    elif choice.family is not None and choice.family not in ("YYYY-MM-DD", "YYYYMMDD"):
        note = f"{nz.label(column)} ('{header}') read as {choice.family}"
        if choice.ambiguous_with:
            note += f"; every day is 12 or less, so it could also be {choice.ambiguous_with} — check a few rows"
        warnings.append(note)
    if choice.family is not None and not choice.ambiguous_with:
        chosen_dates[column] = choice.family
    def parse(value: pl.Expr, column: str, family: str | None) -> tuple[pl.Expr, pl.Expr]:
        if is_timestamp:
            return nz.parse_timestamp(value, column, family, time_layouts=choice.time_layouts)
        return nz.parse_date(value, column, family)

    if distinct.height > _DISTINCT_SHARE_FOR_LOOKUP * max(work.height, 1):
        return parse(col, column, choice.family)[0], True
    # Dates repeat (a few thousand days in a million rows): parse each distinct text once.
    lookup = distinct.select(pl.col(src), parse(pl.col(src), column, choice.family)[0].alias("value"))
    target = nz.polars_dtype(duckdb_type)
    # Blank texts map to null too: they are "missing", not "unreadable".
    can_fail = lookup.filter(pl.col("value").is_null() & (pl.col(src).str.strip_chars() != "")).height > 0
    return col.replace_strict(lookup[src], lookup["value"], default=None, return_dtype=target), can_fail


_KIND = {MONEY: "a number", "DOUBLE": "a number", "INTEGER": "a whole number", "BOOLEAN": "yes or no", "DATE": "a date", "TIMESTAMP": "a date and time"}


_TOTAL_LABEL = r"(?i)^\s*(grand\s+|sub-?)?totals?\b"
_TOTAL_TAIL = 20


def _drop_total_lines(source: pl.DataFrame, *, key_header: str | None, warnings: list[str]) -> pl.DataFrame:
    """Leave out "Total" / "Grand total" lines that exports append: they are sums, not rows.

    A line counts as one when its first column says total and its id is blank or says total too.
    """
    first = next((c for c in source.columns if c != ROW_COLUMN), None)
    if first is None or not _is_text(source.schema[first]) or key_header is None or not _is_text(source.schema[key_header]):
        return source
    key = pl.col(key_header).str.strip_chars()
    is_total = pl.col(first).str.contains(_TOTAL_LABEL).fill_null(False) & (
        key.is_null() | (key == "") | key.str.contains(_TOTAL_LABEL).fill_null(False)
    )
    # Only lines without an id, or the last few lines, can be totals: test just those.
    candidates = pl.concat([source.filter(pl.col(key_header).is_null()), source.tail(_TOTAL_TAIL)]).unique(ROW_COLUMN)
    totals = candidates.filter(is_total).sort(ROW_COLUMN)
    if totals.height == 0:
        return source
    lines = ", ".join(str(n) for n in totals[ROW_COLUMN].head(3).to_list())
    warnings.append(f"{totals.height} total line{'s' if totals.height != 1 else ''} left out (row {lines}): totals are not rows")
    return source.join(totals.select(ROW_COLUMN), on=ROW_COLUMN, how="anti")


def _money_style(work: pl.DataFrame, columns: list[str], delimiter: str | None) -> str | None:
    """The decimal separator the file's money columns show, read from all of them together."""
    text = [c for c in columns if _is_text(work.schema[c])]
    if not text:
        return None
    values = pl.concat([work.get_column(c).drop_nulls().head(20_000) for c in text])
    return nz.decimal_style(values, delimiter=delimiter)


def prepare_rows(
    source: pl.DataFrame,
    *,
    table: str,
    matches: list[ColumnMatch],
    source_format: str,
    delimiter: str | None = None,
    remembered_dates: dict[str, str] | None = None,
) -> PreparedRows:
    """Parse every mapped column, derive what the table needs, and name each row's problems.

    ``source`` is the frame as read (with ``ROW_COLUMN``); ``matches`` say which header feeds
    which canonical column. Returns typed rows plus a (row, problem) frame of the bad rows.
    """
    canonical = CANONICAL_COLUMNS[table]
    mapped = {m.target: m.source for m in matches if m.target}
    warnings: list[str] = []
    source = _drop_total_lines(source, key_header=mapped.get(KEYS[table][0]), warnings=warnings)
    src = {target: f"__src_{i}" for i, target in enumerate(mapped)}
    ragged = [EXTRA_VALUES] if EXTRA_VALUES in source.columns else []
    work = source.select(pl.col(ROW_COLUMN), *ragged, *(pl.col(header).alias(src[target]) for target, header in mapped.items()))
    values: list[pl.Expr] = []
    checks: list[Check] = []
    if ragged:
        # Never cut a row short: its values no longer line up with the headings.
        checks.append(
            Check(
                pl.col(EXTRA_VALUES).is_not_null(),
                pl.format(
                    "the row has {} more value(s) than the file has column headings, so its values do not line up with "
                    "them (an amount such as 1,234.56 written without quotes splits in two); fix the row and load it again",
                    pl.col(EXTRA_VALUES),
                ),
            )
        )
    parse_failed: list[pl.Expr] = []
    chosen_dates: dict[str, str] = {}
    extras = [c for c in EXTRA_TYPES if c in mapped and c in EXTRA_COLUMNS.get(table, ())]
    types = {**{c: t for c, (t, _) in canonical.items()}, **{c: EXTRA_TYPES[c] for c in extras}}
    money_style = _money_style(work, [src[c] for c, t in types.items() if t == MONEY and c in mapped], delimiter)
    for column, duckdb_type in types.items():
        dtype = nz.polars_dtype(duckdb_type)
        if column not in mapped:
            values.append(pl.lit(None, dtype=dtype).alias(column))
            continue
        parsed = _parse_value(
            work, src[column], column, duckdb_type, source_format=source_format, warnings=warnings, header=mapped[column],
            money_style=money_style, remembered_dates=remembered_dates or {}, chosen_dates=chosen_dates,
        )
        value, can_fail = parsed[0], parsed[1]
        values.append(value.cast(dtype).alias(column))
        if can_fail:
            text_present = _nonblank(src[column]) if _is_text(work.schema[src[column]]) else pl.col(src[column]).is_not_null()
            parse_failed.append((text_present & pl.col(column).is_null()).alias(f"__bad_{column}"))
            shown = pl.col(src[column]).cast(pl.String).str.strip_chars()
            message = parsed[2] if len(parsed) > 2 else pl.format(f"{nz.label(column)} '{{}}' is not {_KIND[duckdb_type]}", shown)
            checks.append(Check(pl.col(f"__bad_{column}"), message))
    has_customer_name = "customer_name" in mapped
    work = work.with_columns(values).with_columns(parse_failed)
    if table == "invoices" and "amount" not in mapped and "open_amount" in mapped:
        work = work.with_columns(pl.col("open_amount").alias("amount"))
        warnings.append("no amount column: each invoice's amount is its open balance")
    compared = [c for c in canonical if c in mapped and c not in KEYS[table]]

    if table == "invoices":
        work, invoice_checks, derived = _invoice_rules(work, mapped=mapped, src=src, warnings=warnings)
        checks += invoice_checks
        compared += [c for c in derived if c not in compared]
    elif table == "customers":
        work = work.with_columns(pl.col("strategic").fill_null(False))
        if "email" in mapped:
            work = _one_email_each(work, warnings)
    elif table == "notes":
        work = work.with_columns(sentiment_expr(pl.col("text")).alias("sentiment"), flags_expr(pl.col("text")).alias("flags"))
    elif table == "disputes":
        checks.append(
            Check(
                (pl.col("resolved_date") < pl.col("opened_date")).fill_null(False),
                pl.format("resolved date {} is before opened date {}", pl.col("resolved_date"), pl.col("opened_date")),
            )
        )
    elif table == "fx_rates":
        checks.append(Check((pl.col("rate_to_base") <= 0).fill_null(False), pl.format("rate {} is not above zero", pl.col("rate_to_base"))))
        work = work.with_columns(pl.col("currency").str.to_uppercase())

    # A required value that is blank (a value that failed to parse already has its problem).
    for column, (_, required) in canonical.items():
        if not required or (table == "invoices" and column == "customer_id" and has_customer_name):
            continue
        missing = pl.col(column).is_null()
        if f"__bad_{column}" in work.columns:
            missing = missing & ~pl.col(f"__bad_{column}")
        checks.append(Check(missing, pl.lit(f"no {nz.label(column)}")))
    if table == "invoices" and has_customer_name:
        checks.append(Check(pl.col("customer_id").is_null(), pl.lit("no customer id or customer name")))

    failed = [c.failed.fill_null(False).alias(f"__check_{i}") for i, c in enumerate(checks)]
    work = work.with_columns(failed)
    flags = [f"__check_{i}" for i in range(len(checks))]
    any_failed = pl.any_horizontal(flags) if flags else pl.lit(False)
    bad = work.filter(any_failed)
    problems = bad.select(
        pl.col(ROW_COLUMN),
        pl.concat_str(
            [pl.when(pl.col(flag)).then(check.message) for flag, check in zip(flags, checks, strict=True)],
            separator="; ", ignore_nulls=True,
        ).alias(PROBLEM),
    )
    keep = [ROW_COLUMN, *canonical, *DERIVED_COLUMNS.get(table, ()), *extras]
    excluded = pl.DataFrame(schema={ROW_COLUMN: pl.Int64, PROBLEM: pl.String})
    if "__not_receivable" in work.columns:
        left_out = work.filter(pl.col("__not_receivable").is_not_null())
        excluded = left_out.select(ROW_COLUMN, pl.col("__not_receivable").alias(PROBLEM))
        work = work.filter(pl.col("__not_receivable").is_null())
        problems = problems.join(excluded.select(ROW_COLUMN), on=ROW_COLUMN, how="anti")
        if excluded.height:
            counts = excluded.group_by(PROBLEM).len().sort(PROBLEM)
            what = " and ".join(f"{n:,} {kind}" for kind, n in counts.iter_rows())
            rows = ", ".join(str(r) for r in excluded[ROW_COLUMN].head(5).to_list())
            warnings.append(
                f"{what} document{'s' if excluded.height != 1 else ''} left out: not receivables (row {rows}"
                f"{' ...' if excluded.height > 5 else ''})"
            )
    return PreparedRows(table, work.select(keep), problems, compared, warnings, has_customer_name, excluded, chosen_dates)


def _invoice_rules(
    work: pl.DataFrame, *, mapped: dict[str, str], src: dict[str, str], warnings: list[str]
) -> tuple[pl.DataFrame, list[Check], list[str]]:
    derived: list[str] = []
    if "customer_id" not in mapped and "customer_name" in mapped:
        work = work.with_columns(pl.col("customer_name").alias("customer_id"))
        warnings.append("no customer id column: customers are identified by their name")
        derived.append("customer_id")
    checks: list[Check] = []
    if "doc_type" in mapped:
        aliases = {k.replace("_", " "): v for k, v in _DOC_TYPE_ALIASES.items()}
        # Few distinct document types: normalize each distinct text once.
        distinct = work.select(pl.col("doc_type").unique()).drop_nulls()
        lookup = distinct.select(
            pl.col("doc_type"),
            pl.col("doc_type").str.to_lowercase().str.replace_all(r"[-_ ]+", " ").str.strip_chars()
            .replace_strict(aliases, default=None).alias("normalized"),
        )
        work = work.with_columns(
            pl.col("doc_type").replace_strict(lookup["doc_type"], lookup["normalized"], default=None, return_dtype=pl.String)
        )
        checks.append(
            Check(
                pl.col("doc_type").is_null() & _nonblank(src["doc_type"]),
                pl.format(
                    "document type '{}' is not one of invoice, credit memo, unapplied payment, journal",
                    pl.col(src["doc_type"]).str.strip_chars(),
                ),
            )
        )
        # A blank document type is a plain invoice.
        work = work.with_columns(
            pl.when(~_nonblank(src["doc_type"])).then(pl.lit("invoice")).otherwise(pl.col("doc_type")).alias("doc_type")
        )
    else:
        work = work.with_columns(pl.lit("invoice").alias("doc_type"))
    if "terms_code" in mapped:
        # Terms codes repeat: work each distinct code out once.
        codes = work.select(pl.col("terms_code").unique()).drop_nulls()
        lookup = codes.select(pl.col("terms_code"), nz.terms_days_expr(pl.col("terms_code")).alias("days"))
        from_code = pl.col("terms_code").replace_strict(lookup["terms_code"], lookup["days"], default=None, return_dtype=pl.Int32)
        work = work.with_columns(pl.coalesce(pl.col("terms_days"), from_code).alias("terms_days"))
        if "terms_days" not in mapped:
            derived.append("terms_days")
    if "due_date" not in mapped:
        derived.append("due_date")
        if "terms_code" not in mapped and "terms_days" not in mapped:
            # Nothing says when these invoices fall due: due on receipt, said out loud.
            work = work.with_columns(pl.lit(0, dtype=pl.Int32).alias("terms_days"))
            warnings.append(
                "the file has no due date and no payment terms: each invoice is taken as due on its own date "
                "(due on receipt); map a due date or terms column if they have terms"
            )
    unreadable_due = pl.col("__bad_due_date") if "__bad_due_date" in work.columns else pl.lit(False)
    work = work.with_columns(
        pl.when(unreadable_due).then(None)
        .otherwise(pl.coalesce(pl.col("due_date"), pl.col("invoice_date") + pl.duration(days=pl.col("terms_days"))))
        .alias("due_date")
    )
    checks += [
        Check(
            pl.col("due_date") < pl.col("invoice_date"),
            pl.format("due date {} is before invoice date {}", pl.col("due_date"), pl.col("invoice_date")),
        ),
        Check(
            (pl.col("doc_type") == "invoice") & (pl.col("amount") < 0),
            pl.format(
                "invoice {} has a negative amount ({}): a credit should have document type credit memo",
                pl.col("invoice_id"), pl.col("amount"),
            ),
        ),
        # due_date is optional in the extract (terms can give it) but required in the store.
        Check(
            pl.col("due_date").is_null() & pl.col("invoice_date").is_not_null() & ~unreadable_due,
            pl.lit("no due date and no payment terms to work it out from"),
        ),
    ]
    work, settlement_checks = _settlement_rules(work, mapped=mapped, src=src, warnings=warnings)
    checks += settlement_checks
    return work, checks, derived


# What a status column says, in a few words each vendor uses (lower case, single spaces).
STATUS_WORDS: dict[str, tuple[str, ...]] = {
    "paid": ("paid", "fully paid", "paid in full", "settled", "closed", "cleared", "complete", "completed"),
    "partial": ("partial", "partially paid", "part paid", "partial payment", "partly paid"),
    "open": (
        "open", "sent", "viewed", "unpaid", "overdue", "outstanding", "due", "awaiting payment", "authorised",
        "authorized", "approved", "pending", "past due", "late", "disputed", "issued", "posted", "active", "new",
        "emailed", "printed", "not paid", "in dispute", "reminder sent", "collections",
        # issued (numbered) but not yet sent to the customer: owed all the same
        "unsent", "not sent",
        "uncollectible",  # Stripe: marked uncollectible, still owed
    ),
    "draft": ("draft", "drafts", "submitted", "awaiting approval", "pending approval", "estimate", "quote"),
    "void": ("void", "voided", "cancelled", "canceled", "deleted", "reversed", "credited in full"),
}
_STATUS_OF = {word: status for status, words in STATUS_WORDS.items() for word in words}
NOT_RECEIVABLE = ("draft", "void")


def _settlement_rules(work: pl.DataFrame, *, mapped: dict[str, str], src: dict[str, str], warnings: list[str]) -> tuple[pl.DataFrame, list[Check]]:
    """Statuses read into a few words (paid, partial, open, draft, void); drafts and voids
    marked as not receivables; credit memos given a positive amount turned into credits."""
    checks: list[Check] = []
    if "status" in mapped:
        distinct = work.select(pl.col("status").unique()).drop_nulls()
        lookup = distinct.select(
            pl.col("status"),
            pl.col("status").str.to_lowercase().str.replace_all(r"[-_]+", " ").str.replace_all(r"\s+", " ").str.strip_chars()
            .replace_strict(_STATUS_OF, default=None).alias("normalized"),
        )
        unknown = lookup.filter(pl.col("normalized").is_null())["status"].to_list()
        if unknown:
            shown = ", ".join(repr(v) for v in sorted(unknown)[:6])
            warnings.append(
                f"status {shown} not understood: those documents were loaded as open (known statuses: paid, partially "
                "paid, open/sent/overdue, draft, void)"
            )
        work = work.with_columns(
            pl.col("status").replace_strict(lookup["status"], lookup["normalized"], default=None, return_dtype=pl.String)
        )
        work = work.with_columns(
            pl.when(pl.col("status").is_in(NOT_RECEIVABLE)).then(pl.col("status")).otherwise(None).alias("__not_receivable")
        )
    if "doc_type" in mapped:
        positive_credit = (pl.col("doc_type") == "credit_memo") & (pl.col("amount") > 0)
        flipped = work.select(positive_credit.fill_null(False).sum()).item()
        if flipped:
            warnings.append(
                f"{flipped:,} credit memo{'s' if flipped != 1 else ''} had a positive amount: read as credits (negative), "
                "as a credit reduces what the customer owes"
            )
            money = [c for c in ("amount", "amount_base", "open_amount", "amount_paid") if c in work.columns]
            work = work.with_columns(
                [pl.when(positive_credit & (pl.col(c) > 0)).then(-pl.col(c)).otherwise(pl.col(c)).alias(c) for c in money]
            )
    if "open_amount" in mapped:
        checks.append(
            Check(
                (pl.col("amount") > 0) & (pl.col("open_amount") > pl.col("amount") + 0.005),
                pl.format("open balance {} is more than the invoice amount {}", pl.col("open_amount"), pl.col("amount")),
            )
        )
    if "amount_paid" in mapped:
        checks.append(
            Check(
                (pl.col("amount") > 0) & (pl.col("amount_paid") > pl.col("amount") + 0.005),
                pl.format("amount paid {} is more than the invoice amount {}: an overpayment (record the excess as a "
                          "separate unapplied payment)", pl.col("amount_paid"), pl.col("amount")),
            )
        )
    if "paid_date" in mapped:
        checks.append(
            Check(
                pl.col("paid_date") < pl.col("invoice_date"),
                pl.format("paid date {} is before the invoice date {}", pl.col("paid_date"), pl.col("invoice_date")),
            )
        )
    return work, checks


_EMAIL = r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$"


def _one_email_each(work: pl.DataFrame, warnings: list[str]) -> pl.DataFrame:
    """An email that is not exactly one address — a line break in it (a header injection:
    ``ap@x.example\r\nBcc: ...``), two addresses, a name — is left empty, with a warning that
    quotes it; the customer's other details load."""
    bad = pl.col("email").is_not_null() & (
        pl.col("email").str.contains(r"[\x00-\x1f\x7f]") | ~pl.col("email").str.contains(_EMAIL)
    )
    flagged = work.filter(bad)
    if flagged.height == 0:
        return work
    shown = "; ".join(f"{cid}: {email!r}" for cid, email in flagged.select("customer_id", "email").head(3).iter_rows())
    warnings.append(
        f"{flagged.height:,} email address{'es are' if flagged.height != 1 else ' is'} not one plain address (a line break, "
        f"several addresses or other text) and {'were' if flagged.height != 1 else 'was'} left empty — {shown}"
        f"{' ...' if flagged.height > 3 else ''}; give each customer one address"
    )
    return work.with_columns(pl.when(bad).then(None).otherwise(pl.col("email")).alias("email"))


#: Between an invoice number and its customer when the number alone is not unique.
NUMBER_CUSTOMER_SEPARATOR = " · "


def qualified_id(invoice_id: pl.Expr, customer_id: pl.Expr) -> pl.Expr:
    """``1001 · Acme:Job 2``: the id of an invoice whose number another customer's invoice uses too."""
    return pl.concat_str([invoice_id, pl.lit(NUMBER_CUSTOMER_SEPARATOR), customer_id])


def qualify_shared_numbers(rows: pl.DataFrame, warnings: list[str]) -> pl.DataFrame:
    """Invoice numbers that several customers' invoices use (QuickBooks allows it, for
    sub-jobs) become ``number · customer``: each invoice is kept as its own document."""
    shared = rows.group_by("invoice_id").agg(pl.col("customer_id").n_unique().alias("customers")).filter(pl.col("customers") > 1)
    if shared.height == 0:
        return rows
    numbers = sorted(shared["invoice_id"].to_list())
    warnings.append(
        f"{len(numbers):,} invoice number{'s are' if len(numbers) != 1 else ' is'} used by more than one customer "
        f"({', '.join(numbers[:5])}{' ...' if len(numbers) > 5 else ''}): each invoice was kept as its own, numbered "
        f"'number{NUMBER_CUSTOMER_SEPARATOR}customer'"
    )
    return rows.with_columns(
        pl.when(pl.col("invoice_id").is_in(numbers)).then(qualified_id(pl.col("invoice_id"), pl.col("customer_id")))
        .otherwise(pl.col("invoice_id")).alias("invoice_id")
    )


def _drop_zero_copies(rows: pl.DataFrame, warnings: list[str]) -> pl.DataFrame:
    """A 0.00 row with the number of another invoice of the same customer is a voided copy
    (accounting packages keep voided invoices in their lists at zero): left out, said."""
    others = pl.col("amount").ne(0).any().over("invoice_id")
    copies = rows.filter((pl.col("amount") == 0) & others & pl.col("invoice_id").is_duplicated())
    if copies.height == 0:
        return rows
    numbers = sorted(copies["invoice_id"].unique().to_list())
    warnings.append(
        f"{copies.height:,} zero-amount cop{'ies' if copies.height != 1 else 'y'} of invoice"
        f"{'s' if len(numbers) != 1 else ''} {', '.join(numbers[:5])}{' ...' if len(numbers) > 5 else ''} (voided, kept at "
        "0.00 in the export) left out"
    )
    return rows.join(copies.select(ROW_COLUMN), on=ROW_COLUMN, how="anti")


def check_contradictions(prepared: PreparedRows, *, file_name: str) -> tuple[pl.DataFrame, list[str]]:
    """Drop exact repeats (with a warning); refuse the file when one id has two versions.

    Works on the good rows only. Raises :class:`ValidationError` quoting the first conflicts,
    e.g. "invoice INV-7 appears twice with different amounts (100.00 and 120.00)".
    """
    table = prepared.table
    keys = list(KEYS[table])
    good = prepared.frame.join(prepared.problems.select(ROW_COLUMN), on=ROW_COLUMN, how="anti") if prepared.problems.height else prepared.frame
    content = [c for c in prepared.store_columns if c in good.columns]
    content += [c for c in EXTRA_TYPES if c in good.columns]
    warnings: list[str] = []
    if table == "invoices" and good.height and not good.get_column("invoice_id").is_unique().all():
        # numbers that repeat: another customer's invoice, or a voided zero copy
        good = qualify_shared_numbers(good, warnings)
        good = _drop_zero_copies(good, warnings)
    key_count = good.select(pl.struct(keys).n_unique() if len(keys) > 1 else pl.col(keys[0]).n_unique()).item()
    if key_count == good.height:
        return good, warnings  # every id once: no repeats, no contradictions
    deduped = good.unique(subset=content, keep="first", maintain_order=True)
    repeats = good.height - deduped.height
    if repeats:
        warnings.append(f"{repeats:,} row{'s were exact repeats' if repeats != 1 else ' was an exact repeat'} of an earlier row and loaded once")
    if deduped.select(pl.struct(keys).is_duplicated().any()).item():
        conflicts = (
            deduped.filter(pl.struct(keys).is_duplicated())
            .group_by(keys, maintain_order=True)
            .agg(pl.all().head(2))
            .head(3)
        )
        entity = ENTITY[table]
        lines = []
        for row in conflicts.iter_rows(named=True):
            ident = " ".join(str(row[k]) for k in keys)
            if table in ("invoices", "payments", "adjustments") and row["amount"][0] != row["amount"][1]:
                lines.append(f"{entity} {ident} appears twice with different amounts ({row['amount'][0]} and {row['amount'][1]})")
            else:
                differing = next(
                    (c for c in content if c not in keys and row[c][0] != row[c][1]), "details"
                )
                lines.append(
                    f"{entity} {ident} appears twice with different {nz.label(differing)} "
                    f"({row[differing][0]} and {row[differing][1]}) (rows {row[ROW_COLUMN][0]} and {row[ROW_COLUMN][1]})"
                )
        total = deduped.select(pl.struct(keys).is_duplicated().sum()).item()
        msg = f"{file_name} was not loaded: " + "; ".join(lines)
        if total > 2 * len(lines):
            msg += f" (and more: {total:,} rows share an id with another row)"
        msg += ". Fix the file so each id appears once, then load it again."
        raise ValidationError(msg)
    return deduped, warnings
