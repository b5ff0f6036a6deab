"""Builds what observability adds to one runtime, from the config: the policies at the chain's head
and after authentication, and the wrapper of the upstream handler. Tracing off takes tracing
out entirely; metrics need the ops listener."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from opentelemetry.sdk.trace import TracerProvider

from gateway.call import Handler, Policy
from gateway.config import GatewayConfig, admin_token_digest
from gateway.observability.accesslog import AccessLog, Sink, incoming_trace_id
from gateway.observability.explainer import Explainer
from gateway.observability.metrics import GatewayMetrics, Snapshots
from gateway.observability.refused import Refusals, Refused
from gateway.observability.timing import BackendTap, NotePrincipal, Observe
from gateway.observability.tracing import (
    TraceBackendCalls,
    TraceRequests,
    current_trace_id,
    tracer_provider,
)
from gateway.ratelimit.limiter import Limiter

TRACER = "gateway"


@dataclass(frozen=True, slots=True, eq=False)
class Observability:
    head: tuple[Policy, ...]  # first in the chain: the request span, then Observe
    after_authentication: tuple[Policy, ...]  # notes the principal for the access log
    metrics: GatewayMetrics | None  # None: no metrics (disabled, or no ops listener)
    tracer_provider: TracerProvider | None  # None: tracing off
    services: Mapping[str, str]  # proto service -> backend name
    access_sink: Sink | None  # where access lines go (None: the "gateway.access" logger)
    refused: Refused | None = None  # logs and counts what an edge refuses before the chain
    explainer: Explainer | None = None  # None: explain off (the chain has no such step)

    @property
    def explain(self) -> tuple[Policy, ...]:
        """The step right after the head that binds a request's explanation, if explain is on."""
        return () if self.explainer is None else (self.explainer,)

    def wrap_backend(self, upstream: Handler) -> Handler:
        """The upstream handler as the chain (and the BFF's parts) should call it."""
        tapped = BackendTap(upstream, self.services, self.metrics)
        if self.tracer_provider is None:
            return tapped
        return TraceBackendCalls(self.tracer_provider.get_tracer(TRACER), tapped)

    def watch(self, upstream: Snapshots, limiter: Limiter) -> None:
        if self.metrics is not None:
            self.metrics.watch(upstream, limiter)

    def close(self) -> None:
        """Export the spans still buffered."""
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()


def build_observability(config: GatewayConfig, services: Mapping[str, str],
                        routes: Iterable[str], metrics: GatewayMetrics | None = None,
                        access_sink: Sink | None = None) -> Observability:
    """`metrics`: the gateway's metrics to keep using (on reload); else new ones if enabled.
    `access_sink`: where access-log lines go (default: the "gateway.access" logger).

    Raises ConfigError when the configured span exporter cannot be built.
    """
    settings = config.observability
    if settings.metrics.enabled and config.listen.ops is not None:
        metrics = metrics or GatewayMetrics()
        metrics.prebind(routes, services)
    else:
        metrics = None
    access_log = (AccessLog(config.transcoding.success_status, access_sink)
                  if settings.access_log.enabled else None)
    provider = tracer_provider(settings.tracing)
    head: list[Policy] = []
    if provider is not None:
        head.append(TraceRequests(provider.get_tracer(TRACER)))
    refused = None
    if metrics is not None or access_log is not None:
        trace_id = incoming_trace_id if provider is None else current_trace_id
        head.append(Observe(metrics, access_log, trace_id))
        # No span is open for a refused request: its trace id is the client's traceparent's.
        refused = Refusals(metrics, access_log, incoming_trace_id).refused
    after = (NotePrincipal(),) if access_log is not None else ()
    explainer = None
    if settings.explain.enabled:
        digest = admin_token_digest(config.admin) if config.admin is not None else None
        explainer = Explainer(settings.explain, digest, provider is not None)
    return Observability(tuple(head), after, metrics, provider, services, access_sink, refused,
                         explainer)
