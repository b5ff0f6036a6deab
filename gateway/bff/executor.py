"""The pipeline's terminal: an aggregate method runs its parts as a DAG of upstream calls (each as
soon as the parts it reads from are done), every other call goes straight to the upstream."""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message

from gateway.bff.spec import AggregatePlan, Constant, FromIdentity, FromPart, FromRequest, PartPlan
from gateway.bff.values import assign, distinct, read
from gateway.call import Call, Handler, Kind, Reply
from gateway.errors import Code, DeadlineExceeded, GatewayError, InvalidArgument, Unauthenticated

# Kept back from the aggregate's deadline for every part, so that an optional part that runs out
# of time is reported in a reply that still reaches the client before its own timer fires: a
# share of the time the aggregate has, at least RESERVE_S and at most RESERVE_MAX_S. A fixed
# 5 ms was less than a loaded host takes to get the reply from here to a gRPC client, whose
# own deadline then fired first: it saw a bare DEADLINE_EXCEEDED, not the parts that finished.
RESERVE_S = 0.005
RESERVE_SHARE = 0.1
RESERVE_MAX_S = 0.25
_T = TypeVar("_T")


def reserve_s(budget_s: float) -> float:
    """What the parts leave of an aggregate's `budget_s` seconds for the reply to get out."""
    return min(max(RESERVE_S, RESERVE_SHARE * budget_s), RESERVE_MAX_S)


class PartRefused(GatewayError):
    """The gateway could not make (or read) a part's call: fan-out over max_calls, bad reply."""

    def __init__(self, message: str, code: Code) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class PartFailure:
    part: str
    code: Code
    message: str


class Aggregates:
    """Serves the aggregate methods of `plans`; forwards every other call to `upstream`.

    Each part is a call to `parts` (default: `upstream`); the runtime puts the authorization
    of the part's own method in front, so an aggregate never reaches what its caller may not.
    """

    def __init__(self, plans: Mapping[str, AggregatePlan], upstream: Handler,
                 clock: Callable[[], float] = time.monotonic, parts: Handler | None = None
                 ) -> None:
        self._plans = plans
        self._upstream = upstream
        self._parts = parts or upstream
        self._clock = clock

    async def __call__(self, call: Call) -> Reply:
        plan = self._plans.get(call.method)
        if plan is None:
            return await self._upstream(call)
        return await run_aggregate(plan, call, self._parts, self._clock)


async def run_aggregate(plan: AggregatePlan, call: Call, upstream: Handler,
                        clock: Callable[[], float] = time.monotonic) -> Reply:
    """Run every part and build the reply; a required part's failure is the call's failure."""
    if not isinstance(call.payload, bytes):
        raise InvalidArgument(f"{plan.method} takes one request message, not a stream")
    request = _decode(plan.request_class, call.payload, f"a {plan.method} request",
                      InvalidArgument)
    now = clock()
    deadline = call.deadline
    if plan.timeout_s is not None:
        deadline = min(deadline or math.inf, now + plan.timeout_s)
    if deadline is not None and deadline <= now:
        raise DeadlineExceeded(f"deadline exceeded running aggregate {plan.method}")
    parts_until = None if deadline is None else deadline - reserve_s(deadline - now)
    run = _Run(plan, call, request, upstream, parts_until, clock)
    await run.all()
    return Reply(run.reply().SerializeToString())


class _Run:
    """One aggregate call in progress: the parts' replies and failures so far."""

    def __init__(self, plan: AggregatePlan, call: Call, request: Message, upstream: Handler,
                 deadline: float | None, clock: Callable[[], float]) -> None:
        self._plan = plan
        self._call = call
        self._request = request
        self._upstream = upstream
        self._deadline = math.inf if deadline is None else deadline  # reserve already off
        self._clock = clock
        self._slots = asyncio.Semaphore(plan.max_parallel)
        self._replies: dict[str, list[Message]] = {}
        self._failures: dict[str, PartFailure] = {}

    async def all(self) -> None:
        """Start each part once its dependencies are settled; the first required failure
        cancels the parts still running and is raised."""
        waiting = list(self._plan.parts)
        running: dict[asyncio.Task[list[Message]], PartPlan] = {}
        try:
            while waiting or running:
                for part in self._ready(waiting):
                    running[asyncio.create_task(self._part(part))] = part
                if not running:
                    continue  # parts skipped for a failed dependency may have freed others
                left = self._deadline - self._clock()
                done, _ = await asyncio.wait(
                    running, timeout=None if left == math.inf else max(left, 0.0),
                    return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    self._settle(running.pop(task), task)
                if not done:
                    await self._out_of_time(running)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _out_of_time(self, running: dict[asyncio.Task[list[Message]], PartPlan]) -> None:
        """The aggregate's deadline (less RESERVE_S) passed with these parts running: each
        ends as if its own timer had fired. This is the one place the aggregate's deadline is
        decided, so a late event loop (a loaded host) that makes the parts' timers and this
        wait come due together still reports optional parts as DEADLINE_EXCEEDED in a reply,
        and a required one by name, never a bare aggregate failure that depends on which timer
        ran first."""
        timed_out = list(running.items())
        running.clear()
        for task, _ in timed_out:
            task.cancel()
        await asyncio.gather(*(task for task, _ in timed_out), return_exceptions=True)
        for task, part in timed_out:
            if not task.cancelled():  # it ended on its own while being cancelled: that counts
                self._settle(part, task)
                continue
            error = DeadlineExceeded(f"part {part.name!r} ({part.method}) ran out of time")
            if part.required:
                raise error
            self._failures[part.name] = PartFailure(part.name, error.code, error.message)

    def _ready(self, waiting: list[PartPlan]) -> list[PartPlan]:
        settled = self._replies.keys() | self._failures.keys()
        ready = [part for part in waiting if settled.issuperset(part.depends_on)]
        for part in ready:
            waiting.remove(part)
        startable = []
        for part in ready:
            failed = next((self._failures[d] for d in part.depends_on if d in self._failures),
                          None)
            if failed is None:
                startable.append(part)
            else:  # only optional parts get here: a required one never reads an optional one
                self._failures[part.name] = PartFailure(
                    part.name, failed.code, f"not called: part {failed.part!r} failed")
        return startable

    def _settle(self, part: PartPlan, task: asyncio.Task[list[Message]]) -> None:
        error = task.exception()
        if self._call.explain is not None:
            self._call.explain.part(part.name, part.method, part.required, error)
        if error is None:
            self._replies[part.name] = task.result()
        elif isinstance(error, GatewayError) and not part.required:
            self._failures[part.name] = PartFailure(part.name, error.code, error.message)
        else:
            raise error

    async def _part(self, part: PartPlan) -> list[Message]:
        payloads = self._payloads(part)
        if not part.fan_out:
            return [await self._forward(part, payloads[0])]
        return await _all_or_none([self._forward(part, payload) for payload in payloads])

    def _payloads(self, part: PartPlan) -> list[bytes]:
        request = part.request_class()
        spread: list[Any] | None = None
        for binding in part.bindings:
            values = self._values(part, binding.source)
            if binding.spread:
                spread = distinct(values)
            else:
                assign(request, binding.target, values)
        if spread is None:
            return [request.SerializeToString()]
        if len(spread) > part.max_calls:
            # The request asks for too much (400 / INVALID_ARGUMENT); no quota ran out, so it
            # is not RESOURCE_EXHAUSTED (429), which tells a client to come back later.
            raise PartRefused(f"part {part.name!r} would make {len(spread)} calls, more than "
                              f"its max_calls of {part.max_calls}", Code.INVALID_ARGUMENT)
        target = next(binding.target for binding in part.bindings if binding.spread)
        payloads = []
        for value in spread:
            one = part.request_class()
            one.CopyFrom(request)
            assign(one, target, [value])
            payloads.append(one.SerializeToString())
        return payloads

    def _values(self, part: PartPlan, source: object) -> list[Any]:
        match source:
            case Constant(value):
                return [value]
            case FromRequest(path):
                return read(self._request, path)
            case FromIdentity():
                if self._call.principal is None:
                    raise Unauthenticated(
                        f"part {part.name!r} of {self._plan.method} needs the caller's identity")
                return [self._call.principal.subject]
            case FromPart(name, path):
                return [value for reply in self._replies[name] for value in read(reply, path)]
        raise TypeError(f"unknown source {source!r}")

    async def _forward(self, part: PartPlan, payload: bytes) -> Message:
        async with self._slots:
            now = self._clock()
            deadline = min(self._deadline, now + part.timeout_s)
            call = Call(
                method=part.method,
                payload=payload,
                kind=Kind.UNARY,
                metadata=self._call.metadata,  # request id and identity, as the chain left them
                peer=self._call.peer,
                deadline=None if deadline == math.inf else deadline,
                idempotent=part.idempotent,
                principal=self._call.principal,
                request_id=self._call.request_id,
                explain=self._call.explain,
            )
            reply = await _within(deadline - now, functools.partial(self._upstream, call),
                                  f"part {part.name!r} ({part.method}) ran out of time")
        assert isinstance(reply.payload, bytes)  # a unary call's reply
        return _decode(part.reply_class, reply.payload, f"the reply of {part.method}",
                       lambda message: PartRefused(message, Code.INTERNAL))

    def reply(self) -> Message:
        reply = self._plan.reply_class()
        for part in self._plan.parts:
            replies = self._replies.get(part.name)
            if replies is not None and part.fan_out:
                getattr(reply, part.name).extend(replies)
            elif replies is not None:
                getattr(reply, part.name).CopyFrom(replies[0])
        errors_field = self._plan.errors_field
        if errors_field is not None:
            for part in self._plan.parts:  # in plan order, so the list does not depend on timing
                failure = self._failures.get(part.name)
                if failure is not None:
                    entry = getattr(reply, errors_field).add(part=failure.part,
                                                             code=int(failure.code))
                    if "message" in entry.DESCRIPTOR.fields_by_name:
                        entry.message = failure.message
        return reply


async def _within(seconds: float, work: Callable[[], Awaitable[_T]], what: str) -> _T:
    """Run `work`; cancel it and raise DEADLINE_EXCEEDED when `seconds` pass first (inf: none)."""
    if seconds <= 0:
        raise DeadlineExceeded(what)
    try:
        async with asyncio.timeout(None if seconds == math.inf else seconds) as scope:
            return await work()
    except TimeoutError:
        if not scope.expired():
            raise
        raise DeadlineExceeded(what) from None


async def _all_or_none(calls: Sequence[Coroutine[Any, Any, _T]]) -> list[_T]:
    """Every result, or the first failure after the other calls are cancelled."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


def _decode(cls: type[Message], payload: bytes, what: str,
            error: Callable[[str], GatewayError]) -> Message:
    try:
        return cls.FromString(payload)
    except DecodeError:
        raise error(f"{what} is not a valid {cls.DESCRIPTOR.full_name}") from None
