"""The circuit breaker over a real backend, with an injected clock for the cooldown (T-04)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from gateway.errors import GatewayError, Unavailable
from gateway.upstream.forward import Upstream
from services.faults import Fault
from tests.upstream.conftest import StartUsers
from tests.upstream.helpers import GET, UNAVAILABLE, FakeClock, calls, get_user, upstream_for
from users.v1 import users_pb2

BREAKER = {"consecutive_failures": 3, "cooldown_s": 30, "min_requests": 100}
NO_EJECTION = {"consecutive_failures": 100}


def _breaker(upstream: Upstream) -> tuple[str, dict[str, int]]:
    (status,) = upstream.snapshot()["users"].breakers
    return status.state, dict(status.transitions)


async def test_opens_fails_fast_half_opens_and_closes(start_users: StartUsers,
                                                      clock: FakeClock) -> None:
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(code=UNAVAILABLE))
    async with upstream_for([only], clock, breaker=BREAKER, outlier=NO_EJECTION) as upstream:
        for _ in range(3):
            with pytest.raises(GatewayError):
                await upstream(get_user(clock, idempotent=False))
        assert _breaker(upstream) == ("open", {"open": 1})
        started = time.perf_counter()
        for _ in range(20):
            with pytest.raises(Unavailable, match="circuit open for backend 'users'"):
                await upstream(get_user(clock))
        assert time.perf_counter() - started < 0.1  # 20 refusals, no backend round trip
        assert calls(only) == 3

        clock.advance(29.9)
        with pytest.raises(Unavailable, match="circuit open"):
            await upstream(get_user(clock))
        clock.advance(0.1)
        with pytest.raises(GatewayError, match="injected fault"):  # the probe fails: open again
            await upstream(get_user(clock))
        assert _breaker(upstream) == ("open", {"open": 2, "half_open": 1})
        assert calls(only) == 4  # and the failed probe was not retried

        only.faults.clear()
        clock.advance(30)
        await upstream(get_user(clock))
        assert _breaker(upstream) == ("closed", {"open": 2, "half_open": 2, "closed": 1})
        for _ in range(5):
            await upstream(get_user(clock))
        assert calls(only) == 10


async def test_half_open_lets_only_the_probes_through(start_users: StartUsers,
                                                      clock: FakeClock) -> None:
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(code=UNAVAILABLE, times=3))
    async with upstream_for([only], clock, breaker=BREAKER, outlier=NO_EJECTION) as upstream:
        for _ in range(3):
            with pytest.raises(GatewayError):
                await upstream(get_user(clock, idempotent=False))
        only.faults.set(GET, Fault(hang=True, times=1))
        clock.advance(30)
        probe = asyncio.create_task(upstream(get_user(clock)))
        await only.faults.wait_call(GET, 3)
        with pytest.raises(Unavailable, match="circuit open"):
            await upstream(get_user(clock))
        probe.cancel()  # cut short: decides nothing, frees the probe slot
        await asyncio.gather(probe, return_exceptions=True)
        assert _breaker(upstream)[0] == "half_open"
        await upstream(get_user(clock))
        assert _breaker(upstream)[0] == "closed"
    assert calls(only) == 5


async def test_failure_ratio_over_the_window_opens(start_users: StartUsers,
                                                   clock: FakeClock) -> None:
    (only,) = await start_users(1)
    ratio = {"consecutive_failures": 100, "failure_ratio": 0.5, "min_requests": 6,
             "window_s": 10}
    async with upstream_for([only], clock, breaker=ratio, outlier=NO_EJECTION) as upstream:
        for _ in range(2):  # F ok F ok: 4 requests, under min_requests
            only.faults.set(GET, Fault(code=UNAVAILABLE, times=1))
            with pytest.raises(GatewayError):
                await upstream(get_user(clock, idempotent=False))
            await upstream(get_user(clock))
        clock.advance(11)  # those fall out of the window
        for _ in range(5):
            await upstream(get_user(clock))
        only.faults.set(GET, Fault(code=UNAVAILABLE, times=1))
        with pytest.raises(GatewayError):
            await upstream(get_user(clock, idempotent=False))
        assert _breaker(upstream)[0] == "closed"  # 1 of 6 in the window
        only.faults.set(GET, Fault(code=UNAVAILABLE))
        for _ in range(4):
            with pytest.raises(GatewayError):
                await upstream(get_user(clock, idempotent=False))
        assert _breaker(upstream)[0] == "open"  # 5 of 10: ratio reached


async def test_per_method_breakers_are_separate(start_users: StartUsers,
                                                clock: FakeClock) -> None:
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(code=UNAVAILABLE))
    per_method = BREAKER | {"per_method": True}
    async with upstream_for([only], clock, breaker=per_method, outlier=NO_EJECTION) as upstream:
        for _ in range(3):
            with pytest.raises(GatewayError):
                await upstream(get_user(clock, idempotent=False))
        with pytest.raises(Unavailable, match="circuit open"):
            await upstream(get_user(clock))
        await upstream(replace(get_user(clock), method="/users.v1.Users/ListUsers",
                               payload=users_pb2.ListUsersRequest().SerializeToString()))
        states = {s.scope: s.state for s in upstream.snapshot()["users"].breakers}
        assert states == {GET: "open", "/users.v1.Users/ListUsers": "closed"}
