"""`python -m gateway serve` as a real process: SIGHUP reloads the edited file (a bad edit is
rejected and the old config serves on); SIGTERM with a slow call in flight turns readiness off,
lets the call finish and exits 0; `--workers 2` serves one port from two processes."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.faults import Fault
from tests.ops.conftest import (
    BEARER,
    exit_code,
    gateway_config,
    metric,
    read_lines,
    serve_process,
    started_backends,
    write_config,
)

REST = r"gateway REST on http://127\.0\.0\.1:(\d+)"
GRPC = r"gateway gRPC on 127\.0\.0\.1:(\d+)"
OPS = r"gateway ops \(/metrics, /admin\) on http://127\.0\.0\.1:(\d+)"
WORKER = r" \(worker (\d), pid (\d+)\)"
STATUS = health_pb2.HealthCheckResponse


async def test_sighup_reloads_the_edited_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    async with started_backends("users", "orders") as backends:
        write_config(path, gateway_config({"users": backends["users"]}))
        async with serve_process(path) as process, aiohttp.ClientSession() as http:
            (rest,) = await read_lines(process.stdout, [REST])
            orders = f"http://127.0.0.1:{rest.group(1)}/v1/users/u-1001/orders"
            async with http.get(orders) as response:
                assert response.status == 404  # no backend serves orders yet

            write_config(path, {**gateway_config(backends), "backends": "not a mapping"})
            process.send_signal(signal.SIGHUP)
            (rejected,) = await read_lines(process.stderr, ["config reload rejected.*"])
            assert "generation 1 keeps serving" in rejected.group(0)
            assert "backends" in rejected.group(0)
            async with http.get(orders) as response:
                assert response.status == 404

            write_config(path, gateway_config(backends))
            process.send_signal(signal.SIGHUP)
            await read_lines(process.stderr, ["config reloaded: generation 2 serving"])
            async with http.get(orders) as response:
                assert response.status == 200
                assert (await response.json())["orders"]

            process.send_signal(signal.SIGTERM)
            assert await exit_code(process) == 0


async def test_sigterm_lets_the_slow_call_finish_then_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    async with started_backends("users") as backends:
        faults = backends["users"].faults
        faults.set("/users.v1.Users/GetUser", Fault(delay_s=1.0))
        write_config(path, gateway_config(backends))
        async with serve_process(path) as process, aiohttp.ClientSession() as http:
            rest, grpc_port, ops = await read_lines(process.stdout, [REST, GRPC, OPS])
            base, ops_base = f"http://127.0.0.1:{rest.group(1)}", f"http://127.0.0.1:{ops.group(1)}"
            async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port.group(1)}") as channel:
                health = health_pb2_grpc.HealthStub(channel).Watch(
                    health_pb2.HealthCheckRequest(service=""))
                assert (await asyncio.wait_for(health.read(), 10)).status == STATUS.SERVING
                slow = asyncio.create_task(http.get(f"{base}/v1/users/u-1001"))
                await asyncio.wait_for(faults.wait_call("/users.v1.Users/GetUser"), 10)

                process.send_signal(signal.SIGTERM)
                assert (await asyncio.wait_for(health.read(), 10)).status == STATUS.NOT_SERVING
                health.cancel()
            async with http.get(f"{ops_base}/readyz") as response:
                assert response.status == 503
            response = await asyncio.wait_for(slow, 10)
            assert response.status == 200
            assert (await response.json())["id"] == "u-1001"
            response.release()
            assert await exit_code(process) == 0


async def test_two_workers_share_the_port(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    limits = {"rules": [{"match": "*", "key": "route", "rate_per_s": 1000, "burst": 1000}]}
    async with started_backends("users") as backends:
        write_config(path, gateway_config(backends, rate_limits=limits))
        async with serve_process(path, "--workers", "2") as process:
            lines = await read_lines(process.stdout, [REST + WORKER.replace(r"(\d)", "0"),
                                                      REST + WORKER.replace(r"(\d)", "1"),
                                                      OPS + WORKER.replace(r"(\d)", "0"),
                                                      OPS + WORKER.replace(r"(\d)", "1")])
            rest0, rest1, ops0, ops1 = lines
            assert rest0.group(1) == rest1.group(1)  # one port
            pids = {rest0.group(2), rest1.group(2)}
            assert len(pids) == 2 and str(process.pid) not in pids
            ops_urls = [f"http://127.0.0.1:{ops.group(1)}" for ops in (ops0, ops1)]
            # A fresh connection per request: the kernel spreads them over both workers.
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)
                                             ) as http:
                for _ in range(40):
                    async with http.get(f"http://127.0.0.1:{rest0.group(1)}/v1/users/u-1001"
                                        ) as response:
                        assert response.status == 200
                served = [await metric(http, f"{url}/metrics", "gateway_requests_total")
                          for url in ops_urls]
                assert sum(served) == 40 and min(served) > 0, served
                statuses = []
                for url in ops_urls:
                    async with http.get(f"{url}/admin/status", headers=BEARER) as response:
                        statuses.append(await response.json())
                assert {str(s["pid"]) for s in statuses} == pids
                assert [(s["worker"], s["workers"]) for s in statuses] == [(0, 2), (1, 2)]
                # Each worker enforces half of an in-memory limit, and says so.
                async with http.get(f"{ops_urls[0]}/admin/limiter", headers=BEARER) as response:
                    assert (await response.json())["share"] == 0.5

                # The supervisor forwards SIGHUP to both.
                process.send_signal(signal.SIGHUP)
                await read_lines(process.stderr, ["each enforces 1/2 of every limit",
                                                  *["config reloaded: generation 2"] * 2])
                for url in ops_urls:
                    async with http.get(f"{url}/admin/status", headers=BEARER) as response:
                        assert (await response.json())["generation"] == 2
            process.send_signal(signal.SIGTERM)
            assert await exit_code(process) == 0
