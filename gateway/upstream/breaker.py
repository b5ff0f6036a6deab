"""Circuit breaker per backend (or per method): closed -> open on consecutive faults or a fault
ratio over a window -> half-open after a cooldown -> closed on a probe's success. Injected clock."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from gateway.config import Breaker
from gateway.errors import Unavailable
from gateway.upstream.window import SlidingCount

log = logging.getLogger(__name__)


class State(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    scope: str  # "*" for the whole backend, else "/pkg.Service/Method"
    state: str
    transitions: Mapping[str, int]  # state entered -> times


class CircuitBreaker:
    """Only backend faults count; an open breaker refuses calls without touching the backend."""

    def __init__(self, backend: str, config: Breaker, clock: Callable[[], float],
                 scope: str = "*") -> None:
        self._backend = backend
        self._config = config
        self._clock = clock
        self.scope = scope
        self.transitions: Counter[str] = Counter()
        self._state = State.CLOSED
        self._opened_at = 0.0
        self._probes = 0  # probes in flight
        self._consecutive: int
        self._requests: SlidingCount
        self._faults: SlidingCount
        self._forget()

    @property
    def state(self) -> State:
        if self._state is State.OPEN and self._clock() >= self._opened_at + self._config.cooldown_s:
            self._enter(State.HALF_OPEN)
        return self._state

    def admit(self) -> bool:
        """Let a call through (True: it is a half-open probe) or raise Unavailable."""
        state = self.state
        if state is State.CLOSED:
            return False
        if state is State.HALF_OPEN and self._probes < self._config.half_open_probes:
            self._probes += 1
            return True
        raise Unavailable(f"circuit open for backend {self._backend!r}")

    def recovered(self) -> None:
        """The active health check sees the backend serving again: an open breaker half-opens
        now rather than at the end of its cooldown, so recovery takes about one check interval."""
        if self._state is State.OPEN:
            self._enter(State.HALF_OPEN)
            log.info("circuit for backend %r (%s) half-open: its health check passes again",
                     self._backend, self.scope)

    def release(self, probe: bool) -> None:
        """The admitted call is over (whatever its outcome)."""
        if probe:
            self._probes -= 1

    def record(self, fault: bool, probe: bool) -> None:
        """One attempt's outcome; late outcomes of calls admitted before opening are ignored."""
        state = self.state
        if state is not State.CLOSED:
            if state is State.HALF_OPEN and probe and fault:
                self._open()
            elif state is State.HALF_OPEN and probe:
                self._close()
            return
        now = self._clock()
        self._requests.add(now)
        if not fault:
            self._consecutive = 0
            return
        self._consecutive += 1
        self._faults.add(now)
        requests = self._requests.total(now)
        if self._consecutive >= self._config.consecutive_failures or (
            requests >= self._config.min_requests
            and self._faults.total(now) >= self._config.failure_ratio * requests
        ):
            self._open()

    def status(self) -> BreakerStatus:
        return BreakerStatus(self.scope, self.state.value, dict(self.transitions))

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._enter(State.OPEN)
        log.warning("circuit for backend %r (%s) opened", self._backend, self.scope)

    def _close(self) -> None:
        self._forget()
        self._enter(State.CLOSED)
        log.info("circuit for backend %r (%s) closed", self._backend, self.scope)

    def _enter(self, state: State) -> None:
        self._state = state
        self.transitions[state.value] += 1

    def _forget(self) -> None:
        self._consecutive = 0  # faults in a row
        self._requests = SlidingCount(self._config.window_s)
        self._faults = SlidingCount(self._config.window_s)


class Breakers:
    """One breaker for the backend, or one per method when Breaker.per_method is set."""

    def __init__(self, backend: str, config: Breaker, clock: Callable[[], float]) -> None:
        self._backend = backend
        self._config = config
        self._clock = clock
        self._all: dict[str, CircuitBreaker] = {}

    def get(self, method: str) -> CircuitBreaker:
        scope = method if self._config.per_method else "*"
        found = self._all.get(scope)
        if found is None:
            found = CircuitBreaker(self._backend, self._config, self._clock, scope)
            self._all[scope] = found
        return found

    def recovered(self) -> None:
        for breaker in self._all.values():
            breaker.recovered()

    def status(self) -> tuple[BreakerStatus, ...]:
        return tuple(breaker.status() for breaker in self._all.values())
