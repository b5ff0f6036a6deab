"""`python -m gateway demo` as a real process with all three port flags (and --host): each
listener on the port it was given, the ops port serving /metrics; SIGTERM stops it with 0."""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.ops.conftest import ROOT, exit_code, read_lines
from tests.redis_server import free_port


async def test_the_demo_listens_on_the_three_ports_it_is_given() -> None:
    rest, grpc_port, ops = free_port(), free_port(), free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "demo", "--host", "127.0.0.1",
        "--rest-port", str(rest), "--grpc-port", str(grpc_port), "--ops-port", str(ops),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT)
    try:
        await read_lines(process.stdout, [rf"gateway REST +http://127\.0\.0\.1:{rest}$",
                                          rf"gateway gRPC +127\.0\.0\.1:{grpc_port}$",
                                          rf"metrics \(scrape\) +http://127\.0\.0\.1:{ops}/",
                                          "stop with Ctrl-C"])
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{rest}/v1/users/u-1001") as response:
                assert response.status == 200
            async with http.get(f"http://127.0.0.1:{ops}/metrics") as response:
                assert response.status == 200
                assert "gateway_requests_total" in await response.text()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGTERM)
        assert await exit_code(process) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
