"""Streams are not unary calls: a backend's `timeout_s` no longer cuts them (orders:watch ended
after 15 s with DEADLINE_EXCEEDED even when the client asked for longer); they get the client's
deadline, capped by `stream_timeout_s` when set, and end after `stream_idle_timeout_s` without a
message from the backend. Unary calls keep `timeout_s`."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc
import orjson
import pytest

from orders.v1 import orders_pb2, orders_pb2_grpc
from testing.v1 import transcoding_pb2
from tests.e2e.stack import Stack, running_stack

WATCH = "/orders.v1.Orders/WatchOrders"
WATCH_URL = "/v1/users/u-1001/orders:watch"
COLLECT = "/testing.v1.Echo/CollectBooks"


def stack_with(**orders: Any) -> AbstractAsyncContextManager[Stack]:
    return running_stack({"orders": {"timeout_s": 0.3, **orders},
                          "echo": {"timeout_s": 0.3, **orders}})


def _book(title: str) -> bytes:
    return transcoding_pb2.CollectBooksRequest(
        book=transcoding_pb2.Book(title=title)).SerializeToString()


async def backend_deadline(stack: Stack, index: int = 0) -> float | None:
    record = await asyncio.wait_for(
        stack.backends["orders"].faults.wait_call(WATCH, index), 5)
    return record.time_remaining


async def test_a_stream_has_no_deadline_unless_asked_for_and_outlives_timeout_s() -> None:
    async with stack_with() as stack:
        watch = await stack.http.get(stack.url(WATCH_URL))
        assert watch.status == 200
        assert await backend_deadline(stack) is None  # timeout_s (0.3 s) is for unary calls
        listed = await stack.http.get(stack.url("/v1/users/u-1001/orders"))
        assert listed.status == 200  # ... which keep it
        listed.release()

        stream = orders_pb2_grpc.OrdersStub(stack.channel).WatchOrders(
            orders_pb2.WatchOrdersRequest(user_id="u-1001"), timeout=60)
        await asyncio.wait_for(stream.initial_metadata(), 5)
        remaining = await backend_deadline(stack, 1)
        assert remaining is not None and 50 < remaining <= 61  # the client's 60 s, not 0.3
        stream.cancel()

        asked = await stack.http.get(stack.url(WATCH_URL), headers={"X-Timeout": "60000"})
        remaining = await backend_deadline(stack, 2)
        assert remaining is not None and 50 < remaining <= 61
        for response in (watch, asked):
            response.close()


async def test_stream_timeout_s_caps_a_stream() -> None:
    async with stack_with(stream_timeout_s=0.5) as stack:
        async with stack.http.get(stack.url(WATCH_URL),
                                  headers={"X-Timeout": "60000"}) as watch:
            remaining = await backend_deadline(stack)
            assert remaining is not None and remaining <= 0.5
            body = await asyncio.wait_for(watch.read(), 5)  # it ends at the cap
        error = orjson.loads(body.splitlines()[-1])["error"]
        assert error["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]


async def test_a_stream_idle_for_stream_idle_timeout_s_ends_on_both_edges() -> None:
    async with stack_with(stream_idle_timeout_s=0.3) as stack:
        async with stack.http.get(stack.url(WATCH_URL)) as watch:
            assert watch.status == 200
            body = await asyncio.wait_for(watch.read(), 5)  # then no new order: it ends
        error = orjson.loads(body.splitlines()[-1])["error"]
        assert error["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
        assert error["message"] == ("stream to backend 'orders' idle for 0.3 s, no message "
                                    "either way (backends.orders.stream_idle_timeout_s)")
        first = stack.backends["orders"].faults.calls_to(WATCH)[0]
        await asyncio.wait_for(first.cancelled.wait(), 5)  # the backend call was cancelled

        stream = orders_pb2_grpc.OrdersStub(stack.channel).WatchOrders(
            orders_pb2.WatchOrdersRequest(user_id="u-1001"))
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            while await asyncio.wait_for(stream.read(), 5) is not grpc.aio.EOF:
                pass  # the orders there are, then nothing: it ends
        assert ended.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert "stream_idle_timeout_s" in (ended.value.details() or "")


async def test_a_client_stream_is_idle_only_when_neither_side_sends() -> None:
    async with stack_with(stream_idle_timeout_s=0.3) as stack:
        # Requests every 0.1 s for 0.6 s, twice the idle time, with no reply until the end:
        # the client's messages keep it alive (and timeout_s, 0.3 s, is for unary calls).
        collect: Any = stack.channel.stream_unary(COLLECT)()
        for index in range(6):
            await collect.write(_book(f"b{index}"))
            await asyncio.sleep(0.1)  # pacing the client, not waiting for anything
        await collect.done_writing()
        reply = transcoding_pb2.CollectBooksResponse.FromString(
            await asyncio.wait_for(collect, 5))
        assert reply.count == 6

        silent: Any = stack.channel.stream_unary(COLLECT)()
        await silent.write(_book("only"))  # then nothing, and the stream stays open
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await asyncio.wait_for(silent, 5)
        assert ended.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert ended.value.details() == ("stream to backend 'echo' idle for 0.3 s, no message "
                                         "either way (backends.echo.stream_idle_timeout_s)")
