"""Concurrency limit per backend (T-01): beyond max_requests in flight, fail fast."""

from __future__ import annotations

from gateway.errors import Unavailable


class ConcurrencyLimit:
    def __init__(self, backend: str, max_requests: int) -> None:
        self.backend = backend
        self.max_requests = max_requests
        self.in_flight = 0

    def acquire(self) -> None:
        """Take one of max_requests slots; Unavailable at once when none is free."""
        if self.in_flight >= self.max_requests:
            raise Unavailable(f"backend {self.backend!r} is overloaded")
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
