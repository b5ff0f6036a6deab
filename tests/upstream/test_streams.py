"""Reply streams: they hold their slot while open, are never retried (T-11), and count as
backend outcomes like unary calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from gateway.call import Call, Kind
from gateway.errors import Code, GatewayError, Unavailable
from gateway.upstream.forward import Upstream
from services.faults import Fault
from services.server import RunningBackend, start_backend
from testing.v1 import transcoding_pb2
from tests.upstream.helpers import UNAVAILABLE, FakeClock, upstream_for

STREAM = "/testing.v1.Echo/StreamBooks"
ECHO: dict[str, Any] = {"name": "echo", "service": "testing.v1.Echo"}


@pytest.fixture
async def echo() -> AsyncIterator[RunningBackend]:
    backend = await start_backend("echo")
    yield backend
    await backend.stop(0)


def _books(clock: FakeClock, count: int, fail_code: int = 0) -> Call:
    request = transcoding_pb2.StreamBooksRequest(parent="shelves/1", count=count,
                                                 fail_code=fail_code)
    return Call(STREAM, request.SerializeToString(), kind=Kind.SERVER_STREAM,
                deadline=clock() + 5, idempotent=True)


async def _titles(upstream: Upstream, call: Call) -> list[str]:
    reply = await upstream(call)
    assert not isinstance(reply.payload, bytes)
    return [transcoding_pb2.Book.FromString(m).title async for m in reply.payload]


async def test_stream_holds_its_slot_until_it_ends(echo: RunningBackend, clock: FakeClock
                                                   ) -> None:
    async with upstream_for([echo], clock, **ECHO) as upstream:
        reply = await upstream(_books(clock, 3))
        status = upstream.snapshot()["echo"]
        assert status.in_flight == 1 and status.instances[0].outstanding == 1
        assert not isinstance(reply.payload, bytes)
        titles = [transcoding_pb2.Book.FromString(m).title async for m in reply.payload]
        assert titles == ["Book 1", "Book 2", "Book 3"]
        status = upstream.snapshot()["echo"]
        assert status.in_flight == 0 and status.instances[0].outstanding == 0


@pytest.mark.parametrize("count", [0, 1])
async def test_streams_are_never_retried(echo: RunningBackend, clock: FakeClock,
                                         count: int) -> None:
    """T-11: failing UNAVAILABLE before or after the first message, idempotent or not: 1 call."""
    async with upstream_for([echo], clock, retry={"attempts": 5}, **ECHO) as upstream:
        with pytest.raises(GatewayError) as caught:
            await _titles(upstream, _books(clock, count, grpc.StatusCode.UNAVAILABLE.value[0]))
    assert caught.value.code is Code.UNAVAILABLE and caught.value.attempts == 1
    assert len(echo.faults.calls_to(STREAM)) == 1


async def test_failing_streams_eject_the_instance(echo: RunningBackend, clock: FakeClock) -> None:
    """Trailers-only failures count when the stream ends, so they add up to an ejection."""
    echo.faults.set(STREAM, Fault(code=UNAVAILABLE))
    async with upstream_for([echo], clock, outlier={"consecutive_failures": 3},
                            **ECHO) as upstream:
        for _ in range(3):
            with pytest.raises(GatewayError, match="injected fault"):
                await _titles(upstream, _books(clock, 2))
        with pytest.raises(Unavailable, match="backend 'echo' has no healthy instance: 1 ejected"):
            await upstream(_books(clock, 2))
        clock.advance(30)
        echo.faults.clear()
        assert await _titles(upstream, _books(clock, 1)) == ["Book 1"]  # the probe
        assert not upstream.snapshot()["echo"].instances[0].ejected
