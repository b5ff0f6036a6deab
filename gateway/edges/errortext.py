"""What a client is told of an INTERNAL, UNKNOWN or DATA_LOSS error (issue 11, class 2).

Those codes say "something broke inside", and their messages are where a backend's traceback,
database host or SQL ends up. Under `error_messages: generic` (the REST edge's default) the
client gets a fixed sentence carrying the request id, no google.rpc.Status details (DebugInfo
carries stack traces), and the original goes to the `gateway.errors` log, scrubbed of anything
shaped like a credential, so an operator can find it by the request id. Other codes are the
backend's answer to the caller (NOT_FOUND "user u-9 not found") and pass through.
"""

from __future__ import annotations

import logging

from gateway.errors import Code, GatewayError
from gateway.scrub import scrub

log = logging.getLogger("gateway.errors")

HIDDEN_CODES = frozenset({Code.INTERNAL, Code.UNKNOWN, Code.DATA_LOSS})


def hides(exc: GatewayError, mode: str) -> bool:
    return mode == "generic" and exc.code in HIDDEN_CODES


def generic_message(exc: GatewayError, request_id: str) -> str:
    """The sentence a client gets instead; says whose fault it was, never what happened."""
    what = ("the backend's answer could not be used" if exc.http_status == 502
            else "internal error")
    return f"{what} (request id {request_id})" if request_id else what


def log_hidden(exc: GatewayError, request_id: str, edge: str) -> None:
    """The original message, for the operator: one line, credentials and control chars out."""
    log.warning("%s edge: %s message hidden from the client, request id %s, backend %r: %s",
                edge, exc.code.name, request_id or "-", exc.backend or "-",
                scrub(exc.message))

