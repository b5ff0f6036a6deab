"""Prometheus metrics of one gateway, in its own registry (several gateways share a process in
tests): requests, latency (whole request and backend part), retries, rate-limit refusals,
in-flight, config reloads; breakers, instances and limiter counters read at scrape time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.errors import Code, RateLimited
from gateway.observability.exchange import Exchange
from gateway.ratelimit.limiter import Limiter
from gateway.ratelimit.redis import RedisLimiter
from gateway.upstream.forward import BackendStatus

# From 0.5 ms: the gateway's own share of a request is well under a millisecond.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0, 30.0)
_BREAKER_STATES = ("closed", "open", "half_open")
_HEALTH_STATES = ("healthy", "unhealthy", "unknown")


class Snapshots(Protocol):
    def snapshot(self) -> Mapping[str, BackendStatus]: ...


class GatewayMetrics:
    """Built once per gateway and kept across config reloads; `watch` points the scrape-time
    gauges at the current upstream and limiter."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        registry = self.registry
        self.in_flight = 0  # requests in the chain (streams until they end)
        self._requests = Counter(
            "gateway_requests", "Requests by edge, route (gRPC method) and gRPC status code.",
            ("edge", "route", "code"), registry=registry)
        self._request_s = Histogram(
            "gateway_request_duration_seconds",
            "Whole request in the policy chain (streams: until the last message).",
            ("route",), buckets=BUCKETS, registry=registry)
        self._backend_s = Histogram(
            "gateway_backend_duration_seconds",
            "Backend part of a request: each backend call, its retries and backoff included.",
            ("backend", "route"), buckets=BUCKETS, registry=registry)
        self._retries = Counter(
            "gateway_backend_retries", "Backend attempts beyond the first.",
            ("backend", "route"), registry=registry)
        self._rate_limited = Counter(
            "gateway_ratelimit_rejections", "Calls refused by a rate-limit policy.",
            ("policy",), registry=registry)
        self._reloads = Counter(
            "gateway_config_reloads", "Config reloads by result.", ("result",), registry=registry)
        self._last_reload_ok = Gauge(
            "gateway_config_last_reload_successful", "1 if the last config reload succeeded.",
            registry=registry)
        self._last_reload_ok.set(1)
        self._last_reload_at = Gauge(
            "gateway_config_last_reload_success_timestamp_seconds",
            "When the config was last loaded successfully.", registry=registry)
        self._last_reload_at.set_to_current_time()
        # Bound children, so the request path does one dict lookup instead of labels().
        self._by_request: dict[tuple[str, str, Code], Counter] = {}
        self._by_route: dict[str, Histogram] = {}
        self._by_backend: dict[tuple[str, str], tuple[Histogram, Counter]] = {}
        self._live = _Live(self)
        registry.register(self._live)

    def watch(self, upstream: Snapshots, limiter: Limiter) -> None:
        """Read breakers, instances and limiter counters from these at scrape time."""
        self._live.upstream, self._live.limiter = upstream, limiter

    def prebind(self, routes: Iterable[str], services: Mapping[str, str]) -> None:
        """Bind each route's latency children at load (`services`: proto service -> backend)."""
        for route in routes:
            self._route(route)
            backend = services.get(route[1:].partition("/")[0])
            if backend is not None:
                self._backend(backend, route)

    def request_finished(self, exchange: Exchange) -> None:
        call = exchange.call
        key = (call.edge, call.method, exchange.code)
        counter = self._by_request.get(key)
        if counter is None:
            counter = self._by_request[key] = self._requests.labels(
                call.edge, call.method, exchange.code.name)
        counter.inc()
        self._route(call.method).observe(exchange.duration_s)
        if isinstance(exchange.error, RateLimited):
            self._rate_limited.labels(exchange.error.policy).inc()

    def backend_call(self, backend: str, route: str, seconds: float, attempts: int) -> None:
        latency, retries = self._backend(backend, route)
        latency.observe(seconds)
        if attempts > 1:
            retries.inc(attempts - 1)

    def record_reload(self, ok: bool) -> None:
        """For the config reload: counts the result; a success also stamps the time."""
        self._reloads.labels("success" if ok else "failure").inc()
        self._last_reload_ok.set(1 if ok else 0)
        if ok:
            self._last_reload_at.set_to_current_time()

    def _route(self, route: str) -> Histogram:
        found = self._by_route.get(route)
        if found is None:
            found = self._by_route[route] = self._request_s.labels(route)
        return found

    def _backend(self, backend: str, route: str) -> tuple[Histogram, Counter]:
        found = self._by_backend.get((backend, route))
        if found is None:
            found = self._by_backend[backend, route] = (
                self._backend_s.labels(backend, route), self._retries.labels(backend, route))
        return found


class _Live(Collector):
    """Gauges read when scraped: nothing on the request path keeps them up to date."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics
        self.upstream: Snapshots | None = None
        self.limiter: Limiter | None = None

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("gateway_requests_in_flight", "Requests in the policy chain.",
                                value=self.metrics.in_flight)
        if self.upstream is not None:
            yield from _upstream_metrics(self.upstream.snapshot())
        if isinstance(self.limiter, RedisLimiter):
            yield from _redis_limiter_metrics(self.limiter)


def _upstream_metrics(snapshot: Mapping[str, BackendStatus]) -> Iterator[Metric]:
    in_flight = GaugeMetricFamily("gateway_backend_in_flight", "Calls in flight per backend.",
                                  labels=("backend",))
    capacity = GaugeMetricFamily("gateway_backend_max_requests",
                                 "Concurrent calls allowed per backend.", labels=("backend",))
    health = GaugeMetricFamily("gateway_backend_instance_health",
                               "1 for the instance's health-check state.",
                               labels=("backend", "address", "state"))
    ejected = GaugeMetricFamily("gateway_backend_instance_ejected",
                                "1 while outlier detection keeps the instance out.",
                                labels=("backend", "address"))
    ejections = GaugeMetricFamily("gateway_backend_instance_ejections",
                                  "Ejections of the instance in a row.",
                                  labels=("backend", "address"))
    outstanding = GaugeMetricFamily("gateway_backend_instance_outstanding",
                                    "Calls in flight per instance.", labels=("backend", "address"))
    state = GaugeMetricFamily("gateway_breaker_state", "1 for the circuit breaker's state.",
                              labels=("backend", "scope", "state"))
    transitions = CounterMetricFamily("gateway_breaker_transitions",
                                      "Times the breaker entered each state.",
                                      labels=("backend", "scope", "state"))
    resolve_failures = CounterMetricFamily(
        "gateway_backend_resolve_failures",
        "DNS lookups of the backend's dns: addresses that got no answer (last set kept).",
        labels=("backend",))
    for backend, status in snapshot.items():
        in_flight.add_metric((backend,), status.in_flight)
        capacity.add_metric((backend,), status.max_requests)
        resolve_failures.add_metric((backend,), status.resolve_failures)
        for instance in status.instances:
            where = (backend, instance.address)
            for name in _HEALTH_STATES:
                health.add_metric((*where, name), 1 if instance.health == name else 0)
            ejected.add_metric(where, 1 if instance.ejected else 0)
            ejections.add_metric(where, instance.ejections)
            outstanding.add_metric(where, instance.outstanding)
        for breaker in status.breakers:
            for name in _BREAKER_STATES:
                state.add_metric((backend, breaker.scope, name), 1 if breaker.state == name else 0)
                transitions.add_metric((backend, breaker.scope, name),
                                       breaker.transitions.get(name, 0))
    yield from (in_flight, capacity, health, ejected, ejections, outstanding, state, transitions,
                resolve_failures)


def _redis_limiter_metrics(limiter: RedisLimiter) -> Iterator[Metric]:
    decisions = CounterMetricFamily("gateway_ratelimit_decisions",
                                    "Rate-limit decisions (Redis store, fallback included).",
                                    labels=("decision",))
    decisions.add_metric(("allowed",), limiter.allowed)
    decisions.add_metric(("rejected",), limiter.rejected)
    yield decisions
    yield CounterMetricFamily("gateway_ratelimit_redis_failures",
                              "Redis calls of the rate limiter that failed.",
                              value=limiter.redis_failures)
    yield GaugeMetricFamily("gateway_ratelimit_redis_degraded",
                            "1 while Redis fails and the fallback decides.",
                            value=1 if limiter.degraded else 0)
