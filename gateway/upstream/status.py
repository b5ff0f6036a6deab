"""The one seam where grpc.aio's AioRpcError becomes a gateway error, and which of those are
the backend's fault (they count against the instance and the breaker) or retryable.

grpc reports what its transport saw with the same codes a backend can set, so the two are told
apart by grpc's own wording, which is all it exposes (`details()` and `debug_error_string()`
say the same): errors the client transport makes start with "Stream removed" —
"Stream removed (RST_STREAM (Received RST_STREAM with error code 7))" for a refused stream,
"... error code 2" for a reset, "Stream removed (CLIENT: Received message larger than max ...)"
for a reply over the channel's size limit. A backend that writes that text into its own status
is classified as a transport error; it can only make its own error a 502.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from gateway.call import Metadata
from gateway.errors import (
    BadGateway,
    Code,
    DeadlineExceeded,
    GatewayError,
    Unavailable,
    UpstreamError,
)

DETAILS_KEY = "grpc-status-details-bin"
TRANSPORT_PREFIX = "Stream removed"  # chttp2: the call's stream was cut by the transport
REFUSED = "Received RST_STREAM with error code 7"  # HTTP/2 REFUSED_STREAM (RFC 9113 8.7)
TOO_LARGE = "Received message larger than max"  # grpc.max_receive_message_length

# Faults of the backend (Envoy's 5xx / gateway failures); caller errors (INVALID_ARGUMENT,
# NOT_FOUND, PERMISSION_DENIED, ...) never eject an instance or open a breaker (T-05).
FAULT_CODES = frozenset({Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.INTERNAL, Code.UNKNOWN})


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt: the error the client would see, and what it says about the backend."""

    error: GatewayError
    trailers: Metadata  # the backend's trailing metadata (pushback lives here)
    transport: bool  # no reply from the backend's application: refused, reset, unreachable
    refused: bool = False  # REFUSED_STREAM: the backend never processed it; safe to repeat

    @property
    def fault(self) -> bool:
        return self.error.code in FAULT_CODES


class BackendFailed(Exception):
    """An attempt failed at the backend; the upstream unwraps it to `failure.error`."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.error.message)
        self.failure = failure


def classify(exc: grpc.aio.AioRpcError, backend: str) -> Failure:
    """Keep the backend's code, message, google.rpc.Status details and trailers."""
    code = Code(exc.code().value[0])
    trailers = to_metadata(exc.trailing_metadata())
    transport = not trailers and not exc.initial_metadata()
    details = exc.details() or ""
    if transport and details.startswith(TRANSPORT_PREFIX):
        refused = code is Code.UNAVAILABLE and REFUSED in details
        broken = _broken(details, code, backend)
        if broken is not None:
            return Failure(broken, trailers, transport)
        return Failure(_error(exc, code, trailers, transport, backend), trailers, transport,
                       refused)
    return Failure(_error(exc, code, trailers, transport, backend), trailers, transport)


def _broken(details: str, code: Code, backend: str) -> GatewayError | None:
    """The transport cut a call the backend had started (502), or None for UNAVAILABLE and
    DEADLINE_EXCEEDED, which keep their meaning (the backend is down, time ran out)."""
    if TOO_LARGE in details:
        return BadGateway(f"the reply of backend {backend!r} exceeds the gateway's reply size "
                          "limit", Code.RESOURCE_EXHAUSTED)
    if code in (Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED):
        return None
    # "Stream removed (RST_STREAM (Received RST_STREAM with error code 2))": grpc's own words,
    # no backend text in them
    return BadGateway(f"backend {backend!r} broke off the call: {details[:200]}", code)


def to_metadata(metadata: object) -> Metadata:
    """grpc.aio.Metadata (or None) as the gateway's plain tuple of pairs."""
    if not metadata:
        return ()
    return tuple((str(k), v) for k, v in metadata)  # type: ignore[attr-defined]


def _error(exc: grpc.aio.AioRpcError, code: Code, trailers: Metadata, transport: bool,
           backend: str) -> GatewayError:
    message = exc.details() or code.name
    if code is Code.UNAVAILABLE and transport:
        # connection refused / reset: name the backend, not grpc's C-core wording
        return Unavailable(f"backend {backend!r} is unavailable: {message}")
    if code is Code.DEADLINE_EXCEEDED and not trailers:
        return DeadlineExceeded(f"deadline exceeded waiting for backend {backend!r}")
    details: tuple[bytes, ...] = ()
    for key, value in trailers:
        if key == DETAILS_KEY and isinstance(value, bytes):
            details = _status_details(value)
    kept = tuple((k, v) for k, v in trailers if k != DETAILS_KEY)
    error = UpstreamError(message, code, details, kept)
    error.headers = to_metadata(exc.initial_metadata())  # sent before the failure, if any
    return error


def _status_details(blob: bytes) -> tuple[bytes, ...]:
    try:
        status = status_pb2.Status.FromString(blob)
    except DecodeError:  # a garbled details blob must not hide the status itself
        return ()
    return tuple(detail.SerializeToString() for detail in status.details)
