"""The JSON access log through a real stack; no credential or secret in any log line."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from tests.e2e import test_policies
from tests.e2e.stack import running_stack
from tests.e2e.test_policies import get_order, token
from tests.observability.conftest import traced_stack
from tests.policies.jwks_server import ISSUER_AUDIENCE, JwksServer, SigningKey, rsa_key
from users.v1 import users_pb2, users_pb2_grpc

ACCESS = "gateway.access"
GET_USER = "/users.v1.Users/GetUser"
GET_ORDER = "/orders.v1.Orders/GetOrder"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
API_KEY = "obs-api-key-5f0c2a9e7d1b4c3a"
SECRET_ENV = "GATEWAY_TEST_OBSERVABILITY_HMAC"
SECRET = "hmac-secret-7b9d3f1e5a2c4b6d8e0f"
signer = test_policies.signer  # the live JWKS server fixture


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(record.getMessage()) for record in caplog.records
            if record.name == ACCESS]


async def test_one_line_per_request_through_both_edges(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    success = {"/users.v1.Users/CreateUser": 201}
    async with running_stack(transcoding={"success_status": success}) as stack:
        async with stack.http.get(stack.url("/v1/users/u-1001")) as ok:
            assert ok.status == 200
        async with stack.http.get(stack.url("/v1/users/u-nobody")) as missing:
            assert missing.status == 404
        async with stack.http.post(stack.url("/v1/users"),
                                   json={"displayName": "Ada", "email": "ada@example.com"}
                                   ) as created:
            assert created.status == 201
        await users_pb2_grpc.UsersStub(stack.channel).GetUser(
            users_pb2.GetUserRequest(id="u-1001"), metadata=(("traceparent", TRACEPARENT),))
    first, second, third, fourth = access_lines(caplog)

    assert first["request_id"] == ok.headers["X-Request-ID"]
    assert {k: first[k] for k in ("route", "backend", "code", "http_status", "attempts",
                                  "user", "peer", "trace_id")} == {
        "route": GET_USER, "backend": "users", "code": "OK", "http_status": 200, "attempts": 1,
        "user": None, "peer": "127.0.0.1", "trace_id": None}
    assert first["duration_ms"] >= first["backend_ms"] > 0
    assert abs(first["ts"] - time.time()) < 60
    assert "error" not in first

    assert second["request_id"] == missing.headers["X-Request-ID"]
    assert (second["code"], second["http_status"], second["backend"]) == ("NOT_FOUND", 404,
                                                                           "users")
    assert "u-nobody" in second["error"]

    assert (third["route"], third["http_status"]) == ("/users.v1.Users/CreateUser", 201)
    # the gRPC call: the client's trace id, though the gateway itself does not trace
    assert (fourth["route"], fourth["code"], fourth["trace_id"]) == (
        GET_USER, "OK", "0af7651916cd43dd8448eb211c80319c")


async def test_the_trace_id_is_the_requests_span(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    async with traced_stack() as (stack, exporter):
        async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
            assert response.status == 200
        [span] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    [line] = access_lines(caplog)
    assert line["trace_id"] == format(span.context.trace_id, "032x")


async def test_access_log_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    async with running_stack(observability={"access_log": {"enabled": False}}) as stack:
        assert stack.gateway.runtime.observability.head == ()  # nor metrics: nothing to observe
        async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
            assert response.status == 200
    assert access_lines(caplog) == []


async def test_no_token_api_key_or_hmac_secret_in_any_log_line(
    signer: tuple[JwksServer, SigningKey], caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, key = signer
    monkeypatch.setenv(SECRET_ENV, SECRET)
    caplog.set_level(logging.DEBUG)  # every logger, every level
    good = token(server, key)
    expired = token(server, key, exp=1)
    forged = token(server, rsa_key("key-1"))  # same kid, another private key
    auth = {
        "issuers": [{"issuer": server.url, "audiences": [ISSUER_AUDIENCE],
                     "jwks_url": f"{server.url}/jwks"}],
        "api_keys": [{"sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
                      "owner": "svc-reports"}],
        "identity_hmac_secret_env": SECRET_ENV,
    }
    authorization = {"rules": [{"match": GET_ORDER, "roles": ["admin"]}]}
    tries = [
        ({"Authorization": f"Bearer {good}"}, 7),  # PERMISSION_DENIED: alice is no admin
        ({"Authorization": f"Bearer {expired}"}, 16),
        ({"Authorization": f"Bearer {forged}"}, 16),
        ({"Authorization": f"Bearer {good}", "X-Api-Key": API_KEY}, 16),  # two credentials
        ({"X-Api-Key": API_KEY + "x"}, 16),
        ({"X-Api-Key": API_KEY}, 7),
    ]
    async with traced_stack(auth=auth, authorization=authorization) as (stack, exporter):
        for edge in ("rest", "grpc"):
            for credentials, code in tries:
                assert (await get_order(stack, edge, credentials)).code == code
        # and calls that reach the backend, which gets the signed identity
        for credentials in ({"Authorization": f"Bearer {good}"}, {"X-Api-Key": API_KEY}):
            async with stack.http.get(stack.url("/v1/users/u-1001"), headers=credentials) as r:
                assert r.status == 200
        spans = exporter.get_finished_spans()

    lines = access_lines(caplog)
    assert len(lines) == 2 * len(tries) + 2
    # named once authenticated, refused by authorization or not
    assert [line["user"] for line in lines] == 2 * [
        "alice", None, None, None, None, "svc-reports"] + ["alice", "svc-reports"]
    assert stack.backends["users"].faults.calls_to(GET_USER)[-1].metadata[
        "x-gateway-identity-sig"]  # the secret was in use
    secrets = [good, expired, forged, API_KEY, SECRET,
               *(t.rsplit(".", 1)[1] for t in (good, expired, forged))]
    logged = [caplog.text, *(record.getMessage() for record in caplog.records)]
    for secret in secrets:
        assert not any(secret in text for text in logged), secret
    exported = json.dumps([json.loads(span.to_json()) for span in spans])
    assert not any(secret in exported for secret in secrets)
