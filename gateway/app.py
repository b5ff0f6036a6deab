"""Wiring and lifecycle: config -> schema, routes, pools, pipeline, both edges; start and stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc
from aiohttp import web
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.call import Handler, Kind, Policy, chain
from gateway.config import GatewayConfig
from gateway.edges.rest import Endpoint, RestEdge
from gateway.edges.rpc import MethodInfo, RpcEdge
from gateway.errors import ConfigError
from gateway.policies.deadline import Deadline
from gateway.policies.request_id import PropagateRequestId
from gateway.protoset import load_descriptors
from gateway.tls import grpc_server_credentials, rest_ssl_context
from gateway.transcode.request import DecodeOptions, compile_request_decoder
from gateway.transcode.response import RenderOptions, compile_reply_encoder
from gateway.transcode.route import Route
from gateway.transcode.routes import RouteTable, compile_routes
from gateway.transcode.schema import Schema
from gateway.upstream.forward import Upstream

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class Compiled:
    """Everything built from one config at load (and, later, reload); swapped as a whole."""

    config: GatewayConfig
    schema: Schema
    services: Mapping[str, str]  # proto service -> backend name
    table: RouteTable
    endpoints: Mapping[Route, Endpoint]
    methods: Mapping[str, MethodInfo]


def compile_config(config: GatewayConfig) -> Compiled:
    schema = load_descriptors(config.descriptors)
    services: dict[str, str] = {}
    for service in schema.services:
        backend_name = config.backend_for(service)
        if backend_name is not None:
            services[service] = backend_name
    for name, backend in config.backends.items():
        if not any(backend.serves(s) for s in schema.services):
            raise ConfigError(
                f"backends.{name}.services: {', '.join(backend.services)} matches no service "
                f"of the loaded descriptors ({', '.join(sorted(schema.services)) or 'none'})"
            )
    table = compile_routes(schema, services=frozenset(services))
    transcoding = config.transcoding
    decode = DecodeOptions(
        ignore_unknown_query=transcoding.ignore_unknown_query,
        ignore_unknown_body_fields=transcoding.ignore_unknown_body_fields,
        max_json_depth=transcoding.max_json_depth,
    )
    render = RenderOptions(
        use_proto_names=transcoding.use_proto_names,
        emit_unpopulated=transcoding.emit_unpopulated,
    )
    endpoints = {
        route: Endpoint(
            route=route,
            decoder=compile_request_decoder(schema, route, decode),
            encoder=compile_reply_encoder(schema, route, render),
            success_status=transcoding.success_status.get(route.method, 200),
        )
        for route in table.routes
    }
    methods = {
        f"/{service}/{method.name}": MethodInfo(_kind(method), _idempotent(method))
        for service in services
        for method in schema.services[service].methods
    }
    return Compiled(config, schema, services, table, endpoints, methods)


def build_pipeline(compiled: Compiled, upstream: Handler) -> Handler:
    timeouts = {
        service: compiled.config.backends[backend].timeout_s
        for service, backend in compiled.services.items()
    }
    policies: list[Policy] = [PropagateRequestId(), Deadline(timeouts)]
    return chain(policies, upstream)


def build_upstream(compiled: Compiled) -> Upstream:
    return Upstream.from_config(compiled.config, compiled.services)


@dataclass(eq=False)
class RunningGateway:
    compiled: Compiled
    upstream: Upstream
    rest_runner: web.AppRunner | None = None
    grpc_server: grpc.aio.Server | None = None
    rest_port: int | None = None
    grpc_port: int | None = None
    _stopped: bool = field(default=False)

    async def stop(self, grace_s: float = 5.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace_s)
        if self.rest_runner is not None:
            await self.rest_runner.cleanup()
        await self.upstream.close()


async def start(config: GatewayConfig) -> RunningGateway:
    """Compile the config, open both listeners (port 0 = ephemeral) and return the handles."""
    compiled = compile_config(config)
    upstream = build_upstream(compiled)
    pipeline = build_pipeline(compiled, upstream)
    running = RunningGateway(compiled, upstream)
    try:
        await upstream.start()
        if config.listen.rest is not None:
            edge = RestEdge(compiled.schema, compiled.table, compiled.endpoints, pipeline,
                            config.transcoding)
            app = edge.application(config.cors)
            running.rest_runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
            await running.rest_runner.setup()
            rest = config.listen.rest
            ssl_context = rest_ssl_context(rest.tls) if rest.tls is not None else None
            site = web.TCPSite(running.rest_runner, rest.host, rest.port, ssl_context=ssl_context)
            await site.start()
            running.rest_port = _bound_port(site)
        if config.listen.grpc is not None:
            running.grpc_server, running.grpc_port = await _start_grpc(compiled, pipeline)
    except BaseException:
        await running.stop(0)
        raise
    return running


async def _start_grpc(compiled: Compiled, pipeline: Handler) -> tuple[grpc.aio.Server, int]:
    listener = compiled.config.listen.grpc
    assert listener is not None
    server = grpc.aio.server(handlers=[RpcEdge(compiled.methods, pipeline)])
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [*compiled.services, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server, pool=compiled.schema.pool)
    address = f"{listener.host}:{listener.port}"
    if listener.tls is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, grpc_server_credentials(listener.tls))
    await server.start()
    for service in ("", *compiled.services):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    return server, port


async def wait_for_signal() -> None:
    """Return on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _bound_port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp exposes the bound sockets only here
    sockets = getattr(server, "sockets", None)
    if not sockets:
        raise RuntimeError("REST listener did not bind")
    return int(sockets[0].getsockname()[1])


def _kind(method: MethodDescriptor) -> Kind:
    if method.client_streaming:
        return Kind.BIDI_STREAM if method.server_streaming else Kind.CLIENT_STREAM
    return Kind.SERVER_STREAM if method.server_streaming else Kind.UNARY


def _idempotent(method: MethodDescriptor) -> bool:
    level = method.GetOptions().idempotency_level
    return level in (MethodOptions.NO_SIDE_EFFECTS, MethodOptions.IDEMPOTENT)
