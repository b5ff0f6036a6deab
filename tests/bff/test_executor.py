"""The BFF executor against a plain async terminal: concurrency, dependencies, partial failure,
required failure, deadlines, cancellation and what each part call carries."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from google.protobuf.message import Message

from dashboard.v1 import dashboard_pb2
from gateway.bff.executor import RESERVE_MAX_S, RESERVE_S, Aggregates, reserve_s
from gateway.call import Call, Reply
from gateway.demo import OVERVIEW, overview_aggregate
from gateway.errors import Code, DeadlineExceeded, InvalidArgument, Unauthenticated, UpstreamError
from tests.bff.helpers import (
    ALICE,
    COUNT_UNREAD,
    DEFAULTS,
    GET_USER,
    LIST_ORDERS,
    Answer,
    Seen,
    Terminal,
    fails,
    hang,
    overview,
    overview_call,
    overview_plan,
)
from tests.policies.jwks_server import FakeClock
from users.v1 import users_pb2

INDEPENDENT = (GET_USER, LIST_ORDERS, COUNT_UNREAD)


def errors(reply: dashboard_pb2.Overview) -> list[tuple[str, int, str]]:
    return [(e.part, e.code, e.message) for e in reply.errors]


def position(terminal: Terminal, kind: str, seen: Seen) -> int:
    """Where in the terminal's event log this call started or ended."""
    return next(i for i, (k, _, request) in enumerate(terminal.events)
                if k == kind and request is seen.request)


def meeting(*methods: str) -> dict[str, Answer]:
    """Answers whose first call per method waits until every method has been called once: they
    can only finish if all of them are in flight at the same time."""
    arrived = {method: asyncio.Event() for method in methods}

    def answer_for(method: str) -> Answer:
        async def answer(request: Any) -> Message:
            arrived[method].set()
            await asyncio.gather(*(event.wait() for event in arrived.values()))
            return await DEFAULTS[method](request)

        return answer

    return {method: answer_for(method) for method in methods}


async def run(terminal: Terminal, call: Call | None = None, **plan: Any) -> Reply:
    aggregates = Aggregates({OVERVIEW: overview_plan(**plan)}, terminal)
    async with asyncio.timeout(5):  # a hang is a failure, not a stuck test run
        return await aggregates(call or overview_call())


async def test_independent_parts_are_in_flight_together() -> None:
    terminal = Terminal(meeting(*INDEPENDENT))
    reply = overview(await run(terminal, overview_call(page_size=7)))
    assert reply.profile.id == "u-1"
    assert [o.id for o in reply.recent_orders.orders] == ["o-1", "o-2", "o-3"]
    assert reply.unread.unread_count == 3
    assert errors(reply) == []
    starts = [method for kind, method, _ in terminal.events[:3] if kind == "start"]
    assert sorted(starts) == sorted(INDEPENDENT)  # all three started before any ended
    (orders,) = terminal.to(LIST_ORDERS)
    assert (orders.request.user_id, orders.request.page_size) == ("u-1", 7)


async def test_a_dependent_part_starts_after_its_dependency_and_fans_out_once_per_value() -> None:
    terminal = Terminal()
    reply = overview(await run(terminal))
    orders_end = position(terminal, "end", terminal.to(LIST_ORDERS)[0])
    fan_out = terminal.to(GET_USER)[1:]
    assert [seen.request.id for seen in fan_out] == ["u-1", "u-2"]  # u-1 twice in the orders
    for seen in fan_out:
        assert position(terminal, "start", seen) > orders_end
    assert [user.id for user in reply.order_users] == ["u-1", "u-2"]


async def test_every_part_call_carries_the_aggregates_identity_request_id_and_deadline() -> None:
    clock = FakeClock(100.0)
    spec = overview_aggregate()
    spec["parts"]["unread"]["timeout_s"] = 0.5
    terminal = Terminal()
    aggregates = Aggregates({OVERVIEW: overview_plan(**spec)}, terminal, clock)
    call = overview_call(deadline=102.0)
    await aggregates(call)
    assert len(terminal.seen) == 5
    for seen in terminal.seen:
        part = seen.call
        assert part.metadata == call.metadata
        assert (part.request_id, part.principal, part.peer) == ("req-1", ALICE, "10.0.0.7")
        assert part.idempotent  # every demo part's method is NO_SIDE_EFFECTS
        expected = 100.5 if part.method == COUNT_UNREAD else 102.0 - reserve_s(2.0)
        assert part.deadline == pytest.approx(expected)


async def test_the_aggregate_timeout_caps_the_clients_deadline() -> None:
    clock = FakeClock(100.0)
    terminal = Terminal()
    plan = overview_plan(timeout_s=1.0)
    await Aggregates({OVERVIEW: plan}, terminal, clock)(overview_call(deadline=102.0))
    assert [seen.call.deadline for seen in terminal.seen] == [
        pytest.approx(101.0 - reserve_s(1.0))] * len(terminal.seen)


def test_the_reserve_is_a_share_of_the_aggregates_time_within_bounds() -> None:
    assert reserve_s(0.01) == RESERVE_S
    assert reserve_s(1.0) == pytest.approx(0.1)
    assert reserve_s(15.0) == RESERVE_MAX_S


async def test_a_failed_optional_part_leaves_its_field_empty_and_is_reported() -> None:
    terminal = Terminal({COUNT_UNREAD: fails(UpstreamError("inbox down", Code.UNAVAILABLE))})
    reply = overview(await run(terminal))
    assert not reply.HasField("unread")
    assert reply.profile.id == "u-1" and len(reply.order_users) == 2
    assert errors(reply) == [("unread", Code.UNAVAILABLE, "inbox down")]


async def test_parts_reading_a_failed_part_are_not_called_and_report_its_code() -> None:
    terminal = Terminal({LIST_ORDERS: fails(UpstreamError("orders broke", Code.INTERNAL))})
    reply = overview(await run(terminal))
    assert errors(reply) == [
        ("recent_orders", Code.INTERNAL, "orders broke"),
        ("order_users", Code.INTERNAL, "not called: part 'recent_orders' failed"),
    ]
    assert len(terminal.to(GET_USER)) == 1  # the profile only
    assert reply.profile.id == "u-1"


async def test_a_failed_required_part_fails_the_call_and_cancels_the_running_parts() -> None:
    others = {LIST_ORDERS: asyncio.Event(), COUNT_UNREAD: asyncio.Event()}
    error = UpstreamError("no such user", Code.NOT_FOUND, details=(b"detail",))

    def waits(method: str) -> Answer:
        async def answer(request: Any) -> Message:
            others[method].set()
            return await hang(request)

        return answer

    async def profile(request: Any) -> Message:
        await asyncio.gather(*(event.wait() for event in others.values()))
        raise error

    terminal = Terminal({GET_USER: profile, **{m: waits(m) for m in others}})
    with pytest.raises(UpstreamError) as info:
        await run(terminal)
    assert info.value is error  # the part's own status, details and all
    cancelled = {seen.call.method for seen in terminal.seen if seen.cancelled}
    assert cancelled == {LIST_ORDERS, COUNT_UNREAD}  # already, when the error is raised
    assert all(seen.finished for seen in terminal.seen)


async def test_an_optional_part_past_its_own_timeout_is_reported_and_cancelled() -> None:
    spec = overview_aggregate()
    spec["parts"]["unread"]["timeout_s"] = 0.05
    terminal = Terminal({COUNT_UNREAD: hang})
    reply = overview(await run(terminal, **spec))
    assert [(part, code) for part, code, _ in errors(reply)] == [
        ("unread", Code.DEADLINE_EXCEEDED)]
    assert terminal.to(COUNT_UNREAD)[0].cancelled
    assert reply.profile.id == "u-1"


def deadline_after(clock: FakeClock, method: str) -> Answer:
    """`method`'s usual answer, after which the executor's clock is past any deadline the
    test set: the deadline passes once that call is done, however late the event loop runs
    (a real 0.1 s deadline raced the immediate parts on a loaded host)."""
    async def answer(request: Any) -> Message:
        reply = await DEFAULTS[method](request)
        clock.advance(60.0)
        return reply

    return answer


async def test_optional_parts_still_running_at_the_deadline_are_reported() -> None:
    clock = FakeClock(100.0)
    terminal = Terminal({GET_USER: deadline_after(clock, GET_USER), COUNT_UNREAD: hang,
                         LIST_ORDERS: hang})
    aggregates = Aggregates({OVERVIEW: overview_plan()}, terminal, clock)
    async with asyncio.timeout(5):
        reply = overview(await aggregates(overview_call(deadline=102.0)))
    assert {(part, code) for part, code, _ in errors(reply)} == {
        ("recent_orders", Code.DEADLINE_EXCEEDED), ("unread", Code.DEADLINE_EXCEEDED),
        ("order_users", Code.DEADLINE_EXCEEDED)}
    assert reply.profile.id == "u-1"
    assert all(seen.cancelled for seen in terminal.seen if seen.call.method != GET_USER)


async def test_a_required_part_still_running_at_the_deadline_fails_the_call() -> None:
    clock = FakeClock(100.0)
    terminal = Terminal({GET_USER: hang, COUNT_UNREAD: hang,
                         LIST_ORDERS: deadline_after(clock, LIST_ORDERS)})
    aggregates = Aggregates({OVERVIEW: overview_plan()}, terminal, clock)
    with pytest.raises(DeadlineExceeded, match="part 'profile'"):
        async with asyncio.timeout(5):
            await aggregates(overview_call(deadline=102.0))
    assert all(seen.cancelled for seen in terminal.seen if seen.call.method != LIST_ORDERS)


async def test_a_real_deadline_ends_hanging_parts_on_the_event_loop_clock() -> None:
    # The same as above on real timers; the deadline is taken after the plan is compiled (the
    # compile used to eat into it) and sized well past an immediate part's few loop turns.
    terminal = Terminal({COUNT_UNREAD: hang, LIST_ORDERS: hang})
    aggregates = Aggregates({OVERVIEW: overview_plan()}, terminal)
    async with asyncio.timeout(5):
        reply = overview(await aggregates(overview_call(deadline=time.monotonic() + 0.5)))
    assert {(part, code) for part, code, _ in errors(reply)} == {
        ("recent_orders", Code.DEADLINE_EXCEEDED), ("unread", Code.DEADLINE_EXCEEDED),
        ("order_users", Code.DEADLINE_EXCEEDED)}
    assert reply.profile.id == "u-1"


async def test_a_deadline_already_past_calls_nothing() -> None:
    terminal = Terminal()
    with pytest.raises(DeadlineExceeded):
        await run(terminal, overview_call(deadline=time.monotonic() - 1))
    assert terminal.seen == []


async def test_the_caller_going_away_cancels_every_running_part() -> None:
    started = {method: asyncio.Event() for method in INDEPENDENT}

    def waits(method: str) -> Answer:
        async def answer(request: Any) -> Message:
            started[method].set()
            return await hang(request)

        return answer

    terminal = Terminal({method: waits(method) for method in INDEPENDENT})
    task = asyncio.create_task(run(terminal))
    async with asyncio.timeout(5):
        await asyncio.gather(*(event.wait() for event in started.values()))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [seen.cancelled for seen in terminal.seen] == [True, True, True]


async def test_an_anonymous_caller_gets_unauthenticated_and_no_backend_is_called() -> None:
    terminal = Terminal()
    with pytest.raises(Unauthenticated, match="part 'profile'"):
        await run(terminal, overview_call(principal=None))
    assert terminal.seen == []


async def test_a_fan_out_over_max_calls_fails_that_part() -> None:
    spec = overview_aggregate()
    spec["parts"]["order_users"]["max_calls"] = 1
    terminal = Terminal()
    reply = overview(await run(terminal, **spec))
    assert errors(reply) == [("order_users", Code.INVALID_ARGUMENT,
                              "part 'order_users' would make 2 calls, more than its max_calls "
                              "of 1")]
    assert len(terminal.to(GET_USER)) == 1


async def test_one_failed_call_of_a_fan_out_fails_the_part_and_cancels_its_siblings() -> None:
    async def user(request: users_pb2.GetUserRequest) -> Message:
        if request.id == "u-2":
            raise UpstreamError("gone", Code.NOT_FOUND)
        if len(terminal.to(GET_USER)) > 1:  # a fan-out call: wait to be cancelled
            return await hang(request)
        return await DEFAULTS[GET_USER](request)

    terminal = Terminal({GET_USER: user})
    reply = overview(await run(terminal))
    assert errors(reply) == [("order_users", Code.NOT_FOUND, "gone")]
    assert len(reply.order_users) == 0
    assert [s.cancelled for s in terminal.to(GET_USER)] == [False, True, False]


@pytest.mark.parametrize(("max_parallel", "expected"), [(1, 1), (16, 3)])
async def test_max_parallel_bounds_the_calls_in_flight(max_parallel: int, expected: int) -> None:
    def slow(method: str) -> Answer:
        async def answer(request: Any) -> Message:
            await asyncio.sleep(0)  # yield, so that calls made together overlap
            return await DEFAULTS[method](request)

        return answer

    terminal = Terminal({method: slow(method) for method in INDEPENDENT})
    await run(terminal, max_parallel=max_parallel)
    assert terminal.max_in_flight == expected


async def test_other_methods_go_straight_to_the_upstream() -> None:
    terminal = Terminal()
    call = Call(method=GET_USER, payload=users_pb2.GetUserRequest(id="u-5").SerializeToString())
    reply = await Aggregates({OVERVIEW: overview_plan()}, terminal)(call)
    assert [seen.call for seen in terminal.seen] == [call]
    assert isinstance(reply.payload, bytes)
    assert users_pb2.User.FromString(reply.payload).id == "u-5"


async def test_parts_go_to_the_parts_handler_and_other_calls_to_the_upstream() -> None:
    upstream, parts = Terminal(), Terminal()
    aggregates = Aggregates({OVERVIEW: overview_plan()}, upstream, parts=parts)
    await aggregates(overview_call())
    await aggregates(Call(method=GET_USER, payload=b""))
    assert [seen.call.method for seen in upstream.seen] == [GET_USER]
    assert len(parts.seen) == 5


async def test_an_undecodable_request_is_invalid_argument() -> None:
    terminal = Terminal()
    call = Call(method=OVERVIEW, payload=b"\xff\xff")
    with pytest.raises(InvalidArgument, match="not a valid dashboard.v1.GetOverviewRequest"):
        await run(terminal, call)
    assert terminal.seen == []


async def test_an_undecodable_part_reply_is_an_internal_failure_of_that_part() -> None:
    terminal = Terminal()

    async def garbled(call: Call) -> Reply:
        if call.method == COUNT_UNREAD:
            return Reply(b"\xff\xff")
        return await terminal(call)

    plan = overview_plan()
    reply = overview(await Aggregates({OVERVIEW: plan}, garbled)(overview_call()))
    assert errors(reply) == [("unread", Code.INTERNAL, "the reply of "
                              f"{COUNT_UNREAD} is not a valid "
                              "notifications.v1.CountUnreadResponse")]
