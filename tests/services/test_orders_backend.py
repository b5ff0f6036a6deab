"""orders.v1.Orders over a real channel: reads, creation rules, cancellation and the live feed."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from orders.v1 import orders_pb2 as pb
from services.orders import OrdersService
from services.server import RunningBackend
from tests.services.rich import detail, message, rpc_error, violated_fields

WATCH = "/orders.v1.Orders/WatchOrders"
Event = pb.WatchOrdersResponse


def _item(sku: str = "MG-5001", quantity: int = 2, amount: int = 1450,
          currency: str = "EUR") -> pb.LineItem:
    return pb.LineItem(sku=sku, title="Coffee Mug", quantity=quantity,
                       unit_price=pb.Money(currency_code=currency, amount_minor=amount))


def _create(user_id: str, *items: pb.LineItem) -> pb.CreateOrderRequest:
    return pb.CreateOrderRequest(user_id=user_id, order=pb.Order(items=items))


async def test_get_order_returns_the_seeded_order(orders: Any) -> None:
    order = await orders.GetOrder(pb.GetOrderRequest(id="o-5001"))
    assert order.user_id == "u-1001"
    assert order.total.amount_minor == sum(
        item.quantity * item.unit_price.amount_minor for item in order.items
    )
    assert order.total.currency_code == "EUR"


async def test_get_unknown_order_is_not_found_naming_the_id(orders: Any) -> None:
    error = await rpc_error(orders.GetOrder(pb.GetOrderRequest(id="o-1")))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert message(error) == 'order "o-1" not found'
    assert detail(error, error_details_pb2.ResourceInfo).resource_name == "o-1"


async def test_list_orders_is_newest_first_and_pages(orders: Any) -> None:
    everything = await orders.ListOrders(pb.ListOrdersRequest(user_id="u-1001"))
    assert [order.id for order in everything.orders] == ["o-5004", "o-5003", "o-5002", "o-5001"]
    assert everything.next_page_token == ""
    first = await orders.ListOrders(pb.ListOrdersRequest(user_id="u-1001", page_size=3))
    rest = await orders.ListOrders(
        pb.ListOrdersRequest(user_id="u-1001", page_size=3, page_token=first.next_page_token)
    )
    assert [*first.orders, *rest.orders] == list(everything.orders)
    assert rest.next_page_token == ""


async def test_list_orders_token_is_bound_to_the_user(orders: Any) -> None:
    first = await orders.ListOrders(pb.ListOrdersRequest(user_id="u-1001", page_size=1))
    request = pb.ListOrdersRequest(user_id="u-1003", page_size=1, page_token=first.next_page_token)
    assert violated_fields(await rpc_error(orders.ListOrders(request))) == ["page_token"]


async def test_list_orders_needs_a_user(orders: Any) -> None:
    error = await rpc_error(orders.ListOrders(pb.ListOrdersRequest()))
    assert violated_fields(error) == ["user_id"]


async def test_create_order_computes_the_total(orders: Any) -> None:
    order = await orders.CreateOrder(_create(
        "u-1001", _item(quantity=2, amount=1450), _item(sku="CB-4001", quantity=3, amount=1299)
    ))
    assert order.id == "o-5043"
    assert order.status == pb.ORDER_STATUS_PENDING
    assert order.total == pb.Money(currency_code="EUR", amount_minor=2 * 1450 + 3 * 1299)
    assert await orders.GetOrder(pb.GetOrderRequest(id=order.id)) == order


@pytest.mark.parametrize(
    ("items", "fields"),
    [
        pytest.param((), ["order.items"], id="no-items"),
        pytest.param((_item(quantity=0),), ["order.items[0].quantity"], id="quantity"),
        pytest.param((_item(), _item(amount=-1)), ["order.items[1].unit_price.amount_minor"],
                     id="negative-price"),
        pytest.param((_item(), _item(currency="USD")), ["order.items[1].unit_price.currency_code"],
                     id="mixed-currencies"),
        pytest.param((_item(sku="", quantity=-2),),
                     ["order.items[0].sku", "order.items[0].quantity"], id="every-violation"),
        pytest.param((pb.LineItem(sku="X", quantity=1),), ["order.items[0].unit_price"],
                     id="no-price"),
        pytest.param((_item(quantity=2**31 - 1, amount=2**62),), ["order.items"], id="overflow"),
    ],
)
async def test_create_order_rejects_bad_items(orders: Any, items: tuple[pb.LineItem, ...],
                                              fields: list[str]) -> None:
    error = await rpc_error(orders.CreateOrder(_create("u-1001", *items)))
    assert violated_fields(error) == fields
    assert fields[0] in message(error)


async def test_cancel_pending_order(orders: Any) -> None:
    order = await orders.CancelOrder(pb.CancelOrderRequest(id="o-5004", reason="found it cheaper"))
    assert order.status == pb.ORDER_STATUS_CANCELLED
    assert order.cancel_reason == "found it cheaper"
    assert (await orders.GetOrder(pb.GetOrderRequest(id="o-5004"))).status == order.status


@pytest.mark.parametrize("order_id", ["o-5002", "o-5003"])  # shipped, already cancelled
async def test_cancel_non_pending_order_fails_precondition(orders: Any, order_id: str) -> None:
    error = await rpc_error(orders.CancelOrder(pb.CancelOrderRequest(id=order_id)))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert f'order "{order_id}"' in message(error)
    assert detail(error, error_details_pb2.ErrorInfo).reason == "ORDER_NOT_PENDING"


async def test_cancel_unknown_order_is_not_found(orders: Any) -> None:
    error = await rpc_error(orders.CancelOrder(pb.CancelOrderRequest(id="o-77")))
    assert message(error) == 'order "o-77" not found'


async def test_watch_orders_sends_existing_then_live_changes(
    orders_backend: RunningBackend, orders: Any
) -> None:
    service = orders_backend.servicers[0]
    assert isinstance(service, OrdersService)
    watch = orders.WatchOrders(pb.WatchOrdersRequest(user_id="u-1001"), timeout=10)
    existing = [await watch.read() for _ in range(4)]
    assert [event.kind for event in existing] == [Event.KIND_EXISTING] * 4
    assert [event.order.id for event in existing] == ["o-5004", "o-5003", "o-5002", "o-5001"]
    assert service.watcher_count("u-1001") == 1

    await orders.CreateOrder(_create("u-1002", _item(currency="GBP")))  # someone else's
    created = await orders.CreateOrder(_create("u-1001", _item()))
    event = await watch.read()
    assert (event.kind, event.order) == (Event.KIND_CREATED, created)

    cancelled = await orders.CancelOrder(pb.CancelOrderRequest(id=created.id, reason="oops"))
    event = await watch.read()
    assert (event.kind, event.order) == (Event.KIND_UPDATED, cancelled)
    assert event.order.status == pb.ORDER_STATUS_CANCELLED

    watch.cancel()
    record = orders_backend.faults.calls_to(WATCH)[0]
    await asyncio.wait_for(record.cancelled.wait(), 10)
    assert service.watcher_count() == 0


async def test_watch_orders_needs_a_user(orders: Any) -> None:
    watch = orders.WatchOrders(pb.WatchOrdersRequest(), timeout=10)
    error = await rpc_error(watch.read())
    assert violated_fields(error) == ["user_id"]
