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
import re

from gateway.errors import Code, GatewayError

log = logging.getLogger("gateway.errors")

HIDDEN_CODES = frozenset({Code.INTERNAL, Code.UNKNOWN, Code.DATA_LOSS})
MAX_LOGGED = 1024  # characters of the original message kept in the log line

# Credential shapes a backend may echo into an error: bearer/basic values, JWTs, key=value.
_CREDENTIALS = re.compile(
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"
    r"|\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"
    r"|\b(password|passwd|secret|token|api[_-]?key|authorization)\s*[=:]\s*[^\s,;&]+"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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


def scrub(text: str) -> str:
    """`text` with credential-shaped parts replaced and control characters escaped, cut short."""
    cleaned = _CREDENTIALS.sub(_redact, text[: MAX_LOGGED * 2])
    cleaned = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", cleaned)
    return cleaned[:MAX_LOGGED] + ("..." if len(cleaned) > MAX_LOGGED else "")


def _redact(match: re.Match[str]) -> str:
    word = match.group(1) or match.group(2)
    if match.group(1):
        return f"{word} [redacted]"
    if word:
        return f"{word}=[redacted]"
    return "[redacted]"
