"""Tracing for the demo backends: opentelemetry-instrumentation-grpc's grpc.aio server interceptor
puts a SERVER span around every call, its parent the gateway's CLIENT span (the `traceparent` the
gateway sends), so one trace runs from the gateway's edge into the backend.

Each backend process gets its own provider (never the global one), exporting to the console or
over OTLP/HTTP; "none" adds no interceptor at all.
"""

from __future__ import annotations

from typing import Literal

import grpc
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

Exporter = Literal["none", "console", "otlp"]
EXPORTERS: tuple[Exporter, ...] = ("none", "console", "otlp")
OTLP_ENDPOINT = "http://127.0.0.1:4318/v1/traces"  # an OpenTelemetry Collector's OTLP/HTTP port


def backend_tracer_provider(exporter: Exporter, service_name: str,
                            otlp_endpoint: str = OTLP_ENDPOINT) -> TracerProvider | None:
    """A provider for one backend process, or None for "none"."""
    if exporter == "none":
        return None
    provider = TracerProvider(resource=Resource({SERVICE_NAME: service_name}))
    if exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(
            service_name=service_name)))
    else:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    return provider


def server_interceptors(provider: TracerProvider | None) -> list[grpc.aio.ServerInterceptor]:
    """The interceptor to put first (outermost) on a backend's server; none without a provider."""
    if provider is None:
        return []
    # Not grpc.health.v1 nor reflection: the gateway's health checks would drown the calls.
    untraced = filters.any_of(filters.health_check(),
                              filters.service_prefix("grpc.reflection."))
    # the package has no type hints
    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider=provider, filter_=filters.negate(untraced))
    return [interceptor]
