"""Requests the HTTP parser refuses: a status, one short log line, a reply that echoes nothing.

aiohttp's own handling logs the whole exception at ERROR with a traceback, and the exception's
text quotes the offending bytes (a header holding a bearer token, say); its 400 reply body is
that same text. Here a refusal becomes a fixed reason, the peer and a request id: never a byte
of what the client sent, in the log or in the reply.
"""

from __future__ import annotations

import logging
import time
import types
from dataclasses import dataclass

import orjson
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong

from gateway.errors import Code

log = logging.getLogger("gateway.http")


class HeadersTooLarge(BadHttpMessage):
    """The request line and headers together exceed connections.rest.max_header_bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request headers exceed {limit} bytes")


class ChunkLineTooLong(BadHttpMessage):
    """A chunk-size line (size and extensions) exceeds connections.rest.max_chunk_line_bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"chunk size line exceeds {limit} bytes")


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    reason: str  # fixed text: what went wrong, never what was sent


_HEADERS_TOO_LARGE = Refusal(431, "request header fields too large")
_URI_TOO_LONG = Refusal(414, "request line too long")
_TOO_MANY_HEADERS = Refusal(431, "too many request header fields")
_CHUNK_LINE = Refusal(400, "chunk extension too long")
_BAD_CHUNKING = Refusal(400, "malformed chunked body")
_BAD_REQUEST = Refusal(400, "malformed HTTP request")
_BAD_HEADER = Refusal(400, "malformed request header")
_BAD_METHOD = Refusal(400, "malformed request line")
# Parser callbacks that read the request line (aiohttp's C parser and its Python fallback).
_REQUEST_LINE_FRAMES = frozenset({"cb_on_url", "cb_on_status", "parse_message"})


def classify(exc: BaseException) -> Refusal:
    """The status and fixed reason for a parser exception (never its message: it quotes bytes)."""
    if isinstance(exc, HeadersTooLarge):
        return _HEADERS_TOO_LARGE
    if isinstance(exc, ChunkLineTooLong):
        return _CHUNK_LINE
    if isinstance(exc, LineTooLong):
        return _URI_TOO_LONG if _raised_in(exc, _REQUEST_LINE_FRAMES) else _HEADERS_TOO_LARGE
    if not isinstance(exc, HttpProcessingError):
        return _BAD_REQUEST
    # The message is only matched against aiohttp's fixed phrases, never repeated.
    text = exc.message if isinstance(exc.message, str) else ""
    if "Too many headers" in text:
        return _TOO_MANY_HEADERS
    if "chunk" in text.lower() or "transfer length" in text:
        return _BAD_CHUNKING
    name = type(exc).__name__
    if name in ("BadStatusLine", "BadHttpMethod", "InvalidURLError"):
        return _BAD_METHOD
    if name == "InvalidHeader" or "header" in text.lower():
        return _BAD_HEADER
    return _BAD_REQUEST


def _raised_in(exc: BaseException, names: frozenset[str]) -> bool:
    """Whether the innermost frame of the exception's traceback is one of `names`."""
    tb: types.TracebackType | None = exc.__traceback__
    name = ""
    while tb is not None:
        name = tb.tb_frame.f_code.co_name
        tb = tb.tb_next
    return name.rsplit(".", 1)[-1] in names  # Cython names them "aiohttp._http_parser.cb_on_url"


def reply_body(refusal: Refusal, request_id: str) -> bytes:
    """The gateway's error shape; the message is the fixed reason and the request id."""
    code = Code.INVALID_ARGUMENT
    return orjson.dumps({"code": int(code), "message": f"{refusal.reason} (request {request_id})",
                         "details": []})


class RefusalLog:
    """At most `per_s` lines a second; the first line after a quiet spell says how many were
    left out, so a flood of bad requests costs a few lines, not one per request."""

    def __init__(self, per_s: int = 10, logger: logging.Logger = log) -> None:
        self._per_s = per_s
        self._log = logger
        self._window = 0.0
        self._in_window = 0
        self.suppressed = 0  # left out since the last line written

    def refused(self, refusal: Refusal, peer: str, request_id: str,
                now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now - self._window >= 1.0:
            self._window, self._in_window = now, 0
        if self._in_window >= self._per_s:
            self.suppressed += 1
            return
        self._in_window += 1
        suppressed, self.suppressed = self.suppressed, 0
        self._log.warning("refused request from %s: %d %s (request %s)%s", peer or "-",
                          refusal.status, refusal.reason, request_id,
                          f"; {suppressed} more refusals suppressed" if suppressed else "")
