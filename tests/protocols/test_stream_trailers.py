"""A finished server stream's trailers reach the client: Connect's end-of-stream metadata,
gRPC-Web's trailers frame, gRPC trailing metadata (a real grpc.aio backend that sets them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest

from gateway import app
from gateway.config import load
from gateway.demo import DESCRIPTOR_SET
from orders.v1 import orders_pb2, orders_pb2_grpc
from tests.protocols.wire import end_stream, frame, grpc_web

WATCH = "/orders.v1.Orders/WatchOrders"
EVENT = orders_pb2.WatchOrdersResponse(kind=orders_pb2.WatchOrdersResponse.KIND_CREATED)


class TwoEvents(grpc.GenericRpcHandler):
    def service(self, details: grpc.HandlerCallDetails) -> Any:
        if details.method != WATCH:
            return None

        async def watch(request: bytes, context: grpc.aio.ServicerContext[Any, Any]
                        ) -> AsyncIterator[bytes]:
            for _ in range(2):
                yield EVENT.SerializeToString()
            context.set_trailing_metadata((("x-feed-end", "done"),))

        return grpc.unary_stream_rpc_method_handler(watch)


@pytest.fixture
async def gateway() -> AsyncIterator[app.RunningGateway]:
    backend = grpc.aio.server(handlers=[TwoEvents()])
    port = backend.add_insecure_port("127.0.0.1:0")
    await backend.start()
    running = await app.start(load({
        "listen": {"rest": {"host": "127.0.0.1", "port": 0},
                   "grpc": {"host": "127.0.0.1", "port": 0}},
        "descriptors": {"descriptor_set": str(DESCRIPTOR_SET)},
        "backends": {"orders": {"services": ["orders.v1.Orders"],
                                "addresses": [f"127.0.0.1:{port}"],
                                "health_check": {"enabled": False}}},
    }))
    try:
        yield running
    finally:
        await running.stop(0)
        await backend.stop(None)


async def test_trailers_of_a_finished_stream(gateway: app.RunningGateway) -> None:
    url = f"http://127.0.0.1:{gateway.rest_port}{WATCH}"
    request = frame(orders_pb2.WatchOrdersRequest(user_id="u-1").SerializeToString())
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=request,
                             headers={"Content-Type": "application/connect+proto"}) as r:
            messages, end = end_stream(await r.read())
        assert len(messages) == 2
        assert end == {"metadata": {"x-feed-end": ["done"]}}
        async with http.post(url, data=request,
                             headers={"Content-Type": "application/grpc-web+proto"}) as r:
            messages, trailers = grpc_web(await r.read())
        assert len(messages) == 2
        assert trailers == {"grpc-status": "0", "x-feed-end": "done"}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
        call = orders_pb2_grpc.OrdersStub(channel).WatchOrders(
            orders_pb2.WatchOrdersRequest(user_id="u-1"))
        assert len([event async for event in call]) == 2
        assert ("x-feed-end", "done") in tuple(await call.trailing_metadata())
