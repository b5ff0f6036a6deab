"""What the edges add for observability: X-Gateway-Backend, Server-Timing, the client's W3C
trace context over REST, and the edge in logs and metrics."""

from __future__ import annotations

import json
import logging
import re

import pytest
from opentelemetry.trace import SpanKind

from tests.e2e.stack import running_stack
from tests.observability.conftest import WITH_OPS, sample, scrape, traced_stack
from users.v1 import users_pb2, users_pb2_grpc

GET_USER = "/users.v1.Users/GetUser"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TIMING = re.compile(r"gateway;dur=[0-9]+\.[0-9]{3}, backend;dur=[0-9]+\.[0-9]{3}")


async def test_rest_responses_name_the_backend_and_time_it() -> None:
    async with running_stack() as stack:
        async with stack.http.get(stack.url("/v1/users/u-1001")) as ok:
            assert ok.status == 200
        async with stack.http.get(stack.url("/v1/users/u-nobody")) as missing:
            assert missing.status == 404
        async with stack.http.get(stack.url("/v1/nowhere")) as unrouted:
            assert unrouted.status == 404
        async with stack.http.get(stack.url("/v1/shelves/1/books:stream")) as streamed:
            await streamed.read()
    for response, backend in ((ok, "users"), (missing, "users"), (streamed, "echo")):
        assert response.headers["X-Gateway-Backend"] == backend
        assert TIMING.fullmatch(response.headers["Server-Timing"])
    assert "X-Gateway-Backend" not in unrouted.headers  # never left the gateway
    assert re.fullmatch(r"gateway;dur=[0-9]+\.[0-9]{3}", unrouted.headers["Server-Timing"])


async def test_grpc_replies_name_the_backend() -> None:
    async with running_stack() as stack:
        call = users_pb2_grpc.UsersStub(stack.channel).GetUser(
            users_pb2.GetUserRequest(id="u-1001"))
        await call
        assert ("x-gateway-backend", "users") in list(await call.initial_metadata())


async def test_a_rest_clients_trace_continues_through_the_gateway() -> None:
    async with traced_stack() as (stack, exporter):
        async with stack.http.get(stack.url("/v1/users/u-1001"),
                                  headers={"traceparent": TRACEPARENT}) as response:
            assert response.status == 200
        [server] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
        [record] = stack.backends["users"].faults.calls_to(GET_USER)
    assert format(server.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert server.parent is not None and server.parent.span_id == int("b7ad6b7169203331", 16)
    assert server.attributes is not None and server.attributes["gateway.edge"] == "rest"
    [seen] = record.metadata["traceparent"]
    assert isinstance(seen, str) and seen.split("-")[1] == "0af7651916cd43dd8448eb211c80319c"


async def test_without_tracing_a_rest_clients_context_passes_through() -> None:
    async with running_stack() as stack:
        async with stack.http.get(stack.url("/v1/users/u-1001"),
                                  headers={"traceparent": TRACEPARENT}) as response:
            assert response.status == 200
        [record] = stack.backends["users"].faults.calls_to(GET_USER)
    assert record.metadata["traceparent"] == [TRACEPARENT]


async def test_logs_and_metrics_know_the_edge(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.access")
    async with running_stack(listen=WITH_OPS) as stack:
        async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
            assert response.status == 200
        await users_pb2_grpc.UsersStub(stack.channel).GetUser(
            users_pb2.GetUserRequest(id="u-1001"))
        samples = await scrape(stack)
    rest, grpc_line = (json.loads(r.getMessage()) for r in caplog.records
                       if r.name == "gateway.access")
    assert (rest["edge"], rest["http_status"]) == ("rest", 200)
    assert (grpc_line["edge"], grpc_line["http_status"]) == ("grpc", None)
    for edge in ("rest", "grpc"):
        assert sample(samples, "gateway_requests_total", edge=edge, route=GET_USER,
                      code="OK") == 1
