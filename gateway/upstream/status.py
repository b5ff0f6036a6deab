"""The one seam where grpc.aio's AioRpcError becomes a gateway error, and which of those are
the backend's fault (they count against the instance and the breaker) or retryable."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from gateway.call import Metadata
from gateway.errors import Code, DeadlineExceeded, GatewayError, Unavailable, UpstreamError

DETAILS_KEY = "grpc-status-details-bin"

# Faults of the backend (Envoy's 5xx / gateway failures); caller errors (INVALID_ARGUMENT,
# NOT_FOUND, PERMISSION_DENIED, ...) never eject an instance or open a breaker (T-05).
FAULT_CODES = frozenset({Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.INTERNAL, Code.UNKNOWN})


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt: the error the client would see, and what it says about the backend."""

    error: GatewayError
    trailers: Metadata  # the backend's trailing metadata (pushback lives here)
    transport: bool  # no reply from the backend's application: refused, reset, unreachable

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
    return Failure(_error(exc, code, trailers, transport, backend), trailers, transport)


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
