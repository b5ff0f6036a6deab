"""The proto contract at the edge, through both edges: field_behavior (and, with the demo's
buf.validate rules, protovalidate) refused with a google.rpc.BadRequest before any backend."""

from __future__ import annotations

import hashlib
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from tests.e2e.stack import Stack, running_stack
from users.v1 import users_pb2, users_pb2_grpc

JSON_HEADERS = {"Content-Type": "application/json"}
CREATE = "/users.v1.Users/CreateUser"
EDGES = ("rest", "grpc")


def _bad_request_rest(body: dict[str, Any]) -> list[tuple[str, str]]:
    (detail,) = body["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    return [(v["field"], v.get("reason", "")) for v in detail["fieldViolations"]]


def _bad_request_grpc(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    trailers = dict(error.trailing_metadata() or ())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return [(v.field, v.reason) for v in bad.field_violations]


async def _create(stack: Stack, edge: str, user: dict[str, Any],
                  headers: dict[str, str] | None = None) -> tuple[int, list[tuple[str, str]]]:
    """(gRPC code, violations) of a CreateUser through one edge."""
    if edge == "rest":
        async with stack.http.post(stack.url("/v1/users"), json=user,
                                   headers={**JSON_HEADERS, **(headers or {})}) as r:
            body = await r.json()
            if r.status >= 300:
                assert r.status == {3: 400, 16: 401}[body["code"]]
                violations = _bad_request_rest(body) if body["code"] == 3 else []
                return body["code"], violations
            return 0, []
    stub = users_pb2_grpc.UsersStub(stack.channel)
    request = users_pb2.CreateUserRequest(user=users_pb2.User(**user))
    try:
        await stub.CreateUser(request, metadata=tuple((headers or {}).items()))
    except grpc.aio.AioRpcError as exc:
        code = exc.code().value[0]
        return code, _bad_request_grpc(exc) if code == 3 else []
    return 0, []


@pytest.mark.parametrize("edge", EDGES)
async def test_missing_required_field_is_refused_before_the_backend(stack: Stack, edge: str
                                                                    ) -> None:
    code, violations = await _create(stack, edge, {"display_name": "No Mail"}
                                     if edge == "grpc" else {"displayName": "No Mail"})
    assert (code, violations) == (3, [("user.email", "REQUIRED")])
    assert stack.backends["users"].faults.calls_to(CREATE) == ()


@pytest.mark.parametrize("edge", EDGES)
async def test_output_only_fields_are_cleared(stack: Stack, edge: str) -> None:
    if edge == "rest":
        user: dict[str, Any] = {"email": "out@example.com", "createTime": "2001-01-01T00:00:00Z"}
    else:
        user = {"email": "out-grpc@example.com"}
        user["create_time"] = {"seconds": 978307200}
    code, _ = await _create(stack, edge, user)
    assert code == 0
    request: Any = stack.backends["users"].faults.calls_to(CREATE)[-1].request
    assert not request.user.HasField("create_time")  # AIP-203: the server sets it


async def test_an_unauthenticated_caller_gets_401_not_the_contract() -> None:
    key = "contract-test-key"
    async with running_stack(
        auth={"api_keys": [{"sha256": hashlib.sha256(key.encode()).hexdigest(),
                            "owner": "u-1"}]},
        authorization={"default": "authenticated"},
    ) as stack:
        for edge in EDGES:
            assert await _create(stack, edge, {}) == (16, [])
            code, violations = await _create(stack, edge, {}, {"x-api-key": key})
            assert (code, violations) == (3, [("user.email", "REQUIRED")])


async def test_the_switch_turns_field_behavior_off() -> None:
    async with running_stack(transcoding={"field_behavior": {"enabled": False},
                                          "protovalidate": False}) as stack:
        code, _ = await _create(stack, "rest", {"displayName": "No Mail"})
        assert code == 3  # now the backend's own check answers
        assert len(stack.backends["users"].faults.calls_to(CREATE)) == 1


@pytest.mark.parametrize("edge", EDGES)
async def test_buf_validate_rules_are_refused_with_the_rule_id(stack: Stack, edge: str) -> None:
    code, violations = await _create(stack, edge, {"email": "not-an-email"})
    assert (code, violations) == (3, [("user.email", "string.email")])
    assert stack.backends["users"].faults.calls_to(CREATE) == ()


async def test_page_size_out_of_range_names_the_json_field(stack: Stack) -> None:
    async with stack.http.get(stack.url("/v1/users?pageSize=500")) as r:
        assert r.status == 400
        body = await r.json()
    assert _bad_request_rest(body) == [("pageSize", "int32.gte_lte")]
    assert "pageSize: must be greater than or equal to 0 and less than or equal to 100" \
        in body["message"]
    stub = users_pb2_grpc.UsersStub(stack.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListUsers(users_pb2.ListUsersRequest(page_size=500))
    assert _bad_request_grpc(caught.value) == [("page_size", "int32.gte_lte")]
    assert stack.backends["users"].faults.calls_to("/users.v1.Users/ListUsers") == ()
