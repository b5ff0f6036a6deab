"""gRPC-Web (binary, JSON, base64 text) through a real gateway and backends."""

from __future__ import annotations

import base64
import json
from urllib.parse import unquote

from orders.v1 import orders_pb2
from tests.e2e.stack import Stack
from tests.protocols.conftest import ORIGIN
from tests.protocols.wire import frame, frames, grpc_web
from users.v1 import users_pb2

GET_USER = "/users.v1.Users/GetUser"
WATCH = "/orders.v1.Orders/WatchOrders"


def get_user(user_id: str) -> bytes:
    return frame(users_pb2.GetUserRequest(id=user_id).SerializeToString())


async def test_unary_binary_with_trailers_frame(stack: Stack) -> None:
    async with stack.http.post(stack.url(GET_USER), data=get_user("u-1001"), headers={
            "Content-Type": "application/grpc-web+proto", "X-Grpc-Web": "1",
            "Origin": ORIGIN}) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "application/grpc-web+proto"
        expose = r.headers["Access-Control-Expose-Headers"]
        assert "grpc-status" in expose and "grpc-message" in expose
        messages, trailers = grpc_web(await r.read())
    assert users_pb2.User.FromString(messages[0]).id == "u-1001"
    assert trailers["grpc-status"] == "0"


async def test_unary_error_is_in_the_trailers(stack: Stack) -> None:
    async with stack.http.post(stack.url(GET_USER), data=get_user("u-404"),
                               headers={"Content-Type": "application/grpc-web"}) as r:
        assert r.status == 200
        messages, trailers = grpc_web(await r.read())
    assert messages == []
    assert trailers["grpc-status"] == "5"
    assert "u-404" in unquote(trailers["grpc-message"])
    assert trailers["grpc-status-details-bin"]


async def test_text_variant_is_base64(stack: Stack) -> None:
    async with stack.http.post(stack.url(GET_USER), data=base64.b64encode(get_user("u-1002")),
                               headers={"Content-Type": "application/grpc-web-text"}) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "application/grpc-web-text+proto"
        body = await r.read()
    chunks = [c + b"=" * (-len(c) % 4) for c in body.split(b"=") if c]  # one chunk per frame
    messages, trailers = grpc_web(b"".join(base64.b64decode(c) for c in chunks))
    assert users_pb2.User.FromString(messages[0]).id == "u-1002"
    assert trailers["grpc-status"] == "0"


async def test_json_sub_format(stack: Stack) -> None:
    async with stack.http.post(stack.url(GET_USER), data=frame(b'{"id": "u-1001"}'),
                               headers={"Content-Type": "application/grpc-web+json"}) as r:
        messages, trailers = grpc_web(await r.read())
    assert json.loads(messages[0])["id"] == "u-1001"
    assert trailers["grpc-status"] == "0"


async def test_server_stream(stack: Stack) -> None:
    request = frame(orders_pb2.WatchOrdersRequest(user_id="u-1001").SerializeToString())
    async with stack.http.post(stack.url(WATCH), data=request,
                               headers={"Content-Type": "application/grpc-web+proto"}) as r:
        assert r.status == 200
        received = []
        for _ in range(4):  # the four existing orders; the feed then waits for new ones
            header = await r.content.readexactly(5)
            received.append(await r.content.readexactly(int.from_bytes(header[1:], "big")))
    events = [orders_pb2.WatchOrdersResponse.FromString(m) for m in received]
    assert {e.order.user_id for e in events} == {"u-1001"}


async def test_server_stream_error_ends_with_trailers(stack: Stack) -> None:
    request = frame(orders_pb2.WatchOrdersRequest(user_id="").SerializeToString())
    async with stack.http.post(stack.url(WATCH), data=request,
                               headers={"Content-Type": "application/grpc-web+proto"}) as r:
        found = frames(await r.read())
    assert [flags for flags, _ in found] == [0x80]
    assert b"grpc-status: 3" in found[0][1]


async def test_cors_preflight_allows_grpc_web_headers(stack: Stack) -> None:
    async with stack.http.options(stack.url(GET_USER), headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-grpc-web,x-user-agent,grpc-timeout"
            }) as r:
        assert r.status == 200
        assert "x-grpc-web" in r.headers["Access-Control-Allow-Headers"]
