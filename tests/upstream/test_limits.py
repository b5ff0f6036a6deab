"""Concurrency limit per backend (T-01 scaled down): beyond max_requests, fail fast."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.errors import Unavailable
from services.faults import Fault
from tests.upstream.conftest import StartUsers
from tests.upstream.helpers import GET, FakeClock, calls, get_user, upstream_for


async def test_calls_beyond_max_requests_fail_fast(start_users: StartUsers,
                                                   clock: FakeClock) -> None:
    a, b = await start_users(2)
    for backend in (a, b):
        backend.faults.set(GET, Fault(hang=True))
    async with upstream_for([a, b], clock, max_requests=3, retry={"attempts": 3}) as upstream:
        held = [asyncio.create_task(upstream(get_user(clock))) for _ in range(3)]
        await a.faults.wait_call(GET, 1)
        await b.faults.wait_call(GET, 0)
        started = time.perf_counter()
        for _ in range(10):
            with pytest.raises(Unavailable, match="backend 'users' is overloaded") as caught:
                await upstream(get_user(clock))
            assert caught.value.attempts == 1  # an overload is not retried
        assert time.perf_counter() - started < 0.05
        assert upstream.snapshot()["users"].in_flight == 3
        assert calls(a) + calls(b) == 3  # the refused calls never reached a backend

        held[0].cancel()
        await asyncio.gather(held[0], return_exceptions=True)
        b.faults.clear()
        a.faults.clear()
        await upstream(get_user(clock))  # a slot is free again
        for task in held[1:]:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)
        assert upstream.snapshot()["users"].in_flight == 0
