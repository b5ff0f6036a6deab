"""Load balancing over real instances: round robin, least request, fail fast with none left."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.errors import Unavailable
from services.faults import Fault
from tests.upstream.conftest import StartUsers
from tests.upstream.helpers import (
    GET,
    UNAVAILABLE,
    FakeClock,
    calls,
    get_user,
    upstream_for,
)


async def test_round_robin_spreads_calls_evenly(start_users: StartUsers, clock: FakeClock
                                                ) -> None:
    backends = await start_users(3)
    async with upstream_for(backends, clock) as upstream:
        for _ in range(9):
            reply = await upstream(get_user(clock))
            assert reply.backend == "users" and reply.attempts == 1
    assert [calls(b) for b in backends] == [3, 3, 3]


async def test_least_request_prefers_the_idle_instance(start_users: StartUsers,
                                                       clock: FakeClock) -> None:
    busy, idle = await start_users(2)
    busy.faults.set(GET, Fault(hang=True))
    async with upstream_for([busy, idle], clock, lb="least_request") as upstream:
        # P2C draws both instances in random order; send calls until one is stuck on `busy`.
        hung: asyncio.Task[object] | None = None
        while not busy.faults.calls_to(GET):
            task = asyncio.create_task(upstream(get_user(clock)))
            arrived = asyncio.create_task(busy.faults.wait_call(GET))
            await asyncio.wait([task, arrived], return_when=asyncio.FIRST_COMPLETED)
            arrived.cancel()
            hung = task
        before = calls(idle)
        for _ in range(10):
            await upstream(get_user(clock))
        assert calls(idle) == before + 10 and calls(busy) == 1
        assert upstream.snapshot()["users"].instances[0].outstanding == 1
        assert hung is not None
        hung.cancel()
        await asyncio.gather(hung, return_exceptions=True)
        assert [i.outstanding for i in upstream.snapshot()["users"].instances] == [0, 0]


async def test_every_instance_down_fails_fast_naming_the_backend(start_users: StartUsers,
                                                                 clock: FakeClock) -> None:
    """T-04: the only instance is ejected -> Unavailable at once, no backend call."""
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(code=UNAVAILABLE))
    async with upstream_for([only], clock, outlier={"consecutive_failures": 2}) as upstream:
        for _ in range(2):
            with pytest.raises(Unavailable):
                await upstream(get_user(clock, idempotent=False))
        started = time.perf_counter()
        with pytest.raises(Unavailable, match="backend 'users' has no healthy instance: 1 ejected"):
            await upstream(get_user(clock))
        assert time.perf_counter() - started < 0.05
    assert calls(only) == 2

