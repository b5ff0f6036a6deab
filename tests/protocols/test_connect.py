"""Connect (unary, GET, server streaming, gzip, timeouts) through a real gateway and backends."""

from __future__ import annotations

import base64
import gzip
import json
import time
from urllib.parse import quote

from orders.v1 import orders_pb2
from tests.e2e.stack import Stack, running_stack
from tests.protocols.conftest import ORIGIN
from tests.protocols.wire import end_stream, frame
from users.v1 import users_pb2

GET_USER = "/users.v1.Users/GetUser"
WATCH = "/orders.v1.Orders/WatchOrders"


async def test_unary_json(stack: Stack) -> None:
    async with stack.http.post(stack.url(GET_USER), json={"id": "u-1001"},
                               headers={"Connect-Protocol-Version": "1"}) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "application/json"
        assert (await r.json())["email"] == "ada.lovelace@example.com"
        assert r.headers["X-Request-ID"]


async def test_unary_proto(stack: Stack) -> None:
    body = users_pb2.GetUserRequest(id="u-1001").SerializeToString()
    async with stack.http.post(stack.url(GET_USER), data=body,
                               headers={"Content-Type": "application/proto"}) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "application/proto"
        assert users_pb2.User.FromString(await r.read()).id == "u-1001"


async def test_error_is_connect_json_with_its_status(stack: Stack) -> None:
    async with stack.http.post(stack.url(GET_USER), json={"id": "u-404"}) as r:
        assert r.status == 404
        body = await r.json()
    assert body["code"] == "not_found"
    assert "u-404" in body["message"]
    detail = body["details"][0]
    assert detail["type"] == "google.rpc.ResourceInfo"
    base64.b64decode(detail["value"] + "==")  # base64, padding left off


async def test_gzip_request_and_reply(stack: Stack) -> None:
    body = gzip.compress(json.dumps({"pageSize": 20}).encode())
    async with stack.http.post(
        stack.url("/users.v1.Users/ListUsers"), data=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip",
                 "Accept-Encoding": "gzip"}, auto_decompress=False) as r:
        assert r.status == 200
        assert r.headers["Content-Encoding"] == "gzip"
        assert len(json.loads(gzip.decompress(await r.read()))["users"]) == 20


async def test_get_on_a_no_side_effects_method_is_cacheable(stack: Stack) -> None:
    message = quote(json.dumps({"id": "u-1001"}))
    async with stack.http.get(stack.url(f"{GET_USER}?connect=v1&encoding=json&message={message}"),
                              headers={"Origin": ORIGIN}) as r:
        assert r.status == 200
        assert (await r.json())["id"] == "u-1001"
        assert r.headers["Cache-Control"] == "public, max-age=60"
        assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    proto = base64.urlsafe_b64encode(users_pb2.GetUserRequest(id="u-1002").SerializeToString())
    async with stack.http.get(stack.url(
            f"{GET_USER}?encoding=proto&base64=1&message={proto.decode().rstrip('=')}"),
            headers={"Authorization": "Bearer x"}) as r:
        assert r.status == 200
        assert users_pb2.User.FromString(await r.read()).id == "u-1002"
        assert r.headers["Cache-Control"] == "private, no-cache"  # revalidated: auth every call


async def test_server_stream_envelopes(stack: Stack) -> None:
    request = frame(json.dumps({"userId": "u-1001"}).encode())
    async with stack.http.post(stack.url(WATCH), data=request,
                               headers={"Content-Type": "application/connect+json"}) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "application/connect+json"
        # the feed lists u-1001's four orders, then waits for new ones: read those, then go
        events = []
        for _ in range(4):
            header = await r.content.readexactly(5)
            assert header[0] == 0
            events.append(json.loads(await r.content.readexactly(
                int.from_bytes(header[1:], "big"))))
    assert {e["kind"] for e in events} == {"KIND_EXISTING"}
    assert all(e["order"]["userId"] == "u-1001" for e in events)


async def test_server_stream_error_is_in_the_end_stream_message(stack: Stack) -> None:
    request = frame(orders_pb2.WatchOrdersRequest(user_id="").SerializeToString())
    async with stack.http.post(stack.url(WATCH), data=request,
                               headers={"Content-Type": "application/connect+proto"}) as r:
        assert r.status == 200
        messages, end = end_stream(await r.read())
    assert messages == []
    assert end["error"]["code"] == "invalid_argument"


async def test_connect_timeout_ms_is_the_deadline(stack: Stack) -> None:
    started = time.monotonic()
    async with stack.http.post(stack.url(GET_USER), json={"id": "u-1001"},
                               headers={"Connect-Timeout-Ms": "2500"}) as r:
        assert r.status == 200
    seen = stack.backends["users"].faults.calls_to(GET_USER)[-1]
    assert seen.time_remaining is not None and 0 < seen.time_remaining <= 2.5
    assert time.monotonic() - started < 2.5


async def test_expired_deadline_is_deadline_exceeded(stack: Stack) -> None:
    async with stack.http.post(stack.url(GET_USER), json={"id": "u-1001"},
                               headers={"Connect-Timeout-Ms": "0"}) as r:
        assert r.status == 504
        assert (await r.json())["code"] == "deadline_exceeded"


async def test_cors_preflight_allows_connect_headers(stack: Stack) -> None:
    async with stack.http.options(stack.url(GET_USER), headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,connect-protocol-version"}) as r:
        assert r.status == 200
        assert "connect-protocol-version" in r.headers["Access-Control-Allow-Headers"]


async def test_rest_routes_are_unchanged(stack: Stack) -> None:
    async with stack.http.get(stack.url("/v1/users/u-1001")) as r:
        assert r.status == 200


async def test_get_errors_are_not_cacheable(stack: Stack) -> None:
    message = quote(json.dumps({"id": "u-404"}))
    async with stack.http.get(stack.url(f"{GET_USER}?encoding=json&message={message}")) as r:
        assert r.status == 404
        assert "Cache-Control" not in r.headers


async def test_default_deadline_off_leaves_a_call_without_one_open_ended() -> None:
    """backends.<name>.default_deadline: false: no client deadline, none sent on (a backend
    that must see exactly the client's); a client deadline still goes on, capped (T-16)."""
    async with running_stack(backend_options={"users": {"default_deadline": False,
                                                        "timeout_s": 2.0}}) as stack:
        async with stack.http.post(stack.url(GET_USER), json={"id": "u-1001"}) as r:
            assert r.status == 200
        async with stack.http.post(stack.url(GET_USER), json={"id": "u-1001"},
                                   headers={"Connect-Timeout-Ms": "60000"}) as r:
            assert r.status == 200
        unbounded, capped = stack.backends["users"].faults.calls_to(GET_USER)[-2:]
    assert unbounded.time_remaining is None
    assert capped.time_remaining is not None and capped.time_remaining <= 2.0


async def test_every_call_has_a_deadline_by_default(stack: Stack) -> None:
    async with stack.http.post(stack.url(GET_USER), json={"id": "u-1001"}) as r:
        assert r.status == 200
    seen = stack.backends["users"].faults.calls_to(GET_USER)[-1]
    assert seen.time_remaining is not None and seen.time_remaining <= 15.0
