"""users.v1.Users over a real channel: reads, paging, filters, writes and every error path."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2

from tests.services.rich import detail, message, rpc_error, status_of, violated_fields
from users.v1 import users_pb2 as pb


async def test_get_user_returns_the_seeded_user(users: Any) -> None:
    user = await users.GetUser(pb.GetUserRequest(id="u-1001"))
    assert user.email == "ada.lovelace@example.com"
    assert user.state == pb.USER_STATE_ACTIVE
    assert list(user.roles) == [pb.ROLE_MEMBER, pb.ROLE_ADMIN]
    assert user.address.country_code == "DE"
    assert user.create_time.seconds > 0


async def test_get_unknown_user_is_not_found_naming_the_id(users: Any) -> None:
    error = await rpc_error(users.GetUser(pb.GetUserRequest(id="u-9")))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == 'user "u-9" not found'
    info = detail(error, error_details_pb2.ResourceInfo)
    assert (info.resource_type, info.resource_name) == ("users.v1.User", "u-9")


async def test_get_user_without_id_is_invalid(users: Any) -> None:
    error = await rpc_error(users.GetUser(pb.GetUserRequest()))
    assert violated_fields(error) == ["id"]


async def test_list_users_pages_through_everyone_in_id_order(users: Any) -> None:
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await users.ListUsers(pb.ListUsersRequest(page_size=7, page_token=token))
        assert page.total_size == 20
        seen += [user.id for user in page.users]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 3
    assert seen == [f"u-{n}" for n in range(1001, 1021)]


async def test_list_users_default_page_size_is_20(users: Any) -> None:
    page = await users.ListUsers(pb.ListUsersRequest())
    assert len(page.users) == 20
    assert page.next_page_token == ""


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        pytest.param("state=SUSPENDED", ["u-1005", "u-1012", "u-1018"], id="state"),
        pytest.param("role=ADMIN", ["u-1001", "u-1002", "u-1010"], id="role"),
        pytest.param("tag=vip", ["u-1001", "u-1005", "u-1009", "u-1013", "u-1017"], id="tag"),
    ],
)
async def test_list_users_filters(users: Any, filter_: str, expected: list[str]) -> None:
    page = await users.ListUsers(pb.ListUsersRequest(filter=filter_))
    assert [user.id for user in page.users] == expected
    assert page.total_size == len(expected)


async def test_filtered_paging_keeps_the_filter(users: Any) -> None:
    first = await users.ListUsers(pb.ListUsersRequest(filter="state=ACTIVE", page_size=10))
    second = await users.ListUsers(
        pb.ListUsersRequest(filter="state=ACTIVE", page_size=10, page_token=first.next_page_token)
    )
    ids = [user.id for user in [*first.users, *second.users]]
    assert len(ids) == 17 == len(set(ids))
    assert second.next_page_token == ""


@pytest.mark.parametrize("page_size", [-1, 101])
async def test_list_users_rejects_page_size_out_of_range(users: Any, page_size: int) -> None:
    error = await rpc_error(users.ListUsers(pb.ListUsersRequest(page_size=page_size)))
    assert violated_fields(error) == ["page_size"]
    assert "page_size" in message(error)


async def test_list_users_rejects_malformed_and_forged_page_tokens(users: Any) -> None:
    real = (await users.ListUsers(pb.ListUsersRequest(page_size=5))).next_page_token
    other_query = (
        await users.ListUsers(pb.ListUsersRequest(page_size=5, filter="state=ACTIVE"))
    ).next_page_token
    forged = real[:-2] + ("AA" if not real.endswith("AA") else "BB")
    for token in ["not base64!", "AAAABQ", forged, other_query]:
        request = pb.ListUsersRequest(page_size=5, page_token=token)
        error = await rpc_error(users.ListUsers(request))
        assert violated_fields(error) == ["page_token"], token
        assert "invalid page_token" in message(error)


async def test_list_users_rejects_unknown_filters(users: Any) -> None:
    for filter_ in ["state=GONE", "colour=red", "tag=", "role"]:
        error = await rpc_error(users.ListUsers(pb.ListUsersRequest(filter=filter_)))
        assert violated_fields(error) == ["filter"], filter_


async def test_create_user_assigns_id_state_and_times(users: Any) -> None:
    created = await users.CreateUser(pb.CreateUserRequest(user=pb.User(
        id="u-1", email="new.person@example.com", display_name="New Person",
        state=pb.USER_STATE_SUSPENDED,
    )))
    assert created.id == "u-1021"
    assert created.state == pb.USER_STATE_ACTIVE
    assert list(created.roles) == [pb.ROLE_MEMBER]
    assert created.create_time == created.update_time and created.create_time.seconds > 0
    assert await users.GetUser(pb.GetUserRequest(id="u-1021")) == created


async def test_create_user_validates_the_email(users: Any) -> None:
    for email in ["", "no-at-sign", "a b@c.de", "a@b..c"]:  # as buf.validate string.email
        request = pb.CreateUserRequest(user=pb.User(email=email, display_name="X"))
        error = await rpc_error(users.CreateUser(request))
        assert violated_fields(error) == ["user.email"], email
        assert "user.email" in message(error)


async def test_create_user_reports_every_violation(users: Any) -> None:
    user = pb.User(email="ok@example.com", roles=[pb.ROLE_MEMBER],
                   address=pb.Address(country_code="Germany"))
    user.roles.append(7)  # type: ignore[arg-type]  # an unknown enum number, as a client may send
    error = await rpc_error(users.CreateUser(pb.CreateUserRequest(user=user)))
    assert violated_fields(error) == ["user.roles[1]", "user.address.country_code"]


async def test_create_user_with_a_taken_email_already_exists(users: Any) -> None:
    request = pb.CreateUserRequest(user=pb.User(email="ADA.Lovelace@example.com"))
    error = await rpc_error(users.CreateUser(request))
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS
    assert "ADA.Lovelace@example.com" in message(error)
    assert detail(error, error_details_pb2.ErrorInfo).reason == "EMAIL_TAKEN"
    assert detail(error, error_details_pb2.ResourceInfo).resource_name == "u-1001"


async def test_update_user_writes_only_masked_fields(users: Any) -> None:
    before = await users.GetUser(pb.GetUserRequest(id="u-1002"))
    updated = await users.UpdateUser(pb.UpdateUserRequest(
        user=pb.User(id="u-1002", display_name="Rear Admiral Hopper", email="ignored@x.io",
                     address=pb.Address(city="Arlington")),
        update_mask=FieldMask(paths=["display_name", "address.city"]),
    ))
    assert updated.display_name == "Rear Admiral Hopper"
    assert updated.email == before.email
    assert updated.address.city == "Arlington"
    assert updated.address.line1 == before.address.line1
    assert updated.create_time == before.create_time
    assert updated.update_time.ToNanoseconds() > before.update_time.ToNanoseconds()


async def test_update_user_with_empty_mask_writes_every_writable_field(users: Any) -> None:
    updated = await users.UpdateUser(pb.UpdateUserRequest(
        user=pb.User(id="u-1001", email="ada@example.com", state=pb.USER_STATE_SUSPENDED,
                     roles=[pb.ROLE_MEMBER]),
    ))
    assert updated.email == "ada@example.com"
    assert updated.state == pb.USER_STATE_SUSPENDED
    assert list(updated.tags) == [] and updated.display_name == ""
    assert not updated.HasField("address")


@pytest.mark.parametrize("path", ["nickname", "id", "create_time", "address.planet"])
async def test_update_user_rejects_unknown_or_read_only_mask_paths(users: Any, path: str) -> None:
    error = await rpc_error(users.UpdateUser(pb.UpdateUserRequest(
        user=pb.User(id="u-1001"), update_mask=FieldMask(paths=["display_name", path]),
    )))
    assert violated_fields(error) == ["update_mask"]
    assert path in message(error)


async def test_update_unknown_user_is_not_found(users: Any) -> None:
    error = await rpc_error(users.UpdateUser(pb.UpdateUserRequest(
        user=pb.User(id="u-4242", display_name="x"), update_mask=FieldMask(paths=["display_name"]),
    )))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == 'user "u-4242" not found'


async def test_update_user_to_a_taken_email_already_exists(users: Any) -> None:
    error = await rpc_error(users.UpdateUser(pb.UpdateUserRequest(
        user=pb.User(id="u-1002", email="alan.turing@example.com"),
        update_mask=FieldMask(paths=["email"]),
    )))
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS


async def test_delete_active_user_needs_force(users: Any) -> None:
    error = await rpc_error(users.DeleteUser(pb.DeleteUserRequest(id="u-1001")))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert 'user "u-1001" is active' in message(error)
    failure = detail(error, error_details_pb2.PreconditionFailure)
    assert failure.violations[0].subject == "users/u-1001"
    assert detail(error, error_details_pb2.ErrorInfo).reason == "USER_ACTIVE"
    assert status_of(error).code == grpc.StatusCode.FAILED_PRECONDITION.value[0]

    await users.DeleteUser(pb.DeleteUserRequest(id="u-1001", force=True))
    gone = await rpc_error(users.GetUser(pb.GetUserRequest(id="u-1001")))
    assert gone.code() is grpc.StatusCode.NOT_FOUND
    again = await rpc_error(users.DeleteUser(pb.DeleteUserRequest(id="u-1001", force=True)))
    assert again.code() is grpc.StatusCode.NOT_FOUND


async def test_delete_suspended_user_needs_no_force(users: Any) -> None:
    await users.DeleteUser(pb.DeleteUserRequest(id="u-1005"))
    page = await users.ListUsers(pb.ListUsersRequest())
    assert page.total_size == 19
    assert "u-1005" not in [user.id for user in page.users]
