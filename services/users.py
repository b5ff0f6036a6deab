"""users.v1.Users over an in-memory store seeded from services.seed.

`python -m services.users --port N` serves it alone.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from typing import cast

import grpc
from google.protobuf.empty_pb2 import Empty
from google.protobuf.field_mask_pb2 import FieldMask

from services.paging import Pager
from services.seed import now, seed
from services.status import (
    Context,
    already_exists,
    failed_precondition,
    invalid_argument,
    not_found,
    require,
)
from users.v1 import users_pb2, users_pb2_grpc

DOMAIN = "users.v1"
_RESOURCE = "users.v1.User"
# The WHATWG HTML "valid e-mail address", which buf.validate's string.email checks at the gateway.
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_WRITABLE = ("email", "display_name", "state", "roles", "tags", "address", "labels")
_MASKABLE = frozenset(_WRITABLE) | {
    f"address.{name}" for name in users_pb2.Address.DESCRIPTOR.fields_by_name
}
_STATES = {
    name.removeprefix("USER_STATE_"): value for name, value in users_pb2.UserState.items() if value
}
_Add = Callable[["UsersService", grpc.aio.Server], None]
_ROLES = {name.removeprefix("ROLE_"): value for name, value in users_pb2.Role.items() if value}


class UsersService(users_pb2_grpc.UsersServicer):
    service_name = users_pb2.DESCRIPTOR.services_by_name["Users"].full_name

    def __init__(self, users: Iterable[users_pb2.User] | None = None,
                 pager: Pager | None = None) -> None:
        initial = seed().users if users is None else users
        self._users = {user.id: copy.deepcopy(user) for user in initial}  # insertion = id order
        self._next_number = 1 + max((int(uid.removeprefix("u-")) for uid in self._users),
                                    default=1000)
        self._pager = pager or Pager()

    def add_to(self, server: grpc.aio.Server) -> None:
        add = cast(_Add, users_pb2_grpc.add_UsersServicer_to_server)  # generated code is untyped
        add(self, server)

    async def GetUser(self, request: users_pb2.GetUserRequest, context: Context) -> users_pb2.User:
        return copy.deepcopy(self._get(require(request.id, "id")))

    async def ListUsers(self, request: users_pb2.ListUsersRequest,
                        context: Context) -> users_pb2.ListUsersResponse:
        matches = _parse_filter(request.filter)
        found = [user for user in self._users.values() if matches(user)]
        page, token = self._pager.page(
            found, request.page_size, request.page_token, scope=f"users|{request.filter}"
        )
        return users_pb2.ListUsersResponse(users=page, next_page_token=token, total_size=len(found))

    async def CreateUser(self, request: users_pb2.CreateUserRequest,
                         context: Context) -> users_pb2.User:
        if not request.HasField("user"):
            raise invalid_argument(("user", "is required"))
        user = copy.deepcopy(request.user)
        user.id = f"u-{self._next_number}"
        user.state = users_pb2.USER_STATE_ACTIVE
        if not user.roles:
            user.roles.append(users_pb2.ROLE_MEMBER)
        self._validate(user)
        user.create_time.CopyFrom(now())
        user.update_time.CopyFrom(user.create_time)
        self._next_number += 1
        self._users[user.id] = user
        return copy.deepcopy(user)

    async def UpdateUser(self, request: users_pb2.UpdateUserRequest,
                         context: Context) -> users_pb2.User:
        if not request.HasField("user"):
            raise invalid_argument(("user", "is required"))
        paths = list(request.update_mask.paths) or list(_WRITABLE)
        unknown = [path for path in paths if path not in _MASKABLE]
        if unknown:
            raise invalid_argument(
                *(("update_mask", f'unknown or read-only field "{path}"') for path in unknown)
            )
        updated = copy.deepcopy(self._get(require(request.user.id, "user.id")))
        FieldMask(paths=paths).MergeMessage(
            request.user, updated, replace_message_field=True, replace_repeated_field=True
        )
        self._validate(updated)
        updated.update_time.CopyFrom(now())
        self._users[updated.id] = updated
        return copy.deepcopy(updated)

    async def DeleteUser(self, request: users_pb2.DeleteUserRequest, context: Context) -> Empty:
        user = self._get(require(request.id, "id"))
        if user.state == users_pb2.USER_STATE_ACTIVE and not request.force:
            raise failed_precondition(
                f'user "{user.id}" is active; suspend it first or set force',
                subject=f"users/{user.id}", reason="USER_ACTIVE", domain=DOMAIN,
            )
        del self._users[user.id]
        return Empty()

    def _get(self, user_id: str) -> users_pb2.User:
        user = self._users.get(user_id)
        if user is None:
            raise not_found("user", user_id, _RESOURCE)
        return user

    def _validate(self, user: users_pb2.User) -> None:
        violations = list(_violations(user))
        if violations:
            raise invalid_argument(*violations)
        email = user.email.lower()
        taken = next((u for u in self._users.values()
                      if u.email.lower() == email and u.id != user.id), None)
        if taken is not None:
            raise already_exists(
                f'user with email "{user.email}" already exists', _RESOURCE, taken.id,
                reason="EMAIL_TAKEN", domain=DOMAIN,
            )


def _violations(user: users_pb2.User) -> Iterable[tuple[str, str]]:
    if not user.email:
        yield "user.email", "is required"
    elif len(user.email) > 254 or not _EMAIL.fullmatch(user.email):
        yield "user.email", f'"{user.email}" is not a valid email address'
    if len(user.display_name) > 100:
        yield "user.display_name", "must be at most 100 characters"
    if user.state not in _STATES.values():
        yield "user.state", "must be USER_STATE_ACTIVE or USER_STATE_SUSPENDED"
    for i, role in enumerate(user.roles):
        if role not in _ROLES.values():
            yield f"user.roles[{i}]", "must be ROLE_MEMBER or ROLE_ADMIN"
    country = user.address.country_code
    if country and not re.fullmatch("[A-Z]{2}", country):
        yield "user.address.country_code", "must be an ISO 3166-1 alpha-2 code such as DE"


def _parse_filter(text: str) -> Callable[[users_pb2.User], bool]:
    """'' | state=ACTIVE|SUSPENDED | role=MEMBER|ADMIN | tag=<tag>."""
    if not text.strip():
        return lambda user: True
    key, _, value = (part.strip() for part in text.partition("="))
    if key == "state" and value in _STATES:
        state = _STATES[value]
        return lambda user: user.state == state
    if key == "role" and value in _ROLES:
        role = _ROLES[value]
        return lambda user: role in user.roles
    if key == "tag" and value:
        return lambda user: value in user.tags
    raise invalid_argument((
        "filter",
        f'unsupported filter "{text}"; use state=ACTIVE|SUSPENDED, role=MEMBER|ADMIN or tag=<tag>',
    ))


if __name__ == "__main__":
    from services.cli import main

    main(["users"])
