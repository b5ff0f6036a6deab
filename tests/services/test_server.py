"""The backend plumbing: health, reflection, fault injection, call records and error hiding."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.faults import Fault, Faults
from services.server import RunningBackend, serve, start_all, start_backend
from services.status import Context
from services.users import UsersService
from tests.services.rich import message, rpc_error
from tests.services.running import stub
from users.v1 import users_pb2 as pb
from users.v1 import users_pb2_grpc

GET_USER = "/users.v1.Users/GetUser"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _check(channel: grpc.aio.Channel, service: str) -> Any:
    stub = health_pb2_grpc.HealthStub(channel)
    return (await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)).status


async def test_health_is_serving_and_can_be_flipped(users_backend: RunningBackend) -> None:
    async with grpc.aio.insecure_channel(users_backend.address) as channel:
        assert await _check(channel, "") == SERVING
        assert await _check(channel, "users.v1.Users") == SERVING
        error = await rpc_error(_check(channel, "orders.v1.Orders"))
        assert error.code() is grpc.StatusCode.NOT_FOUND

        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service="users.v1.Users"), timeout=10
        )
        assert (await watch.read()).status == SERVING
        await users_backend.set_serving(False)
        assert (await watch.read()).status == NOT_SERVING
        assert await _check(channel, "") == NOT_SERVING
        await users_backend.set_serving(True)
        assert (await watch.read()).status == SERVING
        watch.cancel()


async def test_reflection_lists_the_services(users_backend: RunningBackend) -> None:
    async with grpc.aio.insecure_channel(users_backend.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(timeout=10)
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        listed = await call.read()
        await call.write(
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="users.v1.Users")
        )
        files = await call.read()
        await call.done_writing()
    names = {service.name for service in listed.list_services_response.service}
    assert names == {
        "users.v1.Users", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"
    }
    assert files.file_descriptor_response.file_descriptor_proto  # serialized FileDescriptorProtos


async def test_fail_the_next_n_calls(users_backend: RunningBackend, users: Any) -> None:
    users_backend.faults.set(GET_USER, Fault(code=grpc.StatusCode.UNAVAILABLE, times=2))
    request = pb.GetUserRequest(id="u-1001")
    for _ in range(2):
        error = await rpc_error(users.GetUser(request))
        assert (error.code(), message(error)) == (grpc.StatusCode.UNAVAILABLE, "injected fault")
    assert (await users.GetUser(request)).id == "u-1001"
    assert len(users_backend.faults.calls_to(GET_USER)) == 3


async def test_a_fault_without_times_stays_until_cleared(
    users_backend: RunningBackend, users: Any
) -> None:
    fault = Fault(code=grpc.StatusCode.RESOURCE_EXHAUSTED, message="slow down")
    users_backend.faults.set("users.v1.Users/GetUser", fault)  # the leading "/" is optional
    for _ in range(3):
        error = await rpc_error(users.GetUser(pb.GetUserRequest(id="u-1001")))
        assert message(error) == "slow down"
    users_backend.faults.clear()
    assert (await users.GetUser(pb.GetUserRequest(id="u-1001"))).id == "u-1001"


def test_fault_values_are_checked() -> None:
    with pytest.raises(ValueError, match="times"):
        Fault(times=0)
    with pytest.raises(ValueError, match="error code"):
        Fault(code=grpc.StatusCode.OK)


async def test_delay_is_applied_and_the_call_recorded(
    users_backend: RunningBackend, users: Any
) -> None:
    users_backend.faults.set(GET_USER, Fault(delay_s=0.2))
    started = time.monotonic()
    user = await users.GetUser(
        pb.GetUserRequest(id="u-1002"), timeout=5,
        metadata=(("x-request-id", "r-1"), ("x-request-id", "r-2"), ("x-ctx-bin", b"\0\1")),
    )
    assert user.id == "u-1002"
    assert time.monotonic() - started >= 0.2
    (record,) = users_backend.faults.calls_to(GET_USER)
    assert record.request == pb.GetUserRequest(id="u-1002")
    assert record.metadata["x-request-id"] == ["r-1", "r-2"]
    assert record.metadata["x-ctx-bin"] == [b"\0\1"]
    # grpc-timeout travels rounded up to whole units, so the backend may see a little over 5 s
    assert record.time_remaining is not None and 4 < record.time_remaining < 5.5
    assert record.finished.is_set() and not record.cancelled.is_set()


async def test_no_deadline_is_recorded_as_none(users_backend: RunningBackend, users: Any) -> None:
    await users.GetUser(pb.GetUserRequest(id="u-1001"))
    assert users_backend.faults.calls_to(GET_USER)[0].time_remaining is None


async def test_delay_past_the_deadline_ends_in_deadline_exceeded(
    users_backend: RunningBackend, users: Any
) -> None:
    users_backend.faults.set(GET_USER, Fault(delay_s=30))
    error = await rpc_error(users.GetUser(pb.GetUserRequest(id="u-1001"), timeout=0.2))
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    record = await users_backend.faults.wait_call(GET_USER)
    await asyncio.wait_for(record.cancelled.wait(), 10)  # the backend gave up too


async def test_hang_until_the_client_cancels(users_backend: RunningBackend, users: Any) -> None:
    users_backend.faults.set(GET_USER, Fault(hang=True))
    call = users.GetUser(pb.GetUserRequest(id="u-1001"))
    record = await asyncio.wait_for(users_backend.faults.wait_call(GET_USER), 10)
    assert not record.cancelled.is_set()
    call.cancel()
    await asyncio.wait_for(record.cancelled.wait(), 10)
    assert record.finished.is_set()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_wait_call_waits_for_the_nth_call(users_backend: RunningBackend, users: Any) -> None:
    second = asyncio.ensure_future(users_backend.faults.wait_call(GET_USER, index=1))
    await users.GetUser(pb.GetUserRequest(id="u-1001"))
    assert not second.done()
    await users.GetUser(pb.GetUserRequest(id="u-1003"))
    record = await asyncio.wait_for(second, 10)
    assert record.request == pb.GetUserRequest(id="u-1003")


class _Broken(UsersService):
    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.User:
        raise RuntimeError("db password is hunter2")


async def test_unexpected_errors_are_internal_and_hide_the_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = await serve([_Broken()], faults=Faults())
    try:
        async with stub(backend, users_pb2_grpc.UsersStub) as users:
            with caplog.at_level(logging.ERROR, logger="services.status"):
                error = await rpc_error(users.GetUser(pb.GetUserRequest(id="u-1001")))
            assert (await users.ListUsers(pb.ListUsersRequest(page_size=1))).total_size == 20
    finally:
        await backend.stop()
    assert error.code() is grpc.StatusCode.INTERNAL
    assert message(error) == "internal error"
    assert "hunter2" not in str(error.trailing_metadata())
    assert "hunter2" in caplog.text  # logged on the server side, with the traceback


async def test_start_all_starts_the_demo_trio() -> None:
    backends = await start_all()
    try:
        assert sorted(backends) == ["notifications", "orders", "users"]
        assert len({backend.port for backend in backends.values()}) == 3
        for name, backend in backends.items():
            async with grpc.aio.insecure_channel(backend.address) as channel:
                assert await _check(channel, backend.service_names[0]) == SERVING, name
    finally:
        for backend in backends.values():
            await backend.stop()


async def test_unknown_backend_name_and_taken_port() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        await start_backend("inventory")
    first = await start_backend("users")
    try:
        with pytest.raises(OSError, match="bind"):
            await start_backend("users", port=first.port)
    finally:
        await first.stop()
