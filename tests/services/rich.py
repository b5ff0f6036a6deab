"""Read the google.rpc.Status a backend sent in grpc-status-details-bin."""

from __future__ import annotations

from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

M = TypeVar("M", bound=Message)


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    """The error the awaited call fails with."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def message(error: grpc.aio.AioRpcError) -> str:
    return error.details() or ""


def status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    status = rpc_status.from_call(error)  # also checks code and message agree with the call's
    assert status is not None, "no grpc-status-details-bin trailer"
    assert isinstance(status, status_pb2.Status)
    return status


def detail(error: grpc.aio.AioRpcError, kind: type[M]) -> M:
    """The one detail of type `kind`."""
    found = [d for d in status_of(error).details if d.Is(kind.DESCRIPTOR)]
    assert len(found) == 1, f"expected one {kind.__name__}, got {status_of(error).details}"
    message = kind()
    found[0].Unpack(message)
    return message


def violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    bad = detail(error, error_details_pb2.BadRequest)
    return [violation.field for violation in bad.field_violations]
