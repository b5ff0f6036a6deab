"""Identity metadata (T-30): spoofed keys never reach the backend; injected ones are signed."""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from gateway.auth.apikeys import digest
from gateway.call import Metadata, Principal, chain
from gateway.config import AccessRule, ApiKey, Auth, Authorization
from gateway.policies.identity import (
    InjectIdentity,
    StripGatewayOwned,
    verify_identity,
)
from gateway.policies.request_id import PropagateRequestId
from tests.policies.conftest import Stack, running
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

SECRET = b"0123456789abcdef0123456789abcdef"
OWNED = ("x-user-*", "x-gateway-*", "x-forwarded-*", "x-envoy-*", "x-tenant-*")
SPOOFS: Metadata = (
    ("x-user-id", "root"), ("x-user-id", "root2"), ("X-User-Id", "root"), ("X_USER_ID", "root"),
    ("x-user-id-bin", b"root"), ("x-user-roles", "admin"), ("x-user-scopes", "*"),
    ("x-user-auth", "jwt"), ("x-user-tenant", "evil"), ("grpc-metadata-x-user-id", "root"),
    ("x-gateway-identity-sig", "00"), ("x-forwarded-for", "10.0.0.1"), ("x-envoy-internal", "true"),
    ("x-tenant-id", "evil"), ("X-Tenant-Id-Bin", b"evil"),
)


def identity_keys(metadata: Metadata) -> dict[str, list[str | bytes]]:
    """Every key a backend could take for identity, however spelled."""
    found: dict[str, list[str | bytes]] = {}
    for key, value in metadata:
        name = key.lower().replace("_", "-").removeprefix("grpc-metadata-").removesuffix("-bin")
        if name.startswith(("x-user-", "x-gateway-", "x-forwarded-", "x-envoy-", "x-tenant-")):
            found.setdefault(name, []).append(value)
    return found


@pytest.fixture
async def signed(jwks: JwksServer, clock: FakeClock, wall: FakeClock,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("GATEWAY_TEST_IDENTITY_SECRET", SECRET.decode())
    config = gateway_config(
        Auth(
            issuers=(issuer_config(jwks, claims_to_metadata={"tenant": "x-user-tenant"}),),
            api_keys=(ApiKey(sha256=digest("k-live"), owner="batch", roles=("ops",)),),
            gateway_owned=OWNED,
            identity_hmac_secret_env="GATEWAY_TEST_IDENTITY_SECRET",
        ),
        Authorization(default="authenticated",
                      rules=(AccessRule(match="/pub.*", access="public"),)),
    )
    async with running(config, jwks, clock, wall) as built:
        yield built


def test_strip_removes_every_spelling_and_keeps_the_rest() -> None:
    strip = StripGatewayOwned(OWNED)
    kept = [("x-request-id", "r1"), ("x-trace", "t"), ("x-userid", "u"), ("user-agent", "ua")]
    assert [key for key, _ in SPOOFS if not strip.owned(key)] == []
    assert all(not strip.owned(key) for key, _ in kept)


async def test_a_spoofed_identity_never_reaches_the_backend(signed: Stack,
                                                            rsa_a: SigningKey) -> None:
    token = rsa_a.sign(claims(signed.server.url, tenant="acme"))
    seen = await signed.send((*SPOOFS, *bearer(token), ("x-trace", "t")))
    assert identity_keys(seen.metadata) == {
        "x-user-id": ["alice"], "x-user-roles": ["reader,ops"], "x-user-scopes": ["orders:read"],
        "x-user-auth": ["jwt"], "x-user-tenant": ["acme"],
        "x-gateway-identity-sig": [dict(seen.metadata)["x-gateway-identity-sig"]],
    }
    assert ("x-trace", "t") in seen.metadata
    assert verify_identity(seen.metadata, SECRET)


async def test_anonymous_calls_carry_no_identity(signed: Stack) -> None:
    seen = await signed.send(SPOOFS, method="/pub.v1.Public/Get")
    assert seen.principal is None
    assert identity_keys(seen.metadata) == {}


async def test_randomised_spoof_variants(signed: Stack) -> None:
    """1,000 random spellings of owned keys, 10 per call, on API-key and anonymous calls."""
    rng = random.Random(30)
    names = ["x-user-id", "x-user-roles", "x-user-scopes", "x-user-auth", "x-user-tenant",
             "x-gateway-identity-sig", "x-forwarded-for", "x-envoy-internal", "x-tenant-id"]

    def spelling(name: str) -> tuple[str, str | bytes]:
        key = "".join(c.upper() if rng.random() < 0.5 else c for c in name)
        key = key.replace("-", "_") if rng.random() < 0.3 else key
        key = "Grpc-Metadata-" + key if rng.random() < 0.2 else key
        return (key + "-bin", b"evil") if rng.random() < 0.2 else (key, "evil")

    for i in range(100):
        spoofs = tuple(spelling(rng.choice(names)) for _ in range(10))
        if i % 2:
            seen = await signed.send((*spoofs, ("x-api-key", "k-live")))
            identity = identity_keys(seen.metadata)
            assert identity.pop("x-user-id") == ["batch"]
            assert identity.pop("x-user-roles") == ["ops"]
            assert identity.pop("x-user-scopes") == [""]
            assert identity.pop("x-user-auth") == ["api_key"]
            assert len(identity.pop("x-gateway-identity-sig")) == 1
            assert identity == {}
            assert verify_identity(seen.metadata, SECRET)
        else:
            seen = await signed.send(spoofs, method="/pub.v1.Public/Get")
            assert identity_keys(seen.metadata) == {}


async def _inject(principal: Principal | None, secret: bytes | None = SECRET,
                  metadata: Metadata = ()) -> Metadata:
    backend = Recorder()
    handler = chain([PropagateRequestId(), InjectIdentity(secret)], backend)
    call = request(metadata)
    await handler(replace(call, principal=principal, request_id="req-1"))
    return backend.calls[0].metadata


PRINCIPAL = Principal("alice", ("admin", "ops"), ("read",), via="jwt",
                      claims=(("x-user-tenant", "acme"),))


async def test_the_signature_follows_the_documented_format() -> None:
    metadata = await _inject(PRINCIPAL)
    text = ("gateway-identity/v1\nx-request-id:req-1\nx-user-auth:jwt\nx-user-id:alice\n"
            "x-user-roles:admin,ops\nx-user-scopes:read\nx-user-tenant:acme")
    expected = hmac.new(SECRET, text.encode(), hashlib.sha256).hexdigest()
    assert dict(metadata)["x-gateway-identity-sig"] == expected
    assert verify_identity(metadata, SECRET)


@pytest.mark.parametrize("tamper", [
    lambda m: tuple((k, "admin" if k == "x-user-roles" else v) for k, v in m),
    lambda m: tuple((k, "bob" if k == "x-user-id" else v) for k, v in m),
    lambda m: tuple((k, "other" if k == "x-request-id" else v) for k, v in m),
    lambda m: (*m, ("x-user-extra", "1")),
    lambda m: (*m, ("x-user-id", "alice")),
    lambda m: tuple((k, v) for k, v in m if k != "x-user-tenant"),
    lambda m: tuple((k, v) for k, v in m if k != "x-gateway-identity-sig"),
    lambda m: tuple((k, v.encode() if k == "x-user-id" and isinstance(v, str) else v)
                    for k, v in m),
], ids=["roles", "subject", "request id", "extra key", "duplicate", "dropped claim",
        "no signature", "binary value"])
async def test_an_altered_identity_fails_verification(tamper: object) -> None:
    metadata = await _inject(PRINCIPAL)
    assert verify_identity(metadata, SECRET)
    assert callable(tamper)
    assert not verify_identity(tamper(metadata), SECRET)
    assert not verify_identity(metadata, SECRET[::-1])


async def test_without_a_secret_identity_is_unsigned_and_anonymous_is_bare() -> None:
    unsigned = await _inject(PRINCIPAL, secret=None, metadata=(("x-user-id", "root"),))
    assert [k for k, _ in unsigned if k.startswith("x-")] == [
        "x-request-id", "x-user-auth", "x-user-id", "x-user-roles", "x-user-scopes",
        "x-user-tenant"]
    assert dict(unsigned)["x-user-id"] == "alice"
    spoofed = (("x-user-id", "root"), ("x-gateway-identity-sig", "0"))
    anonymous = await _inject(None, metadata=spoofed)
    assert [k for k, _ in anonymous] == ["x-request-id"]
