"""In-process GCRA buckets: one float per key, LRU-bounded and dropped once full again (T-24)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from gateway.ratelimit.limiter import Decision

_EPSILON_S = 1e-9  # float slack so a request arriving exactly on its refill instant is admitted
_EXPIRE_PER_CALL = 2  # idle buckets dropped per decision: amortised O(1), never a sweep


def gcra(
    tat: float, now: float, rate_per_s: float, burst: int, cost: int
) -> tuple[float | None, Decision]:
    """One GCRA step (a token bucket that stores only its theoretical arrival time, `tat`).

    Returns the new tat (None when nothing changes: a refusal, or a probe) and the decision.
    A bucket is full when tat <= now; each request pushes tat 1/rate later; a request is admitted
    while tat stays within burst/rate of now. `cost` 0 is a probe: would one more be admitted?
    """
    probe = cost == 0
    interval = 1.0 / rate_per_s
    tolerance = interval * burst
    tat = max(tat, now)
    new_tat = tat + max(cost, 1) * interval
    allow_at = new_tat - tolerance
    if now < allow_at - _EPSILON_S:
        return None, Decision(
            allowed=False,
            limit=burst,
            remaining=_whole(tolerance - (tat - now), interval),
            retry_after_s=allow_at - now,
            reset_s=tat - now,
        )
    if probe:
        new_tat = tat
    return None if probe else new_tat, Decision(
        allowed=True,
        limit=burst,
        remaining=_whole(tolerance - (new_tat - now), interval),
        retry_after_s=0.0,
        reset_s=new_tat - now,
    )


def _whole(slack_s: float, interval: float) -> int:
    return max(0, math.floor(slack_s / interval + _EPSILON_S))


class MemoryLimiter:
    """GCRA per key in this process; at most max_keys buckets (least recently used go first)."""

    def __init__(self, max_keys: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_keys = max_keys
        self._clock = clock
        self._tats: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tats)

    async def acquire(self, key: str, rate_per_s: float, burst: int, cost: int = 1) -> Decision:
        now = self._clock()
        self._expire(now)
        new_tat, decision = gcra(self._tats.get(key, now), now, rate_per_s, burst, cost)
        if new_tat is not None:
            self._tats[key] = new_tat
        if key in self._tats:
            self._tats.move_to_end(key)
            if len(self._tats) > self._max_keys:
                self._tats.popitem(last=False)
        return decision

    async def close(self) -> None:
        self._tats.clear()

    def _expire(self, now: float) -> None:
        # A bucket whose tat has passed is full again: forgetting it changes no decision.
        for _ in range(_EXPIRE_PER_CALL):
            oldest = next(iter(self._tats.items()), None)
            if oldest is None or oldest[1] > now:
                return
            del self._tats[oldest[0]]
