"""Wiring and lifecycle: config -> schema, routes, pools, pipeline, both edges and the ops
listener (/metrics); start and stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.compiled import Compiled, compile_config
from gateway.config import GatewayConfig, Listener
from gateway.edges.rest import RestEdge
from gateway.edges.rpc import RpcEdge
from gateway.observability.ops import ops_application
from gateway.runtime import Runtime, build_runtime
from gateway.tls import grpc_server_credentials, rest_ssl_context

log = logging.getLogger(__name__)


@dataclass(eq=False)
class RunningGateway:
    runtime: Runtime
    rest_runner: web.AppRunner | None = None
    grpc_server: grpc.aio.Server | None = None
    rest_port: int | None = None
    grpc_port: int | None = None
    ops_runner: web.AppRunner | None = None
    ops_port: int | None = None
    _stopped: bool = field(default=False)

    async def stop(self, grace_s: float = 5.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace_s)
        if self.rest_runner is not None:
            await self.rest_runner.cleanup()
        if self.ops_runner is not None:
            await self.ops_runner.cleanup()
        await self.runtime.close()

    @property
    def compiled(self) -> Compiled:
        return self.runtime.compiled


async def start(config: GatewayConfig) -> RunningGateway:
    """Compile the config, open both listeners (port 0 = ephemeral) and return the handles."""
    runtime = build_runtime(compile_config(config))
    compiled = runtime.compiled
    running = RunningGateway(runtime)
    try:
        await runtime.start()
        if config.listen.rest is not None:
            edge = RestEdge(compiled.schema, compiled.table, compiled.endpoints, runtime.pipeline,
                            config.transcoding, (config.auth.api_key_header,),
                            runtime.trusted_proxies)
            app = edge.application(config.cors, compiled.openapi, runtime.ready)
            running.rest_runner, running.rest_port = await _serve_http(app, config.listen.rest)
        if config.listen.grpc is not None:
            running.grpc_server, running.grpc_port = await _start_grpc(runtime)
        if config.listen.ops is not None:
            metrics = runtime.observability.metrics
            ops = ops_application(metrics.registry if metrics is not None else None)
            running.ops_runner, running.ops_port = await _serve_http(ops, config.listen.ops)
    except BaseException:
        await running.stop(0)
        raise
    return running


async def _serve_http(app: web.Application, listener: Listener) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        ssl_context = rest_ssl_context(listener.tls) if listener.tls is not None else None
        site = web.TCPSite(runner, listener.host, listener.port, ssl_context=ssl_context)
        await site.start()
        return runner, _bound_port(site)
    except BaseException:
        await runner.cleanup()
        raise


async def _start_grpc(runtime: Runtime) -> tuple[grpc.aio.Server, int]:
    compiled = runtime.compiled
    listener = compiled.config.listen.grpc
    assert listener is not None
    edge = RpcEdge(compiled.methods, runtime.pipeline, runtime.trusted_proxies)
    server = grpc.aio.server(handlers=[edge])
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
