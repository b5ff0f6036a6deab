"""Requests aiohttp's HTTP parser (or the framer ahead of it) refuses: every class with a bearer
token in the headers. Each gets its status in the gateway's error shape, echoing no request
byte; the connection closes; the backend is never called; the log has one short line per
refusal (rate-limited), never the token, never a traceback."""

from __future__ import annotations

import json
import logging

import pytest

from gateway.edges.parser_errors import Refusal, RefusalLog
from tests.hostile.conn_stack import (
    AUTH,
    assert_clean,
    exchange,
    header_block,
    metrics_text,
    request,
    running_stack,
    status_of,
)

MARK = b"X-Marker: m4rk3d-v4lue\r\n"  # a request byte that must not come back
HOST = b"Host: gw\r\n"


def _get(headers: bytes, target: bytes = b"/v1/kitchen/x") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\n" + HOST + AUTH + MARK + headers + b"\r\n"


CHUNKED = b"POST /v1/kitchen HTTP/1.1\r\n" + HOST + AUTH + MARK + (
    b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")

CASES: dict[str, tuple[bytes, int]] = {
    "bare LF line endings": (_get(b"").replace(b"\r\n", b"\n"), 400),
    "one header over the field limit": (_get(b"X-Big: " + b"a" * 9000 + b"\r\n"), 431),
    "a token over the field limit": (_get(b"").replace(AUTH, AUTH[:-2] + b"S" * 9000 + b"\r\n"),
                                     431),
    "header block over the total limit": (
        _get(b"".join(b"X-%d: %s\r\n" % (i, b"v" * 4000) for i in range(6))), 431),
    "too many headers": (_get(b"".join(b"X-%d: y\r\n" % i for i in range(120))), 431),
    "request line too long": (_get(b"", b"/v1/kitchen/" + b"p" * 9000), 414),
    "bad chunk size": (CHUNKED + b"zz\r\n{}\r\n0\r\n\r\n", 400),
    "10 KiB chunk extension": (CHUNKED + b"2;" + b"e" * 10240 + b"\r\n{}\r\n0\r\n\r\n", 400),
    "chunk extension over the cap, split from the headers": (
        CHUNKED + b"2;" + b"e" * 2048, 400),
    "bad content length": (_get(b"Content-Length: 1x\r\n"), 400),
    "two content lengths": (_get(b"Content-Length: 1\r\nContent-Length: 2\r\n") + b"ab", 400),
    "NUL in a header value": (_get(b"X-Nul: a\x00b\r\n"), 400),
    "Content-Length with Transfer-Encoding (smuggling)": (
        CHUNKED.replace(b"Transfer-Encoding", b"Content-Length: 4\r\nTransfer-Encoding")
        + b"0\r\n\r\nGET /v1/kitchen/x HTTP/1.1\r\n\r\n", 400),
    "not HTTP at all": (b"\x16\x03\x01\x02\x00" + AUTH + b"\r\n\r\n", 400),
}


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.mark.parametrize("name", CASES)
async def test_each_refusal_class(name: str, all_logs: pytest.LogCaptureFixture,
                                  capfd: pytest.CaptureFixture[str]) -> None:
    data, status = CASES[name]
    async with running_stack() as stack:
        reply = await exchange(stack.rest_port, data)  # returns once the server closes
        assert status_of(reply) == status
        head, _, body = reply.partition(b"\r\n\r\n")
        assert b"connection: close" in head.lower()
        assert b"server: grpc-edge-gateway" in head.lower()  # not aiohttp and its version
        assert b"aiohttp" not in head.lower()
        error = json.loads(body)
        assert set(error) == {"code", "message", "details"} and error["code"] == 3
        assert b"m4rk3d" not in reply and b"eeee" not in reply and b"aaaa" not in reply
        assert stack.backend.calls == 0
        text = await metrics_text(stack)
        assert f'gateway_http_parser_refusals_total{{reason="{error["message"].split(" (")[0]}"'\
               f',status="{status}"}} 1.0' in text
    refusals = [r for r in all_logs.records if r.name == "gateway.http"]
    assert len(refusals) == 1 and refusals[0].levelno == logging.WARNING
    assert f" {status} " in refusals[0].getMessage()
    assert not [r for r in all_logs.records if r.levelno >= logging.ERROR]
    out, err = capfd.readouterr()
    assert_clean(reply, all_logs.text, out, err)
    assert "m4rk3d" not in all_logs.text


async def test_a_flood_of_refusals_is_a_few_lines(all_logs: pytest.LogCaptureFixture) -> None:
    async with running_stack() as stack:
        for _ in range(30):
            assert status_of(await exchange(stack.rest_port, CASES["bare LF line endings"][0])
                             ) == 400
        text = await metrics_text(stack)
    lines = [r for r in all_logs.records if r.name == "gateway.http"]
    assert 1 <= len(lines) <= 10  # 10 a second at most
    assert 'reason="malformed request line",status="400"} 30.0' in text
    assert_clean(all_logs.text)


def test_the_refusal_log_says_how_many_it_left_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.http")
    refusals = RefusalLog(per_s=3)
    refusal = Refusal(400, "malformed HTTP request")
    for _ in range(10):
        refusals.refused(refusal, "10.0.0.1:5000", "rid", now=100.0)
    refusals.refused(refusal, "10.0.0.1:5000", "rid", now=101.5)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 4
    assert messages[-1].endswith("; 7 more refusals suppressed")
    assert messages[0] == "refused request from 10.0.0.1:5000: 400 malformed HTTP request " \
                          "(request rid)"


async def test_413_closes_the_connection_with_the_unread_body_behind_it(
        all_logs: pytest.LogCaptureFixture) -> None:
    async with running_stack(transcoding={"max_body_bytes": 1024}) as stack:
        declared = request(b"{}").replace(b"Content-Length: 2", b"Content-Length: 100000")
        reply = await exchange(stack.rest_port, declared[:-2] + b'{"stringValue": "' + b"x" * 500)
        assert status_of(reply) == 413
        assert b"connection: close" in header_block(reply)
        # Chunked, no length declared: refused once it passes the limit, then closed.
        chunked = CHUNKED + b"400\r\n" + b" " * 1024 + b"\r\n" + b"400\r\n" + b" " * 1024
        reply = await exchange(stack.rest_port, chunked)
        assert status_of(reply) == 413
        assert b"connection: close" in header_block(reply)
        assert stack.backend.calls == 0
    assert_clean(all_logs.text, reply)


async def test_a_good_request_after_all_that_still_works() -> None:
    async with running_stack() as stack:
        reply = await exchange(stack.rest_port, request(b'{"stringValue": "ok"}', close=True))
        assert status_of(reply) == 200 and b'"stringValue":"ok"' in reply
        chunked = (CHUNKED + b"14;name=value\r\n" + b'{"stringValue":"ok"}' + b"\r\n0\r\n\r\n"
                   ).replace(b"Transfer-Encoding", b"Connection: close\r\nTransfer-Encoding")
        reply = await exchange(stack.rest_port, chunked)
        assert status_of(reply) == 200 and b'"stringValue":"ok"' in reply
        assert stack.backend.calls == 2


async def test_a_chunk_line_over_the_cap_mid_body_closes_the_connection(
        all_logs: pytest.LogCaptureFixture) -> None:
    import asyncio

    from tests.hostile.conn_stack import eventually, read_until_closed

    async with running_stack() as stack:
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.rest_port)
        writer.write(CHUNKED + b"2\r\n{}\r\n")  # the handler is now reading the body
        live = stack.gateway.rest_runner.server.live  # type: ignore[union-attr]
        await eventually(lambda: any(c._framer.in_body and c._request_in_progress for c in live),
                         what="the body being read")
        writer.write(b"1;" + b"e" * 4096)
        assert await read_until_closed(reader) == b""  # aiohttp has the request: no reply
        writer.close()
        assert stack.backend.calls == 0
        assert 'reason="refused_mid_body"} 1.0' in await metrics_text(stack)
    assert len([r for r in all_logs.records if r.name == "gateway.http"]) == 1
    assert_clean(all_logs.text)


# -- the framer alone: it must follow valid traffic however it is split, and never refuse it --

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gateway.edges.framing import Framer, State  # noqa: E402
from gateway.edges.parser_errors import ChunkLineTooLong, HeadersTooLarge  # noqa: E402

VALID = [
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\r\nGET /b HTTP/1.1\r\nHost: x\r\nconTent-LENGTH: 0\r\n\r\n",
    b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
    b"PUT /e HTTP/1.1\r\nHost: x\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
]


@given(st.lists(st.sampled_from(VALID), min_size=1, max_size=6), st.data())
def test_the_framer_follows_pipelined_requests_split_anywhere(
        requests: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(requests)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    framer = Framer(max_header_bytes=1024, max_chunk_line_bytes=64)
    for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        framer.feed(stream[start:stop])
    assert framer.state is State.HEAD and not framer.head_pending


def test_the_framer_knows_where_a_request_is() -> None:
    framer = Framer(max_header_bytes=1024, max_chunk_line_bytes=64)
    framer.feed(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n")
    assert framer.head_pending and not framer.in_body
    framer.feed(b"\r\nab")
    assert framer.in_body and framer.body_bytes == 2
    framer.feed(b"cd")
    assert not framer.in_body and not framer.head_pending


@pytest.mark.parametrize(("data", "error"), [
    (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200, HeadersTooLarge),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + b"e" * 100, ChunkLineTooLong),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + b"T: v\r\n" * 300,
     HeadersTooLarge),
])
def test_the_framer_refuses_past_its_caps(data: bytes, error: type[Exception]) -> None:
    framer = Framer(max_header_bytes=1024, max_chunk_line_bytes=64)
    with pytest.raises(error):
        framer.feed(data)
    assert framer.state is State.PASS


@pytest.mark.parametrize("head", [
    b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"CONNECT host:443 HTTP/1.1\r\n\r\n",
])
def test_the_framer_stops_following_what_the_parser_refuses(head: bytes) -> None:
    framer = Framer(max_header_bytes=1024, max_chunk_line_bytes=64)
    framer.feed(head + b"anything at all" * 100)
    assert framer.state is State.PASS
