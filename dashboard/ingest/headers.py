"""Header matching: source headers -> canonical columns, and which table a file is for.

Order of trust: the exact canonical name, then a known alias (both compared without case,
spaces or punctuation), then a fuzzy match (rapidfuzz) that a person must confirm.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from dashboard.schema import CANONICAL_COLUMNS

FUZZY_CUTOFF = 80.0

# Columns ingest accepts besides the canonical ones. An invoice extract often names the
# customer instead of (or next to) its id: the name becomes the minimal customer's name, or
# the customer id itself when the file has no id column.
# What a file states about settlement feeds the ledger: an open balance (amount due) or an
# amount paid is a statement of the balance on the file's date; a paid date is a dated
# payment; a status says paid, open, or not a receivable at all (draft, void). "Past Due"
# (days) is recognised so it is not guessed to be something else, and then not stored: it is
# recomputed from the due date as of any date.
SETTLEMENT_COLUMNS: tuple[str, ...] = ("open_amount", "amount_paid", "paid_date", "status")
EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {"invoices": ("customer_name", *SETTLEMENT_COLUMNS, "days_past_due")}
EXTRA_TYPES: dict[str, str] = {
    "customer_name": "VARCHAR",
    "open_amount": "DECIMAL(18,2)",
    "amount_paid": "DECIMAL(18,2)",
    "paid_date": "DATE",
    "status": "VARCHAR",
}

def is_statement(matches: list[ColumnMatch]) -> bool:
    """:func:`states_balances` for matched headers."""
    return states_balances({m.target for m in matches if m.target})


def states_balances(targets: set[str] | list[str]) -> bool:
    """True when columns mapped to ``targets`` say what was open on the file's date (an open
    balance, an amount paid, or a status without a paid date): the file is then a statement
    of balances and needs that date."""
    columns = set(targets)
    return bool({"open_amount", "amount_paid"} & columns) or ("status" in columns and "paid_date" not in columns)


_CUSTOMER_ID = ("Customer ID", "Cust ID", "Cust No", "Customer No", "Customer Number", "Account", "Account No", "Account Number", "Client ID", "Debtor", "Debtor No", "Sold To", "Customer Code")
_INVOICE_ID = ("Invoice No", "Invoice Number", "Invoice", "Inv #", "Inv No", "Num", "No", "Doc No", "Document Number", "Document No", "Reference", "Ref No", "Invoice ID")

ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "customers": {
        "customer_id": _CUSTOMER_ID,
        "name": ("Customer Name", "Customer", "Name", "Company", "Company Name", "Account Name", "Client", "Client Name"),
        "parent_id": ("Parent", "Parent ID", "Parent Customer", "Parent Account"),
        "industry": ("Industry", "Sector"),
        "region": ("Region", "Territory"),
        "country": ("Country",),
        "currency": ("Currency", "Curr", "CCY"),
        "credit_limit": ("Credit Limit", "Credit Line"),
        "default_terms": ("Terms", "Payment Terms", "Default Terms"),
        "owner": ("Owner", "Collector", "Account Manager", "Rep", "Sales Rep"),
        "strategic": ("Strategic", "Key Account"),
        "preferred_channel": ("Preferred Channel", "Channel"),
        "email": ("Email", "E-mail", "Email Address", "Billing Email"),
        "phone": ("Phone", "Telephone", "Phone Number"),
    },
    "invoices": {
        "invoice_id": _INVOICE_ID,
        "customer_id": _CUSTOMER_ID,
        "customer_name": ("Customer Name", "Customer", "Name", "Company", "Client", "Client Name"),
        "doc_type": ("Type", "Doc Type", "Document Type", "Transaction Type", "Txn Type"),
        "invoice_date": ("Date", "Invoice Date", "Txn Date", "Doc Date", "Document Date", "Posting Date", "Bill Date"),
        "due_date": ("Due Date", "Net Due", "Due", "Net Due Date", "Payment Due"),
        "terms_code": ("Terms", "Payment Terms", "Terms Code"),
        "terms_days": ("Terms Days", "Net Days", "Days"),
        "amount": (
            "Amount", "Total", "Invoice Amount", "Original Amount", "Invoice Total", "Gross Amount", "Total Amount",
            "Document Total", "Amount Incl Tax", "Total Incl Tax", "Grand Total",
        ),
        "currency": ("Currency", "Curr", "CCY", "Currency Code"),
        "amount_base": ("Amount Base", "Base Amount", "Amount (Base)", "Home Amount", "Local Amount"),
        "po_number": ("PO", "PO Number", "PO No", "P.O. No.", "Purchase Order"),
        "open_amount": (
            "Open Balance", "Balance", "Open Amount", "Amount Due", "Balance Due", "Outstanding", "Remaining Balance",
            "Invoice Amount Due", "Amount Outstanding", "Outstanding Amount", "Outstanding Balance", "Unpaid Amount",
            "Due Amount", "Amount Remaining", "Remaining Amount", "Open Item Amount", "Balance Due Amount", "Total Open Amount",
        ),
        "amount_paid": (
            "Amount Paid", "Paid", "Paid Amount", "Invoice Amount Paid", "Total Paid", "Paid To Date", "Payments Received",
            "Amount Paid Amount",
        ),
        "paid_date": (
            "Date Paid", "Paid Date", "Paid On", "Payment Date", "Settled Date", "Date Settled", "Settlement Date",
            "Cleared Date", "Clearing Date", "Paid At", "Date Fully Paid", "Fully Paid Date", "Payment Received Date",
            "Date Received", "Received Date", "Received On",
        ),
        "status": ("Status", "Invoice Status", "Payment Status", "Paid Status", "Document Status"),
        "days_past_due": ("Past Due", "Days Past Due", "Days Overdue", "Days Late", "Aging"),
        "source_system": ("Source", "Source System", "System"),
    },
    "payments": {
        "payment_id": ("Payment ID", "Payment No", "Payment Number", "Receipt No", "Receipt Number", "Receipt", "Ref No", "Check No", "Cheque No", "Transaction ID"),
        "customer_id": _CUSTOMER_ID,
        "invoice_id": tuple(a for a in _INVOICE_ID if a not in ("No", "Num", "Reference", "Ref No")) + ("Applied To", "Invoice Ref"),
        "payment_date": ("Date Paid", "Payment Date", "Paid On", "Paid Date", "Receipt Date", "Date"),
        "amount": ("Amount", "Amount Paid", "Payment Amount", "Paid", "Paid Amount", "Receipt Amount", "Total"),
        "currency": ("Currency", "Curr", "CCY"),
        "method": ("Method", "Payment Method", "Pay Method", "Type"),
    },
    "adjustments": {
        "adjustment_id": ("Adjustment ID", "Adjustment No", "Credit Note No", "Credit Memo No", "Memo No"),
        "invoice_id": _INVOICE_ID[:6] + ("Applied To",),
        "customer_id": _CUSTOMER_ID,
        "adjustment_date": ("Date", "Adjustment Date", "Credit Date", "Posting Date"),
        "amount": ("Amount", "Adjustment Amount", "Credit Amount"),
        "kind": ("Kind", "Type", "Adjustment Type"),
        "reason": ("Reason", "Memo", "Description", "Comment"),
    },
    "disputes": {
        "dispute_id": ("Dispute ID", "Dispute No", "Case ID", "Case No", "Case Number", "Ticket"),
        "invoice_id": _INVOICE_ID[:6],
        "customer_id": _CUSTOMER_ID,
        "opened_date": ("Opened", "Opened Date", "Open Date", "Date Opened", "Raised On", "Created"),
        "resolved_date": ("Resolved", "Resolved Date", "Closed", "Closed Date", "Date Resolved"),
        "category": ("Category", "Reason", "Dispute Reason", "Type"),
        "amount": ("Amount", "Disputed Amount", "Dispute Amount"),
        "resolution": ("Resolution", "Outcome"),
    },
    "contacts": {
        "contact_id": ("Contact ID", "Activity ID", "Touch ID", "Interaction ID"),
        "customer_id": _CUSTOMER_ID,
        "invoice_id": _INVOICE_ID[:6],
        "ts": ("Timestamp", "Date", "Date Time", "Contacted At", "Sent At", "When"),
        "channel": ("Channel", "Medium"),
        "action": ("Action", "Activity", "Activity Type"),
        "template_id": ("Template", "Template ID"),
        "tone": ("Tone",),
        "collector": ("Collector", "Agent", "User", "Owner"),
        "outcome": ("Outcome", "Result"),
        "promise_date": ("Promise Date", "Promised Date", "PTP Date"),
        "promise_amount": ("Promise Amount", "Promised Amount", "PTP Amount"),
    },
    "notes": {
        "note_id": ("Note ID", "Ticket ID", "Ticket No", "Comment ID"),
        "customer_id": _CUSTOMER_ID,
        "invoice_id": _INVOICE_ID[:6],
        "ts": ("Timestamp", "Date", "Created", "Created At", "Date Time"),
        "source": ("Source", "Origin"),
        "text": ("Text", "Note", "Notes", "Comment", "Body", "Description", "Message"),
    },
    "fx_rates": {
        "date": ("Date", "Rate Date", "As Of"),
        "currency": ("Currency", "Curr", "CCY", "Code"),
        "rate_to_base": ("Rate", "Rate To Base", "FX Rate", "Exchange Rate"),
    },
}


@dataclass(frozen=True)
class ColumnMatch:
    """One source header and the canonical column it feeds (``target`` None when unmatched)."""

    source: str
    target: str | None
    method: str  # "exact", "alias", "fuzzy", "user", "unmatched"
    score: float  # 100 for exact/alias/user


def normalize_header(header: str) -> str:
    """``"Inv #"`` -> ``"invno"``; ``" Invoice_Date "`` -> ``"invoicedate"``."""
    text = str(header).lower().replace("#", "no").replace("%", "pct")
    return re.sub(r"[^0-9a-z]", "", text)


_CURRENCY_SUFFIX = re.compile(r"(usd|eur|gbp|cad|aud|chf|jpy|nzd|sek|nok|dkk|inr|zar|sgd|hkd|mxn|brl|ils|pln)$")


def _without_currency(key: str) -> str:
    """A normalized heading without a trailing currency code (``invoiceamountusd`` -> ``invoiceamount``)."""
    return _CURRENCY_SUFFIX.sub("", key) if len(key) > 5 else key


def target_columns(table: str) -> tuple[str, ...]:
    """Canonical columns of ``table`` plus the extra columns ingest understands for it."""
    return tuple(CANONICAL_COLUMNS[table]) + EXTRA_COLUMNS.get(table, ())


def required_columns(table: str) -> tuple[str, ...]:
    return tuple(c for c, (_, required) in CANONICAL_COLUMNS[table].items() if required)


def match_headers(headers: list[str], table: str, *, mapping: dict[str, str] | None = None) -> list[ColumnMatch]:
    """Match each source header to at most one canonical column of ``table``.

    ``mapping`` (source header -> canonical column, or ``""`` to ignore a header) wins over
    everything. Each canonical column is taken once: the best claim (exact, then alias, then
    the highest fuzzy score, then the leftmost header) gets it.
    """
    targets = target_columns(table)
    mapping = mapping or {}
    by_name: dict[str, str] = {}
    for column in targets:
        by_name.setdefault(normalize_header(column), column)
    by_alias: dict[str, str] = {}
    for column in targets:
        for alias in ALIASES.get(table, {}).get(column, ()):
            by_alias.setdefault(normalize_header(alias), column)
    fuzzy_choices = {**{k: v for k, v in by_alias.items()}, **by_name}

    claims: list[tuple[int, float, int, str, str, str]] = []  # (rank, -score, position, source, target, method)
    for position, header in enumerate(headers):
        if header in mapping:
            continue
        key = normalize_header(header)
        if not key:
            continue
        if key not in by_name and key not in by_alias:
            # "invoice_amount_usd", "Amount (EUR)": an amount heading that names its currency
            bare = _without_currency(key)
            if bare != key and (bare in by_name or bare in by_alias):
                key = bare
        if key in by_name:
            claims.append((0, -100.0, position, header, by_name[key], "exact"))
        if key in by_alias:
            claims.append((1, -100.0, position, header, by_alias[key], "alias"))
        best = process.extractOne(key, list(fuzzy_choices), scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF)
        if best is not None and key not in by_name and key not in by_alias:
            claims.append((2, -float(best[1]), position, header, fuzzy_choices[best[0]], "fuzzy"))

    # keyed by position: a file may repeat a header, and each copy is its own column
    taken: dict[int, ColumnMatch] = {}
    used_targets = {t for t in mapping.values() if t}
    for _, neg_score, position, header, target, method in sorted(claims):
        if position in taken or target in used_targets:
            continue
        taken[position] = ColumnMatch(header, target, method, -neg_score)
        used_targets.add(target)

    matches = []
    for position, header in enumerate(headers):
        if header in mapping:
            target = mapping[header] or None
            matches.append(ColumnMatch(header, target, "user" if target else "unmatched", 100.0 if target else 0.0))
        else:
            matches.append(taken.get(position, ColumnMatch(header, None, "unmatched", 0.0)))
    return matches


def _satisfied(table: str, matched: set[str]) -> set[str]:
    # A customer name stands in for a missing customer id on invoices.
    if table == "invoices" and "customer_name" in matched:
        matched = matched | {"customer_id"}
    if table == "invoices" and "open_amount" in matched:
        matched = matched | {"amount"}  # an aging report without the original amount
    return matched


def missing_required(table: str, matches: list[ColumnMatch]) -> list[str]:
    matched = _satisfied(table, {m.target for m in matches if m.target})
    return [c for c in required_columns(table) if c not in matched]


def score_table(headers: list[str], table: str) -> float:
    """0-100: share of the table's required columns matched (fuzzy counts half), plus a
    little for each optional column matched (breaks ties between look-alike tables)."""
    matches = match_headers(headers, table)
    weight = {"exact": 1.0, "alias": 1.0, "user": 1.0, "fuzzy": 0.5}
    got: dict[str, float] = {}
    for m in matches:
        if m.target:
            got[m.target] = weight.get(m.method, 0.0)
    if table == "invoices" and "customer_name" in got:
        got.setdefault("customer_id", got["customer_name"])
    if table == "invoices" and "open_amount" in got:
        got.setdefault("amount", got["open_amount"])
    required = required_columns(table)
    required_score = sum(got.get(c, 0.0) for c in required) / len(required)
    optional = [c for c in target_columns(table) if c not in required]
    optional_score = sum(got.get(c, 0.0) for c in optional) / max(len(optional), 1)
    return round(90.0 * required_score + 10.0 * optional_score, 2)


def detect_table(headers: list[str]) -> tuple[str, dict[str, float]]:
    """The table whose columns the headers match best, and every table's score."""
    scores = {table: score_table(headers, table) for table in CANONICAL_COLUMNS}
    best = max(scores, key=lambda t: (scores[t], -list(CANONICAL_COLUMNS).index(t)))
    return best, scores


#: Every column heading Recoup knows (canonical names and aliases of every table), normalized:
#: the line of a file that names the most of them is its heading line.
KNOWN_HEADERS: frozenset[str] = frozenset(
    {normalize_header(c) for table in CANONICAL_COLUMNS for c in target_columns(table)}
    | {normalize_header(a) for columns in ALIASES.values() for aliases in columns.values() for a in aliases}
)
