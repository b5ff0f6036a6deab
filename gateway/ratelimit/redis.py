"""GCRA buckets shared through Redis: one Lua call per decision, timed by Redis' own clock (T-20).
Redis failures are bounded by the timeout, tripped by a small breaker and then either degrade to
per-instance memory buckets (failure_mode "open") or refuse with Unavailable ("closed") (T-21)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisClusterException, RedisError

from gateway.config import RedisLimits
from gateway.errors import Unavailable
from gateway.ratelimit.limiter import Decision, Limiter
from gateway.ratelimit.redis_client import connect

log = logging.getLogger(__name__)

BREAKER_FAILURES = 5  # consecutive Redis failures that open the breaker
BREAKER_OPEN_S = 5.0  # how long an open breaker skips Redis before trying it again
KEY_PREFIX = "gw:rl:"


def redis_key(key: str) -> str:
    """The bucket's Redis key: the limiter key in a hash tag, so whatever one decision touches
    is in one Cluster slot (`gw:rl:{ip:10.0.0.1|/pkg.Svc/M}`)."""
    return f"{KEY_PREFIX}{{{key}}}"

# The same GCRA step as memory.gcra, in integer microseconds of Redis' TIME, so instances whose
# clocks disagree still share one timeline. The key lives exactly until its bucket is full again.
# Cost 0 is a probe (would one more be admitted?) that writes nothing.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + math.max(cost, 1) * interval
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, math.floor((tolerance - (tat - now)) / interval), allow_at - now, tat - now}
end
if cost == 0 then
  return {1, math.floor((tolerance - (tat - now)) / interval), 0, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat),
           'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, math.floor((tolerance - (new_tat - now)) / interval), 0, new_tat - now}
"""


class RedisLimiter:
    """Shared buckets; `fallback` (this instance's share, in memory) serves while Redis is down.

    Counters for metrics: allowed, rejected, redis_failures; `degraded` while Redis is failing.
    """

    def __init__(
        self, config: RedisLimits, fallback: Limiter, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._timeout_s = config.timeout_s
        self._fail_open = config.failure_mode == "open"
        self._fallback = fallback
        self._clock = clock
        self._connection = connect(config)  # one server, a Cluster or a Sentinel's master
        self._script = self._connection.client.register_script(_SCRIPT)  # EVALSHA, EVAL on NOSCRIPT
        self._consecutive_failures = 0
        self._skip_until = 0.0
        self.allowed = 0
        self.rejected = 0
        self.redis_failures = 0
        self.degraded = False

    async def acquire(self, key: str, rate_per_s: float, burst: int, cost: int = 1) -> Decision:
        decision = None
        if self._clock() >= self._skip_until:
            decision = await self._remote(key, rate_per_s, burst, cost)
        if decision is None:
            if not self._fail_open:
                raise Unavailable("rate limiter unavailable")
            decision = await self._fallback.acquire(key, rate_per_s, burst, cost)
        if decision.allowed:
            if cost:  # a probe admits nothing
                self.allowed += 1
        else:
            self.rejected += 1
        return decision

    async def close(self) -> None:
        await self._connection.close()
        await self._fallback.close()

    async def _remote(self, key: str, rate_per_s: float, burst: int, cost: int) -> Decision | None:
        """The decision Redis made, or None when Redis failed (already counted and logged)."""
        interval_us = max(1, round(1_000_000 / rate_per_s))
        try:
            async with asyncio.timeout(self._timeout_s):
                reply = await self._script(
                    keys=[redis_key(key)], args=[interval_us, burst, cost]
                )
        except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:  # the seam
            self._failed(exc)
            return None
        self._succeeded()
        allowed, remaining, retry_after_us, reset_us = (int(value) for value in reply)
        return Decision(
            allowed=bool(allowed),
            limit=burst,
            remaining=max(0, remaining),
            retry_after_s=retry_after_us / 1_000_000,
            reset_s=reset_us / 1_000_000,
        )

    def _failed(self, exc: BaseException) -> None:
        self.redis_failures += 1
        self._consecutive_failures += 1
        if self._consecutive_failures >= BREAKER_FAILURES:
            self._skip_until = self._clock() + BREAKER_OPEN_S
        if not self.degraded:
            self.degraded = True
            log.warning(
                "rate limiter: Redis failed (%s: %s); %s until it answers again",
                type(exc).__name__, exc,
                "enforcing per-instance memory buckets" if self._fail_open else "refusing calls",
            )

    def _succeeded(self) -> None:
        self._consecutive_failures = 0
        if self.degraded:
            self.degraded = False
            log.warning("rate limiter: Redis answers again; shared buckets resume")
