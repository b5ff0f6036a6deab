"""A gateway with JWT auth in front of the echo backend, all real and on loopback, for the
hostile-input tests of claims, request values, failed authentications and IdP outages.

The echo backend is a real grpc.aio server that records every call (`backend_calls`); tokens
are signed with keys made here and published by a real JWKS server (tests/policies), which a
test may start in a failing mode. `leaks()` lists where a secret shows up: reply bodies,
headers, trailers and every captured log line.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
import pytest
from yarl import URL

from gateway import app
from gateway.config import load
from gateway.demo import DESCRIPTOR_SET
from services.server import RunningBackend, start_backend
from testing.v1 import transcoding_pb2 as echo_pb2
from tests.policies.jwks_server import ISSUER_AUDIENCE, JwksServer, Mode, SigningKey, rsa_key

KITCHEN = "/testing.v1.Echo/EchoKitchen"


@dataclass(frozen=True)
class RestReply:
    status: int
    headers: Mapping[str, str]
    body: dict[str, Any]
    text: str


@dataclass(frozen=True)
class RpcReply:
    code: grpc.StatusCode
    details: str
    trailers: tuple[tuple[str, str | bytes], ...]
    reply: bytes | None = None


@dataclass(eq=False)
class AuthGateway:
    gateway: app.RunningGateway
    echo: RunningBackend
    jwks: JwksServer
    key: SigningKey
    http: aiohttp.ClientSession
    channel: grpc.aio.Channel
    seen: list[str] = field(default_factory=list)  # every reply text, for leaks()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.rest_port}"

    @property
    def backend_calls(self) -> int:
        return len(self.echo.faults.api_calls)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())  # the gateway checks exp against the real wall clock
        base: dict[str, Any] = {"iss": self.jwks.url, "aud": ISSUER_AUDIENCE, "sub": "alice",
                                "iat": now, "exp": now + 300, "roles": ["reader"],
                                "scope": "orders:read"}
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    def token(self, **overrides: Any) -> str:
        return self.key.sign(self.claims(**overrides))

    async def rest(self, path: str, token: str | None = None,
                   session: aiohttp.ClientSession | None = None,
                   headers: Mapping[str, str] | None = None) -> RestReply:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        url = URL(self.base_url + path, encoded=True)  # sent as written: no re-quoting
        async with (session or self.http).get(url, headers=sent) as response:
            text = await response.text()
            self.seen.append(text)
            self.seen.extend(f"{k}: {v}" for k, v in response.headers.items())
            body = await response.json(content_type=None) if text else {}
            return RestReply(response.status, dict(response.headers), body, text)

    async def rpc(self, token: str | None = None,
                  metadata: tuple[tuple[str, str], ...] = ()) -> RpcReply:
        call: Any = self.channel.unary_unary(KITCHEN)
        sent = (*metadata, *((("authorization", f"Bearer {token}"),) if token else ()))
        request = echo_pb2.EchoKitchenRequest(string_value="s").SerializeToString()
        try:
            reply = await call(request, metadata=sent, timeout=5)
        except grpc.aio.AioRpcError as exc:
            trailers = tuple(exc.trailing_metadata() or ())
            self.seen.append(exc.details() or "")
            self.seen.extend(f"{k}: {v!r}" for k, v in trailers)
            return RpcReply(exc.code(), exc.details() or "", trailers)
        return RpcReply(grpc.StatusCode.OK, "", (), reply)

    def leaks(self, secret: str, caplog: pytest.LogCaptureFixture) -> list[str]:
        """Every reply text, header, trailer and log line that holds `secret`."""
        lines = [*self.seen, *(record.getMessage() for record in caplog.records),
                 *(str(record.exc_info) for record in caplog.records if record.exc_info)]
        return [line for line in lines if secret in line]


def gateway_config(echo: RunningBackend, jwks: JwksServer, **overrides: Any) -> dict[str, Any]:
    """Both edges on port 0, the echo backend, one issuer on the JWKS server, every call
    authenticated. `overrides` replace top-level keys; `issuer` is merged into the issuer."""
    issuer = {"issuer": jwks.url, "audiences": [ISSUER_AUDIENCE],
              "jwks_url": f"{jwks.url}/jwks", "jwks_fetch_timeout_s": 0.3,
              **overrides.pop("issuer", {})}
    auth = {"issuers": [issuer], **overrides.pop("auth", {})}
    return {
        "listen": {"rest": {"host": "127.0.0.1", "port": 0},
                   "grpc": {"host": "127.0.0.1", "port": 0}},
        "descriptors": {"descriptor_set": str(DESCRIPTOR_SET)},
        "backends": {"echo": {"services": ["testing.v1.Echo"], "addresses": [echo.address]}},
        "auth": auth,
        "authorization": {"default": "authenticated"},
        **overrides,
    }


@asynccontextmanager
async def auth_gateway(jwks_mode: Mode = "ok", **overrides: Any) -> AsyncIterator[AuthGateway]:
    key = rsa_key("k1")
    jwks = JwksServer([key], mode=jwks_mode)
    await jwks.start()
    echo = await start_backend("echo")
    gateway = None
    try:
        gateway = await app.start(load(gateway_config(echo, jwks, **overrides)))
        async with aiohttp.ClientSession() as http, grpc.aio.insecure_channel(
            f"127.0.0.1:{gateway.grpc_port}"
        ) as channel:
            yield AuthGateway(gateway, echo, jwks, key, http, channel)
    finally:
        if gateway is not None:
            await gateway.stop(0)
        await echo.stop()
        await jwks.close()
