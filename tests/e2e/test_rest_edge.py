"""The REST edge end to end: HTTP in, transcoded gRPC to real backends, JSON out."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import grpc
import pytest

from services.faults import Fault
from tests.e2e.stack import Stack, running_stack

JSON_HEADERS = {"Content-Type": "application/json"}


async def get_json(stack: Stack, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with stack.http.get(stack.url(path), **kwargs) as response:
        return response.status, await response.json()


async def test_get_user_renders_canonical_json(stack: Stack) -> None:
    async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert response.headers["X-Request-ID"]
        user = await response.json()
    assert user["id"] == "u-1001"
    assert user["displayName"] == "Ada Lovelace"  # lowerCamelCase
    assert user["state"] == "USER_STATE_ACTIVE"  # enums by name
    assert user["createTime"].endswith("Z")  # Timestamp as RFC 3339


async def test_backend_error_maps_to_http_with_details(stack: Stack) -> None:
    status, body = await get_json(stack, "/v1/users/u-404")
    assert status == 404
    assert body["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert "u-404" in str(body["message"])
    details = body["details"]
    assert isinstance(details, list)
    assert details[0]["@type"] == "type.googleapis.com/google.rpc.ResourceInfo"


async def test_query_parameters_and_paging(stack: Stack) -> None:
    status, first = await get_json(stack, "/v1/users?pageSize=2")
    assert status == 200
    assert [u["id"] for u in first["users"]] == ["u-1001", "u-1002"]
    status, second = await get_json(
        stack, "/v1/users", params={"page_size": "2", "pageToken": first["nextPageToken"]}
    )
    assert [u["id"] for u in second["users"]] == ["u-1003", "u-1004"]


async def test_invalid_page_token_is_400_from_the_backend(stack: Stack) -> None:
    status, body = await get_json(stack, "/v1/users?pageToken=forged")
    assert status == 400
    assert "page_token" in str(body["message"])


async def test_create_with_configured_201_and_delete_with_204(stack: Stack) -> None:
    async with stack.http.post(stack.url("/v1/users"), headers=JSON_HEADERS,
                               json={"email": "new@example.com", "displayName": "New"}) as r:
        assert r.status == 201
        created = await r.json()
    async with stack.http.delete(stack.url(f"/v1/users/{created['id']}?force=true")) as r:
        assert r.status == 204
        assert await r.read() == b""


async def test_patch_fills_update_mask_from_body_keys(stack: Stack) -> None:
    async with stack.http.patch(stack.url("/v1/users/u-1002"), headers=JSON_HEADERS,
                                json={"displayName": "Rear Admiral Hopper"}) as r:
        assert r.status == 200, await r.text()
        user = await r.json()
    assert user["displayName"] == "Rear Admiral Hopper"
    assert user["email"] == "grace.hopper@example.com"  # untouched: not in the mask
    record = stack.backends["users"].faults.calls_to("/users.v1.Users/UpdateUser")[-1]
    request: Any = record.request
    assert list(request.update_mask.paths) == ["display_name"]


async def test_patch_body_may_repeat_the_path_and_the_path_wins(stack: Stack) -> None:
    # GET -> edit -> PATCH sends the id back; another id in the body loses to the path's.
    for body_id in ("u-1002", "u-1003"):
        async with stack.http.patch(stack.url("/v1/users/u-1002"), headers=JSON_HEADERS,
                                    json={"id": body_id, "displayName": "Grace"}) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["id"] == "u-1002"
        record = stack.backends["users"].faults.calls_to("/users.v1.Users/UpdateUser")[-1]
        request: Any = record.request
        assert (request.user.id, list(request.update_mask.paths)) == ("u-1002", ["display_name"])


async def test_path_body_conflict_reject_names_the_field() -> None:
    async with running_stack(transcoding={"path_body_conflict": "reject"}) as stack:
        async with stack.http.patch(stack.url("/v1/users/u-1002"), headers=JSON_HEADERS,
                                    json={"id": "u-1003", "displayName": "Grace"}) as r:
            assert r.status == 400
            assert "user.id is set by both the path and the body" in (await r.json())["message"]
        assert stack.backends["users"].faults.calls_to("/users.v1.Users/UpdateUser") == ()
        async with stack.http.patch(stack.url("/v1/users/u-1002"), headers=JSON_HEADERS,
                                    json={"id": "u-1002", "displayName": "Grace"}) as r:
            assert r.status == 200, await r.text()


async def test_custom_verb_with_body(stack: Stack) -> None:
    async with stack.http.post(stack.url("/v1/orders/o-5004:cancel"), headers=JSON_HEADERS,
                               json={"reason": "changed my mind"}) as r:
        assert r.status == 200
        order = await r.json()
    assert order["status"] == "ORDER_STATUS_CANCELLED"
    assert order["total"]["amountMinor"] == "24900"  # int64 as a string
    async with stack.http.post(stack.url("/v1/orders/o-5004:cancel"), headers=JSON_HEADERS,
                               json={}) as r:
        assert r.status == 400  # FAILED_PRECONDITION, as google.rpc.Code maps it
        assert (await r.json())["code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "needle"),
    [
        pytest.param("GET", "/v1/nowhere", None, 404, 5, "/v1/nowhere", id="unknown-path"),
        pytest.param("PUT", "/v1/users/u-1001", None, 405, 12, "PUT", id="method-not-bound"),
        pytest.param("POST", "/v1/users", b"{not json", 400, 3, "JSON", id="malformed-json"),
        pytest.param("POST", "/v1/users", b'{"email": 5}', 400, 3, "email", id="wrong-type"),
        pytest.param("POST", "/v1/users", b'{"nope": 1}', 400, 3, "nope", id="unknown-field"),
        pytest.param("POST", "/v1/users", b"\xff\xfe", 400, 3, "UTF-8", id="invalid-utf8"),
        pytest.param("POST", "/v1/users", b'{"address":' * 100 + b"{}" + b"}" * 100, 400, 3,
                     "deep", id="too-deep"),
        pytest.param("GET", "/v1/users?pageSize=99999999999", None, 400, 3, "page_size",
                     id="int32-overflow"),
        pytest.param("GET", "/v1/users?bogus=1", None, 400, 3, "bogus", id="unknown-query"),
    ],
)
async def test_bad_requests_never_reach_the_backend(
    stack: Stack, method: str, path: str, body: bytes | None, status: int, code: int, needle: str
) -> None:
    before = len(stack.backends["users"].faults.api_calls)
    async with stack.http.request(method, stack.url(path), data=body,
                                  headers=JSON_HEADERS if body is not None else None) as r:
        assert r.status == status
        assert r.content_type == "application/json"
        error = await r.json()
    assert error["code"] == code
    assert needle.lower() in error["message"].lower()
    assert error["details"] == []
    assert len(stack.backends["users"].faults.api_calls) == before
    if status == 405:
        assert "GET" in r.headers["Allow"]


async def test_body_over_the_limit_is_413() -> None:
    async with running_stack(transcoding={"max_body_bytes": 1024}) as stack:
        payload = json.dumps({"email": "a@example.com", "displayName": "x" * 2000})
        async with stack.http.post(stack.url("/v1/users"), data=payload,
                                   headers=JSON_HEADERS) as r:
            assert r.status == 413
            error = await r.json()
        assert error["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        assert "1024" in error["message"]
        assert stack.backends["users"].faults.api_calls == ()


async def test_wrong_content_type_is_415(stack: Stack) -> None:
    async with stack.http.post(stack.url("/v1/users"), data="email=a",
                               headers={"Content-Type": "application/x-www-form-urlencoded"}) as r:
        assert r.status == 415
        assert (await r.json())["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]


@pytest.mark.parametrize("value", ["", "-1S", "123456789S", "10x", "1.5S", "1 S", "1s"])
async def test_invalid_grpc_timeout_is_400(stack: Stack, value: str) -> None:
    """T-18: strict grpc-timeout parsing, before any backend call."""
    status, body = await get_json(stack, "/v1/users/u-1001", headers={"Grpc-Timeout": value})
    assert status == 400
    assert "grpc-timeout" in str(body["message"])
    assert stack.backends["users"].faults.api_calls == ()


async def test_grpc_timeout_becomes_the_deadline(stack: Stack) -> None:
    faults = stack.backends["users"].faults
    faults.set("/users.v1.Users/GetUser", Fault(hang=True))
    status, body = await get_json(stack, "/v1/users/u-1001", headers={"Grpc-Timeout": "200m"})
    assert status == 504
    assert body["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    record = faults.calls_to("/users.v1.Users/GetUser")[-1]
    assert record.time_remaining is not None and 0 < record.time_remaining <= 0.2


async def test_route_timeout_caps_the_client_deadline() -> None:
    """T-16: a client may ask for less than the configured timeout, never more."""
    async with running_stack(backend_options={"users": {"timeout_s": 0.25}}) as stack:
        faults = stack.backends["users"].faults
        faults.set("/users.v1.Users/GetUser", Fault(hang=True))
        status, body = await get_json(stack, "/v1/users/u-1001", headers={"Grpc-Timeout": "30S"})
        assert status == 504
        record = faults.calls_to("/users.v1.Users/GetUser")[-1]
        assert record.time_remaining is not None and record.time_remaining <= 0.25


async def test_server_stream_as_ndjson_then_error_frame(stack: Stack) -> None:
    async with stack.http.get(stack.url("/v1/shelves/3/books:stream?count=2&failCode=10")) as r:
        assert r.status == 200
        assert r.content_type == "application/x-ndjson"
        lines = [json.loads(line) for line in (await r.text()).splitlines()]
    assert [line["result"]["name"] for line in lines[:2]] == [
        "shelves/3/books/1", "shelves/3/books/2",
    ]
    assert lines[2]["error"]["code"] == grpc.StatusCode.ABORTED.value[0]


async def test_server_stream_as_sse(stack: Stack) -> None:
    async with stack.http.get(stack.url("/v1/shelves/3/books:stream?count=2"),
                              headers={"Accept": "text/event-stream"}) as r:
        assert r.content_type == "text/event-stream"
        text = await r.text()
    events = [block for block in text.split("\n\n") if block]
    assert len(events) == 2
    assert json.loads(events[0].removeprefix("data: "))["name"] == "shelves/3/books/1"


async def test_stream_error_before_first_message_keeps_its_status(stack: Stack) -> None:
    status, body = await get_json(stack, "/v1/shelves/3/books:stream?count=0&failCode=7")
    assert status == 403
    assert body["code"] == grpc.StatusCode.PERMISSION_DENIED.value[0]


async def test_client_disconnect_cancels_the_stream_upstream(stack: Stack) -> None:
    """T-17: the browser goes away mid-stream; the backend's WatchOrders call is cancelled."""
    faults = stack.backends["orders"].faults
    response = await stack.http.get(stack.url("/v1/users/u-1001/orders:watch"))
    assert response.status == 200
    await response.content.readline()  # the first existing order arrived
    record = faults.calls_to("/orders.v1.Orders/WatchOrders")[-1]
    response.close()
    await asyncio.wait_for(record.cancelled.wait(), 2)


async def test_http_body_reply_passes_through(stack: Stack) -> None:
    async with stack.http.get(stack.url("/v1/shelves/1/books/1/cover")) as r:
        assert r.status == 200
        assert r.content_type == "image/png"
        assert len(await r.read()) > 0


async def test_http_body_request_passes_through(stack: Stack) -> None:
    raw = bytes(range(256))
    async with stack.http.put(stack.url("/v1/shelves/1/books/1/cover"), data=raw,
                              headers={"Content-Type": "image/webp"}) as r:
        assert r.status == 200, await r.text()
        reply = await r.json()
    assert reply == {"name": "shelves/1/books/1", "contentType": "image/webp", "size": "256"}


async def test_response_body_renders_one_field(stack: Stack) -> None:
    async with stack.http.get(stack.url("/v1/shelves/1/books/1/author")) as r:
        assert r.status == 200
        author = await r.json()
    assert isinstance(author, str) and author


async def test_literal_route_wins_over_wildcard(stack: Stack) -> None:
    await get_json(stack, "/v1/shelves/stats")
    await get_json(stack, "/v1/shelves/9")
    methods = [c.method for c in stack.backends["echo"].faults.api_calls]
    assert methods == ["/testing.v1.Echo/GetShelfStats", "/testing.v1.Echo/GetShelf"]


async def test_kitchen_query_mapping_reaches_the_backend(stack: Stack) -> None:
    raw_bytes = base64.urlsafe_b64encode(bytes([0xFB, 0xFF])).decode().rstrip("=")
    query = ("int64Value=-9007199254740993&repeated_string=a&repeated_string=b&color=COLOR_BLUE"
             "&nested.child.label=deep&timestamp=2024-01-01T00:00:00.5Z&duration=1.5s"
             f"&bytesValue={raw_bytes}"
             "&wrappedInt64=7&fieldMask=a.b,c&boolValue=true&doubleValue=NaN")
    status, echoed = await get_json(stack, f"/v1/kitchen/hello%2Fworld?{query}")
    assert status == 200, echoed
    assert echoed["stringValue"] == "hello/world"  # single segment: fully decoded
    assert echoed["int64Value"] == "-9007199254740993"
    assert echoed["repeatedString"] == ["a", "b"]
    assert echoed["color"] == "COLOR_BLUE"
    assert echoed["nested"] == {"child": {"label": "deep"}}
    assert echoed["timestamp"] == "2024-01-01T00:00:00.500Z"
    assert echoed["duration"] == "1.500s"
    assert base64.b64decode(echoed["bytesValue"]) == b"\xfb\xff"
    assert echoed["wrappedInt64"] == "7"
    assert echoed["fieldMask"] == "a.b,c"
    assert echoed["doubleValue"] == "NaN"


async def test_nested_path_variable_and_additional_binding(stack: Stack) -> None:
    status, echoed = await get_json(stack, "/v1/kitchen/labels/x%2Fy/deep")
    assert status == 200
    assert echoed["nested"] == {"label": "labels/x%2Fy"}  # multi-segment keeps %2F
    status, book = await get_json(stack, "/v1/books/shelves/1/books/2")
    assert status == 200 and book["name"] == "shelves/1/books/2"


async def test_single_segment_variable_cannot_escape(stack: Stack) -> None:
    # Bound, never re-routed; and a dot segment in the bound value is refused by default
    # (transcoding.allow_dot_segments; tests/hostile/test_control_chars.py has the rest).
    status, echoed = await get_json(stack, "/v1/kitchen/..%2Fadmin")
    assert status == 400
    assert echoed["message"] == 'path variable string_value holds a dot segment ("." or "..")'
    assert not stack.backends["echo"].faults.api_calls
