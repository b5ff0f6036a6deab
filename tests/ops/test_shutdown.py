"""Graceful stop in process: readiness turns false first (grpc.health.v1 and /readyz), new
connections are refused, and streams under way on both edges run on until they end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orders.v1 import orders_pb2, orders_pb2_grpc
from testing.v1 import transcoding_pb2
from tests.ops.conftest import file_stack, gateway_config, started_backends

CHAT = "/testing.v1.Echo/ChatBooks"
STATUS = health_pb2.HealthCheckResponse


def _chat(text: str) -> bytes:
    return transcoding_pb2.ChatBooksRequest(
        book=transcoding_pb2.Book(title=text)).SerializeToString()


async def test_stop_turns_readiness_off_first_and_lets_streams_finish(tmp_path: Path) -> None:
    async with started_backends("users", "orders", "echo") as backends, file_stack(
            tmp_path / "gateway.yaml", backends, gateway_config(backends)) as stack:
        watch = await stack.http.get(stack.url("/v1/users/u-1001/orders:watch"))
        await watch.content.readline()
        chat: Any = stack.channel.stream_stream(CHAT)()
        await chat.write(_chat("before"))
        await asyncio.wait_for(chat.read(), 5)
        health = health_pb2_grpc.HealthStub(stack.channel).Watch(
            health_pb2.HealthCheckRequest(service=""))
        assert (await asyncio.wait_for(health.read(), 5)).status == STATUS.SERVING

        stopping = asyncio.create_task(stack.gateway.stop(grace_s=20))
        assert (await asyncio.wait_for(health.read(), 5)).status == STATUS.NOT_SERVING
        health.cancel()
        assert not stack.gateway.ready()
        async with stack.http.get(stack.ops_url("/readyz")) as response:
            assert response.status == 503  # the ops listener stays up to the end

        # Both streams still run: a new order reaches the watch, the chat still echoes.
        async with grpc.aio.insecure_channel(backends["orders"].address) as direct:
            created = await orders_pb2_grpc.OrdersStub(direct).CreateOrder(
                orders_pb2.CreateOrderRequest(user_id="u-1001", order=orders_pb2.Order(items=[
                    orders_pb2.LineItem(sku="MG-5001", title="Mug", quantity=1,
                                        unit_price=orders_pb2.Money(currency_code="EUR",
                                                                    amount_minor=1450))])))
        while created.id not in (line := await watch.content.readline()).decode():
            assert line, "the watch stream ended"
        await chat.write(_chat("during"))
        said = await asyncio.wait_for(chat.read(), 5)
        assert isinstance(said, bytes)
        assert transcoding_pb2.ChatBooksRequest.FromString(said).book.title == "during"
        assert not stopping.done()

        # The client ends both; the stop completes well within its 20 s grace.
        await chat.done_writing()
        assert await asyncio.wait_for(chat.code(), 5) is grpc.StatusCode.OK
        watch.close()
        await asyncio.wait_for(stopping, 10)
        with pytest.raises(aiohttp.ClientConnectorError):
            await stack.http.get(stack.url("/healthz"))


async def test_grace_bounds_the_wait_for_a_stream_that_never_ends(tmp_path: Path) -> None:
    async with started_backends("orders") as backends, file_stack(
            tmp_path / "gateway.yaml", backends, gateway_config(backends)) as stack:
        watch = await stack.http.get(stack.url("/v1/users/u-1001/orders:watch"))
        await watch.content.readline()
        record = backends["orders"].faults.calls_to("/orders.v1.Orders/WatchOrders")[-1]
        await asyncio.wait_for(stack.gateway.stop(grace_s=0.2), 5)
        await asyncio.wait_for(record.cancelled.wait(), 5)  # the backend call was cancelled
        watch.close()
