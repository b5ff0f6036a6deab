"""Passive outlier ejection over real instances, with the ejection clock injected (T-03, T-05)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from gateway.errors import GatewayError
from gateway.upstream.forward import Upstream
from services.faults import Fault
from tests.upstream.conftest import StartUsers
from tests.upstream.helpers import (
    GET,
    UNAVAILABLE,
    FakeClock,
    calls,
    get_user,
    settle,
    upstream_for,
)

OUTLIER = {"consecutive_failures": 3, "base_ejection_s": 10, "max_ejection_s": 25}


async def _send(upstream: Upstream, clock: FakeClock, count: int, **kwargs: object) -> int:
    """Send `count` non-idempotent calls (no retries); how many failed."""
    failed = 0
    for _ in range(count):
        try:
            await upstream(get_user(clock, idempotent=False, **kwargs))  # type: ignore[arg-type]
        except GatewayError:
            failed += 1
    return failed


def _ejected(upstream: Upstream) -> list[bool]:
    return [i.ejected for i in upstream.snapshot()["users"].instances]


async def test_failing_instance_is_ejected_then_probed_once(start_users: StartUsers,
                                                            clock: FakeClock) -> None:
    """T-03 scaled down: 3 faults in a row eject B; 0 calls until the clock passes 10 s; then one
    probe; a failed probe re-ejects for 20 s (x2), then 25 s (the cap); a good probe restores."""
    good, bad = await start_users(2)
    bad.faults.set(GET, Fault(code=UNAVAILABLE))
    async with upstream_for([good, bad], clock, outlier=OUTLIER) as upstream:
        assert await _send(upstream, clock, 6) == 3  # round robin: bad gets calls 2, 4 and 6
        assert _ejected(upstream) == [False, True]
        assert await _send(upstream, clock, 10) == 0
        clock.advance(9.9)
        assert await _send(upstream, clock, 10) == 0
        assert calls(bad) == 3

        for ejection_s in (10, 20, 25, 25):  # each probe fails: ejected again, for longer
            clock.advance(ejection_s - 9.9)
            assert await _send(upstream, clock, 10) == 1  # exactly one probe, which fails
            clock.advance(9.9)  # still inside even the shortest ejection
            assert await _send(upstream, clock, 10) == 0
        assert calls(bad) == 7
        assert upstream.snapshot()["users"].instances[1].ejections == 5

        bad.faults.clear()
        clock.advance(25)
        assert await _send(upstream, clock, 10) == 0
        assert _ejected(upstream) == [False, False]
        assert calls(bad) == 8 + 4  # the good probe, then its round-robin share of 9 calls


async def test_only_one_probe_while_it_is_in_flight(start_users: StartUsers,
                                                    clock: FakeClock) -> None:
    good, bad = await start_users(2)
    bad.faults.set(GET, Fault(code=UNAVAILABLE))
    async with upstream_for([good, bad], clock, outlier=OUTLIER) as upstream:
        await _send(upstream, clock, 6)
        bad.faults.set(GET, Fault(hang=True))
        clock.advance(10)
        tasks = [asyncio.create_task(upstream(get_user(clock, idempotent=False)))
                 for _ in range(10)]
        await bad.faults.wait_call(GET, 3)
        await settle(tasks, 9)  # everything but the probe went to the good instance
        assert calls(bad) == 4 and calls(good) == 3 + 9
        probe = next(t for t in tasks if not t.done())
        probe.cancel()
        await asyncio.gather(probe, return_exceptions=True)
        # a probe cut short decides nothing: the next call probes again
        bad.faults.clear()
        assert await _send(upstream, clock, 2) == 0
        assert _ejected(upstream) == [False, False]


async def test_ejection_never_takes_more_than_max_percent(start_users: StartUsers,
                                                          clock: FakeClock) -> None:
    """T-05: both instances failing, max_ejection_percent 50: one is ejected, traffic flows."""
    backends = await start_users(2)
    for backend in backends:
        backend.faults.set(GET, Fault(code=UNAVAILABLE))
    async with upstream_for(backends, clock, outlier=OUTLIER,
                            breaker={"consecutive_failures": 100}) as upstream:
        assert await _send(upstream, clock, 20) == 20
        assert sorted(_ejected(upstream)) == [False, True]
        assert sum(calls(b) for b in backends) == 20


@pytest.mark.parametrize("code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                                  grpc.StatusCode.PERMISSION_DENIED,
                                  grpc.StatusCode.FAILED_PRECONDITION])
async def test_caller_errors_never_eject_or_open_the_breaker(
    start_users: StartUsers, clock: FakeClock, code: grpc.StatusCode
) -> None:
    """T-05: 100% caller errors eject nothing and trip nothing; they are not retried either."""
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(code=code))
    async with upstream_for([only], clock, outlier={"consecutive_failures": 2},
                            breaker={"consecutive_failures": 2, "min_requests": 2},
                            retry={"attempts": 3}) as upstream:
        for _ in range(12):
            with pytest.raises(GatewayError) as caught:
                await upstream(get_user(clock))
            assert caught.value.code.value == code.value[0] and caught.value.attempts == 1
        status = upstream.snapshot()["users"]
    assert calls(only) == 12
    assert not status.instances[0].ejected and status.breakers[0].state == "closed"


async def test_not_found_from_the_real_backend_is_a_caller_error(start_users: StartUsers,
                                                                 clock: FakeClock) -> None:
    (only,) = await start_users(1)
    async with upstream_for([only], clock, outlier={"consecutive_failures": 1}) as upstream:
        assert await _send(upstream, clock, 3, user="u-404") == 3
        assert await _send(upstream, clock, 1) == 0
        assert _ejected(upstream) == [False]

