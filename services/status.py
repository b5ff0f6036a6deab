"""Rich errors of the demo backends: RpcFailure carries a google.rpc.Status with details,
and `guard` turns it (or any unexpected exception) into the call's status. No servicer logic.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import grpc
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]


class RpcFailure(Exception):
    """Raised by a servicer to end the call with `status` (a google.rpc.Status)."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status

    @property
    def code(self) -> grpc.StatusCode:
        return _GRPC_CODES[self.status.code]


_GRPC_CODES: Mapping[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}


def failure(code: int, message: str, *details: Message) -> RpcFailure:
    status = status_pb2.Status(code=code, message=message)
    for detail in details:
        status.details.add().Pack(detail)
    return RpcFailure(status)


def invalid_argument(*violations: tuple[str, str]) -> RpcFailure:
    """INVALID_ARGUMENT with one google.rpc.BadRequest field violation per (field, why)."""
    message = "; ".join(f"{field}: {why}" for field, why in violations)
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=why)
            for field, why in violations
        ]
    )
    return failure(code_pb2.INVALID_ARGUMENT, message, bad)


def not_found(kind: str, name: str, resource_type: str) -> RpcFailure:
    """NOT_FOUND naming the missing resource: 'user "u-9" not found'."""
    message = f'{kind} "{name}" not found'
    info = error_details_pb2.ResourceInfo(
        resource_type=resource_type, resource_name=name, description=message
    )
    return failure(code_pb2.NOT_FOUND, message, info)


def already_exists(message: str, resource_type: str, name: str, reason: str,
                   domain: str) -> RpcFailure:
    return failure(
        code_pb2.ALREADY_EXISTS,
        message,
        error_details_pb2.ResourceInfo(
            resource_type=resource_type, resource_name=name, description=message
        ),
        error_details_pb2.ErrorInfo(reason=reason, domain=domain),
    )


def failed_precondition(message: str, subject: str, reason: str, domain: str) -> RpcFailure:
    violation = error_details_pb2.PreconditionFailure.Violation(
        type="STATE", subject=subject, description=message
    )
    return failure(
        code_pb2.FAILED_PRECONDITION,
        message,
        error_details_pb2.PreconditionFailure(violations=[violation]),
        error_details_pb2.ErrorInfo(reason=reason, domain=domain),
    )


def require(value: str, field: str) -> str:
    """The value of a required string field, or INVALID_ARGUMENT naming it."""
    if not value:
        raise invalid_argument((field, "is required"))
    return value


@asynccontextmanager
async def guard(context: Context, method: str) -> AsyncIterator[None]:
    """End the call with the RpcFailure's status; hide anything unexpected behind INTERNAL."""
    try:
        yield
    except RpcFailure as exc:
        await context.abort_with_status(rpc_status.to_status(exc.status))
    except grpc.aio.AbortError:
        raise
    except Exception:
        # the client sees a generic message; the traceback stays in the server log
        log.exception("unhandled error in %s", method)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")
