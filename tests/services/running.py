"""Context managers for tests: a started backend, and a stub over a fresh channel to one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import grpc

from services.server import RunningBackend, start_backend


@asynccontextmanager
async def running(name: str) -> AsyncIterator[RunningBackend]:
    backend = await start_backend(name)
    try:
        yield backend
    finally:
        await backend.stop()


@asynccontextmanager
async def channel_stub(address: str, stub_class: Any) -> AsyncIterator[Any]:
    """`stub_class` is a generated *Stub (untyped, hence Any) over a fresh channel."""
    async with grpc.aio.insecure_channel(address) as channel:
        yield stub_class(channel)


def stub(backend: RunningBackend, stub_class: Any) -> AbstractAsyncContextManager[Any]:
    return channel_stub(backend.address, stub_class)
