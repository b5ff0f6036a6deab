"""Fault injection and call recording for every demo backend, driven by tests at runtime.

Faults is applied around each handler by the backend's interceptor (services.server): per
method it can delay, fail (always or the next N calls) or hang until cancelled, and it records
each call (metadata, deadline left, request, cancellation) with events tests can await.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import grpc
from google.protobuf.message import Message

from services.status import Context

Metadata = dict[str, list[str | bytes]]
_HEALTH = "/grpc.health.v1."


def metadata_of(context: Context) -> Metadata:
    """Invocation metadata as key -> values in arrival order ("-bin" values are bytes)."""
    found: Metadata = {}
    for key, value in context.invocation_metadata() or ():
        found.setdefault(key, []).append(value)
    return found


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to calls of one method: wait delay_s, then hang, or fail with code."""

    delay_s: float = 0.0
    code: grpc.StatusCode | None = None
    message: str = "injected fault"
    times: int | None = None  # None: every call; N: the next N calls, then the fault is gone
    hang: bool = False  # never answer; the call ends only when the client cancels or times out

    def __post_init__(self) -> None:
        if self.times is not None and self.times < 1:
            raise ValueError(f"times must be None or at least 1, got {self.times}")
        if self.code is grpc.StatusCode.OK:
            raise ValueError("code must be an error code")


@dataclass(frozen=True, slots=True, eq=False)
class CallRecord:
    """One call as the backend saw it. The events let tests wait without sleeping."""

    method: str  # "/users.v1.Users/GetUser"
    metadata: Metadata
    time_remaining: float | None  # seconds left of the client's deadline at arrival; None: none
    request: Message | None  # the request message; None for client-streaming calls
    started_at: float  # time.monotonic()
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)  # client cancel or deadline
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # however the call ended


class Faults:
    """Per-backend fault table and call log. Method names are "/pkg.Service/Method"."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}
        self._calls: list[CallRecord] = []
        self._changed = asyncio.Condition()

    def set(self, method: str, fault: Fault) -> None:
        self._faults[_full(method)] = fault

    def clear(self, method: str | None = None) -> None:
        """Remove one method's fault, or every fault; the call log is kept."""
        if method is None:
            self._faults.clear()
        else:
            self._faults.pop(_full(method), None)

    @property
    def calls(self) -> tuple[CallRecord, ...]:
        return tuple(self._calls)

    @property
    def api_calls(self) -> tuple[CallRecord, ...]:
        """The calls minus grpc.health.v1 probes (a gateway in front sends those on its own)."""
        return tuple(call for call in self._calls if not call.method.startswith(_HEALTH))

    def calls_to(self, method: str) -> tuple[CallRecord, ...]:
        method = _full(method)
        return tuple(call for call in self._calls if call.method == method)

    async def wait_call(self, method: str, index: int = 0) -> CallRecord:
        """The index-th call (from 0) to method, once it has started."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.calls_to(method)) > index)
        return self.calls_to(method)[index]

    @asynccontextmanager
    async def observe(self, method: str, request: Message | None,
                      context: Context) -> AsyncIterator[CallRecord]:
        """Record the call, apply the method's fault, run the handler, note how it ended."""
        record = CallRecord(
            method=method,
            metadata=metadata_of(context),
            time_remaining=context.time_remaining(),
            request=request,
            started_at=time.monotonic(),
        )
        fault = self._take(method)
        async with self._changed:
            self._calls.append(record)
            self._changed.notify_all()
        try:
            if fault is not None:
                await _apply(fault, context)
            yield record
        except asyncio.CancelledError:
            record.cancelled.set()
            raise
        finally:
            record.finished.set()

    def _take(self, method: str) -> Fault | None:
        fault = self._faults.get(method)
        if fault is not None and fault.times is not None:
            if fault.times == 1:
                del self._faults[method]
            else:
                self._faults[method] = replace(fault, times=fault.times - 1)
        return fault


async def _apply(fault: Fault, context: Context) -> None:
    if fault.delay_s > 0:
        await asyncio.sleep(fault.delay_s)  # the backend's service time, not synchronisation
    if fault.hang:
        await asyncio.get_running_loop().create_future()
    if fault.code is not None:
        await context.abort(fault.code, fault.message)


def _full(method: str) -> str:
    return method if method.startswith("/") else "/" + method
