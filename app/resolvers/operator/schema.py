"""The operator API's schema (``operator.graphql``): its domains' root classes, with the extensions of the
public schema (typed errors, masking, query limits), served at ``/operator/graphql`` only."""

from __future__ import annotations

import functools
from typing import Any

from strawberry.tools import merge_types

from app.edge.query_limits import QueryLimits
from app.resolvers.operator import coupons, environments, keys, operations, webhooks
from app.resolvers.operator.permissions import describe_operator_access

# Each operator domain contributes its own root classes; add new domains here.
QUERIES: tuple[type, ...] = (keys.Query, webhooks.Query, environments.Query, coupons.Query, operations.Query)
MUTATIONS: tuple[type, ...] = (
    webhooks.Mutation,
    environments.Mutation,
    coupons.Mutation,
    operations.Mutation,
)

for _root in (*QUERIES, *MUTATIONS):
    describe_operator_access(_root)

OperatorQuery = merge_types("Query", QUERIES)
OperatorQuery.__strawberry_definition__.description = (  # type: ignore[attr-defined]
    "What operators read: environments, coupons, webhook endpoints and deliveries, the operations view."
)
OperatorMutation: Any = None
if MUTATIONS:
    OperatorMutation = merge_types("Mutation", MUTATIONS)
    OperatorMutation.__strawberry_definition__.description = (
        "What operators change: environments, users, coupons, webhook endpoints; each change is audited."
    )


@functools.lru_cache(maxsize=4)
def operator_schema(limits: QueryLimits | None = None) -> Any:
    from app.schema import DEFAULT_LIMITS, build_schema

    return build_schema(
        OperatorQuery, limits=limits or DEFAULT_LIMITS, mutation=OperatorMutation, subscription=None
    )
