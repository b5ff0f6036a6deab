"""Per-request cost of the observability policies over a plain async terminal (not a test).

    .venv/bin/python -m tests.observability.microbench

Each scenario builds the chain as the runtime does (build_observability from a config) around
the same terminal; the figure is the best of several runs, minus the bare chain's.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import uvloop
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from gateway.call import Call, Handler, Policy, Principal, Reply, chain
from gateway.config import load
from gateway.demo import DESCRIPTOR_SET
from gateway.observability.accesslog import LOGGER
from gateway.observability.build import Observability, build_observability

ROUTE = "/users.v1.Users/GetUser"
SERVICES = {"users.v1.Users": "users"}
CALLS = 20_000
RUNS = 7
CALL = Call(ROUTE, b"\n\x06u-1001", request_id="0123456789abcdef", peer="127.0.0.1",
            principal=Principal("alice"), edge="rest")


async def terminal(call: Call) -> Reply:
    return Reply(b"\n\x06u-1001", backend="users")


class Discard(SpanExporter):
    """Exports nowhere: keeping every span (in-memory exporter) would time the GC instead."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def noop(call: Call, call_next: Handler) -> Reply:
    return await call_next(call)


def observability(**settings: Any) -> Observability:
    ops = settings.pop("ops", False)
    config = load({
        "listen": {"ops": {"port": 0}} if ops else {},
        "descriptors": {"descriptor_set": str(DESCRIPTOR_SET)},
        "backends": {"users": {"services": ["users.v1.Users"], "addresses": ["127.0.0.1:1"]}},
        "observability": settings,
    })
    return build_observability(config, SERVICES, [ROUTE])


def pipeline(built: Observability | None, auth: int = 5) -> Handler:
    """The observability pieces around `auth` no-op policies, as the runtime places them."""
    policies: list[Policy] = [noop] * auth
    if built is None:
        return chain(policies, terminal)
    policies[1:1] = built.after_authentication
    return chain([*built.head, *policies], built.wrap_backend(terminal))


async def per_call(handler: Handler) -> float:
    best = float("inf")
    for _ in range(RUNS):
        started = time.perf_counter()
        for _ in range(CALLS):
            await handler(CALL)
        best = min(best, (time.perf_counter() - started) / CALLS)
    return best


def scenarios() -> dict[str, Callable[[], Handler]]:
    def traced() -> Handler:
        built = observability(tracing={"exporter": "console"}, ops=True)
        assert built.tracer_provider is not None
        # swap the console for a discarding exporter: the figure is the tracing, not printing
        built.tracer_provider._active_span_processor._span_processors = (
            SimpleSpanProcessor(Discard()),)
        return pipeline(built)

    return {
        "nothing (metrics and access log off, no tracing)": lambda: pipeline(observability(
            access_log={"enabled": False})),
        "default (access log on; no ops listener: no metrics)": lambda: pipeline(
            observability()),
        "metrics only (ops listener, access log off)": lambda: pipeline(observability(
            access_log={"enabled": False}, ops=True)),
        "metrics + access log": lambda: pipeline(observability(ops=True)),
        "metrics + access log + tracing (spans discarded)": traced,
    }


async def main() -> None:
    access = logging.getLogger(LOGGER)
    access.addHandler(logging.StreamHandler(io.StringIO()))  # a real write, to memory
    access.setLevel(logging.INFO)
    access.propagate = False
    bare = await per_call(pipeline(None))
    print(f"bare chain (5 no-op policies + terminal): {bare * 1e6:6.2f} us/call")
    for name, build in scenarios().items():
        cost = await per_call(build())
        print(f"{name:<55} +{(cost - bare) * 1e6:6.2f} us/call")


if __name__ == "__main__":
    uvloop.run(main())
