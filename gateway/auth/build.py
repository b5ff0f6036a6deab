"""Builds the auth policies and key caches from the config, once; owns their start and close.

The chain order (docs/architecture.md) with the request-id policy in between:

    [*auth.ordered(PropagateRequestId()), rate limit, deadline] -> upstream
    = StripGatewayOwned, PropagateRequestId, Authenticate, Authorize, InjectIdentity, ...
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence

import aiohttp

from gateway.auth.apikeys import ApiKeyVerifier
from gateway.auth.jwks import Clock, JwksCache, Sleep
from gateway.auth.tokens import JwtVerifier
from gateway.call import Policy
from gateway.config import Auth, GatewayConfig, identity_secret
from gateway.errors import ConfigError
from gateway.policies.auth import Authenticate, Authorize
from gateway.policies.failed_auth import FailedAuthLimit
from gateway.policies.identity import IDENTITY_KEYS, InjectIdentity, StripGatewayOwned
from gateway.ratelimit.limiter import Limiter
from gateway.ratelimit.memory import MemoryLimiter

_CLAIM_KEY = re.compile(r"x-user-[0-9a-z][0-9a-z.-]*")


class AuthPolicies:
    """The four auth policies and the JWKS caches behind them; start() before serving."""

    def __init__(self, strip: StripGatewayOwned, authenticate: Authenticate,
                 authorize: Authorize, inject: InjectIdentity, caches: Sequence[JwksCache],
                 session_factory: Callable[[], aiohttp.ClientSession] | None = None) -> None:
        self.strip = strip
        self.authenticate = authenticate
        self.authorize = authorize
        self.inject = inject
        self.caches = tuple(caches)
        self._session_factory = session_factory
        self._session: aiohttp.ClientSession | None = None

    def ordered(self, request_id: Policy) -> tuple[Policy, ...]:
        """The policies in chain order, with the request-id policy where it belongs."""
        return (self.strip, request_id, self.authenticate, self.authorize, self.inject)

    async def start(self) -> None:
        """Fetch every JWKS once (concurrently; a failure leaves that issuer not ready)."""
        if self._session_factory is not None and any(c.remote for c in self.caches):
            self._session = self._session_factory()
        await asyncio.gather(*(cache.start(self._session) for cache in self.caches))

    async def close(self) -> None:
        await asyncio.gather(*(cache.close() for cache in self.caches))
        if self._session is not None:
            await self._session.close()
            self._session = None

    def ready(self) -> bool:
        """Readiness: every issuer with a JWKS URL (or discovery) has keys."""
        return all(cache.ready() for cache in self.caches)


def build_auth_policies(
    config: GatewayConfig,
    *,
    session_factory: Callable[[], aiohttp.ClientSession] | None = None,
    clock: Clock = time.monotonic,
    wall_clock: Clock = time.time,
    sleep: Sleep = asyncio.sleep,
    failure_store: Limiter | None = None,
) -> AuthPolicies:
    """Everything auth needs, validated now: a bad key or claim mapping is a ConfigError.

    `session_factory` makes one session shared by the caches (else each opens its own);
    `clock` / `sleep` time the JWKS caches, `wall_clock` checks exp / nbf / iat (tests inject).
    The identity HMAC secret comes from config.identity_secret (the environment).
    `failure_store`: where failed authentications are counted (the runtime passes the rate
    limiter's store, memory or Redis); without one, this process's memory.
    """
    auth = config.auth
    _check_claim_keys(auth)
    caches = {issuer.issuer: JwksCache(issuer, clock=clock, sleep=sleep) for issuer in auth.issuers}
    tokens = JwtVerifier(auth.issuers, caches, auth.max_token_bytes, clock=wall_clock)
    failures = None
    if auth.failed_auth_limit.enabled:
        store = failure_store or MemoryLimiter(config.rate_limits.max_keys)
        failures = FailedAuthLimit(auth.failed_auth_limit, store, config.rate_limits.max_keys)
    return AuthPolicies(
        strip=StripGatewayOwned(auth.gateway_owned),
        authenticate=Authenticate(auth, tokens, ApiKeyVerifier(auth.api_keys), failures),
        authorize=Authorize(config.authorization),
        inject=InjectIdentity(identity_secret(auth)),
        caches=tuple(caches.values()),
        session_factory=session_factory,
    )


def _check_claim_keys(auth: Auth) -> None:
    """Mapped claims go to x-user-* keys: stripped from clients, signed with the identity."""
    for issuer in auth.issuers:
        for claim, key in issuer.claims_to_metadata.items():
            if not _CLAIM_KEY.fullmatch(key) or key.endswith("-bin") or key in IDENTITY_KEYS:
                raise ConfigError(
                    f"auth.issuers[{issuer.issuer}].claims_to_metadata.{claim}: {key!r} must be "
                    "a lower-case x-user-* key, not -bin, not one the gateway sets itself "
                    f"({', '.join(sorted(IDENTITY_KEYS))})"
                )
