"""The check run before a scenario is loaded: one request must succeed (HTTP 200 or
grpc-status 0) and return what the seed data says (REST: JSON equal to MessageToDict of the
scenario's expected reply: user u-1001 by default, the dashboard overview, the unread count).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from bench.loadgen import Target
from bench.procs import BenchError
from dashboard.v1 import dashboard_pb2
from notifications.v1 import notifications_pb2
from orders.v1 import orders_pb2
from services.paging import newest_first
from services.seed import seed
from users.v1 import users_pb2

if TYPE_CHECKING:
    from bench.scenarios import Load  # which imports this module

USER_ID = "u-1001"
REST_PATH = f"/v1/users/{USER_ID}"
GRPC_METHOD = "/users.v1.Users/GetUser"
DASHBOARD_PATH = "/v1/dashboard/overview"  # the caller is the API key's owner: USER_ID
UNREAD_PATH = f"/v1/users/{USER_ID}/notifications:countUnread"
ORDERS_PAGE = 20  # the orders service's default page size (the overview sends none)
TIMEOUT_S = 5.0


def expected_user() -> users_pb2.User:
    """The user every scenario serves: the demo backends' deterministic seed data."""
    for user in seed().users:
        if user.id == USER_ID:
            return user
    raise LookupError(f"the seed data has no {USER_ID}")


def expected_unread() -> notifications_pb2.CountUnreadResponse:
    """CountUnread of USER_ID over the seed inbox."""
    inbox = [item for item in seed().notifications if item.user_id == USER_ID]
    return notifications_pb2.CountUnreadResponse(unread_count=sum(not n.read for n in inbox))


def expected_overview() -> dashboard_pb2.Overview:
    """The dashboard overview of USER_ID with its three parts (profile, recent orders, unread
    count) and no part errors, as the seeded backends answer it."""
    orders = newest_first(order for order in seed().orders if order.user_id == USER_ID)
    if len(orders) > ORDERS_PAGE:
        raise LookupError(f"the seed gives {USER_ID} more than one page of orders")
    return dashboard_pb2.Overview(
        profile=expected_user(), recent_orders=orders_pb2.ListOrdersResponse(orders=orders),
        unread=expected_unread())


def request_message() -> users_pb2.GetUserRequest:
    return users_pb2.GetUserRequest(id=USER_ID)


def grpc_frame(message: Message) -> bytes:
    """One length-prefixed gRPC message (uncompressed): what h2load posts."""
    data = message.SerializeToString()
    return b"\x00" + len(data).to_bytes(4, "big") + data


def check_rest(url: str, headers: dict[str, str] | None = None,
               expected_reply: Message | None = None) -> None:
    """GET url: 200 and a JSON body equal to MessageToDict(expected_reply), by default
    expected_user()."""
    reply = expected_user() if expected_reply is None else expected_reply
    expected = json_format.MessageToDict(reply)
    what = reply.DESCRIPTOR.full_name
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        raise BenchError(f"GET {url}: HTTP {exc.code}: {exc.read()[:500]!r}") from None
    except OSError as exc:
        raise BenchError(f"GET {url}: {exc}") from None
    if status != 200:
        raise BenchError(f"GET {url}: HTTP {status}, expected 200")
    try:
        got = json.loads(body)
    except ValueError:
        raise BenchError(f"GET {url}: body is not JSON: {body[:500]!r}") from None
    if got != expected:
        raise BenchError(f"GET {url}: body differs from MessageToDict of the expected {what}:\n"
                         f"  got      {got}\n  expected {expected}")


def check_grpc(address: str, frame: bytes) -> int:
    """Call GetUser at address with the payload of `frame`; grpc-status must be 0 and the
    reply the expected User. Returns the DATA bytes of one reply (5-byte prefix included)."""
    with grpc.insecure_channel(address) as channel:
        return 5 + len(get_user(channel, frame[5:], address))


def get_user(channel: grpc.Channel, payload: bytes, where: str,
             metadata: tuple[tuple[str, str], ...] = ()) -> bytes:
    """GetUser on `channel`, bytes in, bytes out; BenchError unless grpc-status is 0 and the
    reply is the seed User."""
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(GRPC_METHOD)
    try:
        reply = call(payload, timeout=TIMEOUT_S, metadata=metadata or None)
    except grpc.RpcError as exc:
        detail = (f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.Call)
                  else str(exc))
        raise BenchError(f"{GRPC_METHOD} at {where}: grpc-status {detail}") from None
    try:
        user = users_pb2.User.FromString(reply)
    except DecodeError:
        raise BenchError(f"{GRPC_METHOD} at {where}: reply is not a User") from None
    if user != expected_user():
        raise BenchError(f"{GRPC_METHOD} at {where}: reply differs from the seed User:\n{user}")
    return reply


def user_bytes() -> bytes:
    """The seed User's reference bytes: serialized deterministically (map entries in key
    order). A Python backend's own bytes differ only in map entry order, which upb takes from
    a per-process hash seed."""
    return expected_user().SerializeToString(deterministic=True)


def check_user_bytes(exact: bool) -> Callable[[str], None]:
    """A backend's start check: GetUser at "HOST:PORT" must answer the reference bytes,
    exactly (the Go backend) or up to map entry order (the Python backend, see user_bytes)."""

    def check(address: str) -> None:
        expected = user_bytes()
        with grpc.insecure_channel(address) as channel:
            reply = get_user(channel, request_message().SerializeToString(), address)
        got = reply if exact else users_pb2.User.FromString(reply).SerializeToString(
            deterministic=True)
        if got != expected or len(reply) != len(expected):
            raise BenchError(f"{GRPC_METHOD} at {address}: the reply's bytes differ from the "
                             f"reference:\n  got      {reply.hex()}\n  expected {expected.hex()}")

    return check


def checked_target(load: Load, address: str, frame: Path, expected: Message) -> Target:
    """The load generator's target for `load` at `address`, once one request passed its check
    (REST: `expected` as JSON; gRPC: the seed User)."""
    if load.tool == "wrk":
        target = Target("wrk", f"http://{address}{load.path}", headers=load.headers)
        check_rest(target.url, dict(load.headers), expected)
        return target
    return Target("h2load", f"http://{address}{load.path}", frame,
                  check_grpc(address, frame.read_bytes()))