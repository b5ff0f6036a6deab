"""A real JWKS / OIDC discovery server on 127.0.0.1:0 for the auth tests; keys, configs, clocks.

The server publishes the public half of its `keys`, can rotate them, fail on demand (HTTP 500,
hang until closed, drop the connection, send an oversized body, redirect) and counts requests.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.call import Call, Metadata, Reply
from gateway.config import Auth, Authorization, Backend, Descriptors, GatewayConfig, Issuer

ISSUER_AUDIENCE = "orders-api"
NOW = 1_700_000_000.0  # the tests' wall clock

Mode = Literal["ok", "error", "hang", "close", "huge", "redirect"]


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        data: dict[str, Any] = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**data, "kid": self.kid, "use": "sig"}

    def public_pem(self) -> str:
        return self.private.public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def sign(self, claims: dict[str, Any], **headers: Any) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg,
                          headers={"kid": self.kid, **headers})


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def claims(issuer: str, **overrides: Any) -> dict[str, Any]:
    """A valid claim set at NOW; overrides replace (None removes) a claim."""
    base: dict[str, Any] = {
        "iss": issuer, "aud": ISSUER_AUDIENCE, "sub": "alice",
        "iat": int(NOW), "exp": int(NOW) + 300, "roles": ["reader", "ops"], "scope": "orders:read",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@dataclass(eq=False)
class JwksServer:
    keys: list[SigningKey]
    mode: Mode = "ok"
    jwks_uri: str | None = None  # what discovery announces; None = this server's /jwks
    discovery_issuer: str | None = None  # what discovery says the issuer is; None = url
    requests: Counter[str] = field(default_factory=Counter)
    seen: asyncio.Queue[str] = field(default_factory=asyncio.Queue)  # each request's path
    url: str = ""
    _runner: web.AppRunner | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def fetches(self) -> int:
        return self.requests["/jwks"]

    def _count(self, request: web.Request) -> None:
        self.requests[request.path] += 1
        self.seen.put_nowait(request.path)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _jwks(self, request: web.Request) -> web.StreamResponse:
        self._count(request)
        if self.mode == "error":
            return web.json_response({"error": "down"}, status=500)
        if self.mode == "hang":
            await self._release.wait()
        if self.mode == "close":
            assert request.transport is not None
            request.transport.close()
        if self.mode == "huge":
            padding = [{"kty": "oct", "k": "x" * 1000, "kid": str(i)} for i in range(80)]
            return web.json_response({"keys": [k.jwk() for k in self.keys] + padding})
        if self.mode == "redirect":
            raise web.HTTPFound("/jwks")
        return web.json_response({"keys": [key.jwk() for key in self.keys]})

    async def _discovery(self, request: web.Request) -> web.Response:
        self._count(request)
        return web.json_response({
            "issuer": self.discovery_issuer or self.url,
            "jwks_uri": self.jwks_uri or f"{self.url}/jwks",
        })


class FakeClock:
    """A clock the test moves by hand (monotonic or wall, by the start value)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ManualSleep:
    """An injected sleep: records each delay asked for and returns only when the test says so,
    moving the clock by that delay."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.asked: asyncio.Queue[float] = asyncio.Queue()
        self._wake: asyncio.Queue[None] = asyncio.Queue()

    async def __call__(self, delay: float) -> None:
        await self.asked.put(delay)
        await self._wake.get()
        self.clock.advance(delay)

    def wake(self) -> None:
        self._wake.put_nowait(None)

    async def next_delay(self) -> float:
        return await asyncio.wait_for(self.asked.get(), timeout=5)


async def never(_: float) -> None:
    """An injected sleep that never returns: no background refresh during the test."""
    await asyncio.Event().wait()


def issuer_config(server: JwksServer, **overrides: Any) -> Issuer:
    """An issuer whose keys come from this server's /jwks."""
    settings: dict[str, Any] = {
        "issuer": server.url, "audiences": (ISSUER_AUDIENCE,), "jwks_url": f"{server.url}/jwks",
        "jwks_fetch_timeout_s": 0.3,
    }
    return Issuer(**{**settings, **overrides})


def gateway_config(auth: Auth, authorization: Authorization | None = None) -> GatewayConfig:
    return GatewayConfig(
        descriptors=Descriptors(descriptor_set=Path("unused.binpb")),
        backends={"all": Backend(services=("*",), addresses=("127.0.0.1:1",))},
        auth=auth,
        authorization=authorization or Authorization(default="authenticated"),
    )


@dataclass(eq=False)
class Recorder:
    """The terminal handler: records every call that got through."""

    calls: list[Call] = field(default_factory=list)

    async def __call__(self, call: Call) -> Reply:
        self.calls.append(call)
        return Reply(b"ok")


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def request(metadata: Metadata = (), method: str = "/orders.v1.Orders/GetOrder") -> Call:
    return Call(method=method, payload=b"", metadata=metadata)
