"""The Limiter protocol, its Decision, and a process's share of a limit it cannot coordinate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int  # the burst: requests a full bucket admits at once
    remaining: int  # whole requests the bucket would still admit now
    retry_after_s: float  # 0 when allowed; else until `cost` more requests would be admitted
    reset_s: float  # until the bucket is full again


class Limiter(Protocol):
    async def acquire(self, key: str, rate_per_s: float, burst: int, cost: int = 1) -> Decision:
        """Take `cost` from the bucket `key` (refilling at rate_per_s, holding burst) if it can.

        `cost` 0 is a probe: the decision for one more, taking nothing."""
        ...

    async def close(self) -> None: ...


class Share:
    """One of `instances` processes without a shared store: each enforces limit / instances."""

    def __init__(self, limiter: Limiter, instances: int) -> None:
        self._limiter = limiter
        self._instances = max(1, instances)

    async def acquire(self, key: str, rate_per_s: float, burst: int, cost: int = 1) -> Decision:
        share_rate = rate_per_s / self._instances
        share_burst = max(1, burst // self._instances)
        return await self._limiter.acquire(key, share_rate, share_burst, cost)

    async def close(self) -> None:
        await self._limiter.close()
