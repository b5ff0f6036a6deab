"""Request IDs (T-32): keep a well-formed incoming x-request-id, else mint one; send it on."""

from __future__ import annotations

import itertools
import re
import secrets

from gateway.call import Call, Metadata, StepPolicy

HEADER = "x-request-id"
_WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{1,64}")
# A random per-process prefix and a counter: unique across processes and restarts, and far
# cheaper per request than a UUID4 (which reads the OS random source each time).
_PREFIX = secrets.token_hex(8)
_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):016x}"


def request_id_from(metadata: Metadata) -> str:
    """The client's id when exactly one well-formed one was sent, else a fresh one."""
    sent = [value for key, value in metadata if key == HEADER]
    if len(sent) == 1 and isinstance(sent[0], str) and _WELL_FORMED.fullmatch(sent[0]):
        return sent[0]
    return new_request_id()


class PropagateRequestId(StepPolicy):
    """Every backend call carries exactly one x-request-id: the one the edge put on the Call."""

    def step(self, call: Call) -> Call:
        request_id = call.request_id or request_id_from(call.metadata)
        metadata = tuple((k, v) for k, v in call.metadata if k != HEADER)
        return call.evolve(request_id=request_id, metadata=(*metadata, (HEADER, request_id)))
