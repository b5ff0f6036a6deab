"""Observe, NotePrincipal and BackendTap against plain-function terminals."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.call import Call, Handler, Kind, Principal, Reply, chain
from gateway.errors import Code, NotFound, Unavailable
from gateway.observability.accesslog import AccessLog, LineBuffer, incoming_trace_id
from gateway.observability.exchange import Exchange
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.timing import (
    BackendTap,
    InternalError,
    NotePrincipal,
    Observe,
    server_timing,
)

SERVICES = {"users.v1.Users": "users", "orders.v1.Orders": "orders"}
GET_USER = "/users.v1.Users/GetUser"


def observed(terminal: Handler, metrics: GatewayMetrics | None = None,
             success: dict[str, int] | None = None) -> Handler:
    observe = Observe(metrics, AccessLog(success or {}), incoming_trace_id)
    return chain([observe, NotePrincipal()], BackendTap(terminal, SERVICES, metrics))


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.access"]


@pytest.fixture(autouse=True)
def _access_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.access")


async def test_backend_time_and_name_reach_the_reply_and_the_error() -> None:
    async def users(call: Call) -> Reply:
        if call.payload == b"missing":
            raise NotFound("no such user")
        return Reply(b"ok", backend="users", attempts=2)

    pipeline = observed(users)
    reply = await pipeline(Call(GET_USER, b"", request_id="r1"))
    assert (reply.backend, reply.attempts) == ("users", 2)
    assert reply.backend_s > 0
    with pytest.raises(NotFound) as caught:
        await pipeline(Call(GET_USER, b"missing", request_id="r2"))
    assert caught.value.backend == "users" and caught.value.backend_s > 0


async def test_an_aggregate_reply_names_every_backend_its_parts_called(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def backend(call: Call) -> Reply:
        await asyncio.sleep(0)
        return Reply(b"", backend=SERVICES[call.method[1:].partition("/")[0]])

    async def aggregate(call: Call) -> Reply:  # as the BFF executor: parts via the tapped handler
        await asyncio.gather(tapped(Call(GET_USER, b"")),
                             tapped(Call("/orders.v1.Orders/ListOrders", b"")),
                             tapped(Call(GET_USER, b"")))
        return Reply(b"merged")

    tapped = BackendTap(backend, SERVICES, None)
    observe = Observe(None, AccessLog({}), incoming_trace_id)
    reply = await chain([observe], aggregate)(Call("/dash.v1.Dash/Get", b""))
    assert reply.backend == "users,orders"
    assert reply.backend_s > 0
    [line] = lines(caplog)
    assert (line["backend"], line["attempts"]) == ("users,orders", 3)


async def test_an_unexpected_exception_is_logged_once_and_becomes_internal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(call: Call) -> Reply:
        raise KeyError("boom")

    metrics = GatewayMetrics()
    with pytest.raises(InternalError) as caught:
        await observed(broken, metrics)(Call(GET_USER, b"", request_id="req-42", edge="rest"))
    assert caught.value.code is Code.INTERNAL and caught.value.message == "internal error"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "req-42" in errors[0].getMessage() and errors[0].exc_info is not None
    [line] = lines(caplog)
    assert (line["code"], line["http_status"], line["error"]) == ("INTERNAL", 500,
                                                                  "internal error")
    assert metrics.in_flight == 0


async def stream(messages: int, fail: bool) -> AsyncIterator[bytes]:
    for _ in range(messages):
        yield b"m"
    if fail:
        raise Unavailable("backend went away")


@pytest.mark.parametrize(("fail", "code"), [(False, "OK"), (True, "UNAVAILABLE")])
async def test_a_stream_is_logged_and_counted_when_it_ends(
    caplog: pytest.LogCaptureFixture, fail: bool, code: str,
) -> None:
    async def opens(call: Call) -> Reply:
        return Reply(stream(2, fail), backend="users")

    metrics = GatewayMetrics()
    reply = await observed(opens, metrics)(Call(GET_USER, b"", kind=Kind.SERVER_STREAM))
    assert lines(caplog) == [] and metrics.in_flight == 1
    assert not isinstance(reply.payload, bytes)
    received = []
    try:
        async for message in reply.payload:
            received.append(message)
    except Unavailable:
        pass
    assert received == [b"m", b"m"]
    [line] = lines(caplog)
    assert line["code"] == code
    assert metrics.in_flight == 0


async def test_a_stream_closed_early_is_cancelled(caplog: pytest.LogCaptureFixture) -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"m"
        finally:
            closed.set()

    async def opens(call: Call) -> Reply:
        return Reply(endless(), backend="users")

    reply = await observed(opens)(Call(GET_USER, b"", kind=Kind.SERVER_STREAM))
    assert not isinstance(reply.payload, bytes)
    assert await anext(reply.payload) == b"m"
    await reply.payload.aclose()  # type: ignore[attr-defined]
    assert closed.is_set()  # the backend's stream was closed too
    [line] = lines(caplog)
    assert (line["code"], line["http_status"]) == ("CANCELLED", 499)


async def test_a_cancelled_call_is_logged_as_cancelled(caplog: pytest.LogCaptureFixture) -> None:
    started = asyncio.Event()

    async def hangs(call: Call) -> Reply:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    pipeline = observed(hangs)

    async def run() -> Reply:
        return await pipeline(Call(GET_USER, b""))

    task = asyncio.create_task(run())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [line] = lines(caplog)
    assert line["code"] == "CANCELLED"


@pytest.mark.parametrize(("edge", "status"), [("rest", 201), ("grpc", None), ("", 201)])
async def test_http_status_is_the_rest_one(caplog: pytest.LogCaptureFixture, edge: str,
                                           status: int | None) -> None:
    async def created(call: Call) -> Reply:
        return Reply(b"", backend="users")

    pipeline = observed(created, success={GET_USER: 201})
    await pipeline(Call(GET_USER, b"", edge=edge, principal=Principal("alice")))
    [line] = lines(caplog)
    assert (line["http_status"], line["user"], line["edge"]) == (status, "alice", edge or None)


@pytest.mark.parametrize(("traceparent", "trace_id"), [
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
     "0af7651916cd43dd8448eb211c80319c"),
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331", ""),
    ('00-0af7651916cd43dd8448eb211c8031"}-b7ad6b7169203331-01', ""),
])
def test_incoming_trace_id(traceparent: str, trace_id: str) -> None:
    assert incoming_trace_id(Call(GET_USER, b"", metadata=(("traceparent", traceparent),))) \
        == trace_id


def test_server_timing() -> None:
    assert server_timing(0.0025, 0.002) == "gateway;dur=0.500, backend;dur=2.000"
    assert server_timing(0.0004, 0.0) == "gateway;dur=0.400"


def test_a_line_buffer_writes_bare_json_lines_at_once_outside_a_loop() -> None:
    stream = io.StringIO()
    AccessLog({}, LineBuffer(stream).write).write(
        Exchange(Call(GET_USER, b"", request_id="r-1"), 0.0))
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["request_id"] == "r-1"


async def test_a_line_buffer_batches_lines_until_its_timer_or_its_size() -> None:
    stream = io.StringIO()
    buffer = LineBuffer(stream, interval_s=3600.0, max_lines=3)
    buffer.write("a")
    buffer.write("b")
    assert stream.getvalue() == ""  # waiting for the timer
    buffer.write("c")  # the third line fills the batch
    assert stream.getvalue() == "a\nb\nc\n"
    buffer.write("d")
    buffer.flush()  # as serve does before exit
    assert stream.getvalue() == "a\nb\nc\nd\n"


async def test_a_line_buffer_writes_when_its_timer_fires() -> None:
    stream = io.StringIO()
    buffer = LineBuffer(stream, interval_s=0.0)
    buffer.write("a")
    assert stream.getvalue() == ""
    flushed = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.001, flushed.set_result, None)  # after its timer
    await flushed
    assert stream.getvalue() == "a\n"
