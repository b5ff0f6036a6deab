"""Call/Reply values and policy composition: the one calling convention inside. No I/O."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the recorder's type only: call.py stays free of I/O and observability
    from gateway.observability.explain import Explanation

Metadata = tuple[tuple[str, str | bytes], ...]  # lower-case keys; "-bin" keys carry bytes


class Kind(Enum):
    """The four gRPC call shapes: whether requests and replies are streams."""

    UNARY = "unary_unary"
    SERVER_STREAM = "unary_stream"
    CLIENT_STREAM = "stream_unary"
    BIDI_STREAM = "stream_stream"

    @property
    def streams_requests(self) -> bool:
        return self in (Kind.CLIENT_STREAM, Kind.BIDI_STREAM)

    @property
    def streams_replies(self) -> bool:
        return self in (Kind.SERVER_STREAM, Kind.BIDI_STREAM)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as authentication established it."""

    subject: str
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    via: str = "jwt"  # "jwt" | "api_key"
    claims: Metadata = ()  # configured claim -> metadata mappings, already validated


Payload = bytes | AsyncIterator[bytes]  # bytes for unary requests/replies, else a stream


@dataclass(frozen=True, slots=True)
class Call:
    method: str  # "/pkg.Service/Method"
    payload: Payload  # serialized request message(s)
    kind: Kind = Kind.UNARY
    metadata: Metadata = ()
    peer: str = ""  # client address as the edge saw it (ip, without port)
    deadline: float | None = None  # time.monotonic() instant; None = not yet decided
    idempotent: bool = False
    principal: Principal | None = None  # set by authentication
    request_id: str = ""
    edge: str = ""  # "rest" | "grpc": the listener that took the call (labels and logs only)
    # Set by the edge only when the request asked to be explained; every decision point checks
    # `if call.explain is not None` and notes what it decided (gateway/observability/explain.py).
    explain: Explanation | None = None

    def evolve(self, *, metadata: Metadata | None = None, deadline: float | None = None,
               principal: Principal | None = None, request_id: str | None = None) -> Call:
        """A copy with the fields policies change (None: unchanged). dataclasses.replace costs
        three times as much, and every request makes a few of these."""
        return Call(self.method, self.payload, self.kind,
                    self.metadata if metadata is None else metadata, self.peer,
                    self.deadline if deadline is None else deadline, self.idempotent,
                    self.principal if principal is None else principal,
                    self.request_id if request_id is None else request_id, self.edge,
                    self.explain)


class StreamEnd:
    """A reply stream's trailing metadata, known once the stream has ended: the upstream fills
    it, an edge reads it after the last message (the payload iterator itself gets wrapped)."""

    __slots__ = ("trailers",)

    def __init__(self) -> None:
        self.trailers: Metadata = ()


@dataclass(frozen=True, slots=True)
class Reply:
    payload: Payload  # serialized reply message(s)
    metadata: Metadata = ()  # the backend's initial metadata
    trailers: Metadata = ()  # the backend's trailing metadata (unary; streams carry their own)
    backend: str = ""  # which backend answered
    attempts: int = 1
    backend_s: float = 0.0  # time spent waiting on the backend (streams: until it opened)
    stream_end: StreamEnd | None = None  # streams: the backend's trailers once it has ended


Handler = Callable[[Call], Awaitable[Reply]]


class Policy(Protocol):
    async def __call__(self, call: Call, call_next: Handler) -> Reply: ...


Step = Callable[[Call], Call]  # a policy's whole effect as a synchronous rewrite of the call


class StepPolicy:
    """Base of a policy whose whole effect is `step`: chain() runs the step as a plain
    function; called as a Policy, it runs the step, then the rest of the chain."""

    def step(self, call: Call) -> Call:
        raise NotImplementedError

    async def __call__(self, call: Call, call_next: Handler) -> Reply:
        return await call_next(self.step(call))


def chain(policies: Sequence[Policy], terminal: Handler) -> Handler:
    """Compose so that policies[0] runs first and `terminal` runs last.

    Per request this is the hot path, so it is compiled: a policy whose `step` attribute is a
    Step (it only rewrites or refuses the call, under its config) runs as a plain function,
    and consecutive steps share one coroutine; the others are bound with partial, so each
    costs one coroutine frame rather than a wrapper's two. Behaviour is the same either way.
    """
    handler = terminal
    steps: list[Step] = []
    for policy in reversed(policies):
        step: Step | None = getattr(policy, "step", None)
        if step is not None:
            steps.insert(0, step)
            continue
        handler = _with_steps(steps, handler)
        steps = []
        handler = functools.partial(policy, call_next=handler)
    return _with_steps(steps, handler)


def _with_steps(steps: Sequence[Step], call_next: Handler) -> Handler:
    if not steps:
        return call_next
    fused = tuple(steps)

    def several(call: Call) -> Awaitable[Reply]:
        for step in fused:
            call = step(call)
        return call_next(call)

    return several
