"""Retry budget per backend (T-02, T-13): retries stay within a share of the requests."""

from __future__ import annotations

from collections.abc import Callable

from gateway.config import Retry
from gateway.upstream.window import SlidingCount


class RetryBudget:
    """Allows a retry while retries <= ratio x requests + min_per_s x window, over the window."""

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
        allowed = self._ratio * self._requests.total(now) + self._floor
        if self._retries.total(now) + 1 > allowed:
            return False
        self._retries.add(now)
        return True
