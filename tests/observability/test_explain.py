"""Explain on demand, end to end: real demo backends with injected faults, a real gateway on
loopback (both edges, the ops listener with the admin API), real RS256 tokens signed in the test.
Each explanation names the step that decided the answer; a caller who may not ask gets no hint."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.demo import OVERVIEW, overview_aggregate
from gateway.observability.explain_buffer import ExplainBuffer
from orders.v1 import orders_pb2, orders_pb2_grpc
from services.faults import Fault
from tests.e2e.stack import Stack, running_stack
from tests.observability.conftest import TRACED, traced_stack

ISSUER = "https://issuer.test.local"
AUDIENCE = "explain-tests"
KID = "explain-1"
ADMIN_TOKEN = "explain-test-admin-token"
API_KEY = "explain-test-api-key-u-1001"
GET_ORDER = "/orders.v1.Orders/GetOrder"
GET_USER = "/users.v1.Users/GetUser"
COUNT_UNREAD = "/notifications.v1.Notifications/CountUnread"
LOOPBACK = {"host": "127.0.0.1", "port": 0}
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                    serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def token(roles: list[str], subject: str = "alice") -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "roles": roles,
                       "iat": now, "exp": now + 300}, KEY, algorithm="RS256",
                      headers={"kid": KID})


def config(**explain: Any) -> dict[str, Any]:
    return {
        "listen": {"rest": LOOPBACK, "grpc": LOOPBACK, "ops": LOOPBACK},
        "admin": {"token_sha256": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()},
        "auth": {"issuers": [{"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["RS256"],
                              "keys": [{"kid": KID, "pem": PEM}]}],
                 "api_keys": [{"sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
                               "owner": "u-1001"}]},
        "authorization": {"default": "public", "rules": [
            {"match": "/orders.v1.Orders/CancelOrder", "roles": ["admin"]},
            {"match": "/dashboard.v1.*", "access": "authenticated"}]},
        "rate_limits": {"rules": [{"match": "/users.v1.Users/ListUsers", "key": "ip",
                                   "rate_per_s": 0.001, "burst": 1}]},
        "aggregates": {OVERVIEW: overview_aggregate()},
        "observability": {"explain": {"enabled": True, "roles": ["ops"], **explain}},
    }


BREAKER = {"users": {"breaker": {"consecutive_failures": 2, "cooldown_s": 60}}}


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with running_stack(backend_options=BREAKER, **config()) as running:
        yield running


async def admin_get(stack: Stack, path: str) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{stack.gateway.ops_port}{path}"
    async with stack.http.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as r:
        return r.status, await r.json()


async def rest(stack: Stack, method: str, path: str, headers: dict[str, str]
               ) -> tuple[int, dict[str, str], Any]:
    async with stack.http.request(method, stack.url(path), headers=headers) as r:
        return r.status, dict(r.headers), await r.json() if r.status != 204 else None


async def explanation(stack: Stack, headers: dict[str, str]) -> dict[str, Any]:
    """The whole explanation of the request whose answer carried `headers`; checks the
    compact header against it and that no credential is in either."""
    compact = headers["X-Gateway-Explain"]
    fields = dict(part.split("=", 1) for part in compact.split("; "))
    status, whole = await admin_get(stack, f"/admin/requests/{fields['id']}")
    assert status == 200
    assert whole["request_id"] == fields["id"] == headers["X-Request-ID"]
    assert whole["outcome"]["decided_by"] == fields["decided_by"]
    assert int(fields["steps"]) == len(whole["steps"])
    assert_no_credential(compact, whole)
    return dict(whole)


def assert_no_credential(*texts: object) -> None:
    blob = " ".join(str(t) for t in texts)
    for secret in (ADMIN_TOKEN, API_KEY, "eyJ"):  # "eyJ": how every JWT starts
        assert secret not in blob


def steps(whole: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [step for step in whole["steps"] if step["step"] == name]


async def test_a_success_explains_every_step_in_order(stack: Stack) -> None:
    bearer = token(["ops"])
    status, headers, _ = await rest(stack, "GET", "/v1/orders/o-5001", {
        "Authorization": f"Bearer {bearer}", "X-Gateway-Explain": "1"})
    assert status == 200
    whole = await explanation(stack, headers)
    assert bearer not in str(whole)
    assert [s["step"] for s in whole["steps"]] == [
        "route", "decode", "authenticate", "authorize", "identity", "deadline", "breaker",
        "attempt"]
    assert whole["outcome"] == {"code": "OK", "http_status": 200, "decided_by": "attempt",
                                "message": None}
    assert whole["asked_by"] == "role"
    [route] = steps(whole, "route")
    assert route["path_variables"] == {"id": "o-5001"} and route["method"] == GET_ORDER
    [credential] = steps(whole, "authenticate")
    assert credential | {"at_ms": 0} == {
        "step": "authenticate", "at_ms": 0, "via": "jwt", "issuer": ISSUER, "kid": KID,
        "alg": "RS256", "subject": "alice", "roles": ["ops"], "scopes": []}
    [rule] = steps(whole, "authorize")
    assert rule["rule"] is None and rule["access"] == "public"  # the default decided
    [identity] = steps(whole, "identity")
    assert identity["keys"] == ["x-user-auth", "x-user-id", "x-user-roles", "x-user-scopes"]
    [deadline] = steps(whole, "deadline")
    assert deadline["source"] == "backend timeout" and deadline["client_ms"] is None
    [breaker] = steps(whole, "breaker")
    assert breaker["state"] == "closed" and breaker["backend"] == "orders"
    [attempt] = steps(whole, "attempt")
    address = stack.backends["orders"].address
    assert attempt["instance"] == address and attempt["code"] == "OK"
    assert attempt["balancer"] == "round_robin" and attempt["backoff_ms"] is None
    assert attempt["candidates"] == [{"instance": address, "health": "healthy",
                                      "ejected": False, "in_flight": 1}]
    assert 0 < whole["backend_ms"] <= whole["gateway_ms"]
    # The header never reaches the backend (gateway-owned, T-30).
    [seen] = stack.backends["orders"].faults.calls_to(GET_ORDER)
    assert "x-gateway-explain" not in seen.metadata


async def test_a_401_is_decided_by_authentication_and_the_admin_token_may_ask(stack: Stack
                                                                             ) -> None:
    forged = token(["ops"])[:-4] + "AAAA"
    status, headers, body = await rest(stack, "GET", "/v1/orders/o-5001", {
        "Authorization": f"Bearer {forged}", "X-Gateway-Explain": ADMIN_TOKEN})
    assert status == 401
    whole = await explanation(stack, headers)
    assert whole["asked_by"] == "admin token"
    assert whole["outcome"]["decided_by"] == "authenticate"
    assert whole["outcome"]["message"] == body["message"] == "token signature invalid"
    assert steps(whole, "attempt") == []
    assert forged not in str(whole)


async def test_a_403_is_decided_by_the_rule_that_matched(stack: Stack) -> None:
    status, headers, _ = await rest(stack, "POST", "/v1/orders/o-5001:cancel", {
        "Authorization": f"Bearer {token(['ops'])}", "X-Gateway-Explain": "1"})
    assert status == 403
    whole = await explanation(stack, headers)
    assert whole["outcome"]["decided_by"] == "authorize"
    [rule] = steps(whole, "authorize")
    assert rule["rule"] == "/orders.v1.Orders/CancelOrder" and rule["roles"] == ["admin"]
    assert stack.backends["orders"].faults.calls_to("/orders.v1.Orders/CancelOrder") == ()


async def test_a_429_names_the_limit_its_key_and_what_remains(stack: Stack) -> None:
    ask = {"Authorization": f"Bearer {token(['ops'])}", "X-Gateway-Explain": "1"}
    first, headers, _ = await rest(stack, "GET", "/v1/users", ask)
    assert first == 200
    [allowed] = steps(await explanation(stack, headers), "rate_limit")
    assert allowed | {"at_ms": 0} == {"step": "rate_limit", "at_ms": 0, "rule": "r0-ip",
                                      "key": "ip:127.0.0.1", "allowed": True, "limit": 1,
                                      "remaining": 0, "retry_after_ms": None}
    second, headers, _ = await rest(stack, "GET", "/v1/users", ask)
    assert second == 429
    whole = await explanation(stack, headers)
    assert whole["outcome"]["decided_by"] == "rate_limit"
    [refused] = steps(whole, "rate_limit")
    assert refused["allowed"] is False and refused["remaining"] == 0
    assert refused["retry_after_ms"] > 0


async def test_a_retried_call_explains_each_attempt_and_its_backoff(stack: Stack) -> None:
    stack.backends["users"].faults.set(GET_USER, Fault(code=grpc.StatusCode.UNAVAILABLE,
                                                       times=1))
    status, headers, _ = await rest(stack, "GET", "/v1/users/u-1001",
                                    {"X-Gateway-Explain": ADMIN_TOKEN})
    assert status == 200
    whole = await explanation(stack, headers)
    assert whole["attempts"] == 2 and "attempts=2" in headers["X-Gateway-Explain"]
    first, second = steps(whole, "attempt")
    assert (first["number"], first["code"], first["backend_fault"]) == (1, "UNAVAILABLE", True)
    assert "injected fault" in first["message"] and first["backoff_ms"] is None
    assert (second["number"], second["code"]) == (2, "OK")
    assert second["backoff_ms"] >= 0
    assert whole["outcome"]["decided_by"] == "attempt"


async def test_an_open_breaker_decides_without_calling_the_backend(stack: Stack) -> None:
    stack.backends["users"].faults.set(GET_USER, Fault(code=grpc.StatusCode.UNAVAILABLE))
    ask = {"X-Gateway-Explain": ADMIN_TOKEN}
    status, headers, _ = await rest(stack, "GET", "/v1/users/u-1001", ask)
    assert status == 503  # two faults in a row (with the retry): the breaker opens
    opening = await explanation(stack, headers)
    assert [s["code"] for s in steps(opening, "attempt")] == ["UNAVAILABLE", "UNAVAILABLE"]
    calls = len(stack.backends["users"].faults.calls_to(GET_USER))
    status, headers, body = await rest(stack, "GET", "/v1/users/u-1001", ask)
    assert status == 503
    whole = await explanation(stack, headers)
    assert whole["outcome"]["decided_by"] == "breaker"
    assert whole["outcome"]["message"] == body["message"]
    [breaker] = steps(whole, "breaker")
    assert breaker["state"] == "open" and steps(whole, "attempt") == []
    assert len(stack.backends["users"].faults.calls_to(GET_USER)) == calls


async def test_an_aggregate_explains_each_part_and_its_failed_optional_one(stack: Stack
                                                                          ) -> None:
    stack.backends["notifications"].faults.set(COUNT_UNREAD,
                                               Fault(code=grpc.StatusCode.UNAVAILABLE))
    status, headers, body = await rest(stack, "GET", "/v1/dashboard/overview", {
        "x-api-key": API_KEY, "X-Gateway-Explain": ADMIN_TOKEN})
    assert status == 200 and body["profile"]["id"] == "u-1001"
    whole = await explanation(stack, headers)
    assert whole["outcome"]["decided_by"] == "aggregate"
    [credential] = steps(whole, "authenticate")
    assert credential["via"] == "api_key" and credential["subject"] == "u-1001"
    parts = {s["part"]: s for s in steps(whole, "part")}
    assert set(parts) == {"profile", "recent_orders", "unread", "order_users"}
    assert parts["profile"]["code"] == "OK" and parts["profile"]["required"] is True
    unread = parts["unread"]  # omitted from the reply, the call still 200 (T-42)
    assert (unread["code"], unread["required"], unread["effect"]) == (
        "UNAVAILABLE", False, "left out of the reply")
    # Each part's own steps: its rule, its breaker, its attempts (the failed one retried).
    methods = {s["method"] for s in steps(whole, "attempt")}
    assert {GET_USER, COUNT_UNREAD, "/orders.v1.Orders/ListOrders"} <= methods
    assert [s["code"] for s in steps(whole, "attempt") if s["method"] == COUNT_UNREAD] == [
        "UNAVAILABLE", "UNAVAILABLE"]
    assert {s["method"] for s in steps(whole, "authorize")} >= {OVERVIEW, COUNT_UNREAD}


async def test_a_grpc_call_gets_the_explanation_in_a_trailer(stack: Stack) -> None:
    stub = orders_pb2_grpc.OrdersStub(stack.channel)
    call = stub.GetOrder(orders_pb2.GetOrderRequest(id="o-5001"), metadata=(
        ("authorization", f"Bearer {token(['ops'])}"), ("x-gateway-explain", "1")))
    await call
    trailers = dict(await call.trailing_metadata() or ())
    initial = dict(await call.initial_metadata() or ())
    compact = str(trailers["x-gateway-explain"])
    assert compact.startswith(f"id={initial['x-request-id']}; code=OK; decided_by=attempt")
    status, whole = await admin_get(stack, f"/admin/requests/{initial['x-request-id']}")
    assert status == 200 and whole["edge"] == "grpc"
    assert [s["step"] for s in whole["steps"]][:3] == ["route", "decode", "authenticate"]
    [seen] = stack.backends["orders"].faults.calls_to(GET_ORDER)
    assert "x-gateway-explain" not in seen.metadata
    assert_no_credential(compact, whole)


async def test_a_failed_grpc_call_carries_it_beside_its_status(stack: Stack) -> None:
    stub = orders_pb2_grpc.OrdersStub(stack.channel)
    call = stub.CancelOrder(orders_pb2.CancelOrderRequest(id="o-5001"), metadata=(
        ("authorization", f"Bearer {token(['ops'])}"), ("x-gateway-explain", "1")))
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call
    assert failed.value.code() is grpc.StatusCode.PERMISSION_DENIED
    trailers = dict(failed.value.trailing_metadata() or ())
    assert "decided_by=authorize" in str(trailers["x-gateway-explain"])


@pytest.mark.parametrize("ask", [
    pytest.param({"Authorization": "reader", "X-Gateway-Explain": "1"}, id="role-not-allowed"),
    pytest.param({"X-Gateway-Explain": "1"}, id="anonymous"),
    pytest.param({"X-Gateway-Explain": "not-the-admin-token"}, id="wrong-admin-token"),
])
async def test_a_caller_who_may_not_ask_gets_no_hint(stack: Stack, ask: dict[str, str]) -> None:
    if "Authorization" in ask:
        ask = {**ask, "Authorization": f"Bearer {token(['reader'])}"}
    plain = {k: v for k, v in ask.items() if k != "X-Gateway-Explain"}
    status, headers, body = await rest(stack, "GET", "/v1/orders/o-5001", ask)
    plain_status, plain_headers, plain_body = await rest(stack, "GET", "/v1/orders/o-5001",
                                                         plain)
    assert (status, body) == (plain_status, plain_body) == (200, body)
    assert set(headers) == set(plain_headers)  # the same headers, none about explaining
    assert not any("explain" in f"{k} {v}".lower() for k, v in headers.items())
    assert (await admin_get(stack, "/admin/requests"))[1]["requests"] == []
    for seen in stack.backends["orders"].faults.calls_to(GET_ORDER):
        assert "x-gateway-explain" not in seen.metadata


async def test_explain_off_ignores_the_header() -> None:
    async with running_stack(**{**config(), "observability": {}}) as stack:
        status, headers, _ = await rest(stack, "GET", "/v1/orders/o-5001",
                                        {"X-Gateway-Explain": ADMIN_TOKEN})
        assert status == 200 and "X-Gateway-Explain" not in headers
        status, body = await admin_get(stack, "/admin/requests")
        assert status == 404 and "explain is off" in body["message"]
        [seen] = stack.backends["orders"].faults.calls_to(GET_ORDER)
        assert "x-gateway-explain" not in seen.metadata


async def test_the_ring_buffer_stays_bounded_under_a_flood() -> None:
    async with running_stack(**config(buffer_entries=8)) as stack:
        slots = asyncio.Semaphore(8)

        async def one(index: int) -> str:
            async with slots:
                _, headers, _ = await rest(stack, "GET", "/v1/orders/o-5001", {
                    "X-Gateway-Explain": ADMIN_TOKEN, "X-Request-ID": f"flood-{index}"})
                return headers["X-Request-ID"]

        sent = await asyncio.gather(*(one(i) for i in range(40)))
        status, kept = await admin_get(stack, "/admin/requests")
        assert status == 200
        assert len(kept["requests"]) == 8 and set(kept["requests"]) <= set(sent)
        assert kept["bytes"] <= kept["max_bytes"]
        status, _ = await admin_get(stack, "/admin/requests/flood-0")
        assert status == 404  # evicted: oldest out first (32 requests began after it ended)


def test_the_buffer_holds_at_most_its_bytes_whatever_comes() -> None:
    buffer = ExplainBuffer(max_entries=10_000, max_bytes=64 << 10)
    for index in range(2_000):
        buffer.put(f"r-{index}", b"x" * 1_000)
        assert buffer.bytes <= buffer.max_bytes
    assert 0 < len(buffer) < 64 and buffer.evicted == 2_000 - len(buffer)
    assert buffer.ids()[0] == "r-1999"
    buffer.put("r-1999", b"y")  # the same id again replaces it
    assert buffer.get("r-1999") == b"y" and buffer.ids()[0] == "r-1999"


async def test_steps_are_also_span_events_when_tracing_is_on() -> None:
    settings = config()
    settings["observability"] = {**TRACED, **settings["observability"]}
    async with traced_stack(**settings) as (stack, exporter):
        status, headers, _ = await rest(stack, "GET", "/v1/orders/o-5001", {
            "Authorization": f"Bearer {token(['ops'])}", "X-Gateway-Explain": "1"})
        assert status == 200 and "X-Gateway-Explain" in headers
        # A caller who may not ask leaves no event either.
        await rest(stack, "GET", "/v1/orders/o-5001", {
            "Authorization": f"Bearer {token(['reader'])}", "X-Gateway-Explain": "1"})
    servers = [s for s in exporter.get_finished_spans() if s.name == GET_ORDER]
    assert len(servers) == 2
    events = [[e.name for e in span.events] for span in servers]
    assert events[0] == ["explain.route", "explain.decode", "explain.authenticate",
                         "explain.authorize", "explain.identity", "explain.deadline",
                         "explain.breaker", "explain.attempt"]
    assert events[1] == []
    attributes = dict(servers[0].events[2].attributes or {})
    assert attributes["kid"] == KID and attributes["subject"] == "alice"
    assert_no_credential(*(e.attributes for span in servers for e in span.events))


async def test_a_grpc_caller_who_may_not_ask_gets_no_trailer(stack: Stack) -> None:
    stub = orders_pb2_grpc.OrdersStub(stack.channel)
    call = stub.GetOrder(orders_pb2.GetOrderRequest(id="o-5001"), metadata=(
        ("authorization", f"Bearer {token(['reader'])}"), ("x-gateway-explain", "1")))
    await call
    sent = [*(await call.initial_metadata() or ()), *(await call.trailing_metadata() or ())]
    assert not any("explain" in f"{k} {v}".lower() for k, v in sent)
    assert (await admin_get(stack, "/admin/requests"))[1]["requests"] == []
    [seen] = stack.backends["orders"].faults.calls_to(GET_ORDER)
    assert "x-gateway-explain" not in seen.metadata
