"""Retries over real instances: which calls, which codes, how long to wait, and when to stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest

from gateway.errors import Code, DeadlineExceeded, GatewayError, Unavailable
from gateway.upstream.forward import Upstream
from gateway.upstream.retry import MIN_ATTEMPT_S
from services.faults import Fault
from tests.upstream.conftest import StartUsers
from tests.upstream.helpers import (
    GET,
    UNAVAILABLE,
    FakeClock,
    Sleeps,
    calls,
    get_user,
    upstream_for,
)
from users.v1 import users_pb2

RETRY = {"attempts": 3, "base_backoff_s": 0.025, "max_backoff_s": 0.25}
STEADY: dict[str, Any] = {"outlier": {"consecutive_failures": 100},
          "breaker": {"consecutive_failures": 100, "min_requests": 1000}}


async def test_idempotent_call_is_retried_on_another_instance(start_users: StartUsers,
                                                              clock: FakeClock) -> None:
    first, second = await start_users(2)
    first.faults.set(GET, Fault(code=UNAVAILABLE, times=1))
    sleeps = Sleeps(clock)
    async with upstream_for([first, second], clock, sleeps, retry=RETRY) as upstream:
        reply = await upstream(get_user(clock, request_id="req-42"))
    assert reply.attempts == 2 and isinstance(reply.payload, bytes)
    assert users_pb2.User.FromString(reply.payload).id == "u-1001"
    assert (calls(first), calls(second)) == (1, 1)
    seen = [b.faults.calls_to(GET)[0].metadata["x-request-id"] for b in (first, second)]
    assert seen == [["req-42"], ["req-42"]]  # the same request id on every attempt
    assert len(sleeps.waits) == 1 and 0 <= sleeps.waits[0] <= 0.025  # full jitter, first window


async def test_attempts_are_capped_and_the_error_counts_them(start_users: StartUsers,
                                                             clock: FakeClock) -> None:
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(code=UNAVAILABLE))
    sleeps = Sleeps(clock)
    async with upstream_for([only], clock, sleeps, retry=RETRY, **STEADY) as upstream:
        with pytest.raises(GatewayError) as caught:
            await upstream(get_user(clock))
    assert caught.value.code is Code.UNAVAILABLE and caught.value.attempts == 3
    assert calls(only) == 3
    assert len(sleeps.waits) == 2 and sleeps.waits[1] <= 0.05  # windows 25 ms, then 50 ms


@pytest.mark.parametrize("config_flag", [False, True])
async def test_non_idempotent_call_is_never_retried(start_users: StartUsers, clock: FakeClock,
                                                    config_flag: bool) -> None:
    """T-07; retry.idempotent_methods marks a method safe to repeat after all."""
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(code=UNAVAILABLE, times=1))
    retry = RETRY | {"idempotent_methods": [GET] if config_flag else []}
    async with upstream_for([only], clock, retry=retry) as upstream:
        if config_flag:
            assert (await upstream(get_user(clock, idempotent=False))).attempts == 2
        else:
            with pytest.raises(GatewayError) as caught:
                await upstream(get_user(clock, idempotent=False))
            assert caught.value.attempts == 1
    assert calls(only) == (2 if config_flag else 1)


@pytest.mark.parametrize("code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL,
                                  grpc.StatusCode.RESOURCE_EXHAUSTED])
async def test_codes_outside_the_retry_set_are_not_retried(start_users: StartUsers,
                                                           clock: FakeClock,
                                                           code: grpc.StatusCode) -> None:
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(code=code, times=1))
    async with upstream_for([only], clock, retry=RETRY) as upstream:
        with pytest.raises(GatewayError) as caught:
            await upstream(get_user(clock))
    assert caught.value.code.value == code.value[0] and caught.value.attempts == 1
    assert calls(only) == 1


async def test_configured_codes_are_retried(start_users: StartUsers, clock: FakeClock) -> None:
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(code=grpc.StatusCode.INTERNAL, times=1))
    retry = RETRY | {"codes": ["UNAVAILABLE", "INTERNAL"]}
    async with upstream_for([only], clock, retry=retry) as upstream:
        assert (await upstream(get_user(clock))).attempts == 2


async def test_refused_connection_is_retried_on_the_other_instance(start_users: StartUsers,
                                                                   clock: FakeClock) -> None:
    down, up = await start_users(2)
    await down.stop(0)
    async with upstream_for([down, up], clock, retry=RETRY) as upstream:
        reply = await upstream(get_user(clock))
    assert reply.attempts == 2 and calls(up) == 1


async def test_retries_stop_at_the_deadline(start_users: StartUsers, clock: FakeClock) -> None:
    """T-10: no attempt starts with < 5 ms left and no wait runs into the deadline."""
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(code=UNAVAILABLE))
    sleeps = Sleeps(clock)
    retry = {"attempts": 5, "base_backoff_s": 0.2, "max_backoff_s": 0.2, "budget_min_per_s": 100}
    async with upstream_for([only], clock, sleeps, retry=retry, **STEADY) as upstream:
        for _ in range(20):
            call, started, waited = get_user(clock, timeout_s=0.5), clock(), len(sleeps.waits)
            with pytest.raises(GatewayError) as caught:
                await upstream(call)
            waits = sleeps.waits[waited:]
            starts = [started + sum(waits[:n]) for n in range(len(waits) + 1)]
            assert call.deadline is not None and clock() <= call.deadline
            assert all(call.deadline - start >= MIN_ATTEMPT_S for start in starts)
            assert 2 <= caught.value.attempts == len(starts) <= 5
            assert caught.value.code in (Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED)


async def test_no_attempt_once_the_deadline_has_passed(start_users: StartUsers,
                                                       clock: FakeClock) -> None:
    (only,) = await start_users(1)
    async with upstream_for([only], clock) as upstream:
        call = get_user(clock, timeout_s=1)
        clock.advance(1)
        with pytest.raises(DeadlineExceeded):
            await upstream(call)
    assert calls(only) == 0


async def _attempts_of(upstream: Upstream, clock: FakeClock, count: int) -> list[int]:
    """Send `count` idempotent calls that fail; the attempts each one made."""
    attempts = []
    for _ in range(count):
        with pytest.raises(GatewayError) as caught:
            await upstream(get_user(clock))
        attempts.append(caught.value.attempts)
    return attempts


async def test_budget_exhaustion_stops_retries(start_users: StartUsers, clock: FakeClock) -> None:
    """T-13 scaled down: ratio 0.5 and no floor: every other failing call may retry once."""
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(code=UNAVAILABLE))
    retry = {"attempts": 2, "budget_ratio": 0.5, "budget_min_per_s": 0, "budget_window_s": 10}
    async with upstream_for([only], clock, retry=retry, **STEADY) as upstream:
        assert await _attempts_of(upstream, clock, 6) == [1, 2, 1, 2, 1, 2]
    assert calls(only) == 9  # 6 calls, 3 retries: amplification held at the ratio


async def test_budget_floor_allows_a_few_retries_per_window(start_users: StartUsers,
                                                            clock: FakeClock) -> None:
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(code=UNAVAILABLE))
    retry = {"attempts": 2, "budget_ratio": 0, "budget_min_per_s": 0.2, "budget_window_s": 10}
    async with upstream_for([only], clock, retry=retry, **STEADY) as upstream:
        assert await _attempts_of(upstream, clock, 4) == [2, 2, 1, 1]
        clock.advance(10)  # the window has moved on: the floor is back
        assert await _attempts_of(upstream, clock, 1) == [2]


class _Pushback:
    """A users.v1.Users/GetUser backend that answers UNAVAILABLE with the given pushback values,
    then succeeds; it counts the calls it gets."""

    def __init__(self, pushbacks: list[str]) -> None:
        self.pushbacks = pushbacks
        self.calls = 0

    async def get_user(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
                       ) -> bytes:
        self.calls += 1
        if self.pushbacks:
            value = self.pushbacks.pop(0)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "busy",
                                trailing_metadata=(("grpc-retry-pushback-ms", value),))
        return users_pb2.User(id="u-1001").SerializeToString()


@asynccontextmanager
async def _pushback_backend(pushbacks: list[str]) -> AsyncIterator[tuple[str, _Pushback]]:
    behaviour = _Pushback(pushbacks)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "users.v1.Users", {"GetUser": grpc.unary_unary_rpc_method_handler(behaviour.get_user)}
    ),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", behaviour
    finally:
        await server.stop(None)


async def test_pushback_sets_the_wait_exactly(clock: FakeClock) -> None:
    """T-12: grpc-retry-pushback-ms >= 0 is the wait, even past max_backoff_s."""
    sleeps = Sleeps(clock)
    async with _pushback_backend(["200", "0"]) as (address, backend), \
            upstream_for([address], clock, sleeps, retry=RETRY) as upstream:
        reply = await upstream(get_user(clock))
    assert reply.attempts == 3 and backend.calls == 3
    assert sleeps.waits == [0.2, 0.0]


@pytest.mark.parametrize("value", ["-1", "abc", "", "1.5"])
async def test_negative_or_garbled_pushback_means_no_retry(clock: FakeClock, value: str) -> None:
    async with _pushback_backend([value]) as (address, backend), \
            upstream_for([address], clock, retry=RETRY) as upstream:
        with pytest.raises(GatewayError) as caught:
            await upstream(get_user(clock))
    assert caught.value.attempts == 1 and backend.calls == 1


async def test_pushback_past_the_deadline_stops_retrying(clock: FakeClock) -> None:
    sleeps = Sleeps(clock)
    async with _pushback_backend(["20", "20", "20"]) as (address, backend), \
            upstream_for([address], clock, sleeps, retry={"attempts": 5}) as upstream:
        with pytest.raises(GatewayError) as caught:
            await upstream(get_user(clock, timeout_s=0.05))
    # t=0 first try; t=20 ms second (30 left); t=40 ms third (10 left); a fourth would start
    # with -10 ms left, so the wait never begins
    assert caught.value.attempts == 3 and backend.calls == 3
    assert sleeps.waits == [0.02, 0.02]


async def test_local_refusals_are_not_retried(start_users: StartUsers, clock: FakeClock) -> None:
    """A retry finding no usable instance ends the call with that refusal."""
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(code=UNAVAILABLE))
    async with upstream_for([only], clock, retry=RETRY,
                            outlier={"consecutive_failures": 1}) as upstream:
        with pytest.raises(Unavailable, match="no healthy instance") as caught:
            await upstream(get_user(clock))
    assert caught.value.attempts == 2 and calls(only) == 1


async def test_cancelled_call_releases_everything(start_users: StartUsers,
                                                  clock: FakeClock) -> None:
    (only,) = await start_users(1)
    only.faults.set(GET, Fault(hang=True))
    async with upstream_for([only], clock) as upstream:
        task = asyncio.create_task(upstream(get_user(clock)))
        record = await only.faults.wait_call(GET)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await record.cancelled.wait()  # the backend saw the cancellation
        status = upstream.snapshot()["users"]
        assert status.in_flight == 0 and status.instances[0].outstanding == 0
