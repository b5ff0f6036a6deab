"""Real users backends on 127.0.0.1:0 (as many as a test asks for) and a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from services.server import RunningBackend, start_backend
from tests.upstream.helpers import FakeClock

StartUsers = Callable[[int], Awaitable[list[RunningBackend]]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def start_users() -> AsyncIterator[StartUsers]:
    started: list[RunningBackend] = []

    async def start(count: int) -> list[RunningBackend]:
        fresh = [await start_backend("users") for _ in range(count)]
        started.extend(fresh)
        return fresh

    yield start
    for backend in started:
        await backend.stop(0)
