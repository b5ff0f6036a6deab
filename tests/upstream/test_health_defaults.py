"""Health defaults that work with any gRPC server: UNIMPLEMENTED is healthy (gRFC A17), the 503
names why no instance is usable, and a recovered backend half-opens its breaker at once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest

from gateway.config import load
from gateway.errors import Unavailable
from gateway.upstream.forward import Upstream
from services.faults import Fault
from services.users import UsersService
from tests.upstream.conftest import StartUsers
from tests.upstream.helpers import (
    GET,
    UNAVAILABLE,
    FakeClock,
    backend_config,
    calls,
    get_user,
    upstream_for,
)
from users.v1 import users_pb2

CHECKS = {"enabled": True, "interval_s": 3600}  # rounds driven by check_now()


@asynccontextmanager
async def plain_users_server() -> AsyncIterator[str]:
    """users.v1.Users on a bare grpc.aio server: no health service, no reflection."""
    server = grpc.aio.server()
    UsersService().add_to(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def test_plain_server_without_health_service_is_served_with_defaults(
        clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """Default health_check (on, every 5 s): UNIMPLEMENTED means healthy, warned once."""
    async with plain_users_server() as address:
        async with upstream_for([address], clock, health_check={}) as upstream:
            with caplog.at_level(logging.WARNING, logger="gateway.upstream.health"):
                await upstream.start()
                await upstream.health.check_now()
            assert upstream.ready()
            assert upstream.health.snapshot() == {"users": {address: "healthy"}}
            reply = await upstream(get_user(clock))
            assert isinstance(reply.payload, bytes)
            assert users_pb2.User.FromString(reply.payload).id == "u-1001"
    warnings = [r for r in caplog.records if "no grpc.health.v1 service" in r.getMessage()]
    assert len(warnings) == 1  # two checks, one warning for the instance


async def test_no_usable_instance_names_the_reasons_not_the_addresses(
        start_users: StartUsers, clock: FakeClock) -> None:
    a, b, gone = await start_users(3)
    await gone.stop(0)
    async with upstream_for([a, b, gone], clock, health_check=CHECKS) as upstream:
        await a.set_serving(False)
        await b.set_serving(False)
        await upstream.start()
        assert not upstream.ready()
        with pytest.raises(Unavailable) as caught:
            await upstream(get_user(clock))
    message = str(caught.value)
    assert message == "backend 'users' has no healthy instance: 2 not serving, 1 unreachable"
    assert "127.0.0.1" not in message
    assert calls(a) == calls(b) == 0


async def test_open_breaker_half_opens_when_the_health_check_passes_again(
        start_users: StartUsers, clock: FakeClock) -> None:
    """The fake clock never moves: only the health check can end the 30 s cooldown."""
    (only,) = await start_users(1)
    breaker = {"consecutive_failures": 2, "cooldown_s": 30}
    async with upstream_for([only], clock, health_check=CHECKS, breaker=breaker) as upstream:
        await upstream.start()
        only.faults.set(GET, Fault(code=UNAVAILABLE))
        await only.set_serving(False)  # the backend goes down: calls fail, checks say so
        for _ in range(2):
            with pytest.raises(Unavailable):
                await upstream(get_user(clock, idempotent=False))
        with pytest.raises(Unavailable, match="circuit open for backend 'users'"):
            await upstream(get_user(clock))
        await upstream.health.check_now()
        assert upstream.snapshot()["users"].breakers[0].state == "open"

        only.faults.clear()
        await only.set_serving(True)
        await upstream.health.check_now()
        assert upstream.snapshot()["users"].breakers[0].state == "half_open"
        await upstream(get_user(clock))  # the probe
        assert upstream.snapshot()["users"].breakers[0].state == "closed"
    assert calls(only) == 3


async def test_breaker_recovery_takes_about_one_health_interval(start_users: StartUsers) -> None:
    """Real clock, checks every 0.1 s, cooldown 30 s: calls succeed again within one interval
    (plus the check's round trip) of the backend coming back."""
    (only,) = await start_users(1)
    interval = 0.1
    config = load(backend_config([only.address], health_check={"interval_s": interval},
                                 breaker={"consecutive_failures": 2, "cooldown_s": 30}))
    upstream = Upstream.from_config(config, {"users.v1.Users": "users"})
    clock = time.monotonic
    try:
        await upstream.start()
        only.faults.set(GET, Fault(code=UNAVAILABLE))
        await only.set_serving(False)
        for _ in range(2):
            with pytest.raises(Unavailable):
                await upstream(get_user(clock, idempotent=False))  # type: ignore[arg-type]
        async with asyncio.timeout(5):  # the checker sees it down
            while upstream.health.healthy_instances("users"):
                await asyncio.sleep(interval / 10)
        only.faults.clear()
        await only.set_serving(True)
        back = time.monotonic()
        async with asyncio.timeout(5):
            while True:  # calls at 200/s until one is served
                try:
                    await upstream(get_user(clock))  # type: ignore[arg-type]
                    break
                except Unavailable:
                    await asyncio.sleep(0.005)
        recovery = time.monotonic() - back
    finally:
        await upstream.close()
    print(f"breaker recovery after the backend came back: {recovery * 1000:.0f} ms "
          f"(health interval {interval * 1000:.0f} ms, cooldown 30 s)")
    assert recovery < interval + 0.4
