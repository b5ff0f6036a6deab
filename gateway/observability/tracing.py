"""OpenTelemetry tracing: the gateway's own tracer provider and exporter (from config), a SERVER
span per request (the chain's first policy; parent: the client's W3C traceparent) and a CLIENT
span per backend call or BFF part (its context sent on as traceparent). Nothing here runs when
tracing.exporter is "none".

Not opentelemetry-instrumentation-grpc's channel interceptors: their unary interceptor awaits the
call's end before handing the call back, so a client going away no longer cancels the backend
call (opentelemetry-python-contrib#3271, #5046).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.call import Call, Handler, Metadata, Reply
from gateway.config import Tracing
from gateway.errors import Code, ConfigError, GatewayError
from gateway.observability.timing import Outcome, finish_after

TRACE_KEYS = frozenset({"traceparent", "tracestate"})
OTLP_PACKAGE = "opentelemetry-exporter-otlp-proto-http"
# OpenTelemetry's gRPC conventions: on a server span only these codes are the server's fault.
_SERVER_FAULTS = frozenset({Code.UNKNOWN, Code.DEADLINE_EXCEEDED, Code.UNIMPLEMENTED,
                            Code.INTERNAL, Code.UNAVAILABLE, Code.DATA_LOSS})
_W3C = TraceContextTextMapPropagator()


class _MetadataGetter(Getter[Metadata]):
    def get(self, carrier: Metadata, key: str) -> list[str] | None:
        found = [value for k, value in carrier if k == key and isinstance(value, str)]
        return found or None

    def keys(self, carrier: Metadata) -> list[str]:
        return [key for key, _ in carrier]


_GETTER = _MetadataGetter()


def tracer_provider(config: Tracing) -> TracerProvider | None:
    """This gateway's provider (never the global one), or None when tracing is off.

    Raises ConfigError for the OTLP exporter when its package is not installed.
    """
    if config.exporter == "none":
        return None
    processor = _processor(config)
    provider = TracerProvider(
        sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
        resource=Resource({SERVICE_NAME: config.service_name}),
    )
    provider.add_span_processor(processor)
    return provider


def _processor(config: Tracing) -> SpanProcessor:
    if config.exporter == "console":
        return SimpleSpanProcessor(ConsoleSpanExporter(service_name=config.service_name))
    try:
        otlp = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    except ImportError:
        raise ConfigError(
            f"observability.tracing.exporter: otlp needs the package {OTLP_PACKAGE}, "
            "which is not installed"
        ) from None
    return BatchSpanProcessor(otlp.OTLPSpanExporter(endpoint=config.otlp_endpoint))


def current_trace_id(_: Call) -> str:
    """The trace id of the span in progress (the request's), as 32 hex digits."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


class TraceRequests:
    """The chain's first policy: one SERVER span per request, covering every policy after it."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    async def __call__(self, call: Call, call_next: Handler) -> Reply:
        service, _, method = call.method[1:].partition("/")
        span = self._tracer.start_span(
            call.method, context=_W3C.extract(call.metadata, getter=_GETTER),
            kind=SpanKind.SERVER, attributes={
                "rpc.system": "grpc", "rpc.service": service, "rpc.method": method,
                "gateway.route": call.method, "gateway.edge": call.edge,
                "gateway.request_id": call.request_id,
            })
        return await _traced(span, call, call_next, server=True)


class TraceBackendCalls:
    """Wraps the upstream handler: a CLIENT span per backend call (each BFF part one), retries
    and backoff included, whose context goes to the backend as traceparent."""

    def __init__(self, tracer: Tracer, upstream: Handler) -> None:
        self._tracer = tracer
        self._upstream = upstream

    async def __call__(self, call: Call) -> Reply:
        service, _, method = call.method[1:].partition("/")
        span = self._tracer.start_span(f"upstream {call.method}", kind=SpanKind.CLIENT,
                                       attributes={"rpc.system": "grpc", "rpc.service": service,
                                                   "rpc.method": method,
                                                   "gateway.route": call.method})
        return await _traced(span, call, self._send_context, server=False)

    async def _send_context(self, call: Call) -> Reply:
        carrier: dict[str, str] = {}
        _W3C.inject(carrier)  # the current span: this backend call's
        metadata = tuple((k, v) for k, v in call.metadata if k not in TRACE_KEYS)
        return await self._upstream(call.evolve(metadata=(*metadata, *carrier.items())))


async def _traced(span: Span, call: Call, call_next: Callable[[Call], Any], *,
                  server: bool) -> Reply:
    """Run call_next with span current; end the span when the reply (or its stream) ends."""
    try:
        with trace.use_span(span, record_exception=False, set_status_on_exception=False):
            reply: Reply = await call_next(call)
    except BaseException as exc:
        _end(span, exc, server)
        raise
    _describe(span, reply.backend, reply.attempts)
    if isinstance(reply.payload, bytes):
        _end(span, None, server)
        return reply
    return replace(reply, payload=finish_after(reply.payload,
                                               lambda outcome: _end(span, outcome, server)))


def _describe(span: Span, backend: str, attempts: int) -> None:
    if backend:
        span.set_attribute("gateway.backend", backend)
    span.set_attribute("gateway.attempts", attempts)
    span.set_attribute("gateway.retries", max(0, attempts - 1))


def _end(span: Span, outcome: Outcome, server: bool) -> None:
    code = Code.OK
    if isinstance(outcome, GatewayError):
        code = outcome.code
        _describe(span, outcome.backend, outcome.attempts)
    elif outcome is not None:
        code = Code.INTERNAL if isinstance(outcome, Exception) else Code.CANCELLED
    span.set_attribute("rpc.grpc.status_code", int(code))
    if code is not Code.OK and (not server or code in _SERVER_FAULTS):
        message = outcome.message if isinstance(outcome, GatewayError) else type(outcome).__name__
        span.set_status(Status(StatusCode.ERROR, f"{code.name}: {message}"))
    span.end()

