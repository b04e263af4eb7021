"""Answers to the public catalog, kept for a minute (issue 5).

``plans`` and ``addOns`` are the same for every caller of a currency, change only when an operator
changes the catalog, and cost a lot to serialise (200 add-ons are thousands of fields). A query made only
of those public fields that ran cleanly is remembered by its document, variables and the caller's
default currency, ERP and language (texts, price labels and formatted amounts are translated: one
language's answer is never served to another), for ``ttl`` seconds. Prices shown here may lag a catalog
change by that much; checkout re-reads every price and says what changed, so nobody is charged a stale
price.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import orjson
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse

PUBLIC_FIELDS = frozenset({"plans", "addOns", "addOn", "__typename"})


@lru_cache(maxsize=512)
def is_public_catalog_query(query: str, operation_name: str | None) -> bool:
    """A query whose root fields are all public catalog fields (no fragments at the root)."""
    try:
        document = parse(query)
    except GraphQLError:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation != OperationType.QUERY or operations[0].directives:
        return False
    selections = operations[0].selection_set.selections
    return all(
        isinstance(s, FieldNode) and s.name.value in PUBLIC_FIELDS and not s.directives for s in selections
    )


class CatalogCache:
    def __init__(self, ttl: float, *, max_entries: int = 256) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str | None, bytes, str], tuple[float, Any]] = OrderedDict()

    @staticmethod
    def key(
        query: str, operation_name: str | None, variables: dict[str, Any] | None, currency: str
    ) -> tuple[str, str | None, bytes, str]:
        return query, operation_name, orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS), currency

    def get(self, key: tuple[str, str | None, bytes, str]) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, data = entry
        if time.monotonic() >= expires:
            del self._entries[key]
            return None
        return data

    def clear(self) -> None:
        """After a catalog change (``tollgate catalog apply``, announced on its channel)."""
        self._entries.clear()

    def put(self, key: tuple[str, str | None, bytes, str], data: Any) -> None:
        if self.ttl <= 0:
            return
        self._entries[key] = (time.monotonic() + self.ttl, data)
        self._entries.move_to_end(key)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
