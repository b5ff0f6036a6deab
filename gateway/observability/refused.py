"""Requests an edge refuses before the policy chain (unknown path 404, wrong method 405, bad
JSON or an unknown query parameter 400, 413, 415): logged and counted like every other request.

Observe sees only what reaches the chain; this writes the same access-log line and counts the
same gateway_requests_total sample for the rest, so the log holds one line per request. A path
that matches no route is labelled UNMATCHED, not with the path itself, so the route label stays
bounded whatever clients send. The line's reason is the message the client got.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

from gateway.call import Call
from gateway.errors import GatewayError
from gateway.observability.accesslog import AccessLog
from gateway.observability.exchange import Exchange
from gateway.observability.metrics import GatewayMetrics

UNMATCHED = "(unmatched)"  # the route of a request whose path or method matched no route

Refused = Callable[[Call, GatewayError, float], None]  # (the call as far as known, why, seconds)


class Refusals:
    def __init__(self, metrics: GatewayMetrics | None, access_log: AccessLog | None,
                 trace_id: Callable[[Call], str]) -> None:
        self._metrics = metrics
        self._access_log = access_log
        self._trace_id = trace_id

    def refused(self, call: Call, error: GatewayError, duration_s: float) -> None:
        exchange = Exchange(call, perf_counter() - duration_s, self._trace_id(call))
        exchange.code, exchange.error, exchange.duration_s = error.code, error, duration_s
        if self._metrics is not None:
            self._metrics.request_finished(exchange)
        if self._access_log is not None:
            self._access_log.write(exchange)
