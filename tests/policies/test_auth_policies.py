"""Authenticate (credential extraction, API keys, stripping) and Authorize (rules) in the chain."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from gateway.auth.apikeys import ApiKeyVerifier, digest
from gateway.auth.build import build_auth_policies
from gateway.auth.common import CHALLENGE, INVALID_TOKEN
from gateway.call import Metadata, Principal, chain
from gateway.config import AccessRule, ApiKey, Auth, Authorization, Issuer, StaticKey
from gateway.errors import ConfigError, PermissionDenied, Unauthenticated
from gateway.policies.auth import Authorize
from gateway.policies.identity import verify_identity
from gateway.policies.request_id import PropagateRequestId
from tests.policies.conftest import Stack, make_stack, running
from tests.policies.jwks_server import (
    FakeClock,
    JwksServer,
    Recorder,
    SigningKey,
    bearer,
    claims,
    gateway_config,
    issuer_config,
    request,
)


@pytest.mark.parametrize("metadata", [
    (("authorization", "Bearer"),),
    (("authorization", "Bearer "),),
    (("authorization", "Basic dXNlcjpwYXNz"),),
    (("authorization", "Bearer a.b.c Bearer d.e.f"),),
    (("authorization", "Bearer a.b.c"), ("authorization", "Bearer a.b.c")),
    (("authorization", "Bearer a.b.c"), ("x-api-key", "k-live")),
    (("x-api-key", "k-live"), ("x-api-key", "k-live")),
    (("authorization", b"Bearer a.b.c"),),
    (("x-api-key", "wrong"),),
    (("x-api-key", ""),),
    (("x-api-key", "k-live "),),
], ids=["no token", "empty token", "basic", "two tokens in one", "two values",
        "bearer and api key", "two api keys", "binary value", "wrong api key", "empty api key",
        "api key with a space"])
async def test_malformed_or_doubled_credentials_are_401(stack: Stack, metadata: Metadata) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await stack.send(metadata)
    assert caught.value.www_authenticate == INVALID_TOKEN
    assert "k-live" not in caught.value.message
    assert stack.backend.calls == []


async def test_an_api_key_authenticates_its_owner_and_is_not_forwarded(stack: Stack) -> None:
    seen = await stack.send((("x-api-key", "k-live"), ("x-trace", "1")))
    assert seen.principal == Principal("batch", (), ("orders:read",), via="api_key")
    assert ("x-api-key", "k-live") not in seen.metadata
    assert ("x-trace", "1") in seen.metadata


async def test_the_bearer_scheme_is_case_insensitive(stack: Stack, rsa_a: SigningKey) -> None:
    token = rsa_a.sign(claims(stack.server.url))
    seen = await stack.send((("authorization", f"bearer  {token}"),))
    assert seen.principal is not None and seen.principal.subject == "alice"


async def test_forward_credentials_keeps_them(jwks: JwksServer, clock: FakeClock,
                                              wall: FakeClock, rsa_a: SigningKey) -> None:
    config = gateway_config(Auth(
        issuers=(issuer_config(jwks),), forward_credentials=True,
        api_keys=(ApiKey(sha256=digest("k-live"), owner="batch"),),
    ))
    async with running(config, jwks, clock, wall) as forwarding:
        token = rsa_a.sign(claims(jwks.url))
        seen = await forwarding.send(bearer(token))
        assert ("authorization", f"Bearer {token}") in seen.metadata
        seen = await forwarding.send((("x-api-key", "k-live"),))
        assert ("x-api-key", "k-live") in seen.metadata


def test_api_keys_are_kept_and_compared_as_digests() -> None:
    stored = hashlib.sha256(b"s3cret-key").hexdigest()
    verifier = ApiKeyVerifier([ApiKey(sha256=stored, owner="svc", roles=("ops",))])
    assert verifier.verify("s3cret-key") == Principal("svc", ("ops",), (), via="api_key")
    for wrong in ("s3cret-ke", "S3cret-key", stored, "x" * 5000):
        with pytest.raises(Unauthenticated, match="^invalid API key$"):
            verifier.verify(wrong)
    with pytest.raises(ConfigError, match="owner"):
        ApiKeyVerifier([ApiKey(sha256=stored, owner="svc", roles=("a,b",))])


async def _authorize(policy: Authorize, method: str, principal: Principal | None) -> Recorder:
    backend = Recorder()
    call = request(method=method)
    handler = chain([policy], backend)
    await handler(replace(call, principal=principal))
    return backend


AUTHORIZATION = Authorization(default="authenticated", rules=(
    AccessRule(match="/grpc.health.v1.Health/*", access="public"),
    AccessRule(match="/orders.v1.Orders/Delete*", roles=("admin", "ops")),
    AccessRule(match="/orders.v1.Orders/List*", scopes=("orders:read",)),
    AccessRule(match="/orders.v1.Orders/*"),
))
ALICE = Principal("alice", roles=("reader",), scopes=("orders:read",))
OPS = Principal("bob", roles=("ops",))


@pytest.mark.parametrize(("method", "principal", "outcome"), [
    ("/grpc.health.v1.Health/Check", None, "pass"),
    ("/orders.v1.Orders/GetOrder", ALICE, "pass"),
    ("/orders.v1.Orders/GetOrder", None, 401),
    ("/users.v1.Users/GetUser", None, 401),  # the default
    ("/orders.v1.Orders/DeleteOrder", OPS, "pass"),
    ("/orders.v1.Orders/DeleteOrder", ALICE, 403),
    ("/orders.v1.Orders/DeleteOrder", None, 401),
    ("/orders.v1.Orders/ListOrders", ALICE, "pass"),
    ("/orders.v1.Orders/ListOrders", OPS, 403),
])
async def test_authorize_rules(method: str, principal: Principal | None,
                               outcome: str | int) -> None:
    policy = Authorize(AUTHORIZATION)
    if outcome == "pass":
        assert len((await _authorize(policy, method, principal)).calls) == 1
        return
    with pytest.raises(Unauthenticated if outcome == 401 else PermissionDenied) as caught:
        await _authorize(policy, method, principal)
    assert caught.value.http_status == outcome
    if isinstance(caught.value, Unauthenticated):
        assert caught.value.www_authenticate == CHALLENGE
    else:
        assert ("admin" in caught.value.message) or ("orders:read" in caught.value.message)


async def test_public_by_default_lets_anonymous_calls_through(
    jwks: JwksServer, clock: FakeClock, wall: FakeClock, rsa_a: SigningKey
) -> None:
    config = gateway_config(Auth(issuers=(issuer_config(jwks),)), Authorization())
    async with running(config, jwks, clock, wall) as public:
        assert (await public.send()).principal is None
        token = rsa_a.sign(claims(jwks.url, exp=0))  # a bad token on a public method: still 401
        with pytest.raises(Unauthenticated, match="token expired"):
            await public.send(bearer(token))


async def test_readiness_follows_the_jwks(jwks: JwksServer, clock: FakeClock, wall: FakeClock,
                                          rsa_a: SigningKey) -> None:
    static = Issuer(issuer="https://static.example", audiences=("a",),
                    keys=(StaticKey(pem=rsa_a.public_pem()),))
    jwks.mode = "error"
    config = gateway_config(Auth(issuers=(static, issuer_config(jwks))))
    built = make_stack(config, jwks, clock, wall)
    assert not built.auth.ready()
    await built.auth.start()
    try:
        assert not built.auth.ready()
        jwks.mode = "ok"
        clock.advance(30)
        await built.send(bearer(rsa_a.sign(claims(jwks.url))))
        assert built.auth.ready()
    finally:
        await built.auth.close()


@pytest.mark.parametrize("key", ["x-user-id", "email", "X-User-Email", "x-user-cert-bin"])
def test_claims_may_only_map_to_new_x_user_keys(key: str) -> None:
    issuer = Issuer(issuer="https://idp.example", audiences=("a",), jwks_url="https://idp/jwks",
                    claims_to_metadata={"email": key})
    with pytest.raises(ConfigError, match="claims_to_metadata.email"):
        build_auth_policies(gateway_config(Auth(issuers=(issuer,))))


async def test_the_identity_secret_comes_from_the_named_variable(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    config = gateway_config(Auth(
        identity_hmac_secret_env="GATEWAY_TEST_IDENTITY_SECRET",
        api_keys=(ApiKey(sha256=digest("k-live"), owner="batch"),),
    ))
    monkeypatch.delenv("GATEWAY_TEST_IDENTITY_SECRET", raising=False)
    with pytest.raises(ConfigError, match="GATEWAY_TEST_IDENTITY_SECRET"):
        build_auth_policies(config)
    monkeypatch.setenv("GATEWAY_TEST_IDENTITY_SECRET", "short")
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        build_auth_policies(config)
    monkeypatch.setenv("GATEWAY_TEST_IDENTITY_SECRET", "s" * 32)
    auth = build_auth_policies(config)
    backend = Recorder()
    await chain(auth.ordered(PropagateRequestId()), backend)(request((("x-api-key", "k-live"),)))
    assert verify_identity(backend.calls[0].metadata, b"s" * 32)
    assert not verify_identity(backend.calls[0].metadata, b"t" * 32)
