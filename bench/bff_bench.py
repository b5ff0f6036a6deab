"""BFF fan-out latency (issue 5, T-41): an aggregate of three parts that take 50, 100 and 150 ms.

    .venv/bin/python -m bench.bff_bench                # 200 requests per target, concurrency 4
    .venv/bin/python -m bench.bff_bench --requests 400 --concurrency 8

A child process runs the demo backends, with those service times injected (GetUser 50 ms,
ListOrders 100 ms, CountUnread 150 ms), and the gateway serving dashboard.v1 GetOverview over
exactly those three parts. This process measures under light load, through each edge, the p50 of
the slowest part called alone and the p50 of the aggregate. Exit status 1 when the aggregate's
p50 exceeds 1.15x the slowest part's on either edge (latency is the slowest path, not the sum).
Results also go to bench/out/bff.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import uvloop

from bench.check import DASHBOARD_PATH as OVERVIEW_PATH
from bench.check import UNREAD_PATH as PART_PATH
from bench.check import USER_ID as USER
from bench.scenarios import BENCH_API_KEY as API_KEY
from bench.scenarios import DASHBOARD_PARTS, dashboard_config
from dashboard.v1 import dashboard_pb2, dashboard_pb2_grpc
from notifications.v1 import notifications_pb2, notifications_pb2_grpc

OUT = Path(__file__).resolve().parent / "out" / "bff.json"
LIMIT = 1.15


async def _stack(conn: Connection) -> None:
    from gateway import app
    from gateway.config import load
    from services.faults import Fault
    from services.server import start_all

    backends = await start_all()
    for name, (_, method, delay_s) in DASHBOARD_PARTS.items():
        backends[name].faults.set(method, Fault(delay_s=delay_s))
    gateway = await app.start(load(dashboard_config({n: b.address for n, b in backends.items()})))
    try:
        conn.send({"rest": gateway.rest_port, "grpc": gateway.grpc_port,
                   "direct": backends["notifications"].address})
        await asyncio.to_thread(conn.recv)  # until the parent says stop
    finally:
        await gateway.stop(0)
        for backend in backends.values():
            await backend.stop(0)


def _serve(conn: Connection) -> None:
    uvloop.run(_stack(conn))


async def _latencies(request: Callable[[], Awaitable[None]], requests: int,
                     concurrency: int) -> list[float]:
    """Milliseconds per request; `concurrency` clients, each sending its next when one returns."""
    for _ in range(concurrency):  # warm up connections and caches
        await request()
    remaining = iter(range(requests))
    found: list[float] = []

    async def client() -> None:
        for _ in remaining:
            started = time.perf_counter()
            await request()
            found.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return found


def _summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"p50_ms": statistics.median(ordered),
            "p90_ms": ordered[int(0.9 * (len(ordered) - 1))],
            "p99_ms": ordered[int(0.99 * (len(ordered) - 1))],
            "requests": len(ordered)}


async def _measure(ports: dict[str, Any], requests: int, concurrency: int
                   ) -> dict[str, dict[str, float]]:
    base = f"http://127.0.0.1:{ports['rest']}"
    headers = {"x-api-key": API_KEY}
    metadata = (("x-api-key", API_KEY),)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http, \
            grpc.aio.insecure_channel(f"127.0.0.1:{ports['grpc']}") as gateway, \
            grpc.aio.insecure_channel(ports["direct"]) as direct:
        overview_stub = dashboard_pb2_grpc.DashboardStub(gateway)
        part_stub = notifications_pb2_grpc.NotificationsStub(gateway)
        direct_stub = notifications_pb2_grpc.NotificationsStub(direct)
        count = notifications_pb2.CountUnreadRequest(user_id=USER)

        async def rest(path: str) -> None:
            async with http.get(base + path, headers=headers) as response:
                body = await response.json()
                if response.status != 200 or body.get("errors"):
                    raise SystemExit(f"GET {path}: {response.status} {body}")

        async def overview_grpc() -> None:
            reply = await overview_stub.GetOverview(dashboard_pb2.GetOverviewRequest(),
                                                    metadata=metadata)
            if reply.errors or not reply.profile.id:
                raise SystemExit(f"GetOverview over gRPC: {reply}")

        async def part_grpc() -> None:
            await part_stub.CountUnread(count, metadata=metadata)

        async def part_direct() -> None:
            await direct_stub.CountUnread(count)

        targets: dict[str, Callable[[], Awaitable[None]]] = {
            "slowest-part-direct": part_direct,
            "slowest-part-rest": lambda: rest(PART_PATH),
            "slowest-part-grpc": part_grpc,
            "overview-rest": lambda: rest(OVERVIEW_PATH),
            "overview-grpc": overview_grpc,
        }
        return {name: _summary(await _latencies(request, requests, concurrency))
                for name, request in targets.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="per target (default 200)")
    parser.add_argument("--concurrency", type=int, default=4, help="clients (default 4)")
    options = parser.parse_args(argv)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    stack = context.Process(target=_serve, args=(child,), daemon=True)
    stack.start()
    try:
        if not parent.poll(30):
            raise SystemExit("the gateway stack did not start within 30 s")
        ports = parent.recv()
        results = uvloop.run(_measure(ports, options.requests, options.concurrency))
    finally:
        parent.send("stop")
        stack.join(10)
        if stack.is_alive():
            stack.kill()
    verdicts = {}
    print(f"parts: 50, 100, 150 ms injected; {options.requests} requests per target, "
          f"concurrency {options.concurrency}")
    print(f"{'target':<22}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
    for name, summary in results.items():
        print(f"{name:<22}{summary['p50_ms']:>9.1f}{summary['p90_ms']:>9.1f}"
              f"{summary['p99_ms']:>9.1f}")
    for edge in ("rest", "grpc"):
        ratio = results[f"overview-{edge}"]["p50_ms"] / results[f"slowest-part-{edge}"]["p50_ms"]
        verdicts[edge] = ratio
        print(f"{edge}: overview p50 / slowest part p50 = {ratio:.3f} "
              f"({'ok' if ratio <= LIMIT else 'FAILED'}, limit {LIMIT}); "
              f"sum of parts would be {sum(d for *_, d in DASHBOARD_PARTS.values()) * 1000:.0f} ms")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"options": vars(options), "results": results,
                               "ratios": verdicts, "limit": LIMIT}, indent=2))
    return 0 if all(ratio <= LIMIT for ratio in verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
