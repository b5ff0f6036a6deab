"""The policy chain and what it owns (upstream pools, JWKS caches, limiter), built from one config.

Order (ARCHITECTURE.md): strip gateway-owned keys -> request id -> authenticate -> authorize ->
inject identity -> rate limit -> deadline -> upstream (breaker, retry, pick, call).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.auth.build import AuthPolicies, build_auth_policies
from gateway.call import Handler, chain
from gateway.compiled import Compiled
from gateway.policies.client_ip import Network, parse_networks
from gateway.policies.deadline import Deadline
from gateway.policies.ratelimit import RateLimit, build_rate_limiter
from gateway.policies.request_id import PropagateRequestId
from gateway.upstream.forward import Upstream


@dataclass(frozen=True, slots=True, eq=False)
class Runtime:
    compiled: Compiled
    upstream: Upstream
    auth: AuthPolicies
    limiter: RateLimit
    pipeline: Handler
    trusted_proxies: tuple[Network, ...]

    async def start(self) -> None:
        await self.auth.start()
        await self.upstream.start()

    async def close(self) -> None:
        await self.upstream.close()
        await self.auth.close()
        await self.limiter.close()

    def ready(self) -> bool:
        """Keys fetched for every JWKS issuer, a healthy instance of every required backend."""
        return self.auth.ready() and self.upstream.ready()


def build_runtime(compiled: Compiled, instances: int = 1) -> Runtime:
    config = compiled.config
    upstream = Upstream.from_config(config, compiled.services)
    auth = build_auth_policies(config)
    limiter = build_rate_limiter(config.rate_limits, instances)
    timeouts = {service: config.backends[backend].timeout_s
                for service, backend in compiled.services.items()}
    pipeline = chain([*auth.ordered(PropagateRequestId()), limiter, Deadline(timeouts)], upstream)
    return Runtime(compiled, upstream, auth, limiter, pipeline,
                   parse_networks(config.rate_limits.trusted_proxies))
