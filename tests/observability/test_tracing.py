"""Tracing through a real stack: spans captured by the SDK's in-memory exporter, and the
traceparent each real backend saw."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from gateway.config import Tracing
from gateway.observability.tracing import TraceRequests, tracer_provider
from services.faults import Fault
from tests.e2e.stack import Stack, running_stack
from tests.observability.conftest import by_name, traced_stack
from users.v1 import users_pb2, users_pb2_grpc

GET_USER = "/users.v1.Users/GetUser"
CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"


def seen_traceparents(stack: Stack, method: str = GET_USER) -> list[str]:
    """The traceparent of each call the users backend got, one value per call."""
    found = []
    for record in stack.backends["users"].faults.calls_to(method):
        values = record.metadata.get("traceparent", [])
        assert len(values) == 1, values
        assert isinstance(values[0], str)
        found.append(values[0])
    return found


def the_server_span(spans: tuple[ReadableSpan, ...]) -> ReadableSpan:
    servers = [span for span in spans if span.kind is SpanKind.SERVER]
    assert len(servers) == 1, [span.name for span in spans]
    return servers[0]


async def test_grpc_call_continues_the_clients_trace_down_to_the_backend() -> None:
    async with traced_stack() as (stack, exporter):
        stub = users_pb2_grpc.UsersStub(stack.channel)
        await stub.GetUser(users_pb2.GetUserRequest(id="u-1001"),
                           metadata=(("traceparent", TRACEPARENT),))
        spans = exporter.get_finished_spans()
        server = the_server_span(spans)
        assert server.name == GET_USER
        assert server.parent is not None and server.parent.is_remote
        assert server.parent.span_id == int(CLIENT_SPAN, 16)
        assert {format(span.context.trace_id, "032x") for span in spans} == {CLIENT_TRACE}

        [traceparent] = seen_traceparents(stack)
        version, trace_id, parent_id, flags = traceparent.split("-")
        assert (version, trace_id, flags) == ("00", CLIENT_TRACE, "01")
        # The backend's parent is the backend call's span, a child of the request's.
        upstream = by_name(spans)[f"upstream {GET_USER}"]
        assert upstream.kind is SpanKind.CLIENT
        assert upstream.context.span_id == int(parent_id, 16)
        assert upstream.parent is not None and upstream.parent.span_id == server.context.span_id


async def test_rest_call_starts_a_trace_with_route_backend_code_and_attempts() -> None:
    async with traced_stack() as (stack, exporter):
        async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
            assert response.status == 200
        spans = exporter.get_finished_spans()
        server = the_server_span(spans)
        assert server.parent is None
        assert server.attributes is not None
        assert dict(server.attributes) | {"gateway.request_id": "-", "gateway.edge": "-"} == {
            "rpc.system": "grpc", "rpc.service": "users.v1.Users", "rpc.method": "GetUser",
            "gateway.route": GET_USER, "gateway.edge": "-", "gateway.request_id": "-",
            "gateway.backend": "users", "gateway.attempts": 1, "gateway.retries": 0,
            "rpc.grpc.status_code": 0,
        }
        assert server.attributes["gateway.request_id"] == response.headers["X-Request-ID"]
        assert server.status.status_code is StatusCode.UNSET
        [traceparent] = seen_traceparents(stack)
        assert traceparent.split("-")[1] == format(server.context.trace_id, "032x")


async def test_a_client_error_is_recorded_but_is_not_a_server_fault() -> None:
    async with traced_stack() as (stack, exporter):
        async with stack.http.get(stack.url("/v1/users/u-nobody")) as response:
            assert response.status == 404
        server = the_server_span(exporter.get_finished_spans())
        assert server.attributes is not None
        assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
        assert server.attributes["gateway.backend"] == "users"
        assert server.status.status_code is StatusCode.UNSET


async def test_a_retried_call_counts_its_retries_and_each_attempt_carries_the_trace() -> None:
    async with traced_stack() as (stack, exporter):
        stack.backends["users"].faults.set(GET_USER, Fault(code=grpc.StatusCode.UNAVAILABLE,
                                                           times=1))
        async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
            assert response.status == 200
        server = the_server_span(exporter.get_finished_spans())
        assert server.attributes is not None
        assert (server.attributes["gateway.attempts"], server.attributes["gateway.retries"]) \
            == (2, 1)
        trace_id = format(server.context.trace_id, "032x")
        assert [seen.split("-")[1] for seen in seen_traceparents(stack)] == [trace_id, trace_id]


async def test_an_unavailable_backend_is_a_server_fault() -> None:
    async with traced_stack() as (stack, exporter):
        stack.backends["users"].faults.set(GET_USER, Fault(code=grpc.StatusCode.UNAVAILABLE))
        async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
            assert response.status == 503
        server = the_server_span(exporter.get_finished_spans())
        assert server.status.status_code is StatusCode.ERROR
        assert server.attributes is not None
        assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNAVAILABLE.value[0]


@pytest.mark.parametrize(("query", "code"), [
    pytest.param("count=3", grpc.StatusCode.OK, id="complete"),
    pytest.param("count=2&failCode=10", grpc.StatusCode.ABORTED, id="fails-after-two"),
])
async def test_a_stream_span_ends_with_the_stream(query: str, code: grpc.StatusCode) -> None:
    async with traced_stack() as (stack, exporter):
        async with stack.http.get(stack.url(f"/v1/shelves/3/books:stream?{query}")) as response:
            assert response.status == 200
            lines = (await response.text()).splitlines()
        assert len(lines) == 3
        server = the_server_span(exporter.get_finished_spans())
        assert server.name == "/testing.v1.Echo/StreamBooks"
        assert server.attributes is not None
        assert server.attributes["rpc.grpc.status_code"] == code.value[0]
        assert server.attributes["gateway.backend"] == "echo"


async def test_a_client_going_away_still_cancels_the_backend_call() -> None:
    """T-17 with tracing on; the spans end as CANCELLED."""
    async with traced_stack() as (stack, exporter):
        faults = stack.backends["users"].faults
        faults.set(GET_USER, Fault(hang=True))
        call = users_pb2_grpc.UsersStub(stack.channel).GetUser(
            users_pb2.GetUserRequest(id="u-1001"))
        record = await asyncio.wait_for(faults.wait_call(GET_USER), 5)
        call.cancel()
        await asyncio.wait_for(record.cancelled.wait(), 2)
        # one event loop: the gateway's task unwound (its spans ended) before the backend ran
        spans = by_name(exporter.get_finished_spans())
    for name in (GET_USER, f"upstream {GET_USER}"):
        attributes = spans[name].attributes
        assert attributes is not None
        assert attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]


async def test_unsampled_traces_record_nothing_but_still_propagate() -> None:
    unsampled = {"tracing": {"exporter": "console", "sample_ratio": 0}}
    async with traced_stack(observability=unsampled) as (stack, exporter):
        async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
            assert response.status == 200
        assert exporter.get_finished_spans() == ()
        [traceparent] = seen_traceparents(stack)
        assert int(traceparent.split("-")[3], 16) & 1 == 0  # the backend learns: not sampled
        # a client that samples decides for the gateway (parent-based sampling)
        stub = users_pb2_grpc.UsersStub(stack.channel)
        await stub.GetUser(users_pb2.GetUserRequest(id="u-1001"),
                           metadata=(("traceparent", TRACEPARENT),))
        assert the_server_span(exporter.get_finished_spans()).name == GET_USER


async def test_tracing_off_is_out_of_the_chain_and_passes_the_clients_context_on() -> None:
    async with running_stack() as stack:
        observability = stack.gateway.runtime.observability
        assert observability.tracer_provider is None
        assert not any(isinstance(policy, TraceRequests) for policy in observability.head)
        stub = users_pb2_grpc.UsersStub(stack.channel)
        await stub.GetUser(users_pb2.GetUserRequest(id="u-1001"),
                           metadata=(("traceparent", TRACEPARENT),))
        assert seen_traceparents(stack) == [TRACEPARENT]


async def test_otlp_exporter_sends_spans_to_a_collector() -> None:
    """A real OTLP/HTTP receiver on loopback gets the request's spans after a flush."""
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def collect(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        await received.put(await request.read())
        return web.Response(body=b"", content_type="application/x-protobuf")

    collector = web.Application()
    collector.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(collector, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with running_stack(observability={"tracing": {
            "exporter": "otlp", "otlp_endpoint": f"http://127.0.0.1:{port}/v1/traces",
            "service_name": "gw-under-test"}}) as stack:
            async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
                assert response.status == 200
            provider = stack.gateway.runtime.observability.tracer_provider
            assert provider is not None
            # the exporter posts with blocking I/O: flush off the loop that serves the collector
            assert await asyncio.to_thread(provider.force_flush, 5_000)
        export = ExportTraceServiceRequest.FromString(await asyncio.wait_for(received.get(), 5))
        names = {span.name for rs in export.resource_spans for ss in rs.scope_spans
                 for span in ss.spans}
        services = {a.value.string_value for rs in export.resource_spans
                    for a in rs.resource.attributes if a.key == "service.name"}
        assert services == {"gw-under-test"}
        assert len(names) >= 2  # the request's span and its backend call's
    finally:
        await runner.cleanup()


def test_no_provider_without_an_exporter() -> None:
    assert tracer_provider(Tracing()) is None
