"""Order history: every checkout of the caller's environment, newest first (``orders``, issue 14).

A page is read in a fixed number of statements whatever its length: the orders with the users who placed
them (one join), their count, their lines, and the add-ons those lines activated."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from app.auth.principal import Principal
from app.models.billing import AddOnSubscription
from app.models.store import Order, OrderLine
from app.services import cursors
from app.services.access import require_store_access

CURSOR_KIND = "Order"


@dataclass(frozen=True, slots=True)
class OrderView:
    order: Order  # with ``user`` loaded (None: the user was deleted)
    lines: list[OrderLine]  # in the order they were bought
    subscriptions: dict[str, AddOnSubscription]  # activated by the lines, by id, with ``add_on`` loaded


async def list_orders(
    principal: Principal, *, eligible_since: dt.date, first: int, after: str | None
) -> cursors.Page[OrderView]:
    """The tenant's orders, newest first; admins of eligible environments only (as the cart)."""
    require_store_access(principal, eligible_since=eligible_since)
    page = await cursors.newest_first(
        Order.filter(tenant_id=principal.tenant.id), CURSOR_KIND, first=first, after=after, related=("user",)
    )
    orders = [order for _, order in page.items]
    lines: dict[str, list[OrderLine]] = defaultdict(list)
    subscriptions: dict[str, AddOnSubscription] = {}
    if orders:
        for line in await OrderLine.filter(order_id__in=[order.id for order in orders]).order_by(
            "order_id", "position"
        ):
            lines[str(line.order_id)].append(line)
        activated = {
            str(line.subscription_id) for found in lines.values() for line in found if line.subscription_id
        }
        if activated:
            for subscription in await AddOnSubscription.filter(id__in=sorted(activated)).select_related(
                "add_on"
            ):
                subscriptions[str(subscription.id)] = subscription
    return cursors.Page(
        items=[
            (cursor, OrderView(order=order, lines=lines[str(order.id)], subscriptions=subscriptions))
            for cursor, order in page.items
        ],
        has_next_page=page.has_next_page,
        total_count=page.total_count,
    )
