"""In-memory GCRA buckets on an injected clock: accuracy (T-19), refill, burst, bounds (T-24)."""

from __future__ import annotations

import pytest

from gateway.ratelimit.limiter import Share
from gateway.ratelimit.memory import MemoryLimiter


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("rate", "burst"), [(50.0, 10), (7.0, 3), (1000.0, 100), (0.5, 1)])
async def test_offered_three_times_the_rate_admits_rate_times_time_plus_burst(
    rate: float, burst: int
) -> None:
    clock = Clock()
    limiter = MemoryLimiter(max_keys=10, clock=clock)
    seconds = 20
    offered = int(3 * rate * seconds)
    start = clock.now
    admitted = 0
    for i in range(offered):
        clock.now = start + i / (3 * rate)
        admitted += (await limiter.acquire("k", rate, burst)).allowed
    expected = rate * seconds + burst
    assert expected - 1 <= admitted <= expected  # exact to one request; T-19 allows 1%


async def test_bucket_starts_full_and_counts_down() -> None:
    limiter = MemoryLimiter(max_keys=10, clock=Clock())
    decisions = [await limiter.acquire("k", 2.0, 4) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, True, False]
    assert [d.remaining for d in decisions] == [3, 2, 1, 0, 0]
    assert {d.limit for d in decisions} == {4}
    assert decisions[0].retry_after_s == 0.0
    assert decisions[0].reset_s == pytest.approx(0.5)  # one token short of full
    assert decisions[4].retry_after_s == pytest.approx(0.5)
    assert decisions[4].reset_s == pytest.approx(2.0)


async def test_refill_is_continuous() -> None:
    clock = Clock()
    limiter = MemoryLimiter(max_keys=10, clock=clock)
    for _ in range(3):
        assert (await limiter.acquire("k", 10.0, 3)).allowed
    assert not (await limiter.acquire("k", 10.0, 3)).allowed
    clock.now += 0.05  # half a token
    refused = await limiter.acquire("k", 10.0, 3)
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(0.05)
    clock.now += 0.05
    assert (await limiter.acquire("k", 10.0, 3)).allowed
    assert not (await limiter.acquire("k", 10.0, 3)).allowed
    clock.now += 10.0  # long idle: full again, but never more than the burst
    assert [(await limiter.acquire("k", 10.0, 3)).allowed for _ in range(4)] == [
        True, True, True, False,
    ]


async def test_cost_takes_several_tokens() -> None:
    limiter = MemoryLimiter(max_keys=10, clock=Clock())
    assert (await limiter.acquire("k", 1.0, 5, cost=3)).remaining == 2
    refused = await limiter.acquire("k", 1.0, 5, cost=3)
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(1.0)
    assert (await limiter.acquire("k", 1.0, 5, cost=2)).allowed


async def test_keys_are_independent() -> None:
    limiter = MemoryLimiter(max_keys=10, clock=Clock())
    assert (await limiter.acquire("a", 1.0, 1)).allowed
    assert not (await limiter.acquire("a", 1.0, 1)).allowed
    assert (await limiter.acquire("b", 1.0, 1)).allowed


async def test_many_keys_stay_within_max_keys_least_recently_used_first() -> None:
    limiter = MemoryLimiter(max_keys=100, clock=Clock())
    assert (await limiter.acquire("hot", 0.001, 1)).allowed
    for i in range(20_000):
        await limiter.acquire(f"k{i}", 0.001, 1)
        if i % 50 == 0:  # touched often: never the least recently used
            assert not (await limiter.acquire("hot", 0.001, 1)).allowed
        assert len(limiter) <= 100
    assert len(limiter) == 100
    assert not (await limiter.acquire("k19999", 0.001, 1)).allowed  # recent: still limited
    assert (await limiter.acquire("k0", 0.001, 1)).allowed  # evicted: forgotten, so full


async def test_idle_buckets_expire_once_full_again() -> None:
    clock = Clock()
    limiter = MemoryLimiter(max_keys=10_000, clock=clock)
    for i in range(100):
        await limiter.acquire(f"k{i}", 1.0, 2)  # one token short: full again after 1 s
    assert len(limiter) == 100
    clock.now += 0.99
    await limiter.acquire("other", 1.0, 2)
    assert len(limiter) == 101  # not yet full: kept
    clock.now += 0.02
    for _ in range(50):
        await limiter.acquire("other", 1.0, 2)
        clock.now += 1.0
    assert len(limiter) == 1


async def test_share_enforces_a_fraction_of_the_limit() -> None:
    clock = Clock()
    limiter = Share(MemoryLimiter(max_keys=10, clock=clock), instances=3)
    decisions = [await limiter.acquire("k", 30.0, 9) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[0].limit == 3
    assert decisions[3].retry_after_s == pytest.approx(0.1)  # 10/s each


async def test_share_never_drops_below_one() -> None:
    limiter = Share(MemoryLimiter(max_keys=10, clock=Clock()), instances=8)
    assert (await limiter.acquire("k", 4.0, 2)).allowed
