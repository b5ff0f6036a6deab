"""Hostile connections on the REST listener (T-37): slow headers, a declared body never sent, a
trickling body, idle keep-alive, more connections than the cap. Each is cut at its limit (and
counted), the backend is never called for it, busy connections are never the ones closed, and
file descriptors come back."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from tests.hostile.conn_stack import (
    AUTH,
    assert_clean,
    eventually,
    metrics_text,
    open_fds,
    read_response,
    read_until_closed,
    request,
    rss_bytes,
    running_stack,
    status_of,
)

pytestmark = pytest.mark.usefixtures("all_logs")


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def _closed_metric(text: str, reason: str) -> float:
    prefix = f'gateway_http_connections_closed_total{{reason="{reason}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return 0.0


async def test_headers_a_byte_at_a_time_are_cut_at_the_header_timeout(
        all_logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    async with running_stack() as stack:
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.rest_port)
        started = time.monotonic()
        closed_after = None
        for byte in request()[:-4]:  # never the end of the headers
            writer.write(bytes([byte]))
            if reader.at_eof() or writer.is_closing():
                break
            try:  # a slowloris pace: a byte every 20 ms, well inside any "idle" timer
                if await asyncio.wait_for(reader.read(1), 0.02) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
        writer.close()
        assert closed_after is not None, "the connection was never cut"
        assert 0.3 <= closed_after < 1.5  # header_timeout_s: 0.3
        assert stack.backend.calls == 0
        assert _closed_metric(await metrics_text(stack), "header_timeout") == 1
    out, err = capfd.readouterr()
    assert_clean(all_logs.text, out, err)


async def test_a_connection_that_says_nothing_is_cut() -> None:
    async with running_stack() as stack:
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.rest_port)
        started = time.monotonic()
        assert await read_until_closed(reader) == b""
        assert 0.3 <= time.monotonic() - started < 1.5
        writer.close()


async def test_a_declared_body_never_sent_is_cut(
        all_logs: pytest.LogCaptureFixture) -> None:
    async with running_stack() as stack:
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.rest_port)
        head = request(b"{}")[:-2].replace(b"Content-Length: 2", b"Content-Length: 100")
        writer.write(head + b'{"')
        started = time.monotonic()
        assert await read_until_closed(reader) == b""  # cut, nothing answered
        assert 0.3 <= time.monotonic() - started < 1.5  # body_timeout_s: 0.3
        writer.close()
        assert stack.backend.calls == 0
        text = await metrics_text(stack)
        # The two bytes may come in a read of their own, after which the rate check is first.
        assert _closed_metric(text, "body_timeout") + _closed_metric(text, "body_too_slow") == 1
    assert_clean(all_logs.text)


async def test_a_body_below_the_minimum_rate_is_cut() -> None:
    # Never a gap as long as body_timeout_s, but ~10 bytes/s against a 1 KiB/s minimum.
    async with running_stack() as stack:
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.rest_port)
        writer.write(request(b"{}").replace(b"Content-Length: 2", b"Content-Length: 4000")[:-2])
        started = time.monotonic()
        cut = False
        while time.monotonic() - started < 2.0:
            writer.write(b" ")
            try:
                if await asyncio.wait_for(reader.read(1), 0.1) == b"":
                    cut = True
                    break
            except TimeoutError:
                continue
        writer.close()
        assert cut
        assert 0.3 <= time.monotonic() - started < 1.5
        assert stack.backend.calls == 0
        assert _closed_metric(await metrics_text(stack), "body_too_slow") == 1


async def test_an_idle_keepalive_connection_is_closed_after_its_request() -> None:
    async with running_stack() as stack:
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.rest_port)
        writer.write(request())
        reply = await read_response(reader)
        assert status_of(reply) == 200
        answered = time.monotonic()
        assert await read_until_closed(reader) == b""
        assert 0.3 <= time.monotonic() - answered < 1.5  # keepalive_timeout_s: 0.3
        writer.close()
        assert stack.backend.calls == 1
        assert _closed_metric(await metrics_text(stack), "idle_timeout") == 1


async def test_past_the_cap_the_longest_idle_goes_then_new_ones_are_refused(
        all_logs: pytest.LogCaptureFixture) -> None:
    slow = {"header_timeout_s": 10, "keepalive_timeout_s": 10, "max_connections": 3}
    async with running_stack(rest=slow) as stack:
        stack.backend.hold.clear()  # calls that reach the backend stay busy
        conns = [await asyncio.open_connection("127.0.0.1", stack.rest_port) for _ in range(2)]
        for _, writer in conns:
            writer.write(request())
        await eventually(lambda: stack.backend.calls == 2, what="two busy calls")
        # A third that has sent nothing: idle.
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", stack.rest_port)
        await eventually(lambda: len(stack.gateway.rest_runner.server.live) == 3,  # type: ignore
                         what="three connections")
        # A fourth connection: the idle one (the newest, but the only idle one) is closed.
        fourth = await asyncio.open_connection("127.0.0.1", stack.rest_port)
        assert await read_until_closed(idle_reader) == b""
        idle_writer.close()
        fourth[1].write(request())
        await eventually(lambda: stack.backend.calls == 3, what="the fourth's call")
        # Everything busy now: a fifth is answered 503 and closed.
        refused_reader, refused_writer = await asyncio.open_connection(
            "127.0.0.1", stack.rest_port)
        refused = await read_until_closed(refused_reader)
        refused_writer.close()
        assert status_of(refused) == 503
        assert b"Server: grpc-edge-gateway\r\n" in refused  # no library name
        assert b"retry-after: 1" in refused.lower()
        # The busy ones were never touched: all answer once the backend does.
        stack.backend.hold.set()
        for reader, writer in [*conns, fourth]:
            assert status_of(await read_response(reader)) == 200
            writer.close()
        assert stack.backend.calls == 3
        text = await metrics_text(stack)
        assert _closed_metric(text, "evicted_idle") == 1
        assert _closed_metric(text, "refused_at_cap") == 1
        assert 'gateway_connection_limit{edge="rest",limit="max_connections"} 3.0' in text
    assert_clean(all_logs.text)


async def test_at_the_cap_a_connection_stuck_in_its_headers_goes_before_a_new_one_is_refused(
        ) -> None:
    slow = {"header_timeout_s": 10, "keepalive_timeout_s": 10, "max_connections": 2}
    async with running_stack(rest=slow) as stack:
        stack.backend.hold.clear()
        busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", stack.rest_port)
        busy_writer.write(request())
        await eventually(lambda: stack.backend.calls == 1, what="the busy call")
        slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", stack.rest_port)
        slow_writer.write(request()[:40])  # a slowloris: headers begun, never finished
        live = stack.gateway.rest_runner.server.live  # type: ignore[union-attr]
        await eventually(lambda: any(c._framer.head_pending for c in live),
                         what="headers begun")
        new_reader, new_writer = await asyncio.open_connection("127.0.0.1", stack.rest_port)
        assert await read_until_closed(slow_reader) == b""
        slow_writer.close()
        stack.backend.hold.set()
        new_writer.write(request())
        assert status_of(await read_response(new_reader)) == 200
        assert status_of(await read_response(busy_reader)) == 200
        new_writer.close()
        busy_writer.close()
        assert _closed_metric(await metrics_text(stack), "evicted_idle") == 1


async def test_file_descriptors_and_memory_come_back_after_floods_of_silent_connections(
        ) -> None:
    async def flood(port: int, count: int) -> None:
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
        for _, writer in conns:
            writer.write(b"GET / HTTP/1.1\r\n" + AUTH)  # headers that never end
        for reader, writer in conns:
            assert await read_until_closed(reader) == b""
            writer.close()

    async with running_stack(rest={"max_connections": 1000}) as stack:
        live = stack.gateway.rest_runner.server.live  # type: ignore[union-attr]
        await flood(stack.rest_port, 50)  # warms the allocator's pools up
        await eventually(lambda: not live, what="no connection left")
        fds, rss = open_fds(), rss_bytes()
        for _ in range(2):
            await flood(stack.rest_port, 200)
            await eventually(lambda: not live, what="no connection left")
        await eventually(lambda: open_fds() <= fds, what="fds back to baseline")
        assert rss_bytes() <= rss * 1.05  # T-35's +/-5%


def test_the_shipped_config_states_every_default_and_a_reload_cannot_change_them() -> None:
    from pathlib import Path

    from gateway.config import Connections, load_file
    from gateway.errors import ConfigError
    from gateway.reload import check_reloadable

    shipped = load_file(Path(__file__).resolve().parents[2] / "deploy" / "gateway.yaml")
    assert shipped.connections == Connections()
    changed = shipped.model_copy(update={"connections": Connections.model_validate(
        {"rest": {"max_connections": 5}})})
    with pytest.raises(ConfigError, match="connections: changes need a restart"):
        check_reloadable(shipped, changed)


async def test_a_tls_handshake_never_finished_is_cut_at_the_header_timeout(
        tmp_path: Path) -> None:
    import ssl

    from tests.certs import make_authority

    ca = make_authority(tmp_path)
    cert = ca.issue(tmp_path, "gateway")
    tls = {"cert_file": str(cert.cert), "key_file": str(cert.key)}
    listen = {"rest": {"port": 0, "tls": tls}, "grpc": {"port": 0}, "ops": {"port": 0}}
    async with running_stack(listen=listen) as stack:
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.rest_port)
        started = time.monotonic()
        writer.write(b"\x16\x03\x01")  # the first bytes of a ClientHello, and no more
        assert await read_until_closed(reader) == b""
        assert 0.3 <= time.monotonic() - started < 1.5  # header_timeout_s: 0.3
        writer.close()
        # A client that finishes its handshake is served as ever.
        trust = ssl.create_default_context(cafile=str(ca.cert))
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.rest_port, ssl=trust,
                                                       server_hostname="localhost")
        writer.write(request(close=True))
        assert status_of(await read_until_closed(reader)) == 200
        writer.close()
