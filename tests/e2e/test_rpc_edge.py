"""The gRPC edge end to end: ordinary stubs pointed at the gateway, real backends behind it."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from services.faults import Fault
from testing.v1 import transcoding_pb2 as echo_pb2
from testing.v1 import transcoding_pb2_grpc as echo_grpc
from tests.e2e.stack import Stack
from users.v1 import users_pb2, users_pb2_grpc


async def test_unary_call_passes_through_unchanged(stack: Stack) -> None:
    via_gateway = users_pb2_grpc.UsersStub(stack.channel)
    async with grpc.aio.insecure_channel(stack.backends["users"].address) as direct_channel:
        direct = users_pb2_grpc.UsersStub(direct_channel)
        request = users_pb2.GetUserRequest(id="u-1001")
        assert await via_gateway.GetUser(request) == await direct.GetUser(request)


async def test_error_status_message_and_details_preserved(stack: Stack) -> None:
    stub = users_pb2_grpc.UsersStub(stack.channel)
    call = stub.ListUsers(users_pb2.ListUsersRequest(page_size=1000))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "page_size" in (caught.value.details() or "")
    status = await rpc_status.aio.from_call(call)  # grpc-status-details-bin survived both hops
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert bad_request.field_violations[0].field == "page_size"


async def test_server_stream_then_error_mid_stream(stack: Stack) -> None:
    stub = echo_grpc.EchoStub(stack.channel)
    call = stub.StreamBooks(echo_pb2.StreamBooksRequest(parent="shelves/7", count=3,
                                                        fail_code=grpc.StatusCode.ABORTED.value[0]))
    names = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for book in call:
            names.append(book.name)
    assert names == ["shelves/7/books/1", "shelves/7/books/2", "shelves/7/books/3"]
    assert caught.value.code() is grpc.StatusCode.ABORTED


async def test_client_stream_and_bidi(stack: Stack) -> None:
    stub = echo_grpc.EchoStub(stack.channel)

    async def books(n: int) -> object:
        for i in range(n):
            yield echo_pb2.CollectBooksRequest(book=echo_pb2.Book(name=f"b{i}"))

    assert (await stub.CollectBooks(books(5))).count == 5

    chat = stub.ChatBooks()
    for i in range(3):
        await chat.write(echo_pb2.ChatBooksRequest(book=echo_pb2.Book(title=f"t{i}")))
        reply = await chat.read()  # each message answered before the next is sent
        assert reply.book.title == f"t{i}"
    await chat.done_writing()
    assert await chat.read() is grpc.aio.EOF


async def test_unknown_method_is_unimplemented(stack: Stack) -> None:
    unknown: Any = stack.channel.unary_unary("/users.v1.Users/Nope")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unknown(b"")
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED


async def test_metadata_and_request_id_reach_the_backend(stack: Stack) -> None:
    stub = users_pb2_grpc.UsersStub(stack.channel)
    call = stub.GetUser(users_pb2.GetUserRequest(id="u-1001"),
                        metadata=(("x-request-id", "req-42"), ("x-tenant", "acme"),
                                  ("trace-bin", b"\x00\x01")))
    await call
    record = stack.backends["users"].faults.calls_to("/users.v1.Users/GetUser")[-1]
    assert record.metadata["x-request-id"] == ["req-42"]
    assert record.metadata["x-tenant"] == ["acme"]
    assert record.metadata["trace-bin"] == [b"\x00\x01"]
    assert ("x-request-id", "req-42") in tuple(await call.initial_metadata())


async def test_malformed_request_id_is_replaced(stack: Stack) -> None:
    stub = users_pb2_grpc.UsersStub(stack.channel)
    call = stub.GetUser(users_pb2.GetUserRequest(id="u-1001"),
                        metadata=(("x-request-id", "bad id with spaces"),))
    await call
    sent = dict(await call.initial_metadata())["x-request-id"]
    record = stack.backends["users"].faults.calls_to("/users.v1.Users/GetUser")[-1]
    assert sent != "bad id with spaces"
    assert record.metadata["x-request-id"] == [sent]


async def test_deadline_propagates_and_expires(stack: Stack) -> None:
    """T-16: the backend sees no more than the client gave; T-15: expiry is DEADLINE_EXCEEDED."""
    faults = stack.backends["users"].faults
    faults.set("/users.v1.Users/GetUser", Fault(hang=True))
    stub = users_pb2_grpc.UsersStub(stack.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetUser(users_pb2.GetUserRequest(id="u-1001"), timeout=0.3)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    record = faults.calls_to("/users.v1.Users/GetUser")[-1]
    assert record.time_remaining is not None and record.time_remaining <= 0.3
    await asyncio.wait_for(record.cancelled.wait(), 2)  # the backend call ended with it


async def test_client_cancel_cancels_the_backend_call(stack: Stack) -> None:
    """T-17: the client goes away, the backend call is cancelled."""
    faults = stack.backends["users"].faults
    faults.set("/users.v1.Users/GetUser", Fault(hang=True))
    stub = users_pb2_grpc.UsersStub(stack.channel)
    call = stub.GetUser(users_pb2.GetUserRequest(id="u-1001"))
    record = await asyncio.wait_for(faults.wait_call("/users.v1.Users/GetUser"), 5)
    call.cancel()
    await asyncio.wait_for(record.cancelled.wait(), 2)


async def test_gateway_health_and_reflection(stack: Stack) -> None:
    health = health_pb2_grpc.HealthStub(stack.channel)
    for service in ("", "users.v1.Users", "testing.v1.Echo"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(stack.channel)

    async def ask() -> object:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for answer in reflection.ServerReflectionInfo(ask()):
        names = {s.name for s in answer.list_services_response.service}
        assert {"users.v1.Users", "orders.v1.Orders", "testing.v1.Echo"} <= names
