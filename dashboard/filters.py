"""Customer filters (region, industry, owner, currency) shared by every page and metric."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dashboard.store import Store

FILTER_COLUMNS: tuple[str, ...] = ("region", "industry", "owner", "currency")


@dataclass(frozen=True)
class Filters:
    """Which customers a figure covers. Empty tuples mean "all"."""

    region: tuple[str, ...] = field(default_factory=tuple)
    industry: tuple[str, ...] = field(default_factory=tuple)
    owner: tuple[str, ...] = field(default_factory=tuple)
    currency: tuple[str, ...] = field(default_factory=tuple)
    #: The customers a person may see (a collector's assignments): None = every customer,
    #: an empty tuple = none.
    customer_ids: tuple[str, ...] | None = None

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, c) for c in FILTER_COLUMNS) and self.customer_ids is None

    def to_dict(self) -> dict[str, Any]:
        """The filters that are set, as plain data (an audit row's details)."""
        chosen: dict[str, Any] = {c: list(getattr(self, c)) for c in FILTER_COLUMNS if getattr(self, c)}
        if self.customer_ids is not None:
            chosen["assigned_customers"] = len(self.customer_ids)
        return chosen

    def customer_predicate(self, alias: str = "c") -> tuple[str, list[Any]]:
        """SQL predicate on the customers table (aliased ``alias``) and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.customer_ids is not None:
            clauses.append(
                f"{alias}.customer_id IN ({', '.join('?' for _ in self.customer_ids)})" if self.customer_ids else "FALSE"
            )
            params.extend(self.customer_ids)
        for column in FILTER_COLUMNS:
            values = getattr(self, column)
            if values:
                clauses.append(f"{alias}.{column} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        return (" AND ".join(clauses) or "TRUE"), params

    def customer_ids_sql(self) -> tuple[str, list[Any]]:
        """A sub-query of the customer ids these filters keep, and its parameters."""
        predicate, params = self.customer_predicate("c")
        return f"SELECT c.customer_id FROM customers c WHERE {predicate}", params


def filter_options(store: Store, *, customer_ids: tuple[str, ...] | None = None) -> dict[str, list[str]]:
    """Distinct values of each filter column, for the widgets: over every customer, or only over
    ``customer_ids`` (a collector's assignments), so a drop-down never names what its user may
    not see."""
    scope, params = Filters(customer_ids=customer_ids).customer_predicate("c")
    return {
        column: store.query(
            f"SELECT DISTINCT c.{column} AS v FROM customers c WHERE c.{column} IS NOT NULL AND {scope} ORDER BY 1",
            params,
        )["v"].to_list()
        for column in FILTER_COLUMNS
    }
