"""JWT authentication through the real auth chain (T-25, T-26): what passes; the reject matrix."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from gateway.auth.common import INVALID_TOKEN
from gateway.auth.jwks import JwksCache
from gateway.auth.tokens import JwtVerifier
from gateway.config import Issuer, StaticKey
from gateway.errors import Unauthenticated
from tests.policies.conftest import Stack
from tests.policies.jwks_server import (
    ISSUER_AUDIENCE,
    NOW,
    FakeClock,
    SigningKey,
    bearer,
    claims,
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _hs256_with_public_pem(key: SigningKey, payload: dict[str, Any]) -> str:
    """The classic key-confusion forgery: HMAC keyed with the issuer's public key PEM."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    body = _b64(json.dumps(payload).encode())
    signing_input = f"{header}.{body}".encode()
    signature = hmac.new(key.public_pem().encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


async def test_rs256_and_es256_tokens_pass_with_their_identity(
    stack: Stack, rsa_a: SigningKey, ec_a: SigningKey
) -> None:
    for key in (rsa_a, ec_a):
        token = key.sign(claims(stack.server.url, tenant="acme"))
        seen = await stack.send(bearer(token))
        assert seen.principal is not None
        assert (seen.principal.subject, seen.principal.via) == ("alice", "jwt")
        assert seen.principal.roles == ("reader", "ops")
        assert seen.principal.scopes == ("orders:read",)
        assert seen.principal.claims == (("x-user-tenant", "acme"),)
        assert "authorization" not in dict(seen.metadata)  # not forwarded by default


async def test_clock_skew_is_tolerated_up_to_the_leeway(stack: Stack, rsa_a: SigningKey) -> None:
    url = stack.server.url
    await stack.send(bearer(rsa_a.sign(claims(url, exp=int(NOW) - 20))))
    await stack.send(bearer(rsa_a.sign(claims(url, nbf=int(NOW) + 20, iat=int(NOW) + 20))))
    await stack.send(bearer(rsa_a.sign(claims(url, aud=["someone-else", ISSUER_AUDIENCE]))))
    assert len(stack.backend.calls) == 3


Forge = Callable[[Stack, SigningKey, SigningKey], str]

REJECTED: list[tuple[str, Forge, str]] = [
    ("forged signature",  # signed by a key the issuer never published, under its kid
     lambda s, a, b: jwt.encode(claims(s.server.url), b.private, "RS256", {"kid": a.kid}),
     "token signature invalid"),
    ("tampered payload",
     lambda s, a, b: _swap_payload(a.sign(claims(s.server.url)), claims(s.server.url, sub="root")),
     "token signature invalid"),
    ("expired", lambda s, a, b: a.sign(claims(s.server.url, exp=int(NOW) - 31)), "token expired"),
    ("not yet valid", lambda s, a, b: a.sign(claims(s.server.url, nbf=int(NOW) + 60)),
     "token not yet valid"),
    ("issued in the future", lambda s, a, b: a.sign(claims(s.server.url, iat=int(NOW) + 60)),
     "token issued in the future"),
    ("no exp", lambda s, a, b: a.sign(claims(s.server.url, exp=None)), "token lacks the exp claim"),
    ("exp not a number", lambda s, a, b: a.sign(claims(s.server.url, exp="soon")),
     "token exp claim is not a number"),
    ("lifetime over the maximum",
     lambda s, a, b: a.sign(claims(s.server.url, exp=int(NOW) + 2 * 86400)),
     "token lifetime exceeds"),
    ("lifetime over the maximum, no iat",
     lambda s, a, b: a.sign(claims(s.server.url, iat=None, exp=int(NOW) + 2 * 86400)),
     "token lifetime exceeds"),
    ("wrong audience", lambda s, a, b: a.sign(claims(s.server.url, aud="billing-api")),
     "token audience not allowed"),
    ("no audience", lambda s, a, b: a.sign(claims(s.server.url, aud=None)),
     "token lacks the aud claim"),
    ("wrong issuer", lambda s, a, b: a.sign(claims("https://evil.example")),
     "token issuer not allowed"),
    ("issuer prefix", lambda s, a, b: a.sign(claims(s.server.url + "/x")),
     "token issuer not allowed"),
    ("issuer as a list",  # pyjwt will not sign this; the issuer check comes before the signature
     lambda s, a, b: _swap_payload(a.sign(claims(s.server.url)), {
         **claims(s.server.url), "iss": [s.server.url]}),
     "token issuer not allowed"),
    ("alg none", lambda s, a, b: jwt.encode(claims(s.server.url), "", "none", {"kid": a.kid}),
     "token algorithm not allowed"),
    ("HS256 signed with the public key PEM",
     lambda s, a, b: _hs256_with_public_pem(a, claims(s.server.url)),
     "token algorithm not allowed"),
    ("ES256 header on the RSA key's kid",
     lambda s, a, b: _relabel(a.sign(claims(s.server.url)), alg="ES256"),
     "token algorithm does not fit the signing key"),
    ("unknown kid", lambda s, a, b: jwt.encode(claims(s.server.url), b.private, "RS256",
                                               {"kid": "not-published"}),
     "unknown signing key"),
    ("oversized token", lambda s, a, b: a.sign(claims(s.server.url, pad="x" * 4096)),
     "token larger than 4096 bytes"),
    ("not a JWS", lambda s, a, b: "not-a-token", "malformed token"),
    ("JWE-shaped", lambda s, a, b: "a.b.c.d.e", "malformed token"),
    ("non-ASCII", lambda s, a, b: a.sign(claims(s.server.url)) + "é", "malformed token"),
    ("unsupported crit header",
     lambda s, a, b: a.sign(claims(s.server.url), crit=["exp"], exp=1), "malformed token"),
    ("no subject", lambda s, a, b: a.sign(claims(s.server.url, sub=None)),
     "token lacks the sub claim"),
    ("subject with a comma", lambda s, a, b: a.sign(claims(s.server.url, sub="alice,admin")),
     "token subject has characters"),
    ("role with a comma", lambda s, a, b: a.sign(claims(s.server.url, roles=["reader,admin"])),
     "token claim roles has characters"),
    ("role with CR LF",
     lambda s, a, b: a.sign(claims(s.server.url, roles=["r\r\nx-user-id: root"])),
     "token claim roles has characters"),
    ("roles as a string",
     lambda s, a, b: a.sign(claims(s.server.url, roles="reader\nadmin")),
     "token claim roles must be a JSON array of strings"),
    ("role with NUL", lambda s, a, b: a.sign(claims(s.server.url, roles=["a\x00"])),
     "token claim roles has characters"),
    ("roles not a list", lambda s, a, b: a.sign(claims(s.server.url, roles={"a": 1})),
     "token claim roles must be a JSON array of strings"),
    ("role not a string", lambda s, a, b: a.sign(claims(s.server.url, roles=[1])),
     "token claim roles must be a JSON array of strings"),
    ("scope with CR", lambda s, a, b: a.sign(claims(s.server.url, scope="read\rwrite")),
     "token claim scope has characters"),
    ("mapped claim with LF", lambda s, a, b: a.sign(claims(s.server.url, tenant="acme\nx")),
     "token claim tenant is not printable"),
    ("mapped claim not text", lambda s, a, b: a.sign(claims(s.server.url, tenant=["acme"])),
     "token claim tenant is not printable"),
]


def _swap_payload(token: str, payload: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{_b64(json.dumps(payload).encode())}.{signature}"


def _relabel(token: str, **header_fields: Any) -> str:
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    return f"{_b64(json.dumps({**decoded, **header_fields}).encode())}.{payload}.{signature}"


@pytest.mark.parametrize(("forge", "reason"), [(f, r) for _, f, r in REJECTED],
                         ids=[name for name, _, _ in REJECTED])
async def test_reject_matrix(stack: Stack, rsa_a: SigningKey, rsa_b: SigningKey,
                             forge: Forge, reason: str) -> None:
    token = forge(stack, rsa_a, rsa_b)
    with pytest.raises(Unauthenticated) as caught:
        await stack.send(bearer(token))
    assert reason in caught.value.message
    assert caught.value.http_status == 401
    assert caught.value.www_authenticate == INVALID_TOKEN
    assert token not in caught.value.message
    assert stack.backend.calls == []
    assert stack.server.fetches <= (2 if reason == "unknown signing key" else 1)


async def test_a_static_pem_key_and_a_token_without_kid(
    clock: FakeClock, wall: FakeClock, rsa_a: SigningKey, rsa_b: SigningKey
) -> None:
    issuer = Issuer(issuer="https://idp.example", audiences=(ISSUER_AUDIENCE,),
                    keys=(StaticKey(pem=rsa_b.public_pem()), StaticKey(jwk=rsa_a.jwk())))
    cache = JwksCache(issuer, clock=clock)
    verifier = JwtVerifier((issuer,), {issuer.issuer: cache}, 4096, clock=wall)
    assert cache.ready()
    no_kid = jwt.encode(claims(issuer.issuer), rsa_b.private, "RS256")
    assert (await verifier.verify(no_kid)).subject == "alice"
    by_kid = rsa_a.sign(claims(issuer.issuer, sub="bob"))
    assert (await verifier.verify(by_kid)).subject == "bob"
    with pytest.raises(Unauthenticated, match="unknown signing key"):  # static: no fetch
        await verifier.verify(jwt.encode(claims(issuer.issuer), rsa_b.private, "RS256",
                                         {"kid": "other"}))


async def test_an_issuer_allowing_only_es256_refuses_rs256(
    clock: FakeClock, wall: FakeClock, rsa_a: SigningKey, ec_a: SigningKey
) -> None:
    issuer = Issuer(issuer="https://idp.example", audiences=(ISSUER_AUDIENCE,),
                    algorithms=("ES256",), keys=(StaticKey(jwk=ec_a.jwk()),))
    verifier = JwtVerifier((issuer,), {issuer.issuer: JwksCache(issuer, clock=clock)}, 4096,
                           clock=wall)
    assert (await verifier.verify(ec_a.sign(claims(issuer.issuer)))).subject == "alice"
    with pytest.raises(Unauthenticated, match="token algorithm not allowed"):
        await verifier.verify(rsa_a.sign(claims(issuer.issuer)))


async def test_nested_role_claims_and_space_separated_scopes(
    clock: FakeClock, wall: FakeClock, ec_a: SigningKey
) -> None:
    issuer = Issuer(issuer="https://idp.example", audiences=(ISSUER_AUDIENCE,),
                    keys=(StaticKey(jwk=ec_a.jwk()),), roles_claim="realm_access.roles",
                    subject_claim="preferred_username", scopes_claim="scp")
    verifier = JwtVerifier((issuer,), {issuer.issuer: JwksCache(issuer, clock=clock)}, 4096,
                           clock=wall)
    token = ec_a.sign(claims(issuer.issuer, preferred_username="carol", roles=None, scope=None,
                             realm_access={"roles": ["admin"]}, scp="a:read  b:write"))
    principal = await verifier.verify(token)
    assert (principal.subject, principal.roles, principal.scopes) == (
        "carol", ("admin",), ("a:read", "b:write"))
