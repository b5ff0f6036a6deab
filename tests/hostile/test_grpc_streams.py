"""The gRPC edge's connection limits (T-36, T-37): grpc core's per-connection stream cap and
GOAWAY for a client that pings too often or sits idle; a rapid-reset flood (streams opened and
cancelled at once) reaches no backend and its connection is cut (edges/resetguard.py) while a
busy legitimate connection keeps working."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import pytest

from tests.hostile.conn_stack import (
    ECHO,
    SECRET,
    assert_clean,
    eventually,
    metrics_text,
    running_stack,
)

GRPC_HEADERS = [(":method", "POST"), (":scheme", "http"), (":path", ECHO),
                (":authority", "gw"), ("content-type", "application/grpc"), ("te", "trailers"),
                ("authorization", f"Bearer {SECRET}")]


class RawH2:
    """A blocking HTTP/2 client on a socket (run in a thread): frames, no grpc semantics."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=3)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()
        self.settings: dict[int, int] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, timeout: float) -> bool:
        """Read once (up to timeout); False when the server closed the connection."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return True
        except ConnectionResetError:
            return False
        if not data:
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:  # frames after the server's GOAWAY: it is over
            return False
        for event in events:
            if isinstance(event, h2.events.RemoteSettingsChanged):
                self.settings.update({k: v.new_value for k, v in event.changed_settings.items()})
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = event
        self.flush()
        return True

    def until_goaway(self, seconds: float) -> h2.events.ConnectionTerminated | None:
        deadline = threading.Event()
        timer = threading.Timer(seconds, deadline.set)
        timer.start()
        try:
            while self.goaway is None and not deadline.is_set() and self.pump(0.05):
                pass
        finally:
            timer.cancel()
        return self.goaway

    def close(self) -> None:
        self.sock.close()


async def test_the_stream_cap_is_advertised_and_enforced_per_connection() -> None:
    async with running_stack(grpc_limits={"max_concurrent_streams": 4}) as stack:
        raw = await asyncio.to_thread(RawH2, stack.grpc_port)
        await asyncio.to_thread(raw.pump, 1.0)
        raw.close()
        assert raw.settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 4
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.grpc_port}") as channel:
            call: Any = channel.unary_unary(ECHO)
            assert await call(b"") == b""  # connected: the client has the server's SETTINGS
            stack.backend.hold.clear()
            calls = [asyncio.ensure_future(call(b"")) for _ in range(12)]
            await eventually(lambda: stack.backend.active == 4, what="four calls at the backend")
            stack.backend.hold.set()
            results = await asyncio.gather(*calls, return_exceptions=True)
        # grpc core refuses (REFUSED_STREAM: never processed, safe to retry) a stream the client
        # opens while the server still counts one that just finished; none ran twice.
        refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert all(r.code() == grpc.StatusCode.UNAVAILABLE for r in refused)
        assert results.count(b"") == 12 - len(refused) >= 4
        assert stack.backend.max_active == 4  # never more than the cap at once
        assert stack.backend.calls == 13 - len(refused)


async def test_past_the_connection_cap_grpc_closes_new_connections() -> None:
    async with running_stack(grpc_limits={"max_connections": 2}) as stack:
        first, second = [await asyncio.to_thread(RawH2, stack.grpc_port) for _ in range(2)]
        assert await asyncio.to_thread(first.pump, 1.0) and first.settings
        assert await asyncio.to_thread(second.pump, 1.0) and second.settings
        third = await asyncio.to_thread(RawH2, stack.grpc_port)
        assert not await asyncio.to_thread(third.pump, 3.0)  # closed, no SETTINGS
        assert not third.settings
        first.close()  # a slot frees up: a new connection is served again (once grpc has
        served = None  # seen the close: a bounded number of tries)
        for _ in range(10):
            attempt = await asyncio.to_thread(RawH2, stack.grpc_port)
            if await asyncio.to_thread(attempt.pump, 1.0) and attempt.settings:
                served = attempt
                break
            attempt.close()
        assert served is not None
        for raw in (second, third, served):
            raw.close()


async def test_a_client_pinging_too_often_gets_goaway_too_many_pings() -> None:
    async with running_stack(grpc_limits={"max_ping_strikes": 2}) as stack:
        raw = await asyncio.to_thread(RawH2, stack.grpc_port)

        def ping_flood() -> h2.events.ConnectionTerminated | None:
            for i in range(10):
                raw.conn.ping(b"%08d" % i)
                raw.flush()
                raw.pump(0.05)
                if raw.goaway is not None:
                    break
            return raw.until_goaway(2.0)

        goaway = await asyncio.to_thread(ping_flood)
        raw.close()
        assert goaway is not None
        assert goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        assert goaway.additional_data == b"too_many_pings"


async def test_an_idle_connection_gets_goaway() -> None:
    async with running_stack(grpc_limits={"max_connection_idle_s": 0.3}) as stack:
        raw = await asyncio.to_thread(RawH2, stack.grpc_port)
        goaway = await asyncio.to_thread(raw.until_goaway, 3.0)
        raw.close()
        assert goaway is not None and goaway.additional_data == b"connection idle"


async def test_a_rapid_reset_flood_reaches_no_backend_and_its_connection_is_cut(
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    # Every gateway record, at DEBUG; not the root logger's: there the flooding client's own
    # h2/hpack would log several DEBUG records per stream (tens of thousands a second, each
    # formatted for pytest's handlers under one lock), which once slowed this test past 2 min.
    caplog.set_level(logging.DEBUG, logger="gateway")
    async with running_stack() as stack:
        raw = await asyncio.to_thread(RawH2, stack.grpc_port)
        flooder = raw.sock.getsockname()[1]

        def flood() -> tuple[int, bool]:
            """Open and cancel streams for up to 10 s; (streams, whether the server ended it)."""
            sent = 0
            deadline = threading.Event()
            timer = threading.Timer(10.0, deadline.set)
            timer.start()
            try:
                while not deadline.is_set():
                    for _ in range(100):
                        stream_id = raw.conn.get_next_available_stream_id()
                        raw.conn.send_headers(stream_id, GRPC_HEADERS)
                        raw.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
                        sent += 1
                    try:
                        raw.flush()
                        if not raw.pump(0.001) or raw.goaway is not None:
                            return sent, True
                    except OSError:  # reset by the server after its GOAWAY
                        return sent, True
                return sent, False
            finally:
                timer.cancel()

        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.grpc_port}") as channel:
            echo: Any = channel.unary_unary(ECHO)
            assert await echo(b"", timeout=5) == b""  # a legitimate connection, open before
            flooding = asyncio.ensure_future(asyncio.to_thread(flood))
            legit = 0
            while not flooding.done():  # busy and succeeding all along: never the one cut
                assert await echo(b"", timeout=5) == b""
                legit += 1
            sent, ended = await flooding
            assert await echo(b"", timeout=5) == b""
        raw.close()
        assert ended, f"{sent} streams reset and the connection was never cut"
        if raw.goaway is not None:
            assert raw.goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        assert stack.backend.calls == legit + 2  # none of the flood's streams got through
        text = await metrics_text(stack)
        assert 'gateway_grpc_connections_closed_total{reason="rapid_reset"} 1.0' in text
    assert [r.getMessage() for r in caplog.records if r.name == "gateway.grpc"] == [
        f"gRPC connection from 127.0.0.1:{flooder} reset streams faster "
        "than 200/s: GOAWAY, closed"]
    out, err = capfd.readouterr()
    assert_clean(caplog.text, out, err)


async def test_a_connection_whose_calls_fail_fast_but_cleanly_is_not_taken_for_a_flood() -> None:
    # Hundreds of calls a second answered UNIMPLEMENTED: failed calls for the server, but every
    # stream ends properly, so the connection is no rapid-reset client.
    async with running_stack(grpc_limits={"max_resets_per_s": 50}) as stack:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.grpc_port}") as channel:
            unknown: Any = channel.unary_unary("/testing.v1.Echo/Nope")
            loop = asyncio.get_running_loop()
            end = loop.time() + 1.5  # three looks of the guard
            failed = 0
            while loop.time() < end:
                results = await asyncio.gather(*(unknown(b"") for _ in range(20)),
                                               return_exceptions=True)
                assert all(isinstance(r, grpc.aio.AioRpcError)
                           and r.code() == grpc.StatusCode.UNIMPLEMENTED for r in results)
                failed += len(results)
            assert failed > 150  # well past the limit for the guard's looks
            echo: Any = channel.unary_unary(ECHO)
            assert await echo(b"", timeout=5) == b""  # the same connection, still open
        assert 'gateway_grpc_connections_closed_total{reason="rapid_reset"} 0.0' in \
            await metrics_text(stack)
