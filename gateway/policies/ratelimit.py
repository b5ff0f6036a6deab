"""RateLimit: the first matching rule's bucket per key (ip, user, api_key, route) (T-22, T-23);
plus how a refusal is rendered: Retry-After and RateLimit headers, retry pushback, RetryInfo."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import translate

from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2

from gateway.call import Call, Handler, Reply
from gateway.config import RateLimitRule, RateLimits
from gateway.errors import RateLimited
from gateway.ratelimit.limiter import Limiter, Share
from gateway.ratelimit.memory import MemoryLimiter
from gateway.ratelimit.redis import RedisLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str]
    key: str
    rate_per_s: float
    burst: int
    name: str  # the policy name in RateLimit-Policy; also keeps each rule's buckets apart


class RateLimit:
    """The policy: no matching rule, no limit; a refusal never reaches call_next."""

    def __init__(self, rules: Sequence[RateLimitRule], limiter: Limiter) -> None:
        self._rules = tuple(
            _Rule(re.compile(translate(rule.match)), rule.key, rule.rate_per_s, rule.burst,
                  f"r{index}-{rule.key}")
            for index, rule in enumerate(rules)
        )
        self.limiter = limiter

    @property
    def inert(self) -> bool:
        """No rules, no limits: the chain can leave this policy out."""
        return not self._rules

    async def __call__(self, call: Call, call_next: Handler) -> Reply:
        rule = next((r for r in self._rules if r.pattern.match(call.method)), None)
        if rule is None:
            return await call_next(call)
        decision = await self.limiter.acquire(
            f"{rule.name}:{_key(rule.key, call)}", rule.rate_per_s, rule.burst
        )
        if call.explain is not None:
            call.explain.rate_limit(rule.name, _key(rule.key, call), decision)
        if not decision.allowed:
            seconds = retry_after_seconds(decision.retry_after_s)
            raise RateLimited(
                f"rate limit {rule.name} exceeded ({rule.burst} at once, {rule.rate_per_s:g}/s); "
                f"retry in {seconds} s",
                decision.retry_after_s,
                limit=decision.limit,
                remaining=decision.remaining,
                reset_s=decision.reset_s,
                window_s=rule.burst / rule.rate_per_s,
                policy=rule.name,
                details=(_retry_info(decision.retry_after_s),),
            )
        return await call_next(call)

    async def close(self) -> None:
        await self.limiter.close()


def build_rate_limiter(config: RateLimits, instances: int = 1) -> RateLimit:
    """The policy over the configured store. Without Redis, each of `instances` processes
    enforces limit / instances; with Redis that share is only the fallback while Redis is down."""
    local: Limiter = MemoryLimiter(config.max_keys)
    if instances > 1:
        local = Share(local, instances)
    if config.store == "redis":
        return RateLimit(config.rules, RedisLimiter(config.redis, fallback=local))
    if instances > 1 and config.rules:
        log.warning(
            "rate limits are kept in memory by %d instances: each enforces 1/%d of every limit",
            instances, instances,
        )
    return RateLimit(config.rules, local)


def _key(kind: str, call: Call) -> str:
    # Prefixed by kind so a user named "10.0.0.1" never shares the bucket of that address.
    principal = call.principal
    if kind == "user" and principal is not None:
        return f"user:{principal.subject}"
    if kind == "api_key" and principal is not None and principal.via == "api_key":
        return f"key:{principal.subject}"
    if kind == "route":
        return f"route:{call.method}"
    return f"ip:{call.peer}"  # "ip", and anonymous callers of "user"/"api_key" rules (T-23)


def retry_after_seconds(retry_after_s: float) -> int:
    """Whole seconds for Retry-After: rounded up, at least 1 (HTTP has no fractions)."""
    return max(1, math.ceil(retry_after_s))


def rate_limit_headers(exc: RateLimited) -> list[tuple[str, str]]:
    """Retry-After, and RateLimit-Policy / RateLimit of draft-ietf-httpapi-ratelimit-headers.

    `t` is when the bucket is whole again, never earlier than Retry-After.
    """
    retry_after = retry_after_seconds(exc.retry_after_s)
    reset = max(retry_after, math.ceil(exc.reset_s))
    window = max(1, math.ceil(exc.window_s))
    return [
        ("Retry-After", str(retry_after)),
        ("RateLimit-Policy", f'"{exc.policy}";q={exc.limit};w={window}'),
        ("RateLimit", f'"{exc.policy}";r={exc.remaining};t={reset}'),
    ]


def pushback_ms(exc: RateLimited) -> str:
    """The grpc-retry-pushback-ms trailer: whole milliseconds, rounded up."""
    return str(max(0, math.ceil(exc.retry_after_s * 1000)))


def retry_info_detail(exc: RateLimited) -> bytes:
    """A google.protobuf.Any holding google.rpc.RetryInfo, serialized (a Status detail)."""
    return _retry_info(exc.retry_after_s)


def _retry_info(retry_after_s: float) -> bytes:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(math.ceil(max(0.0, retry_after_s) * 1e9))
    packed = any_pb2.Any()
    packed.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return packed.SerializeToString()
