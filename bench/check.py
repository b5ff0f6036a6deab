"""The check run before a scenario is loaded: one request must succeed (HTTP 200 or
grpc-status 0) and return seed user u-1001 (REST: JSON equal to MessageToDict of it).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from bench.procs import BenchError
from services.seed import seed
from users.v1 import users_pb2

USER_ID = "u-1001"
REST_PATH = f"/v1/users/{USER_ID}"
GRPC_METHOD = "/users.v1.Users/GetUser"
TIMEOUT_S = 5.0


def expected_user() -> users_pb2.User:
    """The user every scenario serves: the demo backends' deterministic seed data."""
    for user in seed().users:
        if user.id == USER_ID:
            return user
    raise LookupError(f"the seed data has no {USER_ID}")


def request_message() -> users_pb2.GetUserRequest:
    return users_pb2.GetUserRequest(id=USER_ID)


def grpc_frame(message: Message) -> bytes:
    """One length-prefixed gRPC message (uncompressed): what h2load posts."""
    data = message.SerializeToString()
    return b"\x00" + len(data).to_bytes(4, "big") + data


def check_rest(url: str, headers: dict[str, str] | None = None) -> None:
    """GET url: 200 and a JSON body equal to MessageToDict(expected_user())."""
    expected = json_format.MessageToDict(expected_user())
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
        raise BenchError(f"GET {url}: body differs from MessageToDict of the User:\n"
                         f"  got      {got}\n  expected {expected}")


def check_grpc(address: str, frame: bytes) -> int:
    """Call GetUser at address with the payload of `frame`; grpc-status must be 0 and the
    reply the expected User. Returns the DATA bytes of one reply (5-byte prefix included)."""
    with grpc.insecure_channel(address) as channel:
        # no serializers: bytes in, bytes out
        get_user: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(GRPC_METHOD)
        try:
            reply = get_user(frame[5:], timeout=TIMEOUT_S)
        except grpc.RpcError as exc:
            detail = (f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.Call)
                      else str(exc))
            raise BenchError(f"{GRPC_METHOD} at {address}: grpc-status {detail}") from None
    try:
        user = users_pb2.User.FromString(reply)
    except DecodeError:
        raise BenchError(f"{GRPC_METHOD} at {address}: reply is not a User") from None
    if user != expected_user():
        raise BenchError(f"{GRPC_METHOD} at {address}: reply differs from the seed User:\n"
                         f"{user}")
    return 5 + len(reply)
