"""Retries of idempotent unary calls with tenacity (T-07..T-13): retryable codes only, full-jitter
backoff or the backend's pushback, within the attempt cap, the deadline and the retry budget.

A call the backend refused at the HTTP/2 level (RST_STREAM REFUSED_STREAM: it never processed
it, RFC 9113 8.7) is made once more whatever the method, idempotent or not and even with
retries off, like grpc's transparent retry; still within the deadline, budget and breaker."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import replace

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential

from gateway.call import Call, Kind, Metadata, Reply
from gateway.config import Retry
from gateway.errors import Code, GatewayError
from gateway.upstream.budget import RetryBudget
from gateway.upstream.status import BackendFailed

MAX_ATTEMPTS = 5  # gRPC A6: more is treated as 5, whatever the config says (T-08)
MIN_ATTEMPT_S = 0.005  # no retry starts with less of the deadline left (T-10)
PUSHBACK_KEY = "grpc-retry-pushback-ms"
NO_RETRY = -1.0  # pushback_s() for a negative or unreadable pushback: do not retry (T-12)
_MILLIS = re.compile(r"-?[0-9]{1,10}")

Sleep = Callable[[float], Awaitable[None]]


def pushback_s(trailers: Metadata) -> float | None:
    """The backend's grpc-retry-pushback-ms in seconds; None when absent; NO_RETRY if bad."""
    for key, value in trailers:
        if key == PUSHBACK_KEY:
            text = value if isinstance(value, str) else ""
            if _MILLIS.fullmatch(text) is None or int(text) < 0:
                return NO_RETRY
            return int(text) / 1000.0
    return None


class RetryPolicy:
    """Runs a call's attempts; Reply.attempts and GatewayError.attempts say how many were made."""

    def __init__(self, config: Retry, budget: RetryBudget, clock: Callable[[], float],
                 sleep: Sleep) -> None:
        self._attempts = min(config.attempts, MAX_ATTEMPTS)
        self._codes = frozenset(Code[name] for name in config.codes)
        self._idempotent = frozenset(config.idempotent_methods)
        self._jitter = wait_random_exponential(multiplier=config.base_backoff_s,
                                               max=config.max_backoff_s)
        self._budget = budget
        self._clock = clock
        self._sleep = sleep

    def applies_to(self, call: Call) -> bool:
        """Unary only (nothing is replayed once a stream started, T-11), and safe to repeat."""
        return (self._attempts > 1 and call.kind is Kind.UNARY
                and (call.idempotent or call.method in self._idempotent))

    async def after(self, first: BackendFailed, call: Call,
                    attempt: Callable[[], Awaitable[Reply]], may_retry: Callable[[], bool]
                    ) -> Reply:
        """The rest of a call whose first attempt failed with `first`: raises its error at once
        when it may not be retried, else runs further attempts.

        `attempt` raises BackendFailed for backend errors, GatewayError for local refusals.
        The caller makes the first attempt itself, without tenacity: almost every call
        succeeds at once, and setting up an AsyncRetrying costs more than the rest of the
        upstream path. Only a failure that may be retried enters the tenacity loop, which
        replays it as attempt 1.
        """
        if not self.applies_to(call):
            if first.failure.refused and call.kind is Kind.UNARY:
                return await self._once_more(first, call, attempt, may_retry)
            raise first.failure.error from None
        if not self._retryable(first, may_retry):
            raise first.failure.error from None
        number = 1
        try:
            retrying = AsyncRetrying(
                retry=retry_if_exception(lambda exc: self._retryable(exc, may_retry)),
                wait=self._wait,
                stop=lambda state: self._stop(state, call.deadline),
                sleep=self._sleep,
                reraise=True,
            )
            async for trying in retrying:
                with trying:
                    number = trying.retry_state.attempt_number
                    if number == 1:
                        raise first
                    reply = await attempt()
            return replace(reply, attempts=number)
        except BackendFailed as exc:
            exc.failure.error.attempts = number
            raise exc.failure.error from None
        except GatewayError as exc:
            exc.attempts = number
            raise

    async def _once_more(self, first: BackendFailed, call: Call,
                         attempt: Callable[[], Awaitable[Reply]],
                         may_retry: Callable[[], bool]) -> Reply:
        """The one further attempt of a refused call that is not otherwise retried."""
        deadline = call.deadline
        if (not may_retry() or (deadline is not None and deadline - self._clock() < MIN_ATTEMPT_S)
                or not self._budget.try_spend()):
            raise first.failure.error from None
        try:
            reply = await attempt()
        except BackendFailed as exc:
            exc.failure.error.attempts = 2
            raise exc.failure.error from None
        except GatewayError as exc:
            exc.attempts = 2
            raise
        return replace(reply, attempts=2)

    def _retryable(self, exc: BaseException, may_retry: Callable[[], bool]) -> bool:
        if not isinstance(exc, BackendFailed):
            return False  # overloaded, no instance, deadline: retrying cannot help
        failure = exc.failure
        code = failure.error.code
        if code not in self._codes and not (failure.transport and code is Code.UNAVAILABLE):
            return False
        return pushback_s(failure.trailers) != NO_RETRY and may_retry()

    def _wait(self, state: RetryCallState) -> float:
        failed = state.outcome.exception() if state.outcome else None
        if not isinstance(failed, BackendFailed):
            return self._jitter(state)
        pushback = pushback_s(failed.failure.trailers)
        return self._jitter(state) if pushback is None else pushback

    def _stop(self, state: RetryCallState, deadline: float | None) -> bool:
        if state.attempt_number >= self._attempts:
            return True
        if deadline is not None and deadline - self._clock() - state.upcoming_sleep < MIN_ATTEMPT_S:
            return True  # never sleep into the deadline, never start a hopeless attempt
        return not self._budget.try_spend()
