"""The one seam where grpc.aio's AioRpcError becomes the gateway's UpstreamError."""

from __future__ import annotations

import grpc
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from gateway.call import Metadata
from gateway.errors import Code, DeadlineExceeded, GatewayError, Unavailable, UpstreamError

DETAILS_KEY = "grpc-status-details-bin"


def from_rpc_error(exc: grpc.aio.AioRpcError, backend: str) -> GatewayError:
    """Keep the backend's code, message, google.rpc.Status details and trailers."""
    code = Code(exc.code().value[0])
    trailers = to_metadata(exc.trailing_metadata())
    details: tuple[bytes, ...] = ()
    for key, value in trailers:
        if key == DETAILS_KEY and isinstance(value, bytes):
            details = _status_details(value)
    message = exc.details() or code.name
    if code is Code.UNAVAILABLE and _is_transport_failure(exc):
        # connection refused / reset: name the backend, not grpc's C-core wording
        return Unavailable(f"backend {backend!r} is unavailable: {message}")
    if code is Code.DEADLINE_EXCEEDED and not trailers:
        return DeadlineExceeded(f"deadline exceeded waiting for backend {backend!r}")
    kept = tuple((k, v) for k, v in trailers if k != DETAILS_KEY)
    return UpstreamError(message, code, details, kept)


def to_metadata(metadata: object) -> Metadata:
    """grpc.aio.Metadata (or None) as the gateway's plain tuple of pairs."""
    if not metadata:
        return ()
    return tuple((str(k), v) for k, v in metadata)  # type: ignore[attr-defined]


def _status_details(blob: bytes) -> tuple[bytes, ...]:
    try:
        status = status_pb2.Status.FromString(blob)
    except DecodeError:  # a garbled details blob must not hide the status itself
        return ()
    return tuple(detail.SerializeToString() for detail in status.details)


def _is_transport_failure(exc: grpc.aio.AioRpcError) -> bool:
    return not exc.trailing_metadata() and not exc.initial_metadata()
