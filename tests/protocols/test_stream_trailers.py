"""Backend metadata reaches the client where the protocol puts it (a real grpc.aio backend):
a finished stream's trailers in Connect's end-of-stream message, gRPC-Web's trailers frame and
gRPC trailing metadata; a failed call's headers as headers and its trailers as trailers. Browsers
get only the keys `transcoding.response_headers` allows (here x-feed-end and x-sent-*), as REST
clients; internal callers on the gRPC edge get all but the deny-list."""

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
GET_ORDER = "/orders.v1.Orders/GetOrder"
INTERNAL = ("x-db-host", "db-7.internal")  # a key no allow-list names: browsers never see it
EVENT = orders_pb2.WatchOrdersResponse(kind=orders_pb2.WatchOrdersResponse.KIND_CREATED)


class TwoEvents(grpc.GenericRpcHandler):
    def service(self, details: grpc.HandlerCallDetails) -> Any:
        if details.method == GET_ORDER:
            return grpc.unary_unary_rpc_method_handler(fail_with_metadata)
        if details.method != WATCH:
            return None

        async def watch(request: bytes, context: grpc.aio.ServicerContext[Any, Any]
                        ) -> AsyncIterator[bytes]:
            for _ in range(2):
                yield EVENT.SerializeToString()
            context.set_trailing_metadata((("x-feed-end", "done"), INTERNAL))

        return grpc.unary_stream_rpc_method_handler(watch)


async def fail_with_metadata(request: bytes, context: grpc.aio.ServicerContext[Any, Any]
                             ) -> bytes:
    await context.send_initial_metadata((("x-sent-first", "h"), INTERNAL))
    await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no",
                        (("x-sent-last", "t"), INTERNAL))
    return b""


@pytest.fixture
async def gateway() -> AsyncIterator[app.RunningGateway]:
    backend = grpc.aio.server(handlers=[TwoEvents()])
    port = backend.add_insecure_port("127.0.0.1:0")
    await backend.start()
    running = await app.start(load({
        "listen": {"rest": {"host": "127.0.0.1", "port": 0},
                   "grpc": {"host": "127.0.0.1", "port": 0}},
        "descriptors": {"descriptor_set": str(DESCRIPTOR_SET)},
        "transcoding": {"response_headers": ["x-feed-end", "x-sent-*"]},
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
            body = await r.read()
            messages, end = end_stream(body)
            assert b"db-7" not in body and "x-db-host" not in r.headers
        assert len(messages) == 2
        assert end == {"metadata": {"x-feed-end": ["done"]}}
        async with http.post(url, data=request,
                             headers={"Content-Type": "application/grpc-web+proto"}) as r:
            body = await r.read()
            messages, trailers = grpc_web(body)
            assert b"db-7" not in body and "x-db-host" not in r.headers
        assert len(messages) == 2
        assert trailers == {"grpc-status": "0", "x-feed-end": "done"}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
        call = orders_pb2_grpc.OrdersStub(channel).WatchOrders(
            orders_pb2.WatchOrdersRequest(user_id="u-1"))
        assert len([event async for event in call]) == 2
        trailing = tuple(await call.trailing_metadata())
        assert ("x-feed-end", "done") in trailing
        assert INTERNAL in trailing  # the gRPC edge: internal callers, deny-list only


async def test_a_failed_call_keeps_headers_and_trailers_apart(gateway: app.RunningGateway
                                                              ) -> None:
    url = f"http://127.0.0.1:{gateway.rest_port}{GET_ORDER}"
    request = orders_pb2.GetOrderRequest(id="o-1").SerializeToString()
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=request,
                             headers={"Content-Type": "application/proto"}) as r:
            assert r.status == 400
            assert (await r.json())["code"] == "failed_precondition"
            assert r.headers["x-sent-first"] == "h"
            assert r.headers["Trailer-x-sent-last"] == "t"
            assert "x-sent-last" not in r.headers
            assert "x-db-host" not in r.headers and "Trailer-x-db-host" not in r.headers
        async with http.post(url, data=frame(request),
                             headers={"Content-Type": "application/grpc-web"}) as r:
            assert r.headers["x-sent-first"] == "h" and "x-db-host" not in r.headers
            _, trailers = grpc_web(await r.read())
        assert trailers["grpc-status"] == "9" and "x-db-host" not in trailers
        assert trailers["x-sent-last"] == "t"
