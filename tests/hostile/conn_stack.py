"""A gateway on loopback in front of a counting backend, and raw-socket helpers, for the
connection and parser tests of tests/hostile (short limits, so each case takes well under 1 s)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc

from gateway import app
from gateway.config import load
from gateway.demo import DESCRIPTOR_SET

ECHO = "/testing.v1.Echo/EchoKitchen"
# A real-looking credential in every hostile request: it must never come back or reach a log.
SECRET = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1LTEwMDEifQ.c2VjcmV0LXNpZ25hdHVyZQ"
AUTH = f"Authorization: Bearer {SECRET}\r\n".encode()

# Short limits: every timeout case ends in a fraction of a second.
FAST_REST: Mapping[str, Any] = {
    "header_timeout_s": 0.3, "body_timeout_s": 0.3, "keepalive_timeout_s": 0.3,
    "linger_s": 0.2, "max_connections": 64,
}


@dataclass(eq=False)
class CountingBackend:
    """A grpc.aio backend for testing.v1.Echo that answers EchoKitchen with its request bytes,
    counts calls, and holds them while `hold` is clear (a busy call)."""

    server: grpc.aio.Server
    port: int
    calls: int = 0
    active: int = 0
    max_active: int = 0  # most calls under way at once
    hold: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


async def start_backend() -> CountingBackend:
    server = grpc.aio.server()
    backend = CountingBackend(server, server.add_insecure_port("127.0.0.1:0"))
    backend.hold.set()

    async def echo(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        backend.calls += 1
        backend.active += 1
        backend.max_active = max(backend.max_active, backend.active)
        backend.started.set()
        try:
            await backend.hold.wait()
        finally:
            backend.active -= 1
        return request

    handler = grpc.method_handlers_generic_handler(
        "testing.v1.Echo", {"EchoKitchen": grpc.unary_unary_rpc_method_handler(echo)})
    server.add_generic_rpc_handlers((handler,))
    await server.start()
    return backend


@dataclass(frozen=True, eq=False)
class Stack:
    gateway: app.RunningGateway
    backend: CountingBackend

    @property
    def rest_port(self) -> int:
        assert self.gateway.rest_port is not None
        return self.gateway.rest_port

    @property
    def grpc_port(self) -> int:
        assert self.gateway.grpc_port is not None
        return self.gateway.grpc_port


@asynccontextmanager
async def running_stack(rest: Mapping[str, Any] | None = None,
                        grpc_limits: Mapping[str, Any] | None = None,
                        **overrides: Any) -> AsyncIterator[Stack]:
    backend = await start_backend()
    gateway = None
    try:
        config: dict[str, Any] = {
            "listen": {"rest": {"port": 0}, "grpc": {"port": 0}, "ops": {"port": 0}},
            "descriptors": {"descriptor_set": str(DESCRIPTOR_SET)},
            "backends": {"echo": {"services": ["testing.v1.Echo"],
                                  "addresses": [backend.address],
                                  "health_check": {"enabled": False}}},
            "connections": {"rest": {**FAST_REST, **(rest or {})}, "grpc": dict(grpc_limits or {})},
            **overrides,
        }
        gateway = await app.start(load(config))
        yield Stack(gateway, backend)
    finally:
        if gateway is not None:
            await gateway.stop(0)
        await backend.server.stop(0)


async def read_until_closed(reader: asyncio.StreamReader, timeout: float = 3.0) -> bytes:
    """Everything the server sends until it closes the connection; TimeoutError if it does not
    within `timeout` (the bound that makes a test of "the server closes" fail, not hang)."""
    chunks = []
    async with asyncio.timeout(timeout):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


async def exchange(port: int, data: bytes, timeout: float = 3.0) -> bytes:
    """Send `data` on a new connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await read_until_closed(reader, timeout)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def status_of(reply: bytes) -> int:
    """The status code of the first HTTP response in `reply`."""
    line = reply.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1."), reply[:200]
    return int(line.split()[1])


def header_block(reply: bytes) -> bytes:
    return reply.split(b"\r\n\r\n", 1)[0].lower()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def eventually(check: Callable[[], bool], timeout: float = 3.0,
                     what: str = "condition") -> None:
    """Poll `check` until true, with a bounded deadline (the server side closes asynchronously)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def gather_all(*aws: Awaitable[Any]) -> list[Any]:
    return list(await asyncio.gather(*aws))


def raw_socket(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=3)


def request(body: bytes = b"{}", extra: bytes = b"", close: bool = False) -> bytes:
    """A valid EchoKitchen call (POST /v1/kitchen) carrying the secret."""
    return (b"POST /v1/kitchen HTTP/1.1\r\nHost: gw\r\n" + AUTH
            + b"Content-Type: application/json\r\n"
            + b"Content-Length: %d\r\n" % len(body)
            + (b"Connection: close\r\n" if close else b"") + extra + b"\r\n" + body)


async def read_response(reader: asyncio.StreamReader, timeout: float = 3.0) -> bytes:
    """One complete response with a Content-Length body."""
    async with asyncio.timeout(timeout):
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return head + await reader.readexactly(length)


async def metrics_text(stack: Stack) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{stack.gateway.ops_port}/metrics") as response:
        return await response.text()


def assert_clean(*texts: str | bytes) -> None:
    """No secret, no traceback in any reply or log text."""
    for text in texts:
        value = text.decode("latin-1") if isinstance(text, bytes) else text
        assert SECRET not in value
        assert SECRET[:24] not in value  # not even a prefix of it
        assert "Traceback" not in value
