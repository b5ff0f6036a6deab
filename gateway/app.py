"""Wiring and lifecycle: config -> runtime, both edges and the ops listener (/metrics, /healthz,
/readyz, the admin API); reload (an atomic swap of what both edges use), graceful stop, signals."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.admin import ReloadResult, add_admin_routes
from gateway.compiled import Compiled, compile_config
from gateway.config import AdminApi, GatewayConfig, Listener, admin_token_digest
from gateway.drain import stop_http
from gateway.edges.connlimits import (
    ConnectionCollector,
    GuardedServer,
    GuardedSite,
    grpc_server_options,
)
from gateway.edges.health import ReadinessHealth, add_health_routes
from gateway.edges.resetguard import ResetGuard
from gateway.edges.rest import RestEdge
from gateway.edges.rpc import RpcEdge
from gateway.edges.rpchttp import rpc_http_tables
from gateway.errors import ConfigError
from gateway.observability.accesslog import Sink
from gateway.observability.ops import ops_application
from gateway.reload import Retired, prepare
from gateway.runtime import Runtime, build_runtime
from gateway.startup_errors import preflight
from gateway.tls import grpc_server_credentials, rest_ssl_context

log = logging.getLogger("gateway")

SERVING = health_pb2.HealthCheckResponse.SERVING


@dataclass(eq=False)
class RunningGateway:
    runtime: Runtime  # the current one; a reload replaces it
    instances: int = 1  # processes sharing the ports (--workers)
    source: Callable[[], GatewayConfig] | None = None  # what a reload loads (the config file)
    worker: int | None = None
    admin_digest: bytes | None = None
    rest: RestEdge | None = None
    rest_runner: web.BaseRunner | None = None
    rest_port: int | None = None
    rpc: RpcEdge | None = None
    grpc_server: grpc.aio.Server | None = None
    grpc_port: int | None = None
    reset_guard: ResetGuard | None = None  # rapid reset: GOAWAY for the abusing connection
    health: health.aio.HealthServicer | None = None
    ops_runner: web.BaseRunner | None = None
    ops_port: int | None = None
    generation: int = 1
    last_reload: ReloadResult | None = None
    stopping: bool = False  # readiness is false from the first moment of a stop
    _retired: Retired = field(default_factory=Retired)
    _reloading: asyncio.Lock = field(default_factory=asyncio.Lock)
    _stopped: bool = False

    @property
    def compiled(self) -> Compiled:
        return self.runtime.compiled

    @property
    def draining(self) -> int:
        """Runtimes a reload replaced that still finish requests begun on them."""
        return len(self._retired)

    def ready(self) -> bool:
        return not self.stopping and self.runtime.ready()

    async def reload(self, config: GatewayConfig | None = None) -> None:
        """Swap in `config` (default: the source, loaded again) once it is completely validated
        and its runtime started; requests under way finish on the old one. Logged and counted;
        raises ConfigError naming the problem, and the old config keeps serving."""
        async with self._reloading:
            try:
                if self.stopping:
                    raise ConfigError("the gateway is shutting down")
                if config is None:
                    if self.source is None:
                        raise ConfigError("no config file to reload from")
                    config = self.source()
                digest = _admin_digest(config.admin)
                runtime = await prepare(self.runtime, config, self.instances)
            except Exception as exc:
                message = str(exc) if isinstance(exc, ConfigError) else f"{exc!r}"
                self._reloaded(False, message)
                log.error("config reload rejected, generation %d keeps serving: %s",
                          self.generation, message, exc_info=not isinstance(exc, ConfigError))
                raise ConfigError(message) from None
            self._swap(runtime, digest)
            # `serve` froze what start built (gc.freeze); give the replaced generation back to
            # the collector so its cyclic garbage can go once it drains.
            gc.unfreeze()
            if self.health is not None:  # reflection keeps the services listed at start
                for service in runtime.compiled.served_services:
                    await self.health.set(service, SERVING)
            self._reloaded(True)
            log.info("config reloaded: generation %d serving, %d replaced still draining",
                     self.generation, self.draining)

    def _swap(self, runtime: Runtime, digest: bytes | None) -> None:
        """Point both edges at `runtime` at once (no await in here, so no request sees half)."""
        replaced = self.runtime
        held: list[object] = []
        if self.rest is not None:
            held.append(self.rest.tables)
            self.rest.tables = _rest_edge(runtime).tables
        if self.rpc is not None:
            held.append(self.rpc.tables)
            self.rpc.tables = _rpc_edge(runtime).tables
        self.runtime, self.admin_digest = runtime, digest
        self.generation += 1
        self._retired.retire(replaced, held, runtime.compiled.config.shutdown_grace_s)

    def _reloaded(self, ok: bool, error: str = "") -> None:
        self.last_reload = ReloadResult(ok, time.time(), self.generation, error)
        metrics = self.runtime.observability.metrics
        if metrics is not None:
            metrics.record_reload(ok)

    async def stop(self, grace_s: float | None = None) -> None:
        """Readiness off (/readyz 503, grpc.health.v1 NOT_SERVING), stop accepting, give calls
        under way (streams too) up to grace_s (default: shutdown_grace_s), then close."""
        if self._stopped:
            return
        self._stopped = self.stopping = True
        grace = self.runtime.compiled.config.shutdown_grace_s if grace_s is None else grace_s
        if self.health is not None:
            await self.health.enter_graceful_shutdown()
        async with self._reloading:  # a reload under way finishes (or gives up) first
            pass
        if self.reset_guard is not None:
            await self.reset_guard.stop()
        await asyncio.gather(
            self.grpc_server.stop(grace) if self.grpc_server is not None else _nothing(),
            _stop_http(self.rest_runner, grace),
        )
        await self._retired.close_now()
        await self.runtime.close()
        await _stop_http(self.ops_runner, 0)

    async def drained(self) -> None:
        """Until every runtime a reload replaced is closed."""
        await self._retired.wait()


async def start(config: GatewayConfig, *, instances: int = 1,
                source: Callable[[], GatewayConfig] | None = None,
                worker: int | None = None, access_sink: Sink | None = None) -> RunningGateway:
    """Compile the config, open the listeners (port 0 = ephemeral) and return the handles.

    `instances` > 1: that many processes share the ports (SO_REUSEPORT) and each enforces its
    share of in-memory rate limits. `source` loads the config again on reload. `access_sink`:
    where access-log lines go, this config's and every reloaded one's (default: the
    "gateway.access" logger).
    """
    shared = instances > 1
    # Ports and TLS pairs first: a port in use or a bad key is one line, before anything starts.
    preflight(config, ("rest", "grpc") if shared else ())
    runtime = build_runtime(compile_config(config), instances, access_sink=access_sink)
    running = RunningGateway(runtime, instances, source, worker, _admin_digest(config.admin))
    rest_server: GuardedServer | None = None
    try:
        await runtime.start()
        if config.listen.rest is not None:
            running.rest = _rest_edge(runtime)
            rest_server = running.rest.server(running.ready, config.connections.rest)
            running.rest_runner, running.rest_port = await _serve_http(
                web.ServerRunner(rest_server), config.listen.rest, shared,
                config.connections.rest.header_timeout_s)
        if config.listen.grpc is not None:
            running.rpc = _rpc_edge(runtime)
            running.grpc_server, running.grpc_port, running.health = await _start_grpc(
                running.rpc, runtime.compiled, config.listen.grpc, shared, running.ready)
            running.reset_guard = ResetGuard(running.grpc_port,
                                             config.connections.grpc.max_resets_per_s,
                                             tls=config.listen.grpc.tls is not None)
            running.reset_guard.start()
        if config.listen.ops is not None:
            metrics = runtime.observability.metrics
            if metrics is not None:  # kept across reloads, like the listeners
                metrics.registry.register(ConnectionCollector(
                    rest_server,
                    config.connections.grpc if config.listen.grpc is not None else None,
                    running.reset_guard))
            ops = ops_application(metrics.registry if metrics is not None else None)
            add_health_routes(ops, running.ready)  # watch a drain here: it stays up to the end
            add_admin_routes(ops, running)
            running.ops_runner, running.ops_port = await _serve_http(
                web.AppRunner(ops, handler_cancellation=True, access_log=None), config.listen.ops)
    except BaseException:
        await running.stop(0)
        raise
    return running


def _rest_edge(runtime: Runtime) -> RestEdge:
    compiled, config = runtime.compiled, runtime.compiled.config
    return RestEdge(compiled.schema, compiled.table, compiled.endpoints, runtime.pipeline,
                    config.transcoding, config.cors, compiled.openapi,
                    (config.auth.api_key_header,), runtime.trusted_proxies,
                    runtime.observability.refused,
                    rpc_http_tables(compiled.schema, {m: (i.kind, i.idempotent) for m, i in
                                                      compiled.methods.items()},
                                    runtime.pipeline, config.transcoding,
                                    runtime.trusted_proxies))


def _rpc_edge(runtime: Runtime) -> RpcEdge:
    return RpcEdge(runtime.compiled.methods, runtime.pipeline, runtime.trusted_proxies,
                   runtime.compiled.config.grpc_edge)


def _admin_digest(admin: AdminApi | None) -> bytes | None:
    return None if admin is None else admin_token_digest(admin)


async def _serve_http(runner: web.BaseRunner, listener: Listener, reuse_port: bool = False,
                      handshake_timeout: float | None = None) -> tuple[web.BaseRunner, int]:
    await runner.setup()
    try:
        ssl_context = rest_ssl_context(listener.tls) if listener.tls is not None else None
        site = (web.TCPSite(runner, listener.host, listener.port, ssl_context=ssl_context,
                            reuse_port=reuse_port or None) if handshake_timeout is None
                else GuardedSite(runner, listener.host, listener.port, ssl_context=ssl_context,
                                 reuse_port=reuse_port or None,
                                 handshake_timeout=handshake_timeout))
        await site.start()
        return runner, _bound_port(site)
    except BaseException:
        await runner.cleanup()
        raise


async def _stop_http(runner: web.BaseRunner | None, grace_s: float) -> None:
    """Stop listening, close idle connections, give requests under way grace_s, then cancel."""
    await stop_http(runner, grace_s)  # within the grace, a stream open or not


async def _start_grpc(edge: RpcEdge, compiled: Compiled, listener: Listener, reuse_port: bool,
                      ready: Callable[[], bool]
                      ) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    # A taken port is an error, unless several workers share it on purpose.
    options = [("grpc.so_reuseport", int(reuse_port)),
               *grpc_server_options(compiled.config.connections.grpc)]
    server = grpc.aio.server(handlers=[edge], options=options)
    health_servicer = ReadinessHealth(ready)  # "" follows /readyz
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [*compiled.served_services,
             health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server, pool=compiled.schema.pool)
    address = f"{listener.host}:{listener.port}"
    if listener.tls is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, grpc_server_credentials(listener.tls))
    await server.start()
    for service in compiled.served_services:
        await health_servicer.set(service, SERVING)
    return server, port, health_servicer


async def serve(running: RunningGateway) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully; SIGHUP reloads the config."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reloads: set[asyncio.Task[None]] = set()

    async def reload() -> None:
        with contextlib.suppress(ConfigError):  # reload() has logged and counted it
            await running.reload()

    def hangup() -> None:
        task = loop.create_task(reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, hangup)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: not ready any more, calls under way get up to %g s",
             running.compiled.config.shutdown_grace_s)
    await running.stop()


async def wait_for_signal() -> None:
    """Return on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _nothing() -> None:
    return None


def _bound_port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp exposes the bound sockets only here
    sockets = getattr(server, "sockets", None)
    if not sockets:
        raise RuntimeError("REST listener did not bind")
    return int(sockets[0].getsockname()[1])
