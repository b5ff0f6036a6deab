"""A backend that misbehaves below gRPC: a few hundred bytes of raw HTTP/2 on loopback.

grpc.aio servers cannot refuse a stream or reset one after sending a message, so this speaks
HTTP/2 frames itself (RFC 9113): it answers the connection preface, acknowledges SETTINGS and
PING, and treats each new stream (each HEADERS frame opening one) with the next action of its
script:

    REFUSE       RST_STREAM REFUSED_STREAM at once (the request was never processed, 9113 8.7)
    RESET_AFTER  response headers and one gRPC message, then (once `release` is set, so a test
                 can see the message arrive first) RST_STREAM INTERNAL_ERROR
    OK           response headers, one gRPC message, trailers grpc-status 0

Streams past the end of the script get OK. Requests are not decoded (HPACK is not needed to
refuse or answer); response headers use HPACK literals without indexing or Huffman coding.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from contextlib import suppress

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
INTERNAL_ERROR, REFUSED_STREAM = 0x2, 0x7

REFUSE, RESET_AFTER, OK = "refuse", "reset_after", "ok"


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(
        ">I", stream & 0x7FFFFFFF) + payload


def _literal(name: str, value: str) -> bytes:
    # HPACK 6.2.2, literal header field without indexing, new name; lengths < 127 (one byte).
    raw_name, raw_value = name.encode(), value.encode()
    return b"\x00" + bytes([len(raw_name)]) + raw_name + bytes([len(raw_value)]) + raw_value


RESPONSE_HEADERS = _literal(":status", "200") + _literal("content-type", "application/grpc")
OK_TRAILERS = _literal("grpc-status", "0")


class H2Backend:
    """Serves on 127.0.0.1:<port>; `streams` counts the streams opened by clients."""

    def __init__(self, script: Sequence[str], reply: bytes) -> None:
        self.script = list(script)
        self.reply = reply
        self.streams = 0
        self.port = 0
        self.release = asyncio.Event()
        self.release.set()  # a test that must see the message first clears it
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._done = asyncio.Event()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()  # the reader sees EOF and the connection's coroutine ends
        with suppress(TimeoutError):
            await asyncio.wait_for(self._drained(), 5)

    async def _drained(self) -> None:
        while self._writers:
            self._done.clear()
            await self._done.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            if await reader.readexactly(len(PREFACE)) != PREFACE:
                return
            writer.write(_frame(SETTINGS, 0, 0))
            while True:
                header = await reader.readexactly(9)
                length = int.from_bytes(header[:3], "big")
                kind, flags = header[3], header[4]
                stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
                payload = await reader.readexactly(length)
                if kind == SETTINGS and not flags & ACK:
                    writer.write(_frame(SETTINGS, ACK, 0))
                elif kind == PING and not flags & ACK:
                    writer.write(_frame(PING, ACK, 0, payload))
                elif kind == HEADERS and stream % 2 == 1:
                    await self._answer(writer, stream)
                elif kind == GOAWAY:
                    return
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            self._done.set()
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, stream: int) -> None:
        action = self.script.pop(0) if self.script else OK
        self.streams += 1
        if action == REFUSE:
            writer.write(_frame(RST_STREAM, 0, stream, struct.pack(">I", REFUSED_STREAM)))
            return
        message = b"\x00" + struct.pack(">I", len(self.reply)) + self.reply
        writer.write(_frame(HEADERS, END_HEADERS, stream, RESPONSE_HEADERS))
        writer.write(_frame(DATA, 0, stream, message))
        if action == RESET_AFTER:
            await writer.drain()
            await self.release.wait()
            writer.write(_frame(RST_STREAM, 0, stream, struct.pack(">I", INTERNAL_ERROR)))
        else:
            writer.write(_frame(HEADERS, END_HEADERS | END_STREAM, stream, OK_TRAILERS))
