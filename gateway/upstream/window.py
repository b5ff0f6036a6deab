"""A sliding count of events over the last window_s seconds, in fixed slices. No I/O."""

from __future__ import annotations


class SlidingCount:
    """Events in the last `window_s`, exact to one slice (window_s / slices)."""

    __slots__ = ("_counts", "_slices", "_width")

    def __init__(self, window_s: float, slices: int = 10) -> None:
        self._width = window_s / slices
        self._counts: list[tuple[int, int]] = [(-slices, 0)] * slices  # (slice number, count)
        self._slices = slices

    def add(self, now: float, n: int = 1) -> None:
        number = int(now // self._width)
        slot = number % self._slices
        held, count = self._counts[slot]
        self._counts[slot] = (number, count + n if held == number else n)

    def total(self, now: float) -> int:
        oldest = int(now // self._width) - self._slices
        return sum(count for number, count in self._counts if number > oldest)
