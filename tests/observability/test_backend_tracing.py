"""One trace from the REST edge into a demo backend: the gateway's spans and the backend's SERVER
span (opentelemetry-instrumentation-grpc's aio server interceptor) reach a real OTLP/HTTP
receiver on loopback under one trace id, the backend's span a child of the gateway's CLIENT span."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import grpc
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway import app
from gateway.config import load
from services.server import start_all, start_backend
from services.tracing import backend_tracer_provider, server_interceptors
from tests.e2e.stack import stack_config
from users.v1 import users_pb2, users_pb2_grpc


@asynccontextmanager
async def otlp_receiver() -> AsyncIterator[tuple[str, list[tuple[str, Span]]]]:
    """A real OTLP/HTTP endpoint: every span posted to it, with its resource's service.name."""
    spans: list[tuple[str, Span]] = []

    async def collect(request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            service = next(a.value.string_value for a in resource_spans.resource.attributes
                           if a.key == "service.name")
            spans.extend((service, span) for scope in resource_spans.scope_spans
                         for span in scope.spans)
        return web.Response(body=b"", content_type="application/x-protobuf")

    receiver = web.Application()
    receiver.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1/traces", spans
    finally:
        await runner.cleanup()


async def test_one_trace_runs_from_the_rest_edge_into_the_backend() -> None:
    async with otlp_receiver() as (endpoint, spans):
        users = await start_backend("users", tracer_provider=backend_tracer_provider(
            "otlp", "demo-users", endpoint))
        gateway = None
        try:
            gateway = await app.start(load(stack_config({"users": users}, observability={
                "tracing": {"exporter": "otlp", "otlp_endpoint": endpoint,
                            "service_name": "gw"}})))
            async with aiohttp.ClientSession() as http, http.get(
                    f"http://127.0.0.1:{gateway.rest_port}/v1/users/u-1001") as response:
                assert response.status == 200
            # the exporters post with blocking I/O: flush off the loop serving the receiver
            provider = gateway.runtime.observability.tracer_provider
            assert provider is not None
            assert await asyncio.to_thread(provider.force_flush, 5_000)
        finally:
            if gateway is not None:
                await gateway.stop(0)
            await users.stop()  # flushes the backend's spans (in a thread)
    by_service: dict[str, list[Span]] = {}
    for service, span in spans:
        by_service.setdefault(service, []).append(span)
    [edge] = [s for s in by_service["gw"] if s.kind == Span.SPAN_KIND_SERVER]
    [client] = [s for s in by_service["gw"] if s.kind == Span.SPAN_KIND_CLIENT]
    [backend] = by_service["demo-users"]
    assert backend.kind == Span.SPAN_KIND_SERVER
    assert backend.name == "/users.v1.Users/GetUser"
    assert edge.trace_id == client.trace_id == backend.trace_id  # one trace
    assert client.parent_span_id == edge.span_id
    assert backend.parent_span_id == client.span_id


async def test_a_traced_backend_still_answers_with_its_own_statuses() -> None:
    """The interceptor sits outside the backend's own, which still maps its errors."""
    backends = await start_all(trace="console")
    try:
        assert all(b.tracer_provider is not None for b in backends.values())
        async with grpc.aio.insecure_channel(backends["users"].address) as channel:
            stub = users_pb2_grpc.UsersStub(channel)
            reply = await stub.GetUser(users_pb2.GetUserRequest(id="u-1001"))
            assert reply.id == "u-1001"
            try:
                await stub.GetUser(users_pb2.GetUserRequest(id="nobody"))
            except grpc.aio.AioRpcError as exc:
                assert exc.code() is grpc.StatusCode.NOT_FOUND
            else:
                raise AssertionError("a missing user was found")
    finally:
        await asyncio.gather(*(b.stop() for b in backends.values()))
    assert server_interceptors(None) == []
