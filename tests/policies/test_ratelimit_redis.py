"""Redis buckets against a real redis-server: accuracy on Redis' clock, one budget shared across
instances, TTL on every key (T-20, T-24), and bounded, degraded decisions when it fails (T-21)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Literal

import pytest
import redis.asyncio as aioredis

from gateway.config import RedisLimits
from gateway.errors import Code, Unavailable
from gateway.ratelimit.limiter import Decision
from gateway.ratelimit.memory import MemoryLimiter
from gateway.ratelimit.redis import (
    BREAKER_FAILURES,
    BREAKER_OPEN_S,
    KEY_PREFIX,
    RedisLimiter,
    redis_key,
)
from tests.redis_server import RedisServer, free_port, running_redis

pytestmark = pytest.mark.redis

TIMEOUT_S = 0.05  # per decision while Redis is failing
BOUND_S = 0.2  # what a failing decision may cost at most here, with room for a slow machine


class Clock:
    """Drives only the breaker: the buckets themselves run on Redis' TIME."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def limiter_for(url: str, failure_mode: Literal["open", "closed"] = "open",
                clock: Clock | None = None, timeout_s: float = 0.5) -> RedisLimiter:
    config = RedisLimits(url=url, timeout_s=timeout_s, failure_mode=failure_mode)
    return RedisLimiter(config, fallback=MemoryLimiter(max_keys=100), clock=clock or Clock())


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def limiter(redis_server: RedisServer) -> AsyncIterator[RedisLimiter]:
    limiter = limiter_for(redis_server.url)
    yield limiter
    assert limiter.redis_failures == 0  # every decision in these tests came from Redis
    await limiter.close()


def fresh_key() -> str:
    return uuid.uuid4().hex


async def redis_now_s(client: aioredis.Redis) -> float:
    seconds, micros = await client.time()
    return seconds + micros / 1_000_000


async def test_burst_is_exhausted_within_one_instant(limiter: RedisLimiter) -> None:
    key = fresh_key()
    decisions = [await limiter.acquire(key, 0.01, 5) for _ in range(8)]  # 100 s per token
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0, 0]
    assert {d.limit for d in decisions} == {5}
    refused = decisions[-1]
    assert 99.0 < refused.retry_after_s <= 100.0
    assert 499.0 < refused.reset_s <= 500.0
    assert (limiter.allowed, limiter.rejected) == (5, 3)


async def test_admitted_matches_rate_times_elapsed_plus_burst(
    limiter: RedisLimiter, client: aioredis.Redis
) -> None:
    # Offer far more than the rate for ~0.3 s of Redis time (a busy loop, no sleeping) and
    # compare what was admitted with what the bucket allows over the time Redis measured.
    # Each decision's Redis TIME is known only between the TIME reads around it, and a loaded
    # host can stall for many token intervals between a read and a decision, so:
    # - the upper bound uses the window around the whole run (never shorter than the bucket's);
    # - the lower bound the window from the read after the first decision to the read before
    #   the last (never longer), less what the bucket rightly dropped: refill past a full
    #   bucket. The bucket was full again before decision i+1 only if the gap between the two
    #   exceeded decision i's reset_s, and that gap is at most the span of the reads around
    #   both. Without a stall no gap comes near reset_s and nothing is taken off.
    key, rate, burst = fresh_key(), 200.0, 20
    await limiter.acquire(fresh_key(), rate, burst)  # connect and load the script first
    start = before = await redis_now_s(client)
    spans: list[tuple[float, Decision, float]] = []  # (TIME before, decision, TIME after)
    while before - start < 0.3 or not spans:
        decision = await limiter.acquire(key, rate, burst)
        after = await redis_now_s(client)
        spans.append((before, decision, after))
        before = after
    admitted = sum(decision.allowed for _, decision, _ in spans)
    dropped = sum(max(0.0, rate * (later[2] - earlier[0] - earlier[1].reset_s))
                  for earlier, later in itertools.pairwise(spans))
    most = burst + rate * (spans[-1][2] - start)
    least = burst + rate * (spans[-1][0] - spans[0][2]) - dropped
    assert least - 1 - 0.01 * least <= admitted <= most + 0.5  # T-20: within 2%


async def test_every_key_expires_when_its_bucket_is_full_again(
    limiter: RedisLimiter, client: aioredis.Redis
) -> None:
    key = fresh_key()
    for _ in range(3):
        await limiter.acquire(key, 0.1, 10)  # 10 s per token, 3 taken: full in 30 s
    ttl_ms = await client.pttl(redis_key(key))
    assert 29_000 < ttl_ms <= 30_000
    await limiter.acquire(key, 0.1, 10)
    assert 39_000 < await client.pttl(redis_key(key)) <= 40_000
    async for name in client.scan_iter(match=KEY_PREFIX + "*"):
        assert await client.pttl(name) > 0, name  # no key without an expiry (T-24)


async def test_refused_requests_do_not_consume(
    limiter: RedisLimiter, client: aioredis.Redis
) -> None:
    key = fresh_key()
    await limiter.acquire(key, 0.1, 1)
    before = await client.get(redis_key(key))
    assert not (await limiter.acquire(key, 0.1, 1)).allowed
    assert await client.get(redis_key(key)) == before


async def test_two_instances_share_one_budget(redis_server: RedisServer) -> None:
    first, second = limiter_for(redis_server.url), limiter_for(redis_server.url)
    try:
        key = fresh_key()
        # Interleaved, a few decisions in flight per instance: 40 at once each made each
        # instance open 40 connections inside the decisions' 0.5 s timeout (the most the config
        # allows), which a loaded host missed, and a timed-out decision fails open to memory.
        in_flight = {first: asyncio.Semaphore(4), second: asyncio.Semaphore(4)}

        async def decide(limiter: RedisLimiter) -> Decision:
            async with in_flight[limiter]:
                return await limiter.acquire(key, 0.01, 25)

        decisions = await asyncio.gather(*(
            decide(limiter) for _ in range(40) for limiter in (first, second)
        ))
        assert sum(d.allowed for d in decisions) == 25
        assert first.allowed + second.allowed == 25
        assert first.allowed > 0 and second.allowed > 0
        assert first.redis_failures == second.redis_failures == 0
    finally:
        await first.close()
        await second.close()


async def test_survives_a_script_cache_flush(limiter: RedisLimiter, client: aioredis.Redis) -> None:
    key = fresh_key()
    assert (await limiter.acquire(key, 0.01, 2)).allowed
    await client.script_flush()  # EVALSHA now answers NOSCRIPT: the script is loaded again
    assert (await limiter.acquire(key, 0.01, 2)).allowed
    assert not (await limiter.acquire(key, 0.01, 2)).allowed


async def timed(limiter: RedisLimiter, key: str, rate: float = 0.01, burst: int = 2) -> tuple[
    bool, float
]:
    started = time.perf_counter()
    decision = await limiter.acquire(key, rate, burst)
    return decision.allowed, time.perf_counter() - started


async def test_unreachable_redis_fails_open_to_memory_buckets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    limiter = limiter_for(f"redis://127.0.0.1:{free_port()}/0", clock=clock, timeout_s=TIMEOUT_S)
    try:
        with caplog.at_level(logging.WARNING, logger="gateway.ratelimit.redis"):
            results = [await timed(limiter, "k") for _ in range(4)]
        assert [allowed for allowed, _ in results] == [True, True, False, False]  # burst 2
        assert all(elapsed < BOUND_S for _, elapsed in results)
        assert limiter.degraded
        assert (limiter.allowed, limiter.rejected, limiter.redis_failures) == (2, 2, 4)
        assert len(caplog.records) == 1  # one warning per outage, not per request
        assert "Redis failed" in caplog.records[0].getMessage()
    finally:
        await limiter.close()


async def test_unreachable_redis_fails_closed_with_unavailable() -> None:
    limiter = limiter_for(f"redis://127.0.0.1:{free_port()}/0", "closed", timeout_s=TIMEOUT_S)
    try:
        started = time.perf_counter()
        with pytest.raises(Unavailable) as info:
            await limiter.acquire("k", 1.0, 5)
        assert time.perf_counter() - started < BOUND_S
        assert info.value.code is Code.UNAVAILABLE
        assert info.value.http_status == 503
        assert limiter.redis_failures == 1
        assert limiter.allowed == limiter.rejected == 0
    finally:
        await limiter.close()


@pytest.fixture
def extra_redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


async def test_hung_redis_costs_at_most_the_timeout_then_the_breaker_skips_it(
    extra_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    limiter = limiter_for(extra_redis.url, clock=clock, timeout_s=TIMEOUT_S)
    try:
        assert (await limiter.acquire(fresh_key(), 0.01, 100)).allowed  # connected, healthy
        os.kill(extra_redis.pid, signal.SIGSTOP)
        try:
            with caplog.at_level(logging.WARNING, logger="gateway.ratelimit.redis"):
                hung = [await timed(limiter, "hung", burst=100) for _ in range(BREAKER_FAILURES)]
                assert all(allowed for allowed, _ in hung)  # fail open: memory admits
                assert all(TIMEOUT_S * 0.5 < elapsed < BOUND_S for _, elapsed in hung)
                assert limiter.redis_failures == BREAKER_FAILURES
                skipped = [await timed(limiter, "hung", burst=100) for _ in range(20)]
                assert limiter.redis_failures == BREAKER_FAILURES  # breaker open: Redis not tried
                assert all(allowed for allowed, _ in skipped)
                assert max(elapsed for _, elapsed in skipped) < TIMEOUT_S * 0.5
                clock.now += BREAKER_OPEN_S  # half-open: one more try, which fails again
                assert (await timed(limiter, "hung", burst=100))[0]
                assert limiter.redis_failures == BREAKER_FAILURES + 1
                await limiter.acquire("hung", 0.01, 100)
                assert limiter.redis_failures == BREAKER_FAILURES + 1  # re-opened at once
        finally:
            os.kill(extra_redis.pid, signal.SIGCONT)
        clock.now += BREAKER_OPEN_S
        key = fresh_key()
        with caplog.at_level(logging.WARNING, logger="gateway.ratelimit.redis"):
            assert (await limiter.acquire(key, 0.01, 1)).allowed
        assert not limiter.degraded
        assert limiter.redis_failures == BREAKER_FAILURES + 1
        probe = aioredis.Redis.from_url(extra_redis.url)
        try:
            assert await probe.exists(redis_key(key)) == 1  # counted in Redis again
        finally:
            await probe.aclose()
        messages = [record.getMessage() for record in caplog.records]
        assert len(messages) == 2
        assert "Redis failed" in messages[0]
        assert "answers again" in messages[1]
    finally:
        await limiter.close()


async def test_hung_redis_fails_closed_within_the_timeout(extra_redis: RedisServer) -> None:
    limiter = limiter_for(extra_redis.url, "closed", timeout_s=TIMEOUT_S)
    try:
        assert (await limiter.acquire(fresh_key(), 0.01, 5)).allowed
        os.kill(extra_redis.pid, signal.SIGSTOP)
        try:
            started = time.perf_counter()
            with pytest.raises(Unavailable):
                await limiter.acquire("k", 0.01, 5)
            assert time.perf_counter() - started < BOUND_S
        finally:
            os.kill(extra_redis.pid, signal.SIGCONT)
    finally:
        await limiter.close()
