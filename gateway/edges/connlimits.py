"""Connection limits of the REST listener: aiohttp's low-level server with a watchdog.

aiohttp times out only idle keep-alive connections: a client that sends its headers a byte at a
time, or declares a body and never sends it, keeps its connection (and a file descriptor) for as
long as it likes, and nothing caps how many connections are open. GuardedServer makes each
connection a GuardedHandler (aiohttp's RequestHandler plus a Framer, edges/framing.py) and one
sweep per server checks every open connection every fifth of the shortest timeout (at least
once a second):

  headers   first byte (or the connection's opening) to the end of the headers: header_timeout_s
  body      no body byte for body_timeout_s, or below body_min_rate_bytes_s on average after it
  idle      between requests: keepalive_timeout_s
  busy      a request being handled (a backend call, a stream): never cut here

Past max_connections a new connection closes the least recently active connection with
nothing under way (idle, silent, or still sending its headers), or, when every one is busy, is
answered 503 and closed. Parser refusals become one short log line and a reply that echoes
nothing (edges/parser_errors.py); 413, 414 and 431 close the connection. GuardedSite bounds a
TLS handshake by header_timeout_s too.

The aiohttp internals used here (RequestHandler's _request_in_progress, _messages,
_reading_paused, _buffer_paused, _force_close, _parser and its log_access/handle_error hooks;
BaseRunner._reg_site) are aiohttp 3.14's, pinned exactly in pyproject.toml; tests/hostile
exercises each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.config import GrpcConnections, RestConnections
from gateway.edges.framing import Framer
from gateway.edges.parser_errors import (
    ChunkLineTooLong,
    HeadersTooLarge,
    RefusalLog,
    classify,
    reply_body,
)
from gateway.edges.resetguard import ResetGuard
from gateway.errors import Code
from gateway.policies.request_id import request_id_from

log = logging.getLogger("gateway.http")

# Replies after which the rest of the request is not read: "Connection: close", then aiohttp
# discards the unread body for up to linger_s and closes (RestEdge.error_response for 413).
CLOSING_STATUSES = frozenset({413, 414, 431})
_EMPTY_FEED: tuple[tuple[()], bool, bytes] = ((), False, b"")
_REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\nServer: %s\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nRetry-After: 1\r\nContent-Length: %d\r\n\r\n%s")


class ConnectionStats:
    """What the REST listener's connections did; read at scrape time (ConnectionCollector)."""

    def __init__(self) -> None:
        self.opened = 0
        self.closed: Counter[str] = Counter()  # by the limit that closed it
        self.refused: Counter[tuple[int, str]] = Counter()  # parser refusals: (status, reason)


class GuardedServer(web.Server):
    """aiohttp's low-level server whose connections are GuardedHandlers under `limits`."""

    def __init__(self, handler: Any, limits: RestConnections,
                 server_header: Callable[[], str] = lambda: "grpc-edge-gateway",
                 **kwargs: Any) -> None:
        super().__init__(
            handler,
            # aiohttp's own keep-alive timer is a backstop: the sweep closes (and counts) first.
            keepalive_timeout=limits.keepalive_timeout_s + 1.0,
            max_line_size=limits.max_header_field_bytes,
            max_field_size=limits.max_header_field_bytes,
            max_headers=limits.max_headers,
            lingering_time=limits.linger_s,
            **kwargs,
        )
        self.limits = limits
        # Read per reply, so a reload's transcoding.server_header applies to refusals too
        # (aiohttp would otherwise name itself and its version).
        self.server_header = server_header
        self.stats = ConnectionStats()
        self.refusals = RefusalLog()
        # Open connections, least recently active first (touch() moves one to the end), so the
        # connection to close at the cap is found without scanning them all.
        self.live: dict[GuardedHandler, None] = {}
        self._sweeper: asyncio.Task[None] | None = None
        shortest = min(limits.header_timeout_s, limits.body_timeout_s,
                       limits.keepalive_timeout_s)
        self._tick = min(1.0, max(0.01, shortest / 5))

    def __call__(self) -> GuardedHandler:
        return GuardedHandler(self, loop=self._loop, **self._kwargs)

    def opened(self, handler: GuardedHandler) -> bool:
        """Admit a new connection, closing the longest-idle one at the cap; False: refuse it."""
        self.stats.opened += 1
        if len(self.live) >= self.limits.max_connections:
            victim = self._longest_idle()
            if victim is None:
                self.stats.closed["refused_at_cap"] += 1
                return False
            victim.cut("evicted_idle")
        self.live[handler] = None
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = self._loop.create_task(self._sweep())
        return True

    def closed(self, handler: GuardedHandler) -> None:
        self.live.pop(handler, None)

    def touch(self, handler: GuardedHandler) -> None:
        live = self.live
        if handler in live:
            del live[handler]
            live[handler] = None

    def _longest_idle(self) -> GuardedHandler | None:
        """The least recently active connection with nothing under way."""
        for handler in self.live:
            if handler.idle_since() is not None:
                return handler
        return None

    async def _sweep(self) -> None:
        """Every tick, cut the connections past a limit; ends when none is open."""
        while self.live:
            await asyncio.sleep(self._tick)  # a periodic timer, not synchronisation
            now = self._loop.time()
            for handler in [h for h in self.live if h.overdue(now) is not None]:
                reason = handler.overdue(now)
                if reason is not None:
                    handler.cut(reason)

    async def shutdown(self, timeout: float | None = None) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await super().shutdown(timeout)


class GuardedSite(web.TCPSite):
    """aiohttp's TCP site with a bound on the TLS handshake: aiohttp leaves asyncio's 60 s, and
    a connection still in its handshake is not yet one the watchdog sees."""

    __slots__ = ("_handshake_timeout",)

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *,
                 handshake_timeout: float, **kwargs: Any) -> None:
        super().__init__(runner, host, port, **kwargs)
        self._handshake_timeout = handshake_timeout

    async def start(self) -> None:
        if self._ssl_context is None:
            return await super().start()
        self._runner._reg_site(self)  # what BaseSite.start does
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            server, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
            ssl_handshake_timeout=self._handshake_timeout)
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port


class _GuardedParser:
    """aiohttp's request parser behind a Framer: the framer sees each read first and may
    refuse it; everything else is the parser's own."""

    __slots__ = ("_framer", "_handler", "_parser")

    def __init__(self, parser: Any, framer: Framer, handler: GuardedHandler) -> None:
        self._parser, self._framer, self._handler = parser, framer, handler

    def feed_data(self, data: bytes) -> Any:
        framer = self._framer
        mid_body = framer.in_body  # the parser already gave aiohttp this request
        try:
            framer.feed(data)
        except (HeadersTooLarge, ChunkLineTooLong) as exc:
            if not mid_body:
                raise  # aiohttp answers it as a parser error (handle_error below)
            self._handler.refuse_mid_body(exc)
            return _EMPTY_FEED
        return self._parser.feed_data(data)

    def message_consumed(self) -> None:  # once per request: spared __getattr__'s miss
        self._parser.message_consumed()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)


class GuardedHandler(RequestHandler):
    """One connection: aiohttp's handler, timed by the server's sweep."""

    __slots__ = ("_framer", "_guard", "_head_started", "_last_data", "_last_done", "_opened_at",
                 "_body_started", "_served")

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        limits = manager.limits
        self._framer = Framer(limits.max_header_bytes, limits.max_chunk_line_bytes)
        self._parser = _GuardedParser(self._parser, self._framer, self)  # type: ignore[assignment]
        self._opened_at = self._last_data = self._last_done = 0.0
        self._head_started = self._body_started = 0.0
        self._served = 0  # responses finished on this connection

    # -- lifecycle -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        now = self._loop.time()
        self._opened_at = self._last_data = self._last_done = self._head_started = now
        if not self._guard.opened(self):
            body = orjson.dumps({"code": int(Code.UNAVAILABLE), "details": [],
                                 "message": "too many connections; retry later"})
            with contextlib.suppress(Exception):
                server = self._guard.server_header().encode("latin-1", "replace")
                transport.write(_REFUSED % (server, len(body), body))  # type: ignore[attr-defined]
            self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._guard.closed(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        now = self._loop.time()
        framer = self._framer
        was_pending, was_body = framer.head_pending, framer.in_body
        super().data_received(data)
        self._last_data = now
        self._guard.touch(self)
        if framer.in_body:
            if not was_body:
                self._body_started = now
        elif framer.head_pending and not was_pending:
            self._head_started = now

    def log_access(self, request: web.BaseRequest, response: web.StreamResponse,
                   time: float | None) -> None:
        # aiohttp calls this once a response is written (or the client went away): the one
        # synchronous hook after every response, so the bookkeeping costs no extra coroutine.
        self._served += 1
        self._last_done = self._loop.time()
        self._guard.touch(self)
        super().log_access(request, response, time)

    # -- the watchdog ----------------------------------------------------------------------

    def idle_since(self) -> float | None:
        """Since when this connection has had nothing under way, or None if it has: idle
        between requests, or still waiting for a request's headers to finish (which is what a
        slowloris connection does forever). A request being handled or a body being read is
        under way."""
        if (self._request_in_progress or self._messages or self._framer.in_body
                or self.transport is None):
            return None
        if self._framer.head_pending:
            return max(self._head_started, self._last_done)
        return max(self._last_done, self._last_data)

    def overdue(self, now: float) -> str | None:
        """The limit this connection is past, or None."""
        if self.transport is None or self._force_close:
            return None
        limits = self._guard.limits
        framer = self._framer
        if framer.in_body:
            if self._reading_paused or self._buffer_paused:
                return None  # the handler is not reading: our back-pressure, not the client
            if now - self._last_data > limits.body_timeout_s:
                return "body_timeout"
            elapsed = now - self._body_started
            if (elapsed > limits.body_timeout_s
                    and framer.body_bytes < limits.body_min_rate_bytes_s * elapsed):
                return "body_too_slow"
            return None
        if self._request_in_progress or self._messages:
            return None  # busy: a request is being handled
        if framer.head_pending or self._served == 0:
            started = max(self._head_started, self._last_done)
            return "header_timeout" if now - started > limits.header_timeout_s else None
        idle = now - max(self._last_done, self._last_data)
        return "idle_timeout" if idle > limits.keepalive_timeout_s else None

    def cut(self, reason: str) -> None:
        self._guard.stats.closed[reason] += 1
        self._guard.closed(self)  # off the count now, not when the loop reports the close
        self.force_close()

    # -- refusals: one short line, no request bytes ------------------------------------------

    def refuse_mid_body(self, exc: HttpProcessingError) -> None:
        """A cap broken inside a body aiohttp is already handing to the handler: no clean reply
        is possible, so the connection closes."""
        self._note(exc, request_id_from(()))
        self.cut("refused_mid_body")

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError | RequestPayloadError):
            return super().handle_error(request, status, exc, message)
        request_id = request_id_from(())
        refusal = self._note(exc, request_id)
        response = web.Response(status=refusal.status, body=reply_body(refusal, request_id),
                                content_type="application/json",
                                headers={"X-Request-ID": request_id, "Connection": "close",
                                         "Server": self._guard.server_header()})
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, HttpProcessingError | RequestPayloadError):
            self._note(exc, request_id_from(()))  # e.g. a broken body while it is discarded
            return
        super().log_exception(*args, **kw)

    def _note(self, exc: BaseException, request_id: str) -> Any:
        refusal = classify(exc)
        self._guard.stats.refused[refusal.status, refusal.reason] += 1
        self._guard.refusals.refused(refusal, _peer(self.peername), request_id)
        return refusal


def _peer(peername: object) -> str:
    if isinstance(peername, tuple) and len(peername) >= 2:
        return f"{peername[0]}:{peername[1]}"
    return ""


class ConnectionCollector(Collector):
    """The REST listener's connection counters and both listeners' limits, at scrape time."""

    def __init__(self, rest: GuardedServer | None, grpc: GrpcConnections | None,
                 reset_guard: ResetGuard | None = None) -> None:
        self._rest, self._grpc, self._reset_guard = rest, grpc, reset_guard

    def collect(self) -> Iterator[Metric]:
        limit = GaugeMetricFamily("gateway_connection_limit",
                                  "Configured connection limits (connections.*).",
                                  labels=("edge", "limit"))
        rest = self._rest
        if rest is not None:
            for name, value in rest.limits.model_dump().items():
                limit.add_metric(("rest", name), float(value))
            yield GaugeMetricFamily("gateway_http_connections_open",
                                    "Open REST connections.", value=len(rest.live))
            yield CounterMetricFamily("gateway_http_connections_opened",
                                      "REST connections accepted.", value=rest.stats.opened)
            closed = CounterMetricFamily(
                "gateway_http_connections_closed",
                "REST connections the gateway closed at a limit, by limit.", labels=("reason",))
            for reason, count in sorted(rest.stats.closed.items()):
                closed.add_metric((reason,), count)
            yield closed
            refused = CounterMetricFamily(
                "gateway_http_parser_refusals",
                "Requests the HTTP parser refused, by status and reason.",
                labels=("status", "reason"))
            for (status, reason), count in sorted(rest.stats.refused.items()):
                refused.add_metric((str(status), reason), count)
            yield refused
        if self._grpc is not None:
            for name, value in self._grpc.model_dump().items():
                limit.add_metric(("grpc", name), float(value))
        if self._reset_guard is not None:
            closed = CounterMetricFamily(
                "gateway_grpc_connections_closed",
                "gRPC connections the gateway closed at a limit, by limit.", labels=("reason",))
            closed.add_metric(("rapid_reset",), self._reset_guard.closed)
            yield closed
        yield limit


def grpc_server_options(limits: GrpcConnections) -> list[tuple[str, int]]:
    """grpc core's own enforcement of `limits` (include/grpc/impl/channel_arg_names.h)."""
    ms = 1000
    return [
        ("grpc.max_concurrent_streams", limits.max_concurrent_streams),
        ("grpc.max_allowed_incoming_connections", limits.max_connections),
        ("grpc.server_handshake_timeout_ms", int(limits.handshake_timeout_s * ms)),
        ("grpc.max_connection_idle_ms", int(limits.max_connection_idle_s * ms)),
        ("grpc.max_connection_age_ms", int(limits.max_connection_age_s * ms)),
        ("grpc.max_connection_age_grace_ms", int(limits.max_connection_age_grace_s * ms)),
        ("grpc.http2.max_ping_strikes", limits.max_ping_strikes),
        ("grpc.http2.min_ping_interval_without_data_ms", int(limits.min_ping_interval_s * ms)),
        ("grpc.http2.ping_on_rst_stream_percent", limits.ping_on_reset_percent),
        ("grpc.http2.max_requests_per_read", limits.max_new_streams_per_read),
    ]
