"""Class 7, a pre-authentication limit: failed authentications per client IP, in memory or in
Redis, and past the budget 429 / RESOURCE_EXHAUSTED with Retry-After before any token is read.

Forged tokens carry a kid the issuer never published, each a new one, and the issuer's
min-refresh interval is tiny: every forged token that is *parsed* makes the gateway ask the
JWKS server once. So "not parsed" is measured, not assumed: once an address is over its
budget, the JWKS server sees no request, and the backend none either. Callers at other
addresses (a second loopback source address, or another X-Forwarded-For client behind a
trusted proxy) keep their 200s.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import uuid
from typing import Any

import aiohttp
import grpc
import pytest

from gateway.config import FailedAuthLimit as Settings
from gateway.config import RedisLimits
from gateway.errors import RateLimited
from gateway.policies.failed_auth import FailedAuthLimit
from gateway.ratelimit.limiter import Decision
from gateway.ratelimit.memory import MemoryLimiter
from gateway.ratelimit.redis import RedisLimiter
from tests.hostile.auth_gateway import AuthGateway, auth_gateway
from tests.redis_server import RedisServer

BURST = 3
LIMIT = {"rate_per_s": 0.05, "burst": BURST}  # three failures, then one per 20 s
# Each new unknown kid is fetched for. The fetch timeout is the issuer default, not the 0.3 s
# the IdP-outage tests use: the JWKS server here always answers, and a fetch that a loaded
# host made miss 0.3 s counted as a failure, which schedules a background retry 1 s later, a
# JWKS request that "nothing of them is read" then saw.
ISSUER = {"jwks_min_refresh_interval_s": 0.001, "jwks_fetch_timeout_s": 1.0}
_kids = itertools.count()


def forged(gw: AuthGateway) -> str:
    """Signed by the issuer's key, under a kid it never published: 401 once parsed."""
    return gw.key.sign(gw.claims(), kid=f"forged-{next(_kids)}")


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_429(reply: Any) -> None:
    assert (reply.status, reply.body["code"]) == (429, 8)
    assert reply.body["message"] == \
        "too many failed authentications from this address; retry later"
    assert 1 <= int(reply.headers["Retry-After"]) <= 20
    assert reply.headers["RateLimit-Policy"] == f'"failed-auth";q={BURST};w=60'
    assert reply.body["details"][0]["@type"] == "type.googleapis.com/google.rpc.RetryInfo"


async def test_failures_from_one_address_are_throttled_before_parsing(
        logs: pytest.LogCaptureFixture) -> None:
    async with auth_gateway(auth={"failed_auth_limit": LIMIT}, issuer=ISSUER) as gw:
        tokens = [forged(gw) for _ in range(BURST)]
        for token in tokens:
            reply = await gw.rest("/v1/kitchen/s", token)
            assert (reply.status, reply.body["message"]) == (401, "unknown signing key")
        fetches = gw.jwks.fetches
        assert fetches >= BURST + 1  # the start, then one per forged kid: they were parsed
        # Over the budget: forged, malformed and even valid tokens from this address are 429,
        # on both edges (one bucket per address), and nothing of them is read.
        for token in (forged(gw), "not-a-token", gw.token()):
            assert_429(await gw.rest("/v1/kitchen/s", token))
            rpc = await gw.rpc(token)
            assert rpc.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert 1000 <= int(dict(rpc.trailers)["grpc-retry-pushback-ms"]) <= 20_000
            assert "grpc-status-details-bin" in dict(rpc.trailers)  # RetryInfo
            tokens.append(token)
        assert gw.jwks.fetches == fetches
        assert gw.backend_calls == 0
        # A call without a credential spends nothing and is not throttled: it is simply 401.
        reply = await gw.rest("/v1/kitchen/s")
        assert (reply.status, reply.body["message"]) == (401, "authentication required")
        # Another client address is unaffected: a real socket from 127.0.0.2.
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=connector) as other:
            assert (await gw.rest("/v1/kitchen/s", gw.token(), session=other)).status == 200
            reply = await gw.rest("/v1/kitchen/s", forged(gw), session=other)
            assert reply.status == 401  # its own budget
        assert gw.backend_calls == 1
        for token in tokens:
            assert gw.leaks(token, logs) == []


async def test_clients_behind_a_trusted_proxy_are_told_apart_on_grpc(
        logs: pytest.LogCaptureFixture) -> None:
    async with auth_gateway(auth={"failed_auth_limit": LIMIT}, issuer=ISSUER,
                            rate_limits={"trusted_proxies": ["127.0.0.1/32"]}) as gw:
        attacker = (("x-forwarded-for", "203.0.113.7"),)
        client = (("x-forwarded-for", "198.51.100.2"),)
        for _ in range(BURST):
            reply = await gw.rpc(forged(gw), attacker)
            assert reply.code == grpc.StatusCode.UNAUTHENTICATED
        fetches = gw.jwks.fetches
        assert (await gw.rpc(gw.token(), attacker)).code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert (await gw.rpc(gw.token(), client)).code == grpc.StatusCode.OK
        assert gw.jwks.fetches == fetches and gw.backend_calls == 1
        assert "\"peer\":\"203.0.113.7\"" in logs.text  # the access log names the client


async def test_wrong_api_keys_spend_the_same_budget(logs: pytest.LogCaptureFixture) -> None:
    key = "k-" + uuid.uuid4().hex
    api_keys = [{"sha256": hashlib.sha256(key.encode()).hexdigest(), "owner": "svc-reports"}]
    async with auth_gateway(auth={"failed_auth_limit": LIMIT, "api_keys": api_keys}) as gw:
        guesses = [f"guess-{i}-{uuid.uuid4().hex}" for i in range(BURST)]
        for guess in guesses:
            reply = await gw.rest("/v1/kitchen/s", headers={"X-Api-Key": guess})
            assert (reply.status, reply.body["message"]) == (401, "invalid API key")
        assert_429(await gw.rest("/v1/kitchen/s", headers={"X-Api-Key": key}))  # even the key
        rpc = await gw.rpc(metadata=(("x-api-key", key),))
        assert rpc.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert gw.backend_calls == 0
        for secret in (key, *guesses):
            assert gw.leaks(secret, logs) == []


async def test_failures_are_shared_through_redis(redis_server: RedisServer,
                                                 logs: pytest.LogCaptureFixture) -> None:
    """Two gateways over one Redis: failures at one spend the budget at the other."""
    address = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"  # unique per run
    config: dict[str, Any] = {
        "auth": {"failed_auth_limit": LIMIT}, "issuer": ISSUER,
        "rate_limits": {"store": "redis", "redis": {"url": redis_server.url, "timeout_s": 0.5},
                        "trusted_proxies": ["127.0.0.1/32"]},
    }
    headers = {"X-Forwarded-For": address}
    async with auth_gateway(**dict(config)) as first, auth_gateway(**dict(config)) as second:
        for gw in (first, second, first):
            reply = await gw.rest("/v1/kitchen/s", forged(gw), headers=headers)
            assert reply.status == 401
        for gw in (first, second):
            assert_429(await gw.rest("/v1/kitchen/s", gw.token(), headers=headers))
            assert (await gw.rpc(gw.token(), (("x-forwarded-for", address),))).code == \
                grpc.StatusCode.RESOURCE_EXHAUSTED
            ok = await gw.rest("/v1/kitchen/s", gw.token(),
                               headers={"X-Forwarded-For": "198.51.100.9"})
            assert ok.status == 200
        assert first.backend_calls + second.backend_calls == 2


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_probe_takes_nothing_from_the_bucket(redis_server: RedisServer) -> None:
    """Cost 0 asks whether one more would be admitted; any number of probes leave the budget
    whole, in memory and in Redis alike (the same GCRA step)."""
    clock = Clock()
    memory = MemoryLimiter(16, clock=clock)
    shared = RedisLimiter(RedisLimits(url=redis_server.url, timeout_s=0.5),
                          fallback=MemoryLimiter(16))
    key = f"probe-{uuid.uuid4().hex}"
    try:
        for limiter in (memory, shared):
            for _ in range(10):
                assert (await limiter.acquire(key, 1.0, 2, 0)).allowed
            if limiter is memory:
                assert len(memory) == 0  # probing makes no bucket
            assert (await limiter.acquire(key, 1.0, 2, 1)).allowed
            assert (await limiter.acquire(key, 1.0, 2, 0)).remaining == 1
            assert (await limiter.acquire(key, 1.0, 2, 1)).allowed
            probe = await limiter.acquire(key, 1.0, 2, 0)
            assert not probe.allowed and 0 < probe.retry_after_s <= 1.0
        assert shared.allowed == 2  # probes are not counted as admitted calls
    finally:
        await shared.close()


class CountingStore:
    """The Limiter protocol over memory buckets, counting what reaches the store."""

    def __init__(self, clock: Clock) -> None:
        self.inner = MemoryLimiter(16, clock=clock)
        self.costs: list[int] = []

    async def acquire(self, key: str, rate_per_s: float, burst: int, cost: int = 1) -> Decision:
        self.costs.append(cost)
        return await self.inner.acquire(key, rate_per_s, burst, cost)

    async def close(self) -> None:
        await self.inner.close()


async def test_callers_that_never_fail_cost_the_store_nothing() -> None:
    """No store round trip (with Redis: no network) for an address with no failure here in
    the refill window; after one, probes until the window has passed."""
    clock = Clock()
    store = CountingStore(clock)
    limit = FailedAuthLimit(Settings(rate_per_s=0.5, burst=2), store, max_addresses=2,
                            clock=clock)
    for _ in range(100):
        await limit.check("192.0.2.1")
    assert store.costs == []
    await limit.failed("192.0.2.1")
    await limit.check("192.0.2.1")
    await limit.failed("192.0.2.1")
    with pytest.raises(RateLimited) as refused:
        await limit.check("192.0.2.1")
    assert refused.value.retry_after_s == pytest.approx(2.0)
    assert store.costs == [1, 0, 1, 0]
    clock.now += 4.0  # the window (burst / rate) since the last failure: full again
    await limit.check("192.0.2.1")
    assert store.costs == [1, 0, 1, 0] and limit.addresses == 0
    for address in ("192.0.2.2", "192.0.2.3", "192.0.2.4"):
        await limit.failed(address)
    assert limit.addresses == 2  # bounded: the least recently failed is forgotten
