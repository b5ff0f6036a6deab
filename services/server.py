"""Backend plumbing: one grpc.aio server per backend with health, reflection and an interceptor
that applies Faults and turns RpcFailure/unexpected errors into statuses; start and stop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol, TypeAlias

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.sdk.trace import TracerProvider

from services.faults import Faults
from services.notifications import NotificationsService
from services.orders import OrdersService
from services.status import Context, guard
from services.tracing import OTLP_ENDPOINT, Exporter, backend_tracer_provider, server_interceptors
from services.users import UsersService

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # not subscriptable at runtime


class Servicer(Protocol):
    @property
    def service_name(self) -> str: ...  # "users.v1.Users"

    def add_to(self, server: grpc.aio.Server) -> None: ...


def _echo() -> Servicer:
    from services.echo import EchoService  # the conformance proto is for tests, not the demo

    return EchoService()


BACKENDS: Mapping[str, Callable[[], Servicer]] = MappingProxyType({
    "users": UsersService,
    "orders": OrdersService,
    "notifications": NotificationsService,
    "echo": _echo,
})
DEMO = ("users", "orders", "notifications")


@dataclass(frozen=True, slots=True, eq=False)
class RunningBackend:
    name: str
    host: str
    port: int
    server: grpc.aio.Server
    servicers: tuple[Servicer, ...]
    faults: Faults
    health: health.aio.HealthServicer
    tracer_provider: TracerProvider | None = None  # its spans are flushed on stop

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(servicer.service_name for servicer in self.servicers)

    async def set_serving(self, serving: bool) -> None:
        """Flip grpc.health.v1 status of the server ("") and of each service."""
        status = (health_pb2.HealthCheckResponse.SERVING if serving
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for name in ("", *self.service_names):
            await self.health.set(name, status)

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, then stop; calls still running after `grace` s are cancelled."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.tracer_provider is not None:
            await asyncio.to_thread(self.tracer_provider.shutdown)  # OTLP posts block


async def serve(servicers: Sequence[Servicer], host: str = "127.0.0.1", port: int = 0,
                faults: Faults | None = None, name: str = "",
                tracer_provider: TracerProvider | None = None) -> RunningBackend:
    """Start a server for `servicers` on host:port (0 = ephemeral) with health and reflection;
    with `tracer_provider`, a SERVER span per call (services/tracing.py)."""
    faults = faults or Faults()
    server = grpc.aio.server(
        # The span outermost, so an injected fault's delay and status are inside it.
        interceptors=[*server_interceptors(tracer_provider), _Interceptor(faults)],
        options=[("grpc.so_reuseport", 0)],  # a taken port is an error, not a shared one
    )
    for servicer in servicers:
        servicer.add_to(server)
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    names = tuple(servicer.service_name for servicer in servicers)
    reflection.enable_server_reflection(
        (*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot bind {address}: {exc}") from exc
    if bound == 0:
        raise OSError(f"cannot bind {address}")
    await server.start()
    backend = RunningBackend(name or ",".join(names), host, bound, server, tuple(servicers),
                             faults, checker, tracer_provider)
    await backend.set_serving(True)
    return backend


async def start_backend(name: str, host: str = "127.0.0.1", port: int = 0,
                        faults: Faults | None = None,
                        tracer_provider: TracerProvider | None = None) -> RunningBackend:
    """Start one backend of BACKENDS ("users", "orders", "notifications", "echo")."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    return await serve([BACKENDS[name]()], host, port, faults, name, tracer_provider)


async def start_all(host: str = "127.0.0.1", ports: Mapping[str, int] | None = None,
                    trace: Exporter = "none", otlp_endpoint: str = OTLP_ENDPOINT
                    ) -> dict[str, RunningBackend]:
    """Start users, orders and notifications, each on its own server (port 0 by default);
    `trace`: where each one's SERVER spans go (service name "demo-<backend>")."""
    ports = ports or {}
    started: dict[str, RunningBackend] = {}
    try:
        for name in DEMO:
            provider = backend_tracer_provider(trace, f"demo-{name}", otlp_endpoint)
            started[name] = await start_backend(name, host, ports.get(name, 0),
                                                tracer_provider=provider)
    except BaseException:
        for backend in started.values():
            await backend.stop()
        raise
    return started


class _Interceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler: Faults.observe outside, status.guard inside."""

    def __init__(self, faults: Faults) -> None:
        self._faults = faults

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler: Handler | None = await continuation(handler_call_details)
        if handler is None:
            return None
        return _wrap(handler, handler_call_details.method, self._faults)


_KINDS = {  # (request_streaming, response_streaming) -> handler attribute, handler factory
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def _wrap(handler: Handler, method: str, faults: Faults) -> Handler:
    attribute, factory = _KINDS[handler.request_streaming, handler.response_streaming]
    inner: Callable[..., Any] = getattr(handler, attribute)
    records_request = not handler.request_streaming

    @asynccontextmanager
    async def around(request: Any, context: Context) -> AsyncIterator[None]:
        recorded = request if records_request else None
        async with faults.observe(method, recorded, context), guard(context, method):
            yield

    # grpc.aio tells response generators from coroutines (which may use context.write) by kind
    if inspect.isasyncgenfunction(inner):
        async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
            async with around(request, context):
                async for response in inner(request, context):
                    yield response

        behaviour: Callable[..., Any] = streaming
    elif inspect.iscoroutinefunction(inner):
        async def single(request: Any, context: Context) -> Any:
            async with around(request, context):
                return await inner(request, context)

        behaviour = single
    else:
        return handler  # synchronous handlers run in a thread pool; none of ours are
    return factory(
        behaviour,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
