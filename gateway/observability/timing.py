"""The request's timing and outcome: Observe (the whole request, for metrics and the access log),
NotePrincipal, BackendTap (each backend call: Reply.backend_s, the backend's metrics), and the
Server-Timing header value the edges send."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from time import perf_counter

from gateway.call import Call, Handler, Reply, StepPolicy
from gateway.errors import Code, GatewayError
from gateway.observability.accesslog import AccessLog
from gateway.observability.exchange import CURRENT, Exchange
from gateway.observability.metrics import GatewayMetrics

log = logging.getLogger("gateway.errors")

Outcome = BaseException | None  # how a call (or its reply stream) ended; None: OK
INTERNAL = "internal error"  # all a client learns of an unexpected exception


class InternalError(GatewayError):
    """An exception no policy expected; the client sees INTERNAL, the log has the traceback."""

    code = Code.INTERNAL


class Observe:
    """Near the head of the chain: times the request, counts it, writes its access-log line.

    An unexpected exception is logged here, once, with the request id, and goes on as
    INTERNAL, so no edge or framework logs it again.
    """

    def __init__(self, metrics: GatewayMetrics | None, access_log: AccessLog | None,
                 trace_id: Callable[[Call], str]) -> None:
        self._metrics = metrics
        self._access_log = access_log
        self._trace_id = trace_id

    async def __call__(self, call: Call, call_next: Handler) -> Reply:
        exchange = Exchange(call, perf_counter(), self._trace_id(call))
        token = CURRENT.set(exchange)
        if self._metrics is not None:
            self._metrics.in_flight += 1
        try:
            reply = await call_next(call)
        except (GatewayError, asyncio.CancelledError) as exc:
            self._finish(exchange, exc)
            raise
        except Exception as exc:
            self._finish(exchange, exc)
            raise InternalError(INTERNAL) from None
        finally:
            CURRENT.reset(token)
        if not reply.backend and exchange.calls:  # an aggregate: its parts' backends and time
            reply = replace(reply, backend=exchange.backend, backend_s=exchange.backend_s)
        if isinstance(reply.payload, bytes):
            self._finish(exchange, None)
            return reply
        return replace(reply, payload=finish_after(
            reply.payload, lambda outcome: self._finish(exchange, outcome)))

    def _finish(self, exchange: Exchange, outcome: Outcome) -> None:
        exchange.duration_s = perf_counter() - exchange.started
        if isinstance(outcome, GatewayError):
            exchange.code, exchange.error = outcome.code, outcome
        elif isinstance(outcome, asyncio.CancelledError | GeneratorExit):
            exchange.code = Code.CANCELLED  # the client went away
        elif outcome is not None:
            exchange.code, exchange.error = Code.INTERNAL, InternalError(INTERNAL)
            log.error("request %s (%s, trace %s) failed: %s", exchange.call.request_id,
                      exchange.call.method, exchange.trace_id or "-", type(outcome).__name__,
                      exc_info=outcome)
        if self._metrics is not None:
            self._metrics.in_flight -= 1
            self._metrics.request_finished(exchange)
        if self._access_log is not None:
            self._access_log.write(exchange)


class NotePrincipal(StepPolicy):
    """Right after authentication: the exchange learns who is calling (for the access log)."""

    def step(self, call: Call) -> Call:
        exchange = CURRENT.get()
        if exchange is not None and call.principal is not None:
            exchange.user = call.principal.subject
        return call


class BackendTap:
    """Wraps the upstream handler, so every backend call (each BFF part too) is timed once.

    Sets Reply.backend_s (and backend / backend_s on a GatewayError) for the edges'
    X-Gateway-Backend and Server-Timing headers; notes the call in the exchange.
    """

    def __init__(self, upstream: Handler, services: Mapping[str, str],
                 metrics: GatewayMetrics | None) -> None:
        self._upstream = upstream
        self._services = services  # proto service -> backend name
        self._metrics = metrics

    async def __call__(self, call: Call) -> Reply:
        started = perf_counter()
        try:
            reply = await self._upstream(call)
        except GatewayError as exc:
            ended = perf_counter()
            exc.backend = self._services.get(call.method[1:].partition("/")[0], "")
            exc.backend_s = ended - started
            self._note(call, exc.backend, started, ended, exc.attempts)
            raise
        ended = perf_counter()
        self._note(call, reply.backend, started, ended, reply.attempts)
        return Reply(reply.payload, reply.metadata, reply.trailers, reply.backend,
                     reply.attempts, ended - started, reply.stream_end)

    def _note(self, call: Call, backend: str, started: float, ended: float,
              attempts: int) -> None:
        exchange = CURRENT.get()
        if exchange is not None:
            exchange.note_backend(backend, started, ended, attempts)
        if self._metrics is not None and backend:
            self._metrics.backend_call(backend, call.method, ended - started, attempts)


async def finish_after(stream: AsyncIterator[bytes], done: Callable[[Outcome], None]
                       ) -> AsyncIterator[bytes]:
    """The same messages; `done` runs once when the stream ends, fails or is closed early."""
    outcome: Outcome = None
    try:
        async for message in stream:
            yield message
    except BaseException as exc:
        outcome = exc
        raise
    finally:
        try:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()  # closing early must still cancel the backend call
        finally:
            done(outcome)


def server_timing(total_s: float, backend_s: float) -> str:
    """The Server-Timing header: the gateway's own share and the backend's (0: none), in ms.

    >>> server_timing(0.0015, 0.001)
    'gateway;dur=0.500, backend;dur=1.000'
    """
    if not backend_s:
        return f"gateway;dur={total_s * 1000:.3f}"
    return f"gateway;dur={(total_s - backend_s) * 1000:.3f}, backend;dur={backend_s * 1000:.3f}"
