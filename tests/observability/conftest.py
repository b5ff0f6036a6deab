"""A real stack with an ops listener and tracing hooked to an in-memory exporter; a scraper."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.stack import Stack, running_stack

LOOPBACK = {"host": "127.0.0.1", "port": 0}
WITH_OPS = {"rest": LOOPBACK, "grpc": LOOPBACK, "ops": LOOPBACK}
TRACED = {"tracing": {"exporter": "console"}}


@asynccontextmanager
async def traced_stack(**overrides: Any) -> AsyncIterator[tuple[Stack, InMemorySpanExporter]]:
    """The gateway traces (console exporter) and every span also lands in the returned exporter."""
    async with running_stack(**{"observability": TRACED, **overrides}) as stack:
        provider = stack.gateway.runtime.observability.tracer_provider
        assert provider is not None
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        yield stack, exporter


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    found = {span.name: span for span in spans}
    assert len(found) == len(spans), [span.name for span in spans]
    return found


Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(stack: Stack) -> Samples:
    """GET /metrics from the ops listener; every sample by name and labels."""
    async with stack.http.get(f"http://127.0.0.1:{stack.gateway.ops_port}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))
