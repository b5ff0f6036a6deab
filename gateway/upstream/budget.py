"""Retry budget per backend (T-02, T-13): retries stay within a share of the requests.

The floor is part of the budget, not added to it (T-02's max(3, 0.2 x requests)): with every
call failing, retries <= budget_ratio x requests once that exceeds the floor, so amplification
stays <= 1 + budget_ratio (1.2 by default) from budget_min_per_s / budget_ratio calls per
second on (15/s by default). Below that rate the floor lets a few calls retry anyway.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.config import Retry
from gateway.upstream.window import SlidingCount


class RetryBudget:
    """Allows a retry while retries <= max(ratio x requests, min_per_s x window), over the
    window."""

    def __init__(self, config: Retry, clock: Callable[[], float]) -> None:
        self._ratio = config.budget_ratio
        self._floor = config.budget_min_per_s * config.budget_window_s
        self._requests = SlidingCount(config.budget_window_s)
        self._retries = SlidingCount(config.budget_window_s)
        self._clock = clock

    def record_request(self) -> None:
        self._requests.add(self._clock())

    def try_spend(self) -> bool:
        """Take one retry from the budget; False (and nothing taken) when it is spent."""
        now = self._clock()
        allowed = max(self._ratio * self._requests.total(now), self._floor)
        if self._retries.total(now) + 1 > allowed:
            return False
        self._retries.add(now)
        return True
