"""Framer: follows HTTP/1.1 message framing over a connection's raw bytes, ahead of aiohttp's
parser, to enforce what that parser does not: a cap on the whole header block, a cap on each
chunk-size line (chunk extensions are otherwise unbounded), and where each request is (headers,
body, between requests) for the connection watchdog (edges/connlimits.py).

It measures and never rewrites: aiohttp's parser still parses and validates every byte. On
anything it cannot follow (a framing the parser will refuse anyway, CONNECT) it stops tracking
the connection (PASS) instead of guessing.
"""

from __future__ import annotations

from enum import Enum

from gateway.edges.parser_errors import ChunkLineTooLong, HeadersTooLarge


class State(Enum):
    HEAD = 0  # request line and headers (or nothing yet: between requests)
    LENGTH = 1  # a Content-Length body
    CHUNK_LINE = 2  # chunk size [; extensions] CRLF
    CHUNK_DATA = 3
    CHUNK_END = 4  # the CRLF after a chunk's data
    TRAILERS = 5
    PASS = 6  # not followed any more


BODY_STATES = frozenset({State.LENGTH, State.CHUNK_LINE, State.CHUNK_DATA, State.CHUNK_END,
                         State.TRAILERS})


class Framer:
    __slots__ = ("_head", "_line", "_max_chunk_line", "_max_header", "_remaining", "_trailer_bytes",
                 "body_bytes", "state")

    def __init__(self, max_header_bytes: int, max_chunk_line_bytes: int) -> None:
        self.state = State.HEAD
        self._head = bytearray()  # the header block so far (bounded by max_header_bytes)
        self._line = bytearray()  # a chunk-size or trailer line so far
        self._remaining = 0  # body or chunk bytes still to come
        self._trailer_bytes = 0
        self._max_header = max_header_bytes
        self._max_chunk_line = max_chunk_line_bytes
        self.body_bytes = 0  # of the current request's body, received so far

    @property
    def in_body(self) -> bool:
        return self.state in BODY_STATES

    @property
    def head_pending(self) -> bool:
        """Part of a request's headers has arrived, not all of it."""
        return self.state is State.HEAD and bool(self._head)

    def feed(self, data: bytes) -> None:
        """Account for `data`; HeadersTooLarge / ChunkLineTooLong past a cap (then PASS)."""
        if self.state is State.HEAD and not self._head and data[:1] not in (b"\r", b"\n"):
            # The usual read: exactly one request without a body (a GET). One search, no copy.
            found = data.find(b"\r\n\r\n", 0, self._max_header + 4)
            if found + 4 == len(data):
                lower = data[:found].lower()
                if (b"content-length" not in lower and b"transfer-encoding" not in lower
                        and not lower.startswith(b"connect ")):
                    return
        try:
            self._feed(data)
        except (HeadersTooLarge, ChunkLineTooLong):
            self.state = State.PASS
            raise

    def _feed(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end:
            state = self.state
            if state is State.HEAD:
                pos = self._feed_head(data, pos, end)
            elif state is State.LENGTH or state is State.CHUNK_DATA:
                take = min(self._remaining, end - pos)
                self._remaining -= take
                self.body_bytes += take
                pos += take
                if self._remaining == 0:
                    self.state = State.HEAD if state is State.LENGTH else State.CHUNK_END
            elif state is State.CHUNK_END:
                newline = data.find(b"\n", pos)
                if newline < 0:
                    return
                pos = newline + 1
                self.state = State.CHUNK_LINE
            elif state is State.CHUNK_LINE or state is State.TRAILERS:
                pos = self._feed_line(data, pos, end)
            else:
                return

    def _feed_head(self, data: bytes, pos: int, end: int) -> int:
        head = self._head
        if not head:  # CRLFs between requests are allowed (RFC 9112 2.2): not a request yet
            while pos < end and data[pos] in (13, 10):
                pos += 1
            if pos == end:
                return end
            found = data.find(b"\r\n\r\n", pos, pos + self._max_header + 4)
            if found >= 0:  # the usual case: a whole header block in one read, no copy
                self._begin_body(data[pos:found])
                return found + 4
        before = len(head)
        room = self._max_header + 4 - before
        head += data[pos:pos + room]
        found = head.find(b"\r\n\r\n", max(0, before - 3))
        if found < 0 or found > self._max_header:
            if len(head) > self._max_header:
                raise HeadersTooLarge(self._max_header)
            return end
        block = bytes(head[:found])
        head.clear()
        self._begin_body(block)
        return pos + found + 4 - before

    def _begin_body(self, block: bytes) -> None:
        self.body_bytes = 0
        lower = block.lower()
        if lower.startswith(b"connect "):
            self.state = State.PASS
            return
        if b"content-length" not in lower and b"transfer-encoding" not in lower:
            return  # no body: the next bytes start the next request
        length: int | None = None
        chunked = False
        for line in lower.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip()
            if name == b"transfer-encoding":
                chunked = value.rsplit(b",", 1)[-1].strip() == b"chunked"
                if not chunked:
                    self.state = State.PASS  # refused by the parser
                    return
            elif name == b"content-length":
                value = value.strip()
                if not value.isdigit() or length is not None:
                    self.state = State.PASS
                    return
                length = int(value)
        if chunked:
            self.state = State.CHUNK_LINE
        elif length:
            self._remaining = length
            self.state = State.LENGTH

    def _feed_line(self, data: bytes, pos: int, end: int) -> int:
        newline = data.find(b"\n", pos)
        stop = end if newline < 0 else newline
        line = self._line
        line += data[pos:stop]
        trailers = self.state is State.TRAILERS
        if trailers:
            self._trailer_bytes += stop - pos + (newline >= 0)
            if self._trailer_bytes > self._max_header:
                raise HeadersTooLarge(self._max_header)
        elif len(line) > self._max_chunk_line:
            raise ChunkLineTooLong(self._max_chunk_line)
        if newline < 0:
            return end
        text = bytes(line).strip()
        line.clear()
        if trailers:
            if not text:  # the empty line ends the message
                self.state = State.HEAD
            return newline + 1
        try:
            size = int(text.split(b";", 1)[0].strip(), 16)
        except ValueError:
            self.state = State.PASS  # the parser refuses it
            return end
        if size == 0:
            self._trailer_bytes = 0  # trailers are capped like headers
            self.state = State.TRAILERS
        else:
            self._remaining = size
            self.state = State.CHUNK_DATA
        return newline + 1
