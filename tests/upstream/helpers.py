"""Helpers for upstream tests: a recording sleep, an Upstream over real backends, calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import grpc

from gateway.call import Call
from gateway.config import load
from gateway.upstream.forward import Upstream
from services.server import RunningBackend
from tests.conftest import DESCRIPTOR_SET
from tests.policies.jwks_server import FakeClock as FakeClock  # re-exported for these tests
from users.v1 import users_pb2

GET = "/users.v1.Users/GetUser"
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


class Sleeps:
    """A sleep that records each wait and moves the fake clock instead of waiting."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


def backend_config(addresses: Sequence[str], name: str = "users",
                   service: str = "users.v1.Users", **options: Any) -> dict[str, Any]:
    backend: dict[str, Any] = {"services": [service], "addresses": list(addresses),
                               "health_check": {"enabled": False}}
    backend.update(options)
    return {"descriptors": {"descriptor_set": str(DESCRIPTOR_SET)}, "backends": {name: backend}}


@asynccontextmanager
async def upstream_for(backends: Sequence[RunningBackend | str], clock: FakeClock,
                       sleeps: Sleeps | None = None, name: str = "users",
                       service: str = "users.v1.Users", **options: Any
                       ) -> AsyncIterator[Upstream]:
    """An Upstream for one backend over these instances (running backends or host:port)."""
    addresses = [b if isinstance(b, str) else b.address for b in backends]
    config = load(backend_config(addresses, name, service, **options))
    upstream = Upstream.from_config(config, {service: name}, clock=clock,
                                    sleep=sleeps or Sleeps(clock))
    try:
        yield upstream
    finally:
        await upstream.close()


def get_user(clock: FakeClock, *, idempotent: bool = True, user: str = "u-1001",
             timeout_s: float = 5.0, request_id: str = "req-1") -> Call:
    return Call(method=GET, payload=users_pb2.GetUserRequest(id=user).SerializeToString(),
                deadline=clock() + timeout_s, idempotent=idempotent, request_id=request_id)


def calls(backend: RunningBackend) -> int:
    return len(backend.faults.calls_to(GET))


async def settle(tasks: Sequence[asyncio.Task[Any]], finished: int) -> None:
    """Wait (bounded) until `finished` of the tasks are done."""
    async with asyncio.timeout(5):
        while sum(task.done() for task in tasks) < finished:
            await asyncio.wait([t for t in tasks if not t.done()],
                               return_when=asyncio.FIRST_COMPLETED)
