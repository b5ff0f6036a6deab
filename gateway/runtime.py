"""The policy chain and what it owns (upstream pools, JWKS caches, limiter), built from one config.

Order (docs/architecture.md): strip gateway-owned keys -> request id -> authenticate -> authorize ->
inject identity -> rate limit -> contract (field_behavior, buf.validate) -> deadline -> upstream
(breaker, retry, pick, call), or for an aggregate method the BFF executor, which makes each of
its parts such an upstream call.
Observability (gateway/observability) wraps it: the request span and Observe first, the
principal noted after authentication, every backend call (BFF parts too) timed and traced.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.auth.build import AuthPolicies, build_auth_policies
from gateway.bff.executor import Aggregates
from gateway.call import Handler, chain
from gateway.compiled import Compiled
from gateway.observability.accesslog import Sink
from gateway.observability.build import Observability, build_observability
from gateway.observability.metrics import GatewayMetrics
from gateway.policies.client_ip import Network, parse_networks
from gateway.policies.contract import CheckContract
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
    observability: Observability

    async def start(self) -> None:
        await self.auth.start()
        await self.upstream.start()

    async def close(self) -> None:
        await self.upstream.close()
        await self.auth.close()
        await self.limiter.close()
        self.observability.close()

    def ready(self) -> bool:
        """Keys fetched for every JWKS issuer, a healthy instance of every required backend."""
        return self.auth.ready() and self.upstream.ready()


def build_runtime(compiled: Compiled, instances: int = 1,
                  metrics: GatewayMetrics | None = None, access_sink: Sink | None = None
                  ) -> Runtime:
    """`metrics`: the running gateway's, kept across a reload (else made if configured).
    `access_sink`: where access-log lines go (default: the "gateway.access" logger)."""
    config = compiled.config
    observability = build_observability(config, compiled.services, compiled.methods, metrics,
                                        access_sink)
    upstream = Upstream.from_config(config, compiled.services)
    limiter = build_rate_limiter(config.rate_limits, instances)
    # Failed authentications are counted in the rate limits' store (memory or Redis).
    auth = build_auth_policies(config, failure_store=limiter.limiter)
    observability.watch(upstream, limiter.limiter)
    forward = observability.wrap_backend(upstream)
    timeouts = {service: config.backends[backend].timeout_s
                for service, backend in compiled.services.items()}
    stream_timeouts = {service: config.backends[backend].stream_timeout_s
                       for service, backend in compiled.services.items()}
    # Aggregate methods end in the BFF executor, whose parts are ordinary upstream calls, each
    # authorized for its own method too.
    terminal: Handler = forward
    if compiled.aggregates:
        parts = forward if auth.authorize.inert else chain([auth.authorize], forward)
        terminal = Aggregates(compiled.aggregates, forward, parts=parts)
    contract = CheckContract(compiled.contracts, not config.transcoding.use_proto_names)
    open_ended = frozenset(service for service, backend in compiled.services.items()
                           if not config.backends[backend].default_deadline)
    policies = [*observability.head, *observability.explain,
                *auth.ordered(PropagateRequestId()), limiter, contract,
                Deadline(timeouts, stream_timeout_s=stream_timeouts, open_ended=open_ended)]
    if auth.authenticate in policies:  # the access log names whom authorize then refuses
        after = policies.index(auth.authenticate) + 1
        policies[after:after] = observability.after_authentication
    # A policy with nothing to do under this config (no rules) stays out of the hot path.
    pipeline = chain([p for p in policies if not getattr(p, "inert", False)], terminal)
    return Runtime(compiled, upstream, auth, limiter, pipeline,
                   parse_networks(config.rate_limits.trusted_proxies), observability)
