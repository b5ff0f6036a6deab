"""orders.v1.Orders over an in-memory store seeded from services.seed, with a live change feed.

WatchOrders gives each watcher its own bounded asyncio queue, removed when the call ends.
`python -m services.orders --port N` serves it alone.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import cast

import grpc
from google.rpc import code_pb2, error_details_pb2

from orders.v1 import orders_pb2, orders_pb2_grpc
from services.paging import Pager, newest_first
from services.seed import now, seed
from services.status import (
    Context,
    failed_precondition,
    failure,
    invalid_argument,
    not_found,
    require,
)

DOMAIN = "orders.v1"
WATCH_BUFFER = 256  # events a watcher may fall behind before its stream is ABORTED
_RESOURCE = "orders.v1.Order"
_INT64_MAX = 2**63 - 1
_Event = orders_pb2.WatchOrdersResponse
_Add = Callable[["OrdersService", grpc.aio.Server], None]


@dataclass(eq=False, slots=True)
class _Watcher:
    queue: asyncio.Queue[orders_pb2.WatchOrdersResponse] = field(
        default_factory=lambda: asyncio.Queue(maxsize=WATCH_BUFFER)
    )
    overflowed: bool = False


class OrdersService(orders_pb2_grpc.OrdersServicer):
    service_name = orders_pb2.DESCRIPTOR.services_by_name["Orders"].full_name

    def __init__(self, orders: Iterable[orders_pb2.Order] | None = None,
                 pager: Pager | None = None) -> None:
        initial = seed().orders if orders is None else orders
        self._orders = {order.id: copy.deepcopy(order) for order in initial}
        self._next_number = 1 + max((int(oid.removeprefix("o-")) for oid in self._orders),
                                    default=5000)
        self._pager = pager or Pager()
        self._watchers: dict[str, set[_Watcher]] = {}

    def add_to(self, server: grpc.aio.Server) -> None:
        add = cast(_Add, orders_pb2_grpc.add_OrdersServicer_to_server)  # generated code is untyped
        add(self, server)

    def watcher_count(self, user_id: str | None = None) -> int:
        """Open WatchOrders streams (of one user, or of all)."""
        if user_id is not None:
            return len(self._watchers.get(user_id, ()))
        return sum(map(len, self._watchers.values()))

    async def GetOrder(self, request: orders_pb2.GetOrderRequest,
                       context: Context) -> orders_pb2.Order:
        return copy.deepcopy(self._get(require(request.id, "id")))

    async def ListOrders(self, request: orders_pb2.ListOrdersRequest,
                         context: Context) -> orders_pb2.ListOrdersResponse:
        user_id = require(request.user_id, "user_id")
        page, token = self._pager.page(
            self._of_user(user_id), request.page_size, request.page_token, scope=f"orders|{user_id}"
        )
        return orders_pb2.ListOrdersResponse(orders=page, next_page_token=token)

    async def CreateOrder(self, request: orders_pb2.CreateOrderRequest,
                          context: Context) -> orders_pb2.Order:
        user_id = require(request.user_id, "user_id")
        if not request.HasField("order"):
            raise invalid_argument(("order", "is required"))
        violations = list(_violations(request.order.items))
        if violations:
            raise invalid_argument(*violations)
        items = request.order.items
        total = sum(item.quantity * item.unit_price.amount_minor for item in items)
        if total > _INT64_MAX:
            raise invalid_argument(("order.items", "the total does not fit in int64"))
        created = now()
        order = orders_pb2.Order(
            id=f"o-{self._next_number}",
            user_id=user_id,
            status=orders_pb2.ORDER_STATUS_PENDING,
            items=items,
            total=orders_pb2.Money(
                currency_code=items[0].unit_price.currency_code, amount_minor=total
            ),
            create_time=created,
            update_time=created,
        )
        self._next_number += 1
        self._orders[order.id] = order
        self._publish(_Event.KIND_CREATED, order)
        return copy.deepcopy(order)

    async def CancelOrder(self, request: orders_pb2.CancelOrderRequest,
                          context: Context) -> orders_pb2.Order:
        order = self._get(require(request.id, "id"))
        if order.status != orders_pb2.ORDER_STATUS_PENDING:
            status = orders_pb2.OrderStatus.Name(order.status).removeprefix("ORDER_STATUS_")
            raise failed_precondition(
                f'order "{order.id}" is {status}; only PENDING orders can be cancelled',
                subject=f"orders/{order.id}", reason="ORDER_NOT_PENDING", domain=DOMAIN,
            )
        order.status = orders_pb2.ORDER_STATUS_CANCELLED
        order.cancel_reason = request.reason
        order.update_time.CopyFrom(now())
        self._publish(_Event.KIND_UPDATED, order)
        return copy.deepcopy(order)

    async def WatchOrders(self, request: orders_pb2.WatchOrdersRequest,
                          context: Context) -> AsyncIterator[orders_pb2.WatchOrdersResponse]:
        user_id = require(request.user_id, "user_id")
        watcher = _Watcher()
        # subscribe and snapshot with no await in between: no change can fall in the gap
        self._watchers.setdefault(user_id, set()).add(watcher)
        existing = [_Event(kind=_Event.KIND_EXISTING, order=order)
                    for order in self._of_user(user_id)]
        try:
            for event in existing:
                yield event
            while True:
                if watcher.overflowed and watcher.queue.empty():
                    raise failure(
                        code_pb2.ABORTED,
                        f"watch of {user_id} fell more than {WATCH_BUFFER} events behind; "
                        "start a new watch",
                        error_details_pb2.ErrorInfo(reason="WATCH_OVERFLOW", domain=DOMAIN),
                    )
                yield await watcher.queue.get()
        finally:
            watchers = self._watchers[user_id]
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[user_id]

    def _get(self, order_id: str) -> orders_pb2.Order:
        order = self._orders.get(order_id)
        if order is None:
            raise not_found("order", order_id, _RESOURCE)
        return order

    def _of_user(self, user_id: str) -> list[orders_pb2.Order]:
        return newest_first(order for order in self._orders.values() if order.user_id == user_id)

    def _publish(self, kind: orders_pb2.WatchOrdersResponse.Kind,
                 order: orders_pb2.Order) -> None:
        for watcher in self._watchers.get(order.user_id, ()):
            if watcher.overflowed:
                continue
            try:
                watcher.queue.put_nowait(_Event(kind=kind, order=order))  # copies order
            except asyncio.QueueFull:
                watcher.overflowed = True


def _violations(items: Iterable[orders_pb2.LineItem]) -> Iterable[tuple[str, str]]:
    currency = None
    count = 0
    for i, item in enumerate(items):
        count += 1
        where = f"order.items[{i}]"
        if not item.sku:
            yield f"{where}.sku", "is required"
        if item.quantity < 1:
            yield f"{where}.quantity", f"must be at least 1, got {item.quantity}"
        if not item.HasField("unit_price"):
            yield f"{where}.unit_price", "is required"
            continue
        price = item.unit_price
        if price.amount_minor < 0:
            yield f"{where}.unit_price.amount_minor", f"must be >= 0, got {price.amount_minor}"
        if not re.fullmatch("[A-Z]{3}", price.currency_code):
            yield f"{where}.unit_price.currency_code", "must be an ISO 4217 code such as EUR"
        elif currency is None:
            currency = price.currency_code
        elif price.currency_code != currency:
            yield (f"{where}.unit_price.currency_code",
                   f"{price.currency_code} differs from the order's currency {currency}")
    if count == 0:
        yield "order.items", "an order needs at least one item"


if __name__ == "__main__":
    from services.cli import main

    main(["orders"])
