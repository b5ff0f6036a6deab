"""Class 8, identity provider outages: a token whose issuer's keys were never fetched (the JWKS
down since start) is 503 + Retry-After / UNAVAILABLE, not 401: the client is not at fault and
should come back. Once keys were fetched, an unknown kid stays 401. grpc.health.v1's overall
status says what /readyz says, in Check and in Watch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.hostile.auth_gateway import AuthGateway, auth_gateway
from tests.policies.jwks_server import Mode

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
ISSUER = {"jwks_min_refresh_interval_s": 0.05}


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


async def overall(gw: AuthGateway) -> int:
    stub = health_pb2_grpc.HealthStub(gw.channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return int(reply.status)


async def eventually(condition: Callable[[], Awaitable[bool]], within_s: float = 10.0) -> None:
    """Poll a condition with a bounded deadline (the JWKS refresh runs on real time)."""
    deadline = time.monotonic() + within_s
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("mode", ["error", "close"])
async def test_keys_never_fetched_is_503_not_401(mode: Mode,
                                                 logs: pytest.LogCaptureFixture) -> None:
    limit = {"rate_per_s": 0.05, "burst": 2}  # an outage spends no failed-auth budget
    async with auth_gateway(jwks_mode=mode, issuer=ISSUER,
                            auth={"failed_auth_limit": limit}) as gw:
        assert not gw.gateway.ready()
        assert (await gw.rest("/readyz")).status == 503
        assert await overall(gw) == NOT_SERVING  # was SERVING while /readyz said 503
        token = gw.token()  # valid: signed by the key the issuer will publish
        for _ in range(3):
            reply = await gw.rest("/v1/kitchen/s", token)
            assert (reply.status, reply.body["code"]) == (503, 14)
            assert reply.body["message"] == "the token issuer's signing keys are not available yet"
            assert 1 <= int(reply.headers["Retry-After"]) <= 30
            assert "WWW-Authenticate" not in reply.headers
            rpc = await gw.rpc(token)
            assert (rpc.code, rpc.details) == (
                grpc.StatusCode.UNAVAILABLE, reply.body["message"])
            assert int(dict(rpc.trailers)["grpc-retry-pushback-ms"]) >= 1000
        assert gw.backend_calls == 0
        # The issuer comes back: the same token is served, readiness and health follow.
        gw.jwks.mode = "ok"

        async def served() -> bool:
            return (await gw.rest("/v1/kitchen/s", token)).status == 200

        await eventually(served)
        assert gw.gateway.ready() and (await gw.rest("/readyz")).status == 200
        assert await overall(gw) == SERVING
        assert (await gw.rpc(token)).code == grpc.StatusCode.OK
        assert gw.leaks(token, logs) == []
        assert gw.jwks.url.split("//")[1] not in "".join(gw.seen)  # the IdP's address neither


async def test_an_unknown_kid_after_keys_were_fetched_stays_401(
        logs: pytest.LogCaptureFixture) -> None:
    async with auth_gateway(issuer=ISSUER) as gw:
        assert await overall(gw) == SERVING
        gw.jwks.mode = "error"  # down now, but its keys are cached (stale-if-error)
        assert (await gw.rest("/v1/kitchen/s", gw.token())).status == 200
        token = gw.key.sign(gw.claims(), kid="never-published")
        reply = await gw.rest("/v1/kitchen/s", token)
        assert (reply.status, reply.body["message"]) == (401, "unknown signing key")
        rpc = await gw.rpc(token)
        assert (rpc.code, rpc.details) == (grpc.StatusCode.UNAUTHENTICATED, "unknown signing key")
        assert gw.backend_calls == 1
        assert gw.leaks(token, logs) == []


async def test_health_watch_follows_readiness() -> None:
    async with auth_gateway(jwks_mode="error", issuer=ISSUER) as gw:
        stub = health_pb2_grpc.HealthStub(gw.channel)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""))
        first = await asyncio.wait_for(watch.read(), 5)
        assert first.status == NOT_SERVING
        gw.jwks.mode = "ok"  # the background refresh (1 s after a failure) finds the keys
        second = await asyncio.wait_for(watch.read(), 10)
        assert second.status == SERVING and gw.gateway.ready()
        # A stop is NOT_SERVING from its first moment. It runs with a grace, as a real one
        # does: stop(0) cancels every call at once, and on a loaded host that sometimes came
        # before the Watch wrote the change, so the stream ended without it. Ending the watch
        # ends the stop well inside the grace.
        stopping = asyncio.create_task(gw.gateway.stop(10))
        third = await asyncio.wait_for(watch.read(), 5)
        assert third.status == NOT_SERVING
        watch.cancel()
        await asyncio.wait_for(stopping, 10)
