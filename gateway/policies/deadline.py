"""Deadlines: parse the client's timeout strictly, then clamp it to the method's configured one."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping

from gateway.call import Call, Kind, StepPolicy
from gateway.errors import DeadlineExceeded, InvalidArgument

# PROTOCOL-HTTP2: TimeoutValue is at most 8 ASCII digits; TimeoutUnit one of H M S m u n.
_GRPC_TIMEOUT = re.compile(r"([0-9]{1,8})([HMSmun])")
_UNIT_SECONDS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_X_TIMEOUT = re.compile(r"[0-9]{1,9}")  # integer milliseconds, for browsers


def parse_grpc_timeout(text: str) -> float:
    """`Grpc-Timeout` ("500m", "10S") in seconds; anything else is INVALID_ARGUMENT (T-18).

    >>> parse_grpc_timeout("1500m")
    1.5
    """
    found = _GRPC_TIMEOUT.fullmatch(text)
    if found is None:
        raise InvalidArgument(
            f"invalid grpc-timeout {text[:32]!r}: want 1-8 digits and a unit of H, M, S, m, u, n"
        )
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2)]


def parse_x_timeout(text: str) -> float:
    """`X-Timeout` as integer milliseconds, in seconds."""
    if _X_TIMEOUT.fullmatch(text) is None:
        raise InvalidArgument(f"invalid x-timeout {text[:32]!r}: want integer milliseconds")
    return int(text) / 1000.0


class Deadline(StepPolicy):
    """Every unary call leaves with a deadline: the least of the client's and the method's
    timeout (T-16); only a backend configured with default_deadline: false sees unary calls
    without one when the client set none. A stream keeps the client's deadline, capped by its
    backend's stream timeout when one is set (none by default): the unary timeout never cuts a
    stream short."""

    def __init__(self, timeout_s: Mapping[str, float], default_s: float = 15.0,
                 clock: Callable[[], float] = time.monotonic,
                 stream_timeout_s: Mapping[str, float | None] | None = None,
                 open_ended: frozenset[str] = frozenset()) -> None:
        self._timeout_s = timeout_s  # proto service full name -> seconds
        self._default_s = default_s
        self._clock = clock
        self._stream_timeout_s = stream_timeout_s or {}  # service -> seconds, None: no cap
        self._open_ended = open_ended  # services whose backend has default_deadline: false

    def step(self, call: Call) -> Call:
        service = call.method[1:].partition("/")[0]
        now = self._clock()
        limit: float | None
        if call.kind is not Kind.UNARY:
            limit = self._stream_timeout_s.get(service)
        elif call.deadline is None and service in self._open_ended:
            limit = None  # no client deadline, and the backend is to see none either
        else:
            limit = self._timeout_s.get(service, self._default_s)
        configured: float | None = None
        if limit is None:  # no cap applies: the client's deadline, if any
            deadline = call.deadline
            if deadline is None:
                if call.explain is not None:
                    call.explain.deadline(now, None, None, None)
                return call
        else:
            configured = now + limit
            deadline = configured if call.deadline is None else min(call.deadline, configured)
        if call.explain is not None:
            call.explain.deadline(now, call.deadline, configured, deadline)
        if deadline <= now:
            raise DeadlineExceeded(f"deadline exceeded before calling {call.method}")
        return call.evolve(deadline=deadline)
