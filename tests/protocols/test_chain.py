"""Connect and gRPC-Web go through the same policy chain as REST and gRPC: authentication,
identity injection and spoof stripping, rate limits, metrics and the access log by protocol."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from orders.v1 import orders_pb2
from tests.e2e.stack import Stack, running_stack
from tests.e2e.test_policies import signer, token
from tests.policies.jwks_server import ISSUER_AUDIENCE, JwksServer, SigningKey
from tests.protocols.wire import frame, grpc_web

__all__ = ["signer"]  # the fixture, shared with the REST/gRPC policy tests

GET_ORDER = "/orders.v1.Orders/GetOrder"
PROTOCOLS = ["connect", "grpc-web"]
UNAUTHENTICATED = 16


async def get_order(stack: Stack, protocol: str, headers: dict[str, str] | None = None
                    ) -> tuple[int, int]:
    """GetOrder o-5001 by one protocol: (gRPC code, HTTP status)."""
    body = orders_pb2.GetOrderRequest(id="o-5001").SerializeToString()
    if protocol == "connect":
        async with stack.http.post(stack.url(GET_ORDER), data=body, headers={
                "Content-Type": "application/proto", **(headers or {})}) as r:
            if r.status == 200:
                return 0, 200
            error = await r.json()
            codes = {"unauthenticated": 16, "resource_exhausted": 8, "permission_denied": 7}
            return codes[error["code"]], r.status
    async with stack.http.post(stack.url(GET_ORDER), data=frame(body), headers={
            "Content-Type": "application/grpc-web+proto", **(headers or {})}) as r:
        _, trailers = grpc_web(await r.read())
        return int(trailers["grpc-status"]), r.status


def backend_calls(stack: Stack) -> list[Any]:
    return list(stack.backends["orders"].faults.calls_to(GET_ORDER))


@pytest.fixture
async def secured(signer: tuple[JwksServer, SigningKey]) -> AsyncIterator[Stack]:
    server, _ = signer
    async with running_stack(
        auth={"issuers": [{"issuer": server.url, "audiences": [ISSUER_AUDIENCE],
                           "jwks_url": f"{server.url}/jwks"}]},
        authorization={"default": "public", "rules": [
            {"match": "/orders.v1.Orders/*", "access": "authenticated"}]},
    ) as stack:
        yield stack


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_missing_credential_is_refused_before_the_backend(secured: Stack,
                                                                protocol: str) -> None:
    code, status = await get_order(secured, protocol)
    assert code == UNAUTHENTICATED
    assert status == (401 if protocol == "connect" else 200)
    assert backend_calls(secured) == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_identity_comes_from_the_token_never_the_client(
        secured: Stack, signer: tuple[JwksServer, SigningKey], protocol: str) -> None:
    server, key = signer
    code, _ = await get_order(secured, protocol, {
        "Authorization": f"Bearer {token(server, key)}",
        "X-User-Id": "mallory", "X-User-Roles": "admin", "X-Custom": "kept"})
    assert code == 0
    seen = backend_calls(secured)[-1].metadata
    assert seen["x-user-id"] == ["alice"]
    assert seen["x-user-roles"] == ["reader"]
    assert "authorization" not in seen
    assert seen["x-custom"] == ["kept"]  # Connect and gRPC-Web metadata are headers
    assert seen["x-request-id"]


async def test_connect_get_still_checks_authorization_every_call(secured: Stack) -> None:
    url = secured.url(f"{GET_ORDER}?encoding=json&message=%7B%22id%22%3A%22o-5001%22%7D")
    for _ in range(2):
        async with secured.http.get(url) as r:
            assert r.status == 401
    assert backend_calls(secured) == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_rate_limit_applies(protocol: str) -> None:
    async with running_stack(rate_limits={"rules": [
        {"match": GET_ORDER, "key": "ip", "rate_per_s": 0.01, "burst": 2},
    ]}) as stack:
        outcomes = [await get_order(stack, protocol) for _ in range(3)]
        assert [code for code, _ in outcomes] == [0, 0, 8]  # RESOURCE_EXHAUSTED
        if protocol == "connect":
            assert outcomes[-1][1] == 429
        assert len(backend_calls(stack)) == 2


async def test_metrics_and_access_log_name_the_protocol(caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    caplog.set_level(logging.INFO, logger="gateway.access")
    listen = {name: {"host": "127.0.0.1", "port": 0} for name in ("rest", "grpc", "ops")}
    async with running_stack(listen=listen) as stack:
        for protocol in PROTOCOLS:
            assert (await get_order(stack, protocol))[0] == 0
        metrics = stack.gateway.runtime.observability.metrics
        assert metrics is not None
        for protocol in PROTOCOLS:
            assert metrics.registry.get_sample_value("gateway_requests_total", {
                "edge": protocol, "route": GET_ORDER, "code": "OK"}) == 1
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.access"]
    assert [(line["edge"], line["route"], line["code"]) for line in lines] == [
        ("connect", GET_ORDER, "OK"), ("grpc-web", GET_ORDER, "OK")]
    assert lines[0]["http_status"] == 200 and lines[1]["http_status"] is None
