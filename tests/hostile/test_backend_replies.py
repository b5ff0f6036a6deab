"""Issue 11, class 4: a backend's answer is checked before it is passed off as one.

On REST: a reply that is not strictly its declared type (wire-type mismatches included) is 502,
so is a reply over transcoding.max_reply_bytes (refused by the channel before it is read, RSS
back to where it was) and a call the backend's transport resets after it started; the gRPC edge
passes reply bytes through undecoded. A stream refused at the HTTP/2 level (never processed) is
made once more for every method. The resets and refusals come from a raw HTTP/2 backend
(h2backend.py): grpc.aio servers cannot produce them.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
import yaml

from testing.v1 import transcoding_pb2
from tests.hostile.evil import (
    BOOK,
    BOOK_URL,
    ECHO_KITCHEN,
    GARBAGE,
    GET_BOOK,
    STREAM_BOOKS,
    STREAM_URL,
    WIRE_MISMATCH,
    EvilBackend,
    assert_clean,
    evil,
    front,
    gateway_config,
    logs,
)
from tests.hostile.h2backend import OK, REFUSE, RESET_AFTER, H2Backend

__all__ = ["evil", "logs"]  # fixtures

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def huge_book(size: int) -> bytes:
    return transcoding_pb2.Book(name="shelves/s1/books/b1", title="x" * size).SerializeToString()


async def bad_gateway(response: aiohttp.ClientResponse, code: int = 13,
                      message: str = "the backend's answer could not be used") -> None:
    """A 502 in the error shape; INTERNAL's text is the generic one with the request id."""
    body = await response.json()
    assert response.status == 502
    if code == 13:
        message += f" (request id {response.headers['X-Request-ID']})"
    assert body == {"code": code, "message": message, "details": []}
    assert_clean(await response.text())


@pytest.mark.parametrize("mode", ["mismatch", "garbage"])
async def test_a_reply_that_is_not_its_type_is_502_on_rest_and_raw_on_grpc(
        evil: EvilBackend, logs: pytest.LogCaptureFixture, mode: str) -> None:
    evil.mode = mode
    async with front(evil.address) as gw:
        async with gw.http.get(gw.url(BOOK_URL)) as response:
            await bad_gateway(response)
            assert response.headers["X-Gateway-Backend"] == "evil"
        raw = await gw.unary(GET_BOOK)(b"")  # gRPC edge: bytes through, nothing decoded
    assert raw == {"mismatch": WIRE_MISMATCH, "garbage": GARBAGE}[mode]
    assert evil.calls == [mode, mode]
    hidden = [r.getMessage() for r in logs.records if r.name == "gateway.errors"]
    assert len(hidden) == 1 and "is not a valid testing.v1.Book" in hidden[0]
    if mode == "mismatch":  # what it was before: 200 {}
        assert "field 'name' (1) has wire type 0, declared 2" in hidden[0]


async def test_a_stream_whose_first_message_is_not_its_type_is_502(evil: EvilBackend) -> None:
    evil.mode = "mismatch"
    async with front(evil.address) as gw, gw.http.get(gw.url(STREAM_URL)) as response:
        await bad_gateway(response)
    assert evil.calls == ["mismatch"]


async def test_a_reply_over_max_reply_bytes_is_refused_unread(evil: EvilBackend) -> None:
    evil.huge = huge_book(2 * MIB)
    async with front(evil.address, transcoding={"max_reply_bytes": MIB}) as gw:
        evil.mode = "huge"
        async with gw.http.get(gw.url(BOOK_URL)) as response:  # our text: not hidden
            await bad_gateway(response, 8, "the reply of backend 'evil' exceeds the gateway's "
                                           "reply size limit")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await gw.unary(GET_BOOK)(b"")
        evil.mode = "ok"
        async with gw.http.get(gw.url(BOOK_URL)) as fine:
            assert fine.status == 200  # the channel is fine afterwards
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "reply size limit" in (caught.value.details() or "")
    assert evil.calls == ["huge", "huge", "ok"]


async def test_a_reply_just_under_the_limit_passes(evil: EvilBackend) -> None:
    evil.mode, evil.huge = "huge", huge_book(MIB - 64)
    async with front(evil.address, transcoding={"max_reply_bytes": MIB}) as gw, \
            gw.http.get(gw.url(BOOK_URL)) as response:
        assert response.status == 200
        assert len((await response.json())["title"]) == MIB - 64


def status_kib(pid: int, field: str) -> int:
    """VmRSS (resident now) or VmHWM (the peak) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field}")


@pytest.fixture
async def gateway_process(evil: EvilBackend, tmp_path: Path) -> AsyncIterator[tuple[int, str]]:
    """`python -m gateway serve` with the default limits (16 MiB), REST only: (pid, base url)."""
    config = gateway_config(evil.address, observability={"access_log": {"enabled": False}})
    config["listen"]["grpc"] = None
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--config", str(tmp_path / "gateway.yaml"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT)
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found, line
        yield process.pid, f"http://127.0.0.1:{found.group(1)}"
    finally:
        process.kill()
        await process.wait()


async def test_huge_replies_are_never_held_and_rss_comes_back(
        evil: EvilBackend, gateway_process: tuple[int, str]) -> None:
    """20 MiB replies against the default 16 MiB limit: the gateway's peak RSS never grows by a
    reply (none is buffered: upstream/channel.py fixes the flow-control window at 1 MiB per
    stream), and after the refusals RSS is within 5% of where it was."""
    pid, base = gateway_process
    evil.huge = huge_book(20 * MIB)
    async with aiohttp.ClientSession() as http:
        evil.mode = "ok"
        for _ in range(20):  # warm: imports, caches, the channel
            async with http.get(base + BOOK_URL) as response:
                assert response.status == 200
        before, peak_before = status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM")
        evil.mode = "huge"
        for _ in range(8):
            async with http.get(base + BOOK_URL) as response:
                assert response.status == 502
        after, peak = status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM")
    assert evil.calls.count("huge") == 8
    assert peak - peak_before < 10 * 1024, (peak_before, peak)  # < half of one reply
    assert after <= before * 1.05, (before, after)  # an 8 MiB reply rendered kept +26 MiB


@pytest.fixture
async def h2() -> AsyncIterator[H2Backend]:
    backend = H2Backend([], BOOK)
    await backend.start()
    try:
        yield backend
    finally:
        await backend.stop()


async def test_a_reset_after_the_call_started_is_502(h2: H2Backend,
                                                     logs: pytest.LogCaptureFixture) -> None:
    h2.script[:] = [RESET_AFTER, RESET_AFTER]
    async with front(h2.address) as gw:
        async with gw.http.get(gw.url(BOOK_URL)) as response:  # idempotent: not retried either
            await bad_gateway(response)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await gw.unary(GET_BOOK)(b"")
    assert h2.streams == 2
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert "backend 'evil' broke off the call" in (caught.value.details() or "")
    assert_clean(logs.text, internal=False)


async def test_a_stream_reset_after_its_first_message_ends_with_an_error_line(
        h2: H2Backend) -> None:
    h2.script[:] = [RESET_AFTER]
    h2.release.clear()
    async with front(h2.address) as gw, gw.http.get(gw.url(STREAM_URL)) as response:
        assert response.status == 200  # committed with the first message
        first = await asyncio.wait_for(response.content.readline(), 10)
        h2.release.set()  # now the reset
        lines = [first.decode().rstrip("\n"), *(await response.text()).splitlines()]
        request_id = response.headers["X-Request-ID"]
    assert lines[0] == '{"result":{"name":"shelves/s1/books/b1","title":"Title"}}'
    assert lines[1] == ('{"error":{"code":13,"message":"the backend\'s answer could not be used '
                        f'(request id {request_id})","details":[]}}}}')


@pytest.mark.parametrize("retry", [{}, {"attempts": 1}])
async def test_a_refused_stream_is_made_once_more_even_for_a_post(
        h2: H2Backend, retry: dict[str, int]) -> None:
    h2.reply = b""  # an empty EchoKitchenRequest
    h2.script[:] = [REFUSE, OK, REFUSE, OK]
    async with front(h2.address, backend={"retry": retry}) as gw:
        async with gw.http.post(gw.url("/v1/kitchen"), json={"stringValue": "x"}) as response:
            assert response.status == 200
            assert response.headers["X-Gateway-Attempts"] == "2"
        call = gw.unary(ECHO_KITCHEN)(b"")
        assert await call == b""
        assert dict(await call.trailing_metadata())["x-gateway-attempts"] == "2"
    assert h2.streams == 4


async def test_a_stream_refused_twice_is_not_made_a_third_time(h2: H2Backend) -> None:
    h2.script[:] = [REFUSE, REFUSE]
    async with front(h2.address) as gw, gw.http.post(gw.url("/v1/kitchen"), json={}) as response:
        assert response.status == 503
        assert response.headers["X-Gateway-Attempts"] == "2"
    assert h2.streams == 2


async def test_a_refused_server_stream_is_not_replayed(h2: H2Backend) -> None:
    """Streams are never retried (T-11): a refused one fails at once, 503."""
    h2.script[:] = [REFUSE]
    async with front(h2.address) as gw:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in gw.stream(STREAM_BOOKS)(b""):
                pass
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert h2.streams == 1
