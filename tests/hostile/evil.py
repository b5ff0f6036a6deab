"""An evil grpc.aio backend for testing.v1.Echo on loopback, and a gateway in front of it.

The backend is real (a grpc.aio server with a generic handler, bytes in and out); what it does
is set per test in `EvilBackend.mode`: answer bytes that are not the declared type, a reply over
the gateway's limit, an INTERNAL / UNKNOWN / DATA_LOSS status whose text names an internal host
and echoes a credential, metadata and trailers that must not leave the gateway.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from gateway import app
from gateway.config import load
from gateway.demo import DESCRIPTOR_SET
from testing.v1 import transcoding_pb2

SERVICE = "testing.v1.Echo"
GET_BOOK = f"/{SERVICE}/GetBook"
STREAM_BOOKS = f"/{SERVICE}/StreamBooks"
ECHO_KITCHEN = f"/{SERVICE}/EchoKitchen"
BOOK_URL = "/v1/shelves/s1/books/b1"
STREAM_URL = "/v1/shelves/s1/books:stream"

DB_HOST = "pg-primary-7.db.internal.corp"  # must never reach a client
TOKEN = ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1LTEwMDEiLCJyb2xlcyI6WyJhZG1pbiJdfQ."
         "c2lnbmF0dXJlLXRoYXQtbXVzdC1zdGF5LXNlY3JldA")  # a credential: never in a reply or log
TRACEBACK = ("Traceback (most recent call last):\n  File \"/srv/app/db.py\", line 88, in get\n"
             f"psycopg.OperationalError: connection to {DB_HOST}:5432 failed for request with "
             f"Authorization: Bearer {TOKEN}")
LEAKY_METADATA = (("set-cookie", f"session={TOKEN}; Domain=.corp"), ("server", "nginx/1.25.3"),
                  ("x-internal-host", DB_HOST), ("x-envoy-upstream-service-time", "3"),
                  ("x-book-etag", "v7"))
BOOK = transcoding_pb2.Book(name="shelves/s1/books/b1", title="Title").SerializeToString()
# Book.name (1, a string) sent as a varint: protobuf reads it as an unknown field -> `{}`
WIRE_MISMATCH = b"\x08\x96\x01"
GARBAGE = b"\x0a\xff\x01abc"  # a length past the end


@dataclass
class EvilBackend:
    mode: str = "ok"
    huge: bytes = b""  # the reply of mode "huge", built before any baseline is taken
    calls: list[str] = field(default_factory=list)
    port: int = 0
    server: grpc.aio.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _unary(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        self.calls.append(self.mode)
        mode = self.mode
        if mode == "leaky":
            await context.send_initial_metadata(LEAKY_METADATA)
            context.set_trailing_metadata(LEAKY_METADATA)
            return BOOK
        if mode == "mismatch":
            return WIRE_MISMATCH
        if mode == "garbage":
            return GARBAGE
        if mode == "huge":
            return self.huge
        if mode in ("internal", "data_loss"):
            code = grpc.StatusCode.INTERNAL if mode == "internal" else grpc.StatusCode.DATA_LOSS
            debug = error_details_pb2.DebugInfo(stack_entries=[TRACEBACK], detail=DB_HOST)
            packed = any_pb2.Any()
            packed.Pack(debug)
            status = status_pb2.Status(code=code.value[0], message=TRACEBACK, details=[packed])
            await context.abort(code, TRACEBACK, (
                ("grpc-status-details-bin", status.SerializeToString()), *LEAKY_METADATA))
        if mode == "unknown":  # what grpc.aio makes of a handler's exception (without the
            # server-side log line, which is the backend's own and would be captured here too)
            await context.abort(grpc.StatusCode.UNKNOWN,
                                f"Unexpected <class 'RuntimeError'>: {TRACEBACK}")
        if mode == "not_found":
            await context.abort(grpc.StatusCode.NOT_FOUND, "book b1 not found")
        return BOOK

    async def _stream(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
                      ) -> AsyncIterator[bytes]:
        self.calls.append(self.mode)
        if self.mode == "mismatch":
            yield WIRE_MISMATCH
            return
        yield BOOK
        if self.mode == "internal":
            await context.abort(grpc.StatusCode.INTERNAL, TRACEBACK)
        yield BOOK

    async def start(self) -> None:
        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "GetBook": grpc.unary_unary_rpc_method_handler(self._unary),
            "EchoKitchen": grpc.unary_unary_rpc_method_handler(self._unary),
            "StreamBooks": grpc.unary_stream_rpc_method_handler(self._stream),
        }
        self.server = grpc.aio.server(options=[("grpc.max_send_message_length", 2**31 - 1)])
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE,
                                                                                   handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)


def gateway_config(*addresses: str, **overrides: Any) -> dict[str, Any]:
    backend = overrides.pop("backend", {})
    return {
        "listen": {"rest": {"host": "127.0.0.1", "port": 0},
                   "grpc": {"host": "127.0.0.1", "port": 0}},
        "descriptors": {"descriptor_set": str(DESCRIPTOR_SET)},
        "backends": {"evil": {"services": [SERVICE], "addresses": list(addresses),
                              "health_check": {"enabled": False}, **backend}},
        **overrides,
    }


@dataclass(frozen=True)
class Front:
    gateway: app.RunningGateway
    http: aiohttp.ClientSession
    channel: grpc.aio.Channel

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.gateway.rest_port}{path}"

    def unary(self, method: str) -> Any:
        return self.channel.unary_unary(method)  # bytes in and out

    def stream(self, method: str) -> Any:
        return self.channel.unary_stream(method)


@asynccontextmanager
async def front(*addresses: str, **overrides: Any) -> AsyncIterator[Front]:
    gateway = await app.start(load(gateway_config(*addresses, **overrides)))
    try:
        async with aiohttp.ClientSession() as http, grpc.aio.insecure_channel(
            f"127.0.0.1:{gateway.grpc_port}"
        ) as channel:
            yield Front(gateway, http, channel)
    finally:
        await gateway.stop(0)


@pytest.fixture
async def evil() -> AsyncIterator[EvilBackend]:
    backend = EvilBackend()
    await backend.start()
    try:
        yield backend
    finally:
        await backend.stop()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record at any level, from every logger."""
    with caplog.at_level(logging.DEBUG):
        yield caplog


def assert_clean(text: str, *, internal: bool = True) -> None:
    """No credential (and, with `internal`, no internal name) in `text`."""
    assert TOKEN not in text and TOKEN[:40] not in text
    if internal:
        for secret in (DB_HOST, "nginx", "psycopg", "Traceback", "aiohttp", "Python/"):
            assert secret not in text, secret
