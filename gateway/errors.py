"""Every failure a client can see: its google.rpc.Code and its HTTP status. Stdlib only.

    GatewayError                  (code, message, details; rendered once per edge)
      InvalidArgument             400  bad JSON, wrong type, bad path/query value, bad timeout
      NotFound                    404  no route for the path
      MethodNotAllowed            405  the path exists, the HTTP method does not
      PayloadTooLarge             413  body over the configured maximum
      UnsupportedMediaType        415  body content type the route cannot read
      Unauthenticated             401  missing or invalid credential
      PermissionDenied            403  valid credential, missing role or scope
      RateLimited                 429  over the limit (carries retry_after_s)
      DeadlineExceeded            504  the call's deadline passed
      Unavailable                 503  no healthy instance, breaker open, issuer keys never fetched
      Unimplemented               501  no backend serves the service
      UpstreamError               the backend's own status, passed through unchanged
      BadGateway                  502  the backend's answer is unusable: not the declared type,
                                       over transcoding.max_reply_bytes, reset after it started
    ConfigError                   bad configuration at start or reload; never reaches a client
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from types import MappingProxyType
from typing import Final


class Code(IntEnum):
    """google.rpc.Code; the same numbers as grpc.StatusCode."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# google/rpc/code.proto's own HTTP mapping, which grpc-gateway and Envoy follow.
HTTP_STATUS: Final = MappingProxyType({
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,  # deliberately not 412, as code.proto and grpc-gateway
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
})


class GatewayError(Exception):
    """A failure with a gRPC code; `details` are serialized google.protobuf.Any messages."""

    code: Code = Code.INTERNAL
    status_override: int | None = None  # an HTTP status that differs from HTTP_STATUS[code]
    attempts: int = 1  # backend attempts made before this error (set by the upstream)
    backend: str = ""  # the backend the failed call went to; "" if it never left the gateway
    backend_s: float = 0.0  # time spent on that backend

    def __init__(self, message: str, details: Sequence[bytes] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = tuple(details)

    @property
    def http_status(self) -> int:
        return self.status_override or HTTP_STATUS[self.code]


class InvalidArgument(GatewayError):
    code = Code.INVALID_ARGUMENT


class NotFound(GatewayError):
    code = Code.NOT_FOUND


class MethodNotAllowed(GatewayError):
    """The path matched a route, the HTTP method did not (405, with Allow)."""

    code = Code.UNIMPLEMENTED
    status_override = 405

    def __init__(self, message: str, allowed: Sequence[str]) -> None:
        super().__init__(message)
        self.allowed = tuple(allowed)


class PayloadTooLarge(GatewayError):
    code = Code.RESOURCE_EXHAUSTED
    status_override = 413


class UnsupportedMediaType(GatewayError):
    code = Code.INVALID_ARGUMENT
    status_override = 415


class Unauthenticated(GatewayError):
    """`www_authenticate` is the challenge the REST edge sends as `WWW-Authenticate` (RFC 6750)."""

    code = Code.UNAUTHENTICATED

    def __init__(self, message: str, details: Sequence[bytes] = (), *,
                 www_authenticate: str | None = None) -> None:
        super().__init__(message, details)
        self.www_authenticate = www_authenticate


class PermissionDenied(GatewayError):
    code = Code.PERMISSION_DENIED


class RateLimited(GatewayError):
    """Over a limit; the fields let each edge render Retry-After / RateLimit or retry pushback."""

    code = Code.RESOURCE_EXHAUSTED

    def __init__(
        self,
        message: str,
        retry_after_s: float,
        *,
        limit: int = 0,  # the quota (bucket size)
        remaining: int = 0,
        reset_s: float = 0.0,  # until the quota is whole again
        window_s: float = 0.0,  # the policy window: how long the quota takes to refill
        policy: str = "",  # the policy's name in RateLimit-Policy / RateLimit
        details: Sequence[bytes] = (),
    ) -> None:
        super().__init__(message, details)
        self.retry_after_s = retry_after_s
        self.limit = limit
        self.remaining = remaining
        self.reset_s = reset_s
        self.window_s = window_s
        self.policy = policy


class DeadlineExceeded(GatewayError):
    code = Code.DEADLINE_EXCEEDED


class Unavailable(GatewayError):
    """`retry_after_s`, when known, goes out as Retry-After (REST) / retry pushback (gRPC)."""

    code = Code.UNAVAILABLE

    def __init__(self, message: str, details: Sequence[bytes] = (), *,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message, details)
        self.retry_after_s = retry_after_s


class Unimplemented(GatewayError):
    code = Code.UNIMPLEMENTED


class UpstreamError(GatewayError):
    """A backend answered with a non-OK status; its code, message and details pass through."""

    def __init__(
        self,
        message: str,
        code: Code,
        details: Sequence[bytes] = (),
        trailers: tuple[tuple[str, str | bytes], ...] = (),
    ) -> None:
        super().__init__(message, details)
        self.code = code
        self.trailers = trailers
        self.headers: tuple[tuple[str, str | bytes], ...] = ()  # initial metadata, if any


class BadGateway(GatewayError):
    """The backend answered, but not with something the gateway can pass on (502 on REST).

    `code` is what the gRPC edge says: INTERNAL for a reset or a reply that is not the declared
    type, RESOURCE_EXHAUSTED for a reply over the size limit (grpc's own code for that)."""

    status_override = 502

    def __init__(self, message: str, code: Code = Code.INTERNAL) -> None:
        super().__init__(message)
        self.code = code


class HttpError(GatewayError):
    """An HTTP-level refusal from the web framework itself (e.g. a CORS preflight), re-shaped."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status_override = status
        self.code = next((c for c, s in HTTP_STATUS.items() if s == status),
                         Code.INVALID_ARGUMENT if status < 500 else Code.INTERNAL)


class ConfigError(Exception):
    """Bad configuration, found at start or reload. Never reaches a client."""
