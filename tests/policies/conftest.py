"""Fixtures of the auth tests: signing keys (made once), a live JWKS server, clocks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from gateway.auth.apikeys import digest
from gateway.auth.build import AuthPolicies, build_auth_policies
from gateway.call import Call, Handler, Metadata, chain
from gateway.config import ApiKey, Auth, GatewayConfig
from gateway.policies.request_id import PropagateRequestId
from tests.policies.jwks_server import (
    NOW,
    FakeClock,
    JwksServer,
    Recorder,
    SigningKey,
    ec_key,
    gateway_config,
    issuer_config,
    never,
    request,
    rsa_key,
)


@pytest.fixture(scope="session")
def rsa_a() -> SigningKey:
    return rsa_key("rsa-a")


@pytest.fixture(scope="session")
def rsa_b() -> SigningKey:
    return rsa_key("rsa-b")


@pytest.fixture(scope="session")
def ec_a() -> SigningKey:
    return ec_key("ec-a")


@pytest.fixture
async def jwks(rsa_a: SigningKey, ec_a: SigningKey) -> AsyncIterator[JwksServer]:
    server = JwksServer(keys=[rsa_a, ec_a])
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def clock() -> FakeClock:
    """Monotonic time for the JWKS cache."""
    return FakeClock(1000.0)


@pytest.fixture
def wall() -> FakeClock:
    """Wall time for exp / nbf / iat."""
    return FakeClock(NOW)


@dataclass(eq=False)
class Stack:
    """The auth policies built from a config, chained in order before a recording terminal."""

    auth: AuthPolicies
    backend: Recorder
    handler: Handler
    server: JwksServer

    async def send(self, metadata: Metadata = (), method: str = "/orders.v1.Orders/GetOrder"
                   ) -> Call:
        """Run one call; the Call the backend saw."""
        before = len(self.backend.calls)
        await self.handler(request(metadata, method))
        assert len(self.backend.calls) == before + 1
        return self.backend.calls[-1]


def make_stack(config: GatewayConfig, server: JwksServer, clock: FakeClock,
               wall: FakeClock) -> Stack:
    auth = build_auth_policies(config, clock=clock, wall_clock=wall, sleep=never)
    backend = Recorder()
    return Stack(auth, backend, chain(auth.ordered(PropagateRequestId()), backend), server)


@contextlib.asynccontextmanager
async def running(config: GatewayConfig, server: JwksServer, clock: FakeClock,
                  wall: FakeClock) -> AsyncIterator[Stack]:
    """make_stack, started for the block and closed after it."""
    built = make_stack(config, server, clock, wall)
    await built.auth.start()
    try:
        yield built
    finally:
        await built.auth.close()


@pytest.fixture
async def stack(jwks: JwksServer, clock: FakeClock, wall: FakeClock) -> AsyncIterator[Stack]:
    """One JWKS issuer, an API key ("k-live", owner "batch"), every method authenticated."""
    config = gateway_config(Auth(
        issuers=(issuer_config(jwks, claims_to_metadata={"tenant": "x-user-tenant"}),),
        api_keys=(ApiKey(sha256=digest("k-live"), owner="batch", scopes=("orders:read",)),),
    ))
    async with running(config, jwks, clock, wall) as built:
        yield built
