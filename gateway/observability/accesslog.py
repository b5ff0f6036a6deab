"""The access log: one JSON line per request, built with orjson, written to a sink (`serve`: a
LineBuffer on stdout) or else to the "gateway.access" logger.

A line names the caller by principal subject only: no metadata, token, API key or secret is
ever read into it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import TextIO

import orjson

from gateway.call import Call
from gateway.errors import HTTP_STATUS, Code
from gateway.observability.exchange import Exchange
from gateway.scrub import scrub

LOGGER = "gateway.access"
FLUSH_S = 0.1  # a buffered line reaches its stream within this (Envoy's file flush: 1 s)
MAX_BUFFERED = 256  # lines; more are written at once
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")

Sink = Callable[[str], None]  # takes one line, without its newline


class LineBuffer:
    """Lines to a stream in batches: one write per FLUSH_S (or per MAX_BUFFERED lines) rather
    than a write, a flush and a logging record per request. Outside an event loop, and on
    flush(), lines go out at once; the owner flushes before exit."""

    def __init__(self, stream: TextIO, interval_s: float = FLUSH_S,
                 max_lines: int = MAX_BUFFERED) -> None:
        self._stream = stream
        self._interval_s = interval_s
        self._max_lines = max_lines
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def write(self, line: str) -> None:
        self._lines.append(line)
        if len(self._lines) >= self._max_lines:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self._interval_s, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines:
            lines, self._lines = self._lines, []
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()


class AccessLog:
    def __init__(self, success_status: Mapping[str, int], sink: Sink | None = None) -> None:
        self._success_status = success_status  # "/pkg.Service/Method" -> the REST 2xx status
        self._sink = sink or _to_logger(logging.getLogger(LOGGER))

    def write(self, exchange: Exchange) -> None:
        call = exchange.call
        error = exchange.error
        line: dict[str, object] = {
            "ts": time.time(),
            "request_id": call.request_id,
            "trace_id": exchange.trace_id or None,
            "user": exchange.user or None,
            "edge": call.edge or None,
            "route": call.method,
            "backend": exchange.backend or None,
            "code": exchange.code.name,
            "http_status": self._http_status(call, exchange),
            "duration_ms": round(exchange.duration_s * 1000, 3),
            "backend_ms": round(exchange.backend_s * 1000, 3),
            "attempts": exchange.attempts,
            "peer": call.peer or None,
        }
        if error is not None:
            line["error"] = scrub(error.message)  # a backend's text: no credential, no CR LF
        self._sink(orjson.dumps(line).decode())

    def _http_status(self, call: Call, exchange: Exchange) -> int | None:
        """The status a REST client got (gRPC and gRPC-Web clients get a grpc-status instead)."""
        if call.edge in ("grpc", "grpc-web"):
            return None
        if exchange.error is not None:
            return exchange.error.http_status
        if exchange.code is Code.OK:
            return self._success_status.get(call.method, 200)
        return HTTP_STATUS[exchange.code]


def incoming_trace_id(call: Call) -> str:
    """The trace id of the client's W3C traceparent, for the log when the gateway does not trace."""
    for key, value in call.metadata:
        if key == "traceparent" and isinstance(value, str):
            found = _TRACEPARENT.fullmatch(value)
            return found.group(1) if found else ""
    return ""


def _to_logger(logger: logging.Logger) -> Sink:
    record = logging.getLogRecordFactory()

    def write(line: str) -> None:
        # Logger.info() would also walk the stack for the caller: a third of its cost, for a
        # line whose origin is always this one.
        if logger.isEnabledFor(logging.INFO):
            logger.handle(record(logger.name, logging.INFO, __file__, 0, line, None, None))

    return write
