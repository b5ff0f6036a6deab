"""Active grpc.health.v1 checks, driven one round at a time with check_now() (T-04, T-06)."""

from __future__ import annotations

import pytest

from gateway.errors import Unavailable
from tests.upstream.conftest import StartUsers
from tests.upstream.helpers import FakeClock, calls, get_user, upstream_for

CHECKS = {"enabled": True, "interval_s": 3600, "unhealthy_threshold": 2, "healthy_threshold": 2}


async def test_not_serving_instance_gets_no_new_calls(start_users: StartUsers,
                                                      clock: FakeClock) -> None:
    a, b = await start_users(2)
    async with upstream_for([a, b], clock, health_check=CHECKS) as upstream:
        assert not upstream.ready()  # nothing checked yet
        await upstream.start()  # returns after the first round
        assert upstream.ready() and upstream.health.healthy_instances("users") == 2
        await b.set_serving(False)
        await upstream.health.check_now()  # NOT_SERVING takes it out at once
        assert upstream.health.snapshot() == {"users": {a.address: "healthy",
                                                        b.address: "unhealthy"}}
        for _ in range(6):
            await upstream(get_user(clock))
        assert (calls(a), calls(b)) == (6, 0)

        await b.set_serving(True)
        await upstream.health.check_now()
        assert upstream.health.healthy_instances("users") == 1  # healthy_threshold is 2
        await upstream.health.check_now()
        assert upstream.health.healthy_instances("users") == 2
        for _ in range(6):
            await upstream(get_user(clock))
        assert (calls(a), calls(b)) == (9, 3)


async def test_every_instance_unhealthy_fails_fast_and_is_not_ready(start_users: StartUsers,
                                                                    clock: FakeClock) -> None:
    backends = await start_users(2)
    async with upstream_for(backends, clock, health_check=CHECKS) as upstream:
        await upstream.start()
        for backend in backends:
            await backend.set_serving(False)
        await upstream.health.check_now()
        assert not upstream.ready()
        with pytest.raises(Unavailable,
                           match="backend 'users' has no healthy instance: 2 not serving$"):
            await upstream(get_user(clock))
    assert [calls(b) for b in backends] == [0, 0]


async def test_unreachable_instance_goes_after_unhealthy_threshold(start_users: StartUsers,
                                                                   clock: FakeClock) -> None:
    a, b = await start_users(2)
    async with upstream_for([a, b], clock, health_check=CHECKS) as upstream:
        await upstream.start()
        await b.stop(0)
        await upstream.health.check_now()
        assert upstream.health.healthy_instances("users") == 2  # one failure is not enough
        await upstream.health.check_now()
        assert upstream.health.healthy_instances("users") == 1
        assert upstream.snapshot()["users"].instances[1].health == "unhealthy"
        assert upstream.ready()


async def test_not_required_backend_does_not_hold_readiness(start_users: StartUsers,
                                                            clock: FakeClock) -> None:
    (only,) = await start_users(1)
    async with upstream_for([only], clock, health_check=CHECKS, required=False) as upstream:
        await only.set_serving(False)
        await upstream.start()
        assert upstream.health.healthy_instances("users") == 0 and upstream.ready()


async def test_background_checks_notice_a_flip_within_an_interval(start_users: StartUsers,
                                                                  clock: FakeClock) -> None:
    """T-06 with interval_s 0.02: the check after the flip takes the instance out."""
    a, b = await start_users(2)
    check = "/grpc.health.v1.Health/Check"
    fast = CHECKS | {"interval_s": 0.02}
    async with upstream_for([a, b], clock, health_check=fast) as upstream:
        await upstream.start()
        await b.set_serving(False)
        seen = len(b.faults.calls_to(check))
        await b.faults.wait_call(check, seen + 1)  # call `seen` answered NOT_SERVING and was noted
        assert upstream.health.healthy_instances("users") == 1
    assert upstream.health.snapshot()["users"][b.address] == "unhealthy"
