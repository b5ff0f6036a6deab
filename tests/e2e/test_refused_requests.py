"""Requests the REST edge refuses before the policy chain (404, 405, bad JSON, an unknown query
parameter, 413, 415) get an access-log line and a gateway_requests_total count like every other
request: status, reason, the request id the client got; never a credential."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.e2e.stack import running_stack
from tests.observability.conftest import WITH_OPS, sample, scrape

ACCESS = "gateway.access"
UNMATCHED = "(unmatched)"
CREATE = "/users.v1.Users/CreateUser"
LIST = "/users.v1.Users/ListUsers"
SECRET = "Bearer eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu.c2ln"
API_KEY = "key-that-must-never-be-logged"
JSON_BODY = {"Content-Type": "application/json"}

REFUSED = [
    # method, path, body, extra headers, HTTP status, route label, gRPC code
    ("GET", "/v1/nowhere", None, {}, 404, UNMATCHED, "NOT_FOUND"),
    ("PUT", "/v1/users/u-1001", None, {}, 405, UNMATCHED, "UNIMPLEMENTED"),
    ("POST", "/v1/users", b"{not json", JSON_BODY, 400, CREATE, "INVALID_ARGUMENT"),
    ("GET", "/v1/users?bogus=1", None, {}, 400, LIST, "INVALID_ARGUMENT"),
    ("POST", "/v1/users", b'{"email": "' + b"x" * 300 + b'"}', JSON_BODY, 413, CREATE,
     "RESOURCE_EXHAUSTED"),
    ("POST", "/v1/users", b"email=a", {"Content-Type": "application/x-www-form-urlencoded"},
     415, CREATE, "INVALID_ARGUMENT"),
]


async def test_refused_requests_are_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    async with running_stack(listen=WITH_OPS, transcoding={"max_body_bytes": 256}) as stack:
        sent: list[tuple[str, int, str]] = []  # (request id the client got, status, reason)
        for index, (method, path, body, headers, status, *_) in enumerate(REFUSED):
            credentials = {"Authorization": SECRET, "x-api-key": API_KEY,
                           "X-Request-ID": f"refused-{index}"}
            async with stack.http.request(method, stack.url(path), data=body,
                                          headers={**headers, **credentials}) as response:
                assert response.status == status, await response.text()
                assert response.headers["X-Request-ID"] == f"refused-{index}"
                reason = (await response.json())["message"]
                sent.append((f"refused-{index}", status, reason))
        samples = await scrape(stack)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS]
    by_id: dict[str, dict[str, Any]] = {line["request_id"]: line for line in lines}
    for (request_id, status, reason), refused in zip(sent, REFUSED, strict=True):
        line = by_id[request_id]
        assert (line["http_status"], line["route"], line["code"], line["edge"]) == (
            status, refused[5], refused[6], "rest")
        assert line["error"] == reason
        assert line["backend"] is None and line["attempts"] == 0
        assert line["peer"] == "127.0.0.1"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert SECRET.split()[1] not in logged and API_KEY not in logged
    assert len(lines) == len(REFUSED)  # one line each, none twice
    counted = {(route, code): 0.0 for *_, route, code in REFUSED}
    for *_, route, code in REFUSED:
        counted[route, code] += 1
    for (route, code), count in counted.items():
        assert sample(samples, "gateway_requests_total", edge="rest", route=route,
                      code=code) == count


async def test_a_request_that_reaches_the_chain_is_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    async with running_stack() as stack:
        async with stack.http.post(stack.url("/v1/users"), json={"email": 5}) as response:
            assert response.status == 400  # refused by the decoder: before the chain
        async with stack.http.get(stack.url("/v1/users/u-nobody")) as response:
            assert response.status == 404  # the backend's NOT_FOUND: logged by the chain
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS]
    assert [(line["route"], line["http_status"]) for line in lines] == [
        (CREATE, 400), ("/users.v1.Users/GetUser", 404)]
    assert lines[0]["error"] == "field email must be a string, not a number (in the body)"
