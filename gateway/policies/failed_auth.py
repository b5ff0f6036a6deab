"""The pre-authentication limit: failed authentications per client IP (memory or Redis GCRA).

Authenticate asks `check(ip)` before it parses any credential: once an address has spent its
budget of failures (`auth.failed_auth_limit`: `burst` at once, refilled at `rate_per_s`) every
call from it that carries a credential is 429 / RESOURCE_EXHAUSTED with Retry-After until the
bucket refills, valid tokens too, since nothing is parsed. Each 401 costs one (`failed(ip)`).
Calls without a credential, and callers at other addresses, never touch the bucket.

The check is a probe of the same GCRA bucket (cost 0), so it takes nothing; and it is made
only for an address that failed here within the refill window (`burst / rate_per_s`), so a
caller that never fails costs no store round trip (with Redis: none on the hot path). An
address that failed only at other instances gets through to one more parse here, which fails
and is recorded; from then on it is probed here too.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from gateway.config import FailedAuthLimit as Settings
from gateway.errors import GatewayError, RateLimited
from gateway.policies.ratelimit import retry_info_detail
from gateway.ratelimit.limiter import Limiter

log = logging.getLogger(__name__)

POLICY = "failed-auth"  # its name in RateLimit-Policy, and its keys' prefix


class FailedAuthLimit:
    def __init__(self, settings: Settings, limiter: Limiter, max_addresses: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._rate_per_s = settings.rate_per_s
        self._burst = settings.burst
        self._window_s = settings.burst / settings.rate_per_s  # a full bucket refills in this
        self._limiter = limiter
        self._max_addresses = max_addresses
        self._clock = clock
        self._failed_until: OrderedDict[str, float] = OrderedDict()  # ip -> last failure + window

    async def check(self, ip: str) -> None:
        """RateLimited once `ip` has no failures left; before any token is read."""
        until = self._failed_until.get(ip)
        if until is None:
            return
        if until <= self._clock():
            del self._failed_until[ip]  # its failures here have refilled
            return
        decision = await self._limiter.acquire(self._key(ip), self._rate_per_s, self._burst, 0)
        if not decision.allowed:
            refused = RateLimited(
                "too many failed authentications from this address; retry later",
                decision.retry_after_s,
                limit=decision.limit,
                remaining=0,
                reset_s=decision.reset_s,
                window_s=self._window_s,
                policy=POLICY,
            )
            refused.details = (retry_info_detail(refused),)  # google.rpc.RetryInfo, as RateLimit
            raise refused

    async def failed(self, ip: str) -> None:
        """Count one failure; a store that is down (failure_mode closed) must not turn the
        401 the caller is owed into a 503, so its refusal is dropped here."""
        self._failed_until[ip] = self._clock() + self._window_s
        self._failed_until.move_to_end(ip)
        if len(self._failed_until) > self._max_addresses:
            self._failed_until.popitem(last=False)  # least recently failed first
        try:
            await self._limiter.acquire(self._key(ip), self._rate_per_s, self._burst, 1)
        except GatewayError as exc:
            log.debug("failed authentication not counted: %s", exc.message)

    @property
    def addresses(self) -> int:
        """Addresses that failed here within the window (bounded by max_addresses)."""
        return len(self._failed_until)

    @staticmethod
    def _key(ip: str) -> str:
        return f"{POLICY}:ip:{ip}"
