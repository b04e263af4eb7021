"""Order history: ``orders`` (issue 14). The order type is checkout's (``app.resolvers.store.Order``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from app.auth import scopes
from app.resolvers.account import ActiveAddOn, UserAccount
from app.resolvers.common import AFTER_HELP, PAGE_SIZE_HELP, Connection, page_size
from app.resolvers.context import Info
from app.resolvers.errors import NotAdminError, NotEligibleError
from app.resolvers.permissions import allow
from app.resolvers.store import Order
from app.services import checkout as checkout_service
from app.services import orders as order_service


@strawberry.type(name="OrderConnection", description="A page of the environment's orders, newest first.")
class OrderConnection(Connection[Order]):
    pass


OrdersResult = Annotated[
    OrderConnection | NotAdminError | NotEligibleError,
    strawberry.union("OrdersResult", description="The environment's orders, or why they cannot be read."),
]


def order_of(view: order_service.OrderView, *, now: dt.datetime) -> Order:
    active = {
        str(line.subscription_id): ActiveAddOn.of(view.subscriptions[str(line.subscription_id)], now=now)
        for line in view.lines
        if line.subscription_id and str(line.subscription_id) in view.subscriptions
    }
    result = checkout_service.CheckoutResult(
        order=view.order, lines=view.lines, subscriptions=[], replayed=False
    )
    user = view.order.user
    return Order.of(result, active, placed_by=UserAccount.of(user) if user is not None else None)


@strawberry.type
class Query:
    @strawberry.field(
        extensions=allow(scopes.TENANT_READ),
        description="Every purchase confirmed by checkout in the caller's environment, newest first, with "
        "its lines, coupon, totals and who placed it. Admins of eligible environments only.",
    )
    async def orders(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description=PAGE_SIZE_HELP)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_HELP)] = None,
    ) -> OrdersResult | None:
        size = page_size(first)
        principal = await info.context.require_principal()
        now = info.context.clock.now()
        page = await order_service.list_orders(
            principal, eligible_since=info.context.settings.store_eligible_since, first=size, after=after
        )
        return OrderConnection.from_page(page, lambda view: order_of(view, now=now), after=after)
