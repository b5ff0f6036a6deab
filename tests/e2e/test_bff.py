"""The dashboard overview aggregate end to end: real backends with injected faults, a real gateway,
the same test through both edges. Ordering is proven with the backends' call records and events,
never with wall-clock asserts."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from multidict import CIMultiDict

from dashboard.v1 import dashboard_pb2, dashboard_pb2_grpc
from gateway.demo import OVERVIEW, overview_aggregate
from services.faults import CallRecord, Fault
from tests.e2e.stack import Stack, running_stack

EDGES = ["rest", "grpc"]
API_KEY = "bff-test-key-0123456789"
GET_USER = "/users.v1.Users/GetUser"
LIST_ORDERS = "/orders.v1.Orders/ListOrders"
COUNT_UNREAD = "/notifications.v1.Notifications/CountUnread"
PARTS = {"users": GET_USER, "orders": LIST_ORDERS, "notifications": COUNT_UNREAD}
_T = TypeVar("_T")


@asynccontextmanager
async def bff_stack(**backend_options: Any) -> AsyncIterator[Stack]:
    async with running_stack(
        backend_options,
        auth={"api_keys": [{"sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
                            "owner": "u-1001"}]},
        aggregates={OVERVIEW: overview_aggregate()},
    ) as stack:
        yield stack


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with bff_stack() as running:
        yield running


@dataclass(frozen=True)
class Outcome:
    code: int  # google.rpc.Code (0 = OK)
    body: dict[str, Any]  # the Overview in proto3 JSON, or the REST error body
    http_status: int | None  # REST only
    headers: CIMultiDict[str]  # REST headers, or gRPC initial + trailing metadata


async def get_overview(stack: Stack, edge: str, *, key: str | None = API_KEY,
                       headers: dict[str, str] | None = None, timeout_ms: int | None = None,
                       page_size: int = 0) -> Outcome:
    sent = dict(headers or {})
    if key is not None:
        sent["x-api-key"] = key
    if edge == "rest":
        if timeout_ms is not None:
            sent["X-Timeout"] = str(timeout_ms)
        query = f"?orderPageSize={page_size}" if page_size else ""
        async with stack.http.get(stack.url(f"/v1/dashboard/overview{query}"),
                                  headers=sent) as r:
            body = await r.json()
            return Outcome(body.get("code", 0) if r.status >= 400 else 0, body, r.status,
                           CIMultiDict(r.headers))
    stub = dashboard_pb2_grpc.DashboardStub(stack.channel)
    call = stub.GetOverview(
        dashboard_pb2.GetOverviewRequest(order_page_size=page_size),
        metadata=tuple((k.lower(), v) for k, v in sent.items()),
        timeout=None if timeout_ms is None else timeout_ms / 1000,
    )
    try:
        body = json_format.MessageToDict(await call)
        code = 0
    except grpc.aio.AioRpcError as exc:
        body, code = {"message": exc.details()}, exc.code().value[0]
    pairs = [*(await call.initial_metadata() or ()), *(await call.trailing_metadata() or ())]
    return Outcome(code, body, None, CIMultiDict((str(k), str(v)) for k, v in pairs))


async def within(awaitable: Awaitable[_T], seconds: float = 5.0) -> _T:
    """Wait for an event of the test; a stuck wait is a failure, not a hung test run."""
    async with asyncio.timeout(seconds):
        return await awaitable


async def arrived(stack: Stack, backend: str, method: str, index: int = 0) -> CallRecord:
    return await within(stack.backends[backend].faults.wait_call(method, index))


def part_calls(stack: Stack) -> list[CallRecord]:
    return [call for name in PARTS for call in stack.backends[name].faults.api_calls]


def failed_parts(outcome: Outcome) -> list[tuple[str, int]]:
    return [(error["part"], error["code"]) for error in outcome.body.get("errors", [])]


async def test_reflection_and_health_list_the_aggregate_service(stack: Stack) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(stack.channel)

    async def ask() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        yield reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="dashboard.v1.Dashboard")

    answers = [answer async for answer in reflection.ServerReflectionInfo(ask())]
    names = {s.name for s in answers[0].list_services_response.service}
    assert {"dashboard.v1.Dashboard", "users.v1.Users"} <= names
    assert answers[1].file_descriptor_response.file_descriptor_proto  # its descriptor too
    health = health_pb2_grpc.HealthStub(stack.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service="dashboard.v1.Dashboard"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_same_overview_through_both_edges(stack: Stack) -> None:
    rest = await get_overview(stack, "rest", page_size=2)
    rpc = await get_overview(stack, "grpc", page_size=2)
    assert (rest.code, rest.http_status, rpc.code) == (0, 200, 0)
    assert rest.body == rpc.body
    body = rest.body
    assert body["profile"]["id"] == "u-1001"
    assert [order["userId"] for order in body["recentOrders"]["orders"]] == ["u-1001"] * 2
    assert body["unread"]["unreadCount"] >= 1
    assert [user["id"] for user in body["orderUsers"]] == ["u-1001"]  # once, however many orders
    assert "errors" not in body
    (orders, _) = stack.backends["orders"].faults.calls_to(LIST_ORDERS)
    assert orders.request is not None and orders.request.page_size == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize("edge", EDGES)
async def test_every_part_call_carries_the_request_id_and_the_callers_identity(
    stack: Stack, edge: str
) -> None:
    spoof = {"X-User-Id": "mallory", "X-User-Roles": "admin", "X-Request-ID": "bff-req-42"}
    outcome = await get_overview(stack, edge, headers=spoof, timeout_ms=4000)
    assert outcome.code == 0
    assert outcome.headers["x-request-id"] == "bff-req-42"
    calls = part_calls(stack)
    assert sorted(call.method for call in calls) == sorted([*PARTS.values(), GET_USER])
    for call in calls:
        assert call.metadata["x-request-id"] == ["bff-req-42"]
        assert call.metadata["x-user-id"] == ["u-1001"]  # the API key's owner, not the spoof
        assert call.metadata["x-user-auth"] == ["api_key"]
        assert "x-user-roles" not in call.metadata or call.metadata["x-user-roles"] == [""]
        assert "x-api-key" not in call.metadata  # credentials are not sent on
        assert call.time_remaining is not None and call.time_remaining <= 4.0


@pytest.mark.parametrize("edge", EDGES)
async def test_parts_are_in_flight_together_and_a_client_going_away_cancels_them(
    stack: Stack, edge: str
) -> None:
    for backend, method in PARTS.items():
        stack.backends[backend].faults.set(method, Fault(hang=True))
    request = asyncio.create_task(get_overview(stack, edge))
    records = [await arrived(stack, backend, method) for backend, method in PARTS.items()]
    # all three reached their backends while none of them had answered: they run concurrently
    assert not any(record.finished.is_set() for record in records)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    for record in records:
        await within(record.cancelled.wait())


@pytest.mark.parametrize("edge", EDGES)
async def test_a_failed_optional_part_is_reported_and_the_call_succeeds(stack: Stack,
                                                                       edge: str) -> None:
    stack.backends["notifications"].faults.set(COUNT_UNREAD, Fault(code=grpc.StatusCode.INTERNAL,
                                                                  message="inbox on fire"))
    outcome = await get_overview(stack, edge)
    assert (outcome.code, outcome.http_status) == (0, 200 if edge == "rest" else None)
    assert outcome.body["errors"] == [{"part": "unread", "code": 13, "message": "inbox on fire"}]
    assert "unread" not in outcome.body
    assert outcome.body["profile"]["id"] == "u-1001"
    assert outcome.body["recentOrders"]["orders"]


@pytest.mark.parametrize("edge", EDGES)
async def test_a_failed_required_part_fails_the_call_and_cancels_the_running_parts(
    stack: Stack, edge: str
) -> None:
    stack.backends["orders"].faults.set(LIST_ORDERS, Fault(hang=True))
    stack.backends["notifications"].faults.set(COUNT_UNREAD, Fault(hang=True))
    # service time for the others to reach their backends first; the asserts below do not
    # depend on it (a part cancelled before it is sent would leave no record and fail them)
    stack.backends["users"].faults.set(GET_USER, Fault(delay_s=0.3, code=grpc.StatusCode.NOT_FOUND,
                                                       message="no user u-1001"))
    outcome = await get_overview(stack, edge)
    assert outcome.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert outcome.body["message"] == "no user u-1001"
    if edge == "rest":
        assert outcome.http_status == 404
    for backend in ("orders", "notifications"):
        record = await arrived(stack, backend, PARTS[backend])
        await within(record.cancelled.wait())
    assert len(stack.backends["users"].faults.calls_to(GET_USER)) == 1  # order_users never ran


@pytest.mark.parametrize("edge", EDGES)
async def test_an_optional_part_outliving_the_deadline_is_reported(stack: Stack,
                                                                   edge: str) -> None:
    stack.backends["notifications"].faults.set(COUNT_UNREAD, Fault(hang=True))
    outcome = await get_overview(stack, edge, timeout_ms=400)
    assert outcome.code == 0
    assert failed_parts(outcome) == [("unread", grpc.StatusCode.DEADLINE_EXCEEDED.value[0])]
    hung = stack.backends["notifications"].faults.calls_to(COUNT_UNREAD)[0]
    await within(hung.cancelled.wait())
    for call in part_calls(stack):  # no part may have more time than the aggregate
        assert call.time_remaining is not None and call.time_remaining < 0.4


@pytest.mark.parametrize("edge", EDGES)
async def test_a_dependent_part_waits_for_its_dependency(stack: Stack, edge: str) -> None:
    stack.backends["orders"].faults.set(LIST_ORDERS, Fault(hang=True))
    request = asyncio.create_task(get_overview(stack, edge, timeout_ms=1000))
    await arrived(stack, "orders", LIST_ORDERS)
    await arrived(stack, "users", GET_USER)  # the profile
    await arrived(stack, "notifications", COUNT_UNREAD)
    # recent_orders is still running: order_users (another GetUser) has not been called
    assert len(stack.backends["users"].faults.calls_to(GET_USER)) == 1
    outcome = await within(request)
    deadline = grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert failed_parts(outcome) == [("recent_orders", deadline), ("order_users", deadline)]
    assert outcome.body["errors"][1]["message"] == "not called: part 'recent_orders' failed"
    assert len(stack.backends["users"].faults.calls_to(GET_USER)) == 1


@pytest.mark.parametrize("edge", EDGES)
async def test_a_required_part_outliving_the_deadline_fails_the_call(stack: Stack,
                                                                     edge: str) -> None:
    stack.backends["users"].faults.set(GET_USER, Fault(hang=True))
    outcome = await get_overview(stack, edge, timeout_ms=300)
    assert outcome.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    if edge == "rest":
        assert outcome.http_status == 504
    hung = stack.backends["users"].faults.calls_to(GET_USER)[0]
    await within(hung.cancelled.wait())


@pytest.mark.parametrize("edge", EDGES)
async def test_a_part_behind_an_open_breaker_fails_at_once(edge: str) -> None:
    breaker = {"breaker": {"consecutive_failures": 1}, "retry": {"attempts": 1}}
    async with bff_stack(notifications=breaker) as stack:
        faults = stack.backends["notifications"].faults
        faults.set(COUNT_UNREAD, Fault(code=grpc.StatusCode.INTERNAL))
        first = await get_overview(stack, edge)
        assert failed_parts(first) == [("unread", grpc.StatusCode.INTERNAL.value[0])]
        # the breaker is open now: a hanging backend is not even asked, and nothing waits for it
        faults.set(COUNT_UNREAD, Fault(hang=True))
        second = await get_overview(stack, edge, timeout_ms=10_000)
        assert failed_parts(second) == [("unread", grpc.StatusCode.UNAVAILABLE.value[0])]
        assert "circuit open" in second.body["errors"][0]["message"]
        assert len(faults.calls_to(COUNT_UNREAD)) == 1
        assert second.body["profile"]["id"] == "u-1001"


@pytest.mark.parametrize("edge", EDGES)
async def test_an_anonymous_caller_is_unauthenticated_and_no_part_is_called(stack: Stack,
                                                                            edge: str) -> None:
    outcome = await get_overview(stack, edge, key=None)
    assert outcome.code == grpc.StatusCode.UNAUTHENTICATED.value[0]
    if edge == "rest":
        assert outcome.http_status == 401
        assert outcome.headers["WWW-Authenticate"].startswith("Bearer")
    assert part_calls(stack) == []


async def test_the_aggregate_passes_through_the_policy_chain() -> None:
    """Authorization rules apply to the aggregate's own method, before any part runs."""
    async with running_stack(
        auth={"api_keys": [{"sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
                            "owner": "u-1001"}]},
        authorization={"rules": [{"match": OVERVIEW, "roles": ["admin"]}]},
        aggregates={OVERVIEW: overview_aggregate()},
    ) as stack:
        for edge in EDGES:
            outcome = await get_overview(stack, edge)
            assert outcome.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
        assert part_calls(stack) == []


@pytest.mark.parametrize("edge", EDGES)
async def test_each_part_is_authorized_for_its_own_method(edge: str) -> None:
    """The aggregate never reaches a method its caller may not call directly."""
    async with running_stack(
        auth={"api_keys": [{"sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
                            "owner": "u-1001"}]},
        authorization={"rules": [{"match": "/notifications.v1.Notifications/*",
                                  "roles": ["admin"]}]},
        aggregates={OVERVIEW: overview_aggregate()},
    ) as stack:
        outcome = await get_overview(stack, edge)
        assert outcome.code == 0
        assert failed_parts(outcome) == [("unread", grpc.StatusCode.PERMISSION_DENIED.value[0])]
        assert stack.backends["notifications"].faults.api_calls == ()
        assert outcome.body["profile"]["id"] == "u-1001"


@pytest.mark.parametrize("edge", EDGES)
async def test_a_required_fan_out_over_max_calls_is_a_bad_request_not_429(edge: str) -> None:
    """The request asks for more calls than the part allows: 400 / INVALID_ARGUMENT (no quota
    ran out, so not 429), before any of those calls is made (issue 11, item 9)."""
    aggregate = overview_aggregate()
    aggregate["parts"]["recent_orders"]["required"] = True
    aggregate["parts"]["order_users"].update(
        required=True, max_calls=1, request={"id": "recent_orders.orders.id"})
    async with running_stack(
        auth={"api_keys": [{"sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
                            "owner": "u-1001"}]},
        aggregates={OVERVIEW: aggregate},
    ) as stack:
        outcome = await get_overview(stack, edge, page_size=2)
        assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert outcome.body["message"] == ("part 'order_users' would make 2 calls, more than "
                                           "its max_calls of 1")
        if edge == "rest":
            assert outcome.http_status == 400
        assert len(stack.backends["users"].faults.calls_to(GET_USER)) == 1  # the profile only
