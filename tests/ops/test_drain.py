"""Drain ends within shutdown_grace_s + 1 s with a stream open on EACH edge (T-34): a real
`serve` process, a REST orders:watch and a gRPC WatchOrders that never end, SIGTERM. aiohttp on
its own waited the grace twice for the REST stream; both backend calls are cancelled."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from orders.v1 import orders_pb2, orders_pb2_grpc
from tests.ops.conftest import (
    exit_code,
    gateway_config,
    read_lines,
    serve_process,
    started_backends,
    write_config,
)

REST = r"gateway REST on http://127\.0\.0\.1:(\d+)"
GRPC = r"gateway gRPC on 127\.0\.0\.1:(\d+)"
WATCH = "/orders.v1.Orders/WatchOrders"
GRACE_S = 1.0


async def _end(stream: Any) -> grpc.StatusCode:
    """Read the stream to its end; the status it ended with."""
    try:
        async for _ in stream:
            pass
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_drain_ends_within_the_grace_with_a_stream_open_on_each_edge(
        tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    async with started_backends("orders") as backends:
        write_config(path, gateway_config(backends, shutdown_grace_s=GRACE_S))
        faults = backends["orders"].faults
        async with serve_process(path) as process, aiohttp.ClientSession() as http:
            rest, grpc_port = await read_lines(process.stdout, [REST, GRPC])
            watch = await http.get(
                f"http://127.0.0.1:{rest.group(1)}/v1/users/u-1001/orders:watch")
            assert watch.status == 200
            await asyncio.wait_for(faults.wait_call(WATCH), 10)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port.group(1)}") as channel:
                stream = orders_pb2_grpc.OrdersStub(channel).WatchOrders(
                    orders_pb2.WatchOrdersRequest(user_id="u-1001"))
                await asyncio.wait_for(stream.initial_metadata(), 10)
                await asyncio.wait_for(faults.wait_call(WATCH, 1), 10)  # both reached it

                started = time.monotonic()
                process.send_signal(signal.SIGTERM)
                assert await exit_code(process, timeout_s=3 * GRACE_S + 5) == 0
                took = time.monotonic() - started
                code = await asyncio.wait_for(_end(stream), 5)
            watch.close()
            assert GRACE_S - 0.1 <= took <= GRACE_S + 1.0, took
            assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), code
            for record in faults.calls_to(WATCH):
                await asyncio.wait_for(record.cancelled.wait(), 5)
