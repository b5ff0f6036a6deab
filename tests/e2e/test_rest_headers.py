"""Headers <-> metadata on the REST edge, and CORS for browsers."""

from __future__ import annotations

import base64

import pytest
from multidict import CIMultiDict

from tests.e2e.stack import Stack, running_stack


async def echo(stack: Stack, headers: dict[str, str]) -> tuple[int, CIMultiDict[str]]:
    async with stack.http.get(stack.url("/v1/kitchen/x"), headers=headers) as response:
        await response.read()
        return response.status, CIMultiDict(response.headers)


def seen(stack: Stack) -> dict[str, list[str | bytes]]:
    return stack.backends["echo"].faults.calls_to("/testing.v1.Echo/EchoKitchen")[-1].metadata


async def test_allow_listed_and_grpc_metadata_headers_are_forwarded() -> None:
    async with running_stack(transcoding={"forward_headers": ["X-Tenant-ID"]}) as stack:
        status, _ = await echo(stack, {
            "X-Tenant-ID": "acme",
            "X-Not-Listed": "dropped",
            "Grpc-Metadata-Trace-Hint": "abc",
            "Grpc-Metadata-Blob-Bin": base64.b64encode(b"\x00\xff").decode(),
            "Grpc-Metadata-Connection": "close",  # hop-by-hop: never metadata
            "Grpc-Metadata-Grpc-Timeout": "1S",  # grpc-owned: never metadata
        })
        assert status == 200
        metadata = seen(stack)
    assert metadata["x-tenant-id"] == ["acme"]
    assert metadata["trace-hint"] == ["abc"]
    assert metadata["blob-bin"] == [b"\x00\xff"]
    assert "x-not-listed" not in metadata
    assert "connection" not in metadata
    assert "grpc-timeout" not in metadata


async def test_authorization_is_not_forwarded_by_default(stack: Stack) -> None:
    status, _ = await echo(stack, {"Authorization": "Bearer secret-token"})
    assert status == 200
    assert "authorization" not in seen(stack)  # no issuers: not checked, and not passed on


async def test_credentials_forwarded_when_configured() -> None:
    async with running_stack(auth={"forward_credentials": True}) as stack:
        status, _ = await echo(stack, {"Authorization": "Bearer secret-token"})
        assert status == 200
        assert seen(stack)["authorization"] == ["Bearer secret-token"]


async def test_allow_listed_backend_metadata_returns_as_grpc_metadata_and_trailer_headers(
) -> None:
    async with running_stack(transcoding={"response_headers": ["echo-color", "echo-*-trailer"]}
                             ) as stack:
        status, headers = await echo(stack, {"Grpc-Metadata-Echo-Color": "blue"})
    assert status == 200
    assert headers["Grpc-Metadata-Echo-Color"] == "blue"
    assert headers["Grpc-Trailer-Echo-Color-Trailer"] == "blue"


async def test_backend_metadata_stays_inside_by_default(stack: Stack) -> None:
    status, headers = await echo(stack, {"Grpc-Metadata-Echo-Color": "blue"})
    assert status == 200
    assert not [name for name in headers if name.lower().startswith("grpc-")]


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        pytest.param("X_User_Id", "admin", "underscore", id="underscore-name"),
        pytest.param("Grpc-Metadata-Note", "caf\u00e9", "non-ASCII", id="non-ascii-value"),
        pytest.param("Grpc-Metadata-Blob-Bin", "***", "base64", id="bad-bin"),
    ],
)
async def test_hostile_headers_are_rejected(stack: Stack, name: str, value: str,
                                            needle: str) -> None:
    async with stack.http.get(stack.url("/v1/kitchen/x"), headers={name: value}) as response:
        assert response.status == 400
        assert needle.lower() in (await response.json())["message"].lower()
    assert stack.backends["echo"].faults.api_calls == ()


async def test_request_id_kept_when_well_formed_else_replaced(stack: Stack) -> None:
    _, headers = await echo(stack, {"X-Request-ID": "abc-123"})
    assert headers["X-Request-ID"] == "abc-123"
    assert seen(stack)["x-request-id"] == ["abc-123"]
    _, headers = await echo(stack, {"X-Request-ID": "x" * 65})
    assert headers["X-Request-ID"] != "x" * 65
    assert seen(stack)["x-request-id"] == [headers["X-Request-ID"]]


async def test_cors_preflight_and_actual_request() -> None:
    origin = "https://app.example"
    async with running_stack(cors={"allow_origins": [origin]}) as stack:
        preflight = {"Origin": origin, "Access-Control-Request-Method": "PATCH",
                     "Access-Control-Request-Headers": "content-type"}
        async with stack.http.options(stack.url("/v1/users/u-1"), headers=preflight) as r:
            assert r.status == 200
            assert r.headers["Access-Control-Allow-Origin"] == origin
            assert "PATCH" in r.headers["Access-Control-Allow-Methods"]
        async with stack.http.get(stack.url("/v1/users/u-1001"), headers={"Origin": origin}) as r:
            assert r.status == 200
            assert r.headers["Access-Control-Allow-Origin"] == origin
            assert "x-request-id" in r.headers["Access-Control-Expose-Headers"].lower()
        evil = {**preflight, "Origin": "https://evil.example"}
        async with stack.http.options(stack.url("/v1/users/u-1"), headers=evil) as r:
            assert r.status == 403
            assert r.content_type == "application/json"  # the error shape, even here
            assert "Access-Control-Allow-Origin" not in r.headers
        assert stack.backends["users"].faults.calls_to("/users.v1.Users/GetUser")
