"""The pre-authentication limit: failed authentications per client IP (memory or Redis GCRA).

Authenticate asks `check(ip)` before it parses any credential: once an address has spent its
budget of failures (`auth.failed_auth_limit`: `burst` at once, refilled at `rate_per_s`) every
call from it that carries a credential is 429 / RESOURCE_EXHAUSTED with Retry-After until the
bucket refills, valid tokens too, since nothing is parsed. Each 401 costs one (`failed(ip)`).
Calls without a credential, and callers at other addresses, never touch the bucket. The check
is a probe of the same GCRA bucket (cost 0), so it takes nothing from well-behaved callers.
"""

from __future__ import annotations

import logging

from gateway.config import FailedAuthLimit as Settings
from gateway.errors import GatewayError, RateLimited
from gateway.policies.ratelimit import retry_info_detail
from gateway.ratelimit.limiter import Limiter

log = logging.getLogger(__name__)

POLICY = "failed-auth"  # its name in RateLimit-Policy, and its keys' prefix


class FailedAuthLimit:
    def __init__(self, settings: Settings, limiter: Limiter) -> None:
        self._rate_per_s = settings.rate_per_s
        self._burst = settings.burst
        self._limiter = limiter

    async def check(self, ip: str) -> None:
        """RateLimited once `ip` has no failures left; before any token is read."""
        decision = await self._limiter.acquire(self._key(ip), self._rate_per_s, self._burst, 0)
        if not decision.allowed:
            refused = RateLimited(
                "too many failed authentications from this address; retry later",
                decision.retry_after_s,
                limit=decision.limit,
                remaining=0,
                reset_s=decision.reset_s,
                window_s=self._burst / self._rate_per_s,
                policy=POLICY,
            )
            refused.details = (retry_info_detail(refused),)  # google.rpc.RetryInfo, as RateLimit
            raise refused

    async def failed(self, ip: str) -> None:
        """Count one failure; a store that is down (failure_mode closed) must not turn the
        401 the caller is owed into a 503, so its refusal is dropped here."""
        try:
            await self._limiter.acquire(self._key(ip), self._rate_per_s, self._burst, 1)
        except GatewayError as exc:
            log.debug("failed authentication not counted: %s", exc.message)

    @staticmethod
    def _key(ip: str) -> str:
        return f"{POLICY}:ip:{ip}"
