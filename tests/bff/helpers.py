"""BFF unit-test helpers: plans compiled from a config, and a plain async terminal that answers
each backend method with a test-supplied function and records what it was asked."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from dashboard.v1 import dashboard_pb2
from gateway.bff.spec import AggregatePlan
from gateway.call import Call, Principal, Reply
from gateway.compiled import compile_config
from gateway.config import load
from gateway.demo import OVERVIEW, overview_aggregate
from notifications.v1 import notifications_pb2
from orders.v1 import orders_pb2
from tests.conftest import DESCRIPTOR_SET
from users.v1 import users_pb2

GET_USER = "/users.v1.Users/GetUser"
LIST_ORDERS = "/orders.v1.Orders/ListOrders"
COUNT_UNREAD = "/notifications.v1.Notifications/CountUnread"
REQUESTS: Mapping[str, type[Message]] = {
    GET_USER: users_pb2.GetUserRequest,
    LIST_ORDERS: orders_pb2.ListOrdersRequest,
    COUNT_UNREAD: notifications_pb2.CountUnreadRequest,
}
ALICE = Principal("u-1", roles=("member",))


def config(aggregates: Mapping[str, Any] | None = None, **backend: Any) -> dict[str, Any]:
    """A gateway config over the demo services (addresses are never dialled here)."""
    services = {"users": "users.v1.Users", "orders": "orders.v1.Orders",
                "notifications": "notifications.v1.Notifications"}
    return {
        "descriptors": {"descriptor_set": str(DESCRIPTOR_SET)},
        "backends": {name: {"services": [service], "addresses": ["127.0.0.1:1"], **backend}
                     for name, service in services.items()},
        "aggregates": {OVERVIEW: overview_aggregate()} if aggregates is None else aggregates,
    }


def overview_plan(**changes: Any) -> AggregatePlan:
    """The demo overview's plan; `changes` replace top-level keys of the aggregate spec."""
    spec = {**overview_aggregate(), **changes}
    return compile_config(load(config({OVERVIEW: spec}))).aggregates[OVERVIEW]


def overview_call(principal: Principal | None = ALICE, deadline: float | None = None,
                  page_size: int = 0) -> Call:
    return Call(
        method=OVERVIEW,
        payload=dashboard_pb2.GetOverviewRequest(order_page_size=page_size).SerializeToString(),
        metadata=(("x-request-id", "req-1"), ("x-user-id", "u-1")),
        peer="10.0.0.7",
        deadline=deadline,
        idempotent=True,
        principal=principal,
        request_id="req-1",
    )


def overview(reply: Reply) -> dashboard_pb2.Overview:
    assert isinstance(reply.payload, bytes)
    return dashboard_pb2.Overview.FromString(reply.payload)


Answer = Callable[[Any], Awaitable[Message]]


@dataclass(eq=False)
class Seen:
    """One call the terminal received, with its decoded request."""

    call: Call
    request: Any
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False
    finished: bool = False


class Terminal:
    """A plain async Handler in place of the upstream: `answers` per method (missing: the demo
    defaults below); `events` lists ("start"|"end", method, request) in order."""

    def __init__(self, answers: Mapping[str, Answer] | None = None) -> None:
        self.answers = {**DEFAULTS, **(answers or {})}
        self.seen: list[Seen] = []
        self.events: list[tuple[str, str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def to(self, method: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.call.method == method]

    async def __call__(self, call: Call) -> Reply:
        assert isinstance(call.payload, bytes)
        request = REQUESTS[call.method].FromString(call.payload)
        seen = Seen(call, request)
        self.seen.append(seen)
        self.events.append(("start", call.method, request))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = await self.answers[call.method](request)
        except asyncio.CancelledError:
            seen.cancelled = True
            raise
        finally:
            self.in_flight -= 1
            seen.finished = True
            self.events.append(("end", call.method, request))
        return Reply(reply.SerializeToString(), backend="fake")


async def _user(request: users_pb2.GetUserRequest) -> users_pb2.User:
    return users_pb2.User(id=request.id, display_name=f"user {request.id}")


async def _orders(request: orders_pb2.ListOrdersRequest) -> orders_pb2.ListOrdersResponse:
    return orders_pb2.ListOrdersResponse(orders=[
        orders_pb2.Order(id="o-1", user_id=request.user_id),
        orders_pb2.Order(id="o-2", user_id="u-2"),
        orders_pb2.Order(id="o-3", user_id=request.user_id),
    ])


async def _unread(request: notifications_pb2.CountUnreadRequest
                  ) -> notifications_pb2.CountUnreadResponse:
    return notifications_pb2.CountUnreadResponse(unread_count=3)


DEFAULTS: Mapping[str, Answer] = {GET_USER: _user, LIST_ORDERS: _orders, COUNT_UNREAD: _unread}


async def hang(request: Any) -> Message:
    """An answer that never comes: the call ends only when cancelled."""
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable")


def fails(error: Exception) -> Answer:
    async def answer(request: Any) -> Message:
        raise error

    return answer
