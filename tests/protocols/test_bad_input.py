"""Bad input on Connect and gRPC-Web: a clear error in that protocol's shape, backend not called."""

from __future__ import annotations

import base64
import gzip
import struct

import pytest

from tests.e2e.stack import Stack
from tests.protocols.wire import end_stream, frame, grpc_web
from users.v1 import users_pb2

GET_USER = "/users.v1.Users/GetUser"
CREATE_USER = "/users.v1.Users/CreateUser"
WATCH = "/orders.v1.Orders/WatchOrders"
MAX = 64 * 1024  # conftest: transcoding.max_body_bytes


def backend_calls(stack: Stack, method: str) -> int:
    service = {"users": "users", "orders": "orders"}[method.split(".")[0].lstrip("/")]
    return len(stack.backends[service].faults.calls_to(method))


@pytest.mark.parametrize("headers, body, status, code, says", [
    pytest.param({"Connect-Protocol-Version": "2"}, b"{}", 400, "invalid_argument",
                 "connect-protocol-version", id="unknown-protocol-version"),
    pytest.param({"Content-Type": "application/json"}, b'{"id": ', 400, "invalid_argument",
                 "users.v1.GetUserRequest", id="malformed-json"),
    pytest.param({"Content-Type": "application/json", "Content-Encoding": "snappy"}, b"{}", 501,
                 "unimplemented", "content-encoding", id="unsupported-encoding"),
    pytest.param({"Content-Type": "application/json", "Connect-Timeout-Ms": "soon"}, b"{}", 400,
                 "invalid_argument", "connect-timeout-ms", id="bad-timeout"),
    pytest.param({"Content-Type": "application/json"}, b"{" + b" " * MAX + b"}", 429,
                 "resource_exhausted", "limit", id="body-over-the-cap"),
])
async def test_connect_unary_refusals(stack: Stack, headers: dict[str, str], body: bytes,
                                      status: int, code: str, says: str) -> None:
    async with stack.http.post(stack.url(GET_USER), data=body,
                               headers={"Content-Type": "application/json", **headers}) as r:
        assert r.status == status
        assert r.headers["Content-Type"] == "application/json"
        error = await r.json()
    assert error["code"] == code
    assert says in error["message"]
    assert backend_calls(stack, GET_USER) == 0


async def test_wrong_content_type_is_415_in_plain_text(stack: Stack) -> None:
    """Not a Connect request: 415 with the types it takes (a Connect client reads code unknown)."""
    async with stack.http.post(stack.url(GET_USER), data=b"{}",
                               headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 415
        assert "application/json" in r.headers["Accept-Post"]
        assert "content type 'text/plain'" in await r.text()
    assert backend_calls(stack, GET_USER) == 0


async def test_get_on_a_method_with_side_effects_is_405(stack: Stack) -> None:
    async with stack.http.get(stack.url(f"{CREATE_USER}?encoding=json&message=%7B%7D")) as r:
        assert r.status == 405
        assert r.headers["Allow"] == "POST"
        error = await r.json()
    assert error["code"] == "unimplemented"
    assert "side effects" in error["message"]
    assert backend_calls(stack, CREATE_USER) == 0


async def test_get_with_bad_encoding_parameter(stack: Stack) -> None:
    async with stack.http.get(stack.url(f"{GET_USER}?encoding=xml&message=x")) as r:
        assert r.status == 400
        assert "encoding" in (await r.json())["message"]


@pytest.mark.parametrize("body, says", [
    pytest.param(b"\x00\x00\x00", "5-byte prefix", id="short-prefix"),
    pytest.param(b"\x00\x00\x00\x00\x10abc", "declares 16 bytes", id="cut-short"),
    pytest.param(struct.pack(">BI", 0, MAX + 1), "limit", id="length-over-the-cap"),
    pytest.param(frame(b"{}") + frame(b"{}"), "exactly one", id="two-messages"),
    pytest.param(frame(b"{}", 0x04), "flags", id="unknown-flags"),
])
async def test_connect_stream_refusals_end_the_stream(stack: Stack, body: bytes,
                                                      says: str) -> None:
    async with stack.http.post(stack.url(WATCH), data=body,
                               headers={"Content-Type": "application/connect+json"}) as r:
        assert r.status == 200
        messages, end = end_stream(await r.read())
    assert messages == []
    assert says in end["error"]["message"]
    assert backend_calls(stack, WATCH) == 0


@pytest.mark.parametrize("content_type, body, code, says", [
    pytest.param("application/grpc-web", b"\x00\x00", "3", "prefix", id="short-prefix"),
    pytest.param("application/grpc-web", struct.pack(">BI", 0, MAX + 1), "8", "limit",
                 id="length-over-the-cap"),
    pytest.param("application/grpc-web", b"\x00\x00\x00\x00\x09abc", "3", "declares 9",
                 id="cut-short"),
    pytest.param("application/grpc-web-text", b"AAAA*AAA", "3", "base64", id="bad-base64"),
    pytest.param("application/grpc-web-text", base64.b64encode(b"\x00\x00"), "3", "prefix",
                 id="text-short-prefix"),
])
async def test_grpc_web_refusals_are_trailers(stack: Stack, content_type: str, body: bytes,
                                              code: str, says: str) -> None:
    async with stack.http.post(stack.url(GET_USER), data=body,
                               headers={"Content-Type": content_type}) as r:
        assert r.status == 200
        raw = await r.read()
    if "text" in content_type:
        raw = base64.b64decode(raw)
    messages, trailers = grpc_web(raw)
    assert messages == []
    assert trailers["grpc-status"] == code
    assert says in trailers["grpc-message"].replace("%20", " ")
    assert backend_calls(stack, GET_USER) == 0


async def test_grpc_web_unknown_sub_format_is_415(stack: Stack) -> None:
    body = frame(users_pb2.GetUserRequest(id="u-1001").SerializeToString())
    async with stack.http.post(stack.url(GET_USER), data=body,
                               headers={"Content-Type": "application/grpc-web+xml"}) as r:
        assert r.status == 415
        assert r.headers["grpc-status"] == "3"
    assert backend_calls(stack, GET_USER) == 0


async def test_gzip_envelope_bomb_is_refused_at_the_cap(stack: Stack) -> None:
    bomb = gzip.compress(b"\0" * (4 * MAX))  # ~250 bytes that inflate past the cap
    async with stack.http.post(stack.url(WATCH), data=frame(bomb, 0x01), headers={
            "Content-Type": "application/connect+proto", "Connect-Content-Encoding": "gzip"}) as r:
        _, end = end_stream(await r.read())
    assert end["error"]["code"] == "resource_exhausted"
    assert backend_calls(stack, WATCH) == 0


async def test_compressed_envelope_without_an_encoding(stack: Stack) -> None:
    async with stack.http.post(stack.url(GET_USER), data=frame(b"x", 0x01),
                               headers={"Content-Type": "application/grpc-web"}) as r:
        _, trailers = grpc_web(await r.read())
    assert trailers["grpc-status"] == "13"  # INTERNAL, as gRPC says
    assert "no message encoding" in trailers["grpc-message"].replace("%20", " ")
    assert backend_calls(stack, GET_USER) == 0


async def test_other_http_methods_are_405(stack: Stack) -> None:
    async with stack.http.delete(stack.url(GET_USER)) as r:
        assert r.status == 405
        assert r.headers["Allow"] == "GET, POST"
        assert "DELETE" in await r.text()
    assert backend_calls(stack, GET_USER) == 0


async def test_two_request_messages_for_a_unary_method_is_unimplemented(stack: Stack) -> None:
    body = frame(users_pb2.GetUserRequest(id="u-1001").SerializeToString())
    async with stack.http.post(stack.url(GET_USER), data=body + body,
                               headers={"Content-Type": "application/grpc-web"}) as r:
        _, trailers = grpc_web(await r.read())
    assert trailers["grpc-status"] == "12"
    assert backend_calls(stack, GET_USER) == 0
