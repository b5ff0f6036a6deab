"""The stream idle timeout (Envoy's stream_idle_timeout, 300 s at the edge): a stream with no
message in either direction for idle_s ends with DEADLINE_EXCEEDED. Waiting for the backend runs
under `watch()`; each message the client sends (`touching`) pushes the end of that wait back, so
a client that streams requests to a backend that answers rarely is not idle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gateway.errors import DeadlineExceeded


class IdleTimer:
    def __init__(self, backend: str, idle_s: float) -> None:
        self.backend = backend
        self.idle_s = idle_s
        self._waiting: asyncio.Timeout | None = None  # the wait under way, if one is

    def watch(self) -> asyncio.Timeout:
        """A timeout of idle_s around one wait for the backend (async with)."""
        self._waiting = asyncio.timeout(self.idle_s)
        return self._waiting

    def touch(self) -> None:
        """A message went by: the wait under way may last idle_s from now."""
        waiting = self._waiting
        if waiting is not None and waiting.when() is not None and not waiting.expired():
            try:
                waiting.reschedule(asyncio.get_running_loop().time() + self.idle_s)
            except RuntimeError:  # not entered yet, or over: the next watch() starts afresh
                pass

    def expired(self) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"stream to backend {self.backend!r} idle for {self.idle_s:g} s, no message either "
            f"way (backends.{self.backend}.stream_idle_timeout_s)")


async def touching(requests: AsyncIterator[bytes], timer: IdleTimer) -> AsyncIterator[bytes]:
    """The client's request stream, each message keeping the stream alive."""
    async for request in requests:
        timer.touch()
        yield request
