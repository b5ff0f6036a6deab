"""The policy chain end to end, the same test through both edges (REST and gRPC)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from multidict import CIMultiDict

from orders.v1 import orders_pb2, orders_pb2_grpc
from tests.e2e.stack import Stack, running_stack
from tests.policies.jwks_server import ISSUER_AUDIENCE, JwksServer, SigningKey, rsa_key

API_KEY = "demo-api-key-0123456789"
EDGES = ["rest", "grpc"]


@dataclass(frozen=True)
class Outcome:
    code: int  # google.rpc.Code (0 = OK)
    http_status: int | None  # REST only
    headers: CIMultiDict[str]  # REST headers, or gRPC initial + trailing metadata


async def get_order(stack: Stack, edge: str, metadata: dict[str, Any] | None = None) -> Outcome:
    """GetOrder o-5001 through one edge; `metadata` are REST headers or gRPC metadata."""
    metadata = metadata or {}
    if edge == "rest":
        async with stack.http.get(stack.url("/v1/orders/o-5001"), headers=metadata) as r:
            body = await r.json()
            return Outcome(body.get("code", 0) if r.status >= 400 else 0, r.status,
                           CIMultiDict(r.headers))
    stub = orders_pb2_grpc.OrdersStub(stack.channel)
    call = stub.GetOrder(orders_pb2.GetOrderRequest(id="o-5001"),
                         metadata=tuple((k.lower(), v) for k, v in metadata.items()))
    try:
        await call
        code = 0
    except grpc.aio.AioRpcError as exc:
        code = exc.code().value[0]
    pairs = [*(await call.initial_metadata() or ()), *(await call.trailing_metadata() or ())]
    return Outcome(code, None, CIMultiDict((str(k), str(v)) for k, v in pairs))


def backend_calls(stack: Stack) -> list[Any]:
    return list(stack.backends["orders"].faults.calls_to("/orders.v1.Orders/GetOrder"))


@pytest.fixture
async def signer() -> AsyncIterator[tuple[JwksServer, SigningKey]]:
    key = rsa_key("key-1")
    server = JwksServer([key])
    await server.start()
    try:
        yield server, key
    finally:
        await server.close()


def token(server: JwksServer, key: SigningKey, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": server.url, "aud": ISSUER_AUDIENCE, "sub": "alice", "iat": now,
              "exp": now + 300, "roles": ["reader"], "scope": "orders:read"}
    claims.update(overrides)
    return key.sign({k: v for k, v in claims.items() if v is not None})


@pytest.fixture
async def secured(signer: tuple[JwksServer, SigningKey]) -> AsyncIterator[Stack]:
    server, _ = signer
    async with running_stack(
        auth={
            "issuers": [{"issuer": server.url, "audiences": [ISSUER_AUDIENCE],
                         "jwks_url": f"{server.url}/jwks"}],
            "api_keys": [{"sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
                          "owner": "svc-reports", "scopes": ["orders:read"]}],
        },
        authorization={"default": "public", "rules": [
            {"match": "/orders.v1.Orders/CancelOrder", "roles": ["admin"]},
            {"match": "/orders.v1.Orders/*", "access": "authenticated"},
        ]},
    ) as stack:
        yield stack


@pytest.mark.parametrize("edge", EDGES)
async def test_missing_credential_is_401_and_backend_not_called(secured: Stack, edge: str
                                                                 ) -> None:
    outcome = await get_order(secured, edge)
    assert outcome.code == grpc.StatusCode.UNAUTHENTICATED.value[0]
    if edge == "rest":
        assert outcome.http_status == 401
        assert outcome.headers["WWW-Authenticate"].startswith("Bearer")
    assert backend_calls(secured) == []


@pytest.mark.parametrize("edge", EDGES)
@pytest.mark.parametrize("claims", [
    pytest.param({"exp": 1}, id="expired"),
    pytest.param({"aud": "someone-else"}, id="wrong-aud"),
    pytest.param({"iss": "https://evil.example"}, id="wrong-iss"),
    pytest.param({"roles": ["reader,admin"]}, id="comma-in-role"),
])
async def test_bad_tokens_are_401(secured: Stack, signer: tuple[JwksServer, SigningKey],
                                  edge: str, claims: dict[str, Any]) -> None:
    server, key = signer
    outcome = await get_order(secured, edge,
                              {"Authorization": f"Bearer {token(server, key, **claims)}"})
    assert outcome.code == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert backend_calls(secured) == []


@pytest.mark.parametrize("edge", EDGES)
async def test_forged_signature_is_401(secured: Stack, signer: tuple[JwksServer, SigningKey],
                                       edge: str) -> None:
    server, _ = signer
    forger = rsa_key("key-1")  # same kid, another private key
    outcome = await get_order(secured, edge,
                              {"Authorization": f"Bearer {token(server, forger)}"})
    assert outcome.code == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert backend_calls(secured) == []


SPOOFS = {"X-User-Id": "mallory", "X-User-Roles": "admin", "Grpc-Metadata-X-User-Id": "mallory"}


@pytest.mark.parametrize("edge", EDGES)
async def test_identity_comes_from_the_token_never_the_client(
    secured: Stack, signer: tuple[JwksServer, SigningKey], edge: str
) -> None:
    server, key = signer
    spoofs = dict(SPOOFS) if edge == "rest" else {"x-user-id": "mallory", "x-user-roles": "admin",
                                                 "x-user-id-bin": b"mallory"}
    outcome = await get_order(secured, edge,
                              {"Authorization": f"Bearer {token(server, key)}", **spoofs})
    assert outcome.code == 0
    seen = backend_calls(secured)[-1].metadata
    assert seen["x-user-id"] == ["alice"]
    assert seen["x-user-roles"] == ["reader"]
    assert "x-user-id-bin" not in seen
    assert "authorization" not in seen  # credentials stay at the gateway by default
    assert seen["x-request-id"]


@pytest.mark.parametrize("edge", EDGES)
async def test_anonymous_calls_carry_no_identity(secured: Stack, edge: str) -> None:
    # ListNotifications is public by the default rule: spoofed identity is stripped anyway.
    if edge == "rest":
        async with secured.http.get(secured.url("/v1/users/u-1001/notifications"),
                                    headers=SPOOFS) as r:
            assert r.status == 200
    else:
        from notifications.v1 import notifications_pb2, notifications_pb2_grpc

        stub = notifications_pb2_grpc.NotificationsStub(secured.channel)
        await stub.ListNotifications(
            notifications_pb2.ListNotificationsRequest(user_id="u-1001"),
            metadata=(("x-user-id", "mallory"), ("x-user-roles", "admin")))
    seen = secured.backends["notifications"].faults.api_calls[-1].metadata
    assert not any(key.startswith("x-user-") for key in seen)


@pytest.mark.parametrize("edge", EDGES)
async def test_missing_role_is_403(secured: Stack, signer: tuple[JwksServer, SigningKey],
                                   edge: str) -> None:
    server, key = signer
    headers = {"Authorization": f"Bearer {token(server, key)}"}
    if edge == "rest":
        async with secured.http.post(secured.url("/v1/orders/o-5004:cancel"), json={},
                                     headers=headers) as r:
            assert r.status == 403
            assert "admin" in (await r.json())["message"]
    else:
        stub = orders_pb2_grpc.OrdersStub(secured.channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CancelOrder(orders_pb2.CancelOrderRequest(id="o-5004"),
                                   metadata=(("authorization", headers["Authorization"]),))
        assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert secured.backends["orders"].faults.calls_to("/orders.v1.Orders/CancelOrder") == ()


@pytest.mark.parametrize("edge", EDGES)
async def test_api_key_authenticates_as_its_owner(secured: Stack, edge: str) -> None:
    outcome = await get_order(secured, edge, {"X-Api-Key": API_KEY})
    assert outcome.code == 0
    seen = backend_calls(secured)[-1].metadata
    assert seen["x-user-id"] == ["svc-reports"]
    assert "x-api-key" not in seen
    wrong = await get_order(secured, edge, {"X-Api-Key": "not-the-key"})
    assert wrong.code == grpc.StatusCode.UNAUTHENTICATED.value[0]


@pytest.mark.parametrize("edge", EDGES)
async def test_rate_limit_rejects_with_retry_hints(edge: str) -> None:
    """T-22: 429 + Retry-After + RateLimit headers on REST; RESOURCE_EXHAUSTED + pushback."""
    async with running_stack(rate_limits={"rules": [
        {"match": "/orders.v1.Orders/GetOrder", "key": "ip", "rate_per_s": 0.01, "burst": 2},
    ]}) as stack:
        assert [(await get_order(stack, edge)).code for _ in range(2)] == [0, 0]
        limited = await get_order(stack, edge)
        assert limited.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        if edge == "rest":
            assert limited.http_status == 429
            assert int(limited.headers["Retry-After"]) >= 1
            assert "RateLimit-Policy" in limited.headers
        else:
            assert int(limited.headers["grpc-retry-pushback-ms"]) > 0
        assert len(backend_calls(stack)) == 2


@pytest.mark.redis
async def test_two_gateways_share_one_redis_budget(redis_server: Any) -> None:
    """Two gateway instances, one Redis: together they admit exactly the burst."""
    limits = {"store": "redis", "redis": {"url": redis_server.url, "timeout_s": 0.2},
              "rules": [{"match": "/orders.v1.Orders/GetOrder", "key": "route",
                         "rate_per_s": 0.001, "burst": 3}]}
    async with running_stack(rate_limits=limits) as first, running_stack(
        rate_limits=limits
    ) as second:
        codes = [(await get_order(stack, edge)).code
                 for stack, edge in [(first, "rest"), (second, "grpc")] * 3]
    assert codes.count(0) == 3
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]) == 3
