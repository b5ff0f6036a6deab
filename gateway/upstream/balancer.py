"""Load balancing over the usable instances of a backend: round robin, or least request
(power of two choices over calls in flight)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal, Protocol, TypeVar


class Loaded(Protocol):
    @property
    def outstanding(self) -> int: ...


T = TypeVar("T", bound=Loaded)


class Balancer(Protocol):
    def pick(self, candidates: Sequence[T]) -> T: ...


class RoundRobin:
    def __init__(self) -> None:
        self._next = 0

    def pick(self, candidates: Sequence[T]) -> T:
        chosen = candidates[self._next % len(candidates)]
        self._next += 1
        return chosen


class LeastRequest:
    """Two candidates at random, the one with fewer calls in flight (ties: the first drawn)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def pick(self, candidates: Sequence[T]) -> T:
        if len(candidates) == 1:
            return candidates[0]
        first, second = self._rng.sample(candidates, 2)
        return second if second.outstanding < first.outstanding else first


def make_balancer(lb: Literal["round_robin", "least_request"]) -> Balancer:
    return RoundRobin() if lb == "round_robin" else LeastRequest()
